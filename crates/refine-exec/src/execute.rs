//! Running a staged action, in whichever of the three ways its target needs: nothing to run
//! (the artifact is a folder as it is), a command on the host (a bootstrap), or the sandbox.
//! Whatever happens to a command that ran, its whole log is stored first; a log that cannot
//! be stored fails the action.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use refine_rules::graph::TargetId;
use refine_sandbox::{Canceller, Outcome, Running, Sandbox, SandboxError, Spec};
use refine_store::LocalStore;

use crate::error::ActionError;
use crate::log::{self, Header, StoredLog, TAIL_LINES};
use crate::outputs::{Output, check_outputs};
use crate::provenance::ExecutorRecord;
use crate::report::NodeFailure;
use crate::stage::{DEFAULT_PATH, Inputs, OutputCheck, SOURCE_DATE_EPOCH, Staged, host_arch};

/// How the artifact was made, for its provenance.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub inputs: Inputs,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The architecture the action ran for.
    pub platform: String,
    /// `qemu-<arch> (binfmt_misc)` when the platform is not the host's.
    pub emulator: Option<String>,
    /// The farm that ran it, when not this machine.
    pub executor: Option<ExecutorRecord>,
    pub exit: String,
}

/// An action that ran (or had nothing to run) and left what may become its artifact.
#[derive(Debug)]
pub struct Ran {
    pub output: Output,
    pub record: RunRecord,
    pub log: Option<StoredLog>,
    /// The wall time of the action's own process; `None` when none ran.
    pub action_seconds: Option<f64>,
}

/// What running one staged action needs.
pub struct Execute<'a> {
    pub store: &'a LocalStore,
    pub id: TargetId,
    pub label: &'a str,
    pub key: &'a str,
    pub sandbox: &'a Sandbox,
    /// The running sandboxes of the build, which the build loop kills to stop it.
    pub cancellers: &'a Mutex<HashMap<TargetId, Canceller>>,
    /// Set once the build stops: an action that starts after that is cancelled at once.
    pub stop: &'a AtomicBool,
    /// Where `--sandbox-debug` writes the action's `replay.sh`.
    pub replay: Option<&'a Path>,
    /// The farm that runs sandboxed actions, if not this machine.
    pub executor: Option<&'a refine_reapi::Executor>,
}

