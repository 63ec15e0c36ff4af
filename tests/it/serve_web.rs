//! `refine serve`: the web view in a real headless Chromium, driven over WebDriver
//! (chromedriver, started here on a free port). The pages are followed as a person would: the
//! builds list, a build's page whose nodes change state live while it runs, a node's artifact
//! page and its raw log, search by label and by digest, the token prompt, and cancelling.
//! Screenshots of the three main pages land in `$REFINE_SCREENSHOTS` (default
//! `target/serve-screenshots`). Needs Debian's `chromium` and `chromium-driver`
//! (`.ci/setup.d/web.sh`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::common::registry::{free_port, wait_until};
use crate::common::serve::{Server, TOKEN};
use crate::common::tiny;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
const WAIT: Duration = Duration::from_secs(60);

const A: &str = "mkdir -p $REFINE_OUT/lib\necho hello > $REFINE_OUT/lib/a.txt\n";
/// Runs long enough to be seen running: the page is open before the action starts.
/// Runs until the test lets it finish: it waits for a file `go` in its output folder, which the
/// test creates from the host once it has seen the node running ([`open_gate`]).
const SLOW: &str = "echo slow starts\necho > $REFINE_OUT/started\nwhile [ ! -e $REFINE_OUT/go ]; do sleep 0.1; done\ncat $REFINE_PACKS/lib/a.txt > $REFINE_OUT/slow.txt\n";
/// Runs until cancelled.
const ENDLESS: &str = "echo waiting\nwhile true; do sleep 1; done\n";

/// chromedriver in a process group of its own (Chromium runs in it), killed whole on drop.
struct Driver {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
    /// Chromium's profile: removed with the test, whatever happens to the browser.
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

/// Whether chromedriver answers `GET /status` (over HTTP/1.1: it drops HTTP/1.0 requests).
fn driver_ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let request =
        format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let mut head = [0u8; 16];
    s.write_all(request.as_bytes()).is_ok()
        && s.read(&mut head)
            .is_ok_and(|n| head[..n].starts_with(b"HTTP/1.1 200"))
}

/// A headless Chromium session at 1366×900 (a laptop screen).
async fn browser() -> (Driver, Client) {
    use std::os::unix::process::CommandExt;
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(tool).is_file(),
            "{tool} is missing: the web view's test needs Debian's `chromium` and \
             `chromium-driver`; run .ci/setup.d/web.sh"
        );
    }
    let port = free_port();
    let log = tempfile::NamedTempFile::new().unwrap();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER} (see .ci/setup.d/web.sh): {e}"));
    let mut driver = Driver {
        child,
        port,
        log,
        profile: tempfile::tempdir().unwrap(),
    };
    wait_until("chromedriver", &mut driver.child, || driver_ready(port));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1366,900",
                format!("--user-data-dir={}", driver.profile.path().display()),
            ],
        }),
    );
    let client = ClientBuilder::rustls()
        .expect("a TLS configuration")
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "chromedriver could not start {CHROMIUM} (see .ci/setup.d/web.sh): {e}\n{}",
                fs_err::read_to_string(driver.log.path()).unwrap_or_default()
            )
        });
    (driver, client)
}

/// The page under test, with waits that explain themselves when they time out.
struct Page<'a> {
    c: Client,
    server: &'a Server,
    shots: PathBuf,
}

