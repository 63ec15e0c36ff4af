//! A session: what every command that works on targets needs before it starts. It finds and
//! loads the workspace, resolves the target patterns, opens the local store and connects to
//! the remote store, in that order, so that a typo in a pattern is reported before a store is
//! touched or a registry is contacted.
//!
//! A session prints nothing: a remote store that did not answer under `--remote-optional` is
//! kept in [`Session::remote_skipped`] for the caller to warn about.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use refine_attest::{KeyError, PublicKey, SigningKey, TrustedKeys};
use refine_plan::{Plan, PlanError};
use refine_remote::oci::RemoteOptions;
use refine_remote::{OciRemote, Remote, RemoteError, RemoteUrl};
use refine_rules::diag::{Errors, InputError};
use refine_rules::graph::{TargetGraph, TargetId};
use refine_rules::rules::Workspace;
use refine_store::{LocalStore, StoreError};

/// The global options that choose the workspace and the stores (`-C`, `--store`,
/// `--remote`, `--remote-optional`).
#[derive(Clone, Debug, Default)]
pub struct SessionOptions {
    /// Run as if started in this folder (else the current folder).
    pub directory: Option<PathBuf>,
    /// The local store's folder, before `store { local … }` and the user's cache folder.
    pub store: Option<PathBuf>,
    /// The remote store's URL, before `store { remote … }`; an empty string is no URL.
    pub remote: Option<String>,
    /// A remote store that does not answer is left out instead of failing the command.
    pub remote_optional: bool,
}

/// Which targets a command works on.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    /// None yet (the command resolves its own argument later, e.g. a label or a digest).
    None,
    /// Every target these patterns match.
    Patterns(&'a [String]),
    /// Exactly one target, for `refine COMMAND LABEL`.
    One {
        pattern: &'a str,
        command: &'static str,
    },
}

/// How a command uses the remote store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteNeed {
    /// Not at all: no registry is contacted.
    Unused,
    /// If one is configured; `--remote-optional` lets a registry that does not answer be
    /// left out.
    IfConfigured,
    /// It must be configured and answer (`push`, `pull`), whatever `--remote-optional` says.
    Required,
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SessionError {
    /// The folder to start from could not be found.
    #[error("Cannot read the current folder: {error}")]
    CurrentDir { error: std::io::Error },
    /// No workspace above the folder.
    #[error(transparent)]
    #[diagnostic(transparent)]
    NoWorkspace(#[from] InputError),
    /// The rule files, the graph or a target pattern is wrong.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Rules(#[from] Errors),
    /// A pattern that must name one target names several (or none).
    #[error("`{pattern}` matches {count} targets; `refine {command}` takes one")]
    #[diagnostic(help("Name one target, such as `//wheels:numpy-py312`"))]
    NotOneTarget {
        pattern: String,
        count: usize,
        command: &'static str,
    },
    /// The local store cannot be chosen or opened.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    /// The remote store's URL or client configuration is wrong.
    #[error(transparent)]
    #[diagnostic(transparent)]
    RemoteConfig(RemoteError),
    /// The remote store did not answer.
    #[error(transparent)]
    #[diagnostic(transparent)]
    RemoteUnreachable(RemoteError),
    /// The command needs a remote store and none is configured.
    #[error("No remote store is configured")]
    #[diagnostic(help(
        "Pass `--remote oci://HOST:PORT/PREFIX`, set `REFINE_REMOTE`, or write `store {{ remote \"oci://…\" }}` in workspace.kdl"
    ))]
    NoRemote,
    /// The signing key in the environment cannot be used.
    #[error(transparent)]
    #[diagnostic(transparent)]
    SigningKey(#[from] KeyError),
    /// A trusted key of `workspace.kdl` is not a point on the curve.
    #[error("The trusted key `{name}` in workspace.kdl is not a valid Ed25519 public key")]
    #[diagnostic(help("Paste the line `refine key generate NAME` printed for it"))]
    BadTrustedKey { name: String },
}

/// The environment variable holding a signing key (PKCS#8 PEM) itself.
pub const SIGNING_KEY_ENV: &str = "REFINE_SIGNING_KEY";
/// The environment variable naming a signing key file.
pub const SIGNING_KEY_FILE_ENV: &str = "REFINE_SIGNING_KEY_FILE";

/// The signing key of this builder, from `REFINE_SIGNING_KEY` (the PEM text) or
/// `REFINE_SIGNING_KEY_FILE` (its path); none when neither is set.
pub fn signing_key() -> Result<Option<Arc<SigningKey>>, KeyError> {
    if let Some(pem) = std::env::var(SIGNING_KEY_ENV)
        .ok()
        .filter(|v| !v.is_empty())
    {
        return SigningKey::from_pem(&pem, &format!("in `{SIGNING_KEY_ENV}`"))
            .map(|k| Some(Arc::new(k)));
    }
    match std::env::var_os(SIGNING_KEY_FILE_ENV).filter(|v| !v.is_empty()) {
        Some(path) => SigningKey::from_file(Path::new(&path)).map(|k| Some(Arc::new(k))),
        None => Ok(None),
    }
}

