// The web view of `refine serve`: a page over the JSON API (docs/api.md), no build step and
// nothing fetched from elsewhere. Routes live after `#`, so every view is a real URL:
//
//   #/builds                 the builds, newest first (refreshed every 2 s)
//   #/builds/ID              one build: its header and its nodes, live from /v1/events
//   #/artifacts/KIND/KEY     one artifact: digests, key fields, layers, provenance, log, links
//   #/search/TEXT            nodes whose label holds TEXT or whose key or digest starts with it
//
// A request answered 401 shows a token prompt; the token is kept in localStorage and sent as
// `Authorization: Bearer …`. Server-sent events are read with fetch() (EventSource cannot send
// that header). Everything the server sends is put in the page as text, never as HTML.

'use strict';

const TOKEN_KEY = 'refine.token';
const FINAL_BUILD = ['succeeded', 'failed', 'cancelled', 'interrupted'];
const NODE_STATES = ['waiting', 'running', 'built', 'cached', 'failed', 'skipped'];

// ---------------------------------------------------------------------------------------------
// Small helpers

/** An element: `h('a', {href: '#/x', class: 'c'}, 'text', child, [more])`. */
function h(tag, attrs, ...kids) {
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
function fill(el, ...kids) {
  el.replaceChildren(...kids.flat(Infinity).filter((k) => k !== null && k !== undefined && k !== false)
    .map((k) => (k instanceof Node ? k : String(k))));
  return el;
}

function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch (_) {
    return '';
  }
}

function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch (_) {
    // Storage refused (a private window): the token lasts for this page only.
  }
  memoryToken = token;
  renderTokenStatus();
}

let memoryToken = '';
const token = () => getToken() || memoryToken;

function authHeaders(extra) {
  const headers = Object.assign({}, extra || {});
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  return headers;
}

/** The API answered with an error (`{"error": {message, help, …}}`). */
class ApiError extends Error {
  constructor(status, error) {
    super((error && error.message) || 'HTTP ' + status);
    this.status = status;
    this.error = error || {};
  }
}

async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch (_) {
    // Not JSON: the status says it.
  }
  return new ApiError(res.status, body && body.error ? body.error : { message: res.status + ' ' + res.statusText });
}

/** A JSON (or, with `as: 'text'`, text) response of the API; throws ApiError. */
async function api(path, options) {
  const opts = options || {};
  const init = { method: opts.method || 'GET', headers: authHeaders(opts.headers), signal: opts.signal };
  if (opts.body !== undefined) {
    init.body = JSON.stringify(opts.body);
    init.headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(path, init);
  if (!res.ok) throw await errorOf(res);
  return opts.as === 'text' ? res.text() : res.json();
}

/**
 * Follows a server-sent event stream, calling `onEvent` with each `data:` as JSON. Resolves
 * when the server ends the stream; rejects with ApiError or the network's error.
 */
async function followEvents(path, onEvent, signal) {
  const res = await fetch(path, { headers: authHeaders({ Accept: 'text/event-stream' }), signal });
  if (!res.ok) throw await errorOf(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n')) >= 0) {
      let line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data.length) {
          const text = data.join('\n');
          data = [];
          let event = null;
          try {
            event = JSON.parse(text);
          } catch (_) {
            continue;
          }
          onEvent(event);
        }
        continue;
      }
      if (line.startsWith(':')) continue; // A keep-alive comment.
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let v = colon < 0 ? '' : line.slice(colon + 1);
      if (v.startsWith(' ')) v = v.slice(1);
      if (field === 'data') data.push(v);
    }
  }
}

function shortDigest(d) {
  if (!d) return '';
  const [algo, hex] = d.includes(':') ? d.split(':', 2) : ['', d];
  return (algo ? algo + ':' : '') + hex.slice(0, 12);
}

/** A digest or key, shortened, its full value in the title (and in `data-full`). */
function mono(value, opts) {
  if (!value) return h('span', { class: 'muted' }, '—');
  const o = opts || {};
  return h('code', { class: 'digest', title: value, dataset: { full: value }, id: o.id }, o.full ? value : shortDigest(value));
}

