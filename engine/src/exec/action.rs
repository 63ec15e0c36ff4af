//! Turning a target whose dependencies are built into an action: the sandbox spec (root,
//! mounts, environment, command), the inputs staged for it, and how its outputs are checked.
//! Some targets need no sandbox at all (a base from a workspace tree, an adopted runtime).

use std::path::{Path, PathBuf};

use refine_sandbox::{Bind, Limits, Spec, Writable};

use crate::graph::{TargetGraph, TargetId};
use crate::rules::{BaseOrigin, RuntimeBuild, SourceSpec, Spec as RuleSpec};
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
}

/// What to do for a target.
pub enum Prepared {
    /// The artifact is this host folder, as it is (no action runs).
    Direct {
        tree: PathBuf,
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
    let mut at = id;
    for _ in 0..graph.len() {
        match &graph.target(at).spec {
            RuleSpec::Base(b) => return b.arch.clone(),
            _ => match graph.deps(at).first() {
                Some(&d) => at = d,
                None => break,
            },
        }
    }
    host_arch().to_string()
}

fn source_file(source: &SourceSpec) -> Option<(&str, &str)> {
    match source {
        SourceSpec::Pypi { .. } => None,
        SourceSpec::Url { file, sha256, .. } | SourceSpec::Debian { file, sha256, .. } => {
            Some((file, &sha256.0))
        }
        SourceSpec::Path { .. } => None,
    }
}

/// Links (or copies) a stored blob into the staging folder under `name`.
fn stage_blob(
    store: &LocalStore,
    sha256: &str,
    dir: &Path,
    name: &str,
) -> Result<(String, String), ExecError> {
    let digest = Digest::parse(&format!("sha256:{sha256}"))?;
    let blob = store.blob_path(&digest);
    if !blob.is_file() {
        return Err(ExecError::MissingSource {
            digest: digest.to_string(),
            name: name.to_string(),
        });
    }
    let to = dir.join(name);
    if fs_err::hard_link(&blob, &to).is_err() {
        fs_err::copy(&blob, &to).map_err(|e| ExecError::io(&to, e))?;
    }
    Ok((name.to_string(), digest.to_string()))
}

/// Prepares the action of `id`; `scratch` is a fresh folder the action may use.
pub fn prepare(
    graph: &TargetGraph,
    id: TargetId,
    store: &LocalStore,
    built: &dyn Fn(TargetId) -> Built,
    scratch: &Path,
    jobs_per_action: usize,
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
    let mut inputs = Vec::new();
    let dep_input = |d: TargetId| (graph.target(d).label.to_string(), built(d).content);

    match &target.spec {
        RuleSpec::Base(b) => match &b.origin {
            BaseOrigin::Tree { path } => Ok(Prepared::Direct {
                tree: root.join(path),
                inputs,
            }),
            _ => Err(ExecError::Unsupported {
                label: target.label.to_string(),
                what: "bases made by `bootstrap`, `image` or `layout`".into(),
            }),
        },
        RuleSpec::Runtime(r) => match &r.build {
            RuntimeBuild::Adopt { interpreter } => {
                // The runtime is the base's own interpreter: the artifact records which one.
                let record =
                    serde_json::json!({ "adopt": interpreter, "python": r.python.to_string() });
                fs_err::write(out.join("runtime.json"), format!("{record}\n"))
                    .map_err(|e| ExecError::io(&out, e))?;
                inputs.push(dep_input(deps[0]));
                Ok(Prepared::Direct { tree: out, inputs })
            }
            RuntimeBuild::Source { .. } => Err(ExecError::Unsupported {
                label: target.label.to_string(),
                what: "CPython runtimes built from source".into(),
            }),
        },
        RuleSpec::Pack(p) => {
            let base = built(deps[0]);
            let base_tree = store.unpack(&base.digest)?;
            inputs.push(dep_input(deps[0]));
            for s in &p.sources {
                if let Some((file, sha)) = source_file(s) {
                    inputs.push(stage_blob(store, sha, &src, file)?);
                }
            }
            let recipe = root.join(&p.recipe);
            fs_err::copy(&recipe, src.join("recipe.sh")).map_err(|e| ExecError::io(&recipe, e))?;
            let mut binds = Vec::new();
            let mut pack_dirs = Vec::new();
            for &d in &deps[1..] {
                let b = built(d);
                let tree = store.unpack(&b.digest)?;
                let mount = format!(
                    "/opt/packs/{}/{}",
                    graph.target(d).label.name,
                    b.content.trim_start_matches("sha256:")
                );
                binds.push(Bind {
                    source: tree,
                    target: PathBuf::from(&mount),
                    read_only: true,
                });
                pack_dirs.push(mount);
                inputs.push(dep_input(d));
            }
            binds.push(Bind {
                source: src.clone(),
                target: PathBuf::from("/src"),
                read_only: true,
            });
            let mut env = base_env(&pack_dirs, jobs_per_action);
            env.extend(p.env.iter().map(|(k, v)| (k.clone(), v.clone())));
            let arch = arch_of(graph, id);
            let mut spec = Spec::new(
                base_tree,
                vec!["/bin/sh".into(), "-e".into(), "/src/recipe.sh".into()],
            );
            spec.binds = binds;
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
            spec.timeout = Some(std::time::Duration::from_secs(6 * 3600));
            spec.log = Some(scratch.join("log"));
            Ok(Prepared::Sandboxed {
                spec: Box::new(spec),
                out,
                check: OutputCheck::NonEmpty,
                inputs,
            })
        }
        RuleSpec::Wheel(_) => Err(ExecError::Unsupported {
            label: target.label.to_string(),
            what: "wheels".into(),
        }),
        RuleSpec::Repair(_) => Err(ExecError::Unsupported {
            label: target.label.to_string(),
            what: "repairs".into(),
        }),
    }
}

/// The environment every action starts from; packs are found through the usual variables.
fn base_env(pack_dirs: &[String], jobs: usize) -> Vec<(String, String)> {
    let join = |suffix: &str| {
        pack_dirs
            .iter()
            .map(|d| format!("{d}/{suffix}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let mut path = pack_dirs
        .iter()
        .map(|d| format!("{d}/bin"))
        .collect::<Vec<_>>();
    path.push(DEFAULT_PATH.to_string());
    vec![
        ("PATH".into(), path.join(":")),
        ("HOME".into(), "/work".into()),
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

/// Checks an action's outputs; the reason, when they will not do.
pub fn check_outputs(out: &Path, check: OutputCheck) -> Result<(), String> {
    let entries: Vec<PathBuf> = match fs_err::read_dir(out) {
        Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
        Err(e) => return Err(format!("cannot read `/out`: {e}")),
    };
    match check {
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
