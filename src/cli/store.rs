//! `refine store …`: look after the local store (verify, gc, where it is, tree hashes).

use std::path::{Path, PathBuf};
use std::time::Duration;

use refine_engine::attest::TrustedKeys;
use refine_engine::ops::verify::verify_store;
use refine_engine::session::{SessionOptions, load_graph, trusted_keys};
use refine_engine::store::{GcOptions, LocalStore, VerifyOptions};

use super::Failure;
use super::common::store_failure;

#[derive(clap::Args, Debug)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum StoreCommand {
    /// Check every blob against its digest, every manifest, ref, pin, label, tag, fetched name
    /// and outbox entry against the blobs, and every unpacked tree against its artifact; exit
    /// 1 naming what is corrupt, missing or out of place.
    Verify {
        /// Remove what is broken (corrupt blobs and the entries that lead to something broken)
        /// so that the next build recreates it.
        #[arg(long)]
        fix: bool,
        /// Also check that every artifact is signed by a key the workspace (`trust` in
        /// workspace.kdl) trusts now; report those that are not (they are not removed).
        #[arg(long)]
        signatures: bool,
    },
    /// Remove what no tag (ref) or pin reaches (blobs, trees, leftover temporary files, and
    /// the fetched names and outbox entries of removed blobs); with limits, evict the least
    /// recently used entries first.
    Gc {
        /// Evict entries not used (stored or looked up) for this long, e.g. `30days`, `12h`.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        older_than: Option<Duration>,
        /// Evict the least recently used entries until the store holds at most this much,
        /// e.g. `500MiB`, `20G` (K, M, G, T and KiB… are powers of 1024; KB, MB… of 1000).
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        max_size: Option<u64>,
        /// Print what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the store's folder.
    Path,
    /// Print the tree hash (BLAKE3, `refine-tree-v1`) of a path source, or with `--sha256`
    /// the sha256 of a file, as the store would identify it.
    Hash {
        /// A folder or a file.
        path: PathBuf,
        /// The sha256 of a file instead of the tree hash.
        #[arg(long)]
        sha256: bool,
    },
}

/// Opens the store chosen by `--store` / `REFINE_STORE`, else the default folder.
fn open_store(flag: Option<&Path>) -> Result<LocalStore, Failure> {
    Ok(refine_engine::session::open_store(flag)?)
}

pub fn run(options: &SessionOptions, args: StoreArgs) -> Result<(), Failure> {
    let store_flag = options.store.as_deref();
    match args.command {
        StoreCommand::Verify { fix, signatures } => {
            // Trust comes from the workspace: read it before touching the store.
            let trust = match signatures {
                true => Some(trusted_keys(&load_graph(options)?)?),
                false => None,
            };
            verify(store_flag, fix)?;
            match trust {
                Some(trust) => verify_signatures(store_flag, &trust),
                None => Ok(()),
            }
        }
        StoreCommand::Gc {
            older_than,
            max_size,
            dry_run,
        } => {
            let store = open_store(store_flag)?;
            let options = GcOptions {
                older_than,
                max_size,
                dry_run,
            };
            let report = store
                .gc_with(&options, &mut || {
                    eprintln!("Waiting for other refine processes to finish writing to the store…");
                })
                .map_err(store_failure)?;
            let verb = if dry_run { "Would remove" } else { "Removed" };
            for name in &report.evicted {
                println!("{} {name}", if dry_run { "would evict" } else { "evicted" });
            }
            println!(
                "{verb} {} blob(s) and {} tree(s), {}; {} evicted, {} temporary file(s), {} fetched name(s), {} location record(s), {}; kept {} blob(s), {}",
                report.removed_blobs,
                report.removed_trees,
                human_size(report.removed_bytes),
                plural(report.evicted.len(), "entry", "entries"),
                report.removed_temp,
                report.removed_names,
                report.removed_locations,
                plural(report.removed_outbox, "outbox entry", "outbox entries"),
                report.kept_blobs,
                human_size(report.kept_bytes),
            );
            Ok(())
        }
        StoreCommand::Path => {
            let path = LocalStore::resolve_path(store_flag, None).map_err(store_failure)?;
            println!("{}", path.display());
            Ok(())
        }
        StoreCommand::Hash { path, sha256 } => {
            if sha256 {
                let (digest, _) = refine_engine::digest::sha256_file(&path)
                    .map_err(|e| store_failure(e.into()))?;
                println!("{digest}  {}", path.display());
            } else {
                let digest =
                    refine_engine::digest::hash_tree(&path).map_err(|e| store_failure(e.into()))?;
                println!("{digest}  {}", path.display());
            }
            Ok(())
        }
    }
}

