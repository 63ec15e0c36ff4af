//! `refine pull`: copy the artifacts of targets (and of their dependencies) from the remote
//! store into the local one, every blob verified.

use refine_store::Digest;

use super::OpError;
use crate::session::{Session, SessionError};

/// One artifact pulled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pulled {
    pub label: String,
    pub digest: Digest,
}

/// What `refine pull` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullSummary {
    pub pulled: Vec<Pulled>,
    /// Targets whose artifact was in the local store already.
    pub local: usize,
    /// Targets in neither store (or whose key is not known until a dependency is built).
    pub absent: usize,
    /// The remote store, for messages.
    pub remote: String,
}

/// Pulls every artifact of the session's targets and their dependencies that only the
/// remote store holds. `on_each` hears of each artifact once it is in the local store.
pub fn pull(session: &Session, on_each: &mut dyn FnMut(&Pulled)) -> Result<PullSummary, OpError> {
    let remote = session.remote_store().ok_or(SessionError::NoRemote)?;
    let plan = session.plan(session.roots())?;
    let mut summary = PullSummary {
        pulled: Vec::new(),
        local: 0,
        absent: 0,
        remote: remote.describe(),
    };
    for node in &plan.nodes {
        let target = session.graph().target(node.id);
        match (&node.digest, &node.key) {
            (Some(digest), Some(key)) if node.remote => {
                remote.pull(session.store(), target.kind().as_str(), &key.hex(), digest)?;
                let pulled = Pulled {
                    label: target.label.to_string(),
                    digest: *digest,
                };
                on_each(&pulled);
                summary.pulled.push(pulled);
            }
            (Some(_), _) => summary.local += 1,
            _ => summary.absent += 1,
        }
    }
    session.store().sync_index()?;
    Ok(summary)
}
