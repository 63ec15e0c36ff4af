//! The no-op index (`refs.idx`) checked against the refs and the manifests it names.

use super::Check;
use crate::refs_index::Loaded;
use crate::{Bucket, Digest};

impl Check<'_> {
    /// A damaged index, or an entry that names a missing or broken manifest, a content digest
    /// that is not its manifest's, or a ref that does not exist. An entry that names another
    /// manifest than its ref is not a problem: a concurrent build rewrote the ref and merges
    /// the index when it ends, and either artifact is one built for that key. An absent
    /// index is not one either: the next build writes it.
    pub(super) fn refs_index(&mut self) -> crate::Result<()> {
        let path = self.store.bucket_path(Bucket::RefsIndex);
        let index = match self.store.read_refs_index() {
            Loaded::Valid(index) => index,
            Loaded::Unusable(None) => return Ok(()),
            Loaded::Unusable(Some(reason)) => {
                let message = format!(
                    "The no-op index `{}` is damaged ({reason}); builds ignore it, and `refine store verify --fix` rebuilds it from the refs",
                    path.display()
                );
                self.problem(message, path);
                return Ok(());
            }
        };
        for e in index.entries() {
            let key = Digest::from_sha256_bytes(e.key).hex();
            let what = format!("Entry `{}/{key}` of `refs.idx`", e.kind);
            let manifest = e.artifact.manifest;
            let broken = match self.manifest(&manifest) {
                Err(m) => Some(format!("{what} points at {m}")),
                Ok(()) => match self.store.read_manifest(&manifest) {
                    Ok(m) if m.content_digest() != e.artifact.content => Some(format!(
                        "{what} records content `{}`, but manifest `{manifest}` has `{}`",
                        e.artifact.content,
                        m.content_digest()
                    )),
                    Ok(_) => None,
                    Err(err) => Some(format!("{what}: {err}")),
                },
            };
            let broken = match broken {
                Some(b) => Some(b),
                None => self
                    .store
                    .read_ref(e.kind, &key)?
                    .is_none()
                    .then(|| format!("{what} has no ref")),
            };
            if let Some(message) = broken {
                self.problem(message, path.clone());
            }
        }
        Ok(())
    }
}
