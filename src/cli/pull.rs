//! `refine pull PATTERN...`: copies the artifacts of targets (and of their dependencies) from
//! the remote store into the local one, every blob verified.

use refine_engine::ops::pull::pull;
use refine_engine::session::{RemoteNeed, SessionOptions, Targets};

use super::Failure;
use super::common::open_session;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  refine --remote oci://127.0.0.1:5000/ci pull //wheels:pyyaml-repaired-py311")]
pub struct PullArgs {
    /// Target patterns, such as `//wheels:pyyaml-repaired-py311` or `//...`.
    #[arg(required = true)]
    pub patterns: Vec<String>,
}

pub fn run(options: &SessionOptions, args: PullArgs) -> Result<(), Failure> {
    let targets = Targets::Patterns(&args.patterns);
    let session = open_session(options, targets, RemoteNeed::Required)?;
    let summary = pull(&session, &mut |p| {
        println!("pulled {} {}", p.label, p.digest);
    })?;
    eprintln!(
        "{} pulled from {}, {} already local, {} in neither store",
        summary.pulled.len(),
        summary.remote,
        summary.local,
        summary.absent
    );
    Ok(())
}
