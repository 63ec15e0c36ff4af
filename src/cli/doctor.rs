//! `refine doctor`: what this host can do.

use super::Failure;

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {}

pub fn run(_args: DoctorArgs) -> Result<(), Failure> {
    Err(Failure::failed(miette::miette!(
        "`refine doctor` is not built yet"
    )))
}
