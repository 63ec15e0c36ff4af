//! Which skeleton directories, mirrored entries and symlinks the new root needs: a pure
//! function of the mount points and of listings of the root tree, so it is tested without
//! mounting anything.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::SandboxError;

/// The type of an entry in the root tree, or of a mount point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
    /// Sockets, fifos, devices: not mirrored.
    Other,
}

/// One step of building the skeleton, in order (parents before children).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A real directory of the skeleton (an ancestor of a mount point).
    Mkdir(PathBuf),
    /// An entry of the root tree, bound read-only at the same path.
    Mirror { path: PathBuf, kind: Kind },
    /// A symlink of the root tree, copied as is.
    Symlink { path: PathBuf },
}

/// Plans the skeleton for `targets` (absolute mount points). `list` gives the entries of a
/// directory of the root tree, `None` where the root has no such directory.
pub(crate) fn plan(
    targets: &[(PathBuf, Kind)],
    mut list: impl FnMut(&Path) -> Result<Option<Vec<(OsString, Kind)>>, SandboxError>,
) -> Result<Vec<Step>, SandboxError> {
    let target_set: BTreeSet<&Path> = targets.iter().map(|(path, _)| path.as_path()).collect();
    let mut skeleton: BTreeSet<&Path> = BTreeSet::new();
    for (target, _) in targets {
        skeleton.extend(target.ancestors().skip(1));
    }
    let mut steps = Vec::new();
    // BTreeSet order puts a path before every path below it.
    for dir in &skeleton {
        if *dir != Path::new("/") {
            steps.push(Step::Mkdir(dir.to_path_buf()));
        }
        let Some(mut entries) = list(dir)? else {
            continue;
        };
        entries.sort();
        for (name, kind) in entries {
            let path = dir.join(&name);
            if skeleton.contains(path.as_path()) || target_set.contains(path.as_path()) {
                continue;
            }
            match kind {
                Kind::Dir | Kind::File => steps.push(Step::Mirror { path, kind }),
                Kind::Symlink => steps.push(Step::Symlink { path }),
                Kind::Other => {}
            }
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) -> Result<Option<Vec<(OsString, Kind)>>, SandboxError> {
        let entries: &[(&str, Kind)] = match dir.to_str() {
            Some("/") => &[
                ("usr", Kind::Dir),
                ("bin", Kind::Symlink),
                ("opt", Kind::Dir),
                ("tmp", Kind::Dir),
                ("etc", Kind::Dir),
                ("hello", Kind::File),
                ("fifo", Kind::Other),
            ],
            Some("/opt") => &[("tool", Kind::Dir)],
            _ => return Ok(None),
        };
        Ok(Some(
            entries
                .iter()
                .map(|(n, k)| (OsString::from(n), *k))
                .collect(),
        ))
    }

    #[test]
    fn mirrors_the_root_around_mount_points() {
        let targets = vec![
            (PathBuf::from("/tmp"), Kind::Dir),
            (PathBuf::from("/work"), Kind::Dir),
            (PathBuf::from("/opt/python/cp312"), Kind::Dir),
            (PathBuf::from("/src"), Kind::Dir),
        ];
        let steps = plan(&targets, tree).expect("plan");
        let mirror = |p: &str, kind| Step::Mirror {
            path: p.into(),
            kind,
        };
        assert_eq!(
            steps,
            vec![
                Step::Symlink {
                    path: "/bin".into()
                },
                mirror("/etc", Kind::Dir),
                mirror("/hello", Kind::File),
                mirror("/usr", Kind::Dir),
                Step::Mkdir("/opt".into()),
                mirror("/opt/tool", Kind::Dir),
                Step::Mkdir("/opt/python".into()),
            ]
        );
    }
}
