//! One action, on a worker thread: fetch missing inputs, prepare, run in the sandbox, check
//! the outputs, store the artifact, its log and its provenance.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::graph::{TargetGraph, TargetId};
use crate::key::{Key, KeyFields};
use crate::plan::content_digest;
use crate::store::{ArtifactInput, LocalStore};

use super::action::{Built, OutputCheck, Prepared, check_outputs, host_arch, prepare};
use super::events::{Event, Observer};
use super::provenance::{Host, Provenance};

pub struct Job<'a> {
    pub graph: &'a TargetGraph,
    pub store: &'a LocalStore,
    pub id: TargetId,
    pub key: Key,
    pub fields: &'a KeyFields,
    pub deps: &'a HashMap<TargetId, Built>,
    pub sandbox: &'a refine_sandbox::Sandbox,
    pub cancellers: &'a Mutex<HashMap<TargetId, refine_sandbox::Canceller>>,
    pub worker: usize,
    pub fetch_lock: &'a Mutex<()>,
    pub jobs: usize,
    /// Set once the build stops: an action that starts after that is cancelled at once.
    pub stop: &'a std::sync::atomic::AtomicBool,
    pub remote: Option<&'a dyn super::Remote>,
    /// Where to keep the action's folder and its `replay.sh`.
    pub sandbox_debug: Option<&'a std::path::Path>,
}

/// Why an action failed, and its log when there is one.
pub type Failure = (String, Option<PathBuf>);

/// A finished action: its artifact, its time, when it started, and the worker it ran on.
pub type ActionResult = Result<(Built, f64, f64, usize), Failure>;

