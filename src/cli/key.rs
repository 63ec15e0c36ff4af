//! `refine key generate NAME [--dir DIR]`: a key pair for signing artifacts, and the lines
//! that put it to use.

use std::path::PathBuf;

use refine_engine::ops::key::{default_key_dir, generate};

use super::Failure;

#[derive(clap::Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum KeyCommand {
    /// Write a new Ed25519 key pair: `NAME.key` (private, owner-only) and `NAME.pub`.
    #[command(after_help = "Examples:
  refine key generate ci-2026
  refine key generate laptop --dir ./secrets")]
    Generate {
        /// The key's name, as `workspace.kdl`'s `trust` will list it.
        name: String,
        /// Where to write the files [default: `$XDG_CONFIG_HOME/refine/keys`, else
        /// `~/.config/refine/keys`].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

pub fn run(args: KeyArgs) -> Result<(), Failure> {
    let KeyCommand::Generate { name, dir } = args.command;
    let dir = dir.or_else(default_key_dir).ok_or_else(|| {
        Failure::bad_input(miette::miette!(
            help = "Pass `--dir DIR`",
            "Neither `XDG_CONFIG_HOME` nor `HOME` is set, so there is no default folder for keys"
        ))
    })?;
    let key = generate(&dir, &name)?;
    println!(
        "Wrote the private key to {} (owner-only: keep it secret) and the public key to {}.",
        key.private.display(),
        key.public_file.display()
    );
    println!(
        "Sign with it:  REFINE_SIGNING_KEY_FILE={} refine build …",
        key.private.display()
    );
    println!(
        "Trust it: add to workspace.kdl\n\ntrust {{\n    key \"{name}\" \"{}\"\n}}",
        key.public
    );
    Ok(())
}
