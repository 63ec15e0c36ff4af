//! A cache of rule files already read: parsing KDL is most of the cost of loading a large
//! workspace, and most rule files do not change between two commands.
//!
//! An entry is the typed result of one rule file (its targets and repairs), keyed by BLAKE3
//! of refine's version, `workspace.kdl`'s text (defaults and platforms shape what a rule file
//! means), the file's path and its text. Only files that read without errors are cached, and
//! only after a whole load succeeded, so bad input writes nothing. A build request's lock is
//! cached the same way, keyed by its path and text alone (a lock reads the same in any
//! workspace), once it read without errors. The cache lives in
//! `$REFINE_RULES_CACHE`, else `$XDG_CACHE_HOME/refine-rules`, else `~/.cache/refine-rules`;
//! `REFINE_RULES_CACHE=off` turns it off. Any trouble with it only means a slower load.
//!
//! Entries are postcard, not JSON: decoding them is most of a warm load of a large
//! workspace, and postcard decodes several times faster. postcard is positional, so an entry
//! must never be read by a build whose types differ from the writer's: the key holds
//! [`SCHEMA`] and the source text of every file that declares a type an entry holds, and a
//! decode that fails or leaves bytes over is a miss.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::kinds::PendingRepair;
use super::model::{FileId, Loc, Target};
use super::request::RequestLock;

/// Stands for "this file" in a cached entry; file ids change from load to load.
const THIS_FILE: FileId = usize::MAX;

#[derive(Serialize, Deserialize)]
pub struct Entry {
    pub targets: Vec<Target>,
    pub repairs: Vec<PendingRepair>,
}

pub fn dir() -> Option<PathBuf> {
    match std::env::var_os("REFINE_RULES_CACHE") {
        Some(v) if v == "off" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
            Some(base.join("refine-rules"))
        }
    }
}

/// The shape of a cached entry: bumped when [`Entry`] changes meaning without its types
/// changing, so that an entry written by an older build is not read as a new one.
const SCHEMA: &str = "postcard-1";

/// The source of every file that declares a type a cached entry holds (with the serde
/// attributes that shape its encoding): any edit to them makes every key new.
const TYPES: [&str; 7] = [
    include_str!("model.rs"),
    include_str!("kinds.rs"),
    include_str!("reader.rs"),
    include_str!("request/mod.rs"),
    include_str!("cache.rs"),
    include_str!("../label.rs"),
    include_str!("../../../refine-digest/src/kind.rs"),
];

/// BLAKE3 of [`TYPES`], once per process.
fn types_digest() -> &'static str {
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIGEST.get_or_init(|| {
        let mut h = blake3::Hasher::new();
        for text in TYPES {
            h.update(&(text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
        }
        h.finalize().to_hex().to_string()
    })
}

pub fn key(workspace_text: &str, path: &str, text: &str) -> String {
    let mut h = blake3::Hasher::new();
    for part in [
        env!("CARGO_PKG_VERSION"),
        "\0",
        SCHEMA,
        "\0",
        types_digest(),
        "\0",
        workspace_text,
        "\0",
        path,
        "\0",
        text,
    ] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

fn map_locs(entry: &mut Entry, from: FileId, to: FileId) {
    let fix = |loc: &mut Loc| {
        if loc.file == from {
            loc.file = to;
        }
    };
    for t in &mut entry.targets {
        fix(&mut t.at);
        for r in t.spec.refs_mut() {
            fix(&mut r.at);
        }
    }
    for p in &mut entry.repairs {
        fix(&mut p.at);
        fix(&mut p.spec.wheel.at);
    }
}

pub fn load(key: &str, file: FileId) -> Option<Entry> {
    let mut entry: Entry = read_entry(key)?;
    map_locs(&mut entry, THIS_FILE, file);
    Some(entry)
}

fn read_entry<T: serde::de::DeserializeOwned>(key: &str) -> Option<T> {
    let bytes = std::fs::read(dir()?.join(&key[..2]).join(key)).ok()?;
    match postcard::take_from_bytes(&bytes) {
        Ok((entry, [])) => Some(entry),
        _ => None,
    }
}

pub fn save(key: &str, file: FileId, mut entry: Entry) {
    map_locs(&mut entry, file, THIS_FILE);
    write_entry(key, &entry);
}

/// Writes an entry atomically; a cache that cannot be written only means a slower load.
fn write_entry(key: &str, entry: &impl Serialize) {
    let Some(dir) = dir() else { return };
    let sub = dir.join(&key[..2]);
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&sub)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&sub)?;
        let bytes = postcard::to_stdvec(entry).map_err(std::io::Error::other)?;
        std::io::Write::write_all(&mut tmp, &bytes)?;
        tmp.persist(sub.join(key)).map_err(|e| e.error)?;
        Ok(())
    };
    let _ = write();
}

/// The key of a request lock's entry: its path and text alone decide what it reads as.
pub fn lock_key(path: &str, text: &str) -> String {
    key("request-lock-2", path, text)
}

/// A request lock read before, its places pointed at `file`, the lock's id in this load.
pub fn load_lock(key: &str, file: FileId) -> Option<RequestLock> {
    let mut lock: RequestLock = read_entry(key)?;
    lock_locs(&mut lock, THIS_FILE, file);
    Some(lock)
}

/// Every place in a lock is in the lock file itself.
fn lock_locs(lock: &mut RequestLock, from: FileId, to: FileId) {
    let locs = std::iter::once(&mut lock.at).chain(
        lock.resolutions
            .iter_mut()
            .flat_map(|r| r.packages.iter_mut().map(|p| &mut p.at)),
    );
    for loc in locs.filter(|l| l.file == from) {
        loc.file = to;
    }
}

/// Saves a lock that read without errors.
pub fn save_lock(key: &str, file: FileId, mut lock: RequestLock) {
    lock_locs(&mut lock, file, THIS_FILE);
    write_entry(key, &lock);
}
