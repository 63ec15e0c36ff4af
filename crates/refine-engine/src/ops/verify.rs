//! `refine verify PATTERN`: who signed the artifacts of targets, in the local store and in
//! the remote store, checked against the keys `workspace.kdl` trusts now (a key removed from
//! the list stops counting at once, for artifacts already stored too). Local hits of a build
//! are not re-verified (a no-op build stays instant); this is the command that re-checks them.

use refine_attest::{Refusal, TrustedKeys};
use refine_digest::Kind;
use refine_plan::Status;
use refine_store::{Digest, LocalStore};

use super::OpError;
use crate::session::Session;

/// Where a checked artifact is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Local,
    Remote,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Place::Local => "local",
            Place::Remote => "remote",
        })
    }
}

/// One artifact checked.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub label: String,
    pub kind: Kind,
    pub key: String,
    pub place: Place,
    pub digest: Digest,
    /// The trusted key that signed it, or why it is refused.
    pub signer: Result<refine_attest::Signer, Refusal>,
}

/// Checks the artifacts of the session's targets and their dependencies, wherever they are;
/// targets with no artifact anywhere are left out (`refine plan` lists them).
pub fn verify(session: &Session) -> Result<Vec<Verdict>, OpError> {
    if session.trust().is_empty() {
        return Err(OpError::NoTrustedKeys);
    }
    let plan = session.plan(session.roots())?;
    let mut out = Vec::new();
    for node in plan.nodes.iter().filter(|n| n.status != Status::Pending) {
        let Some(key) = &node.key else { continue };
        let target = session.graph().target(node.id);
        let (kind, key) = (target.kind(), key.hex());
        let verdict = |place, digest: Digest, envelopes: Vec<Vec<u8>>| Verdict {
            label: target.label.to_string(),
            kind,
            key: key.clone(),
            place,
            digest,
            signer: session
                .trust()
                .check(&envelopes, &digest, kind.as_str(), &key),
        };
        if let Some(digest) = session.store().lookup(kind.as_str(), &key)? {
            let envelopes = session.store().signatures(&digest)?;
            out.push(verdict(Place::Local, digest, envelopes));
        }
        if let Some(remote) = session.remote()
            && let Some((digest, _)) = remote.find(kind.as_str(), &key)?
        {
            let envelopes = remote.envelopes(kind.as_str(), &digest)?;
            out.push(verdict(Place::Remote, digest, envelopes));
        }
    }
    Ok(out)
}

/// Every artifact of the local store checked against `trust` (`refine store verify
/// --signatures`): `(kind, key, manifest, who signed it or why it is refused)`.
#[allow(clippy::type_complexity)]
pub fn verify_store(
    store: &LocalStore,
    trust: &TrustedKeys,
) -> Result<Vec<(Kind, String, Digest, Result<refine_attest::Signer, Refusal>)>, OpError> {
    if trust.is_empty() {
        return Err(OpError::NoTrustedKeys);
    }
    store
        .artifacts()?
        .into_iter()
        .map(|(kind, key, digest)| {
            let envelopes = store.signatures(&digest)?;
            let verdict = trust.check(&envelopes, &digest, kind.as_str(), &key);
            Ok((kind, key, digest, verdict))
        })
        .collect()
}
