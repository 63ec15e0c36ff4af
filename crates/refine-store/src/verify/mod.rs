//! `verify`: every bucket of the layout checked. Blobs are rehashed; every ref, tag in
//! `index.json`, pin, label record, fetched name, outbox entry and signature list is resolved; every
//! unpacked tree is compared with its artifact; the no-op index is checked against the refs; anything a bucket holds that the layout does
//! not put there is reported. `tmp/` holds work in progress and the lock files hold nothing:
//! there is nothing in them to verify (`gc` clears what crashed writers left in `tmp/`).

mod refs_index;
mod tree;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use rayon::prelude::*;

use super::walk::{BadEntry, BlobRecord, entries, remove_any};
use super::{Bucket, Digest, LocalStore, MANIFEST_MEDIA_TYPE, Manifest, Result, annotations};

/// What [`LocalStore::verify`] does besides checking.
#[derive(Clone, Copy, Debug, Default)]
pub struct VerifyOptions {
    /// Remove what is broken: corrupt blobs, the refs, pins, labels, names and outbox entries
    /// that lead to something missing or corrupt, damaged trees, and whatever does not belong
    /// in a bucket (the next build recreates what is needed). Unreachable leftovers go at the
    /// next `gc`.
    pub fix: bool,
}

/// One damaged object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// A sentence naming the object and what is wrong with it.
    pub message: String,
    /// The file (or folder) `--fix` removes to repair it.
    pub remove: PathBuf,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The outcome of [`LocalStore::verify`].
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub blobs: usize,
    pub bytes: u64,
    pub manifests: usize,
    pub refs: usize,
    pub pins: usize,
    pub labels: usize,
    /// Fetched names (`names/`).
    pub names: usize,
    /// Blob location records (`locations/`).
    pub locations: usize,
    /// Unfinished pushes (`outbox/`).
    pub outbox: usize,
    /// Signature lists (`signatures/`).
    pub signatures: usize,
    /// Unpacked trees compared with their artifacts.
    pub trees: usize,
    pub problems: Vec<Problem>,
    /// Whether the problems were removed (`--fix`).
    pub fixed: bool,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BlobState {
    Ok,
    Corrupt,
}

/// The state of one run of `verify`.
struct Check<'a> {
    store: &'a LocalStore,
    blobs: HashMap<Digest, BlobState>,
    /// Each manifest reached so far, and what is wrong with it.
    manifests: HashMap<Digest, std::result::Result<(), String>>,
    report: VerifyReport,
}

impl LocalStore {
    /// Checks the whole store; see [`VerifyReport`]. Only I/O failures that stop the check
    /// itself are errors: damage is reported in the report.
    pub fn verify(&self, options: VerifyOptions) -> Result<VerifyReport> {
        let _lock = if options.fix {
            self.lock_exclusive(&mut || {})?
        } else {
            self.lease()?
        };
        let mut check = Check {
            store: self,
            blobs: HashMap::new(),
            manifests: HashMap::new(),
            report: VerifyReport::default(),
        };
        check.blobs()?;
        check.refs()?;
        check.index();
        check.refs_index()?;
        check.pins()?;
        check.labels()?;
        check.names()?;
        check.locations()?;
        check.outbox()?;
        check.signatures()?;
        check.trees()?;
        check.report.manifests = check.manifests.len();
        if options.fix {
            check.fix()?;
        }
        let mut report = check.report;
        report.problems.sort_by(|a, b| a.message.cmp(&b.message));
        Ok(report)
    }
}

