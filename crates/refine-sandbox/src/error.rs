//! Why a sandbox could not run an action, or could not copy its outputs.
//!
//! Errors cross from the helper process to the caller as JSON, so variants hold rendered
//! messages instead of `io::Error` sources.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic, Serialize, Deserialize,
)]
pub enum SandboxError {
    #[error("{message}")]
    InvalidSpec { message: String },

    #[error("Cannot use `{}` in the sandbox: {message}", path.display())]
    #[diagnostic(help("Check that the path exists and that refine may read it."))]
    HostPath { path: PathBuf, message: String },

    #[error(
        "Cannot run `{arch}` programs: {problem}.\n\
         Install the emulator with `apt-get install qemu-user-static binfmt-support`; if \
         `/proc/sys/fs/binfmt_misc` is not mounted, run `mount -t binfmt_misc binfmt_misc \
         /proc/sys/fs/binfmt_misc`, then `update-binfmts --enable qemu-{arch}`. \
         `refine doctor` shows the registrations."
    )]
    Binfmt { arch: String, problem: String },

    #[error(
        "Cannot create the sandbox namespaces ({step}): {message}. Run `refine doctor`; \
         user namespaces may be disabled (`/proc/sys/user/max_user_namespaces`)"
    )]
    Namespaces { step: String, message: String },

    #[error("Cannot set up the sandbox ({step}): {message}")]
    Setup { step: String, message: String },

    #[error("Command `{command}` was not found in the sandbox: {detail}")]
    CommandNotFound { command: String, detail: String },

    #[error("Cannot execute `{command}` in the sandbox: {message}")]
    Exec { command: String, message: String },

    #[error("The sandbox helper `{}` failed: {message}", helper.display())]
    #[diagnostic(help(
        "The helper is the refine binary re-executed; a program that embeds the sandbox must \
         call `refine_sandbox::helper::run_if_helper()` first in `main`."
    ))]
    Helper { helper: PathBuf, message: String },

    #[error("Cannot write the log file `{}`: {message}", path.display())]
    Log { path: PathBuf, message: String },

    #[error("Cannot copy the output `{}`: {message}", path.display())]
    CopyOut { path: PathBuf, message: String },
}

impl SandboxError {
    pub(crate) fn setup(step: impl Into<String>, err: impl std::fmt::Display) -> Self {
        SandboxError::Setup {
            step: step.into(),
            message: err.to_string(),
        }
    }

    pub(crate) fn host_path(path: impl Into<PathBuf>, err: impl std::fmt::Display) -> Self {
        SandboxError::HostPath {
            path: path.into(),
            message: err.to_string(),
        }
    }
}