/// The environment of a command run on the host.
const HOST_ENV: [(&str, &str); 4] = [
    ("PATH", DEFAULT_PATH),
    ("DEBIAN_FRONTEND", "noninteractive"),
    ("LANG", "C.UTF-8"),
    ("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH),
];

/// Runs `staged`.
pub fn execute(ctx: &Execute<'_>, staged: Staged) -> Result<Ran, NodeFailure> {
    match staged {
        Staged::Direct { tree, inputs } => Ok(Ran {
            output: Output::Tree(tree),
            record: RunRecord {
                inputs,
                command: Vec::new(),
                env: Vec::new(),
                platform: host_arch().to_string(),
                emulator: None,
                executor: None,
                exit: "none (no action)".to_string(),
            },
            log: None,
            action_seconds: None,
        }),
        Staged::Host {
            command,
            out,
            log,
            inputs,
            locked,
        } => run_host(ctx, command, out, &log, inputs, locked.as_ref()),
        Staged::Sandboxed {
            spec,
            out,
            check,
            inputs,
        } => match ctx.executor {
            Some(executor) => run_remote(ctx, executor, &spec, &out, check, inputs),
            None => run_sandboxed(ctx, &spec, &out, check, inputs),
        },
    }
}

fn run_host(
    ctx: &Execute<'_>,
    command: Vec<String>,
    out: PathBuf,
    output: &Path,
    inputs: Inputs,
    locked: Option<&(String, Vec<refine_rules::rules::DebPin>)>,
) -> Result<Ran, NodeFailure> {
    let started = Instant::now();
    let ended = run_on_host(&command, output);
    let action_seconds = started.elapsed().as_secs_f64();
    let env: Vec<(String, String)> = HOST_ENV
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let header = Header {
        label: ctx.label,
        key: ctx.key,
        command: &command,
        env: &env,
        src: None,
    };
    let (status, log) = keep_log(ctx.store, &header, output, ended)?;
    // A locked base holds exactly its lock, or is not stored.
    if let Some((label, debs)) = locked {
        crate::bootstrap::check_as_locked(&out, label, debs)
            .map_err(|e| NodeFailure::from(e).with_log(log.path.clone()))?;
    }
    crate::bootstrap::sanitize(&out)
        .map_err(|e| NodeFailure::from(e).with_log(log.path.clone()))?;
    Ok(Ran {
        output: Output::Tree(out),
        record: RunRecord {
            inputs,
            command,
            // Fixed (`HOST_ENV`), and written at the top of the log.
            env: Vec::new(),
            platform: host_arch().to_string(),
            emulator: None,
            executor: None,
            exit: status.to_string(),
        },
        log: Some(log),
        action_seconds: Some(action_seconds),
    })
}

/// Runs `command` on the host with its output in the file `output`; its exit status if 0.
fn run_on_host(command: &[String], output: &Path) -> Result<ExitStatus, ActionError> {
    let program = command.first().cloned().unwrap_or_default();
    let log_file = fs_err::File::create(output).map_err(ActionError::io("create", output))?;
    let err_file = log_file
        .try_clone()
        .map_err(ActionError::io("open", output))?;
    let status = std::process::Command::new(&program)
        .args(command.iter().skip(1))
        .env_clear()
        .envs(HOST_ENV)
        .stdin(std::process::Stdio::null())
        .stdout(log_file.into_file())
        .stderr(err_file.into_file())
        .status()
        .map_err(|source| ActionError::Spawn {
            program: program.clone(),
            source,
        })?;
    if !status.success() {
        return Err(ActionError::Failed {
            what: format!("`{program}`"),
            status: status.to_string(),
            tail: log::tail(output, TAIL_LINES),
        });
    }
    Ok(status)
}

fn run_sandboxed(
    ctx: &Execute<'_>,
    spec: &Spec,
    out: &Path,
    check: OutputCheck,
    inputs: Inputs,
) -> Result<Ran, NodeFailure> {
    if let Some(replay) = ctx.replay {
        crate::replay::write(replay, ctx.label, spec).map_err(ActionError::io("write", replay))?;
    }
    let running = ctx.sandbox.spawn(spec).map_err(ActionError::SandboxStart)?;
    let ended = wait_registered(ctx, running);
    let action_seconds = ended.as_ref().ok().map(|o| o.wall_time.as_secs_f64());
    let output = spec.log.clone().unwrap_or_default();
    let ended = ended
        .map_err(ActionError::Sandbox)
        .and_then(|o| judge(o, &output));
    let header = sandbox_header(ctx, spec);
    let (outcome, log) = keep_log(ctx.store, &header, &output, ended)?;
    let output =
        check_outputs(out, check).map_err(|e| NodeFailure::from(e).with_log(log.path.clone()))?;
    Ok(Ran {
        output,
        record: RunRecord {
            inputs,
            command: spec.command.clone(),
            env: spec.env.clone(),
            platform: spec.arch.clone().unwrap_or_else(|| host_arch().to_string()),
            emulator: spec
                .arch
                .as_ref()
                .map(|a| format!("qemu-{a} (binfmt_misc)")),
            executor: None,
            exit: format!("{:?}", outcome.termination),
        },
        log: Some(log),
        action_seconds,
    })
}

/// The head of a sandboxed action's log: what ran, where its sources were.
fn sandbox_header<'s>(ctx: &'s Execute<'_>, spec: &'s Spec) -> Header<'s> {
    Header {
        label: ctx.label,
        key: ctx.key,
        command: &spec.command,
        env: &spec.env,
        src: spec
            .binds
            .iter()
            .find(|b| b.target == Path::new("/src"))
            .map(|b| b.source.as_path()),
    }
}

