//! Reading `requests/NAME.kdl`: one `request "NAME" { … }` node, checked against the
//! workspace (platforms, Python versions) and the files it names.

use std::path::Path;

use kdl::{KdlDocument, KdlNode};

use super::super::kinds::{
    check_leaf, pack_refs, read_config_settings, read_python_minors, required_runtime,
};
use super::super::model::WorkspaceConfig;
use super::super::platforms::unique_platforms;
use super::super::reader::{FileReader, Spanned};
use super::*;
use crate::diag::did_you_mean;
use crate::rules::normalize;

const FIELDS: &[&str] = &[
    "platforms",
    "python",
    "runtime",
    "requirements",
    "constraints",
    "package",
    "packs",
    "strategy",
    "keep-going",
    "override",
];

/// Reads the request of `requests/<stem>.kdl`; `None` when it has errors (reported in `r`).
pub fn read_request(
    r: &mut FileReader<'_>,
    doc: &KdlDocument,
    ws: &WorkspaceConfig,
    root: &Path,
    stem: &str,
) -> Option<Request> {
    let mut found = None;
    for node in doc.nodes() {
        if node.name().value() != "request" {
            r.error(
                "unknown-request-entry",
                node.name().span(),
                format!("Unknown entry `{}` in a request file", node.name().value()),
                "not `request`",
                "A request file holds one `request \"NAME\" { … }` (docs/requests.md)".into(),
            );
            continue;
        }
        if found.is_some() {
            r.error(
                "duplicate-request",
                node.name().span(),
                "A request file holds one request".into(),
                "second request",
                "Move it to its own file, `requests/NAME.kdl`".into(),
            );
            continue;
        }
        found = Some(node);
    }
    let Some(node) = found else {
        r.error(
            "missing-request",
            miette::SourceSpan::from(0..0),
            format!("`requests/{stem}.kdl` holds no request"),
            "empty",
            format!("Write `request \"{stem}\" {{ python \"3.12\"; runtime \"//runtimes:cpython\"; requirements \"{stem}.txt\" }}`"),
        );
        return None;
    };
    read_node(r, node, ws, root, stem)
}

fn read_node(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    ws: &WorkspaceConfig,
    root: &Path,
    stem: &str,
) -> Option<Request> {
    r.check_props(node, &[]);
    r.check_children(node, FIELDS);
    r.unique_children(
        node,
        &[
            "platforms",
            "python",
            "runtime",
            "strategy",
            "keep-going",
            "packs",
        ],
    );
    let name = r.one_arg(node)?;
    if name.value != stem {
        r.error(
            "request-name",
            name.span,
            format!(
                "The request in `requests/{stem}.kdl` is called `{}`",
                name.value
            ),
            "not the file's name",
            format!(
                "Call it `{stem}`, or rename the file `requests/{}.kdl`",
                name.value
            ),
        );
    }
    let platforms = read_platforms(r, node, ws);
    let pythons = read_python_minors(r, node).unwrap_or_default();
    let runtime = required_runtime(r, node);
    let requirements = read_files(r, node, "requirements", root);
    let constraints = read_files(r, node, "constraints", root);
    let packages = read_packages(r, node);
    // What the request names, not what read without errors: a requirements file that is
    // missing has its own error.
    if r.child(node, "requirements").is_none() && r.child(node, "package").is_none() {
        r.error(
            "empty-request",
            name.span,
            format!("Request `{}` asks for nothing", name.value),
            "no requirements",
            "Add `requirements \"requirements.txt\"` or `package \"NAME\" version=\">=1\"`".into(),
        );
    }
    let allowed_packs = match r.child(node, "packs") {
        Some(p) => {
            check_leaf(r, p);
            r.labels(p)
        }
        None => Vec::new(),
    };
    let strategy = read_strategy(r, node);
    let keep_going = match r.child(node, "keep-going") {
        Some(k) => {
            r.check_props(k, &[]);
            r.check_children(k, &[]);
            if k.entries().is_empty() {
                true
            } else {
                r.bool_arg(k).unwrap_or(false)
            }
        }
        None => false,
    };
    let overrides = read_overrides(r, node);
    let at = r.loc(name.span);
    Some(Request {
        name: name.value,
        at,
        platforms,
        pythons,
        runtime: runtime?,
        requirements,
        constraints,
        packages,
        strategy: strategy?,
        keep_going,
        overrides,
        allowed_packs,
    })
}

