//! How an action ended: the output of [`Sandbox::run`](crate::Sandbox::run).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the action's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Termination {
    /// It called `exit` with this code.
    Exited(i32),
    /// It was killed by this signal number (also when the sandbox killed it on a timeout or a
    /// cancellation: then `SIGKILL`).
    Signaled(i32),
}

/// The result of one sandboxed run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub termination: Termination,
    /// From the start of [`Sandbox::run`](crate::Sandbox::run) (or `spawn`) to the moment the
    /// last process of the sandbox was gone.
    pub wall_time: Duration,
    /// The timeout fired and the whole process tree was killed.
    pub timed_out: bool,
    /// A [`Canceller`](crate::Canceller) (or the caller's death) killed the process tree.
    pub cancelled: bool,
}

impl Outcome {
    /// Exited with code 0, within its time, and was not cancelled.
    pub fn success(&self) -> bool {
        self.termination == Termination::Exited(0) && !self.timed_out && !self.cancelled
    }
}

impl std::fmt::Display for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Termination::Exited(code) => write!(f, "exited with code {code}"),
            Termination::Signaled(signal) => match nix::sys::signal::Signal::try_from(signal) {
                Ok(name) => write!(f, "killed by signal {signal} ({name})"),
                Err(_) => write!(f, "killed by signal {signal}"),
            },
        }
    }
}
