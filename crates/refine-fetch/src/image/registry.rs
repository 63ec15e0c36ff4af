//! Pulling an image from a registry into a layout folder, verifying every document and blob
//! against its digest as it lands. The registry is the user's choice, never the rule's:
//! `REFINE_IMAGE_REGISTRY` (`HOST[:PORT][/PREFIX]`, e.g. `quay.io` or a mirror such as
//! `127.0.0.1:5000/mirror`), spoken to over HTTPS except on loopback or with `oci+http://`;
//! credentials as for the remote store (`REFINE_REGISTRY_USER`/`_PASSWORD`, Docker's config).
//! Addresses, the client, error classes, retries and the runtime are `refine-oci`'s.

use std::path::Path;

use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use refine_oci::auth::Credentials;
use refine_oci::retry::{Attempt, retried, retried_attempt};
use refine_oci::spec::{Descriptor, ImageManifest};
use refine_oci::{ErrorClass, RegistryUrl, Schemes, classify};

use super::blobs::Layout;
use super::{
    Document, ImageError, Pin, document_media_types, oci_arch, select, sha256_bytes, sha256_file,
};

/// The variable naming the registry images are pulled from.
pub const REGISTRY_VAR: &str = "REFINE_IMAGE_REGISTRY";

/// Where images are pulled from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRegistry {
    /// `HOST[:PORT]`.
    pub host: String,
    /// Repositories are looked up under it (empty: at the top).
    pub prefix: String,
    pub plain_http: bool,
}

impl ImageRegistry {
    /// The registry `REFINE_IMAGE_REGISTRY` names.
    pub fn from_env() -> Result<ImageRegistry, ImageError> {
        match std::env::var(REGISTRY_VAR) {
            Ok(v) if !v.trim().is_empty() => ImageRegistry::parse(v.trim()),
            _ => Err(ImageError::Invalid(
                "No registry to pull images from: `REFINE_IMAGE_REGISTRY` is not set".into(),
                "Set `REFINE_IMAGE_REGISTRY` to the registry that serves the base's repository (`quay.io`, or a mirror such as `127.0.0.1:5000/mirror`), or use a `layout` base".into(),
            )),
        }
    }

    /// Parses `[SCHEME://]HOST[:PORT][/PREFIX]`; schemes as for the remote store, and
    /// `http://` / `https://`.
    pub fn parse(s: &str) -> Result<ImageRegistry, ImageError> {
        let parsed = RegistryUrl::parse(s, Schemes::OciOrHttp).map_err(|why| {
            ImageError::Invalid(
                format!("`{s}` is not a registry: {why}"),
                "Write `HOST[:PORT][/PREFIX]`, e.g. `quay.io` or `oci+http://mirror.lan:5000/pypa`"
                    .into(),
            )
        })?;
        Ok(ImageRegistry {
            host: parsed.registry,
            prefix: parsed.path,
            plain_http: parsed.plain_http,
        })
    }

    /// Where `repo` is looked up: under the prefix.
    pub fn repository(&self, repo: &str) -> String {
        if self.prefix.is_empty() {
            repo.to_string()
        } else {
            format!("{}/{repo}", self.prefix)
        }
    }
}

/// One pull: the client, and the repository and layout it works on.
struct Puller<'a> {
    registry: &'a ImageRegistry,
    client: Client,
    auth: RegistryAuth,
    repo: String,
    /// The image as messages name it (`HOST/REPO@DIGEST` or `HOST/REPO:TAG`).
    shown: String,
    layout: &'a Layout,
}

/// Pulls `repository` pinned by `pin` (and, from an index, the manifest for `arch`) into a
/// layout in `dir`. Returns the layout and the digest the pin named or resolved to.
pub fn pull(
    registry: &ImageRegistry,
    repository: &str,
    pin: &Pin,
    arch: &str,
    dir: &Path,
) -> Result<(Layout, String), ImageError> {
    let repo = registry.repository(repository);
    let shown = match pin {
        Pin::Digest(d) => format!("{}/{repo}@{d}", registry.host),
        Pin::Tag(t) => format!("{}/{repo}:{t}", registry.host),
    };
    let creds = Credentials::resolve(&registry.host).map_err(|e| ImageError::Registry {
        reference: shown.clone(),
        message: e.message.clone(),
        help: e.help.clone().unwrap_or_default(),
    })?;
    let layout = Layout::create(dir)?;
    let puller = Puller {
        registry,
        client: refine_oci::client::client(registry.plain_http),
        auth: creds.registry_auth(),
        repo,
        shown,
        layout: &layout,
    };
    let top =
        refine_oci::block_on(puller.pull(pin, arch)).map_err(|e| ImageError::Registry {
            reference: puller.shown.clone(),
            message: e.to_string(),
            help: "Check the process's limit on threads (`ulimit -u`)".into(),
        })??;
    Ok((layout, top))
}

