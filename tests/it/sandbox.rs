//! `refine sandbox run`, end to end: isolation, limits, exit codes, foreign arch.
//!
//! Each isolation test has a positive control where it matters (the probe works when the
//! barrier is lifted), so that it fails if the feature it tests is removed. The test root is a
//! temporary directory with the host's `/usr` bound read-only and the usual merged-`/usr`
//! symlinks; probes use `sh` and `perl` (Debian's perl-base is always installed).
//!
//! s390x tests need `REFINE_TEST_S390X_BUSYBOX` (default `/var/cache/refine-tests/busybox-s390x`)
//! and `REFINE_TEST_S390X_ROOT` (default `/var/cache/refine-tests/s390x-bookworm`); run
//! `.ci/setup.d/sandbox.sh` as root to create them.

// Two probes need raw system calls (`pidfd_open`, a TIOCSTI ioctl): the sandbox crate and
// these tests are the only places `unsafe` is allowed.
#![allow(unsafe_code)]

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

const REFINE: &str = env!("CARGO_BIN_EXE_refine");

/// A root with nothing of its own but the merged-`/usr` symlinks; `/usr` comes from the host.
fn host_root() -> TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    for (link, target) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        std::os::unix::fs::symlink(target, root.path().join(link)).expect("symlink");
    }
    fs_err::create_dir(root.path().join("etc")).expect("mkdir");
    fs_err::write(root.path().join("etc/marker"), "root marker\n").expect("write");
    root
}

