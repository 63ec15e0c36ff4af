//! The queue's consumers: each slot is a thread that takes the oldest queued build, opens a
//! session on the workspace as it is now (edited rule files count), runs `ops::build` as
//! `refine build` does, and records what happens, node by node, through [`BuildObserver`].

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use refine_engine::exec::{BuildOptions, Cancel, Event, Observer};
use refine_engine::ops;
use refine_engine::session::{RemoteNeed, Session, Targets};

use crate::Hub;
use crate::state::{BuildRow, BuildState, NodeRow, PlannedRow, Record};
use refine_engine::graph::TargetGraph;

/// Starts `slots` runner threads.
pub fn start(hub: &Arc<Hub>, slots: usize) {
    for slot in 0..slots.max(1) {
        let hub = hub.clone();
        std::thread::Builder::new()
            .name(format!("refine-serve-build-{slot}"))
            .spawn(move || run_queue(&hub))
            .expect("a thread for a build slot");
    }
}

fn run_queue(hub: &Hub) {
    while !hub.stopping() {
        let seen = hub.work_seen();
        // Busy from before the claim, so that a stopping server waits for this slot; and the
        // claim is not made once it stops (what it would take stays queued).
        hub.busy.fetch_add(1, Ordering::SeqCst);
        let claimed = if hub.stopping() {
            Ok(None)
        } else {
            hub.state.claim_next()
        };
        match claimed {
            Ok(Some(build)) => {
                hub.refresh_queue_length();
                run_claimed(hub, &build);
                hub.busy.fetch_sub(1, Ordering::SeqCst);
            }
            Ok(None) => {
                hub.busy.fetch_sub(1, Ordering::SeqCst);
                hub.wait_for_work(seen);
            }
            Err(e) => {
                hub.busy.fetch_sub(1, Ordering::SeqCst);
                crate::say(&format!("warning: cannot read the queue: {e}"));
                hub.wait_for_work(seen);
            }
        }
    }
}

fn run_claimed(hub: &Hub, build: &BuildRow) {
    let cancel = Cancel::default();
    hub.register_cancel(build.id, &cancel);
    let started = build.started.unwrap_or_else(crate::state::now);
    hub.metrics.build_started(started - build.created);
    hub.live
        .emit(build.id, state_event(BuildState::Running, None), false);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_build(hub, build, &cancel)
    }))
    .unwrap_or_else(|_| Outcome {
        state: BuildState::Failed,
        summary: None,
        error: Some(serde_json::json!({"message": "The build panicked: this is a bug in refine"})),
    });
    hub.live.flush();
    let state = if hub.stopping() && outcome.state == BuildState::Cancelled {
        BuildState::Interrupted
    } else {
        outcome.state
    };
    if let Err(e) = hub.state.finish_build(
        build.id,
        state,
        outcome.summary.as_ref(),
        outcome.error.as_ref(),
    ) {
        crate::say(&format!(
            "warning: cannot record the end of build {}: {e}",
            build.id
        ));
    }
    hub.metrics.build_ended(state.as_str(), true);
    hub.live
        .emit(build.id, state_event(state, outcome.error.as_ref()), true);
    hub.live.finish(build.id);
    hub.forget_cancel(build.id);
}

/// The server's own event: a build changed state (`queued` is never sent; the last one of a
/// build is final).
pub fn state_event(state: BuildState, error: Option<&serde_json::Value>) -> serde_json::Value {
    let mut event = serde_json::json!({"event": "build-state", "state": state});
    if let Some(e) = error {
        event["error"] = e.clone();
    }
    event
}

struct Outcome {
    state: BuildState,
    summary: Option<serde_json::Value>,
    error: Option<serde_json::Value>,
}

impl Outcome {
    fn failed(error: &dyn miette::Diagnostic) -> Outcome {
        Outcome {
            state: BuildState::Failed,
            summary: None,
            error: Some(crate::api::diagnostic_json(error)),
        }
    }
}

fn run_build(hub: &Hub, build: &BuildRow, cancel: &Cancel) -> Outcome {
    let session = match Session::open(
        &hub.config.session,
        Targets::Patterns(&build.patterns),
        RemoteNeed::IfConfigured,
    ) {
        Ok(s) => s,
        Err(e) => return Outcome::failed(&e),
    };
    let mut options = BuildOptions {
        keep_going: build.keep_going || ops::request::keep_going(&session),
        cancel: cancel.clone(),
        ..Default::default()
    };
    if let Some(jobs) = build.jobs.or(hub.config.jobs) {
        options.jobs = jobs;
    }
    let observer = BuildObserver {
        hub,
        build: build.id,
        kinds: Mutex::new(HashMap::new()),
        graph: session.graph(),
    };
    let report = match ops::build::build(&session, options, &observer) {
        Ok(r) => r,
        Err(e) => return Outcome::failed(&e),
    };
    let summary = serde_json::to_value(report.summary(session.graph())).ok();
    let mut error = None;
    if report.success()
        && !cancel.is_cancelled()
        && let Err(e) = share(&session, &report)
    {
        error = Some(crate::api::diagnostic_json(&*e));
    }
    if let Some(remote) = session.remote() {
        let (pushed, pulled) = remote.traffic();
        hub.metrics.traffic(pushed, pulled);
    }
    hub.measure_store(session.store().root());
    let state = if cancel.is_cancelled() {
        BuildState::Cancelled
    } else if report.success() && error.is_none() {
        BuildState::Succeeded
    } else {
        BuildState::Failed
    };
    let _ = session.store().sync_index();
    Outcome {
        state,
        summary,
        error,
    }
}

