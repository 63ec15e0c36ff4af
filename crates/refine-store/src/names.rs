//! Fetched names: `names/<hex>` holds the file name a source blob was fetched or imported
//! under (no newline), because pip needs a wheel's own file name and blobs have only
//! digests. A name follows its blob: `gc` removes it with the blob, `verify` reports a name
//! whose blob is missing (and `--fix` drops it, or a name whose blob it drops).

use std::io;

use super::error::io_err;
use super::walk::{BadEntry, BlobRecord, blob_records};
use super::{Bucket, Digest, LocalStore, Result, StoreError};

/// Why `name` cannot be a fetched file's name, if it cannot.
fn check_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.trim().is_empty() {
        return Err("it is empty");
    }
    if name.trim() != name {
        return Err("it starts or ends with white space");
    }
    if name.contains(['/', '\0']) {
        return Err("it holds a `/` or a NUL byte");
    }
    if name == "." || name == ".." {
        return Err("it is `.` or `..`");
    }
    Ok(())
}

/// The name a `names/` file holds (read as earlier refines did: trimmed).
fn parse_name(bytes: &[u8]) -> std::result::Result<String, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8".to_owned())?;
    let name = text.trim();
    check_name(name).map_err(|reason| format!("the name `{name}` is unusable: {reason}"))?;
    Ok(name.to_owned())
}

impl LocalStore {
    /// Remembers that the blob `digest` was fetched (or imported) as the file `name`.
    pub fn record_name(&self, digest: &Digest, name: &str) -> Result<()> {
        check_name(name).map_err(|reason| StoreError::BadName {
            name: name.to_owned(),
            reason,
        })?;
        let _lease = self.lease()?;
        self.write_atomic(&self.name_path(digest), name.as_bytes())
    }

    /// The file name the blob `digest` was fetched under, if one was recorded. A malformed
    /// record is an error ([`StoreError::BadRef`]) naming its file.
    pub fn lookup_name(&self, digest: &Digest) -> Result<Option<String>> {
        let path = self.name_path(digest);
        let bytes = match fs_err::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        parse_name(&bytes)
            .map(Some)
            .map_err(|reason| StoreError::BadRef { path, reason })
    }

    /// Every fetched name, and what under `names/` is unreadable or malformed.
    pub(crate) fn list_names(&self) -> Result<(Vec<BlobRecord>, Vec<BadEntry>)> {
        blob_records(&self.bucket_path(Bucket::Names), |bytes| {
            parse_name(bytes).map(drop)
        })
    }
}
