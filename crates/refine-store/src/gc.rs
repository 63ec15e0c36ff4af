//! `gc`: removes what no tag reaches; optionally evicts the least recently used entries first.
//!
//! **Roots** are the refs (`refs/…`, the tags), the pins (`pins/…`: sources and logs) and any
//! `index.json` entry refine did not write. A ref reaches its manifest, the manifest's config
//! and layers, and its unpacked tree. Everything else in `blobs/` and `trees/`, and everything
//! in `tmp/`, is garbage; so are the fetched names (`names/`), outbox entries (`outbox/`) and
//! signature lists (`signatures/`) whose blob does not survive, and whatever in those three
//! cannot be read. A ref also reaches the envelopes its artifact's signature list names.
//!
//! **Eviction**: `older_than` drops refs and pins not used (inserted or looked up) for that
//! long; then `max_size` drops the least recently used ones until the reachable blobs and
//! trees fit. Label records that point at removed manifests go too.
//!
//! **Concurrency**: gc holds the store lock exclusively for its whole run while every writer
//! holds it shared around each write (blob, then manifest, then ref), so gc never sees a blob
//! whose ref is about to be written, and anything in `tmp/` is left over from a crash. A build
//! holds a [`LocalStore::lease`] for its duration, so the trees it mounted stay. The price:
//! gc waits for running builds, and builds wait for a running gc.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::walk::{BadEntry, BlobRecord, entries, remove_any, size_of};
use super::{
    Bucket, Digest, INDEX_MEDIA_TYPE, LocalStore, MANIFEST_MEDIA_TYPE, Result, annotations,
};

/// What [`LocalStore::gc`] may remove.
#[derive(Clone, Debug, Default)]
pub struct GcOptions {
    /// Evict refs and pins not used for this long.
    pub older_than: Option<Duration>,
    /// Evict the least recently used refs and pins until blobs and trees take at most this
    /// many bytes.
    pub max_size: Option<u64>,
    /// Report what would go, remove nothing.
    pub dry_run: bool,
}

/// What [`LocalStore::gc`] removed (or would remove, with `dry_run`).
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    /// `kind/key` of each evicted ref, `pin/sha256:…` of each evicted pin.
    pub evicted: Vec<String>,
    pub removed_blobs: usize,
    pub removed_bytes: u64,
    pub removed_trees: usize,
    pub removed_temp: usize,
    /// Fetched names whose blob went (or was gone), and unreadable ones.
    pub removed_names: usize,
    /// Outbox entries whose artifact went (or was gone), and unreadable ones.
    pub removed_outbox: usize,
    /// Signature lists whose artifact went, and unreadable ones.
    pub removed_signatures: usize,
    /// Blob location records whose blob went (or was gone), and unreadable ones.
    pub removed_locations: usize,
    pub kept_blobs: usize,
    /// Bytes of the blobs and trees kept.
    pub kept_bytes: u64,
}

struct Root {
    name: String,
    used: SystemTime,
    /// The ref or pin file; `None` for foreign `index.json` entries, which are never evicted.
    file: Option<PathBuf>,
    blobs: Vec<Digest>,
    /// The manifest whose unpacked tree this root keeps.
    tree: Option<Digest>,
}

/// What `blobs/` and `trees/` hold.
#[derive(Default)]
struct OnDisk {
    blobs: HashMap<Digest, u64>,
    trees: HashMap<Digest, u64>,
    /// Entries not named after a digest.
    stray: Vec<PathBuf>,
}

/// Which roots survive, and what they reach.
struct Reach {
    evicted: Vec<bool>,
    blobs: HashMap<Digest, usize>,
    trees: HashMap<Digest, usize>,
    /// Bytes of the blobs and trees reached.
    size: u64,
}

impl Reach {
    fn new(roots: &[Root], evicted: Vec<bool>, disk: &OnDisk) -> Self {
        let mut reach = Reach {
            evicted,
            blobs: HashMap::new(),
            trees: HashMap::new(),
            size: 0,
        };
        for (i, root) in roots.iter().enumerate() {
            if reach.evicted[i] {
                continue;
            }
            for d in &root.blobs {
                let c = reach.blobs.entry(*d).or_default();
                *c += 1;
                if *c == 1 {
                    reach.size += disk.blobs.get(d).copied().unwrap_or(0);
                }
            }
            if let Some(t) = root.tree {
                let c = reach.trees.entry(t).or_default();
                *c += 1;
                if *c == 1 {
                    reach.size += disk.trees.get(&t).copied().unwrap_or(0);
                }
            }
        }
        reach
    }

