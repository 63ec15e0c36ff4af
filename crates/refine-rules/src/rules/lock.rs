//! Lock files: `rules/<pkg>.lock` beside `rules/<pkg>.kdl` pins the exact Debian packages of
//! each bootstrapped base of the rule file (docs/locks.md). A lock is KDL, but not a rule
//! file: it is written by `refine lock`, read here with the same diagnostics as rule files
//! (and the `deb` node of toolchain rules), and checked against the rule it was resolved from.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use kdl::{KdlDocument, KdlNode};

use crate::diag::{Errors, InputError, Source};
use crate::label::Label;

use super::kinds::{check_leaf, required_leaf};
use super::load::parse_kdl;
use super::model::*;
use super::reader::{FileReader, Spanned};
use super::toolchain::read_deb;

/// The lock file of the rule file `rules/<package>.kdl`.
pub fn lock_path(package: &str) -> String {
    format!("rules/{package}.lock")
}

/// One `base` entry of a lock file, read.
#[derive(Clone, Debug)]
pub struct LockEntry {
    pub label: Label,
    pub name_at: Loc,
    pub lock: BaseLock,
}

/// How a bootstrapped base stands against its lock file.
#[derive(Clone, Debug)]
pub enum LockState {
    /// The lock was resolved from the rule as it is now.
    Current,
    /// No lock: the base is bootstrapped from the live mirror, keyed as before locks.
    Missing,
    /// The rule changed since the lock was written: `field` was `locked`, is `rule` now.
    Stale {
        field: &'static str,
        locked: String,
        rule: String,
    },
}

/// Every bootstrapped base of a workspace, with its lock (if any) and how they stand.
#[derive(Clone, Debug)]
pub struct LockCheck {
    pub label: Label,
    /// The base's rule.
    pub rule_at: Loc,
    pub entry: Option<LockEntry>,
    pub state: LockState,
}

/// Reads every lock file of the workspace (`rules/**/*.lock` beside a rule file), adding them
/// to `files`; checks each bootstrapped base of `targets` against its entry. A lock file
/// that is not valid KDL, holds a malformed entry, or an entry for no bootstrapped base, is
/// an error.
pub fn check_locks(
    root: &Path,
    files: &mut Vec<Source>,
    targets: &[Target],
) -> Result<Vec<LockCheck>, Errors> {
    let mut errors = Errors::default();
    let bootstrapped: BTreeMap<&Label, (&Target, LockInputs)> = targets
        .iter()
        .filter_map(|t| match &t.spec {
            Spec::Base(b) => b.lock_inputs().map(|i| (&t.label, (t, i))),
            _ => None,
        })
        .collect();
    let mut packages: Vec<&str> = targets.iter().map(|t| t.label.package.as_str()).collect();
    packages.sort_unstable();
    packages.dedup();
    let mut entries: HashMap<Label, LockEntry> = HashMap::new();
    for package in packages {
        let rel = lock_path(package);
        let text = match fs_err::read_to_string(root.join(&rel)) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                errors.push(
                    InputError::global("unreadable-file", format!("Cannot read `{rel}`: {e}"))
                        .with_help("Check the file's permissions and that it is UTF-8 text"),
                );
                continue;
            }
        };
        files.push(Source::new(rel.as_str(), text));
        let file = files.len() - 1;
        let source = &files[file];
        let doc = match parse_kdl(source) {
            Ok(doc) => doc,
            Err(e) => {
                errors.extend(e);
                continue;
            }
        };
        let mut r = FileReader {
            file,
            source,
            package: Some(package),
            errors: Errors::default(),
        };
        for (name, lock) in read_lock_file(&mut r, &doc) {
            let label = Label {
                package: package.to_string(),
                name: name.value.clone(),
            };
            if !bootstrapped.contains_key(&label) {
                r.error(
                    "lock-without-base",
                    name.span,
                    format!(
                        "`{rel}` locks `{label}`, which is not a bootstrapped base of `rules/{package}.kdl`"
                    ),
                    "no such base",
                    "Remove the entry, or run `refine lock` to rewrite the file".into(),
                );
                continue;
            }
            entries.insert(
                label.clone(),
                LockEntry {
                    label,
                    name_at: r.loc(name.span),
                    lock,
                },
            );
        }
        errors.extend(r.errors);
    }
    let checks = bootstrapped
        .into_iter()
        .map(|(label, (target, inputs))| {
            let entry = entries.remove(label);
            let state = match &entry {
                None => LockState::Missing,
                Some(e) => match e.lock.inputs.differs_from(&inputs) {
                    None => LockState::Current,
                    Some((field, locked, rule)) => LockState::Stale {
                        field,
                        locked,
                        rule,
                    },
                },
            };
            LockCheck {
                label: label.clone(),
                rule_at: target.at,
                entry,
                state,
            }
        })
        .collect();
    errors.into_result(checks)
}

