//! `refine plan PATTERN...`: each target's status (cached, build, pending), key and digest.

use std::io::Write;
use std::path::Path;

use refine_engine::plan::{Status, plan};

use super::Failure;
use super::common::{RemoteFlags, load_graph, open_remote, open_workspace_store};

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub enum PlanFormat {
    /// A table, one target per line.
    #[default]
    Text,
    /// A JSON list of objects with `label`, `kind`, `status`, `key`, `digest` and `waits_on`.
    Json,
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Statuses: `cached` (the key is in the local store), `remote` (cached in the remote store \
only: pulled when needed), `build` (every input is known and the key \
is absent), `pending` (waits on a dependency that must be built first, so its key is not known yet)."
)]
pub struct PlanArgs {
    /// Target patterns, such as `//repairs:pyyaml-py311` or `//wheels/...`.
    #[arg(required = true)]
    pub patterns: Vec<String>,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: PlanFormat,
}

pub fn run(
    dir: Option<&Path>,
    store_flag: Option<&Path>,
    remote: &RemoteFlags,
    args: PlanArgs,
) -> Result<(), Failure> {
    let graph = load_graph(dir)?;
    let roots = refine_engine::query::resolve_patterns(&graph, &args.patterns)
        .map_err(Failure::bad_input)?;
    let store = open_workspace_store(&graph, store_flag)?;
    let remote = open_remote(&graph, remote)?;
    let plan = plan(
        &graph,
        &roots,
        &store,
        remote
            .as_deref()
            .map(|r| r as &dyn refine_engine::exec::Remote),
    )
    .map_err(|e| match e {
        refine_engine::plan::PlanError::Remote(r) => Failure::failed(r),
        e => Failure::bad_input(e),
    })?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let result = match args.output {
        PlanFormat::Json => {
            let list: Vec<serde_json::Value> = plan
                .nodes
                .iter()
                .map(|n| {
                    let t = graph.target(n.id);
                    serde_json::json!({
                        "label": t.label.to_string(),
                        "kind": t.kind(),
                        "status": n.status,
                        "where": (n.status == Status::Cached).then_some(if n.remote { "remote" } else { "local" }),
                        "key": n.key.map(|k| k.hex()),
                        "digest": n.digest.as_ref().map(|d| d.to_string()),
                        "content": n.content,
                        "waits_on": n.waits_on.iter().map(|&d| graph.target(d).label.to_string()).collect::<Vec<_>>(),
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &list)
                .map_err(std::io::Error::other)
                .and_then(|()| writeln!(out))
        }
        PlanFormat::Text => (|| {
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
                    .map(|k| k.hex()[..12].to_string())
                    .unwrap_or_else(|| "-".into());
                let digest = match (&n.digest, n.status) {
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
                };
                let status = if n.remote {
                    "remote".to_string()
                } else {
                    n.status.to_string()
                };
                writeln!(
                    out,
                    "{:<8} {:<8} {:<width$} {key:<12} {digest}",
                    status,
                    t.kind().to_string(),
                    t.label.to_string()
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
        })(),
    };
    match result.and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::failed(miette::miette!(
            "Cannot write the output: {e}"
        ))),
    }
}
