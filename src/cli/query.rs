//! `refine query`.

use std::path::Path;

use super::Failure;

#[derive(clap::Args, Debug)]
pub struct QueryArgs {}

pub fn run(_dir: Option<&Path>, _args: QueryArgs) -> Result<(), Failure> {
    Err(Failure::failed(miette::miette!("not built yet")))
}
