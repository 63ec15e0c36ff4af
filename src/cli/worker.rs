//! `refine worker --bots URL`: a bot of the Remote Workers API that runs a farm's actions in
//! refine's namespace sandbox (docs/remote-execution.md, "refine's worker").

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use refine_engine::reapi::Endpoint;
use refine_engine::reapi::worker::{self, WorkerOptions};

use super::Failure;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  refine worker --bots reapi://127.0.0.1:50051/main
  refine worker --bots reapi://farm.example:443 --isa s390x --cache /var/cache/refine-worker

The worker runs each action chrooted into its input root, read-only except `/work`, `/tmp`
and `/out`. SIGTERM or Ctrl-C stops it within seconds: the running action is killed, its lease
is handed back (BuildGrid requeues it at once for another worker), the session says
BOT_TERMINATING, and the worker exits 0.")]
pub struct WorkerArgs {
    /// The farm's Bots service (and CAS): `reapi://HOST:PORT[/INSTANCE]`.
    #[arg(long, value_name = "URL")]
    pub bots: String,
    /// The architecture offered: the host's, or one that qemu-user runs here.
    #[arg(long, value_name = "ARCH")]
    pub isa: Option<String>,
    /// The local CAS cache [default: `$XDG_CACHE_HOME/refine/worker`].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// The bot's name [default: `<hostname>-<pid>`].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// An extra platform property offered, such as `pool=s390x` (repeatable).
    #[arg(long = "property", value_name = "NAME=VALUE")]
    pub properties: Vec<String>,
    /// The farm's bearer token, from FILE (else `REFINE_EXECUTOR_TOKEN`).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Trust the farm's certificate authority in FILE (PEM), besides the system's roots.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) for a farm that requires mutual TLS; needs `--tls-key`.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Stop after N leases.
    #[arg(long, value_name = "N", hide = true)]
    pub max_leases: Option<usize>,
}

pub fn run(args: WorkerArgs) -> Result<(), Failure> {
    let bad = |e: miette::Report| Failure::bad_input(e);
    let endpoint = Endpoint::parse(&args.bots).map_err(|e| bad(miette::Report::new(e)))?;
    let credentials = super::common::farm_credentials(
        args.token_file.as_deref(),
        args.tls_ca.as_deref(),
        args.tls_cert.as_deref().zip(args.tls_key.as_deref()),
    )?;
    let properties = args
        .properties
        .iter()
        .map(|p| super::common::platform_property(p, "--property"))
        .collect::<Result<Vec<_>, _>>()?;
    let hostname = fs_err::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let cache = match args.cache {
        Some(c) => c,
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from("/var/cache"))
            .join("refine/worker"),
    };
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(&stop)?;
    let opts = WorkerOptions {
        endpoint,
        credentials,
        isa: args
            .isa
            .unwrap_or_else(|| refine_sandbox::binfmt::host_arch().to_string()),
        bot_id: args
            .name
            .unwrap_or_else(|| format!("{}-{}", hostname.trim(), std::process::id())),
        cache,
        properties,
        stop,
        sandbox: refine_sandbox::Sandbox::new(),
        max_leases: args.max_leases,
    };
    let say = |line: &str| eprintln!("{line}");
    let report = worker::run(&opts, &say).map_err(|e| Failure::failed(miette::Report::new(e)))?;
    eprintln!(
        "worker `{}` stopped: {} lease(s), {} failed",
        opts.bot_id, report.leases, report.failed
    );
    Ok(())
}

fn stop_on_signals(stop: &Arc<AtomicBool>) -> Result<(), Failure> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| Failure::failed(miette::miette!("Cannot handle signals: {e}")))?;
    let stop = stop.clone();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            stop.store(true, Ordering::SeqCst);
        }
    });
    Ok(())
}