/// Attaches each current lock to its base; a stale lock is an error, so that no key is
/// computed from a lock that no longer says what the rule does.
pub(super) fn attach(
    root: &Path,
    files: &mut Vec<Source>,
    targets: &mut [Target],
    errors: &mut Errors,
) {
    let checks = match check_locks(root, files, targets) {
        Ok(c) => c,
        Err(e) => {
            errors.extend(e);
            return;
        }
    };
    let mut current: HashMap<Label, BaseLock> = HashMap::new();
    for check in checks {
        match (check.state, check.entry) {
            (LockState::Stale { .. }, Some(entry)) => {
                errors.push(stale_error(
                    &files[entry.name_at.file],
                    &check.label,
                    &entry,
                    targets,
                ));
            }
            (LockState::Current, Some(entry)) => {
                current.insert(check.label, entry.lock);
            }
            _ => {}
        }
    }
    for t in targets.iter_mut() {
        if let Spec::Base(b) = &mut t.spec
            && let Some(lock) = current.remove(&t.label)
        {
            b.lock = Some(Box::new(lock));
        }
    }
}

/// The diagnostic for a stale lock, at its entry.
fn stale_error(
    source: &Source,
    label: &Label,
    entry: &LockEntry,
    targets: &[Target],
) -> InputError {
    let rule = targets
        .iter()
        .find(|t| &t.label == label)
        .and_then(|t| match &t.spec {
            Spec::Base(b) => b.lock_inputs(),
            _ => None,
        });
    let (field, locked, now) = rule
        .as_ref()
        .and_then(|r| entry.lock.inputs.differs_from(r))
        .unwrap_or(("inputs", String::new(), String::new()));
    InputError::at(
        "stale-lock",
        source,
        entry.name_at.span,
        format!(
            "The lock of `{label}` is stale: it was resolved with {field} `{locked}`, the rule now says `{now}`"
        ),
        "resolved from another rule",
    )
    .with_help(format!(
        "Refresh it with `refine lock {label}` (the lock pins the packages the rule's bootstrap installs)"
    ))
}

/// Reads the `base` entries of one lock file.
pub fn read_lock_file(
    r: &mut FileReader<'_>,
    doc: &KdlDocument,
) -> Vec<(Spanned<String>, BaseLock)> {
    let mut out: Vec<(Spanned<String>, BaseLock)> = Vec::new();
    for node in doc.nodes() {
        if node.name().value() != "base" {
            r.error(
                "unknown-lock-entry",
                node.name().span(),
                format!("Unknown lock entry `{}`", node.name().value()),
                "not a lock entry",
                "A lock file holds `base \"NAME\" { … }` entries written by `refine lock`".into(),
            );
            continue;
        }
        r.check_props(node, &[]);
        let Some(name) = r.one_arg(node) else {
            continue;
        };
        if out.iter().any(|(n, _)| n.value == name.value) {
            r.error(
                "duplicate-entry",
                name.span,
                format!("`{}` is locked twice", name.value),
                "locked again here",
                "Keep one entry, or run `refine lock` to rewrite the file".into(),
            );
            continue;
        }
        if let Some(lock) = read_entry(r, node) {
            out.push((name, lock));
        }
    }
    out
}

fn read_entry(r: &mut FileReader<'_>, node: &KdlNode) -> Option<BaseLock> {
    r.check_children(node, &["arch", "bootstrap", "packages", "deb"]);
    r.unique_children(node, &["arch", "bootstrap", "packages"]);
    let arch = required_leaf(r, node, "arch", "arch \"s390x\"");
    let bootstrap = r.required_child(
        node,
        "bootstrap",
        "bootstrap \"debootstrap\" version=\"…\" suite=\"bookworm\" variant=\"minbase\"",
    );
    let tool = bootstrap.and_then(|b| {
        r.check_props(b, &["version", "suite", "variant"]);
        r.check_children(b, &[]);
        let tool = r.one_arg(b);
        let version = r.required_prop(b, "version", "\"1.0.128+nmu2+deb12u2\"");
        let suite = r.required_prop(b, "suite", "\"bookworm\"");
        let variant = r.required_prop(b, "variant", "\"minbase\"");
        Some((tool?.value, version?.value, suite?.value, variant?.value))
    });
    let mut packages: Vec<String> = match r.child(node, "packages") {
        Some(p) => {
            check_leaf(r, p);
            r.some_args(p).into_iter().map(|s| s.value).collect()
        }
        None => Vec::new(),
    };
    packages.sort();
    packages.dedup();
    let deb_nodes: Vec<&KdlNode> = r.children(node, "deb").collect();
    if deb_nodes.is_empty() {
        r.error(
            "missing-field",
            node.name().span(),
            "A locked base needs its packages: `deb` entries".into(),
            "no `deb`",
            "Run `refine lock` to write them".into(),
        );
    }
    let mut debs: Vec<DebPin> = Vec::new();
    let mut seen: HashMap<(String, String), ()> = HashMap::new();
    for d in deb_nodes {
        let Some(pin) = read_deb(r, d) else { continue };
        if seen
            .insert((pin.package.clone(), pin.arch.clone()), ())
            .is_some()
        {
            r.error(
                "duplicate-field",
                d.name().span(),
                format!("`{}` ({}) is pinned twice", pin.package, pin.arch),
                "pinned again here",
                "Keep one `deb` per package, or run `refine lock` to rewrite the file".into(),
            );
            continue;
        }
        debs.push(pin);
    }
    debs.sort();
    let (tool, tool_version, suite, variant) = tool?;
    Some(BaseLock {
        inputs: LockInputs {
            arch: arch?.value,
            tool,
            tool_version,
            suite,
            variant,
            packages,
        },
        debs,
        at: r.loc(node.name().span()),
    })
}

