//! `refine build --server URL PATTERN...`: the build runs on a `refine serve`; this end queues
//! it and shows its events as a local build does (the same progress, `--events` file and
//! closing line). Ctrl-C cancels it on the server.

use refine_serve::Token;
use refine_serve::client::{Client, ClientError, Ended};

use super::Failure;
use super::build::BuildArgs;
use super::progress::Reporter;
use refine_engine::exec::{Event, Observer};

pub fn run(url: &str, args: &BuildArgs) -> Result<(), Failure> {
    refuse_local_options(args)?;
    let client = Client::new(url, token(args)?).map_err(failure)?;
    let queued = client
        .queue(&args.patterns, args.keep_going, args.jobs)
        .map_err(failure)?;
    eprintln!("queued build {} on {url}", queued.id);
    cancel_on_signals(url, token(args)?, queued.id)?;
    let reporter = Reporter::new(args.events.as_deref())?;
    let mut summary = None;
    let ended = client
        .follow(queued.id, &mut |event| {
            if let Event::BuildFinish { summary: s, .. } = event {
                summary = Some(s.clone());
            }
            reporter.event(event);
        })
        .map_err(failure)?;
    reporter.finish();
    if let Some(s) = &summary {
        super::build::print_summary(s);
    }
    finish(queued.id, &ended)
}

fn finish(id: i64, ended: &Ended) -> Result<(), Failure> {
    if let Some(error) = &ended.error {
        eprintln!("Build {id} on the server: {error}");
    }
    match ended.state.as_str() {
        "succeeded" => Ok(()),
        "cancelled" | "interrupted" => {
            eprintln!(
                "Build {id} was {}: the server stopped its sandboxes; its store is consistent.",
                ended.state
            );
            Err(Failure::Exit(1))
        }
        _ => Err(Failure::Exit(1)),
    }
}

/// Options that act on this machine's store or sandbox have no meaning for a build elsewhere.
fn refuse_local_options(args: &BuildArgs) -> Result<(), Failure> {
    let local = [
        ("--out", args.out.is_some()),
        ("--profile", args.profile.is_some()),
        ("--sandbox-debug", args.sandbox_debug.is_some()),
        ("--cores", args.cores.is_some()),
    ];
    if let Some((flag, _)) = local.iter().find(|(_, given)| *given) {
        return Err(Failure::bad_input(miette::miette!(
            help = "Leave it out, or build here without `--server`; fetch the artifacts with `refine pull` once the build has pushed them",
            "`{flag}` works on this machine's store and sandboxes, not with `--server`"
        )));
    }
    if args.jobs == Some(0) {
        return Err(Failure::bad_input(miette::miette!(
            help = "Give `-j 1` or more",
            "`-j 0` runs nothing"
        )));
    }
    Ok(())
}

fn token(args: &BuildArgs) -> Result<Option<Token>, Failure> {
    match &args.token_file {
        Some(path) => Token::from_file(path).map(Some).map_err(Failure::bad_input),
        None => Ok(Token::from_env()),
    }
}

fn failure(e: ClientError) -> Failure {
    if e.is_bad_input() {
        Failure::bad_input(e)
    } else {
        Failure::failed(e)
    }
}

/// Ctrl-C and SIGTERM cancel the build on the server; the event stream then ends with it.
fn cancel_on_signals(url: &str, token: Option<Token>, id: i64) -> Result<(), Failure> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| Failure::failed(miette::miette!("Cannot handle signals: {e}")))?;
    let url = url.to_string();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            eprintln!("Cancelling build {id} on the server…");
            if let Err(e) = Client::new(&url, token.clone()).and_then(|c| c.cancel(id)) {
                eprintln!("warning: {e}");
            }
        }
    });
    Ok(())
}
