//! Bad input refused with JSON and nothing changed; a database from a newer refine refused.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use super::*;
use crate::common::serve::{Server, TOKEN};
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_json_and_changes_nothing() {
    let w = tiny(&[("a", A, &[])]);
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(w.path(), store.path(), &[]);
    let api = Api::new();
    let id = api.queue(&server, &["//packs:a"]).await;
    let events = api.follow(&server, id).await;
    assert_eq!(final_state(&events), "succeeded");
    let key = events
        .iter()
        .find(|e| e["event"] == "action-finish" && e["label"] == "//packs:a")
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let post = |body: reqwest::Body| {
        api.http
            .post(server.url("/v1/builds"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
    };

    // No token, a wrong token: on writes, and on reads without `--public-reads`.
    let good = json!({"patterns": ["//packs:a"]}).to_string();
    let answer = api.json(post(good.clone().into())).await;
    assert_error("POST without a token", &answer, StatusCode::UNAUTHORIZED);
    let answer = api
        .json(post(good.clone().into()).bearer_auth("wrong"))
        .await;
    assert_error("POST with a wrong token", &answer, StatusCode::UNAUTHORIZED);
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wrong"),
        "{}",
        answer.1
    );
    let answer = api
        .json(api.http.delete(server.url(&format!("/v1/builds/{id}"))))
        .await;
    assert_error("DELETE without a token", &answer, StatusCode::UNAUTHORIZED);
    for path in [
        "/v1/builds",
        &format!("/v1/builds/{id}"),
        "/metrics",
        "/v1/search?q=a",
    ] {
        let answer = api.json(api.http.get(server.url(path))).await;
        assert_error(
            &format!("GET {path} without a token"),
            &answer,
            StatusCode::UNAUTHORIZED,
        );
    }
    let health = api.http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let openapi = api.json(api.http.get(server.url("/openapi.json"))).await;
    assert_eq!(openapi.0, StatusCode::OK);
    assert!(
        openapi.1["paths"]["/v1/builds"].is_object(),
        "{}",
        openapi.1
    );

    // Bodies the server refuses before looking at the workspace.
    let mut rejected = 0.0;
    let big = json!({"patterns": ["x".repeat(70 * 1024)]}).to_string();
    let answer = api.json(post(big.into()).bearer_auth(TOKEN)).await;
    assert_error("a body over 64 KiB", &answer, StatusCode::PAYLOAD_TOO_LARGE);
    rejected += 1.0;
    let answer = api.json(post("{bad".into()).bearer_auth(TOKEN)).await;
    assert_error("malformed JSON", &answer, StatusCode::BAD_REQUEST);
    rejected += 1.0;
    let answer = api
        .json(
            api.http
                .post(server.url("/v1/builds"))
                .bearer_auth(TOKEN)
                .body(good.clone()),
        )
        .await;
    assert_error(
        "JSON without its content type",
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    );
    rejected += 1.0;
    for (what, body) in [
        ("a wrong field", json!({"pattern": ["//packs:a"]})),
        ("no patterns", json!({})),
        (
            "negative jobs",
            json!({"patterns": ["//packs:a"], "jobs": -1}),
        ),
    ] {
        let answer = api.post(&server, "/v1/builds", &body).await;
        assert_error(what, &answer, StatusCode::UNPROCESSABLE_ENTITY);
        rejected += 1.0;
    }
    for (what, body) in [
        ("`jobs: 0`", json!({"patterns": ["//packs:a"], "jobs": 0})),
        ("empty patterns", json!({"patterns": []})),
        ("not a pattern", json!({"patterns": ["packs a"]})),
    ] {
        let answer = api.post(&server, "/v1/builds", &body).await;
        assert_error(what, &answer, StatusCode::BAD_REQUEST);
        rejected += 1.0;
    }

    // A pattern that matches nothing: the diagnostic `refine build` prints, as JSON.
    let answer = api
        .post(&server, "/v1/builds", &json!({"patterns": ["//nope:x"]}))
        .await;
    assert_error("an unknown target", &answer, StatusCode::BAD_REQUEST);
    rejected += 1.0;
    let error = &answer.1["error"];
    assert!(
        error["message"].as_str().unwrap().contains("//nope:x"),
        "{error}"
    );
    assert!(
        !error["help"].as_str().unwrap_or_default().is_empty(),
        "{error}"
    );
    let span = &error["labels"][0]["span"];
    assert_eq!(
        (span["offset"].as_u64(), span["length"].as_u64()),
        (Some(0), Some("//nope:x".len() as u64)),
        "{error}"
    );
    let answer = api
        .post(&server, "/v1/plans", &json!({"patterns": ["//nope:x"]}))
        .await;
    assert_error(
        "a plan of an unknown target",
        &answer,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(answer.1["error"]["labels"][0]["span"], *span);

    // Paths and parameters.
    let hex = "0".repeat(64);
    let upper = "AB".repeat(32);
    let paths: Vec<(String, StatusCode)> = [
        ("/v1/artifacts/pack/..%2F..%2Fetc", StatusCode::BAD_REQUEST),
        (
            "/v1/artifacts/pack/..%2F..%2Fetc/log",
            StatusCode::BAD_REQUEST,
        ),
        (
            &format!("/v1/artifacts/nosuchkind/{hex}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            &format!("/v1/artifacts/pack/{upper}"),
            StatusCode::BAD_REQUEST,
        ),
        (&format!("/v1/artifacts/pack/{hex}"), StatusCode::NOT_FOUND),
        (
            &format!("/v1/artifacts/pack/{hex}/log"),
            StatusCode::NOT_FOUND,
        ),
        (&format!("/v1/artifacts/base/{key}"), StatusCode::NOT_FOUND),
        ("/v1/builds/999999", StatusCode::NOT_FOUND),
        ("/v1/builds/abc", StatusCode::BAD_REQUEST),
        ("/v1/builds/1.5", StatusCode::BAD_REQUEST),
        ("/v1/builds?limit=abc", StatusCode::BAD_REQUEST),
        ("/v1/plans/999999", StatusCode::NOT_FOUND),
        ("/v1/plans/abc", StatusCode::BAD_REQUEST),
        ("/v1/events?build=999999", StatusCode::NOT_FOUND),
        ("/v1/events?build=abc", StatusCode::BAD_REQUEST),
        ("/v1/search", StatusCode::BAD_REQUEST),
        ("/v1/nothing", StatusCode::NOT_FOUND),
    ]
    .into_iter()
    .map(|(p, s): (&str, StatusCode)| (p.to_string(), s))
    .collect();
    for (path, expected) in paths {
        let answer = api.get(&server, &path).await;
        assert_error(&format!("GET {path}"), &answer, expected);
    }
    let answer = api.delete(&server, "/v1/builds/999999").await;
    assert_error("DELETE of an unknown build", &answer, StatusCode::NOT_FOUND);
    let answer = api
        .post(&server, "/v1/builds/999999/requeue", &json!({}))
        .await;
    assert_error(
        "requeue of an unknown build",
        &answer,
        StatusCode::NOT_FOUND,
    );
    let answer = api
        .post(&server, &format!("/v1/builds/{id}/requeue"), &json!({}))
        .await;
    assert_eq!(
        answer.0,
        StatusCode::ACCEPTED,
        "a finished build may be requeued: {}",
        answer.1
    );
    let requeued = answer.1["id"].as_i64().unwrap();
    assert_eq!(
        final_state(&api.follow(&server, requeued).await),
        "succeeded"
    );

    // Nothing refused was queued; each refused build is counted.
    assert_eq!(api.build_count(&server).await, 2);
    let (status, text) = api.text(&server, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let scrape = scrape(&text);
    assert_eq!(
        value(&scrape, "refine_builds_total", &[("outcome", "rejected")]),
        rejected,
        "{text}"
    );
    assert_eq!(value(&scrape, "refine_queue_length", &[]), 0.0);

    // `--public-reads`: reads without a token, writes still with one.
    let other_store = tempfile::tempdir().unwrap();
    let public = Server::start(w.path(), other_store.path(), &["--public-reads"]);
    let (status, list) = api.json(api.http.get(public.url("/v1/builds"))).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let metrics = api.http.get(public.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let answer = api
        .json(
            api.http
                .post(public.url("/v1/builds"))
                .json(&json!({"patterns": ["//packs:a"]})),
        )
        .await;
    assert_error(
        "POST without a token, public reads",
        &answer,
        StatusCode::UNAUTHORIZED,
    );
    assert_eq!(api.build_count(&public).await, 0);
}

/// Runs `refine serve` in the foreground until it exits (or panics after [`PATIENCE`]): its
/// exit code and stderr.
fn serve_until_exit(w: &Path, store: &Path) -> (Option<i32>, String) {
    let token = tempfile::NamedTempFile::new().unwrap();
    fs_err::write(token.path(), TOKEN).unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(refine_bin())
        .arg("-C")
        .arg(w)
        .arg("--store")
        .arg(store)
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(token.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs_err::File::create(err.path()).unwrap().into_file())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "refine serve did not exit:\n{}",
                fs_err::read_to_string(err.path()).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), fs_err::read_to_string(err.path()).unwrap())
}

fn sqlite(db: &Path, statements: &str) {
    let script = format!(
        "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.executescript({statements:?})\nc.commit()\nc.close()\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .arg(db)
        .output()
        .expect("python3");
    assert!(out.status.success(), "python3 sqlite3: {}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_refine_is_refused_and_left_untouched() {
    let w = tiny(&[("a", A, &[])]);
    let store = tempfile::tempdir().unwrap();
    let api = Api::new();
    let mut server = Server::start(w.path(), store.path(), &[]);
    let id = api.queue(&server, &["//packs:a"]).await;
    assert_eq!(final_state(&api.follow(&server, id).await), "succeeded");
    server.stop();

    // As a newer refine would leave it: another schema version (and journal mode).
    let db = store.path().join("serve/state.sqlite");
    let version = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA user_version').fetchone()[0])",
        ])
        .arg(&db)
        .output()
        .expect("python3");
    let version = String::from_utf8(version.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(version.parse::<u32>().is_ok_and(|v| v >= 1), "{version}");
    sqlite(&db, "PRAGMA journal_mode=DELETE; PRAGMA user_version=999;");
    let before = fs_err::read(&db).unwrap();
    let (code, err) = serve_until_exit(w.path(), store.path());
    assert_ne!(code, Some(0), "{err}");
    assert!(
        err.contains("schema version 999") && err.contains(&db.display().to_string()),
        "the message names the version and the file:\n{err}"
    );
    assert!(fs_err::read(&db).unwrap() == before, "the database changed");

    // Back at this refine's version, it is the database it was.
    sqlite(&db, &format!("PRAGMA user_version={version};"));
    server.restart();
    let b = api.build(&server, id).await;
    assert_eq!(b["state"], "succeeded", "{b}");
}
