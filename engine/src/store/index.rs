//! `index.json`: the OCI layout's list of tags, regenerated from `refs/` in one batch.
//!
//! Refs are the source of truth for lookups; `index.json` exists for OCI tools. Rewriting it
//! on every insert would cost O(entries) per insert, so refine regenerates it once per command
//! instead ([`LocalStore::sync_index`], under `index.lock`): one build rewrites it once however
//! many artifacts it stored. Entries refine did not write (no `dev.refine.kind` annotation,
//! e.g. an image `skopeo copy` put there) are kept as they are, first.

use std::sync::atomic::Ordering;

use super::error::io_err;
use super::{Descriptor, Index, LocalStore, MANIFEST_MEDIA_TYPE, Result, annotations};

impl LocalStore {
    /// Regenerates `index.json` from the refs, if it changed. Call it once at the end of a
    /// command that stored artifacts (dropping the store does it too).
    pub fn sync_index(&self) -> Result<()> {
        let _lease = self.lease()?;
        self.sync_index_unlocked()
    }

    pub(crate) fn sync_index_unlocked(&self) -> Result<()> {
        let _lock = self.lock_index()?;
        // Clear first: an insert that lands while we list is synced by its own process.
        self.dirty.store(false, Ordering::Release);
        let (mut refs, _bad) = self.list_refs()?;
        refs.sort_by(|a, b| (&a.key, a.kind).cmp(&(&b.key, b.kind)));
        let path = self.root.join("index.json");
        let old_bytes = std::fs::read(&path).ok();
        let mut manifests: Vec<Descriptor> = old_bytes
            .as_deref()
            .and_then(|b| serde_json::from_slice::<Index>(b).ok())
            .map(|index| {
                index
                    .manifests
                    .into_iter()
                    .filter(|d| d.annotation(annotations::KIND).is_none())
                    .collect()
            })
            .unwrap_or_default();
        manifests.extend(refs.into_iter().map(|r| {
            Descriptor {
                media_type: MANIFEST_MEDIA_TYPE.into(),
                digest: r.digest,
                size: r.size,
                artifact_type: Some(r.kind.artifact_type()),
                annotations: Some(
                    [
                        (annotations::REF_NAME.to_owned(), r.key),
                        (annotations::KIND.to_owned(), r.kind.as_str().to_owned()),
                    ]
                    .into(),
                ),
            }
        }));
        let bytes = Index::new(manifests).to_bytes();
        if old_bytes.as_deref() != Some(&bytes[..]) {
            self.write_atomic(&path, &bytes).map_err(|e| match e {
                super::StoreError::Io { source, .. } => io_err("rewrite", &path)(source),
                other => other,
            })?;
        }
        Ok(())
    }

    /// The parsed `index.json`.
    pub fn read_index(&self) -> Result<Index> {
        let path = self.root.join("index.json");
        let bytes = std::fs::read(&path).map_err(io_err("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| super::StoreError::BadRef {
            path,
            reason: e.to_string(),
        })
    }
}
