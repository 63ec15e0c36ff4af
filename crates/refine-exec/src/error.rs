//! Why a build or one of its actions failed. [`ExecError`] stops the whole build before any
//! action runs; [`ActionError`] fails one node, keeping its sources and the hints the lower
//! layers give (fetch, store, images, remote), which [`describe`] renders for the terminal
//! and the events file.

use std::fmt::Write as _;
use std::path::PathBuf;

use miette::Diagnostic;
use refine_digest::DigestError;
use refine_fetch::FetchError;
use refine_fetch::image::ImageError;
use refine_plan::PlanError;
use refine_sandbox::SandboxError;
use refine_store::StoreError;
use refine_store::remote::RemoteError;

use crate::bootstrap::BootstrapError;

/// Why a build could not run at all.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ExecError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Plan(#[from] PlanError),
}

/// Why one action (or the look-up of its key) failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ActionError {
    /// A source could not be fetched: the hint (`refine fetch --import`) is fetch's.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Digest(#[from] DigestError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Bootstrap(#[from] BootstrapError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Outputs(#[from] OutputError),
    /// The remote store failed while looking a key up.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Remote(#[from] RemoteError),
    #[error("Cannot read `{path}`, an input of this target: {reason}")]
    #[diagnostic(help("Check that it exists under the workspace root and is readable"))]
    Input { path: String, reason: String },
    #[error("Cannot pull `{label}` from {remote}")]
    Pull {
        label: String,
        remote: String,
        #[source]
        #[diagnostic_source]
        source: RemoteError,
    },
    #[error("Built, but cannot push to {remote}")]
    Push {
        remote: String,
        #[source]
        #[diagnostic_source]
        source: RemoteError,
    },
    #[error("Cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Source `{name}` ({digest}) is not in the store")]
    #[diagnostic(help("Run `refine fetch` for the target, or `refine fetch --import FILE`"))]
    MissingSource { digest: String, name: String },
    #[error(
        "The lock of `{label}` pins {package} {version} ({arch}), which the Debian mirror no longer serves (`{url}`)"
    )]
    #[diagnostic(help(
        "The archive keeps only each suite's current versions: refresh the lock with `refine lock {label}`, then build again"
    ))]
    LockedDebGone {
        label: String,
        package: String,
        version: String,
        arch: String,
        url: String,
    },
    #[error("Two different inputs are named `{name}`")]
    #[diagnostic(help("Rename one of them"))]
    NameClash { name: String },
    /// A pinned build requirement or tool whose sha256 names an sdist (or any file that is
    /// not a wheel): pip, offline, would find no version of it.
    #[error("`{requirement}` is pinned to `{file}`, which is not a wheel")]
    #[diagnostic(help(
        "Build requirements and tools are installed from wheels only: pin the sha256 of one of its `.whl` files (for a build request, `refine request lock` pins them)"
    ))]
    PinnedNotAWheel { requirement: String, file: String },
    #[error("`{path}` changed during the build")]
    #[diagnostic(help(
        "Its old digest is in this target's key, so nothing is stored under it: run the build again"
    ))]
    ChangedDuringBuild { path: String },
    #[error("The sandbox did not start")]
    SandboxStart(
        #[source]
        #[diagnostic_source]
        SandboxError,
    ),
    #[error("The sandbox failed")]
    Sandbox(
        #[source]
        #[diagnostic_source]
        SandboxError,
    ),
    #[error("Cannot start a thread for the action")]
    Thread {
        #[source]
        source: std::io::Error,
    },
    #[error("Cannot run `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed ({status}); the end of its log:\n{tail}")]
    Failed {
        what: String,
        status: String,
        tail: String,
    },
    #[error("Timed out after {seconds:.0} s\n{tail}")]
    #[diagnostic(help("The action's limit is 12 hours; its log says where it was"))]
    TimedOut { seconds: f64, tail: String },
    #[error("Cancelled")]
    Cancelled,
    /// The farm could not run the action (as opposed to the action failing there).
    #[error("The remote executor could not run the action")]
    Executor {
        #[source]
        #[diagnostic_source]
        source: refine_reapi::ReapiError,
    },
    /// The log is part of what an action leaves: an action whose log cannot be kept fails.
    #[error("Cannot store the action's log")]
    StoreLog {
        #[source]
        #[diagnostic_source]
        source: StoreError,
        /// How the action itself failed, when it did.
        #[related]
        action: Vec<ActionError>,
    },
    #[error("Cannot write the provenance record of the artifact")]
    Provenance {
        #[source]
        source: serde_json::Error,
    },
    /// A repaired wheel could not be read or re-tagged.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Wheel(#[from] refine_wheel::WheelError),
    /// The repaired wheel requires more than the policy its repair promises.
    #[error("The repaired wheel `{wheel}` breaks its policy `{policy}`:\n{breaches}")]
    #[diagnostic(code(refine::exec::policy), help("{advice}"))]
    PolicyBroken {
        wheel: String,
        policy: String,
        breaches: String,
        advice: String,
    },
    /// auditwheel refused to repair a wheel whose own files require more than the policy.
    #[error(
        "The wheel `{wheel}` cannot be repaired to `{policy}`: it requires symbol versions the policy does not allow:\n{breaches}\nThe end of the log:\n{tail}"
    )]
    #[diagnostic(code(refine::exec::policy), help("{advice}"))]
    RepairRefused {
        wheel: String,
        policy: String,
        breaches: String,
        advice: String,
        tail: String,
    },
    /// A wheel build that could not find a native header, library or pkg-config module.
    #[error("`{package}` cannot be built: {missing} is missing; the end of its log:\n{tail}")]
    #[diagnostic(code(refine::exec::missing_native), help("{advice}"))]
    MissingNative {
        package: String,
        missing: String,
        advice: String,
        tail: String,
    },
    /// A wheel build whose backend asked, at build time, for requirements the build's venv
    /// does not hold.
    #[error(
        "`{package}` cannot be built: its build backend asks for {requires}, which the build was not given; the end of its log:\n{tail}"
    )]
    #[diagnostic(code(refine::exec::missing_build_requires), help("{advice}"))]
    MissingBuildRequires {
        package: String,
        requires: String,
        advice: String,
        tail: String,
    },
    #[error("Internal error: {what} (a bug in refine)")]
    Internal { what: String },
}

