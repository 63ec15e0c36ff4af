//! `refine serve`: the HTTP API against the real binary, real sandboxed builds of tiny packs
//! and a real registry (Debian's `docker-registry`): plans that match `refine plan`, builds
//! queued and followed as server-sent events that match `refine build --events`, artifacts and
//! their registry links checked with skopeo, metrics that count what the events said,
//! cancellation, restarts (SIGKILL and SIGTERM), bad input, and a database from a newer refine.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::common::registry::Registry;
use crate::common::serve::{Server, TOKEN};
use crate::common::*;

/// How long any one wait may take: tiny packs build in about a second, so only a hung server
/// or build reaches it.
const PATIENCE: Duration = Duration::from_secs(120);

const A: &str = "mkdir -p $REFINE_OUT/lib\necho hello > $REFINE_OUT/lib/a.txt\n";
const B: &str = "cat $REFINE_PACKS/lib/a.txt > $REFINE_OUT/b.txt\necho b >> $REFINE_OUT/b.txt\n";
const TOP: &str = "echo top > $REFINE_OUT/top.txt\n";
const BAD: &str = "echo failing on purpose\nexit 3\n";

/// Packs `a`, `b` on `a`, `top` on `b`, over the busybox base.
fn three_packs() -> TempWorkspace {
    tiny(&[("a", A, &[]), ("b", B, &["a"]), ("top", TOP, &["b"])])
}

/// A sleep length no other test uses (`n` tells this module's tests apart, the process id
/// other test runs), so that counting its processes counts only one test's.
fn marker(n: u32) -> String {
    format!("4{}{n}", std::process::id())
}

/// A recipe that starts and never ends on its own.
fn sleeper(marker: &str) -> String {
    format!("echo started > $REFINE_OUT/x\nexec sleep {marker}\n")
}

/// Processes running `sleep MARKER` (in a sandbox: nothing else sleeps that long).
fn sleepers(marker: &str) -> usize {
    let out = Command::new("pgrep")
        .args(["-f", &format!("^sleep {marker}$")])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

async fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what} after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn store_verify(store: &Path) {
    let out = run_refine(
        Path::new("/"),
        &["--store", store.to_str().unwrap(), "store", "verify"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "store verify:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// The API over HTTP, with or without the token.
struct Api {
    http: reqwest::Client,
}

impl Api {
    fn new() -> Api {
        Api {
            http: reqwest::Client::new(),
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        server: &Server,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, server.url(path))
            .timeout(PATIENCE)
    }

    /// Sends `request`; the answer must be JSON.
    async fn json(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("an answer from the server");
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = response.text().await.expect("the body");
        let value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("{status}: the body is not JSON ({e}), `Content-Type: {content_type}`:\n{text}")
        });
        assert!(
            content_type.starts_with("application/json"),
            "{status}: JSON as `{content_type}`: {text}"
        );
        (status, value)
    }

    async fn get(&self, server: &Server, path: &str) -> (StatusCode, Value) {
        self.json(
            self.request(reqwest::Method::GET, server, path)
                .bearer_auth(TOKEN),
        )
        .await
    }

    async fn post(&self, server: &Server, path: &str, body: &Value) -> (StatusCode, Value) {
        self.json(
            self.request(reqwest::Method::POST, server, path)
                .bearer_auth(TOKEN)
                .json(body),
        )
        .await
    }

    async fn delete(&self, server: &Server, path: &str) -> (StatusCode, Value) {
        self.json(
            self.request(reqwest::Method::DELETE, server, path)
                .bearer_auth(TOKEN),
        )
        .await
    }

    /// A text body (logs, metrics), with the token.
    async fn text(&self, server: &Server, path: &str) -> (StatusCode, String) {
        let response = self
            .request(reqwest::Method::GET, server, path)
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("an answer from the server");
        let status = response.status();
        (status, response.text().await.expect("the body"))
    }

    /// Queues a build of `patterns`; its id.
    async fn queue(&self, server: &Server, patterns: &[&str]) -> i64 {
        let (status, build) = self
            .post(server, "/v1/builds", &json!({ "patterns": patterns }))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{build}");
        assert_eq!(build["patterns"], json!(patterns), "{build}");
        build["id"].as_i64().expect("an id")
    }

    /// `GET /v1/builds/{id}`.
    async fn build(&self, server: &Server, id: i64) -> Value {
        let (status, build) = self.get(server, &format!("/v1/builds/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{build}");
        build
    }

    /// How many builds `GET /v1/builds` lists.
    async fn build_count(&self, server: &Server) -> usize {
        let (status, list) = self.get(server, "/v1/builds").await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["builds"].as_array().expect("builds").len()
    }

    /// Follows a build's events from its first to its last.
    async fn follow(&self, server: &Server, build: i64) -> Vec<Value> {
        Events::open(self, server, build).await.rest().await
    }
}

/// Asserts an error answer: `status`, and a JSON body with `error.message`.
fn assert_error(what: &str, (status, body): &(StatusCode, Value), expected: StatusCode) {
    assert_eq!(*status, expected, "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{what}: no error.message in {body}");
}

/// One build's server-sent events, read as they come.
struct Events {
    build: i64,
    response: reqwest::Response,
    buffer: Vec<u8>,
    ready: VecDeque<Value>,
    deadline: tokio::time::Instant,
}

impl Events {
    async fn open(api: &Api, server: &Server, build: i64) -> Events {
        let response = api
            .http
            .get(server.url(&format!("/v1/events?build={build}")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("the event stream");
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Events {
            build,
            response,
            buffer: Vec::new(),
            ready: VecDeque::new(),
            deadline: tokio::time::Instant::now() + PATIENCE,
        }
    }

    /// The next event, or `None` once the server ends the stream.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                assert_eq!(event["build"], self.build, "an event of another build");
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(self.deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "build {}: its event stream did not end within {PATIENCE:?}",
                        self.build
                    )
                })
                .expect("read the event stream")?;
            self.buffer.extend_from_slice(&chunk);
            // An event ends with a blank line; keep-alive comments carry no `data`.
            while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8(block).expect("UTF-8 events");
                let data: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect();
                if !data.is_empty() {
                    let json = data.join("\n");
                    self.ready.push_back(
                        serde_json::from_str(&json)
                            .unwrap_or_else(|e| panic!("an event is not JSON ({e}): {json}")),
                    );
                }
            }
        }
    }

    /// The events up to and including the first for which `wanted` holds.
    async fn until(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let Some(event) = self.next().await else {
                panic!(
                    "build {}: the stream ended before {what}: {seen:#?}",
                    self.build
                );
            };
            let done = wanted(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }

    /// The events to the end of the stream, which must be a final `build-state`.
    async fn rest(mut self) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Some(event) = self.next().await {
            seen.push(event);
        }
        let last = seen
            .last()
            .unwrap_or_else(|| panic!("build {}: no events", self.build));
        assert_eq!(last["event"], "build-state", "{seen:#?}");
        assert!(
            !matches!(last["state"].as_str(), Some("queued" | "running") | None),
            "the stream ended before the build: {seen:#?}"
        );
        seen
    }
}