    /// Evicts the least recently used evictable roots until what they reach fits `max`.
    fn shrink_to(&mut self, max: u64, roots: &[Root], disk: &OnDisk) {
        let mut order: Vec<usize> = (0..roots.len())
            .filter(|&i| !self.evicted[i] && roots[i].file.is_some())
            .collect();
        order.sort_by(|&a, &b| {
            (roots[a].used, &roots[a].name).cmp(&(roots[b].used, &roots[b].name))
        });
        for i in order {
            if self.size <= max {
                break;
            }
            self.evicted[i] = true;
            for d in &roots[i].blobs {
                if release(&mut self.blobs, d) {
                    self.size -= disk.blobs.get(d).copied().unwrap_or(0);
                }
            }
            if let Some(t) = roots[i].tree
                && release(&mut self.trees, &t)
            {
                self.size -= disk.trees.get(&t).copied().unwrap_or(0);
            }
        }
    }

    fn live_blobs(&self) -> HashSet<Digest> {
        live(&self.blobs)
    }

    fn live_trees(&self) -> HashSet<Digest> {
        live(&self.trees)
    }
}

/// The files of the records whose blob does not survive, and of the unreadable ones.
fn dead_records(
    records: Vec<BlobRecord>,
    bad: Vec<BadEntry>,
    live: &HashSet<Digest>,
) -> Vec<PathBuf> {
    records
        .into_iter()
        .filter(|r| !live.contains(&r.digest))
        .map(|r| r.path)
        .chain(bad.into_iter().map(|b| b.path))
        .collect()
}

/// Drops one reference; whether it was the last.
fn release(counts: &mut HashMap<Digest, usize>, d: &Digest) -> bool {
    match counts.get_mut(d) {
        Some(c) if *c > 0 => {
            *c -= 1;
            *c == 0
        }
        _ => false,
    }
}

fn live(counts: &HashMap<Digest, usize>) -> HashSet<Digest> {
    counts
        .iter()
        .filter(|(_, c)| **c > 0)
        .map(|(d, _)| *d)
        .collect()
}

impl LocalStore {
    /// Collects garbage; waits for other processes' writes to finish first.
    pub fn gc(&self, options: &GcOptions) -> Result<GcReport> {
        self.gc_with(options, &mut || {})
    }

    /// [`LocalStore::gc`], calling `on_wait` once if it has to wait for another process.
    pub fn gc_with(&self, options: &GcOptions, on_wait: &mut dyn FnMut()) -> Result<GcReport> {
        let _lock = self.lock_exclusive(on_wait)?;
        let mut report = GcReport::default();
        let dry_run = options.dry_run;
        self.clear_tmp(dry_run, &mut report)?;
        let disk = self.on_disk()?;
        let roots = self.roots()?;

        let now = SystemTime::now();
        let limit = options
            .older_than
            .map(|age| now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH));
        let evicted = roots
            .iter()
            .map(|r| r.file.is_some() && limit.is_some_and(|l| r.used < l))
            .collect();
        let mut reach = Reach::new(&roots, evicted, &disk);
        if let Some(max) = options.max_size {
            reach.shrink_to(max, &roots, &disk);
        }
        let live = reach.live_blobs();

