//! Planning and explaining against a real local store: statuses, early cutoff, and the
//! field-by-field reasons for a cache miss.

use std::path::Path;

use refine_engine::graph::{TargetGraph, TargetId};
use refine_engine::label::parse_label;
use refine_engine::plan::{Explanation, Status, explain, plan};
use refine_engine::rules::Workspace;
use refine_engine::store::{ArtifactInput, LocalStore};

const SHA: &str = "d584d9ec91ad65861cc08d42e834324ef890a082e591037abe114850ff7bbc3e";

fn write_workspace(dir: &Path, cflags: &str) {
    let files = [
        (
            "workspace.kdl".to_string(),
            format!(
                "workspace \"p\"\nplatform \"s390x\" arch=\"s390x\" policy=\"manylinux_2_28\" base=\"//bases:deb\"\ndefaults {{\n    platform \"s390x\"\n    frontend \"build==1.2.2.post1\" sha256=\"{SHA}\"\n    repair-tool \"auditwheel==6.1.0\" sha256=\"{SHA}\"\n}}\n"
            ),
        ),
        (
            "rules/bases.kdl".to_string(),
            "base \"deb\" {\n    arch \"s390x\"\n    policy \"manylinux_2_28\"\n    bootstrap \"debootstrap\" version=\"1\" suite=\"bookworm\"\n}\n".to_string(),
        ),
        ("rules/runtimes.kdl".to_string(), "runtime \"py\" {\n    python \"3.11\" adopt=\"/usr/bin/python3.11\"\n}\n".to_string()),
        (
            "rules/packs.kdl".to_string(),
            format!("pack \"openblas\" {{\n    version \"0.3.21\"\n    recipe \"recipes/openblas.sh\"\n    env \"CFLAGS\" \"{cflags}\"\n}}\n"),
        ),
        (
            "rules/wheels.kdl".to_string(),
            format!("wheel \"numpy\" {{\n    source pypi=\"numpy\" version=\"2.1.3\" sha256=\"{SHA}\"\n    python \"3.11\"\n    runtime \"//runtimes:py\"\n    packs \"//packs:openblas\"\n}}\n"),
        ),
        ("recipes/openblas.sh".to_string(), "#!/bin/sh\nmake\n".to_string()),
    ];
    for (p, t) in files {
        let full = dir.join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, t).unwrap();
    }
}

fn load(dir: &Path) -> TargetGraph {
    TargetGraph::build(Workspace::load(dir).unwrap()).unwrap()
}

fn id(graph: &TargetGraph, label: &str) -> TargetId {
    graph.find(&parse_label(label, None).unwrap()).unwrap()
}

/// Stands in for an action: stores an artifact holding `content` under the target's key.
fn build(graph: &TargetGraph, store: &LocalStore, label: &str, content: &str) {
    let target = id(graph, label);
    let p = plan(graph, &[target], store, None).unwrap();
    let node = p.nodes.iter().find(|n| n.id == target).unwrap();
    assert_eq!(node.status, Status::Build, "{label} is not ready to build");
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("out.txt"), content).unwrap();
    let t = graph.target(target);
    let input = ArtifactInput::new(t.kind(), node.key.unwrap().hex(), label)
        .tree(out.path())
        .key_fields(serde_json::json!(node.fields.as_ref().unwrap().flat()));
    store.put_artifact(&input).unwrap();
}

fn statuses(graph: &TargetGraph, store: &LocalStore, label: &str) -> Vec<(String, Status)> {
    plan(graph, &[id(graph, label)], store, None)
        .unwrap()
        .nodes
        .iter()
        .map(|n| (graph.target(n.id).label.to_string(), n.status))
        .collect()
}

#[test]
fn statuses_follow_the_store() {
    let ws = tempfile::tempdir().unwrap();
    let st = tempfile::tempdir().unwrap();
    write_workspace(ws.path(), "-O2");
    let store = LocalStore::open(st.path()).unwrap();
    let g = load(ws.path());
    let s = |l| statuses(&g, &store, l);
    assert_eq!(
        s("//wheels:numpy-py311"),
        vec![
            ("//bases:deb".into(), Status::Build),
            ("//packs:openblas".into(), Status::Pending),
            ("//runtimes:py-py311".into(), Status::Pending),
            ("//wheels:numpy-py311".into(), Status::Pending),
        ]
    );
    build(&g, &store, "//bases:deb", "root");
    let after: Vec<Status> = s("//wheels:numpy-py311")
        .into_iter()
        .map(|(_, st)| st)
        .collect();
    assert_eq!(after.iter().filter(|s| **s == Status::Cached).count(), 1);
    assert_eq!(
        after.iter().filter(|s| **s == Status::Build).count(),
        2,
        "pack and runtime are ready"
    );
    build(&g, &store, "//packs:openblas", "blas");
    build(&g, &store, "//runtimes:py-py311", "python");
    build(&g, &store, "//wheels:numpy-py311", "wheel");
    assert!(
        s("//wheels:numpy-py311")
            .iter()
            .all(|(_, st)| *st == Status::Cached)
    );
}