/// The final state a followed build's events end with.
fn final_state(events: &[Value]) -> &str {
    events
        .last()
        .and_then(|e| e["state"].as_str())
        .unwrap_or("-")
}

/// Each label's events, by `event`, in order.
fn kinds_by_label(events: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in events {
        if let Some(label) = e["label"].as_str() {
            out.entry(label.to_string())
                .or_default()
                .push(e["event"].as_str().unwrap().to_string());
        }
    }
    out
}

/// Each label's field `field` in events of kind `event`.
fn field_by_label(events: &[Value], event: &str, field: &str) -> BTreeMap<String, Value> {
    events
        .iter()
        .filter(|e| e["event"] == event)
        .map(|e| (e["label"].as_str().unwrap().to_string(), e[field].clone()))
        .collect()
}

/// `refine build --events` of `patterns` in `w` with `store`: its events.
fn cli_build_events(w: &TempWorkspace, store: &Path, patterns: &[&str]) -> Vec<Value> {
    let file = tempfile::NamedTempFile::new().unwrap();
    let mut args = vec![
        "--store",
        store.to_str().unwrap(),
        "build",
        "--events",
        file.path().to_str().unwrap(),
    ];
    args.extend_from_slice(patterns);
    let out = w.refine(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    fs_err::read_to_string(file.path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

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

/// The samples of `/metrics`, checked against the text format: every line a `# HELP`, a
/// `# TYPE` or a sample, every name `refine_…`, every sample of a family with a type.
fn scrape(text: &str) -> prometheus_parse::Scrape {
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("`# TYPE NAME KIND`");
            assert!(name.starts_with("refine_"), "{line}");
            typed.insert(name.to_string(), kind.to_string());
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(rest.starts_with("refine_"), "{line}");
        } else {
            assert!(
                matches!(
                    prometheus_parse::LineInfo::parse(line),
                    prometheus_parse::LineInfo::Sample { .. }
                ),
                "not a sample line of the text format: {line:?}"
            );
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    let f = name.strip_suffix(s)?;
                    (typed.get(f).map(String::as_str) == Some("histogram")).then_some(f)
                })
                .unwrap_or(name);
            assert!(
                typed.contains_key(family),
                "`{name}` has no `# TYPE` line of its family:\n{text}"
            );
        }
    }
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parse");
    for s in &scrape.samples {
        assert!(s.metric.starts_with("refine_"), "{}", s.metric);
    }
    scrape
}

/// The value of a counter or gauge sample.
fn value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<&prometheus_parse::Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(found.len(), 1, "{metric}{labels:?}: {found:?}");
    match found[0].value {
        prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
        ref other => panic!("{metric}{labels:?} is not a counter or gauge: {other:?}"),
    }
}

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
