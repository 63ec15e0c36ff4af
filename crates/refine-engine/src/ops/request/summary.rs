//! What a build did for each package of the build requests it covered: reused (the index's
//! wheel), built, cached, failed (with the reason) or skipped.

use refine_exec::{BuildReport, NodeResult};
use refine_rules::label::Label;
use refine_rules::rules::request::{Take, repair_target_name, wheel_target_name};

use crate::session::Session;

/// One package's outcome on one platform and Python version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageOutcome {
    pub request: String,
    pub platform: String,
    pub python: String,
    pub package: String,
    pub version: String,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The index's wheel, verified by sha256.
    Reused,
    Built,
    Cached,
    Failed(String),
    Skipped(String),
    /// Not among the targets built.
    NotRequested,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Reused => f.write_str("reused (the index's wheel, sha256 verified)"),
            Outcome::Built => f.write_str("built"),
            Outcome::Cached => f.write_str("cached"),
            Outcome::Failed(why) => write!(f, "failed: {why}"),
            Outcome::Skipped(why) => write!(f, "skipped: {why}"),
            Outcome::NotRequested => f.write_str("not requested"),
        }
    }
}

/// The outcome of every package of the requests, platforms and Python versions the
/// session's roots belong to.
pub fn summary(session: &Session, report: &BuildReport) -> Vec<PackageOutcome> {
    let graph = session.graph();
    let ws = &graph.workspace;
    let wanted = super::wheelhouse::requested(session);
    let mut out = Vec::new();
    for loaded in &ws.requests {
        let Some(lock) = &loaded.lock else { continue };
        for res in &lock.resolutions {
            let python = res.python.to_string();
            if !wanted.contains(&(lock.name.clone(), res.platform.clone(), python.clone())) {
                continue;
            }
            for p in &res.packages {
                let outcome = match p.take {
                    Take::Wheel => Outcome::Reused,
                    Take::Sdist => {
                        let package = refine_rules::rules::request::request_package(&lock.name);
                        let find = |name: String| {
                            graph
                                .find(&Label {
                                    package: package.clone(),
                                    name,
                                })
                                .and_then(|id| report.results.get(&id))
                        };
                        let wheel = find(wheel_target_name(
                            &ws.config,
                            &p.name,
                            &res.platform,
                            &res.python,
                        ));
                        let repair = find(repair_target_name(
                            &ws.config,
                            &p.name,
                            &res.platform,
                            &res.python,
                        ));
                        // The wheel's failure is the package's, not its repair's skip.
                        match (wheel, repair) {
                            (Some(NodeResult::Failed(f)), _) | (_, Some(NodeResult::Failed(f))) => {
                                let why = f.error.to_string();
                                Outcome::Failed(why.lines().next().unwrap_or_default().to_string())
                            }
                            (_, Some(NodeResult::Built { .. })) => Outcome::Built,
                            (_, Some(NodeResult::Cached(_))) => Outcome::Cached,
                            (_, Some(NodeResult::Skipped { because })) => {
                                Outcome::Skipped(because.clone())
                            }
                            (_, None) => Outcome::NotRequested,
                        }
                    }
                };
                out.push(PackageOutcome {
                    request: lock.name.clone(),
                    platform: res.platform.clone(),
                    python: python.clone(),
                    package: p.name.clone(),
                    version: p.version.clone(),
                    outcome,
                });
            }
        }
    }
    out
}
