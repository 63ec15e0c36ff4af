//! `refine build`: run the executor over the session's targets, then record what it stored
//! in the store's index. What follows a successful build (finishing earlier pushes, the
//! mirror, `--out`) lives in [`super::push`], [`super::mirror`] and [`super::export`].

use std::sync::Arc;

use refine_exec::{BuildOptions, BuildReport, Observer, Remote};

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
    options.signer = session.signer().cloned();
    let store = session.store();
    let report = refine_exec::build(session.graph(), session.roots(), store, &options, observer)?;
    store.sync_index()?;
    Ok(report)
}

/// The counts and times of a build, for its closing line.
pub use refine_exec::BuildSummary as Summary;
