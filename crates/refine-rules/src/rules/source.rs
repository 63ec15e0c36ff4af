//! `source` nodes: the fixed-output inputs of a rule (PyPI sdists, URLs, Debian source
//! files) and workspace folders.

use kdl::KdlNode;

use super::model::SourceSpec;
use super::reader::FileReader;

const PROPS: &[&str] = &["pypi", "url", "debian", "path", "version", "file", "sha256"];

/// Reads `source pypi="…" version="…" sha256="…"` and its siblings.
pub fn read_source(r: &mut FileReader<'_>, node: &KdlNode) -> Option<SourceSpec> {
    r.check_props(node, PROPS);
    r.check_children(node, &[]);
    if node.entries().iter().any(|e| e.name().is_none()) {
        r.error(
            "bad-source",
            node.span(),
            "`source` takes properties, not values".into(),
            "unexpected value",
            "Write `source pypi=\"NAME\" version=\"V\" sha256=\"…\"`, `source url=\"…\" sha256=\"…\"`, `source debian=\"PKG\" version=\"V\" file=\"F\" sha256=\"…\"` or `source path=\"DIR\"`".into(),
        );
        return None;
    }
    match one_origin(r, node)? {
        "pypi" => read_pypi(r, node),
        "url" => read_url(r, node),
        "debian" => read_debian(r, node),
        _ => read_path(r, node),
    }
}

/// The one origin property a `source` names: where its bytes come from.
fn one_origin(r: &mut FileReader<'_>, node: &KdlNode) -> Option<&'static str> {
    let origins: Vec<&str> = ["pypi", "url", "debian", "path"]
        .into_iter()
        .filter(|k| {
            node.entries()
                .iter()
                .any(|e| e.name().is_some_and(|n| n.value() == *k))
        })
        .collect();
    match origins.as_slice() {
        [one] => Some(*one),
        [] => {
            r.error(
                "bad-source",
                node.name().span(),
                "`source` needs one of `pypi`, `url`, `debian` or `path`".into(),
                "where does it come from?",
                "Add `pypi=\"NAME\"`, `url=\"…\"`, `debian=\"PKG\"` or `path=\"DIR\"`".into(),
            );
            None
        }
        _ => {
            r.error(
                "bad-source",
                node.span(),
                format!(
                    "`source` has {} origins: {}",
                    origins.len(),
                    origins.join(", ")
                ),
                "more than one origin",
                "Keep exactly one of `pypi`, `url`, `debian` or `path`".into(),
            );
            None
        }
    }
}

/// Reports property `name` when given: it means nothing for this `origin`, and silently
/// ignoring it would hide a mistake.
fn forbid(r: &mut FileReader<'_>, node: &KdlNode, origin: &str, name: &str) {
    if let Some(e) = node
        .entries()
        .iter()
        .find(|e| e.name().is_some_and(|n| n.value() == name))
    {
        r.error(
            "bad-source",
            e.span(),
            format!("`{name}` does not apply to a `{origin}` source"),
            "not used here",
            format!("Remove `{name}`"),
        );
    }
}

/// `source pypi="NAME" version="V" sha256="…"`: an sdist from the package index.
fn read_pypi(r: &mut FileReader<'_>, node: &KdlNode) -> Option<SourceSpec> {
    forbid(r, node, "pypi", "file");
    let name = r.prop(node, "pypi");
    let version = r.required_prop(node, "version", "\"1.0\"");
    let sha = r
        .required_prop(node, "sha256", "\"…\"")
        .and_then(|s| r.sha256(&s));
    if let Some(v) = &version {
        r.version(v)?;
    }
    let name = name?;
    // A requirement that parses to the same normalised name with no version is a bare name.
    if name
        .value
        .parse::<uv_pep508::Requirement>()
        .map_or(true, |r| {
            r.version_or_url.is_some() || r.name.as_ref() != super::catalog::normalize(&name.value)
        })
    {
        r.error(
            "bad-source",
            name.span,
            format!("`{}` is not a valid Python package name", name.value),
            "invalid name",
            "Package names use letters, digits, `-`, `_` and `.`".into(),
        );
        return None;
    }
    Some(SourceSpec::Pypi {
        name: name.value,
        version: version?.value,
        sha256: sha?,
    })
}

/// `source url="…" sha256="…" [file="NAME"]`: a file over http(s), named after the URL's
/// last segment unless `file` says otherwise.
fn read_url(r: &mut FileReader<'_>, node: &KdlNode) -> Option<SourceSpec> {
    forbid(r, node, "url", "version");
    let url = r.prop(node, "url")?;
    let sha = r
        .required_prop(node, "sha256", "\"…\"")
        .and_then(|s| r.sha256(&s));
    let scheme_ok = url.value.starts_with("https://") || url.value.starts_with("http://");
    if !scheme_ok {
        r.error(
            "bad-source",
            url.span,
            format!("`{}` is not an http(s) URL", url.value),
            "unsupported URL",
            "Use an `https://` URL, or `path=` for a folder of the workspace".into(),
        );
        return None;
    }
    let file = match r.prop(node, "file") {
        Some(f) => f.value,
        None => url.value.rsplit('/').next().unwrap_or_default().to_string(),
    };
    if file.is_empty() || file.contains('/') {
        r.error(
            "bad-source",
            url.span,
            format!("Cannot tell a file name from `{}`", url.value),
            "no file name",
            "Add `file=\"NAME\"`".into(),
        );
        return None;
    }
    Some(SourceSpec::Url {
        url: url.value,
        file,
        sha256: sha?,
    })
}

/// `source debian="PKG" version="V" file="F" sha256="…"`: a file of a Debian source package.
fn read_debian(r: &mut FileReader<'_>, node: &KdlNode) -> Option<SourceSpec> {
    let package = r.prop(node, "debian");
    let version = r.required_prop(node, "version", "\"0.2.5-1\"");
    let file = r.required_prop(node, "file", "\"NAME_VERSION.orig.tar.gz\"");
    let sha = r
        .required_prop(node, "sha256", "\"…\"")
        .and_then(|s| r.sha256(&s));
    Some(SourceSpec::Debian {
        package: package?.value,
        version: version?.value,
        file: file?.value,
        sha256: sha?,
    })
}

/// `source path="DIR"`: a folder of the workspace, keyed by its tree hash (so no `sha256`).
fn read_path(r: &mut FileReader<'_>, node: &KdlNode) -> Option<SourceSpec> {
    for p in ["version", "file", "sha256"] {
        forbid(r, node, "path", p);
    }
    let path = r.prop(node, "path")?;
    let bad = path.value.is_empty()
        || path.value.starts_with('/')
        || path.value.split('/').any(|s| s == "..");
    if bad {
        r.error(
            "bad-source",
            path.span,
            format!("`{}` is not a folder inside the workspace", path.value),
            "must be relative, without `..`",
            "Give a path relative to the workspace root, such as `src/mylib`".into(),
        );
        return None;
    }
    Some(SourceSpec::Path { path: path.value })
}
