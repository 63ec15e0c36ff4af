//! `refine build --out DIR`: copy the artifacts of the requested targets out of the store,
//! wheels as `.whl` files, other artifacts as folders named after their target.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use refine_exec::{BuildReport, copy_tree};

use super::{OpError, ensure_local, wheels_in};
use crate::session::Session;

/// What an export wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exported {
    /// Every file or folder written into the destination, target by target.
    pub written: Vec<PathBuf>,
}

/// Copies the artifacts of the session's targets (not of their dependencies) into `dir`.
/// Artifacts the build found in the remote store only are pulled first; targets without an
/// artifact (failed or skipped) are left out.
pub fn export(session: &Session, report: &BuildReport, dir: &Path) -> Result<Exported, OpError> {
    fs_err::create_dir_all(dir).map_err(OpError::io("write", dir))?;
    let mut exported = Exported::default();
    // Each destination name, with the target that wrote it and its content: two platforms
    // of one policy make wheels of one name, and the second must not silently replace the
    // first.
    let mut written: HashMap<PathBuf, (String, refine_digest::Digest)> = HashMap::new();
    for &id in session.roots() {
        if super::request::wheelhouse::superseded(session, id) {
            continue;
        }
        let Some(digest) = ensure_local(session, report, id)? else {
            continue;
        };
        let tree = session.store().unpack(digest)?;
        let wheels = wheels_in(&tree)?;
        if wheels.is_empty() {
            let to = dir.join(&session.graph().target(id).label.name);
            copy_tree(&tree, &to).map_err(OpError::io("write", &to))?;
            exported.written.push(to);
        }
        for wheel in wheels {
            let to = dir.join(wheel.file_name().unwrap_or_default());
            let label = session.graph().target(id).label.to_string();
            let content = refine_digest::sha256_file(&wheel)
                .map_err(|e| OpError::io("read", &wheel)(std::io::Error::other(e)))?
                .0;
            match written.get(&to) {
                Some((_, same)) if *same == content => continue,
                Some((first, _)) => {
                    return Err(OpError::OutputClash {
                        name: to.file_name().unwrap_or_default().to_string_lossy().into(),
                        first: first.clone(),
                        second: label,
                    });
                }
                None => {}
            }
            fs_err::copy(&wheel, &to).map_err(OpError::io("write", &to))?;
            written.insert(to.clone(), (label, content));
            exported.written.push(to);
        }
    }
    // A build request's wheelhouse: the index's wheels it takes, and a simple index.
    let reused = super::request::wheelhouse::add_reused(session, dir)?;
    // Reused wheels imply a requested wheelhouse.
    if super::request::wheelhouse::asked(session) {
        exported.written.extend(reused);
        exported
            .written
            .push(super::request::wheelhouse::write_simple_index(dir)?);
    }
    Ok(exported)
}
