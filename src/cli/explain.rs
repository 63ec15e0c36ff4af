//! `refine explain LABEL`: why a target is not cached, field by field.

use std::fmt::Write as _;

use refine_engine::plan::{Explanation, FieldDiff, explain};
use refine_engine::session::{RemoteNeed, SessionError, SessionOptions, Targets};

use super::Failure;
use super::common::open_session;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "For a target that waits on others, explains each dependency that must be built.\n\
Fields holding a dependency's artifact name that dependency: run `refine explain` on it to go further."
)]
pub struct ExplainArgs {
    /// The target, such as `//wheels:numpy-py312`.
    pub label: String,
    /// Print the explanation as JSON.
    #[arg(long)]
    pub json: bool,
}

fn short(v: &str) -> String {
    match v.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 16 => format!("sha256:{}…", &hex[..12]),
        _ => v.to_string(),
    }
}

fn or_none(v: Option<&str>) -> String {
    v.map_or_else(|| "(none)".into(), short)
}

fn render(e: &Explanation, out: &mut String, indent: &str) {
    match e {
        Explanation::Cached { label, key, digest } => {
            let _ = writeln!(
                out,
                "{indent}`{label}` is cached: key {key}, artifact {digest}."
            );
        }
        Explanation::Pending { label, must_build } => {
            let _ = writeln!(
                out,
                "{indent}`{label}` waits on dependencies that must be built first, so its key is not known yet."
            );
            for m in must_build {
                let _ = writeln!(out);
                render(m, out, indent);
            }
        }
        Explanation::Build {
            label,
            key,
            fields,
            previous: None,
            ..
        } => {
            let _ = writeln!(
                out,
                "{indent}`{label}` must be built: this store has never held an artifact for it."
            );
            let _ = writeln!(out, "{indent}key {key}");
            for (f, v) in fields {
                let _ = writeln!(out, "{indent}  {f:<20} {}", short(v));
            }
        }
        Explanation::Build {
            label,
            key,
            fields,
            previous: Some(previous),
            diffs,
        } => {
            let previous = (previous.key.as_str(), previous.digest.as_str());
            render_rebuild(label, key, fields, previous, diffs, out, indent);
        }
    }
}

/// A target built before (`previous`: that build's key and artifact) under other key fields:
/// the fields that differ, then all of them, starred where they differ (fields that are gone
/// included), so that the stars match the count.
fn render_rebuild(
    label: &str,
    key: &str,
    fields: &[(String, String)],
    (previous_key, previous_digest): (&str, &str),
    diffs: &[FieldDiff],
    out: &mut String,
    indent: &str,
) {
    let previous_key = &previous_key[..12.min(previous_key.len())];
    if diffs.is_empty() {
        let _ = writeln!(
            out,
            "{indent}`{label}` must be built: its key {} equals no stored key, yet its fields match the last build ({previous_key}). The key encoding changed.",
            &key[..12.min(key.len())],
        );
        return;
    }
    let _ = writeln!(
        out,
        "{indent}`{label}` must be built: {} of its key fields differ from the last build (key {previous_key}…, artifact {}):",
        diffs.len(),
        short(previous_digest)
    );
    for d in diffs {
        let why = d
            .dependency
            .as_ref()
            .map(|l| format!("  ← the artifact of `{l}` changed"))
            .unwrap_or_default();
        let (before, after) = (or_none(d.before.as_deref()), or_none(d.after.as_deref()));
        let _ = writeln!(out, "{indent}  {}: {before} → {after}{why}", d.field);
    }
    let _ = writeln!(out, "{indent}All key fields, last build → now (* differs):");
    for (f, v) in fields {
        match diffs.iter().find(|d| &d.field == f) {
            Some(d) => {
                let before = or_none(d.before.as_deref());
                let _ = writeln!(out, "{indent}* {f:<20} {before} → {}", short(v));
            }
            None => {
                let _ = writeln!(out, "{indent}  {f:<20} {}", short(v));
            }
        }
    }
    for d in diffs.iter().filter(|d| d.after.is_none()) {
        let before = or_none(d.before.as_deref());
        let _ = writeln!(out, "{indent}* {:<20} {before} → (none)", d.field);
    }
}

pub fn run(options: &SessionOptions, args: ExplainArgs) -> Result<(), Failure> {
    let targets = Targets::One {
        pattern: &args.label,
        command: "explain",
    };
    let session = open_session(options, targets, RemoteNeed::IfConfigured)?;
    let &[id] = session.roots() else {
        return Err(SessionError::NotOneTarget {
            pattern: args.label,
            count: session.roots().len(),
            command: "explain",
        }
        .into());
    };
    let explanation = explain(session.graph(), id, session.store(), session.remote_store())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&explanation).unwrap_or_default()
        );
    } else {
        let mut out = String::new();
        render(&explanation, &mut out, "");
        print!("{out}");
    }
    Ok(())
}
