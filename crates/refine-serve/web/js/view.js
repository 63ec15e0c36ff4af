// The frame every view lives in: the current view (its requests, streams and timers aborted
// when the route changes), mounting it in <main id="app">, and what shows instead when a
// request fails: the error, or for a 401 the token prompt. The token's status in the header.

import { h, fill } from './dom.js';
import { token, setToken, ApiError } from './api.js';

/** Shows the view of the current route again (app.js sets it: the views cannot import it). */
let router = () => {};

export function setRouter(fn) {
  router = fn;
}

/** The current view: aborted (requests, streams, timers) when the route changes. */
export let view = { gen: 0, abort: new AbortController(), timers: [] };

export function newView() {
  view.abort.abort();
  for (const t of view.timers) clearInterval(t);
  view = { gen: view.gen + 1, abort: new AbortController(), timers: [] };
  return view;
}

export function every(ms, fn) {
  view.timers.push(setInterval(fn, ms));
}

export function mount(...kids) {
  const root = document.getElementById('app');
  fill(root, ...kids.flat());
}

/** Shows what a failed request means: the token prompt for 401, else the error. */
export function failed(err, v) {
  if (v !== view || (err && err.name === 'AbortError')) return;
  if (err instanceof ApiError && err.status === 401) {
    tokenPrompt(err);
    return;
  }
  mount(errorBox(err));
}

export function errorBox(err, id) {
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

export function renderTokenStatus() {
  const el = document.getElementById('token-status');
  if (!el) return;
  if (token()) {
    fill(el, h('span', { class: 'muted' }, 'token set'), ' ',
      h('a', { href: '#', id: 'token-forget', onclick: (e) => { e.preventDefault(); setToken(''); renderTokenStatus(); router(); } }, 'forget'));
  } else {
    fill(el, h('a', { href: '#', id: 'token-set', onclick: (e) => { e.preventDefault(); tokenPrompt(null); } }, 'set token'));
  }
}

export function tokenPrompt(err) {
  newView(); // No refresh of the page underneath may replace the prompt.
  const input = h('input', { id: 'token-input', type: 'password', autocomplete: 'current-password', placeholder: 'token', size: 40 });
  const form = h('form', {
    id: 'token-form',
    onsubmit: (e) => {
      e.preventDefault();
      const t = input.value.trim();
      if (t) {
        setToken(t);
        renderTokenStatus();
        router();
      }
    },
  }, input, ' ', h('button', { type: 'submit', id: 'token-save' }, 'Use this token'), ' ',
  h('a', { href: location.hash || '#/builds', onclick: (e) => { e.preventDefault(); router(); } }, 'cancel'));
  mount(h('section', { id: 'token-prompt', class: 'panel' },
    h('h1', {}, 'A token is needed'),
    err ? errorBox(err, 'token-error') : null,
    h('p', {}, 'This server answers with its bearer token (the file given with ', h('code', {}, '--token-file'),
      ', or ', h('code', {}, '<store>/serve/token'), '). It is kept in this browser\'s local storage and sent as ',
      h('code', {}, 'Authorization: Bearer …'), '.'),
    form));
  input.focus();
}
