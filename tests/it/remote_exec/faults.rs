//! Faults on the farm, each produced with the real parts: a worker killed mid-lease, a worker
//! stopped with SIGTERM mid-lease, an input's blobs lost from the farm's CAS, a build
//! interrupted, the server restarted mid-build, a platform no worker offers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::build::{keys_and_contents, provenance, refine_ok};
use super::{Worker, endpoint, signal, wait_until};
use crate::common::buildgrid::{Farm, FarmOptions};
use crate::common::{TempWorkspace, refine_bin, tiny};

/// A recipe that waits until the test opens its gate: a `go` file the test creates in the
/// action's `/out` folder on the worker, then removes it and writes its output.
const GATED: &str = "while [ ! -e /out/go ]; do sleep 0.05; done\nrm /out/go\necho done > /out/x\n";

/// `gated`, then `after`, which reads it: `after` executes once the gate was opened.
fn gated() -> TempWorkspace {
    tiny(&[("gated", GATED, &[]), ("after", AFTER, &["gated"])])
}

const AFTER: &str = "cat /opt/packs/gated/*/x > /out/y\n";

/// Opens the gate of the action running on `worker`, once one runs; its folder.
fn open_gate(worker: &Worker) -> PathBuf {
    let mut running = Vec::new();
    wait_until(
        "an action to run on the worker",
        Duration::from_secs(60),
        || {
            running = worker.running_actions();
            running.iter().any(|d| d.join("out").is_dir())
        },
    );
    let dir = running
        .into_iter()
        .find(|d| d.join("out").is_dir())
        .unwrap();
    fs_err::write(dir.join("out/go"), b"").unwrap();
    dir
}

fn wait_running(worker: &Worker) {
    wait_until(
        "an action to run on the worker",
        Duration::from_secs(60),
        || {
            worker
                .running_actions()
                .iter()
                .any(|d| d.join("out").is_dir())
        },
    );
}

/// `refine build //... --executor FARM ARGS` in the background, output to a file.
struct Build {
    child: Child,
    log: PathBuf,
}

impl Build {
    fn start(ws: &Path, store: &Path, farm: &Farm, args: &[&str]) -> Build {
        let log = store.with_extension("log");
        let child = Command::new(refine_bin())
            .current_dir(ws)
            .args(["--store", store.to_str().unwrap(), "build", "//..."])
            .args(["--executor", &endpoint(farm)])
            .args(args)
            .stdin(Stdio::null())
            .stdout(fs_err::File::create(&log).unwrap().into_file())
            .stderr(fs_err::File::create(&log).unwrap().into_file())
            .spawn()
            .unwrap();
        Build { child, log }
    }

    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        (status.code(), fs_err::read_to_string(&self.log).unwrap())
    }
}

fn expected_contents(ws: &Path) -> std::collections::BTreeMap<String, (String, String)> {
    // What a local build of the same graph stores: the gate is opened by hand.
    let store = tempfile::tempdir().unwrap();
    let ws_local = tiny(&[
        ("gated", "echo done > /out/x\n", &[]),
        ("after", AFTER, &["gated"]),
    ]);
    let _ = ws;
    refine_ok(ws_local.path(), store.path(), &["build", "//..."]);
    keys_and_contents(ws_local.path(), store.path())
        .into_iter()
        .map(|(l, (_, c))| (l, (String::new(), c)))
        .collect()
}

fn contents(ws: &Path, store: &Path) -> std::collections::BTreeMap<String, (String, String)> {
    keys_and_contents(ws, store)
        .into_iter()
        .map(|(l, (_, c))| (l, (String::new(), c)))
        .collect()
}

/// A worker killed while it runs a lease: the farm reaps its session and gives the lease to
/// another worker; the build finishes with the right artifact.
#[test]
fn a_worker_killed_mid_lease_hands_its_action_to_another() {
    let farm = Farm::start_with(FarmOptions {
        bot_keepalive_secs: 4,
        ..FarmOptions::default()
    });
    let mut first = Worker::start(&farm, "bot-first");
    let ws = gated();
    let store = tempfile::tempdir().unwrap();
    let build = Build::start(ws.path(), &store.path().join("s"), &farm, &[]);
    wait_running(&first);
    first.kill();
    let second = Worker::start(&farm, "bot-second");
    open_gate(&second);
    let (code, log) = build.finish();
    assert_eq!(code, Some(0), "{log}\n{}", second.log());
    assert_eq!(
        contents(ws.path(), &store.path().join("s")),
        expected_contents(ws.path())
    );
}

