//! Signed provenance on the remote store (docs/security.md).
//!
//! **Signing.** A remote given a signing key makes sure every artifact it pushes carries an
//! envelope by that key (signing the artifact's provenance record if the executor did not),
//! and pushes every envelope stored beside the artifact as a referrer
//! (`application/vnd.dsse.envelope.v1+json`) before the tag.
//!
//! **Trust.** A remote given trusted keys accepts an artifact only when one of its envelope
//! referrers verifies with a trusted key, for the manifest it found and the kind and key it
//! was asked for. Anything else is a miss (the node is built here), with a warning that names
//! the artifact and the reason. The accepted envelope is kept, and a pull writes it beside the
//! artifact before the artifact's ref: nothing unverified enters the local store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use refine_attest::{DSSE_MEDIA_TYPE, Envelope, SigningKey, TrustedKeys, sign_record};
use refine_store::{Digest, LocalStore};

use super::{OciRemote, retried, store_err};
use crate::RemoteError;
use crate::intoto::Attachment;

/// Envelopes read per artifact: more is a registry flooding refine with referrers.
const MAX_ENVELOPES: usize = 16;

/// What a remote signs with and whom it trusts.
#[derive(Debug, Default)]
pub struct Attestation {
    signer: Option<Arc<SigningKey>>,
    trust: TrustedKeys,
    /// The accepted envelope of each artifact looked up in this process, by kind, key and
    /// manifest: an envelope accepted for one key says nothing of the same bytes under another.
    accepted: Mutex<HashMap<(String, String, Digest), Vec<u8>>>,
}

impl Attestation {
    pub fn new(signer: Option<Arc<SigningKey>>, trust: TrustedKeys) -> Attestation {
        Attestation {
            signer,
            trust,
            accepted: Mutex::new(HashMap::new()),
        }
    }

    /// Whether artifacts from the registry must be signed by a trusted key.
    pub fn checks(&self) -> bool {
        !self.trust.is_empty()
    }

    fn accepted(&self, kind: &str, key: &str, digest: &Digest) -> Option<Vec<u8>> {
        self.accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(kind.to_string(), key.to_string(), *digest))
            .cloned()
    }
}

impl OciRemote {
    /// Signs what this remote pushes with `signer` and accepts from the registry only what a
    /// key of `trust` signed (none: everything, as without signatures).
    pub fn with_attestation(mut self, signer: Option<Arc<SigningKey>>, trust: TrustedKeys) -> Self {
        self.attest = Attestation::new(signer, trust);
        self
    }

    /// The signed envelopes the registry holds for the artifact `subject` of `kind`, each
    /// verified against its digest (at most [`MAX_ENVELOPES`]).
    pub async fn remote_envelopes(
        &self,
        kind: &str,
        subject: &Digest,
    ) -> Result<Vec<Vec<u8>>, RemoteError> {
        let of = self.digest_ref(kind, subject);
        let idx = retried(|| self.client.pull_referrers(&of, Some(DSSE_MEDIA_TYPE)))
            .await
            .map_err(|e| self.error("list the referrers", &e))?;
        let mut out = Vec::new();
        for entry in idx.manifests.iter().take(MAX_ENVELOPES) {
            let rd = Digest::parse(&entry.digest).map_err(|e| store_err(e.into()))?;
            if let Some(layer) = self.referrer_layer(kind, &rd).await? {
                out.push(self.pull_small_blob(kind, &layer).await?);
            }
        }
        Ok(out)
    }

    /// [`OciRemote::remote_envelopes`], blocking.
    pub fn envelopes(&self, kind: &str, subject: &Digest) -> Result<Vec<Vec<u8>>, RemoteError> {
        super::block_on(self.remote_envelopes(kind, subject))
    }

    /// Whether the artifact `digest` found for `(kind, key)` may be used: always without
    /// trusted keys; with them, only when a trusted key signed it for that kind and key.
    pub(super) async fn accept(
        &self,
        kind: &str,
        key: &str,
        digest: &Digest,
    ) -> Result<bool, RemoteError> {
        if !self.attest.checks() || self.attest.accepted(kind, key, digest).is_some() {
            return Ok(true);
        }
        let mut envelopes = self.remote_envelopes(kind, digest).await?;
        let refusal = match self.attest.trust.accept(&envelopes, digest, kind, key) {
            Ok((i, _)) => {
                self.attest
                    .accepted
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(
                        (kind.to_string(), key.to_string(), *digest),
                        envelopes.swap_remove(i),
                    );
                return Ok(true);
            }
            Err(refusal) => refusal.to_string(),
        };
        refused(&self.url.to_string(), kind, key, &refusal);
        Ok(false)
    }

    /// The envelope a pull of `digest` writes beside the artifact: `None` without trusted
    /// keys; an error when no trusted key signed it.
    pub(super) async fn envelope_for_pull(
        &self,
        kind: &str,
        key: &str,
        digest: &Digest,
    ) -> Result<Option<Vec<u8>>, RemoteError> {
        if !self.attest.checks() {
            return Ok(None);
        }
        if !self.accept(kind, key, digest).await? {
            return Err(RemoteError::new(
                format!(
                    "`{kind}` artifact `{digest}` in {} is not signed by a trusted key for key `{key}`",
                    self.url
                ),
                "Nothing was stored locally. Build it here, or have a trusted builder push it",
            ));
        }
        Ok(self.attest.accepted(kind, key, digest))
    }

    /// Before a push: makes sure the artifact carries an envelope by this remote's signing
    /// key (signing its provenance `record` if not), then pushes every envelope stored beside
    /// it as a referrer.
    pub(super) async fn push_signatures(
        &self,
        local: &LocalStore,
        kind: &str,
        key: &str,
        subject: (&Digest, u64),
        record: Option<&serde_json::Value>,
    ) -> Result<(), RemoteError> {
        let mut envelopes = local.signatures(subject.0).map_err(store_err)?;
        if let Some(signer) = &self.attest.signer {
            let public = signer.public();
            let signed = envelopes
                .iter()
                .filter_map(|e| Envelope::from_slice(e).ok())
                .any(|e| e.signed_by(&public));
            if !signed {
                let Some(record) = record else {
                    return Err(RemoteError::new(
                        format!("Artifact `{}` has no provenance record to sign", subject.0),
                        "Rebuild it: refine records provenance for every artifact it builds",
                    ));
                };
                let envelope = sign_record(signer, subject.0, record);
                local
                    .put_signature(subject.0, &envelope)
                    .map_err(store_err)?;
                envelopes.push(envelope);
            }
        }
        for envelope in envelopes {
            self.attach(kind, key, subject, Attachment::SignedStatement, envelope)
                .await?;
        }
        Ok(())
    }
}

// A refused artifact is not an error (it is built here instead), but the user must learn that
// the shared cache held something untrusted; this runs on rayon workers with no observer.
#[allow(clippy::print_stderr)]
fn refused(remote: &str, kind: &str, key: &str, why: &str) {
    eprintln!(
        "warning: Not using `{kind}` key `{}…` from {remote}: {why}; it is built here instead",
        &key[..key.len().min(16)]
    );
}
