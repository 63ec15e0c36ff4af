//! `refine serve`: the HTTP API against the real binary, real sandboxed builds of tiny packs
//! and a real registry (Debian's `docker-registry`): plans that match `refine plan`, builds
//! queued and followed as server-sent events that match `refine build --events`, artifacts and
//! their registry links checked with skopeo, metrics that count what the events said,
//! cancellation, restarts (SIGKILL and SIGTERM), bad input, and a database from a newer refine.
//! This module holds the harness (an HTTP client, an SSE reader, workspaces); each area is a
//! submodule.

mod flow;
mod lifecycle;
mod metrics;
mod refusals;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

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
