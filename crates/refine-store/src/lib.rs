//! The local store: refine's embedded, content-addressed artifact cache.
//!
//! It is a valid **OCI image layout** as defined by the OCI image-spec 1.1 ("OCI Image Layout
//! Specification": `oci-layout`, `index.json`, `blobs/sha256/<hex>`), so that `skopeo`, `oras`
//! or a registry such as Zot can read, copy or serve it as is. Artifacts are **OCI artifact
//! manifests** (image-spec 1.1 "Guidelines for Artifact Usage"): an image manifest with an
//! `artifactType` of `application/vnd.refine.<kind>.v1`, the empty config descriptor, one
//! deterministic `tar+zstd` layer for a directory tree and/or one layer per file (titled with
//! `org.opencontainers.image.title`).
//!
//! Next to the standard files, refine keeps its own bookkeeping (none of which an OCI tool
//! needs to understand). Every entry is declared once, with the version of its format, in
//! [`layout`]; `verify` and `gc` cover each one:
//!
//! ```text
//! STORE/
//!   oci-layout                    {"imageLayoutVersion":"1.0.0"}
//!   index.json                    the tags, kept in step with refs/ once per command
//!   blobs/sha256/<hex>            every blob: manifests, layers, the empty config, sources, logs
//!   refs/<kind>/<key[..2]>/<key>  "sha256:<manifest hex> <manifest size>\n": key → artifact
//!   pins/<hex[..2]>/<hex>         "source\n" or "log\n": a plain blob kept alive by gc
//!   labels/<h[..2]>/<h>           JSON {label, kind, key, digest}, h = BLAKE3(label): the last
//!                                 artifact built for a label (for `refine explain`)
//!   trees/<manifest hex>/         unpacked artifacts, for mounting into sandboxes
//!   tmp/                          temporary files and folders, renamed into place when complete
//!   names/<hex>                   the file name a source blob was fetched or imported under
//!                                 (pip needs a wheel's own name; blobs have only digests)
//!   outbox/<kind>/<key>           "sha256:<manifest hex>\n": an artifact whose push to the
//!                                 remote store has not finished (see `refine_remote::oci`)
//!   lock                          flock: writers hold it shared, gc and verify --fix exclusive
//!   index.lock                    flock: serialises index.json rewrites
//!   signatures/<manifest hex>     "sha256:<envelope hex>\n" lines: the DSSE envelopes that sign
//!                                 the artifact's provenance (see `refine_attest`)
//!   refs.idx                      the no-op index: (kind, key) → manifest and content digests,
//!                                 checksummed, one read per command (see `refs_index`)
//!   merkle/<manifest hex>         the REAPI Merkle tree of trees/<manifest hex>/, a cache kept
//!                                 for remote execution (see `refine_reapi::tree`)
//!   locations/<hex>               "<registry> <repository>\n" lines: where a blob of 1 MiB or
//!                                 more was pushed or pulled, so a push can mount it from there
//!                                 instead of sending it again (see `locations`)
//! ```
//!
//! See `docs/store.md` for what is atomic, how concurrent processes share a store, `verify`
//! and `gc`.

mod artifact;
mod blob;
mod durability;
pub mod error;
mod gc;
mod import;
mod index;
pub mod layout;
mod locations;
mod lock;
pub mod manifest;
mod names;
mod outbox;
mod refs;
mod refs_index;
pub mod remote;
mod signatures;
pub mod tar;
mod verify;
mod walk;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use artifact::{ArtifactInput, FileLayer, parse_kind, validate_key};
pub use blob::BlobReader;
pub use error::{Result, StoreError};
pub use gc::{GcOptions, GcReport};
pub use import::IncomingBlob;
pub use layout::{Bucket, OCI_LAYOUT_VERSION};
pub use locations::{BlobLocation, MIN_LOCATED_SIZE};
pub use lock::StoreLease;
pub use manifest::{Descriptor, Index, Manifest};
pub use outbox::OutboxEntry;
pub use refine_digest::Kind;
pub use refine_digest::{self as digest, Digest};
pub use refs::{LabelRecord, PinRole};
pub use refs_index::CachedArtifact;
pub use verify::{Problem, VerifyOptions, VerifyReport};

use error::io_err;

/// Media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of the OCI empty descriptor (`{}`), used as the artifacts' config.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// Media type of a zstd-compressed tar layer.
pub const TAR_ZSTD_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Media type of an uncompressed tar layer (read, never written).
pub const TAR_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// Default media type of a file layer.
pub const FILE_MEDIA_TYPE: &str = "application/octet-stream";

