//! `refine fetch`: bring fixed-output sources into the local store.
//!
//! `refine fetch PATTERN...` fetches and verifies every fixed-output input the targets need
//! (PyPI files from the index pip is configured with, Debian source files through apt, URLs
//! over HTTP). `--import FILE` puts a file into the store under its sha256, for machines
//! without network, like Bazel's distdir.

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

/// Fetches every input of the targets the patterns match (and of their dependencies).
fn fetch_patterns(
    dir: Option<&Path>,
    store_flag: Option<&Path>,
    patterns: &[String],
) -> Result<(), Failure> {
    use refine_engine::fetch::{PipConfig, fetch, inputs_of};
    let graph = super::common::load_graph(dir)?;
    let roots =
        refine_engine::query::resolve_patterns(&graph, patterns).map_err(Failure::bad_input)?;
    let mut member = vec![false; graph.len()];
    for r in roots {
        member[r] = true;
    }
    let closure = graph.deps_closure(&member);
    let ids: Vec<usize> = (0..graph.len()).filter(|&i| closure[i]).collect();
    let store = super::common::open_workspace_store(&graph, store_flag)?;
    let pip = PipConfig::load();
    let work = store.tmp_dir();
    let items = inputs_of(&graph, &ids);
    let mut failures = Vec::new();
    let (mut fetched, mut had) = (0, 0);
    for item in &items {
        match fetch(&store, item, &pip, &work) {
            Ok((digest, true)) => {
                fetched += 1;
                println!("fetched {} {digest}", item.describe());
            }
            Ok((_, false)) => had += 1,
            Err(e) => {
                eprintln!("{:?}", miette::Report::new(e));
                failures.push(item.describe());
            }
        }
    }
    store.sync_index().map_err(store_failure)?;
    println!(
        "{} inputs: {fetched} fetched, {had} already in the store, {} failed",
        items.len(),
        failures.len()
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::Exit(1))
    }
}

pub fn run(dir: Option<&Path>, store_flag: Option<&Path>, args: FetchArgs) -> Result<(), Failure> {
    if !args.patterns.is_empty() {
        if !args.import.is_empty() {
            return Err(Failure::bad_input(miette::miette!(
                help = "Run `refine fetch PATTERN` and `refine fetch --import FILE` separately.",
                "Give target patterns or `--import`, not both"
            )));
        }
        return fetch_patterns(dir, store_flag, &args.patterns);
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
    // Inside a workspace, its store (`store { local … }`); elsewhere the default one.
    let store = match super::common::load_graph(dir) {
        Ok(graph) => super::common::open_workspace_store(&graph, store_flag)?,
        Err(_) => open_store(store_flag)?,
    };
    // Import every file that verifies; report each one that does not, then fail.
    let mut exit = 0;
    for (i, file) in args.import.iter().enumerate() {
        match store.put_source_file(file, expected.get(i)) {
            Ok(digest) => {
                if let Some(name) = file.file_name().and_then(|n| n.to_str()) {
                    store.record_name(&digest, name).map_err(store_failure)?;
                }
                println!("{digest}  {}", file.display())
            }
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
