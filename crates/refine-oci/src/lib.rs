//! refine-oci: the one OCI distribution layer that base images (`refine-fetch`) and the remote
//! store (`refine-remote`) share, and the network plumbing every remote call of refine uses:
//!
//! - [`address`]: registry addresses (`[SCHEME://]HOST[:PORT][/PATH]`), the transport they imply
//!   (HTTPS, plain HTTP on loopback or with `oci+http://`), loopback detection.
//! - [`auth`]: credentials (`REFINE_REGISTRY_USER` / `_PASSWORD`, Docker's `config.json`).
//! - [`client`]: the `oci-client` configuration every registry client uses.
//! - [`error`]: what a failed registry call means (not found, refused credentials,
//!   unreachable, throttled, …), so both users classify alike.
//! - [`open`]: manifest lookups on a registry that asks for no credentials, without
//!   oci-client's `/v2/` round trip before each one.
//! - [`retry`]: the retry policy for transient failures (registry calls and HTTP fetches).
//! - [`runtime`]: the one tokio runtime, built on first use, that every synchronous caller
//!   blocks on.
//! - [`spec`]: the OCI image-spec types (`oci-spec`) for documents refine reads from others.

pub mod address;
pub mod auth;
pub mod client;
pub mod error;
pub mod open;
pub mod retry;
pub mod runtime;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// The OCI image-spec types and media types, from `oci-spec` (the version `oci-client` uses).
pub use oci_spec::image as spec;

pub use address::{RegistryUrl, Schemes, UrlError, is_loopback, is_repository_path};
pub use error::{ErrorClass, classify};
pub use retry::RetryPolicy;
pub use runtime::{RuntimeError, block_on};

use std::fmt;

/// Why talking to a registry failed: a message and a hint, rendered by miette.
#[derive(Debug, Clone)]
pub struct RegistryError {
    pub message: String,
    pub help: Option<String>,
}

impl RegistryError {
    /// An error with a message and a hint.
    pub fn new(message: impl Into<String>, help: impl Into<String>) -> Self {
        RegistryError {
            message: message.into(),
            help: Some(help.into()),
        }
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RegistryError {}

impl miette::Diagnostic for RegistryError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("refine::remote"))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
}
