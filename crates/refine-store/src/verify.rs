//! `verify`: every blob rehashed, every manifest's references checked, every ref, pin, label
//! and `index.json` entry resolved.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;

use rayon::prelude::*;

use super::error::io_err;
use super::{Digest, LocalStore, Manifest, Result, annotations};

/// What [`LocalStore::verify`] does besides checking.
#[derive(Clone, Copy, Debug, Default)]
pub struct VerifyOptions {
    /// Remove what is broken: corrupt blobs, and the refs, pins and labels that lead to
    /// something missing or corrupt (the next build recreates them). Unreachable leftovers go
    /// at the next `gc`.
    pub fix: bool,
}

/// One damaged object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// A sentence naming the object and what is wrong with it.
    pub message: String,
    /// The file `--fix` removes to repair it.
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
    pub problems: Vec<Problem>,
    /// Whether the problems were removed (`--fix`).
    pub fixed: bool,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

enum BlobState {
    Ok,
    Corrupt,
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
        let mut report = VerifyReport::default();
        let mut problems: Vec<Problem> = Vec::new();

        // 1. Blobs.
        let dir = self.root.join("blobs/sha256");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match Digest::from_hex(&name) {
                Some(d) => names.push(d),
                None => problems.push(Problem {
                    message: format!(
                        "`{}` is not named after a sha256 digest",
                        entry.path().display()
                    ),
                    remove: entry.path(),
                }),
            }
        }
        let checked: Vec<(Digest, Result<std::result::Result<u64, Digest>>)> =
            names.par_iter().map(|d| (*d, self.check_blob(d))).collect();
        let mut blobs: HashMap<Digest, BlobState> = HashMap::new();
        for (digest, result) in checked {
            report.blobs += 1;
            match result? {
                Ok(size) => {
                    report.bytes += size;
                    blobs.insert(digest, BlobState::Ok);
                }
                Err(actual) => {
                    problems.push(Problem {
                        message: format!(
                            "Blob `{digest}` is corrupt: its content hashes to `{actual}` (`{}`)",
                            self.blob_path(&digest).display()
                        ),
                        remove: self.blob_path(&digest),
                    });
                    blobs.insert(digest, BlobState::Corrupt);
                }
            }
        }
        let state = |d: &Digest| -> &'static str {
            match blobs.get(d) {
                Some(BlobState::Ok) => "",
                Some(BlobState::Corrupt) => "corrupt",
                None => "missing",
            }
        };

        // 2. Manifests, reached from refs and index.json.
        let mut manifest_cache: HashMap<Digest, std::result::Result<(), String>> = HashMap::new();
        let mut check_manifest = |digest: &Digest| -> std::result::Result<(), String> {
            if let Some(r) = manifest_cache.get(digest) {
                return r.clone();
            }
            let result = (|| {
                match state(digest) {
                    "" => {}
                    s => return Err(format!("manifest `{digest}`, which is {s}")),
                }
                let manifest: Manifest = self
                    .read_manifest(digest)
                    .map_err(|e| format!("manifest `{digest}`, which is unusable: {e}"))?;
                for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
                    match state(&d.digest) {
                        "" => {}
                        s => {
                            return Err(format!(
                                "manifest `{digest}`, whose {} `{}` is {s}",
                                if d.digest == manifest.config.digest {
                                    "config"
                                } else {
                                    "layer"
                                },
                                d.digest
                            ));
                        }
                    }
                }
                Ok(())
            })();
            manifest_cache.insert(*digest, result.clone());
            result
        };

        let (refs, bad_refs) = self.list_refs()?;
        report.refs = refs.len();
        for r in &refs {
            if let Err(what) = check_manifest(&r.digest) {
                problems.push(Problem {
                    message: format!("Ref `{}/{}` points at {what}", r.kind, r.key),
                    remove: r.path.clone(),
                });
                continue;
            }
            if let Ok(m) = self.read_manifest(&r.digest) {
                let key = m.annotation(annotations::KEY);
                if key != Some(r.key.as_str()) {
                    problems.push(Problem {
                        message: format!(
                            "Ref `{}/{}` points at manifest `{}`, which is annotated with key `{}`",
                            r.kind,
                            r.key,
                            r.digest,
                            key.unwrap_or("(none)")
                        ),
                        remove: r.path.clone(),
                    });
                }
            }
        }
        for b in bad_refs {
            problems.push(Problem {
                message: format!("Ref file `{}` is malformed: {}", b.path.display(), b.reason),
                remove: b.path,
            });
        }

        let index_path = self.root.join("index.json");
        match self.read_index() {
            Ok(index) => {
                for d in &index.manifests {
                    let name = d.annotation(annotations::REF_NAME).unwrap_or("(untagged)");
                    if d.media_type == super::MANIFEST_MEDIA_TYPE {
                        if let Err(what) = check_manifest(&d.digest) {
                            problems.push(Problem {
                                message: format!("Tag `{name}` in `index.json` points at {what}"),
                                remove: index_path.clone(),
                            });
                        }
                    } else if let s @ ("missing" | "corrupt") = state(&d.digest) {
                        problems.push(Problem {
                            message: format!(
                                "Tag `{name}` in `index.json` points at `{}`, which is {s}",
                                d.digest
                            ),
                            remove: index_path.clone(),
                        });
                    }
                }
            }
            Err(e) => problems.push(Problem {
                message: e.to_string(),
                remove: index_path.clone(),
            }),
        }
        report.manifests = manifest_cache.len();

        // 3. Pins and labels.
        let (pins, bad_pins) = self.list_pins()?;
        report.pins = pins.len();
        for p in pins {
            if let s @ ("missing" | "corrupt") = state(&p.digest) {
                problems.push(Problem {
                    message: format!("Pinned blob `{}` is {s}", p.digest),
                    remove: p.path,
                });
            }
        }
        let (labels, bad_labels) = self.list_labels()?;
        report.labels = labels.len();
        let mut seen = HashSet::new();
        for (path, record) in labels {
            if let s @ ("missing" | "corrupt") = state(&record.digest)
                && seen.insert(path.clone())
            {
                problems.push(Problem {
                    message: format!(
                        "The last artifact of label `{}` (manifest `{}`) is {s}",
                        record.label, record.digest
                    ),
                    remove: path,
                });
            }
        }
        for b in bad_pins.into_iter().chain(bad_labels) {
            problems.push(Problem {
                message: format!("`{}` is malformed: {}", b.path.display(), b.reason),
                remove: b.path,
            });
        }

        if options.fix {
            for p in &problems {
                if p.remove == index_path {
                    continue; // regenerated below
                }
                match std::fs::remove_file(&p.remove) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(super::StoreError::io("remove", &p.remove, e)),
                }
            }
            // Trees unpacked from corrupt blobs may be damaged too: drop the trees of every
            // manifest that failed.
            for (digest, result) in &manifest_cache {
                if result.is_err() {
                    let tree = self.root.join("trees").join(digest.hex());
                    let _ = std::fs::remove_dir_all(tree);
                }
            }
            self.rebuild_index_unlocked()?;
            report.fixed = true;
        }
        problems.sort_by(|a, b| a.message.cmp(&b.message));
        report.problems = problems;
        Ok(report)
    }
}
