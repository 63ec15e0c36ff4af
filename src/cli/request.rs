//! `refine request new|lock`: build requests from a requirements file (docs/requests.md).

use std::path::{Path, PathBuf};

use refine_engine::ops::request::{self, RequestEvent};
use refine_engine::session::SessionOptions;

use super::Failure;

#[derive(clap::Args, Debug)]
pub struct RequestArgs {
    #[command(subcommand)]
    pub command: RequestCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum RequestCommand {
    /// Write `requests/NAME.kdl` from a requirements file.
    #[command(
        after_help = "Example:\n  refine request new app -r requirements.txt --python 3.11 --python 3.12 --platform s390x"
    )]
    New {
        /// The request's name: its file is `requests/NAME.kdl`, its targets `//requests/NAME:…`.
        name: String,
        /// A requirements file (pip's format), inside the workspace.
        #[arg(
            short = 'r',
            long = "requirements",
            value_name = "FILE",
            required = true
        )]
        requirements: Vec<PathBuf>,
        /// A constraints file (pip's format), inside the workspace.
        #[arg(short = 'c', long = "constraints", value_name = "FILE")]
        constraints: Vec<PathBuf>,
        /// A Python minor version to build for (repeat for several).
        #[arg(long = "python", value_name = "X.Y", required = true)]
        pythons: Vec<String>,
        /// A workspace platform [default: the workspace's default platforms].
        #[arg(long = "platform", value_name = "NAME")]
        platforms: Vec<String>,
        /// The runtime rule the wheels are built with.
        #[arg(long, default_value = "//runtimes:cpython", value_name = "LABEL")]
        runtime: String,
    },
    /// Resolve a request for each Python version and platform and write `requests/NAME.lock`.
    #[command(
        after_help = "Each sdist's backend is asked what its build needs (get_requires_for_build_wheel) in the platform's sandbox, which may build the request's runtimes, packs and wheels of wheels first (cached like any build).\nWith --check, writes nothing, needs no network, and exits 1 if the lock is missing or stale."
    )]
    Lock {
        name: String,
        /// Write nothing; exit 1 when the lock is missing or stale.
        #[arg(long)]
        check: bool,
        /// Pin each sdist's `[build-system].requires` only: ask no backend (builds nothing).
        #[arg(long, conflicts_with = "check")]
        no_probe: bool,
    },
}

pub fn run(options: &SessionOptions, args: RequestArgs) -> Result<(), Failure> {
    match args.command {
        RequestCommand::Lock {
            name, check: true, ..
        } => match request::check(options, &name)? {
            None => {
                println!("request `{name}`: the lock is current");
                Ok(())
            }
            Some(problems) => {
                eprintln!("{:?}", miette::Report::new(problems));
                Err(Failure::Exit(1))
            }
        },
        RequestCommand::Lock {
            name,
            check: false,
            no_probe,
        } => {
            let reporter = (!no_probe)
                .then(|| super::progress::Reporter::new(None))
                .transpose()?;
            let probes = reporter
                .as_ref()
                .map(|r| r as &dyn refine_engine::exec::Observer);
            let locked = request::lock(options, &name, probes, &mut |event| match event {
                RequestEvent::Resolving { python, platform } => {
                    eprintln!("resolving for Python {python} on {platform}");
                }
                RequestEvent::Probing { pass } => {
                    eprintln!("asking the backends what their builds need (pass {pass})");
                }
            });
            if let Some(r) = &reporter {
                r.finish();
            }
            let locked = locked?;
            for (platform, python, built, reused) in &locked.resolutions {
                println!("{platform} Python {python}: {built} to build, {reused} wheel(s) reused");
            }
            println!("wrote {}", locked.file);
            Ok(())
        }
        RequestCommand::New {
            name,
            requirements,
            constraints,
            pythons,
            platforms,
            runtime,
        } => {
            let root = refine_engine::rules::find_root(
                options.directory.as_deref().unwrap_or(Path::new(".")),
            )
            .map_err(Failure::bad_input)?;
            let text = request_text(
                &root,
                &name,
                &requirements,
                &constraints,
                &pythons,
                &platforms,
                &runtime,
            )?;
            let file = request::new_request(&root, &name, &text)?;
            println!("wrote {file}; lock it with `refine request lock {name}`");
            Ok(())
        }
    }
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// `file` as the request file names it: relative to `requests/`.
fn from_requests(root: &Path, file: &Path) -> Result<String, Failure> {
    let abs = fs_err::canonicalize(file).map_err(|e| {
        Failure::bad_input(miette::miette!(
            help = "Give the path of an existing file",
            "{e}"
        ))
    })?;
    let root =
        fs_err::canonicalize(root).map_err(|e| Failure::bad_input(miette::miette!("{e}")))?;
    let rel = abs.strip_prefix(&root).map_err(|_| {
        Failure::bad_input(miette::miette!(
            help = "Copy it into the workspace: builds read nothing outside it",
            "`{}` is outside the workspace `{}`",
            file.display(),
            root.display()
        ))
    })?;
    let rel = rel.to_string_lossy();
    Ok(match rel.strip_prefix("requests/") {
        Some(inside) => inside.to_string(),
        None => format!("../{rel}"),
    })
}

fn request_text(
    root: &Path,
    name: &str,
    requirements: &[PathBuf],
    constraints: &[PathBuf],
    pythons: &[String],
    platforms: &[String],
    runtime: &str,
) -> Result<String, Failure> {
    let mut out = format!("request {} {{\n", quoted(name));
    if !platforms.is_empty() {
        let list: Vec<String> = platforms.iter().map(|p| quoted(p)).collect();
        out.push_str(&format!("    platforms {}\n", list.join(" ")));
    }
    let list: Vec<String> = pythons.iter().map(|p| quoted(p)).collect();
    out.push_str(&format!("    python {}\n", list.join(" ")));
    out.push_str(&format!("    runtime {}\n", quoted(runtime)));
    for r in requirements {
        out.push_str(&format!(
            "    requirements {}\n",
            quoted(&from_requests(root, r)?)
        ));
    }
    for c in constraints {
        out.push_str(&format!(
            "    constraints {}\n",
            quoted(&from_requests(root, c)?)
        ));
    }
    out.push_str("    strategy \"reuse-wheels\"\n}\n");
    Ok(out)
}