/// The keys `workspace.kdl` trusts.
pub fn trusted_keys(graph: &TargetGraph) -> Result<TrustedKeys, SessionError> {
    let keys = graph
        .workspace
        .config
        .trust
        .iter()
        .map(|k| {
            PublicKey::parse(&k.public)
                .map(|p| (k.name.clone(), p))
                .map_err(|_| SessionError::BadTrustedKey {
                    name: k.name.clone(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TrustedKeys::new(keys))
}

/// The loaded workspace, the targets a command works on, and the stores it reads and writes.
pub struct Session {
    graph: TargetGraph,
    roots: Vec<TargetId>,
    whole_requests: Vec<String>,
    store: LocalStore,
    remote: Option<Arc<OciRemote>>,
    remote_optional: bool,
    remote_skipped: Option<RemoteError>,
    signer: Option<Arc<SigningKey>>,
    trust: TrustedKeys,
}

impl Session {
    /// Loads the workspace, resolves `targets`, opens the local store and, as `need` says,
    /// connects to the remote store.
    pub fn open(
        options: &SessionOptions,
        targets: Targets<'_>,
        need: RemoteNeed,
    ) -> Result<Session, SessionError> {
        let graph = load_graph(options)?;
        let (roots, whole_requests) = match targets {
            Targets::None => (Vec::new(), Vec::new()),
            Targets::Patterns(patterns) => {
                (resolve(&graph, patterns)?, requests_named(&graph, patterns))
            }
            Targets::One { pattern, command } => {
                (vec![resolve_one(&graph, pattern, command)?], Vec::new())
            }
        };
        Session::with_graph(options, graph, roots, whole_requests, need)
    }

    /// A session over a graph loaded otherwise (`refine request lock`'s probes), `roots`
    /// its targets.
    pub fn with_graph(
        options: &SessionOptions,
        graph: TargetGraph,
        roots: Vec<TargetId>,
        whole_requests: Vec<String>,
        need: RemoteNeed,
    ) -> Result<Session, SessionError> {
        let store = open_workspace_store(&graph, options.store.as_deref())?;
        let signer = signing_key()?;
        let trust = trusted_keys(&graph)?;
        let optional = options.remote_optional && need != RemoteNeed::Required;
        let (remote, remote_skipped) = match need {
            RemoteNeed::Unused => (None, None),
            _ => connect(&graph, options.remote.as_deref(), optional)?,
        };
        let remote = remote.map(|r| Arc::new(r.with_attestation(signer.clone(), trust.clone())));
        if need == RemoteNeed::Required && remote.is_none() {
            return Err(SessionError::NoRemote);
        }
        Ok(Session {
            graph,
            roots,
            whole_requests,
            store,
            remote,
            remote_optional: optional,
            remote_skipped,
            signer,
            trust,
        })
    }

    /// The workspace's target graph.
    pub fn graph(&self) -> &TargetGraph {
        &self.graph
    }

    /// The targets the command was asked for, in the order the patterns matched them.
    pub fn roots(&self) -> &[TargetId] {
        &self.roots
    }

    /// The requests whose whole package a pattern named (`//requests/NAME/...`): their
    /// wheelhouses are asked for in full, every platform and Python version of the lock, even
    /// where no target of theirs is built.
    pub fn whole_requests(&self) -> &[String] {
        &self.whole_requests
    }

    /// The local store.
    pub fn store(&self) -> &LocalStore {
        &self.store
    }

    /// This builder's signing key, if it has one (`REFINE_SIGNING_KEY[_FILE]`).
    pub fn signer(&self) -> Option<&Arc<SigningKey>> {
        self.signer.as_ref()
    }

    /// The keys `workspace.kdl` trusts (none: the remote store is unauthenticated).
    pub fn trust(&self) -> &TrustedKeys {
        &self.trust
    }

    /// The remote store, if one is configured and answered.
    pub fn remote(&self) -> Option<&Arc<OciRemote>> {
        self.remote.as_ref()
    }

    /// The remote store as the planner and the executor see it.
    pub fn remote_store(&self) -> Option<&dyn Remote> {
        self.remote.as_deref().map(|r| r as &dyn Remote)
    }

    /// Whether a remote store that fails is to be warned about rather than fail the command.
    pub fn remote_optional(&self) -> bool {
        self.remote_optional
    }

    /// Why the configured remote store was left out (`--remote-optional`), if it was.
    pub fn remote_skipped(&self) -> Option<&RemoteError> {
        self.remote_skipped.as_ref()
    }

    /// Resolves one more pattern that must name exactly one target.
    pub fn resolve_one(
        &self,
        pattern: &str,
        command: &'static str,
    ) -> Result<TargetId, SessionError> {
        resolve_one(&self.graph, pattern, command)
    }

    /// Plans `roots` against the local store and the remote store.
    pub fn plan(&self, roots: &[TargetId]) -> Result<Plan, PlanError> {
        refine_plan::plan(&self.graph, roots, &self.store, self.remote_store())
    }
}

/// Finds the workspace (from `options.directory` or the current folder), loads it and builds
/// its graph. Opens no store.
pub fn load_graph(options: &SessionOptions) -> Result<TargetGraph, SessionError> {
    let workspace = Workspace::load(&workspace_root(options)?)?;
    Ok(TargetGraph::build(workspace)?)
}

/// [`load_graph`] without the lock files: every bootstrapped base unlocked, whatever its
/// lock says (for `refine lock`, which checks and writes them).
pub fn load_graph_without_locks(options: &SessionOptions) -> Result<TargetGraph, SessionError> {
    let workspace = Workspace::load_without_locks(&workspace_root(options)?)?;
    Ok(TargetGraph::build(workspace)?)
}

/// The workspace's root: the folder holding `workspace.kdl`, from `options.directory` or
/// the current folder up.
fn workspace_root(options: &SessionOptions) -> Result<PathBuf, SessionError> {
    let start = match &options.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir().map_err(|error| SessionError::CurrentDir { error })?,
    };
    Ok(refine_rules::rules::find_root(&start)?)
}

/// The requests that plain patterns among `patterns` name whole; query expressions
/// (`platform(P, //requests/NAME/...)`) ask for the targets they match only.
fn requests_named(graph: &TargetGraph, patterns: &[String]) -> Vec<String> {
    let named: std::collections::BTreeSet<&str> = patterns
        .iter()
        .filter_map(|p| refine_rules::label::parse_pattern(p).ok())
        .flat_map(|p| graph.requests_named(&p))
        .collect();
    named.into_iter().map(str::to_string).collect()
}

/// The targets `patterns` match in `graph`.
pub fn resolve_patterns(
    graph: &TargetGraph,
    patterns: &[String],
) -> Result<Vec<TargetId>, SessionError> {
    resolve(graph, patterns)
}

/// The store `refine fetch --import` fills: the workspace's inside a workspace (one whose
/// rules load), else the one `--store` names or the default one.
pub fn import_store(options: &SessionOptions) -> Result<LocalStore, SessionError> {
    match load_graph(options) {
        Ok(graph) => open_workspace_store(&graph, options.store.as_deref()),
        Err(_) => open_store(options.store.as_deref()),
    }
}

/// Opens the store chosen by `--store` / `REFINE_STORE`, else the default folder, whatever
/// the workspace says (`refine store …` looks after one store, wherever it is run).
pub fn open_store(flag: Option<&Path>) -> Result<LocalStore, SessionError> {
    let path = LocalStore::resolve_path(flag, None)?;
    Ok(LocalStore::open(path)?)
}

fn resolve(graph: &TargetGraph, patterns: &[String]) -> Result<Vec<TargetId>, SessionError> {
    Ok(refine_rules::query::resolve_patterns(graph, patterns)?)
}

fn resolve_one(
    graph: &TargetGraph,
    pattern: &str,
    command: &'static str,
) -> Result<TargetId, SessionError> {
    let ids = resolve(graph, std::slice::from_ref(&pattern.to_string()))?;
    match ids.as_slice() {
        [id] => Ok(*id),
        _ => Err(SessionError::NotOneTarget {
            pattern: pattern.to_string(),
            count: ids.len(),
            command,
        }),
    }
}

/// Opens the local store: `--store` / `REFINE_STORE`, else `store { local … }` in
/// workspace.kdl (relative to the workspace root), else the user's cache folder.
pub fn open_workspace_store(
    graph: &TargetGraph,
    flag: Option<&Path>,
) -> Result<LocalStore, SessionError> {
    let configured = graph
        .workspace
        .config
        .store
        .local
        .as_ref()
        .map(|p| graph.workspace.root.join(p));
    let path = LocalStore::resolve_path(flag, configured.as_deref())?;
    Ok(LocalStore::open(path)?)
}

/// Connects to the remote store: `--remote` / `REFINE_REMOTE`, else `store { remote … }` in
/// workspace.kdl, else none. A registry that does not answer is an error naming it, or, when
/// `optional`, the reason it was left out.
fn connect(
    graph: &TargetGraph,
    flag: Option<&str>,
    optional: bool,
) -> Result<(Option<OciRemote>, Option<RemoteError>), SessionError> {
    let Some(url) = flag
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .or_else(|| graph.workspace.config.store.remote.clone())
    else {
        return Ok((None, None));
    };
    let url = RemoteUrl::parse(&url).map_err(SessionError::RemoteConfig)?;
    let remote =
        OciRemote::new(url, RemoteOptions { optional }).map_err(SessionError::RemoteConfig)?;
    match remote.ping() {
        Ok(()) => Ok((Some(remote), None)),
        Err(e) if optional => Ok((None, Some(e))),
        Err(e) => Err(SessionError::RemoteUnreachable(e)),
    }
}
