//! Judging what an action left before it may become an artifact: `/out` must hold what its
//! kind promises, the workspace folders it read must still be the ones its key names, and a
//! repaired wheel must keep its policy's promise (and is tagged with the lowest policy it
//! really meets).

use std::path::{Path, PathBuf};

use refine_plan::key::KeyFields;
use refine_rules::graph::{TargetGraph, TargetId};
use refine_rules::rules::Spec;
use refine_wheel::{Breach, Verdict, WheelError, judge_file};

use crate::error::{ActionError, OutputError};
use crate::files::wheels_in;
use crate::stage::{OutputCheck, PROBE_ANSWER, live_trees};

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
        OutputCheck::Probe if !out.join(PROBE_ANSWER).is_file() => Err(OutputError::NoProbeAnswer),
        OutputCheck::Probe => Ok(Output::Tree(out.to_path_buf())),
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

/// The policy a repair promises: its own, else its platform's (as its stage and key say);
/// `None` for a target that is not a repair.
fn repair_policy(graph: &TargetGraph, id: TargetId) -> Option<String> {
    let Spec::Repair(r) = &graph.target(id).spec else {
        return None;
    };
    Some(r.policy.clone().unwrap_or_else(|| {
        graph
            .base_of(id)
            .map_or_else(|| "linux".into(), |b| b.policy.clone())
    }))
}

/// The policies refine checks itself: the manylinux ones, whose data it embeds. Others
/// (`linux`, `musllinux_*`) are left to auditwheel.
fn checked(policy: &str) -> bool {
    policy.starts_with("manylinux")
}

/// The repaired wheel of repair `id` checked against the policy the repair promises (the
/// ceiling) and re-tagged with the lowest policy its ELF files really meet, plus the legacy
/// alias (`manylinux_2_17_s390x.manylinux2014_s390x`), written into `dir`. Any other output
/// is returned as it is. A wheel that breaks the ceiling fails the action, naming every file
/// and symbol version or library that breaks it: nothing is stored.
pub fn check_repaired_wheel(
    graph: &TargetGraph,
    id: TargetId,
    output: Output,
    dir: &Path,
) -> Result<Output, ActionError> {
    let (Some(policy), Output::Wheel(wheel)) = (repair_policy(graph, id), &output) else {
        return Ok(output);
    };
    if !checked(&policy) {
        return Ok(output);
    }
    let verdict = judge_file(wheel)?;
    verdict
        .check(&policy)
        .map_err(|e| policy_error(e, &verdict))?;
    let Some(lowest) = &verdict.lowest else {
        // No ELF files: no policy applies, and auditwheel's tag stands.
        return Ok(output);
    };
    fs_err::create_dir_all(dir).map_err(ActionError::io("create", dir))?;
    let retagged = refine_wheel::retag(wheel, &lowest.platform_tag(), dir)?;
    Ok(Output::Wheel(retagged))
}

/// A broken ceiling as the action's error; any other error of the check as it is.
fn policy_error(error: WheelError, verdict: &Verdict) -> ActionError {
    match error {
        WheelError::Exceeds {
            path,
            policy,
            breaches,
            advice,
        } => ActionError::PolicyBroken {
            wheel: file_name(&path),
            policy,
            breaches: list(&breaches),
            advice: repair_advice(advice, verdict),
        },
        other => ActionError::Wheel(other),
    }
}

