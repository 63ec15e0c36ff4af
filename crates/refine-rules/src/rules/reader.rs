//! Reading KDL nodes against a schema: unknown children and properties, wrong value types,
//! missing fields and duplicates become diagnostics, and reading goes on so that one run
//! reports every error of a file.

use kdl::{KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;

use crate::diag::{Errors, InputError, Source, did_you_mean};
use crate::label::{Label, parse_label};

use super::model::{FileId, LabelRef, Loc, Pinned, Sha256};

/// A value with the span it was written at.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Spanned<T> {
    pub value: T,
    pub span: SourceSpan,
}

/// The file being read: where diagnostics point, and where errors are collected.
pub struct FileReader<'a> {
    pub file: FileId,
    pub source: &'a Source,
    /// The package of a rule file (`wheels/sci`), for `:name` labels; none in workspace.kdl.
    pub package: Option<&'a str>,
    pub errors: Errors,
}

fn type_name(v: &KdlValue) -> &'static str {
    match v {
        KdlValue::String(_) => "a string",
        KdlValue::Integer(_) => "an integer",
        KdlValue::Float(_) => "a number",
        KdlValue::Bool(_) => "a boolean",
        KdlValue::Null => "null",
    }
}

impl<'a> FileReader<'a> {
    pub fn loc(&self, span: SourceSpan) -> Loc {
        Loc {
            file: self.file,
            span,
        }
    }

    pub fn error(
        &mut self,
        code: &'static str,
        span: SourceSpan,
        message: String,
        label: &str,
        help: String,
    ) {
        // A rule read once per platform would report its shared mistakes once per platform.
        self.errors
            .push_unique(InputError::at(code, self.source, span, message, label).with_help(help));
    }

    /// Reports children of `node` that are not in `allowed`, suggesting the nearest name.
    pub fn check_children(&mut self, node: &KdlNode, allowed: &[&str]) {
        let what = node.name().value().to_string();
        for child in node.iter_children() {
            let name = child.name().value();
            if !allowed.contains(&name) {
                let help = match did_you_mean(name, allowed.iter().copied()) {
                    Some(near) => format!("Did you mean `{near}`?"),
                    None if allowed.is_empty() => format!("`{what}` takes no children"),
                    None => format!("`{what}` accepts: {}", list(allowed)),
                };
                self.error(
                    "unknown-field",
                    child.name().span(),
                    format!("Unknown field `{name}` in `{what}`"),
                    "not a field of this node",
                    help,
                );
            }
        }
    }

    /// Reports properties of `node` that are not in `allowed`, suggesting the nearest name.
    pub fn check_props(&mut self, node: &KdlNode, allowed: &[&str]) {
        let what = node.name().value().to_string();
        for entry in node.entries() {
            let Some(name) = entry.name() else { continue };
            let name_str = name.value();
            if !allowed.contains(&name_str) {
                let help = match did_you_mean(name_str, allowed.iter().copied()) {
                    Some(near) => format!("Did you mean `{near}`?"),
                    None if allowed.is_empty() => format!("`{what}` takes no properties"),
                    None => format!("`{what}` accepts the properties {}", list(allowed)),
                };
                self.error(
                    "unknown-property",
                    entry.span(),
                    format!("Unknown property `{name_str}` on `{what}`"),
                    "not a property of this node",
                    help,
                );
            }
        }
    }

    /// The node's positional arguments, all of which must be strings.
    pub fn string_args(&mut self, node: &KdlNode) -> Vec<Spanned<String>> {
        let mut out = Vec::new();
        for entry in node.entries().iter().filter(|e| e.name().is_none()) {
            if let Some(s) = self.entry_string(node, entry) {
                out.push(s);
            }
        }
        out
    }

