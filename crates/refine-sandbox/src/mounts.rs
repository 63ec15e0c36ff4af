//! The sandbox's file system, built by PID 1 inside the new mount namespace.
//!
//! The root tree is never written to, not even to create mount points. A tree that already
//! holds every mount point is bound whole, read-only. Otherwise (`/work`, `/out` and the bind
//! targets rarely exist in a base tree) the new `/` is a small read-only tmpfs *skeleton*:
//! along the path of every mount point the skeleton holds real directories, and every other
//! entry of the root tree at those levels is mirrored into it (directories and files as binds
//! from one read-only view of the tree, symlinks as copies). With no binds that is one bind per
//! top-level entry of the root.
//!
//! Everything in the root tree is opened fd-relative with `O_NOFOLLOW`: a symlink in the tree
//! is never followed while building, so it cannot make the sandbox mount a host path. Host
//! paths (the root itself, bind sources, `/work` and `/out` directories) are opened before
//! anything is mounted over them and bound through `/proc/self/fd/N`.

mod dev;
mod plan;

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat, readlinkat};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::sys::statvfs::{FsFlags, statvfs};
use nix::unistd::{chdir, pivot_root, symlinkat};

use crate::error::SandboxError;
use crate::spec::{SANDBOX_GID, SANDBOX_UID, Spec, Writable};
use crate::sys;

pub(crate) use plan::{Kind, Step, plan};

/// Where the new root is assembled before `pivot_root`. Any existing directory works, as the
/// mount namespace is private; host paths below it stay reachable through the fds opened first.
/// A whole root tree is bound right here; a skeleton gets a tmpfs here that holds both
/// [`SKELETON`] and [`VIEW`].
const STAGE: &str = "/tmp";
/// The skeleton, bound onto itself so that it is a mount of its own (for `pivot_root` and for
/// its read-only flag).
const SKELETON: &str = "/tmp/root";
/// The read-only view of the root tree that the skeleton's entries are bound from. It sits
/// beside the skeleton, not in it, so it leaves with the host root when that is detached: an
/// unmount of its own would cost a grace period of the kernel's (a third of a millisecond).
const VIEW: &str = "/tmp/view";

/// Host paths, opened before anything is mounted.
struct Sources {
    root: OwnedFd,
    binds: Vec<(OwnedFd, Kind)>,
    work: Option<OwnedFd>,
    out: Option<OwnedFd>,
}

