//! `refine request`: build requests (docs/requests.md). `lock` resolves a request with the
//! pinned uv for each Python version and platform, the target's and not the host's (uv's
//! `--python-platform`), pins each package's sdist and, where the strategy allows, its
//! platform wheel, then pins each sdist's PEP 517 build requirements for the same target;
//! `check` says whether the lock is current; `new` writes a request file.

mod pylock;
mod sdist;
mod uv;
pub mod wheelhouse;

use std::path::Path;

use refine_rules::diag::{Errors, InputError};
use refine_rules::rules::request::{
    LockedFile, LockedPackage, Request, RequestLock, Resolution, Strategy, Take,
    render_request_lock, request_lock_path, request_path,
};
use refine_rules::rules::{LoadedRequest, Pinned, Sha256, Workspace, normalize};

use super::OpError;
use crate::session::{SessionOptions, load_graph_without_locks, open_workspace_store};

pub use uv::Uv;

/// What happens while locking, as it happens.
#[derive(Debug)]
pub enum RequestEvent<'a> {
    Resolving { python: &'a str, platform: &'a str },
    BuildRequirements { package: &'a str, platform: &'a str },
}

/// What `refine request lock` wrote.
#[derive(Debug, Default)]
pub struct Locked {
    pub file: String,
    /// Per resolution: platform, Python version, packages to build, wheels reused.
    pub resolutions: Vec<(String, String, usize, usize)>,
}

