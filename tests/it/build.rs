//! `refine build` with small real actions: pack recipes (shell scripts) run in the sandbox
//! over a busybox root kept in the workspace. Correctness of caching, failures, events,
//! cancellation, crash safety and concurrent builds.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    events: Vec<serde_json::Value>,
}

fn build(w: &TempWorkspace, store: &Path, args: &[&str]) -> Run {
    let events = tempfile::NamedTempFile::new().unwrap();
    let mut all = vec![
        "--store",
        store.to_str().unwrap(),
        "build",
        "--events",
        events.path().to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = w.refine(&all);
    Run {
        code: out.status.code(),
        stdout: stdout(&out),
        stderr: stderr(&out),
        events: read_events(events.path()),
    }
}

/// The complete lines of an events file (a build still running, or killed, may have written
/// part of its last line).
fn read_events(path: &Path) -> Vec<serde_json::Value> {
    let text = fs_err::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line {l:?}: {e}")))
        .collect()
}

fn actions(run: &Run) -> Vec<String> {
    let mut v: Vec<String> = run
        .events
        .iter()
        .filter(|e| e["event"] == "action-start" && e["kind"] != "base")
        .map(|e| e["label"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn verify(store: &Path) -> (Option<i32>, String) {
    let out = run_refine(
        Path::new("/"),
        &["--store", store.to_str().unwrap(), "store", "verify"],
    );
    (
        out.status.code(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

const A: &str = "mkdir -p $REFINE_OUT/lib\necho hello > $REFINE_OUT/lib/a.txt\n";
const B: &str = "cat $REFINE_PACKS/lib/a.txt > $REFINE_OUT/b.txt\necho b >> $REFINE_OUT/b.txt\n";

#[test]
fn second_build_runs_nothing_and_out_copies_artifacts() {
    let w = tiny(&[("a", A, &[]), ("b", B, &["a"])]);
    let store = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let r = build(
        &w,
        store.path(),
        &["//packs:b", "--out", out_dir.path().to_str().unwrap()],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(actions(&r), ["//packs:a", "//packs:b"]);
    assert_eq!(
        fs_err::read_to_string(out_dir.path().join("b/b.txt")).unwrap(),
        "hello\nb\n"
    );
    assert!(
        r.stdout.contains("/b"),
        "--out names what it wrote: {}",
        r.stdout
    );
    let r = build(&w, store.path(), &["//packs:b"]);
    assert_eq!(r.code, Some(0));
    assert!(
        actions(&r).is_empty(),
        "a second build ran actions: {:?}",
        actions(&r)
    );
    assert_eq!(
        r.events
            .iter()
            .filter(|e| e["event"] == "cache-hit")
            .count(),
        3
    );
    assert!(r.stderr.contains("0 built, 3 cached"), "{}", r.stderr);
}

/// `--store` relative to the current folder: the trees mounted as sandbox roots are named by
/// absolute paths all the same (a relative root used to fail every action).
#[test]
fn a_relative_store_path_builds() {
    let w = tiny(&[("a", A, &[]), ("b", B, &["a"])]);
    let r = build(&w, Path::new("relative-store"), &["//packs:b"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(actions(&r), ["//packs:a", "//packs:b"]);
    assert!(w.path().join("relative-store/oci-layout").is_file());
    let r = build(&w, Path::new("relative-store"), &["//packs:b"]);
    assert!(r.stderr.contains("0 built, 3 cached"), "{}", r.stderr);
}

#[test]
fn touching_an_input_runs_nothing() {
    let w = tiny(&[("a", A, &[]), ("b", B, &["a"])]);
    let store = tempfile::tempdir().unwrap();
    assert_eq!(build(&w, store.path(), &["//packs:b"]).code, Some(0));
    // Same content, new mtime (and the rule file rewritten as it was).
    let recipe = w.path().join("recipes/a.sh");
    let text = fs_err::read(&recipe).unwrap();
    fs_err::write(&recipe, &text).unwrap();
    let f = fs_err::File::options().write(true).open(&recipe).unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(3600))
        .unwrap();
    let r = build(&w, store.path(), &["//packs:b"]);
    assert!(actions(&r).is_empty(), "{:?}", actions(&r));
}

#[test]
fn a_change_rebuilds_downstream_and_stops_at_identical_outputs() {
    let c = "cat $REFINE_PACKS/b.txt > $REFINE_OUT/c.txt\n";
    let w = tiny(&[
        ("a", A, &[]),
        ("b", B, &["a"]),
        ("c", c, &["b"]),
        ("other", "echo x > $REFINE_OUT/x\n", &[]),
    ]);
    let store = tempfile::tempdir().unwrap();
    assert_eq!(build(&w, store.path(), &["//packs:all"]).code, Some(0));
    // A real change to `a`: everything downstream of it rebuilds, `other` does not.
    fs_err::write(w.path().join("recipes/a.sh"), A.replace("hello", "bonjour")).unwrap();
    let r = build(&w, store.path(), &["//packs:all"]);
    assert_eq!(actions(&r), ["//packs:a", "//packs:b", "//packs:c"]);
    // A change to `a` that leaves its output identical: `a` reruns, nothing after it does.
    fs_err::write(
        w.path().join("recipes/a.sh"),
        format!("# a comment\n{}", A.replace("hello", "bonjour")),
    )
    .unwrap();
    let r = build(&w, store.path(), &["//packs:all"]);
    assert_eq!(actions(&r), ["//packs:a"], "early cutoff");
}

/// A pack recipe that sources `recipes/lib.sh` (`. "$REFINE_LIB"`) runs with it; one that does
/// not never sees it. Editing the lib rebuilds its users (and what depends on them) only.
#[test]
fn recipes_lib_sh_reaches_its_users_and_rebuilds_only_them() {
    let user = "#!/bin/sh\n. \"$REFINE_LIB\"\ngreet > $REFINE_OUT/a.txt\n";
    let plain = "if [ -n \"${REFINE_LIB:-}\" ] || [ -e /src/lib.sh ]; then exit 3; fi\necho b > $REFINE_OUT/b.txt\n";
    let w = tiny(&[
        ("a", user, &[]),
        ("b", plain, &[]),
        ("c", "cat $REFINE_PACKS/a.txt > $REFINE_OUT/c.txt\n", &["a"]),
    ]);
    let lib = w.path().join("recipes/lib.sh");
    fs_err::write(&lib, "greet() { echo hello; }\n").unwrap();
    let store = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = ["//packs:all", "--out", out_dir.path().to_str().unwrap()];
    let r = build(&w, store.path(), &out);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(actions(&r), ["//packs:a", "//packs:b", "//packs:c"]);
    let c = out_dir.path().join("c/c.txt");
    assert_eq!(fs_err::read_to_string(&c).unwrap(), "hello\n");
    fs_err::write(&lib, "greet() { echo bonjour; }\n").unwrap();
    let r = build(&w, store.path(), &out);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        actions(&r),
        ["//packs:a", "//packs:c"],
        "b does not use the lib"
    );
    assert_eq!(fs_err::read_to_string(&c).unwrap(), "bonjour\n");
}

#[test]
fn exit_zero_without_outputs_fails_and_is_never_cached() {
    let w = tiny(&[("empty", "echo I did nothing\n", &[])]);
    let store = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let r = build(&w, store.path(), &["//packs:empty"]);
        assert_eq!(r.code, Some(1), "{}", r.stderr);
        assert!(r.stderr.contains("left `/out` empty"), "{}", r.stderr);
        assert_eq!(
            actions(&r),
            ["//packs:empty"],
            "it must run again: it was not cached"
        );
    }
    assert!(
        !store.path().join("refs/pack").exists()
            || fs_err::read_dir(store.path().join("refs/pack"))
                .unwrap()
                .next()
                .is_none()
    );
}

/// One worker runs every action in the same folder (crates/refine-exec/src/scratch.rs), so what
/// an action leaves there, and the modes it changes, must be gone when the next one starts.
#[test]
fn each_action_starts_with_empty_folders_though_one_worker_ran_them_all() {
    let recipe = |n: u32| {
        format!(
            "set -e\n\
             left=\"$(ls -A /work)$(ls -A \"$REFINE_OUT\")\"\n\
             [ -z \"$left\" ] || {{ echo \"left over: $left\" >&2; exit 9; }}\n\
             [ \"$(ls -A /src)\" = recipe.sh ] || {{ echo \"/src holds: $(ls -A /src)\" >&2; exit 9; }}\n\
             echo {n} > /work/mine\n\
             mkdir -p /work/tree/deep\n\
             echo x > /work/tree/deep/file\n\
             chmod 500 /work/tree\n\
             echo {n} > \"$REFINE_OUT/n\"\n\
             chmod 500 /work\n"
        )
    };
    let (one, two, three) = (recipe(1), recipe(2), recipe(3));
    let w = tiny(&[
        ("one", &one, &[]),
        ("two", &two, &[]),
        ("three", &three, &[]),
    ]);
    let store = tempfile::tempdir().unwrap();
    let r = build(
        &w,
        store.path(),
        &["-j", "1", "//packs:one", "//packs:two", "//packs:three"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(actions(&r), ["//packs:one", "//packs:three", "//packs:two"]);
    let workers: std::collections::BTreeSet<u64> = r
        .events
        .iter()
        .filter(|e| e["event"] == "action-start" && e["kind"] == "pack")
        .map(|e| e["worker"].as_u64().unwrap())
        .collect();
    assert_eq!(
        workers.len(),
        1,
        "-j 1 runs every action in one worker slot"
    );
    let tmp: Vec<_> = fs_err::read_dir(store.path().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(tmp.is_empty(), "the build left {tmp:?} in the store's tmp/");
}

#[test]
fn a_failure_prints_the_log_tail_and_keeps_the_log() {
    let w = tiny(&[(
        "bad",
        "echo step one\necho it broke here >&2\nexit 3\n",
        &[],
    )]);
    let store = tempfile::tempdir().unwrap();
    let r = build(&w, store.path(), &["//packs:bad"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("it broke here"), "{}", r.stderr);
    assert!(r.stderr.contains("Exited(3)"), "{}", r.stderr);
    let fail = r
        .events
        .iter()
        .find(|e| e["event"] == "action-fail")
        .expect("an action-fail event");
    let log = fail["log"].as_str().expect("the failure names its log");
    let text = fs_err::read_to_string(log).unwrap();
    assert!(
        text.contains("step one") && text.contains("it broke here"),
        "{text}"
    );
}

#[test]
fn keep_going_builds_what_does_not_depend_on_the_failure() {
    let w = tiny(&[
        ("bad", "exit 1\n", &[]),
        ("after", "echo > $REFINE_OUT/x\n", &["bad"]),
        ("good", "echo > $REFINE_OUT/g\n", &[]),
    ]);
    let store = tempfile::tempdir().unwrap();
    let r = build(
        &w,
        store.path(),
        &["//packs:all", "--keep-going", "-j", "1"],
    );
    assert_eq!(r.code, Some(1));
    assert!(
        actions(&r).contains(&"//packs:good".to_string()),
        "{:?}",
        actions(&r)
    );
    assert!(!actions(&r).contains(&"//packs:after".to_string()));
    assert!(
        r.events
            .iter()
            .any(|e| e["event"] == "skipped" && e["label"] == "//packs:after")
    );
    let finish = r.events.last().unwrap();
    assert_eq!(finish["event"], "build-finish");
    assert_eq!(finish["failed"], 1);
    assert_eq!(finish["skipped"], 1);
}

#[test]
fn events_and_profile() {
    let w = tiny(&[("a", A, &[]), ("b", B, &["a"])]);
    let store = tempfile::tempdir().unwrap();
    let profile = tempfile::NamedTempFile::new().unwrap();
    let r = build(
        &w,
        store.path(),
        &["//packs:b", "--profile", profile.path().to_str().unwrap()],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let kinds: Vec<&str> = r
        .events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"build-start"));
    assert_eq!(kinds.get(1), Some(&"plan"));
    assert_eq!(kinds.last(), Some(&"build-finish"));
    assert_eq!(kinds.iter().filter(|k| **k == "action-finish").count(), 3);
    // Each finished action splits its time: the action's own process, and refine's.
    for e in r.events.iter().filter(|e| e["event"] == "action-finish") {
        let overhead = e["overhead_seconds"].as_f64().unwrap();
        assert!(overhead >= 0.0, "{e}");
        match e["label"].as_str().unwrap() {
            "//bases:tiny" => assert!(e["action_seconds"].is_null(), "{e}"),
            _ => assert!(e["action_seconds"].as_f64().unwrap() > 0.0, "{e}"),
        }
    }
    let finish = r.events.last().unwrap();
    assert_eq!(
        finish["critical_path"],
        serde_json::json!(["//bases:tiny", "//packs:a", "//packs:b"])
    );
    let trace: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(profile.path()).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert!(
        events
            .iter()
            .all(|e| e["ph"] == "X" && e["dur"].as_u64().is_some())
    );
}

fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

fn sandboxed_sleepers() -> usize {
    let marker = 900_000 + std::process::id();
    let out = Command::new("pgrep")
        .args(["-f", &format!("sleep {marker}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn sigint_kills_every_sandbox_and_leaves_the_store_consistent() {
    // A sleep length no other test run uses, so that counting sleepers counts only ours.
    let marker = 900_000 + std::process::id();
    let sleeper = format!("echo started > $REFINE_OUT/x\nexec sleep {marker}\n");
    let sleeper = sleeper.as_str();
    let w = tiny(&[("s1", sleeper, &[]), ("s2", sleeper, &[]), ("done", A, &[])]);
    let store = tempfile::tempdir().unwrap();
    let events = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(refine_bin())
        .args([
            "--store",
            store.path().to_str().unwrap(),
            "build",
            "//packs:all",
            "-j",
            "3",
            "--events",
            events.path().to_str().unwrap(),
        ])
        .current_dir(w.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        || {
            read_events(events.path())
                .iter()
                .filter(|e| e["event"] == "action-start" && e["kind"] == "pack")
                .count()
                >= 2
        },
        "two sleepers to start",
    );
    wait_for(|| sandboxed_sleepers() >= 1, "a sleeper process");
    nix_kill(child.id(), "INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("Interrupted"), "{err}");
    wait_for(
        || sandboxed_sleepers() == 0,
        "every sandboxed process to be gone",
    );
    let (code, text) = verify(store.path());
    assert_eq!(code, Some(0), "{text}");
}

fn nix_kill(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal} {pid}");
}

#[test]
fn sigkill_at_random_moments_then_rebuild_completes_and_verifies() {
    // 200 nodes: a base and 199 packs in layers that depend on the layer before.
    let recipes: Vec<(String, String, Vec<String>)> = (0..199)
        .map(|i| {
            let deps = if i >= 10 {
                vec![format!("p{}", i - 10)]
            } else {
                vec![]
            };
            (format!("p{i}"), format!("echo {i} > $REFINE_OUT/n\n"), deps)
        })
        .collect();
    let packs: Vec<(&str, &str, Vec<&str>)> = recipes
        .iter()
        .map(|(n, r, d)| {
            (
                n.as_str(),
                r.as_str(),
                d.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let refs: Vec<(&str, &str, &[&str])> = packs
        .iter()
        .map(|(n, r, d)| (*n, *r, d.as_slice()))
        .collect();
    let w = tiny(&refs);
    let store = tempfile::tempdir().unwrap();
    let events = tempfile::NamedTempFile::new().unwrap();
    // A cheap random source: the clock's nanoseconds.
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    for round in 0..20 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let after_events = 2 + (seed >> 33) as usize % 12;
        let mut child = Command::new(refine_bin())
            .args([
                "--store",
                store.path().to_str().unwrap(),
                "build",
                "//packs:all",
                "-j",
                "2",
                "--events",
                events.path().to_str().unwrap(),
            ])
            .current_dir(w.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill it once it has done a random amount of work (or when it is finished).
        wait_for(
            || {
                read_events(events.path()).len() >= after_events
                    || child.try_wait().unwrap().is_some()
            },
            &format!("round {round} to make progress"),
        );
        let _ = child.kill();
        let _ = child.wait();
    }
    let r = build(&w, store.path(), &["//packs:all", "-j", "2"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let finish = r.events.last().unwrap();
    assert_eq!(finish["failed"], 0);
    let (code, text) = verify(store.path());
    assert_eq!(code, Some(0), "{text}");
    let r = build(&w, store.path(), &["//packs:all"]);
    assert!(actions(&r).is_empty());
}

/// Killed while an action's artifact is being packed and stored (its log and provenance are
/// in, its layer is being written, its ref is not): the store holds the whole artifact or
/// none of it, whichever moment the kill lands in (the store step flushes once, at the ref).
#[test]
fn sigkill_inside_the_store_step_then_rebuild_completes_and_verifies() {
    // Outputs of tens of megabytes: packing them takes long enough to be caught at it.
    let big = |n: u32| format!("seq {n} 3000000 > $REFINE_OUT/big\n");
    let (a, b, c) = (big(1), big(2), big(3));
    let w = tiny(&[("a", &a, &[]), ("b", &b, &[]), ("c", &c, &["a"])]);
    let store = tempfile::tempdir().unwrap();
    let tmp = store.path().join("tmp");
    let packing = || {
        fs_err::read_dir(&tmp).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("layer-"))
        })
    };
    let mut caught = 0;
    for round in 0..4 {
        let mut child = Command::new(refine_bin())
            .args(["--store", store.path().to_str().unwrap()])
            .args(["build", "//packs:all", "-j", "2"])
            .current_dir(w.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut inside = false;
        wait_for(
            || {
                inside = packing();
                inside || child.try_wait().unwrap().is_some()
            },
            &format!("round {round} to pack an artifact"),
        );
        let _ = child.kill();
        let _ = child.wait();
        caught += usize::from(inside);
        let (code, text) = verify(store.path());
        assert_eq!(code, Some(0), "round {round}: {text}");
    }
    assert!(caught > 0, "no kill landed inside a store step");
    let r = build(&w, store.path(), &["//packs:all", "-j", "2"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let (code, text) = verify(store.path());
    assert_eq!(code, Some(0), "{text}");
    let r = build(&w, store.path(), &["//packs:all"]);
    assert!(actions(&r).is_empty(), "{:?}", actions(&r));
}

#[test]
fn two_builds_over_one_store_both_succeed() {
    let w = tiny(&[
        ("a", A, &[]),
        ("b", B, &["a"]),
        ("c", "cat $REFINE_PACKS/lib/a.txt > $REFINE_OUT/c\n", &["a"]),
    ]);
    let store = tempfile::tempdir().unwrap();
    let spawn = |target: &str, out: &Path| {
        Command::new(refine_bin())
            .args([
                "--store",
                store.path().to_str().unwrap(),
                "build",
                target,
                "--out",
                out.to_str().unwrap(),
            ])
            .current_dir(w.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (o1, o2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut one = spawn("//packs:b", o1.path());
    let mut two = spawn("//packs:all", o2.path());
    for child in [&mut one, &mut two] {
        let status = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(status.success(), "{err}");
    }
    assert_eq!(
        fs_err::read_to_string(o1.path().join("b/b.txt")).unwrap(),
        "hello\nb\n"
    );
    assert_eq!(
        fs_err::read_to_string(o2.path().join("b/b.txt")).unwrap(),
        "hello\nb\n"
    );
    assert_eq!(
        fs_err::read_to_string(o2.path().join("c/c")).unwrap(),
        "hello\n"
    );
    let (code, text) = verify(store.path());
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn sandbox_debug_keeps_the_action_and_replays_it_by_hand() {
    let w = tiny(&[("a", A, &[]), ("b", B, &["a"])]);
    let store = tempfile::tempdir().unwrap();
    let debug = tempfile::tempdir().unwrap();
    let r = build(
        &w,
        store.path(),
        &[
            "//packs:b",
            "--sandbox-debug",
            debug.path().to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let kept: Vec<_> = fs_err::read_dir(debug.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kept.len(), 2, "one folder per action: {kept:?}");
    let b = fs_err::read_dir(debug.path())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("packs-b-"))
        .expect("the folder of //packs:b")
        .path();
    let replay = b.join("replay.sh");
    let text = fs_err::read_to_string(&replay).unwrap();
    assert!(
        text.contains("sandbox run") && text.contains("--bind") && text.contains("/src:ro"),
        "{text}"
    );
    // By hand: the same action, the same output.
    let out = Command::new("sh").arg(&replay).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs_err::read_to_string(b.join("out/b.txt")).unwrap(),
        "hello\nb\n"
    );
}

#[test]
fn zero_jobs_or_cores_is_bad_input_and_runs_nothing() {
    let w = tiny(&[("a", A, &[])]);
    let store = tempfile::tempdir().unwrap();
    for (flag, said) in [("-j", "`-j 0` runs nothing"), ("--cores", "`--cores 0`")] {
        let r = build(&w, store.path(), &["//packs:a", flag, "0"]);
        assert_eq!(r.code, Some(2), "{flag} 0: {}", r.stderr);
        assert!(r.stderr.contains(said), "{}", r.stderr);
        assert!(actions(&r).is_empty());
    }
    // `--cores` reaches the action as REFINE_JOBS.
    let w = tiny(&[("j", "echo $REFINE_JOBS > $REFINE_OUT/jobs\n", &[])]);
    let out = tempfile::tempdir().unwrap();
    let r = build(
        &w,
        store.path(),
        &[
            "//packs:j",
            "--cores",
            "3",
            "--out",
            out.path().to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        fs_err::read_to_string(out.path().join("j/jobs")).unwrap(),
        "3\n"
    );
}

#[test]
fn executor_settings_without_an_executor_or_a_bad_one_are_bad_input() {
    let w = tiny(&[("a", A, &[])]);
    let store = tempfile::tempdir().unwrap();
    for (args, said) in [
        (
            &["--executor-property", "pool=z"][..],
            "`--executor-property` needs a remote executor",
        ),
        (&["--executor-verify"][..], "`--executor-verify` needs"),
        (
            &["--executor", "https://farm:1"][..],
            "is not a remote execution address",
        ),
        (
            &[
                "--executor",
                "reapi://127.0.0.1:1",
                "--executor-property",
                "=x",
            ][..],
            "`=x` is not a platform property",
        ),
        (
            &[
                "--executor",
                "reapi://127.0.0.1:1",
                "--executor-queue-timeout",
                "0",
            ][..],
            "gives up on every action",
        ),
        (
            &[
                "--executor",
                "reapi+http://127.0.0.1:1",
                "--executor-tls-ca",
                "/nonexistent/ca.pem",
            ][..],
            "Cannot read the farm's certificate authority",
        ),
    ] {
        let mut all = vec!["//packs:a"];
        all.extend_from_slice(args);
        let r = build(&w, store.path(), &all);
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(said), "{args:?}: {}", r.stderr);
        assert!(actions(&r).is_empty());
    }
}

/// Starts `refine build ARGS --events FILE` without waiting for it (stderr captured).
fn spawn_build(
    w: &TempWorkspace,
    store: &Path,
    args: &[&str],
) -> (std::process::Child, tempfile::NamedTempFile) {
    let events = tempfile::NamedTempFile::new().unwrap();
    let child = Command::new(refine_bin())
        .current_dir(w.path())
        .env("NO_COLOR", "1")
        .args(["--store", store.to_str().unwrap(), "build"])
        .args(args)
        .arg("--events")
        .arg(events.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, events)
}

#[test]
fn a_recipe_edited_during_the_build_is_not_stored_under_its_old_key() {
    const SLOW: &str = "sleep 2\necho done > $REFINE_OUT/done\n";
    let w = tiny(&[("a", SLOW, &[]), ("b", SLOW, &[])]);
    let store = tempfile::tempdir().unwrap();
    // Both keys are computed at once; at -j 1 one action waits while the other runs, and
    // its recipe is edited meanwhile.
    let (child, events) = spawn_build(&w, store.path(), &["//packs:a", "//packs:b", "-j", "1"]);
    // Once one pack's action has started, the other waits for the one worker.
    wait_for(
        || {
            read_events(events.path())
                .iter()
                .any(|e| e["event"] == "action-start" && e["kind"] == "pack")
        },
        "the first pack to start",
    );
    for name in ["a", "b"] {
        let recipe = w.path().join(format!("recipes/{name}.sh"));
        fs_err::write(&recipe, format!("{SLOW}# edited\n")).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("changed during the build"), "{err}");
    assert!(err.contains("run the build again"), "{err}");
    // Again: the edited recipes run (the one that ran before the edit, under its new key too).
    let r = build(&w, store.path(), &["//packs:a", "//packs:b"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(actions(&r), ["//packs:a", "//packs:b"]);
    assert_eq!(verify(store.path()).0, Some(0));
}

#[test]
fn a_path_source_edited_while_its_action_runs_is_not_stored() {
    let w = tiny(&[]);
    fs_err::write(
        w.path().join("rules/packs.kdl"),
        "pack \"p\" {\n    version \"1\"\n    source path=\"data\"\n    recipe \"recipes/p.sh\"\n}\n",
    )
    .unwrap();
    fs_err::create_dir_all(w.path().join("recipes")).unwrap();
    fs_err::write(
        w.path().join("recipes/p.sh"),
        "cat /src/tree0/x > $REFINE_OUT/x\nsleep 2\n",
    )
    .unwrap();
    fs_err::create_dir_all(w.path().join("data")).unwrap();
    fs_err::write(w.path().join("data/x"), "one\n").unwrap();
    let store = tempfile::tempdir().unwrap();
    let (child, events) = spawn_build(&w, store.path(), &["//packs:p"]);
    // Edited once the action has started (before or after its copy of the folder: either
    // way the folder no longer has the contents its key was computed from).
    wait_for(
        || {
            read_events(events.path())
                .iter()
                .any(|e| e["event"] == "action-start" && e["label"] == "//packs:p")
        },
        "the action to start",
    );
    fs_err::write(w.path().join("data/x"), "two\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("`data` changed during the build"), "{err}");
    // Again, undisturbed: the folder as it is now.
    let dest = tempfile::tempdir().unwrap();
    let r = build(
        &w,
        store.path(),
        &["//packs:p", "--out", dest.path().to_str().unwrap()],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        fs_err::read_to_string(dest.path().join("p/x")).unwrap(),
        "two\n"
    );
}

/// Two wheels, so that `--out` lists more than one path.
const WHEELS: &str =
    "echo x > $REFINE_OUT/w-1.0-py3-none-any.whl\necho y > $REFINE_OUT/v-1.0-py3-none-any.whl\n";

#[test]
fn a_no_op_build_out_lists_each_wheel_then_the_summary_on_lines_of_their_own() {
    let w = tiny(&[("w", WHEELS, &[])]);
    let store = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let args = ["//packs:w", "--out", dest.path().to_str().unwrap()];
    assert_eq!(build(&w, store.path(), &args).code, Some(0));
    // Nothing to build; both streams into one file, as `>log 2>&1` does.
    let log = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new(refine_bin())
        .current_dir(w.path())
        .env("NO_COLOR", "1")
        .args(["--store", store.path().to_str().unwrap(), "build"])
        .args(args)
        .stdout(log.as_file().try_clone().unwrap())
        .stderr(log.as_file().try_clone().unwrap())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let text = fs_err::read_to_string(log.path()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let wheel = |name: &str| dest.path().join(name).display().to_string();
    assert_eq!(
        lines[..2],
        [
            wheel("v-1.0-py3-none-any.whl"),
            wheel("w-1.0-py3-none-any.whl")
        ],
        "{text}"
    );
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[2].starts_with("0 built, 2 cached, 0 failed"),
        "{text}"
    );
    assert!(text.ends_with('\n'), "{text:?}");
}

/// A source that cannot be fetched fails its action with fetch's own hint, which reaches
/// `refine build`'s output (it used to be dropped on the way up).
#[test]
fn a_fetch_failure_prints_the_fetch_hint() {
    let w = tiny(&[]);
    // A loopback port nothing listens on: the connection is refused, no network needed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fs_err::write(
        w.path().join("rules/packs.kdl"),
        format!(
            "pack \"p\" {{\n    version \"1\"\n    source url=\"http://127.0.0.1:{port}/src.tar.gz\" sha256=\"{}\"\n    recipe \"recipes/p.sh\"\n}}\n",
            "ee55d3edf80167e48ea11a923c7386f4669df67d7994554387f84e7d8b0a2bf0"
        ),
    )
    .unwrap();
    fs_err::create_dir_all(w.path().join("recipes")).unwrap();
    fs_err::write(w.path().join("recipes/p.sh"), "echo x > $REFINE_OUT/x\n").unwrap();
    let store = tempfile::tempdir().unwrap();
    let r = build(&w, store.path(), &["//packs:p"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("FAILED //packs:p"), "{}", r.stderr);
    assert!(
        r.stderr.contains("help:") && r.stderr.contains("refine fetch --import"),
        "the hint of refine-fetch is printed: {}",
        r.stderr
    );
    let fail = r
        .events
        .iter()
        .find(|e| e["event"] == "action-fail")
        .expect("an action-fail event");
    assert!(
        fail["reason"]
            .as_str()
            .unwrap()
            .contains("refine fetch --import"),
        "{fail}"
    );
}

/// Makes a folder immutable (`chattr +i`: even root cannot create files in it) until dropped.
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn set(dir: &Path) -> Immutable {
        let out = Command::new("chattr").arg("+i").arg(dir).output().unwrap();
        assert!(
            out.status.success(),
            "`chattr +i {}` failed (this test needs root and a filesystem with the immutable \
             attribute, such as ext4): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Immutable(dir.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// A log the store cannot take fails the action: no artifact is stored without its log
/// (the failure used to be dropped, and the artifact stored without one). The fault is
/// real: the store's blob folder is made immutable before the action runs.
#[test]
fn a_log_that_cannot_be_stored_fails_the_action() {
    let w = tiny(&[("p", "echo some output\necho x > $REFINE_OUT/x\n", &[])]);
    let store = tempfile::tempdir().unwrap();
    // The base first, so that the log is the next blob the store must write: with the blob
    // folder immutable from then on, storing the pack's log is what fails (no race with the
    // action: the fault is in place before it starts).
    let r = build(&w, store.path(), &["//bases:tiny"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let immutable = Immutable::set(&store.path().join("blobs/sha256"));
    let r = build(&w, store.path(), &["//packs:p"]);
    drop(immutable);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("FAILED //packs:p"), "{}", r.stderr);
    assert!(
        r.stderr.contains("Cannot store the action's log"),
        "{}",
        r.stderr
    );
    let fail = r
        .events
        .iter()
        .find(|e| e["event"] == "action-fail")
        .expect("an action-fail event");
    assert_eq!(fail["label"], "//packs:p");
    assert!(fail["log"].is_null(), "no log to name: {fail}");
    // Nothing was stored under the key: the next build runs the action again.
    let r = build(&w, store.path(), &["//packs:p"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(actions(&r), ["//packs:p"]);
    assert_eq!(verify(store.path()).0, Some(0));
}

/// Two targets that make different wheels of one file name (two platforms of one policy)
/// cannot both go to one `--out` folder: the second does not silently replace the first.
#[test]
fn out_refuses_two_different_wheels_of_one_name() {
    let w = tiny(&[
        ("a", "echo a > $REFINE_OUT/w-1.0-py3-none-any.whl\n", &[]),
        ("b", "echo b > $REFINE_OUT/w-1.0-py3-none-any.whl\n", &[]),
        ("c", "echo a > $REFINE_OUT/w-1.0-py3-none-any.whl\n", &[]),
    ]);
    let store = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let to = dest.path().to_str().unwrap();
    // The same bytes twice are one wheel.
    let r = build(&w, store.path(), &["//packs:a", "//packs:c", "--out", to]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = build(&w, store.path(), &["//packs:a", "//packs:b", "--out", to]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("`//packs:a` and `//packs:b` both made `w-1.0-py3-none-any.whl`"),
        "{}",
        r.stderr
    );
    assert_eq!(
        fs_err::read_to_string(dest.path().join("w-1.0-py3-none-any.whl")).unwrap(),
        "a\n"
    );
}
