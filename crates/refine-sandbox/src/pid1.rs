//! PID 1 of the sandbox's PID namespace: builds the file system, forks the action, reaps every
//! process until the action is gone, then reports how it ended. When PID 1 exits the kernel
//! kills whatever is left in the namespace, so nothing an action started outlives it.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sched::{CloneCb, CloneFlags, clone};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, execve, setsid};

use crate::error::SandboxError;
use crate::outcome::Termination;
use crate::spec::{SANDBOX_HOSTNAME, Spec};
use crate::wire::Report;
use crate::{limits, mounts, sys};

/// The search path when the spec's environment has no `PATH` (Debian's default for root).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The write ends PID 1 hands to the action, and its own report pipe.
pub(crate) struct Pipes {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub report: OwnedFd,
    /// The helper writes a byte here once PID 1 may go on (its id maps are written).
    pub go: OwnedFd,
}

/// Runs as PID 1; never returns. `switch_user`: PID 1 is uid 0 of its namespace and the action
/// must become [`SANDBOX_UID`].
pub(crate) fn main(spec: &Spec, pipes: Pipes, switch_user: bool) -> ! {
    let Pipes {
        stdout,
        stderr,
        report,
        go,
    } = pipes;
    let result = run(spec, go, stdout, stderr, &report, switch_user);
    let message = match result {
        Ok(termination) => Report::Status(termination),
        Err(err) => Report::Failed(err),
    };
    send(&report, &message);
    // Closed before exiting: the helper answers its caller on this end of file, while the exit
    // itself (dropping this process's memory, then the namespaces) goes on.
    drop(report);
    // SAFETY: _exit skips destructors and atexit handlers of the parent's copy of the program.
    unsafe { libc::_exit(0) }
}

/// Writes one report line; a helper that is gone has nobody left to tell.
fn send(to: &OwnedFd, report: &Report) {
    let Ok(mut line) = serde_json::to_vec(report) else {
        return;
    };
    line.push(b'\n');
    let mut rest = line.as_slice();
    while !rest.is_empty() {
        match nix::unistd::write(to, rest) {
            Ok(n) => rest = &rest[n..],
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

fn run(
    spec: &Spec,
    go: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
    report: &OwnedFd,
    switch_user: bool,
) -> Result<Termination, SandboxError> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|err| SandboxError::setup("set the parent-death signal", err))?;
    // The helper writes one byte once the id maps are in place; end of file means it died
    // before the line above could tie this process's life to it.
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(&go, &mut byte) {
            Ok(1) => break,
            Err(Errno::EINTR) => continue,
            _ => return Err(SandboxError::setup("wait for the helper", "it is gone")),
        }
    }
    drop(go);
    nix::unistd::sethostname(SANDBOX_HOSTNAME)
        .map_err(|err| SandboxError::setup("set the host name", err))?;
    sys::loopback_up().map_err(|err| SandboxError::setup("bring up `lo`", err))?;
    mounts::enter(spec)?;
    let devnull = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|err| SandboxError::setup("open `/dev/null`", err))?;
    let start: CloneCb<'_> = Box::new(|| {
        let err = exec_action(spec, &devnull, &stdout, &stderr, switch_user);
        send(report, &Report::Failed(err));
        // SAFETY: see `main`.
        unsafe { libc::_exit(127) }
    });
    // Like posix_spawn: the child shares this process's memory (no page tables to copy, none
    // to drop at execve) and this process sleeps until the child has called execve or exited,
    // so the two never run at once. The child only changes its own credentials, descriptors
    // and limits, which it does not share.
    let mut stack = vec![0u8; 256 << 10];
    // SAFETY: see above; the closure and the stack outlive the child's use of them, since
    // CLONE_VFORK returns only after its execve or exit.
    let child = unsafe {
        clone(
            start,
            &mut stack,
            CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK,
            Some(libc::SIGCHLD),
        )
    }
    .map_err(|err| SandboxError::setup("start the action", err))?;
    drop((stack, stdout, stderr));
    reap_until(child)
}

/// Reaps every child (orphans are re-parented to PID 1) until `action` itself ends.
/// Then kills and reaps whatever is left, so that when PID 1 reports, nothing of the sandbox
/// runs any more: the helper need not wait for the kernel to tear the namespaces down.
fn reap_until(action: Pid) -> Result<Termination, SandboxError> {
    let termination = loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == action => break Termination::Exited(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == action => {
                break Termination::Signaled(signal as i32);
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(err) => return Err(SandboxError::setup("wait for the action", err)),
        }
    };
    // From PID 1, -1 is every other process of the namespace.
    let _ = nix::sys::signal::kill(Pid::from_raw(-1), Signal::SIGKILL);
    loop {
        match waitpid(None, None) {
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return Ok(termination),
            Err(err) => return Err(SandboxError::setup("reap the sandbox", err)),
        }
    }
}

