//! refine-sandbox: runs one action in fresh Linux namespaces (user, mount, PID, network, IPC,
//! UTS), set up by a single-threaded helper. It depends on nothing of the engine.
//!
//! # Use
//!
//! ```no_run
//! use refine_sandbox::{Sandbox, Spec, Writable, copy_out};
//! # fn main() -> Result<(), refine_sandbox::SandboxError> {
//! let mut spec = Spec::new("/var/cache/roots/bookworm", vec!["make".into(), "install".into()]);
//! spec.env = vec![("PATH".into(), "/usr/bin:/bin".into())];
//! spec.out = Writable::Host("/scratch/action-1/out".into());
//! spec.log = Some("/scratch/action-1/log".into());
//! let outcome = Sandbox::new().run(&spec)?;   // safe from any thread of a rayon pool
//! if outcome.success() {
//!     copy_out("/scratch/action-1/out".as_ref(), "/scratch/action-1/artifact".as_ref())?;
//! }
//! # Ok(()) }
//! ```
//!
//! * [`Sandbox::run`] / [`Sandbox::spawn`] start a helper (by default the `refine-sandbox-helper`
//!   beside the executable when built from the same sources, else `/proc/self/exe`; or
//!   [`Sandbox::with_helper`]) whose `main` calls [`helper::run_if_helper`] before anything
//!   starts a thread. Namespaces are only created in that single-threaded helper, so the caller
//!   may be multi-threaded. [`run_in_this_process`] skips the re-exec for single-threaded
//!   command-line tools.
//! * [`Running::canceller`] gives a [`Canceller`] whose `cancel()` kills the whole process tree;
//!   `wait()` returns once every process is gone. If the caller dies, the helper and PID 1 are
//!   killed through `PR_SET_PDEATHSIG` and the closed control socket.
//! * [`copy_out`] copies a host-backed `/out` without following symlinks.
//! * [`binfmt::check`] says whether a foreign arch can run; [`host::host_report`] describes the
//!   host for `refine doctor`.
//!
//! # Processes
//!
//! caller → helper (re-executed, single-threaded; `clone`s PID 1 into new user, mount, PID,
//! network, IPC and UTS namespaces and writes its uid/gid maps from outside) → PID 1 (host
//! name, `lo` up, builds the file system, `pivot_root`, reaps) → the action (`setsid`, rlimits,
//! `PR_SET_NO_NEW_PRIVS`, the sandbox user, no capabilities, `execve`). The helper copies the
//! action's stdout and stderr (pipes) to the log file and, with `echo`, to its own stdout and
//! stderr; it enforces the timeout by killing PID 1, which takes the whole namespace with it.
//! When the action exits, PID 1 exits too, and so does anything the action left.
//!
//! # File system and identity
//!
//! The root tree is mounted read-only: whole if it holds every mount point, else as a
//! read-only tmpfs skeleton that mirrors it, so that mount points are never created in the
//! tree itself. Binds (read-write unless `read_only`), `/work` and `/out` (host directories or
//! tmpfs), a fresh tmpfs `/tmp`, a fresh `/proc`, and a minimal `/dev` (`null zero full random
//! urandom tty`, private `pts`, `shm`). The action runs as uid/gid [`SANDBOX_UID`]/
//! [`SANDBOX_GID`]: the invoking user mapped, or, when refine runs as root, the unprivileged
//! host uid [`HOST_BUILD_ID`]. Its environment is [`Spec::env`] and nothing else. The full
//! contract, with the exit codes of `refine sandbox run`, is in `docs/sandbox.md`.

#![allow(unsafe_code)] // The sandbox is the one library crate that may use `unsafe`: namespace and mount system calls.

pub mod binfmt;
mod error;
pub mod helper;
pub mod host;
mod ids;
mod launch;
mod limits;
mod mounts;
mod outcome;
mod outputs;
mod pid1;
mod spec;
mod supervise;
mod sys;
mod wire;

pub use error::SandboxError;
pub use ids::HOST_BUILD_ID;
pub use launch::{Canceller, HELPER_BIN, Running, Sandbox, run_in_this_process, single_threaded};
pub use outcome::{Outcome, Termination};
pub use outputs::{CopyStats, copy_out};
pub use spec::{
    Bind, Limits, RESERVED, SANDBOX_GID, SANDBOX_HOSTNAME, SANDBOX_UID, Spec, Writable,
};
pub use wire::{FINGERPRINT, HELPER_ARG, PROBE_ARG};

/// Runs `spec` with the default [`Sandbox`] (see [`Sandbox::new`]).
pub fn run(spec: &Spec) -> Result<Outcome, SandboxError> {
    Sandbox::new().run(spec)
}
