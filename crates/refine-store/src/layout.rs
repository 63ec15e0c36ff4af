//! The store's disk layout, declared once: every file and folder under the store root, with
//! its name, the version of its format and what it holds (as uv declares its cache buckets).
//!
//! Nothing else in refine joins a name onto the store root: the store reaches each bucket
//! through [`LocalStore::bucket_path`] and the path helpers below, and other crates go
//! through store methods (`record_name`, `outbox_add`, `tmp_dir`, …). `verify` and `gc` walk
//! [`Bucket::ALL`], so a bucket added here without a check fails the store's tests.
//!
//! The names carry no version (the layout predates the table and stays readable by older
//! refines); [`BucketSpec::version`] is the version of what a bucket holds. Changing a
//! bucket's format means bumping its version and migrating or refusing the old one on open.

use std::path::{Path, PathBuf};

use super::{Digest, Kind, LocalStore};

/// One file or folder directly under the store root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    OciLayout,
    Index,
    Blobs,
    Refs,
    Pins,
    Labels,
    Trees,
    Tmp,
    Names,
    Outbox,
    Lock,
    IndexLock,
    Signatures,
    RefsIndex,
    Merkle,
    Locations,
}

/// Whether a bucket is one file or a folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    File,
    Folder,
}

/// Whose specification a bucket's format follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefinedBy {
    /// OCI image-spec 1.1, "OCI Image Layout Specification" (`imageLayoutVersion` 1.0.0):
    /// OCI tools read these.
    Oci,
    /// refine's own bookkeeping, which no OCI tool needs to understand.
    Refine,
}

/// What the layout declares about a bucket.
#[derive(Clone, Copy, Debug)]
pub struct BucketSpec {
    pub bucket: Bucket,
    /// Its name under the store root.
    pub name: &'static str,
    /// The version of its format (for OCI buckets, of refine's use of it).
    pub version: u32,
    pub form: Form,
    pub defined_by: DefinedBy,
    /// What it holds, in the words of `docs/store.md`.
    pub holds: &'static str,
}

/// The `imageLayoutVersion` refine writes to and accepts in `oci-layout`.
pub const OCI_LAYOUT_VERSION: &str = "1.0.0";

const fn spec(
    bucket: Bucket,
    name: &'static str,
    form: Form,
    defined_by: DefinedBy,
    holds: &'static str,
) -> BucketSpec {
    BucketSpec {
        bucket,
        name,
        version: 1,
        form,
        defined_by,
        holds,
    }
}

use DefinedBy::{Oci, Refine};
use Form::{File, Folder};

/// Every bucket, in [`Bucket`] order.
pub const BUCKETS: [BucketSpec; 16] = [
    spec(
        Bucket::OciLayout,
        "oci-layout",
        File,
        Oci,
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    ),
    spec(
        Bucket::Index,
        "index.json",
        File,
        Oci,
        "the OCI index: one entry per tag (= key), kept in step with refs/ once per command",
    ),
    spec(
        Bucket::Blobs,
        "blobs",
        Folder,
        Oci,
        "blobs/sha256/<hex>: every blob (manifests, layers, the empty config, sources, logs)",
    ),
    spec(
        Bucket::Refs,
        "refs",
        Folder,
        Refine,
        "refs/<kind>/<key[..2]>/<key>: \"sha256:<manifest hex> <manifest size>\\n\"",
    ),
    spec(
        Bucket::Pins,
        "pins",
        Folder,
        Refine,
        "pins/<hex[..2]>/<hex>: \"source\\n\" or \"log\\n\", a plain blob gc keeps",
    ),
    spec(
        Bucket::Labels,
        "labels",
        Folder,
        Refine,
        "labels/<h[..2]>/<h>: JSON {label, kind, key, digest}, h = BLAKE3(label)",
    ),
    spec(
        Bucket::Trees,
        "trees",
        Folder,
        Refine,
        "trees/<manifest hex>/: unpacked artifacts, mounted into sandboxes",
    ),
    spec(
        Bucket::Tmp,
        "tmp",
        Folder,
        Refine,
        "tmp/: work in progress, renamed into place when complete",
    ),
    spec(
        Bucket::Names,
        "names",
        Folder,
        Refine,
        "names/<hex>: the file name a source blob was fetched or imported under",
    ),
    spec(
        Bucket::Outbox,
        "outbox",
        Folder,
        Refine,
        "outbox/<kind>/<key>: \"sha256:<manifest hex>\\n\", a push to the remote not finished",
    ),
    spec(
        Bucket::Lock,
        "lock",
        File,
        Refine,
        "flock: writers hold it shared, gc and verify --fix exclusive",
    ),
    spec(
        Bucket::IndexLock,
        "index.lock",
        File,
        Refine,
        "flock: serialises index.json rewrites",
    ),
    spec(
        Bucket::Signatures,
        "signatures",
        Folder,
        Refine,
        "signatures/<manifest hex>: \"sha256:<envelope hex>\\n\" lines, the signed provenance of an artifact",
    ),
    spec(
        Bucket::RefsIndex,
        "refs.idx",
        File,
        Refine,
        "the no-op index: (kind, key) → manifest and content digests, checksummed, rebuilt from refs/ when damaged",
    ),
    spec(
        Bucket::Merkle,
        "merkle",
        Folder,
        Refine,
        "merkle/<manifest hex>: the REAPI Merkle tree (a `Tree` message) of trees/<manifest hex>/, a cache for remote execution",
    ),
    spec(
        Bucket::Locations,
        "locations",
        Folder,
        Refine,
        "locations/<hex>: \"<registry> <repository>\\n\" lines, where a blob of 1 MiB or more was pushed or pulled; a push mounts it from there",
    ),
];