/// refine-wheel's advice, said in terms of the rules.
fn repair_advice(advice: String, verdict: &Verdict) -> String {
    match &verdict.lowest {
        Some(lowest) => format!(
            "{advice} (`policy \"{}\"` on the repair rule, or the platform's `policy=`)",
            lowest.name()
        ),
        None => advice,
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn list(breaches: &[Breach]) -> String {
    breaches
        .iter()
        .map(|b| format!("  - {b}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why auditwheel refused to repair: when the wheel it was given already requires symbol
/// versions the promised policy does not allow, an error naming them (auditwheel's own
/// message names none) with the end of the log; `None` when that is not why (a grafted
/// library's symbols, a library it cannot find, …: the log says).
pub fn explain_refused_repair(
    graph: &TargetGraph,
    id: TargetId,
    input: &Path,
    tail: &str,
) -> Option<ActionError> {
    let policy = repair_policy(graph, id).filter(|p| checked(p))?;
    let verdict = judge_file(input).ok()?;
    let Err(WheelError::Exceeds { policy: tag, .. }) = verdict.check(&policy) else {
        return None;
    };
    let failure = verdict
        .failures
        .iter()
        .find(|f| f.policy.platform_tag() == tag)?;
    // Libraries are what repair grafts: only symbol versions explain a refusal.
    let symbols: Vec<Breach> = failure
        .breaches
        .iter()
        .filter(|b| b.prefix().is_some())
        .cloned()
        .collect();
    if symbols.is_empty() {
        return None;
    }
    // The lowest policy these symbols allow (libraries aside: repair grafts them).
    let symbols_only = |p: &refine_wheel::Policy| {
        verdict
            .failures
            .iter()
            .find(|f| f.policy == *p)
            .is_none_or(|f| f.breaches.iter().all(|b| b.prefix().is_none()))
    };
    let lowest = verdict
        .arch
        .and_then(|arch| {
            refine_wheel::policies_for(arch)
                .into_iter()
                .find(symbols_only)
        })
        .map(|p| p.name());
    let mut advice = "Build against an older glibc (a toolchain whose sysroot, libstdc++ and libgcc have a lower floor: they decide GLIBC, GLIBCXX, CXXABI and GCC)".to_owned();
    if let Some(lowest) = lowest {
        advice.push_str(&format!(
            ", or raise the policy to `{lowest}`, the lowest these symbols allow (`policy \"{lowest}\"` on the repair rule, or the platform's `policy=`)"
        ));
    }
    Some(ActionError::RepairRefused {
        wheel: file_name(input),
        policy: tag,
        breaches: list(&symbols),
        advice,
        tail: tail.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wheel with a real ELF file (compiled here with gcc: `arc4random` is `GLIBC_2.36` on
    /// this x86_64 host) judged against a promise it breaks: the action's error names the
    /// file, the symbol version and the policy, and says what to do in terms of the rules.
    #[test]
    fn a_broken_promise_names_files_and_symbols() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("r.c");
        fs_err::write(
            &c,
            "#include <stdlib.h>\nunsigned draw(void) { return arc4random(); }\n",
        )
        .unwrap();
        let so = dir.path().join("_r.so");
        let status = std::process::Command::new("gcc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&so)
            .arg(&c)
            .status()
            .expect("gcc must be installed for this test");
        assert!(status.success());
        let whl = dir.path().join("r-1.0-cp311-cp311-linux_x86_64.whl");
        let mut zip = zip::ZipWriter::new(fs_err::File::create(&whl).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("r/_r.so", options).unwrap();
        std::io::Write::write_all(&mut zip, &fs_err::read(&so).unwrap()).unwrap();
        zip.finish().unwrap();

        let verdict = judge_file(&whl).unwrap();
        let err = policy_error(verdict.check("manylinux2014").unwrap_err(), &verdict);
        assert!(matches!(err, ActionError::PolicyBroken { .. }), "{err:?}");
        let text = crate::describe(&err);
        assert!(
            text.starts_with(
                "The repaired wheel `r-1.0-cp311-cp311-linux_x86_64.whl` breaks its policy \
                 `manylinux_2_17_x86_64.manylinux2014_x86_64`:\n  - `r/_r.so` requires \
                 `GLIBC_2.36` (of `libc.so.6`)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "raise the policy to `manylinux_2_36_x86_64`, the lowest this wheel meets \
                 (`policy \"manylinux_2_36\"` on the repair rule, or the platform's `policy=`)"
            ),
            "{text}"
        );
        // The same wheel keeps a promise it can: no error.
        assert!(verdict.check("manylinux_2_36").is_ok());
    }

    /// Repair keys name the policy data the check judges by: a new auditwheel's data must
    /// change them.
    #[test]
    fn repair_keys_name_the_policy_data() {
        assert!(
            refine_plan::key::REPAIR_CHECK.ends_with(refine_wheel::POLICY_DATA),
            "{} vs {}",
            refine_plan::key::REPAIR_CHECK,
            refine_wheel::POLICY_DATA
        );
    }

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
