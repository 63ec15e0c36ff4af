//! One action, on a worker thread, phase by phase: fetch its missing inputs, pull the
//! dependencies found only remotely, stage, run, check that the workspace folders it read
//! did not change meanwhile (and that a repaired wheel keeps its policy, re-tagging it with
//! the lowest it meets), store the artifact with its log and provenance, push it.
//! Each phase returns a typed result or an [`ActionError`]; a failure after the action ran
//! names its stored log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use refine_plan::key::{Key, KeyFields};
use refine_rules::graph::{TargetGraph, TargetId};
use refine_sandbox::{Canceller, Sandbox};
use refine_store::remote::Remote;
use refine_store::{ArtifactInput, Digest, LocalStore};

use crate::error::ActionError;
use crate::events::{Event, Observer};
use crate::execute::{Execute, Ran, execute};
use crate::outputs::{Output, check_live_trees, check_repaired_wheel, explain_refused_repair};
use crate::provenance::{Host, Provenance};
use crate::report::{ActionOutcome, Built, NodeFailure, Timings};
use crate::scratch::{Scratch, Scratches};
use crate::stage::{Stage, Staged, stage};

/// Everything one action needs, lent by the build loop.
pub struct Job<'a> {
    pub graph: &'a TargetGraph,
    pub store: &'a LocalStore,
    pub id: TargetId,
    pub key: Key,
    pub fields: &'a KeyFields,
    /// The artifacts of everything upstream of the target.
    pub deps: &'a HashMap<TargetId, Built>,
    pub sandbox: &'a Sandbox,
    pub cancellers: &'a Mutex<HashMap<TargetId, Canceller>>,
    /// The worker slot the action runs in (the profile's thread).
    pub worker: usize,
    /// The slots' folders; the action borrows its slot's.
    pub scratches: &'a Scratches,
    /// Fetches run one at a time, whichever actions need them.
    pub fetch_lock: &'a Mutex<()>,
    /// Compile jobs the action may run (`REFINE_JOBS`).
    pub cores: usize,
    /// Set once the build stops: an action that starts after that is cancelled at once.
    pub stop: &'a AtomicBool,
    pub remote: Option<&'a dyn Remote>,
    /// Signs the provenance of what the action stores.
    pub signer: Option<&'a refine_attest::SigningKey>,
    /// Where to keep the action's folder and its `replay.sh`.
    pub sandbox_debug: Option<&'a std::path::Path>,
    /// The farm that runs sandboxed actions, if not this machine.
    pub executor: Option<&'a refine_reapi::Executor>,
}

/// Runs the action of `job` to its stored (and pushed) artifact.
pub fn run(job: &Job<'_>, observer: &dyn Observer) -> Result<ActionOutcome, NodeFailure> {
    let target = job.graph.target(job.id);
    let label = target.label.to_string();
    let key = job.key.hex();
    let started = Instant::now();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    observer.event(&Event::ActionStart {
        label: label.clone(),
        kind: target.kind().to_string(),
        key: key.clone(),
        worker: job.worker,
    });
    fetch_inputs(job)?;
    pull_remote_deps(job)?;
    let scratch = scratch(job, &label)?;
    // One flush for what the action stores (log, provenance, artifact), at the artifact's
    // commit point, instead of an fsync per file.
    let stored = job
        .store
        .in_one_sync(|| run_and_store(job, &label, &key, scratch.path(), started, started_unix))?;
    let (built, timings, sandboxed) = (stored.built, stored.timings, stored.sandboxed);
    push(job, &built.digest).map_err(|e| NodeFailure {
        log: stored.log,
        ..NodeFailure::new(e)
    })?;
    // --sandbox-debug keeps what can be replayed: sandboxed actions only.
    if job.sandbox_debug.is_some() && !sandboxed {
        let _ = fs_err::remove_dir_all(scratch.path());
    }
    observer.event(&Event::ActionFinish {
        label,
        kind: target.kind().to_string(),
        key,
        digest: built.digest.to_string(),
        seconds: timings.seconds,
        action_seconds: timings.action_seconds,
        overhead_seconds: started.elapsed().as_secs_f64() - timings.action_seconds.unwrap_or(0.0),
    });
    Ok(ActionOutcome {
        built,
        timings,
        worker: job.worker,
    })
}

/// What [`run_and_store`] stored.
struct Stored {
    built: Built,
    timings: Timings,
    sandboxed: bool,
    log: Option<std::path::PathBuf>,
}

