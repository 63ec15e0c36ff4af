//! `refine wheel scan FILE.whl`: the lowest manylinux policy a wheel's ELF files meet, and
//! with `--policy` a check that it keeps that promise (see `docs/policy.md`).

use std::io::Write;
use std::path::PathBuf;

use refine_engine::wheel::{Verdict, WheelError, judge_file};

use super::Failure;
use super::common::finish_output;

#[derive(clap::Args, Debug)]
pub struct WheelArgs {
    #[command(subcommand)]
    pub command: WheelCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum WheelCommand {
    /// Scan a wheel's ELF files (symbol versions, needed libraries) and print the lowest
    /// manylinux policy they meet; with `--policy`, exit 1 naming what breaks it.
    Scan {
        /// The wheel file.
        file: PathBuf,
        /// The policy the wheel must meet, e.g. `manylinux_2_28` or `manylinux2014`.
        #[arg(long, value_name = "POLICY")]
        policy: Option<String>,
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: ScanFormat,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub enum ScanFormat {
    /// The lowest policy, then one line per ELF file.
    #[default]
    Text,
    /// The verdict as JSON: `arch`, `files`, `lowest`, `failures`.
    Json,
}

pub fn run(args: WheelArgs) -> Result<(), Failure> {
    let WheelCommand::Scan {
        file,
        policy,
        output,
    } = args.command;
    let verdict = judge_file(&file).map_err(Failure::bad_input)?;
    let mut out = std::io::stdout().lock();
    finish_output(match output {
        ScanFormat::Text => print_text(&mut out, &verdict),
        ScanFormat::Json => serde_json::to_writer_pretty(&mut out, &verdict)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
    })?;
    match policy.map(|p| verdict.check(&p)) {
        None | Some(Ok(())) => Ok(()),
        Some(Err(err @ WheelError::Exceeds { .. })) => Err(Failure::failed(err)),
        Some(Err(err)) => Err(Failure::bad_input(err)),
    }
}

fn print_text(out: &mut impl Write, verdict: &Verdict) -> std::io::Result<()> {
    match (&verdict.arch, &verdict.lowest) {
        (None, _) => writeln!(out, "lowest policy: none needed (no ELF files)")?,
        (Some(_), Some(lowest)) => writeln!(out, "lowest policy: {}", lowest.platform_tag())?,
        (Some(arch), None) => writeln!(
            out,
            "lowest policy: none ({arch}: no manylinux policy is met)"
        )?,
    }
    for file in &verdict.files {
        let maxima: Vec<String> = file
            .max_versions
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        // A file may need no versioned symbol, or no library (a static one): say so rather
        // than print an empty list.
        let versions = if maxima.is_empty() {
            "no versioned symbols".to_string()
        } else {
            maxima.join(", ")
        };
        let needed = if file.needed.is_empty() {
            "no libraries".to_string()
        } else {
            format!("needs {}", file.needed.join(", "))
        };
        writeln!(out, "{}: {versions}; {needed}", file.path)?;
    }
    Ok(())
}
