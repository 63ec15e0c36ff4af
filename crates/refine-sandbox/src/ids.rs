//! Who the action is: the uid and gid maps of the sandbox's user namespace.
//!
//! An ordinary invoking user is mapped to [`SANDBOX_UID`]: what it owns on the host, the action
//! owns, and `RLIMIT_NPROC` holds. The host's root is different: the kernel never applies
//! `RLIMIT_NPROC` to root's processes, and an action running as host root could leave set-uid
//! root files in a writable bind. So under root, as Nix's daemon does with its build users, the
//! action runs as an unprivileged host uid, [`HOST_BUILD_ID`], mapped to [`SANDBOX_UID`]; the
//! host's root is mapped to 0 so that the root tree's files keep their owner. `/work` and `/out`
//! host directories are handed to the build user; other writable binds must be writable by it.

use std::os::unix::fs::{MetadataExt, lchown};
use std::path::Path;

use nix::unistd::{Pid, getegid, geteuid};

use crate::error::SandboxError;
use crate::spec::{SANDBOX_GID, SANDBOX_UID};

/// The host uid and gid of actions when refine runs as root (`nobody` and `nogroup`).
pub const HOST_BUILD_ID: u32 = 65534;

/// The maps for one sandbox.
#[derive(Debug, Clone)]
pub(crate) struct IdMap {
    uid_map: String,
    gid_map: String,
    /// PID 1 is 0 in the namespace and the action must switch to [`SANDBOX_UID`].
    pub switch_user: bool,
}

impl IdMap {
    pub(crate) fn for_caller() -> IdMap {
        let (uid, gid) = (geteuid(), getegid());
        if uid.is_root() {
            IdMap {
                uid_map: format!("0 0 1\n{SANDBOX_UID} {HOST_BUILD_ID} 1\n"),
                gid_map: format!("0 {gid} 1\n{SANDBOX_GID} {HOST_BUILD_ID} 1\n"),
                switch_user: true,
            }
        } else {
            IdMap {
                uid_map: format!("{SANDBOX_UID} {uid} 1\n"),
                gid_map: format!("{SANDBOX_GID} {gid} 1\n"),
                switch_user: false,
            }
        }
    }

    /// Writes the maps of `pid`'s new user namespace from outside it (the parent namespace),
    /// where root may map other uids than its own.
    pub(crate) fn write(&self, pid: Pid) -> Result<(), SandboxError> {
        let proc = Path::new("/proc").join(pid.as_raw().to_string());
        let fail = |file: &str, err: std::io::Error| SandboxError::Namespaces {
            step: format!("write {file}"),
            message: err.to_string(),
        };
        if !self.switch_user {
            // An unprivileged writer must deny setgroups before it may write gid_map.
            fs_err::write(proc.join("setgroups"), "deny").map_err(|err| fail("setgroups", err))?;
        }
        fs_err::write(proc.join("uid_map"), &self.uid_map).map_err(|err| fail("uid_map", err))?;
        fs_err::write(proc.join("gid_map"), &self.gid_map).map_err(|err| fail("gid_map", err))
    }

    /// Gives `dir` and everything below it to the build user, so the action can write there.
    /// Symlinks are changed themselves and never followed.
    pub(crate) fn hand_over(&self, dir: &Path) -> Result<(), SandboxError> {
        if !self.switch_user {
            return Ok(());
        }
        let fail = |path: &Path, err: std::io::Error| {
            SandboxError::host_path(path, format!("cannot hand it to the build user: {err}"))
        };
        let mut pending = vec![dir.to_path_buf()];
        while let Some(path) = pending.pop() {
            let meta = fs_err::symlink_metadata(&path).map_err(|err| fail(&path, err))?;
            if meta.uid() != HOST_BUILD_ID || meta.gid() != HOST_BUILD_ID {
                lchown(&path, Some(HOST_BUILD_ID), Some(HOST_BUILD_ID))
                    .map_err(|err| fail(&path, err))?;
            }
            if meta.is_dir() {
                for entry in fs_err::read_dir(&path).map_err(|err| fail(&path, err))? {
                    pending.push(entry.map_err(|err| fail(&path, err))?.path());
                }
            }
        }
        Ok(())
    }
}