/// The last lines of a log, for the failure message.
fn tail(log: &std::path::Path, lines: usize) -> String {
    let text = fs_err::read(log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub fn run(job: &Job<'_>, observer: &dyn Observer) -> ActionResult {
    let target = job.graph.target(job.id);
    let label = target.label.to_string();
    let started = Instant::now();
    let start_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    observer.event(&Event::ActionStart {
        label: label.clone(),
        kind: target.kind().to_string(),
        key: job.key.hex(),
        worker: job.worker,
    });

    // Inputs first, outside the sandbox: fetched, verified, stored.
    {
        let _one_at_a_time = job.fetch_lock.lock().unwrap_or_else(|e| e.into_inner());
        let work = job.store.root().join("tmp");
        let mut pip = None;
        for item in crate::fetch::inputs_of(job.graph, &[job.id]) {
            let digest = crate::store::Digest::parse(&format!("sha256:{}", item.sha256()))
                .map_err(|e| (e.to_string(), None))?;
            if job.store.has_blob(&digest) && crate::fetch::file_name(job.store, &digest).is_some()
            {
                continue;
            }
            // Reading pip's configuration runs pip: only when something must be fetched.
            let pip = pip.get_or_insert_with(crate::fetch::PipConfig::load);
            crate::fetch::fetch(job.store, &item, pip, &work)
                .map_err(|e| (format!("{e}"), None))?;
        }
    }

    let tmp = match job.sandbox_debug {
        Some(dir) => dir.to_path_buf(),
        None => job.store.root().join("tmp"),
    };
    let prefix = match job.sandbox_debug {
        Some(_) => format!(
            "{}-",
            label.trim_start_matches('/').replace([':', '/'], "-")
        ),
        None => "action-".to_string(),
    };
    if job.sandbox_debug.is_some() {
        fs_err::create_dir_all(&tmp).map_err(|e| (e.to_string(), None))?;
    }
    let scratch = tempfile::Builder::new()
        .prefix(&prefix)
        .disable_cleanup(job.sandbox_debug.is_some())
        .tempdir_in(&tmp)
        .map_err(|e| {
            (
                format!("cannot create a folder in `{}`: {e}", tmp.display()),
                None,
            )
        })?;
    // Every upstream artifact is in `deps` (the build loop passes the whole closure); a miss
    // would be a bug in the loop, reported as a failed action rather than a panic.
    let missing = std::cell::Cell::new(None);
    let built_of = |d: TargetId| match job.deps.get(&d) {
        Some(b) => b.clone(),
        None => {
            missing.set(Some(d));
            Built {
                digest: crate::store::Digest::EMPTY_JSON,
                content: String::new(),
                remote: false,
                key: None,
            }
        }
    };
    // Dependencies found remotely come in now, when their content is needed.
    for (&d, b) in job.deps {
        if let (true, Some(remote)) = (b.remote && !job.store.has_blob(&b.digest), job.remote) {
            let t = job.graph.target(d);
            remote
                .pull(
                    job.store,
                    t.kind().as_str(),
                    b.key.as_deref().unwrap_or_default(),
                    &b.digest,
                )
                .map_err(|e| {
                    (
                        format!("cannot pull `{}` from {}: {e}", t.label, remote.describe()),
                        None,
                    )
                })?;
        }
    }
    let prepared = prepare(
        job.graph,
        job.id,
        job.store,
        &built_of,
        scratch.path(),
        job.jobs,
        job.fields,
    )
    .map_err(|e| (with_help(&e), None))?;

    if let Some(d) = missing.get() {
        return Err((
            format!(
                "internal error: `{}` has no artifact yet",
                job.graph.target(d).label
            ),
            None,
        ));
    }
    let kind = target.kind();
    let mut artifact = ArtifactInput::new(kind, job.key.hex(), &label)
        .key_fields(serde_json::json!(job.fields.flat()));
    let sandboxed = matches!(prepared, Prepared::Sandboxed { .. });
    let mut action_seconds: Option<f64> = None;
    let (inputs, command, env, platform, emulator, exit, log_digest) = match prepared {
        Prepared::Direct { tree, inputs } => {
            artifact = artifact.tree(tree);
            (
                inputs,
                Vec::new(),
                Vec::new(),
                host_arch().to_string(),
                None,
                "none (no action)".to_string(),
                None,
            )
        }
        Prepared::Host {
            command,
            out,
            log,
            inputs,
        } => {
            let log_file = fs_err::File::create(&log).map_err(|e| (e.to_string(), None))?;
            let err_file = log_file.try_clone().map_err(|e| (e.to_string(), None))?;
            let ran = Instant::now();
            let status = std::process::Command::new(&command[0])
                .args(&command[1..])
                .env_clear()
                .env("PATH", super::action::DEFAULT_PATH)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .env("LANG", "C.UTF-8")
                .env("SOURCE_DATE_EPOCH", super::action::SOURCE_DATE_EPOCH)
                .stdin(std::process::Stdio::null())
                .stdout(log_file.into_file())
                .stderr(err_file.into_file())
                .status();
            action_seconds = Some(ran.elapsed().as_secs_f64());
            let log_digest = fs_err::File::open(&log)
                .ok()
                .and_then(|f| job.store.put_log(f).ok());
            let kept = log_digest.as_ref().map(|d| job.store.blob_path(d));
            let status =
                status.map_err(|e| (format!("cannot run `{}`: {e}", command[0]), kept.clone()))?;
            if !status.success() {
                return Err((
                    format!(
                        "`{}` failed ({status}); the end of its log:\n{}",
                        command[0],
                        tail(&log, 20)
                    ),
                    kept,
                ));
            }
            super::bootstrap::sanitize(&out).map_err(|e| (e.to_string(), kept.clone()))?;
            artifact = artifact.tree(out);
            (
                inputs,
                command,
                Vec::new(),
                host_arch().to_string(),
                None,
                format!("{status}"),
                log_digest.map(|d| d.to_string()),
            )
        }
        Prepared::Sandboxed {
            spec,
            out,
            check,
            inputs,
        } => {
            if job.sandbox_debug.is_some() {
                super::replay::write(&scratch.path().join("replay.sh"), &label, &spec)
                    .map_err(|e| (e.to_string(), None))?;
            }
            let running = job
                .sandbox
                .spawn(&spec)
                .map_err(|e| (format!("the sandbox did not start: {e}"), None))?;
            job.cancellers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(job.id, running.canceller());
            // The build loop sets `stop` before it cancels the registered sandboxes: a sandbox
            // registered too late for that sweep sees the flag here.
            if job.stop.load(std::sync::atomic::Ordering::SeqCst) {
                running.canceller().cancel();
            }
            let outcome = running.wait();
            job.cancellers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&job.id);
            let log_path = spec.log.clone().unwrap_or_default();
            // The log is kept whatever happens: in the store, and named in the failure.
            let log_digest = fs_err::File::open(&log_path)
                .ok()
                .and_then(|f| job.store.put_log(f).ok());
            let kept = log_digest.as_ref().map(|d| job.store.blob_path(d));
            let outcome =
                outcome.map_err(|e| (format!("the sandbox failed: {e}"), kept.clone()))?;
            action_seconds = Some(outcome.wall_time.as_secs_f64());
            let exit = format!("{:?}", outcome.termination);
            if outcome.cancelled {
                return Err(("cancelled".into(), kept));
            }
            if outcome.timed_out {
                return Err((
                    format!(
                        "timed out after {:.0} s\n{}",
                        outcome.wall_time.as_secs_f64(),
                        tail(&log_path, 20)
                    ),
                    kept,
                ));
            }
            if !outcome.success() {
                return Err((
                    format!(
                        "the action failed ({exit}); the end of its log:\n{}",
                        tail(&log_path, 20)
                    ),
                    kept,
                ));
            }
            check_outputs(&out, check).map_err(|reason| (reason, kept.clone()))?;
            artifact = match check {
                // A wheel is stored as itself, a file layer titled with its name.
                OutputCheck::OneWheel => {
                    let whl = fs_err::read_dir(&out)
                        .map_err(|e| (e.to_string(), kept.clone()))?
                        .flatten()
                        .map(|e| e.path())
                        .find(|p| p.extension().is_some_and(|e| e == "whl"))
                        .ok_or_else(|| ("no wheel in `/out`".to_string(), kept.clone()))?;
                    let title = whl
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("wheel.whl")
                        .to_string();
                    artifact.file(whl, title)
                }
                _ => artifact.tree(out),
            };
            let emulator = spec
                .arch
                .as_ref()
                .map(|a| format!("qemu-{a} (binfmt_misc)"));
            let platform = spec.arch.clone().unwrap_or_else(|| host_arch().to_string());
            (
                inputs,
                spec.command.clone(),
                spec.env.clone(),
                platform,
                emulator,
                exit,
                log_digest.map(|d| d.to_string()),
            )
        }
    };
    // A workspace folder edited while the action ran is not stored under the key of its
    // old contents.
    for path in super::action::live_trees(job.graph, job.id) {
        let full = job.graph.workspace.root.join(&path);
        let now = crate::source::hash_tree(&full)
            .map(|d| format!("blake3:{}", d.hex()))
            .map_err(|e| (e.to_string(), None))?;
        if !job.fields.flat().iter().any(|(_, v)| v.contains(&now)) {
            return Err((
                with_help(&super::ExecError::ChangedDuringBuild { path }),
                None,
            ));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // --sandbox-debug keeps what can be replayed: sandboxed actions only.
    if job.sandbox_debug.is_some() && !sandboxed {
        let _ = std::fs::remove_dir_all(scratch.path());
    }
    let provenance = Provenance {
        label: label.clone(),
        kind: target.kind().to_string(),
        key: job.key.hex(),
        key_fields: job.fields.flat(),
        inputs,
        command,
        env,
        platform,
        emulator,
        host: Host::current(),
        started_unix: start_unix,
        seconds,
        exit,
        log: log_digest.clone(),
        refine_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let prov_bytes = serde_json::to_vec_pretty(&provenance).unwrap_or_default();
    let prov_digest = job
        .store
        .put_log(prov_bytes.as_slice())
        .map_err(|e| (e.to_string(), None))?;
    artifact = artifact.annotation("dev.refine.provenance", prov_digest.to_string());
    if let Some(l) = &log_digest {
        artifact = artifact.annotation("dev.refine.log", l.clone());
    }
    let digest = job
        .store
        .put_artifact(&artifact)
        .map_err(|e| (e.to_string(), None))?;
    let manifest = job
        .store
        .read_manifest(&digest)
        .map_err(|e| (e.to_string(), None))?;
    let built = Built {
        content: content_digest(&manifest),
        digest,
        remote: false,
        key: Some(job.key.hex()),
    };
    if let Some(remote) = job.remote {
        remote
            .push(job.store, target.kind().as_str(), &job.key.hex(), &digest)
            .map_err(|e| {
                (
                    format!("built, but cannot push to {}: {e}", remote.describe()),
                    None,
                )
            })?;
    }
    observer.event(&Event::ActionFinish {
        label,
        kind: target.kind().to_string(),
        key: job.key.hex(),
        digest: digest.to_string(),
        seconds,
        action_seconds,
        overhead_seconds: started.elapsed().as_secs_f64() - action_seconds.unwrap_or(0.0),
    });
    Ok((built, seconds, start_unix, job.worker))
}

/// The error's message and, when it has one, its hint: the failure is printed as text.
fn with_help(e: &super::ExecError) -> String {
    use miette::Diagnostic;
    match e.help() {
        Some(help) => format!("{e}\nhelp: {help}"),
        None => e.to_string(),
    }
}
