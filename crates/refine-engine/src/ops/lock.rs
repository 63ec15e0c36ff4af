//! `refine lock`: pin the exact Debian packages of bootstrapped bases and of toolchains that
//! name their packages in the lock file beside their rule file (`rules/bases.kdl` →
//! `rules/bases.lock`, docs/locks.md), and check that the locks still say what the rules do
//! (`--check`, offline).
//!
//! A base is resolved on the host: `debootstrap --print-debs` gives the package set the
//! rule's bootstrap installs (for any architecture, without an emulator). A toolchain's set
//! is the packages its rule names. Either way, the suite's `Packages` index on the Debian
//! mirror gives each package's version, file and sha256.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::Path;

use refine_fetch::PipConfig;
use refine_fetch::debian::{self, PackagesIndex};
use refine_rules::diag::{Errors, InputError, Source};
use refine_rules::graph::{TargetGraph, TargetId};
use refine_rules::rules::{
    DebPin, Loc, Lock, LockCheck, LockInputs, LockState, Sha256, check_locks, lock_inputs,
    lock_path, render_lock,
};

use super::OpError;
use crate::session::{SessionOptions, load_graph_without_locks, resolve_patterns};

/// What happens while locking, as it happens.
#[derive(Debug)]
pub enum LockEvent<'a> {
    /// Resolving one target's packages.
    Resolving { label: &'a str },
    /// A lock file was written.
    Written {
        file: &'a str,
        targets: &'a [String],
        packages: usize,
    },
}

/// The lockable targets among `patterns`' targets (all of them when there is none):
/// bootstrapped lockable, and toolchains that name their packages.
fn selected(graph: &TargetGraph, patterns: &[String]) -> Result<Vec<TargetId>, OpError> {
    let ids: Vec<TargetId> = if patterns.is_empty() {
        (0..graph.len()).collect()
    } else {
        resolve_patterns(graph, patterns)?
    };
    let lockable: Vec<TargetId> = ids
        .into_iter()
        .filter(|&id| lock_inputs(graph.target(id)).is_some())
        .collect();
    if lockable.is_empty() && !patterns.is_empty() {
        return Err(OpError::NothingToLock {
            patterns: patterns.join(" "),
        });
    }
    Ok(lockable)
}

/// Checks the lock of every selected lockable target against its rule, reading nothing but
/// the workspace. Returns one diagnostic per target whose lock is missing or stale; a
/// malformed lock file is an error.
pub fn check(options: &SessionOptions, patterns: &[String]) -> Result<(usize, Errors), OpError> {
    let graph = load_graph_without_locks(options)?;
    let lockable = selected(&graph, patterns)?;
    let ws = &graph.workspace;
    let mut files = ws.files.clone();
    let checks = check_locks(&ws.root, &mut files, &ws.targets)?;
    let wanted: Vec<String> = lockable
        .iter()
        .map(|&id| graph.target(id).label.to_string())
        .collect();
    let mut problems = Errors::default();
    for c in checks
        .iter()
        .filter(|c| wanted.contains(&c.label.to_string()))
    {
        if let Some(e) = problem(&files, c) {
            problems.push(e);
        }
    }
    Ok((wanted.len(), problems))
}

fn problem(files: &[Source], c: &LockCheck) -> Option<InputError> {
    let label = &c.label;
    let lock = lock_path(&label.package);
    match &c.state {
        LockState::Current => None,
        LockState::Missing => Some(
            InputError::at(
                "missing-lock",
                &files[c.rule_at.file],
                c.rule_at.span,
                match c.inputs {
                    LockInputs::Bootstrap(_) => {
                        format!("`{label}` is bootstrapped but has no lock in `{lock}`")
                    }
                    LockInputs::Packages(_) => {
                        format!("`{label}` names its packages but has no lock in `{lock}`")
                    }
                },
                "not locked",
            )
            .with_help(match c.inputs {
                LockInputs::Bootstrap(_) => format!(
                    "Lock it with `refine lock {label}`: until then it is bootstrapped from whatever the mirror serves"
                ),
                LockInputs::Packages(_) => format!(
                    "Lock it with `refine lock {label}`: until then it cannot be built"
                ),
            }),
        ),
        LockState::Stale {
            field,
            locked,
            rule,
        } => {
            let at = c.entry.as_ref().map_or(c.rule_at, |e| e.name_at);
            Some(
                InputError::at(
                    "stale-lock",
                    &files[at.file],
                    at.span,
                    format!(
                        "The lock of `{label}` is stale: it was resolved with {field} `{locked}`, the rule now says `{rule}`"
                    ),
                    "resolved from another rule",
                )
                .with_help(format!("Refresh it with `refine lock {label}`")),
            )
        }
    }
}

