//! Artifacts: OCI artifact manifests keyed by (kind, key), and their unpacked trees.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use super::digest::HashingWriter;
use super::error::io_err;
use super::refs::{LabelRecord, PinRole};
use refine_digest::Kind;

use super::{
    Descriptor, Digest, FILE_MEDIA_TYPE, LocalStore, MANIFEST_MEDIA_TYPE, Manifest, Result,
    StoreError, TAR_ZSTD_MEDIA_TYPE, annotations,
};

/// Parses an artifact kind's name (`base`, `runtime`, `pack`, `wheel`, `repair`).
pub fn parse_kind(kind: &str) -> Result<Kind> {
    Kind::parse(kind).ok_or_else(|| StoreError::BadKind { kind: kind.into() })
}

/// Checks that `key` is 64 lowercase hex digits (a BLAKE3 key).
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |reason| StoreError::BadKey {
        input: key.into(),
        reason,
    };
    if key.len() != 64 {
        return Err(bad("it is not 64 characters long"));
    }
    if !key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad(
            "it holds characters other than lowercase hexadecimal digits",
        ));
    }
    Ok(())
}

/// A file stored as its own layer, placed at `title` when the artifact is unpacked.
#[derive(Clone, Debug)]
pub struct FileLayer {
    pub path: PathBuf,
    /// The layer's `org.opencontainers.image.title`: a relative path of plain names.
    pub title: String,
    /// Defaults to `application/octet-stream`.
    pub media_type: Option<String>,
}

/// What [`LocalStore::put_artifact`] stores.
#[derive(Clone, Debug)]
pub struct ArtifactInput {
    pub kind: Kind,
    /// 64 lowercase hex: the node's BLAKE3 key. Also the artifact's tag.
    pub key: String,
    /// The target's label, e.g. `//wheels:numpy-py312`.
    pub label: String,
    /// The key's fields, stored as the canonical JSON annotation `dev.refine.key.fields`.
    pub key_fields: serde_json::Value,
    /// More manifest annotations. `org.opencontainers.image.title` (default: the label) may be
    /// set here; the `dev.refine.*` ones are refine's own and cannot be overridden.
    pub annotations: BTreeMap<String, String>,
    /// A folder packed as one deterministic `tar+zstd` layer (the first layer).
    pub tree: Option<PathBuf>,
    /// Files stored as their own layers, after the tree layer.
    pub files: Vec<FileLayer>,
    /// The mtime of every entry in the tree layer: 0, or `SOURCE_DATE_EPOCH`.
    pub mtime: u64,
}

impl ArtifactInput {
    /// An artifact with no content yet: add a tree and/or files.
    pub fn new(kind: Kind, key: impl Into<String>, label: impl Into<String>) -> Self {
        ArtifactInput {
            kind,
            key: key.into(),
            label: label.into(),
            key_fields: serde_json::Value::Object(Default::default()),
            annotations: BTreeMap::new(),
            tree: None,
            files: Vec::new(),
            mtime: 0,
        }
    }

    /// Sets the folder to pack as the tree layer.
    pub fn tree(mut self, dir: impl Into<PathBuf>) -> Self {
        self.tree = Some(dir.into());
        self
    }

    /// Adds a file layer with the default media type.
    pub fn file(mut self, path: impl Into<PathBuf>, title: impl Into<String>) -> Self {
        self.files.push(FileLayer {
            path: path.into(),
            title: title.into(),
            media_type: None,
        });
        self
    }

    /// Sets the key fields.
    pub fn key_fields(mut self, fields: serde_json::Value) -> Self {
        self.key_fields = fields;
        self
    }

    /// Adds an annotation.
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }
}

/// A title is a non-empty relative path of normal components.
fn validate_title(title: &str) -> Result<()> {
    let path = Path::new(title);
    let ok = !title.is_empty()
        && !title.ends_with('/')
        && path.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadTitle {
            title: title.into(),
        })
    }
}

