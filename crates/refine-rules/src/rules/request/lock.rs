//! `requests/NAME.lock`: what `refine request lock` resolved, one `resolution` per Python
//! version and platform, read back with every inconsistency a hand edit can make reported
//! at its line, and written in one canonical form (`refine fmt`-clean, sorted, diff-friendly).

use kdl::{KdlDocument, KdlNode};

use super::super::kinds::check_leaf;
use super::super::reader::FileReader;
use super::*;
use crate::rules::normalize;

fn quoted(s: &str) -> String {
    kdl::KdlValue::String(s.to_string()).to_string()
}

/// Renders a lock in canonical form: resolutions by platform then Python version, packages
/// by name.
pub fn render_request_lock(lock: &RequestLock) -> String {
    let mut out = format!(
        "// Written by `refine request lock {name}`: what requests/{name}.kdl resolved to, for each\n// Python version and platform. Do not edit; refresh with `refine request lock {name}`\n// (docs/requests.md).\nrequest {} inputs={} resolver={}\n",
        quoted(&lock.name),
        quoted(&lock.inputs),
        quoted(&lock.resolver),
        name = lock.name,
    );
    let mut resolutions: Vec<&Resolution> = lock.resolutions.iter().collect();
    resolutions.sort_by(|a, b| (&a.platform, &a.python).cmp(&(&b.platform, &b.python)));
    for res in resolutions {
        out.push_str(&format!(
            "\nresolution python={} platform={} {{\n",
            quoted(&res.python.to_string()),
            quoted(&res.platform)
        ));
        let mut packages: Vec<&LockedPackage> = res.packages.iter().collect();
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        for p in packages {
            out.push_str(&format!(
                "    package {} version={} take={} {{\n",
                quoted(&p.name),
                quoted(&p.version),
                quoted(p.take.as_str())
            ));
            for (kind, file) in [("sdist", &p.sdist), ("wheel", &p.wheel)] {
                if let Some(f) = file {
                    out.push_str(&format!(
                        "        {kind} {} sha256={}\n",
                        quoted(&f.file),
                        quoted(&f.sha256.0)
                    ));
                }
            }
            if let Some(b) = &p.backend {
                out.push_str(&format!("        backend {}\n", quoted(b)));
            }
            for a in &p.asked {
                out.push_str(&format!("        asked {}\n", quoted(a)));
            }
            let mut requires: Vec<&Pinned> = p.build_requires.iter().collect();
            requires.sort_by_key(|r| normalize(&r.name));
            for r in requires {
                out.push_str(&format!(
                    "        requires {} sha256={}\n",
                    quoted(&r.requirement()),
                    quoted(&r.sha256.0)
                ));
            }
            let mut built: Vec<&(String, String)> = p.built_requires.iter().collect();
            built.sort();
            for (name, version) in built {
                out.push_str(&format!(
                    "        requires-built {}\n",
                    quoted(&format!("{name}=={version}"))
                ));
            }
            out.push_str("    }\n");
        }
        out.push_str("}\n");
    }
    out
}

/// What to do about a lock edited into an inconsistent state: write it again. The request's
/// name is the lock file's stem (`requests/NAME.lock`).
fn relock(r: &FileReader<'_>) -> String {
    let name = r
        .source
        .name
        .rsplit('/')
        .next()
        .and_then(|f| f.strip_suffix(".lock"))
        .unwrap_or("NAME");
    format!("Run `refine request lock {name}` to write the lock afresh")
}

/// The lock a new `refine request lock` replaces, read only for the questions it may ask
/// ahead (which the new lock asks anyway): `None` when `text` is not a clean lock.
pub fn read_previous_lock(file: &str, text: &str) -> Option<RequestLock> {
    let source = crate::diag::Source::new(file, text);
    let doc = crate::rules::parse_kdl(&source).ok()?;
    let mut r = FileReader {
        file: 0,
        source: &source,
        package: None,
        errors: crate::diag::Errors::default(),
    };
    let lock = read_request_lock(&mut r, &doc)?;
    r.errors.is_empty().then_some(lock)
}

