//! The re-executed, single-threaded helper process that sets up namespaces.
//!
//! [`Sandbox`](crate::Sandbox) starts an executable as `EXE __refine-sandbox-helper` with a Unix
//! socket as stdin: the caller writes the [`Spec`] as one frame, the helper runs
//! it and answers with one frame holding the result. Closing the caller's end cancels the run.
//! Every program that embeds the sandbox calls [`run_if_helper`] first in `main`, before any
//! thread exists; this crate also ships the `refine-sandbox-helper` binary that does only that.

use std::ffi::OsStr;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use nix::sys::signal::Signal;

use crate::spec::Spec;
use crate::supervise::supervise;
use crate::wire::{FINGERPRINT, HELPER_ARG, PROBE_ARG, read_frame, write_frame};

/// If this process was started as the sandbox helper, runs it and returns its exit code:
/// 0 when the result was handed back (whatever the action did), 125 when it could not be.
/// Started as a probe ([`PROBE_ARG`](crate::wire::PROBE_ARG)), answers 0 when the caller's
/// fingerprint is this build's, 3 when not.
pub fn run_if_helper() -> Option<u8> {
    let first = std::env::args_os().nth(1);
    if first.as_deref() == Some(OsStr::new(PROBE_ARG)) {
        let same = std::env::args_os().nth(2).as_deref() == Some(OsStr::new(FINGERPRINT));
        return Some(if same { 0 } else { 3 });
    }
    if first.as_deref() != Some(OsStr::new(HELPER_ARG)) {
        return None;
    }
    Some(helper_main())
}

fn helper_main() -> u8 {
    let started = Instant::now();
    // Nothing may outlive the caller: if it dies, the kernel kills the helper, and PID 1 and
    // with it the whole sandbox follow (each sets the same signal).
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() {
        return 125;
    }
    // Started as `/proc/self/fd/N`, the kernel names the process `N`: `ps` and `top` should
    // say what it is. Best effort, as the name is only shown.
    let _ = nix::sys::prctl::set_name(c"refine-sandbox");
    // The helper lives for one action and touches little memory: a transparent huge page
    // (which an allocator such as the CLI's may ask for) would cost a 2 MiB clear per fault.
    // Best effort; the action's processes inherit it, and it changes no output.
    let _ = nix::sys::prctl::set_thp_disable(true);
    // SAFETY: the caller made fd 0 our end of a socket pair; nothing else owns it.
    let control = unsafe { UnixStream::from_raw_fd(0) };
    // A caller that died before the line above leaves a closed socket: the read fails here, or
    // the supervisor sees end of file at once and cancels.
    let spec: Spec = match read_frame(&control) {
        Ok(spec) => spec,
        Err(_) => return 125,
    };
    let result = supervise(&spec, Some(&control), started);
    match write_frame(&control, &result) {
        Ok(()) => 0,
        Err(_) => 125,
    }
}
