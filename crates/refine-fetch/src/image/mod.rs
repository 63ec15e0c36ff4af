//! OCI images as sandbox roots: a base's `image` (from a registry, by repository and digest)
//! or `layout` (an OCI image layout folder, an OCI archive, or a `docker save` tarball on
//! disk) becomes a root file system tree.
//!
//! Implements the OCI image-spec v1.1: an image index is resolved to the manifest for the
//! base's architecture (`platform.architecture`, linux), the config's `architecture` is
//! checked, and the layers are applied in order as the spec's "Applying changesets" says,
//! whiteouts (`.wh.NAME`) and opaque whiteouts (`.wh..wh..opq`) included. Every blob is
//! verified against its sha256 before it is used; a pinned digest that does not match what
//! was read is an error naming both.
//!
//! - [`source`]: where blobs come from ([`source::Layout`] for folders and tarballs).
//! - [`registry`]: pulling from a registry into a layout folder first (`REFINE_IMAGE_REGISTRY`).
//! - [`apply`]: applying one layer (tar, tar+gzip, tar+zstd) to a tree.

pub mod apply;
pub mod registry;
pub mod source;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use source::{Blobs, Layout};

/// Why an image could not become a root.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ImageError {
    #[error("Cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{what}` has digest `{actual}`, but `{expected}` was asked for")]
    #[diagnostic(help(
        "The image changed, or the pin is wrong: check the digest (`skopeo inspect --raw … | sha256sum`) and the file"
    ))]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{0}")]
    #[diagnostic(help("{1}"))]
    Invalid(String, String),
    #[error("The image is for `{found}`, but the base is for `{wanted}`")]
    #[diagnostic(help(
        "Pin the digest of the image's `{wanted}` manifest (or of a multi-platform index), or change the base's `arch`"
    ))]
    WrongArch { wanted: String, found: String },
    #[error("Cannot pull `{reference}`: {message}")]
    #[diagnostic(help("{help}"))]
    Registry {
        reference: String,
        message: String,
        help: String,
    },
}

impl ImageError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ImageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn invalid(what: impl Into<String>, help: impl Into<String>) -> Self {
        ImageError::Invalid(what.into(), help.into())
    }
}

/// What an image is pinned by.
#[derive(Clone, Debug)]
pub enum Pin {
    /// A manifest or index digest (`sha256:…`).
    Digest(String),
    /// A tag, resolved when the image is pulled (not hermetic: the digest is recorded).
    Tag(String),
}

pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The OCI name of refine's architecture (`x86_64` is `amd64`, GOARCH style).
pub fn oci_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "ppc64le" => "ppc64le",
        other => other,
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
}

/// An image index or an image manifest: the two documents a pin can name.
#[derive(Debug, Deserialize)]
pub(crate) struct Document {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: Option<String>,
    #[serde(default)]
    pub(crate) manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    pub(crate) config: Option<Descriptor>,
    #[serde(default)]
    pub(crate) layers: Option<Vec<Descriptor>>,
}

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

/// The manifest for `linux/<want>` in an index.
pub(crate) fn select(list: &[Descriptor], want: &str) -> Result<Descriptor, ImageError> {
    list.iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.architecture == want && p.os == "linux")
        })
        .cloned()
        .ok_or_else(|| {
            let archs: Vec<String> = list
                .iter()
                .filter_map(|d| d.platform.as_ref())
                .map(|p| format!("{}/{}", p.os, p.architecture))
                .collect();
            ImageError::WrongArch {
                wanted: want.to_string(),
                found: if archs.is_empty() {
                    "no platform".into()
                } else {
                    archs.join(", ")
                },
            }
        })
}

/// What was unpacked.
#[derive(Clone, Debug)]
pub struct Unpacked {
    /// The image manifest whose layers were applied.
    pub manifest: String,
    /// The index it was chosen from, when the pin named one.
    pub index: Option<String>,
    pub layers: usize,
}

pub(crate) fn parse<T: for<'de> Deserialize<'de>>(
    bytes: &[u8],
    what: &str,
) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ImageError::invalid(
            format!("{what} is not a valid OCI document: {e}"),
            "Check that the pin names an image manifest or index",
        )
    })
}

/// Applies the image `digest` names (a manifest, or an index holding one for `arch`) from
/// `blobs` onto `dest`, an empty folder.
pub fn unpack(
    blobs: &dyn Blobs,
    digest: &str,
    arch: &str,
    dest: &Path,
) -> Result<Unpacked, ImageError> {
    let want = oci_arch(arch);
    let bytes = blobs.manifest(digest)?;
    let doc: Document = parse(&bytes, &format!("`{digest}`"))?;
    let (manifest_digest, doc, index) = if let Some(list) = &doc.manifests {
        let chosen = select(list, want)?;
        let bytes = blobs.manifest(&chosen.digest)?;
        let inner: Document = parse(&bytes, &format!("`{}`", chosen.digest))?;
        (chosen.digest.clone(), inner, Some(digest.to_string()))
    } else {
        (digest.to_string(), doc, None)
    };
    if doc.manifests.is_some() {
        return Err(ImageError::invalid(
            format!("`{manifest_digest}` is an index inside an index"),
            "Pin the digest of the platform's manifest instead",
        ));
    }
    let (Some(config), Some(layers)) = (doc.config, doc.layers) else {
        return Err(ImageError::invalid(
            format!(
                "`{manifest_digest}` ({}) is not an image manifest: it has no config or layers",
                doc.media_type.as_deref().unwrap_or("no media type")
            ),
            "Pin the digest of an image manifest or index",
        ));
    };
    let config_path = blobs.blob(&config)?;
    let config_bytes = fs_err::read(&config_path).map_err(|e| ImageError::io(&config_path, e))?;
    let cfg: Config = parse(&config_bytes, &format!("the config `{}`", config.digest))?;
    if cfg.architecture != want || (!cfg.os.is_empty() && cfg.os != "linux") {
        return Err(ImageError::WrongArch {
            wanted: want.to_string(),
            found: format!("{}/{}", cfg.os, cfg.architecture),
        });
    }
    for layer in &layers {
        let path = blobs.blob(layer)?;
        apply::layer(&path, dest)?;
    }
    Ok(Unpacked {
        manifest: manifest_digest,
        index,
        layers: layers.len(),
    })
}

/// sha256 of a file, as `sha256:<hex>` (the store's own file hashing).
pub(crate) fn sha256_file(path: &Path) -> Result<String, ImageError> {
    crate::source::sha256_file(path)
        .map(|(digest, _)| digest.to_string())
        .map_err(|e| ImageError::Invalid(e.to_string(), "Check the file".into()))
}

pub(crate) fn sha256_bytes(bytes: &[u8]) -> String {
    crate::store::Digest::of_bytes(bytes).to_string()
}
