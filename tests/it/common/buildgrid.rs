//! Test harness for refine's REAPI client and `refine worker` (the Bots API): a real BuildGrid
//! 0.4.4 server (`bgd`, installed by `.ci/setup.d/reapi.sh` into a venv) whose scheduler lives
//! in a real PostgreSQL, both on free loopback ports and in temporary folders; stopped on drop
//! (BuildGrid first, then `pg_ctl stop -m fast`), leaving no process behind.
//!
//! One instance (default `main`) serves CAS, ByteStream, ActionCache, Execution, Operations and
//! Bots over plain HTTP/2 (insecure); every request must name it (`main/blobs/...` in ByteStream
//! resource names). The CAS is a folder and the scheduler (jobs, operations, bot sessions) is in
//! PostgreSQL, so both survive [`Farm::restart_server`]; the ActionCache is BuildGrid's in-memory
//! LRU (0.4.4 has no disk or SQL one) and does not. The scheduler is tuned for tests: bots are
//! reaped one second after their keepalive ([`FarmOptions::bot_keepalive_secs`]) runs out and
//! queued jobs are matched to bots every 0.1–0.2 s.
//!
//! Starting a farm takes about 7 s on two cores (PostgreSQL 1.5 s, `bgd migrate` 1.5 s, the
//! server 4 s); a restart about 5 s (a graceful stop under 1 s, the start 4 s).
//!
//! PostgreSQL refuses to run as root: when the tests run as root, `initdb`, `postgres` and
//! `pg_ctl` run as Debian's `postgres` system user (created by the `postgresql` package), set by
//! `Command::uid`/`gid` on the child itself — no `su`/`runuser` in between, so the postmaster is
//! this process's own child and is always waited for — in a temporary folder handed to that
//! user. Tests run by another user start them as that user.

#![allow(dead_code)]

use std::fs::OpenOptions;
use std::io::Read;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid, User};

use super::registry::free_port;

/// The venv `.ci/setup.d/reapi.sh` installs BuildGrid into.
pub const BUILDGRID_VENV: &str = "/opt/refine-test-tools/buildgrid";
const SETUP: &str = ".ci/setup.d/reapi.sh";
/// The database BuildGrid's scheduler uses.
pub const DATABASE: &str = "bgd";
/// How long a server (PostgreSQL or BuildGrid) may take to become ready; only bounds a hang.
const READY_WITHIN: Duration = Duration::from_secs(90);
/// How long `bgd` commands run at most before [`Farm::bgd`] kills them.
pub const BGD_TIMEOUT: Duration = Duration::from_secs(300);

pub fn bgd_bin() -> PathBuf {
    let bgd = Path::new(BUILDGRID_VENV).join("bin/bgd");
    assert!(
        bgd.is_file(),
        "BuildGrid is missing: {} does not exist; run {SETUP} (as root)",
        bgd.display()
    );
    bgd
}

/// The newest `/usr/lib/postgresql/N/bin` that has `initdb`.
pub fn postgres_bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    let Some((_, bin)) = found.pop() else {
        panic!(
            "PostgreSQL's server binaries are missing (no /usr/lib/postgresql/*/bin/initdb): \
             apt-get install postgresql, or run {SETUP} (as root)"
        )
    };
    bin
}

