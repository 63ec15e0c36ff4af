//! Lock files: `rules/<pkg>.lock` beside `rules/<pkg>.kdl` pins the exact Debian packages of
//! each bootstrapped base and of each toolchain that names its packages (`debian`/`packages`)
//! of the rule file (docs/locks.md). A lock is KDL, but not a rule file: it is written by
//! `refine lock`, read here with the same diagnostics as rule files (and the `deb` node of
//! toolchain rules), and checked against the rule it was resolved from.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use kdl::{KdlDocument, KdlNode};

use crate::diag::{Errors, InputError, Source};
use crate::label::Label;

use super::kinds::{check_leaf, required_leaf};
use super::load::parse_kdl;
use super::model::*;
use super::reader::{FileReader, Spanned};
use super::toolchain::{read_deb, read_debian_suite};

/// The lock file of the rule file `rules/<package>.kdl`.
pub fn lock_path(package: &str) -> String {
    format!("rules/{package}.lock")
}

/// One entry of a lock file (`base` or `toolchain`), read.
#[derive(Clone, Debug)]
pub struct LockEntry {
    pub label: Label,
    pub name_at: Loc,
    pub lock: Lock,
}

/// How a bootstrapped base stands against its lock file.
#[derive(Clone, Debug)]
pub enum LockState {
    /// The lock was resolved from the rule as it is now.
    Current,
    /// No lock: a base is bootstrapped from the live mirror, keyed as before locks; a
    /// toolchain that names its packages cannot be built.
    Missing,
    /// The rule changed since the lock was written: `field` was `locked`, is `rule` now.
    Stale {
        field: &'static str,
        locked: String,
        rule: String,
    },
}

/// Every lockable target of a workspace (bootstrapped bases, toolchains that name their
/// packages), with its lock (if any) and how they stand.
#[derive(Clone, Debug)]
pub struct LockCheck {
    pub label: Label,
    /// The target's rule.
    pub rule_at: Loc,
    pub inputs: LockInputs,
    pub entry: Option<LockEntry>,
    pub state: LockState,
}

/// What a lock of `target` is resolved from; `None` when it has nothing to lock.
pub fn lock_inputs(target: &Target) -> Option<LockInputs> {
    match &target.spec {
        Spec::Base(b) => b.lock_inputs(),
        Spec::Toolchain(t) => t.debian.clone().map(LockInputs::Packages),
        _ => None,
    }
}

/// Reads every lock file of the workspace (`rules/**/*.lock` beside a rule file), adding them
/// to `files`; checks each lockable target of `targets` against its entry. A lock file
/// that is not valid KDL, holds a malformed entry, or an entry for no lockable target of its
/// kind, is an error.
pub fn check_locks(
    root: &Path,
    files: &mut Vec<Source>,
    targets: &[Target],
) -> Result<Vec<LockCheck>, Errors> {
    let mut errors = Errors::default();
    let lockable: BTreeMap<&Label, (&Target, LockInputs)> = targets
        .iter()
        .filter_map(|t| lock_inputs(t).map(|i| (&t.label, (t, i))))
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
            let kind = lock.inputs.kind();
            let matches = lockable
                .get(&label)
                .is_some_and(|(_, inputs)| inputs.kind() == kind);
            if !matches {
                let what = match kind {
                    "base" => "bootstrapped base",
                    _ => "toolchain with `debian` and `packages`",
                };
                r.error(
                    "lock-without-target",
                    name.span,
                    format!(
                        "`{rel}` locks `{label}` as a {kind}, but `rules/{package}.kdl` has no {what} of that name"
                    ),
                    "nothing to lock",
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
    let checks = lockable
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
                inputs,
                entry,
                state,
            }
        })
        .collect();
    errors.into_result(checks)
}