/// A worker stopped with SIGTERM while it runs a lease kills the action, hands the lease back
/// and exits 0; the farm requeues it at once (the job is queued again while the stopped
/// worker's session, which a reaping would have deleted, still exists), another worker runs it
/// and the build finishes with the artifact a local build makes.
#[test]
fn a_worker_stopped_with_sigterm_hands_its_lease_back() {
    // Sessions outlive the test: only the worker's hand-back can requeue the job.
    let farm = Farm::start_with(FarmOptions {
        bot_keepalive_secs: 600,
        ..FarmOptions::default()
    });
    let mut first = Worker::start(&farm, "bot-first");
    let ws = gated();
    let store = tempfile::tempdir().unwrap();
    let s = store.path().join("s");
    let build = Build::start(ws.path(), &s, &farm, &[]);
    wait_running(&first);
    let status = first.terminate();
    let said = first.log();
    assert_eq!(status.code(), Some(0), "{said}");
    assert!(
        said.contains("the action was killed") && said.contains("handed back to the farm's queue"),
        "{said}"
    );
    assert!(
        first.running_actions().is_empty(),
        "the action's folder is gone: {:?}",
        first.running_actions()
    );
    // The job is queued again, unassigned, and the session that held it is still there,
    // terminating: the requeue was the hand-back's, not an expiry's.
    assert_eq!(
        farm.psql("SELECT stage, assigned, worker_name IS NULL FROM jobs WHERE stage < 4")
            .trim(),
        "2|f|t",
        "{said}"
    );
    assert_eq!(
        farm.psql("SELECT bot_status FROM bots WHERE bot_id = 'bot-first'")
            .trim(),
        "4",
        "bot-first's session is still there (not reaped), BOT_TERMINATING (4)"
    );
    let second = Worker::start(&farm, "bot-second");
    open_gate(&second);
    let (code, log) = build.finish();
    assert_eq!(code, Some(0), "{log}\n{}", second.log());
    assert_eq!(contents(ws.path(), &s), expected_contents(ws.path()));
    let gated = provenance(ws.path(), &s, "//packs:gated");
    assert_eq!(
        gated["predicate"]["buildDefinition"]["internalParameters"]["executor"]["worker"],
        "bot-second",
        "{gated:#}"
    );
}

/// The path BuildGrid's disk storage keeps a blob at.
fn farm_blob(farm: &Farm, hash: &str) -> PathBuf {
    farm.cas_dir()
        .join("cas/objects")
        .join(&hash[..2])
        .join(&hash[2..])
}

/// Every blob file of the farm's CAS.
fn farm_blobs(farm: &Farm) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in fs_err::read_dir(farm.cas_dir().join("cas/objects")).unwrap() {
        for blob in fs_err::read_dir(shard.unwrap().path()).unwrap() {
            out.push(blob.unwrap().path());
        }
    }
    out
}

/// The farm's CAS loses every blob while the build runs its first action: the client, which
/// saw the farm hold the base, sends the second action without asking again; a fresh worker
/// (nothing cached) finds the base missing and ends the lease `FAILED_PRECONDITION` naming the
/// blobs; the client sends what is missing again and executes once more, and the build
/// finishes with the artifacts a local build makes.
#[test]
fn blobs_lost_from_the_farms_cas_are_sent_again() {
    use sha2::Digest as _;
    let farm = Farm::start();
    // One lease, then it leaves: the second action goes to a worker with an empty cache.
    let mut first = Worker::start_with(&farm, "bot-first", &["--max-leases", "1"]);
    let ws = gated();
    let store = tempfile::tempdir().unwrap();
    let s = store.path().join("s");
    let build = Build::start(ws.path(), &s, &farm, &[]);
    wait_running(&first);
    let lost = farm_blobs(&farm);
    let busybox: String = sha2::Sha256::digest(fs_err::read(crate::common::BUSYBOX).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        lost.contains(&farm_blob(&farm, &busybox)),
        "the base's busybox is on the farm"
    );
    for blob in &lost {
        fs_err::remove_file(blob).unwrap();
    }
    open_gate(&first);
    let status = first.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", first.log());
    let second = Worker::start(&farm, "bot-second");
    let (code, log) = build.finish();
    let said = second.log();
    assert_eq!(code, Some(0), "{log}\n{said}\n{}", first.log());
    assert_eq!(contents(ws.path(), &s), expected_contents(ws.path()));
    // The fault happened: the worker named the missing blobs, the farm ended that execution
    // FAILED_PRECONDITION (code 9), and the next one succeeded.
    assert_eq!(
        said.matches("no longer holds").count(),
        1,
        "one lease failed for missing blobs:\n{said}"
    );
    assert_eq!(said.matches("exit 0").count(), 1, "{said}");
    assert_eq!(
        farm.psql("SELECT count(*) FROM jobs WHERE status_code = 9")
            .trim(),
        "1",
        "{said}"
    );
    // Only the client sends inputs: the base's busybox is back because it sent it again.
    assert!(
        farm_blob(&farm, &busybox).is_file(),
        "the client sent the lost blobs again"
    );
}

