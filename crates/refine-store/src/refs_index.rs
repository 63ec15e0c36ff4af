//! `refs.idx`, the no-op index: what a build needs to call a node cached — (kind, key) → the
//! artifact's manifest digest and its content digest (what dependants' keys name) — in one
//! checksummed file read in one go, so that a fully cached build opens no per-node file.
//!
//! Refs stay the truth; the index is a cache of them, never trusted blindly:
//! - **damaged** (wrong magic, version or length, or a BLAKE3 checksum that does not match):
//!   ignored, and rebuilt from every ref at the end of the command;
//! - **behind** (a ref it lacks: a crash between storing an artifact and the index update,
//!   another process's update still to come, a store written by an older refine): a lookup
//!   the index cannot answer reads the ref, and the end of the command adds it;
//! - **ahead** (an entry whose ref is gone): only gc removes refs, and gc rebuilds the index
//!   before it removes any blob, so an entry always names a manifest the store still holds.
//!
//! Updates are merged once per command under `index.lock`, as for `index.json`, reading each
//! ref again (the ref wins). A lookup the index answers records the use in the index, at most
//! every few minutes, instead of touching the ref file; gc takes the later of the two.
//!
//! Format, version 1 (little-endian): the magic `refine-refs-idx\0`, a `u32` version, a `u32`
//! count, then `count` records of [`RECORD`] bytes sorted by (kind, key) — kind (`u8`, its
//! place in [`Kind::ALL`]), 7 zero bytes, key (32), manifest sha256 (32), content sha256 (32),
//! last use recorded by a lookup (`u64` seconds since the epoch, 0 for none) — and the BLAKE3
//! hash of everything before it.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::index::PendingTag;
use super::{Bucket, Digest, Kind, LocalStore, Result};

const MAGIC: &[u8; 16] = b"refine-refs-idx\0";
const VERSION: u32 = 1;
const HEADER: usize = 16 + 4 + 4;
const RECORD: usize = 8 + 32 + 32 + 32 + 8;
const CHECKSUM: usize = 32;

/// How stale an entry's last use may get before a lookup records a new one (as for refs).
pub(crate) const TOUCH_EVERY: Duration = Duration::from_secs(600);

/// What the index says of one artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedArtifact {
    /// The manifest's digest (what the ref holds).
    pub manifest: Digest,
    /// [`crate::Manifest::content_digest`] of that manifest.
    pub content: Digest,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub kind: Kind,
    pub key: [u8; 32],
    pub artifact: CachedArtifact,
    /// The last use the index recorded, in seconds since the epoch; 0 when it recorded none
    /// (the ref's time is then the last use).
    pub used: u64,
}

type EntryId = (u8, [u8; 32]);

fn kind_code(kind: Kind) -> u8 {
    Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0) as u8
}

fn key_bytes(key: &str) -> Option<[u8; 32]> {
    Digest::from_hex(key).map(|d| *d.as_bytes())
}

pub(crate) fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A parsed, checked `refs.idx`: the file's bytes, searched in place.
#[derive(Debug)]
pub(crate) struct RefsIndex {
    bytes: Vec<u8>,
    count: usize,
}

impl RefsIndex {
    /// Checks magic, version, length and checksum.
    pub fn parse(bytes: Vec<u8>) -> std::result::Result<Self, String> {
        if bytes.len() < HEADER + CHECKSUM || &bytes[..16] != MAGIC {
            return Err("it does not start with refine's index header".into());
        }
        let version = u32::from_le_bytes(bytes[16..20].try_into().unwrap_or_default());
        if version != VERSION {
            return Err(format!("it is version {version}, not {VERSION}"));
        }
        let count = u32::from_le_bytes(bytes[20..24].try_into().unwrap_or_default()) as usize;
        if bytes.len() != HEADER + count * RECORD + CHECKSUM {
            return Err(format!(
                "{} bytes is not the length of {count} entries (truncated?)",
                bytes.len()
            ));
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
        if blake3::hash(body).as_bytes() != sum {
            return Err("its checksum does not match its content".into());
        }
        let index = RefsIndex { bytes, count };
        let sorted = (1..count).all(|i| index.id(i - 1) < index.id(i));
        if !sorted {
            return Err("its entries are not in order".into());
        }
        Ok(index)
    }

    fn record(&self, i: usize) -> &[u8] {
        &self.bytes[HEADER + i * RECORD..HEADER + (i + 1) * RECORD]
    }

    fn id(&self, i: usize) -> (u8, &[u8]) {
        let r = self.record(i);
        (r[0], &r[8..40])
    }

    fn entry(&self, i: usize) -> Option<Entry> {
        let r = self.record(i);
        let bytes32 = |at: usize| -> [u8; 32] { r[at..at + 32].try_into().unwrap_or_default() };
        Some(Entry {
            kind: *Kind::ALL.get(r[0] as usize)?,
            key: bytes32(8),
            artifact: CachedArtifact {
                manifest: Digest::from_sha256_bytes(bytes32(40)),
                content: Digest::from_sha256_bytes(bytes32(72)),
            },
            used: u64::from_le_bytes(r[104..112].try_into().unwrap_or_default()),
        })
    }

    /// The entry for (`kind`, `key`), by binary search.
    pub fn get(&self, kind: Kind, key: &[u8; 32]) -> Option<Entry> {
        let wanted = (kind_code(kind), &key[..]);
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.id(mid).cmp(&wanted) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.entry(mid),
            }
        }
        None
    }

    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        (0..self.count).filter_map(|i| self.entry(i))
    }

    /// The file's bytes for `entries` (any order; one entry per id).
    pub fn encode(entries: &BTreeMap<EntryId, Entry>) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + entries.len() * RECORD + CHECKSUM);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for ((code, key), e) in entries {
            out.push(*code);
            out.extend_from_slice(&[0; 7]);
            out.extend_from_slice(key);
            out.extend_from_slice(e.artifact.manifest.as_bytes());
            out.extend_from_slice(e.artifact.content.as_bytes());
            out.extend_from_slice(&e.used.to_le_bytes());
        }
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        out
    }
}

