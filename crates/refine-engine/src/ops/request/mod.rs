//! `refine request`: build requests (docs/requests.md). `lock` resolves a request with the
//! pinned uv for each Python version and platform, the target's and not the host's (uv's
//! `--python-platform`), pins each package's sdist and, where the strategy allows, its
//! platform wheel, then pins each sdist's PEP 517 build requirements for the same target;
//! `check` says whether the lock is current; `new` writes a request file.

mod pylock;
mod sdist;
pub mod summary;
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
            let ctx = BuildContext {
                store: &store,
                pip: &pip,
                uv: &uv,
                target: &target,
                python: &py,
                platform: platform_name,
                work: work.path(),
            };
            pin_build_requirements(&ctx, &mut packages, on_event)?;
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

/// Where one resolution's build requirements are pinned.
struct BuildContext<'a> {
    store: &'a refine_store::LocalStore,
    pip: &'a refine_fetch::PipConfig,
    uv: &'a Uv,
    target: &'a str,
    python: &'a str,
    platform: &'a str,
    work: &'a Path,
}

impl BuildContext<'_> {
    fn error(&self, p: &LockedPackage, message: String) -> OpError {
        OpError::BuildRequirements {
            package: p.name.clone(),
            version: p.version.clone(),
            platform: self.platform.to_string(),
            python: self.python.to_string(),
            message,
        }
    }
}

/// Pins the build requirements of every package built from its sdist: to the index's wheel
/// for the platform, or, for a build requirement the resolution builds itself (or one with
/// no wheel for the platform, which is then added to it, taken from its sdist), to that
/// built wheel.
fn pin_build_requirements(
    ctx: &BuildContext<'_>,
    packages: &mut Vec<LockedPackage>,
    on_event: &mut dyn FnMut(RequestEvent<'_>),
) -> Result<(), OpError> {
    let mut next = 0;
    while next < packages.len() {
        let at = next;
        next += 1;
        if packages[at].take != Take::Sdist {
            continue;
        }
        on_event(RequestEvent::BuildRequirements {
            package: &packages[at].name,
            platform: ctx.platform,
        });
        let Some(sdist) = packages[at].sdist.clone() else {
            continue;
        };
        let (name, version) = (packages[at].name.clone(), packages[at].version.clone());
        let build = sdist::build_system(ctx.store, ctx.pip, &name, &version, &sdist)?;
        // The versions the request builds itself come first: its build requirements use
        // those wheels where they can.
        let ours: Vec<String> = packages
            .iter()
            .filter(|o| o.take == Take::Sdist && o.name != name)
            .map(|o| format!("{}=={}", o.name, o.version))
            .collect();
        let preferred = uv::Input::of_lines(&build.requires, &ours, ctx.work)?;
        let plain = uv::Input::of_lines(&build.requires, &[], ctx.work)?;
        // Wheels first; when some build requirement has none for the platform, sdists too.
        let attempts = [(&preferred, true), (&plain, true), (&plain, false)];
        let mut errors = Vec::new();
        let mut resolved = None;
        for (input, only_binary) in attempts {
            match ctx
                .uv
                .compile(input, ctx.target, ctx.python, only_binary, ctx.work)
            {
                Ok(r) => {
                    resolved = Some(r);
                    break;
                }
                Err(e) => errors.push(e),
            }
        }
        let Some(resolved) = resolved else {
            // The wheels-only attempt without the request's versions says it best.
            let message = errors.swap_remove(1);
            return Err(ctx.error(&packages[at], message));
        };
        let mut pins = Vec::new();
        let mut built = Vec::new();
        for b in &resolved.packages {
            let b_name = normalize(&b.name);
            let here = packages
                .iter()
                .find(|o| o.name == b_name && o.version == b.version && o.take == Take::Sdist);
            if here.is_some() {
                built.push((b_name, b.version.clone()));
                continue;
            }
            if let Some(w) = pylock::best_wheel(&b.wheels) {
                pins.push(Pinned {
                    name: b.name.clone(),
                    version: b.version.clone(),
                    sha256: Sha256(w.sha256.clone()),
                });
                continue;
            }
            // No wheel for the platform: build it here too, from its sdist.
            if packages.iter().any(|o| o.name == b_name) {
                return Err(ctx.error(
                    &packages[at],
                    format!(
                        "it needs `{b_name}` {} built from its sdist, but the request takes another version of `{b_name}`; pin one version with `override \"{b_name}\" {{ version \"==…\" }}`",
                        b.version
                    ),
                ));
            }
            let Some(s) = &b.sdist else {
                return Err(ctx.error(
                    &packages[at],
                    format!(
                        "`{b_name}` {} has neither a wheel for the platform nor an sdist",
                        b.version
                    ),
                ));
            };
            packages.push(LockedPackage {
                name: b_name.clone(),
                version: b.version.clone(),
                take: Take::Sdist,
                sdist: Some(LockedFile {
                    file: s.file.clone(),
                    sha256: Sha256(s.sha256.clone()),
                }),
                wheel: None,
                backend: None,
                build_requires: Vec::new(),
                built_requires: Vec::new(),
                at: packages[at].at,
            });
            built.push((b_name, b.version.clone()));
        }
        let p = &mut packages[at];
        p.backend = Some(build.backend);
        p.build_requires = pins;
        p.built_requires = built;
    }
    Ok(())
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
        built_requires: Vec::new(),
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

/// Whether a root of the session belongs to a request that says `keep-going`.
pub fn keep_going(session: &crate::session::Session) -> bool {
    let graph = session.graph();
    session.roots().iter().any(|&id| {
        let package = &graph.target(id).label.package;
        graph.workspace.requests.iter().any(|r| {
            r.request.keep_going
                && *package == refine_rules::rules::request::request_package(&r.request.name)
        })
    })
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