fn find<'w>(ws: &'w Workspace, name: &str) -> Result<&'w LoadedRequest, OpError> {
    ws.requests
        .iter()
        .find(|r| r.request.name == name)
        .ok_or_else(|| OpError::UnknownRequest {
            name: name.to_string(),
            known: ws
                .requests
                .iter()
                .map(|r| r.request.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn resolver(ws: &Workspace) -> Result<Pinned, OpError> {
    ws.config
        .defaults
        .resolver
        .clone()
        .ok_or(OpError::NoResolver)
}

/// An error shown at the request's name in its file.
fn at_request(
    ws: &Workspace,
    request: &Request,
    code: &'static str,
    message: String,
    help: String,
) -> OpError {
    OpError::Rules(Errors(vec![
        InputError::at(
            code,
            &ws.files[request.at.file],
            request.at.span,
            message,
            "this request",
        )
        .with_help(help),
    ]))
}

/// Resolves request `name` and writes its lock.
pub fn lock(
    options: &SessionOptions,
    name: &str,
    on_event: &mut dyn FnMut(RequestEvent<'_>),
) -> Result<Locked, OpError> {
    let graph = load_graph_without_locks(options)?;
    let ws = &graph.workspace;
    let request = &find(ws, name)?.request;
    let pin = resolver(ws)?;
    let store = open_workspace_store(&graph, options.store.as_deref())?;
    let pip = refine_fetch::PipConfig::load();
    let uv = Uv::install(&store, &pip, &pin)?;
    let work =
        tempfile::tempdir_in(store.tmp_dir()).map_err(OpError::io("write", &store.tmp_dir()))?;

    let mut out = Locked {
        file: request_lock_path(name),
        ..Locked::default()
    };
    let mut resolutions = Vec::new();
    for platform_name in &request.platforms {
        let Some(platform) = ws.config.platform(platform_name) else {
            continue;
        };
        let target = format!("{}-{}", platform.arch, platform.policy);
        for python in &request.pythons {
            let py = python.to_string();
            on_event(RequestEvent::Resolving {
                python: &py,
                platform: platform_name,
            });
            let input = uv::Input::of_request(ws, request, work.path())?;
            let resolved = uv
                .compile(&input, &target, &py, false, work.path())
                .map_err(|message| {
                    at_request(
                        ws,
                        request,
                        "resolution-failed",
                        format!(
                            "Request `{name}` cannot be resolved for Python {py} on `{platform_name}`:\n{message}"
                        ),
                        "The resolver's message says which requirement cannot be met; fix the requirements, constraints or `override … version` and lock again".into(),
                    )
                })?;
            let mut packages = Vec::new();
            for p in resolved.packages {
                packages.push(choose(ws, request, &p, &py, platform_name)?);
            }
            for p in packages.iter_mut().filter(|p| p.take == Take::Sdist) {
                on_event(RequestEvent::BuildRequirements {
                    package: &p.name,
                    platform: platform_name,
                });
                let Some(sdist) = &p.sdist else { continue };
                let build = sdist::build_system(&store, &pip, &p.name, &p.version, sdist)?;
                p.backend = Some(build.backend.clone());
                let input = uv::Input::of_lines(&build.requires, work.path())?;
                let pinned = uv
                    .compile(&input, &target, &py, true, work.path())
                    .map_err(|message| OpError::BuildRequirements {
                        package: p.name.clone(),
                        version: p.version.clone(),
                        platform: platform_name.clone(),
                        python: py.clone(),
                        message,
                    })?;
                p.build_requires = pinned
                    .packages
                    .iter()
                    .map(|b| {
                        let w = pylock::best_wheel(&b.wheels).ok_or_else(|| {
                            OpError::BuildRequirements {
                                package: p.name.clone(),
                                version: p.version.clone(),
                                platform: platform_name.clone(),
                                python: py.clone(),
                                message: format!(
                                    "`{}` {} has no wheel for the platform",
                                    b.name, b.version
                                ),
                            }
                        })?;
                        Ok(Pinned {
                            name: b.name.clone(),
                            version: b.version.clone(),
                            sha256: Sha256(w.sha256.clone()),
                        })
                    })
                    .collect::<Result<_, OpError>>()?;
            }
            let built = packages.iter().filter(|p| p.take == Take::Sdist).count();
            out.resolutions.push((
                platform_name.clone(),
                py.clone(),
                built,
                packages.len() - built,
            ));
            resolutions.push(Resolution {
                python: python.clone(),
                platform: platform_name.clone(),
                packages,
            });
        }
    }
    let lock = RequestLock {
        name: name.to_string(),
        inputs: request.inputs_digest(&ws.config, &pin),
        resolver: pin.requirement(),
        resolutions,
        at: request.at,
    };
    let path = ws.root.join(&out.file);
    write_atomically(&path, &render_request_lock(&lock))?;
    Ok(out)
}

/// What a resolved package is taken as: the index's wheel when the strategy allows and one
/// fits, else its sdist.
fn choose(
    ws: &Workspace,
    request: &Request,
    p: &pylock::Package,
    python: &str,
    platform: &str,
) -> Result<LockedPackage, OpError> {
    let name = normalize(&p.name);
    let wheel = pylock::best_wheel(&p.wheels).map(|w| LockedFile {
        file: w.file.clone(),
        sha256: Sha256(w.sha256.clone()),
    });
    let sdist = p.sdist.as_ref().map(|s| LockedFile {
        file: s.file.clone(),
        sha256: Sha256(s.sha256.clone()),
    });
    let pure = wheel
        .as_ref()
        .is_some_and(|w| w.file.ends_with("-none-any.whl"));
    let forced = request.override_for(&name).is_some_and(|o| o.sdist);
    let take = match (request.strategy, &wheel, &sdist) {
        (Strategy::ReuseWheels, Some(_), _) if !forced => Take::Wheel,
        (_, _, Some(_)) => Take::Sdist,
        (Strategy::BuildAll, Some(_), None) if pure => Take::Wheel,
        _ => {
            return Err(at_request(
                ws,
                request,
                "nothing-to-take",
                format!(
                    "`{name}` {} has no sdist{} for Python {python} on `{platform}`",
                    p.version,
                    if request.strategy == Strategy::ReuseWheels {
                        " and no wheel"
                    } else {
                        ""
                    }
                ),
                "Pin another version with `override \"NAME\" { version \"==…\" }`, or use `strategy \"reuse-wheels\"`".into(),
            ));
        }
    };
    Ok(LockedPackage {
        name,
        version: p.version.clone(),
        take,
        sdist,
        wheel,
        backend: None,
        build_requires: Vec::new(),
        at: request.at,
    })
}

fn write_atomically(path: &Path, text: &str) -> Result<(), OpError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(OpError::io("write", path))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(OpError::io("write", path))?;
    tmp.persist(path)
        .map_err(|e| OpError::io("write", path)(e.error))?;
    Ok(())
}

/// Whether request `name`'s lock is current, offline: `Ok(None)` when it is, else the
/// diagnostic the build would give.
pub fn check(options: &SessionOptions, name: &str) -> Result<Option<Errors>, OpError> {
    let graph = load_graph_without_locks(options)?;
    find(&graph.workspace, name)?;
    match crate::session::load_graph(options) {
        Ok(_) => Ok(None),
        Err(crate::session::SessionError::Rules(errors)) => Ok(Some(errors)),
        Err(e) => Err(e.into()),
    }
}

/// Writes `requests/NAME.kdl` for `refine request new`; refuses to replace one.
pub fn new_request(root: &Path, name: &str, text: &str) -> Result<String, OpError> {
    let rel = request_path(name);
    let path = root.join(&rel);
    if path.exists() {
        return Err(OpError::RequestExists { file: rel });
    }
    fs_err::create_dir_all(root.join("requests")).map_err(OpError::io("write", &path))?;
    write_atomically(&path, text)?;
    Ok(rel)
}