/// Resolves every selected lockable target and writes the lock files they belong to;
/// the other entries of those files are kept. Returns the files written.
pub fn lock(
    options: &SessionOptions,
    patterns: &[String],
    on_each: &mut dyn FnMut(LockEvent<'_>),
) -> Result<Vec<String>, OpError> {
    let graph = load_graph_without_locks(options)?;
    let selected = selected(&graph, patterns)?;
    let ws = &graph.workspace;
    let mut files = ws.files.clone();
    // The entries of the lock files as they are: those not resolved again are kept.
    // A lock file that does not read is rewritten whole by `refine lock` without patterns.
    let existing = match check_locks(&ws.root, &mut files, &ws.targets) {
        Ok(c) => c,
        Err(_) if patterns.is_empty() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut resolver = Resolver {
        mirror: debian::mirror(),
        pip: PipConfig::load(),
        work: tempfile::tempdir()
            .map_err(OpError::io("create", Path::new("a temporary folder")))?,
        indexes: HashMap::new(),
    };
    let mut by_file: BTreeMap<String, BTreeMap<String, Lock>> = BTreeMap::new();
    let mut resolved: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for &id in &selected {
        let target = graph.target(id);
        let Some(inputs) = lock_inputs(target) else {
            continue;
        };
        let label = target.label.to_string();
        on_each(LockEvent::Resolving { label: &label });
        let debs = resolver.resolve(&label, &inputs)?;
        let package = target.label.package.clone();
        by_file.entry(package.clone()).or_default().insert(
            target.label.name.clone(),
            Lock {
                inputs,
                debs,
                at: Loc {
                    file: 0,
                    span: (0..0).into(),
                },
            },
        );
        resolved.entry(package).or_default().push(label);
    }
    let mut written = Vec::new();
    for (package, mut locks) in by_file {
        for c in &existing {
            if c.label.package == package
                && let Some(entry) = &c.entry
            {
                locks
                    .entry(c.label.name.clone())
                    .or_insert_with(|| entry.lock.clone());
            }
        }
        let entries: Vec<(&str, &Lock)> = locks.iter().map(|(n, l)| (n.as_str(), l)).collect();
        let text = render_lock(&package, &entries);
        let rel = lock_path(&package);
        let path = ws.root.join(&rel);
        write_atomic(&path, text.as_bytes()).map_err(OpError::io("write", &path))?;
        let targets = resolved.remove(&package).unwrap_or_default();
        on_each(LockEvent::Written {
            file: &rel,
            targets: &targets,
            packages: locks.values().map(|l| l.debs.len()).sum(),
        });
        written.push(rel);
    }
    Ok(written)
}

/// Pins package names to the files of a suite's index, fetching each index once.
struct Resolver {
    mirror: String,
    pip: PipConfig,
    work: tempfile::TempDir,
    indexes: HashMap<(String, String), PackagesIndex>,
}

impl Resolver {
    /// The pins of one target's lock, sorted.
    fn resolve(&mut self, label: &str, inputs: &LockInputs) -> Result<Vec<DebPin>, OpError> {
        let (suite, deb_arch, names) = match inputs {
            LockInputs::Bootstrap(i) => {
                refine_exec::bootstrap::check_version(&i.tool, &i.tool_version)?;
                let names = refine_exec::bootstrap::print_debs(
                    &i.tool,
                    &i.arch,
                    &i.variant,
                    &i.suite,
                    &i.packages,
                    &self.work.path().join("print-debs"),
                    &self.mirror,
                )?;
                (
                    i.suite.clone(),
                    debian::deb_arch(&i.arch).to_string(),
                    names,
                )
            }
            LockInputs::Packages(p) => (p.suite.clone(), p.arch.clone(), p.packages.clone()),
        };
        let key = (suite.clone(), deb_arch.clone());
        if !self.indexes.contains_key(&key) {
            let index =
                PackagesIndex::fetch(&self.pip, &self.mirror, &suite, &deb_arch, self.work.path())?;
            self.indexes.insert(key.clone(), index);
        }
        let index = &self.indexes[&key];
        let mut debs = Vec::with_capacity(names.len());
        for name in &names {
            let e = index
                .lookup(name, &deb_arch)
                .ok_or_else(|| OpError::NotInIndex {
                    label: label.to_string(),
                    package: name.clone(),
                    index: index.url.clone(),
                })?;
            debs.push(DebPin {
                package: e.package.clone(),
                version: e.version.clone(),
                arch: e.arch.clone(),
                path: e.filename.clone(),
                sha256: Sha256(e.sha256.to_ascii_lowercase()),
            });
        }
        debs.sort();
        Ok(debs)
    }
}

/// Writes through a temporary file in the same folder and a rename: an interrupted
/// `refine lock` never leaves half a lock.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(folder)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
