// #/builds/ID: one build — its header, its actions (cancel, run again, show dependencies),
// its progress, its graph and its nodes' table — followed live from /v1/events until it ends.

import { h, fill, mono, seconds, when, duration, badge, counts, nodeLink } from './dom.js';
import { api, token, ApiError, followEvents } from './api.js';
import { view, every, mount, failed, errorBox, tokenPrompt } from './view.js';
import { applyEvent } from './events.js';
import { graphCard, graphView } from './graph.js';

const FINAL_BUILD = ['succeeded', 'failed', 'cancelled', 'interrupted'];
const NODE_STATES = ['waiting', 'running', 'built', 'cached', 'failed', 'skipped'];

/** A node's row in the table; with `deps` (label → labels), a column of its dependencies. */
function nodeRow(n, index, deps) {
  const time = n.state === 'cached' ? (n.where || '') : seconds(n.seconds);
  const timing = n.action_seconds !== null && n.action_seconds !== undefined
    ? 'action ' + seconds(n.action_seconds) + ', refine ' + seconds(n.overhead_seconds)
    : null;
  return h('tr', {
    class: 'node',
    id: 'node-' + index,
    dataset: { label: n.label, state: n.state, kind: n.kind, key: n.key || '', digest: n.digest || '' },
  },
  h('td', { class: 'num muted' }, index + 1),
  h('td', {}, badge(n.state)),
  h('td', {}, nodeLink(n), n.reason
    ? h('details', { class: 'reason' }, h('summary', {}, n.state === 'skipped' ? 'why skipped' : 'why it failed'), h('pre', {}, n.reason))
    : null),
  h('td', {}, h('span', { class: 'kind' }, n.kind)),
  h('td', { class: 'muted' }, n.planned),
  h('td', {}, mono(n.key)),
  h('td', {}, mono(n.digest)),
  h('td', { class: 'num', title: timing }, time),
  deps ? h('td', { class: 'deps' }, (deps.get(n.label) || []).map((d) => h('span', { class: 'dep', title: d }, d.replace(/^\/\//, '')))) : null);
}

export async function buildView(v, id) {
  document.title = 'refine · build #' + id;
  const b = await api('/v1/builds/' + encodeURIComponent(id), { signal: v.abort.signal });
  if (v !== view) return;
  b.nodes = b.nodes || [];
  // label → its direct dependencies: as the build planned them (the server keeps them with
  // each node), else from a plan of the same patterns asked for by hand.
  let deps = null;
  let depsNote = null;
  if (b.nodes.some((n) => Array.isArray(n.deps))) {
    deps = new Map(b.nodes.map((n) => [n.label, n.deps || []]));
  }
  let graph = null;

  const header = h('section', { id: 'build-header', class: 'panel' });
  const actions = h('div', { id: 'build-actions', class: 'actions' });
  const progress = h('div', { id: 'progress', class: 'progress' });
  const graphSlot = h('div', { id: 'graph-slot' });
  const tbody = h('tbody', {});
  const headRow = h('tr', {});
  const table = h('table', { id: 'nodes', class: 'list nodes' }, h('thead', {}, headRow), tbody);
  const live = h('span', { id: 'live', class: 'muted small' });

  const renderHeader = () => {
    const s = b.summary;
    fill(header,
      h('div', { class: 'title-row' },
        h('h1', {}, 'Build #' + b.id), badge(b.state, { id: 'build-state' }), live),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Patterns'), h('dd', { id: 'build-patterns' }, b.patterns.map((p) => h('code', {}, p))),
        h('dt', {}, 'Queued'), h('dd', {}, when(b.created)),
        h('dt', {}, 'Started'), h('dd', {}, when(b.started)),
        h('dt', {}, 'Finished'), h('dd', {}, when(b.finished)),
        h('dt', {}, 'Took'), h('dd', { id: 'build-took' }, duration(b) || '—'),
        h('dt', {}, 'Options'), h('dd', {}, (b.keep_going ? 'keep going' : 'stop at the first failure') + (b.jobs ? ', ' + b.jobs + ' jobs' : '')),
        b.requeue_of ? [h('dt', {}, 'Runs again'), h('dd', {}, h('a', { href: '#/builds/' + b.requeue_of }, 'build #' + b.requeue_of))] : null,
        s ? [h('dt', {}, 'Nodes'), h('dd', { id: 'build-counts' }, counts(s), s.seconds !== undefined ? h('span', { class: 'muted' }, ' in ' + seconds(s.seconds)) : null)] : null,
        s && s.critical_path && s.critical_path.length
          ? [h('dt', {}, 'Critical path'), h('dd', { id: 'critical-path' }, s.critical_path.map((l, i) => [i ? ' → ' : '', h('code', {}, l)]),
            h('span', { class: 'muted' }, ' (' + seconds(s.critical_path_seconds) + ')'))]
          : null),
      b.error ? errorBox(b.error, 'build-error') : null);
    renderActions();
  };

  const renderActions = () => {
    const kids = [];
    const open = !FINAL_BUILD.includes(b.state);
    if (open && token()) {
      kids.push(h('button', {
        id: 'cancel',
        class: 'danger',
        onclick: async (e) => {
          e.target.disabled = true;
          try {
            const after = await api('/v1/builds/' + b.id, { method: 'DELETE' });
            if (v !== view) return;
            b.state = after.state;
            renderHeader();
          } catch (err) {
            if (v !== view) return;
            if (err instanceof ApiError && err.status === 401) tokenPrompt(err);
            else actions.append(errorBox(err, 'cancel-error'));
          }
        },
      }, 'Cancel'));
    } else if (open) {
      kids.push(h('span', { class: 'muted' }, 'Cancelling needs the token: ', h('a', { href: '#', onclick: (e) => { e.preventDefault(); tokenPrompt(null); } }, 'set it')));
    }
    if (!open && token()) {
      kids.push(h('button', {
        id: 'requeue',
        onclick: async (e) => {
          e.target.disabled = true;
          try {
            const nb = await api('/v1/builds/' + b.id + '/requeue', { method: 'POST' });
            location.hash = '#/builds/' + nb.id;
          } catch (err) {
            if (v === view) actions.append(errorBox(err, 'requeue-error'));
          }
        },
      }, 'Run again'));
    }
    if (token() && !deps && b.nodes.length) {
      kids.push(h('button', {
        id: 'load-deps',
        title: 'Plans the same patterns on the workspace as it is now (POST /v1/plans) to learn each node\'s dependencies',
        onclick: async (e) => {
          e.target.disabled = true;
          try {
            const plan = await api('/v1/plans', { method: 'POST', body: { patterns: b.patterns } });
            if (v !== view) return;
            deps = new Map(plan.nodes.map((n) => [n.label, n.deps || []]));
            depsNote = plan;
            renderNodes();
            renderActions();
          } catch (err) {
            if (v === view) actions.append(errorBox(err, 'deps-error'));
          }
        },
      }, 'Show dependencies'));
    }
    fill(actions, ...kids);
  };

  const renderProgress = () => {
    const total = b.nodes.length || 1;
    const by = {};
    for (const n of b.nodes) by[n.state] = (by[n.state] || 0) + 1;
    fill(progress,
      h('div', { class: 'bar' }, NODE_STATES.filter((s) => by[s]).map((s) => h('span', { class: 'seg state-' + s, style: 'width:' + (100 * by[s] / total) + '%', title: by[s] + ' ' + s }))),
      h('div', { class: 'legend' }, NODE_STATES.filter((s) => by[s]).map((s) => h('span', { class: 'legend-item', dataset: { state: s } }, badge(s), ' ' + by[s]))));
  };

  const renderNodes = () => {
    fill(headRow, ...['', 'State', 'Node', 'Kind', 'Planned', 'Key', 'Digest', 'Time', deps ? 'Depends on' : null]
      .filter((t) => t !== null).map((t) => h('th', {}, t)));
    fill(tbody, ...b.nodes.map((n, i) => nodeRow(n, i, deps)));
    if (deps) {
      graph = graphView(b.nodes, deps);
      fill(graphSlot, h('h2', {}, 'Graph'),
        h('p', { class: 'muted small', id: 'deps-note' }, depsNote
          ? 'Dependencies from plan #' + depsNote.id + ' of the same patterns on the workspace as it is now.'
          : 'Dependencies as this build planned them.'),
        graph.box);
    } else {
      graph = null;
      graphSlot.replaceChildren();
    }
    renderProgress();
  };

  const updateNode = (label) => {
    const i = b.nodes.findIndex((n) => n.label === label);
    if (i < 0) return;
    const row = tbody.querySelector('#node-' + i);
    const fresh = nodeRow(b.nodes[i], i, deps);
    if (row) row.replaceWith(fresh);
    else tbody.append(fresh);
    if (graph) {
      const card = graph.box.querySelector('.gnode[data-node="' + CSS.escape(label) + '"]');
      if (card) {
        card.replaceWith(graphCard(b.nodes[i]));
        graph.draw();
      }
    }
    renderProgress();
  };

  renderHeader();
  renderNodes();
  mount(header, actions, progress, graphSlot,
    h('h2', {}, 'Nodes ', h('span', { class: 'muted small' }, 'in plan order: dependencies first')),
    table,
    h('p', { id: 'no-nodes', class: 'muted', hidden: b.nodes.length > 0 }, 'No nodes yet: the build has not been planned.'));
  window.addEventListener('resize', () => graph && graph.draw(), { signal: v.abort.signal });

  if (FINAL_BUILD.includes(b.state)) return;

  // Live: the build's events from its first; the stream ends after its last.
  const tick = () => {
    const el = document.getElementById('build-took');
    if (el) el.textContent = duration(b) || '—';
  };
  every(1000, tick);
  const follow = async () => {
    live.textContent = '● live';
    live.className = 'live small';
    try {
      await followEvents('/v1/events?build=' + b.id, (e) => {
        if (v !== view) return;
        const changed = applyEvent(b, e);
        if (changed.all) {
          document.getElementById('no-nodes').hidden = b.nodes.length > 0;
          renderNodes();
          renderActions();
        } else if (changed.label) {
          updateNode(changed.label);
        }
        if (changed.build) {
          if (b.state === 'running' && !b.started) b.started = new Date().toISOString();
          renderHeader();
        }
      }, v.abort.signal);
    } catch (err) {
      if (v !== view || err.name === 'AbortError') return;
      if (err instanceof ApiError && err.status === 401) {
        tokenPrompt(err);
        return;
      }
      live.textContent = 'reconnecting…';
      live.className = 'muted small';
      setTimeout(() => { if (v === view) follow(); }, 2000);
      return;
    }
    if (v !== view) return;
    // Over: the server's record has the times and every node's final fields.
    live.textContent = '';
    const fresh = await api('/v1/builds/' + b.id, { signal: v.abort.signal });
    if (v !== view) return;
    Object.assign(b, fresh, { nodes: fresh.nodes && fresh.nodes.length ? fresh.nodes : b.nodes });
    renderHeader();
    renderNodes();
    if (!FINAL_BUILD.includes(b.state)) setTimeout(() => { if (v === view) follow(); }, 1000);
  };
  follow().catch((err) => failed(err, v));
}
