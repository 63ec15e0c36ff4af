//! `refine explain LABEL`: why a target is not cached, field by field.

use std::fmt::Write as _;
use std::path::Path;

use refine_engine::plan::{Explanation, explain};

use super::Failure;
use super::common::{RemoteFlags, load_graph, open_remote, open_workspace_store};

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
            previous,
            diffs,
        } => {
            let Some(previous) = previous else {
                let _ = writeln!(
                    out,
                    "{indent}`{label}` must be built: this store has never held an artifact for it."
                );
                let _ = writeln!(out, "{indent}key {key}");
                for (f, v) in fields {
                    let _ = writeln!(out, "{indent}  {f:<20} {}", short(v));
                }
                return;
            };
            if diffs.is_empty() {
                let _ = writeln!(
                    out,
                    "{indent}`{label}` must be built: its key {} equals no stored key, yet its fields match the last build ({}). The key encoding changed.",
                    &key[..12],
                    &previous.key[..12.min(previous.key.len())]
                );
                return;
            }
            let _ = writeln!(
                out,
                "{indent}`{label}` must be built: {} of its key fields differ from the last build (key {}…, artifact {}):",
                diffs.len(),
                &previous.key[..12.min(previous.key.len())],
                short(&previous.digest)
            );
            for d in diffs {
                let before = d
                    .before
                    .as_deref()
                    .map(short)
                    .unwrap_or_else(|| "(none)".into());
                let after = d
                    .after
                    .as_deref()
                    .map(short)
                    .unwrap_or_else(|| "(none)".into());
                let why = d
                    .dependency
                    .as_ref()
                    .map(|l| format!("  ← the artifact of `{l}` changed"))
                    .unwrap_or_default();
                let _ = writeln!(out, "{indent}  {}: {before} → {after}{why}", d.field);
            }
            let _ = writeln!(out, "{indent}All key fields, last build → now (* differs):");
            for (f, v) in fields {
                let diff = diffs.iter().find(|d| &d.field == f);
                match diff {
                    Some(d) => {
                        let before = d
                            .before
                            .as_deref()
                            .map(short)
                            .unwrap_or_else(|| "(none)".into());
                        let _ = writeln!(out, "{indent}* {f:<20} {before} → {}", short(v));
                    }
                    None => {
                        let _ = writeln!(out, "{indent}  {f:<20} {}", short(v));
                    }
                }
            }
            // Fields that are gone are starred too, so that the stars match the count.
            for d in diffs.iter().filter(|d| d.after.is_none()) {
                let before = d.before.as_deref().map(short).unwrap_or_default();
                let _ = writeln!(out, "{indent}* {:<20} {before} → (none)", d.field);
            }
        }
    }
}

pub fn run(
    dir: Option<&Path>,
    store_flag: Option<&Path>,
    remote: &RemoteFlags,
    args: ExplainArgs,
) -> Result<(), Failure> {
    let graph = load_graph(dir)?;
    let ids = refine_engine::query::resolve_patterns(&graph, std::slice::from_ref(&args.label))
        .map_err(Failure::bad_input)?;
    let [id] = ids.as_slice() else {
        return Err(Failure::bad_input(miette::miette!(
            help = "Name one target, such as `//wheels:numpy-py312`",
            "`{}` matches {} targets; `refine explain` takes one",
            args.label,
            ids.len()
        )));
    };
    let store = open_workspace_store(&graph, store_flag)?;
    let remote = open_remote(&graph, remote)?;
    let explanation = explain(
        &graph,
        *id,
        &store,
        remote
            .as_deref()
            .map(|r| r as &dyn refine_engine::exec::Remote),
    )
    .map_err(Failure::bad_input)?;
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