/// Runs the action and stores its artifact, checked.
fn run_and_store(
    job: &Job<'_>,
    label: &str,
    key: &str,
    scratch: &std::path::Path,
    started: Instant,
    started_unix: f64,
) -> Result<Stored, NodeFailure> {
    let (mut ran, sandboxed) = stage_and_execute(job, label, key, scratch)
        .map_err(|failure| explain_failure(job, failure))?;
    // From here on, a failure names the log: the action ran.
    let log = ran.log.as_ref().map(|l| l.path.clone());
    let with_log = |e: ActionError| NodeFailure {
        log: log.clone(),
        ..NodeFailure::new(e)
    };
    check_live_trees(job.graph, job.id, job.fields).map_err(with_log)?;
    ran.output = check_repaired_wheel(job.graph, job.id, ran.output, &scratch.join("retagged"))
        .map_err(with_log)?;
    let timings = Timings {
        started_unix,
        seconds: started.elapsed().as_secs_f64(),
        action_seconds: ran.action_seconds,
    };
    let built = store_artifact(job, label, ran, &timings).map_err(with_log)?;
    Ok(Stored {
        built,
        timings,
        sandboxed,
        log,
    })
}

/// Stages the target in `scratch` and runs it; whether it ran in the sandbox.
fn stage_and_execute(
    job: &Job<'_>,
    label: &str,
    key: &str,
    scratch: &std::path::Path,
) -> Result<(Ran, bool), NodeFailure> {
    let staged = stage(&Stage {
        graph: job.graph,
        store: job.store,
        id: job.id,
        deps: job.deps,
        scratch,
        cores: job.cores,
        fields: job.fields,
    })?;
    let sandboxed = matches!(staged, Staged::Sandboxed { .. });
    let replay = scratch.join("replay.sh");
    let ctx = Execute {
        store: job.store,
        id: job.id,
        label,
        key,
        sandbox: job.sandbox,
        cancellers: job.cancellers,
        stop: job.stop,
        replay: job.sandbox_debug.is_some().then_some(replay.as_path()),
        executor: job.executor,
    };
    Ok((execute(&ctx, staged)?, sandboxed))
}

/// A failed repair says which symbol versions made auditwheel refuse, when the wheel it was
/// given requires them itself (auditwheel's message names none); a failed wheel build, which
/// native header or library it missed; any other failure as it is.
fn explain_failure(job: &Job<'_>, failure: NodeFailure) -> NodeFailure {
    let ActionError::Failed { tail, .. } = &*failure.error else {
        return failure;
    };
    if job.graph.target(job.id).kind() == refine_digest::Kind::Wheel {
        // The compiler's complaint may lie above the tail: read the whole log.
        let whole = failure
            .log
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let hint = crate::native_hint::explain_missing_native(
            job.graph,
            job.id,
            whole.as_deref().unwrap_or(tail),
            tail,
        );
        return match hint {
            Some(error) => NodeFailure {
                log: failure.log.clone(),
                ..NodeFailure::new(error)
            },
            None => failure,
        };
    }
    if job.graph.target(job.id).kind() != refine_digest::Kind::Repair {
        return failure;
    }
    let input = job
        .graph
        .deps(job.id)
        .first()
        .and_then(|d| job.deps.get(d))
        .and_then(|b| job.store.unpack(&b.digest).ok())
        .and_then(|tree| crate::files::wheels_in(&tree).ok())
        .and_then(|wheels| wheels.into_iter().next());
    match input.and_then(|w| explain_refused_repair(job.graph, job.id, &w, tail)) {
        Some(error) => NodeFailure {
            log: failure.log.clone(),
            ..NodeFailure::new(error)
        },
        None => failure,
    }
}

