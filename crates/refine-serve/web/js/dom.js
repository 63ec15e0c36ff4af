// Building the page: `h` and `fill` for elements (what the server sends goes in as text, never
// as HTML), and the small pieces every view shows: digests, times, durations, sizes, a state's
// badge, a build's counts, a node's link to its artifact.

/** An element: `h('a', {href: '#/x', class: 'c'}, 'text', child, [more])`. */
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

const app = () => document.getElementById('app');

/** Replaces an element's children (nulls and falses left out, arrays flattened). */
export function fill(el, ...kids) {
  el.replaceChildren(...kids.flat(Infinity).filter((k) => k !== null && k !== undefined && k !== false)
    .map((k) => (k instanceof Node ? k : String(k))));
  return el;
}

function shortDigest(d) {
  if (!d) return '';
  const [algo, hex] = d.includes(':') ? d.split(':', 2) : ['', d];
  return (algo ? algo + ':' : '') + hex.slice(0, 12);
}

/** A digest or key, shortened, its full value in the title (and in `data-full`). */
export function mono(value, opts) {
  if (!value) return h('span', { class: 'muted' }, '—');
  const o = opts || {};
  return h('code', { class: 'digest', title: value, dataset: { full: value }, id: o.id }, o.full ? value : shortDigest(value));
}

export function seconds(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return '';
  if (s < 1) return Math.round(s * 1000) + ' ms';
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + ' s';
  const m = Math.floor(s / 60);
  const rest = Math.round(s - m * 60);
  if (m < 60) return m + ' min ' + String(rest).padStart(2, '0') + ' s';
  return Math.floor(m / 60) + ' h ' + String(m % 60).padStart(2, '0') + ' min';
}

export function bytes(n) {
  if (n === null || n === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return (u === 0 ? v : v.toFixed(1)) + ' ' + units[u];
}

/** A time as the reader's clock shows it; the full RFC 3339 value in the title. */
export function when(rfc3339) {
  if (!rfc3339) return h('span', { class: 'muted' }, '—');
  const d = new Date(rfc3339);
  const today = new Date().toDateString() === d.toDateString();
  const pad = (n) => String(n).padStart(2, '0');
  const time = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  const date = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
  return h('time', { datetime: rfc3339, title: rfc3339 }, today ? time : date + ' ' + time);
}

/** How long a build ran, or has been running. */
export function duration(build) {
  if (!build.started) return '';
  const end = build.finished ? new Date(build.finished) : new Date();
  return seconds((end - new Date(build.started)) / 1000);
}

export function badge(state, attrs) {
  return h('span', Object.assign({ class: 'badge state-' + state, dataset: { state } }, attrs || {}), state);
}

export function artifactHref(kind, key) {
  return '#/artifacts/' + encodeURIComponent(kind) + '/' + encodeURIComponent(key);
}

export function counts(summary) {
  if (!summary) return h('span', { class: 'muted' }, '—');
  const part = (n, what) => (n ? h('span', { class: 'count count-' + what }, n + ' ' + what) : null);
  const parts = [part(summary.built, 'built'), part(summary.cached, 'cached'), part(summary.failed, 'failed'), part(summary.skipped, 'skipped')].filter(Boolean);
  return parts.length ? h('span', { class: 'counts' }, parts) : h('span', { class: 'muted' }, 'nothing');
}

/** A node's label, linking to its artifact once there is one (built, or found cached). */
export function nodeLink(n) {
  return n.key && n.kind && (n.state === 'built' || n.state === 'cached')
    ? h('a', { href: artifactHref(n.kind, n.key), class: 'label' }, n.label)
    : h('span', { class: 'label' }, n.label);
}
