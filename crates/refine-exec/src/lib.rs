//! The executor: evaluates a request's graph in parallel on a rayon pool, skipping every node
//! whose key is in the store, running every other one in the sandbox, and storing each
//! artifact with its provenance.
//!
//! The plan unfolds as the build goes: a node's key is computed once all its dependencies
//! have artifacts (their content digests are part of it), then looked up; a hit costs
//! nothing, a miss runs the action. An action that exits 0 without its outputs is a failure,
//! never a cache entry. A failure stops the build (running actions are cancelled) unless
//! `keep_going`, which builds everything not downstream of a failure. Cancellation (Ctrl-C)
//! kills every sandbox and leaves the store consistent: artifacts enter it atomically.

pub mod action;
mod bootstrap;
pub mod events;
pub mod provenance;
mod replay;
mod run;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

pub use refine_plan::scripts;
pub use refine_store::remote;

use refine_digest as source;
use refine_fetch::{self as fetch, image};
use refine_plan::{self as plan, key};
use refine_rules::{graph, rules};
use refine_store as store;

use crate::graph::{TargetGraph, TargetId};
use crate::key::{Key, MissingInput, key_fields};
use crate::plan::{WorkspaceInputs, content_digest};
use crate::store::{Digest, LocalStore, StoreError};

pub use action::Built;
pub use events::{Event, Observer, PlanEntry, Quiet};
pub use remote::{Remote, RemoteError};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ExecError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error("Cannot use `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Source `{name}` ({digest}) is not in the store")]
    #[diagnostic(help("Run `refine fetch` for the target, or `refine fetch --import FILE`"))]
    MissingSource { digest: String, name: String },
    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error("`{path}` changed during the build")]
    #[diagnostic(help(
        "Its old digest is in this target's key, so nothing is stored under it: run the build again"
    ))]
    ChangedDuringBuild { path: String },
    #[error("Cannot start the build's thread pool: {0}")]
    Pool(String),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Remote(#[from] RemoteError),
}

impl From<refine_digest::DigestError> for ExecError {
    fn from(err: refine_digest::DigestError) -> Self {
        ExecError::Store(err.into())
    }
}

impl ExecError {
    pub fn io(path: &Path, source: std::io::Error) -> ExecError {
        ExecError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

#[derive(Clone)]
pub struct BuildOptions {
    /// Actions run at once.
    pub jobs: usize,
    /// Compile jobs one action may run (`REFINE_JOBS`, `make -j`): like Nix's `--cores`, every
    /// action gets all cores by default, because most builds are one long action at a time.
    pub cores: usize,
    pub keep_going: bool,
    /// Set (by a signal handler) to stop the build: running sandboxes are killed.
    pub cancel: Arc<AtomicBool>,
    /// The helper executable for sandboxes (default: this executable).
    pub sandbox_helper: Option<PathBuf>,
    /// A shared cache behind the local store.
    pub remote: Option<Arc<dyn Remote>>,
    /// Keep each sandboxed action's folder here, with a `replay.sh` that re-runs the action
    /// by hand (like Bazel's `--sandbox_debug`).
    pub sandbox_debug: Option<PathBuf>,
}

fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            jobs: available_cores(),
            cores: available_cores(),
            keep_going: false,
            cancel: Arc::new(AtomicBool::new(false)),
            sandbox_helper: None,
            sandbox_debug: None,
            remote: None,
        }
    }
}

/// What happened to one node.
#[derive(Clone, Debug)]
pub enum NodeResult {
    Cached(Built),
    Built {
        built: Built,
        seconds: f64,
        start: f64,
        worker: usize,
    },
    Failed {
        reason: String,
        log: Option<PathBuf>,
    },
    Skipped {
        because: String,
    },
}

#[derive(Debug)]
pub struct BuildReport {
    pub results: HashMap<TargetId, NodeResult>,
    pub seconds: f64,
    pub critical_path: Vec<TargetId>,
    pub critical_path_seconds: f64,
    pub interrupted: bool,
}

impl BuildReport {
    pub fn success(&self) -> bool {
        !self.interrupted
            && self
                .results
                .values()
                .all(|r| matches!(r, NodeResult::Cached(_) | NodeResult::Built { .. }))
    }

    pub fn count(&self, f: impl Fn(&NodeResult) -> bool) -> usize {
        self.results.values().filter(|r| f(r)).count()
    }
}

/// A finished action, sent from a worker to the build loop.
struct Done {
    id: TargetId,
    result: run::ActionResult,
}

