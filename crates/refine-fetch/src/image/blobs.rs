//! Where an image's blobs come from: [`Blobs`], and [`Layout`], an OCI image layout folder
//! (also what an OCI archive, or a `docker save` tarball, is unpacked or converted to).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use refine_oci::spec::{Descriptor, ImageConfiguration, MediaType};

use super::{ImageError, sha256_bytes, sha256_file};

/// Blobs by digest, each verified before it is handed out.
pub trait Blobs {
    /// The bytes of the manifest or index `digest`.
    fn manifest(&self, digest: &str) -> Result<Vec<u8>, ImageError>;
    /// A local file holding the blob `d`.
    fn blob(&self, d: &Descriptor) -> Result<PathBuf, ImageError>;
}

/// `sha256:<64 hex>`, the only digests refine reads (they become file names).
pub fn check_digest(digest: &str) -> Result<&str, ImageError> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(hex)
        }
        _ => Err(ImageError::Invalid(
            format!("`{digest}` is not a sha256 digest"),
            "Digests are `sha256:` and 64 lowercase hex digits".into(),
        )),
    }
}

/// An OCI image layout folder.
#[derive(Debug)]
pub struct Layout {
    dir: PathBuf,
    /// A `docker save` tarball has no manifest: its config digest (the image ID) stands for
    /// the manifest refine writes for it.
    aliases: HashMap<String, String>,
}

impl Layout {
    /// Opens `path`: an OCI layout folder, or a tarball (plain or gzip) holding one, or a
    /// `docker save` tarball. Tarballs are unpacked into `scratch`.
    pub fn open(path: &Path, scratch: &Path) -> Result<Layout, ImageError> {
        let meta = fs_err::metadata(path).map_err(|e| ImageError::io(path, e))?;
        let dir = if meta.is_dir() {
            path.to_path_buf()
        } else {
            let dir = scratch.join("layout");
            fs_err::create_dir_all(&dir).map_err(|e| ImageError::io(&dir, e))?;
            untar(path, &dir)?;
            dir
        };
        if dir.join("oci-layout").is_file() {
            return Ok(Layout {
                dir,
                aliases: HashMap::new(),
            });
        }
        if dir.join("manifest.json").is_file() {
            return from_docker_archive(&dir);
        }
        Err(ImageError::Invalid(
            format!(
                "`{}` is neither an OCI image layout (no `oci-layout` file) nor a `docker save` tarball (no `manifest.json`)",
                path.display()
            ),
            "Give a folder or tarball written by `skopeo copy … oci:DIR`, `skopeo copy … oci-archive:FILE` or `docker save`".into(),
        ))
    }

    /// A layout in `dir` that blobs are written into (see [`super::registry`]).
    pub fn create(dir: &Path) -> Result<Layout, ImageError> {
        fs_err::create_dir_all(dir.join("blobs/sha256")).map_err(|e| ImageError::io(dir, e))?;
        fs_err::write(
            dir.join("oci-layout"),
            "{\"imageLayoutVersion\":\"1.0.0\"}\n",
        )
        .map_err(|e| ImageError::io(dir, e))?;
        Ok(Layout {
            dir: dir.to_path_buf(),
            aliases: HashMap::new(),
        })
    }

    /// Where the blob `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.dir.join("blobs/sha256").join(check_digest(digest)?))
    }
}

