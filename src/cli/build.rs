//! `refine build PATTERN...`: plan, then build in parallel; progress on a terminal, plain
//! lines otherwise, JSON events and a Chrome trace for those who need to see inside.

use std::path::PathBuf;

use refine_engine::exec::{BuildOptions, BuildReport, Cancel};
use refine_engine::ops;
use refine_engine::ops::build::Summary;
use refine_engine::session::{RemoteNeed, Session, SessionOptions, Targets};

use super::Failure;
use super::common::open_session;
use super::progress::Reporter;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  refine build //wheels:pyyaml-repaired-py311 --out wheels/
  refine build //wheels/... -j 4 --keep-going --events events.jsonl --profile trace.json

Exit codes: 0 everything built, 1 something failed (or Ctrl-C), 2 bad input.")]
pub struct BuildArgs {
    /// Target patterns, such as `//wheels:pyyaml-repaired-py311` or `//wheels/...`.
    #[arg(required = true)]
    pub patterns: Vec<String>,
    /// Actions to run at once [default: the number of cores].
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Keep each sandboxed action's folder in DIR, with a `replay.sh` that runs the action
    /// again by hand (same root, mounts, environment and command).
    #[arg(long, value_name = "DIR")]
    pub sandbox_debug: Option<PathBuf>,
    /// Compile jobs inside each action (`REFINE_JOBS`, `make -j`) [default: the number of cores].
    #[arg(long, value_name = "N", env = "REFINE_CORES")]
    pub cores: Option<usize>,
    /// Build everything that does not depend on a failed target.
    #[arg(short = 'k', long)]
    pub keep_going: bool,
    /// Copy the requested targets' artifacts into DIR (wheels as `.whl` files).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write one JSON object per event to FILE (see docs/events.md).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Write a Chrome trace of the build to FILE (open it in chrome://tracing or Perfetto).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Queue the build on a `refine serve` at URL and follow it here (see docs/api.md).
    #[arg(long, value_name = "URL", env = "REFINE_SERVER")]
    pub server: Option<String>,
    /// The server's bearer token, from FILE (else `REFINE_SERVE_TOKEN`).
    #[arg(long, value_name = "FILE", requires = "server")]
    pub token_file: Option<PathBuf>,
    /// Run the sandboxed actions on a Remote Execution API farm:
    /// `reapi://HOST:PORT[/INSTANCE]` (see docs/remote-execution.md), or `local` to run them
    /// here whatever `workspace.kdl`'s `store { executor … }` says. Never part of a key.
    #[arg(
        long,
        value_name = "URL",
        env = "REFINE_EXECUTOR",
        conflicts_with = "server"
    )]
    pub executor: Option<String>,
    /// The farm's bearer token, from FILE (else `REFINE_EXECUTOR_TOKEN`).
    #[arg(long, value_name = "FILE")]
    pub executor_token_file: Option<PathBuf>,
    /// Trust the farm's certificate authority in FILE (PEM), besides the system's roots.
    #[arg(long, value_name = "FILE", env = "REFINE_EXECUTOR_TLS_CA")]
    pub executor_tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) for a farm that requires mutual TLS; needs
    /// `--executor-tls-key`.
    #[arg(
        long,
        value_name = "FILE",
        env = "REFINE_EXECUTOR_TLS_CERT",
        requires = "executor_tls_key"
    )]
    pub executor_tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long,
        value_name = "FILE",
        env = "REFINE_EXECUTOR_TLS_KEY",
        requires = "executor_tls_cert"
    )]
    pub executor_tls_key: Option<PathBuf>,
    /// An extra platform property for every action, such as `container-image=docker://…`
    /// or `pool=s390x` (repeatable; replaces the workspace's property of the same name).
    #[arg(long = "executor-property", value_name = "NAME=VALUE")]
    pub executor_properties: Vec<String>,
    /// Give up on an action that no worker has taken after SECS, saying which platform is
    /// waiting [default: the workspace's `queue-timeout`, else 600].
    #[arg(long, value_name = "SECS")]
    pub executor_queue_timeout: Option<u64>,
    /// Run again every action the farm's action cache answers for, and compare: a worker whose
    /// outputs differ fails the target (nothing stored) naming both workers and the files.
    #[arg(long)]
    pub executor_verify: bool,
}

