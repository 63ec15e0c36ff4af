//! Labels (`//pkg:name`) and target patterns (`//pkg:all`, `//pkg/...`, `//...`).
//!
//! A label names a target: `//wheels/sci:numpy-py312` is the target `numpy-py312` declared in
//! `rules/wheels/sci.kdl`. Inside a rule file, `:name` names a target of the same file.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A target's name: its package (the rule file's path under `rules/`, without `.kdl`) and
/// its name in that file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Label {
    pub package: String,
    pub name: String,
}

impl From<Label> for String {
    fn from(label: Label) -> String {
        label.to_string()
    }
}

impl TryFrom<String> for Label {
    type Error = String;
    fn try_from(text: String) -> Result<Label, String> {
        parse_label(&text, None).map_err(|e| e.message)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Piece by piece: labels are spelled out for every node of every build.
        f.write_str("//")?;
        f.write_str(&self.package)?;
        f.write_str(":")?;
        f.write_str(&self.name)
    }
}

/// Why a label or pattern did not parse; the message says how to write it instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelError {
    pub message: String,
    pub help: String,
}

/// A set of targets named on the command line or in a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// `//pkg:name`
    Target(Label),
    /// `//pkg:all`: every target of one rule file.
    Package(String),
    /// `//pkg/...` (every package under `pkg`) or `//...` (everything; `pkg` is empty).
    Recursive(String),
}

impl Pattern {
    pub fn matches(&self, label: &Label) -> bool {
        match self {
            Pattern::Target(l) => l == label,
            Pattern::Package(p) => &label.package == p,
            Pattern::Recursive(p) => {
                p.is_empty()
                    || label.package == *p
                    || (label.package.starts_with(p.as_str())
                        && label.package.as_bytes().get(p.len()) == Some(&b'/'))
            }
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Target(l) => write!(f, "{l}"),
            Pattern::Package(p) => write!(f, "//{p}:all"),
            Pattern::Recursive(p) if p.is_empty() => write!(f, "//..."),
            Pattern::Recursive(p) => write!(f, "//{p}/..."),
        }
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Whether `s` can be a target's name: letters, digits and `_ - . +`, not starting with `.`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
}

fn check_package(package: &str, text: &str) -> Result<(), LabelError> {
    if package.split('/').all(valid_segment) {
        Ok(())
    } else {
        Err(LabelError {
            message: format!("`{text}` has an invalid package path `{package}`"),
            help: "Package paths are folder names under `rules/` (letters, digits, `_`, `-`, `.`) separated by `/`".into(),
        })
    }
}

fn check_name(name: &str, text: &str) -> Result<(), LabelError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(LabelError {
            message: format!("`{text}` has an invalid target name `{name}`"),
            help: "Target names use letters, digits, `_`, `-`, `.` and `+`".into(),
        })
    }
}

/// Parses a label. `current` is the package of the file the label is written in, which
/// allows the short form `:name`; on the command line there is none.
pub fn parse_label(text: &str, current: Option<&str>) -> Result<Label, LabelError> {
    if let Some(name) = text.strip_prefix(':') {
        let Some(package) = current else {
            return Err(LabelError {
                message: format!("`{text}` is relative, but there is no current package"),
                help: format!("Write the full label, such as `//wheels{text}`"),
            });
        };
        check_name(name, text)?;
        return Ok(Label {
            package: package.to_string(),
            name: name.to_string(),
        });
    }
    let Some(rest) = text.strip_prefix("//") else {
        return Err(LabelError {
            message: format!("`{text}` is not a label"),
            help: "Labels look like `//wheels:numpy-py312`, or `:numpy-py312` within the same file"
                .into(),
        });
    };
    let Some((package, name)) = rest.split_once(':') else {
        return Err(LabelError {
            message: format!("`{text}` has no target name"),
            help: format!(
                "Name a target after a colon, as in `//{rest}:NAME`, or use `//{rest}:all`"
            ),
        });
    };
    check_package(package, text)?;
    check_name(name, text)?;
    Ok(Label {
        package: package.to_string(),
        name: name.to_string(),
    })
}

/// Parses a target pattern as given on the command line or in a query.
pub fn parse_pattern(text: &str) -> Result<Pattern, LabelError> {
    if text == "//..." {
        return Ok(Pattern::Recursive(String::new()));
    }
    if let Some(package) = text.strip_prefix("//").and_then(|r| r.strip_suffix("/...")) {
        check_package(package, text)?;
        return Ok(Pattern::Recursive(package.to_string()));
    }
    if let Some(package) = text.strip_prefix("//").and_then(|r| r.strip_suffix(":all")) {
        check_package(package, text)?;
        return Ok(Pattern::Package(package.to_string()));
    }
    if text.starts_with("//") || text.starts_with(':') {
        return parse_label(text, None).map(Pattern::Target);
    }
    Err(LabelError {
        message: format!("`{text}` is not a target pattern"),
        help:
            "Patterns look like `//wheels:numpy-py312`, `//wheels:all`, `//wheels/...` or `//...`"
                .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        let l = parse_label("//wheels/sci:numpy-py312", None).unwrap();
        assert_eq!(l.package, "wheels/sci");
        assert_eq!(l.name, "numpy-py312");
        assert_eq!(l.to_string(), "//wheels/sci:numpy-py312");
        assert_eq!(parse_label(":x", Some("p")).unwrap().to_string(), "//p:x");
    }

    #[test]
    fn bad_labels_say_why() {
        assert!(parse_label("wheels:numpy", None).is_err());
        assert!(
            parse_label("//wheels", None)
                .unwrap_err()
                .help
                .contains("//wheels:all")
        );
        assert!(parse_label("//wheels/../x:y", None).is_err());
        assert!(parse_label("//wheels:", None).is_err());
        assert!(parse_label(":x", None).is_err());
    }

    #[test]
    fn patterns_match() {
        let numpy = parse_label("//wheels/sci:numpy", None).unwrap();
        assert!(parse_pattern("//...").unwrap().matches(&numpy));
        assert!(parse_pattern("//wheels/...").unwrap().matches(&numpy));
        assert!(parse_pattern("//wheels/sci/...").unwrap().matches(&numpy));
        assert!(!parse_pattern("//wheel/...").unwrap().matches(&numpy));
        assert!(parse_pattern("//wheels/sci:all").unwrap().matches(&numpy));
        assert!(!parse_pattern("//wheels:all").unwrap().matches(&numpy));
        assert!(parse_pattern("//wheels/sci:numpy").unwrap().matches(&numpy));
        assert!(parse_pattern("numpy").is_err());
    }
}
