//! `refine build`: run the executor over the session's targets, then record what it stored
//! in the store's index. What follows a successful build (finishing earlier pushes, the
//! mirror, `--out`) lives in [`super::push`], [`super::mirror`] and [`super::export`].

use std::sync::Arc;

use refine_exec::{BuildOptions, BuildReport, NodeResult, Observer, Remote};
use refine_rules::graph::TargetGraph;

use super::OpError;
use crate::session::Session;

/// Builds the session's targets and everything they depend on, through its stores.
/// `options.remote` is the session's remote store, whatever it was.
pub fn build(
    session: &Session,
    mut options: BuildOptions,
    observer: &dyn Observer,
) -> Result<BuildReport, OpError> {
    options.remote = session.remote().cloned().map(|r| r as Arc<dyn Remote>);
    let store = session.store();
    let report = refine_exec::build(session.graph(), session.roots(), store, &options, observer)?;
    store.sync_index()?;
    Ok(report)
}

/// The counts and times of a build, for its closing line.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub built: usize,
    pub cached: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Wall time of the whole build.
    pub seconds: f64,
    /// The labels on the longest chain of actions that ran, first to last.
    pub critical_path: Vec<String>,
    pub critical_path_seconds: f64,
}

impl Summary {
    pub fn of(graph: &TargetGraph, report: &BuildReport) -> Summary {
        Summary {
            built: report.count(|r| matches!(r, NodeResult::Built { .. })),
            cached: report.count(|r| matches!(r, NodeResult::Cached(_))),
            failed: report.count(|r| matches!(r, NodeResult::Failed { .. })),
            skipped: report.count(|r| matches!(r, NodeResult::Skipped { .. })),
            seconds: report.seconds,
            critical_path: report
                .critical_path
                .iter()
                .map(|&i| graph.target(i).label.to_string())
                .collect(),
            critical_path_seconds: report.critical_path_seconds,
        }
    }
}
