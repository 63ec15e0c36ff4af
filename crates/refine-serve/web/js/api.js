// The JSON API (docs/api.md) as the page speaks it: the bearer token (kept in localStorage),
// requests that throw ApiError with the server's `{"error": …}`, and server-sent events read
// with fetch() (EventSource cannot send the `Authorization` header). No DOM here.

const TOKEN_KEY = 'refine.token';

function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch (_) {
    return '';
  }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch (_) {
    // Storage refused (a private window): the token lasts for this page only.
  }
  memoryToken = token;
}

let memoryToken = '';
export const token = () => getToken() || memoryToken;

function authHeaders(extra) {
  const headers = Object.assign({}, extra || {});
  const t = token();
  if (t) headers.Authorization = 'Bearer ' + t;
  return headers;
}

/** The API answered with an error (`{"error": {message, help, …}}`). */
export class ApiError extends Error {
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
export async function api(path, options) {
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
export async function followEvents(path, onEvent, signal) {
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
