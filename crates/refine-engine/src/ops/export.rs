//! `refine build --out DIR`: copy the artifacts of the requested targets out of the store,
//! wheels as `.whl` files, other artifacts as folders named after their target.

use std::path::{Path, PathBuf};

use refine_exec::BuildReport;

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
    for &id in session.roots() {
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
            fs_err::copy(&wheel, &to).map_err(OpError::io("write", &to))?;
            exported.written.push(to);
        }
    }
    Ok(exported)
}

/// Copies a tree, keeping symbolic links as links (an unpacked artifact holds no others).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs_err::create_dir_all(to)?;
    for entry in fs_err::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else if kind.is_symlink() {
            let target = fs_err::read_link(entry.path())?;
            // A link left by an earlier export is replaced.
            match fs_err::remove_file(&dest) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            fs_err::os::unix::fs::symlink(target, &dest)?;
        } else {
            fs_err::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}