/// Builds the sandbox's file system and enters it: on success the calling process has the new
/// root as `/` and cwd `/`. Must run as PID 1, in the sandbox's own mount namespace (not the
/// helper's: `pivot_root` moves the root of every process of a mount namespace).
pub(crate) fn enter(spec: &Spec) -> Result<(), SandboxError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|err| SandboxError::setup("make mounts private", err))?;
    let sources = open_sources(spec)?;

    let mut targets = vec![
        (PathBuf::from("/proc"), Kind::Dir),
        (PathBuf::from("/dev"), Kind::Dir),
        (PathBuf::from("/tmp"), Kind::Dir),
        (PathBuf::from("/work"), Kind::Dir),
        (PathBuf::from("/out"), Kind::Dir),
    ];
    targets.extend(
        spec.binds
            .iter()
            .zip(&sources.binds)
            .map(|(bind, (_, kind))| (bind.target.clone(), *kind)),
    );
    // A root tree that already holds every mount point (a base artifact can ship empty
    // `/work`, `/out`, `/src`) is bound whole: one mount instead of a skeleton.
    let whole = targets
        .iter()
        .all(|(path, kind)| has_mount_point(&sources.root, path, *kind));
    let stage = if whole {
        bind_fd(&sources.root, Path::new(STAGE))?;
        read_only_tree(Path::new(STAGE))?;
        Path::new(STAGE)
    } else {
        build_skeleton(&sources.root, &targets)?;
        Path::new(SKELETON)
    };
    let staged = |path: &Path| staged(stage, path);
    let owned_by_sandbox_user = format!("mode=0755,uid={SANDBOX_UID},gid={SANDBOX_GID}");
    let mut read_only = Vec::new();

    mount(
        Some("proc"),
        &staged(Path::new("/proc")),
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|err| SandboxError::setup("mount a fresh `/proc`", err))?;
    dev::build(&staged(Path::new("/dev")))?;
    mount_tmpfs(&staged(Path::new("/tmp")), "mode=1777", "`/tmp`")?;
    for (fd, target) in [(&sources.work, "/work"), (&sources.out, "/out")] {
        match fd {
            Some(fd) => bind_fd(fd, &staged(Path::new(target)))?,
            None => mount_tmpfs(&staged(Path::new(target)), &owned_by_sandbox_user, target)?,
        }
    }
    for (bind, (fd, _)) in spec.binds.iter().zip(&sources.binds) {
        bind_fd(fd, &staged(&bind.target))?;
        if bind.read_only {
            read_only.push(staged(&bind.target));
        }
    }
    for path in &read_only {
        read_only_tree(path)?;
    }
    // Not recursive: `/tmp`, `/work`, `/out`, `/proc` and `/dev` below stay as they are.
    if !whole {
        read_only_mount(stage)?;
    }

    chdir(stage).map_err(|err| SandboxError::setup("enter the skeleton", err))?;
    // pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only the
    // new root, with no directory needed for the old one (see pivot_root(2)).
    pivot_root(".", ".").map_err(|err| SandboxError::setup("pivot_root", err))?;
    umount2(".", MntFlags::MNT_DETACH)
        .map_err(|err| SandboxError::setup("detach the host root", err))?;
    chdir("/").map_err(|err| SandboxError::setup("enter the new root", err))?;
    Ok(())
}

/// Builds the skeleton at [`SKELETON`]: the root tree's entries mirrored around the paths of
/// `targets`, whose mount points it creates.
fn build_skeleton(root: &OwnedFd, targets: &[(PathBuf, Kind)]) -> Result<(), SandboxError> {
    let steps = plan(targets, |dir| list_root_dir(root, dir))?;
    mount_tmpfs(Path::new(STAGE), "mode=0755", "the root skeleton")?;
    let skeleton = Path::new(SKELETON);
    mkdir(skeleton)?;
    bind(skeleton, skeleton)?;
    let staged = |path: &Path| staged(skeleton, path);
    // One read-only view of the whole root tree: every mirrored entry is bound from it and so
    // inherits its read-only flag, without a remount of its own.
    let view_path = Path::new(VIEW);
    mkdir(view_path)?;
    bind_fd(root, view_path)?;
    read_only_tree(view_path)?;
    let view = open(
        view_path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| SandboxError::setup("open the view of the root", err))?;
    for step in &steps {
        match step {
            Step::Mkdir(path) => mkdir(&staged(path))?,
            Step::Mirror { path, kind } => {
                let fd = open_beneath(&view, path, OFlag::O_PATH).map_err(|err| {
                    SandboxError::setup(format!("open `{}` of the root", path.display()), err)
                })?;
                create_mount_point(&staged(path), *kind)?;
                bind_fd(&fd, &staged(path))?;
            }
            Step::Symlink { path } => {
                let (parent, name) = split(path)?;
                let dir = open_beneath(root, parent, OFlag::O_PATH | OFlag::O_DIRECTORY).map_err(
                    |err| {
                        SandboxError::setup(format!("open `{}` of the root", parent.display()), err)
                    },
                )?;
                let target = readlinkat(&dir, name).map_err(|err| {
                    SandboxError::setup(
                        format!("read the symlink `{}` of the root", path.display()),
                        err,
                    )
                })?;
                symlinkat(target.as_os_str(), nix::fcntl::AT_FDCWD, &staged(path)).map_err(
                    |err| {
                        SandboxError::setup(format!("copy the symlink `{}`", path.display()), err)
                    },
                )?;
            }
        }
    }
    for (target, kind) in targets {
        create_mount_point(&staged(target), *kind)?;
    }
    Ok(())
}

