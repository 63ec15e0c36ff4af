//! The operations behind the commands, in the manner of Cargo's `ops`: each takes a
//! [`Session`](crate::session::Session) (or the part of one it needs) and returns a typed
//! result that the CLI prints. Nothing here prints: what a long operation does item by item
//! (each artifact pulled, each wheel mirrored) is handed to a callback as it happens, so that
//! the caller can show it at once.

pub mod build;
pub mod export;
pub mod fetch;
pub mod key;
pub mod lock;
pub mod mirror;
pub mod plan;
pub mod profile;
pub mod provenance;
pub mod pull;
pub mod push;
pub mod request;
pub mod verify;

use std::path::{Path, PathBuf};

use refine_digest::DigestError;
use refine_exec::{BuildReport, ExecError, NodeResult};
use refine_plan::PlanError;
use refine_remote::RemoteError;
use refine_rules::graph::TargetId;
use refine_store::{Digest, StoreError};

use crate::session::{Session, SessionError};

/// Why an operation failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum OpError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Exec(#[from] ExecError),
    /// The remote store (or the mirror) failed while working.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Remote(#[from] RemoteError),
    /// A digest given by the user is not one.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Digest(#[from] DigestError),
    /// The wheel mirror's configuration is wrong.
    #[error(transparent)]
    #[diagnostic(transparent)]
    MirrorConfig(RemoteError),
    /// Two requested targets made different wheels of one file name (two platforms of one
    /// policy), and `--out` cannot hold both.
    #[error("`{first}` and `{second}` both made `{name}`, with different contents")]
    #[diagnostic(help(
        "The wheels are in the store; copy them out one target at a time (`refine build {second} --out DIR2`)"
    ))]
    OutputClash {
        name: String,
        first: String,
        second: String,
    },
    /// `refine mirror` without a mirror.
    #[error("No wheel mirror is configured")]
    #[diagnostic(help(
        "Write `store {{ mirror \"s3://BUCKET\" endpoint=\"…\" region=\"…\" }}` in workspace.kdl"
    ))]
    NoMirror,
    /// A file or folder outside the store could not be read or written.
    #[error("Cannot {action} `{}`: {error}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// The name of an imported file could not be recorded beside the store.
    #[error("Cannot record the name of `{}`: {error}", file.display())]
    RecordName {
        file: PathBuf,
        #[source]
        error: refine_store::StoreError,
    },
    /// A lock could not be resolved: the bootstrap tool failed or is not the pinned one.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Bootstrap(#[from] refine_exec::BootstrapError),
    /// An index of the Debian archive could not be fetched.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Fetch(#[from] refine_fetch::FetchError),
    /// The rules or the lock files are wrong.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Rules(#[from] refine_rules::diag::Errors),
    /// A package the bootstrap would install, or a toolchain names, is not in the suite's
    /// index.
    #[error("`{package}`, which `{label}` needs, is not in {index}")]
    #[diagnostic(help(
        "Check the rule's suite, architecture and packages (a toolchain's `packages` are exact Debian package names), and the mirror"
    ))]
    NotInIndex {
        label: String,
        package: String,
        index: String,
    },
    /// `refine lock PATTERN` where the pattern matches nothing to lock.
    #[error("Nothing to lock among the targets of {patterns}")]
    #[diagnostic(help(
        "Name `base` targets with a `bootstrap` origin, such as `//bases:bookworm-s390x`, or toolchains with `debian` and `packages`"
    ))]
    NothingToLock { patterns: String },
    /// `refine provenance LABEL` for a target that was never built.
    #[error("`{target}` has no artifact in any store, so it has no provenance")]
    #[diagnostic(help("Build it first with `refine build`, or name a remote store that has it"))]
    NoArtifact { target: String },
    /// A provenance record in the store is not JSON.
    #[error("The provenance record `{record}` is not JSON: {error}")]
    #[diagnostic(help("Run `refine store verify`"))]
    BadProvenance {
        record: Digest,
        error: serde_json::Error,
    },
    /// No store holds a provenance statement for the artifact.
    #[error("No provenance found for `{digest}`")]
    #[diagnostic(help(
        "Artifacts built by refine carry provenance; pass `--remote` if it was built elsewhere"
    ))]
    NoProvenance { digest: Digest },
    /// `refine verify` in a workspace that trusts no key.
    #[error("workspace.kdl trusts no signing key, so there is nothing to verify against")]
    #[diagnostic(help(
        "Add `trust {{ key \"NAME\" \"ed25519:…\" }}` to workspace.kdl (`refine key generate NAME` prints the line)"
    ))]
    NoTrustedKeys,
    /// A key name that cannot be a file name.
    #[error("`{name}` cannot name a key")]
    #[diagnostic(help("Use letters, digits, `.`, `_` and `-` (at most 64), e.g. `ci-2026`"))]
    BadKeyName { name: String },
    /// `refine key generate` never overwrites a key.
    #[error("`{}` already exists", path.display())]
    #[diagnostic(help(
        "Pick another name, or remove the old key first if it is no longer trusted"
    ))]
    KeyExists { path: PathBuf },
    /// A signing key could not be made or read.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Key(#[from] refine_attest::KeyError),
    /// `refine request … NAME` for a request the workspace does not have.
    #[error("No request `{name}` in `requests/`")]
    #[diagnostic(help(
        "The workspace's requests: {known}. `refine request new NAME -r requirements.txt` writes one"
    ))]
    UnknownRequest { name: String, known: String },
    /// A request cannot be locked without a pinned resolver.
    #[error("No resolver is pinned for build requests")]
    #[diagnostic(help(
        "Add `resolver \"uv==0.13.9\" sha256=\"…\"` (uv's wheel for this host) under `defaults` in workspace.kdl"
    ))]
    NoResolver,
    /// The pinned resolver's wheel is not what refine expects.
    #[error("The resolver wheel `{wheel}` cannot be used: {reason}")]
    #[diagnostic(help(
        "Pin uv's binary wheel for this host's architecture (`uv-…-manylinux_2_17_x86_64…whl`)"
    ))]
    BadResolver { wheel: String, reason: String },
    /// An sdist of a request could not be read.
    #[error("The sdist `{file}` cannot be read: {reason}")]
    #[diagnostic(help(
        "Pin another version of the package with `override \"NAME\" {{ version \"==…\" }}`"
    ))]
    BadSdist { file: String, reason: String },
    /// An sdist's build requirements cannot be pinned to wheels for the platform.
    #[error(
        "The build requirements of `{package}` {version} cannot be pinned for Python {python} on `{platform}`:\n{message}"
    )]
    #[diagnostic(help(
        "The resolver's message above names the build requirement that cannot be met (refine looks for wheels for the platform first, then for sdists it builds itself). Pin another version with `override \"{package}\" {{ version \"==…\" }}`, or take the index's wheel for it where there is one (`strategy \"reuse-wheels\"` and no `take \"sdist\"` for it)"
    ))]
    BuildRequirements {
        package: String,
        version: String,
        platform: String,
        python: String,
        message: String,
    },
    /// A probe of a request's lock could not ask its backend.
    #[error(
        "The build requirements of request `{request}` cannot be asked of their backends:\n{failures}"
    )]
    #[diagnostic(help(
        "A probe runs the backend's `get_requires_for_build_wheel` in the sandbox, with what the build will have; its log, named above, says why it failed. Fix it as you would the build (an override's `packs`, `env` or `config-setting`), or lock with `--no-probe` to pin `[build-system].requires` only"
    ))]
    ProbesFailed { request: String, failures: String },
    /// A backend still asks for requirements its pins should meet.
    #[error(
        "The backend of `{package}` still asks for {unmet} for Python {python} on `{platform}`, with them pinned (request `{request}`)"
    )]
    #[diagnostic(help(
        "Pin them yourself with `override \"{package}\" {{ build-requires \"…\" }}` and lock again, or lock with `--no-probe`"
    ))]
    ProbesUnsettled {
        request: String,
        package: String,
        platform: String,
        python: String,
        unmet: String,
    },
    /// `refine request new` would replace a request.
    #[error("`{file}` exists already")]
    #[diagnostic(help("Edit it, or pick another name"))]
    RequestExists { file: String },
}

