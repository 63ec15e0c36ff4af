//! Refs (key → artifact manifest), pins (plain blobs kept alive) and label records.
//!
//! One small file per entry, written atomically (temp file, fsync, rename), fanned out over
//! 256 folders by the first two hex digits: a lookup is one `open` + `read`, an insert one
//! file write and one rename, whatever the number of entries.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::artifact::validate_key;
use super::error::io_err;
use super::layout::label_hash;
use super::walk::{BadEntry, entries, list_fanned, mtime};
use super::{Bucket, Digest, Kind, LocalStore, Result, StoreError};

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
    pub(crate) fn parse(s: &str) -> Option<Self> {
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
    /// `None` if the file holds neither `source` nor `log`: `verify` reports it, and gc
    /// still keeps the blob (the name says which).
    pub role: Option<PinRole>,
}

/// How stale a ref's "last used" time may get before a lookup refreshes it.
const TOUCH_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

fn read_small(path: &Path) -> io::Result<Option<String>> {
    match fs_err::File::open(path) {
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

impl LocalStore {
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
        match fs_err::read_to_string(&path) {
            Ok(text) => parse_ref(&text)
                .map(Some)
                .map_err(|reason| StoreError::BadRef { path, reason }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read", path, e)),
        }
    }

    /// An artifact's commit: what the step wrote before reaches the disk first (see
    /// `durability`), then the ref, synced.
    pub(crate) fn write_ref(
        &self,
        kind: Kind,
        key: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<()> {
        self.commit_point()?;
        let tmp = self.temp_file_with("w-", format!("{digest} {size}\n").as_bytes(), 0o644)?;
        self.finish_file_now(tmp, &self.ref_path(kind, key))
    }

    pub(crate) fn write_pin(&self, digest: &Digest, role: PinRole) -> Result<()> {
        let path = self.pin_path(digest);
        match fs_err::read_to_string(&path) {
            Ok(s) if s.trim_end() == role.as_str() => {
                let _ = fs_err::File::open(&path).and_then(|f| f.set_modified(SystemTime::now()));
                Ok(())
            }
            _ => self.write_atomic(&path, format!("{}\n", role.as_str()).as_bytes()),
        }
    }

    /// Whether a blob is pinned, and as what.
    pub fn pin_role(&self, digest: &Digest) -> Option<PinRole> {
        let text = fs_err::read_to_string(self.pin_path(digest)).ok()?;
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
        let bytes = match fs_err::read(&path) {
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

    /// Every artifact the refs name: `(kind, key, manifest)`, sorted (unreadable refs left
    /// out: `verify` reports them).
    pub fn artifacts(&self) -> Result<Vec<(Kind, String, Digest)>> {
        let (refs, _) = self.list_refs()?;
        let mut out: Vec<(Kind, String, Digest)> = refs
            .into_iter()
            .map(|r| (r.kind, r.key, r.digest))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Every ref, and what under `refs/` could not be read or does not belong there.
    pub(crate) fn list_refs(&self) -> Result<(Vec<RefEntry>, Vec<BadEntry>)> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (name, path, is_dir) in entries(&self.bucket_path(Bucket::Refs))? {
            if !(is_dir && Kind::parse(&name).is_some()) {
                bad.push(BadEntry::new(
                    &path,
                    format!("it is not a folder named after a kind ({})", Kind::names()),
                ));
            }
        }
        for kind in Kind::ALL {
            let (found, wrong) = list_fanned(&self.ref_dir(kind), |name, path| {
                validate_key(name).map_err(|_| "the file name is not a key".to_owned())?;
                let text = fs_err::read_to_string(path).map_err(|e| e.to_string())?;
                let (digest, size) = parse_ref(&text)?;
                Ok(RefEntry {
                    kind,
                    key: name.to_owned(),
                    digest,
                    size,
                    path: path.to_owned(),
                    used: mtime(path),
                })
            })?;
            good.extend(found);
            bad.extend(wrong);
        }
        Ok((good, bad))
    }

    /// Every pin, and what under `pins/` does not belong there.
    pub(crate) fn list_pins(&self) -> Result<(Vec<PinEntry>, Vec<BadEntry>)> {
        list_fanned(&self.bucket_path(Bucket::Pins), |name, path| {
            let digest = Digest::from_hex(name).ok_or("the file name is not a sha256")?;
            let role = fs_err::read_to_string(path)
                .ok()
                .and_then(|text| PinRole::parse(text.trim_end()));
            Ok(PinEntry {
                digest,
                path: path.to_owned(),
                used: mtime(path),
                role,
            })
        })
    }

    /// Every label record, and what under `labels/` could not be read or is filed under
    /// another label's name.
    pub(crate) fn list_labels(&self) -> Result<(Vec<LabelFile>, Vec<BadEntry>)> {
        list_fanned(&self.bucket_path(Bucket::Labels), |name, path| {
            let bytes = fs_err::read(path).map_err(|e| e.to_string())?;
            let record: LabelRecord = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
            if label_hash(&record.label) != name {
                return Err(format!(
                    "it records label `{}`, whose record has another file name",
                    record.label
                ));
            }
            Ok((path.to_owned(), record))
        })
    }
}
