//! `refine plan` and `refine explain` from the command line.

mod common;

use common::*;

fn ws() -> TempWorkspace {
    TempWorkspace::new(&[
        ("workspace.kdl", WORKSPACE),
        ("rules/bases.kdl", BASES),
        ("rules/runtimes.kdl", RUNTIMES),
        ("rules/packs.kdl", PACKS),
        ("recipes/yaml.sh", "#!/bin/sh\n"),
        (
            "rules/wheels.kdl",
            &format!(
                "wheel \"m\" {{\n    source pypi=\"MarkupSafe\" version=\"3.0.2\" sha256=\"{SHA}\"\n    python \"3.11\"\n    runtime \"//runtimes:py\"\n    packs \"//packs:yaml\"\n}}\n"
            ),
        ),
    ])
}

#[test]
fn plan_json_lists_every_node_with_status_and_key() {
    let w = ws();
    let store = tempfile::tempdir().unwrap();
    let out = w.refine(&[
        "--store",
        &store.path().display().to_string(),
        "plan",
        "//wheels:m-py311",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = v.as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    for n in nodes {
        for field in ["label", "kind", "status", "key", "digest"] {
            assert!(n.get(field).is_some(), "{field} missing in {n}");
        }
    }
    let base = nodes.iter().find(|n| n["label"] == "//bases:deb").unwrap();
    assert_eq!(base["status"], "build");
    assert_eq!(base["key"].as_str().unwrap().len(), 64);
    let wheel = nodes
        .iter()
        .find(|n| n["label"] == "//wheels:m-py311")
        .unwrap();
    assert_eq!(wheel["status"], "pending");
    assert!(wheel["key"].is_null());
    // Planning twice gives the same keys; planning wrote no artifact.
    let again = w.refine(&[
        "--store",
        &store.path().display().to_string(),
        "plan",
        "//wheels:m-py311",
        "--output",
        "json",
    ]);
    assert_eq!(again.stdout, out.stdout);
}

#[test]
fn plan_text_and_explain_never_built() {
    let w = ws();
    let store = tempfile::tempdir().unwrap();
    let s = store.path().display().to_string();
    let out = w.refine(&["--store", &s, "plan", "//wheels:all"]);
    let text = stdout(&out);
    assert!(
        text.contains("4 targets: 0 cached, 1 to build, 3 pending"),
        "{text}"
    );
    assert!(
        text.contains("(waits on //runtimes:py-py311, //packs:yaml)")
            || text.contains("(waits on //packs:yaml, //runtimes:py-py311)"),
        "{text}"
    );
    let out = w.refine(&["--store", &s, "explain", "//wheels:m-py311"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        text.contains("`//wheels:m-py311` waits on dependencies that must be built first"),
        "{text}"
    );
    assert!(
        text.contains("`//bases:deb` must be built: this store has never held an artifact for it."),
        "{text}"
    );
}

#[test]
fn explain_takes_one_target() {
    let w = ws();
    let store = tempfile::tempdir().unwrap();
    let out = w.refine(&[
        "--store",
        &store.path().display().to_string(),
        "explain",
        "//bases:all",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("matches 2 targets"),
        "{}",
        stderr(&out)
    );
}
