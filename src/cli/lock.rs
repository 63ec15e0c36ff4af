//! `refine lock [--check] [PATTERN...]`: pin the exact Debian packages of bootstrapped bases
//! and of toolchains that name theirs in `rules/<pkg>.lock` (docs/locks.md), or check, offline, that the locks match the rules.

use refine_engine::ops::lock::{LockEvent, check, lock};
use refine_engine::session::SessionOptions;

use super::Failure;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Without PATTERN, every bootstrapped base and every toolchain with `debian`/`packages` of the workspace.\nWith --check, writes nothing, needs no network, and exits 1 if a lock is missing or stale."
)]
pub struct LockArgs {
    /// Write nothing; report each base or toolchain whose lock is missing or no longer matches its rule.
    #[arg(long)]
    pub check: bool,
    /// Bases and toolchains to lock (default: all of them).
    #[arg(value_name = "PATTERN")]
    pub patterns: Vec<String>,
}

pub fn run(options: &SessionOptions, args: LockArgs) -> Result<(), Failure> {
    if args.check {
        let (locked, problems) = check(options, &args.patterns)?;
        if problems.is_empty() {
            println!("{locked} locked target(s): every lock is current");
            return Ok(());
        }
        eprintln!("{:?}", miette::Report::new(problems));
        return Err(Failure::Exit(1));
    }
    lock(options, &args.patterns, &mut |event| match event {
        LockEvent::Resolving { label } => eprintln!("resolving {label}"),
        LockEvent::Written {
            file,
            targets,
            packages,
        } => {
            println!("wrote {file} ({}; {packages} packages)", targets.join(" "));
        }
    })?;
    Ok(())
}
