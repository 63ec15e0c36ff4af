//! `refine worker`: a bot of the Remote Workers API (`google.devtools.remoteworkers.v1test2`,
//! which BuildGrid serves), for farms whose own workers cannot run refine's actions.
//!
//! One bot session, advertising `OSFamily=linux` and `ISA` (natively, or under qemu-user
//! through binfmt_misc) plus any extra properties; the session is kept with
//! `UpdateBotSession`, which long-polls for work while idle (the bot echoes the session's
//! `version` from each reply, or BuildGrid does not hold the call). One lease runs at a time
//! ([`lease`]). New leases arrive `ACTIVE` (BuildGrid never sends `PENDING`); a lease the
//! server cancels simply disappears from its reply, and its sandbox is killed.
//!
//! When the worker is told to stop (SIGTERM or SIGINT, or `--max-leases` reached), it kills the
//! running sandbox, waits for it to end, and sends one last `UpdateBotSession` with the
//! session's status `BOT_TERMINATING` and every lease it holds `COMPLETED`: one that finished
//! with its result, the others with status `UNAVAILABLE`, which BuildGrid requeues at once for
//! another bot (see `leave` for where in BuildGrid's scheduler). Then it exits.

pub mod lease;
pub mod stage;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use refine_sandbox::Sandbox;

use crate::cas::Cas;
use crate::endpoint::Endpoint;
use crate::error::ReapiError;
use crate::proto::bots::{
    BotSession, BotStatus, BotsClient, CreateBotSessionRequest, Device, Lease, LeaseState,
    Property, UpdateBotSessionRequest, Worker,
};
use crate::proto::{self, rpc};
use lease::{LeaseContext, LeaseOutcome};
use stage::LocalCas;

/// How a worker runs.
pub struct WorkerOptions {
    /// The Bots service, and the CAS beside it.
    pub endpoint: Endpoint,
    /// The token, CA and client certificate the farm wants.
    pub credentials: crate::Credentials,
    /// The architecture offered (`s390x`, `x86_64`…).
    pub isa: String,
    pub bot_id: String,
    /// The local CAS cache.
    pub cache: PathBuf,
    /// Extra platform properties offered.
    pub properties: Vec<(String, String)>,
    /// Set (from a signal handler's thread) to stop.
    pub stop: Arc<AtomicBool>,
    pub sandbox: Sandbox,
    /// Stop after this many leases (tests and benches).
    pub max_leases: Option<usize>,
}

/// What the worker did.
#[derive(Debug, Default)]
pub struct WorkerReport {
    pub leases: usize,
    pub failed: usize,
}

/// How long an idle `UpdateBotSession` may be held by the server.
const IDLE_POLL: Duration = Duration::from_secs(5);
/// How often a running lease is reported as alive.
const KEEPALIVE: Duration = Duration::from_secs(2);

/// Runs the worker until `stop` is set; `say` receives one line per event.
pub fn run(opts: &WorkerOptions, say: &(dyn Fn(&str) + Sync)) -> Result<WorkerReport, ReapiError> {
    if refine_sandbox::binfmt::is_foreign(&opts.isa) {
        refine_sandbox::binfmt::check(&opts.isa).map_err(|e| ReapiError::Unsupported {
            message: format!("This host cannot run `{}` programs: {e}", opts.isa),
        })?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ReapiError::Unsupported {
            message: format!("Cannot start the network runtime: {e}"),
        })?;
    let served = runtime.block_on(serve(opts, say));
    // A sandbox's waiter that outlived its lease must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(5));
    served
}

struct Current {
    lease: Lease,
    task: tokio::task::JoinHandle<Result<LeaseOutcome, ReapiError>>,
    kill: Arc<lease::Kill>,
    started: Instant,
}

