//! `refine push PATTERN...`: copies the artifacts of targets (and of their dependencies) that
//! are in the local store to the remote store: blobs, provenance referrer, then the tagged
//! manifest.

use std::path::Path;

use refine_engine::exec::Remote;
use refine_engine::plan::{Status, plan};

use super::Failure;
use super::common::{RemoteFlags, load_graph, open_remote, open_workspace_store};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  refine --remote oci://127.0.0.1:5000/ci push //wheels/...

Targets not in the local store are left out (build them first).")]
pub struct PushArgs {
    /// Target patterns, such as `//repairs:pyyaml-py311` or `//...`.
    #[arg(required = true)]
    pub patterns: Vec<String>,
}

/// The remote, or an error saying how to name one.
pub fn require_remote(
    graph: &refine_engine::graph::TargetGraph,
    flags: &RemoteFlags,
) -> Result<std::sync::Arc<refine_engine::remote::OciRemote>, Failure> {
    let flags = RemoteFlags {
        optional: false,
        ..flags.clone()
    };
    open_remote(graph, &flags)?.ok_or_else(|| {
        Failure::bad_input(miette::miette!(
            help = "Pass `--remote oci://HOST:PORT/PREFIX`, set `REFINE_REMOTE`, or write `store { remote \"oci://…\" }` in workspace.kdl",
            "No remote store is configured"
        ))
    })
}

pub fn run(
    dir: Option<&Path>,
    store_flag: Option<&Path>,
    flags: &RemoteFlags,
    args: PushArgs,
) -> Result<(), Failure> {
    let graph = load_graph(dir)?;
    let roots = refine_engine::query::resolve_patterns(&graph, &args.patterns)
        .map_err(Failure::bad_input)?;
    let store = open_workspace_store(&graph, store_flag)?;
    let remote = require_remote(&graph, flags)?;
    let plan = plan(&graph, &roots, &store, None).map_err(Failure::bad_input)?;
    let (mut pushed, mut absent) = (0, 0);
    for n in &plan.nodes {
        let t = graph.target(n.id);
        match (n.status, &n.digest, &n.key) {
            (Status::Cached, Some(d), Some(k)) => {
                remote
                    .push(&store, t.kind().as_str(), &k.hex(), d)
                    .map_err(Failure::failed)?;
                println!("pushed {} {d}", t.label);
                pushed += 1;
            }
            _ => absent += 1,
        }
    }
    eprintln!(
        "{pushed} artifact(s) in {}; {absent} target(s) not in the local store",
        remote.describe()
    );
    Ok(())
}
