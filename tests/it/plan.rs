//! `refine plan` and `refine explain` from the command line.

use crate::common::*;

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

/// Stands in for an action, as the executor stores one: an artifact for `label` under its
/// planned key, with the key fields `refine explain` compares against.
fn seed(w: &TempWorkspace, store: &std::path::Path, label: &str) {
    use refine_engine::graph::TargetGraph;
    use refine_engine::label::parse_label;
    use refine_engine::plan::{Status, plan};
    use refine_engine::rules::Workspace;
    use refine_engine::store::{ArtifactInput, LocalStore};

    let graph = TargetGraph::build(Workspace::load(w.path()).unwrap()).unwrap();
    let id = graph.find(&parse_label(label, None).unwrap()).unwrap();
    let store = LocalStore::open(store).unwrap();
    let p = plan(&graph, &[id], &store, None).unwrap();
    let node = p.nodes.iter().find(|n| n.id == id).unwrap();
    assert_eq!(node.status, Status::Build, "{label} is not ready to build");
    let out = tempfile::tempdir().unwrap();
    fs_err::write(out.path().join("out.txt"), label).unwrap();
    let input = ArtifactInput::new(graph.target(id).kind(), node.key.unwrap().hex(), label)
        .tree(out.path())
        .key_fields(serde_json::json!(node.fields.as_ref().unwrap().flat()));
    store.put_artifact(&input).unwrap();
}

fn pack_rule(env: &str) -> String {
    format!("pack \"yaml\" {{\n    version \"0.2.5\"\n    recipe \"recipes/yaml.sh\"\n{env}}}\n")
}

/// The lines of `refine explain` that star a field.
fn starred(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("* ")).collect()
}

#[test]
fn explain_counts_the_fields_it_stars_and_an_empty_env_is_no_env() {
    let w = ws();
    let store = tempfile::tempdir().unwrap();
    let s = store.path().display().to_string();
    seed(&w, store.path(), "//bases:deb");
    seed(&w, store.path(), "//packs:yaml");
    // The pack was built without env; now it has one variable.
    let with_env = pack_rule("    env \"CFLAGS\" \"-O2\"\n");
    fs_err::write(w.path().join("rules/packs.kdl"), &with_env).unwrap();
    let out = w.refine(&["--store", &s, "explain", "//packs:yaml"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        text.contains("`//packs:yaml` must be built: 1 of its key fields differ"),
        "{text}"
    );
    assert!(!text.contains("env: {}"), "an empty env is no env:\n{text}");
    assert!(text.contains("  env[CFLAGS]: (none) → -O2\n"), "{text}");
    let stars = starred(&text);
    assert_eq!(stars.len(), 1, "{text}");
    assert!(stars[0].starts_with("* env[CFLAGS] "), "{text}");

    // Built with the variable (in another store), then it goes: the field that is gone is
    // counted and starred.
    let store = tempfile::tempdir().unwrap();
    let s = store.path().display().to_string();
    seed(&w, store.path(), "//bases:deb");
    seed(&w, store.path(), "//packs:yaml");
    fs_err::write(w.path().join("rules/packs.kdl"), pack_rule("")).unwrap();
    let out = w.refine(&["--store", &s, "explain", "//packs:yaml"]);
    let text = stdout(&out);
    assert!(
        text.contains("`//packs:yaml` must be built: 1 of its key fields differ"),
        "{text}"
    );
    assert!(!text.contains("env: {}"), "{text}");
    assert_eq!(
        starred(&text),
        ["* env[CFLAGS]          -O2 → (none)"],
        "{text}"
    );
}
