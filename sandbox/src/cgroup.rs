//! The process limit where `RLIMIT_NPROC` cannot hold it.
//!
//! The kernel never applies `RLIMIT_NPROC` to processes whose real uid is the host's root, and
//! the sandbox user *is* the invoking user mapped. So when refine runs as root, each sandbox
//! gets its own `pids` cgroup (a child of refine's own, v1 `pids` hierarchy or v2 with the
//! `pids` controller delegated), which PID 1 joins before anything else starts in the sandbox.
//! For other users `RLIMIT_NPROC` suffices and no cgroup is made.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::unistd::Pid;

use crate::error::SandboxError;

/// A pids cgroup that is removed when dropped (after the sandbox's processes are gone).
pub(crate) struct PidsCgroup {
    dir: PathBuf,
    procs: fs_err::File,
}

static SERIAL: AtomicU64 = AtomicU64::new(0);

impl PidsCgroup {
    /// A cgroup that allows `limit` processes, or `None` when `RLIMIT_NPROC` already holds.
    pub(crate) fn for_limit(limit: Option<u64>) -> Result<Option<PidsCgroup>, SandboxError> {
        let Some(limit) = limit else { return Ok(None) };
        if !nix::unistd::getuid().is_root() {
            return Ok(None);
        }
        let Some(parent) = pids_hierarchy() else {
            return Err(SandboxError::setup(
                "enforce the process limit",
                "refine runs as root, for which the kernel ignores `RLIMIT_NPROC`, and no \
                 writable `pids` cgroup was found (`/sys/fs/cgroup/pids`, or cgroup v2 with the \
                 `pids` controller); run refine as another user, or set no process limit",
            ));
        };
        let name = format!(
            "refine-sandbox-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        );
        let dir = parent.join(name);
        let fail = |err: std::io::Error| SandboxError::setup("create a pids cgroup", err);
        fs_err::create_dir(&dir).map_err(fail)?;
        let made = (|| {
            fs_err::write(dir.join("pids.max"), limit.to_string())?;
            fs_err::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))
        })();
        match made {
            Ok(procs) => Ok(Some(PidsCgroup { dir, procs })),
            Err(err) => {
                let _ = fs_err::remove_dir(&dir);
                Err(fail(err))
            }
        }
    }

    /// Moves `pid` (PID 1, before it starts anything) into the cgroup.
    pub(crate) fn add(&mut self, pid: Pid) -> Result<(), SandboxError> {
        self.procs
            .write_all(pid.as_raw().to_string().as_bytes())
            .map_err(|err| SandboxError::setup("join the pids cgroup", err))
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let _ = fs_err::remove_dir(&self.dir);
    }
}

/// Where this process's pids cgroup lives, if a child of it can be made.
fn pids_hierarchy() -> Option<PathBuf> {
    let membership = fs_err::read_to_string("/proc/self/cgroup").ok()?;
    let relative = |path: &str| path.trim_start_matches('/').to_owned();
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        if controllers.split(',').any(|c| c == "pids") {
            let dir = Path::new("/sys/fs/cgroup/pids").join(relative(path));
            if dir.join("cgroup.procs").exists() {
                return Some(dir);
            }
        }
    }
    for line in membership.lines() {
        if let Some(path) = line.strip_prefix("0::") {
            let dir = Path::new("/sys/fs/cgroup").join(relative(path));
            let delegated = fs_err::read_to_string(dir.join("cgroup.subtree_control")).ok()?;
            if delegated.split_whitespace().any(|c| c == "pids") {
                return Some(dir);
            }
        }
    }
    None
}