/// Runs the spec on the farm: the same log, the same `/out` checks, the same record, plus
/// where it ran.
fn run_remote(
    ctx: &Execute<'_>,
    executor: &refine_reapi::Executor,
    spec: &Spec,
    out: &Path,
    check: OutputCheck,
    inputs: Inputs,
) -> Result<Ran, NodeFailure> {
    let output = spec
        .log
        .clone()
        .unwrap_or_else(|| out.with_extension("log"));
    let action = refine_reapi::RemoteAction {
        store: ctx.store,
        spec,
        out,
        log: &output,
        stop: ctx.stop,
    };
    let ran = executor.execute(&action).map_err(|e| match e {
        refine_reapi::ReapiError::Cancelled => ActionError::Cancelled,
        source => ActionError::Executor { source },
    });
    let ended = match ran {
        Ok(r) if r.exit_code == 0 => Ok(r),
        Ok(r) => Err(ActionError::Failed {
            what: format!("The action (on `{}`)", r.worker),
            status: format!("exit code {}", r.exit_code),
            tail: log::tail(&output, TAIL_LINES),
        }),
        Err(e) => {
            // Nothing came back: an empty log says so rather than a missing file.
            if !output.exists() {
                let _ = fs_err::write(&output, b"");
            }
            Err(e)
        }
    };
    let header = sandbox_header(ctx, spec);
    let (run, log) = keep_log(ctx.store, &header, &output, ended)?;
    let output =
        check_outputs(out, check).map_err(|e| NodeFailure::from(e).with_log(log.path.clone()))?;
    Ok(Ran {
        output,
        record: RunRecord {
            inputs,
            command: spec.command.clone(),
            env: spec.env.clone(),
            platform: spec.arch.clone().unwrap_or_else(|| host_arch().to_string()),
            emulator: None,
            executor: Some(ExecutorRecord {
                endpoint: executor.endpoint().to_string(),
                worker: run.worker.clone(),
                action: run.action_digest.to_string(),
                cached: run.cached,
                verified_against: run.verified_against.clone(),
            }),
            exit: format!("exit code {}", run.exit_code),
        },
        log: Some(log),
        action_seconds: run.seconds,
    })
}

/// The outcome of a sandbox that ran, if the action succeeded.
fn judge(o: Outcome, output: &Path) -> Result<Outcome, ActionError> {
    if o.cancelled {
        Err(ActionError::Cancelled)
    } else if o.timed_out {
        Err(ActionError::TimedOut {
            seconds: o.wall_time.as_secs_f64(),
            tail: log::tail(output, TAIL_LINES),
        })
    } else if !o.success() {
        Err(ActionError::Failed {
            what: "The action".into(),
            status: format!("{:?}", o.termination),
            tail: log::tail(output, TAIL_LINES),
        })
    } else {
        Ok(o)
    }
}

/// Waits for a started sandbox, registered with the build loop for as long as it runs.
fn wait_registered(ctx: &Execute<'_>, running: Running) -> Result<Outcome, SandboxError> {
    let lock = || {
        ctx.cancellers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    lock().insert(ctx.id, running.canceller());
    // The build loop sets `stop` before it cancels the registered sandboxes: a sandbox
    // registered too late for that sweep sees the flag here.
    if ctx.stop.load(Ordering::SeqCst) {
        running.canceller().cancel();
    }
    let outcome = running.wait();
    lock().remove(&ctx.id);
    outcome
}

/// Stores the log of a command that ran, whatever its end; the action's own failure wins
/// over a log stored fine, a log that cannot be stored fails the action either way.
fn keep_log<T>(
    store: &LocalStore,
    header: &Header<'_>,
    output: &Path,
    ended: Result<T, ActionError>,
) -> Result<(T, StoredLog), NodeFailure> {
    match (log::store(store, &header.render(), output), ended) {
        (Ok(log), Ok(t)) => Ok((t, log)),
        (Ok(log), Err(e)) => Err(NodeFailure::new(e).with_log(log.path)),
        (Err(source), ended) => Err(NodeFailure::new(ActionError::StoreLog {
            source,
            action: ended.err().into_iter().collect(),
        })),
    }
}