/// Annotation keys refine writes.
pub mod annotations {
    /// OCI: the artifact's (or a file layer's) title.
    pub const TITLE: &str = "org.opencontainers.image.title";
    /// OCI: a tag in `index.json`.
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
    /// The label of the target that produced the artifact, e.g. `//wheels:numpy-py312`.
    pub const LABEL: &str = "dev.refine.label";
    /// `base`, `runtime`, `pack`, `wheel` or `repair`.
    pub const KIND: &str = "dev.refine.kind";
    /// The key, 64 lowercase hex.
    pub const KEY: &str = "dev.refine.key";
    /// The key's fields, as canonical JSON (what `refine explain` diffs).
    pub const KEY_FIELDS: &str = "dev.refine.key.fields";
}

/// A local OCI image layout used as refine's store. Cheap to share between threads (`&self`
/// methods everywhere); several processes may open the same folder at once.
///
/// Tags reach `index.json` through [`LocalStore::sync_index`], which the CLI calls once at the
/// end of a command; dropping a store that inserted artifacts calls it too (ignoring errors).
/// [`LocalStore::rebuild_index`] regenerates it from every ref.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    fsync: bool,
    /// Tags stored by this process and not yet in `index.json`.
    pending: Mutex<Vec<index::PendingTag>>,
    /// `refs.idx` as first read by this process (at its first lookup).
    refs_index: std::sync::OnceLock<refs_index::Loaded>,
    /// What `refs.idx` should learn at the next sync.
    index_updates: Mutex<refs_index::IndexUpdates>,
}