impl LocalStore {
    /// Stores an artifact and points its (kind, key) ref and its label record at it; returns
    /// the manifest digest.
    ///
    /// The same input (tree content, files, key, label, fields, annotations, mtime) always
    /// gives the same manifest digest: the manifest carries no timestamp. The tag (the key)
    /// reaches `index.json` at the next [`LocalStore::sync_index`].
    pub fn put_artifact(&self, input: &ArtifactInput) -> Result<Digest> {
        validate_key(&input.key)?;
        for f in &input.files {
            validate_title(&f.title)?;
        }
        let _lease = self.lease()?;
        let mut layers = Vec::new();
        if let Some(dir) = &input.tree {
            layers.push(self.put_tree_layer(dir, input.mtime)?);
        }
        for f in &input.files {
            let file = fs_err::File::open(&f.path).map_err(io_err("open", &f.path))?;
            let (digest, size) =
                self.put_blob_unlocked(file, None, &f.path.display().to_string())?;
            layers.push(Descriptor {
                media_type: f
                    .media_type
                    .clone()
                    .unwrap_or_else(|| FILE_MEDIA_TYPE.into()),
                digest,
                size,
                artifact_type: None,
                annotations: Some(BTreeMap::from([(
                    annotations::TITLE.into(),
                    f.title.clone(),
                )])),
            });
        }
        if layers.is_empty() {
            // image-spec 1.1: an artifact without content uses the empty descriptor as its
            // only layer.
            layers.push(Descriptor::empty());
        }
        self.put_bytes_unlocked(b"{}")?;

        let mut notes = BTreeMap::new();
        notes.insert(annotations::TITLE.to_owned(), input.label.clone());
        notes.extend(input.annotations.clone());
        notes.insert(annotations::LABEL.into(), input.label.clone());
        notes.insert(annotations::KIND.into(), input.kind.as_str().into());
        notes.insert(annotations::KEY.into(), input.key.clone());
        notes.insert(
            annotations::KEY_FIELDS.into(),
            serde_json::to_string(&input.key_fields).expect("JSON values serialise"),
        );
        let manifest = Manifest {
            schema_version: 2,
            media_type: MANIFEST_MEDIA_TYPE.into(),
            artifact_type: Some(input.kind.artifact_type()),
            config: Descriptor::empty(),
            layers,
            subject: None,
            annotations: Some(notes),
        };
        let bytes = manifest.to_bytes();
        let digest = self.put_bytes_unlocked(&bytes)?;
        // The label record before the ref: the ref is the commit (a label naming a manifest
        // that no ref reaches is dropped by gc).
        self.write_label(&LabelRecord {
            label: input.label.clone(),
            kind: input.kind.as_str().into(),
            key: input.key.clone(),
            digest,
        })?;
        self.write_ref(input.kind, &input.key, &digest, bytes.len() as u64)?;
        self.add_pending(super::index::PendingTag {
            kind: input.kind,
            key: input.key.clone(),
            artifact: super::CachedArtifact {
                manifest: digest,
                content: manifest.content_digest(),
            },
        });
        Ok(digest)
    }

    fn put_tree_layer(&self, dir: &Path, mtime: u64) -> Result<Descriptor> {
        let tmp_dir = self.tmp_dir();
        let tmp = self.temp_file("layer-", 0o444)?;
        let writer = HashingWriter::new(io::BufWriter::with_capacity(256 * 1024, tmp));
        let writer = super::tar::pack_tree(dir, mtime, writer)?;
        let (buffered, digest, size) = writer.finish();
        let tmp = buffered
            .into_inner()
            .map_err(|e| StoreError::io("write a temporary file in", &tmp_dir, e.into_error()))?;
        let path = self.blob_path(&digest);
        if !fs_err::metadata(&path).is_ok_and(|m| m.len() == size) {
            self.finish_file(tmp, &path)?;
        }
        Ok(Descriptor {
            media_type: TAR_ZSTD_MEDIA_TYPE.into(),
            digest,
            size,
            artifact_type: None,
            annotations: None,
        })
    }

    /// Reads and parses a manifest, verified against its digest.
    pub fn read_manifest(&self, digest: &Digest) -> Result<Manifest> {
        let bytes = self.read_blob(digest)?;
        Manifest::from_slice(&bytes).map_err(|reason| StoreError::BadManifest {
            digest: *digest,
            reason,
        })
    }