impl Check<'_> {
    fn problem(&mut self, message: String, remove: PathBuf) {
        self.report.problems.push(Problem { message, remove });
    }

    fn malformed(&mut self, bad: Vec<BadEntry>) {
        for b in bad {
            let message = format!("`{}` is malformed: {}", b.path.display(), b.reason);
            self.problem(message, b.path);
        }
    }

    /// `None` for an intact blob, else `missing` or `corrupt`.
    fn state(&self, digest: &Digest) -> Option<&'static str> {
        match self.blobs.get(digest) {
            Some(BlobState::Ok) => None,
            Some(BlobState::Corrupt) => Some("corrupt"),
            // Not there when the blobs were walked: a build that shares the store may have
            // written it since, then the pin or ref that names it (blobs always come first).
            None => match self.store.check_blob(digest) {
                Ok(Ok(_)) => None,
                Ok(Err(_)) => Some("corrupt"),
                Err(_) => Some("missing"),
            },
        }
    }

    /// Rehashes every blob, in parallel.
    fn blobs(&mut self) -> Result<()> {
        let dir = self.store.blob_dir();
        let mut digests = Vec::new();
        for (name, path, _) in entries(&dir)? {
            match Digest::from_hex(&name) {
                Some(d) => digests.push(d),
                None => self.problem(
                    format!("`{}` is not named after a sha256 digest", path.display()),
                    path,
                ),
            }
        }
        let checked: Vec<(Digest, Result<std::result::Result<u64, Digest>>)> = digests
            .par_iter()
            .map(|d| (*d, self.store.check_blob(d)))
            .collect();
        for (digest, result) in checked {
            self.report.blobs += 1;
            match result? {
                Ok(size) => {
                    self.report.bytes += size;
                    self.blobs.insert(digest, BlobState::Ok);
                }
                Err(actual) => {
                    let path = self.store.blob_path(&digest);
                    self.problem(
                        format!(
                            "Blob `{digest}` is corrupt: its content hashes to `{actual}` (`{}`)",
                            path.display()
                        ),
                        path,
                    );
                    self.blobs.insert(digest, BlobState::Corrupt);
                }
            }
        }
        Ok(())
    }

    /// Whether a manifest is intact and its config and layers are present and intact; the
    /// error completes "… points at ".
    fn manifest(&mut self, digest: &Digest) -> std::result::Result<(), String> {
        if let Some(r) = self.manifests.get(digest) {
            return r.clone();
        }
        let result = self.check_manifest(digest);
        self.manifests.insert(*digest, result.clone());
        result
    }

    fn check_manifest(&self, digest: &Digest) -> std::result::Result<(), String> {
        if let Some(s) = self.state(digest) {
            return Err(format!("manifest `{digest}`, which is {s}"));
        }
        let manifest: Manifest = self
            .store
            .read_manifest(digest)
            .map_err(|e| format!("manifest `{digest}`, which is unusable: {e}"))?;
        for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if let Some(s) = self.state(&d.digest) {
                let what = if d.digest == manifest.config.digest {
                    "config"
                } else {
                    "layer"
                };
                return Err(format!(
                    "manifest `{digest}`, whose {what} `{}` is {s}",
                    d.digest
                ));
            }
        }
        Ok(())
    }

    /// The problem with an entry (`what`, e.g. "Ref `wheel/…`") pointing at the artifact
    /// `digest` for `key`, if any.
    fn artifact(&mut self, what: &str, key: &str, digest: &Digest) -> Option<String> {
        if let Err(broken) = self.manifest(digest) {
            return Some(format!("{what} points at {broken}"));
        }
        let manifest = self.store.read_manifest(digest).ok()?;
        let annotated = manifest.annotation(annotations::KEY);
        (annotated != Some(key)).then(|| {
            format!(
                "{what} points at manifest `{digest}`, which is annotated with key `{}`",
                annotated.unwrap_or("(none)")
            )
        })
    }

    fn refs(&mut self) -> Result<()> {
        let (refs, bad) = self.store.list_refs()?;
        self.report.refs = refs.len();
        for r in refs {
            let what = format!("Ref `{}/{}`", r.kind, r.key);
            if let Some(message) = self.artifact(&what, &r.key, &r.digest) {
                self.problem(message, r.path);
            }
        }
        for b in bad {
            let message = format!("Ref file `{}` is malformed: {}", b.path.display(), b.reason);
            self.problem(message, b.path);
        }
        Ok(())
    }

    /// Tags in `index.json`; `--fix` regenerates it rather than removing it.
    fn index(&mut self) {
        let index_path = self.store.bucket_path(Bucket::Index);
        let index = match self.store.read_index() {
            Ok(index) => index,
            Err(e) => return self.problem(e.to_string(), index_path),
        };
        for d in &index.manifests {
            let name = d.annotation(annotations::REF_NAME).unwrap_or("(untagged)");
            let broken = if d.media_type == MANIFEST_MEDIA_TYPE {
                self.manifest(&d.digest).err()
            } else {
                self.state(&d.digest)
                    .map(|s| format!("`{}`, which is {s}", d.digest))
            };
            if let Some(what) = broken {
                let message = format!("Tag `{name}` in `index.json` points at {what}");
                self.problem(message, index_path.clone());
            }
        }
    }

    fn pins(&mut self) -> Result<()> {
        let (pins, bad) = self.store.list_pins()?;
        self.report.pins = pins.len();
        for p in pins {
            if let Some(s) = self.state(&p.digest) {
                self.problem(format!("Pinned blob `{}` is {s}", p.digest), p.path);
            } else if p.role.is_none() {
                let message = format!(
                    "`{}` is malformed: it holds neither `source` nor `log`",
                    p.path.display()
                );
                self.problem(message, p.path);
            }
        }
        self.malformed(bad);
        Ok(())
    }

    fn labels(&mut self) -> Result<()> {
        let (labels, bad) = self.store.list_labels()?;
        self.report.labels = labels.len();
        for (path, record) in labels {
            if let Some(s) = self.state(&record.digest) {
                let message = format!(
                    "The last artifact of label `{}` (manifest `{}`) is {s}",
                    record.label, record.digest
                );
                self.problem(message, path);
            }
        }
        self.malformed(bad);
        Ok(())
    }

    /// A name follows its blob: a corrupt blob is reported (and removed by `--fix`, which
    /// then drops the name); a name whose blob is missing is a problem of its own.
    fn names(&mut self) -> Result<()> {
        let (names, bad) = self.store.list_names()?;
        self.report.names = names.len();
        self.followers(names, bad, "fetched name");
        Ok(())
    }

    /// A location record follows its blob like a name.
    fn locations(&mut self) -> Result<()> {
        let (records, bad) = self.store.list_locations()?;
        self.report.locations = records.len();
        self.followers(records, bad, "location record");
        Ok(())
    }

    /// Reports the records (`what`) whose blob is missing, and the malformed ones.
    fn followers(&mut self, records: Vec<BlobRecord>, bad: Vec<BadEntry>, what: &str) {
        for r in records {
            if self.state(&r.digest) == Some("missing") {
                let message = format!(
                    "The {what} `{}` is for blob `{}`, which is missing",
                    r.path.display(),
                    r.digest
                );
                self.problem(message, r.path);
            }
        }
        self.malformed(bad);
    }

    /// A signature list is a problem when an envelope it names is missing or corrupt; a
    /// list whose artifact is gone is left to `gc`.
    fn signatures(&mut self) -> Result<()> {
        let (lists, bad) = self.store.list_signatures()?;
        self.report.signatures = lists.len();
        for (path, manifest, envelopes) in lists {
            if let Some((d, s)) = envelopes.iter().find_map(|d| self.state(d).map(|s| (d, s))) {
                let message = format!(
                    "The signature list of artifact `{manifest}` names envelope `{d}`, which is {s}"
                );
                self.problem(message, path);
            }
        }
        self.malformed(bad);
        Ok(())
    }

    fn outbox(&mut self) -> Result<()> {
        let (entries, bad) = self.store.list_outbox()?;
        self.report.outbox = entries.len();
        for (path, e) in entries {
            let what = format!("Outbox entry `{}/{}`", e.kind, e.key);
            if let Some(message) = self.artifact(&what, &e.key, &e.digest) {
                self.problem(message, path);
            }
        }
        self.malformed(bad);
        Ok(())
    }

    /// Removes every problem's file, then what followed a removed blob (names, outbox
    /// entries, trees) and the trees of broken manifests, and regenerates `index.json`.
    fn fix(&mut self) -> Result<()> {
        // The indexes are regenerated below, not removed.
        let index_path = self.store.bucket_path(Bucket::Index);
        let refs_index_path = self.store.bucket_path(Bucket::RefsIndex);
        for p in &self.report.problems {
            if p.remove != index_path && p.remove != refs_index_path {
                remove_any(&p.remove)?;
            }
        }
        // Trees unpacked from corrupt blobs may be damaged too.
        for (digest, result) in &self.manifests {
            if result.is_err() {
                remove_any(&self.store.tree_path(digest))?;
            }
        }
        self.remove_followers()?;
        self.store.rebuild_index_unlocked()?;
        self.store.rebuild_refs_index_unlocked()?;
        self.report.fixed = true;
        Ok(())
    }

    /// Names, location records, outbox entries and trees whose blob is gone (removed above,
    /// or missing).
    fn remove_followers(&self) -> Result<()> {
        let store = self.store;
        let (names, _) = store.list_names()?;
        let (locations, _) = store.list_locations()?;
        for record in names.iter().chain(&locations) {
            if !store.has_blob(&record.digest) {
                remove_any(&record.path)?;
            }
        }
        let (outbox, _) = store.list_outbox()?;
        for (path, _) in outbox.iter().filter(|(_, e)| !store.has_blob(&e.digest)) {
            remove_any(path)?;
        }
        for (name, path, _) in entries(&store.bucket_path(Bucket::Trees))? {
            if Digest::from_hex(&name).is_some_and(|d| !store.has_blob(&d)) {
                remove_any(&path)?;
            }
        }
        // A Merkle tree is a cache of its tree: it goes with it (or when it is no tree's).
        for (name, path, _) in entries(&store.bucket_path(Bucket::Merkle))? {
            if Digest::from_hex(&name).is_none_or(|d| !store.tree_path(&d).is_dir()) {
                remove_any(&path)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build sharing the store writes a source (blob, then pin) after `verify` walked the
    /// blobs: the pin is not reported as naming a missing blob.
    #[test]
    fn a_blob_written_after_the_walk_is_not_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let mut check = Check {
            store: &store,
            blobs: HashMap::new(),
            manifests: HashMap::new(),
            report: VerifyReport::default(),
        };
        check.blobs().unwrap();
        let digest = store.put_source_reader(&b"late"[..], None).unwrap();
        check.pins().unwrap();
        assert_eq!(check.report.pins, 1);
        assert!(
            check.report.problems.is_empty(),
            "{:?}",
            check.report.problems
        );
        // A pin whose blob is really gone is still reported.
        fs_err::remove_file(store.blob_path(&digest)).unwrap();
        check.report = VerifyReport::default();
        check.pins().unwrap();
        assert_eq!(
            check.report.problems.len(),
            1,
            "{:?}",
            check.report.problems
        );
        assert!(check.report.problems[0].message.contains("is missing"));
    }
}