fn verify(store_flag: Option<&Path>, fix: bool) -> Result<(), Failure> {
    let store = open_store(store_flag)?;
    let report = store.verify(VerifyOptions { fix }).map_err(store_failure)?;
    if !fix {
        // verify and gc are where index.json is regenerated from the refs.
        store.rebuild_index().map_err(store_failure)?;
    }
    let summary = format!(
        "{} blob(s) ({}), {} manifest(s), {} ref(s), {} pin(s), {} label(s)",
        report.blobs,
        human_size(report.bytes),
        report.manifests,
        report.refs,
        report.pins,
        report.labels
    );
    if report.is_clean() {
        println!("Checked {summary}: no problems");
        return Ok(());
    }
    if fix {
        println!("Removed {} broken object(s):", report.problems.len());
        for p in &report.problems {
            println!("  {}", p.message);
        }
        println!(
            "The next build recreates what is needed; `refine store gc` removes what is left unreachable."
        );
        return Ok(());
    }
    // One line per problem, unwrapped, so that scripts can grep them.
    for p in &report.problems {
        eprintln!("problem: {}", p.message);
    }
    Err(Failure::failed(miette::miette!(
        help = "Run `refine store verify --fix` to drop the broken objects; the next build recreates them.",
        "The store `{}` has {} problem(s); checked {summary}",
        store.root().display(),
        report.problems.len(),
    )))
}

/// `store verify --signatures`: one line per artifact no trusted key signed.
fn verify_signatures(store_flag: Option<&Path>, trust: &TrustedKeys) -> Result<(), Failure> {
    let store = open_store(store_flag)?;
    let verdicts = verify_store(&store, trust)?;
    let mut refused = 0;
    for (kind, key, digest, verdict) in &verdicts {
        if let Err(why) = verdict {
            refused += 1;
            eprintln!("problem: `{kind}` key `{key}` (manifest `{digest}`) is not trusted: {why}");
        }
    }
    if refused == 0 {
        println!(
            "Checked the signatures of {} artifact(s): each is signed by a trusted key",
            verdicts.len()
        );
        return Ok(());
    }
    Err(Failure::failed(miette::miette!(
        help = "Rebuild them with a trusted key (REFINE_SIGNING_KEY_FILE), or trust the key that signed them in workspace.kdl",
        "{refused} of {} artifact(s) in the store `{}` are not signed by a trusted key",
        verdicts.len(),
        store.root().display(),
    )))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write e.g. `30days`, `12h`, `90min`)"))
}

/// Parses `123`, `500MiB`, `1.5G`, `20GB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a size (write e.g. `500MiB`, `20G`)"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024f64.powi(2),
        "g" | "gib" => 1024f64.powi(3),
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => {
            return Err(format!(
                "`{other}` is not a size unit (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            ));
        }
    };
    Ok((number * factor).round() as u64)
}

/// `1 entry`, `2 entries`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `1.5 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123").unwrap(), 123);
        assert_eq!(parse_size("2KiB").unwrap(), 2048);
        assert_eq!(parse_size("1.5G").unwrap(), 1_610_612_736);
        assert_eq!(parse_size("20GB").unwrap(), 20_000_000_000);
        assert!(parse_size("ten").is_err());
        assert!(parse_size("10 parsecs").is_err());
        assert_eq!(human_size(1536), "1.5 KiB");
    }
}