        // Refs first (and index.json), then what they no longer reach.
        for (root, _) in roots.iter().zip(&reach.evicted).filter(|(_, e)| **e) {
            report.evicted.push(root.name.clone());
            if !dry_run && let Some(file) = &root.file {
                remove_any(file)?;
            }
        }
        report.evicted.sort();
        if !dry_run {
            let (labels, _) = self.list_labels()?;
            for (path, record) in labels {
                if !live.contains(&record.digest) {
                    remove_any(&path)?;
                }
            }
            self.rebuild_index_unlocked()?;
            // Before any blob goes: an entry of the no-op index always names a manifest
            // the store holds.
            self.rebuild_refs_index_unlocked()?;
        }
        self.remove_unreached(&disk, &live, &reach.live_trees(), dry_run, &mut report)?;
        self.remove_followers(&live, dry_run, &mut report)?;
        for path in &disk.stray {
            report.removed_temp += 1;
            if !dry_run {
                remove_any(path)?;
            }
        }
        Ok(report)
    }

    /// Leftovers of crashed writers: no writer is running while gc holds the lock.
    fn clear_tmp(&self, dry_run: bool, report: &mut GcReport) -> Result<()> {
        for (_, path, _) in entries(&self.tmp_dir())? {
            report.removed_temp += 1;
            if !dry_run {
                remove_any(&path)?;
            }
        }
        Ok(())
    }

    fn on_disk(&self) -> Result<OnDisk> {
        let mut disk = OnDisk::default();
        for (name, path, _) in entries(&self.blob_dir())? {
            match Digest::from_hex(&name) {
                Some(d) => {
                    let size = fs_err::metadata(&path).map_or(0, |m| m.len());
                    disk.blobs.insert(d, size);
                }
                None => disk.stray.push(path),
            }
        }
        for (name, path, _) in entries(&self.bucket_path(Bucket::Trees))? {
            match Digest::from_hex(&name) {
                Some(d) => {
                    disk.trees.insert(d, size_of(&path));
                }
                None => disk.stray.push(path),
            }
        }
        Ok(disk)
    }

    fn roots(&self) -> Result<Vec<Root>> {
        let mut roots = Vec::new();
        let (refs, _) = self.list_refs()?;
        // A lookup the no-op index answered recorded its use there, not on the ref.
        let index_uses = self.refs_index_uses();
        for r in refs {
            let indexed = index_uses
                .get(&(r.kind, r.key.clone()))
                .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(*s));
            let used = indexed.map_or(r.used, |i| i.max(r.used));
            let mut blobs = self.closure(&r.digest);
            // An unreadable list keeps nothing; `verify` reports it.
            blobs.extend(self.signature_digests(&r.digest).unwrap_or_default());
            roots.push(Root {
                name: format!("{}/{}", r.kind, r.key),
                used,
                file: Some(r.path),
                blobs,
                tree: Some(r.digest),
            });
        }
        let (pins, _) = self.list_pins()?;
        for p in pins {
            roots.push(Root {
                name: format!("pin/{}", p.digest),
                used: p.used,
                file: Some(p.path),
                blobs: vec![p.digest],
                tree: None,
            });
        }
        if let Ok(index) = self.read_index() {
            for d in index.manifests {
                if d.annotation(annotations::KIND).is_none() {
                    roots.push(Root {
                        name: d.annotation(annotations::REF_NAME).unwrap_or("").to_owned(),
                        used: SystemTime::now(),
                        file: None,
                        blobs: self.closure(&d.digest),
                        tree: None,
                    });
                }
            }
        }
        Ok(roots)
    }

    fn remove_unreached(
        &self,
        disk: &OnDisk,
        live: &HashSet<Digest>,
        live_trees: &HashSet<Digest>,
        dry_run: bool,
        report: &mut GcReport,
    ) -> Result<()> {
        for (digest, blob_size) in &disk.blobs {
            if live.contains(digest) {
                report.kept_blobs += 1;
                report.kept_bytes += blob_size;
            } else {
                report.removed_blobs += 1;
                report.removed_bytes += blob_size;
                if !dry_run {
                    remove_any(&self.blob_path(digest))?;
                }
            }
        }
        for (digest, tree_size) in &disk.trees {
            if live_trees.contains(digest) {
                report.kept_bytes += tree_size;
            } else {
                report.removed_trees += 1;
                report.removed_bytes += tree_size;
                if !dry_run {
                    remove_any(&self.tree_path(digest))?;
                    remove_any(&self.merkle_path(digest))?;
                }
            }
        }
        Ok(())
    }

    /// Fetched names and outbox entries follow their blob: those whose blob does not
    /// survive go, and so does whatever in their folders cannot be read.
    fn remove_followers(
        &self,
        live: &HashSet<Digest>,
        dry_run: bool,
        report: &mut GcReport,
    ) -> Result<()> {
        let (names, bad_names) = self.list_names()?;
        let names = dead_records(names, bad_names, live);
        let (outbox, bad_outbox) = self.list_outbox()?;
        let dead_outbox = outbox
            .into_iter()
            .filter(|(_, e)| !live.contains(&e.digest));
        let outbox: Vec<PathBuf> = dead_outbox
            .map(|(path, _)| path)
            .chain(bad_outbox.into_iter().map(|b| b.path))
            .collect();
        let (signatures, bad_signatures) = self.list_signatures()?;
        let signatures: Vec<PathBuf> = signatures
            .into_iter()
            .filter(|(_, manifest, _)| !live.contains(manifest))
            .map(|(path, _, _)| path)
            .chain(bad_signatures.into_iter().map(|b| b.path))
            .collect();
        let (locations, bad_locations) = self.list_locations()?;
        let locations = dead_records(locations, bad_locations, live);
        report.removed_names = names.len();
        report.removed_outbox = outbox.len();
        report.removed_signatures = signatures.len();
        report.removed_locations = locations.len();
        if !dry_run {
            for path in names
                .iter()
                .chain(&outbox)
                .chain(&signatures)
                .chain(&locations)
            {
                remove_any(path)?;
            }
        }
        Ok(())
    }

    /// The blobs a manifest (or index) reaches, itself included. What cannot be read reaches
    /// only itself: `verify` reports it.
    fn closure(&self, digest: &Digest) -> Vec<Digest> {
        let mut out = vec![*digest];
        let mut stack = vec![(*digest, 0)];
        while let Some((d, depth)) = stack.pop() {
            let Ok(bytes) = self.read_blob(&d) else {
                continue;
            };
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            match value["mediaType"].as_str() {
                Some(MANIFEST_MEDIA_TYPE) => {
                    if let Ok(m) = super::Manifest::from_slice(&bytes) {
                        out.extend(
                            std::iter::once(&m.config)
                                .chain(&m.layers)
                                .map(|l| l.digest),
                        );
                        if let Some(s) = m.subject {
                            out.push(s.digest);
                        }
                    }
                }
                Some(INDEX_MEDIA_TYPE) if depth < 8 => {
                    if let Ok(index) = serde_json::from_value::<super::Index>(value) {
                        for m in index.manifests {
                            out.push(m.digest);
                            stack.push((m.digest, depth + 1));
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }
}
