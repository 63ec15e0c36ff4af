//! `refine lock`: pin the exact Debian packages of bootstrapped bases in the lock file beside
//! their rule file (`rules/bases.kdl` → `rules/bases.lock`, docs/locks.md), and check that
//! the locks still say what the rules do (`--check`, offline).
//!
//! A base is resolved on the host: `debootstrap --print-debs` gives the package set the
//! rule's bootstrap installs (for any architecture, without an emulator), and the suite's
//! `Packages` index on the Debian mirror gives each package's version, file and sha256.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::Path;

use refine_fetch::PipConfig;
use refine_fetch::debian::{self, PackagesIndex};
use refine_rules::diag::{Errors, InputError, Source};
use refine_rules::graph::{TargetGraph, TargetId};
use refine_rules::rules::{
    BaseLock, DebPin, Loc, LockCheck, LockState, Sha256, Spec, check_locks, lock_path, render_lock,
};

use super::OpError;
use crate::session::{SessionOptions, load_graph_without_locks, resolve_patterns};

/// What happens while locking, as it happens.
#[derive(Debug)]
pub enum LockEvent<'a> {
    /// Resolving one base's packages.
    Resolving { label: &'a str },
    /// A lock file was written.
    Written {
        file: &'a str,
        bases: &'a [String],
        packages: usize,
    },
}

/// The bootstrapped bases among `patterns`' targets (all of them when there is none).
fn selected(graph: &TargetGraph, patterns: &[String]) -> Result<Vec<TargetId>, OpError> {
    let ids: Vec<TargetId> = if patterns.is_empty() {
        (0..graph.len()).collect()
    } else {
        resolve_patterns(graph, patterns)?
    };
    let bases: Vec<TargetId> = ids
        .into_iter()
        .filter(|&id| matches!(&graph.target(id).spec, Spec::Base(b) if b.lock_inputs().is_some()))
        .collect();
    if bases.is_empty() && !patterns.is_empty() {
        return Err(OpError::NothingToLock {
            patterns: patterns.join(" "),
        });
    }
    Ok(bases)
}

/// Checks the lock of every selected bootstrapped base against its rule, reading nothing but
/// the workspace. Returns one diagnostic per base whose lock is missing or stale; a
/// malformed lock file is an error.
pub fn check(options: &SessionOptions, patterns: &[String]) -> Result<(usize, Errors), OpError> {
    let graph = load_graph_without_locks(options)?;
    let bases = selected(&graph, patterns)?;
    let ws = &graph.workspace;
    let mut files = ws.files.clone();
    let checks = check_locks(&ws.root, &mut files, &ws.targets)?;
    let wanted: Vec<String> = bases
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
                format!("`{label}` is bootstrapped but has no lock in `{lock}`"),
                "not locked",
            )
            .with_help(format!(
                "Lock it with `refine lock {label}`: until then it is bootstrapped from whatever the mirror serves"
            )),
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

/// Resolves every selected bootstrapped base and writes the lock files they belong to;
/// the other entries of those files are kept. Returns the files written.
pub fn lock(
    options: &SessionOptions,
    patterns: &[String],
    on_each: &mut dyn FnMut(LockEvent<'_>),
) -> Result<Vec<String>, OpError> {
    let graph = load_graph_without_locks(options)?;
    let bases = selected(&graph, patterns)?;
    let ws = &graph.workspace;
    let mut files = ws.files.clone();
    // The entries of the lock files as they are: those not resolved again are kept.
    // A lock file that does not read is rewritten whole by `refine lock` without patterns.
    let existing = match check_locks(&ws.root, &mut files, &ws.targets) {
        Ok(c) => c,
        Err(_) if patterns.is_empty() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mirror = debian::mirror();
    let pip = PipConfig::load();
    let work =
        tempfile::tempdir().map_err(OpError::io("create", Path::new("a temporary folder")))?;
    let mut indexes: HashMap<(String, String), PackagesIndex> = HashMap::new();
    let mut by_file: BTreeMap<String, BTreeMap<String, BaseLock>> = BTreeMap::new();
    let mut resolved: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for &id in &bases {
        let target = graph.target(id);
        let Spec::Base(b) = &target.spec else {
            continue;
        };
        let Some(inputs) = b.lock_inputs() else {
            continue;
        };
        let label = target.label.to_string();
        on_each(LockEvent::Resolving { label: &label });
        refine_exec::bootstrap::check_version(&inputs.tool, &inputs.tool_version)?;
        let names = refine_exec::bootstrap::print_debs(
            &inputs.tool,
            &inputs.arch,
            &inputs.variant,
            &inputs.suite,
            &inputs.packages,
            &work.path().join("print-debs"),
            &mirror,
        )?;
        let deb_arch = debian::deb_arch(&inputs.arch).to_string();
        let key = (inputs.suite.clone(), deb_arch.clone());
        if !indexes.contains_key(&key) {
            let index = PackagesIndex::fetch(&pip, &mirror, &inputs.suite, &deb_arch, work.path())?;
            indexes.insert(key.clone(), index);
        }
        let index = &indexes[&key];
        let mut debs = Vec::with_capacity(names.len());
        for name in &names {
            let e = index
                .lookup(name, &deb_arch)
                .ok_or_else(|| OpError::NotInIndex {
                    label: label.clone(),
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
        let package = target.label.package.clone();
        by_file.entry(package.clone()).or_default().insert(
            target.label.name.clone(),
            BaseLock {
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
        let entries: Vec<(&str, &BaseLock)> = locks.iter().map(|(n, l)| (n.as_str(), l)).collect();
        let text = render_lock(&package, &entries);
        let rel = lock_path(&package);
        let path = ws.root.join(&rel);
        write_atomic(&path, text.as_bytes()).map_err(OpError::io("write", &path))?;
        let bases = resolved.remove(&package).unwrap_or_default();
        on_each(LockEvent::Written {
            file: &rel,
            bases: &bases,
            packages: locks.values().map(|l| l.debs.len()).sum(),
        });
        written.push(rel);
    }
    Ok(written)
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
