//! The seam to a shared cache behind the local store (an OCI registry, Zot in production).
//! The executor and the planner look keys up locally first, then through a [`Remote`]; a
//! remote hit costs one manifest read, and its blobs are pulled only when an action or
//! `--out` needs the artifact's content. Every new artifact is pushed.

use std::fmt;

use crate::{Digest, LocalStore, Manifest};

/// Why a remote operation failed; rendered by miette like every other error.
#[derive(Debug, Clone)]
pub struct RemoteError {
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RemoteError {}

impl RemoteError {
    /// An error with a message and a hint.
    pub fn new(message: impl Into<String>, help: impl Into<String>) -> Self {
        RemoteError {
            message: message.into(),
            help: Some(help.into()),
        }
    }
}

impl miette::Diagnostic for RemoteError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("refine::remote"))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
}

/// A remote artifact store.
pub trait Remote: Send + Sync {
    /// Where it is, for messages (never with credentials).
    fn describe(&self) -> String;
    /// The manifest stored for `(kind, key)`, with its digest, if there is one.
    fn lookup(&self, kind: &str, key: &str) -> Result<Option<(Digest, Manifest)>, RemoteError>;
    /// [`Remote::lookup`] for many `(kind, key)` pairs at once (a remote may send the
    /// requests concurrently); one answer per pair, in order.
    #[allow(clippy::type_complexity)]
    fn lookup_many(
        &self,
        keys: &[(String, String)],
    ) -> Vec<Result<Option<(Digest, Manifest)>, RemoteError>> {
        keys.iter().map(|(k, key)| self.lookup(k, key)).collect()
    }
    /// Copies the artifact `digest` (every blob, verified, then the manifest and its ref for
    /// `(kind, key)`) into the local store.
    fn pull(
        &self,
        local: &LocalStore,
        kind: &str,
        key: &str,
        digest: &Digest,
    ) -> Result<(), RemoteError>;
    /// Pushes the local artifact `digest` for `(kind, key)`: blobs first, the manifest last,
    /// tagged with the key, then its provenance as a referrer.
    fn push(
        &self,
        local: &LocalStore,
        kind: &str,
        key: &str,
        digest: &Digest,
    ) -> Result<(), RemoteError>;
}