/// Turns the started child into the action; returns only on failure.
fn exec_action(
    spec: &Spec,
    devnull: &OwnedFd,
    stdout: &OwnedFd,
    stderr: &OwnedFd,
    switch_user: bool,
) -> SandboxError {
    match prepare_and_exec(spec, devnull, stdout, stderr, switch_user) {
        Ok(never) => match never {},
        Err(err) => err,
    }
}

fn prepare_and_exec(
    spec: &Spec,
    devnull: &OwnedFd,
    stdout: &OwnedFd,
    stderr: &OwnedFd,
    switch_user: bool,
) -> Result<std::convert::Infallible, SandboxError> {
    // A new session has no controlling terminal: `/dev/tty` cannot be opened and TIOCSTI has
    // no terminal to inject into.
    setsid().map_err(|err| SandboxError::setup("setsid", err))?;
    let stdio = |err| SandboxError::setup("set up stdin, stdout and stderr", err);
    // Moved above 2 first, so that no dup2 below overwrites a source still needed.
    let fds = [
        sys::dup_above(devnull.as_raw_fd(), 3).map_err(stdio)?,
        sys::dup_above(stdout.as_raw_fd(), 3).map_err(stdio)?,
        sys::dup_above(stderr.as_raw_fd(), 3).map_err(stdio)?,
    ];
    for (target, fd) in fds.into_iter().enumerate() {
        sys::dup2_raw(fd, target as i32).map_err(stdio)?;
    }
    sys::cloexec_from(3).map_err(stdio)?;

    nix::unistd::chdir(&spec.cwd).map_err(|err| SandboxError::Setup {
        step: "enter the working directory".into(),
        message: format!("`{}`: {}", spec.cwd.display(), err.desc()),
    })?;
    limits::apply(&spec.limits)?;
    sys::reset_signals();

    let cstring = |s: &str| {
        CString::new(s).map_err(|_| SandboxError::InvalidSpec {
            message: "NUL byte in the command".into(),
        })
    };
    let argv = spec
        .command
        .iter()
        .map(|a| cstring(a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = spec
        .env
        .iter()
        .map(|(k, v)| cstring(&format!("{k}={v}")))
        .collect::<Result<Vec<_>, _>>()?;
    let program = &spec.command[0];
    let candidates: Vec<String> = if program.contains('/') {
        vec![program.clone()]
    } else {
        let path = spec
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
        path.split(':')
            .map(|dir| {
                if dir.is_empty() {
                    program.clone()
                } else {
                    format!("{dir}/{program}")
                }
            })
            .collect()
    };
    limits::drop_privileges(switch_user)?;

    let mut denied = None;
    for candidate in &candidates {
        let path = cstring(candidate)?;
        let err = match execve(&path, &argv, &env) {
            Ok(never) => match never {},
            Err(err) => err,
        };
        match err {
            Errno::ENOENT | Errno::ENOTDIR if !program.contains('/') => continue,
            Errno::EACCES if !program.contains('/') => denied = Some(candidate.clone()),
            err => return Err(exec_error(candidate, err)),
        }
    }
    Err(match denied {
        Some(candidate) => exec_error(&candidate, Errno::EACCES),
        None if program.contains('/') => exec_error(program, Errno::ENOENT),
        None => SandboxError::CommandNotFound {
            command: program.clone(),
            detail: format!(
                "searched `PATH` ({}); give its full path or set `PATH`",
                candidates
                    .iter()
                    .map(|c| Path::new(c)
                        .parent()
                        .map_or(String::new(), |p| p.display().to_string()))
                    .collect::<Vec<_>>()
                    .join(":")
            ),
        },
    })
}

fn exec_error(command: &str, err: Errno) -> SandboxError {
    if err == Errno::ENOENT {
        return SandboxError::CommandNotFound {
            command: command.to_owned(),
            detail: "it does not exist in the sandbox, or its ELF interpreter (such as \
                     `/lib64/ld-linux-x86-64.so.2` or `/lib/ld64.so.1`) does not"
                .to_owned(),
        };
    }
    let message = match err {
        Errno::ENOEXEC => "it is not an executable for this host; for another architecture's \
                           program pass its arch (`--arch`), which needs qemu-user in binfmt_misc"
            .to_owned(),
        err => err.desc().to_owned(),
    };
    SandboxError::Exec {
        command: command.to_owned(),
        message,
    }
}
