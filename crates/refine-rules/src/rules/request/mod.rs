//! Build requests (docs/requests.md): `requests/NAME.kdl` says what an application needs
//! (requirements files, packages, Python versions, platforms, a strategy, overrides), and
//! `requests/NAME.lock`, written by `refine request lock`, pins what that resolved to for
//! each Python version and platform. Together they become ordinary wheel and repair targets
//! labelled `//requests/NAME:<package>[-<platform>]-pyXY`; building never resolves.

mod load;
mod lock;
mod read;
mod targets;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uv_pep440::Version;

use super::model::{LabelRef, Loc, Pinned, Sha256};

pub(super) use load::{attach_request_locks, read_requests};
pub use lock::{read_previous_lock, read_request_lock, render_request_lock};
pub use read::read_request;
pub(super) use targets::request_targets;
pub use targets::{platform_suffix, repair_target_name, wheel_target_name};

/// Where a request's file lives, below the workspace root.
pub fn request_path(name: &str) -> String {
    format!("requests/{name}.kdl")
}

/// Where a request's lock lives, below the workspace root.
pub fn request_lock_path(name: &str) -> String {
    format!("requests/{name}.lock")
}

/// The package of a request's targets: `requests/NAME`.
pub fn request_package(name: &str) -> String {
    format!("requests/{name}")
}

/// What a request builds from: each package's sdist, or a binary wheel from the index
/// wherever one fits the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Take a compatible wheel from the index when there is one (verified by sha256); build
    /// the others from their sdists.
    ReuseWheels,
    /// Build every package from its sdist (pure-Python packages without an sdist excepted).
    BuildAll,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::ReuseWheels => "reuse-wheels",
            Strategy::BuildAll => "build-all",
        }
    }
}

/// A requirements or constraints file (pip's format), as read when the workspace loaded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RequirementsFile {
    /// Relative to the workspace root.
    pub path: String,
    pub text: String,
    pub at: Loc,
    /// The files it includes (`-r FILE`, `-c FILE`, recursively), each with its text: the
    /// resolver reads them too, so they are inputs of the lock.
    #[serde(default)]
    pub includes: Vec<(String, String)>,
}

/// `package "NAME" version="SPEC"`: a requirement written in the request itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackageRequirement {
    /// A PEP 508 requirement (`numpy>=2`).
    pub requirement: String,
    pub at: Loc,
}

/// What an override changes for one package's builds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OverrideFields {
    pub packs: Vec<LabelRef>,
    pub env: BTreeMap<String, String>,
    pub config_settings: Vec<(String, String)>,
}

/// `override "PACKAGE" { … }`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Override {
    /// PEP 503 normalized.
    pub package: String,
    pub at: Loc,
    /// `version "==1.2"`: a constraint the resolver honours.
    pub version: Option<String>,
    /// `take "sdist"`: build it here even where the index has a wheel that fits.
    #[serde(default)]
    pub sdist: bool,
    /// `build-requires "ninja>=1.8.2"`: build requirements its backend asks for only at
    /// build time (PEP 517 `get_requires_for_build_wheel`), locked with the static ones.
    #[serde(default)]
    pub build_requires: Vec<String>,
    pub fields: OverrideFields,
    /// `python "3.12" { … }`: added for that Python version only.
    pub per_python: Vec<(Version, OverrideFields)>,
}

/// A request, read and checked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    pub name: String,
    /// The request's name in its file.
    pub at: Loc,
    /// Workspace platforms, in the order written (default: the workspace's default set).
    pub platforms: Vec<String>,
    pub pythons: Vec<Version>,
    /// The runtime every wheel is built with (a matrix rule: each wheel takes its variant).
    pub runtime: LabelRef,
    pub requirements: Vec<RequirementsFile>,
    pub constraints: Vec<RequirementsFile>,
    pub packages: Vec<PackageRequirement>,
    pub strategy: Strategy,
    /// Build what can be built when a package fails.
    pub keep_going: bool,
    /// By normalized package name.
    pub overrides: Vec<Override>,
    /// `packs`: when given, the only packs the catalog may add to the request's wheels.
    pub allowed_packs: Vec<LabelRef>,
}

