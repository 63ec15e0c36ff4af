//! The session (workspace, targets, stores) and the operations over a real local store:
//! what a session opens and refuses, and what `--out` writes.

use std::collections::HashMap;
use std::path::Path;

use refine_engine::exec::{BuildReport, Built, NodeResult};
use refine_engine::graph::TargetId;
use refine_engine::ops::{self, OpError};
use refine_engine::plan::Status;
use refine_engine::session::{RemoteNeed, Session, SessionError, SessionOptions, Targets};
use refine_engine::store::ArtifactInput;

const SHA: &str = "d584d9ec91ad65861cc08d42e834324ef890a082e591037abe114850ff7bbc3e";

/// A workspace with a base and two packs; `store` is written into `store { … }` as is.
fn workspace(dir: &Path, store: &str) {
    let files = [
        (
            "workspace.kdl",
            format!(
                "workspace \"o\"\nplatform \"s390x\" arch=\"s390x\" policy=\"manylinux_2_28\" base=\"//bases:deb\"\ndefaults {{\n    platform \"s390x\"\n    frontend \"build==1.2.2.post1\" sha256=\"{SHA}\"\n    repair-tool \"auditwheel==6.1.0\" sha256=\"{SHA}\"\n}}\nstore {{\n{store}}}\n"
            ),
        ),
        (
            "rules/bases.kdl",
            "base \"deb\" {\n    arch \"s390x\"\n    policy \"manylinux_2_28\"\n    bootstrap \"debootstrap\" version=\"1\" suite=\"bookworm\"\n}\n".to_string(),
        ),
        (
            "rules/packs.kdl",
            "pack \"a\" {\n    version \"1\"\n    recipe \"recipes/a.sh\"\n}\npack \"b\" {\n    version \"1\"\n    recipe \"recipes/a.sh\"\n}\n".to_string(),
        ),
        ("recipes/a.sh", "#!/bin/sh\n".to_string()),
    ];
    for (path, text) in files {
        let full = dir.join(path);
        fs_err::create_dir_all(full.parent().unwrap()).unwrap();
        fs_err::write(full, text).unwrap();
    }
}

fn options(dir: &Path) -> SessionOptions {
    SessionOptions {
        directory: Some(dir.to_path_buf()),
        ..SessionOptions::default()
    }
}

fn patterns(p: &[&str]) -> Vec<String> {
    p.iter().map(std::string::ToString::to_string).collect()
}

#[test]
fn a_session_resolves_its_targets_and_opens_the_configured_store() {
    let ws = tempfile::tempdir().unwrap();
    workspace(ws.path(), "    local \"cache\"\n");
    let all = patterns(&["//packs:all"]);
    let session = Session::open(
        &options(ws.path()),
        Targets::Patterns(&all),
        RemoteNeed::IfConfigured,
    )
    .unwrap();
    let labels: Vec<String> = session
        .roots()
        .iter()
        .map(|&id| session.graph().target(id).label.to_string())
        .collect();
    assert_eq!(labels, ["//packs:a", "//packs:b"]);
    assert_eq!(session.store().root(), ws.path().join("cache"));
    assert!(session.remote().is_none() && session.remote_skipped().is_none());

    // `--store` comes before the workspace's store.
    let flag = tempfile::tempdir().unwrap();
    let opts = SessionOptions {
        store: Some(flag.path().to_path_buf()),
        ..options(ws.path())
    };
    let session = Session::open(&opts, Targets::None, RemoteNeed::Unused).unwrap();
    assert_eq!(session.store().root(), flag.path());
    assert!(session.roots().is_empty());
}

