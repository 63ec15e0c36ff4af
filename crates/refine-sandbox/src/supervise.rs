//! The helper's own work, in a single-threaded process: check the host, create the namespaces,
//! fork PID 1, then watch it — copy the action's output to the log and the caller, enforce the
//! timeout, honour cancellation — and collect how it ended.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneCb, CloneFlags, clone};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::{Pid, pipe2};

use crate::binfmt;
use crate::error::SandboxError;
use crate::ids::IdMap;
use crate::outcome::{Outcome, Termination};
use crate::pid1::{self, Pipes};
use crate::spec::{Spec, Writable};
use crate::wire::Report;

/// Runs `spec` from this process, which must be single-threaded. `control` is the caller's end
/// of the conversation when re-executed: its end of file means "cancel".
pub(crate) fn supervise(
    spec: &Spec,
    control: Option<&UnixStream>,
    started: Instant,
) -> Result<Outcome, SandboxError> {
    spec.validate()?;
    if let Some(arch) = &spec.arch {
        binfmt::check(arch)?;
    }
    check_host_paths(spec)?;
    let mut log = match &spec.log {
        Some(path) => Some(fs_err::File::create(path).map_err(|err| SandboxError::Log {
            path: path.clone(),
            message: err.to_string(),
        })?),
        None => None,
    };
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|err| SandboxError::setup("create a pipe", err));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (rep_r, rep_w) = pipe()?;
    let ids = IdMap::for_caller();
    for writable in [&spec.work, &spec.out] {
        if let Writable::Host(dir) = writable {
            ids.hand_over(dir)?;
        }
    }
    // PID 1 waits for a byte on this pipe: its uid and gid maps are written by then.
    let (go_r, go_w) = pipe()?;

    // The helper's own ends, which PID 1 closes first: it must not keep the pipes open.
    let ours = [
        out_r.as_raw_fd(),
        err_r.as_raw_fd(),
        rep_r.as_raw_fd(),
        go_w.as_raw_fd(),
    ];
    let log_fd = log.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    let mut pipes = Some(Pipes {
        stdout: out_w,
        stderr: err_w,
        report: rep_w,
        go: go_r,
    });
    let switch_user = ids.switch_user;
    let child: CloneCb<'_> = Box::new(move || {
        for fd in ours.into_iter().chain(log_fd) {
            // SAFETY: these are the helper's descriptors, copied into this process by clone;
            // nothing in PID 1 owns them.
            unsafe { libc::close(fd) };
        }
        match pipes.take() {
            Some(pipes) => pid1::main(spec, pipes, switch_user),
            None => 1,
        }
    });
    // PID 1's Rust code (mount setup, JSON) is shallow; the stack is only touched as used.
    let mut stack = vec![0u8; 2 << 20];
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    // SAFETY: this process is single-threaded (the caller guarantees it) and the child gets a
    // copy of its memory (no CLONE_VM), as after fork.
    let pid1 = unsafe { clone(child, &mut stack, flags, Some(libc::SIGCHLD)) }.map_err(|err| {
        SandboxError::Namespaces {
            step: "clone".into(),
            message: err.desc().into(),
        }
    })?;
    if let Err(err) = ids.write(pid1) {
        let _ = kill(pid1, Signal::SIGKILL);
        while let Err(Errno::EINTR) = waitpid(pid1, None) {}
        return Err(err);
    }
    let _ = nix::unistd::write(&go_w, b"g");
    drop(go_w);

    let deadline = spec.timeout.map(|timeout| started + timeout);
    let watch = watch(
        pid1,
        [out_r, err_r, rep_r],
        control,
        deadline,
        spec.echo,
        log.as_mut(),
    )?;
    let mut termination = None;
    let mut failure = None;
    for line in watch
        .reports
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
    {
        match serde_json::from_slice::<Report>(line) {
            // The first failure is the cause; later ones are consequences.
            Ok(Report::Failed(err)) => failure = failure.or(Some(err)),
            Ok(Report::Status(status)) => termination = Some(status),
            Err(err) => failure = failure.or(Some(SandboxError::setup("read PID 1's report", err))),
        }
    }
    if termination.is_some() {
        // PID 1 reported after reaping every other process: only its own exit is left, which
        // tears the namespaces down (unmounting everything takes a millisecond or more). It is
        // collected if already gone; otherwise it ends by itself, re-parented once this
        // process exits (the helper, or a command-line tool, exits right after).
        let _ = waitpid(pid1, Some(WaitPidFlag::WNOHANG));
    } else {
        // Killed, failed or crashed: this returns once the kernel has killed every process.
        while let Err(Errno::EINTR) = waitpid(pid1, None) {}
    }
    let wall_time = started.elapsed();
    if let Some(err) = failure {
        return Err(err);
    }
    if let Some(log_error) = watch.log_error {
        return Err(log_error);
    }
    let termination = match termination {
        Some(termination) => termination,
        None if watch.timed_out || watch.cancelled => Termination::Signaled(Signal::SIGKILL as i32),
        None => {
            return Err(SandboxError::setup(
                "run PID 1",
                "it ended without a report",
            ));
        }
    };
    Ok(Outcome {
        termination,
        wall_time,
        timed_out: watch.timed_out,
        cancelled: watch.cancelled,
    })
}

