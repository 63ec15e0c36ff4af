use super::*;

fn new_build(patterns: &[&str]) -> NewBuild {
    NewBuild {
        patterns: patterns.iter().map(ToString::to_string).collect(),
        keep_going: false,
        jobs: None,
        requeue_of: None,
    }
}

#[test]
fn the_queue_is_first_in_first_out_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.sqlite");
    let state = State::open(&path).unwrap();
    let a = state.insert_build(&new_build(&["//a:x"])).unwrap();
    let b = state.insert_build(&new_build(&["//b:..."])).unwrap();
    assert_eq!(state.queue_length().unwrap(), 2);
    let first = state.claim_next().unwrap().unwrap();
    assert_eq!((first.id, first.state), (a.id, BuildState::Running));
    drop(state);

    // A restart: the running build is interrupted, the queued one is still queued.
    let state = State::open(&path).unwrap();
    assert_eq!(state.interrupt_running().unwrap(), 1);
    assert_eq!(
        state.build(a.id).unwrap().unwrap().state,
        BuildState::Interrupted
    );
    // Its events end with the final state the stopped server could not send.
    let events = state.events(a.id).unwrap();
    assert_eq!(events.len(), 1);
    let last: serde_json::Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(
        (&last["event"], &last["state"], &last["build"]),
        (&"build-state".into(), &"interrupted".into(), &a.id.into())
    );
    let next = state.claim_next().unwrap().unwrap();
    assert_eq!(
        (next.id, next.patterns),
        (b.id, vec!["//b:...".to_string()])
    );
    assert!(state.claim_next().unwrap().is_none());
}

#[test]
fn a_database_from_a_newer_refine_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.sqlite");
    State::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = State::open(&path).err().expect("refused");
    assert!(
        matches!(err, StateError::TooNew { found, .. } if found == SCHEMA_VERSION + 1),
        "{err}"
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION + 1, "the database was not touched");
}

#[test]
fn a_version_zero_database_is_migrated_keeping_its_other_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('kept');")
        .unwrap();
    drop(conn);
    let state = State::open(&path).unwrap();
    state.insert_build(&new_build(&["//a:x"])).unwrap();
    let kept: String = state
        .conn()
        .query_row("SELECT text FROM notes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, "kept");
}

#[test]
fn nodes_follow_their_records_and_search_finds_them() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open(&dir.path().join("s.sqlite")).unwrap();
    let b = state.insert_build(&new_build(&["//p:..."])).unwrap();
    let key = "ab".repeat(32);
    state
        .apply(&[
            builds::Record::Planned {
                build: b.id,
                nodes: vec![PlannedRow {
                    label: "//p:a".into(),
                    kind: "pack".into(),
                    planned: "build".into(),
                    key: Some(key.clone()),
                    deps: vec!["//bases:b".into()],
                }],
            },
            builds::Record::Node {
                build: b.id,
                node: Box::new(NodeRow {
                    label: "//p:a".into(),
                    state: "built".into(),
                    digest: Some("sha256:1234".into()),
                    seconds: Some(1.5),
                    ..NodeRow::default()
                }),
            },
            builds::Record::Event {
                build: b.id,
                seq: 0,
                body: "{}".into(),
            },
        ])
        .unwrap();
    let nodes = state.nodes(b.id).unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].state, "built");
    assert_eq!(nodes[0].key.as_deref(), Some(key.as_str()), "kept");
    assert_eq!(nodes[0].seconds, Some(1.5));
    assert_eq!(nodes[0].deps, ["//bases:b"]);
    for q in ["p:a", "abab", "1234", "sha256:12"] {
        assert_eq!(state.search(q, 10).unwrap().len(), 1, "{q}");
    }
    assert!(state.search("%", 10).unwrap().is_empty(), "no wildcard");
    assert_eq!(state.events(b.id).unwrap().len(), 1);
}

#[test]
fn a_version_one_database_is_migrated_and_keeps_its_builds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(MIGRATIONS[0]).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    conn.execute_batch(
        "INSERT INTO builds (patterns, keep_going, state, created) VALUES ('[\"//a:x\"]', 0, 'succeeded', 1.0);
         INSERT INTO nodes (build, label, kind, planned, state) VALUES (1, '//a:x', 'pack', 'build', 'built');",
    )
    .unwrap();
    drop(conn);
    let state = State::open(&path).unwrap();
    let build = state.build(1).unwrap().unwrap();
    assert_eq!(build.state, BuildState::Succeeded);
    let nodes = state.nodes(1).unwrap();
    assert_eq!((nodes[0].label.as_str(), nodes[0].deps.len()), ("//a:x", 0));
    let version: i64 = state
        .conn()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn plans_come_back_as_stored_compressed_or_from_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let state = State::open(&path).unwrap();
    let body = format!(
        "\"nodes\":[{}],\"edges\":[]",
        "{\"label\":\"//a:x\"},".repeat(1000)
    );
    let stored = state.insert_plan(&["//...".into()], body.clone()).unwrap();
    let again = state.plan(stored.id).unwrap().unwrap();
    assert_eq!(
        (again.body, again.patterns),
        (body, vec!["//...".to_string()])
    );
    // A plan written by schema 2 (text only) still reads.
    state
        .conn()
        .execute(
            "INSERT INTO plans (created, patterns, body) VALUES (1.0, '[]', 'old')",
            [],
        )
        .unwrap();
    let old = state.plan(stored.id + 1).unwrap().unwrap();
    assert_eq!(old.body, "old");
    assert!(state.plan(stored.id + 2).unwrap().is_none());
}
