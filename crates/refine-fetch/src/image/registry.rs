//! Pulling an image from a registry into a layout folder, verifying every document and blob
//! against its digest as it lands. The registry is the user's choice, never the rule's:
//! `REFINE_IMAGE_REGISTRY` (`HOST[:PORT][/PREFIX]`, e.g. `quay.io` or a mirror such as
//! `127.0.0.1:5000/mirror`), spoken to over HTTPS except on loopback or with `oci+http://`;
//! credentials as for the remote store (`REFINE_REGISTRY_USER`/`_PASSWORD`, Docker's config).

use std::path::Path;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::{Client, Reference};

use super::source::Layout;
use super::{
    DOCKER_LIST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, Descriptor, Document, INDEX_MEDIA_TYPE,
    ImageError, MANIFEST_MEDIA_TYPE, Pin, oci_arch, select, sha256_bytes, sha256_file,
};
use refine_oci::auth::Credentials;

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

    /// Parses `[SCHEME://]HOST[:PORT][/PREFIX]`; schemes as for the remote store.
    pub fn parse(s: &str) -> Result<ImageRegistry, ImageError> {
        let (scheme, rest) = s.split_once("://").unwrap_or(("oci", s));
        let (host, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bad = |why: &str| {
            ImageError::Invalid(
                format!("`{s}` is not a registry: {why}"),
                "Write `HOST[:PORT][/PREFIX]`, e.g. `quay.io` or `oci+http://mirror.lan:5000/pypa`"
                    .into(),
            )
        };
        if host.is_empty() || host.contains('@') {
            return Err(bad("it names no host (credentials never go in the name)"));
        }
        let plain_http = match scheme {
            "oci" | "https" => refine_oci::is_loopback(host) && scheme == "oci",
            "oci+http" | "http" => true,
            "oci+https" => false,
            _ => return Err(bad("the scheme is not `oci`, `oci+http` or `oci+https`")),
        };
        Ok(ImageRegistry {
            host: host.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            plain_http,
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
    let fail = |e: OciDistributionError| registry_error(&shown, registry, e);
    let layout = Layout::create(dir)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ImageError::io(dir, e))?;
    let client = Client::new(ClientConfig {
        protocol: if registry.plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        user_agent: concat!("refine/", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    });
    let creds = Credentials::resolve(&registry.host).map_err(|e| ImageError::Registry {
        reference: shown.clone(),
        message: e.message.clone(),
        help: e.help.clone().unwrap_or_default(),
    })?;
    let auth = creds.registry_auth();
    let accepted = [
        INDEX_MEDIA_TYPE,
        MANIFEST_MEDIA_TYPE,
        DOCKER_LIST_MEDIA_TYPE,
        DOCKER_MANIFEST_MEDIA_TYPE,
    ];
    let by_digest = |d: &str| Reference::with_digest(registry.host.clone(), repo.clone(), d.into());
    // One document, verified and written into the layout.
    let document = |reference: Reference, expected: Option<&str>| {
        let (bytes, _) = rt
            .block_on(client.pull_manifest_raw(&reference, &auth, &accepted))
            .map_err(fail)?;
        let actual = sha256_bytes(&bytes);
        if let Some(expected) = expected
            && actual != expected
        {
            return Err(ImageError::DigestMismatch {
                what: shown.clone(),
                expected: expected.to_string(),
                actual,
            });
        }
        let path = layout.blob_path(&actual)?;
        fs_err::write(&path, &bytes).map_err(|e| ImageError::io(&path, e))?;
        let doc: Document = super::parse(&bytes, &format!("`{actual}` from {shown}"))?;
        Ok((actual, doc))
    };
    let (top, mut doc) = match pin {
        Pin::Digest(d) => document(by_digest(d), Some(d))?,
        Pin::Tag(t) => document(
            Reference::with_tag(registry.host.clone(), repo.clone(), t.clone()),
            None,
        )?,
    };
    if let Some(list) = &doc.manifests {
        let chosen = select(list, oci_arch(arch))?.digest.clone();
        doc = document(by_digest(&chosen), Some(&chosen))?.1;
    }
    let blobs: Vec<Descriptor> = doc
        .config
        .into_iter()
        .chain(doc.layers.unwrap_or_default())
        .collect();
    let reference = by_digest(&top);
    for blob in &blobs {
        let path = layout.blob_path(&blob.digest)?;
        if path.exists() && sha256_file(&path)? == blob.digest {
            continue;
        }
        let partial = path.with_extension("partial");
        let file = rt
            .block_on(tokio::fs::File::create(&partial))
            .map_err(|e| ImageError::io(&partial, e))?;
        let layer = oci_client::manifest::OciDescriptor {
            media_type: blob.media_type.clone(),
            digest: blob.digest.clone(),
            size: blob.size as i64,
            ..Default::default()
        };
        rt.block_on(client.pull_blob(&reference, &layer, file))
            .map_err(fail)?;
        let actual = sha256_file(&partial)?;
        if actual != blob.digest {
            return Err(ImageError::DigestMismatch {
                what: format!("a blob of {shown}"),
                expected: blob.digest.clone(),
                actual,
            });
        }
        fs_err::rename(&partial, &path).map_err(|e| ImageError::io(&path, e))?;
    }
    Ok((layout, top))
}

fn registry_error(shown: &str, registry: &ImageRegistry, e: OciDistributionError) -> ImageError {
    let has = |wanted: &[OciErrorCode]| match &e {
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|x| {
            wanted
                .iter()
                .any(|w| std::mem::discriminant(w) == std::mem::discriminant(&x.code))
        }),
        _ => false,
    };
    let unauthorized = matches!(
        &e,
        OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_)
    ) || matches!(
        &e,
        OciDistributionError::ServerError {
            code: 401 | 403,
            ..
        }
    ) || has(&[OciErrorCode::Unauthorized, OciErrorCode::Denied]);
    let missing = matches!(&e, OciDistributionError::ImageManifestNotFoundError(_))
        || matches!(&e, OciDistributionError::ServerError { code: 404, .. })
        || has(&[
            OciErrorCode::ManifestUnknown,
            OciErrorCode::NameUnknown,
            OciErrorCode::NotFound,
            OciErrorCode::BlobUnknown,
        ]);
    let help = if unauthorized {
        format!(
            "Log in to `{}` (`docker login`), or set `REFINE_REGISTRY_USER` and `REFINE_REGISTRY_PASSWORD`",
            registry.host
        )
    } else if missing {
        format!(
            "Check the repository and digest, and that `REFINE_IMAGE_REGISTRY` (`{}`) serves it",
            registry.host
        )
    } else {
        format!(
            "Check that `{}` is reachable from this host (`REFINE_IMAGE_REGISTRY`)",
            registry.host
        )
    };
    ImageError::Registry {
        reference: shown.to_string(),
        message: e.to_string(),
        help,
    }
}
