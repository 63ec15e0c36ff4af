//! `refine fetch`: bring fixed-output sources into the local store.
//!
//! For now: `--import FILE`, which puts a file into the store under its sha256 (for machines
//! without network, like Bazel's distdir). Fetching the sources of target patterns through
//! pip, apt or HTTP comes later.

use std::path::{Path, PathBuf};

use refine_engine::store::Digest;

use super::Failure;
use super::store::{open_store, store_failure};

#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    /// Target patterns whose sources to fetch (not built yet).
    #[arg(value_name = "PATTERN")]
    pub patterns: Vec<String>,
    /// Put FILE into the store under its sha256 (repeatable).
    #[arg(long = "import", value_name = "FILE")]
    pub import: Vec<PathBuf>,
    /// The sha256 an imported file must have (64 hex digits, or `sha256:` and 64 hex digits).
    /// With several `--import`, give one per file, in the same order. A mismatch stores nothing.
    #[arg(long, value_name = "HEX", requires = "import")]
    pub sha256: Vec<String>,
}

fn parse_sha256(s: &str) -> Result<Digest, Failure> {
    let lower = s.trim().to_ascii_lowercase();
    let full = if lower.contains(':') {
        lower
    } else {
        format!("sha256:{lower}")
    };
    Digest::parse(&full).map_err(|_| {
        Failure::bad_input(miette::miette!(
            help = "Give the 64 hexadecimal digits that `sha256sum` prints, optionally after `sha256:`.",
            "`{s}` is not a sha256 digest"
        ))
    })
}

pub fn run(store_flag: Option<&Path>, args: FetchArgs) -> Result<(), Failure> {
    if !args.patterns.is_empty() {
        return Err(Failure::failed(miette::miette!(
            help = "Use `refine fetch --import FILE` to seed the store by hand.",
            "Fetching the sources of `{}` is not built yet",
            args.patterns.join(" ")
        )));
    }
    if args.import.is_empty() {
        return Err(Failure::bad_input(miette::miette!(
            help = "Try `refine fetch --import FILE [--sha256 HEX]`.",
            "Nothing to fetch: give target patterns or `--import FILE`"
        )));
    }
    if !args.sha256.is_empty() && args.sha256.len() != args.import.len() {
        return Err(Failure::bad_input(miette::miette!(
            help = "Give one `--sha256` per `--import`, in the same order, or none.",
            "{} `--sha256` value(s) for {} `--import` file(s)",
            args.sha256.len(),
            args.import.len()
        )));
    }
    let expected = args
        .sha256
        .iter()
        .map(|s| parse_sha256(s))
        .collect::<Result<Vec<_>, _>>()?;
    for file in &args.import {
        if !file.is_file() {
            return Err(Failure::bad_input(miette::miette!(
                help = "`--import` takes a regular file.",
                "`{}` is not a file",
                file.display()
            )));
        }
    }
    let store = open_store(store_flag)?;
    // Import every file that verifies; report each one that does not, then fail.
    let mut exit = 0;
    for (i, file) in args.import.iter().enumerate() {
        match store.put_source_file(file, expected.get(i)) {
            Ok(digest) => println!("{digest}  {}", file.display()),
            Err(err) => {
                let failure = store_failure(err);
                let code = if matches!(failure, Failure::Failed(_)) {
                    1
                } else {
                    2
                };
                super::report(failure);
                exit = exit.max(code);
            }
        }
    }
    match exit {
        0 => Ok(()),
        code => Err(Failure::Exit(code)),
    }
}