/// Builds `roots` and everything they depend on.
pub fn build(
    graph: &TargetGraph,
    roots: &[TargetId],
    store: &LocalStore,
    opts: &BuildOptions,
    observer: &dyn Observer,
) -> Result<BuildReport, ExecError> {
    let started = Instant::now();
    // Held for the whole build: `refine store gc` waits rather than delete what we use.
    let _lease = store.lease()?;
    let mut member = vec![false; graph.len()];
    for &r in roots {
        member[r] = true;
    }
    let member = graph.deps_closure(&member);
    let nodes: Vec<TargetId> = (0..graph.len()).filter(|&i| member[i]).collect();

    observer.event(&Event::BuildStart {
        targets: roots
            .iter()
            .map(|&r| graph.target(r).label.to_string())
            .collect(),
        jobs: opts.jobs,
        store: store.root().display().to_string(),
    });
    let plan =
        crate::plan::plan(graph, roots, store, opts.remote.as_deref()).map_err(|e| match e {
            crate::plan::PlanError::Store(s) => ExecError::Store(s),
            crate::plan::PlanError::Remote(r) => ExecError::Remote(r),
            crate::plan::PlanError::Input {
                label,
                path,
                reason,
            } => ExecError::io(
                Path::new(&path),
                std::io::Error::other(format!("{label}: {reason}")),
            ),
        })?;
    let mut planned: HashMap<TargetId, Built> = plan
        .nodes
        .iter()
        .filter_map(|n| match (&n.digest, &n.content, n.key) {
            (Some(d), Some(c), Some(k)) => Some((
                n.id,
                Built {
                    digest: *d,
                    content: c.clone(),
                    remote: n.remote,
                    key: Some(k.hex()),
                },
            )),
            _ => None,
        })
        .collect();
    observer.event(&Event::Plan {
        nodes: plan
            .nodes
            .iter()
            .map(|n| PlanEntry {
                label: graph.target(n.id).label.to_string(),
                kind: graph.target(n.id).kind().to_string(),
                status: n.status.to_string(),
                key: n.key.map(|k| k.hex()),
            })
            .collect(),
    });

    let mut waiting: HashMap<TargetId, usize> =
        nodes.iter().map(|&id| (id, graph.deps(id).len())).collect();
    let mut ready: Vec<TargetId> = nodes
        .iter()
        .copied()
        .filter(|id| waiting[id] == 0)
        .collect();
    ready.sort_by(|a, b| graph.target(*b).label.cmp(&graph.target(*a).label));
    let mut results: HashMap<TargetId, NodeResult> = HashMap::new();
    let mut inputs = WorkspaceInputs::new(&graph.workspace.root);
    let mut built: HashMap<TargetId, Built> = HashMap::new();
    let cancellers: Arc<Mutex<HashMap<TargetId, refine_sandbox::Canceller>>> = Arc::default();
    let mut stopping = false;
    let mut running = 0usize;
    let (tx, rx) = mpsc::channel::<Done>();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .thread_name(|i| format!("refine-action-{i}"))
        .build()
        .map_err(|e| ExecError::Pool(e.to_string()))?;
    let sandbox = match &opts.sandbox_helper {
        Some(h) => refine_sandbox::Sandbox::with_helper(h),
        None => refine_sandbox::Sandbox::new(),
    };
    let fetch_lock = Mutex::new(());
    let stop_flag = AtomicBool::new(false);
    let stop_all = |cancellers: &Mutex<HashMap<TargetId, refine_sandbox::Canceller>>| {
        stop_flag.store(true, Ordering::SeqCst);
        for c in cancellers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            c.cancel();
        }
    };

    pool.in_place_scope(|scope| {
        loop {
            if opts.cancel.load(Ordering::SeqCst) && !stopping {
                stopping = true;
                stop_all(&cancellers);
            }
            while let Some(id) = ready.pop() {
                let target = graph.target(id);
                let label = target.label.to_string();
                if stopping {
                    results.insert(
                        id,
                        NodeResult::Skipped {
                            because: "the build stopped".into(),
                        },
                    );
                    observer.event(&Event::Skipped {
                        label,
                        because: "the build stopped".into(),
                    });
                    continue;
                }
                let fields = match key_fields(graph, id, &inputs) {
                    Ok(f) => f,
                    Err(MissingInput::Dependency(d)) => {
                        let because = format!("`{}` has no artifact", graph.target(d).label);
                        observer.event(&Event::Skipped {
                            label,
                            because: because.clone(),
                        });
                        results.insert(id, NodeResult::Skipped { because });
                        continue;
                    }
                    Err(MissingInput::File { path, reason }) => {
                        let reason = format!("cannot read `{path}`: {reason}");
                        observer.event(&Event::ActionFail {
                            label,
                            kind: target.kind().to_string(),
                            key: None,
                            reason: reason.clone(),
                            log: None,
                        });
                        results.insert(id, NodeResult::Failed { reason, log: None });
                        stopping |= !opts.keep_going;
                        continue;
                    }
                };
                let key = fields.key();
                // The plan already looked up what was cached when the build began.
                let planned = planned
                    .remove(&id)
                    .filter(|b| b.key.as_deref() == Some(key.hex().as_str()));
                let found = match planned {
                    Some(b) => Ok(Some(b)),
                    None => lookup(store, opts.remote.as_deref(), target.kind().as_str(), &key),
                };
                match found {
                    Ok(Some(b)) => {
                        observer.event(&Event::CacheHit {
                            label,
                            kind: target.kind().to_string(),
                            key: key.hex(),
                            digest: b.digest.to_string(),
                        });
                        inputs.contents.insert(id, b.content.clone());
                        built.insert(id, b.clone());
                        results.insert(id, NodeResult::Cached(b));
                        release(graph, id, &member, &mut waiting, &mut ready);
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let reason = e.to_string();
                        observer.event(&Event::ActionFail {
                            label,
                            kind: target.kind().to_string(),
                            key: Some(key.hex()),
                            reason: reason.clone(),
                            log: None,
                        });
                        results.insert(id, NodeResult::Failed { reason, log: None });
                        stopping |= !opts.keep_going;
                        continue;
                    }
                }
                running += 1;
                let tx = tx.clone();
                // Everything upstream, not only direct dependencies: a wheel's action mounts
                // its runtime's base, a repair its wheel's packs.
                let mut upstream = vec![false; graph.len()];
                upstream[id] = true;
                let upstream = graph.deps_closure(&upstream);
                let snapshot: HashMap<TargetId, Built> = built
                    .iter()
                    .filter(|(d, _)| upstream[**d])
                    .map(|(d, b)| (*d, b.clone()))
                    .collect();
                let cancellers = cancellers.clone();
                let sandbox = &sandbox;
                let fetch_lock = &fetch_lock;
                let stop = &stop_flag;
                let jobs = opts.cores;
                let remote = opts.remote.as_deref();
                let sandbox_debug = opts.sandbox_debug.as_deref();
                scope.spawn(move |_| {
                    let worker = rayon::current_thread_index().unwrap_or(0);
                    let job = run::Job {
                        graph,
                        store,
                        id,
                        key,
                        fields: &fields,
                        deps: &snapshot,
                        sandbox,
                        cancellers: &cancellers,
                        worker,
                        fetch_lock,
                        jobs,
                        stop,
                        remote,
                        sandbox_debug,
                    };
                    // A panic in an action must not leave the loop waiting for it forever.
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run::run(&job, observer)
                    }))
                    .unwrap_or_else(|_| {
                        Err((
                            "internal error: the action panicked (a bug in refine)".into(),
                            None,
                        ))
                    });
                    let _ = tx.send(Done { id, result });
                });
            }
            if running == 0 {
                break;
            }
            // Wake up now and then to notice a cancellation request.
            let Ok(done) = rx.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            running -= 1;
            let target = graph.target(done.id);
            match done.result {
                Ok((b, seconds, start, worker)) => {
                    inputs.contents.insert(done.id, b.content.clone());
                    built.insert(done.id, b.clone());
                    results.insert(
                        done.id,
                        NodeResult::Built {
                            built: b,
                            seconds,
                            start,
                            worker,
                        },
                    );
                    release(graph, done.id, &member, &mut waiting, &mut ready);
                }
                Err((reason, log)) => {
                    observer.event(&Event::ActionFail {
                        label: target.label.to_string(),
                        kind: target.kind().to_string(),
                        key: None,
                        reason: reason.clone(),
                        log: log.as_ref().map(|l| l.display().to_string()),
                    });
                    results.insert(done.id, NodeResult::Failed { reason, log });
                    if !opts.keep_going && !stopping {
                        stopping = true;
                        stop_all(&cancellers);
                    }
                }
            }
        }
    });

    // Whatever never became ready sits downstream of a failure (or of a stop).
    for &id in &nodes {
        if !results.contains_key(&id) {
            let because = graph
                .deps(id)
                .iter()
                .find(|d| {
                    matches!(
                        results.get(d),
                        Some(NodeResult::Failed { .. } | NodeResult::Skipped { .. })
                    ) || !results.contains_key(d)
                })
                .map(|d| format!("`{}` did not build", graph.target(*d).label))
                .unwrap_or_else(|| "the build stopped".into());
            observer.event(&Event::Skipped {
                label: graph.target(id).label.to_string(),
                because: because.clone(),
            });
            results.insert(id, NodeResult::Skipped { because });
        }
    }

    let (critical_path, critical_path_seconds) = critical_path(graph, &nodes, &results);
    let report = BuildReport {
        results,
        seconds: started.elapsed().as_secs_f64(),
        critical_path,
        critical_path_seconds,
        interrupted: opts.cancel.load(Ordering::SeqCst),
    };
    observer.event(&Event::BuildFinish {
        success: report.success(),
        built: report.count(|r| matches!(r, NodeResult::Built { .. })),
        cached: report.count(|r| matches!(r, NodeResult::Cached(_))),
        failed: report.count(|r| matches!(r, NodeResult::Failed { .. })),
        skipped: report.count(|r| matches!(r, NodeResult::Skipped { .. })),
        seconds: report.seconds,
        critical_path: report
            .critical_path
            .iter()
            .map(|&i| graph.target(i).label.to_string())
            .collect(),
        critical_path_seconds: report.critical_path_seconds,
    });
    Ok(report)
}

