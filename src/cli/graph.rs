//! `refine graph`.

use std::path::Path;

use super::Failure;

#[derive(clap::Args, Debug)]
pub struct GraphArgs {}

pub fn run(_dir: Option<&Path>, _args: GraphArgs) -> Result<(), Failure> {
    Err(Failure::failed(miette::miette!("not built yet")))
}