/// Whether `path` exists in the root tree as `kind`, reached without any symlink.
fn has_mount_point(root: &OwnedFd, path: &Path, kind: Kind) -> bool {
    let Ok(fd) = open_beneath(root, path, OFlag::O_PATH) else {
        return false;
    };
    let Ok(stat) = fstat(&fd) else { return false };
    // A symlink never counts: a mount onto it would follow it.
    let wanted = if kind == Kind::Dir {
        SFlag::S_IFDIR
    } else {
        SFlag::S_IFREG
    };
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == wanted
}

fn open_sources(spec: &Spec) -> Result<Sources, SandboxError> {
    let open_dir = |path: &Path| {
        open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|err| SandboxError::host_path(path, err.desc()))
    };
    let root = open_dir(&spec.root)?;
    let mut binds = Vec::with_capacity(spec.binds.len());
    for bind in &spec.binds {
        let fd = open(
            &bind.source,
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|err| SandboxError::host_path(&bind.source, err.desc()))?;
        let stat = fstat(&fd).map_err(|err| SandboxError::host_path(&bind.source, err.desc()))?;
        let kind =
            if SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR {
                Kind::Dir
            } else {
                Kind::File
            };
        binds.push((fd, kind));
    }
    let writable = |w: &Writable| match w {
        Writable::Tmpfs => Ok(None),
        Writable::Host(dir) => open_dir(dir).map(Some),
    };
    Ok(Sources {
        root,
        binds,
        work: writable(&spec.work)?,
        out: writable(&spec.out)?,
    })
}

/// Lists a directory of the root tree; `None` if it does not exist there.
fn list_root_dir(
    root: &OwnedFd,
    dir: &Path,
) -> Result<Option<Vec<(std::ffi::OsString, Kind)>>, SandboxError> {
    let fd = match open_beneath(root, dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP | Errno::ENOTDIR) => {
            return Err(SandboxError::InvalidSpec {
                message: format!(
                    "A mount point needs `{}` of the root to be a directory, but it is a symlink or a \
                     file; bind to the path it points to instead",
                    dir.display()
                ),
            });
        }
        Err(err) => {
            return Err(SandboxError::setup(
                format!("open `{}` of the root", dir.display()),
                err,
            ));
        }
    };
    let dup = fd
        .try_clone()
        .map_err(|err| SandboxError::setup(format!("list `{}` of the root", dir.display()), err))?;
    let mut listing = nix::dir::Dir::from_fd(dup)
        .map_err(|err| SandboxError::setup(format!("list `{}` of the root", dir.display()), err))?;
    let mut entries = Vec::new();
    for entry in listing.iter() {
        let entry = entry.map_err(|err| {
            SandboxError::setup(format!("list `{}` of the root", dir.display()), err)
        })?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        use nix::dir::Type;
        let kind = match entry.file_type() {
            Some(Type::Directory) => Kind::Dir,
            Some(Type::File) => Kind::File,
            Some(Type::Symlink) => Kind::Symlink,
            Some(_) => Kind::Other,
            None => {
                let stat =
                    nix::sys::stat::fstatat(&fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                        .map_err(|err| {
                            SandboxError::setup(
                                format!("inspect `{}` of the root", dir.join(name).display()),
                                err,
                            )
                        })?;
                match SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) {
                    SFlag::S_IFDIR => Kind::Dir,
                    SFlag::S_IFREG => Kind::File,
                    SFlag::S_IFLNK => Kind::Symlink,
                    _ => Kind::Other,
                }
            }
        };
        entries.push((name.to_owned(), kind));
    }
    Ok(Some(entries))
}

