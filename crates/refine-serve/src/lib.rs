//! `refine serve`: refine as a service for a team. An HTTP API (JSON under `/v1`, described by
//! the OpenAPI 3.1 document it serves at `/openapi.json`, docs/api.md) to plan targets, queue
//! builds and follow them as server-sent events (the `--events` objects, docs/events.md), and
//! to look artifacts up with their links into the remote registry and the wheel mirror; a web
//! view over that API; Prometheus metrics (text exposition format 0.0.4) at `/metrics`.
//!
//! Builds run on the engine `refine build` uses, one session per build (so an edited rule file
//! counts from the next build on), in as many slots as configured (one by default). The queue,
//! each build's nodes and events, and the plans asked for live in SQLite (`state`), so that a
//! restart loses nothing queued; a build that was running is marked interrupted.

pub mod api;
pub mod client;
mod live;
mod metrics;
mod runner;
pub mod state;
mod web;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use refine_engine::exec::Cancel;
use refine_engine::remote::RemoteUrl;
use refine_engine::rules::Mirror;
use refine_engine::session::{RemoteNeed, Session, SessionError, SessionOptions, Targets};
use refine_engine::store::LocalStore;

pub use live::Live;
pub use metrics::Metrics;
use state::{State, StateError};

/// How the server is run (`refine serve`'s options).
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The workspace and the stores, as for every command.
    pub session: SessionOptions,
    /// Where to listen; loopback by default.
    pub listen: SocketAddr,
    /// The bearer token that `POST` and `DELETE` need (and reads, unless `public_reads`);
    /// none: the server makes one and keeps it in `<store>/serve/token`.
    pub token: Option<Token>,
    /// `GET` endpoints answer without a token.
    pub public_reads: bool,
    /// The SQLite database; default `<store>/serve/state.sqlite`.
    pub database: Option<PathBuf>,
    /// Builds that run at once.
    pub slots: usize,
    /// Actions per build, unless the build asks.
    pub jobs: Option<usize>,
}

/// The environment variable that may hold the server's token (for `refine serve` and for
/// `refine build --server`).
pub const TOKEN_ENV: &str = "REFINE_SERVE_TOKEN";

/// A secret compared in constant time, never printed.
#[derive(Clone)]
pub struct Token(String);

/// Why a token file gives no token.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TokenError {
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error("The token file `{}` is empty", .0.display())]
    #[diagnostic(help(
        "Put a long random secret in it, e.g. `head -c 32 /dev/urandom | base64 > FILE`"
    ))]
    Empty(PathBuf),
}

impl Token {
    /// The token in `path` (`--token-file`).
    pub fn from_file(path: &Path) -> Result<Token, TokenError> {
        let text = fs_err::read_to_string(path)?;
        Token::new(&text).ok_or_else(|| TokenError::Empty(path.to_path_buf()))
    }

    /// The token in [`TOKEN_ENV`], if set and not empty.
    pub fn from_env() -> Option<Token> {
        std::env::var(TOKEN_ENV).ok().and_then(|t| Token::new(&t))
    }

    /// A token from its text (surrounding whitespace, such as a file's last newline, is not
    /// part of it).
    pub fn new(text: &str) -> Option<Token> {
        let t = text.trim();
        (!t.is_empty()).then(|| Token(t.to_string()))
    }

