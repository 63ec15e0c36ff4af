//! `refine build PATTERN...`: plan, then build in parallel; progress on a terminal, plain
//! lines otherwise, JSON events and a Chrome trace for those who need to see inside.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use refine_engine::exec::{
    BuildOptions, BuildReport, Event, NodeResult, Observer, Remote, artifact_of, build, copy_tree,
};
use refine_engine::graph::TargetGraph;

use super::Failure;
use super::common::{RemoteFlags, load_graph, open_remote, open_workspace_store};
use super::store::store_failure;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  refine build //repairs:pyyaml-py311 --out wheels/
  refine build //wheels/... -j 4 --keep-going --events events.jsonl --profile trace.json

Exit codes: 0 everything built, 1 something failed (or Ctrl-C), 2 bad input.")]
pub struct BuildArgs {
    /// Target patterns, such as `//repairs:pyyaml-py311` or `//wheels/...`.
    #[arg(required = true)]
    pub patterns: Vec<String>,
    /// Actions to run at once [default: the number of cores].
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Keep each sandboxed action's folder in DIR, with a `replay.sh` that runs the action
    /// again by hand (same root, mounts, environment and command).
    #[arg(long, value_name = "DIR")]
    pub sandbox_debug: Option<PathBuf>,
    /// Compile jobs inside each action (`REFINE_JOBS`, `make -j`) [default: the number of cores].
    #[arg(long, value_name = "N", env = "REFINE_CORES")]
    pub cores: Option<usize>,
    /// Build everything that does not depend on a failed target.
    #[arg(short = 'k', long)]
    pub keep_going: bool,
    /// Copy the requested targets' artifacts into DIR (wheels as `.whl` files).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write one JSON object per event to FILE (see docs/events.md).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Write a Chrome trace of the build to FILE (open it in chrome://tracing or Perfetto).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
}

/// Prints progress and writes the events file.
struct Reporter {
    events: Option<Mutex<std::io::BufWriter<fs_err::File>>>,
    bar: Option<indicatif::ProgressBar>,
    total: Mutex<(usize, usize)>,
}

impl Reporter {
    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl Observer for Reporter {
    fn event(&self, event: &Event) {
        if let Some(f) = &self.events {
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            let _ = serde_json::to_writer(&mut *f, event);
            let _ = writeln!(f);
            let _ = f.flush();
        }
        let mut total = self.total.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Plan { nodes } => {
                total.1 = nodes.len();
                if let Some(bar) = &self.bar {
                    bar.set_length(nodes.len() as u64);
                }
            }
            Event::CacheHit { label, .. } => {
                total.0 += 1;
                // Plain output names only what runs: a no-op build prints one summary line.
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    bar.set_message(format!("cached {label}"));
                }
            }
            Event::ActionStart { label, kind, .. } => match &self.bar {
                Some(bar) => bar.set_message(format!("{kind} {label}")),
                None => eprintln!("[{}/{}] building {label}", total.0, total.1),
            },
            Event::ActionFinish { label, seconds, .. } => {
                total.0 += 1;
                match &self.bar {
                    Some(bar) => {
                        bar.inc(1);
                        bar.println(format!("built {label} in {seconds:.1} s"));
                    }
                    None => eprintln!("[{}/{}] built {label} in {seconds:.1} s", total.0, total.1),
                }
            }
            Event::ActionFail {
                label, reason, log, ..
            } => {
                total.0 += 1;
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                let log = log
                    .as_ref()
                    .map(|l| format!("\n  full log: {l}"))
                    .unwrap_or_default();
                drop(total);
                self.line(format!("FAILED {label}: {reason}{log}"));
            }
            Event::Skipped { label, because } => {
                drop(total);
                self.line(format!("skipped {label}: {because}"));
            }
            _ => {}
        }
    }
}