/// Opens `path` (absolute, relative to `root`) one component at a time without following any
/// symlink, so the result is always inside the root tree.
fn open_beneath(root: &OwnedFd, path: &Path, last: OFlag) -> nix::Result<OwnedFd> {
    let names: Vec<&OsStr> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    let Some((final_name, parents)) = names.split_last() else {
        return root
            .try_clone()
            .map_err(|err| Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO)));
    };
    let mut dir: Option<OwnedFd> = None;
    for name in parents {
        let base = dir.as_ref().map_or(root.as_fd(), |fd| fd.as_fd());
        let next = openat(
            base,
            *name,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        dir = Some(next);
    }
    let base = dir.as_ref().map_or(root.as_fd(), |fd| fd.as_fd());
    openat(
        base,
        *final_name,
        last | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn split(path: &Path) -> Result<(&Path, &OsStr), SandboxError> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(SandboxError::setup(
            format!("split `{}`", path.display()),
            "no parent",
        )),
    }
}

/// Where a sandbox path is while the new root is assembled at `stage`.
fn staged(stage: &Path, path: &Path) -> PathBuf {
    let mut staged = stage.to_path_buf();
    staged.push(path.strip_prefix("/").unwrap_or(path));
    staged
}

fn mkdir(path: &Path) -> Result<(), SandboxError> {
    match nix::unistd::mkdir(path, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(err) => Err(SandboxError::setup(
            format!("create `{}`", path.display()),
            err,
        )),
    }
}

fn create_mount_point(path: &Path, kind: Kind) -> Result<(), SandboxError> {
    if kind == Kind::Dir {
        return mkdir(path);
    }
    open(
        path,
        OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(0o644),
    )
    .map(drop)
    .map_err(|err| SandboxError::setup(format!("create `{}`", path.display()), err))
}

fn bind_fd(fd: &OwnedFd, target: &Path) -> Result<(), SandboxError> {
    let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
    bind(Path::new(&source), target)
}

/// Recursive: in a user namespace the kernel refuses to bind a directory without the mounts
/// below it (they could hide files), so those come along and are made read-only too.
pub(crate) fn bind(source: &Path, target: &Path) -> Result<(), SandboxError> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|err| SandboxError::setup(format!("bind `{}`", target.display()), err))
}

pub(crate) fn mount_tmpfs(target: &Path, options: &str, what: &str) -> Result<(), SandboxError> {
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options),
    )
    .map_err(|err| SandboxError::setup(format!("mount a tmpfs for {what}"), err))
}

/// Makes the mount at `path` and every mount below it read-only.
fn read_only_tree(path: &Path) -> Result<(), SandboxError> {
    match sys::make_read_only(path, true) {
        // Before Linux 5.12 only the top mount can be made read-only.
        Err(Errno::ENOSYS) => remount_read_only(path),
        result => result.map_err(|err| {
            SandboxError::setup(format!("make `{}` read-only", path.display()), err)
        }),
    }
}

/// Makes only the mount at `path` read-only.
pub(crate) fn read_only_mount(path: &Path) -> Result<(), SandboxError> {
    match sys::make_read_only(path, false) {
        Err(Errno::ENOSYS) => remount_read_only(path),
        result => result.map_err(|err| {
            SandboxError::setup(format!("make `{}` read-only", path.display()), err)
        }),
    }
}

/// Makes a mount read-only the old way, for kernels without `mount_setattr`. In a user namespace the remount must re-pass the flags the mount
/// already has (`nosuid`, `nodev`, `noexec`, atime), or the kernel refuses with `EPERM`.
fn remount_read_only(path: &Path) -> Result<(), SandboxError> {
    let fail = |err: nix::errno::Errno| {
        SandboxError::setup(format!("make `{}` read-only", path.display()), err)
    };
    let current = statvfs(path).map_err(fail)?.flags();
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
    for (have, keep) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if current.contains(have) {
            flags |= keep;
        }
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>).map_err(fail)
}
