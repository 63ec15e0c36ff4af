//! `/metrics` checked line by line against the text format, and against the events.

use std::collections::BTreeMap;

use reqwest::StatusCode;

use super::*;
use crate::common::registry::Registry;
use crate::common::serve::Server;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_events_said() {
    let registry = Registry::start();
    let remote = registry.url("metrics");
    let w = tiny(&[
        ("a", A, &[]),
        ("b", B, &["a"]),
        ("bad", BAD, &[]),
        ("after", TOP, &["bad"]),
    ]);
    let store = tempfile::tempdir().unwrap();
    let server = Server::start_with_globals(w.path(), store.path(), &["--remote", &remote], &[]);
    let api = Api::new();

    // Two builds that succeed (the second all cache hits), one that fails.
    let mut all = Vec::new();
    let mut outcomes: BTreeMap<String, f64> = BTreeMap::new();
    for pattern in ["//packs:b", "//packs:b", "//packs:after"] {
        let id = api.queue(&server, &[pattern]).await;
        let events = api.follow(&server, id).await;
        *outcomes
            .entry(final_state(&events).to_string())
            .or_default() += 1.0;
        all.extend(events);
    }
    assert_eq!(outcomes.get("succeeded"), Some(&2.0), "{outcomes:?}");
    assert_eq!(outcomes.get("failed"), Some(&1.0), "{outcomes:?}");

    // What the events say, counted by kind and result.
    let mut kinds: BTreeMap<String, String> = BTreeMap::new();
    let mut expected: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut action_seconds: BTreeMap<String, u64> = BTreeMap::new();
    for e in &all {
        if e["event"] == "plan" {
            for n in e["nodes"].as_array().unwrap() {
                kinds.insert(
                    n["label"].as_str().unwrap().into(),
                    n["kind"].as_str().unwrap().into(),
                );
            }
        }
        let result = match e["event"].as_str().unwrap() {
            "cache-hit" if e["where"] == "local" => "local_hit",
            "cache-hit" => "remote_hit",
            "action-finish" => {
                if !e["action_seconds"].is_null() {
                    *action_seconds
                        .entry(e["kind"].as_str().unwrap().into())
                        .or_default() += 1;
                }
                "built"
            }
            "action-fail" => "failed",
            "skipped" => "skipped",
            _ => continue,
        };
        let label = e["label"].as_str().unwrap();
        *expected
            .entry((kinds[label].clone(), result.to_string()))
            .or_default() += 1.0;
    }
    for want in [
        ("base", "built"),
        ("pack", "built"),
        ("base", "local_hit"),
        ("pack", "local_hit"),
        ("pack", "failed"),
        ("pack", "skipped"),
    ] {
        assert!(
            expected.contains_key(&(want.0.to_string(), want.1.to_string())),
            "the builds were meant to have {want:?}: {expected:?}"
        );
    }

    let (status, text) = api.text(&server, "/metrics").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let scrape = scrape(&text);
    let actions: BTreeMap<(String, String), f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "refine_actions_total")
        .map(|s| {
            let prometheus_parse::Value::Counter(v) = s.value else {
                panic!("refine_actions_total is a counter: {s:?}");
            };
            (
                (
                    s.labels.get("kind").unwrap().to_string(),
                    s.labels.get("result").unwrap().to_string(),
                ),
                v,
            )
        })
        .collect();
    assert_eq!(actions, expected, "refine_actions_total against the events");
    for (outcome, n) in &outcomes {
        assert_eq!(
            value(&scrape, "refine_builds_total", &[("outcome", outcome)]),
            *n,
            "{outcome}"
        );
    }
    assert_eq!(value(&scrape, "refine_queue_length", &[]), 0.0);
    assert_eq!(value(&scrape, "refine_builds_running", &[]), 0.0);
    assert!(
        value(&scrape, "refine_pushed_bytes_total", &[]) > 0.0,
        "{text}"
    );
    assert!(
        value(&scrape, "refine_store_size_bytes", &[]) > 0.0,
        "{text}"
    );
    // Each action with a process of its own is one observation of its kind's histogram.
    for (kind, n) in &action_seconds {
        let histogram = scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == "refine_action_duration_seconds"
                    && s.labels.get("kind") == Some(kind.as_str())
            })
            .unwrap_or_else(|| panic!("no action_duration histogram for {kind}:\n{text}"));
        let prometheus_parse::Value::Histogram(buckets) = &histogram.value else {
            panic!("{histogram:?}");
        };
        let inf = buckets.iter().find(|b| b.less_than.is_infinite()).unwrap();
        assert_eq!(inf.count, *n as f64, "{kind}: {buckets:?}");
    }
}
