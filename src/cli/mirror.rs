//! `refine mirror WHEEL...`: puts wheel files into the S3 wheel mirror configured by
//! `store { mirror "s3://BUCKET" endpoint=… region=… }` and rebuilds its PEP 503 pages.
//! (`refine build` does this by itself for every `repair` artifact it builds or finds.)

use std::path::PathBuf;

use refine_engine::ops::mirror::publish_files;
use refine_engine::session::{SessionOptions, load_graph};

use super::Failure;

#[derive(clap::Args, Debug)]
#[command(after_help = "Credentials come from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.")]
pub struct MirrorArgs {
    /// Wheel files.
    #[arg(required = true)]
    pub wheels: Vec<PathBuf>,
}

pub fn run(options: &SessionOptions, args: MirrorArgs) -> Result<(), Failure> {
    let graph = load_graph(options)?;
    publish_files(&graph, &args.wheels, &mut |m| {
        println!(
            "{} -> {}/simple/{}/",
            m.wheel.display(),
            m.mirror,
            m.project
        );
    })?;
    Ok(())
}