/// What `refine build` does after a successful build: pushes what earlier builds left
/// unpushed and puts repaired wheels into the mirror.
fn share(
    session: &Session,
    report: &refine_engine::exec::BuildReport,
) -> Result<(), Box<ops::OpError>> {
    let flushed = ops::push::flush_outbox(session).map_err(Box::new)?;
    if let Some(e) = flushed.skipped {
        crate::say(&format!("warning: {e}"));
    }
    ops::mirror::publish_built(session, report, &mut |_| {}).map_err(Box::new)?;
    ops::mirror::publish_reused(session, &mut |_| {}).map_err(Box::new)?;
    Ok(())
}

/// Records a build's events: to subscribers, the database and the metrics.
struct BuildObserver<'h> {
    hub: &'h Hub,
    build: i64,
    /// Each label's kind, from the plan (a `skipped` event names none).
    kinds: Mutex<HashMap<String, String>>,
    graph: &'h TargetGraph,
}

impl BuildObserver<'_> {
    /// Each target's direct dependencies, by label.
    fn deps_by_label(&self) -> HashMap<String, Vec<String>> {
        let g = self.graph;
        (0..g.len())
            .map(|id| {
                let deps = g.deps(id).iter().map(|&d| g.target(d).label.to_string());
                (g.target(id).label.to_string(), deps.collect())
            })
            .collect()
    }

    fn node(&self, node: NodeRow) {
        self.hub.live.record(Record::Node {
            build: self.build,
            node: Box::new(node),
        });
    }
}

impl Observer for BuildObserver<'_> {
    fn event(&self, event: &Event) {
        let hub = self.hub;
        hub.metrics.observe(event);
        match event {
            Event::Plan { nodes } => {
                let mut kinds = self
                    .kinds
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for n in nodes {
                    kinds.insert(n.label.clone(), n.kind.clone());
                }
                let deps = self.deps_by_label();
                hub.live.record(Record::Planned {
                    build: self.build,
                    nodes: nodes
                        .iter()
                        .map(|n| PlannedRow {
                            label: n.label.clone(),
                            kind: n.kind.clone(),
                            planned: n.status.clone(),
                            key: n.key.clone(),
                            deps: deps.get(n.label.as_str()).cloned().unwrap_or_default(),
                        })
                        .collect(),
                });
            }
            Event::CacheHit {
                label,
                key,
                digest,
                location,
                ..
            } => self.node(NodeRow {
                label: label.clone(),
                state: "cached".into(),
                key: Some(key.clone()),
                digest: Some(digest.clone()),
                location: Some(location.to_string()),
                ..NodeRow::default()
            }),
            Event::ActionStart { label, key, .. } => self.node(NodeRow {
                label: label.clone(),
                state: "running".into(),
                key: Some(key.clone()),
                ..NodeRow::default()
            }),
            Event::ActionFinish {
                label,
                key,
                digest,
                seconds,
                action_seconds,
                overhead_seconds,
                ..
            } => self.node(NodeRow {
                label: label.clone(),
                state: "built".into(),
                key: Some(key.clone()),
                digest: Some(digest.clone()),
                seconds: Some(*seconds),
                action_seconds: *action_seconds,
                overhead_seconds: Some(*overhead_seconds),
                ..NodeRow::default()
            }),
            Event::ActionFail {
                label,
                key,
                reason,
                log,
                ..
            } => self.node(NodeRow {
                label: label.clone(),
                state: "failed".into(),
                key: key.clone(),
                reason: Some(reason.clone()),
                log: log.as_deref().and_then(log_digest),
                ..NodeRow::default()
            }),
            Event::Skipped { label, because } => {
                let kind = self
                    .kinds
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(label)
                    .cloned()
                    .unwrap_or_default();
                hub.metrics.skipped(&kind);
                self.node(NodeRow {
                    label: label.clone(),
                    state: "skipped".into(),
                    reason: Some(because.clone()),
                    ..NodeRow::default()
                });
            }
            Event::BuildStart { .. } | Event::BuildFinish { .. } => {}
        }
        match serde_json::to_value(event) {
            Ok(json) => hub.live.emit(self.build, json, false),
            Err(e) => crate::say(&format!("warning: an event could not be written: {e}")),
        }
    }
}

/// The digest of a failed action's log from its path in the store (`…/blobs/sha256/HEX`).
fn log_digest(path: &str) -> Option<String> {
    let path = std::path::Path::new(path);
    let hex = path.file_name()?.to_str()?;
    let in_blobs = path.parent()?.ends_with("blobs/sha256");
    (in_blobs && hex.len() == 64).then(|| format!("sha256:{hex}"))
}