function seconds(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return '';
  if (s < 1) return Math.round(s * 1000) + ' ms';
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + ' s';
  const m = Math.floor(s / 60);
  const rest = Math.round(s - m * 60);
  if (m < 60) return m + ' min ' + String(rest).padStart(2, '0') + ' s';
  return Math.floor(m / 60) + ' h ' + String(m % 60).padStart(2, '0') + ' min';
}

function bytes(n) {
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
function when(rfc3339) {
  if (!rfc3339) return h('span', { class: 'muted' }, '—');
  const d = new Date(rfc3339);
  const today = new Date().toDateString() === d.toDateString();
  const pad = (n) => String(n).padStart(2, '0');
  const time = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  const date = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
  return h('time', { datetime: rfc3339, title: rfc3339 }, today ? time : date + ' ' + time);
}

/** How long a build ran, or has been running. */
function duration(build) {
  if (!build.started) return '';
  const end = build.finished ? new Date(build.finished) : new Date();
  return seconds((end - new Date(build.started)) / 1000);
}

function badge(state, attrs) {
  return h('span', Object.assign({ class: 'badge state-' + state, dataset: { state } }, attrs || {}), state);
}

function artifactHref(kind, key) {
  return '#/artifacts/' + encodeURIComponent(kind) + '/' + encodeURIComponent(key);
}

function errorBox(err, id) {
  let e;
  if (err instanceof ApiError) e = err.error;
  else if (err instanceof Error) e = { message: err.message };
  else e = (err && typeof err === 'object') ? err : { message: String(err) };
  return h('div', { class: 'error', id: id || 'error', role: 'alert' },
    h('strong', {}, e.message || 'Error'),
    e.help ? h('div', { class: 'help' }, e.help) : null,
    Array.isArray(e.labels) && e.labels.length
      ? h('ul', {}, e.labels.map((l) => h('li', {}, l.label || JSON.stringify(l))))
      : null);
}

// ---------------------------------------------------------------------------------------------
// Views and routing

/** The current view: aborted (requests, streams, timers) when the route changes. */
let view = { gen: 0, abort: new AbortController(), timers: [] };

function newView() {
  view.abort.abort();
  for (const t of view.timers) clearInterval(t);
  view = { gen: view.gen + 1, abort: new AbortController(), timers: [] };
  return view;
}

function every(ms, fn) {
  view.timers.push(setInterval(fn, ms));
}

function mount(...kids) {
  const root = app();
  fill(root, ...kids.flat());
}

/** Shows what a failed request means: the token prompt for 401, else the error. */
function failed(err, v) {
  if (v !== view || (err && err.name === 'AbortError')) return;
  if (err instanceof ApiError && err.status === 401) {
    tokenPrompt(err);
    return;
  }
  mount(errorBox(err));
}

function route() {
  const v = newView();
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, query] = hash.split('?', 2);
  const parts = path.split('/').filter((p) => p !== '').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch (_) {
      return p;
    }
  });
  document.body.dataset.route = parts[0] || 'builds';
  for (const a of document.querySelectorAll('#top nav a')) {
    a.classList.toggle('current', a.getAttribute('href') === '#/' + (parts[0] || 'builds'));
  }
  if (parts[0] !== 'search') document.getElementById('search').value = '';
  let run;
  if (parts.length === 0 || (parts[0] === 'builds' && parts.length === 1)) run = buildsView(v);
  else if (parts[0] === 'builds' && parts.length === 2) run = buildView(v, parts[1]);
  else if (parts[0] === 'artifacts' && parts.length === 3) run = artifactView(v, parts[1], parts[2]);
  else if (parts[0] === 'search') {
    const q = parts.slice(1).join('/') || new URLSearchParams(query || '').get('q') || '';
    run = searchView(v, q);
  } else {
    mount(h('div', { class: 'error', id: 'error' }, h('strong', {}, 'No such page: #/' + path),
      h('div', { class: 'help' }, h('a', { href: '#/builds' }, 'See the builds'))));
    return;
  }
  Promise.resolve(run).catch((err) => failed(err, v));
}

// ---------------------------------------------------------------------------------------------
// The token