impl Page<'_> {
    fn new<'s>(c: &Client, server: &'s Server) -> Page<'s> {
        Page {
            c: c.clone(),
            server,
            shots: screenshots_dir(),
        }
    }

    async fn goto(&self, route: &str) {
        self.c.goto(&self.server.url(route)).await.unwrap();
    }

    /// What the reader sees, for failure messages.
    async fn seen(&self) -> String {
        let url = self.c.current_url().await.map(|u| u.to_string());
        let text = self
            .c
            .execute(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(ToString::to_string))
            .unwrap_or_default();
        format!(
            "page {url:?} shows:\n{text}\n--- server log:\n{}",
            self.server.log()
        )
    }

    /// Waits for an element matching `css` (states are attributes: `[data-state="built"]`).
    async fn wait(&self, css: &str) -> Element {
        self.wait_within(css, WAIT).await
    }

    async fn wait_within(&self, css: &str, within: Duration) -> Element {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(e) = self.c.find(Locator::Css(css)).await {
                return e;
            }
            if Instant::now() > deadline {
                panic!("no `{css}` within {within:?}; {}", self.seen().await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the text of `css` satisfies `ok`; returns it.
    async fn wait_text(&self, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        let mut last = String::new();
        loop {
            if let Ok(e) = self.c.find(Locator::Css(css)).await
                && let Ok(text) = e.text().await
            {
                if ok(&text) {
                    return text;
                }
                last = text;
            }
            if Instant::now() > deadline {
                panic!(
                    "`{css}` never {what} (last: {last:?}); {}",
                    self.seen().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn attr(&self, css: &str, name: &str) -> String {
        self.wait(css)
            .await
            .attr(name)
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// Clicks `css`; the page redraws parts of itself as events come, so an element found a
    /// moment ago may have been replaced: find it again then.
    async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.wait(css).await.click().await {
                Ok(()) => return,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("clicking `{css}`: {e}"),
            }
        }
    }

    async fn absent(&self, css: &str) -> bool {
        self.c.find(Locator::Css(css)).await.is_err()
    }

    async fn js(&self, script: &str) -> Value {
        self.c.execute(script, vec![]).await.unwrap()
    }

    /// Writes the viewport as `NAME.png` and checks it is a PNG.
    async fn screenshot(&self, name: &str) -> PathBuf {
        // The graph's edges are drawn on the next animation frame: wait for two frames.
        self.c
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                vec![],
            )
            .await
            .unwrap();
        let png = self.c.screenshot().await.unwrap();
        assert!(
            png.len() > PNG.len() && png.starts_with(PNG),
            "{name}: not a PNG ({} bytes)",
            png.len()
        );
        let path = self.shots.join(format!("{name}.png"));
        fs_err::write(&path, &png).unwrap();
        let written = fs_err::read(&path).unwrap();
        assert!(!written.is_empty() && written.starts_with(PNG), "{path:?}");
        path
    }

    /// Types `text` into the search box and submits it.
    async fn search(&self, text: &str) {
        let input = self.wait("#search").await;
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
        self.click("#search-go").await;
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("REFINE_SCREENSHOTS")
        .filter(|d| !d.is_empty())
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/serve-screenshots"),
            PathBuf::from,
        );
    fs_err::create_dir_all(&dir).unwrap();
    dir
}

/// Queues a build over the API; its id.
async fn queue(server: &Server, patterns: &[&str]) -> i64 {
    let response = reqwest::Client::new()
        .post(server.url("/v1/builds"))
        .bearer_auth(TOKEN)
        .json(&json!({"patterns": patterns}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{:?}", response.text().await);
    let build: Value = response.json().await.unwrap();
    build["id"].as_i64().unwrap()
}

fn node(label: &str) -> String {
    format!("#nodes tr[data-label=\"{label}\"]")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_follow_a_build_live_and_link_its_artifacts() {
    let started = Instant::now();
    let w = tiny(&[("a", A, &[]), ("slow", SLOW, &["a"])]);
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(w.path(), store.path(), &["--public-reads"]);
    let (_driver, c) = browser().await;
    let page = Page::new(&c, &server);

    // The builds list shows a build queued while it is open (it refreshes itself).
    page.goto("/#/builds").await;
    page.wait("#no-builds").await;
    let first = queue(&server, &["//packs:a"]).await;
    page.wait(&format!(
        "#builds tr[data-build=\"{first}\"][data-state=\"succeeded\"]"
    ))
    .await;
    // Its page, through its link.
    page.click(&format!(
        "#builds tr[data-build=\"{first}\"] a[href=\"#/builds/{first}\"]"
    ))
    .await;
    page.wait("#build-state[data-state=\"succeeded\"]").await;
    page.wait(&format!("{}[data-state=\"built\"]", node("//packs:a")))
        .await;
    page.wait(&format!("{}[data-state=\"built\"]", node("//bases:tiny")))
        .await;

    // A build followed live: the page is open while the build runs (its action sleeps 5 s);
    // its node is seen running, then built, by the build's events alone: no reload.
    let marker = page
        .js("window.__refineTestMarker = 'the same page'; return location.href")
        .await;
    let slow = queue(&server, &["//packs:slow"]).await;
    page.click("#nav-builds").await;
    page.click(&format!(
        "#builds tr[data-build=\"{slow}\"] a[href=\"#/builds/{slow}\"]"
    ))
    .await;
    page.wait("#build-state[data-state=\"running\"], #build-state[data-state=\"queued\"]")
        .await;
    let running = page
        .wait(&format!("{}[data-state=\"running\"]", node("//packs:slow")))
        .await;
    assert!(running.text().await.unwrap().contains("running"));
    page.screenshot("build-running").await;
    page.wait(&format!("{}[data-state=\"cached\"]", node("//packs:a")))
        .await;
    open_gate(store.path()).await;
    page.wait(&format!("{}[data-state=\"built\"]", node("//packs:slow")))
        .await;
    page.wait("#build-state[data-state=\"succeeded\"]").await;
    page.wait_text("#build-counts", "counted the build", |t| {
        t.contains("1 built") && t.contains("2 cached")
    })
    .await;
    assert_eq!(
        page.js("return window.__refineTestMarker").await,
        json!("the same page"),
        "the build page was reloaded (it was at {marker})"
    );
    let key = page.attr(&node("//packs:slow"), "data-key").await;
    let digest = page.attr(&node("//packs:slow"), "data-digest").await;
    assert_eq!(key.len(), 64, "{key}");
    assert!(digest.starts_with("sha256:"), "{digest}");

    // The build's graph, as the build planned it (the server keeps each node's dependencies).
    page.click("#token-set").await;
    page.wait("#token-input")
        .await
        .send_keys(TOKEN)
        .await
        .unwrap();
    page.click("#token-save").await;
    page.wait("#graph .gnode[data-node=\"//packs:slow\"][data-state=\"built\"]")
        .await;
    page.wait_text(
        &format!("{} td.deps", node("//packs:slow")),
        "named the dependencies",
        |t| t.contains("packs:a") && t.contains("bases:tiny"),
    )
    .await;
    let edges = page
        .js("return document.querySelectorAll('#graph svg.edges path').length")
        .await;
    // `slow` → `tiny` is implied through `a`: two edges drawn.
    assert_eq!(edges, json!(2), "edges drawn: {edges}");
    let build_png = page.screenshot("build").await;

    // The node's page: its artifact, with the digests the build page showed, and its log.
    page.click(&format!("{} a.label", node("//packs:slow")))
        .await;
    page.wait_text("#artifact-label", "named the node", |t| t == "//packs:slow")
        .await;
    assert_eq!(page.attr("#artifact", "data-key").await, key);
    assert_eq!(page.attr("#manifest", "data-full").await, digest);
    assert!(
        page.attr("#content", "data-full")
            .await
            .starts_with("sha256:")
    );
    page.wait("#key-fields tr[data-field=\"pack_name\"]").await;
    page.wait("#layers tbody tr").await;
    page.wait("#no-registry").await;
    page.wait(&format!("#artifact-build[href=\"#/builds/{slow}\"]"))
        .await;
    let log = page
        .wait_text("#log-text", "showed the log", |t| {
            t.starts_with("refine: the action of //packs:slow")
        })
        .await;
    assert!(log.contains("slow starts"), "{log}");
    page.click("#provenance summary").await;
    page.wait_text("#provenance pre", "showed the statement", |t| {
        t.contains("https://in-toto.io/Statement/v1")
    })
    .await;
    page.js("window.scrollTo(0, 0); return null").await;
    let node_png = page.screenshot("node").await;

    // Its raw log link loads the log itself.
    let href = page.attr("#log-raw", "href").await;
    assert!(
        href.ends_with(&format!("/v1/artifacts/pack/{key}/log")),
        "{href}"
    );
    page.click("#log-raw").await;
    page.wait_text("body", "showed the raw log", |t| {
        t.starts_with("refine: the action of //packs:slow")
    })
    .await;
    c.back().await.unwrap();
    page.wait_text("#artifact-label", "came back", |t| t == "//packs:slow")
        .await;

    // Search by label: the match links to its artifact.
    page.search("slow").await;
    page.wait("#search-results tr[data-label=\"//packs:slow\"]")
        .await;
    assert!(
        page.absent("#search-results tr[data-label=\"//packs:a\"]")
            .await
    );
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with("#/search/slow")
    );
    page.click("#search-results tr[data-label=\"//packs:slow\"] a.label")
        .await;
    page.wait(&format!("#artifact[data-key=\"{key}\"]")).await;

    // Search by the start of a digest, `sha256:` or not.
    for prefix in [&digest[..19], &digest[7..19]] {
        page.search(prefix).await;
        page.wait_text("#search-count", "counted one match", |t| t == "1 match")
            .await;
        page.wait("#search-results tr[data-label=\"//packs:slow\"]")
            .await;
    }
    page.search("no-such-node").await;
    page.wait("#no-results").await;

    // Back to the list: both builds, their counts.
    page.click("#nav-builds").await;
    page.wait(&format!(
        "#builds tr[data-build=\"{slow}\"][data-state=\"succeeded\"]"
    ))
    .await;
    page.wait(&format!(
        "#builds tr[data-build=\"{first}\"][data-state=\"succeeded\"]"
    ))
    .await;
    let builds_png = page.screenshot("builds").await;

    c.close().await.unwrap();
    println!(
        "screenshots in {}: {}, {}, {} ({:.1} s)",
        page.shots.display(),
        builds_png.display(),
        build_png.display(),
        node_png.display(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_asks_for_the_token_keeps_it_and_cancels_with_it() {
    let w = tiny(&[("a", A, &[]), ("endless", ENDLESS, &["a"])]);
    let store = tempfile::tempdir().unwrap();
    // Reads need the token too.
    let server = Server::start(w.path(), store.path(), &[]);
    let first = queue(&server, &["//packs:a"]).await;
    let (_driver, c) = browser().await;
    let page = Page::new(&c, &server);

    page.goto("/#/builds").await;
    page.wait("#token-prompt").await;
    page.wait_text("#token-error", "said why", |t| {
        t.contains("needs a bearer token")
    })
    .await;
    // A wrong token is refused with the server's words.
    page.wait("#token-input")
        .await
        .send_keys("wrong")
        .await
        .unwrap();
    page.click("#token-save").await;
    page.wait_text("#token-error", "refused the token", |t| {
        t.contains("The bearer token is wrong")
    })
    .await;
    let input = page.wait("#token-input").await;
    input.clear().await.unwrap();
    input.send_keys(TOKEN).await.unwrap();
    page.click("#token-save").await;
    page.wait(&format!("#builds tr[data-build=\"{first}\"]"))
        .await;
    assert!(page.absent("#token-prompt").await);

    // Kept: a reload asks no more.
    c.refresh().await.unwrap();
    page.wait(&format!(
        "#builds tr[data-build=\"{first}\"][data-state=\"succeeded\"]"
    ))
    .await;
    assert!(page.absent("#token-prompt").await);

    // A build queued from the page runs; it is followed with the token, and cancelled.
    page.wait("#new-patterns")
        .await
        .send_keys("//packs:endless")
        .await
        .unwrap();
    page.click("#new-build button[type=\"submit\"]").await;
    page.wait(&format!(
        "{}[data-state=\"running\"]",
        node("//packs:endless")
    ))
    .await;
    page.wait("#build-state[data-state=\"running\"]").await;
    page.click("#cancel").await;
    page.wait("#build-state[data-state=\"cancelled\"]").await;
    page.wait(&format!(
        "{}[data-state=\"skipped\"], {}[data-state=\"failed\"]",
        node("//packs:endless"),
        node("//packs:endless")
    ))
    .await;
    assert!(page.absent("#cancel").await);

    // The node page's log comes with the token as well.
    page.goto(&format!("/#/builds/{first}")).await;
    page.click(&format!("{} a.label", node("//packs:a"))).await;
    page.wait_text("#log-text", "showed the log", |t| {
        t.starts_with("refine: the action of //packs:a")
    })
    .await;

    c.close().await.unwrap();
}

/// Lets the [`SLOW`] action finish: finds its output folder under the store's scratch space
/// (the file `started` it wrote) and creates `go` beside it.
async fn open_gate(store: &Path) {
    fn find(dir: &Path) -> Option<PathBuf> {
        for entry in fs_err::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == "started")
                && dir.file_name().is_some_and(|n| n == "out")
            {
                return Some(dir.to_path_buf());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir())
                && let Some(found) = find(&path)
            {
                return Some(found);
            }
        }
        None
    }
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(out) = find(store) {
            fs_err::write(out.join("go"), "").unwrap();
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the slow action's output folder never appeared under {}",
            store.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