/// The index as this process first read it.
#[derive(Debug)]
pub(crate) enum Loaded {
    Valid(RefsIndex),
    /// Absent or damaged (the reason): the end of the command rebuilds it.
    Unusable(Option<String>),
}

/// What this process learnt that the index should record, merged at the next sync.
#[derive(Debug, Default)]
pub(crate) struct IndexUpdates {
    /// Artifacts found through their ref because the index lacked them.
    pub found: Vec<PendingTag>,
    /// Entries whose last use should be refreshed.
    pub used: Vec<(Kind, [u8; 32])>,
    /// Whether an unusable index was rebuilt already (once per process is enough).
    pub rebuilt: bool,
}

impl LocalStore {
    fn refs_index(&self) -> &Loaded {
        self.refs_index.get_or_init(|| self.read_refs_index())
    }

    /// The index on disk now, checked.
    pub(crate) fn read_refs_index(&self) -> Loaded {
        let path = self.bucket_path(Bucket::RefsIndex);
        match fs_err::read(&path) {
            Ok(bytes) => match RefsIndex::parse(bytes) {
                Ok(index) => Loaded::Valid(index),
                Err(reason) => Loaded::Unusable(Some(reason)),
            },
            Err(_) => Loaded::Unusable(None),
        }
    }

    fn updates(&self) -> std::sync::MutexGuard<'_, IndexUpdates> {
        self.index_updates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The artifact stored for (`kind`, `key`), from the no-op index when it has the entry,
    /// else from the ref (and its manifest, verified), which the next sync adds to the index.
    pub fn lookup_artifact(&self, kind: Kind, key: &str) -> Result<Option<CachedArtifact>> {
        match key_bytes(key) {
            Some(raw) => self.lookup_artifact_key(kind, &raw),
            // Not a key the index can hold: the ref lookup says why.
            None => self.lookup_artifact_ref(kind, key),
        }
    }

    /// [`LocalStore::lookup_artifact`] for a key given as its 32 bytes: a hit in the no-op
    /// index costs no hex conversion either way.
    pub fn lookup_artifact_key(
        &self,
        kind: Kind,
        key: &[u8; 32],
    ) -> Result<Option<CachedArtifact>> {
        if let Loaded::Valid(index) = self.refs_index()
            && let Some(entry) = index.get(kind, key)
        {
            let now = seconds(SystemTime::now());
            if now.saturating_sub(entry.used) >= TOUCH_EVERY.as_secs() {
                self.updates().used.push((kind, *key));
            }
            return Ok(Some(entry.artifact));
        }
        self.lookup_artifact_ref(kind, &refine_digest::hex32(key))
    }

    /// The artifact as its ref says, which the next sync adds to the index.
    fn lookup_artifact_ref(&self, kind: Kind, key: &str) -> Result<Option<CachedArtifact>> {
        let Some(manifest) = self.lookup(kind.as_str(), key)? else {
            return Ok(None);
        };
        let content = self.read_manifest(&manifest)?.content_digest();
        let artifact = CachedArtifact { manifest, content };
        self.updates().found.push(PendingTag {
            kind,
            key: key.to_owned(),
            artifact,
        });
        Ok(Some(artifact))
    }

