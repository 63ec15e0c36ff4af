// #/search/TEXT: the nodes whose label holds TEXT, or whose key or digest starts with it.

import { h, mono, badge, artifactHref } from './dom.js';
import { api } from './api.js';
import { view, mount } from './view.js';

export async function searchView(v, q) {
  document.title = 'refine · search ' + q;
  const input = document.getElementById('search');
  if (input && document.activeElement !== input) input.value = q;
  if (!q.trim()) {
    mount(h('h1', {}, 'Search'), h('p', { class: 'muted' }, 'Type part of a label, or the start of a key or digest.'));
    return;
  }
  const r = await api('/v1/search?q=' + encodeURIComponent(q), { signal: v.abort.signal });
  if (v !== view) return;
  const results = r.results || [];
  mount(h('div', { class: 'title-row' }, h('h1', {}, 'Search'), h('code', { id: 'search-query' }, q),
    h('span', { class: 'muted', id: 'search-count' }, results.length + (results.length === 1 ? ' match' : ' matches'))),
  results.length
    ? h('table', { id: 'search-results', class: 'list' },
      h('thead', {}, h('tr', {}, ['Node', 'Kind', 'State', 'Key', 'Digest', 'Build'].map((t) => h('th', {}, t)))),
      h('tbody', {}, results.map(({ build, node: n }) => h('tr', { class: 'result', dataset: { label: n.label, kind: n.kind, key: n.key || '', digest: n.digest || '', build } },
        h('td', {}, n.key
          ? h('a', { href: artifactHref(n.kind, n.key), class: 'label' }, n.label)
          : h('a', { href: '#/builds/' + build, class: 'label' }, n.label)),
        h('td', {}, h('span', { class: 'kind' }, n.kind)),
        h('td', {}, badge(n.state)),
        h('td', {}, mono(n.key)),
        h('td', {}, mono(n.digest)),
        h('td', { class: 'num' }, h('a', { href: '#/builds/' + build }, '#' + build))))))
    : h('p', { id: 'no-results', class: 'muted' }, 'Nothing matches: labels are matched on any part, keys and digests on their start.'));
}