/// Ctrl-C stops the build: the operation is cancelled on the farm (the worker kills the
/// action), the build exits 1, and nothing of the action is stored.
#[test]
fn an_interrupted_build_cancels_its_operation_on_the_farm() {
    let farm = Farm::start();
    let worker = Worker::start(&farm, "bot-a");
    let ws = tiny(&[("gated", GATED, &[])]);
    let store = tempfile::tempdir().unwrap();
    let s = store.path().join("s");
    let build = Build::start(ws.path(), &s, &farm, &[]);
    wait_running(&worker);
    signal(build.child.id(), nix::sys::signal::Signal::SIGINT);
    let (code, log) = build.finish();
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("Interrupted"), "{log}");
    worker.wait_for("cancelled by the server", Duration::from_secs(30));
    let out = crate::common::run_refine(
        ws.path(),
        &[
            "--store",
            s.to_str().unwrap(),
            "plan",
            "//packs:gated",
            "--output",
            "json",
        ],
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gated = plan
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["label"] == "//packs:gated")
        .unwrap();
    assert_eq!(gated["status"], "build", "nothing was stored: {gated:#}");
}

/// The server restarted while an action runs: the client re-attaches to its operation, the
/// worker to its session, and the build finishes.
#[test]
fn a_server_restarted_mid_build_is_waited_for() {
    let mut farm = Farm::start();
    let worker = Worker::start(&farm, "bot-a");
    let ws = gated();
    let store = tempfile::tempdir().unwrap();
    let s = store.path().join("s");
    let build = Build::start(ws.path(), &s, &farm, &[]);
    wait_running(&worker);
    farm.restart_server();
    open_gate(&worker);
    let (code, log) = build.finish();
    assert_eq!(
        code,
        Some(0),
        "{log}\n{}\n{}",
        worker.log(),
        farm.server_log()
    );
    assert_eq!(contents(ws.path(), &s), expected_contents(ws.path()));
}

/// An action for a platform no worker offers waits, then fails saying which platform; with
/// `--keep-going` the rest of the build finishes.
#[test]
fn an_action_no_worker_can_take_names_its_platform() {
    let farm = Farm::start();
    let _worker = Worker::start(&farm, "bot-a");
    let arch = std::env::consts::ARCH;
    let other = if arch == "s390x" { "x86_64" } else { "s390x" };
    let ws = tiny(&[("here", "echo here > /out/h\n", &[])]);
    fs_err::write(
        ws.path().join("rules/elsewhere.kdl"),
        format!(
            "base \"foreign\" {{\n    arch \"{other}\"\n    policy \"linux\"\n    tree \"roots/tiny\"\n}}\npack \"there\" {{\n    version \"1\"\n    base \"//elsewhere:foreign\"\n    recipe \"recipes/here.sh\"\n}}\n"
        ),
    )
    .unwrap();
    let store = tempfile::tempdir().unwrap();
    let s = store.path().join("s");
    let build = Build::start(
        ws.path(),
        &s,
        &farm,
        &["--keep-going", "--executor-queue-timeout", "5"],
    );
    let (code, log) = build.finish();
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "No worker of the farm at `{}` offers platform ISA={other}, OSFamily=linux",
            endpoint(&farm)
        )),
        "{log}"
    );
    assert!(log.contains("built //packs:here"), "{log}");
}

/// A worker that joins a farm with work already queued takes it, whichever reply carries the
/// lease: BuildGrid may assign a queued job as it creates the bot's session (the remote
/// execution bench saw such a lease left unrun by a worker that only read its updates' replies,
/// and the build waited for the farm's execution timeout); here it usually comes with the first
/// update, since the worker cuts a held `CreateBotSession` short.
#[test]
fn a_worker_that_joins_a_waiting_queue_takes_its_work() {
    let farm = Farm::start_with(FarmOptions {
        // Bounds the wait if the lease is lost: the build then fails instead of passing late.
        max_execution_timeout_secs: 120,
        ..FarmOptions::default()
    });
    let ws = tiny(&[("early", "echo queued first > /out/e\n", &[])]);
    let store = tempfile::tempdir().unwrap();
    let s = store.path().join("s");
    let build = Build::start(ws.path(), &s, &farm, &[]);
    // The worker joins once the job waits in the farm's queue (stage 2, QUEUED).
    wait_until("the job to be queued", Duration::from_secs(60), || {
        farm.psql("SELECT count(*) FROM jobs WHERE stage = 2")
            .trim()
            == "1"
    });
    let worker = Worker::start(&farm, "bot-late");
    let (code, log) = build.finish();
    assert_eq!(code, Some(0), "{log}\n{}", worker.log());
    assert!(
        worker.log().contains("accepted"),
        "the late worker ran it:\n{}",
        worker.log()
    );
}
