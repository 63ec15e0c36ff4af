//! A minimal `/dev`: a tmpfs holding binds of the host's harmless character devices, a private
//! `devpts` instance, `/dev/shm`, and the usual symlinks into `/proc/self/fd`.
//!
//! The device binds are read-only mounts: writing to a device still works, but the action
//! (which owns what the invoking user owns) cannot `chmod` or `chown` the host's nodes.

use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::unistd::symlinkat;

use super::{Kind, bind, create_mount_point, mkdir, mount_tmpfs};
use crate::error::SandboxError;

const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
const LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Builds `/dev` at `dev` (a skeleton path); mounts to make read-only are added to `read_only`.
pub(super) fn build(dev: &Path, read_only: &mut Vec<PathBuf>) -> Result<(), SandboxError> {
    mount_tmpfs(dev, "mode=0755", "`/dev`")?;
    for name in DEVICES {
        let node = dev.join(name);
        create_mount_point(&node, Kind::File)?;
        bind(&Path::new("/dev").join(name), &node)?;
        read_only.push(node);
    }
    for (name, target) in LINKS {
        symlinkat(target, nix::fcntl::AT_FDCWD, &dev.join(name))
            .map_err(|err| SandboxError::setup(format!("create `/dev/{name}`"), err))?;
    }
    let pts = dev.join("pts");
    mkdir(&pts)?;
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=620"),
    )
    .map_err(|err| SandboxError::setup("mount `/dev/pts`", err))?;
    let shm = dev.join("shm");
    mkdir(&shm)?;
    mount_tmpfs(&shm, "mode=1777", "`/dev/shm`")?;
    read_only.push(dev.to_path_buf());
    Ok(())
}
