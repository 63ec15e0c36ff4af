//! Cancelling (queued, running, finished) and restarting (SIGKILL, SIGTERM) the server.

use reqwest::StatusCode;
use serde_json::json;

use super::*;
use crate::common::serve::Server;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_a_running_build_a_queued_one_and_not_a_finished_one() {
    let mark = marker(1);
    let w = tiny(&[("sleeper", &sleeper(&mark), &[]), ("quick", A, &[])]);
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(w.path(), store.path(), &["--slots", "1"]);
    let api = Api::new();

    // A build that runs until it is stopped.
    let running = api.queue(&server, &["//packs:sleeper"]).await;
    let mut events = Events::open(&api, &server, running).await;
    events
        .until("the sleeper's action-start", |e| {
            e["event"] == "action-start" && e["label"] == "//packs:sleeper"
        })
        .await;
    wait_for("the sandboxed sleeper", || sleepers(&mark) == 1).await;

    // A build queued behind it (one slot) is cancelled at once and never runs.
    let queued = api.queue(&server, &["//packs:quick"]).await;
    assert_eq!(api.build(&server, queued).await["state"], "queued");
    let (status, b) = api.delete(&server, &format!("/v1/builds/{queued}")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{b}");
    assert_eq!(b["state"], "cancelled", "{b}");
    let queued_events = api.follow(&server, queued).await;
    assert_eq!(queued_events.len(), 1, "{queued_events:#?}");
    assert_eq!(final_state(&queued_events), "cancelled");

    // The running one: its sandbox is killed, it ends cancelled, the store stays valid.
    let (status, b) = api.delete(&server, &format!("/v1/builds/{running}")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{b}");
    let rest = events.rest().await;
    assert_eq!(final_state(&rest), "cancelled", "{rest:#?}");
    assert!(
        !rest.iter().any(|e| e["event"] == "action-finish"),
        "{rest:#?}"
    );
    assert_eq!(api.build(&server, running).await["state"], "cancelled");
    wait_for("the sandboxed sleeper to be killed", || {
        sleepers(&mark) == 0
    })
    .await;
    store_verify(store.path());

    let b = api.build(&server, queued).await;
    assert_eq!(b["state"], "cancelled", "{b}");
    assert!(b["started"].is_null(), "it never started: {b}");
    assert_eq!(b["nodes"], json!([]), "{b}");

    // The slot is free again, and what the cancelled build would have built is built now.
    let after = api.queue(&server, &["//packs:quick"]).await;
    let after_events = api.follow(&server, after).await;
    assert_eq!(final_state(&after_events), "succeeded");
    assert_eq!(
        kinds_by_label(&after_events)["//packs:quick"],
        ["action-start", "action-finish"]
    );

    // A build that is over is left as it is.
    for id in [running, queued, after] {
        let answer = api.delete(&server, &format!("/v1/builds/{id}")).await;
        assert_error("DELETE of a finished build", &answer, StatusCode::CONFLICT);
    }
    assert_eq!(api.build(&server, after).await["state"], "succeeded");
    let (_, text) = api.text(&server, "/metrics").await;
    let scrape = scrape(&text);
    assert_eq!(
        value(&scrape, "refine_builds_total", &[("outcome", "cancelled")]),
        2.0
    );
    assert_eq!(value(&scrape, "refine_builds_running", &[]), 0.0);
    assert_eq!(value(&scrape, "refine_queue_length", &[]), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_interrupts_the_running_build_and_keeps_the_queue() {
    let (killed_mark, stopped_mark) = (marker(2), marker(3));
    let w = tiny(&[("slow", &sleeper(&killed_mark), &[]), ("quick", A, &[])]);
    let store = tempfile::tempdir().unwrap();
    let mut server = Server::start(w.path(), store.path(), &["--slots", "1"]);
    let api = Api::new();

    // SIGKILL while a build runs and another waits.
    let first = api.queue(&server, &["//packs:slow"]).await;
    Events::open(&api, &server, first)
        .await
        .until("the slow action-start", |e| {
            e["event"] == "action-start" && e["label"] == "//packs:slow"
        })
        .await;
    wait_for("the sandboxed sleeper", || sleepers(&killed_mark) == 1).await;
    let second = api.queue(&server, &["//packs:quick"]).await;
    server.kill();
    wait_for("the sleeper to die with the server", || {
        sleepers(&killed_mark) == 0
    })
    .await;
    server.restart();
    assert!(
        server.log().contains("1 build(s) were running"),
        "{}",
        server.log()
    );
    let b = api.build(&server, first).await;
    assert_eq!(b["state"], "interrupted", "{b}");
    assert!(b["finished"].is_string(), "{b}");
    // Its events end, with the state the killed server could not send.
    let first_events = api.follow(&server, first).await;
    assert_eq!(
        final_state(&first_events),
        "interrupted",
        "{first_events:#?}"
    );
    // Nothing queued is lost.
    let second_events = api.follow(&server, second).await;
    assert_eq!(
        final_state(&second_events),
        "succeeded",
        "{second_events:#?}"
    );

    // Requeued once its recipe can finish: a new build that names the old one.
    fs_err::write(w.path().join("recipes/slow.sh"), A).unwrap();
    let (status, again) = api
        .post(&server, &format!("/v1/builds/{first}/requeue"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["requeue_of"], first, "{again}");
    assert_eq!(again["patterns"], json!(["//packs:slow"]));
    let again = again["id"].as_i64().unwrap();
    assert_ne!(again, first);
    let again_events = api.follow(&server, again).await;
    assert_eq!(final_state(&again_events), "succeeded", "{again_events:#?}");
    assert_eq!(
        kinds_by_label(&again_events)["//packs:slow"],
        ["action-start", "action-finish"]
    );
    assert_eq!(api.build(&server, first).await["state"], "interrupted");
    assert_eq!(api.build(&server, again).await["requeue_of"], first);

    // SIGTERM while a build runs: the server stops it and records it interrupted itself.
    fs_err::write(w.path().join("recipes/slow.sh"), sleeper(&stopped_mark)).unwrap();
    let third = api.queue(&server, &["//packs:slow"]).await;
    Events::open(&api, &server, third)
        .await
        .until("the slow action-start", |e| {
            e["event"] == "action-start" && e["label"] == "//packs:slow"
        })
        .await;
    wait_for("the sandboxed sleeper", || sleepers(&stopped_mark) == 1).await;
    server.stop();
    wait_for("SIGTERM to stop the sandbox", || {
        sleepers(&stopped_mark) == 0
    })
    .await;
    server.restart();
    assert!(
        !server.log().contains("were running"),
        "the stopped server left a build running:\n{}",
        server.log()
    );
    let b = api.build(&server, third).await;
    assert_eq!(b["state"], "interrupted", "{b}");
    let third_events = api.follow(&server, third).await;
    assert_eq!(
        final_state(&third_events),
        "interrupted",
        "{third_events:#?}"
    );
    assert_eq!(api.build_count(&server).await, 4);
    server.stop();
    store_verify(store.path());
}