function renderTokenStatus() {
  const el = document.getElementById('token-status');
  if (!el) return;
  if (token()) {
    fill(el, h('span', { class: 'muted' }, 'token set'), ' ',
      h('a', { href: '#', id: 'token-forget', onclick: (e) => { e.preventDefault(); setToken(''); route(); } }, 'forget'));
  } else {
    fill(el, h('a', { href: '#', id: 'token-set', onclick: (e) => { e.preventDefault(); tokenPrompt(null); } }, 'set token'));
  }
}

function tokenPrompt(err) {
  newView(); // No refresh of the page underneath may replace the prompt.
  const input = h('input', { id: 'token-input', type: 'password', autocomplete: 'current-password', placeholder: 'token', size: 40 });
  const form = h('form', {
    id: 'token-form',
    onsubmit: (e) => {
      e.preventDefault();
      const t = input.value.trim();
      if (t) {
        setToken(t);
        route();
      }
    },
  }, input, ' ', h('button', { type: 'submit', id: 'token-save' }, 'Use this token'), ' ',
  h('a', { href: location.hash || '#/builds', onclick: (e) => { e.preventDefault(); route(); } }, 'cancel'));
  mount(h('section', { id: 'token-prompt', class: 'panel' },
    h('h1', {}, 'A token is needed'),
    err ? errorBox(err, 'token-error') : null,
    h('p', {}, 'This server answers with its bearer token (the file given with ', h('code', {}, '--token-file'),
      ', or ', h('code', {}, '<store>/serve/token'), '). It is kept in this browser\'s local storage and sent as ',
      h('code', {}, 'Authorization: Bearer …'), '.'),
    form));
  input.focus();
}

// ---------------------------------------------------------------------------------------------
// #/builds

function counts(summary) {
  if (!summary) return h('span', { class: 'muted' }, '—');
  const part = (n, what) => (n ? h('span', { class: 'count count-' + what }, n + ' ' + what) : null);
  const parts = [part(summary.built, 'built'), part(summary.cached, 'cached'), part(summary.failed, 'failed'), part(summary.skipped, 'skipped')].filter(Boolean);
  return parts.length ? h('span', { class: 'counts' }, parts) : h('span', { class: 'muted' }, 'nothing');
}

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