impl Request {
    pub fn override_for(&self, package: &str) -> Option<&Override> {
        self.overrides.iter().find(|o| o.package == package)
    }

    /// The digest of everything resolution depends on: platforms (with their architecture
    /// and policy), Python versions, the requirements and constraints files' text, the
    /// request's own packages, the strategy, override versions and the resolver. A lock
    /// records it; when it differs, the lock is stale.
    pub fn inputs_digest(&self, ws: &super::model::WorkspaceConfig, resolver: &Pinned) -> String {
        let mut text = String::from("refine-request-inputs-v1\n");
        for p in &self.platforms {
            let (arch, policy) = ws
                .platform(p)
                .map_or(("?", "?"), |p| (p.arch.as_str(), p.policy.as_str()));
            text.push_str(&format!("platform {p} {arch} {policy}\n"));
        }
        for v in &self.pythons {
            text.push_str(&format!("python {v}\n"));
        }
        for (kind, files) in [
            ("requirements", &self.requirements),
            ("constraints", &self.constraints),
        ] {
            for f in files {
                text.push_str(&format!("{kind} {} {}\n", f.path, f.text.len()));
                text.push_str(&f.text);
                text.push('\n');
                for (path, included) in &f.includes {
                    text.push_str(&format!("include {path} {}\n", included.len()));
                    text.push_str(included);
                    text.push('\n');
                }
            }
        }
        for p in &self.packages {
            text.push_str(&format!("package {}\n", p.requirement));
        }
        text.push_str(&format!("strategy {}\n", self.strategy.as_str()));
        for o in &self.overrides {
            if let Some(v) = &o.version {
                text.push_str(&format!("override-version {} {v}\n", o.package));
            }
            if o.sdist {
                text.push_str(&format!("override-take {} sdist\n", o.package));
            }
            for b in &o.build_requires {
                text.push_str(&format!("override-build-requires {} {b}\n", o.package));
            }
        }
        text.push_str(&format!(
            "resolver {} {}\n",
            resolver.requirement(),
            resolver.sha256.0
        ));
        refine_digest::Digest::of_bytes(text.as_bytes()).to_string()
    }
}

/// A file of the index, by its name and sha256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedFile {
    pub file: String,
    pub sha256: Sha256,
}

/// Which of a locked package's files the request takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Take {
    /// Built here from its sdist, then repaired.
    Sdist,
    /// The index's wheel, verified by sha256.
    Wheel,
}

impl Take {
    pub fn as_str(self) -> &'static str {
        match self {
            Take::Sdist => "sdist",
            Take::Wheel => "wheel",
        }
    }
}

/// One package of a resolution.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockedPackage {
    /// PEP 503 normalized.
    pub name: String,
    pub version: String,
    pub take: Take,
    pub sdist: Option<LockedFile>,
    pub wheel: Option<LockedFile>,
    /// The sdist's PEP 517 build backend (`setuptools.build_meta`), for the catalog.
    pub backend: Option<String>,
    /// What its backend asked for beyond its build system's `requires` when `refine request
    /// lock` probed it (`asked "pbr>0.11"`): why some of `build_requires` are there.
    #[serde(default)]
    pub asked: Vec<String>,
    /// Its build requirements, resolved for the platform: one wheel each.
    pub build_requires: Vec<Pinned>,
    /// Build requirements this request builds (`NAME`, `VERSION`): packages of the same
    /// resolution taken from their sdists, whose repaired wheels the build installs.
    #[serde(default)]
    pub built_requires: Vec<(String, String)>,
    pub at: Loc,
}

/// The closure resolved for one Python version on one platform.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Resolution {
    pub python: Version,
    pub platform: String,
    pub packages: Vec<LockedPackage>,
}

/// A request's lock file, read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RequestLock {
    pub name: String,
    pub inputs: String,
    pub resolver: String,
    pub resolutions: Vec<Resolution>,
    pub at: Loc,
}
