//! `catalog/*.kdl`: which packs a source or a build backend needs, applied when a wheel's
//! packs are resolved. Source names are matched as PEP 503 normalized names against globs.

use kdl::KdlDocument;

use super::model::*;
use super::reader::FileReader;

pub fn read_catalog(r: &mut FileReader<'_>, doc: &KdlDocument, into: &mut Catalog) {
    for node in doc.nodes() {
        let kind = node.name().value();
        if kind != "source" && kind != "backend" {
            let help = match crate::diag::did_you_mean(kind, ["source", "backend"]) {
                Some(near) => format!("Did you mean `{near}`?"),
                None => "Catalog files hold `source \"GLOB\" { packs … }` and `backend \"NAME\" { packs … }`".into(),
            };
            r.error(
                "unknown-field",
                node.name().span(),
                format!("Unknown catalog entry `{kind}`"),
                "not a catalog entry",
                help,
            );
            continue;
        }
        r.check_props(node, &[]);
        r.check_children(node, &["packs"]);
        let Some(pattern) = r.one_arg(node) else {
            continue;
        };
        let mut packs = Vec::new();
        for p in r.children(node, "packs").collect::<Vec<_>>() {
            r.check_props(p, &[]);
            packs.extend(r.labels(p));
        }
        if packs.is_empty() {
            r.error(
                "missing-field",
                node.name().span(),
                format!("Catalog entry `{}` names no packs", pattern.value),
                "no `packs`",
                "Add `{ packs \"//packs:NAME\" }`".into(),
            );
            continue;
        }
        let matches = if kind == "source" {
            CatalogMatch::Source(normalize(&pattern.value))
        } else {
            CatalogMatch::Backend(pattern.value)
        };
        into.entries.push(CatalogEntry { matches, packs });
    }
}

/// PEP 503 name normalization: lowercase, runs of `-`, `_` and `.` become one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            dash = true;
        } else {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Shell-style glob with `*` and `?`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl Catalog {
    /// The packs the catalog adds to a wheel with this source name and backend.
    pub fn packs_for(&self, source_name: &str, backend: Option<&str>) -> Vec<&LabelRef> {
        let name = normalize(source_name);
        self.entries
            .iter()
            .filter(|e| match &e.matches {
                CatalogMatch::Source(glob) => glob_match(glob, &name),
                CatalogMatch::Backend(b) => backend == Some(b.as_str()),
            })
            .flat_map(|e| e.packs.iter())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_names() {
        assert_eq!(normalize("PyYAML"), "pyyaml");
        assert_eq!(normalize("Foo__Bar.baz"), "foo-bar-baz");
        assert!(glob_match("py*", "pyyaml"));
        assert!(glob_match("*yaml", "pyyaml"));
        assert!(glob_match("n?mpy", "numpy"));
        assert!(!glob_match("numpy", "numpy2"));
        assert!(glob_match("*", ""));
    }
}