fn read_platforms(r: &mut FileReader<'_>, node: &KdlNode, ws: &WorkspaceConfig) -> Vec<String> {
    let Some(p) = r.child(node, "platforms") else {
        return ws.defaults.platforms.clone();
    };
    check_leaf(r, p);
    let names = r.some_args(p);
    let (platforms, _) = unique_platforms(r, ws, &names);
    platforms.into_iter().map(|p| p.name.clone()).collect()
}

/// `requirements "FILE"` or `constraints "FILE"`, relative to `requests/`; each must be
/// a readable file inside the workspace.
fn read_files(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    field: &str,
    root: &Path,
) -> Vec<RequirementsFile> {
    let mut out = Vec::new();
    for child in r.children(node, field).collect::<Vec<_>>() {
        check_leaf(r, child);
        let Some(path) = r.one_arg(child) else {
            continue;
        };
        let joined = Path::new("requests").join(&path.value);
        let rel = lexical_normal(&joined);
        let Some(rel) = rel.filter(|_| !Path::new(&path.value).is_absolute()) else {
            r.error(
                "outside-workspace",
                path.span,
                format!("`{}` is outside the workspace", path.value),
                "outside the workspace",
                "Keep requirements files inside the workspace, relative to `requests/`".into(),
            );
            continue;
        };
        let what = if field == "requirements" {
            "Requirements file"
        } else {
            "Constraints file"
        };
        match fs_err::read_to_string(root.join(&rel)) {
            Ok(text) => match includes(root, &rel, &text) {
                Ok(included) => out.push(RequirementsFile {
                    path: rel,
                    text,
                    at: r.loc(path.span),
                    includes: included,
                }),
                Err(why) => r.error(
                    "unreadable-file",
                    path.span,
                    format!("{what} `{rel}` {why}"),
                    "here",
                    "Includes (`-r FILE`, `-c FILE`) are relative to the including file and must stay inside the workspace".into(),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let help = match did_you_mean(&rel, nearby(root, &rel).iter().map(String::as_str)) {
                    Some(near) => format!(
                        "Did you mean `{}`? Paths are relative to `requests/`",
                        near.strip_prefix("requests/").unwrap_or(near)
                    ),
                    None => {
                        format!("Paths are relative to `requests/`: create `{rel}` or fix the path")
                    }
                };
                r.error(
                    "unreadable-file",
                    path.span,
                    format!("{what} `{rel}` does not exist"),
                    "no such file in the workspace",
                    help,
                );
            }
            Err(e) => r.error(
                "unreadable-file",
                path.span,
                format!("Cannot read {} `{rel}`: {}", what.to_lowercase(), e.kind()),
                "cannot read",
                format!("Make `{rel}` a readable text file, or fix the path"),
            ),
        }
    }
    out
}

/// The files beside `rel` (a path from the workspace root) that a misspelt name may have
/// meant, as paths from the workspace root.
fn nearby(root: &Path, rel: &str) -> Vec<String> {
    let folder = Path::new(rel).parent().unwrap_or(Path::new(""));
    let Ok(entries) = fs_err::read_dir(root.join(folder)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| folder.join(e.file_name()).to_str().map(str::to_string))
        .filter(|p| !p.ends_with(".kdl") && !p.ends_with(".lock"))
        .collect()
}

/// Checks a PEP 440 version specifier set (`>=2,<3`), reporting the part that is wrong.
fn check_specifiers(r: &mut FileReader<'_>, text: &Spanned<String>) -> bool {
    // `VersionSpecifiers`' own error draws the string with a caret under the bad part;
    // each part's error is the one line a diagnostic wants.
    for part in text.value.split(',') {
        if let Err(e) = part.parse::<uv_pep440::VersionSpecifier>() {
            r.error(
                "bad-version",
                text.span,
                format!("`{}` is not a version specifier: {e}", text.value),
                "invalid (PEP 440)",
                "Write a specifier such as `==2.1.3` or `>=2,<3`".into(),
            );
            return false;
        }
    }
    true
}

/// `requests/../x.txt` → `x.txt`; `None` when the path climbs out of the workspace.
/// Includes nest at most this deep (pip has no limit; a cycle is reported, not followed).
const MAX_INCLUDE_DEPTH: usize = 16;

/// The files `text` (the requirements file `rel`) includes with `-r`/`--requirement` or
/// `-c`/`--constraint`, recursively, in order of first appearance, each with its text; or
/// why one cannot be read (completing "Requirements file `rel` …").
fn includes(root: &Path, rel: &str, text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut stack = vec![(rel.to_string(), text.to_string(), 0usize)];
    while let Some((file, text, depth)) = stack.pop() {
        let dir = Path::new(&file).parent().unwrap_or(Path::new(""));
        let mut found = Vec::new();
        for line in text.lines() {
            let line = line.split(" #").next().unwrap_or("").trim();
            let target = include_target(line).filter(|t| !t.is_empty());
            let Some(target) = target else { continue };
            if target.contains("://") {
                return Err(format!(
                    "includes `{target}`, a URL: refine locks files of the workspace only"
                ));
            }
            let Some(inc) = lexical_normal(&dir.join(target)) else {
                return Err(format!(
                    "includes `{target}`, which is outside the workspace"
                ));
            };
            if inc == rel || out.iter().any(|(p, _)| *p == inc) {
                continue;
            }
            if depth + 1 > MAX_INCLUDE_DEPTH {
                return Err(format!("nests includes more than {MAX_INCLUDE_DEPTH} deep"));
            }
            let included = fs_err::read_to_string(root.join(&inc)).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => format!("includes `{inc}`, which does not exist"),
                kind => format!("includes `{inc}`, which cannot be read ({kind})"),
            })?;
            out.push((inc.clone(), included.clone()));
            found.push((inc, included, depth + 1));
        }
        stack.extend(found.into_iter().rev());
    }
    Ok(out)
}

