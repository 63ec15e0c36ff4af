// A build's graph, drawn: one column of node cards per depth, the edges an SVG over them
// (redrawn by the caller when a card changes or the window is resized).

import { h, nodeLink } from './dom.js';

export function graphCard(n) {
  return h('div', { class: 'gnode state-' + n.state, dataset: { node: n.label, state: n.state }, title: n.label + ' — ' + n.state },
    nodeLink(n), h('span', { class: 'gkind' }, n.kind));
}

/**
 * A layered drawing of the graph: dependencies left, dependants right, one column per depth.
 * An edge implied through another dependency (a pack's base, when its other packs have the
 * same base) is left out of the drawing; the table lists every direct dependency.
 */
export function graphView(nodes, deps) {
  const present = new Set(nodes.map((n) => n.label));
  const direct = (label) => (deps.get(label) || []).filter((d) => present.has(d));
  const depth = new Map();
  const depthOf = (label, seen) => {
    if (depth.has(label)) return depth.get(label);
    if (seen.has(label)) return 0; // A cycle cannot be planned; stay finite anyway.
    seen.add(label);
    const ds = direct(label);
    const v = ds.length ? 1 + Math.max(...ds.map((d) => depthOf(d, seen))) : 0;
    depth.set(label, v);
    return v;
  };
  const below = new Map(); // label → everything it depends on, directly or not
  const belowOf = (label, seen) => {
    if (below.has(label)) return below.get(label);
    const all = new Set();
    if (seen.has(label)) return all;
    seen.add(label);
    for (const d of direct(label)) {
      all.add(d);
      for (const x of belowOf(d, seen)) all.add(x);
    }
    below.set(label, all);
    return all;
  };
  const drawn = new Map(); // label → the dependencies an edge is drawn to
  for (const n of nodes) {
    depthOf(n.label, new Set());
    const ds = direct(n.label);
    drawn.set(n.label, ds.filter((d) => !ds.some((o) => o !== d && belowOf(o, new Set()).has(d))));
  }
  const columns = [];
  for (const n of nodes) {
    const d = depth.get(n.label) || 0;
    (columns[d] = columns[d] || []).push(n);
  }
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'edges');
  const grid = h('div', { class: 'graph-columns' },
    columns.map((col, i) => h('div', { class: 'graph-column', dataset: { depth: i } },
      (col || []).map(graphCard))));
  const box = h('div', { id: 'graph', class: 'graph' }, svg, grid);
  const draw = () => {
    if (!box.isConnected) return;
    const origin = box.getBoundingClientRect();
    svg.setAttribute('width', grid.scrollWidth + 2 * grid.offsetLeft);
    svg.setAttribute('height', box.clientHeight);
    svg.replaceChildren();
    const el = new Map([...box.querySelectorAll('.gnode')].map((e) => [e.dataset.node, e]));
    for (const n of nodes) {
      const to = el.get(n.label);
      for (const d of drawn.get(n.label) || []) {
        const from = el.get(d);
        if (!from || !to) continue;
        const a = from.getBoundingClientRect();
        const b = to.getBoundingClientRect();
        const x1 = a.right - origin.left + box.scrollLeft;
        const y1 = a.top + a.height / 2 - origin.top + box.scrollTop;
        const x2 = b.left - origin.left + box.scrollLeft;
        const y2 = b.top + b.height / 2 - origin.top + box.scrollTop;
        const mid = (x1 + x2) / 2;
        const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
        path.setAttribute('d', `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`);
        svg.append(path);
      }
    }
  };
  requestAnimationFrame(draw);
  return { box, draw };
}