async fn serve(
    opts: &WorkerOptions,
    say: &(dyn Fn(&str) + Sync),
) -> Result<WorkerReport, ReapiError> {
    let channel = opts.endpoint.channel_with(&opts.credentials)?;
    let cas = Arc::new(Cas::new(opts.endpoint.clone(), channel.clone()));
    let local = Arc::new(LocalCas::open(&opts.cache)?);
    let mut bots = BotsClient::new(channel.clone());
    let worker = worker_description(opts);
    let mut report = WorkerReport::default();
    let mut session = create_session(&mut bots, opts, &worker).await?;
    say(&format!(
        "worker `{}`: session `{}` for ISA={}",
        opts.bot_id, session.name, opts.isa
    ));
    let run = Runner {
        opts,
        cas: &cas,
        local: &local,
        channel: &channel,
        say,
    };
    let mut current: Option<Current> = None;
    // A lease that ended and is not yet acknowledged by the server.
    let mut finished: Option<Lease> = None;
    // Leases assigned that this worker will not run.
    let mut declined: Vec<String> = Vec::new();
    // A session can come with work: BuildGrid assigns a queued job to a bot as it creates the
    // session, and expects it in the bot's first update.
    for lease in std::mem::take(&mut session.leases) {
        offer(&lease, None, &mut current, &mut declined, &report, &run);
    }
    let mut failures = 0u32;
    loop {
        if opts.stop.load(Ordering::SeqCst) {
            let leaving = Leaving {
                finished: finished.take(),
                current: current.take(),
                declined: std::mem::take(&mut declined),
            };
            leave(&mut bots, &session, &worker, leaving, say).await;
            return Ok(report);
        }
        if let Some(mut c) = current.take() {
            let done = tokio::select! {
                r = &mut c.task => Some(r),
                _ = tokio::time::sleep(KEEPALIVE) => None,
                _ = stopped(&opts.stop) => None,
            };
            match done {
                None => current = Some(c),
                Some(joined) => {
                    let ended = joined.unwrap_or_else(|e| {
                        Err(ReapiError::Unsupported {
                            message: format!("The lease's task stopped: {e}"),
                        })
                    });
                    report.leases += 1;
                    let (lease, line) = completed(&c.lease.id, c.started, ended);
                    if lease.status.as_ref().is_some_and(|s| s.code != 0) {
                        report.failed += 1;
                    }
                    say(&line);
                    finished = Some(lease);
                    if opts.max_leases.is_some_and(|m| report.leases >= m) {
                        // The last lease is reported as the worker leaves, so that no new one
                        // is assigned to it meanwhile.
                        opts.stop.store(true, Ordering::SeqCst);
                    }
                }
            }
            if opts.stop.load(Ordering::SeqCst) {
                continue;
            }
        }
        let mut leases: Vec<Lease> = finished.iter().cloned().collect();
        if let Some(c) = &current {
            leases.push(c.lease.clone());
        }
        let deadline = if current.is_some() || finished.is_some() {
            Duration::from_secs(1)
        } else {
            IDLE_POLL
        };
        let update = UpdateBotSessionRequest {
            name: session.name.clone(),
            bot_session: Some(BotSession {
                leases,
                status: BotStatus::Ok as i32,
                worker: Some(worker.clone()),
                ..session.clone()
            }),
            update_mask: None,
        };
        // A stop abandons the call (an idle one is held up to `IDLE_POLL`); what it reported
        // is reported again as the worker leaves, and what it may have assigned comes back
        // in that reply.
        let answer = tokio::select! {
            r = bots.update_bot_session(update, deadline) => Some(r),
            _ = stopped(&opts.stop) => None,
        };
        let Some(answer) = answer else { continue };
        let reply = match answer {
            Ok(r) => {
                failures = 0;
                r
            }
            Err(status) if status.code() == tonic::Code::DeadlineExceeded => continue,
            Err(status) => {
                failures += 1;
                say(&format!(
                    "worker: `UpdateBotSession` failed ({status}); retrying"
                ));
                tokio::time::sleep(Duration::from_millis(500 * u64::from(failures.min(10)))).await;
                // The server forgot the session (reaped, or restarted without it) or closed it
                // (`DATA_LOSS`): a new one; whatever ran is lost to it.
                if matches!(
                    status.code(),
                    tonic::Code::NotFound | tonic::Code::InvalidArgument | tonic::Code::DataLoss
                ) && let Ok(s) = create_session(&mut bots, opts, &worker).await
                {
                    session = s;
                    if let Some(c) = current.take() {
                        cancel(&c);
                    }
                    finished = None;
                    for lease in std::mem::take(&mut session.leases) {
                        offer(&lease, None, &mut current, &mut declined, &report, &run);
                    }
                }
                continue;
            }
        };
        let reported = finished.take().map(|l| l.id);
        // A running lease the reply no longer holds (or holds as cancelled) was cancelled.
        if let Some(c) = &current {
            let kept = reply
                .leases
                .iter()
                .any(|l| l.id == c.lease.id && l.state != LeaseState::Cancelled as i32);
            if !kept && let Some(c) = current.take() {
                cancel(&c);
                say(&format!("lease `{}`: cancelled by the server", c.lease.id));
            }
        }
        for lease in &reply.leases {
            offer(
                lease,
                reported.as_deref(),
                &mut current,
                &mut declined,
                &report,
                &run,
            );
        }
        // The next update echoes this reply's name and version.
        session = BotSession {
            leases: Vec::new(),
            ..reply
        };
        if opts.max_leases.is_some_and(|m| report.leases >= m) && current.is_none() {
            opts.stop.store(true, Ordering::SeqCst);
        }
    }
}