/// Looks a key up locally, then remotely; a remote hit is not pulled yet.
fn lookup(
    store: &LocalStore,
    remote: Option<&dyn Remote>,
    kind: &str,
    key: &Key,
) -> Result<Option<Built>, ExecError> {
    if let Some(digest) = store.lookup(kind, &key.hex())? {
        let manifest = store.read_manifest(&digest)?;
        return Ok(Some(Built {
            content: content_digest(&manifest),
            digest,
            remote: false,
            key: Some(key.hex()),
        }));
    }
    let Some(remote) = remote else {
        return Ok(None);
    };
    Ok(remote
        .lookup(kind, &key.hex())?
        .map(|(digest, manifest)| Built {
            content: content_digest(&manifest),
            digest,
            remote: true,
            key: Some(key.hex()),
        }))
}

/// A node is done: each dependent that waited only on it becomes ready.
fn release(
    graph: &TargetGraph,
    id: TargetId,
    member: &[bool],
    waiting: &mut HashMap<TargetId, usize>,
    ready: &mut Vec<TargetId>,
) {
    for dep in graph.dependents(id) {
        if !member[dep] {
            continue;
        }
        // A dependency listed twice counts twice in `waiting`.
        let times = graph.deps(dep).iter().filter(|&&d| d == id).count();
        if let Some(w) = waiting.get_mut(&dep) {
            *w = w.saturating_sub(times);
            if *w == 0 {
                ready.push(dep);
            }
        }
    }
}

