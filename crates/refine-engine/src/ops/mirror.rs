//! Publishing wheels to the S3 wheel mirror (`store { mirror "s3://BUCKET" … }`): the wheels
//! of every `repair` artifact after a build, or given wheel files (`refine mirror`).

use std::path::{Path, PathBuf};

use refine_digest::Kind;
use refine_exec::BuildReport;
use refine_remote::WheelMirror;
use refine_rules::graph::TargetGraph;
use refine_rules::rules::Mirror;

use super::{OpError, ensure_local, wheels_in};
use crate::session::Session;

/// One wheel put into the mirror.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirrored {
    /// The wheel file that was uploaded.
    pub wheel: PathBuf,
    /// Its normalised project name: its page is `MIRROR/simple/PROJECT/`.
    pub project: String,
    /// The mirror's URL, `s3://BUCKET`.
    pub mirror: String,
}

fn connect(config: &Mirror) -> Result<WheelMirror, OpError> {
    WheelMirror::new(
        &config.url,
        config.endpoint.as_deref(),
        config.region.as_deref(),
    )
    .map_err(OpError::MirrorConfig)
}

fn publish_one(
    mirror: &WheelMirror,
    config: &Mirror,
    wheel: &Path,
    on_each: &mut dyn FnMut(&Mirrored),
) -> Result<Mirrored, OpError> {
    let mirrored = Mirrored {
        project: mirror.publish(wheel)?,
        wheel: wheel.to_path_buf(),
        mirror: config.url.clone(),
    };
    on_each(&mirrored);
    Ok(mirrored)
}

/// Puts the wheels of every `repair` artifact of a build into the mirror, if the workspace
/// has one; artifacts the build found in the remote store only are pulled first.
pub fn publish_built(
    session: &Session,
    report: &BuildReport,
    on_each: &mut dyn FnMut(&Mirrored),
) -> Result<Vec<Mirrored>, OpError> {
    let graph = session.graph();
    let Some(config) = &graph.workspace.config.store.mirror else {
        return Ok(Vec::new());
    };
    let mut ids: Vec<_> = report
        .results
        .keys()
        .copied()
        .filter(|&id| graph.target(id).kind() == Kind::Repair)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    ids.sort();
    let mirror = connect(config)?;
    let mut done = Vec::new();
    for id in ids {
        let Some(digest) = ensure_local(session, report, id)? else {
            continue;
        };
        let tree = session.store().unpack(digest)?;
        for wheel in wheels_in(&tree)? {
            done.push(publish_one(&mirror, config, &wheel, on_each)?);
        }
    }
    Ok(done)
}

/// Puts the index's wheels that the build's requests take (docs/requests.md) into the
/// mirror, if the workspace has one: with the repaired wheels [`publish_built`] puts there,
/// the mirror holds the requests' whole wheelhouses.
pub fn publish_reused(
    session: &Session,
    on_each: &mut dyn FnMut(&Mirrored),
) -> Result<Vec<Mirrored>, OpError> {
    let Some(config) = &session.graph().workspace.config.store.mirror else {
        return Ok(Vec::new());
    };
    let tmp = session.store().tmp_dir();
    let dir = tempfile::tempdir_in(&tmp).map_err(OpError::io("write", &tmp))?;
    let wheels = super::request::wheelhouse::add_reused(session, dir.path())?;
    if wheels.is_empty() {
        return Ok(Vec::new());
    }
    let mirror = connect(config)?;
    wheels
        .iter()
        .map(|w| publish_one(&mirror, config, w, on_each))
        .collect()
}

/// Puts wheel files into the workspace's mirror (`refine mirror WHEEL...`).
pub fn publish_files(
    graph: &TargetGraph,
    wheels: &[PathBuf],
    on_each: &mut dyn FnMut(&Mirrored),
) -> Result<Vec<Mirrored>, OpError> {
    let config = graph
        .workspace
        .config
        .store
        .mirror
        .as_ref()
        .ok_or(OpError::NoMirror)?;
    let mirror = connect(config)?;
    wheels
        .iter()
        .map(|w| publish_one(&mirror, config, w, on_each))
        .collect()
}
