//! `refine sandbox run`: the namespace sandbox, by hand.
//!
//! Exit code: the action's own exit code; 128+N when a signal N killed it; 124 when the
//! timeout fired; 125 when refine could not run it (bad arguments, a missing root, no
//! namespaces, no emulator); 126 when the program exists but cannot be executed; 127 when it
//! does not exist. Mistakes in the arguments exit with 2 before anything runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use refine_sandbox::{Bind, Outcome, SandboxError, Spec, Termination, Writable};

use super::Failure;

/// The sandbox's own failures, kept apart from the codes an action returns (as `env`,
/// `timeout` and container runtimes do).
const EXIT_TIMEOUT: u8 = 124;
const EXIT_SANDBOX: u8 = 125;
const EXIT_CANNOT_EXECUTE: u8 = 126;
const EXIT_NOT_FOUND: u8 = 127;

#[derive(clap::Args, Debug)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub command: SandboxCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum SandboxCommand {
    /// Run a command in a fresh sandbox: new user, mount, PID, network, IPC and UTS namespaces.
    ///
    /// Exit code: the command's; 128+N if signal N killed it; 124 on timeout; 125 if the
    /// sandbox could not be set up; 126 if the command cannot be executed; 127 if not found;
    /// 2 for bad arguments, before anything runs.
    Run(Box<RunArgs>),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The directory that becomes `/`, read-only (default: the host's `/`, read-only).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Mount a host path into the sandbox, read-write unless `:ro` is given.
    #[arg(long = "bind", value_name = "SRC:DST[:ro]")]
    pub binds: Vec<String>,
    /// Set a variable of the command's environment, which holds nothing else.
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Run programs of this architecture (such as `s390x`) through qemu-user.
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Kill the whole process tree after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// A host directory to mount at `/work` (default: a fresh tmpfs). Under root it is handed
    /// to the sandbox's unprivileged build user (uid 65534).
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// A host directory to mount at `/out` (default: a fresh tmpfs). Under root it is handed
    /// to the sandbox's unprivileged build user (uid 65534).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The working directory inside the sandbox.
    #[arg(long, value_name = "DIR", default_value = "/work")]
    pub cwd: PathBuf,
    /// Also write the command's stdout and stderr to this file.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Limit the address space of each process, in bytes.
    #[arg(long, value_name = "BYTES")]
    pub memory: Option<u64>,
    /// Limit the number of processes of the sandbox (default 4096).
    #[arg(long, value_name = "N")]
    pub processes: Option<u64>,
    /// Limit the open files of each process (default 65536, or the host's hard limit).
    #[arg(long, value_name = "N")]
    pub open_files: Option<u64>,
    /// The command and its arguments, after `--`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

pub fn run(args: SandboxArgs) -> Result<(), Failure> {
    match args.command {
        SandboxCommand::Run(args) => run_command(*args),
    }
}

fn run_command(args: RunArgs) -> Result<(), Failure> {
    // Mistakes in the arguments are usage errors (2), like those clap reports, found before
    // anything runs.
    let spec = spec_of(args).map_err(|err| match err {
        SandboxError::InvalidSpec { .. } => Failure::bad_input(err),
        err => sandbox_failure(err),
    })?;
    // Without other threads this process can be the helper itself: one exec fewer.
    let result = if refine_sandbox::single_threaded() {
        refine_sandbox::run_in_this_process(&spec)
    } else {
        refine_sandbox::run(&spec)
    };
    match result {
        Ok(outcome) => exit_for(&outcome, spec.timeout),
        Err(err) => Err(sandbox_failure(err)),
    }
}

fn exit_for(outcome: &Outcome, timeout: Option<Duration>) -> Result<(), Failure> {
    if outcome.timed_out {
        eprintln!(
            "refine: the command timed out after {:.3} s; its whole process tree was killed",
            timeout.unwrap_or_default().as_secs_f64()
        );
        return Err(Failure::Exit(EXIT_TIMEOUT));
    }
    match outcome.termination {
        Termination::Exited(0) => Ok(()),
        Termination::Exited(code) => Err(Failure::Exit(u8::try_from(code).unwrap_or(u8::MAX))),
        Termination::Signaled(signal) => {
            eprintln!("refine: the command was {}", outcome.termination);
            Err(Failure::Exit(
                128u8.saturating_add(u8::try_from(signal).unwrap_or(127)),
            ))
        }
    }
}

fn sandbox_failure(err: SandboxError) -> Failure {
    let code = match err {
        SandboxError::CommandNotFound { .. } => EXIT_NOT_FOUND,
        SandboxError::Exec { .. } => EXIT_CANNOT_EXECUTE,
        _ => EXIT_SANDBOX,
    };
    eprintln!("{:?}", miette::Report::new(err));
    Failure::Exit(code)
}

fn spec_of(args: RunArgs) -> Result<Spec, SandboxError> {
    let invalid = |message: String| SandboxError::InvalidSpec { message };
    let mut spec = Spec::new(absolute(&args.root)?, args.command);
    for text in &args.binds {
        let mut bind = Bind::parse(text)?;
        bind.source = absolute(&bind.source)?;
        spec.binds.push(bind);
    }
    for text in &args.env {
        let Some((key, value)) = text.split_once('=') else {
            return Err(invalid(format!("`--env {text}` is not of the form `K=V`")));
        };
        spec.env.push((key.to_owned(), value.to_owned()));
    }
    spec.arch = args.arch;
    spec.timeout = match args.timeout {
        None => None,
        Some(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => {
            Some(Duration::from_secs_f64(secs))
        }
        Some(secs) => {
            return Err(invalid(format!(
                "`--timeout {secs}` must be a positive number of seconds"
            )));
        }
    };
    if let Some(work) = &args.work {
        spec.work = Writable::Host(absolute(work)?);
    }
    if let Some(out) = &args.out {
        spec.out = Writable::Host(absolute(out)?);
    }
    spec.cwd = args.cwd;
    spec.log = args.log.as_deref().map(absolute).transpose()?;
    if args.memory.is_some() {
        spec.limits.memory = args.memory;
    }
    if args.processes.is_some() {
        spec.limits.processes = args.processes;
    }
    if args.open_files.is_some() {
        spec.limits.open_files = args.open_files;
    }
    spec.echo = true;
    spec.validate()?;
    Ok(spec)
}

fn absolute(path: &Path) -> Result<PathBuf, SandboxError> {
    std::path::absolute(path).map_err(|err| SandboxError::InvalidSpec {
        message: format!("Cannot make `{}` absolute: {err}", path.display()),
    })
}
