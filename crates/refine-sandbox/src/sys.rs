//! Thin wrappers over the system calls that `nix` 0.32 lacks or types awkwardly for use between
//! `fork` and `execve` (raw descriptor numbers, `close_range`, `capset`, interface flags).

use std::os::fd::RawFd;

use nix::errno::Errno;

/// `dup2` onto a fixed descriptor number (0, 1, 2), which `nix` only allows onto an `OwnedFd`.
pub fn dup2_raw(old: RawFd, new: RawFd) -> Result<(), Errno> {
    // SAFETY: plain system call on integers.
    Errno::result(unsafe { libc::dup2(old, new) }).map(drop)
}

/// Duplicates `fd` to a number ≥ `min`, close-on-exec.
pub fn dup_above(fd: RawFd, min: RawFd) -> Result<RawFd, Errno> {
    // SAFETY: plain system call on integers.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) })
}

/// Marks every descriptor from `first` up close-on-exec, so that the action inherits nothing
/// but 0, 1 and 2 while the report pipe stays usable until `execve` succeeds.
pub fn cloexec_from(first: RawFd) -> Result<(), Errno> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only sets flags on descriptors.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    Errno::result(ret).map(drop)
}

/// Empties the ambient and bounding sets, so that no `execve` can ever grant a capability.
/// Needs `CAP_SETPCAP`: call it before changing user.
pub fn drop_bounding_and_ambient() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments.
    Errno::result(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    })?;
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments; EINVAL past the last capability ends the loop.
        let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if ret < 0 {
            if Errno::last() == Errno::EINVAL {
                break;
            }
            return Err(Errno::last());
        }
    }
    Ok(())
}

/// Empties the effective, permitted and inheritable sets.
pub fn clear_capabilities() -> Result<(), Errno> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset(2) with a version-3 header and the two data words it expects.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// Brings the loopback interface of the current network namespace up.
pub fn loopback_up() -> Result<(), Errno> {
    // SAFETY: a datagram socket only used for the interface ioctls below, closed at the end.
    let sock = Errno::result(unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write `req`, which outlives the calls.
    let result = (|| {
        Errno::result(unsafe { libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) })?;
        // SAFETY: the union member for these ioctls is the flags.
        unsafe {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        }
        Errno::result(unsafe { libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) }).map(drop)
    })();
    // SAFETY: closing the socket opened above.
    unsafe { libc::close(sock) };
    result
}

/// Resets every signal to its default action and unblocks them all: dispositions set to
/// "ignore" (Rust ignores `SIGPIPE`) and the signal mask survive `execve`.
pub fn reset_signals() {
    for signal in 1..libc::SIGRTMAX() {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: setting a default disposition; errors for reserved signals are harmless.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
    // SAFETY: an empty set, then unblock everything.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// The number of threads of this process, from `/proc/self/stat`.
pub fn thread_count() -> Option<usize> {
    let stat = fs_err::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(17)?.parse().ok()
}

/// Makes the mount at `path` read-only, and with `recursive` every mount below it, in one
/// `mount_setattr` (Linux 5.12+). Unlike a remount it changes only that flag, so it needs no
/// re-passing of the locked `nosuid`/`nodev`/atime flags. `ENOSYS` on older kernels.
pub fn make_read_only(path: &std::path::Path, recursive: bool) -> Result<(), Errno> {
    use std::os::unix::ffi::OsStrExt;
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: mount_setattr(2) reads `attr` (of the size passed) and the NUL-terminated path.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}
