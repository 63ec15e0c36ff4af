//! Copying a sandbox's `/out` to a host directory without ever following a symlink.
//!
//! An action controls every name in `/out`; a symlink there (`out/passwd -> /etc/passwd`) must
//! not make refine read a host file into an artifact. Every step is fd-relative with
//! `O_NOFOLLOW`: symlinks are copied as symlinks, never dereferenced; files are copied by
//! content without set-user-ID, set-group-ID or sticky bits; fifos, sockets and devices are
//! refused. Run it after the sandbox has ended, so nothing changes the tree meanwhile.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag, open, openat, readlinkat};
use nix::sys::stat::{Mode, SFlag, fchmod, fstatat, mkdirat};
use nix::unistd::symlinkat;

use crate::error::SandboxError;

/// What [`copy_out`] copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CopyStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
}

/// Copies the tree `from` (a host directory that backed `/out`) to `to`, which must not exist.
pub fn copy_out(from: &Path, to: &Path) -> Result<CopyStats, SandboxError> {
    let fail = |path: &Path, message: String| SandboxError::CopyOut {
        path: path.to_path_buf(),
        message,
    };
    let src = open(
        from,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| fail(from, err.desc().to_owned()))?;
    nix::unistd::mkdir(to, Mode::from_bits_truncate(0o755))
        .map_err(|err| fail(to, err.desc().to_owned()))?;
    let dst = open(
        to,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| fail(to, err.desc().to_owned()))?;
    let mut stats = CopyStats::default();
    copy_dir(&src, &dst, from, &mut stats)?;
    Ok(stats)
}

fn copy_dir(
    src: &OwnedFd,
    dst: &OwnedFd,
    path: &Path,
    stats: &mut CopyStats,
) -> Result<(), SandboxError> {
    let fail = |path: &Path, err: &dyn std::fmt::Display| SandboxError::CopyOut {
        path: path.to_path_buf(),
        message: err.to_string(),
    };
    let listing = src.try_clone().map_err(|err| fail(path, &err))?;
    let mut names = Vec::new();
    for entry in Dir::from_fd(listing)
        .map_err(|err| fail(path, &err))?
        .iter()
    {
        let entry = entry.map_err(|err| fail(path, &err))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    // Sorted, so that a failure is reported for the same entry every time.
    names.sort();
    for name in names {
        let name = OsStr::from_bytes(&name);
        let here = path.join(name);
        let stat =
            fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|err| fail(&here, &err))?;
        let mode = Mode::from_bits_truncate(stat.st_mode & 0o777);
        match SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => {
                // Owner rwx while copying, whatever the action set, so the copy can fill it.
                mkdirat(dst, name, Mode::from_bits_truncate(0o700))
                    .map_err(|err| fail(&here, &err))?;
                let flags =
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let sub_src =
                    openat(src, name, flags, Mode::empty()).map_err(|err| fail(&here, &err))?;
                let sub_dst =
                    openat(dst, name, flags, Mode::empty()).map_err(|err| fail(&here, &err))?;
                copy_dir(&sub_src, &sub_dst, &here, stats)?;
                fchmod(sub_dst.as_fd(), mode | Mode::S_IRWXU).map_err(|err| fail(&here, &err))?;
                stats.dirs += 1;
            }
            SFlag::S_IFREG => {
                let input = openat(
                    src,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|err| fail(&here, &err))?;
                let output = openat(
                    dst,
                    name,
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    mode,
                )
                .map_err(|err| fail(&here, &err))?;
                let mut input = std::fs::File::from(input);
                let mut output = std::fs::File::from(output);
                stats.bytes +=
                    std::io::copy(&mut input, &mut output).map_err(|err| fail(&here, &err))?;
                fchmod(output.as_fd(), mode).map_err(|err| fail(&here, &err))?;
                stats.files += 1;
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(src, name).map_err(|err| fail(&here, &err))?;
                symlinkat(target.as_os_str(), dst.as_fd(), name)
                    .map_err(|err| fail(&here, &err))?;
                stats.symlinks += 1;
            }
            _ => {
                return Err(fail(
                    &here,
                    &"it is a fifo, socket or device; outputs may only be files, directories and symlinks",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_are_copied_not_followed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let host_secret = tmp.path().join("secret");
        fs_err::write(&host_secret, "host secret").expect("write");
        let out = tmp.path().join("out");
        fs_err::create_dir_all(out.join("pkg/sub")).expect("mkdir");
        fs_err::write(out.join("pkg/a.txt"), "a").expect("write");
        std::os::unix::fs::symlink(&host_secret, out.join("leak")).expect("symlink");
        std::os::unix::fs::symlink("/etc/passwd", out.join("pkg/passwd")).expect("symlink");
        std::os::unix::fs::symlink(tmp.path(), out.join("pkg/sub/up")).expect("symlink");

        let copy = tmp.path().join("copy");
        let stats = copy_out(&out, &copy).expect("copy");
        assert_eq!((stats.files, stats.dirs, stats.symlinks), (1, 2, 3));
        assert_eq!(
            fs_err::read_to_string(copy.join("pkg/a.txt")).expect("read"),
            "a"
        );
        for link in ["leak", "pkg/passwd", "pkg/sub/up"] {
            let meta = fs_err::symlink_metadata(copy.join(link)).expect("stat");
            assert!(meta.file_type().is_symlink(), "{link} must stay a symlink");
        }
        // No regular file of the copy holds the host file's content.
        let mut stack = vec![copy.clone()];
        while let Some(dir) = stack.pop() {
            for entry in fs_err::read_dir(&dir).expect("list") {
                let entry = entry.expect("entry");
                let kind = entry.file_type().expect("type");
                if kind.is_dir() {
                    stack.push(entry.path());
                } else if kind.is_file() {
                    assert_ne!(
                        fs_err::read_to_string(entry.path()).expect("read"),
                        "host secret"
                    );
                }
            }
        }
    }

    #[test]
    fn a_symlinked_out_dir_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("/etc", tmp.path().join("out")).expect("symlink");
        assert!(copy_out(&tmp.path().join("out"), &tmp.path().join("copy")).is_err());
    }

    #[test]
    fn setuid_bits_are_dropped() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("out");
        fs_err::create_dir(&out).expect("mkdir");
        fs_err::write(out.join("tool"), "#!/bin/sh\n").expect("write");
        fs_err::set_permissions(out.join("tool"), std::fs::Permissions::from_mode(0o4755))
            .expect("chmod");
        copy_out(&out, &tmp.path().join("copy")).expect("copy");
        let mode = fs_err::metadata(tmp.path().join("copy/tool"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
    }
}
