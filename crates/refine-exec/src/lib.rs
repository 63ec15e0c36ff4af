//! The executor: evaluates a request's graph in parallel, skipping every node whose key is
//! in the store, running every other one in the sandbox, and storing each artifact with its
//! log and provenance.
//!
//! The plan unfolds as the build goes: a node's key is computed once all its dependencies
//! have artifacts (their content digests are part of it), then looked up; a hit costs
//! nothing, a miss runs the action. An action that exits 0 without its outputs is a failure,
//! never a cache entry. A failure stops the build (running actions are cancelled) unless
//! `keep_going`, which builds everything not downstream of a failure. Cancellation (Ctrl-C)
//! kills every sandbox and leaves the store consistent: artifacts enter it atomically.
//!
//! The parts: [`scheduler`] keeps the graph's state without any I/O; `driver` is the build
//! loop around it; `run` takes one action through its phases (`stage`, `execute`,
//! `outputs`, storing and pushing), each with a typed result or an [`ActionError`].

pub mod bootstrap;
mod driver;
mod error;
pub mod events;
mod execute;
mod files;
mod log;
mod native_hint;
mod options;
mod outputs;
pub mod provenance;
mod replay;
mod report;
mod run;
pub mod scheduler;
mod scratch;
mod stage;

pub use refine_plan::scripts;
pub use refine_store::remote::{self, Remote, RemoteError};

pub use bootstrap::BootstrapError;
pub use driver::build;
pub use error::{ActionError, ExecError, OutputError, describe};
pub use events::{Event, Location, Observer, PlanEntry, Quiet};
pub use files::{copy_tree, wheels_in};
pub use options::{BuildOptions, Cancel, OnCancel};
pub use report::{
    ActionOutcome, BuildReport, BuildSummary, Built, NodeFailure, NodeResult, Timings, artifact_of,
};
pub use stage::PROBE_ANSWER;