/// What starting a lease needs.
struct Runner<'a> {
    opts: &'a WorkerOptions,
    cas: &'a Arc<Cas>,
    local: &'a Arc<LocalCas>,
    channel: &'a crate::endpoint::AuthChannel,
    say: &'a (dyn Fn(&str) + Sync),
}

/// A lease the server assigned: started (as `current`) when the worker is idle, declined when
/// it is stopping or has run its `--max-leases`, ignored when it is not new (running,
/// reported, declined, or not pending or active).
fn offer(
    lease: &Lease,
    reported: Option<&str>,
    current: &mut Option<Current>,
    declined: &mut Vec<String>,
    report: &WorkerReport,
    run: &Runner<'_>,
) {
    let state = LeaseState::try_from(lease.state).unwrap_or(LeaseState::Unspecified);
    let new = matches!(state, LeaseState::Pending | LeaseState::Active)
        && current.is_none()
        && reported != Some(lease.id.as_str())
        && !declined.contains(&lease.id);
    if !new {
        return;
    }
    let opts = run.opts;
    if opts.max_leases.is_some_and(|m| report.leases >= m) || opts.stop.load(Ordering::SeqCst) {
        declined.push(lease.id.clone());
        return;
    }
    (run.say)(&format!("lease `{}`: accepted", lease.id));
    *current = Some(start(lease, opts, run.cas, run.local, run.channel));
}