    /// Stores a fixed-output source file under its sha256 and pins it (gc keeps it).
    /// With `expected`, a mismatch is an error and nothing is stored.
    pub fn put_source_file(&self, path: &Path, expected: Option<&Digest>) -> Result<Digest> {
        let file = fs_err::File::open(path).map_err(io_err("open", path))?;
        let _lease = self.lease()?;
        let (digest, _) = self.put_blob_unlocked(file, expected, &path.display().to_string())?;
        self.write_pin(&digest, PinRole::Source)?;
        Ok(digest)
    }

    /// Stores a fixed-output source from a stream (a download) and pins it.
    pub fn put_source_reader(
        &self,
        reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<Digest> {
        let _lease = self.lease()?;
        let (digest, _) = self.put_blob_unlocked(reader, expected, "the download")?;
        self.write_pin(&digest, PinRole::Source)?;
        Ok(digest)
    }

    /// Stores an action log and pins it.
    pub fn put_log(&self, reader: impl Read) -> Result<Digest> {
        let _lease = self.lease()?;
        let (digest, _) = self.put_blob_unlocked(reader, None, "the log")?;
        self.write_pin(&digest, PinRole::Log)?;
        Ok(digest)
    }

    /// Stores an artifact's provenance record (JSON) and pins it like a log: it is kept
    /// beside the artifact, never in its content.
    pub fn put_provenance(&self, record: &[u8]) -> Result<Digest> {
        let _lease = self.lease()?;
        let (digest, _) = self.put_blob_unlocked(record, None, "the provenance record")?;
        self.write_pin(&digest, PinRole::Log)?;
        Ok(digest)
    }

    /// The folder of an artifact's unpacked tree, `trees/<manifest hex>/`, unpacking it first
    /// if needed: the tree layer at the root, each file layer at its title.
    ///
    /// Unpacking happens in `tmp/` and the folder is renamed into place, so a tree that exists
    /// is complete; every blob is verified while it is read. Hold a [`LocalStore::lease`]
    /// while using the tree so that gc cannot remove it.
    pub fn unpack(&self, manifest_digest: &Digest) -> Result<PathBuf> {
        let dest = self.tree_path(manifest_digest);
        if dest.is_dir() {
            return Ok(dest);
        }
        let _lease = self.lease()?;
        let manifest = self.read_manifest(manifest_digest)?;
        let tmp_root = self.tmp_dir();
        let tmp = tempfile::Builder::new()
            .prefix("tree-")
            .tempdir_in(&tmp_root)
            .map_err(io_err("create a temporary folder in", &tmp_root))?;
        for layer in &manifest.layers {
            if layer.media_type == super::EMPTY_MEDIA_TYPE {
                continue;
            }
            let result = match layer.annotation(annotations::TITLE) {
                Some(title) => self.place_file(layer, title, tmp.path()),
                None if super::tar::is_tree_layer(&layer.media_type) => {
                    let reader = self.open_blob(&layer.digest)?;
                    super::tar::unpack_layer(reader, &layer.media_type, tmp.path())
                }
                None => Err(StoreError::BadManifest {
                    digest: *manifest_digest,
                    reason: format!(
                        "layer `{}` has media type `{}` and no title: refine cannot place it",
                        layer.digest, layer.media_type
                    ),
                }),
            };
            if let Err(err) = result {
                // A tar error may hide the real cause: a damaged blob.
                if let Ok(Err(actual)) = self.check_blob(&layer.digest) {
                    return Err(StoreError::Corrupt {
                        digest: layer.digest,
                        path: self.blob_path(&layer.digest),
                        actual,
                    });
                }
                return Err(err);
            }
        }
        let kept = tmp.keep();
        match fs_err::rename(&kept, &dest) {
            Ok(()) => Ok(dest),
            // Another process unpacked the same artifact first: use its tree.
            Err(_) if dest.is_dir() => {
                let _ = fs_err::remove_dir_all(&kept);
                Ok(dest)
            }
            Err(e) => {
                let _ = fs_err::remove_dir_all(&kept);
                Err(StoreError::io("rename an unpacked tree to", dest, e))
            }
        }
    }

    fn place_file(&self, layer: &Descriptor, title: &str, root: &Path) -> Result<()> {
        validate_title(title)?;
        let path = root.join(title);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(io_err("create the folder", parent))?;
        }
        let mut out = fs_err::File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        let mut reader = self.open_blob(&layer.digest)?;
        io::copy(&mut reader, &mut out).map_err(io_err("write", &path))?;
        Ok(())
    }
}