/// A Chrome trace (the JSON array format) of the actions that ran.
fn write_profile(path: &Path, graph: &TargetGraph, report: &BuildReport) -> std::io::Result<()> {
    let first = report
        .results
        .values()
        .filter_map(|r| match r {
            NodeResult::Built { start, .. } => Some(*start),
            _ => None,
        })
        .fold(f64::INFINITY, f64::min);
    let mut events: Vec<serde_json::Value> = report
        .results
        .iter()
        .filter_map(|(id, r)| match r {
            NodeResult::Built {
                seconds,
                start,
                worker,
                ..
            } => Some(serde_json::json!({
                "name": graph.target(*id).label.to_string(),
                "cat": graph.target(*id).kind().to_string(),
                "ph": "X",
                "ts": ((start - first) * 1e6).round() as u64,
                "dur": (seconds * 1e6).round() as u64,
                "pid": 1,
                "tid": worker,
            })),
            _ => None,
        })
        .collect();
    events.sort_by_key(|e| e["ts"].as_u64());
    let mut f = std::io::BufWriter::new(fs_err::File::create(path)?);
    serde_json::to_writer_pretty(
        &mut f,
        &serde_json::json!({ "traceEvents": events, "displayTimeUnit": "ms" }),
    )?;
    f.flush()
}

/// Pulls a node's artifact if it is in the remote store only; returns its digest.
fn ensure_local<'a>(
    graph: &TargetGraph,
    report: &'a BuildReport,
    id: usize,
    store: &refine_engine::store::LocalStore,
    remote: Option<&dyn Remote>,
) -> Result<Option<&'a refine_engine::store::Digest>, Failure> {
    let Some(digest) = artifact_of(report, id) else {
        return Ok(None);
    };
    if let (Some(NodeResult::Cached(b)), Some(remote)) = (report.results.get(&id), remote)
        && b.remote
        && !store.has_blob(&b.digest)
    {
        let t = graph.target(id);
        remote
            .pull(
                store,
                t.kind().as_str(),
                b.key.as_deref().unwrap_or_default(),
                &b.digest,
            )
            .map_err(Failure::failed)?;
    }
    Ok(Some(digest))
}

/// Puts the wheels of every `repair` artifact of the build into the S3 mirror.
fn publish_to_mirror(
    graph: &TargetGraph,
    report: &BuildReport,
    store: &refine_engine::store::LocalStore,
    remote: Option<&dyn Remote>,
) -> Result<(), Failure> {
    let Some(m) = &graph.workspace.config.store.mirror else {
        return Ok(());
    };
    let mut ids: Vec<usize> = report
        .results
        .keys()
        .copied()
        .filter(|&id| graph.target(id).kind().as_str() == "repair")
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort();
    let mirror =
        refine_engine::remote::WheelMirror::new(&m.url, m.endpoint.as_deref(), m.region.as_deref())
            .map_err(Failure::bad_input)?;
    for id in ids {
        let Some(digest) = ensure_local(graph, report, id, store, remote)? else {
            continue;
        };
        let tree = store.unpack(digest).map_err(store_failure)?;
        for entry in fs_err::read_dir(&tree)
            .map_err(|e| Failure::failed(miette::miette!("{e}")))?
            .flatten()
        {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "whl") {
                mirror.publish(&p).map_err(Failure::failed)?;
                eprintln!(
                    "mirrored {} to {}",
                    p.file_name().unwrap_or_default().to_string_lossy(),
                    m.url
                );
            }
        }
    }
    Ok(())
}

/// Copies the artifacts of the requested targets into `dir`: wheels as files, other
/// artifacts as folders named after the target. Artifacts found in the remote store are
/// pulled first.
fn copy_out(
    dir: &Path,
    graph: &TargetGraph,
    report: &BuildReport,
    roots: &[usize],
    store: &refine_engine::store::LocalStore,
    remote: Option<&dyn Remote>,
) -> Result<Vec<PathBuf>, Failure> {
    let io = |p: &Path, e: std::io::Error| {
        Failure::failed(miette::miette!("Cannot write `{}`: {e}", p.display()))
    };
    fs_err::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut written = Vec::new();
    for &id in roots {
        let Some(digest) = ensure_local(graph, report, id, store, remote)? else {
            continue;
        };
        let tree = store.unpack(digest).map_err(store_failure)?;
        let entries: Vec<PathBuf> = fs_err::read_dir(&tree)
            .map_err(|e| io(&tree, e))?
            .flatten()
            .map(|e| e.path())
            .collect();
        let wheels: Vec<&PathBuf> = entries
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "whl"))
            .collect();
        if !wheels.is_empty() {
            for w in wheels {
                let to = dir.join(w.file_name().unwrap_or_default());
                fs_err::copy(w, &to).map_err(|e| io(&to, e))?;
                written.push(to);
            }
        } else {
            let to = dir.join(&graph.target(id).label.name);
            copy_tree(&tree, &to).map_err(|e| io(&to, e))?;
            written.push(to);
        }
    }
    Ok(written)
}