/// The file a requirements line includes: `-r FILE`, `-rFILE`, `--requirement[= ]FILE`, and
/// the same for constraints (`-c`, `--constraint`), as pip reads them.
fn include_target(line: &str) -> Option<&str> {
    for long in ["--requirement", "--constraint"] {
        if let Some(rest) = line.strip_prefix(long) {
            return match rest.strip_prefix('=') {
                Some(v) => Some(v.trim()),
                None => rest.starts_with(char::is_whitespace).then(|| rest.trim()),
            };
        }
    }
    ["-r", "-c"].iter().find_map(|short| {
        let rest = line.strip_prefix(short)?;
        Some(rest.strip_prefix('=').unwrap_or(rest).trim())
    })
}

fn lexical_normal(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(s) => parts.push(s.to_string_lossy().into()),
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// `package "NAME" version="SPEC"`: a PEP 508 requirement.
fn read_packages(r: &mut FileReader<'_>, node: &KdlNode) -> Vec<PackageRequirement> {
    let mut out = Vec::new();
    for child in r.children(node, "package").collect::<Vec<_>>() {
        r.check_props(child, &["version"]);
        r.check_children(child, &[]);
        let Some(name) = r.one_arg(child) else {
            continue;
        };
        let version = r.prop(child, "version");
        match name.value.parse::<uv_pep508::Requirement>() {
            Ok(parsed) if parsed.version_or_url.is_none() => {}
            Ok(_) => {
                r.error(
                    "bad-requirement",
                    name.span,
                    format!("`{}` carries a version: give it in `version=`", name.value),
                    "name only",
                    "Write `package \"numpy\" version=\">=2\"`".into(),
                );
                continue;
            }
            Err(e) => {
                r.error(
                    "bad-requirement",
                    name.span,
                    format!("`{}` is not a package name: {}", name.value, e.message),
                    "invalid (PEP 508)",
                    "Write the package's name, such as `numpy` or `ruamel.yaml`, and its version in `version=`".into(),
                );
                continue;
            }
        }
        // Without an operator, `numpy` and `2` would read as a requirement on `numpy2`.
        if let Some(v) = &version
            && !check_specifiers(r, v)
        {
            continue;
        }
        let requirement = match &version {
            Some(v) => format!("{}{}", name.value, v.value),
            None => name.value.clone(),
        };
        match requirement.parse::<uv_pep508::Requirement>() {
            Ok(_) => out.push(PackageRequirement {
                requirement,
                at: r.loc(name.span),
            }),
            Err(e) => {
                let span = version.as_ref().map_or(name.span, |v| v.span);
                r.error(
                    "bad-requirement",
                    span,
                    format!("`{requirement}` is not a valid requirement: {}", e.message),
                    "invalid (PEP 508)",
                    "Write a package name and a version specifier such as `>=2,<3`".into(),
                );
            }
        }
    }
    out
}

fn read_strategy(r: &mut FileReader<'_>, node: &KdlNode) -> Option<Strategy> {
    let Some(s) = r.child(node, "strategy") else {
        return Some(Strategy::ReuseWheels);
    };
    check_leaf(r, s);
    let text = r.one_arg(s)?;
    match text.value.as_str() {
        "reuse-wheels" => Some(Strategy::ReuseWheels),
        "build-all" => Some(Strategy::BuildAll),
        other => {
            r.error(
                "bad-strategy",
                text.span,
                format!("Unknown strategy `{other}`"),
                "not a strategy",
                "Use `reuse-wheels` (take the index's wheels where they fit) or `build-all`".into(),
            );
            None
        }
    }
}

fn read_override_fields(r: &mut FileReader<'_>, node: &KdlNode) -> OverrideFields {
    OverrideFields {
        packs: pack_refs(r, node),
        env: r.env(node),
        config_settings: read_config_settings(r, node),
    }
}

fn read_overrides(r: &mut FileReader<'_>, node: &KdlNode) -> Vec<Override> {
    let mut out: Vec<Override> = Vec::new();
    // Each override's package as written, and where.
    let mut written: Vec<(String, miette::SourceSpan)> = Vec::new();
    for child in r.children(node, "override").collect::<Vec<_>>() {
        r.check_props(child, &[]);
        r.check_children(
            child,
            &[
                "packs",
                "env",
                "config-setting",
                "version",
                "take",
                "build-requires",
                "python",
            ],
        );
        r.unique_children(child, &["version", "take"]);
        let Some(name) = r.one_arg(child) else {
            continue;
        };
        let package = normalize(&name.value);
        if let Some((first, at)) = written.iter().find(|(w, _)| normalize(w) == package) {
            let line = r.source.text[..at.offset().min(r.source.text.len())]
                .matches('\n')
                .count()
                + 1;
            let help = if *first == name.value {
                format!("It is first overridden at line {line}: merge the two overrides into one")
            } else {
                format!(
                    "`{first}` and `{}` are one package (PEP 503), first overridden at line {line}: merge the two overrides into one",
                    name.value
                )
            };
            r.error(
                "duplicate-field",
                name.span,
                format!("`{}` is overridden twice", name.value),
                "overridden again",
                help,
            );
            continue;
        }
        written.push((name.value.clone(), name.span));
        let version = r.child(child, "version").and_then(|v| {
            check_leaf(r, v);
            let text = r.one_arg(v)?;
            check_specifiers(r, &text).then_some(text.value)
        });
        let sdist = match r.child(child, "take") {
            Some(t) => {
                check_leaf(r, t);
                match r.one_arg(t) {
                    Some(v) if v.value == "sdist" => true,
                    Some(v) if v.value == "any" => false,
                    Some(v) => {
                        r.error(
                            "bad-take",
                            v.span,
                            format!("`take` is `sdist` or `any`, not `{}`", v.value),
                            "unknown",
                            "Write `take \"sdist\"` to build it here even where the index has a wheel for the platform, or `take \"any\"` to let the strategy choose".into(),
                        );
                        false
                    }
                    None => false,
                }
            }
            None => false,
        };
        let mut build_requires = Vec::new();
        for b in r.children(child, "build-requires").collect::<Vec<_>>() {
            check_leaf(r, b);
            for req in r.some_args(b) {
                match req.value.parse::<uv_pep508::Requirement>() {
                    Ok(_) => build_requires.push(req.value),
                    Err(e) => r.error(
                        "bad-requirement",
                        req.span,
                        format!(
                            "`{}` is not a valid requirement: {}",
                            req.value,
                            e.message.to_string().lines().next().unwrap_or_default()
                        ),
                        "invalid (PEP 508)",
                        "Write a requirement such as `ninja>=1.8.2`".into(),
                    ),
                }
            }
        }
        let fields = read_override_fields(r, child);
        let mut per_python = Vec::new();
        for py in r.children(child, "python").collect::<Vec<_>>() {
            r.check_props(py, &[]);
            r.check_children(py, &["packs", "env", "config-setting"]);
            let Some(v) = r.one_arg(py) else { continue };
            let Some(version) = r.version(&v) else {
                continue;
            };
            per_python.push((version, read_override_fields(r, py)));
        }
        out.push(Override {
            build_requires,
            package,
            at: r.loc(name.span),
            version,
            sdist,
            fields,
            per_python,
        });
    }
    out
}
