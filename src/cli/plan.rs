//! `refine plan PATTERN...`: each target's status (cached, build, pending), key and digest.

use std::io::Write;

use refine_engine::graph::TargetGraph;
use refine_engine::ops;
use refine_engine::plan::{Plan, PlanNode, Status};
use refine_engine::session::{RemoteNeed, SessionOptions, Targets};

use super::Failure;
use super::common::{finish_output, open_session};

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub enum PlanFormat {
    /// A table, one target per line.
    #[default]
    Text,
    /// A JSON list of objects with `label`, `kind`, `status`, `key`, `digest`, `waits_on`,
    /// `deps` (the DAG's edges) and `inputs` (the key's fields).
    Json,
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Statuses: `cached` (the key is in the local store), `remote` (cached in the remote store \
only: pulled when needed), `build` (every input is known and the key \
is absent), `pending` (waits on a dependency that must be built first, so its key is not known yet)."
)]
pub struct PlanArgs {
    /// Target patterns, such as `//wheels:pyyaml-repaired-py311` or `//wheels/...`.
    #[arg(required = true)]
    pub patterns: Vec<String>,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: PlanFormat,
}

pub fn run(options: &SessionOptions, args: PlanArgs) -> Result<(), Failure> {
    let session = open_session(
        options,
        Targets::Patterns(&args.patterns),
        RemoteNeed::IfConfigured,
    )?;
    let plan = session.plan(session.roots())?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let result = match args.output {
        PlanFormat::Json => write_json(&mut out, session.graph(), &plan),
        PlanFormat::Text => write_text(&mut out, session.graph(), &plan),
    };
    finish_output(result.and_then(|()| out.flush()))
}

fn write_json(out: &mut impl Write, graph: &TargetGraph, plan: &Plan) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &ops::plan::planned_nodes(graph, plan))?;
    writeln!(out)
}

fn write_text(out: &mut impl Write, graph: &TargetGraph, plan: &Plan) -> std::io::Result<()> {
    let width = plan
        .nodes
        .iter()
        .map(|n| graph.target(n.id).label.to_string().len())
        .max()
        .unwrap_or(5);
    writeln!(
        out,
        "{:<8} {:<8} {:<width$} {:<12} DIGEST",
        "STATUS", "KIND", "LABEL", "KEY"
    )?;
    for n in &plan.nodes {
        let t = graph.target(n.id);
        let key = n
            .key
            .map_or_else(|| "-".into(), |k| k.hex()[..12].to_string());
        let status = if n.remote {
            "remote".to_string()
        } else {
            n.status.to_string()
        };
        writeln!(
            out,
            "{:<8} {:<8} {:<width$} {key:<12} {}",
            status,
            t.kind().to_string(),
            t.label.to_string(),
            digest_column(graph, n)
        )?;
    }
    let count = |s: Status| plan.nodes.iter().filter(|n| n.status == s).count();
    let remote = plan.nodes.iter().filter(|n| n.remote).count();
    writeln!(
        out,
        "{} targets: {} cached{}, {} to build, {} pending",
        plan.nodes.len(),
        count(Status::Cached),
        if remote > 0 {
            format!(" ({remote} in the remote store)")
        } else {
            String::new()
        },
        count(Status::Build),
        count(Status::Pending)
    )
}

/// The artifact's digest, or for a pending target what it waits on.
fn digest_column(graph: &TargetGraph, n: &PlanNode) -> String {
    match (&n.digest, n.status) {
        (Some(d), _) => d.to_string(),
        (None, Status::Pending) => {
            let waits: Vec<String> = n
                .waits_on
                .iter()
                .map(|&d| graph.target(d).label.to_string())
                .collect();
            format!("- (waits on {})", waits.join(", "))
        }
        (None, _) => "-".into(),
    }
}
