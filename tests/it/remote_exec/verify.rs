//! A worker whose output differs for the same action: `--executor-verify` runs again what the
//! farm's action cache answers for, reports a difference naming both workers and the files,
//! and stores nothing; the farm keeps its first result. Also the workspace's own
//! `store { executor … }`, and `--executor local` overriding it.

use std::io::Write;

use super::{Worker, endpoint};
use crate::common::buildgrid::Farm;
use crate::common::{run_refine, stderr, tiny};
use crate::remote_exec::build::{keys_and_contents, provenance, refine_ok};

#[test]
fn a_worker_whose_output_differs_is_reported_and_nothing_is_stored() {
    let farm = Farm::start();
    let mut first = Worker::start(&farm, "bot-a");
    let ws = tiny(&[
        ("stable", "echo same every time > /out/s\n", &[]),
        (
            "dice",
            "echo header > /out/notes\nhead -c 16 /dev/urandom > /out/roll\n",
            &[],
        ),
    ]);
    // The workspace names the farm: no `--executor` on the command line.
    let mut kdl = fs_err::OpenOptions::new()
        .append(true)
        .open(ws.path().join("workspace.kdl"))
        .unwrap();
    writeln!(
        kdl,
        "store {{\n    executor \"{}\" queue-timeout=300\n}}",
        endpoint(&farm)
    )
    .unwrap();
    let stores = tempfile::tempdir().unwrap();
    let [seeded, checked, later, here] =
        ["seeded", "checked", "later", "here"].map(|s| stores.path().join(s));

    refine_ok(ws.path(), &seeded, &["build", "//..."]);
    let seeded_dice = provenance(ws.path(), &seeded, "//packs:dice");
    let executor = &seeded_dice["predicate"]["buildDefinition"]["internalParameters"]["executor"];
    assert_eq!(executor["worker"], "bot-a", "{seeded_dice:#}");
    let seeded_keys = keys_and_contents(ws.path(), &seeded);

    // Another worker answers the second time.
    first.kill();
    let _second = Worker::start(&farm, "bot-b");
    let out = run_refine(
        ws.path(),
        &[
            "--store",
            checked.to_str().unwrap(),
            "build",
            "//...",
            "--keep-going",
            "--executor-verify",
        ],
    );
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("gave other outputs on `bot-b` than the farm's cached result from `bot-a`"),
        "the report names both workers:\n{text}"
    );
    assert!(
        text.contains("`out/roll` has other content"),
        "the report names the file that differs:\n{text}"
    );
    assert!(
        !text.contains("`out/notes`"),
        "a file that matches is not reported:\n{text}"
    );
    assert!(text.contains("1 failed"), "{text}");
    // The reproducible pack is stored, and says it was checked against the first worker.
    let stable = provenance(ws.path(), &checked, "//packs:stable");
    let executor = &stable["predicate"]["buildDefinition"]["internalParameters"]["executor"];
    assert_eq!(executor["worker"], "bot-b", "{stable:#}");
    assert_eq!(executor["verified_against"], "bot-a", "{stable:#}");
    assert_eq!(executor["cached"], false, "{stable:#}");
    let refused = run_refine(
        ws.path(),
        &[
            "--store",
            checked.to_str().unwrap(),
            "provenance",
            "//packs:dice",
        ],
    );
    assert!(
        !refused.status.success(),
        "nothing is stored for the target whose outputs differ"
    );

    // The farm kept its first answer: a third store gets bot-a's dice from its cache.
    refine_ok(ws.path(), &later, &["build", "//..."]);
    assert_eq!(keys_and_contents(ws.path(), &later), seeded_keys);
    let cached = provenance(ws.path(), &later, "//packs:dice");
    let executor = &cached["predicate"]["buildDefinition"]["internalParameters"]["executor"];
    assert_eq!(executor["cached"], true, "{cached:#}");
    assert_eq!(executor["worker"], "bot-a", "{cached:#}");

    // `--executor local` runs here whatever the workspace says.
    refine_ok(
        ws.path(),
        &here,
        &["build", "//packs:stable", "--executor", "local"],
    );
    let local = provenance(ws.path(), &here, "//packs:stable");
    assert!(
        local["predicate"]["buildDefinition"]["internalParameters"]
            .get("executor")
            .is_none(),
        "{local:#}"
    );
}