    fn entry_string(&mut self, node: &KdlNode, entry: &KdlEntry) -> Option<Spanned<String>> {
        match entry.value() {
            KdlValue::String(s) => Some(Spanned {
                value: s.clone(),
                span: entry.span(),
            }),
            other => {
                let what = match entry.name() {
                    Some(n) => format!("`{}` on `{}`", n.value(), node.name().value()),
                    None => format!("`{}`", node.name().value()),
                };
                self.error(
                    "wrong-type",
                    entry.span(),
                    format!("{what} takes a string, not {}", type_name(other)),
                    "expected a string",
                    format!(
                        "Quote the value: `\"{}\"`",
                        entry.value().to_string().trim_matches('#')
                    ),
                );
                None
            }
        }
    }

    /// Exactly one positional string argument.
    pub fn one_arg(&mut self, node: &KdlNode) -> Option<Spanned<String>> {
        let args = self.string_args(node);
        let positional = node.entries().iter().filter(|e| e.name().is_none()).count();
        match positional {
            1 => args.into_iter().next(),
            0 => {
                self.error(
                    "missing-value",
                    node.name().span(),
                    format!("`{}` needs a value", node.name().value()),
                    "no value given",
                    format!("Write it as `{} \"VALUE\"`", node.name().value()),
                );
                None
            }
            _ => {
                let extra = node
                    .entries()
                    .iter()
                    .filter(|e| e.name().is_none())
                    .nth(1)
                    .map(kdl::KdlEntry::span);
                self.error(
                    "too-many-values",
                    extra.unwrap_or(node.span()),
                    format!("`{}` takes one value", node.name().value()),
                    "extra value",
                    "Remove the extra values".into(),
                );
                None
            }
        }
    }

    /// At least one positional string argument.
    pub fn some_args(&mut self, node: &KdlNode) -> Vec<Spanned<String>> {
        let args = self.string_args(node);
        if node.entries().iter().all(|e| e.name().is_some()) {
            self.error(
                "missing-value",
                node.name().span(),
                format!("`{}` needs at least one value", node.name().value()),
                "no value given",
                format!("Write it as `{} \"VALUE\" …`", node.name().value()),
            );
        }
        args
    }

    /// A string property, if present.
    pub fn prop(&mut self, node: &KdlNode, name: &str) -> Option<Spanned<String>> {
        let entry = node
            .entries()
            .iter()
            .rev()
            .find(|e| e.name().is_some_and(|n| n.value() == name))?;
        self.entry_string(node, entry)
    }

    /// A node's single boolean argument: `strip #true`.
    pub fn bool_arg(&mut self, node: &KdlNode) -> Option<bool> {
        match node.entries() {
            [e] if e.name().is_none() => self.entry_bool(node, e),
            _ => {
                let name = node.name().value();
                self.error(
                    "wrong-type",
                    node.span(),
                    format!("`{name}` takes `#true` or `#false`"),
                    "expected one boolean",
                    format!("Write `{name} #true`"),
                );
                None
            }
        }
    }

    /// A boolean property, if present: `strip=#true`.
    pub fn bool_prop(&mut self, node: &KdlNode, name: &str) -> Option<bool> {
        let entry = node
            .entries()
            .iter()
            .rev()
            .find(|e| e.name().is_some_and(|n| n.value() == name))?;
        self.entry_bool(node, entry)
    }

    fn entry_bool(&mut self, node: &KdlNode, entry: &KdlEntry) -> Option<bool> {
        match entry.value() {
            KdlValue::Bool(b) => Some(*b),
            other => {
                let what = match entry.name() {
                    Some(n) => format!("`{}` on `{}`", n.value(), node.name().value()),
                    None => format!("`{}`", node.name().value()),
                };
                let written = match entry.name() {
                    Some(n) => format!("{}=#true", n.value()),
                    None => format!("{} #true", node.name().value()),
                };
                self.error(
                    "wrong-type",
                    entry.span(),
                    format!("{what} takes a boolean, not {}", type_name(other)),
                    "expected `#true` or `#false`",
                    format!("KDL writes booleans with a `#`: `{written}`"),
                );
                None
            }
        }
    }

