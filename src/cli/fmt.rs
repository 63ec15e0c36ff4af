//! `refine fmt`.

use std::path::Path;

use super::Failure;

#[derive(clap::Args, Debug)]
pub struct FmtArgs {}

pub fn run(_dir: Option<&Path>, _args: FmtArgs) -> Result<(), Failure> {
    Err(Failure::failed(miette::miette!("not built yet")))
}