/// Sends `signal` to `child`, waits up to `grace` for it to exit, then SIGKILLs and reaps it.
fn stop_child(child: &mut Child, signal: Signal, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = kill(Pid::from_raw(child.id() as i32), signal);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::park_timeout(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// Runs `cmd` to completion with its output captured, killing it after `timeout` (the status
/// then says it was killed by SIGKILL).
fn output_within(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let status: ExitStatus = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::park_timeout(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A PostgreSQL cluster of its own: `initdb` in a temporary folder, the postmaster a child of
/// this process listening on 127.0.0.1 only (and a Unix socket in that folder), trust auth for
/// the `postgres` role. Stopped with `pg_ctl stop -m fast` on drop.
pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    /// The unprivileged user the server runs as when the tests run as root.
    user: Option<(Uid, Gid)>,
    child: Option<Child>,
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = postgres_bin_dir();
        let user = if Uid::effective().is_root() {
            let u = User::from_name("postgres")
                .ok()
                .flatten()
                .unwrap_or_else(|| {
                    panic!(
                        "the `postgres` system user is missing (PostgreSQL refuses to run as \
                         root): apt-get install postgresql, or run {SETUP}"
                    )
                });
            Some((u.uid, u.gid))
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("refine-pg-")
            .tempdir()
            .expect("tempdir");
        if let Some((uid, gid)) = user {
            nix::unistd::chown(dir.path(), Some(uid), Some(gid)).expect("chown the cluster folder");
        }
        let mut pg = Postgres {
            dir,
            port: free_port(),
            bin,
            user,
            child: None,
        };
        let out = output_within(
            pg.as_user("initdb")
                .arg("-D")
                .arg(pg.data())
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
                .args(["--no-sync", "--no-instructions"]),
            READY_WITHIN,
        );
        assert!(
            out.status.success(),
            "initdb failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        pg.spawn();
        let out = output_within(
            Command::new(pg.bin.join("createdb"))
                .args(pg.client_args())
                .arg(DATABASE),
            READY_WITHIN,
        );
        assert!(
            out.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg
    }

    /// `bin/<tool>` as the cluster's user, in the cluster's folder.
    fn as_user(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(tool));
        cmd.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        cmd
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// `-h 127.0.0.1 -p PORT -U postgres`, for the client tools.
    fn client_args(&self) -> Vec<String> {
        vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            "postgres".into(),
        ]
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("postgres log");
        // Durability is of no use to a test's throwaway cluster.
        let child = self
            .as_user("postgres")
            .arg("-D")
            .arg(self.data())
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start postgres: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(self.client_args())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            if let Ok(Some(status)) = self.child.as_mut().unwrap().try_wait() {
                panic!(
                    "postgres exited before it was ready: {status}\n{}",
                    tail(&self.log_path())
                );
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not become ready within {READY_WITHIN:?}\n{}",
                tail(&self.log_path())
            );
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }

    /// `postgresql://postgres@127.0.0.1:PORT/bgd`
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// Runs one SQL statement with `psql -At` on the scheduler's database; its stdout (rows one
    /// a line, columns separated by `|`). Panics if psql fails.
    pub fn psql(&self, sql: &str) -> String {
        let out = output_within(
            Command::new(self.bin.join("psql"))
                .args(self.client_args())
                .args([
                    "-d",
                    DATABASE,
                    "-X",
                    "-At",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    sql,
                ]),
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `pg_ctl stop -m fast`, then the postmaster is reaped; SIGQUIT and SIGKILL if that fails.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = output_within(
                self.as_user("pg_ctl")
                    .arg("-D")
                    .arg(self.data())
                    .args(["-m", "fast", "-w", "-t", "60", "stop"]),
                Duration::from_secs(70),
            );
        }
        stop_child(&mut child, Signal::SIGQUIT, Duration::from_secs(10));
    }

    /// The postmaster's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a [`Farm`] is configured with; [`FarmOptions::default`] suits most tests.
#[derive(Clone, Debug)]
pub struct FarmOptions {
    /// The one REAPI instance name every service is registered under (may be "").
    pub instance: String,
    /// `bot-session-keepalive-timeout`, seconds (default 30): a bot that has not called
    /// UpdateBotSession for this long is reaped (within another second) and its leases
    /// requeued; a test of a vanishing worker sets it low. It must outlast a server restart
    /// (about 5 s) plus the worker's reconnection for a lease to survive one. Also bounds the
    /// long poll of Create/UpdateBotSession to 80 % of it; BuildGrid hands out no lease in a
    /// long poll shorter than 3 s, so at least 4.
    pub bot_keepalive_secs: u32,
    /// Platform property keys jobs may carry and bots must match, beyond `OSFamily` and `ISA`
    /// (which BuildGrid always matches). An Execute whose platform has any other key fails
    /// with FAILED_PRECONDITION.
    pub match_property_keys: Vec<String>,
    /// Keys jobs may carry that are not used for matching.
    pub wildcard_property_keys: Vec<String>,
    /// `max-job-attempts`: how many times a job is (re)assigned before it fails ABORTED.
    pub max_job_attempts: u32,
    /// `max-execution-timeout`, seconds: a job executing longer is cancelled.
    pub max_execution_timeout_secs: u32,
    /// A second listener that speaks TLS only and requires a client certificate signed by
    /// `client_ca` (mutual TLS); the first stays plain for the workers.
    pub mtls: Option<FarmTls>,
}

/// The files and port of [`FarmOptions::mtls`].
#[derive(Clone, Debug)]
pub struct FarmTls {
    pub port: u16,
    pub server_cert: std::path::PathBuf,
    pub server_key: std::path::PathBuf,
    /// The CA certificate that client certificates must chain to.
    pub client_ca: std::path::PathBuf,
}

impl Default for FarmOptions {
    fn default() -> Self {
        FarmOptions {
            instance: "main".into(),
            bot_keepalive_secs: 30,
            match_property_keys: Vec::new(),
            wildcard_property_keys: Vec::new(),
            max_job_attempts: 5,
            max_execution_timeout_secs: 600,
            mtls: None,
        }
    }
}

/// A BuildGrid server over its own PostgreSQL. See the module's documentation.
pub struct Farm {
    /// Config, CAS folder, server log and `bgd`'s working folder.
    dir: tempfile::TempDir,
    pub port: u16,
    pub options: FarmOptions,
    server: Option<Child>,
    // Declared last: dropped after the server is stopped (see `Drop`).
    pg: Postgres,
}

impl Farm {
    pub fn start() -> Farm {
        Self::start_with(FarmOptions::default())
    }

    pub fn start_with(options: FarmOptions) -> Farm {
        let bgd = bgd_bin();
        assert!(
            options.bot_keepalive_secs >= 4,
            "bot_keepalive_secs below 4 s: BuildGrid would never hand a lease out in a long poll"
        );
        let pg = Postgres::start();
        let out = output_within(
            Command::new(&bgd).args(["migrate", "apply", &pg.url()]),
            READY_WITHIN,
        );
        assert!(
            out.status.success(),
            "bgd migrate apply failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = tempfile::Builder::new()
            .prefix("refine-farm-")
            .tempdir()
            .expect("tempdir");
        fs_err::create_dir_all(dir.path().join("cas")).unwrap();
        fs_err::create_dir_all(dir.path().join("work")).unwrap();
        let mut farm = Farm {
            dir,
            port: free_port(),
            options,
            server: None,
            pg,
        };
        fs_err::write(farm.config_path(), farm.config()).unwrap();
        farm.start_server();
        farm
    }

    /// BuildGrid's YAML configuration (see buildgrid/server/app/settings/reference.yml in the
    /// venv for every key).
    fn config(&self) -> String {
        let o = &self.options;
        let list = |keys: &[String]| {
            if keys.is_empty() {
                "[]".to_string()
            } else {
                format!(
                    "[{}]",
                    keys.iter()
                        .map(|k| format!("{k:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        let mtls = match &o.mtls {
            Some(t) => format!(
                "  - !channel\n    address: \"127.0.0.1:{}\"\n    insecure-mode: false\n    credentials:\n      tls-server-key: {}\n      tls-server-cert: {}\n      tls-client-certs: {}\n",
                t.port,
                t.server_key.display(),
                t.server_cert.display(),
                t.client_ca.display()
            ),
            None => String::new(),
        };
        format!(
            r#"server:
  - !channel
    address: "127.0.0.1:{port}"
    insecure-mode: true
{mtls}# Binding a port another process holds fails instead of sharing it.
grpc-server-options:
  grpc.so_reuseport: 0
# Every Execute stream and bot long poll holds a thread (default: 5 per core).
thread-pool-size: 200
connections:
  - !sql-connection &sql
    connection-string: {db}
    pool-size: 20
    max-overflow: 20
storages:
  - !disk-storage &cas
    path: {cas}
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    # A failed action runs again rather than answering from the cache.
    cache-failed-actions: false
schedulers:
  - !sql-scheduler &scheduler
    sql: *sql
    storage: *cas
    action-cache: *ac
    property-set: !dynamic-property-set
      match-property-keys: {match_keys}
      wildcard-property-keys: {wildcard_keys}
    bot-session-keepalive-timeout: {keepalive}
    session-expiry-timer-interval: 1
    max-job-attempts: {attempts}
    max-execution-timeout: {exec_timeout}
    execution-timer-interval: 1
    poll-interval: 0.2
    bot-poll-interval: 0.2
    assigners:
      - !priority-age-assigner
        count: 1
        interval: 0.1
        jitter-factor: 0.1
        failure-backoff: 0.2
instances:
  - name: {instance:?}
    services:
      - !action-cache
        cache: *ac
      - !execution
        scheduler: *scheduler
        operation-stream-keepalive-timeout: 10
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
"#,
            port = self.port,
            db = self.pg.url(),
            cas = self.dir.path().join("cas").display(),
            match_keys = list(&o.match_property_keys),
            wildcard_keys = list(&o.wildcard_property_keys),
            keepalive = o.bot_keepalive_secs,
            attempts = o.max_job_attempts,
            exec_timeout = o.max_execution_timeout_secs,
            instance = o.instance,
        )
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("bgd.yml")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("bgd.pid")
    }

    /// Every server start's output, appended.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("bgd.log")
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The CAS folder (`!disk-storage`: one file per blob, named by its hash).
    pub fn cas_dir(&self) -> PathBuf {
        self.dir.path().join("cas")
    }

    /// `grpc://127.0.0.1:PORT`
    pub fn grpc_url(&self) -> String {
        format!("grpc://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` (what `bgd --remote` takes).
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn instance(&self) -> &str {
        &self.options.instance
    }

    pub fn postgres(&self) -> &Postgres {
        &self.pg
    }

    /// See [`Postgres::psql`]; BuildGrid's tables include `jobs`, `operations`, `bots`.
    pub fn psql(&self, sql: &str) -> String {
        self.pg.psql(sql)
    }

    /// The number of bot sessions BuildGrid knows (rows of `bots`).
    pub fn bot_sessions(&self) -> usize {
        self.psql("SELECT count(*) FROM bots")
            .trim()
            .parse()
            .unwrap()
    }

    pub fn server_running(&mut self) -> bool {
        self.server
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The server's pid, while it runs.
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    /// Starts `bgd server start` (it must not be running) and waits until it has written its
    /// pid file (BuildGrid does so once its gRPC server has started) and accepts connections.
    pub fn start_server(&mut self) {
        assert!(
            self.server.is_none(),
            "the BuildGrid server is already running"
        );
        // A killed server leaves its pid file behind.
        let _ = std::fs::remove_file(self.pid_file());
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("bgd log");
        let _ = std::io::Write::write_all(&mut log, b"\n===== bgd server start =====\n");
        let child = Command::new(bgd_bin())
            .args(["server", "start"])
            .arg(self.config_path())
            .arg("--pid-file")
            .arg(self.pid_file())
            .current_dir(self.dir.path())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start bgd: {e}"));
        self.server = Some(child);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if self.pid_file().is_file() && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.server.as_mut().unwrap().try_wait() {
                self.server = None;
                panic!(
                    "bgd server exited before it was ready: {status}\n{}",
                    tail(&self.log_path())
                );
            }
            if Instant::now() >= deadline {
                self.kill_server();
                panic!(
                    "bgd server did not become ready within {READY_WITHIN:?}\n{}",
                    tail(&self.log_path())
                );
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }

    /// Stops the server gracefully (SIGTERM; SIGKILL after 20 s) and waits for it.
    pub fn stop_server(&mut self) {
        if let Some(mut c) = self.server.take() {
            stop_child(&mut c, Signal::SIGTERM, Duration::from_secs(20));
        }
    }

    /// Kills the server (SIGKILL) and waits for it: a crash, as far as clients can tell.
    pub fn kill_server(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server gracefully and starts it again on the same port, configuration, CAS
    /// folder and database: queued and executing jobs, operations and bot sessions survive;
    /// the in-memory ActionCache does not.
    pub fn restart_server(&mut self) {
        self.stop_server();
        self.start_server();
    }

    /// Kills the server (SIGKILL) and starts it again, as [`Farm::restart_server`].
    pub fn crash_and_restart_server(&mut self) {
        self.kill_server();
        self.start_server();
    }

    /// The farm's scratch folder `bgd` runs in (`bgd execute command` downloads outputs into
    /// `./testing` by default).
    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Runs `bgd GROUP --remote http://127.0.0.1:PORT --instance-name INSTANCE ARGS...` (GROUP
    /// one of `capabilities`, `cas`, `execute`, `actioncache`, `operation`) in
    /// [`Farm::work_dir`], killed after [`BGD_TIMEOUT`]. For example
    /// `farm.bgd("execute", &["command", "--output-file", "out", input_dir, "/bin/sh", "-c",
    /// "echo hi > out"])` or `farm.bgd("cas", &["upload-dir", dir])`.
    pub fn bgd(&self, group: &str, args: &[&str]) -> Output {
        self.bgd_within(group, args, BGD_TIMEOUT)
    }

    /// [`Farm::bgd`] with another timeout.
    pub fn bgd_within(&self, group: &str, args: &[&str], timeout: Duration) -> Output {
        let remote = self.http_url();
        let mut cmd = Command::new(bgd_bin());
        cmd.arg(group)
            .args(["--remote", &remote, "--instance-name", self.instance()])
            .args(args)
            .current_dir(self.work_dir());
        output_within(&mut cmd, timeout)
    }

    /// [`Farm::bgd`], asserting success; its stdout and stderr, concatenated.
    pub fn bgd_ok(&self, group: &str, args: &[&str]) -> String {
        let out = self.bgd(group, args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "bgd {group} {args:?} failed: {}\n{text}",
            out.status
        );
        text
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        // The server first (it holds connections to the database), then PostgreSQL (`pg`'s own
        // drop, after this one).
        self.stop_server();
        self.pg.stop();
    }
}