/// A KDL string: always quoted, with `"` and `\` escaped (names and versions never hold
/// others).
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A lock file in canonical form: a header comment, then one entry per base sorted by name,
/// its packages sorted; `refine fmt`-clean, one package per line so that a refresh diffs by
/// package.
pub fn render_lock(package: &str, entries: &[(&str, &BaseLock)]) -> String {
    let mut entries = entries.to_vec();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = format!(
        "// Written by `refine lock`: the Debian packages of each bootstrapped base of\n// rules/{package}.kdl, pinned to the archive's files. Do not edit; refresh with\n// `refine lock //{package}:NAME` (docs/locks.md).\n"
    );
    for (n, (name, lock)) in entries.into_iter().enumerate() {
        let i = &lock.inputs;
        // `refine fmt` keeps a header comment against the first node, and one blank line
        // between nodes.
        if n > 0 {
            out.push('\n');
        }
        out.push_str(&format!("base {} {{\n", quoted(name)));
        out.push_str(&format!("    arch {}\n", quoted(&i.arch)));
        out.push_str(&format!(
            "    bootstrap {} version={} suite={} variant={}\n",
            quoted(&i.tool),
            quoted(&i.tool_version),
            quoted(&i.suite),
            quoted(&i.variant)
        ));
        if !i.packages.is_empty() {
            let list: Vec<String> = i.packages.iter().map(|p| quoted(p)).collect();
            out.push_str(&format!("    packages {}\n", list.join(" ")));
        }
        let mut debs = lock.debs.clone();
        debs.sort();
        for d in &debs {
            out.push_str(&format!(
                "    deb {} version={} arch={} path={} sha256={}\n",
                quoted(&d.package),
                quoted(&d.version),
                quoted(&d.arch),
                quoted(&d.path),
                quoted(&d.sha256.0)
            ));
        }
        out.push_str("}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(package: &str, version: &str) -> DebPin {
        DebPin {
            package: package.into(),
            version: version.into(),
            arch: "amd64".into(),
            path: format!("pool/main/x/{package}/{package}_{version}_amd64.deb"),
            sha256: Sha256("0".repeat(64)),
        }
    }

    fn lock(arch: &str, debs: Vec<DebPin>) -> BaseLock {
        BaseLock {
            inputs: LockInputs {
                arch: arch.into(),
                tool: "debootstrap".into(),
                tool_version: "1.0.128+nmu2+deb12u2".into(),
                suite: "bookworm".into(),
                variant: "minbase".into(),
                packages: vec!["g++".into(), "make".into()],
            },
            debs,
            at: Loc {
                file: 0,
                span: (0..0).into(),
            },
        }
    }

    /// Written sorted, canonical for `refine fmt`, and read back as it was.
    #[test]
    fn a_rendered_lock_is_formatted_and_reads_back() {
        let a = lock(
            "x86_64",
            vec![pin("zlib1g", "1:1.2.13"), pin("apt", "2.6.1")],
        );
        let b = lock("s390x", vec![pin("dash", "0.5.12-2")]);
        let text = render_lock("bases", &[("z", &a), ("a", &b)]);
        let source = Source::new("rules/bases.lock", text.clone());
        assert_eq!(crate::fmt::format_kdl(&source).expect("formats"), text);
        let doc = parse_kdl(&source).expect("parses");
        let mut r = FileReader {
            file: 0,
            source: &source,
            package: Some("bases"),
            errors: Errors::default(),
        };
        let read = read_lock_file(&mut r, &doc);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let names: Vec<&str> = read.iter().map(|(n, _)| n.value.as_str()).collect();
        assert_eq!(names, ["a", "z"]);
        let z = &read[1].1;
        assert_eq!(z.inputs, a.inputs);
        assert_eq!(z.debs[0].package, "apt");
        assert_eq!(z.digest(), a.digest());
        assert_ne!(z.digest(), read[0].1.digest());
    }
}
