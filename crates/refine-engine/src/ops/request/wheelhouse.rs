//! A request's wheelhouse: the wheels `refine build //requests/NAME/... --out DIR` leaves in
//! DIR — the repaired wheels built here and the index's wheels the lock takes, verified by
//! sha256 — and a PEP 503 simple index over them (`DIR/simple/`), so that `pip install
//! --no-index --find-links DIR` or `--index-url file://DIR/simple` installs the request
//! offline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use refine_fetch::{Fetchable, PipConfig};
use refine_rules::rules::normalize;
use refine_rules::rules::request::Take;

use crate::ops::OpError;
use crate::session::Session;

/// The (request, platform, Python version) triples the session's roots belong to, and every
/// triple of the requests a pattern named whole.
pub(super) fn requested(session: &Session) -> BTreeSet<(String, String, String)> {
    let graph = session.graph();
    let mut out = BTreeSet::new();
    for loaded in &graph.workspace.requests {
        let Some(lock) = &loaded.lock else { continue };
        if session.whole_requests().contains(&lock.name) {
            for res in &lock.resolutions {
                out.insert((
                    lock.name.clone(),
                    res.platform.clone(),
                    res.python.to_string(),
                ));
            }
        }
    }
    for &id in session.roots() {
        let t = graph.target(id);
        let Some(name) = t.label.package.strip_prefix("requests/") else {
            continue;
        };
        if let (Some(platform), Some(python)) = (&t.platform, t.python()) {
            out.insert((name.to_string(), platform.clone(), python.to_string()));
        } else if let refine_rules::rules::Spec::Repair(r) = &t.spec
            && let Some(w) = graph.find(&r.wheel.label)
            && let (Some(platform), Some(python)) = (&t.platform, graph.target(w).python())
        {
            out.insert((name.to_string(), platform.clone(), python.to_string()));
        }
    }
    out
}

/// Whether `id` is a request's wheel target whose repair is also among the roots: the
/// wheelhouse holds the repaired wheel only.
pub fn superseded(session: &Session, id: refine_rules::graph::TargetId) -> bool {
    let graph = session.graph();
    let t = graph.target(id);
    if !t.label.package.starts_with("requests/") || t.kind() != refine_digest::Kind::Wheel {
        return false;
    }
    session.roots().iter().any(|&r| {
        matches!(&graph.target(r).spec, refine_rules::rules::Spec::Repair(rep) if rep.wheel.label == t.label)
    })
}

/// Whether the session asks for a request's wheelhouse (and so for its simple index).
pub fn asked(session: &Session) -> bool {
    !requested(session).is_empty()
}

/// Copies the wheels the requested resolutions take from the index into `dir`, each fetched
/// by its sha256 (from the store when it is there). Returns the files written.
pub fn add_reused(session: &Session, dir: &Path) -> Result<Vec<PathBuf>, OpError> {
    let wanted = requested(session);
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let ws = &session.graph().workspace;
    let store = session.store();
    let pip = PipConfig::load();
    let mut written = Vec::new();
    // A pure-Python wheel is the same file on every platform: copied once.
    let mut names: BTreeMap<String, (String, String)> = BTreeMap::new();
    for loaded in &ws.requests {
        let Some(lock) = &loaded.lock else { continue };
        for res in &lock.resolutions {
            let key = (
                lock.name.clone(),
                res.platform.clone(),
                res.python.to_string(),
            );
            if !wanted.contains(&key) {
                continue;
            }
            for p in res.packages.iter().filter(|p| p.take == Take::Wheel) {
                let Some(wheel) = &p.wheel else { continue };
                let at = format!("{} on {}", p.name, res.platform);
                match names.get(&wheel.file) {
                    Some((sha, _)) if *sha == wheel.sha256.0 => continue,
                    Some((_, first)) => {
                        return Err(OpError::OutputClash {
                            name: wheel.file.clone(),
                            first: first.clone(),
                            second: at,
                        });
                    }
                    None => {}
                }
                names.insert(wheel.file.clone(), (wheel.sha256.0.clone(), at));
                let item = Fetchable::Pypi {
                    project: p.name.clone(),
                    version: p.version.clone(),
                    sha256: wheel.sha256.0.clone(),
                };
                let (digest, _) = refine_fetch::fetch(store, &item, &pip, &store.tmp_dir())?;
                let from = store.existing_blob_path(&digest)?;
                let to = dir.join(&wheel.file);
                fs_err::copy(&from, &to).map_err(OpError::io("write", &to))?;
                written.push(to);
            }
        }
    }
    Ok(written)
}

/// The project a wheel file belongs to (PEP 427: `{name}-{version}-…`), normalized.
fn project_of(file: &str) -> Option<String> {
    file.split('-').next().map(normalize)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes `dir/simple/index.html` and one page per project (PEP 503), linking every `.whl`
/// of `dir` with its sha256.
pub fn write_simple_index(dir: &Path) -> Result<PathBuf, OpError> {
    let mut projects: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for entry in fs_err::read_dir(dir).map_err(OpError::io("read", dir))? {
        let entry = entry.map_err(OpError::io("read", dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.ends_with(".whl") {
            continue;
        }
        let Some(project) = project_of(&name) else {
            continue;
        };
        let sha = refine_digest::sha256_file(&entry.path())
            .map_err(|e| OpError::io("read", &entry.path())(std::io::Error::other(e)))?;
        let hex = sha.0.hex();
        projects.entry(project).or_default().push((name, hex));
    }
    let simple = dir.join("simple");
    fs_err::create_dir_all(&simple).map_err(OpError::io("write", &simple))?;
    let mut index = String::from(
        "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>Simple index</title></head><body>\n",
    );
    for (project, files) in &mut projects {
        files.sort();
        index.push_str(&format!("<a href=\"{0}/\">{0}</a><br>\n", escape(project)));
        let mut page = format!(
            "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>Links for {0}</title></head><body>\n<h1>Links for {0}</h1>\n",
            escape(project)
        );
        for (file, sha) in files.iter() {
            page.push_str(&format!(
                "<a href=\"../../{0}#sha256={sha}\">{0}</a><br>\n",
                escape(file)
            ));
        }
        page.push_str("</body></html>\n");
        let pdir = simple.join(project);
        fs_err::create_dir_all(&pdir).map_err(OpError::io("write", &pdir))?;
        let path = pdir.join("index.html");
        fs_err::write(&path, page).map_err(OpError::io("write", &path))?;
    }
    index.push_str("</body></html>\n");
    let path = simple.join("index.html");
    fs_err::write(&path, index).map_err(OpError::io("write", &path))?;
    Ok(simple)
}