/// Reads a request's lock; hand edits that leave it inconsistent are reported in `r`.
pub fn read_request_lock(r: &mut FileReader<'_>, doc: &KdlDocument) -> Option<RequestLock> {
    let mut head: Option<(String, String, String, Loc)> = None;
    let mut seen_head = false;
    let mut resolutions: Vec<Resolution> = Vec::new();
    for node in doc.nodes() {
        match node.name().value() {
            "request" if seen_head => {
                let help = relock(r);
                r.error(
                    "inconsistent-lock",
                    node.name().span(),
                    "The lock has a second `request` line".into(),
                    "again",
                    help,
                );
            }
            "request" => {
                seen_head = true;
                r.check_props(node, &["inputs", "resolver"]);
                r.check_children(node, &[]);
                let name = r.one_arg(node);
                let inputs = r.required_prop(node, "inputs", "\"sha256:…\"");
                let resolver = r.required_prop(node, "resolver", "\"uv==…\"");
                if let (Some(n), Some(i), Some(v)) = (name, inputs, resolver) {
                    head = Some((n.value, i.value, v.value, r.loc(n.span)));
                }
            }
            "resolution" => {
                if let Some(res) = read_resolution(r, node) {
                    if resolutions
                        .iter()
                        .any(|o| o.python == res.python && o.platform == res.platform)
                    {
                        r.error(
                            "inconsistent-lock",
                            node.name().span(),
                            format!(
                                "Python {} on `{}` is resolved twice",
                                res.python, res.platform
                            ),
                            "again",
                            relock(r),
                        );
                        continue;
                    }
                    resolutions.push(res);
                }
            }
            other => r.error(
                "unknown-lock-entry",
                node.name().span(),
                format!("Unknown entry `{other}` in a request lock"),
                "not a lock entry",
                "A request lock holds one `request` line and `resolution` blocks written by `refine request lock`".into(),
            ),
        }
    }
    let Some((name, inputs, resolver, at)) = head else {
        if seen_head {
            // Its error is reported.
            return None;
        }
        let help = relock(r);
        r.error(
            "inconsistent-lock",
            miette::SourceSpan::from(0..0),
            "The lock has no `request` line".into(),
            "here",
            help,
        );
        return None;
    };
    Some(RequestLock {
        name,
        inputs,
        resolver,
        resolutions,
        at,
    })
}

fn read_resolution(r: &mut FileReader<'_>, node: &KdlNode) -> Option<Resolution> {
    r.check_props(node, &["python", "platform"]);
    r.check_children(node, &["package"]);
    let python = r
        .required_prop(node, "python", "\"3.12\"")
        .and_then(|p| r.version(&p));
    let platform = r.required_prop(node, "platform", "\"s390x\"");
    let mut packages: Vec<LockedPackage> = Vec::new();
    for p in r.children(node, "package").collect::<Vec<_>>() {
        let Some(package) = read_package(r, p) else {
            continue;
        };
        if packages.iter().any(|o| o.name == package.name) {
            r.error(
                "inconsistent-lock",
                p.name().span(),
                format!("`{}` is locked twice in one resolution", package.name),
                "again",
                relock(r),
            );
            continue;
        }
        packages.push(package);
    }
    for p in &packages {
        for (name, version) in &p.built_requires {
            let built = packages
                .iter()
                .any(|o| &o.name == name && &o.version == version && o.take == Take::Sdist);
            if !built {
                r.error(
                    "inconsistent-lock",
                    p.at.span,
                    format!(
                        "`{}` needs `{name}` {version} built here, but the resolution does not build it",
                        p.name
                    ),
                    "needs a wheel this request builds",
                    "Run `refine request lock NAME` to write the lock afresh".into(),
                );
            }
        }
    }
    Some(Resolution {
        python: python?,
        platform: platform?.value,
        packages,
    })
}

