//! The remote store: any registry that implements the OCI distribution-spec 1.1 (Zot in
//! production, the CNCF distribution registry in tests), and the S3 wheel mirror.
//!
//! - [`oci::OciRemote`] implements [`Remote`] over `oci-client`: one repository
//!   per artifact kind under a prefix (`PREFIX/wheel`, `PREFIX/repair`, …), tag = key hex;
//!   blobs streamed from and to files, the manifest pushed last.
//! - [`intoto`] attaches the in-toto statement of an artifact's provenance (made by
//!   `refine-attest`), and the signed envelopes of it, to the artifact as OCI referrers
//!   (`subject`), with the referrers tag schema where the registry has no referrers API. With
//!   trusted keys, an artifact is used only if a trusted key signed it for the key asked for
//!   (`oci::attest`, docs/security.md).
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
use refine_oci::{RegistryUrl, Schemes, is_repository_path};

/// The default repository prefix.
pub const DEFAULT_PREFIX: &str = "artifacts";

/// A parsed remote URL: `oci://HOST[:PORT][/PREFIX]`.
///
/// `oci://` uses HTTPS, except for a loopback host (`localhost`, `127.*`, `[::1]`), which is
/// spoken to in plain HTTP; `oci+http://` forces plain HTTP (configure it knowingly),
/// `oci+https://` forces HTTPS (parsed by `refine_oci::RegistryUrl`, as image registries are).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteUrl {
    /// `HOST[:PORT]`.
    pub registry: String,
    /// Repositories live under it: `PREFIX/<kind>`.
    pub prefix: String,
    /// Plain HTTP rather than HTTPS.
    pub plain_http: bool,
}

impl RemoteUrl {
    /// Parses `oci://HOST[:PORT][/PREFIX]` (see the type's doc for the schemes).
    pub fn parse(url: &str) -> Result<Self, RemoteError> {
        let bad = |why: &dyn std::fmt::Display| {
            RemoteError::new(
                format!("`{url}` is not a remote store URL: {why}"),
                "Write `oci://HOST:PORT/PREFIX`, e.g. `oci://zot.example.com/refine` (`oci+http://` for plain HTTP)",
            )
        };
        let parsed = RegistryUrl::parse(url, Schemes::Oci).map_err(|e| bad(&e))?;
        let prefix = if parsed.path.is_empty() {
            DEFAULT_PREFIX.to_string()
        } else {
            parsed.path
        };
        if !is_repository_path(&prefix) {
            return Err(bad(
                &"the prefix must be lowercase path components (`a-z`, `0-9`, and `.`, `_`, `-` between them)",
            ));
        }
        Ok(RemoteUrl {
            registry: parsed.registry,
            prefix,
            plain_http: parsed.plain_http,
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
        assert!(RemoteUrl::parse("oci://zot:port/x").is_err());
        assert_eq!(RemoteUrl::parse("oci://[::1]:5000/a/").unwrap().prefix, "a");
        let e = RemoteUrl::parse("oci:///x").unwrap_err();
        assert!(e.message.contains("names no host"), "{e}");
    }
}
