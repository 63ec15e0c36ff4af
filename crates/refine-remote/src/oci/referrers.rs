//! Provenance as OCI referrers: the in-toto statement is pushed as a blob, attached to its
//! artifact by a referrer manifest (image-spec 1.1 `subject`), and recorded in the referrers
//! tag schema (`sha256-<hex>`, an image index) where the registry has no referrers API.
//!
//! The referrers tag is shared with every other tool that attaches things to the same
//! artifact, so it is read and written as a foreign document, with `oci-spec`'s types: entries
//! refine does not understand (other algorithms, other fields) are kept, not dropped.

use std::collections::HashMap;

use refine_oci::spec::{self, DescriptorBuilder, ImageIndex, ImageIndexBuilder, MediaType};

use super::{OciRemote, http_header, is_not_found, retried, store_err};
use crate::RemoteError;
use crate::intoto::{self, Attachment};
use refine_store::{Digest, INDEX_MEDIA_TYPE, LocalStore, MANIFEST_MEDIA_TYPE};

impl OciRemote {
    /// Pushes the in-toto statement of the provenance `record` of `subject` as a referrer.
    pub(super) async fn push_provenance(
        &self,
        kind: &str,
        key: &str,
        subject: (&Digest, u64),
        record: &serde_json::Value,
    ) -> Result<(), RemoteError> {
        let statement = serde_json::to_vec(&refine_attest::statement(subject.0, record))
            .map_err(|e| RemoteError::new(format!("Cannot write JSON: {e}"), "Report a bug"))?;
        self.attach(kind, key, subject, Attachment::Statement, statement)
            .await
    }

    /// Pushes `bytes` as the one layer of a referrer of `subject`, and records the referrer
    /// in the referrers tag schema if the registry's referrers API does not list it.
    pub(super) async fn attach(
        &self,
        kind: &str,
        key: &str,
        subject: (&Digest, u64),
        what: Attachment,
        bytes: Vec<u8>,
    ) -> Result<(), RemoteError> {
        let size = bytes.len() as u64;
        let layer = self.push_bytes(kind, bytes).await?;
        let referrer = intoto::referrer_manifest(what, subject, (&layer, size), key);
        let ref_bytes = referrer.to_bytes();
        let ref_digest = Digest::of_bytes(&ref_bytes);
        let at = self.digest_ref(kind, &ref_digest);
        retried(|| {
            self.client
                .push_manifest_raw(&at, ref_bytes.clone(), http_header(MANIFEST_MEDIA_TYPE))
        })
        .await
        .map_err(|e| self.error("receive the provenance referrer", &e))?;
        // distribution-spec 1.1: a registry with the referrers API lists it now; otherwise
        // the client maintains the `sha256-<hex>` tag holding an index of referrers.
        let of = self.digest_ref(kind, subject.0);
        let listed = retried(|| self.client.pull_referrers(&of, None))
            .await
            .is_ok_and(|idx| {
                idx.manifests
                    .iter()
                    .any(|m| m.digest == ref_digest.to_string())
            });
        if listed {
            return Ok(());
        }
        let entry = DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(oci_digest(&ref_digest)?)
            .size(ref_bytes.len() as u64)
            .artifact_type(MediaType::Other(what.media_type().into()))
            .annotations(
                referrer
                    .annotations
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect::<HashMap<_, _>>(),
            )
            .build()
            .map_err(spec_bug)?;
        self.add_to_referrers_tag(kind, subject.0, entry).await
    }

    /// Pushes `bytes` as a blob unless the registry has it; returns its digest.
    async fn push_bytes(&self, kind: &str, bytes: Vec<u8>) -> Result<Digest, RemoteError> {
        let digest = Digest::of_bytes(&bytes);
        let r = self.digest_ref(kind, &digest);
        let d = digest.to_string();
        let exists = retried(|| self.client.blob_exists(&r, &d))
            .await
            .map_err(|e| self.error("check the provenance blob", &e))?;
        if !exists {
            retried(|| self.client.push_blob(&r, bytes.clone(), &d))
                .await
                .map_err(|e| self.error("receive the provenance blob", &e))?;
        }
        Ok(digest)
    }