pub fn run(
    dir: Option<&Path>,
    store_flag: Option<&Path>,
    remote_flags: &RemoteFlags,
    args: BuildArgs,
) -> Result<(), Failure> {
    let graph = load_graph(dir)?;
    let roots = refine_engine::query::resolve_patterns(&graph, &args.patterns)
        .map_err(Failure::bad_input)?;
    let store = open_workspace_store(&graph, store_flag)?;
    let oci = open_remote(&graph, remote_flags)?;
    let remote: Option<&dyn Remote> = oci.as_deref().map(|r| r as &dyn Remote);
    let mut opts = BuildOptions {
        remote: oci.clone().map(|r| r as Arc<dyn Remote>),
        ..Default::default()
    };
    if let Some(j) = args.jobs {
        if j == 0 {
            return Err(Failure::bad_input(miette::miette!(
                help = "Give `-j 1` or more",
                "`-j 0` runs nothing"
            )));
        }
        opts.jobs = j;
    }
    if let Some(c) = args.cores {
        if c == 0 {
            return Err(Failure::bad_input(miette::miette!(
                help = "Give `--cores 1` or more",
                "`--cores 0` gives every action no core to run on"
            )));
        }
        opts.cores = c;
    }
    opts.keep_going = args.keep_going;
    if let Some(dir) = &args.sandbox_debug {
        // Absolute: replay.sh names the folders it mounts.
        let dir = std::path::absolute(dir).map_err(|e| {
            Failure::bad_input(miette::miette!("Cannot use `{}`: {e}", dir.display()))
        })?;
        opts.sandbox_debug = Some(dir);
    }
    // A thread waits for the signals and cancels: that wakes the build loop at once.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| Failure::failed(miette::miette!("Cannot handle signals: {e}")))?;
    let cancel = opts.cancel.clone();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            cancel.cancel();
        }
    });
    let events = match &args.events {
        Some(p) => Some(Mutex::new(std::io::BufWriter::new(
            fs_err::File::create(p).map_err(|e| Failure::bad_input(miette::miette!("{e}")))?,
        ))),
        None => None,
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{pos}/{len}] {elapsed} {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    let reporter = Reporter {
        events,
        bar,
        total: Mutex::new((0, 0)),
    };
    let report = build(&graph, &roots, &store, &opts, &reporter).map_err(Failure::failed)?;
    if let Some(bar) = &reporter.bar {
        bar.finish_and_clear();
    }
    store.sync_index().map_err(store_failure)?;
    // Artifacts whose push an earlier, interrupted build left unfinished.
    if let (Some(r), true) = (&oci, report.success()) {
        match r.flush_outbox(&store) {
            Ok(0) => {}
            Ok(n) => eprintln!("pushed {n} artifact(s) an earlier push left unfinished"),
            Err(e) if remote_flags.optional => eprintln!("warning: {e}"),
            Err(e) => return Err(Failure::failed(e)),
        }
    }
    if report.success() {
        publish_to_mirror(&graph, &report, &store, remote)?;
    }
    if let Some(p) = &args.profile {
        write_profile(p, &graph, &report)
            .map_err(|e| Failure::failed(miette::miette!("Cannot write `{}`: {e}", p.display())))?;
    }
    let count = |f: fn(&NodeResult) -> bool| report.count(f);
    let path: Vec<String> = report
        .critical_path
        .iter()
        .map(|&i| graph.target(i).label.to_string())
        .collect();
    eprintln!(
        "{} built, {} cached, {} failed, {} skipped in {:.1} s; critical path {:.1} s{}",
        count(|r| matches!(r, NodeResult::Built { .. })),
        count(|r| matches!(r, NodeResult::Cached(_))),
        count(|r| matches!(r, NodeResult::Failed { .. })),
        count(|r| matches!(r, NodeResult::Skipped { .. })),
        report.seconds,
        report.critical_path_seconds,
        if path.is_empty() || report.critical_path_seconds == 0.0 {
            String::new()
        } else {
            format!(": {}", path.join(" → "))
        }
    );
    if let Some(out) = &args.out {
        for p in copy_out(out, &graph, &report, &roots, &store, remote)? {
            println!("{}", p.display());
        }
    }
    if opts.cancel.is_cancelled() {
        eprintln!("Interrupted: every sandbox was stopped; the store is consistent.");
        return Err(Failure::Exit(1));
    }
    if report.success() {
        Ok(())
    } else {
        Err(Failure::Exit(1))
    }
}
