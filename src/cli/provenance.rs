//! `refine provenance LABEL|DIGEST`: prints how an artifact was made, as an in-toto v1
//! statement with the SLSA provenance v1 predicate: from the local store, else from the
//! remote store's referrer.

use std::path::Path;

use refine_engine::exec::Remote;
use refine_engine::plan::plan;
use refine_engine::remote::intoto;
use refine_engine::store::{Digest, LocalStore};

use super::Failure;
use super::common::{RemoteFlags, load_graph, open_remote, open_workspace_store};
use super::store::store_failure;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  refine provenance //repairs:pyyaml-py311
  refine provenance sha256:4f0c…   (an artifact's manifest digest)")]
pub struct ProvenanceArgs {
    /// A target label, or an artifact's manifest digest (`sha256:…`).
    pub target: String,
}

/// The statement from the local store, if it holds the artifact and its provenance record.
fn local_statement(
    store: &LocalStore,
    digest: &Digest,
) -> Result<Option<serde_json::Value>, Failure> {
    if !store.has_blob(digest) {
        return Ok(None);
    }
    let manifest = store.read_manifest(digest).map_err(store_failure)?;
    let Some(record) = manifest
        .annotation("dev.refine.provenance")
        .and_then(|v| Digest::parse(v).ok())
        .filter(|d| store.has_blob(d))
    else {
        return Ok(None);
    };
    let bytes = store.read_blob(&record).map_err(store_failure)?;
    let record: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        Failure::failed(miette::miette!(
            help = "Run `refine store verify`",
            "The provenance record `{record}` is not JSON: {e}"
        ))
    })?;
    Ok(Some(intoto::statement(digest, &record)))
}

pub fn run(
    dir: Option<&Path>,
    store_flag: Option<&Path>,
    flags: &RemoteFlags,
    args: ProvenanceArgs,
) -> Result<(), Failure> {
    let graph = load_graph(dir)?;
    let store = open_workspace_store(&graph, store_flag)?;
    let remote = open_remote(&graph, flags)?;
    let (digest, kinds): (Digest, Vec<String>) = if args.target.starts_with("sha256:") {
        let d = Digest::parse(&args.target).map_err(Failure::bad_input)?;
        let kinds = refine_engine::store::Kind::ALL
            .iter()
            .map(|k| k.as_str().to_string())
            .collect();
        (d, kinds)
    } else {
        let ids =
            refine_engine::query::resolve_patterns(&graph, std::slice::from_ref(&args.target))
                .map_err(Failure::bad_input)?;
        let [id] = ids.as_slice() else {
            return Err(Failure::bad_input(miette::miette!(
                help = "Name one target, such as `//wheels:numpy-py312`",
                "`{}` matches {} targets; `refine provenance` takes one",
                args.target,
                ids.len()
            )));
        };
        let plan = plan(
            &graph,
            &[*id],
            &store,
            remote.as_deref().map(|r| r as &dyn Remote),
        )
        .map_err(Failure::bad_input)?;
        let node = plan.nodes.iter().find(|n| n.id == *id);
        let Some(d) = node.and_then(|n| n.digest) else {
            return Err(Failure::failed(miette::miette!(
                help = "Build it first with `refine build`, or name a remote store that has it",
                "`{}` has no artifact in any store, so it has no provenance",
                args.target
            )));
        };
        (d, vec![graph.target(*id).kind().to_string()])
    };
    let mut statement = local_statement(&store, &digest)?;
    if statement.is_none()
        && let Some(r) = &remote
    {
        for k in &kinds {
            if let Some(s) = r.provenance(k, &digest).map_err(Failure::failed)? {
                statement = Some(s);
                break;
            }
        }
    }
    let Some(statement) = statement else {
        return Err(Failure::failed(miette::miette!(
            help = "Artifacts built by refine carry provenance; pass `--remote` if it was built elsewhere",
            "No provenance found for `{digest}`"
        )));
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&statement).unwrap_or_default()
    );
    Ok(())
}