/// Catches missing host paths before namespaces make the error harder to read.
fn check_host_paths(spec: &Spec) -> Result<(), SandboxError> {
    let dir = |path: &std::path::Path| match fs_err::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(SandboxError::host_path(path, "it is not a directory")),
        Err(err) => Err(SandboxError::host_path(path, describe(&err))),
    };
    dir(&spec.root)?;
    for writable in [&spec.work, &spec.out] {
        if let Writable::Host(path) = writable {
            dir(path)?;
        }
    }
    for bind in &spec.binds {
        if let Err(err) = fs_err::metadata(&bind.source) {
            return Err(SandboxError::host_path(&bind.source, describe(&err)));
        }
    }
    Ok(())
}

fn describe(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string(),
    }
}

struct Watched {
    reports: Vec<u8>,
    timed_out: bool,
    cancelled: bool,
    log_error: Option<SandboxError>,
}

/// Copies output until every writer of the action's pipes and PID 1's report pipe is gone.
fn watch(
    pid1: Pid,
    pipes: [OwnedFd; 3],
    control: Option<&UnixStream>,
    deadline: Option<Instant>,
    echo: bool,
    mut log: Option<&mut fs_err::File>,
) -> Result<Watched, SandboxError> {
    const REPORT: usize = 2;
    const CONTROL: usize = 3;
    let mut open: [Option<OwnedFd>; 3] = pipes.map(Some);
    let mut control = control;
    let mut watched = Watched {
        reports: Vec::new(),
        timed_out: false,
        cancelled: false,
        log_error: None,
    };
    let mut killed = false;
    let kill_tree = |killed: &mut bool| {
        if !*killed {
            // PID 1 dying takes every process of its namespace with it.
            let _ = kill(pid1, Signal::SIGKILL);
            *killed = true;
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    while open.iter().any(Option::is_some) {
        let mut slots = Vec::with_capacity(4);
        let mut fds = Vec::with_capacity(4);
        for (slot, fd) in open.iter().enumerate() {
            if let Some(fd) = fd {
                slots.push(slot);
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
        }
        if let Some(control) = control {
            slots.push(CONTROL);
            fds.push(PollFd::new(control.as_fd(), PollFlags::POLLIN));
        }
        let timeout = match deadline {
            Some(deadline) if !killed => {
                let left = deadline.saturating_duration_since(Instant::now());
                // Rounded up, so that the deadline has passed when poll returns empty-handed.
                let ms = left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 != 0);
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
            _ => PollTimeout::NONE,
        };
        let ready = match poll(&mut fds, timeout) {
            Ok(ready) => ready,
            Err(Errno::EINTR) => continue,
            Err(err) => return Err(SandboxError::setup("wait for the action", err)),
        };
        if ready == 0 {
            if deadline.is_some_and(|d| Instant::now() >= d) && !killed {
                watched.timed_out = true;
                kill_tree(&mut killed);
            }
            continue;
        }
        let revents: Vec<(usize, PollFlags)> = slots
            .iter()
            .zip(&fds)
            .map(|(slot, fd)| (*slot, fd.revents().unwrap_or(PollFlags::empty())))
            .collect();
        drop(fds);
        for (slot, events) in revents {
            if events.is_empty() {
                continue;
            }
            if slot == CONTROL {
                // The caller closed its end (cancel) or died: either way nothing may go on.
                let mut probe = [0u8; 64];
                let n = control.map_or(Ok(0), |c| nix::unistd::read(c.as_fd(), &mut probe));
                if matches!(n, Ok(0) | Err(_)) {
                    watched.cancelled = true;
                    kill_tree(&mut killed);
                    control = None;
                }
                continue;
            }
            let Some(fd) = &open[slot] else { continue };
            let n = match nix::unistd::read(fd.as_fd(), &mut buf) {
                Ok(n) => n,
                Err(Errno::EINTR | Errno::EAGAIN) => continue,
                Err(_) => 0,
            };
            if n == 0 {
                open[slot] = None;
                continue;
            }
            let chunk = &buf[..n];
            if slot == REPORT {
                watched.reports.extend_from_slice(chunk);
                continue;
            }
            if let Some(file) = log.as_deref_mut()
                && watched.log_error.is_none()
                && let Err(err) = file.write_all(chunk)
            {
                watched.log_error = Some(SandboxError::Log {
                    path: file.path().to_path_buf(),
                    message: err.to_string(),
                });
            }
            if echo {
                // SAFETY: fds 1 and 2 are this process's stdout and stderr for its lifetime.
                let target = unsafe { BorrowedFd::borrow_raw(if slot == 0 { 1 } else { 2 }) };
                write_all(target, chunk);
            }
        }
    }
    Ok(watched)
}

/// Best effort: a caller that closed its stdout does not stop the action.
fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}
