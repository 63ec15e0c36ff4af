//! `refine request`: build requests (docs/requests.md). `lock` resolves a request with the
//! pinned uv for each Python version and platform, the target's and not the host's (uv's
//! `--python-platform`), pins each package's sdist and, where the strategy allows, its
//! platform wheel, then pins each sdist's PEP 517 build requirements for the same target;
//! `check` says whether the lock is current; `new` writes a request file.

pub mod probe;
mod pylock;
mod resolve;
mod sdist;
pub mod summary;
mod uv;
pub mod wheelhouse;

use std::path::Path;

use refine_rules::diag::{Errors, InputError};
use refine_rules::rules::request::{
    Request, RequestLock, Take, render_request_lock, request_lock_path, request_path,
};
use refine_rules::rules::{LoadedRequest, Pinned, Workspace};

use super::OpError;
use crate::session::{SessionOptions, load_graph_without_locks, open_workspace_store};

pub use uv::Uv;

/// What happens while locking, as it happens.
#[derive(Debug)]
pub enum RequestEvent<'a> {
    Resolving {
        python: &'a str,
        platform: &'a str,
    },
    /// The probes of pass `pass` (1, 2, …) are built.
    Probing {
        pass: usize,
    },
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
pub(super) fn at_request(
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

/// How many times a lock resolves and probes before it gives up on backends that keep
/// asking for more: each pass adds what the last one's probes asked for.
const MAX_PASSES: usize = 4;

/// Resolves request `name` and writes its lock. With `probes` (the observer of their
/// builds), each sdist's backend is asked in the sandbox what else its build needs
/// ([`probe`]); without, the build systems' `requires` are all that is pinned.
pub fn lock(
    options: &SessionOptions,
    name: &str,
    probes: Option<&dyn refine_exec::Observer>,
    on_event: &mut dyn FnMut(RequestEvent<'_>),
) -> Result<Locked, OpError> {
    let graph = load_graph_without_locks(options)?;
    let ws = &graph.workspace;
    let request = &find(ws, name)?.request;
    let pin = resolver(ws)?;
    let store = open_workspace_store(&graph, options.store.as_deref())?;
    // pip's configuration comes from running pip (refine-fetch's `pip.rs` says why), which
    // takes most of a second: uv, when an earlier lock unpacked it, finds the interpreters
    // meanwhile.
    let pythons: Vec<String> = request.pythons.iter().map(ToString::to_string).collect();
    let (pip, early) = std::thread::scope(|s| {
        let pip = s.spawn(refine_fetch::PipConfig::load);
        let early = Uv::unpacked(&store, &pin);
        if let Some(uv) = &early {
            uv.find_interpreters(&pythons);
        }
        let pip = pip
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (pip, early)
    });
    let uv = match early {
        Some(uv) => uv.with_indexes(&pip),
        None => Uv::install(&store, &pip, &pin)?,
    };
    let work =
        tempfile::tempdir_in(store.tmp_dir()).map_err(OpError::io("write", &store.tmp_dir()))?;

    let mut out = Locked {
        file: request_lock_path(name),
        ..Locked::default()
    };
    // Every platform and Python version at once: uv's time is mostly the index's.
    let mut jobs = Vec::new();
    for platform_name in &request.platforms {
        let Some(platform) = ws.config.platform(platform_name) else {
            continue;
        };
        for python in &request.pythons {
            on_event(RequestEvent::Resolving {
                python: &python.to_string(),
                platform: platform_name,
            });
            jobs.push((
                platform_name.clone(),
                format!("{}-{}", platform.arch, platform.policy),
                python.clone(),
            ));
        }
    }
    // The lock this one replaces, if it reads cleanly: its build-requirement questions are
    // asked while the closures are resolved.
    let previous = fs_err::read_to_string(ws.root.join(&out.file))
        .ok()
        .and_then(|text| refine_rules::rules::request::read_previous_lock(&out.file, &text));
    let mut resolver = resolve::Resolver {
        ws,
        request,
        store: &store,
        pip: &pip,
        uv: &uv,
        work: work.path(),
        memo: std::sync::Mutex::default(),
        systems: std::sync::Mutex::default(),
        asked: std::collections::BTreeMap::new(),
    };
    // Resolved, then probed, until the backends ask for nothing the pins lack: a pass whose
    // probes find more resolves again with it (each distinct question to uv once in all).
    let mut pass = 1;
    let lock = loop {
        let results = resolve::parallel(&jobs, |(platform, target, python)| {
            let previous = previous.as_ref().and_then(|lock| {
                lock.resolutions
                    .iter()
                    .find(|r| r.platform == *platform && r.python == *python)
            });
            resolver.resolve(platform, target, python, previous)
        });
        let lock = RequestLock {
            name: name.to_string(),
            inputs: request.inputs_digest(&ws.config, &pin),
            resolver: pin.requirement(),
            resolutions: results.into_iter().collect::<Result<_, _>>()?,
            at: request.at,
        };
        let Some(observer) = probes else {
            break lock;
        };
        on_event(RequestEvent::Probing { pass });
        let answers = probe::ask(options, &ws.root, name, &lock, observer)?;
        let mut more = false;
        for (asked, unmet) in &answers.unmet {
            let known = resolver.asked.entry(asked.clone()).or_default();
            for requirement in unmet {
                if !known.contains(requirement) {
                    known.push(requirement.clone());
                    more = true;
                }
            }
        }
        // A backend that failed when asked fails the same way in the next pass; one left
        // unasked may be asked once what this pass found is pinned.
        if !answers.failed.is_empty() {
            return Err(OpError::ProbesFailed {
                request: name.to_string(),
                failures: answers.failures(),
            });
        }
        if more && pass < MAX_PASSES {
            pass += 1;
            continue;
        }
        if !answers.skipped.is_empty() {
            return Err(OpError::ProbesFailed {
                request: name.to_string(),
                failures: answers.failures(),
            });
        }
        if let Some(((platform, python, package), unmet)) = answers.unmet.iter().next() {
            return Err(OpError::ProbesUnsettled {
                request: name.to_string(),
                package: package.clone(),
                platform: platform.clone(),
                python: python.clone(),
                unmet: unmet.join(", "),
            });
        }
        break lock;
    };
    for res in &lock.resolutions {
        let built = res
            .packages
            .iter()
            .filter(|p| p.take == Take::Sdist)
            .count();
        out.resolutions.push((
            res.platform.clone(),
            res.python.to_string(),
            built,
            res.packages.len() - built,
        ));
    }
    let path = ws.root.join(&out.file);
    write_atomically(&path, &render_request_lock(&lock))?;
    Ok(out)
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