    /// Whether `given` is this token; takes the same time wherever they differ.
    pub fn matches(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.as_bytes().ct_eq(given.as_bytes()))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ServeError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
    #[error("Cannot listen on `{addr}`: {source}")]
    #[diagnostic(help("Pick a free port with `--listen 127.0.0.1:PORT`"))]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("The server stopped: {0}")]
    Serve(std::io::Error),
    #[error("Cannot keep the server's token in `{path}`: {source}")]
    #[diagnostic(help("Pass `--token-file FILE` or set `REFINE_SERVE_TOKEN`"))]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The workspace's fixed facts the API needs for links.
#[derive(Clone, Debug)]
pub struct Links {
    /// The remote store, if one is configured.
    pub remote: Option<RemoteUrl>,
    /// The wheel mirror, if one is configured.
    pub mirror: Option<Mirror>,
}

/// What the API handlers and the build slots share.
pub struct Hub {
    pub state: Arc<State>,
    pub metrics: Metrics,
    pub live: Live,
    pub config: ServeOptions,
    pub store: LocalStore,
    pub links: Links,
    cancels: Mutex<Cancels>,
    work: (Mutex<u64>, Condvar),
    /// Plans answered and not yet in the database.
    plans_in_flight: Mutex<HashMap<i64, Arc<state::PlanRow>>>,
    /// Slots claiming or running a build.
    busy: std::sync::atomic::AtomicUsize,
    /// Set when the server stops: builds that end then are interrupted, not cancelled, and
    /// event streams close.
    stop: tokio::sync::watch::Sender<bool>,
}

#[derive(Default)]
struct Cancels {
    running: HashMap<i64, Cancel>,
    /// Asked to stop before its slot registered it.
    early: HashSet<i64>,
}

impl Hub {
    fn cancels(&self) -> std::sync::MutexGuard<'_, Cancels> {
        self.cancels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn register_cancel(&self, build: i64, cancel: &Cancel) {
        let mut c = self.cancels();
        if c.early.remove(&build) {
            cancel.cancel();
        }
        c.running.insert(build, cancel.clone());
    }

    fn forget_cancel(&self, build: i64) {
        self.cancels().running.remove(&build);
    }

    /// Stops a running build: every sandbox is killed, the store stays valid.
    pub fn cancel_running(&self, build: i64) {
        let mut c = self.cancels();
        match c.running.get(&build) {
            Some(cancel) => cancel.cancel(),
            None => {
                c.early.insert(build);
            }
        }
    }

    /// Wakes a build slot: something was queued.
    pub fn queued(&self) {
        let (lock, cv) = &self.work;
        *lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        cv.notify_all();
        self.refresh_queue_length();
    }

