//! Argument parsing and dispatch; each subcommand lives in its own module.

mod build;
mod build_remote;
mod common;
mod doctor;
mod explain;
mod fetch;
mod fmt;
mod graph;
mod key;
mod lock;
mod mirror;
mod plan;
mod progress;
mod provenance;
mod pull;
mod push;
mod query;
mod request;
mod sandbox;
mod serve;
mod store;
mod verify;
mod wheel;
mod worker;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub use common::{Failure, report};

/// refine: a declarative build-graph engine, and a wheel refinery for IBM Z (s390x).
///
/// Rules live in KDL files under a workspace (the folder holding `workspace.kdl`); refine
/// finds it by walking up from the current folder. Targets are named by labels such as
/// `//wheels:numpy-py312`, and by patterns: `//wheels:all`, `//wheels/...`, `//...`.
#[derive(Parser, Debug)]
#[command(
    name = "refine",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Run as if refine was started in DIR.
    #[arg(short = 'C', long = "directory", global = true, value_name = "DIR")]
    pub directory: Option<std::path::PathBuf>,

    /// Use the local store in DIR [default: `$XDG_CACHE_HOME/refine`, else
    /// `~/.cache/refine`].
    #[arg(long, global = true, env = "REFINE_STORE", value_name = "DIR")]
    pub store: Option<std::path::PathBuf>,

    /// Use the remote store at URL (`oci://HOST:PORT/PREFIX`) behind the local one [default:
    /// `store { remote … }` in workspace.kdl].
    #[arg(long, global = true, env = "REFINE_REMOTE", value_name = "URL")]
    pub remote: Option<String>,

    /// If the remote store does not answer, warn and carry on from the local store.
    #[arg(long, global = true)]
    pub remote_optional: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Query the target graph: `deps(X)`, `rdeps(U, X)`, `kind(K, X)`, `+`, `-`, `^`.
    Query(query::QueryArgs),
    /// Print the graph of the targets a pattern matches, in Graphviz DOT.
    Graph(graph::GraphArgs),
    /// Format rule files canonically, keeping comments.
    Fmt(fmt::FmtArgs),
    /// Pin the exact Debian packages of bootstrapped bases and toolchains in `rules/<pkg>.lock`; `--check` them.
    Lock(lock::LockArgs),
    /// Build requests: `new` writes one from a requirements file, `lock` resolves it.
    Request(request::RequestArgs),
    /// Build targets: plan, then run every action whose key is not in a store.
    Build(Box<build::BuildArgs>),
    /// Show each target's status (cached, build, pending), key and artifact digest.
    Plan(plan::PlanArgs),
    /// Explain why a target is not cached: its key fields against the last build.
    Explain(explain::ExplainArgs),
    /// Serve plans, a build queue, artifacts, events, a web view and metrics over HTTP.
    Serve(serve::ServeArgs),
    /// Run a farm's actions here: a bot of the Remote Workers API (BuildGrid).
    Worker(worker::WorkerArgs),
    /// Run a command in the namespace sandbox, by hand.
    Sandbox(sandbox::SandboxArgs),
    /// Bring sources into the local store: `--import FILE` seeds it by hand, offline.
    Fetch(fetch::FetchArgs),
    /// Push the artifacts of targets (and their dependencies) from the local store to the remote.
    Push(push::PushArgs),
    /// Pull the artifacts of targets (and their dependencies) from the remote store.
    Pull(pull::PullArgs),
    /// Print an artifact's provenance: an in-toto statement with the SLSA provenance v1 predicate.
    Provenance(provenance::ProvenanceArgs),
    /// Check who signed the artifacts of targets, locally and in the remote store.
    Verify(verify::VerifyArgs),
    /// Signing keys: `generate NAME` writes a key pair for signing artifacts.
    Key(key::KeyArgs),
    /// Put wheel files into the S3 wheel mirror (`store { mirror … }`) and update its index.
    Mirror(mirror::MirrorArgs),
    /// Look after the local store: `verify`, `gc`, `path`, `hash`.
    Store(store::StoreArgs),
    /// Inspect wheel files: `scan` judges a wheel against the manylinux policies.
    Wheel(wheel::WheelArgs),
    /// Report what this host can do: kernel, namespaces, binfmt registrations, qemu.
    Doctor(doctor::DoctorArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// Plain, uncoloured diagnostics when stderr is not a terminal or `NO_COLOR` is set, so
/// that logs and CI output stay readable.
fn install_report_hook() {
    use std::io::IsTerminal;
    let plain = std::env::var_os("NO_COLOR").is_some() || !std::io::stderr().is_terminal();
    let _ = miette::set_hook(Box::new(move |_| {
        let opts = miette::MietteHandlerOpts::new()
            .terminal_links(false)
            .width(100);
        let opts = if plain {
            opts.color(false).unicode(true)
        } else {
            opts
        };
        Box::new(opts.build())
    }));
}

pub fn main() -> ExitCode {
    install_report_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let options = refine_engine::session::SessionOptions {
        directory: cli.directory,
        store: cli.store,
        remote: cli.remote,
        remote_optional: cli.remote_optional,
    };
    let result = match cli.command {
        Command::Query(args) => query::run(&options, args),
        Command::Graph(args) => graph::run(&options, args),
        Command::Plan(args) => plan::run(&options, args),
        Command::Explain(args) => explain::run(&options, args),
        Command::Build(args) => build::run(&options, *args),
        Command::Lock(args) => lock::run(&options, args),
        Command::Request(args) => request::run(&options, args),
        Command::Push(args) => push::run(&options, args),
        Command::Pull(args) => pull::run(&options, args),
        Command::Provenance(args) => provenance::run(&options, args),
        Command::Mirror(args) => mirror::run(&options, args),
        Command::Fmt(args) => fmt::run(options.directory.as_deref(), args),
        Command::Sandbox(args) => sandbox::run(args),
        Command::Serve(args) => serve::run(&options, args),
        Command::Worker(args) => worker::run(args),
        Command::Fetch(args) => fetch::run(&options, args),
        Command::Store(args) => store::run(&options, args),
        Command::Doctor(args) => doctor::run(&options, args),
        Command::Key(args) => key::run(args),
        Command::Verify(args) => verify::run(&options, args),
        Command::Wheel(args) => wheel::run(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "refine", &mut std::io::stdout());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(failure),
    }
}
