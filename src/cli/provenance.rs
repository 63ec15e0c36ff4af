//! `refine provenance LABEL|DIGEST`: prints how an artifact was made, as an in-toto v1
//! statement with the SLSA provenance v1 predicate: from the local store, else from the
//! remote store's referrer.

use refine_engine::ops::provenance::provenance;
use refine_engine::session::{RemoteNeed, SessionOptions, Targets};

use super::Failure;
use super::common::open_session;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  refine provenance //wheels:pyyaml-repaired-py311
  refine provenance sha256:4f0c…   (an artifact's manifest digest)")]
pub struct ProvenanceArgs {
    /// A target label, or an artifact's manifest digest (`sha256:…`).
    pub target: String,
}

pub fn run(options: &SessionOptions, args: ProvenanceArgs) -> Result<(), Failure> {
    let session = open_session(options, Targets::None, RemoteNeed::IfConfigured)?;
    let found = provenance(&session, &args.target)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&found.statement).unwrap_or_default()
    );
    Ok(())
}