/// Attaches each current lock to its target: a base keys on it and is bootstrapped from it,
/// a toolchain's packages are its pins. A stale lock is an error, so that no key is computed
/// from a lock that no longer says what the rule does; so is a toolchain without its lock,
/// which has no pins to build from.
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
    let mut current: HashMap<Label, LockEntry> = HashMap::new();
    for check in checks {
        match (&check.state, check.entry) {
            (LockState::Stale { .. }, Some(entry)) => {
                errors.push(stale_error(
                    &files[entry.name_at.file],
                    &check.label,
                    &entry,
                    &check.inputs,
                ));
            }
            (LockState::Current, Some(entry)) => {
                current.insert(check.label, entry);
            }
            (LockState::Missing, _) if matches!(check.inputs, LockInputs::Packages(_)) => {
                let label = &check.label;
                errors.push(
                    InputError::at(
                        "missing-lock",
                        &files[check.rule_at.file],
                        check.rule_at.span,
                        format!(
                            "`{label}` names its packages but has no lock in `{}`",
                            lock_path(&label.package)
                        ),
                        "not locked",
                    )
                    .with_help(format!(
                        "Lock it with `refine lock {label}`: the lock pins each package to one file of the archive"
                    )),
                );
            }
            _ => {}
        }
    }
    for t in targets.iter_mut() {
        let Some(entry) = current.remove(&t.label) else {
            continue;
        };
        match &mut t.spec {
            Spec::Base(b) => b.lock = Some(Box::new(entry.lock)),
            Spec::Toolchain(tc) => {
                for pin in entry.lock.debs {
                    if let Some(own) = tc
                        .debs
                        .iter()
                        .find(|d| d.package == pin.package && d.arch == pin.arch)
                    {
                        errors.push(
                            InputError::at(
                                "duplicate-field",
                                &files[entry.name_at.file],
                                entry.name_at.span,
                                format!(
                                    "`{}` pins `{}` ({}) in its rule, and its lock pins it again",
                                    t.label, own.package, own.arch
                                ),
                                "pinned twice",
                            )
                            .with_help(
                                "Remove the rule's `deb`, or the name from `packages`: one pin per package",
                            ),
                        );
                        continue;
                    }
                    tc.debs.push(pin);
                }
                tc.debs.sort();
            }
            _ => {}
        }
    }
}

/// The diagnostic for a stale lock, at its entry.
fn stale_error(source: &Source, label: &Label, entry: &LockEntry, rule: &LockInputs) -> InputError {
    let (field, locked, now) =
        entry
            .lock
            .inputs
            .differs_from(rule)
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
    .with_help(match rule {
        LockInputs::Bootstrap(_) => format!(
            "Refresh it with `refine lock {label}` (the lock pins the packages the rule's bootstrap installs)"
        ),
        LockInputs::Packages(_) => format!(
            "Refresh it with `refine lock {label}` (the lock pins the packages the rule names)"
        ),
    })
}