    /// Adds `entry` to the index under the referrers tag of `subject`, keeping what it lists.
    async fn add_to_referrers_tag(
        &self,
        kind: &str,
        subject: &Digest,
        entry: spec::Descriptor,
    ) -> Result<(), RemoteError> {
        let tag = self.tag_ref(kind, &format!("sha256-{}", subject.hex()));
        let found = retried(|| {
            self.client
                .pull_manifest_raw(&tag, &self.auth, &[INDEX_MEDIA_TYPE])
        })
        .await;
        let mut index = match found {
            // An index another tool damaged is replaced rather than kept failing every push.
            Ok((b, _)) => serde_json::from_slice::<ImageIndex>(&b).or_else(|_| empty_index())?,
            Err(e) if is_not_found(&e) => empty_index()?,
            Err(e) => return Err(self.error("read the referrers tag", &e)),
        };
        let mut listed = index.manifests().clone();
        listed.push(entry);
        index.set_manifests(listed);
        let bytes = serde_json::to_vec(&index)
            .map_err(|e| RemoteError::new(format!("Cannot write JSON: {e}"), "Report a bug"))?;
        retried(|| {
            self.client
                .push_manifest_raw(&tag, bytes.clone(), http_header(INDEX_MEDIA_TYPE))
        })
        .await
        .map_err(|e| self.error("update the referrers tag", &e))?;
        Ok(())
    }

    /// The in-toto statement attached to the artifact `subject` of `kind`, if any.
    pub fn provenance(
        &self,
        kind: &str,
        subject: &Digest,
    ) -> Result<Option<serde_json::Value>, RemoteError> {
        super::block_on(async {
            let of = self.digest_ref(kind, subject);
            let idx = retried(|| {
                self.client
                    .pull_referrers(&of, Some(refine_attest::INTOTO_MEDIA_TYPE))
            })
            .await
            .map_err(|e| self.error("list the referrers", &e))?;
            let Some(entry) = idx.manifests.first() else {
                return Ok(None);
            };
            let rd = Digest::parse(&entry.digest).map_err(|e| store_err(e.into()))?;
            let Some(layer) = self.referrer_layer(kind, &rd).await? else {
                return Ok(None);
            };
            let buf = self.pull_small_blob(kind, &layer).await?;
            serde_json::from_slice(&buf).map(Some).map_err(|e| {
                RemoteError::new(
                    format!("The provenance statement is not JSON: {e}"),
                    "Delete it in the registry",
                )
            })
        })
    }

    /// The digest of the first layer (the statement) of the referrer manifest `rd`.
    pub(super) async fn referrer_layer(
        &self,
        kind: &str,
        rd: &Digest,
    ) -> Result<Option<Digest>, RemoteError> {
        let at = self.digest_ref(kind, rd);
        let (bytes, _) = retried(|| {
            self.client
                .pull_manifest_raw(&at, &self.auth, &[MANIFEST_MEDIA_TYPE])
        })
        .await
        .map_err(|e| self.error("send the provenance referrer", &e))?;
        if Digest::of_bytes(&bytes) != *rd {
            return Err(RemoteError::new(
                format!("The registry {} sent a corrupt referrer `{rd}`", self.url),
                "Delete it in the registry",
            ));
        }
        let unusable = |why: String| {
            RemoteError::new(
                format!("Referrer `{rd}` is unusable: {why}"),
                "Delete it in the registry",
            )
        };
        let m: spec::ImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| unusable(e.to_string()))?;
        m.layers()
            .first()
            .map(|l| Digest::parse(l.digest().as_ref()).map_err(|e| unusable(e.to_string())))
            .transpose()
    }

    /// A blob small enough for memory (a statement), verified against `digest`.
    pub(super) async fn pull_small_blob(
        &self,
        kind: &str,
        digest: &Digest,
    ) -> Result<Vec<u8>, RemoteError> {
        let at = self.digest_ref(kind, digest);
        let d = digest.to_string();
        let buf = retried(|| async {
            let mut buf = Vec::new();
            self.client.pull_blob(&at, d.as_str(), &mut buf).await?;
            Ok::<_, oci_client::errors::OciDistributionError>(buf)
        })
        .await
        .map_err(|e| self.error("send the provenance statement", &e))?;
        if Digest::of_bytes(&buf) != *digest {
            return Err(RemoteError::new(
                format!(
                    "The registry {} sent a corrupt statement `{digest}`",
                    self.url
                ),
                "Delete it in the registry",
            ));
        }
        Ok(buf)
    }
}

/// The provenance record `record` of a local artifact, as JSON.
pub(super) fn read_record(
    local: &LocalStore,
    record: &Digest,
) -> Result<serde_json::Value, RemoteError> {
    let bytes = local.read_blob(record).map_err(store_err)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        RemoteError::new(
            format!("The provenance record `{record}` is not JSON: {e}"),
            "Run `refine store verify`",
        )
    })
}

fn oci_digest(d: &Digest) -> Result<spec::Digest, RemoteError> {
    d.to_string().parse().map_err(spec_bug)
}

fn empty_index() -> Result<ImageIndex, RemoteError> {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::new())
        .build()
        .map_err(spec_bug)
}

/// `oci-spec` refused a document refine built from valid parts.
fn spec_bug(e: impl std::fmt::Display) -> RemoteError {
    RemoteError::new(format!("Cannot build an OCI document: {e}"), "Report a bug")
}
