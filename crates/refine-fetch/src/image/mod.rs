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
//! - [`blobs`]: where blobs come from ([`blobs::Layout`] for folders and tarballs).
//! - [`registry`]: pulling from a registry into a layout folder first (`REFINE_IMAGE_REGISTRY`).
//! - [`apply`]: applying one layer (tar, tar+gzip, tar+zstd) to a tree.
//!
//! The documents (indexes, manifests, configs) are others', read with the image-spec's own
//! types (`oci-spec`, through `refine_oci::spec`).

pub mod apply;
pub mod blobs;
pub mod registry;

use std::path::{Path, PathBuf};

use refine_oci::spec::{
    Arch, Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType, Os, ToDockerV2S2,
};
use serde::Deserialize;

pub use blobs::{Blobs, Layout};

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

/// The OCI name of refine's architecture (`x86_64` is `amd64`, GOARCH style).
pub fn oci_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "ppc64le" => "ppc64le",
        other => other,
    }
}

/// The media types a pin may name: OCI and Docker schema 2 indexes and manifests.
pub(crate) fn document_media_types() -> [String; 4] {
    let docker = |m: MediaType| m.to_docker_v2s2().map(str::to_string).unwrap_or_default();
    [
        MediaType::ImageIndex.to_string(),
        MediaType::ImageManifest.to_string(),
        docker(MediaType::ImageIndex),
        docker(MediaType::ImageManifest),
    ]
}

/// An image index or an image manifest: the two documents a pin can name.
#[derive(Debug)]
pub(crate) enum Document {
    // Boxed: the two differ much in size, and a document is read once.
    Index(Box<ImageIndex>),
    Manifest(Box<ImageManifest>),
}

/// Enough of a document to tell which it is.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
}

impl Document {
    /// Parses a document a registry or a layout holds; `what` names it in messages. Its
    /// `mediaType` says which it is (OCI or Docker); without one, `manifests` makes an index.
    pub(crate) fn parse(bytes: &[u8], what: &str) -> Result<Document, ImageError> {
        let probe: Probe = parse(bytes, what)?;
        let [index, manifest, docker_list, docker_manifest] = document_media_types();
        let is_index = match probe.media_type.as_deref() {
            Some(m) if m == index || m == docker_list => true,
            Some(m) if m == manifest || m == docker_manifest => false,
            _ => probe.manifests.is_some(),
        };
        if is_index {
            return parse(bytes, what).map(|i| Document::Index(Box::new(i)));
        }
        serde_json::from_slice(bytes)
            .map(|m| Document::Manifest(Box::new(m)))
            .map_err(|e| {
                ImageError::invalid(
                    format!(
                        "{what} ({}) is not an image manifest: {e}",
                        probe.media_type.as_deref().unwrap_or("no media type")
                    ),
                    "Pin the digest of an image manifest or index",
                )
            })
    }
}

/// The manifest for `linux/<want>` in an index.
pub(crate) fn select(list: &[Descriptor], want: &str) -> Result<Descriptor, ImageError> {
    let arch = Arch::from(want);
    list.iter()
        .find(|d| {
            d.platform()
                .as_ref()
                .is_some_and(|p| *p.architecture() == arch && *p.os() == Os::Linux)
        })
        .cloned()
        .ok_or_else(|| {
            let archs: Vec<String> = list
                .iter()
                .filter_map(|d| d.platform().as_ref())
                .map(|p| format!("{}/{}", p.os(), p.architecture()))
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

/// The image manifest `digest` names, or the one for `want` in the index it names:
/// `(manifest digest, manifest, index digest)`.
fn resolve(
    blobs: &dyn Blobs,
    digest: &str,
    want: &str,
) -> Result<(String, ImageManifest, Option<String>), ImageError> {
    let bytes = blobs.manifest(digest)?;
    let list = match Document::parse(&bytes, &format!("`{digest}`"))? {
        Document::Manifest(m) => return Ok((digest.to_string(), *m, None)),
        Document::Index(list) => list,
    };
    let chosen = select(list.manifests(), want)?.digest().to_string();
    let bytes = blobs.manifest(&chosen)?;
    match Document::parse(&bytes, &format!("`{chosen}`"))? {
        Document::Manifest(m) => Ok((chosen, *m, Some(digest.to_string()))),
        Document::Index(_) => Err(ImageError::invalid(
            format!("`{chosen}` is an index inside an index"),
            "Pin the digest of the platform's manifest instead",
        )),
    }
}

/// Checks that the image's config is for `linux/<want>`.
fn check_config(blobs: &dyn Blobs, config: &Descriptor, want: &str) -> Result<(), ImageError> {
    let path = blobs.blob(config)?;
    let bytes = fs_err::read(&path).map_err(|e| ImageError::io(&path, e))?;
    let cfg: ImageConfiguration = parse(&bytes, &format!("the config `{}`", config.digest()))?;
    // Some tools leave `os` empty; an architecture is always given.
    let os_ok = matches!(cfg.os(), Os::Linux) || matches!(cfg.os(), Os::Other(o) if o.is_empty());
    if *cfg.architecture() != Arch::from(want) || !os_ok {
        return Err(ImageError::WrongArch {
            wanted: want.to_string(),
            found: format!("{}/{}", cfg.os(), cfg.architecture()),
        });
    }
    Ok(())
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
    let (manifest, doc, index) = resolve(blobs, digest, want)?;
    check_config(blobs, doc.config(), want)?;
    for layer in doc.layers() {
        let path = blobs.blob(layer)?;
        apply::layer(&path, dest)?;
    }
    Ok(Unpacked {
        manifest,
        index,
        layers: doc.layers().len(),
    })
}

/// sha256 of a file, as `sha256:<hex>` (the store's own file hashing).
pub(crate) fn sha256_file(path: &Path) -> Result<String, ImageError> {
    refine_digest::sha256_file(path)
        .map(|(digest, _)| digest.to_string())
        .map_err(|e| ImageError::Invalid(e.to_string(), "Check the file".into()))
}

pub(crate) fn sha256_bytes(bytes: &[u8]) -> String {
    refine_store::Digest::of_bytes(bytes).to_string()
}
