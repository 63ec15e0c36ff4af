//! Blob locations: `locations/<hex>` lists the registry repositories a large blob is known to
//! be in, one `<registry> <repository>` per line, because this store pushed it there or pulled
//! it from there. A push to another repository of the same registry asks the registry to mount
//! the blob from one of them (OCI distribution spec, "Mounting a blob from another
//! repository") instead of sending its bytes again, as skopeo does with its blob-info cache.
//!
//! A location is a hint, never trusted: a registry that refuses the mount gets the upload, and
//! one that accepts it has the blob under that digest itself. Blobs under [`MIN_LOCATED_SIZE`]
//! get no record, as a mount would save less than the record costs. A record follows its
//! blob: `gc` removes it with the blob, `verify` reports one whose blob is missing or that
//! cannot be read (and `--fix` drops it).

use super::walk::{BadEntry, BlobRecord, blob_records};
use super::{Bucket, Digest, LocalStore, Result};

/// Blobs smaller than this (1 MiB) are not recorded.
pub const MIN_LOCATED_SIZE: u64 = 1 << 20;
/// The most recent locations a record keeps.
const MAX_LOCATIONS: usize = 8;

/// One place a blob is known to be: a registry (`host[:port]`) and a repository in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub registry: String,
    pub repository: String,
}

fn usable(part: &str) -> bool {
    !part.is_empty() && !part.contains(char::is_whitespace)
}

fn parse(text: &str) -> std::result::Result<Vec<BlobLocation>, String> {
    text.lines()
        .map(|line| match line.split_once(' ') {
            Some((registry, repository)) if usable(registry) && usable(repository) => {
                Ok(BlobLocation {
                    registry: registry.to_owned(),
                    repository: repository.to_owned(),
                })
            }
            _ => Err(format!(
                "the line `{}` is not `<registry> <repository>`",
                line.chars().take(80).collect::<String>()
            )),
        })
        .collect()
}

impl LocalStore {
    /// Remembers that the blob `digest`, which the store holds, is in `repository` of
    /// `registry`. Does nothing for a blob the store lacks or one under [`MIN_LOCATED_SIZE`],
    /// or for names a record cannot hold (white space).
    pub fn record_location(&self, digest: &Digest, registry: &str, repository: &str) -> Result<()> {
        if !usable(registry) || !usable(repository) {
            return Ok(());
        }
        let large = fs_err::metadata(self.blob_path(digest))
            .is_ok_and(|m| m.is_file() && m.len() >= MIN_LOCATED_SIZE);
        if !large {
            return Ok(());
        }
        let location = BlobLocation {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
        };
        let mut known = self.blob_locations(digest);
        if known.contains(&location) {
            return Ok(());
        }
        known.push(location);
        let skip = known.len().saturating_sub(MAX_LOCATIONS);
        let text: String = known[skip..]
            .iter()
            .map(|l| format!("{} {}\n", l.registry, l.repository))
            .collect();
        let _lease = self.lease()?;
        self.write_atomic(&self.location_path(digest), text.as_bytes())
    }

    /// Where the blob `digest` is known to be, oldest first; nothing when there is no record
    /// or it cannot be read (a hint is never worth an error).
    pub fn blob_locations(&self, digest: &Digest) -> Vec<BlobLocation> {
        fs_err::read_to_string(self.location_path(digest))
            .ok()
            .and_then(|text| parse(&text).ok())
            .unwrap_or_default()
    }

    /// Every location record, and what under `locations/` is unreadable or malformed.
    pub(crate) fn list_locations(&self) -> Result<(Vec<BlobRecord>, Vec<BadEntry>)> {
        blob_records(&self.bucket_path(Bucket::Locations), |bytes| {
            let text = std::str::from_utf8(bytes).map_err(|_| "it is not UTF-8".to_owned())?;
            parse(text).map(drop)
        })
    }
}
