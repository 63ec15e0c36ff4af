//! What a build reports: per node, whether it was cached, built (with its timings), failed
//! (with the error and the log) or skipped; for the build, its time and critical path.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use refine_rules::graph::{TargetGraph, TargetId};
use refine_store::Digest;
use serde::Serialize;

use crate::error::{ActionError, describe};

/// A node's artifact: its manifest digest, its content digest, and where it is.
#[derive(Clone, Debug)]
pub struct Built {
    pub digest: Digest,
    pub content: String,
    /// Found in the remote store and not pulled yet.
    pub remote: bool,
    /// The key it was stored under.
    pub key: Option<String>,
}

/// Where an action's time went.
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    /// When the action started (Unix time, seconds).
    pub started_unix: f64,
    /// From the start to the artifact in the store.
    pub seconds: f64,
    /// The action's own process (the sandbox, or a host tool); `None` when none ran.
    pub action_seconds: Option<f64>,
}

/// A finished action: its artifact, its timings, and the worker slot it ran in.
#[derive(Clone, Debug)]
pub struct ActionOutcome {
    pub built: Built,
    pub timings: Timings,
    pub worker: usize,
}

/// Why a node failed, and the stored log of its action when there is one.
#[derive(Clone, Debug)]
pub struct NodeFailure {
    pub error: Arc<ActionError>,
    pub log: Option<PathBuf>,
}

impl NodeFailure {
    pub fn new(error: ActionError) -> NodeFailure {
        NodeFailure {
            error: Arc::new(error),
            log: None,
        }
    }

    pub fn with_log(mut self, log: PathBuf) -> NodeFailure {
        self.log = Some(log);
        self
    }

    /// The error as text: its message, causes and hints.
    pub fn reason(&self) -> String {
        describe(&*self.error)
    }
}

impl<E: Into<ActionError>> From<E> for NodeFailure {
    fn from(error: E) -> NodeFailure {
        NodeFailure::new(error.into())
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
    Failed(NodeFailure),
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

    /// The counts and times, with the critical path's labels.
    pub fn summary(&self, graph: &TargetGraph) -> BuildSummary {
        BuildSummary {
            built: self.count(|r| matches!(r, NodeResult::Built { .. })),
            cached: self.count(|r| matches!(r, NodeResult::Cached(_))),
            failed: self.count(|r| matches!(r, NodeResult::Failed(_))),
            skipped: self.count(|r| matches!(r, NodeResult::Skipped { .. })),
            seconds: self.seconds,
            critical_path: self
                .critical_path
                .iter()
                .map(|&i| graph.target(i).label.to_string())
                .collect(),
            critical_path_seconds: self.critical_path_seconds,
        }
    }
}

/// The counts and times of a build: the `build-finish` event's fields and the closing line.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct BuildSummary {
    pub built: usize,
    pub cached: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Wall time of the whole build.
    pub seconds: f64,
    /// The labels on the longest chain of actions that ran, first to last.
    pub critical_path: Vec<String>,
    pub critical_path_seconds: f64,
}

/// Digest of the artifact a successful node produced.
pub fn artifact_of(report: &BuildReport, id: TargetId) -> Option<&Digest> {
    match report.results.get(&id)? {
        NodeResult::Cached(b) | NodeResult::Built { built: b, .. } => Some(&b.digest),
        _ => None,
    }
}
