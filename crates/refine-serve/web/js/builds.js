// #/builds: the builds, newest first, refreshed every 2 s; with the token, a form to queue one.

import { h, fill, badge, when, duration, counts } from './dom.js';
import { api, token, ApiError } from './api.js';
import { view, every, mount, failed, errorBox, tokenPrompt } from './view.js';

function buildRow(b) {
  return h('tr', { dataset: { build: b.id, state: b.state } },
    h('td', { class: 'num' }, h('a', { href: '#/builds/' + b.id }, '#' + b.id)),
    h('td', {}, badge(b.state)),
    h('td', { class: 'patterns' }, b.patterns.map((p) => h('code', {}, p)),
      b.requeue_of ? h('span', { class: 'muted' }, ' (again: ', h('a', { href: '#/builds/' + b.requeue_of }, '#' + b.requeue_of), ')') : null),
    h('td', {}, when(b.created)),
    h('td', { class: 'num', dataset: { started: b.started || '' } }, duration(b)),
    h('td', {}, counts(b.summary), b.error ? h('div', { class: 'row-error', title: b.error.help || '' }, b.error.message) : null));
}

function newBuildForm(v) {
  const input = h('input', { id: 'new-patterns', type: 'text', placeholder: '//packs:name //wheels/...', size: 40, spellcheck: 'false' });
  const keep = h('input', { id: 'new-keep-going', type: 'checkbox' });
  const out = h('span', { id: 'new-build-result' });
  return h('form', {
    id: 'new-build',
    class: 'inline',
    onsubmit: async (e) => {
      e.preventDefault();
      const patterns = input.value.split(/\s+/).filter(Boolean);
      if (!patterns.length) return;
      fill(out, 'queueing…');
      try {
        const b = await api('/v1/builds', { method: 'POST', body: { patterns, keep_going: keep.checked } });
        location.hash = '#/builds/' + b.id;
      } catch (err) {
        if (v !== view) return;
        if (err instanceof ApiError && err.status === 401) tokenPrompt(err);
        else fill(out, errorBox(err, 'new-build-error'));
      }
    },
  }, h('label', {}, 'Build ', input), ' ', h('label', {}, keep, ' keep going'), ' ', h('button', { type: 'submit' }, 'Queue'), ' ', out);
}

export async function buildsView(v) {
  document.title = 'refine · builds';
  const body = h('tbody', {});
  const table = h('table', { id: 'builds', class: 'list' },
    h('thead', {}, h('tr', {}, ['Build', 'State', 'Patterns', 'Queued', 'Took', 'Nodes'].map((t) => h('th', {}, t)))),
    body);
  const empty = h('p', { id: 'no-builds', class: 'muted', hidden: true }, 'No builds yet. ',
    token() ? 'Queue one above, or ' : '', 'POST /v1/builds queues one.');
  const stamp = h('span', { id: 'refreshed', class: 'muted small' });
  let last = '';
  const refresh = async () => {
    const list = await api('/v1/builds?limit=100', { signal: v.abort.signal });
    if (v !== view) return;
    const text = JSON.stringify(list.builds);
    if (text !== last) {
      last = text;
      fill(body, ...list.builds.map(buildRow));
      empty.hidden = list.builds.length > 0;
      table.hidden = list.builds.length === 0;
    } else {
      // Running builds' durations move on.
      for (const b of list.builds) {
        if (!b.finished && b.started) {
          const cell = body.querySelector('tr[data-build="' + b.id + '"] td[data-started]');
          if (cell) cell.textContent = duration(b);
        }
      }
    }
    stamp.textContent = 'updated ' + new Date().toLocaleTimeString();
  };
  await refresh();
  if (v !== view) return;
  mount(h('div', { class: 'title-row' }, h('h1', {}, 'Builds'), stamp),
    token() ? newBuildForm(v) : null,
    table, empty);
  every(2000, () => refresh().catch((err) => failed(err, v)));
}
