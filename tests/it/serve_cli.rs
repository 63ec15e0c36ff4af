//! `refine build --server URL`: the build runs on a real `refine serve`, the terminal follows
//! it as it would a local build (same events file, same closing line, same exit codes), and
//! Ctrl-C cancels it on the server.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::serve::{Server, TOKEN};
use crate::common::*;

const A: &str = "mkdir -p $REFINE_OUT/lib\necho hello > $REFINE_OUT/lib/a.txt\n";
const B: &str = "cat $REFINE_PACKS/lib/a.txt > $REFINE_OUT/b.txt\n";

fn remote_build(server: &Server, args: &[&str], token: Option<&str>) -> Output {
    let mut cmd = Command::new(refine_bin());
    cmd.arg("build")
        .arg("--server")
        .arg(server.url(""))
        .args(args)
        .env_remove("REFINE_SERVE_TOKEN")
        .current_dir("/");
    if let Some(t) = token {
        cmd.env("REFINE_SERVE_TOKEN", t);
    }
    cmd.output().unwrap()
}

fn events(path: &Path) -> Vec<serde_json::Value> {
    fs_err::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Each event's kind and label, in a stable order (parallel actions may interleave).
fn shape(events: &[serde_json::Value]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["label"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_build_on_the_server_reads_like_a_local_one() {
    let w = tiny(&[("a", A, &[]), ("b", B, &["a"])]);
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(w.path(), store.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let remote_events = dir.path().join("remote.jsonl");
    let out = remote_build(
        &server,
        &["//packs:b", "--events", remote_events.to_str().unwrap()],
        Some(TOKEN),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}\n{}", server.log());
    assert!(err.contains("3 built, 0 cached, 0 failed"), "{err}");

    // The same build run here, over a store of its own, says the same things.
    let local_store = tempfile::tempdir().unwrap();
    let local_events = dir.path().join("local.jsonl");
    let local = w.refine(&[
        "--store",
        local_store.path().to_str().unwrap(),
        "build",
        "//packs:b",
        "--events",
        local_events.to_str().unwrap(),
    ]);
    assert!(local.status.success(), "{}", stderr(&local));
    let (remote, local) = (events(&remote_events), events(&local_events));
    assert_eq!(shape(&remote), shape(&local));
    // Same keys: the server built what this machine builds (the manifests differ: each
    // names its own provenance record, with its own times).
    let keys = |ev: &[serde_json::Value]| {
        let mut d: Vec<String> = ev
            .iter()
            .filter(|e| e["event"] == "action-finish")
            .map(|e| format!("{} {}", e["label"], e["key"]))
            .collect();
        d.sort();
        d
    };
    assert_eq!(keys(&remote), keys(&local));

    // Again: everything is a cache hit on the server.
    let again = remote_build(&server, &["//packs:b"], Some(TOKEN));
    assert!(
        stderr(&again).contains("0 built, 3 cached"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn refusals_are_bad_input_with_the_servers_help() {
    let w = tiny(&[("a", A, &[])]);
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(w.path(), store.path(), &[]);

    let typo = remote_build(&server, &["//packs:aa"], Some(TOKEN));
    assert_eq!(typo.status.code(), Some(2));
    let err = stderr(&typo);
    assert!(err.contains("`//packs:aa` matches no target"), "{err}");
    assert!(err.contains("Did you mean `//packs:a`?"), "{err}");

    let no_token = remote_build(&server, &["//packs:a"], None);
    assert_eq!(no_token.status.code(), Some(2));
    assert!(
        stderr(&no_token).contains("needs a bearer token"),
        "{}",
        stderr(&no_token)
    );

    let wrong = remote_build(&server, &["//packs:a"], Some("not-the-token"));
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        stderr(&wrong).contains("token is wrong"),
        "{}",
        stderr(&wrong)
    );

    let local_only = remote_build(&server, &["//packs:a", "--out", "/tmp/x"], Some(TOKEN));
    assert_eq!(local_only.status.code(), Some(2));
    assert!(
        stderr(&local_only).contains("`--out`"),
        "{}",
        stderr(&local_only)
    );

    // Nothing was queued by any of them.
    let builds = Command::new("curl")
        .args(["-s", "-H", &format!("Authorization: Bearer {TOKEN}")])
        .arg(server.url("/v1/builds"))
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&builds.stdout).unwrap();
    assert_eq!(list["builds"].as_array().unwrap().len(), 0, "{list}");

    drop(server);
    let gone = Command::new(refine_bin())
        .args(["build", "--server", "http://127.0.0.1:9", "//packs:a"])
        .env("REFINE_SERVE_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        stderr(&gone).contains("did not answer"),
        "{}",
        stderr(&gone)
    );
}

#[test]
fn ctrl_c_cancels_the_build_on_the_server() {
    let marker = 910_000 + std::process::id();
    let sleeper = format!("echo started > $REFINE_OUT/x\nexec sleep {marker}\n");
    let w = tiny(&[("s", &sleeper, &[])]);
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(w.path(), store.path(), &[]);
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("events.jsonl");
    let mut child = Command::new(refine_bin())
        .args([
            "build",
            "--server",
            &server.url(""),
            "//packs:s",
            "--events",
        ])
        .arg(&ev)
        .env("REFINE_SERVE_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sleepers = || {
        let out = Command::new("pgrep")
            .args(["-f", &format!("sleep {marker}")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while sleepers() == 0 {
        assert!(Instant::now() < deadline, "the action never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("was cancelled"), "{err}");
    assert_eq!(sleepers(), 0, "the server's sandbox is gone");
    // The killed action is skipped, not failed: the build stopped, the action did not fail.
    let ev = events(&ev);
    let skipped = ev
        .iter()
        .find(|e| e["event"] == "skipped" && e["label"] == "//packs:s")
        .unwrap_or_else(|| panic!("{ev:#?}"));
    assert_eq!(skipped["because"], "the build was cancelled while it ran");
    assert!(!ev.iter().any(|e| e["event"] == "action-fail"), "{ev:#?}");
    let finish = ev.iter().find(|e| e["event"] == "build-finish").unwrap();
    assert_eq!(
        (finish["failed"].as_u64(), finish["skipped"].as_u64()),
        (Some(0), Some(1))
    );
    let verify = run_refine(
        Path::new("/"),
        &["--store", store.path().to_str().unwrap(), "store", "verify"],
    );
    assert_eq!(verify.status.code(), Some(0), "{}", stderr(&verify));
}
