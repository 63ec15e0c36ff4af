//! What a build reports as it goes: one [`Event`] per step, serialized as a JSON object with
//! a field `event` (the `--events FILE` format, documented in `docs/events.md`).

use serde::{Deserialize, Serialize};

/// A build's events, in the order they happen.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The build begins: the requested targets and the parallelism.
    BuildStart {
        targets: Vec<String>,
        jobs: usize,
        store: String,
    },
    /// The plan before anything runs: each node's status as known then.
    Plan { nodes: Vec<PlanEntry> },
    /// A node's key was found in the store: nothing runs for it.
    CacheHit {
        label: String,
        kind: String,
        key: String,
        digest: String,
        /// `local`, or `remote` (found in the remote store, pulled only when needed).
        #[serde(rename = "where")]
        location: Location,
    },
    /// An action starts in a sandbox.
    ActionStart {
        label: String,
        kind: String,
        key: String,
        worker: usize,
    },
    /// An action succeeded and its artifact is stored.
    ActionFinish {
        label: String,
        kind: String,
        key: String,
        digest: String,
        seconds: f64,
        /// The wall time of the action's own process (the sandbox, or a host tool such as
        /// debootstrap); `None` for artifacts stored without one (tree and image bases).
        action_seconds: Option<f64>,
        /// What refine spent on this action outside that process, up to this event: fetching
        /// and staging inputs, checking and storing the artifact, its log and provenance.
        overhead_seconds: f64,
    },
    /// An action failed (or could not start); its dependents will not run.
    ActionFail {
        label: String,
        kind: String,
        key: Option<String>,
        reason: String,
        log: Option<String>,
    },
    /// A node was not built because a dependency failed or the build stopped.
    Skipped { label: String, because: String },
    /// The build is over.
    BuildFinish {
        success: bool,
        #[serde(flatten)]
        summary: crate::report::BuildSummary,
    },
}

/// Where a cached artifact was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    Local,
    /// In the remote store only: pulled when something needs it.
    Remote,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Location::Local => "local",
            Location::Remote => "remote",
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanEntry {
    pub label: String,
    pub kind: String,
    pub status: String,
    pub key: Option<String>,
}

/// Receives events as they happen, from the build loop and from the actions' worker threads.
pub trait Observer: Send + Sync {
    fn event(&self, event: &Event);
}

/// An observer that ignores everything.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _: &Event) {}
}
