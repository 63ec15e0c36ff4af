//! `refine worker`: a bot of the Remote Workers API (`google.devtools.remoteworkers.v1test2`,
//! which BuildGrid serves), for farms whose own workers cannot run refine's actions.
//!
//! One bot session, advertising `OSFamily=linux` and `ISA` (natively, or under qemu-user
//! through binfmt_misc) plus any extra properties; the session is kept with
//! `UpdateBotSession`, which long-polls for work while idle (the bot echoes the session's
//! `version` from each reply, or BuildGrid does not hold the call). One lease runs at a time
//! ([`lease`]). New leases arrive `ACTIVE` (BuildGrid never sends `PENDING`); a lease the
//! server cancels simply disappears from its reply, and its sandbox is killed. When the
//! worker is told to stop (SIGTERM), it kills what runs, tells the server it is terminating and
//! hands back no result, so the lease goes back to the queue.

pub mod lease;
pub mod stage;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use refine_sandbox::{Canceller, Sandbox};

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
    pub token: Option<String>,
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
    runtime.block_on(serve(opts, say))
}

struct Current {
    lease: Lease,
    task: tokio::task::JoinHandle<Result<LeaseOutcome, ReapiError>>,
    canceller: Arc<Mutex<Option<Canceller>>>,
    started: Instant,
}

async fn serve(
    opts: &WorkerOptions,
    say: &(dyn Fn(&str) + Sync),
) -> Result<WorkerReport, ReapiError> {
    let channel = opts.endpoint.channel(opts.token.as_deref())?;
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
    let mut current: Option<Current> = None;
    let mut finished: Option<Lease> = None;
    // Leases assigned that this worker will not run.
    let mut declined: Vec<String> = Vec::new();
    let mut failures = 0u32;
    loop {
        if opts.stop.load(Ordering::SeqCst) {
            // Every lease held goes back: ended `UNAVAILABLE`, which BuildGrid requeues for
            // another bot (a session that merely ends keeps its leases until it expires).
            if let Some(c) = current.take() {
                cancel(&c);
                let _ = c.task.await;
                say(&format!(
                    "lease `{}`: given back (the worker stops)",
                    c.lease.id
                ));
                declined.push(c.lease.id.clone());
            }
            // The leases first, from a healthy bot (BuildGrid settles completed leases then),
            // then the goodbye.
            let mut last = session.clone();
            if !declined.is_empty() {
                let back = BotSession {
                    status: BotStatus::Ok as i32,
                    leases: declined.iter().map(|id| given_back(id)).collect(),
                    ..session.clone()
                };
                if let Ok(reply) = bots
                    .update_bot_session(
                        UpdateBotSessionRequest {
                            name: session.name.clone(),
                            bot_session: Some(back),
                            update_mask: None,
                        },
                        Duration::from_secs(1),
                    )
                    .await
                {
                    last = BotSession {
                        leases: Vec::new(),
                        ..reply
                    };
                }
            }
            let bye = BotSession {
                status: BotStatus::BotTerminating as i32,
                leases: Vec::new(),
                ..last
            };
            let _ = bots
                .update_bot_session(
                    UpdateBotSessionRequest {
                        name: session.name.clone(),
                        bot_session: Some(bye),
                        update_mask: None,
                    },
                    Duration::from_secs(1),
                )
                .await;
            return Ok(report);
        }
        if let Some(mut c) = current.take() {
            let done = tokio::select! {
                r = &mut c.task => Some(r),
                _ = tokio::time::sleep(KEEPALIVE) => None,
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
                    let (lease, line) = completed(&c, ended);
                    if lease.status.as_ref().is_some_and(|s| s.code != 0) {
                        report.failed += 1;
                    }
                    say(&line);
                    finished = Some(lease);
                }
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
        let reply = match bots.update_bot_session(update, deadline).await {
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
            let state = LeaseState::try_from(lease.state).unwrap_or(LeaseState::Unspecified);
            let new = matches!(state, LeaseState::Pending | LeaseState::Active)
                && current.is_none()
                && reported.as_deref() != Some(lease.id.as_str())
                && !declined.contains(&lease.id);
            if !new {
                continue;
            }
            if opts.max_leases.is_some_and(|m| report.leases >= m)
                || opts.stop.load(Ordering::SeqCst)
            {
                declined.push(lease.id.clone());
                continue;
            }
            current = Some(start(lease, opts, &cas, &local, &channel));
            say(&format!("lease `{}`: accepted", lease.id));
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

async fn create_session(
    bots: &mut BotsClient<crate::endpoint::AuthChannel>,
    opts: &WorkerOptions,
    worker: &Worker,
) -> Result<BotSession, ReapiError> {
    bots.create_bot_session(CreateBotSessionRequest {
        parent: opts.endpoint.instance.clone(),
        bot_session: Some(BotSession {
            bot_id: opts.bot_id.clone(),
            status: BotStatus::Ok as i32,
            worker: Some(worker.clone()),
            ..BotSession::default()
        }),
    })
    .await
    .map_err(ReapiError::call(&opts.endpoint, "CreateBotSession"))
}

fn start(
    lease: &Lease,
    opts: &WorkerOptions,
    cas: &Arc<Cas>,
    local: &Arc<LocalCas>,
    channel: &crate::endpoint::AuthChannel,
) -> Current {
    let canceller: Arc<Mutex<Option<Canceller>>> = Arc::default();
    let payload = lease.payload.clone().unwrap_or_default();
    let (cas, local, channel) = (cas.clone(), local.clone(), channel.clone());
    let (endpoint, sandbox, bot_id, isa) = (
        opts.endpoint.clone(),
        opts.sandbox.clone(),
        opts.bot_id.clone(),
        opts.isa.clone(),
    );
    let slot = canceller.clone();
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
        lease::run(&ctx, payload, move |c| {
            *slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(c);
        })
        .await
    });
    Current {
        lease: Lease {
            id: lease.id.clone(),
            state: LeaseState::Active as i32,
            ..Lease::default()
        },
        task,
        canceller,
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

fn cancel(c: &Current) {
    if let Some(k) = c
        .canceller
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
    {
        k.cancel();
    }
    c.task.abort();
}

/// The lease to report for a finished task, and a line for the log.
fn completed(c: &Current, ended: Result<LeaseOutcome, ReapiError>) -> (Lease, String) {
    let seconds = c.started.elapsed().as_secs_f64();
    let mut lease = Lease {
        id: c.lease.id.clone(),
        state: LeaseState::Completed as i32,
        ..Lease::default()
    };
    match ended {
        Ok(o) => {
            let line = format!(
                "lease `{}`: exit {} in {seconds:.2} s (staged {} files, fetched {} blobs, {} bytes)",
                c.lease.id,
                o.result.exit_code,
                o.staged.files,
                o.staged.fetched,
                o.staged.fetched_bytes
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
                ReapiError::Call { status, .. } if status.code() == tonic::Code::NotFound => {
                    tonic::Code::FailedPrecondition
                }
                ReapiError::Call { status, .. } if status.code() == tonic::Code::Unavailable => {
                    tonic::Code::Unavailable
                }
                ReapiError::CorruptBlob { .. } => tonic::Code::FailedPrecondition,
                ReapiError::Unsupported { .. } | ReapiError::BadReply { .. } => {
                    tonic::Code::InvalidArgument
                }
                _ => tonic::Code::Internal,
            };
            let message = e.to_string();
            lease.status = Some(rpc::Status {
                code: code as i32,
                message: message.clone(),
                details: Vec::new(),
            });
            (lease, format!("lease `{}`: failed: {message}", c.lease.id))
        }
    }
}
