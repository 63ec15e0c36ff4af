//! Refs (key → artifact manifest), pins (plain blobs kept alive) and label records.
//!
//! One small file per entry, written atomically (temp file, fsync, rename), fanned out over
//! 256 folders by the first two hex digits: a lookup is one `open` + `read`, an insert one
//! file write and one rename, whatever the number of entries.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::Kind;
use super::artifact::validate_key;
use super::error::io_err;
use super::{Digest, LocalStore, Result, StoreError};

/// Why a plain blob is pinned (kept by gc although no manifest refers to it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PinRole {
    /// A fixed-output source (sdist, tarball, imported file).
    Source,
    /// An action log.
    Log,
}

impl PinRole {
    pub fn as_str(self) -> &'static str {
        match self {
            PinRole::Source => "source",
            PinRole::Log => "log",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "source" => Some(PinRole::Source),
            "log" => Some(PinRole::Log),
            _ => None,
        }
    }
}

/// The last artifact stored for a label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelRecord {
    pub label: String,
    pub kind: String,
    pub key: String,
    pub digest: Digest,
}

/// A ref as found on disk.
#[derive(Clone, Debug)]
pub(crate) struct RefEntry {
    pub kind: Kind,
    pub key: String,
    pub digest: Digest,
    pub size: u64,
    pub path: PathBuf,
    /// Last insert or lookup (refs are touched on lookup).
    pub used: SystemTime,
}

/// A label record and its file.
pub(crate) type LabelFile = (PathBuf, LabelRecord);

/// A pin as found on disk.
#[derive(Clone, Debug)]
pub(crate) struct PinEntry {
    pub digest: Digest,
    pub path: PathBuf,
    pub used: SystemTime,
}

/// Something under `refs/`, `pins/` or `labels/` that could not be read.
#[derive(Clone, Debug)]
pub(crate) struct BadEntry {
    pub path: PathBuf,
    pub reason: String,
}

fn fan(dir: PathBuf, hex: &str) -> PathBuf {
    let mut p = dir;
    p.push(&hex[..2]);
    p.push(hex);
    p
}

/// How stale a ref's "last used" time may get before a lookup refreshes it.
const TOUCH_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

