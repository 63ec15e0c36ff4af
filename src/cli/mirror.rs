//! `refine mirror WHEEL...`: puts wheel files into the S3 wheel mirror configured by
//! `store { mirror "s3://BUCKET" endpoint=… region=… }` and rebuilds its PEP 503 pages.
//! (`refine build` does this by itself for every `repair` artifact it builds or finds.)

use std::path::{Path, PathBuf};

use super::Failure;
use super::common::load_graph;

#[derive(clap::Args, Debug)]
#[command(after_help = "Credentials come from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.")]
pub struct MirrorArgs {
    /// Wheel files.
    #[arg(required = true)]
    pub wheels: Vec<PathBuf>,
}

pub fn run(dir: Option<&Path>, args: MirrorArgs) -> Result<(), Failure> {
    let graph = load_graph(dir)?;
    let Some(m) = &graph.workspace.config.store.mirror else {
        return Err(Failure::bad_input(miette::miette!(
            help = "Write `store { mirror \"s3://BUCKET\" endpoint=\"…\" region=\"…\" }` in workspace.kdl",
            "No wheel mirror is configured"
        )));
    };
    let mirror =
        refine_engine::remote::WheelMirror::new(&m.url, m.endpoint.as_deref(), m.region.as_deref())
            .map_err(Failure::bad_input)?;
    for w in &args.wheels {
        let project = mirror.publish(w).map_err(Failure::failed)?;
        println!("{} -> {}/simple/{project}/", w.display(), m.url);
    }
    Ok(())
}