pub fn run(options: &SessionOptions, args: BuildArgs) -> Result<(), Failure> {
    if let Some(url) = &args.server {
        return super::build_remote::run(url, &args);
    }
    let targets = Targets::Patterns(&args.patterns);
    let session = open_session(options, targets, RemoteNeed::IfConfigured)?;
    let mut build_options = build_options(&args)?;
    build_options.executor = executor(&args, &session)?;
    build_options.keep_going |= ops::request::keep_going(&session);
    let cancel = build_options.cancel.clone();
    stop_on_signals(&cancel)?;
    let reporter = Reporter::new(args.events.as_deref())?;
    let report = ops::build::build(&session, build_options, &reporter)?;
    reporter.finish();
    if report.success() {
        share(&session, &report)?;
    }
    if let Some(path) = &args.profile {
        ops::profile::write_trace(path, session.graph(), &report)?;
    }
    if let Some(dir) = &args.out {
        for path in ops::export::export(&session, &report, dir)?.written {
            println!("{}", path.display());
        }
    }
    for p in ops::request::summary::summary(&session, &report) {
        eprintln!(
            "{} {} on {} (Python {}): {}",
            p.package, p.version, p.platform, p.python, p.outcome
        );
    }
    print_summary(&report.summary(session.graph()));
    if cancel.is_cancelled() {
        eprintln!("Interrupted: every sandbox was stopped; the store is consistent.");
        return Err(Failure::Exit(1));
    }
    let success = report.success();
    // What `--out` or the mirror pulled since `ops::build` synced reaches the indexes now,
    // since the store's own drop will not run: the process ends next, and freeing the graph
    // and the report node by node would only add to a no-op build's time.
    session.store().sync_index().map_err(ops::OpError::from)?;
    std::mem::forget(report);
    std::mem::forget(session);
    success.then_some(()).ok_or(Failure::Exit(1))
}

/// The executor's options from the arguments (the session adds its remote store).
fn build_options(args: &BuildArgs) -> Result<BuildOptions, Failure> {
    let mut opts = BuildOptions {
        keep_going: args.keep_going,
        ..Default::default()
    };
    if let Some(j) = args.jobs {
        if j == 0 {
            return Err(Failure::bad_input(miette::miette!(
                help = "Give `-j 1` or more",
                "`-j 0` runs nothing"
            )));
        }
        opts.jobs = j;
    }
    if let Some(c) = args.cores {
        if c == 0 {
            return Err(Failure::bad_input(miette::miette!(
                help = "Give `--cores 1` or more",
                "`--cores 0` gives every action no core to run on"
            )));
        }
        opts.cores = c;
    }
    if let Some(dir) = &args.sandbox_debug {
        // Absolute: replay.sh names the folders it mounts.
        let dir = std::path::absolute(dir).map_err(|e| {
            Failure::bad_input(miette::miette!("Cannot use `{}`: {e}", dir.display()))
        })?;
        opts.sandbox_debug = Some(dir);
    }
    Ok(opts)
}

