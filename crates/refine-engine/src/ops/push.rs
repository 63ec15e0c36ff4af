//! Pushing to the remote store: the artifacts of targets that are in the local store
//! (`refine push`), and the artifacts whose push an earlier, interrupted build left in the
//! outbox.

use refine_remote::RemoteError;
use refine_store::Digest;

use super::OpError;
use crate::session::{Session, SessionError};

/// One artifact pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    pub label: String,
    pub digest: Digest,
}

/// What `refine push` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushSummary {
    pub pushed: Vec<Pushed>,
    /// Targets left out because the local store has no artifact for them.
    pub absent: usize,
    /// The remote store, for messages.
    pub remote: String,
}

/// Pushes the artifacts of the session's targets and of their dependencies that the local
/// store holds: blobs, provenance referrer, then the tagged manifest. `on_each` hears of each
/// artifact once it is in the remote store.
pub fn push(session: &Session, on_each: &mut dyn FnMut(&Pushed)) -> Result<PushSummary, OpError> {
    let remote = session.remote_store().ok_or(SessionError::NoRemote)?;
    // Only what is local can be pushed: the remote is not asked what it has.
    let plan = refine_plan::plan(session.graph(), session.roots(), session.store(), None)?;
    let mut summary = PushSummary {
        pushed: Vec::new(),
        absent: 0,
        remote: remote.describe(),
    };
    for node in &plan.nodes {
        let target = session.graph().target(node.id);
        match (node.status, &node.digest, &node.key) {
            (refine_plan::Status::Cached, Some(digest), Some(key)) => {
                remote.push(session.store(), target.kind().as_str(), &key.hex(), digest)?;
                let pushed = Pushed {
                    label: target.label.to_string(),
                    digest: *digest,
                };
                on_each(&pushed);
                summary.pushed.push(pushed);
            }
            _ => summary.absent += 1,
        }
    }
    Ok(summary)
}

/// What finishing the outbox did.
#[derive(Clone, Debug, Default)]
pub struct OutboxFlush {
    /// Artifacts pushed now.
    pub pushed: usize,
    /// Why the outbox stays as it is, when the remote store is optional and failed.
    pub skipped: Option<RemoteError>,
}

/// Pushes every artifact whose push an earlier build left unfinished, if the session has a
/// remote store. Under `--remote-optional` a failure is reported in the result instead.
pub fn flush_outbox(session: &Session) -> Result<OutboxFlush, OpError> {
    let Some(remote) = session.remote() else {
        return Ok(OutboxFlush::default());
    };
    match remote.flush_outbox(session.store()) {
        Ok(pushed) => Ok(OutboxFlush {
            pushed,
            skipped: None,
        }),
        Err(e) if session.remote_optional() => Ok(OutboxFlush {
            pushed: 0,
            skipped: Some(e),
        }),
        Err(e) => Err(e.into()),
    }
}
