//! Plan, queue, follow, fetch: the API's main path against `refine plan` and `refine build`,
//! with a real registry behind the artifact links; a failed node's log and the build's edges.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::*;
use crate::common::registry::Registry;
use crate::common::serve::Server;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_queue_follow_and_fetch_with_a_real_registry() {
    let registry = Registry::start();
    let remote = registry.url("serve");
    let w = three_packs();
    let store = tempfile::tempdir().unwrap();
    let server = Server::start_with_globals(w.path(), store.path(), &["--remote", &remote], &[]);
    let api = Api::new();
    let top = "//packs:top";

    // The plan is `refine plan --output json`'s, node for node, with the DAG's edges.
    let (status, plan) = api
        .post(&server, "/v1/plans", &json!({ "patterns": [top] }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{plan}");
    let cli = w.refine(&[
        "--store",
        store.path().to_str().unwrap(),
        "--remote",
        &remote,
        "plan",
        top,
        "--output",
        "json",
    ]);
    assert!(cli.status.success(), "{}", stderr(&cli));
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(
        plan["nodes"], cli,
        "the API's plan and `refine plan`'s differ"
    );
    let labels: Vec<&str> = cli
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["//bases:tiny", "//packs:a", "//packs:b", "//packs:top"]
    );
    let mut edges: Vec<(String, String)> = plan["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().into(),
                e["to"].as_str().unwrap().into(),
            )
        })
        .collect();
    edges.sort();
    let mut deps: Vec<(String, String)> = cli
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| {
            n["deps"].as_array().unwrap().iter().map(|d| {
                (
                    n["label"].as_str().unwrap().into(),
                    d.as_str().unwrap().into(),
                )
            })
        })
        .collect();
    deps.sort();
    assert_eq!(edges, deps);
    assert!(edges.contains(&("//packs:top".into(), "//packs:b".into())));
    assert_eq!(plan["patterns"], json!([top]));
    let id = plan["id"].as_i64().unwrap();
    let (status, again) = api.get(&server, &format!("/v1/plans/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, plan, "a stored plan reads back as it was returned");

    // A build, followed from its first event to its last.
    let build = api.queue(&server, &[top]).await;
    let events = api.follow(&server, build).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        (kinds[0], events[0]["state"].as_str()),
        ("build-state", Some("running")),
        "{events:#?}"
    );
    assert_eq!(&kinds[1..3], ["build-start", "plan"], "{events:#?}");
    assert_eq!(events[1]["targets"], json!([top]));
    let finish = &events[events.len() - 2];
    assert_eq!(
        (&finish["event"], &finish["success"], &finish["built"]),
        (&json!("build-finish"), &json!(true), &json!(4)),
        "{events:#?}"
    );
    assert_eq!(final_state(&events), "succeeded");
    let by_label = kinds_by_label(&events);
    for label in &labels {
        assert_eq!(
            by_label[*label],
            ["action-start", "action-finish"],
            "{label}: {events:#?}"
        );
    }

    // `refine build --events` on the same workspace (another store, no remote) has the same
    // events for each label, with the same keys.
    let cli_store = tempfile::tempdir().unwrap();
    let cli_events = cli_build_events(&w, cli_store.path(), &[top]);
    assert_eq!(kinds_by_label(&cli_events), by_label);
    assert_eq!(
        field_by_label(&cli_events, "action-start", "key"),
        field_by_label(&events, "action-start", "key")
    );
    let cli_kinds: Vec<&str> = cli_events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        cli_kinds,
        kinds[1..kinds.len() - 1],
        "the server adds only its `build-state` events"
    );

    // The build: succeeded, each node built with the digest its event named.
    let b = api.build(&server, build).await;
    assert_eq!(b["state"], "succeeded", "{b}");
    assert_eq!(b["summary"]["built"], 4, "{b}");
    assert!(b["started"].is_string() && b["finished"].is_string(), "{b}");
    let digests = field_by_label(&events, "action-finish", "digest");
    let nodes = b["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4, "{b}");
    for n in nodes {
        let label = n["label"].as_str().unwrap();
        assert_eq!(n["state"], "built", "{n}");
        assert_eq!(n["digest"], digests[label], "{n}");
        let planned = cli
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["label"] == label)
            .unwrap();
        assert_eq!(n["planned"], planned["status"], "{n}");
    }

    // The top pack's artifact: its label, manifest, provenance, log, and its registry links,
    // followed with skopeo and over the distribution API.
    let node = nodes.iter().find(|n| n["label"] == top).unwrap();
    let key = node["key"].as_str().unwrap();
    let (status, artifact) = api.get(&server, &format!("/v1/artifacts/pack/{key}")).await;
    assert_eq!(status, StatusCode::OK, "{artifact}");
    assert_eq!(artifact["label"], top);
    assert_eq!(artifact["manifest"], node["digest"]);
    assert_eq!(artifact["push_pending"], false, "{artifact}");
    let statement = &artifact["provenance"]["statement"];
    assert_eq!(
        statement["_type"], "https://in-toto.io/Statement/v1",
        "{artifact}"
    );
    assert_eq!(
        statement["predicate"]["buildDefinition"]["externalParameters"]["label"], top,
        "{artifact}"
    );
    let manifest = artifact["manifest"].as_str().unwrap();
    let links = &artifact["links"]["registry"];
    let tag = format!("127.0.0.1:{}/serve/pack:{key}", registry.port);
    assert_eq!(links["tag"], tag, "{artifact}");
    assert_eq!(
        links["by_digest"],
        format!("127.0.0.1:{}/serve/pack@{manifest}", registry.port)
    );
    assert!(artifact["links"]["mirror"].is_null(), "{artifact}");
    let skopeo = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{tag}"))
        .output()
        .expect("skopeo is missing: see .ci/setup.d/remote.sh");
    assert!(
        skopeo.status.success(),
        "skopeo inspect {tag}: {}",
        stderr(&skopeo)
    );
    let sha = |bytes: &[u8]| -> String {
        let hex: String = sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256:{hex}")
    };
    assert_eq!(sha(&skopeo.stdout), manifest, "the registry's manifest");
    let raw = api
        .http
        .get(links["manifest_url"].as_str().unwrap())
        .header(
            reqwest::header::ACCEPT,
            "application/vnd.oci.image.manifest.v1+json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::OK);
    assert_eq!(sha(&raw.bytes().await.unwrap()), manifest);
    let (status, log) = api
        .text(&server, artifact["log"]["url"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    assert!(
        log.starts_with("refine: the action of //packs:top"),
        "{log}"
    );

    // Again: every node is a local cache hit, nothing runs.
    let second = api.queue(&server, &[top]).await;
    let events = api.follow(&server, second).await;
    assert_eq!(final_state(&events), "succeeded");
    for (label, kinds) in kinds_by_label(&events) {
        assert_eq!(kinds, ["cache-hit"], "{label}: {events:#?}");
    }
    let b = api.build(&server, second).await;
    for n in b["nodes"].as_array().unwrap() {
        assert_eq!(
            (&n["state"], &n["where"]),
            (&json!("cached"), &json!("local")),
            "{n}"
        );
        assert_eq!(n["digest"], digests[n["label"].as_str().unwrap()], "{n}");
    }

    // Search finds the node in the newest build, by label and by the start of its digest.
    for q in [
        "packs:top",
        &manifest[..20],
        &manifest["sha256:".len()..][..12],
    ] {
        let (status, found) = api.get(&server, &format!("/v1/search?q={q}")).await;
        assert_eq!(status, StatusCode::OK, "{found}");
        let hit = found["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["node"]["label"] == top)
            .unwrap_or_else(|| panic!("{q}: {found}"));
        assert_eq!(hit["build"], second, "{q}: {found}");
    }
    assert_eq!(api.build_count(&server).await, 2);
}

/// A build's nodes name their direct dependencies (its graph as it was built), and a failed
/// action's log is served by its digest — while a blob that is not a log is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_nodes_log_and_the_builds_edges_are_served() {
    let w = tiny(&[("a", A, &[]), ("bad", BAD, &["a"])]);
    let store = tempfile::tempdir().unwrap();
    let api = Api::new();
    let server = Server::start(w.path(), store.path(), &[]);
    let id = api.queue(&server, &["//packs:bad"]).await;
    assert_eq!(final_state(&api.follow(&server, id).await), "failed");
    let build = api.build(&server, id).await;
    let nodes = build["nodes"].as_array().unwrap();
    let node = |label: &str| {
        nodes
            .iter()
            .find(|n| n["label"] == label)
            .unwrap_or_else(|| panic!("{label} in {build}"))
    };
    assert_eq!(
        node("//packs:a")["deps"],
        serde_json::json!(["//bases:tiny"])
    );
    let bad = node("//packs:bad");
    assert_eq!(bad["state"], "failed", "{bad}");
    let mut deps: Vec<&str> = bad["deps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    deps.sort_unstable();
    assert_eq!(deps, ["//bases:tiny", "//packs:a"]);
    let log = bad["log"].as_str().expect("a failed node names its log");
    let (status, text) = api.text(&server, &format!("/v1/logs/{log}")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        text.starts_with("refine: the action of //packs:bad"),
        "{text}"
    );
    assert!(text.contains("failing on purpose"), "{text}");

    // The manifest of a built artifact is a blob of the store, not a log: not served here.
    let manifest = node("//packs:a")["digest"].as_str().unwrap().to_string();
    let refused = api.get(&server, &format!("/v1/logs/{manifest}")).await;
    assert_error("a manifest as a log", &refused, StatusCode::NOT_FOUND);
    let refused = api.get(&server, "/v1/logs/sha256:..%2F..%2Fetc").await;
    assert_error("a path as a digest", &refused, StatusCode::BAD_REQUEST);
}