/// The client of the farm `--executor` or the workspace's `store { executor … }` names, the
/// command line's settings over the workspace's; none when the actions run here.
fn executor(
    args: &BuildArgs,
    session: &Session,
) -> Result<Option<std::sync::Arc<refine_engine::reapi::Executor>>, Failure> {
    use refine_engine::reapi::{Endpoint, Executor};
    let configured = session.graph().workspace.config.store.executor.as_ref();
    let url = match args.executor.as_deref() {
        Some("local") => None,
        Some(url) => Some(url),
        None => configured.map(|c| c.url.as_str()),
    };
    let Some(url) = url else {
        let given = [
            (args.executor_token_file.is_some(), "--executor-token-file"),
            (args.executor_tls_ca.is_some(), "--executor-tls-ca"),
            (args.executor_tls_cert.is_some(), "--executor-tls-cert"),
            (!args.executor_properties.is_empty(), "--executor-property"),
            (
                args.executor_queue_timeout.is_some(),
                "--executor-queue-timeout",
            ),
            (args.executor_verify, "--executor-verify"),
        ];
        if let Some((_, flag)) = given.iter().find(|(given, _)| *given) {
            return Err(Failure::bad_input(miette::miette!(
                help = "Give `--executor reapi://HOST:PORT[/INSTANCE]`, or set `store { executor … }` in workspace.kdl",
                "`{flag}` needs a remote executor, and the actions run here"
            )));
        }
        return Ok(None);
    };
    let endpoint = Endpoint::parse(url).map_err(|e| Failure::bad_input(miette::Report::new(e)))?;
    let credentials = super::common::farm_credentials(
        args.executor_token_file.as_deref(),
        args.executor_tls_ca.as_deref(),
        args.executor_tls_cert
            .as_deref()
            .zip(args.executor_tls_key.as_deref()),
    )?;
    // The workspace's properties apply to its own farm only, not to one the command line names.
    let from_workspace = args.executor.is_none();
    let mut properties: Vec<(String, String)> = match configured {
        Some(c) if from_workspace => c.properties.clone(),
        _ => Vec::new(),
    };
    for p in &args.executor_properties {
        let (k, v) = super::common::platform_property(p, "--executor-property")?;
        properties.retain(|(name, _)| *name != k);
        properties.push((k, v));
    }
    let secs = args
        .executor_queue_timeout
        .or(configured
            .filter(|_| from_workspace)
            .and_then(|c| c.queue_timeout))
        .unwrap_or(600);
    if secs == 0 {
        return Err(Failure::bad_input(miette::miette!(
            help = "Give `--executor-queue-timeout 1` or more",
            "`--executor-queue-timeout 0` gives up on every action before a worker can take it"
        )));
    }
    let timeout = std::time::Duration::from_secs(secs);
    Executor::new(endpoint, &credentials, properties, timeout)
        .map(|e| Some(std::sync::Arc::new(e.verifying(args.executor_verify))))
        .map_err(|e| Failure::failed(miette::Report::new(e)))
}

/// Ctrl-C and SIGTERM stop the build: running sandboxes are killed, the store stays
/// consistent.
fn stop_on_signals(cancel: &Cancel) -> Result<(), Failure> {
    // A thread waits for the signals and cancels: that wakes the build loop at once.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| Failure::failed(miette::miette!("Cannot handle signals: {e}")))?;
    let cancel = cancel.clone();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            cancel.cancel();
        }
    });
    Ok(())
}

/// After a successful build: pushes what an earlier, interrupted build left unpushed, and
/// puts the wheels of `repair` artifacts into the mirror.
fn share(session: &Session, report: &BuildReport) -> Result<(), Failure> {
    let flushed = ops::push::flush_outbox(session)?;
    if let Some(e) = &flushed.skipped {
        eprintln!("warning: {e}");
    } else if flushed.pushed > 0 {
        eprintln!(
            "pushed {} artifact(s) an earlier push left unfinished",
            flushed.pushed
        );
    }
    let mut said = |m: &ops::mirror::Mirrored| {
        let file = m.wheel.file_name().unwrap_or_default().to_string_lossy();
        eprintln!("mirrored {file} to {}", m.mirror);
    };
    ops::mirror::publish_built(session, report, &mut said)?;
    ops::mirror::publish_reused(session, &mut said)?;
    Ok(())
}

/// The build's closing line: the last thing a build says, after what `--out` listed (each
/// path a line of its own on stdout), so that the two streams shown together read in order.
pub(super) fn print_summary(s: &Summary) {
    let path = if s.critical_path.is_empty() || s.critical_path_seconds == 0.0 {
        String::new()
    } else {
        format!(": {}", s.critical_path.join(" → "))
    };
    eprintln!(
        "{} built, {} cached, {} failed, {} skipped in {:.1} s; critical path {:.1} s{path}",
        s.built, s.cached, s.failed, s.skipped, s.seconds, s.critical_path_seconds,
    );
}
