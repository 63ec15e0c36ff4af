//! The build loop: one thread drives the [`Scheduler`] and blocks on one channel, which
//! carries finished actions (from worker threads) and cancellation (from [`Cancel`]); it
//! wakes only when one of them arrives.
//!
//! A node handed out by the scheduler is admitted here: its key is computed (its
//! dependencies' content digests are part of it) and looked up, locally then remotely; a hit
//! finishes it at once, a miss starts its action on a worker thread, at most `jobs` at once.
//!
//! [`Cancel`]: crate::Cancel

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::Scope;
use std::time::Instant;

use refine_plan::WorkspaceInputs;
use refine_plan::key::{Key, KeyFields, MissingInput, key_fields};
use refine_rules::graph::{TargetGraph, TargetId};
use refine_sandbox::{Canceller, Sandbox};
use refine_store::LocalStore;
use refine_store::remote::Remote;

use crate::error::{ActionError, ExecError};
use crate::events::{Event, Location, Observer, PlanEntry};
use crate::options::BuildOptions;
use crate::report::{ActionOutcome, BuildReport, Built, NodeFailure, NodeResult};
use crate::run::{self, Job};
use crate::scheduler::{self, NodeSpec, Outcome, Scheduler, Unstarted};
use crate::scratch::Scratches;

/// What the loop sends itself.
enum Msg {
    /// An action finished, in worker slot `slot`.
    Done {
        id: TargetId,
        slot: usize,
        result: Result<ActionOutcome, NodeFailure>,
    },
    /// The build was cancelled.
    Cancel,
}

/// What the loop and the worker threads share.
struct Shared<'e> {
    graph: &'e TargetGraph,
    store: &'e LocalStore,
    opts: &'e BuildOptions,
    observer: &'e dyn Observer,
    sandbox: Sandbox,
    cancellers: Mutex<HashMap<TargetId, Canceller>>,
    fetch_lock: Mutex<()>,
    /// Set when the build stops, before the running sandboxes are killed.
    stop: AtomicBool,
    /// Each worker slot's folder, kept from one action to the next.
    scratches: Scratches,
}

impl Shared<'_> {
    /// Kills every running sandbox; actions that start later see `stop` and end at once.
    fn stop_all(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let cancellers = self
            .cancellers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for c in cancellers.values() {
            c.cancel();
        }
    }
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
    observer.event(&Event::BuildStart {
        targets: roots
            .iter()
            .map(|&r| graph.target(r).label.to_string())
            .collect(),
        jobs: opts.jobs,
        store: store.root().display().to_string(),
    });
    let planned = plan(graph, roots, store, opts.remote.as_deref(), observer)?;
    let shared = Shared {
        graph,
        store,
        opts,
        observer,
        sandbox: match &opts.sandbox_helper {
            Some(h) => Sandbox::with_helper(h),
            None => Sandbox::new(),
        },
        cancellers: Mutex::default(),
        fetch_lock: Mutex::new(()),
        stop: AtomicBool::new(false),
        scratches: Scratches::new(opts.jobs),
    };
    let mut drive = Drive::new(&shared, &member, planned);
    std::thread::scope(|scope| drive.run(scope));
    Ok(drive.report(started))
}

/// Plans the build (announced as an event) and returns the artifacts it found already.
fn plan(
    graph: &TargetGraph,
    roots: &[TargetId],
    store: &LocalStore,
    remote: Option<&dyn Remote>,
    observer: &dyn Observer,
) -> Result<HashMap<TargetId, Built>, ExecError> {
    let plan = refine_plan::plan(graph, roots, store, remote)?;
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
    Ok(plan
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
        .collect())
}

/// The loop's state.
struct Drive<'e> {
    shared: &'e Shared<'e>,
    graph: &'e TargetGraph,
    nodes: Vec<NodeSpec>,
    sched: Scheduler,
    /// What the plan found cached when the build began, by node.
    planned: HashMap<TargetId, Built>,
    /// The nodes that took the plan's artifact.
    as_planned: HashSet<TargetId>,
    /// The keys of the nodes queued for a worker.
    pending: HashMap<TargetId, (Key, KeyFields)>,
    inputs: WorkspaceInputs<'e>,
    built: HashMap<TargetId, Built>,
    results: HashMap<TargetId, NodeResult>,
    /// Worker slots not in use (the profile draws one line per slot).
    free_slots: Vec<usize>,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
}

