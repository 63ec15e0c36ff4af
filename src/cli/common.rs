//! What every subcommand shares: how failures map to exit codes and how they are rendered.

use std::process::ExitCode;

/// Why a command did not succeed; the variant picks the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad input or usage (rule files, arguments, a corrupt store): exit code 2.
    BadInput(miette::Report),
    /// A build, an action or a check failed: exit code 1.
    Failed(miette::Report),
    /// The message was already printed; exit with this code.
    Exit(u8),
}

impl Failure {
    pub fn bad_input(report: impl Into<miette::Report>) -> Self {
        Failure::BadInput(report.into())
    }
    pub fn failed(report: impl Into<miette::Report>) -> Self {
        Failure::Failed(report.into())
    }
}

/// Renders a failure on stderr and returns the exit code it stands for.
pub fn report(failure: Failure) -> ExitCode {
    match failure {
        Failure::BadInput(report) => {
            eprintln!("{report:?}");
            ExitCode::from(2)
        }
        Failure::Failed(report) => {
            eprintln!("{report:?}");
            ExitCode::from(1)
        }
        Failure::Exit(code) => ExitCode::from(code),
    }
}

/// Finds the workspace (from `-C DIR` or the current folder), loads it and builds its graph.
pub fn load_graph(
    dir: Option<&std::path::Path>,
) -> Result<refine_engine::graph::TargetGraph, Failure> {
    let start = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir().map_err(|e| {
            Failure::bad_input(miette::miette!("Cannot read the current folder: {e}"))
        })?,
    };
    let root = refine_engine::rules::find_root(&start).map_err(Failure::bad_input)?;
    let workspace = refine_engine::rules::Workspace::load(&root).map_err(Failure::bad_input)?;
    refine_engine::graph::TargetGraph::build(workspace).map_err(Failure::bad_input)
}

/// Opens the local store: `--store` / `REFINE_STORE`, else `store { local … }` in
/// workspace.kdl (relative to the workspace root), else the user's cache folder.
pub fn open_workspace_store(
    graph: &refine_engine::graph::TargetGraph,
    flag: Option<&std::path::Path>,
) -> Result<refine_engine::store::LocalStore, Failure> {
    let configured = graph
        .workspace
        .config
        .store
        .local
        .as_ref()
        .map(|p| graph.workspace.root.join(p));
    let path = refine_engine::store::LocalStore::resolve_path(flag, configured.as_deref())
        .map_err(super::store::store_failure)?;
    refine_engine::store::LocalStore::open(path).map_err(super::store::store_failure)
}

/// The global remote-store options: `--remote URL` (or `REFINE_REMOTE`) and
/// `--remote-optional`.
#[derive(Clone, Debug, Default)]
pub struct RemoteFlags {
    pub url: Option<String>,
    pub optional: bool,
}

/// Connects to the remote store: `--remote` / `REFINE_REMOTE`, else `store { remote … }` in
/// workspace.kdl, else none. A registry that does not answer is an error naming it, or, with
/// `--remote-optional`, a warning after which refine works from the local store alone.
pub fn open_remote(
    graph: &refine_engine::graph::TargetGraph,
    flags: &RemoteFlags,
) -> Result<Option<std::sync::Arc<refine_engine::remote::OciRemote>>, Failure> {
    use refine_engine::remote::{OciRemote, RemoteUrl, oci::RemoteOptions};
    let Some(url) = flags
        .url
        .clone()
        .filter(|u| !u.is_empty())
        .or_else(|| graph.workspace.config.store.remote.clone())
    else {
        return Ok(None);
    };
    let url = RemoteUrl::parse(&url).map_err(Failure::bad_input)?;
    let remote = OciRemote::new(
        url,
        RemoteOptions {
            optional: flags.optional,
        },
    )
    .map_err(Failure::bad_input)?;
    match remote.ping() {
        Ok(()) => Ok(Some(std::sync::Arc::new(remote))),
        Err(e) if flags.optional => {
            eprintln!("warning: {e}; continuing from the local store alone (`--remote-optional`)");
            Ok(None)
        }
        Err(e) => Err(Failure::failed(e)),
    }
}
