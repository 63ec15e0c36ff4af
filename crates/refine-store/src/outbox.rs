//! The outbox: `outbox/<kind>/<key>` holds `sha256:<manifest hex>\n` while an artifact is
//! being pushed to the remote store, and stays if the push does not finish, so that the next
//! build pushes it (`refine_remote::oci`). An entry is not a gc root: an artifact evicted
//! from the local store is not pushed any more, and `gc` removes its entry.

use std::io;
use std::path::PathBuf;

use super::artifact::{parse_kind, validate_key};
use super::walk::{BadEntry, entries};
use super::{Bucket, Digest, Kind, LocalStore, Result, StoreError};

/// An artifact whose push has not finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    pub kind: Kind,
    pub key: String,
    /// Its manifest.
    pub digest: Digest,
}

/// An outbox entry and its file.
pub(crate) type OutboxFile = (PathBuf, OutboxEntry);

fn parse_entry(text: &str) -> std::result::Result<Digest, String> {
    let line = text.strip_suffix('\n').unwrap_or(text);
    Digest::parse(line).map_err(|e| format!("expected `sha256:<hex>`: {e}"))
}

impl LocalStore {
    /// Records that the artifact `digest` for (`kind`, `key`) is about to be pushed.
    pub fn outbox_add(&self, kind: &str, key: &str, digest: &Digest) -> Result<()> {
        let kind = parse_kind(kind)?;
        validate_key(key)?;
        let _lease = self.lease()?;
        self.write_atomic(
            &self.outbox_path(kind, key),
            format!("{digest}\n").as_bytes(),
        )
    }

    /// Forgets the outbox entry for (`kind`, `key`): its push finished, or its artifact is
    /// gone. An absent entry is fine.
    pub fn outbox_remove(&self, kind: &str, key: &str) -> Result<()> {
        let kind = parse_kind(kind)?;
        validate_key(key)?;
        let path = self.outbox_path(kind, key);
        match fs_err::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::io("remove", path, e)),
            _ => Ok(()),
        }
    }

    /// Every artifact whose push has not finished, sorted by kind and key. Malformed entries
    /// are left out (`refine store verify` reports them).
    pub fn outbox_list(&self) -> Result<Vec<OutboxEntry>> {
        let (good, _) = self.list_outbox()?;
        let mut out: Vec<OutboxEntry> = good.into_iter().map(|(_, e)| e).collect();
        out.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
        Ok(out)
    }

    /// Every outbox entry, and what under `outbox/` is unreadable, malformed or stray.
    pub(crate) fn list_outbox(&self) -> Result<(Vec<OutboxFile>, Vec<BadEntry>)> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (name, path, is_dir) in entries(&self.bucket_path(Bucket::Outbox))? {
            if !(is_dir && Kind::parse(&name).is_some()) {
                bad.push(BadEntry::new(
                    &path,
                    format!("it is not a folder named after a kind ({})", Kind::names()),
                ));
            }
        }
        for kind in Kind::ALL {
            for (key, path, is_dir) in entries(&self.outbox_dir(kind))? {
                let entry = (|| {
                    if is_dir {
                        return Err("it is a folder, not a file".to_owned());
                    }
                    validate_key(&key).map_err(|_| "the file name is not a key".to_owned())?;
                    let text = fs_err::read_to_string(&path).map_err(|e| e.to_string())?;
                    let digest = parse_entry(&text)?;
                    Ok(OutboxEntry { kind, key, digest })
                })();
                match entry {
                    Ok(e) => good.push((path, e)),
                    Err(reason) => bad.push(BadEntry::new(&path, reason)),
                }
            }
        }
        Ok((good, bad))
    }
}