impl LocalStore {
    /// Opens the store at `root`, creating the layout if the folder is absent or empty.
    ///
    /// A folder that holds files but no `oci-layout` is refused ([`StoreError::NotALayout`]),
    /// so that a mistyped `--store` never scatters files into, say, a home folder.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        // Absolute, because trees are mounted into sandboxes by path and a sandbox's root
        // must be absolute: `--store ./store` must work like `--store $PWD/store`.
        let root = std::path::absolute(&root).map_err(io_err("find the folder", &root))?;
        let store = LocalStore {
            root,
            fsync: true,
            pending: Mutex::new(Vec::new()),
            refs_index: std::sync::OnceLock::new(),
            index_updates: Mutex::default(),
        };
        store.init()?;
        Ok(store)
    }

    /// Turns `fsync` off (or back on). Without it, writes are still atomic (a reader never
    /// sees a partial file) but a power loss may lose the most recent ones. For benchmarks and
    /// throw-away stores only.
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// The default store folder: `REFINE_STORE`, else `$XDG_CACHE_HOME/refine`, else
    /// `$HOME/.cache/refine`.
    pub fn default_path() -> Result<PathBuf> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(p) = var("REFINE_STORE") {
            return Ok(PathBuf::from(p));
        }
        if let Some(p) = var("XDG_CACHE_HOME") {
            return Ok(PathBuf::from(p).join("refine"));
        }
        if let Some(p) = var("HOME") {
            return Ok(PathBuf::from(p).join(".cache").join("refine"));
        }
        Err(StoreError::NoPath)
    }

    /// Picks the store folder: `explicit` (a `--store` flag, which the CLI also fills from
    /// `REFINE_STORE`), else `configured` (`store { local … }` in `workspace.kdl`), else
    /// [`LocalStore::default_path`].
    pub fn resolve_path(explicit: Option<&Path>, configured: Option<&Path>) -> Result<PathBuf> {
        match explicit.or(configured) {
            Some(p) => Ok(p.to_owned()),
            None => Self::default_path(),
        }
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn init(&self) -> Result<()> {
        self.refuse_foreign_folder()?;
        let root = &self.root;
        fs_err::create_dir_all(root).map_err(io_err("create the folder", root))?;
        // Shared, like every write: a concurrent gc must not clear `tmp/` under us.
        let _lease = self.lease()?;
        for bucket in Bucket::ALL {
            if bucket.spec().form == layout::Form::Folder {
                let p = self.bucket_path(bucket);
                fs_err::create_dir_all(&p).map_err(io_err("create the folder", &p))?;
            }
        }
        fs_err::create_dir_all(self.blob_dir())
            .map_err(io_err("create the folder", self.blob_dir()))?;
        let layout = self.bucket_path(Bucket::OciLayout);
        if layout.exists() {
            self.check_oci_layout(&layout)?;
        } else {
            let text = format!(r#"{{"imageLayoutVersion":"{OCI_LAYOUT_VERSION}"}}"#);
            self.create_atomic(&layout, text.as_bytes())?;
        }
        let index = self.bucket_path(Bucket::Index);
        if !index.exists() {
            let empty = Index::new(Vec::new());
            self.create_atomic(&index, &empty.to_bytes())?;
        }
        Ok(())
    }

    /// Refuses a folder holding anything but what a (possibly half-created, by a concurrent
    /// process) store holds.
    fn refuse_foreign_folder(&self) -> Result<()> {
        let root = &self.root;
        if self.bucket_path(Bucket::OciLayout).exists() {
            return Ok(());
        }
        let Ok(entries) = fs_err::read_dir(root) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !Bucket::ALL.iter().any(|b| name == b.name()) {
                return Err(StoreError::NotALayout {
                    path: root.clone(),
                    reason: format!(
                        "the folder holds `{}` but no `oci-layout` file",
                        name.to_string_lossy()
                    ),
                });
            }
        }
        Ok(())
    }

    fn check_oci_layout(&self, layout: &Path) -> Result<()> {
        let text = fs_err::read(layout).map_err(io_err("read", layout))?;
        let parsed: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| StoreError::NotALayout {
                path: self.root.clone(),
                reason: format!("`oci-layout` is not JSON: {e}"),
            })?;
        if parsed["imageLayoutVersion"] != OCI_LAYOUT_VERSION {
            return Err(StoreError::NotALayout {
                path: self.root.clone(),
                reason: format!(
                    "unsupported `imageLayoutVersion` {}",
                    parsed["imageLayoutVersion"]
                ),
            });
        }
        Ok(())
    }

    fn add_pending(&self, tag: index::PendingTag) {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(tag);
    }

    /// A new temporary file in `tmp/`, created with `mode` (masked by the umask).
    pub(crate) fn temp_file(&self, prefix: &str, mode: u32) -> Result<tempfile::NamedTempFile> {
        use std::os::unix::fs::PermissionsExt;
        let tmp_dir = self.tmp_dir();
        tempfile::Builder::new()
            .prefix(prefix)
            .permissions(std::fs::Permissions::from_mode(mode))
            .tempfile_in(&tmp_dir)
            .map_err(io_err("create a temporary file in", &tmp_dir))
    }

    /// Writes `bytes` to `path` atomically: a temporary file in `tmp/`, fsync, rename.
    pub(crate) fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        self.write_atomic_mode(path, bytes, 0o644)
    }

    pub(crate) fn write_atomic_mode(&self, path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
        let tmp = self.temp_file_with("w-", bytes, mode)?;
        self.finish_file(tmp, path)
    }

    /// A new temporary file in `tmp/` holding `bytes`, not synced yet.
    pub(crate) fn temp_file_with(
        &self,
        prefix: &str,
        bytes: &[u8],
        mode: u32,
    ) -> Result<tempfile::NamedTempFile> {
        use std::io::Write;
        let mut tmp = self.temp_file(prefix, mode)?;
        tmp.write_all(bytes).map_err(io_err("write", tmp.path()))?;
        Ok(tmp)
    }

    /// Like [`Self::write_atomic`], but leaves an existing file alone (a concurrent process
    /// creating the same store may have written it, and since changed it).
    fn create_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = self.temp_file_with("w-", bytes, 0o644)?;
        self.sync_or_defer(tmp.as_file(), tmp.path())?;
        match tmp.persist_noclobber(path) {
            Ok(_) => Ok(()),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(StoreError::io("create", path, e.error)),
        }
    }

    /// Syncs a complete temporary file and renames it to `path`, creating `path`'s folder if
    /// the rename finds it missing (so the common case costs no `mkdir`).
    /// Inside [`LocalStore::in_one_sync`] the sync waits for the step's next flush.
    pub(crate) fn finish_file(&self, tmp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
        self.sync_or_defer(tmp.as_file(), tmp.path())?;
        self.rename_into_place(tmp, path)
    }

    /// [`Self::finish_file`], synced now even inside a step (a ref: an artifact's commit).
    pub(crate) fn finish_file_now(&self, tmp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
        if self.fsync {
            tmp.as_file()
                .sync_all()
                .map_err(io_err("sync", tmp.path()))?;
        }
        self.rename_into_place(tmp, path)
    }

    fn rename_into_place(&self, tmp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
        let tmp = match tmp.persist(path) {
            Ok(_) => return Ok(()),
            Err(e) if e.error.kind() == std::io::ErrorKind::NotFound => e.file,
            Err(e) => return Err(StoreError::io("rename a temporary file to", path, e.error)),
        };
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent).map_err(io_err("create the folder", parent))?;
        }
        tmp.persist(path)
            .map_err(|e| StoreError::io("rename a temporary file to", path, e.error))?;
        Ok(())
    }
}

impl Drop for LocalStore {
    fn drop(&mut self) {
        let _ = self.sync_index();
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod bucket_tests;
