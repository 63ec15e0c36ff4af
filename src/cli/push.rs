//! `refine push PATTERN...`: copies the artifacts of targets (and of their dependencies) that
//! are in the local store to the remote store: blobs, provenance referrer, then the tagged
//! manifest.

use refine_engine::ops::push::push;
use refine_engine::session::{RemoteNeed, SessionOptions, Targets};

use super::Failure;
use super::common::open_session;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  refine --remote oci://127.0.0.1:5000/ci push //wheels/...

Targets not in the local store are left out (build them first).")]
pub struct PushArgs {
    /// Target patterns, such as `//wheels:pyyaml-repaired-py311` or `//...`.
    #[arg(required = true)]
    pub patterns: Vec<String>,
}

pub fn run(options: &SessionOptions, args: PushArgs) -> Result<(), Failure> {
    let targets = Targets::Patterns(&args.patterns);
    let session = open_session(options, targets, RemoteNeed::Required)?;
    let summary = push(&session, &mut |p| {
        println!("pushed {} {}", p.label, p.digest);
    })?;
    eprintln!(
        "{} artifact(s) in {}; {} target(s) not in the local store",
        summary.pushed.len(),
        summary.remote,
        summary.absent
    );
    Ok(())
}