impl<'e> Drive<'e> {
    fn new(shared: &'e Shared<'e>, member: &[bool], planned: HashMap<TargetId, Built>) -> Self {
        let graph = shared.graph;
        let mut ids: Vec<TargetId> = (0..graph.len()).filter(|&i| member[i]).collect();
        // Ties between equally long chains go to the first label.
        ids.sort_by(|a, b| graph.target(*a).label.cmp(&graph.target(*b).label));
        // The critical path counts the actions to run: what the plan found costs nothing.
        let nodes: Vec<NodeSpec> = ids
            .iter()
            .map(|&id| NodeSpec {
                id,
                deps: graph.deps(id).to_vec(),
                cost: u64::from(!planned.contains_key(&id)),
            })
            .collect();
        let (tx, rx) = channel();
        Drive {
            shared,
            graph,
            sched: Scheduler::new(nodes.clone(), shared.opts.keep_going),
            nodes,
            planned,
            as_planned: HashSet::new(),
            pending: HashMap::new(),
            inputs: WorkspaceInputs::new(&graph.workspace.root),
            built: HashMap::new(),
            results: HashMap::new(),
            free_slots: (0..shared.opts.jobs.max(1)).rev().collect(),
            tx,
            rx,
        }
    }

    fn run<'s>(&mut self, scope: &'s Scope<'s, 'e>) {
        let tx = self.tx.clone();
        let _wake = self.shared.opts.cancel.on_cancel(move || {
            let _ = tx.send(Msg::Cancel);
        });
        if self.shared.opts.cancel.is_cancelled() {
            self.stop();
        }
        loop {
            self.launch(scope);
            if self.sched.is_finished() {
                break;
            }
            // The loop holds a sender: `recv` fails only if that is gone, which it is not.
            let Ok(msg) = self.rx.recv() else { break };
            match msg {
                Msg::Done { id, slot, result } => {
                    self.free_slots.push(slot);
                    match result {
                        Ok(outcome) => self.built_now(id, outcome),
                        // Killed because the build stopped: not a failure of its own.
                        Err(failure) if matches!(*failure.error, ActionError::Cancelled) => {
                            let because = if self.shared.opts.cancel.is_cancelled() {
                                "the build was cancelled while it ran"
                            } else {
                                "the build stopped while it ran (another action failed)"
                            };
                            self.skip(id, because.to_string());
                            self.sched.finish(id, Outcome::Skipped);
                        }
                        Err(failure) => self.fail(id, None, failure),
                    }
                }
                Msg::Cancel => self.stop(),
            }
        }
    }

    /// Hands out every ready node (cached ones finish at once, the others queue for a
    /// worker), then launches queued ones while a worker slot is free. Keys are computed as
    /// soon as a node is ready, not when it gets a worker: an input edited meanwhile is
    /// caught against that key when the action stages it.
    fn launch<'s>(&mut self, scope: &'s Scope<'s, 'e>) {
        while let Some(id) = self.sched.start_next() {
            if let Some(pending) = self.admit(id) {
                self.pending.insert(id, pending);
                self.sched.queue(id);
            }
        }
        while !self.free_slots.is_empty() {
            let Some(id) = self.sched.launch_next() else {
                return;
            };
            match self.pending.remove(&id) {
                Some((key, fields)) => self.spawn(scope, id, key, fields),
                None => self.internal_error(id, "a node was launched without its key"),
            }
        }
    }

    /// Computes the node's key and looks it up; the key and its fields when the action must
    /// run, `None` when the node is already settled (cached, failed or skipped).
    fn admit(&mut self, id: TargetId) -> Option<(Key, KeyFields)> {
        // While every dependency holds the artifact the plan saw, the node's key is the one
        // the plan computed: its planned artifact stands without computing the key again.
        if self.planned.contains_key(&id)
            && self
                .graph
                .deps(id)
                .iter()
                .all(|d| self.as_planned.contains(d))
            && let Some(b) = self.planned.remove(&id)
        {
            let key = b.key.clone().unwrap_or_default();
            self.as_planned.insert(id);
            self.hit(id, key, b);
            return None;
        }
        let fields = match key_fields(self.graph, id, &self.inputs) {
            Ok(f) => f,
            Err(MissingInput::Dependency(d)) => {
                let because = format!("`{}` has no artifact", self.graph.target(d).label);
                self.skip(id, because);
                self.sched.finish(id, Outcome::Skipped);
                return None;
            }
            Err(MissingInput::File { path, reason }) => {
                let failure = NodeFailure::new(ActionError::Input { path, reason });
                self.fail(id, None, failure);
                return None;
            }
        };
        let key = fields.key();
        match self.lookup(id, &key) {
            Ok(Some(b)) => {
                self.hit(id, key.hex(), b);
                None
            }
            Ok(None) => Some((key, fields)),
            Err(e) => {
                self.fail(id, Some(key.hex()), NodeFailure::new(e));
                None
            }
        }
    }

    /// The plan's artifact for the node if its key is still the same, else a look-up:
    /// locally, then remotely (a remote hit is not pulled yet).
    fn lookup(&mut self, id: TargetId, key: &Key) -> Result<Option<Built>, ActionError> {
        let hex = key.hex();
        if let Some(b) = self.planned.remove(&id)
            && b.key.as_deref() == Some(hex.as_str())
        {
            self.as_planned.insert(id);
            return Ok(Some(b));
        }
        let store = self.shared.store;
        let kind = self.graph.target(id).kind();
        if let Some(found) = store.lookup_artifact(kind, &hex)? {
            return Ok(Some(Built {
                content: found.content.to_string(),
                digest: found.manifest,
                remote: false,
                key: Some(hex),
            }));
        }
        let Some(remote) = self.shared.opts.remote.as_deref() else {
            return Ok(None);
        };
        Ok(remote
            .lookup(kind.as_str(), &hex)?
            .map(|(digest, manifest)| Built {
                content: manifest.content_digest().to_string(),
                digest,
                remote: true,
                key: Some(hex),
            }))
    }

    /// Starts the node's action on a worker thread, which reports on the channel.
    fn spawn<'s>(&mut self, scope: &'s Scope<'s, 'e>, id: TargetId, key: Key, fields: KeyFields) {
        let Some(slot) = self.free_slots.pop() else {
            return self.internal_error(id, "a node was launched without a free worker");
        };
        let deps = self.upstream_artifacts(id);
        let shared = self.shared;
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("refine-action-{slot}"))
            .spawn_scoped(scope, move || {
                let opts = shared.opts;
                let job = Job {
                    graph: shared.graph,
                    store: shared.store,
                    id,
                    key,
                    fields: &fields,
                    deps: &deps,
                    sandbox: &shared.sandbox,
                    cancellers: &shared.cancellers,
                    worker: slot,
                    scratches: &shared.scratches,
                    fetch_lock: &shared.fetch_lock,
                    cores: opts.cores,
                    stop: &shared.stop,
                    remote: opts.remote.as_deref(),
                    signer: opts.signer.as_deref(),
                    sandbox_debug: opts.sandbox_debug.as_deref(),
                    executor: opts.executor.as_deref(),
                };
                // A panic in an action must not leave the loop waiting for it forever.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run::run(&job, shared.observer)
                }))
                .unwrap_or_else(|_| {
                    Err(NodeFailure::new(ActionError::Internal {
                        what: "the action panicked".into(),
                    }))
                });
                let _ = tx.send(Msg::Done { id, slot, result });
            });
        if let Err(source) = spawned {
            self.free_slots.push(slot);
            self.fail(id, None, NodeFailure::new(ActionError::Thread { source }));
        }
    }

    /// The artifacts of everything upstream of `id`, not only its direct dependencies: a
    /// wheel's action mounts its runtime's base, a repair its wheel's packs.
    fn upstream_artifacts(&self, id: TargetId) -> HashMap<TargetId, Built> {
        let mut upstream = vec![false; self.graph.len()];
        upstream[id] = true;
        let upstream = self.graph.deps_closure(&upstream);
        self.built
            .iter()
            .filter(|(d, _)| upstream[**d])
            .map(|(d, b)| (*d, b.clone()))
            .collect()
    }

    fn built_now(&mut self, id: TargetId, outcome: ActionOutcome) {
        let result = NodeResult::Built {
            built: outcome.built.clone(),
            seconds: outcome.timings.seconds,
            start: outcome.timings.started_unix,
            worker: outcome.worker,
        };
        self.succeed(id, outcome.built, result);
    }

    /// The node has its artifact: its dependents may go.
    /// The node is cached: locally, remotely, or as the plan found it.
    fn hit(&mut self, id: TargetId, key: String, b: Built) {
        let target = self.graph.target(id);
        self.shared.observer.event(&Event::CacheHit {
            label: target.label.to_string(),
            kind: target.kind().to_string(),
            key,
            digest: b.digest.to_string(),
            location: if b.remote {
                Location::Remote
            } else {
                Location::Local
            },
        });
        self.succeed(id, b.clone(), NodeResult::Cached(b));
    }

    fn succeed(&mut self, id: TargetId, built: Built, result: NodeResult) {
        self.inputs.contents.insert(id, built.content.clone());
        self.built.insert(id, built);
        self.results.insert(id, result);
        self.sched.finish(id, Outcome::Succeeded);
    }

    /// The node failed; without keep-going the build stops and running sandboxes are killed.
    fn fail(&mut self, id: TargetId, key: Option<String>, failure: NodeFailure) {
        let target = self.graph.target(id);
        self.shared.observer.event(&Event::ActionFail {
            label: target.label.to_string(),
            kind: target.kind().to_string(),
            key,
            reason: failure.reason(),
            log: failure.log.as_ref().map(|l| l.display().to_string()),
        });
        self.results.insert(id, NodeResult::Failed(failure));
        self.sched.finish(id, Outcome::Failed);
        if self.sched.is_stopped() {
            self.shared.stop_all();
        }
    }

    /// A bug in the loop fails the node rather than leaving the build waiting for it.
    fn internal_error(&mut self, id: TargetId, what: &str) {
        let error = ActionError::Internal { what: what.into() };
        self.fail(id, None, NodeFailure::new(error));
    }

    fn skip(&mut self, id: TargetId, because: String) {
        self.shared.observer.event(&Event::Skipped {
            label: self.graph.target(id).label.to_string(),
            because: because.clone(),
        });
        self.results.insert(id, NodeResult::Skipped { because });
    }

    /// Cancelled: nothing more starts, and the running actions are killed.
    fn stop(&mut self) {
        self.sched.cancel();
        self.shared.stop_all();
    }

    /// The report: every node never started is skipped, with the reason.
    fn report(mut self, started: Instant) -> BuildReport {
        for (id, why) in self.sched.unstarted() {
            let because = match why {
                Unstarted::Blocked { by } => {
                    format!("`{}` did not build", self.graph.target(by).label)
                }
                Unstarted::Stopped => "the build stopped".to_string(),
            };
            self.skip(id, because);
        }
        let results = &self.results;
        let (critical_path, critical_path_seconds) =
            scheduler::critical_path(&self.nodes, |id| match results.get(&id) {
                Some(NodeResult::Built { seconds, .. }) => *seconds,
                _ => 0.0,
            });
        let report = BuildReport {
            results: std::mem::take(&mut self.results),
            seconds: started.elapsed().as_secs_f64(),
            critical_path,
            critical_path_seconds,
            interrupted: self.shared.opts.cancel.is_cancelled(),
        };
        let graph = self.graph;
        self.shared.observer.event(&Event::BuildFinish {
            success: report.success(),
            summary: report.summary(graph),
        });
        report
    }
}