/// Fetches the target's sources that are not in the store yet, one fetch at a time.
fn fetch_inputs(job: &Job<'_>) -> Result<(), ActionError> {
    let _one_at_a_time = job
        .fetch_lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let work = job.store.tmp_dir();
    let mut pip = None;
    for item in refine_fetch::inputs_of(job.graph, &[job.id]) {
        let digest = Digest::parse(&format!("sha256:{}", item.sha256()))?;
        if job.store.has_blob(&digest) && refine_fetch::file_name(job.store, &digest).is_some() {
            continue;
        }
        // Reading pip's configuration runs pip: only when something must be fetched.
        let pip = pip.get_or_insert_with(refine_fetch::PipConfig::load);
        match refine_fetch::fetch(job.store, &item, pip, &work) {
            // A locked package the mirror dropped: the lock is what to refresh.
            Err(refine_fetch::FetchError::NotServed {
                package,
                version,
                arch,
                url,
            }) if pinned_by_lock(&job.graph.target(job.id).spec, &package) => {
                return Err(ActionError::LockedDebGone {
                    label: job.graph.target(job.id).label.to_string(),
                    package,
                    version,
                    arch,
                    url,
                });
            }
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// Whether `package` of the target comes from its lock (a base's, or a toolchain's
/// `packages`), rather than from a `deb` pin in its rule.
fn pinned_by_lock(spec: &refine_rules::rules::Spec, package: &str) -> bool {
    use refine_rules::rules::Spec;
    match spec {
        Spec::Base(_) => true,
        Spec::Toolchain(t) => t
            .debian
            .as_ref()
            .is_some_and(|d| d.packages.iter().any(|p| p == package)),
        _ => false,
    }
}

/// Pulls the dependencies found in the remote store: their content is needed now.
fn pull_remote_deps(job: &Job<'_>) -> Result<(), ActionError> {
    let Some(remote) = job.remote else {
        return Ok(());
    };
    for (&d, b) in job.deps {
        if !b.remote || job.store.has_blob(&b.digest) {
            continue;
        }
        let t = job.graph.target(d);
        let key = b.key.as_deref().unwrap_or_default();
        remote
            .pull(job.store, t.kind().as_str(), key, &b.digest)
            .map_err(|source| ActionError::Pull {
                label: t.label.to_string(),
                remote: remote.describe(),
                source,
            })?;
    }
    Ok(())
}

/// The action's own folder: its worker slot's in the store's `tmp/`, or one of its own kept in
/// the `--sandbox-debug` folder.
fn scratch<'j>(job: &Job<'j>, label: &str) -> Result<Scratch<'j>, ActionError> {
    let Some(dir) = job.sandbox_debug else {
        let tmp = job.store.tmp_dir();
        return job
            .scratches
            .take(job.worker, &tmp)
            .map_err(ActionError::io("create a folder in", &tmp));
    };
    fs_err::create_dir_all(dir).map_err(ActionError::io("create", dir))?;
    let name = label.trim_start_matches('/').replace([':', '/'], "-");
    tempfile::Builder::new()
        .prefix(&format!("{name}-"))
        .disable_cleanup(true)
        .tempdir_in(dir)
        .map(Scratch::Kept)
        .map_err(ActionError::io("create a folder in", dir))
}

/// Stores the provenance record, then the artifact annotated with it and with the log.
fn store_artifact(
    job: &Job<'_>,
    label: &str,
    ran: Ran,
    timings: &Timings,
) -> Result<Built, ActionError> {
    let target = job.graph.target(job.id);
    let record = ran.record;
    let log = ran.log.map(|l| l.digest.to_string());
    let provenance = Provenance {
        label: label.to_string(),
        kind: target.kind().to_string(),
        key: job.key.hex(),
        key_fields: job.fields.flat(),
        inputs: record.inputs,
        command: record.command,
        env: record.env,
        platform: record.platform,
        emulator: record.emulator,
        executor: record.executor,
        host: Host::current(),
        started_unix: timings.started_unix,
        seconds: timings.seconds,
        exit: record.exit,
        log: log.clone(),
        refine_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let bytes = serde_json::to_vec_pretty(&provenance)
        .map_err(|source| ActionError::Provenance { source })?;
    // The record as JSON only for signing: most builders have no key.
    let signed = job
        .signer
        .map(|signer| {
            serde_json::to_value(&provenance)
                .map(|record| (signer, record))
                .map_err(|source| ActionError::Provenance { source })
        })
        .transpose()?;
    let provenance = job.store.put_provenance(&bytes)?;
    let artifact = ArtifactInput::new(target.kind(), job.key.hex(), label)
        .key_fields(serde_json::json!(job.fields.flat()));
    let mut artifact = match ran.output {
        Output::Tree(dir) => artifact.tree(dir),
        Output::Wheel(whl) => {
            let title = whl
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("wheel.whl")
                .to_string();
            artifact.file(whl, title)
        }
    }
    .annotation("dev.refine.provenance", provenance.to_string());
    if let Some(log) = log {
        artifact = artifact.annotation("dev.refine.log", log);
    }
    let digest = job.store.put_artifact(&artifact)?;
    if let Some((signer, record)) = signed {
        job.store.put_signature(
            &digest,
            &refine_attest::sign_record(signer, &digest, &record),
        )?;
    }
    let manifest = job.store.read_manifest(&digest)?;
    Ok(Built {
        content: manifest.content_digest().to_string(),
        digest,
        remote: false,
        key: Some(job.key.hex()),
    })
}

/// Pushes the artifact to the remote store, when there is one.
fn push(job: &Job<'_>, digest: &Digest) -> Result<(), ActionError> {
    let Some(remote) = job.remote else {
        return Ok(());
    };
    let kind = job.graph.target(job.id).kind();
    remote
        .push(job.store, kind.as_str(), &job.key.hex(), digest)
        .map_err(|source| ActionError::Push {
            remote: remote.describe(),
            source,
        })
}
