//! The library API as the executor uses it: from many threads, with cancellation, through the
//! crate's own `refine-sandbox-helper` binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use refine_sandbox::{Bind, Sandbox, Spec, Termination, Writable};
use tempfile::TempDir;

const HELPER: &str = env!("CARGO_BIN_EXE_refine-sandbox-helper");

fn sandbox() -> Sandbox {
    Sandbox::with_helper(HELPER)
}

/// A root holding only the merged-`/usr` symlinks; `/usr` is the host's, read-only.
fn root() -> TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    for (link, target) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        std::os::unix::fs::symlink(target, root.path().join(link)).expect("symlink");
    }
    root
}

fn spec(root: &Path, script: &str) -> Spec {
    let mut spec = Spec::new(root, vec!["/bin/sh".into(), "-c".into(), script.into()]);
    spec.binds.push(Bind {
        source: "/usr".into(),
        target: "/usr".into(),
        read_only: true,
    });
    spec
}

fn processes_with(token: &str) -> usize {
    fs_err::read_dir("/proc")
        .expect("list /proc")
        .flatten()
        .filter(|entry| {
            fs_err::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(token))
        })
        .count()
}

#[test]
fn runs_concurrently_from_many_threads() {
    let root = root();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let root = root.path();
                scope.spawn(move || {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let mut spec = spec(root, &format!("echo {i} > /out/n; exit {i}"));
                    spec.out = Writable::Host(dir.path().to_path_buf());
                    let outcome = sandbox().run(&spec).expect("run");
                    assert_eq!(outcome.termination, Termination::Exited(i));
                    assert_eq!(
                        fs_err::read_to_string(dir.path().join("n")).expect("read"),
                        format!("{i}\n")
                    );
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("thread");
        }
    });
}

#[test]
fn cancel_kills_the_whole_tree() {
    let root = root();
    let fifo_dir = tempfile::tempdir().expect("tempdir");
    let fifo = fifo_dir.path().join("ready");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).expect("mkfifo");
    // Under root the action is an unprivileged build user, which must reach the fifo.
    for path in [fifo_dir.path(), fifo.as_path()] {
        fs_err::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .expect("chmod");
    }
    let token = "1000.5772";
    let mut spec = spec(
        root.path(),
        &format!("sh -c 'sleep {token}' & sleep {token} & echo ready > /signal/ready; wait"),
    );
    spec.binds.push(Bind {
        source: fifo_dir.path().to_path_buf(),
        target: "/signal".into(),
        read_only: false,
    });
    let running = sandbox().spawn(&spec).expect("spawn");
    let canceller = running.canceller();
    // Blocks until the action has started its children and written to the fifo.
    let mut line = String::new();
    BufReader::new(fs_err::File::open(&fifo).expect("open fifo"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line, "ready\n");
    std::thread::spawn(move || canceller.cancel())
        .join()
        .expect("cancel");
    let outcome = running.wait().expect("wait");
    assert!(outcome.cancelled, "{outcome:?}");
    assert_eq!(outcome.termination, Termination::Signaled(9));
    assert_eq!(
        processes_with(token),
        0,
        "sandbox processes survived cancellation"
    );
}

#[test]
fn timeout_is_reported() {
    let root = root();
    let mut spec = spec(root.path(), "exec sleep 1000");
    spec.timeout = Some(Duration::from_millis(300));
    let outcome = sandbox().run(&spec).expect("run");
    assert!(outcome.timed_out && !outcome.success(), "{outcome:?}");
}

#[test]
fn the_log_receives_stdout_and_stderr() {
    let root = root();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = spec(root.path(), "echo out; echo err >&2");
    spec.log = Some(dir.path().join("log"));
    let outcome = sandbox().run(&spec).expect("run");
    assert!(outcome.success());
    let log = fs_err::read_to_string(dir.path().join("log")).expect("log");
    assert!(log.contains("out\n") && log.contains("err\n"), "{log}");
}

#[test]
fn setup_errors_are_errors_not_outcomes() {
    let root = root();
    let mut spec = spec(root.path(), "true");
    spec.cwd = "/nowhere".into();
    let err = sandbox().run(&spec).expect_err("no such cwd");
    assert!(err.to_string().contains("/nowhere"), "{err}");
    let err = Sandbox::with_helper("/nonexistent/helper")
        .run(&spec)
        .expect_err("no helper");
    assert!(err.to_string().contains("/nonexistent/helper"), "{err}");
}

#[test]
fn the_helper_answers_the_probe_only_with_its_own_fingerprint() {
    let probe = |fingerprint: &str| {
        std::process::Command::new(HELPER)
            .args([refine_sandbox::PROBE_ARG, fingerprint])
            .status()
            .expect("run the helper")
            .code()
    };
    assert_eq!(probe(refine_sandbox::FINGERPRINT), Some(0));
    assert_eq!(probe("0123456789abcdef"), Some(3));
    assert_eq!(refine_sandbox::FINGERPRINT.len(), 16);
}
