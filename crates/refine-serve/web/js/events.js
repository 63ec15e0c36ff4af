// What one event of /v1/events does to a build held in the page: its state, its summary, and
// its nodes (by label; a node the page has not seen yet is added). No DOM here.

/** Applies one build event to the build `b` (its nodes by label); returns what changed. */
export function applyEvent(b, e) {
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
