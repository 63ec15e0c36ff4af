//! A minimal `/dev`: a tmpfs holding binds of the host's harmless character devices, a private
//! `devpts` instance, `/dev/shm`, and the usual symlinks into `/proc/self/fd`.
//!
//! The host's nodes belong to the host's root, which the action never is (see `ids`), so it
//! cannot `chmod` or `chown` them; `/dev` itself is made read-only.

use std::path::Path;

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

/// Builds `/dev` at `dev` (a skeleton path).
pub(super) fn build(dev: &Path) -> Result<(), SandboxError> {
    mount_tmpfs(dev, "mode=0755", "`/dev`")?;
    for name in DEVICES {
        let node = dev.join(name);
        create_mount_point(&node, Kind::File)?;
        bind(&Path::new("/dev").join(name), &node)?;
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
    super::read_only_mount(dev)
}
