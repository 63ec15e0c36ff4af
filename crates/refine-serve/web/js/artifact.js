// #/artifacts/KIND/KEY: one artifact — its digests, where it is (remote store, wheel mirror),
// its log, key fields, layers and provenance, and the build that made it.

import { h, fill, mono, bytes } from './dom.js';
import { api } from './api.js';
import { view, mount, errorBox } from './view.js';

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

export async function artifactView(v, kind, key) {
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
