//! `refine pull PATTERN...`: copies the artifacts of targets (and of their dependencies) from
//! the remote store into the local one, every blob verified.

use std::path::Path;

use refine_engine::exec::Remote;
use refine_engine::plan::plan;

use super::Failure;
use super::common::{RemoteFlags, load_graph, open_workspace_store};
use super::push::require_remote;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  refine --remote oci://127.0.0.1:5000/ci pull //repairs:pyyaml-py311")]
pub struct PullArgs {
    /// Target patterns, such as `//repairs:pyyaml-py311` or `//...`.
    #[arg(required = true)]
    pub patterns: Vec<String>,
}

pub fn run(
    dir: Option<&Path>,
    store_flag: Option<&Path>,
    flags: &RemoteFlags,
    args: PullArgs,
) -> Result<(), Failure> {
    let graph = load_graph(dir)?;
    let roots = refine_engine::query::resolve_patterns(&graph, &args.patterns)
        .map_err(Failure::bad_input)?;
    let store = open_workspace_store(&graph, store_flag)?;
    let remote = require_remote(&graph, flags)?;
    let plan =
        plan(&graph, &roots, &store, Some(remote.as_ref() as &dyn Remote)).map_err(
            |e| match e {
                refine_engine::plan::PlanError::Remote(r) => Failure::failed(r),
                e => Failure::bad_input(e),
            },
        )?;
    let (mut pulled, mut local, mut absent) = (0, 0, 0);
    for n in &plan.nodes {
        let t = graph.target(n.id);
        match (&n.digest, &n.key) {
            (Some(d), Some(k)) if n.remote => {
                remote
                    .pull(&store, t.kind().as_str(), &k.hex(), d)
                    .map_err(Failure::failed)?;
                println!("pulled {} {d}", t.label);
                pulled += 1;
            }
            (Some(_), _) => local += 1,
            _ => absent += 1,
        }
    }
    store.sync_index().map_err(super::store::store_failure)?;
    eprintln!(
        "{pulled} pulled from {}, {local} already local, {absent} in neither store",
        remote.describe()
    );
    Ok(())
}