#[test]
fn explain_names_the_changed_field_through_the_pending_chain() {
    let ws = tempfile::tempdir().unwrap();
    let st = tempfile::tempdir().unwrap();
    write_workspace(ws.path(), "-O2");
    let store = LocalStore::open(st.path()).unwrap();
    let g = load(ws.path());
    for (l, c) in [
        ("//bases:deb", "root"),
        ("//packs:openblas", "blas"),
        ("//runtimes:py-py311", "py"),
        ("//wheels:numpy-py311", "w"),
    ] {
        build(&g, &store, l, c);
    }
    write_workspace(ws.path(), "-O3");
    let g = load(ws.path());
    let e = explain(&g, id(&g, "//wheels:numpy-py311"), &store, None).unwrap();
    let Explanation::Pending { must_build, .. } = &e else {
        panic!("{e:?}")
    };
    let [
        Explanation::Build {
            label,
            diffs,
            previous,
            ..
        },
    ] = must_build.as_slice()
    else {
        panic!("{e:?}")
    };
    assert_eq!(label, "//packs:openblas");
    assert!(previous.is_some());
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert_eq!(diffs[0].field, "env[CFLAGS]");
    assert_eq!(diffs[0].before.as_deref(), Some("-O2"));
    assert_eq!(diffs[0].after.as_deref(), Some("-O3"));

    // The pack rebuilds with different content: now the wheel is the one to explain, and the
    // field that differs is the pack's digest, naming the pack.
    build(&g, &store, "//packs:openblas", "blas built with -O3");
    let e = explain(&g, id(&g, "//wheels:numpy-py311"), &store, None).unwrap();
    let Explanation::Build { diffs, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert_eq!(diffs[0].field, "packs[openblas]");
    assert_eq!(diffs[0].dependency.as_deref(), Some("//packs:openblas"));
    assert!(diffs[0].before.as_ref().unwrap().starts_with("sha256:"));
    assert_ne!(diffs[0].before, diffs[0].after);
}

#[test]
fn early_cutoff_when_a_rebuilt_dependency_is_identical() {
    let ws = tempfile::tempdir().unwrap();
    let st = tempfile::tempdir().unwrap();
    write_workspace(ws.path(), "-O2");
    let store = LocalStore::open(st.path()).unwrap();
    let g = load(ws.path());
    for (l, c) in [
        ("//bases:deb", "root"),
        ("//packs:openblas", "blas"),
        ("//runtimes:py-py311", "py"),
        ("//wheels:numpy-py311", "w"),
    ] {
        build(&g, &store, l, c);
    }
    // A change to the pack's rule that does not change what it builds.
    write_workspace(ws.path(), "-O2 ");
    let g = load(ws.path());
    assert_eq!(
        statuses(&g, &store, "//wheels:numpy-py311")
            .iter()
            .find(|(l, _)| l == "//wheels:numpy-py311")
            .unwrap()
            .1,
        Status::Pending
    );
    build(&g, &store, "//packs:openblas", "blas");
    let all = statuses(&g, &store, "//wheels:numpy-py311");
    assert!(
        all.iter().all(|(_, s)| *s == Status::Cached),
        "the wheel's key did not change: {all:?}"
    );
}

#[test]
fn explain_a_cached_target_and_one_never_built() {
    let ws = tempfile::tempdir().unwrap();
    let st = tempfile::tempdir().unwrap();
    write_workspace(ws.path(), "-O2");
    let store = LocalStore::open(st.path()).unwrap();
    let g = load(ws.path());
    let e = explain(&g, id(&g, "//bases:deb"), &store, None).unwrap();
    assert!(
        matches!(&e, Explanation::Build { previous: None, diffs, .. } if diffs.is_empty()),
        "{e:?}"
    );
    build(&g, &store, "//bases:deb", "root");
    let e = explain(&g, id(&g, "//bases:deb"), &store, None).unwrap();
    assert!(matches!(&e, Explanation::Cached { .. }), "{e:?}");
}
