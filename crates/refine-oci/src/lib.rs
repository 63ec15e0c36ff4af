//! refine-oci: the one OCI distribution layer that base images and the remote store share:
//! credentials (`~/.docker/config.json` and the environment), loopback detection.

pub mod auth;

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

/// Whether `host` (`HOST[:PORT]`) is a loopback address, spoken to in plain HTTP.
pub fn is_loopback(host: &str) -> bool {
    let bare = host
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    bare == "localhost"
        || bare == "[::1]"
        || bare
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}
