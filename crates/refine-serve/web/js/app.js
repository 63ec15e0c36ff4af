// The web view of `refine serve`: a page over the JSON API (docs/api.md), no build step and
// nothing fetched from elsewhere. Native ES modules; this one is the entry, the router. Routes
// live after `#`, so every view is a real URL:
//
//   #/builds                 builds.js: the builds, newest first (refreshed every 2 s)
//   #/builds/ID              build.js: one build, its header and its nodes, live from /v1/events
//                            (events.js applies an event to it, graph.js draws its graph)
//   #/artifacts/KIND/KEY     artifact.js: digests, key fields, layers, provenance, log, links
//   #/search/TEXT            search.js: labels holding TEXT, keys and digests starting with it
//
// Under the pages: view.js, the current view and what a failed request shows (for a 401, the
// token prompt); api.js, requests with the token (`Authorization: Bearer …`, kept in
// localStorage) and server-sent events; dom.js, elements and formatting. Everything the server
// sends is put in the page as text, never as HTML.

import { h } from './dom.js';
import { newView, mount, failed, renderTokenStatus, setRouter } from './view.js';
import { buildsView } from './builds.js';
import { buildView } from './build.js';
import { artifactView } from './artifact.js';
import { searchView } from './search.js';

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

document.getElementById('search-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const q = document.getElementById('search').value.trim();
  if (q) location.hash = '#/search/' + encodeURIComponent(q);
});
setRouter(route);
window.addEventListener('hashchange', route);
renderTokenStatus();
route();
