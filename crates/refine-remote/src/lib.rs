//! The remote store: any registry that implements the OCI distribution-spec 1.1 (Zot in
//! production, the CNCF distribution registry in tests), and the S3 wheel mirror.
//!
//! - [`oci::OciRemote`] implements [`Remote`] over `oci-client`: one repository
//!   per artifact kind under a prefix (`PREFIX/wheel`, `PREFIX/repair`, …), tag = key hex;
//!   blobs streamed from and to files, the manifest pushed last.
//! - [`intoto`] turns refine's provenance record into an in-toto v1 statement with the SLSA
//!   provenance v1 predicate, attached to the artifact as an OCI referrer (`subject`), with the
//!   referrers tag schema where the registry has no referrers API.
//! - [`auth`] finds credentials: `REFINE_REGISTRY_USER` / `REFINE_REGISTRY_PASSWORD`, else
//!   `~/.docker/config.json` (credential helpers included). Secrets never reach a message.
//! - [`mirror::WheelMirror`] puts repaired wheels into an S3 bucket laid out as a PEP 503
//!   simple index.
//!
//! See `docs/remote.md`.

pub mod intoto;
pub mod mirror;
pub mod oci;

pub use refine_oci::auth;
pub use refine_store::remote::{Remote, RemoteError};

pub use mirror::WheelMirror;
pub use oci::OciRemote;
use refine_oci::is_loopback;
use refine_store as store;

/// The default repository prefix.
pub const DEFAULT_PREFIX: &str = "artifacts";

/// A parsed remote URL: `oci://HOST[:PORT][/PREFIX]`.
///
/// `oci://` uses HTTPS, except for a loopback host (`localhost`, `127.*`, `[::1]`), which is
/// spoken to in plain HTTP; `oci+http://` forces plain HTTP (configure it knowingly),
/// `oci+https://` forces HTTPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteUrl {
    /// `HOST[:PORT]`.
    pub registry: String,
    /// Repositories live under it: `PREFIX/<kind>`.
    pub prefix: String,
    /// Plain HTTP rather than HTTPS.
    pub plain_http: bool,
}

fn valid_component(c: &str) -> bool {
    // distribution-spec: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    !c.is_empty()
        && c.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
        && c.as_bytes()[0].is_ascii_alphanumeric()
        && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
}

impl RemoteUrl {
    /// Parses `oci://HOST[:PORT][/PREFIX]` (see the type's doc for the schemes).
    pub fn parse(url: &str) -> Result<Self, RemoteError> {
        let bad = |why: &str| {
            RemoteError::new(
                format!("`{url}` is not a remote store URL: {why}"),
                "Write `oci://HOST:PORT/PREFIX`, e.g. `oci://zot.example.com/refine` (`oci+http://` for plain HTTP)",
            )
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("it has no `oci://` scheme"))?;
        let (host, prefix) = match rest.split_once('/') {
            Some((h, p)) => (h, p.trim_end_matches('/')),
            None => (rest, ""),
        };
        if host.is_empty() {
            return Err(bad("it names no host"));
        }
        if host.contains('@') {
            return Err(bad(
                "credentials do not belong in the URL; use `REFINE_REGISTRY_USER` and `REFINE_REGISTRY_PASSWORD` or `docker login`",
            ));
        }
        let prefix = if prefix.is_empty() {
            DEFAULT_PREFIX.to_string()
        } else {
            prefix.to_string()
        };
        if !prefix.split('/').all(valid_component) {
            return Err(bad(
                "the prefix must be lowercase path components (`a-z`, `0-9`, `.`, `_`, `-`)",
            ));
        }
        let plain_http = match scheme {
            "oci" => is_loopback(host),
            "oci+http" => true,
            "oci+https" => false,
            _ => return Err(bad("the scheme is not `oci`, `oci+http` or `oci+https`")),
        };
        Ok(RemoteUrl {
            registry: host.to_string(),
            prefix,
            plain_http,
        })
    }

    /// The repository for artifacts of `kind`.
    pub fn repository(&self, kind: &str) -> String {
        format!("{}/{kind}", self.prefix)
    }
}

impl std::fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`oci://{}/{}`", self.registry, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = RemoteUrl::parse("oci://127.0.0.1:5000/ci/cache").unwrap();
        assert_eq!(u.registry, "127.0.0.1:5000");
        assert_eq!(u.prefix, "ci/cache");
        assert!(u.plain_http);
        let u = RemoteUrl::parse("oci://zot.example.com").unwrap();
        assert_eq!(u.prefix, "artifacts");
        assert!(!u.plain_http);
        assert!(
            RemoteUrl::parse("oci+http://zot:8080/x")
                .unwrap()
                .plain_http
        );
        assert!(
            !RemoteUrl::parse("oci+https://localhost:8080/x")
                .unwrap()
                .plain_http
        );
        assert!(RemoteUrl::parse("oci://localhost:5000").unwrap().plain_http);
        assert!(RemoteUrl::parse("http://zot/x").is_err());
        assert!(RemoteUrl::parse("oci://u:p@zot/x").is_err());
        assert!(RemoteUrl::parse("oci://zot/Upper").is_err());
    }
}
