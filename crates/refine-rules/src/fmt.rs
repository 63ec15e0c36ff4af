//! Canonical formatting of KDL rule files (`refine fmt`): four-space indentation, one node
//! per line, comments kept. Formatting is idempotent.

use kdl::{FormatConfig, KdlDocument};

use crate::diag::{Errors, Source};
use crate::rules::parse_kdl_formatted;

/// Before kdl's autoformat: keep each value as written (`"numpy"` stays quoted) and remember
/// end-of-line comments, which autoformat would drop with the node's terminator.
fn prepare(doc: &mut KdlDocument) -> Vec<(bool, Option<String>)> {
    let mut comments = Vec::new();
    for (i, node) in doc.nodes_mut().iter_mut().enumerate() {
        // A blank line before a node is kept (one at most): it separates groups of rules.
        let blank = i > 0
            && node.format().is_some_and(|f| {
                let lead = f.leading.trim_start_matches([' ', '\t']);
                lead.starts_with('\n') || lead.starts_with("\r\n")
            });
        for entry in node.entries_mut() {
            entry.keep_format();
        }
        let comment = node.format().and_then(|f| {
            let t = f.terminator.trim();
            t.starts_with("//").then(|| t.to_string())
        });
        comments.push((blank, comment));
        if let Some(children) = node.children_mut() {
            comments.extend(prepare(children));
        }
    }
    comments
}

/// After autoformat: one space before each entry (comments between entries kept), and the
/// end-of-line comments back in place.
fn finish(
    doc: &mut KdlDocument,
    comments: &mut std::vec::IntoIter<(bool, Option<String>)>,
    level: usize,
) {
    for node in doc.nodes_mut() {
        let (blank, comment) = comments.next().unwrap_or_default();
        for entry in node.entries_mut() {
            if let Some(f) = entry.format_mut() {
                let kept = f.leading.trim();
                f.leading = if kept.is_empty() {
                    " ".into()
                } else {
                    format!(" {kept} ")
                };
            }
        }
        if let Some(f) = node.format_mut() {
            if let Some(comment) = comment {
                f.terminator = format!(" {comment}\n");
            }
            if blank {
                f.leading.insert(0, '\n');
            }
        }
        if let Some(children) = node.children_mut() {
            finish(children, comments, level + 1);
            // A block holding only comments: kdl's autoformat leaves them unindented.
            if children.nodes().is_empty()
                && let Some(f) = children.format_mut()
            {
                let inner = "    ".repeat(level + 1);
                let lines: String = f
                    .leading
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| format!("{inner}{l}\n"))
                    .collect();
                f.leading = format!("\n{lines}");
                f.trailing = "    ".repeat(level);
            }
        }
    }
}

/// The canonical form of a KDL file's text.
pub fn format_kdl(source: &Source) -> Result<String, Errors> {
    let mut doc = parse_kdl_formatted(source)?;
    let comments = prepare(&mut doc);
    doc.autoformat_config(&FormatConfig::default());
    finish(&mut doc, &mut comments.into_iter(), 0);
    let mut text = doc.to_string();
    // One trailing newline, no trailing spaces: what editors and `git diff` expect.
    let mut lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    while lines.first().is_some_and(|l| l.is_empty()) {
        lines.remove(0);
    }
    text = lines.join("\n");
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(text: &str) -> String {
        format_kdl(&Source::new("t.kdl", text)).unwrap()
    }

    #[test]
    fn keeps_comments_and_is_idempotent() {
        let messy = "store {\n// only a comment\n   }\n\n\n// the numpy rule\nwheel   \"numpy\"{\n  source pypi=\"numpy\"   version=\"2.1.3\" sha256=\"aa\" // pinned\n      python \"3.11\" \"3.12\"\n/* block */ runtime \"//runtimes:cpython\"\n}\n\n\n";
        let once = fmt(messy);
        assert!(once.contains("// the numpy rule"), "{once}");
        assert!(once.contains("// pinned"), "{once}");
        assert!(once.contains("/* block */"), "{once}");
        assert_eq!(fmt(&once), once, "formatting is idempotent");
        insta::assert_snapshot!(once);
    }
}
