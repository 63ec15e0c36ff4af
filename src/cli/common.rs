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
