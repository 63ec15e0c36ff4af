//! The store's error type: every message names the object and says what to do next.

use std::io;
use std::path::{Path, PathBuf};

use refine_digest::DigestError;

use crate::Digest;

/// `Result` with a [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What can go wrong in the local store, the source hashers and the packer.
///
/// A corrupt or foreign store never makes refine panic: it surfaces here.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum StoreError {
    /// A string that should be an OCI digest is not one.
    #[error("`{input}` is not an OCI digest: {reason}")]
    #[diagnostic(
        code(refine::store::bad_digest),
        help("A digest is `sha256:` followed by 64 lowercase hexadecimal digits.")
    )]
    BadDigest { input: String, reason: &'static str },

    /// A key is not 64 lowercase hex digits.
    #[error("`{input}` is not a refine key: {reason}")]
    #[diagnostic(
        code(refine::store::bad_key),
        help("A key is a BLAKE3 hash written as 64 lowercase hexadecimal digits.")
    )]
    BadKey { input: String, reason: &'static str },

    /// An artifact kind refine does not know.
    #[error("`{kind}` is not an artifact kind")]
    #[diagnostic(
        code(refine::store::bad_kind),
        help("Use one of `base`, `toolchain`, `runtime`, `pack`, `wheel`, `repair`.")
    )]
    BadKind { kind: String },

    /// Content did not hash to the digest it was declared with; nothing was stored.
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

    /// A blob in the store no longer hashes to its name.
    #[error("Blob `{digest}` in `{path}` is corrupt: its content hashes to `{actual}`")]
    #[diagnostic(
        code(refine::store::corrupt_blob),
        help(
            "Run `refine store verify` to list every damaged object, then `refine store verify --fix` to drop them; the next build recreates what is needed."
        )
    )]
    Corrupt {
        digest: Digest,
        path: PathBuf,
        actual: Digest,
    },

    /// A blob that something refers to is absent.
    #[error("Blob `{digest}` is missing from the store `{store}`")]
    #[diagnostic(
        code(refine::store::missing_blob),
        help(
            "Run `refine store verify` to see what refers to it; `refine store verify --fix` drops the broken entries so that the next build recreates them."
        )
    )]
    MissingBlob { digest: Digest, store: PathBuf },

    /// A manifest blob is not a usable OCI image manifest.
    #[error("Manifest `{digest}` is not a usable OCI image manifest: {reason}")]
    #[diagnostic(
        code(refine::store::bad_manifest),
        help("Run `refine store verify --fix` to drop it; the next build recreates the artifact.")
    )]
    BadManifest { digest: Digest, reason: String },

    /// A ref, pin, label, name or outbox file holds something unreadable.
    #[error("`{path}` is malformed: {reason}")]
    #[diagnostic(
        code(refine::store::bad_ref),
        help("Run `refine store verify --fix` to drop it.")
    )]
    BadRef { path: PathBuf, reason: String },

    /// A file name that cannot be recorded for a fetched source.
    #[error("`{name}` cannot be recorded as a fetched file's name: {reason}")]
    #[diagnostic(
        code(refine::store::bad_name),
        help("A fetched file's name is a plain file name, such as `numpy-2.1.3.tar.gz`.")
    )]
    BadName { name: String, reason: &'static str },

    /// The folder exists, holds files, and is not an OCI image layout.
    #[error("`{path}` is not an OCI image layout: {reason}")]
    #[diagnostic(
        code(refine::store::not_a_layout),
        help(
            "Point `--store`, `REFINE_STORE` or `store {{ local … }}` at an empty folder or at an existing refine store."
        )
    )]
    NotALayout { path: PathBuf, reason: String },

    /// A file type the packer and the tree hash refuse (device, FIFO, socket).
    #[error("`{path}` is a {what}, which refine cannot store")]
    #[diagnostic(
        code(refine::store::unsupported_file),
        help(
            "Only regular files, directories and symbolic links can enter the store; remove it from the tree."
        )
    )]
    Unsupported { path: PathBuf, what: &'static str },

    /// A layer title that would escape the unpacked tree.
    #[error("Layer title `{title}` is not a safe relative path")]
    #[diagnostic(
        code(refine::store::bad_title),
        help(
            "A title is a relative path of plain names, such as `numpy-2.1.3-cp312-cp312-linux_s390x.whl`."
        )
    )]
    BadTitle { title: String },

    /// No store folder could be chosen.
    #[error(
        "No folder for the local store: neither `REFINE_STORE`, `XDG_CACHE_HOME` nor `HOME` is set"
    )]
    #[diagnostic(
        code(refine::store::no_path),
        help("Pass `--store DIR` or set `REFINE_STORE`.")
    )]
    NoPath,

    /// An I/O operation on a path failed.
    #[error("{}", io_message(action, path, source))]
    #[diagnostic(
        code(refine::store::io),
        help("Check that the store folder exists, is writable and that its disk is not full.")
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    /// An I/O error on `path` while trying to `action` (a verb phrase: "read", "create").
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        // A verified reader reports corruption as an `io::Error` carrying a `StoreError`:
        // unwrap it so that the caller sees the real diagnosis.
        if source.get_ref().is_some_and(
            <dyn std::error::Error + std::marker::Send + std::marker::Sync + 'static>::is::<
                StoreError,
            >,
        ) {
            let inner = source.into_inner().expect("checked above");
            return *inner.downcast::<StoreError>().expect("checked above");
        }
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// "Could not read `PATH`: …", naming the path once: an error from fs-err names it already.
fn io_message(action: &str, path: &Path, source: &io::Error) -> String {
    let shown = format!("`{}`", path.display());
    let source = source.to_string();
    if source.contains(&shown) {
        format!("Could not {action}: {source}")
    } else {
        format!("Could not {action} {shown}: {source}")
    }
}

/// `map_err` helper: `.map_err(io_err("read", &path))`.
pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::io(action, path, source)
}

impl From<DigestError> for StoreError {
    fn from(err: DigestError) -> Self {
        match err {
            DigestError::BadDigest { input, reason } => StoreError::BadDigest { input, reason },
            DigestError::Mismatch {
                what,
                expected,
                actual,
            } => StoreError::Mismatch {
                what,
                expected,
                actual,
            },
            DigestError::Unsupported { path, what } => StoreError::Unsupported { path, what },
            DigestError::Io {
                action,
                path,
                source,
            } => StoreError::io(action, path, source),
        }
    }
}