/// Resolves once `stop` is set (by the signal handler's thread).
async fn stopped(stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a stopping worker still holds.
struct Leaving {
    /// A lease that ended, with its result, not yet acknowledged.
    finished: Option<Lease>,
    /// The lease running now: its sandbox is killed and the lease handed back.
    current: Option<Current>,
    /// Leases assigned that were never started.
    declined: Vec<String>,
}

/// How long a running lease's task may take to end once its sandbox is killed.
const KILL_GRACE: Duration = Duration::from_secs(10);
/// The deadline of each update a leaving worker sends.
const LEAVE_CALL: Duration = Duration::from_secs(10);

/// Leaves the farm: kills what runs, then reports, in one `UpdateBotSession` with the
/// session's status `BOT_TERMINATING`, the lease that finished (with its result) and every
/// lease not run as `COMPLETED` with status `UNAVAILABLE`.
///
/// BuildGrid 0.4.4 (`SQLScheduler.synchronize_bot_leases`, `buildgrid/server/scheduler/
/// impl.py`) first stores the bot's new status, then settles the completed leases
/// (`_synchronize_completed_leases`): a lease whose status is `UNAVAILABLE` or `INTERNAL`
/// (`RETRYABLE_STATUS_CODES`) goes back to the queue at once (`_retry_job`; it counts as one of
/// the job's `max-job-attempts`). Because the bot is no longer `OK`, neither that call
/// (`_fetch_job_for_bot`) nor the assigners (`_bot_healthy_clauses`) give the job back to this
/// bot, so another worker runs it. A lease the server assigned meanwhile (a long poll the stop
/// abandoned) comes back in the reply and is handed back the same way. The session itself,
/// holding nothing, is reaped when its keepalive runs out.
async fn leave(
    bots: &mut BotsClient<crate::endpoint::AuthChannel>,
    session: &BotSession,
    worker: &Worker,
    leaving: Leaving,
    say: &(dyn Fn(&str) + Sync),
) {
    let mut leases: Vec<Lease> = leaving.finished.into_iter().collect();
    if let Some(c) = leaving.current {
        let stopped_at = Instant::now();
        match kill_and_wait(&c.kill, c.task).await {
            // It ended on its own before the kill landed: its result is reported.
            Some(Ok(Ok(outcome))) => {
                let (lease, line) = completed(&c.lease.id, c.started, Ok(outcome));
                say(&line);
                leases.push(lease);
            }
            _ => {
                say(&format!(
                    "lease `{}`: the action was killed ({:.1} s after the stop); handing the lease back",
                    c.lease.id,
                    stopped_at.elapsed().as_secs_f64()
                ));
                leases.push(given_back(&c.lease.id));
            }
        }
    }
    leases.extend(leaving.declined.iter().map(|id| given_back(id)));
    let mut session = session.clone();
    let mut handed_back: Vec<String> = Vec::new();
    let done: Vec<String> = leases
        .iter()
        .filter(|l| {
            l.status
                .as_ref()
                .is_none_or(|s| s.code != tonic::Code::Unavailable as i32)
        })
        .map(|l| format!("`{}`", l.id))
        .collect();
    let mut failures = 0;
    // A few rounds: each reply may carry a lease assigned before the server saw the status.
    for _ in 0..8 {
        let ids: Vec<String> = leases
            .iter()
            .filter(|l| {
                l.status
                    .as_ref()
                    .is_some_and(|s| s.code == tonic::Code::Unavailable as i32)
            })
            .map(|l| l.id.clone())
            .collect();
        let update = UpdateBotSessionRequest {
            name: session.name.clone(),
            bot_session: Some(BotSession {
                status: BotStatus::BotTerminating as i32,
                worker: Some(worker.clone()),
                leases: leases.clone(),
                ..session.clone()
            }),
            update_mask: None,
        };
        match bots.update_bot_session(update, LEAVE_CALL).await {
            Ok(reply) => {
                handed_back.extend(ids);
                leases = reply
                    .leases
                    .iter()
                    .filter(|l| {
                        l.state == LeaseState::Active as i32
                            || l.state == LeaseState::Pending as i32
                    })
                    .map(|l| given_back(&l.id))
                    .collect();
                session = BotSession {
                    leases: Vec::new(),
                    ..reply
                };
                if leases.is_empty() {
                    break;
                }
            }
            // The session is gone (reaped): the server requeued its leases itself.
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::NotFound | tonic::Code::InvalidArgument
                ) =>
            {
                say(&format!(
                    "worker: the farm no longer knows session `{}` ({}); its leases were requeued when it was closed",
                    session.name,
                    status.message()
                ));
                return;
            }
            Err(status) => {
                failures += 1;
                if failures >= 3 {
                    say(&format!(
                        "worker: cannot tell the farm it stops ({status}); the leases held go back to the queue when session `{}` expires",
                        session.name
                    ));
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    let mut line = format!("worker: session `{}` ends (BOT_TERMINATING)", session.name);
    if !done.is_empty() {
        line.push_str(&format!("; lease(s) {} reported done", done.join(", ")));
    }
    if handed_back.is_empty() {
        line.push_str("; no lease to hand back");
    } else {
        line.push_str(&format!(
            "; lease(s) {} handed back to the farm's queue (UNAVAILABLE)",
            handed_back
                .iter()
                .map(|id| format!("`{id}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    say(&line);
}

/// Kills a lease's sandbox (or stops its staging) and waits for its task, up to
/// [`KILL_GRACE`], so that its folder is gone; `None` if it had to be abandoned.
///
/// The task is not aborted first: an abort lands at the task's next await, which may be the
/// wait for a sandbox that started meanwhile, and would remove the folder under a sandbox
/// still tearing down (what it then writes keeps the folder). The task sees the kill itself.
async fn kill_and_wait(
    kill: &lease::Kill,
    mut task: tokio::task::JoinHandle<Result<LeaseOutcome, ReapiError>>,
) -> Option<Result<Result<LeaseOutcome, ReapiError>, tokio::task::JoinError>> {
    kill.kill();
    match tokio::time::timeout(KILL_GRACE, &mut task).await {
        Ok(joined) => Some(joined),
        Err(_) => {
            task.abort();
            None
        }
    }
}

fn worker_description(opts: &WorkerOptions) -> Worker {
    let mut props = vec![
        Property {
            key: "OSFamily".into(),
            value: "linux".into(),
        },
        Property {
            key: "ISA".into(),
            value: opts.isa.clone(),
        },
    ];
    props.extend(opts.properties.iter().map(|(k, v)| Property {
        key: k.clone(),
        value: v.clone(),
    }));
    Worker {
        devices: vec![Device {
            handle: opts.bot_id.clone(),
            properties: props.clone(),
        }],
        properties: props,
        configs: Vec::new(),
    }
}

/// The deadline of `CreateBotSession`. BuildGrid holds a creation like an idle update, for
/// 80 % of the shorter of the call's deadline and the farm's keepalive (up to 4 minutes
/// without a deadline), but not at all when that is under 3 s (`NETWORK_TIMEOUT`): so the
/// session comes back at once, without leases, and work arrives through the updates.
const CREATE_CALL: Duration = Duration::from_secs(3);

/// Creates the bot's session. Creating one under a `bot_id` the farm knows closes the old
/// session and requeues its leases (BuildGrid's `add_bot_entry`): a worker restarted under the
/// same `--name` gives back at once what its previous run held.
async fn create_session(
    bots: &mut BotsClient<crate::endpoint::AuthChannel>,
    opts: &WorkerOptions,
    worker: &Worker,
) -> Result<BotSession, ReapiError> {
    let mut tries = 0;
    loop {
        let created = bots
            .create_bot_session(
                CreateBotSessionRequest {
                    parent: opts.endpoint.instance.clone(),
                    bot_session: Some(BotSession {
                        bot_id: opts.bot_id.clone(),
                        status: BotStatus::Ok as i32,
                        worker: Some(worker.clone()),
                        ..BotSession::default()
                    }),
                },
                CREATE_CALL,
            )
            .await;
        match created {
            // A busy server: again (a session it did create is closed by the next one).
            Err(status)
                if tries < 5
                    && matches!(
                        status.code(),
                        tonic::Code::DeadlineExceeded | tonic::Code::Unavailable
                    ) =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500 * tries)).await;
            }
            other => return other.map_err(ReapiError::call(&opts.endpoint, "CreateBotSession")),
        }
    }
}

fn start(
    lease: &Lease,
    opts: &WorkerOptions,
    cas: &Arc<Cas>,
    local: &Arc<LocalCas>,
    channel: &crate::endpoint::AuthChannel,
) -> Current {
    let kill: Arc<lease::Kill> = Arc::default();
    let payload = lease.payload.clone().unwrap_or_default();
    let (cas, local, channel) = (cas.clone(), local.clone(), channel.clone());
    let (endpoint, sandbox, bot_id, isa) = (
        opts.endpoint.clone(),
        opts.sandbox.clone(),
        opts.bot_id.clone(),
        opts.isa.clone(),
    );
    let slot = kill.clone();
    let task = tokio::spawn(async move {
        let payload = lease::action_of(&payload)?;
        let ctx = LeaseContext {
            cas: &cas,
            local: &local,
            channel: &channel,
            endpoint: &endpoint,
            sandbox: &sandbox,
            bot_id: &bot_id,
            isa: &isa,
        };
        lease::run(&ctx, payload, &slot).await
    });
    Current {
        lease: Lease {
            id: lease.id.clone(),
            state: LeaseState::Active as i32,
            ..Lease::default()
        },
        task,
        kill,
        started: Instant::now(),
    }
}

/// A lease handed back unrun: `UNAVAILABLE`, so that the farm gives it to another bot.
fn given_back(id: &str) -> Lease {
    Lease {
        id: id.to_string(),
        state: LeaseState::Completed as i32,
        status: Some(rpc::Status {
            code: tonic::Code::Unavailable as i32,
            message: "the worker stopped; run it elsewhere".into(),
            details: Vec::new(),
        }),
        ..Lease::default()
    }
}

/// Stops a lease the server cancelled: its sandbox is killed, or its staging stopped, and its
/// task then ends by itself and removes its folder.
fn cancel(c: &Current) {
    c.kill.kill();
}

/// The lease to report for a finished task, and a line for the log.
fn completed(
    id: &str,
    started: Instant,
    ended: Result<LeaseOutcome, ReapiError>,
) -> (Lease, String) {
    let seconds = started.elapsed().as_secs_f64();
    let mut lease = Lease {
        id: id.to_string(),
        state: LeaseState::Completed as i32,
        ..Lease::default()
    };
    match ended {
        Ok(o) => {
            let line = format!(
                "lease `{id}`: exit {} in {seconds:.2} s (staged {} files, fetched {} blobs, {} bytes; bound {} trees, {} of them cached)",
                o.result.exit_code,
                o.staged.files,
                o.staged.fetched,
                o.staged.fetched_bytes,
                o.staged.binds.len(),
                o.staged.reused_trees
            );
            let line = if o.tail.is_empty() {
                line
            } else {
                format!("{line}\n{}", o.tail)
            };
            lease.result = Some(proto::pack_any(proto::ACTION_RESULT, &o.result));
            lease.status = Some(rpc::Status {
                code: 0,
                message: String::new(),
                details: Vec::new(),
            });
            (lease, line)
        }
        Err(e) => {
            // BuildGrid requeues a job whose lease ends `INTERNAL` or `UNAVAILABLE` and ends it
            // with any other code: only a fault of this worker or of the network is worth
            // another worker's try.
            let code = match &e {
                // REAPI's way to say inputs are missing: the client sends them again.
                ReapiError::MissingBlobs { .. } => tonic::Code::FailedPrecondition,
                _ if e.code() == Some(tonic::Code::NotFound) => tonic::Code::FailedPrecondition,
                _ if e.code() == Some(tonic::Code::Unavailable) => tonic::Code::Unavailable,
                ReapiError::CorruptBlob { .. } => tonic::Code::FailedPrecondition,
                ReapiError::Unsupported { .. } | ReapiError::BadReply { .. } => {
                    tonic::Code::InvalidArgument
                }
                _ => tonic::Code::Internal,
            };
            let message = e.to_string();
            let details = match &e {
                ReapiError::MissingBlobs { digests, .. } => {
                    vec![proto::missing_blobs_detail(digests)]
                }
                _ => Vec::new(),
            };
            lease.status = Some(rpc::Status {
                code: code as i32,
                message: message.clone(),
                details,
            });
            (lease, format!("lease `{id}`: failed: {message}"))
        }
    }
}
