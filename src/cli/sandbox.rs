//! `refine sandbox run`: the namespace sandbox, by hand.

use super::Failure;

#[derive(clap::Args, Debug)]
pub struct SandboxArgs {
    /// The command and its arguments.
    #[arg(trailing_var_arg = true)]
    pub command: Vec<String>,
}

pub fn run(_args: SandboxArgs) -> Result<(), Failure> {
    Err(Failure::failed(miette::miette!(
        "The sandbox is not built yet"
    )))
}
