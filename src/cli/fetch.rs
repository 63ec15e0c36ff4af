//! `refine fetch`: bring fixed-output sources into the local store.
//!
//! `refine fetch PATTERN...` fetches and verifies every fixed-output input the targets need
//! (PyPI files from the index pip is configured with, Debian source files through apt, URLs
//! over HTTP). `--import FILE` puts a file into the store under its sha256, for machines
//! without network, like Bazel's distdir.

use std::path::PathBuf;

use refine_engine::ops;
use refine_engine::ops::fetch::{FetchEvent, ImportFile, fetch_inputs};
use refine_engine::session::{RemoteNeed, SessionOptions, Targets, import_store};
use refine_engine::store::Digest;

use super::Failure;
use super::common::{open_session, store_failure};

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

/// Fetches every input of the targets the patterns match (and of their dependencies).
fn fetch_patterns(options: &SessionOptions, patterns: &[String]) -> Result<(), Failure> {
    let session = open_session(options, Targets::Patterns(patterns), RemoteNeed::Unused)?;
    let summary = fetch_inputs(&session, &mut |event| match event {
        FetchEvent::Fetched { input, digest } => {
            println!("fetched {} {digest}", input.describe());
        }
        FetchEvent::Failed { error, .. } => eprintln!("{:?}", miette::Report::new(error)),
    })?;
    println!(
        "{} inputs: {} fetched, {} already in the store, {} failed",
        summary.inputs,
        summary.fetched,
        summary.present,
        summary.failed.len()
    );
    if summary.failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Exit(1))
    }
}

/// The files to import, checked, each with the sha256 given for it.
fn import_files(args: &FetchArgs) -> Result<Vec<ImportFile>, Failure> {
    if !args.sha256.is_empty() && args.sha256.len() != args.import.len() {
        return Err(Failure::bad_input(miette::miette!(
            help = "Give one `--sha256` per `--import`, in the same order, or none.",
            "{} `--sha256` value(s) for {} `--import` file(s)",
            args.sha256.len(),
            args.import.len()
        )));
    }
    let mut expected = args
        .sha256
        .iter()
        .map(|s| parse_sha256(s))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let mut files = Vec::new();
    for file in &args.import {
        if !file.is_file() {
            return Err(Failure::bad_input(miette::miette!(
                help = "`--import` takes a regular file.",
                "`{}` is not a file",
                file.display()
            )));
        }
        files.push(ImportFile {
            file: file.clone(),
            expected: expected.next(),
        });
    }
    Ok(files)
}

/// Imports every file that verifies; reports each one that does not, then fails.
fn import(options: &SessionOptions, files: &[ImportFile]) -> Result<(), Failure> {
    let store = import_store(options)?;
    let mut exit = 0;
    ops::fetch::import(&store, files, &mut |imported| match imported.result {
        Ok(digest) => println!("{digest}  {}", imported.file.display()),
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
    })?;
    match exit {
        0 => Ok(()),
        code => Err(Failure::Exit(code)),
    }
}

pub fn run(options: &SessionOptions, args: FetchArgs) -> Result<(), Failure> {
    if !args.patterns.is_empty() {
        if !args.import.is_empty() {
            return Err(Failure::bad_input(miette::miette!(
                help = "Run `refine fetch PATTERN` and `refine fetch --import FILE` separately.",
                "Give target patterns or `--import`, not both"
            )));
        }
        return fetch_patterns(options, &args.patterns);
    }
    if args.import.is_empty() {
        return Err(Failure::bad_input(miette::miette!(
            help = "Try `refine fetch --import FILE [--sha256 HEX]`.",
            "Nothing to fetch: give target patterns or `--import FILE`"
        )));
    }
    let files = import_files(&args)?;
    import(options, &files)
}