    /// A string property that must be present.
    pub fn required_prop(
        &mut self,
        node: &KdlNode,
        name: &str,
        example: &str,
    ) -> Option<Spanned<String>> {
        let has = node
            .entries()
            .iter()
            .any(|e| e.name().is_some_and(|n| n.value() == name));
        if !has {
            self.error(
                "missing-field",
                node.name().span(),
                format!("`{}` needs the property `{name}`", node.name().value()),
                &format!("`{name}` missing"),
                format!("Add `{name}={example}`"),
            );
            return None;
        }
        self.prop(node, name)
    }

    /// Reports a field that may appear once but appears again.
    pub fn unique_children(&mut self, node: &KdlNode, names: &[&str]) {
        for name in names {
            let mut seen = node.iter_children().filter(|c| c.name().value() == *name);
            let _first = seen.next();
            for again in seen {
                self.error(
                    "duplicate-field",
                    again.name().span(),
                    format!(
                        "`{name}` is given more than once in `{}`",
                        node.name().value()
                    ),
                    "given again here",
                    format!("Keep one `{name}`"),
                );
            }
        }
    }

    /// The first child named `name`.
    pub fn child<'n>(&self, node: &'n KdlNode, name: &str) -> Option<&'n KdlNode> {
        node.iter_children().find(|c| c.name().value() == name)
    }

    /// A required child: reports its absence at the node's name.
    pub fn required_child<'n>(
        &mut self,
        node: &'n KdlNode,
        name: &str,
        example: &str,
    ) -> Option<&'n KdlNode> {
        let found = self.child(node, name);
        if found.is_none() {
            self.error(
                "missing-field",
                node.name().span(),
                format!(
                    "`{}` `{}` needs a `{name}`",
                    node.name().value(),
                    rule_name(node)
                ),
                &format!("`{name}` missing"),
                format!("Add a child `{example}`"),
            );
        }
        found
    }

    pub fn children<'n>(
        &self,
        node: &'n KdlNode,
        name: &'n str,
    ) -> impl Iterator<Item = &'n KdlNode> + 'n {
        node.iter_children()
            .filter(move |c| c.name().value() == name)
    }

    /// A label, resolved against the current package.
    pub fn label(&mut self, text: &Spanned<String>, follow_matrix: bool) -> Option<LabelRef> {
        match parse_label(&text.value, self.package) {
            Ok(label) => Some(LabelRef {
                label,
                at: self.loc(text.span),
                follow_matrix,
            }),
            Err(e) => {
                self.error(
                    "bad-label",
                    text.span,
                    e.message,
                    "not a valid label",
                    e.help,
                );
                None
            }
        }
    }

    pub fn labels(&mut self, node: &KdlNode) -> Vec<LabelRef> {
        self.some_args(node)
            .iter()
            .filter_map(|t| self.label(t, true))
            .collect()
    }

    /// A sha256 in hex (64 characters).
    pub fn sha256(&mut self, text: &Spanned<String>) -> Option<Sha256> {
        let v = &text.value;
        if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
            Some(Sha256(v.to_ascii_lowercase()))
        } else {
            let why = if v.len() == 64 {
                "it has characters that are not hexadecimal".into()
            } else {
                format!("it has {} characters, a sha256 has 64", v.chars().count())
            };
            self.error(
                "bad-digest",
                text.span,
                format!("`{v}` is not a sha256: {why}"),
                "invalid sha256",
                "Write the file's sha256 as 64 hex digits, as `sha256sum FILE` prints it".into(),
            );
            None
        }
    }

    /// An OCI digest, `sha256:` and 64 hex digits.
    pub fn oci_digest(&mut self, text: &Spanned<String>) -> Option<String> {
        match text.value.strip_prefix("sha256:") {
            Some(hex)
                if hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) =>
            {
                Some(text.value.clone())
            }
            _ => {
                self.error(
                    "bad-digest",
                    text.span,
                    format!("`{}` is not an OCI digest", text.value),
                    "invalid digest",
                    "Write `sha256:` followed by 64 lowercase hex digits, as `skopeo inspect` prints it".into(),
                );
                None
            }
        }
    }

    /// A PEP 440 version.
    pub fn version(&mut self, text: &Spanned<String>) -> Option<uv_pep440::Version> {
        match text.value.parse::<uv_pep440::Version>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(
                    "bad-version",
                    text.span,
                    format!("`{}` is not a valid version: {e}", text.value),
                    "invalid version (PEP 440)",
                    "Versions follow PEP 440, such as `3.12` or `2.1.3`".into(),
                );
                None
            }
        }
    }

    /// A requirement pinned with `==` to one version (PEP 508), with the sha256 of its wheel:
    /// `frontend "build==1.2.2.post1" sha256="…"`.
    pub fn pinned(&mut self, node: &KdlNode) -> Option<Pinned> {
        self.check_props(node, &["sha256"]);
        self.check_children(node, &[]);
        let text = self.one_arg(node);
        let sha = self
            .required_prop(node, "sha256", "\"…\"")
            .and_then(|s| self.sha256(&s));
        let text = text?;
        let requirement = match text.value.parse::<uv_pep508::Requirement>() {
            Ok(r) => r,
            Err(e) => {
                let msg = e.message.to_string();
                self.error(
                    "bad-requirement",
                    text.span,
                    format!("`{}` is not a valid requirement: {msg}", text.value),
                    "invalid requirement (PEP 508)",
                    "Write a pinned requirement such as `setuptools==75.8.0`".into(),
                );
                return None;
            }
        };
        let version = match &requirement.version_or_url {
            Some(uv_pep508::VersionOrUrl::VersionSpecifier(specs)) => {
                let mut it = specs.iter();
                match (it.next(), it.next()) {
                    (Some(spec), None) if *spec.operator() == uv_pep440::Operator::Equal => {
                        Some(spec.version().to_string())
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let Some(version) = version else {
            self.error(
                "unpinned-requirement",
                text.span,
                format!("`{}` is not pinned to one version", text.value),
                "needs `==VERSION`",
                format!(
                    "Pin it exactly, such as `{}==1.0`, so that its wheel's sha256 is known",
                    requirement.name
                ),
            );
            return None;
        };
        Some(Pinned {
            name: requirement.name.to_string(),
            version,
            sha256: sha?,
        })
    }

    /// Each `env "KEY" "VALUE"` child of `node`.
    pub fn env(&mut self, node: &KdlNode) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        for child in self.children(node, "env").collect::<Vec<_>>() {
            self.check_props(child, &[]);
            self.check_children(child, &[]);
            let args = self.string_args(child);
            match args.as_slice() {
                [k, v] => {
                    let valid = !k.value.is_empty()
                        && k.value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        && !k.value.as_bytes()[0].is_ascii_digit();
                    if !valid {
                        self.error(
                            "bad-env",
                            k.span,
                            format!("`{}` is not a valid environment variable name", k.value),
                            "invalid name",
                            "Use letters, digits and `_`, not starting with a digit".into(),
                        );
                    } else if out.insert(k.value.clone(), v.value.clone()).is_some() {
                        self.error(
                            "duplicate-field",
                            k.span,
                            format!("`env \"{}\"` is given more than once", k.value),
                            "given again here",
                            "Keep one value per variable".into(),
                        );
                    }
                }
                _ => self.error(
                    "bad-env",
                    child.span(),
                    "`env` takes a name and a value".into(),
                    "expected two strings",
                    "Write it as `env \"NAME\" \"VALUE\"`".into(),
                ),
            }
        }
        out
    }
}

/// The first argument of a rule node, its name, or `?` where it has none.
pub fn rule_name(node: &KdlNode) -> String {
    node.entries()
        .iter()
        .find(|e| e.name().is_none())
        .and_then(|e| e.value().as_string())
        .unwrap_or("?")
        .to_string()
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A label with a made-up location, for targets generated from a label already checked.
pub fn relabel(r: &LabelRef, label: Label) -> LabelRef {
    LabelRef {
        label,
        at: r.at,
        follow_matrix: false,
    }
}
