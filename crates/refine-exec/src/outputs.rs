//! Judging what an action left before it may become an artifact: `/out` must hold what its
//! kind promises, and the workspace folders it read must still be the ones its key names.

use std::path::{Path, PathBuf};

use refine_plan::key::KeyFields;
use refine_rules::graph::{TargetGraph, TargetId};

use crate::error::{ActionError, OutputError};
use crate::files::wheels_in;
use crate::stage::{OutputCheck, live_trees};

/// What becomes the artifact.
#[derive(Clone, Debug)]
pub enum Output {
    /// A folder, stored as one tree layer.
    Tree(PathBuf),
    /// A wheel, stored as itself: a file layer titled with its name.
    Wheel(PathBuf),
}

/// Checks an action's `/out` (the host folder `out`) against what its kind promises.
pub fn check_outputs(out: &Path, check: OutputCheck) -> Result<Output, OutputError> {
    let read = |source| OutputError::Read { source };
    match check {
        OutputCheck::Runtime if !out.join("bin/python3").exists() => Err(OutputError::NoPython),
        OutputCheck::Runtime => Ok(Output::Tree(out.to_path_buf())),
        OutputCheck::NonEmpty => {
            let mut entries = fs_err::read_dir(out).map_err(read)?;
            match entries.next() {
                None => Err(OutputError::Empty),
                Some(_) => Ok(Output::Tree(out.to_path_buf())),
            }
        }
        OutputCheck::OneWheel => {
            let mut wheels = wheels_in(out).map_err(read)?;
            match wheels.len() {
                1 => Ok(Output::Wheel(wheels.remove(0))),
                0 => Err(OutputError::NoWheel),
                count => Err(OutputError::Wheels { count }),
            }
        }
    }
}

/// Fails if a workspace folder the action read changed while it ran: its new tree digest is
/// not among the key's fields, so the artifact would be stored under the key of old contents.
pub fn check_live_trees(
    graph: &TargetGraph,
    id: TargetId,
    fields: &KeyFields,
) -> Result<(), ActionError> {
    let flat = fields.flat();
    for path in live_trees(graph, id) {
        let now = refine_digest::hash_tree(&graph.workspace.root.join(&path))?;
        let now = format!("blake3:{}", now.hex());
        if !flat.iter().any(|(_, v)| v.contains(&now)) {
            return Err(ActionError::ChangedDuringBuild { path });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_judged_by_kind() {
        let out = tempfile::tempdir().unwrap();
        let o = out.path();
        assert!(matches!(
            check_outputs(o, OutputCheck::NonEmpty),
            Err(OutputError::Empty)
        ));
        assert!(matches!(
            check_outputs(o, OutputCheck::OneWheel),
            Err(OutputError::NoWheel)
        ));
        assert!(matches!(
            check_outputs(o, OutputCheck::Runtime),
            Err(OutputError::NoPython)
        ));
        fs_err::write(o.join("a-1-py3-none-any.whl"), "").unwrap();
        match check_outputs(o, OutputCheck::OneWheel) {
            Ok(Output::Wheel(p)) => assert_eq!(p, o.join("a-1-py3-none-any.whl")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            check_outputs(o, OutputCheck::NonEmpty),
            Ok(Output::Tree(_))
        ));
        fs_err::write(o.join("b-1-py3-none-any.whl"), "").unwrap();
        assert!(matches!(
            check_outputs(o, OutputCheck::OneWheel),
            Err(OutputError::Wheels { count: 2 })
        ));
        assert!(matches!(
            check_outputs(&o.join("missing"), OutputCheck::NonEmpty),
            Err(OutputError::Read { .. })
        ));
    }
}