impl ActionError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ActionError::Io {
            action,
            path,
            source,
        }
    }
}

/// Why an action's `/out` cannot become an artifact.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum OutputError {
    #[error("Cannot read `/out`")]
    Read {
        #[source]
        source: std::io::Error,
    },
    #[error("The action exited 0 but left no `bin/python3` in `/out`")]
    NoPython,
    #[error("The probe exited 0 but left no `/out/build-requires.txt`")]
    NoProbeAnswer,
    #[error("The action exited 0 but left `/out` empty")]
    Empty,
    #[error("The action exited 0 but left no `.whl` in `/out`")]
    NoWheel,
    #[error("The action left {count} wheels in `/out`; exactly one was expected")]
    Wheels { count: usize },
}

/// A diagnostic as plain text: its message, the causes its message does not already say,
/// the diagnostics related to it, and every hint on the way (`help: ...` lines).
pub fn describe(diagnostic: &dyn Diagnostic) -> String {
    let mut text = String::new();
    write_diagnostic(&mut text, diagnostic);
    text
}

fn write_diagnostic(text: &mut String, diagnostic: &dyn Diagnostic) {
    let mut said = diagnostic.to_string();
    text.push_str(&said);
    let mut cause = diagnostic.source();
    while let Some(c) = cause {
        let line = c.to_string();
        if !said.contains(&line) {
            let _ = write!(text, ": {line}");
            said.push_str(&line);
        }
        cause = c.source();
    }
    let mut helps = Vec::new();
    let mut at = Some(diagnostic);
    while let Some(d) = at {
        if let Some(h) = d.help() {
            helps.push(h.to_string());
        }
        at = d.diagnostic_source();
    }
    for h in helps {
        let _ = write!(text, "\nhelp: {h}");
    }
    if let Some(related) = diagnostic.related() {
        for r in related {
            text.push('\n');
            write_diagnostic(text, r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_hint_survives_the_action_error() {
        let err = ActionError::from(FetchError::Failed {
            what: "https://example.invalid/x.tar.gz".into(),
            reason: "connection refused".into(),
            help: "Check the network, or seed the file with `refine fetch --import FILE`".into(),
        });
        assert!(
            err.help()
                .is_some_and(|h| h.to_string().contains("refine fetch --import")),
            "transparent: the help is fetch's"
        );
        let text = describe(&err);
        assert!(text.starts_with("Cannot fetch `https://example.invalid/x.tar.gz`"));
        assert!(text.contains("\nhelp: Check the network"), "{text}");
    }

    #[test]
    fn causes_and_nested_hints_are_kept_once() {
        let store = StoreError::io(
            "write a temporary file in",
            "/store/tmp",
            std::io::Error::from_raw_os_error(28),
        );
        let err = ActionError::StoreLog {
            source: store,
            action: vec![ActionError::Cancelled],
        };
        let text = describe(&err);
        assert!(
            text.starts_with("Cannot store the action's log: Could not write"),
            "{text}"
        );
        assert_eq!(text.matches("No space left on device").count(), 1, "{text}");
        assert!(
            text.contains("help: Check that the store folder exists"),
            "{text}"
        );
        assert!(text.ends_with("\nCancelled"), "{text}");
    }
}