impl OpError {
    /// `map_err` helper for I/O outside the store: `.map_err(OpError::io("write", &path))`.
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> OpError {
        let path = path.to_path_buf();
        move |error| OpError::Io {
            action,
            path,
            error,
        }
    }
}

/// The artifact of a built or cached target in the local store, pulled first if the build
/// found it in the remote store only. `None` for a target that has no artifact (it failed or
/// was skipped).
pub(crate) fn ensure_local<'a>(
    session: &Session,
    report: &'a BuildReport,
    id: TargetId,
) -> Result<Option<&'a Digest>, OpError> {
    let Some(digest) = refine_exec::artifact_of(report, id) else {
        return Ok(None);
    };
    let store = session.store();
    if let (Some(NodeResult::Cached(b)), Some(remote)) =
        (report.results.get(&id), session.remote_store())
        && b.remote
        && !store.has_blob(&b.digest)
    {
        let kind = session.graph().target(id).kind();
        remote.pull(
            store,
            kind.as_str(),
            b.key.as_deref().unwrap_or_default(),
            &b.digest,
        )?;
    }
    Ok(Some(digest))
}

/// The `.whl` files at the top of an unpacked artifact, by name.
pub(crate) fn wheels_in(tree: &Path) -> Result<Vec<PathBuf>, OpError> {
    refine_exec::wheels_in(tree).map_err(OpError::io("read", tree))
}