impl Blobs for Layout {
    fn manifest(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let digest = self.aliases.get(digest).map_or(digest, String::as_str);
        let path = self.blob_path(digest)?;
        if !path.is_file() {
            return Err(ImageError::Invalid(
                format!("The image layout `{}` holds no `{digest}`", self.dir.display()),
                "Check the pinned digest: `skopeo inspect --raw oci:DIR | sha256sum` prints the manifest's".into(),
            ));
        }
        let bytes = fs_err::read(&path).map_err(|e| ImageError::io(&path, e))?;
        let actual = sha256_bytes(&bytes);
        if actual != digest {
            return Err(ImageError::DigestMismatch {
                what: path.display().to_string(),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    fn blob(&self, d: &Descriptor) -> Result<PathBuf, ImageError> {
        let digest = d.digest().to_string();
        let path = self.blob_path(&digest)?;
        let actual = sha256_file(&path)?;
        if actual != digest {
            return Err(ImageError::DigestMismatch {
                what: path.display().to_string(),
                expected: digest,
                actual,
            });
        }
        Ok(path)
    }
}

/// Unpacks a (possibly gzip-compressed) tarball of plain files and folders into `dir`.
fn untar(path: &Path, dir: &Path) -> Result<(), ImageError> {
    let f = fs_err::File::open(path).map_err(|e| ImageError::io(path, e))?;
    let mut r = BufReader::new(f);
    let head = r.fill_buf().map_err(|e| ImageError::io(path, e))?;
    let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(r))
    } else {
        Box::new(r)
    };
    let mut ar = tar::Archive::new(reader);
    let entries = ar.entries().map_err(|e| ImageError::io(path, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ImageError::io(path, e))?;
        let kind = entry.header().entry_type();
        // An image archive holds blobs and JSON; links and devices have no business there.
        if !(kind.is_file() || kind.is_dir()) {
            continue;
        }
        let unpacked = entry.unpack_in(dir).map_err(|e| ImageError::io(path, e))?;
        if !unpacked {
            return Err(ImageError::Invalid(
                format!("`{}` holds a path outside the archive", path.display()),
                "This is not an image tarball refine will read".into(),
            ));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Turns an unpacked `docker save` tarball into a layout: its layers are checked against the
/// config's `rootfs.diff_ids`, so the config digest (the image ID) pins the whole image.
fn from_docker_archive(dir: &Path) -> Result<Layout, ImageError> {
    let list_path = dir.join("manifest.json");
    let list: Vec<DockerEntry> = serde_json::from_slice(
        &fs_err::read(&list_path).map_err(|e| ImageError::io(&list_path, e))?,
    )
    .map_err(|e| {
        ImageError::Invalid(
            format!(
                "`{}` is not a `docker save` manifest: {e}",
                list_path.display()
            ),
            "Give a tarball written by `docker save`".into(),
        )
    })?;
    let layout = Layout::create(dir)?;
    let mut aliases = HashMap::new();
    let inside = |rel: &str| -> Result<PathBuf, ImageError> {
        if rel.split('/').any(|c| c == "..") || rel.starts_with('/') {
            return Err(ImageError::Invalid(
                format!(
                    "`{}` names `{rel}`, outside the archive",
                    list_path.display()
                ),
                "This is not an image tarball refine will read".into(),
            ));
        }
        Ok(dir.join(rel))
    };
    for entry in list {
        let config_path = inside(&entry.config)?;
        let config_bytes =
            fs_err::read(&config_path).map_err(|e| ImageError::io(&config_path, e))?;
        let config_digest = sha256_bytes(&config_bytes);
        let cfg: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(|e| {
            ImageError::Invalid(
                format!("`{}` is not an image config: {e}", config_path.display()),
                "Give a tarball written by `docker save`".into(),
            )
        })?;
        if cfg.rootfs().diff_ids().len() != entry.layers.len() {
            return Err(ImageError::Invalid(
                format!(
                    "`{}` lists {} layers, its config {}",
                    list_path.display(),
                    entry.layers.len(),
                    cfg.rootfs().diff_ids().len()
                ),
                "The tarball is damaged: save the image again".into(),
            ));
        }
        let mut layers = Vec::new();
        for (rel, diff_id) in entry.layers.iter().zip(cfg.rootfs().diff_ids()) {
            let path = inside(rel)?;
            let actual = sha256_file(&path)?;
            if &actual != diff_id {
                return Err(ImageError::DigestMismatch {
                    what: path.display().to_string(),
                    expected: diff_id.clone(),
                    actual,
                });
            }
            let size = fs_err::metadata(&path)
                .map_err(|e| ImageError::io(&path, e))?
                .len();
            let blob = layout.blob_path(&actual)?;
            if !blob.exists() {
                fs_err::rename(&path, &blob).map_err(|e| ImageError::io(&path, e))?;
            }
            layers.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": actual,
                "size": size,
            }));
        }
        fs_err::write(layout.blob_path(&config_digest)?, &config_bytes)
            .map_err(|e| ImageError::io(&config_path, e))?;
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MediaType::ImageManifest.to_string(),
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_bytes.len(),
            },
            "layers": layers,
        }))
        .expect("a JSON value serializes");
        let manifest_digest = sha256_bytes(&manifest);
        let path = layout.blob_path(&manifest_digest)?;
        fs_err::write(&path, &manifest).map_err(|e| ImageError::io(&path, e))?;
        aliases.insert(config_digest, manifest_digest);
    }
    Ok(Layout { aliases, ..layout })
}