impl Bucket {
    /// Every bucket.
    pub const ALL: [Bucket; 16] = [
        Bucket::OciLayout,
        Bucket::Index,
        Bucket::Blobs,
        Bucket::Refs,
        Bucket::Pins,
        Bucket::Labels,
        Bucket::Trees,
        Bucket::Tmp,
        Bucket::Names,
        Bucket::Outbox,
        Bucket::Lock,
        Bucket::IndexLock,
        Bucket::Signatures,
        Bucket::RefsIndex,
        Bucket::Merkle,
        Bucket::Locations,
    ];

    /// What the layout declares about this bucket.
    pub fn spec(self) -> &'static BucketSpec {
        &BUCKETS[self as usize]
    }

    /// Its name under the store root.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The version of its format.
    pub fn version(self) -> u32 {
        self.spec().version
    }
}

/// `dir/<hex[..2]>/<hex>`: a 256-way fan-out keeps folders small.
pub(crate) fn fan(dir: PathBuf, hex: &str) -> PathBuf {
    let mut p = dir;
    p.push(&hex[..2]);
    p.push(hex);
    p
}

/// The blobs' folder under `blobs/`: refine writes sha256 only.
const BLOB_ALGORITHM: &str = "sha256";

impl LocalStore {
    /// The path of a bucket.
    pub(crate) fn bucket_path(&self, bucket: Bucket) -> PathBuf {
        self.root.join(bucket.name())
    }

    /// The folder refine writes blobs into: `blobs/sha256`.
    pub(crate) fn blob_dir(&self) -> PathBuf {
        self.bucket_path(Bucket::Blobs).join(BLOB_ALGORITHM)
    }

    /// Path of the blob with `digest` (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let mut p = self.blob_dir();
        p.push(digest.hex());
        p
    }

    /// The store's scratch folder, `tmp/`: work folders created there can be renamed into
    /// the store. Hold a [`LocalStore::lease`] while using it, or `gc` clears it.
    pub fn tmp_dir(&self) -> PathBuf {
        self.bucket_path(Bucket::Tmp)
    }

    pub(crate) fn ref_dir(&self, kind: Kind) -> PathBuf {
        self.bucket_path(Bucket::Refs).join(kind.as_str())
    }

    pub(crate) fn ref_path(&self, kind: Kind, key: &str) -> PathBuf {
        fan(self.ref_dir(kind), key)
    }

    pub(crate) fn pin_path(&self, digest: &Digest) -> PathBuf {
        fan(self.bucket_path(Bucket::Pins), &digest.hex())
    }

    pub(crate) fn label_path(&self, label: &str) -> PathBuf {
        fan(self.bucket_path(Bucket::Labels), &label_hash(label))
    }

    pub(crate) fn tree_path(&self, manifest: &Digest) -> PathBuf {
        self.bucket_path(Bucket::Trees).join(manifest.hex())
    }

    /// Where the REAPI Merkle tree of an unpacked artifact is kept (`refine-reapi` writes it).
    pub fn merkle_path(&self, manifest: &Digest) -> PathBuf {
        self.bucket_path(Bucket::Merkle).join(manifest.hex())
    }

    /// The manifest whose unpacked tree `path` is, if it is one of this store's trees.
    pub fn tree_manifest(&self, path: &Path) -> Option<Digest> {
        if path.parent()? != self.bucket_path(Bucket::Trees) {
            return None;
        }
        Digest::from_hex(path.file_name()?.to_str()?)
    }

    pub(crate) fn name_path(&self, digest: &Digest) -> PathBuf {
        self.bucket_path(Bucket::Names).join(digest.hex())
    }

    pub(crate) fn location_path(&self, digest: &Digest) -> PathBuf {
        self.bucket_path(Bucket::Locations).join(digest.hex())
    }

    pub(crate) fn outbox_dir(&self, kind: Kind) -> PathBuf {
        self.bucket_path(Bucket::Outbox).join(kind.as_str())
    }

    pub(crate) fn outbox_path(&self, kind: Kind, key: &str) -> PathBuf {
        self.outbox_dir(kind).join(key)
    }
}

/// The file name of a label's record: BLAKE3 of the label, in hex.
pub(crate) fn label_hash(label: &str) -> String {
    blake3::hash(label.as_bytes()).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_enum_order_and_names_are_unique() {
        for (i, b) in Bucket::ALL.into_iter().enumerate() {
            assert_eq!(BUCKETS[i].bucket, b);
            assert_eq!(b as usize, i);
        }
        let mut names: Vec<&str> = BUCKETS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BUCKETS.len());
    }

    /// The layout comment of the crate and `docs/store.md` list every bucket.
    #[test]
    fn the_docs_list_every_bucket() {
        let lib = include_str!("lib.rs");
        let doc: String = lib
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        let book = include_str!("../../../docs/store.md");
        for b in Bucket::ALL {
            let shown = match b.spec().form {
                Form::Folder => format!("  {}/", b.name()),
                Form::File => format!("  {}", b.name()),
            };
            assert!(doc.contains(&shown), "lib.rs does not list `{shown}`");
            assert!(
                book.contains(&shown),
                "docs/store.md does not list `{shown}`"
            );
        }
    }
}