/// Reads the entries of one lock file.
pub fn read_lock_file(r: &mut FileReader<'_>, doc: &KdlDocument) -> Vec<(Spanned<String>, Lock)> {
    let mut out: Vec<(Spanned<String>, Lock)> = Vec::new();
    for node in doc.nodes() {
        let kind = node.name().value();
        if kind != "base" && kind != "toolchain" {
            r.error(
                "unknown-lock-entry",
                node.name().span(),
                format!("Unknown lock entry `{kind}`"),
                "not a lock entry",
                "A lock file holds `base \"NAME\" { … }` and `toolchain \"NAME\" { … }` entries written by `refine lock`".into(),
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
        let inputs = if kind == "base" {
            read_bootstrap_inputs(r, node).map(LockInputs::Bootstrap)
        } else {
            read_package_inputs(r, node).map(LockInputs::Packages)
        };
        let debs = read_pins(r, node);
        if let Some(inputs) = inputs {
            out.push((
                name,
                Lock {
                    inputs,
                    debs,
                    at: r.loc(node.name().span()),
                },
            ));
        }
    }
    out
}

/// A `base` entry's inputs: `arch`, `bootstrap`, `packages`.
fn read_bootstrap_inputs(r: &mut FileReader<'_>, node: &KdlNode) -> Option<BootstrapInputs> {
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
    let packages = read_names(r, node);
    let (tool, tool_version, suite, variant) = tool?;
    Some(BootstrapInputs {
        arch: arch?.value,
        tool,
        tool_version,
        suite,
        variant,
        packages,
    })
}

/// A `toolchain` entry's inputs: `debian "SUITE" arch=…` and `packages`.
fn read_package_inputs(r: &mut FileReader<'_>, node: &KdlNode) -> Option<DebianPackages> {
    r.check_children(node, &["debian", "packages", "deb"]);
    r.unique_children(node, &["debian", "packages"]);
    let debian = r.required_child(node, "debian", "debian \"bullseye\" arch=\"amd64\"")?;
    let suite = read_debian_suite(r, debian);
    let packages = read_names(r, node);
    let (suite, arch) = suite?;
    Some(DebianPackages {
        suite,
        arch,
        packages,
    })
}

/// The entry's `packages`, sorted and unique.
fn read_names(r: &mut FileReader<'_>, node: &KdlNode) -> Vec<String> {
    let mut packages: Vec<String> = match r.child(node, "packages") {
        Some(p) => {
            check_leaf(r, p);
            r.some_args(p).into_iter().map(|s| s.value).collect()
        }
        None => Vec::new(),
    };
    packages.sort();
    packages.dedup();
    packages
}

/// The entry's `deb` pins, sorted; at least one, each package once.
fn read_pins(r: &mut FileReader<'_>, node: &KdlNode) -> Vec<DebPin> {
    let deb_nodes: Vec<&KdlNode> = r.children(node, "deb").collect();
    if deb_nodes.is_empty() {
        r.error(
            "missing-field",
            node.name().span(),
            format!(
                "A locked {} needs its packages: `deb` entries",
                node.name().value()
            ),
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
    debs
}

/// A KDL string: always quoted, with `"` and `\` escaped (names and versions never hold
/// others).
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A lock file in canonical form: a header comment, then one entry per target sorted by name,
/// its packages sorted; `refine fmt`-clean, one package per line so that a refresh diffs by
/// package.
pub fn render_lock(package: &str, entries: &[(&str, &Lock)]) -> String {
    let mut entries = entries.to_vec();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = format!(
        "// Written by `refine lock`: the Debian packages of each bootstrapped base and each\n// toolchain of rules/{package}.kdl, pinned to the archive's files. Do not edit; refresh\n// with `refine lock //{package}:NAME` (docs/locks.md).\n"
    );
    let list = |names: &[String]| {
        names
            .iter()
            .map(|p| quoted(p))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (n, (name, lock)) in entries.into_iter().enumerate() {
        // `refine fmt` keeps a header comment against the first node, and one blank line
        // between nodes.
        if n > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{} {} {{\n", lock.inputs.kind(), quoted(name)));
        let packages = match &lock.inputs {
            LockInputs::Bootstrap(i) => {
                out.push_str(&format!("    arch {}\n", quoted(&i.arch)));
                out.push_str(&format!(
                    "    bootstrap {} version={} suite={} variant={}\n",
                    quoted(&i.tool),
                    quoted(&i.tool_version),
                    quoted(&i.suite),
                    quoted(&i.variant)
                ));
                &i.packages
            }
            LockInputs::Packages(i) => {
                out.push_str(&format!(
                    "    debian {} arch={}\n",
                    quoted(&i.suite),
                    quoted(&i.arch)
                ));
                &i.packages
            }
        };
        if !packages.is_empty() {
            out.push_str(&format!("    packages {}\n", list(packages)));
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

    fn lock(arch: &str, debs: Vec<DebPin>) -> Lock {
        Lock {
            inputs: LockInputs::Bootstrap(BootstrapInputs {
                arch: arch.into(),
                tool: "debootstrap".into(),
                tool_version: "1.0.128+nmu2+deb12u2".into(),
                suite: "bookworm".into(),
                variant: "minbase".into(),
                packages: vec!["g++".into(), "make".into()],
            }),
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
        let t = Lock {
            inputs: LockInputs::Packages(DebianPackages {
                suite: "bullseye".into(),
                arch: "amd64".into(),
                packages: vec!["binutils-s390x-linux-gnu".into()],
            }),
            debs: vec![pin("binutils-s390x-linux-gnu", "2.35.2-2")],
            at: Loc {
                file: 0,
                span: (0..0).into(),
            },
        };
        let text = render_lock("bases", &[("z", &a), ("m", &t), ("a", &b)]);
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
        assert_eq!(names, ["a", "m", "z"]);
        assert_eq!(read[1].1.inputs, t.inputs);
        assert!(text.contains("toolchain \"m\" {\n    debian \"bullseye\" arch=\"amd64\"\n"));
        let z = &read[2].1;
        assert_eq!(z.inputs, a.inputs);
        assert_eq!(z.debs[0].package, "apt");
        assert_eq!(z.digest(), a.digest());
        assert_ne!(z.digest(), read[0].1.digest());
    }
}