    /// How many times something was queued: read before looking at the queue, so that what
    /// is queued after the look wakes [`Hub::wait_for_work`].
    fn work_seen(&self) -> u64 {
        *self
            .work
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until something is queued after `seen` ([`Hub::work_seen`]).
    fn wait_for_work(&self, seen: u64) {
        let (lock, cv) = &self.work;
        let guard = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The timeout covers a build queued by another server process on the same database.
        let _ = cv.wait_timeout_while(guard, Duration::from_secs(2), |n| *n == seen);
    }

    fn plans_in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<state::PlanRow>>> {
        self.plans_in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the server is stopping.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn refresh_queue_length(&self) {
        if let Ok(n) = self.state.queue_length() {
            self.metrics.set_queue_length(n);
        }
    }

    /// Measures the local store's blobs for `refine_store_size_bytes`.
    fn measure_store(&self, root: &Path) {
        let mut total = 0u64;
        if let Ok(entries) = fs_err::read_dir(root.join("blobs/sha256")) {
            for e in entries.flatten() {
                total += e.metadata().map_or(0, |m| m.len());
            }
        }
        self.metrics.set_store_size(total);
    }
}

/// What the server says once it accepts connections.
#[derive(Debug)]
pub struct Ready {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The file holding the token it made, when none was given.
    pub token_file: Option<PathBuf>,
}

/// Runs the server until SIGINT or SIGTERM; `ready` is called once it accepts connections.
pub fn serve(mut options: ServeOptions, ready: impl FnOnce(Ready)) -> Result<(), ServeError> {
    // The workspace and its store, checked before anything listens.
    let session = Session::open(&options.session, Targets::None, RemoteNeed::Unused)?;
    let config = &session.graph().workspace.config.store;
    let remote = options
        .session
        .remote
        .clone()
        .or_else(|| config.remote.clone())
        .filter(|u| !u.is_empty())
        .and_then(|u| RemoteUrl::parse(&u).ok());
    let links = Links {
        remote,
        mirror: config.mirror.clone(),
    };
    let store = LocalStore::open(session.store().root())
        .map_err(|e| ServeError::Session(SessionError::Store(e)))?;
    let database = options
        .database
        .clone()
        .unwrap_or_else(|| store.root().join("serve/state.sqlite"));
    let state = Arc::new(State::open(&database)?);
    let token_file = match options.token {
        Some(_) => None,
        None => {
            let (token, file) = made_token(store.root())?;
            options.token = Some(token);
            Some(file)
        }
    };
    let interrupted = state.interrupt_running()?;
    if interrupted > 0 {
        say(&format!(
            "{interrupted} build(s) were running when the server stopped: marked interrupted (`POST /v1/builds/ID/requeue` runs one again)"
        ));
    }
    drop(session);
    let hub = Arc::new(Hub {
        live: Live::new(state.clone()),
        state,
        metrics: Metrics::new(),
        config: options.clone(),
        store,
        links,
        cancels: Mutex::new(Cancels::default()),
        work: (Mutex::new(0), Condvar::new()),
        stop: tokio::sync::watch::Sender::new(false),
        busy: std::sync::atomic::AtomicUsize::new(0),
        plans_in_flight: Mutex::new(HashMap::new()),
    });
    hub.measure_store(hub.store.root());
    hub.refresh_queue_length();
    runner::start(&hub, options.slots);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("refine-serve-http")
        .build()
        .map_err(ServeError::Serve)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|source| ServeError::Listen {
                addr: options.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(ServeError::Serve)?;
        ready(Ready { addr, token_file });
        // Events are small writes: without TCP_NODELAY each waits on the client's delayed ACK
        // (40 ms on Linux), which a build followed live would pay again and again.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, api::router(hub.clone()))
            .with_graceful_shutdown(shutdown(hub))
            .await
            .map_err(ServeError::Serve)
    })
}

/// The token kept in `<store>/serve/token`, made (32 random bytes, hex) on first use; the
/// file is readable by its owner only.
fn made_token(store: &Path) -> Result<(Token, PathBuf), ServeError> {
    use fs_err::os::unix::fs::OpenOptionsExt;
    use std::io::Read;
    let path = store.join("serve/token");
    let err = |source| ServeError::TokenFile {
        path: path.clone(),
        source,
    };
    if let Ok(text) = fs_err::read_to_string(&path)
        && let Some(token) = Token::new(&text)
    {
        return Ok((token, path));
    }
    let mut bytes = [0u8; 32];
    fs_err::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(err)?;
    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent).map_err(err)?;
    }
    let mut file = fs_err::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(err)?;
    std::io::Write::write_all(&mut file, format!("{text}\n").as_bytes()).map_err(err)?;
    let token = Token::new(&text).ok_or_else(|| err(std::io::Error::other("empty token")))?;
    Ok((token, path))
}

/// Waits for SIGINT or SIGTERM, then stops every running build (their sandboxes are killed;
/// the next start marks them interrupted).
async fn shutdown(hub: Arc<Hub>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    say("Stopping: running builds are stopped and marked interrupted.");
    hub.stop.send_replace(true);
    let running: Vec<Cancel> = hub.cancels().running.values().cloned().collect();
    for c in running {
        c.cancel();
    }
    // Their sandboxes are killed at once; wait for the slots to record it (and for a slot
    // caught claiming a build to finish doing so).
    for _ in 0..600 {
        if hub.busy.load(std::sync::atomic::Ordering::SeqCst) == 0
            && hub.plans_in_flight().is_empty()
        {
            break;
        }
        let running: Vec<Cancel> = hub.cancels().running.values().cloned().collect();
        for c in running {
            c.cancel();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hub.live.flush();
}

/// A line on the server's log (stderr).
#[allow(clippy::print_stderr)] // The server's log is its stderr.
pub(crate) fn say(text: &str) {
    eprintln!("{text}");
}