fn read_small(path: &Path) -> io::Result<Option<String>> {
    match std::fs::File::open(path) {
        Ok(mut f) => {
            let mut s = String::new();
            f.read_to_string(&mut s)?;
            // Record the use, for gc's eviction of the least recently used entries; best
            // effort (a read-only store). At most every few minutes, so that a no-op build's
            // thousands of lookups do not each dirty an inode.
            let now = SystemTime::now();
            let stale = f.metadata().and_then(|m| m.modified()).map_or(true, |m| {
                now.duration_since(m).unwrap_or_default() >= TOUCH_EVERY
            });
            if stale {
                let _ = f.set_modified(now);
            }
            Ok(Some(s))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn parse_ref(text: &str) -> std::result::Result<(Digest, u64), String> {
    let line = text.strip_suffix('\n').unwrap_or(text);
    let (digest, size) = line
        .split_once(' ')
        .ok_or_else(|| "expected `sha256:<hex> <size>`".to_owned())?;
    let digest = Digest::parse(digest).map_err(|e| e.to_string())?;
    let size = size
        .parse()
        .map_err(|_| format!("`{size}` is not a size"))?;
    Ok((digest, size))
}

/// Lists `dir/<xx>/<name>` files in parallel over the fan-out folders.
fn list_fanned<T: Send>(dir: &Path, f: impl Fn(&str, &Path) -> T + Sync) -> Result<Vec<T>> {
    let fans: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(StoreError::io("list", dir, e)),
    };
    let lists: Vec<Vec<T>> = fans
        .par_iter()
        .map(|fan| {
            let rd = std::fs::read_dir(fan).map_err(io_err("list", fan))?;
            let mut out = Vec::new();
            for entry in rd {
                let entry = entry.map_err(io_err("list", fan))?;
                let name = entry.file_name();
                let path = entry.path();
                out.push(f(&name.to_string_lossy(), &path));
            }
            Ok(out)
        })
        .collect::<Result<_>>()?;
    Ok(lists.into_iter().flatten().collect())
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

impl LocalStore {
    fn ref_path(&self, kind: Kind, key: &str) -> PathBuf {
        fan(self.root.join("refs").join(kind.as_str()), key)
    }

    fn pin_path(&self, digest: &Digest) -> PathBuf {
        fan(self.root.join("pins"), &digest.hex())
    }

    fn label_path(&self, label: &str) -> PathBuf {
        fan(
            self.root.join("labels"),
            blake3::hash(label.as_bytes()).to_hex().as_str(),
        )
    }

    /// The manifest digest of the artifact stored for (`kind`, `key`), if any.
    ///
    /// `kind` is one of `base`, `runtime`, `pack`, `wheel`, `repair`; `key` is 64 lowercase
    /// hex. A ref whose manifest blob has vanished counts as absent (a cache miss, so the
    /// artifact is rebuilt and the ref rewritten). A hit refreshes the ref's mtime, which
    /// `gc --older-than` and `--max-size` read as "last used".
    pub fn lookup(&self, kind: &str, key: &str) -> Result<Option<Digest>> {
        let kind = super::artifact::parse_kind(kind)?;
        validate_key(key)?;
        let path = self.ref_path(kind, key);
        let Some(text) = read_small(&path).map_err(io_err("read", &path))? else {
            return Ok(None);
        };
        let (digest, _) = parse_ref(&text).map_err(|reason| StoreError::BadRef {
            path: path.clone(),
            reason,
        })?;
        Ok(self.has_blob(&digest).then_some(digest))
    }

    /// The ref's content, without refreshing its last use.
    pub(crate) fn read_ref(&self, kind: Kind, key: &str) -> Result<Option<(Digest, u64)>> {
        let path = self.ref_path(kind, key);
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_ref(&text)
                .map(Some)
                .map_err(|reason| StoreError::BadRef { path, reason }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read", path, e)),
        }
    }

    pub(crate) fn write_ref(
        &self,
        kind: Kind,
        key: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<()> {
        self.write_atomic(
            &self.ref_path(kind, key),
            format!("{digest} {size}\n").as_bytes(),
        )
    }

    pub(crate) fn write_pin(&self, digest: &Digest, role: PinRole) -> Result<()> {
        let path = self.pin_path(digest);
        match std::fs::read_to_string(&path) {
            Ok(s) if s.trim_end() == role.as_str() => {
                let _ = std::fs::File::open(&path).and_then(|f| f.set_modified(SystemTime::now()));
                Ok(())
            }
            _ => self.write_atomic(&path, format!("{}\n", role.as_str()).as_bytes()),
        }
    }

    /// Whether a blob is pinned, and as what.
    pub fn pin_role(&self, digest: &Digest) -> Option<PinRole> {
        let text = std::fs::read_to_string(self.pin_path(digest)).ok()?;
        PinRole::parse(text.trim_end())
    }

    pub(crate) fn write_label(&self, record: &LabelRecord) -> Result<()> {
        let bytes = serde_json::to_vec(record).expect("a label record serialises");
        self.write_atomic(&self.label_path(&record.label), &bytes)
    }

    /// The manifest digest of the last artifact stored for `label` (e.g.
    /// `//wheels:numpy-py312`), whatever its key: `refine explain` diffs its key fields.
    pub fn latest_for_label(&self, label: &str) -> Result<Option<Digest>> {
        Ok(self.label_record(label)?.map(|r| r.digest))
    }

    /// The full record behind [`LocalStore::latest_for_label`].
    pub fn label_record(&self, label: &str) -> Result<Option<LabelRecord>> {
        let path = self.label_path(label);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("read", path, e)),
        };
        let record: LabelRecord =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::BadRef {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        Ok(Some(record))
    }

    /// Every ref, and the refs that could not be read.
    pub(crate) fn list_refs(&self) -> Result<(Vec<RefEntry>, Vec<BadEntry>)> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for kind in Kind::ALL {
            let dir = self.root.join("refs").join(kind.as_str());
            let found = list_fanned(&dir, |name, path| {
                let bad = |reason: String| BadEntry {
                    path: path.to_owned(),
                    reason,
                };
                if validate_key(name).is_err() {
                    return Err(bad("the file name is not a key".into()));
                }
                let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
                let (digest, size) = parse_ref(&text).map_err(bad)?;
                Ok(RefEntry {
                    kind,
                    key: name.to_owned(),
                    digest,
                    size,
                    path: path.to_owned(),
                    used: mtime(path),
                })
            })?;
            for r in found {
                match r {
                    Ok(e) => good.push(e),
                    Err(b) => bad.push(b),
                }
            }
        }
        Ok((good, bad))
    }

    pub(crate) fn list_pins(&self) -> Result<(Vec<PinEntry>, Vec<BadEntry>)> {
        let found = list_fanned(&self.root.join("pins"), |name, path| {
            let digest = Digest::from_hex(name).ok_or_else(|| BadEntry {
                path: path.to_owned(),
                reason: "the file name is not a sha256".into(),
            })?;
            Ok(PinEntry {
                digest,
                path: path.to_owned(),
                used: mtime(path),
            })
        })?;
        Ok(found.into_iter().partition_result())
    }

    pub(crate) fn list_labels(&self) -> Result<(Vec<LabelFile>, Vec<BadEntry>)> {
        let found = list_fanned(&self.root.join("labels"), |_, path| {
            let bytes = std::fs::read(path).map_err(|e| BadEntry {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            let record: LabelRecord = serde_json::from_slice(&bytes).map_err(|e| BadEntry {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            Ok((path.to_owned(), record))
        })?;
        Ok(found.into_iter().partition_result())
    }
}

trait PartitionResult<T, E> {
    fn partition_result(self) -> (Vec<T>, Vec<E>);
}

impl<T, E, I: Iterator<Item = std::result::Result<T, E>>> PartitionResult<T, E> for I {
    fn partition_result(self) -> (Vec<T>, Vec<E>) {
        let mut ok = Vec::new();
        let mut err = Vec::new();
        for r in self {
            match r {
                Ok(t) => ok.push(t),
                Err(e) => err.push(e),
            }
        }
        (ok, err)
    }
}
