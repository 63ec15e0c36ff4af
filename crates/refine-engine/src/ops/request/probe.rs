//! Asking each sdist's backend what its build needs beyond `[build-system].requires`:
//! PEP 517's `get_requires_for_build_wheel`, run in the platform's sandbox with the runtime,
//! packs and pinned build requirements the build will have (a probe: the wheel action
//! stopped before the build, `recipes/actions/wheel.sh`). A probe is an artifact like any
//! other, keyed on everything the build's key holds, so a lock asks each question once per
//! store; and like a build, it may need other wheels of the request built first.

use std::collections::BTreeMap;
use std::path::Path;

use refine_exec::{BuildOptions, NodeResult, Observer};
use refine_rules::graph::TargetGraph;
use refine_rules::rules::request::{RequestLock, request_package};
use refine_rules::rules::{SourceSpec, Spec, Workspace};

use crate::ops::OpError;
use crate::session::{RemoteNeed, Session, SessionOptions};

/// What one probe answers for, `(platform, Python version, package)`.
pub type Asked = (String, String, String);

/// What the probes of one lock said.
#[derive(Debug, Default)]
pub struct Answers {
    /// Per wheel, the requirements its backend asked for that its pins do not meet.
    pub unmet: BTreeMap<Asked, Vec<String>>,
    /// The probes whose backends failed when asked, each with its log, by label.
    pub failed: Vec<(String, Option<std::path::PathBuf>)>,
    /// The probes left unasked because something they need failed to build (a wheel of
    /// wheels, which may need what this pass found), with why.
    pub skipped: Vec<(String, String)>,
}

impl Answers {
    /// The probes that failed, then those left unasked, a line each, for a diagnostic.
    pub fn failures(&self) -> String {
        let failed = self.failed.iter().map(|(label, log)| match log {
            Some(log) => format!("`{label}` failed; its log: {}", log.display()),
            None => format!("`{label}` failed"),
        });
        let skipped = (self.skipped.iter()).map(|(label, because)| format!("`{label}`: {because}"));
        failed.chain(skipped).collect::<Vec<_>>().join("\n")
    }
}

/// Builds the probe of every wheel `lock` pins for request `name` of the workspace at `root`,
/// and reads their answers.
pub fn ask(
    options: &SessionOptions,
    root: &Path,
    name: &str,
    lock: &RequestLock,
    observer: &dyn Observer,
) -> Result<Answers, OpError> {
    let graph = TargetGraph::build(Workspace::load_probing(root, name, lock)?)
        .map_err(crate::session::SessionError::from)?;
    let package = request_package(name);
    let probes: Vec<_> = graph
        .of_kind(refine_digest::Kind::Wheel)
        .filter(|&id| {
            let t = graph.target(id);
            t.label.package == package && matches!(&t.spec, Spec::Wheel(w) if w.probe)
        })
        .collect();
    let session = Session::with_graph(
        options,
        graph,
        probes.clone(),
        Vec::new(),
        RemoteNeed::IfConfigured,
    )?;
    // Every probe that can answer does: one failed build must not hide another's answer.
    let build = BuildOptions {
        keep_going: true,
        ..BuildOptions::default()
    };
    let report = super::super::build::build(&session, build, observer)?;
    let graph = session.graph();
    let mut answers = Answers::default();
    for id in probes {
        let t = graph.target(id);
        let (Spec::Wheel(w), Some(platform)) = (&t.spec, &t.platform) else {
            continue;
        };
        let SourceSpec::Pypi { name: package, .. } = &w.source else {
            continue;
        };
        let digest = match report.results.get(&id) {
            Some(NodeResult::Cached(b) | NodeResult::Built { built: b, .. }) => &b.digest,
            Some(NodeResult::Failed(f)) => {
                answers.failed.push((t.label.to_string(), f.log.clone()));
                continue;
            }
            Some(NodeResult::Skipped { because }) => {
                answers.skipped.push((t.label.to_string(), because.clone()));
                continue;
            }
            None => {
                answers
                    .skipped
                    .push((t.label.to_string(), "the build was stopped".into()));
                continue;
            }
        };
        let file = session
            .store()
            .unpack(digest)?
            .join(refine_exec::PROBE_ANSWER);
        let text = fs_err::read_to_string(&file).map_err(OpError::io("read", &file))?;
        let unmet: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if !unmet.is_empty() {
            answers.unmet.insert(
                (platform.clone(), w.python.to_string(), package.clone()),
                unmet,
            );
        }
    }
    Ok(answers)
}