/// The chain of dependent actions with the longest total action time.
fn critical_path(
    graph: &TargetGraph,
    nodes: &[TargetId],
    results: &HashMap<TargetId, NodeResult>,
) -> (Vec<TargetId>, f64) {
    let secs = |id: &TargetId| match results.get(id) {
        Some(NodeResult::Built { seconds, .. }) => *seconds,
        _ => 0.0,
    };
    let mut best: HashMap<TargetId, (f64, Option<TargetId>)> = HashMap::new();
    let order = graph.topo_order();
    let member: std::collections::HashSet<TargetId> = nodes.iter().copied().collect();
    for id in order.into_iter().filter(|i| member.contains(i)) {
        let prev = graph
            .deps(id)
            .iter()
            .filter_map(|d| best.get(d).map(|(s, _)| (*s, *d)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let total = secs(&id) + prev.map(|p| p.0).unwrap_or(0.0);
        best.insert(id, (total, prev.map(|p| p.1)));
    }
    let Some((&end, &(total, _))) = best.iter().max_by(|a, b| a.1.0.total_cmp(&b.1.0)) else {
        return (Vec::new(), 0.0);
    };
    let mut path = vec![end];
    let mut at = end;
    while let Some(&(_, Some(prev))) = best.get(&at) {
        path.push(prev);
        at = prev;
    }
    path.reverse();
    (path, total)
}

/// Digest of the artifact a successful node produced.
pub fn artifact_of(report: &BuildReport, id: TargetId) -> Option<&Digest> {
    match report.results.get(&id)? {
        NodeResult::Cached(b) | NodeResult::Built { built: b, .. } => Some(&b.digest),
        _ => None,
    }
}