fn sandbox(root: &Path) -> Command {
    let mut cmd = Command::new(REFINE);
    cmd.args(["sandbox", "run", "--root"])
        .arg(root)
        .args(["--bind", "/usr:/usr:ro"]);
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `sh -c SCRIPT` in the sandbox with `extra` arguments.
fn sh(root: &Path, extra: &[&str], script: &str) -> Output {
    sandbox(root)
        .args(extra)
        .args(["--", "/bin/sh", "-c", script])
        .output()
        .expect("run refine")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A directory outside `/tmp` (which the sandbox replaces), so that only the sandbox's barriers
/// stand between the action and it.
fn host_dir() -> TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir")
}

/// Host processes whose command line holds `token`.
fn processes_with(token: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs_err::read_dir("/proc").expect("list /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = fs_err::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).contains(token)
        {
            found.push(pid);
        }
    }
    found
}

#[test]
fn runs_a_command_and_streams_its_output_to_the_caller_and_the_log() {
    let root = host_root();
    let dir = host_dir();
    let log = dir.path().join("action.log");
    let output = sh(
        root.path(),
        &["--log", log.to_str().expect("utf-8")],
        "cat /etc/marker; echo to-stderr >&2; exit 3",
    );
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert_eq!(stdout(&output), "root marker\n");
    assert!(String::from_utf8_lossy(&output.stderr).contains("to-stderr"));
    let logged = fs_err::read_to_string(&log).expect("log");
    assert!(
        logged.contains("root marker") && logged.contains("to-stderr"),
        "{logged}"
    );
}

#[test]
fn exit_codes_tell_what_happened() {
    let root = host_root();
    let code = |extra: &[&str], cmd: &[&str]| {
        let output = sandbox(root.path())
            .args(extra)
            .arg("--")
            .args(cmd)
            .output()
            .expect("run refine");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(code(&[], &["/bin/sh", "-c", "exit 0"]).0, Some(0));
    assert_eq!(code(&[], &["/bin/sh", "-c", "exit 42"]).0, Some(42));
    let (status, stderr) = code(&[], &["/bin/sh", "-c", "kill -TERM $$"]);
    assert_eq!(status, Some(128 + 15), "{stderr}");
    assert!(stderr.contains("signal 15 (SIGTERM)"), "{stderr}");
    let (status, stderr) = code(&["--timeout", "0.5"], &["/bin/sh", "-c", "exec sleep 1000"]);
    assert_eq!(status, Some(124), "{stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    let (status, stderr) = code(&[], &["no-such-program"]);
    assert_eq!(status, Some(127), "{stderr}");
    assert!(
        stderr.contains("`no-such-program` was not found"),
        "{stderr}"
    );
    assert_eq!(code(&[], &["/etc/marker"]).0, Some(126));
    let (status, stderr) = code(&["--bind", "/does/not/exist:/x"], &["/bin/true"]);
    assert_eq!(status, Some(125), "{stderr}");
    assert!(stderr.contains("/does/not/exist"), "{stderr}");
    let (status, stderr) = code(&["--bind", "nonsense"], &["/bin/true"]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("`SRC:DST`"), "{stderr}");
}

#[test]
fn host_files_outside_the_binds_cannot_be_read() {
    let root = host_root();
    let secret_dir = host_dir();
    let secret = secret_dir.path().join("secret");
    fs_err::write(&secret, "host secret\n").expect("write");
    let probe = |path: &Path| {
        format!(
            "cat {} /etc/hostname /root/.bashrc 2>&1; true",
            path.display()
        )
    };
    let output = sh(root.path(), &[], &probe(&secret));
    assert!(output.status.success(), "{}", describe(&output));
    assert!(
        !stdout(&output).contains("host secret"),
        "{}",
        describe(&output)
    );
    assert!(
        stdout(&output).contains("No such file"),
        "{}",
        describe(&output)
    );

    // Control: bound in, the same probe reads it.
    let bind = format!("{}:/secret:ro", secret_dir.path().display());
    let output = sh(
        root.path(),
        &["--bind", &bind],
        &probe(Path::new("/secret/secret")),
    );
    assert!(
        stdout(&output).contains("host secret"),
        "{}",
        describe(&output)
    );
}

#[test]
fn the_root_and_read_only_binds_cannot_be_written() {
    let root = host_root();
    let ro = host_dir();
    let rw = host_dir();
    // Under root the action is an unprivileged build user: a writable bind must let it write.
    fs_err::set_permissions(
        rw.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let binds = [
        "--bind".to_owned(),
        format!("{}:/ro:ro", ro.path().display()),
        "--bind".to_owned(),
        format!("{}:/rw", rw.path().display()),
    ];
    let binds: Vec<&str> = binds.iter().map(String::as_str).collect();
    let output = sh(
        root.path(),
        &binds,
        "for f in /new /etc/marker /ro/new /usr/new /rw/new; do \
             if echo x > $f 2>/dev/null; then echo \"wrote $f\"; else echo \"refused $f\"; fi; \
         done; \
         if mount -o remount,rw / 2>/dev/null || mount -o remount,bind,rw /ro 2>/dev/null; then \
             echo remounted; fi",
    );
    let text = stdout(&output);
    for refused in ["/new", "/etc/marker", "/ro/new", "/usr/new"] {
        assert!(
            text.contains(&format!("refused {refused}\n")),
            "{}",
            describe(&output)
        );
    }
    assert!(text.contains("wrote /rw/new"), "{}", describe(&output));
    assert!(!text.contains("remounted"), "{}", describe(&output));
    assert!(!root.path().join("new").exists() && !ro.path().join("new").exists());
    assert_eq!(
        fs_err::read_to_string(root.path().join("etc/marker")).expect("read"),
        "root marker\n"
    );
    assert_eq!(
        fs_err::read_to_string(rw.path().join("new")).expect("read"),
        "x\n"
    );
}

#[test]
fn only_loopback_is_reachable() {
    let root = host_root();
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let probe = format!(
        r#"use IO::Socket::INET;
           my $host = IO::Socket::INET->new(PeerAddr => "127.0.0.1:{port}", Timeout => 5);
           print $host ? "reached host\n" : "host unreachable: $!\n";
           my $own = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:{port}") or die "listen: $!";
           my $self = IO::Socket::INET->new(PeerAddr => "127.0.0.1:{port}", Timeout => 5);
           print $self ? "own loopback works\n" : "own loopback broken: $!\n";
           open(my $dev, "<", "/proc/net/dev") or die;
           my @ifaces = map {{ /^\s*([^:\s]+):/ ? $1 : () }} <$dev>;
           print "interfaces: @ifaces\n";"#
    );
    let output = sandbox(root.path())
        .args(["--", "/usr/bin/perl", "-e", &probe])
        .output()
        .expect("run");
    let text = stdout(&output);
    assert!(text.contains("host unreachable"), "{}", describe(&output));
    assert!(text.contains("own loopback works"), "{}", describe(&output));
    assert!(text.contains("interfaces: lo\n"), "{}", describe(&output));
    assert!(
        listener.accept().is_err(),
        "the host's listener got a connection"
    );
}

#[test]
fn a_root_holding_every_mount_point_is_bound_whole_and_read_only() {
    let root = host_root();
    for dir in ["proc", "dev", "tmp", "work", "out", "usr"] {
        fs_err::create_dir(root.path().join(dir)).expect("mkdir");
    }
    let output = sh(
        root.path(),
        &[],
        "for f in /new /etc/marker /work/new; do \
             if echo x > $f 2>/dev/null; then echo \"wrote $f\"; else echo \"refused $f\"; fi; \
         done; grep -c ' / ' /proc/self/mounts",
    );
    let text = stdout(&output);
    assert!(
        text.contains("refused /new\nrefused /etc/marker\nwrote /work/new\n"),
        "{}",
        describe(&output)
    );
    // One mount at `/`: the root itself, not a skeleton.
    assert!(text.ends_with("1\n"), "{}", describe(&output));
    assert_eq!(
        fs_err::read_to_string(root.path().join("etc/marker")).expect("read"),
        "root marker\n"
    );
    assert!(!root.path().join("new").exists());
}

#[test]
fn host_processes_cannot_be_seen_or_signalled() {
    let root = host_root();
    let mut victim = Command::new("/bin/sleep")
        .arg("1000.31415")
        .spawn()
        .expect("spawn sleep");
    let pid = victim.id();
    let output = sh(
        root.path(),
        &[],
        &format!(
            "if kill -0 {pid} 2>/dev/null || kill -KILL {pid} 2>/dev/null; then echo signalled; fi; \
             if [ -e /proc/{pid} ]; then echo visible; fi; \
             echo pids: $(ls /proc | grep -c '^[0-9]')"
        ),
    );
    let text = stdout(&output);
    let still_running = victim.try_wait().expect("try_wait").is_none();
    let _ = victim.kill();
    let _ = victim.wait();
    assert!(
        still_running,
        "the host process was killed from the sandbox"
    );
    assert!(
        !text.contains("signalled") && !text.contains("visible"),
        "{}",
        describe(&output)
    );
    // PID 1, the shell, the command substitution's subshell, `ls` and `grep`.
    let pids: u32 = text
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("count");
    assert!(pids <= 5, "{}", describe(&output));
}

#[test]
fn the_environment_holds_only_what_was_given() {
    let root = host_root();
    let output = sandbox(root.path())
        .env("REFINE_TEST_HOST_SECRET", "leaked")
        .args(["--env", "A=1", "--env", "B=two words", "--", "/usr/bin/env"])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(stdout(&output), "A=1\nB=two words\n");
}

/// `refine sandbox run` lives milliseconds: it turns transparent huge pages off before its
/// first allocation (src/allocator.rs), and the action inherits the switch.
#[test]
fn a_sandbox_run_starts_without_transparent_huge_pages() {
    let root = host_root();
    let output = sh(root.path(), &[], "grep '^THP_enabled:' /proc/self/status");
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        stdout(&output),
        "THP_enabled:\t0\n",
        "{}",
        describe(&output)
    );
}

#[test]
fn memory_and_open_file_limits_apply() {
    let root = host_root();
    let output = sh(
        root.path(),
        &["--open-files", "100", "--memory", "1073741824"],
        "ulimit -n; ulimit -v; ulimit -c",
    );
    assert!(output.status.success(), "{}", describe(&output));
    // `ulimit -v` counts KiB; core dumps are always off.
    assert_eq!(stdout(&output), "100\n1048576\n0\n");
}

#[test]
fn a_fork_bomb_stops_at_the_process_limit() {
    let root = host_root();
    // Forks sleeping children until fork fails; 2000 means no limit held it.
    let bomb = r#"my $n = 0;
        while ($n < 2000) {
            my $pid = fork();
            if (!defined $pid) { print "stopped at $n\n"; exit 0 }
            if ($pid == 0) { sleep 1000; exit 0 }
            $n++;
        }
        print "no limit\n"; exit 1"#;
    let output = sandbox(root.path())
        .args(["--processes", "50", "--", "/usr/bin/perl", "-e", bomb])
        .output()
        .expect("run");
    let text = stdout(&output);
    let stopped: u32 = text
        .strip_prefix("stopped at ")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}", describe(&output)));
    assert!(stopped < 50, "{}", describe(&output));
}

#[test]
fn a_timeout_kills_grandchildren_and_leaves_nothing_running() {
    let root = host_root();
    let token = "1000.27182";
    let output = sh(
        root.path(),
        &["--timeout", "4"],
        &format!(
            "sh -c 'echo grandchild up; exec sleep {token}' & \
             sh -c 'sleep {token} & sleep {token}' & \
             wait"
        ),
    );
    assert_eq!(output.status.code(), Some(124), "{}", describe(&output));
    assert!(
        stdout(&output).contains("grandchild up"),
        "{}",
        describe(&output)
    );
    assert_eq!(
        processes_with(token),
        Vec::<u32>::new(),
        "sandbox processes survived"
    );
}

#[test]
fn nothing_outlives_a_killed_refine() {
    use std::io::{BufRead, BufReader};
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};
    use std::os::unix::fs::PermissionsExt;

    let root = host_root();
    let signal = host_dir();
    let fifo = signal.path().join("ready");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).expect("mkfifo");
    // Under root the action is an unprivileged build user, which must reach the fifo.
    for path in [signal.path(), fifo.as_path()] {
        fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let token = "1000.14142";
    let mut refine = sandbox(root.path())
        .arg("--bind")
        .arg(format!("{}:/signal", signal.path().display()))
        .args(["--", "/bin/sh", "-c"])
        .arg(format!("sleep {token} & echo ready > /signal/ready; wait"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn refine");
    let mut line = String::new();
    BufReader::new(fs_err::File::open(&fifo).expect("open fifo"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line, "ready\n");
    // A pidfd becomes readable when its process has exited.
    let pidfds: Vec<OwnedFd> = processes_with(token)
        .into_iter()
        .map(|pid| {
            // SAFETY: pidfd_open returns a new descriptor or -1.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
            assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
            // SAFETY: a fresh descriptor that nothing else owns.
            unsafe { OwnedFd::from_raw_fd(fd as i32) }
        })
        .collect();
    assert!(!pidfds.is_empty(), "the sandboxed sleep is not running");
    refine.kill().expect("kill refine");
    refine.wait().expect("wait refine");
    for pidfd in &pidfds {
        let mut fds = [nix::poll::PollFd::new(
            pidfd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        // A bound for a broken build, not a timing assertion: the kernel acts at once.
        let ready =
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(60_000u16)).expect("poll");
        assert_eq!(ready, 1, "a sandboxed process outlived refine");
    }
}

#[test]
fn background_processes_end_with_the_action() {
    let root = host_root();
    let token = "1000.16180";
    let output = sh(
        root.path(),
        &[],
        &format!("(sleep {token} &); echo left one behind"),
    );
    assert!(output.status.success(), "{}", describe(&output));
    assert!(stdout(&output).contains("left one behind"));
    assert_eq!(
        processes_with(token),
        Vec::<u32>::new(),
        "a background process survived"
    );
}

#[test]
fn outputs_are_copied_without_following_symlinks() {
    let root = host_root();
    let work = host_dir();
    let out = work.path().join("out");
    fs_err::create_dir(&out).expect("mkdir");
    let output = sh(
        root.path(),
        &["--out", out.to_str().expect("utf-8")],
        "echo built > /out/wheel; mkdir /out/lib; ln -s /etc/passwd /out/passwd; \
         ln -s ../../../../../../../etc/passwd /out/lib/up",
    );
    assert!(output.status.success(), "{}", describe(&output));
    if nix::unistd::geteuid().is_root() {
        // Under root the action is an unprivileged build user: nothing it leaves on the host
        // belongs to root (a set-uid file there would be a way out).
        let owner = std::os::unix::fs::MetadataExt::uid(
            &fs_err::metadata(out.join("wheel")).expect("stat"),
        );
        assert_eq!(owner, refine_sandbox::HOST_BUILD_ID);
    }
    let copy = work.path().join("artifact");
    refine_sandbox::copy_out(&out, &copy).expect("copy out");
    assert_eq!(
        fs_err::read_to_string(copy.join("wheel")).expect("read"),
        "built\n"
    );
    let passwd = fs_err::read_to_string("/etc/passwd").expect("read host passwd");
    for link in ["passwd", "lib/up"] {
        assert!(
            fs_err::symlink_metadata(copy.join(link))
                .expect("stat")
                .file_type()
                .is_symlink()
        );
    }
    // No regular file of the artifact holds the host file's content.
    let mut dirs = vec![copy.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in fs_err::read_dir(&dir).expect("list").flatten() {
            let kind = entry.file_type().expect("type");
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                let content = fs_err::read_to_string(entry.path()).expect("read");
                assert_ne!(
                    content,
                    passwd,
                    "{} leaks /etc/passwd",
                    entry.path().display()
                );
            }
        }
    }
}

#[test]
fn tiocsti_cannot_inject_into_the_callers_terminal() {
    use nix::pty::openpty;
    use std::os::fd::AsRawFd;

    let root = host_root();
    let pty = openpty(None, None).expect("openpty");
    let slave = pty.slave.as_raw_fd();
    let probe = r#"if (open(my $tty, "+<", "/dev/tty")) {
            my $ok = 0;
            for my $c (split //, "echo INJECTED\n") { $ok++ if ioctl($tty, 0x5412, $c) }
            print "injected $ok characters\n";
        } else { print "no terminal: $!\n" }"#;
    let mut cmd = sandbox(root.path());
    cmd.args(["--", "/usr/bin/perl", "-e", probe]);
    cmd.stdin(Stdio::from(pty.slave.try_clone().expect("dup")))
        .stdout(Stdio::from(pty.slave.try_clone().expect("dup")))
        .stderr(Stdio::from(pty.slave.try_clone().expect("dup")));
    // SAFETY: setsid and ioctl are async-signal-safe; the pty becomes refine's controlling
    // terminal, as an interactive shell's would be.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if libc::ioctl(slave, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn refine");
    drop(cmd);
    drop(pty.slave);
    let status = child.wait().expect("wait");
    // Everything written to the terminal, and everything echoed back from its input queue.
    let mut master = std::fs::File::from(pty.master);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let seen = String::from_utf8_lossy(&seen);
    assert!(status.success(), "{status:?}: {seen}");
    assert!(seen.contains("no terminal"), "{seen}");
    assert!(!seen.contains("INJECTED"), "{seen}");
}

fn s390x_fixture(var: &str, default: &str, what: &str) -> PathBuf {
    let path = PathBuf::from(std::env::var_os(var).unwrap_or_else(|| default.into()));
    assert!(
        path.exists(),
        "{what} `{}` is missing: run `.ci/setup.d/sandbox.sh` as root to create it, or point \
         `{var}` at one",
        path.display()
    );
    path
}

#[test]
fn s390x_static_busybox_reports_s390x() {
    let busybox = s390x_fixture(
        "REFINE_TEST_S390X_BUSYBOX",
        "/var/cache/refine-tests/busybox-s390x",
        "The static s390x busybox",
    );
    let root = tempfile::tempdir().expect("tempdir");
    let output = Command::new(REFINE)
        .args(["sandbox", "run", "--arch", "s390x", "--root"])
        .arg(root.path())
        .arg("--bind")
        .arg(format!("{}:/busybox:ro", busybox.display()))
        .args(["--", "/busybox", "uname", "-m"])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(stdout(&output), "s390x\n");
}

#[test]
fn s390x_dynamic_program_runs_in_an_s390x_root() {
    let root = s390x_fixture(
        "REFINE_TEST_S390X_ROOT",
        "/var/cache/refine-tests/s390x-bookworm",
        "The s390x test root",
    );
    assert!(
        root.join("lib/ld64.so.1").exists(),
        "`{}` lacks the s390x loader",
        root.display()
    );
    let output = Command::new(REFINE)
        .args(["sandbox", "run", "--arch", "s390x", "--root"])
        .arg(&root)
        .args([
            "--env",
            "PATH=/usr/bin:/bin",
            "--",
            "sh",
            "-c",
            "uname -m; ls /lib/ld64.so.1",
        ])
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(stdout(&output), "s390x\n/lib/ld64.so.1\n");
}

#[test]
fn a_missing_emulator_says_how_to_fix_it() {
    let root = host_root();
    let output = sandbox(root.path())
        .args(["--arch", "nosucharch", "--", "/bin/true"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(125), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr).replace(['\n', '│', ' '], "");
    assert!(
        stderr.contains("apt-getinstallqemu-user-static"),
        "{}",
        describe(&output)
    );
}

#[test]
fn doctor_reports_the_host() {
    let output = Command::new(REFINE)
        .arg("doctor")
        .output()
        .expect("run doctor");
    let text = stdout(&output);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(text.contains("kernel: Linux"), "{text}");
    assert!(text.contains("namespaces: user yes"), "{text}");
    assert!(text.contains("sandbox: ok"), "{text}");
    assert!(text.contains("binfmt s390x: usable; flags "), "{text}");
    assert!(text.contains("qemu-s390x version"), "{text}");
}

/// `refine doctor` in a folder holding hard links to refine and, when given, `helper` as
/// `refine-sandbox-helper`: its output.
fn doctor_beside(helper: Option<&Path>) -> String {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temp folder");
    let refine = dir.path().join("refine");
    fs_err::hard_link(REFINE, &refine).expect("link refine");
    if let Some(helper) = helper {
        fs_err::copy(helper, dir.path().join("refine-sandbox-helper")).expect("copy the helper");
    }
    let output = Command::new(&refine)
        .arg("doctor")
        .output()
        .expect("run doctor");
    let text = stdout(&output);
    assert!(text.contains("sandbox: ok"), "{}", describe(&output));
    text
}

#[test]
fn actions_start_the_small_helper_beside_refine_only_when_it_shares_refines_sources() {
    let built = Path::new(REFINE).with_file_name("refine-sandbox-helper");
    assert!(
        built.is_file(),
        "{} is missing: build the workspace (`cargo build`), which builds it beside refine",
        built.display()
    );
    let beside = "sandbox helper: `refine-sandbox-helper` beside refine";
    let itself = "sandbox helper: refine itself";
    let text = doctor_beside(Some(&built));
    assert!(
        text.contains(beside),
        "the helper built with refine was not used (a stale build? run `cargo build`):\n{text}"
    );
    // A helper that does not answer the probe with refine's fingerprint (here `false`, as an
    // older or newer build would) is passed over, and actions still run.
    let text = doctor_beside(Some(Path::new("/bin/false")));
    assert!(text.contains(itself), "{text}");
    let text = doctor_beside(None);
    assert!(text.contains(itself), "{text}");
}