#[test]
fn a_session_refuses_several_targets_where_one_is_asked_for() {
    let ws = tempfile::tempdir().unwrap();
    workspace(ws.path(), "    local \"cache\"\n");
    let one = Targets::One {
        pattern: "//packs:all",
        command: "explain",
    };
    let Err(err) = Session::open(&options(ws.path()), one, RemoteNeed::Unused) else {
        panic!("two targets were taken for one")
    };
    assert!(
        matches!(&err, SessionError::NotOneTarget { count: 2, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "`//packs:all` matches 2 targets; `refine explain` takes one"
    );
    // The pattern is checked before the store is opened.
    assert!(!ws.path().join("cache").exists());
}

#[test]
fn a_remote_that_does_not_answer_fails_unless_optional_and_is_required_by_push() {
    let ws = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    workspace(
        ws.path(),
        "    local \"cache\"\n    remote \"oci://127.0.0.1:1/ci\"\n",
    );
    let err = Session::open(&options(ws.path()), Targets::None, RemoteNeed::IfConfigured)
        .err()
        .unwrap();
    assert!(matches!(err, SessionError::RemoteUnreachable(_)), "{err:?}");

    let optional = SessionOptions {
        remote_optional: true,
        ..options(ws.path())
    };
    let session = Session::open(&optional, Targets::None, RemoteNeed::IfConfigured).unwrap();
    assert!(session.remote().is_none());
    assert!(session.remote_skipped().is_some());
    // `push` and `pull` need the remote whatever `--remote-optional` says.
    let err = Session::open(&optional, Targets::None, RemoteNeed::Required)
        .err()
        .unwrap();
    assert!(matches!(err, SessionError::RemoteUnreachable(_)), "{err:?}");

    // No remote at all.
    let bare = tempfile::tempdir().unwrap();
    workspace(bare.path(), "");
    let opts = SessionOptions {
        store: Some(bare.path().join("store")),
        ..options(bare.path())
    };
    let err = Session::open(&opts, Targets::None, RemoteNeed::Required)
        .err()
        .unwrap();
    assert!(matches!(err, SessionError::NoRemote), "{err:?}");
}

/// Stores an artifact for `id` under its planned key, holding `files` (name, text); returns
/// the build result that names it, as the executor reports a cache hit.
fn stored(session: &Session, id: TargetId, files: &[(&str, &str)]) -> NodeResult {
    let plan = session.plan(&[id]).unwrap();
    let node = plan.nodes.iter().find(|n| n.id == id).unwrap();
    assert_eq!(node.status, Status::Build);
    let key = node.key.unwrap().hex();
    let tree = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs_err::write(tree.path().join(name), text).unwrap();
    }
    let label = session.graph().target(id).label.to_string();
    let input =
        ArtifactInput::new(session.graph().target(id).kind(), &key, label).tree(tree.path());
    let digest = session.store().put_artifact(&input).unwrap();
    NodeResult::Cached(Built {
        digest,
        content: String::new(),
        remote: false,
        key: Some(key),
    })
}

fn report(results: HashMap<TargetId, NodeResult>) -> BuildReport {
    BuildReport {
        results,
        seconds: 0.5,
        critical_path: Vec::new(),
        critical_path_seconds: 0.0,
        interrupted: false,
    }
}

#[test]
fn export_writes_wheels_as_files_and_other_artifacts_as_folders() {
    let ws = tempfile::tempdir().unwrap();
    workspace(ws.path(), "    local \"cache\"\n");
    let base = patterns(&["//bases:deb"]);
    let session = Session::open(
        &options(ws.path()),
        Targets::Patterns(&base),
        RemoteNeed::Unused,
    )
    .unwrap();
    let base_id = session.roots()[0];
    let base_result = stored(&session, base_id, &[("root.txt", "root")]);
    let packs = patterns(&["//packs:all"]);
    let session = Session::open(
        &options(ws.path()),
        Targets::Patterns(&packs),
        RemoteNeed::Unused,
    )
    .unwrap();
    let (a, b) = (session.roots()[0], session.roots()[1]);
    let results = HashMap::from([
        (base_id, base_result),
        (
            a,
            stored(
                &session,
                a,
                &[("z-1-py3-none-any.whl", "z"), ("y-1-py3-none-any.whl", "y")],
            ),
        ),
        (b, stored(&session, b, &[("lib.txt", "b")])),
    ]);
    let report = report(results);
    let dest = tempfile::tempdir().unwrap();
    let exported = ops::export::export(&session, &report, dest.path()).unwrap();
    // The requested targets only, wheels by name; the base is a dependency, not exported.
    assert_eq!(
        exported.written,
        [
            dest.path().join("y-1-py3-none-any.whl"),
            dest.path().join("z-1-py3-none-any.whl"),
            dest.path().join("b"),
        ]
    );
    assert_eq!(
        fs_err::read_to_string(dest.path().join("b/lib.txt")).unwrap(),
        "b"
    );
    // Again over what is there: the same files, rewritten.
    let again = ops::export::export(&session, &report, dest.path()).unwrap();
    assert_eq!(again, exported);

    let summary = report.summary(session.graph());
    assert_eq!(
        (
            summary.built,
            summary.cached,
            summary.failed,
            summary.skipped
        ),
        (0, 3, 0, 0)
    );
}

#[test]
fn provenance_and_mirror_say_what_is_missing() {
    let ws = tempfile::tempdir().unwrap();
    workspace(ws.path(), "    local \"cache\"\n");
    let session = Session::open(&options(ws.path()), Targets::None, RemoteNeed::Unused).unwrap();
    let err = ops::provenance::provenance(&session, "//packs:a").unwrap_err();
    assert!(
        matches!(&err, OpError::NoArtifact { target } if target == "//packs:a"),
        "{err:?}"
    );
    let err = ops::provenance::provenance(&session, "//packs:all").unwrap_err();
    assert!(
        matches!(
            err,
            OpError::Session(SessionError::NotOneTarget { count: 2, .. })
        ),
        "{err:?}"
    );
    let err = ops::mirror::publish_files(session.graph(), &[], &mut |_| {}).unwrap_err();
    assert!(matches!(err, OpError::NoMirror), "{err:?}");
    // A build without a mirror publishes nothing, and says so by an empty list.
    let none = ops::mirror::publish_built(&session, &report(HashMap::new()), &mut |_| {}).unwrap();
    assert!(none.is_empty());
}
