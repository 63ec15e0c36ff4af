//! The digest layer's error type. The store re-maps every variant onto its own
//! (`refine_store::StoreError`), so messages and codes stay the same whichever layer reports.

use std::io;
use std::path::PathBuf;

use crate::Digest;

/// `Result` with a [`DigestError`].
pub type Result<T, E = DigestError> = std::result::Result<T, E>;

/// What can go wrong while parsing or computing a digest.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DigestError {
    /// A string that should be an OCI digest is not one.
    #[error("`{input}` is not an OCI digest: {reason}")]
    #[diagnostic(
        code(refine::store::bad_digest),
        help("A digest is `sha256:` followed by 64 lowercase hexadecimal digits.")
    )]
    BadDigest { input: String, reason: &'static str },

    /// Content did not hash to the digest it was declared with.
    #[error("`{what}` does not match its expected digest: expected `{expected}`, found `{actual}`")]
    #[diagnostic(
        code(refine::store::digest_mismatch),
        help(
            "Nothing was stored. Check that this is the right file, or correct the sha256 that was given for it."
        )
    )]
    Mismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },

    /// A file type the tree hash refuses (device, FIFO, socket).
    #[error("`{path}` is a {what}, which refine cannot store")]
    #[diagnostic(
        code(refine::store::unsupported_file),
        help(
            "Only regular files, directories and symbolic links can enter the store; remove it from the tree."
        )
    )]
    Unsupported { path: PathBuf, what: &'static str },

    /// An I/O operation on a path failed.
    #[error("Could not {action} `{path}`: {source}")]
    #[diagnostic(code(refine::store::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// `map_err` helper: `.map_err(io_err("read", &path))`.
pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> DigestError {
    let path = path.into();
    move |source| DigestError::Io {
        action,
        path,
        source,
    }
}