impl Puller<'_> {
    fn by_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(self.registry.host.clone(), self.repo.clone(), digest.into())
    }

    /// The document the pin names and, from an index, the manifest for `arch`; then every
    /// blob that manifest lists. Returns the digest of the document the pin named.
    async fn pull(&self, pin: &Pin, arch: &str) -> Result<String, ImageError> {
        let (top, doc) = match pin {
            Pin::Digest(d) => self.document(self.by_digest(d), Some(d)).await?,
            Pin::Tag(t) => {
                let r =
                    Reference::with_tag(self.registry.host.clone(), self.repo.clone(), t.clone());
                self.document(r, None).await?
            }
        };
        let manifest: Box<ImageManifest> = match doc {
            Document::Manifest(m) => m,
            Document::Index(list) => {
                let chosen = select(list.manifests(), oci_arch(arch))?
                    .digest()
                    .to_string();
                match self
                    .document(self.by_digest(&chosen), Some(&chosen))
                    .await?
                    .1
                {
                    Document::Manifest(m) => m,
                    // `unpack` names this error; the layout holds what it needs to.
                    Document::Index(_) => return Ok(top),
                }
            }
        };
        let reference = self.by_digest(&top);
        for blob in std::iter::once(manifest.config()).chain(manifest.layers()) {
            self.blob(&reference, blob).await?;
        }
        Ok(top)
    }

    /// One document, verified (against `expected` when the pin names it) and written into the
    /// layout.
    async fn document(
        &self,
        reference: Reference,
        expected: Option<&str>,
    ) -> Result<(String, Document), ImageError> {
        let accepted = document_media_types();
        let accepted: Vec<&str> = accepted.iter().map(String::as_str).collect();
        let (bytes, _) = retried(|| {
            self.client
                .pull_manifest_raw(&reference, &self.auth, &accepted)
        })
        .await
        .map_err(|e| self.error(&e))?;
        let actual = sha256_bytes(&bytes);
        if let Some(expected) = expected
            && actual != expected
        {
            return Err(ImageError::DigestMismatch {
                what: self.shown.clone(),
                expected: expected.to_string(),
                actual,
            });
        }
        let path = self.layout.blob_path(&actual)?;
        fs_err::write(&path, &bytes).map_err(|e| ImageError::io(&path, e))?;
        let doc = Document::parse(&bytes, &format!("`{actual}` from {}", self.shown))?;
        Ok((actual, doc))
    }

    /// One blob into the layout, unless it is there: streamed to a `.partial` file, verified,
    /// then renamed into place.
    async fn blob(&self, reference: &Reference, blob: &Descriptor) -> Result<(), ImageError> {
        let digest = blob.digest().to_string();
        let path = self.layout.blob_path(&digest)?;
        if path.exists() && sha256_file(&path)? == digest {
            return Ok(());
        }
        let partial = path.with_extension("partial");
        let layer = oci_client::manifest::OciDescriptor {
            media_type: blob.media_type().to_string(),
            digest: digest.clone(),
            size: i64::try_from(blob.size()).unwrap_or(i64::MAX),
            ..Default::default()
        };
        // Each attempt writes the file from its start.
        retried_attempt(|| async {
            let file = tokio::fs::File::create(&partial)
                .await
                .map_err(|e| Attempt::Local(ImageError::io(&partial, e)))?;
            self.client
                .pull_blob(reference, &layer, file)
                .await
                .map_err(Attempt::Registry)
        })
        .await
        .map_err(|e| match e {
            Attempt::Local(e) => e,
            Attempt::Registry(e) => self.error(&e),
        })?;
        let actual = sha256_file(&partial)?;
        if actual != digest {
            return Err(ImageError::DigestMismatch {
                what: format!("a blob of {}", self.shown),
                expected: digest,
                actual,
            });
        }
        fs_err::rename(&partial, &path).map_err(|e| ImageError::io(&path, e))
    }

    fn error(&self, e: &OciDistributionError) -> ImageError {
        let host = &self.registry.host;
        let help = match classify(e) {
            ErrorClass::Unauthorized => format!(
                "Log in to `{host}` (`docker login`), or set `REFINE_REGISTRY_USER` and `REFINE_REGISTRY_PASSWORD`"
            ),
            ErrorClass::NotFound => format!(
                "Check the repository and digest, and that `REFINE_IMAGE_REGISTRY` (`{host}`) serves it"
            ),
            _ => {
                format!("Check that `{host}` is reachable from this host (`REFINE_IMAGE_REGISTRY`)")
            }
        };
        ImageError::Registry {
            reference: self.shown.clone(),
            message: refine_oci::error::describe(e),
            help,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_parse_like_remote_urls() {
        let r = ImageRegistry::parse("127.0.0.1:5000/mirror/").unwrap();
        assert_eq!(
            r,
            ImageRegistry {
                host: "127.0.0.1:5000".into(),
                prefix: "mirror".into(),
                plain_http: true
            }
        );
        assert_eq!(r.repository("test/busybox"), "mirror/test/busybox");
        let q = ImageRegistry::parse("quay.io").unwrap();
        assert!(!q.plain_http);
        assert_eq!(q.repository("pypa/x"), "pypa/x");
        assert!(
            ImageRegistry::parse("oci+http://mirror.lan:5000/pypa")
                .unwrap()
                .plain_http
        );
        assert!(
            !ImageRegistry::parse("https://localhost/x")
                .unwrap()
                .plain_http
        );
        for bad in ["", "u:p@quay.io", "ftp://quay.io", "quay.io:port"] {
            let e = ImageRegistry::parse(bad).unwrap_err();
            assert!(e.to_string().contains("is not a registry"), "{bad}: {e}");
        }
    }
}
