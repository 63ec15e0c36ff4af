//! Remote execution against a real farm: BuildGrid over PostgreSQL (tests/it/common/buildgrid.rs)
//! with `refine worker` bots, and `refine build --executor` as the client
//! (docs/remote-execution.md). BuildGrid's own client, `bgd execute`, checks the worker as a
//! third party would.

mod build;
mod emulated;
mod faults;
mod tls;
mod verify;
mod worker;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::buildgrid::Farm;
use crate::common::refine_bin;

/// A `refine worker` process serving a farm, its stderr in a file; killed on drop.
pub struct Worker {
    child: Option<Child>,
    log: PathBuf,
    pub cache: PathBuf,
    _dir: tempfile::TempDir,
}

impl Worker {
    pub fn start(farm: &Farm, name: &str) -> Worker {
        Worker::start_with(farm, name, &[])
    }

    pub fn start_with(farm: &Farm, name: &str, extra: &[&str]) -> Worker {
        Worker::start_at(&endpoint(farm), name, extra)
    }

    /// A worker of the farm at `bots` (a `reapi://` or `grpcs://` address).
    pub fn start_at(bots: &str, name: &str, extra: &[&str]) -> Worker {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("worker.log");
        let cache = dir.path().join("cache");
        let child = Command::new(refine_bin())
            .args(["worker", "--bots", bots, "--name", name, "--cache"])
            .arg(&cache)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(File::create(&log).unwrap())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let w = Worker {
            child: Some(child),
            log,
            cache,
            _dir: dir,
        };
        w.wait_for("session `", Duration::from_secs(60));
        w
    }

    pub fn log(&self) -> String {
        fs_err::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the worker's log holds `text`; fails the test with the log otherwise.
    pub fn wait_for(&self, text: &str, within: Duration) {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if self.log().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the worker never logged `{text}`:\n{}", self.log());
    }

    /// SIGTERM, then waits for the worker to exit; its exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.as_ref().expect("the worker runs").id();
        signal(pid, nix::sys::signal::Signal::SIGTERM);
        self.wait_exit()
    }

    /// Waits for the worker to exit by itself (a stop, `--max-leases`); its exit status. Fails
    /// the test with the log if it is still running after a minute (a hang, not a slow exit).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let child = self.child.as_mut().expect("the worker runs");
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < until,
                "the worker did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the worker vanishes without a word to the farm.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The folders of the leases this worker is running (`CACHE/exec/action-*`).
    pub fn running_actions(&self) -> Vec<PathBuf> {
        fs_err::read_dir(self.cache.join("exec"))
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
}

/// The farm's address as refine writes it.
pub fn endpoint(farm: &Farm) -> String {
    format!("reapi://127.0.0.1:{}/{}", farm.port, farm.instance())
}

/// A busybox root folder (the `tiny` base's content) at `dir`.
pub fn busybox_root(dir: &Path) {
    let bin = dir.join("bin");
    fs_err::create_dir_all(&bin).unwrap();
    fs_err::copy(crate::common::BUSYBOX, bin.join("busybox")).unwrap();
    for tool in ["sh", "echo", "cat", "sleep", "mkdir", "ls"] {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
    }
}

/// Waits for `cond`, failing with `what` after `within`.
pub fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