    /// Brings `refs.idx` up to date with what this process stored (`tags`) and learnt; a
    /// missing or damaged index is rebuilt from every ref. Best effort: the index is a cache
    /// of the refs, and the next command tries again.
    pub(crate) fn sync_refs_index(&self, tags: &[PendingTag]) {
        let (found, used, rebuild) = {
            let mut u = self.updates();
            let unusable = matches!(self.refs_index.get(), Some(Loaded::Unusable(_)));
            let rebuild = unusable && !u.rebuilt;
            u.rebuilt |= rebuild;
            (
                std::mem::take(&mut u.found),
                std::mem::take(&mut u.used),
                rebuild,
            )
        };
        if tags.is_empty() && found.is_empty() && used.is_empty() && !rebuild {
            return;
        }
        let updates = IndexUpdates {
            found,
            used,
            rebuilt: false,
        };
        let Ok(_lease) = self.lease() else { return };
        let Ok(_lock) = self.lock_index() else { return };
        let _ = self.merge_refs_index(tags, updates);
    }

    fn merge_refs_index(&self, tags: &[PendingTag], updates: IndexUpdates) -> Result<()> {
        let Loaded::Valid(current) = self.read_refs_index() else {
            return self.rebuild_refs_index_locked();
        };
        let mut entries: BTreeMap<EntryId, Entry> = current
            .entries()
            .map(|e| ((kind_code(e.kind), e.key), e))
            .collect();
        let now = seconds(SystemTime::now());
        for PendingTag {
            kind,
            key,
            artifact,
        } in tags.iter().chain(&updates.found)
        {
            let (kind, artifact) = (*kind, *artifact);
            let Some(raw) = key_bytes(key) else { continue };
            let id = (kind_code(kind), raw);
            // The ref is the truth: another process may have rewritten it, or gc removed it.
            match self.read_ref(kind, key)? {
                Some((manifest, _)) if self.has_blob(&manifest) => {
                    let content = if artifact.manifest == manifest {
                        artifact.content
                    } else {
                        self.read_manifest(&manifest)?.content_digest()
                    };
                    let artifact = CachedArtifact { manifest, content };
                    // Just written or read through the ref, whose own time says so.
                    let used = 0;
                    entries.insert(
                        id,
                        Entry {
                            kind,
                            key: raw,
                            artifact,
                            used,
                        },
                    );
                }
                _ => {
                    entries.remove(&id);
                }
            }
        }
        for (kind, raw) in updates.used {
            if let Some(e) = entries.get_mut(&(kind_code(kind), raw)) {
                e.used = now;
            }
        }
        self.write_refs_index(&entries)
    }

    fn write_refs_index(&self, entries: &BTreeMap<EntryId, Entry>) -> Result<()> {
        let path = self.bucket_path(Bucket::RefsIndex);
        self.write_atomic(&path, &RefsIndex::encode(entries))
    }

    /// Regenerates `refs.idx` from every ref whose manifest is readable, keeping the uses the
    /// old index recorded. Callers hold `index.lock`.
    pub(crate) fn rebuild_refs_index_locked(&self) -> Result<()> {
        let old = match self.read_refs_index() {
            Loaded::Valid(index) => index
                .entries()
                .map(|e| ((kind_code(e.kind), e.key), e.used))
                .collect(),
            Loaded::Unusable(_) => BTreeMap::new(),
        };
        let (refs, _bad) = self.list_refs()?;
        let mut entries = BTreeMap::new();
        for r in refs {
            let (Some(raw), Ok(manifest)) = (key_bytes(&r.key), self.read_manifest(&r.digest))
            else {
                continue; // `verify` reports it; a lookup reads the ref.
            };
            let id = (kind_code(r.kind), raw);
            let used = old.get(&id).copied().unwrap_or(0);
            let artifact = CachedArtifact {
                manifest: r.digest,
                content: manifest.content_digest(),
            };
            entries.insert(
                id,
                Entry {
                    kind: r.kind,
                    key: raw,
                    artifact,
                    used,
                },
            );
        }
        self.write_refs_index(&entries)
    }

    /// [`Self::rebuild_refs_index_locked`] taking `index.lock` (gc and `verify --fix`, which
    /// hold the store's lock).
    pub(crate) fn rebuild_refs_index_unlocked(&self) -> Result<()> {
        let _lock = self.lock_index()?;
        self.rebuild_refs_index_locked()
    }

    /// Each entry's last recorded use, for gc (which takes the later of it and the ref's).
    pub(crate) fn refs_index_uses(&self) -> std::collections::HashMap<(Kind, String), u64> {
        match self.read_refs_index() {
            Loaded::Valid(index) => index
                .entries()
                .map(|e| ((e.kind, Digest::from_sha256_bytes(e.key).hex()), e.used))
                .collect(),
            Loaded::Unusable(_) => Default::default(),
        }
    }
}

#[cfg(test)]
mod tests;
