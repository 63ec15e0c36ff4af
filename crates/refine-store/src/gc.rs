//! `gc`: removes what no tag reaches; optionally evicts the least recently used entries first.
//!
//! **Roots** are the refs (`refs/…`, the tags), the pins (`pins/…`: sources and logs) and any
//! `index.json` entry refine did not write. A ref reaches its manifest, the manifest's config
//! and layers, and its unpacked tree. Everything else in `blobs/` and `trees/`, and everything
//! in `tmp/`, is garbage.
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
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::error::io_err;
use super::{
    Digest, INDEX_MEDIA_TYPE, LocalStore, MANIFEST_MEDIA_TYPE, Result, StoreError, annotations,
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

fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

fn remove_any(path: &Path) -> Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(StoreError::io("remove", path, e))
        }
        _ => Ok(()),
    }
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
        let now = SystemTime::now();

        // Leftovers of crashed writers: no writer is running while we hold the lock.
        let tmp = self.tmp_dir();
        for entry in std::fs::read_dir(&tmp).map_err(io_err("list", &tmp))? {
            let entry = entry.map_err(io_err("list", &tmp))?;
            report.removed_temp += 1;
            if !options.dry_run {
                remove_any(&entry.path())?;
            }
        }

        // Blobs and trees on disk.
        let blob_dir = self.root.join("blobs/sha256");
        let mut blob_sizes: HashMap<Digest, u64> = HashMap::new();
        let mut stray: Vec<PathBuf> = Vec::new();
        for entry in std::fs::read_dir(&blob_dir).map_err(io_err("list", &blob_dir))? {
            let entry = entry.map_err(io_err("list", &blob_dir))?;
            match Digest::from_hex(&entry.file_name().to_string_lossy()) {
                Some(d) => {
                    let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    blob_sizes.insert(d, size);
                }
                None => stray.push(entry.path()),
            }
        }
        let tree_dir = self.root.join("trees");
        let mut tree_sizes: HashMap<Digest, u64> = HashMap::new();
        for entry in std::fs::read_dir(&tree_dir).map_err(io_err("list", &tree_dir))? {
            let entry = entry.map_err(io_err("list", &tree_dir))?;
            match Digest::from_hex(&entry.file_name().to_string_lossy()) {
                Some(d) => {
                    tree_sizes.insert(d, dir_size(&entry.path()));
                }
                None => stray.push(entry.path()),
            }
        }

        // Roots.
        let mut roots = Vec::new();
        let (refs, _) = self.list_refs()?;
        for r in refs {
            roots.push(Root {
                name: format!("{}/{}", r.kind, r.key),
                used: r.used,
                file: Some(r.path),
                blobs: self.closure(&r.digest),
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
                        used: now,
                        file: None,
                        blobs: self.closure(&d.digest),
                        tree: None,
                    });
                }
            }
        }

        // Eviction by age.
        let mut evicted = vec![false; roots.len()];
        if let Some(age) = options.older_than {
            let limit = now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
            for (i, root) in roots.iter().enumerate() {
                if root.file.is_some() && root.used < limit {
                    evicted[i] = true;
                }
            }
        }

        // Reference counts of what the surviving roots reach.
        let mut counts: HashMap<Digest, usize> = HashMap::new();
        let mut tree_counts: HashMap<Digest, usize> = HashMap::new();
        let mut size = 0u64;
        for (i, root) in roots.iter().enumerate() {
            if evicted[i] {
                continue;
            }
            for d in &root.blobs {
                let c = counts.entry(*d).or_default();
                *c += 1;
                if *c == 1 {
                    size += blob_sizes.get(d).copied().unwrap_or(0);
                }
            }
            if let Some(t) = root.tree {
                let c = tree_counts.entry(t).or_default();
                *c += 1;
                if *c == 1 {
                    size += tree_sizes.get(&t).copied().unwrap_or(0);
                }
            }
        }

        // Eviction by size, least recently used first.
        if let Some(max) = options.max_size {
            let mut order: Vec<usize> = (0..roots.len())
                .filter(|&i| !evicted[i] && roots[i].file.is_some())
                .collect();
            order.sort_by(|&a, &b| {
                (roots[a].used, &roots[a].name).cmp(&(roots[b].used, &roots[b].name))
            });
            for i in order {
                if size <= max {
                    break;
                }
                evicted[i] = true;
                for d in &roots[i].blobs {
                    let c = counts.get_mut(d).expect("counted above");
                    *c -= 1;
                    if *c == 0 {
                        size -= blob_sizes.get(d).copied().unwrap_or(0);
                    }
                }
                if let Some(t) = roots[i].tree {
                    let c = tree_counts.get_mut(&t).expect("counted above");
                    *c -= 1;
                    if *c == 0 {
                        size -= tree_sizes.get(&t).copied().unwrap_or(0);
                    }
                }
            }
        }
        let live: HashSet<Digest> = counts
            .iter()
            .filter(|(_, c)| **c > 0)
            .map(|(d, _)| *d)
            .collect();
        let live_trees: HashSet<Digest> = tree_counts
            .iter()
            .filter(|(_, c)| **c > 0)
            .map(|(d, _)| *d)
            .collect();

        // Apply: refs first (and index.json), then what they no longer reach.
        for (i, root) in roots.iter().enumerate() {
            if evicted[i] {
                report.evicted.push(root.name.clone());
                if !options.dry_run {
                    remove_any(root.file.as_ref().expect("only files are evicted"))?;
                }
            }
        }
        report.evicted.sort();
        if !options.dry_run {
            let (labels, _) = self.list_labels()?;
            for (path, record) in labels {
                if !live.contains(&record.digest) {
                    remove_any(&path)?;
                }
            }
            self.rebuild_index_unlocked()?;
        }
        for (digest, blob_size) in &blob_sizes {
            if live.contains(digest) {
                report.kept_blobs += 1;
                report.kept_bytes += blob_size;
            } else {
                report.removed_blobs += 1;
                report.removed_bytes += blob_size;
                if !options.dry_run {
                    remove_any(&self.blob_path(digest))?;
                }
            }
        }
        for (digest, tree_size) in &tree_sizes {
            if live_trees.contains(digest) {
                report.kept_bytes += tree_size;
            } else {
                report.removed_trees += 1;
                report.removed_bytes += tree_size;
                if !options.dry_run {
                    remove_any(&self.root.join("trees").join(digest.hex()))?;
                }
            }
        }
        for path in stray {
            report.removed_temp += 1;
            if !options.dry_run {
                remove_any(&path)?;
            }
        }
        Ok(report)
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
