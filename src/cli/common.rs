//! What every subcommand shares: how failures map to exit codes and how they are rendered,
//! and opening a session (with the warning for a remote store left out).

use std::process::ExitCode;

use refine_engine::ops::OpError;
use refine_engine::plan::PlanError;
use refine_engine::session::{RemoteNeed, Session, SessionError, SessionOptions, Targets};
use refine_engine::store::StoreError;

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

/// Maps a store error to the exit code it stands for: I/O trouble is a failure (1), every
/// other error is bad input or a damaged store (2).
pub fn store_failure(err: StoreError) -> Failure {
    match err {
        StoreError::Io { .. } => Failure::failed(err),
        _ => Failure::bad_input(err),
    }
}

impl From<SessionError> for Failure {
    fn from(err: SessionError) -> Self {
        match err {
            SessionError::Store(e) => store_failure(e),
            SessionError::RemoteUnreachable(_) => Failure::failed(err),
            SessionError::CurrentDir { .. }
            | SessionError::NoWorkspace(_)
            | SessionError::Rules(_)
            | SessionError::NotOneTarget { .. }
            | SessionError::RemoteConfig(_)
            | SessionError::SigningKey(_)
            | SessionError::BadTrustedKey { .. }
            | SessionError::NoRemote => Failure::bad_input(err),
        }
    }
}

impl From<OpError> for Failure {
    fn from(err: OpError) -> Self {
        match err {
            OpError::Session(e) => e.into(),
            OpError::Store(e) => store_failure(e),
            // Planning fails on bad input, except when the remote store does.
            OpError::Plan(PlanError::Remote(_)) => Failure::failed(err),
            OpError::Plan(_)
            | OpError::Digest(_)
            | OpError::MirrorConfig(_)
            | OpError::Rules(_)
            | OpError::NothingToLock { .. }
            | OpError::UnknownRequest { .. }
            | OpError::NoResolver
            | OpError::RequestExists { .. }
            | OpError::NoMirror
            | OpError::NoTrustedKeys
            | OpError::BadKeyName { .. }
            | OpError::KeyExists { .. } => Failure::bad_input(err),
            OpError::Exec(_)
            | OpError::Remote(_)
            | OpError::Io { .. }
            | OpError::RecordName { .. }
            | OpError::NoArtifact { .. }
            | OpError::BadProvenance { .. }
            | OpError::NoProvenance { .. }
            | OpError::OutputClash { .. }
            | OpError::Bootstrap(_)
            | OpError::Fetch(_)
            | OpError::NotInIndex { .. }
            | OpError::BadResolver { .. }
            | OpError::BadSdist { .. }
            | OpError::BuildRequirements { .. }
            | OpError::ProbesFailed { .. }
            | OpError::ProbesUnsettled { .. }
            | OpError::Key(_) => Failure::failed(err),
        }
    }
}

impl From<PlanError> for Failure {
    fn from(err: PlanError) -> Self {
        OpError::Plan(err).into()
    }
}

/// Opens a session, and warns when `--remote-optional` left the remote store out.
pub fn open_session(
    options: &SessionOptions,
    targets: Targets<'_>,
    need: RemoteNeed,
) -> Result<Session, Failure> {
    let session = Session::open(options, targets, need)?;
    if let Some(e) = session.remote_skipped() {
        eprintln!("warning: {e}; continuing from the local store alone (`--remote-optional`)");
    }
    Ok(session)
}

/// Writes a command's output to stdout: a closed pipe (`refine query //... | head`) is not
/// an error.
pub fn finish_output(result: std::io::Result<()>) -> Result<(), Failure> {
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::failed(miette::miette!(
            "Cannot write the output: {e}"
        ))),
    }
}

/// A farm's credentials from the files the command line names: the token (else
/// `REFINE_EXECUTOR_TOKEN`), the farm's CA, and a client certificate and key for mutual TLS.
pub fn farm_credentials(
    token_file: Option<&std::path::Path>,
    ca: Option<&std::path::Path>,
    identity: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<refine_engine::reapi::Credentials, Failure> {
    let read = |file: &std::path::Path, what: &str| {
        fs_err::read(file).map_err(|e| {
            Failure::bad_input(miette::miette!(
                help = format!("Give a file that holds {what}"),
                "Cannot read {what}: {e}"
            ))
        })
    };
    let token = match token_file {
        Some(f) => Some(String::from_utf8_lossy(&read(f, "the farm's token")?).into_owned()),
        None => std::env::var("REFINE_EXECUTOR_TOKEN").ok(),
    };
    Ok(refine_engine::reapi::Credentials {
        token,
        ca: ca
            .map(|f| read(f, "the farm's certificate authority"))
            .transpose()?,
        identity: match identity {
            Some((cert, key)) => Some((
                read(cert, "the client certificate")?,
                read(key, "the client certificate's key")?,
            )),
            None => None,
        },
    })
}

/// `NAME=VALUE`, a platform property given with `flag`.
pub fn platform_property(text: &str, flag: &str) -> Result<(String, String), Failure> {
    text.split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .ok_or_else(|| {
            Failure::bad_input(miette::miette!(
                help = format!("Write `{flag} NAME=VALUE`"),
                "`{text}` is not a platform property"
            ))
        })
}
