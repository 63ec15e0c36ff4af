//! Source digests: how refine identifies the leaves of the build graph.
//!
//! - **Fixed-output sources** (sdists, tarballs, recipe files, downloaded wheels) are identified
//!   by the sha256 of their bytes, an OCI [`Digest`]; [`sha256_file`] computes it and
//!   [`verify_sha256`] checks a file against a declared digest. The local store keeps them as
//!   plain blobs under that digest (`refine_store::LocalStore::put_source_file`).
//! - **`path` sources** (a folder in the workspace) are identified by a BLAKE3 tree hash over
//!   relative paths, contents and the executable bit, never mtimes: see [`tree_hash`].

use std::path::Path;

use crate::error::io_err;
use crate::{Digest, DigestError, Result};

/// The sha256 digest and size of the file at `path`, streamed.
pub fn sha256_file(path: &Path) -> Result<(Digest, u64)> {
    let file = std::fs::File::open(path).map_err(io_err("open", path))?;
    Digest::of_reader(std::io::BufReader::with_capacity(1 << 20, file))
        .map_err(io_err("read", path))
}

/// Checks that the file at `path` hashes to `expected`; a mismatch is a
/// [`DigestError::Mismatch`] naming both digests.
pub fn verify_sha256(path: &Path, expected: &Digest) -> Result<()> {
    let (actual, _) = sha256_file(path)?;
    if actual != *expected {
        return Err(DigestError::Mismatch {
            what: path.display().to_string(),
            expected: *expected,
            actual,
        });
    }
    Ok(())
}
