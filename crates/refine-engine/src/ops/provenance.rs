//! `refine provenance LABEL|DIGEST`: how an artifact was made, as an in-toto v1 statement
//! with the SLSA provenance v1 predicate, from the local store, else from the remote store's
//! referrer.

use refine_digest::Kind;

use refine_store::{Digest, LocalStore};

use super::OpError;
use crate::session::Session;

/// The provenance of one artifact.
#[derive(Clone, Debug, PartialEq)]
pub struct Provenance {
    /// The artifact's manifest digest.
    pub subject: Digest,
    /// The in-toto statement.
    pub statement: serde_json::Value,
}

/// Finds the provenance of `target`: a label (the artifact its key names now) or an
/// artifact's manifest digest (`sha256:…`).
pub fn provenance(session: &Session, target: &str) -> Result<Provenance, OpError> {
    let (subject, kinds) = subject(session, target)?;
    if let Some(statement) = local_statement(session.store(), &subject)? {
        return Ok(Provenance { subject, statement });
    }
    if let Some(remote) = session.remote() {
        for kind in kinds {
            if let Some(statement) = remote.provenance(kind.as_str(), &subject)? {
                return Ok(Provenance { subject, statement });
            }
        }
    }
    Err(OpError::NoProvenance { digest: subject })
}

/// The artifact `target` names, and the kinds it may be of (the remote store keeps each
/// kind in its own repository).
fn subject(session: &Session, target: &str) -> Result<(Digest, Vec<Kind>), OpError> {
    if target.starts_with("sha256:") {
        return Ok((Digest::parse(target)?, Kind::ALL.to_vec()));
    }
    let id = session.resolve_one(target, "provenance")?;
    let plan = session.plan(&[id])?;
    let digest = plan
        .nodes
        .iter()
        .find(|n| n.id == id)
        .and_then(|n| n.digest)
        .ok_or_else(|| OpError::NoArtifact {
            target: target.to_string(),
        })?;
    Ok((digest, vec![session.graph().target(id).kind()]))
}

/// The statement from the local store, if it holds the artifact and its provenance record.
fn local_statement(
    store: &LocalStore,
    digest: &Digest,
) -> Result<Option<serde_json::Value>, OpError> {
    if !store.has_blob(digest) {
        return Ok(None);
    }
    let manifest = store.read_manifest(digest)?;
    let Some(record) = manifest
        .annotation("dev.refine.provenance")
        .and_then(|v| Digest::parse(v).ok())
        .filter(|d| store.has_blob(d))
    else {
        return Ok(None);
    };
    let bytes = store.read_blob(&record)?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|error| OpError::BadProvenance { record, error })?;
    Ok(Some(refine_attest::statement(digest, &value)))
}
