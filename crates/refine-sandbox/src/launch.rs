//! The caller's side: start the helper, hand it the spec, wait for the result, cancel.
//!
//! Safe to call from many threads at once: the only things shared with the child are the
//! close-on-exec socket pair and inherited stdout and stderr; namespace work happens in the
//! re-executed helper.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::error::SandboxError;
use crate::outcome::Outcome;
use crate::spec::Spec;
use crate::supervise::supervise;
use crate::sys;
use crate::wire::{FINGERPRINT, HELPER_ARG, PROBE_ARG, read_frame, write_frame};

/// The file name of the helper binary this crate ships.
pub const HELPER_BIN: &str = "refine-sandbox-helper";

/// Runs specs by re-executing a helper executable.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// `None`: chosen at the first spawn (see [`Sandbox::new`]), so that a build that runs no
    /// action never probes for it.
    helper: Option<PathBuf>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

/// A sandbox that is running; [`Running::wait`] collects it.
#[derive(Debug)]
pub struct Running {
    helper: PathBuf,
    child: Option<Child>,
    control: Arc<UnixStream>,
    started: Instant,
}

/// Kills a running sandbox's whole process tree; cheap to clone and send to another thread
/// (a SIGINT handler, for one).
#[derive(Debug, Clone)]
pub struct Canceller {
    control: Arc<UnixStream>,
}

impl Sandbox {
    /// Starts the `refine-sandbox-helper` that lies beside the current executable when it was
    /// built from the same sources (see [`Sandbox::helper_beside_us`]); otherwise re-executes
    /// the current executable (`/proc/self/exe`), whose `main` must call
    /// [`run_if_helper`](crate::helper::run_if_helper) first.
    pub fn new() -> Sandbox {
        Sandbox { helper: None }
    }

    /// The `refine-sandbox-helper` beside the current executable, as a path that stays valid
    /// for this process (`/proc/self/fd/N` of the file it opened), if it answers the probe
    /// with this build's fingerprint. Decided once per process.
    ///
    /// Why: every action starts a helper, and a small binary starts in a fraction of the time
    /// the CLI's does (about 1.3 ms against 5.3 ms here: the CLI maps, relocates and sets up
    /// its allocator for a 30 MB text). Holding the file open means a rebuild that replaces
    /// the file mid-build cannot hand later actions a helper of another protocol.
    pub fn helper_beside_us() -> Option<PathBuf> {
        static CHOSEN: OnceLock<Option<PathBuf>> = OnceLock::new();
        CHOSEN
            .get_or_init(|| {
                let exe = std::env::current_exe().ok()?;
                let file = std::fs::File::open(exe.parent()?.join(HELPER_BIN)).ok()?;
                let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
                let answered = Command::new(&path)
                    .args([PROBE_ARG, FINGERPRINT])
                    .env_clear()
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|status| status.success());
                // The descriptor lives as long as the process: the path above names it.
                answered.then(|| {
                    std::mem::forget(file);
                    path
                })
            })
            .clone()
    }

    /// Re-executes `helper` instead, such as the `refine-sandbox-helper` binary.
    pub fn with_helper(helper: impl Into<PathBuf>) -> Sandbox {
        Sandbox {
            helper: Some(helper.into()),
        }
    }

    /// The executable [`Sandbox::spawn`] starts.
    pub fn helper(&self) -> PathBuf {
        match &self.helper {
            Some(helper) => helper.clone(),
            None => Sandbox::helper_beside_us().unwrap_or_else(|| PathBuf::from("/proc/self/exe")),
        }
    }

    /// Runs `spec` to the end.
    pub fn run(&self, spec: &Spec) -> Result<Outcome, SandboxError> {
        self.spawn(spec)?.wait()
    }

    /// Starts `spec`. The helper gets `PR_SET_PDEATHSIG`, which the kernel ties to the calling
    /// *thread*: keep the thread that spawns alive until the sandbox ends (a pool thread that
    /// also waits, as [`Sandbox::run`] does, is right).
    pub fn spawn(&self, spec: &Spec) -> Result<Running, SandboxError> {
        spec.validate()?;
        let started = Instant::now();
        let helper = self.helper();
        let helper_error = |message: String| SandboxError::Helper {
            helper: helper.clone(),
            message,
        };
        let (ours, theirs) = UnixStream::pair()
            .map_err(|err| helper_error(format!("cannot create a socket pair: {err}")))?;
        let child = Command::new(&helper)
            .arg0(HELPER_BIN)
            .arg(HELPER_ARG)
            .env_clear()
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| helper_error(format!("cannot start it: {err}")))?;
        let mut running = Running {
            helper: helper.clone(),
            child: Some(child),
            control: Arc::new(ours),
            started,
        };
        if let Err(err) = write_frame(&*running.control, spec) {
            let status = running.reap();
            return Err(helper_error(format!(
                "it ended ({status}) before taking the spec: {err}"
            )));
        }
        Ok(running)
    }
}

impl Running {
    /// The helper's process id (not the action's: that lives in its own PID namespace).
    pub fn helper_pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn canceller(&self) -> Canceller {
        Canceller {
            control: Arc::clone(&self.control),
        }
    }

    /// Waits until every process of the sandbox is gone and returns how the action ended.
    pub fn wait(mut self) -> Result<Outcome, SandboxError> {
        let result = read_frame::<Result<Outcome, SandboxError>>(&*self.control);
        let status = self.reap();
        match result {
            Ok(Ok(mut outcome)) => {
                outcome.wall_time = self.started.elapsed();
                Ok(outcome)
            }
            Ok(Err(err)) => Err(err),
            Err(err) => Err(SandboxError::Helper {
                helper: self.helper.clone(),
                message: format!("it ended ({status}) without a result: {err}"),
            }),
        }
    }

    fn reap(&mut self) -> String {
        match self.child.take().map(|mut child| child.wait()) {
            Some(Ok(status)) => status.to_string(),
            Some(Err(err)) => err.to_string(),
            None => "already collected".to_owned(),
        }
    }
}

impl Drop for Running {
    /// A dropped sandbox is cancelled and collected, never left running or as a zombie.
    fn drop(&mut self) {
        if self.child.is_some() {
            self.canceller().cancel();
            self.reap();
        }
    }
}

impl Canceller {
    /// Asks the helper to kill the sandbox's whole process tree; [`Running::wait`] then returns
    /// an [`Outcome`] with `cancelled` set, once every process is gone. Returns at once.
    pub fn cancel(&self) {
        let _ = self.control.shutdown(std::net::Shutdown::Write);
    }
}

/// Whether this process has a single thread, so that [`run_in_this_process`] may be used.
pub fn single_threaded() -> bool {
    sys::thread_count() == Some(1)
}

/// Runs `spec` from this very process, without re-executing: for command-line tools that run
/// one sandbox and exit. The process must be single-threaded ([`single_threaded`]). PID 1 of
/// the sandbox may be left as a child that is ending: call nothing but exit after it.
pub fn run_in_this_process(spec: &Spec) -> Result<Outcome, SandboxError> {
    let started = Instant::now();
    match sys::thread_count() {
        Some(1) => supervise(spec, None, started),
        threads => Err(SandboxError::Setup {
            step: "run in this process".into(),
            message: format!(
                "the process has {} threads; namespaces need a single-threaded process, so use \
                 `Sandbox::run`, which re-executes a helper",
                threads.map_or("an unknown number of".to_owned(), |n| n.to_string())
            ),
        }),
    }
}
