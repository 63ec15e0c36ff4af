//! Loading the workspace's build requests: every `requests/*.kdl` read, and each request's
//! lock attached once checked against it (missing, stale, or not resolved for exactly the
//! request's platforms and Python versions: an error at the request).

use std::path::Path;

use crate::diag::{Errors, InputError, Source};

use super::super::cache;
use super::super::load::{LoadedRequest, list_kdl, push_parsed, read_file};
use super::super::model::WorkspaceConfig;
use super::super::reader::FileReader;

/// Reads every `requests/*.kdl`.
pub(in crate::rules) fn read_requests(
    root: &Path,
    files: &mut Vec<Source>,
    config: &WorkspaceConfig,
    errors: &mut Errors,
) -> Result<Vec<LoadedRequest>, Errors> {
    let mut out = Vec::new();
    for rel in list_kdl(root, "requests", false).map_err(|e| Errors(vec![e]))? {
        let source = match read_file(root, &rel) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let stem = rel
            .trim_start_matches("requests/")
            .trim_end_matches(".kdl")
            .to_string();
        let Some((id, doc)) = push_parsed(files, source, errors) else {
            continue;
        };
        let package = super::request_package(&stem);
        let mut r = FileReader {
            file: id,
            source: &files[id],
            package: Some(&package),
            errors: Errors::default(),
        };
        let request = super::read_request(&mut r, &doc, config, root, &stem);
        errors.extend(r.errors);
        if let Some(request) = request {
            out.push(LoadedRequest {
                request,
                lock: None,
            });
        }
    }
    Ok(out)
}

/// Reads each request's lock, checking that it was resolved from the request as it stands.
pub(in crate::rules) fn attach_request_locks(
    root: &Path,
    files: &mut Vec<Source>,
    config: &WorkspaceConfig,
    requests: &mut [LoadedRequest],
    errors: &mut Errors,
) {
    for loaded in requests {
        let request = &loaded.request;
        let source = &files[request.at.file];
        let at_request = |code, message: String, help: String| {
            InputError::at(code, source, request.at.span, message, "this request").with_help(help)
        };
        let Some(resolver) = &config.defaults.resolver else {
            errors.push(at_request(
                "missing-field",
                format!("Request `{}` needs a resolver", request.name),
                "Add `resolver \"uv==0.13.9\" sha256=\"…\"` under `defaults` in workspace.kdl (docs/requests.md)".into(),
            ));
            continue;
        };
        let rel = super::request_lock_path(&request.name);
        let lock_source = match fs_err::read_to_string(root.join(&rel)) {
            Ok(text) => Source::new(rel.as_str(), text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                errors.push(at_request(
                    "missing-lock",
                    format!("Request `{}` has no lock", request.name),
                    format!(
                        "Run `refine request lock {}`: it resolves the request and writes `{rel}`",
                        request.name
                    ),
                ));
                continue;
            }
            Err(e) => {
                errors.push(InputError::global(
                    "unreadable-file",
                    format!("Cannot read `{rel}`: {e}"),
                ));
                continue;
            }
        };
        // A lock is long and machine-written: read once, then from the rules cache.
        let key = cache::lock_key(&rel, &lock_source.text);
        let (id, lock, mut doc) = match cache::load_lock(&key, files.len()) {
            Some(lock) => {
                files.push(lock_source);
                (files.len() - 1, lock, None)
            }
            None => {
                let Some((id, doc)) = push_parsed(files, lock_source, errors) else {
                    continue;
                };
                let mut r = FileReader {
                    file: id,
                    source: &files[id],
                    package: None,
                    errors: Errors::default(),
                };
                let lock = super::read_request_lock(&mut r, &doc);
                let clean = r.errors.is_empty();
                errors.extend(r.errors);
                let Some(lock) = lock else { continue };
                if clean {
                    cache::save_lock(&key, id, lock.clone());
                }
                (id, lock, Some(doc))
            }
        };
        let relock = format!(
            "Run `refine request lock {}` to write the lock afresh",
            request.name
        );
        if lock.name != request.name {
            errors.push(
                InputError::at(
                    "inconsistent-lock",
                    &files[id],
                    lock.at.span,
                    format!(
                        "`{rel}` is the lock of request `{}`, not `{}`",
                        lock.name, request.name
                    ),
                    "another request",
                )
                .with_help(relock),
            );
            continue;
        }
        let want = request.inputs_digest(config, resolver);
        if lock.inputs != want {
            let source = &files[request.at.file];
            errors.push(
                InputError::at(
                    "stale-lock",
                    source,
                    request.at.span,
                    format!(
                        "The lock of request `{}` is stale: the request, its requirements files or the resolver changed since it was written",
                        request.name
                    ),
                    "changed since locked",
                )
                .with_help(format!(
                    "Run `refine request lock {}` to resolve it again",
                    request.name
                )),
            );
            continue;
        }
        // The inputs match: a resolution more or less than the request's Python versions
        // and platforms is a hand edit.
        let before = errors.len();
        let unasked = lock.resolutions.iter().any(|res| {
            !(request.platforms.contains(&res.platform) && request.pythons.contains(&res.python))
        });
        if unasked && doc.is_none() {
            // Read it again for the places of the diagnostics below.
            doc = super::super::load::parse_kdl(&files[id]).ok();
        }
        let resolutions = doc
            .iter()
            .flat_map(kdl::KdlDocument::nodes)
            .filter(|n| unasked && n.name().value() == "resolution");
        for node in resolutions {
            let prop = |name| node.get(name).and_then(kdl::KdlValue::as_string);
            let (Some(python), Some(platform)) = (prop("python"), prop("platform")) else {
                continue;
            };
            let asked = request.platforms.iter().any(|p| p == platform)
                && request
                    .pythons
                    .iter()
                    .any(|v| python.parse().is_ok_and(|p: uv_pep440::Version| p == *v));
            if !asked {
                errors.push(
                    InputError::at(
                        "inconsistent-lock",
                        &files[id],
                        node.name().span(),
                        format!(
                            "The lock resolves Python {python} on `{platform}`, which request `{}` does not ask for",
                            request.name
                        ),
                        "not in the request",
                    )
                    .with_help(relock.clone()),
                );
            }
        }
        for platform in &request.platforms {
            for python in &request.pythons {
                if !lock
                    .resolutions
                    .iter()
                    .any(|r| r.platform == *platform && r.python == *python)
                {
                    errors.push(
                        InputError::at(
                            "inconsistent-lock",
                            &files[id],
                            lock.at.span,
                            format!(
                                "The lock of request `{}` has no resolution for Python {python} on `{platform}`",
                                request.name
                            ),
                            "incomplete",
                        )
                        .with_help(relock.clone()),
                    );
                }
            }
        }
        if errors.len() > before {
            continue;
        }
        loaded.lock = Some(lock);
    }
}