async function buildsView(v) {
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

// ---------------------------------------------------------------------------------------------
// #/builds/ID

/** Applies one build event to the build `b` (its nodes by label); returns what changed. */
function applyEvent(b, e) {
  const byLabel = new Map(b.nodes.map((n) => [n.label, n]));
  const node = (label) => {
    let n = byLabel.get(label);
    if (!n) {
      n = { label, kind: e.kind || '', planned: '', state: 'waiting', key: null, digest: null, where: null, seconds: null, action_seconds: null, overhead_seconds: null, reason: null };
      b.nodes.push(n);
      byLabel.set(label, n);
    }
    return n;
  };
  switch (e.event) {
    case 'build-state':
      b.state = e.state;
      if (e.error) b.error = e.error;
      return { build: true };
    case 'build-start':
      return {};
    case 'plan':
      for (const p of e.nodes || []) {
        if (!byLabel.has(p.label)) {
          const n = node(p.label);
          n.kind = p.kind;
          n.planned = p.status;
          n.key = p.key;
        }
      }
      return { all: true };
    case 'cache-hit': {
      const n = node(e.label);
      Object.assign(n, { state: 'cached', key: e.key, digest: e.digest, where: e.where });
      return { label: e.label };
    }
    case 'action-start': {
      const n = node(e.label);
      Object.assign(n, { state: 'running', key: e.key || n.key });
      return { label: e.label };
    }
    case 'action-finish': {
      const n = node(e.label);
      Object.assign(n, {
        state: 'built', key: e.key, digest: e.digest, seconds: e.seconds,
        action_seconds: e.action_seconds, overhead_seconds: e.overhead_seconds,
      });
      return { label: e.label };
    }
    case 'action-fail': {
      const n = node(e.label);
      Object.assign(n, { state: 'failed', key: e.key || n.key, reason: e.reason });
      return { label: e.label };
    }
    case 'skipped': {
      const n = node(e.label);
      Object.assign(n, { state: 'skipped', reason: e.because });
      return { label: e.label };
    }
    case 'build-finish':
      b.summary = {
        built: e.built, cached: e.cached, failed: e.failed, skipped: e.skipped, seconds: e.seconds,
        critical_path: e.critical_path, critical_path_seconds: e.critical_path_seconds,
      };
      return { build: true };
    default:
      return {};
  }
}

/** A node's label, linking to its artifact once there is one (built, or found cached). */
function nodeLink(n) {
  return n.key && n.kind && (n.state === 'built' || n.state === 'cached')
    ? h('a', { href: artifactHref(n.kind, n.key), class: 'label' }, n.label)
    : h('span', { class: 'label' }, n.label);
}

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

function graphCard(n) {
  return h('div', { class: 'gnode state-' + n.state, dataset: { node: n.label, state: n.state }, title: n.label + ' — ' + n.state },
    nodeLink(n), h('span', { class: 'gkind' }, n.kind));
}

/**
 * A layered drawing of the graph: dependencies left, dependants right, one column per depth.
 * An edge implied through another dependency (a pack's base, when its other packs have the
 * same base) is left out of the drawing; the table lists every direct dependency.
 */
function graphView(nodes, deps) {
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

async function buildView(v, id) {
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

// ---------------------------------------------------------------------------------------------
// #/artifacts/KIND/KEY

function keyFieldsTable(fields) {
  const pairs = Array.isArray(fields) ? fields : Object.entries(fields || {});
  if (!pairs.length) return h('p', { class: 'muted' }, 'None recorded.');
  return h('table', { id: 'key-fields', class: 'list kv' },
    h('tbody', {}, pairs.map(([k, val]) => h('tr', { dataset: { field: k } },
      h('th', {}, k),
      h('td', {}, typeof val === 'string' && /^sha256:[0-9a-f]{64}$/.test(val) ? mono(val, { full: true }) : h('code', {}, typeof val === 'string' ? val : JSON.stringify(val)))))));
}

function linkRow(name, url, id) {
  return h('tr', {}, h('th', {}, name), h('td', {}, url ? h('a', { href: url, id, class: 'ext' }, url) : h('span', { class: 'muted' }, '—')));
}

function textRow(name, text, id) {
  return h('tr', {}, h('th', {}, name), h('td', {}, text ? h('code', { id }, text) : h('span', { class: 'muted' }, '—')));
}

async function artifactView(v, kind, key) {
  document.title = 'refine · ' + kind + ' ' + key.slice(0, 12);
  const a = await api('/v1/artifacts/' + encodeURIComponent(kind) + '/' + encodeURIComponent(key), { signal: v.abort.signal });
  if (v !== view) return;
  if (a.label) document.title = 'refine · ' + a.label;
  const reg = a.links && a.links.registry;
  const mirror = a.links && a.links.mirror;

  const logPre = h('pre', { id: 'log-text', class: 'log' }, a.log ? 'Loading the log…' : '');
  const logSection = h('section', { id: 'log', class: 'panel' },
    h('h2', {}, 'Log'),
    a.log
      ? [h('p', {}, h('a', { href: a.log.url, id: 'log-raw' }, 'Raw log'), ' ', h('span', { class: 'muted' }, '(text/plain) · '), mono(a.log.digest)), logPre]
      : h('p', { class: 'muted' }, 'No log: this artifact ran no action.'));

  const found = h('span', { id: 'artifact-builds', class: 'muted' });

  mount(
    h('section', { id: 'artifact', class: 'panel', dataset: { kind: a.kind, key: a.key } },
      h('div', { class: 'title-row' },
        h('h1', { id: 'artifact-label' }, a.label || a.kind + ' ' + a.key.slice(0, 12)),
        h('span', { class: 'kind' }, a.kind),
        a.push_pending ? h('span', { class: 'badge state-queued', id: 'push-pending', title: 'In the outbox: the next successful build pushes it to the remote store' }, 'push pending') : null,
        found),
      h('table', { class: 'list kv', id: 'artifact-facts' }, h('tbody', {},
        h('tr', {}, h('th', {}, 'Kind'), h('td', {}, a.kind)),
        h('tr', {}, h('th', {}, 'Key'), h('td', {}, mono(a.key, { full: true, id: 'artifact-key' }))),
        h('tr', {}, h('th', {}, 'Manifest'), h('td', {}, mono(a.manifest, { full: true, id: 'manifest' }))),
        h('tr', {}, h('th', {}, 'Content'), h('td', {}, mono(a.content, { full: true, id: 'content' }))),
        h('tr', {}, h('th', {}, 'Size'), h('td', { id: 'size', title: a.size + ' bytes' }, bytes(a.size)))))),
    h('section', { class: 'panel', id: 'links' },
      h('h2', {}, 'Where it is'),
      reg
        ? h('table', { class: 'list kv', id: 'registry-links' }, h('tbody', {},
          textRow('Tag', reg.tag, 'registry-tag'),
          textRow('By digest', reg.by_digest, 'registry-by-digest'),
          linkRow('Manifest', reg.manifest_url, 'registry-manifest'),
          linkRow('Referrers', reg.referrers_url, 'registry-referrers')))
        : h('p', { class: 'muted', id: 'no-registry' }, 'No remote store is configured: the artifact is in this server\'s local store only.'),
      mirror
        ? [h('h3', {}, 'Wheel mirror ', h('code', {}, mirror.mirror)),
          h('table', { class: 'list kv', id: 'mirror-links' }, h('tbody', {},
            linkRow('Index', mirror.index, 'mirror-index'),
            linkRow('Project page', mirror.project_page, 'mirror-project'),
            (mirror.wheels || []).map((w) => h('tr', { dataset: { wheel: w.file } },
              h('th', {}, w.mirrored ? 'Wheel' : 'Wheel (not mirrored yet)'),
              h('td', {}, h('a', { href: w.url, class: 'ext' }, w.file))))))]
        : null),
    logSection,
    h('section', { class: 'panel' }, h('h2', {}, 'Key fields'), keyFieldsTable(a.key_fields)),
    h('section', { class: 'panel' }, h('h2', {}, 'Layers'),
      a.layers && a.layers.length
        ? h('table', { class: 'list', id: 'layers' },
          h('thead', {}, h('tr', {}, ['Title', 'Media type', 'Digest', 'Size'].map((t) => h('th', {}, t)))),
          h('tbody', {}, a.layers.map((l) => h('tr', {},
            h('td', {}, l.title || h('span', { class: 'muted' }, '—')),
            h('td', {}, h('code', {}, l.media_type)),
            h('td', {}, mono(l.digest)),
            h('td', { class: 'num', title: l.size + ' bytes' }, bytes(l.size))))))
        : h('p', { class: 'muted' }, 'No layers.')),
    h('section', { class: 'panel', id: 'provenance-section' }, h('h2', {}, 'Provenance'),
      a.provenance
        ? h('details', { id: 'provenance' },
          h('summary', {}, 'in-toto statement (SLSA provenance v1) · record ', mono(a.provenance.digest)),
          h('pre', { class: 'json' }, JSON.stringify(a.provenance.statement, null, 2)))
        : h('p', { class: 'muted' }, 'No provenance recorded.')));

  // Which build made it (the newest that has it).
  api('/v1/search?q=' + encodeURIComponent(a.key), { signal: v.abort.signal }).then((r) => {
    if (v !== view) return;
    const hit = (r.results || []).find((x) => x.node.key === a.key);
    if (hit) fill(found, 'in ', h('a', { href: '#/builds/' + hit.build, id: 'artifact-build' }, 'build #' + hit.build));
  }).catch(() => {});

  if (a.log) {
    try {
      const text = await api(a.log.url, { as: 'text', signal: v.abort.signal });
      if (v !== view) return;
      logPre.textContent = text;
    } catch (err) {
      if (v !== view || err.name === 'AbortError') return;
      logPre.replaceWith(errorBox(err, 'log-error'));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// #/search/TEXT

async function searchView(v, q) {
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

// ---------------------------------------------------------------------------------------------
// Start

document.getElementById('search-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const q = document.getElementById('search').value.trim();
  if (q) location.hash = '#/search/' + encodeURIComponent(q);
});
window.addEventListener('hashchange', route);
renderTokenStatus();
route();
