//! `index.json`: the OCI layout's list of tags, kept in step with `refs/` in batches.
//!
//! Refs are the source of truth for lookups; `index.json` exists for OCI tools. Rewriting it
//! on every insert would cost O(entries) per insert, so refine updates it once per command
//! instead: [`LocalStore::sync_index`] merges the tags this process stored since the last
//! sync into `index.json` (reading each one's ref again, which wins), and
//! [`LocalStore::rebuild_index`] regenerates it from every ref (`verify`, `gc`, or when
//! `index.json` is unreadable). Both run under `index.lock`, so concurrent processes never lose
//! each other's tags. One build thus rewrites `index.json` once however many artifacts it
//! stored. Entries refine did not write (no `dev.refine.kind` annotation, e.g. an image
//! `skopeo copy` put there) are kept as they are, first.

use std::collections::HashMap;

use super::Kind;
use super::error::io_err;
use super::{
    Bucket, Descriptor, Digest, Index, LocalStore, MANIFEST_MEDIA_TYPE, Result, annotations,
};

/// A tag stored by this process, not yet merged into `index.json`.
#[derive(Clone, Debug)]
pub(crate) struct PendingTag {
    pub kind: Kind,
    pub key: String,
    /// What was stored (the no-op index then need not read the manifest again).
    pub artifact: super::CachedArtifact,
}

fn descriptor(kind: Kind, key: String, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: MANIFEST_MEDIA_TYPE.into(),
        digest,
        size,
        artifact_type: Some(kind.artifact_type()),
        annotations: Some(
            [
                (annotations::REF_NAME.to_owned(), key),
                (annotations::KIND.to_owned(), kind.as_str().to_owned()),
            ]
            .into(),
        ),
    }
}

fn refine_id(d: &Descriptor) -> Option<(String, String)> {
    Some((
        d.annotation(annotations::REF_NAME)?.to_owned(),
        d.annotation(annotations::KIND)?.to_owned(),
    ))
}

impl LocalStore {
    /// Merges the tags this process stored since the last call into `index.json`, and what
    /// it stored and looked up into the no-op index (`refs.idx`). Call it once at the end of a
    /// command (dropping the store does it too).
    pub fn sync_index(&self) -> Result<()> {
        let pending: Vec<PendingTag> = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        self.sync_refs_index(&pending);
        if pending.is_empty() {
            return Ok(());
        }
        let result = self.merge_pending(&pending);
        if result.is_err() {
            // Try again at the next sync.
            let mut guard = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            guard.extend(pending);
        }
        result
    }

    fn merge_pending(&self, pending: &[PendingTag]) -> Result<()> {
        let _lease = self.lease()?;
        let _lock = self.lock_index()?;
        let path = self.bucket_path(Bucket::Index);
        let old_bytes = fs_err::read(&path).ok();
        let Some(index) = old_bytes
            .as_deref()
            .and_then(|b| serde_json::from_slice::<Index>(b).ok())
        else {
            return self.rebuild_index_locked();
        };
        let (mut foreign, mut ours): (Vec<Descriptor>, Vec<Descriptor>) = index
            .manifests
            .into_iter()
            .partition(|d| d.annotation(annotations::KIND).is_none());
        let mut position: HashMap<(String, String), usize> = ours
            .iter()
            .enumerate()
            .filter_map(|(i, d)| Some((refine_id(d)?, i)))
            .collect();
        let mut removed = vec![false; ours.len()];
        for tag in pending {
            let tag = tag.clone();
            let id = (tag.key.clone(), tag.kind.as_str().to_owned());
            // The ref is the truth: another process may have rewritten it, or gc removed it.
            let current = self.read_ref(tag.kind, &tag.key)?;
            match (current, position.get(&id)) {
                (Some((digest, size)), Some(&i)) => {
                    ours[i] = descriptor(tag.kind, tag.key, digest, size);
                    removed[i] = false;
                }
                (Some((digest, size)), None) => {
                    position.insert(id, ours.len());
                    ours.push(descriptor(tag.kind, tag.key, digest, size));
                    removed.push(false);
                }
                (None, Some(&i)) => removed[i] = true,
                (None, None) => {}
            }
        }
        let mut ours: Vec<Descriptor> = ours
            .into_iter()
            .zip(removed)
            .filter_map(|(d, gone)| (!gone).then_some(d))
            .collect();
        ours.sort_by_cached_key(refine_id);
        foreign.extend(ours);
        self.write_index(&path, old_bytes.as_deref(), foreign)
    }

    /// Regenerates `index.json` from every ref (and the entries refine did not write).
    pub fn rebuild_index(&self) -> Result<()> {
        let _lease = self.lease()?;
        let _lock = self.lock_index()?;
        self.rebuild_index_locked()
    }

    /// [`Self::rebuild_index`] for callers that hold the store lock (gc, verify --fix).
    pub(crate) fn rebuild_index_unlocked(&self) -> Result<()> {
        let _lock = self.lock_index()?;
        self.rebuild_index_locked()
    }

    fn rebuild_index_locked(&self) -> Result<()> {
        let (mut refs, _bad) = self.list_refs()?;
        refs.sort_by(|a, b| (&a.key, a.kind.as_str()).cmp(&(&b.key, b.kind.as_str())));
        let path = self.bucket_path(Bucket::Index);
        let old_bytes = fs_err::read(&path).ok();
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
        manifests.extend(
            refs.into_iter()
                .map(|r| descriptor(r.kind, r.key, r.digest, r.size)),
        );
        self.write_index(&path, old_bytes.as_deref(), manifests)
    }

    fn write_index(
        &self,
        path: &std::path::Path,
        old_bytes: Option<&[u8]>,
        manifests: Vec<Descriptor>,
    ) -> Result<()> {
        let bytes = Index::new(manifests).to_bytes();
        if old_bytes != Some(&bytes[..]) {
            self.write_atomic(path, &bytes)?;
        }
        Ok(())
    }

    /// The parsed `index.json`.
    pub fn read_index(&self) -> Result<Index> {
        let path = self.bucket_path(Bucket::Index);
        let bytes = fs_err::read(&path).map_err(io_err("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| super::StoreError::BadRef {
            path,
            reason: e.to_string(),
        })
    }
}
