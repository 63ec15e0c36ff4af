//! `refine build --executor`: real builds through BuildGrid and refine's worker.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::{Worker, endpoint};
use crate::common::buildgrid::Farm;
use crate::common::{run_refine, stderr, tiny};

/// Two packs, the second reading the first: an input root with a graft.
pub fn two_packs() -> crate::common::TempWorkspace {
    tiny(&[
        ("hello", "echo hi > /out/hello.txt\n", &[]),
        (
            "greet",
            "cat /opt/packs/hello/*/hello.txt > /out/g.txt\necho made in $(pwd) >> /out/g.txt\n",
            &["hello"],
        ),
    ])
}

/// `refine --store STORE ARGS…` in `ws`, asserting exit 0.
pub fn refine_ok(ws: &Path, store: &Path, args: &[&str]) -> String {
    let mut all = vec!["--store", store.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = run_refine(ws, &all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "refine {args:?} failed:\n{}",
        stderr(&out)
    );
    stderr(&out)
}

/// Each label's key and content digest, from `refine plan --output json`.
pub fn keys_and_contents(ws: &Path, store: &Path) -> BTreeMap<String, (String, String)> {
    let out = run_refine(
        ws,
        &[
            "--store",
            store.to_str().unwrap(),
            "plan",
            "//...",
            "--output",
            "json",
        ],
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    plan.as_array()
        .unwrap()
        .iter()
        .map(|n| {
            assert_eq!(n["status"], "cached", "{n:#}");
            (
                n["label"].as_str().unwrap().to_string(),
                (
                    n["key"].as_str().unwrap().to_string(),
                    n["content"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

pub fn provenance(ws: &Path, store: &Path, label: &str) -> serde_json::Value {
    let out = refine_ok_stdout(ws, store, &["provenance", label]);
    serde_json::from_str(&out).unwrap()
}

fn refine_ok_stdout(ws: &Path, store: &Path, args: &[&str]) -> String {
    let mut all = vec!["--store", store.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = run_refine(ws, &all);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// A build on the farm stores, under the same keys, the same content a local build stores;
/// the provenance names the farm, the worker and the action; a second store's build of the
/// same actions gets the farm's action cache; the merkle cache is kept in the store.
#[test]
fn a_farm_build_stores_what_a_local_build_stores() {
    let farm = Farm::start();
    let worker = Worker::start(&farm, "bot-a");
    let ws = two_packs();
    let stores = tempfile::tempdir().unwrap();
    let (local, remote, again) = (
        stores.path().join("local"),
        stores.path().join("remote"),
        stores.path().join("again"),
    );
    refine_ok(ws.path(), &local, &["build", "//..."]);
    let url = endpoint(&farm);
    let said = refine_ok(ws.path(), &remote, &["build", "//...", "--executor", &url]);
    assert!(said.contains("3 built"), "{said}");
    assert_eq!(
        keys_and_contents(ws.path(), &local),
        keys_and_contents(ws.path(), &remote),
        "the farm's artifacts differ from the local ones"
    );
    worker.wait_for("lease", Duration::from_secs(5));
    assert_eq!(
        worker.log().matches("exit 0").count(),
        2,
        "both packs ran on the worker:\n{}",
        worker.log()
    );
    // The second pack's lease binds the base's folders the first lease materialised.
    let reused: Vec<usize> = worker
        .log()
        .lines()
        .filter_map(|l| l.split("trees, ").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    assert!(
        reused.len() == 2 && reused[0] == 0 && reused[1] > 0,
        "the second lease reuses the first's trees:\n{}",
        worker.log()
    );
    let greet = provenance(ws.path(), &remote, "//packs:greet");
    let executor = &greet["predicate"]["buildDefinition"]["internalParameters"]["executor"];
    assert_eq!(executor["endpoint"], url.as_str(), "{greet:#}");
    assert_eq!(executor["worker"], "bot-a", "{greet:#}");
    assert_eq!(executor["cached"], false, "{greet:#}");
    assert!(
        executor["action"].as_str().is_some_and(|a| a.len() > 65),
        "{greet:#}"
    );
    let local_greet = provenance(ws.path(), &local, "//packs:greet");
    assert!(
        local_greet["predicate"]["buildDefinition"]["internalParameters"]
            .get("executor")
            .is_none(),
        "a local build names no executor"
    );
    // The Merkle trees of the base and of the pack `greet` mounts are kept with their trees.
    let merkle: Vec<_> = fs_err::read_dir(remote.join("merkle")).unwrap().collect();
    assert_eq!(
        merkle.len(),
        2,
        "the base's and `hello`'s trees are hashed and kept"
    );

    // Another store, same actions: the farm's action cache answers, nothing runs again.
    refine_ok(ws.path(), &again, &["build", "//...", "--executor", &url]);
    assert_eq!(
        keys_and_contents(ws.path(), &again),
        keys_and_contents(ws.path(), &local)
    );
    let cached = provenance(ws.path(), &again, "//packs:greet");
    assert_eq!(
        cached["predicate"]["buildDefinition"]["internalParameters"]["executor"]["cached"], true,
        "{cached:#}"
    );
    assert_eq!(
        worker.log().matches("exit 0").count(),
        2,
        "{}",
        worker.log()
    );
}

/// A failed action on the farm fails the build like a local failure: its log (stdout and
/// stderr from the farm) is stored and shown, nothing is stored for the target, and
/// `--keep-going` builds the rest.
#[test]
fn a_failure_on_the_farm_is_a_failed_action_with_its_log() {
    let farm = Farm::start();
    let _worker = Worker::start(&farm, "bot-a");
    let ws = tiny(&[
        (
            "bad",
            "echo about to fail\necho no such header >&2\nexit 3\n",
            &[],
        ),
        ("good", "echo ok > /out/ok\n", &[]),
    ]);
    let store = tempfile::tempdir().unwrap();
    let out = run_refine(
        ws.path(),
        &[
            "--store",
            store.path().to_str().unwrap(),
            "build",
            "//...",
            "--keep-going",
            "--executor",
            &endpoint(&farm),
        ],
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("exit code 3"), "{text}");
    assert!(
        text.contains("on `bot-a`"),
        "the failure names the worker:\n{text}"
    );
    assert!(
        text.contains("about to fail") && text.contains("no such header"),
        "stdout and stderr from the farm are in the log's tail:\n{text}"
    );
    assert!(text.contains("1 failed"), "{text}");
    assert!(text.contains("2 built"), "the base and `good`:\n{text}");
}