/// An `sdist` or `wheel` line: a file of the index by name, which `refine build --out`
/// writes into the wheelhouse under that name, so a plain file name of its kind.
fn read_file(r: &mut FileReader<'_>, node: &KdlNode, kind: &str) -> Option<LockedFile> {
    let child = r.child(node, kind)?;
    r.check_props(child, &["sha256"]);
    r.check_children(child, &[]);
    let file = r.one_arg(child);
    let sha = r
        .required_prop(child, "sha256", "\"…\"")
        .and_then(|s| r.sha256(&s));
    let file = file?;
    let f = file.value.as_str();
    // A plain name: no folder, so that the wheelhouse's copy stays in the wheelhouse; a
    // wheel's ends in `.whl` (PEP 427). Old sdists have many suffixes.
    let plain = !f.is_empty() && f != "." && f != ".." && !f.contains(['/', '\\']);
    if !plain || (kind == "wheel" && !f.ends_with(".whl")) {
        let (what, expected) = if kind == "wheel" {
            ("a wheel", "expected `NAME-….whl`")
        } else {
            ("an sdist", "expected a file name, no folder")
        };
        let help = relock(r);
        r.error(
            "bad-path",
            file.span,
            format!("`{f}` is not the file name of {what}"),
            expected,
            help,
        );
        return None;
    }
    Some(LockedFile {
        file: file.value,
        sha256: sha?,
    })
}

fn read_package(r: &mut FileReader<'_>, node: &KdlNode) -> Option<LockedPackage> {
    r.check_props(node, &["version", "take"]);
    r.check_children(
        node,
        &[
            "sdist",
            "wheel",
            "backend",
            "asked",
            "requires",
            "requires-built",
        ],
    );
    r.unique_children(node, &["sdist", "wheel", "backend"]);
    let name = r.one_arg(node)?;
    let version = r.required_prop(node, "version", "\"1.0\"");
    let take = r.required_prop(node, "take", "\"sdist\"");
    let sdist = read_file(r, node, "sdist");
    let wheel = read_file(r, node, "wheel");
    let backend = r.child(node, "backend").and_then(|b| {
        check_leaf(r, b);
        r.one_arg(b).map(|b| b.value)
    });
    let asked: Vec<String> = r
        .children(node, "asked")
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|c| {
            check_leaf(r, c);
            r.one_arg(c).map(|a| a.value)
        })
        .collect();
    let build_requires: Vec<Pinned> = r
        .children(node, "requires")
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|c| r.pinned(c))
        .collect();
    let mut built_requires = Vec::new();
    for c in r.children(node, "requires-built").collect::<Vec<_>>() {
        check_leaf(r, c);
        let Some(text) = r.one_arg(c) else { continue };
        match text.value.split_once("==") {
            Some((n, v)) if normalize(n) == n && !v.is_empty() => {
                built_requires.push((n.to_string(), v.to_string()));
            }
            _ => r.error(
                "inconsistent-lock",
                text.span,
                format!(
                    "`{}` is not `NAME==VERSION` with a normalized name",
                    text.value
                ),
                "expected `NAME==VERSION`",
                "Run `refine request lock NAME` to write the lock afresh".into(),
            ),
        }
    }
    let take = take?;
    let take = match take.value.as_str() {
        "sdist" if sdist.is_some() => Take::Sdist,
        "wheel" if wheel.is_some() => Take::Wheel,
        // The line is there but wrong: its error is reported.
        "sdist" | "wheel" if r.child(node, &take.value).is_some() => return None,
        "sdist" | "wheel" => {
            r.error(
                "inconsistent-lock",
                take.span,
                format!(
                    "`{}` takes its {} but the lock names none",
                    name.value, take.value
                ),
                "nothing to take",
                relock(r),
            );
            return None;
        }
        other => {
            r.error(
                "inconsistent-lock",
                take.span,
                format!("`take` is `sdist` or `wheel`, not `{other}`"),
                "unknown",
                relock(r),
            );
            return None;
        }
    };
    if take == Take::Wheel
        && !(build_requires.is_empty() && built_requires.is_empty() && asked.is_empty())
    {
        r.error(
            "inconsistent-lock",
            name.span,
            format!(
                "`{}` takes the index's wheel but lists build requirements",
                name.value
            ),
            "nothing is built",
            relock(r),
        );
        return None;
    }
    if normalize(&name.value) != name.value {
        r.error(
            "inconsistent-lock",
            name.span,
            format!("`{}` is not a normalized package name", name.value),
            "not PEP 503 normalized",
            relock(r),
        );
        return None;
    }
    Some(LockedPackage {
        at: r.loc(name.span),
        name: name.value,
        version: version?.value,
        take,
        sdist,
        wheel,
        backend,
        asked,
        build_requires,
        built_requires,
    })
}
