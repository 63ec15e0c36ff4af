//! The six rule kinds, read from their KDL nodes into targets. Matrix rules give one target
//! per variant: runtimes and wheels one per Python version (`<rule>-pyXY`), and runtimes,
//! packs and wheels one per platform when they name several (`<rule>-<platform>`, see
//! [`super::platforms`]).

use std::collections::BTreeMap;

use kdl::KdlNode;
use uv_pep440::Version;

use crate::label::{Label, valid_name};

use super::model::*;
use super::platforms::{Placement, check_on_blocks, for_platform, read_placements, variant_name};
use super::reader::{FileReader, Spanned, rule_name};
use super::source::read_source;

pub const KINDS: &[&str] = &["base", "toolchain", "runtime", "pack", "wheel", "repair"];

/// A repair whose targets are known only once every wheel rule is read: it gets one target
/// per variant of the wheel rule it names.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct PendingRepair {
    pub package: String,
    pub name: Spanned<String>,
    pub at: Loc,
    pub spec: RepairSpec,
    /// `platforms`: repair only the wheel's variants for these (all when empty).
    #[serde(default)]
    pub platforms: Vec<Spanned<String>>,
}

/// What one rule node gives.
pub enum Read {
    Targets(Vec<Target>),
    Repair(Box<PendingRepair>),
}

/// The `-pyXY` suffix of a matrix variant.
pub fn py_suffix(v: &Version) -> String {
    let r = v.release();
    format!(
        "py{}{}",
        r.first().copied().unwrap_or(0),
        r.get(1).copied().unwrap_or(0)
    )
}

/// The fields an `on "PLATFORM" { … }` block may hold, by kind: the repeatable ones that
/// add to what the rule says for every platform.
fn on_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "runtime" => &["packs"],
        "pack" => &["packs", "env", "source"],
        "wheel" => &["packs", "env", "requires", "config-setting"],
        _ => &[],
    }
}

/// Reads one top-level node of a rule file.
pub fn read_rule(r: &mut FileReader<'_>, node: &KdlNode, ws: &WorkspaceConfig) -> Option<Read> {
    let kind = node.name().value();
    let name = kind_and_name(r, node)?;
    if kind != "wheel" {
        super::repair::check_misplaced(r, node);
    }
    let at = r.loc(node.name().span());
    let package = r.package.unwrap_or_default().to_string();
    match kind {
        "base" => read_base(r, node).map(|spec| {
            Read::Targets(vec![Target {
                label: Label {
                    package,
                    name: name.value.clone(),
                },
                rule: name.value,
                at,
                spec: Spec::Base(spec),
                platform: None,
                matrix: false,
            }])
        }),
        "toolchain" => super::toolchain::read_toolchain(r, node, ws).map(|spec| {
            Read::Targets(vec![Target {
                label: Label {
                    package,
                    name: name.value.clone(),
                },
                rule: name.value,
                at,
                spec: Spec::Toolchain(spec),
                platform: None,
                matrix: false,
            }])
        }),
        "repair" => super::repair::read_repair_rule(r, node, ws).map(|(spec, platforms)| {
            Read::Repair(Box::new(PendingRepair {
                package,
                name,
                at,
                spec,
                platforms,
            }))
        }),
        _ => {
            let rule = Rule {
                package,
                name: name.value,
                at,
            };
            read_variants(r, node, ws, &rule).map(Read::Targets)
        }
    }
}

/// A known rule kind, and the rule's name: one valid target name.
fn kind_and_name(r: &mut FileReader<'_>, node: &KdlNode) -> Option<Spanned<String>> {
    let kind = node.name().value();
    if !KINDS.contains(&kind) {
        let help = match crate::diag::did_you_mean(kind, KINDS.iter().copied()) {
            Some(near) => format!("Did you mean `{near}`?"),
            None => {
                "Rule files declare `base`, `toolchain`, `runtime`, `pack`, `wheel` and `repair` rules".into()
            }
        };
        r.error(
            "unknown-rule-kind",
            node.name().span(),
            format!("Unknown rule kind `{kind}`"),
            "not a rule kind",
            help,
        );
        return None;
    }
    r.check_props(node, &[]);
    let name = r.one_arg(node)?;
    if !valid_name(&name.value) {
        r.error(
            "bad-name",
            name.span,
            format!("`{}` is not a valid target name", name.value),
            "invalid name",
            "Target names use letters, digits, `_`, `-`, `.` and `+`, and do not start with `.`"
                .into(),
        );
        return None;
    }
    Some(name)
}

/// A rule being read: where its targets go and what they are called.
struct Rule {
    package: String,
    name: String,
    at: Loc,
}

impl Rule {
    fn target(&self, spec: Spec, placement: &Placement, python: Option<&Version>) -> Target {
        let py = python.map(py_suffix);
        Target {
            label: Label {
                package: self.package.clone(),
                name: variant_name(&self.name, placement, py.as_deref()),
            },
            rule: self.name.clone(),
            at: self.at,
            spec,
            platform: placement.platform.clone(),
            matrix: placement.matrix || python.is_some(),
        }
    }
}

/// A runtime, pack or wheel rule: one target per platform (and Python version), read from
/// the rule as it reads for that platform; a wheel's inline `repair` adds one per target.
fn read_variants(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    ws: &WorkspaceConfig,
    rule: &Rule,
) -> Option<Vec<Target>> {
    let kind = node.name().value();
    let placements = read_placements(r, node, ws, Kind::parse(kind)?)?;
    check_on_blocks(r, node, &placements, on_fields(kind));
    let native = super::toolchain::read_native_compilers(r, node);
    let mut targets = Vec::new();
    for placement in &placements {
        let view = for_platform(node, placement.platform.as_deref(), on_fields(kind));
        let toolchain = placement.toolchain.clone().filter(|_| native);
        match kind {
            "pack" => {
                let name = variant_name(&rule.name, placement, None);
                if let Some(mut spec) = read_pack(r, &view, placement.base.clone(), name) {
                    spec.toolchain = toolchain;
                    targets.push(rule.target(Spec::Pack(spec), placement, None));
                }
            }
            "runtime" => {
                for mut spec in read_runtime(r, &view, placement.base.clone()).unwrap_or_default() {
                    spec.toolchain = toolchain.clone();
                    let python = spec.python.clone();
                    targets.push(rule.target(Spec::Runtime(spec), placement, Some(&python)));
                }
            }
            _ => {
                for mut spec in read_wheel(r, &view, ws, &rule.name).unwrap_or_default() {
                    spec.toolchain = toolchain.clone();
                    let python = spec.python.clone();
                    targets.push(rule.target(Spec::Wheel(spec), placement, Some(&python)));
                }
            }
        }
    }
    if kind == "wheel" {
        let repairs = super::repair::read_inline(r, node, ws, &targets);
        targets.extend(repairs);
    }
    Some(targets)
}

pub(super) fn check_leaf(r: &mut FileReader<'_>, node: &KdlNode) {
    r.check_props(node, &[]);
    r.check_children(node, &[]);
}

pub(super) fn one_leaf(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    name: &str,
) -> Option<Spanned<String>> {
    let child = r.child(node, name)?;
    check_leaf(r, child);
    r.one_arg(child)
}

pub(super) fn required_leaf(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    name: &str,
    example: &str,
) -> Option<Spanned<String>> {
    let child = r.required_child(node, name, example)?;
    check_leaf(r, child);
    r.one_arg(child)
}

/// A required `runtime "//runtimes:NAME"`: a matrix rule, whose variant each target takes.
pub(super) fn required_runtime(r: &mut FileReader<'_>, node: &KdlNode) -> Option<LabelRef> {
    r.required_child(node, "runtime", "runtime \"//runtimes:cpython\"")
        .and_then(|c| {
            check_leaf(r, c);
            r.one_arg(c)
        })
        .and_then(|t| r.label(&t, true))
}

pub(super) fn pack_refs(r: &mut FileReader<'_>, node: &KdlNode) -> Vec<LabelRef> {
    let mut out = Vec::new();
    for child in r.children(node, "packs").collect::<Vec<_>>() {
        check_leaf(r, child);
        out.extend(r.labels(child));
    }
    out
}

const ARCHES: &[&str] = &["s390x", "x86_64", "aarch64", "ppc64le"];

fn read_arch(r: &mut FileReader<'_>, text: &Spanned<String>) -> Option<String> {
    if ARCHES.contains(&text.value.as_str()) {
        return Some(text.value.clone());
    }
    let help = match crate::diag::did_you_mean(&text.value, ARCHES.iter().copied()) {
        Some(near) => format!("Did you mean `{near}`?"),
        None => format!("Known architectures: {}", ARCHES.join(", ")),
    };
    r.error(
        "unknown-arch",
        text.span,
        format!("Unknown architecture `{}`", text.value),
        "not an architecture",
        help,
    );
    None
}

/// Policies are PEP 600 manylinux tags (`manylinux_2_28`), or `linux` for no policy.
pub fn read_policy(r: &mut FileReader<'_>, text: &Spanned<String>) -> Option<String> {
    let v = &text.value;
    let ok = v == "linux"
        || v.strip_prefix("manylinux_").is_some_and(|rest| {
            let mut parts = rest.split('_');
            matches!((parts.next(), parts.next(), parts.next()),
                (Some(a), Some(b), None) if a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
        })
        || v.strip_prefix("musllinux_").is_some_and(|rest| {
            let mut parts = rest.split('_');
            matches!((parts.next(), parts.next(), parts.next()),
                (Some(a), Some(b), None) if a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok())
        });
    if ok {
        return Some(v.clone());
    }
    r.error(
        "bad-policy",
        text.span,
        format!("`{v}` is not a platform policy"),
        "not a PEP 600 tag",
        "Write a PEP 600 policy such as `manylinux_2_28` or `musllinux_1_2`, or `linux` for none"
            .into(),
    );
    None
}

fn read_base(r: &mut FileReader<'_>, node: &KdlNode) -> Option<BaseSpec> {
    r.check_children(
        node,
        &[
            "arch",
            "policy",
            "bootstrap",
            "packages",
            "image",
            "layout",
            "tree",
            "repair",
        ],
    );
    r.unique_children(
        node,
        &["arch", "policy", "bootstrap", "image", "layout", "tree"],
    );
    let arch = required_leaf(r, node, "arch", "arch \"s390x\"").and_then(|a| read_arch(r, &a));
    let policy = required_leaf(r, node, "policy", "policy \"manylinux_2_28\"")
        .and_then(|p| read_policy(r, &p));
    let origin_node = one_origin(r, node)?;
    let packages_node = r.child(node, "packages");
    if packages_node.is_some() && origin_node.name().value() != "bootstrap" {
        r.error(
            "conflicting-fields",
            packages_node.map_or(node.span(), |p| p.name().span()),
            "`packages` applies only to a `bootstrap` base".into(),
            "not used",
            "Remove `packages`, or bootstrap the base".into(),
        );
    }
    let origin = match origin_node.name().value() {
        "bootstrap" => read_bootstrap(r, origin_node, packages_node)?,
        "image" => read_image(r, origin_node)?,
        "tree" => read_tree(r, origin_node)?,
        _ => read_layout(r, origin_node)?,
    };
    Some(BaseSpec {
        arch: arch?,
        policy: policy?,
        origin,
        lock: None,
    })
}

/// The one child of a `base` that says where its root comes from.
fn one_origin<'n>(r: &mut FileReader<'_>, node: &'n KdlNode) -> Option<&'n KdlNode> {
    let origins: Vec<&KdlNode> = node
        .iter_children()
        .filter(|c| matches!(c.name().value(), "bootstrap" | "image" | "layout" | "tree"))
        .collect();
    match origins.as_slice() {
        [one] => Some(*one),
        [] => {
            r.error(
                "missing-field",
                node.name().span(),
                format!("`base \"{}\"` needs `bootstrap`, `image` or `layout`", rule_name(node)),
                "where does the root come from?",
                "Add `bootstrap \"debootstrap\" version=\"…\" suite=\"bookworm\"`, `image \"REPOSITORY\" digest=\"sha256:…\"`, `layout \"PATH\" digest=\"sha256:…\"` or `tree \"DIR\"`".into(),
            );
            None
        }
        [_, second, ..] => {
            r.error(
                "conflicting-fields",
                second.name().span(),
                format!("`base \"{}\"` has more than one origin", rule_name(node)),
                "second origin",
                "Keep one of `bootstrap`, `image`, `layout` or `tree`".into(),
            );
            None
        }
    }
}

/// `bootstrap "debootstrap" version=… suite=… [snapshot=…] [variant=…]`, with the base's
/// `packages`: a Debian root made by a pinned bootstrap tool.
fn read_bootstrap(
    r: &mut FileReader<'_>,
    origin_node: &KdlNode,
    packages_node: Option<&KdlNode>,
) -> Option<BaseOrigin> {
    r.check_props(origin_node, &["version", "suite", "snapshot", "variant"]);
    r.check_children(origin_node, &[]);
    let tool = r.one_arg(origin_node);
    let version = r.required_prop(origin_node, "version", "\"1.0.128+nmu2+deb12u2\"");
    let suite = r.required_prop(origin_node, "suite", "\"bookworm\"");
    let snapshot = r.prop(origin_node, "snapshot");
    let variant = r
        .prop(origin_node, "variant")
        .map_or_else(|| "minbase".into(), |v| v.value);
    if let Some(t) = &tool
        && t.value != "debootstrap"
        && t.value != "mmdebstrap"
    {
        r.error(
            "bad-bootstrap",
            t.span,
            format!("Unknown bootstrap tool `{}`", t.value),
            "not a bootstrap tool",
            "Use `debootstrap` or `mmdebstrap`".into(),
        );
        return None;
    }
    if let Some(s) = &snapshot {
        check_snapshot(r, s);
    }
    // Sorted and unique: the list is a set, and its key must not depend on how it is written.
    let mut packages: Vec<String> = match packages_node {
        Some(p) => {
            check_leaf(r, p);
            r.some_args(p).into_iter().map(|s| s.value).collect()
        }
        None => Vec::new(),
    };
    packages.sort();
    packages.dedup();
    Some(BaseOrigin::Bootstrap {
        tool: tool?.value,
        tool_version: version?.value,
        suite: suite?.value,
        snapshot: snapshot.map(|s| s.value),
        variant,
        packages,
    })
}

/// A snapshot.debian.org timestamp, `YYYYMMDDTHHMMSSZ`.
fn check_snapshot(r: &mut FileReader<'_>, s: &Spanned<String>) {
    let ok = s.value.len() == 16
        && s.value.as_bytes()[8] == b'T'
        && s.value.ends_with('Z')
        && s.value
            .bytes()
            .enumerate()
            .all(|(i, b)| i == 8 || i == 15 || b.is_ascii_digit());
    if !ok {
        r.error(
            "bad-snapshot",
            s.span,
            format!("`{}` is not a snapshot timestamp", s.value),
            "expected YYYYMMDDTHHMMSSZ",
            "Write a snapshot.debian.org timestamp such as `20250520T000000Z`".into(),
        );
    }
}

/// `image "REPOSITORY" digest=…` (or, unpinned, `tag=…`): a root pulled from a registry.
fn read_image(r: &mut FileReader<'_>, origin_node: &KdlNode) -> Option<BaseOrigin> {
    r.check_props(origin_node, &["digest", "tag"]);
    r.check_children(origin_node, &[]);
    let repository = r.one_arg(origin_node);
    let pin = image_pin(r, origin_node);
    // The pin goes in `digest`/`tag` alone, so that the key sees one way of writing it.
    if let Some(repo) = &repository
        && (repo.value.contains(':') || repo.value.contains('@'))
    {
        r.error(
            "bad-image",
            repo.span,
            format!("`{}` should be a repository without a tag or digest", repo.value),
            "tag or digest in the name",
            "Write the repository alone (`pypa/manylinux_2_28_s390x`) and pin it with `digest=\"sha256:…\"`".into(),
        );
        return None;
    }
    Some(BaseOrigin::Image {
        repository: repository?.value,
        pin: pin?,
    })
}

/// An image's `digest`, which wins over a `tag` when both are given.
fn image_pin(r: &mut FileReader<'_>, origin_node: &KdlNode) -> Option<ImagePin> {
    let digest = r.prop(origin_node, "digest");
    let tag = r.prop(origin_node, "tag");
    match (digest, tag) {
        (Some(d), _) => r.oci_digest(&d).map(ImagePin::Digest),
        (None, Some(t)) => Some(ImagePin::Tag(t.value)),
        (None, None) => {
            r.error(
                "missing-field",
                origin_node.name().span(),
                "`image` needs `digest` (or, unpinned, `tag`)".into(),
                "not pinned",
                "Add `digest=\"sha256:…\"` as `skopeo inspect` prints it".into(),
            );
            None
        }
    }
}

/// `tree "DIR"`: a root kept as a folder of the workspace.
fn read_tree(r: &mut FileReader<'_>, origin_node: &KdlNode) -> Option<BaseOrigin> {
    r.check_props(origin_node, &[]);
    r.check_children(origin_node, &[]);
    let path = r.one_arg(origin_node)?;
    if path.value.is_empty() || outside_workspace(&path.value) {
        r.error(
            "bad-source",
            path.span,
            format!("`{}` is not a folder inside the workspace", path.value),
            "must be relative, without `..`",
            "Give a path relative to the workspace root, such as `roots/tiny`".into(),
        );
        return None;
    }
    Some(BaseOrigin::Tree { path: path.value })
}

/// `layout "PATH" digest=…`: an image in an OCI layout on disk.
fn read_layout(r: &mut FileReader<'_>, origin_node: &KdlNode) -> Option<BaseOrigin> {
    r.check_props(origin_node, &["digest"]);
    r.check_children(origin_node, &[]);
    let path = r.one_arg(origin_node);
    let digest = r
        .required_prop(origin_node, "digest", "\"sha256:…\"")
        .and_then(|d| r.oci_digest(&d));
    Some(BaseOrigin::Layout {
        path: path?.value,
        digest: digest?,
    })
}

fn read_runtime(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    base: Option<LabelRef>,
) -> Option<Vec<RuntimeSpec>> {
    r.check_children(
        node,
        &[
            "base",
            "platform",
            "platforms",
            "python",
            "configure",
            "pgo",
            "toolchain",
            "native-compilers",
            "packs",
            "repair",
        ],
    );
    r.unique_children(node, &["configure", "pgo", "toolchain", "native-compilers"]);
    let how = SourceBuild {
        configure: read_configure(r, node),
        pgo: read_pgo(r, node),
    };
    let compiler = one_leaf(r, node, "toolchain").map_or_else(|| "base".into(), |t| t.value);
    let packs = pack_refs(r, node);
    let pythons: Vec<&KdlNode> = r.children(node, "python").collect();
    if pythons.is_empty() {
        r.error(
            "missing-field",
            node.name().span(),
            format!("`runtime \"{}\"` needs at least one `python`", rule_name(node)),
            "no Python version",
            "Add `python \"3.12.13\" { source url=\"…\" sha256=\"…\" }` or `python \"3.11\" adopt=\"/usr/bin/python3.11\"`".into(),
        );
        return None;
    }
    let mut seen: BTreeMap<String, ()> = BTreeMap::new();
    let mut out = Vec::new();
    for py in pythons {
        let Some((version, build)) = read_python(r, node, py, &how, &mut seen) else {
            continue;
        };
        // Without its base (an error already reported) the runtime is still read through,
        // so that every mistake in it is reported at once.
        if let Some(base) = &base {
            out.push(RuntimeSpec {
                base: base.clone(),
                python: version,
                build,
                compiler: compiler.clone(),
                packs: packs.clone(),
                toolchain: None,
            });
        }
    }
    base?;
    Some(out)
}

/// How a runtime builds CPython from source: the same for each of its `python` versions.
struct SourceBuild {
    configure: Vec<String>,
    pgo: bool,
}

/// `configure "FLAG"…`; without it, `--disable-shared` (a static libpython).
fn read_configure(r: &mut FileReader<'_>, node: &KdlNode) -> Vec<String> {
    match r.child(node, "configure") {
        Some(c) => {
            check_leaf(r, c);
            r.string_args(c).into_iter().map(|s| s.value).collect()
        }
        None => vec!["--disable-shared".into()],
    }
}

/// `pgo #true`: off unless asked, since it makes a build several times slower.
fn read_pgo(r: &mut FileReader<'_>, node: &KdlNode) -> bool {
    let Some(p) = r.child(node, "pgo") else {
        return false;
    };
    check_leaf(r, p);
    match p.entries().first().map(kdl::KdlEntry::value) {
        Some(kdl::KdlValue::Bool(b)) if p.entries().len() == 1 => *b,
        _ => {
            r.error(
                "wrong-type",
                p.span(),
                "`pgo` takes `#true` or `#false`".into(),
                "expected a boolean",
                "Write `pgo #true`".into(),
            );
            false
        }
    }
}

/// One `python "X.Y[.Z]"` of a runtime: its version (each minor version once, as it names
/// the `-pyXY` target) and how its interpreter is made.
fn read_python(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    py: &KdlNode,
    how: &SourceBuild,
    seen: &mut BTreeMap<String, ()>,
) -> Option<(Version, RuntimeBuild)> {
    r.check_props(py, &["adopt"]);
    r.check_children(py, &["source"]);
    let text = r.one_arg(py)?;
    let version = r.version(&text)?;
    let suffix = py_suffix(&version);
    if seen.insert(suffix.clone(), ()).is_some() {
        r.error(
            "duplicate-target",
            text.span,
            format!(
                "Python {} is given twice in `runtime \"{}\"`",
                text.value,
                rule_name(node)
            ),
            "same minor version again",
            format!(
                "Each minor version gives one target (`{}-{suffix}`); keep one",
                rule_name(node)
            ),
        );
        return None;
    }
    let build = python_build(r, py, &text, how)?;
    Some((version, build))
}

/// A `python`'s interpreter: built from its one `source`, or adopted from the base.
fn python_build(
    r: &mut FileReader<'_>,
    py: &KdlNode,
    text: &Spanned<String>,
    how: &SourceBuild,
) -> Option<RuntimeBuild> {
    let adopt = r.prop(py, "adopt");
    let sources: Vec<&KdlNode> = r.children(py, "source").collect();
    match (adopt, sources.as_slice()) {
        (Some(a), []) => Some(RuntimeBuild::Adopt {
            interpreter: a.value,
        }),
        (None, [s]) => read_source(r, s).map(|source| RuntimeBuild::Source {
            source,
            configure: how.configure.clone(),
            pgo: how.pgo,
        }),
        (Some(_), _) => {
            r.error(
                "conflicting-fields",
                py.span(),
                "`python` has both `adopt` and a `source`".into(),
                "one too many",
                "Either build from `source` or `adopt` the base's interpreter".into(),
            );
            None
        }
        (None, []) => {
            r.error(
                "missing-field",
                py.name().span(),
                format!("`python \"{}\"` needs a `source` or `adopt`", text.value),
                "how is it made?",
                "Add `{ source url=\"…/Python-X.Y.Z.tgz\" sha256=\"…\" }` or `adopt=\"/usr/bin/python3\"`".into(),
            );
            None
        }
        (None, [_, second, ..]) => {
            r.error(
                "duplicate-field",
                second.name().span(),
                "`python` has more than one `source`".into(),
                "second source",
                "Keep one `source`".into(),
            );
            None
        }
    }
}

/// Whether a recipe path leaves the workspace (absolute, or through `..`).
pub(super) fn outside_workspace(path: &str) -> bool {
    path.starts_with('/') || path.split('/').any(|s| s == "..")
}

/// A pack built on `base`; `name` is its target's name, under which its version is keyed.
fn read_pack(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    base: Option<LabelRef>,
    name: String,
) -> Option<PackSpec> {
    r.check_children(
        node,
        &[
            "base",
            "platform",
            "platforms",
            "version",
            "source",
            "recipe",
            "packs",
            "env",
            "native-compilers",
            "repair",
        ],
    );
    r.unique_children(node, &["version", "recipe", "native-compilers"]);
    let version = required_leaf(r, node, "version", "version \"1.0\"");
    let recipe = required_leaf(r, node, "recipe", "recipe \"recipes/NAME.sh\"");
    if let Some(rec) = &recipe
        && outside_workspace(&rec.value)
    {
        r.error(
            "bad-recipe",
            rec.span,
            format!("`{}` is not a path inside the workspace", rec.value),
            "must be relative, without `..`",
            "Recipes live in the workspace, such as `recipes/libyaml.sh`".into(),
        );
    }
    let sources: Vec<SourceSpec> = r
        .children(node, "source")
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|s| read_source(r, s))
        .collect();
    let packs = pack_refs(r, node);
    let env = r.env(node);
    let mut versions = BTreeMap::new();
    versions.insert(name, version?.value);
    let recipe = recipe?;
    Some(PackSpec {
        base: base?,
        versions,
        recipe: recipe.value,
        recipe_span: recipe.span,
        sources,
        packs,
        env,
        toolchain: None,
    })
}

fn read_wheel(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    ws: &WorkspaceConfig,
    name: &str,
) -> Option<Vec<WheelSpec>> {
    r.check_children(
        node,
        &[
            "platform",
            "platforms",
            "source",
            "python",
            "runtime",
            "packs",
            "backend",
            "config-setting",
            "env",
            "requires",
            "requires-built",
            "frontend",
            "native-compilers",
            "repair",
        ],
    );
    r.unique_children(
        node,
        &[
            "source",
            "python",
            "runtime",
            "backend",
            "frontend",
            "native-compilers",
            "repair",
        ],
    );
    let source = r
        .required_child(
            node,
            "source",
            "source pypi=\"NAME\" version=\"V\" sha256=\"…\"",
        )
        .and_then(|s| read_source(r, s));
    let runtime = required_runtime(r, node);
    let packs = pack_refs(r, node);
    let backend = one_leaf(r, node, "backend").map(|b| b.value);
    let config_settings = read_config_settings(r, node);
    let env = r.env(node);
    let mut requires: Vec<Pinned> = r
        .children(node, "requires")
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|c| r.pinned(c))
        .collect();
    requires = with_default_requires(requires, &ws.defaults.requires);
    let built_requires = built_refs(r, node);
    let frontend = read_frontend(r, node, ws, name);
    let versions = read_python_minors(r, node)?;
    let (source, runtime, frontend) = (source?, runtime?, frontend?);
    Some(
        versions
            .into_iter()
            .map(|python| WheelSpec {
                source: source.clone(),
                python,
                runtime: runtime.clone(),
                packs: packs.clone(),
                backend: backend.clone(),
                config_settings: config_settings.clone(),
                env: env.clone(),
                requires: requires.clone(),
                frontend: frontend.clone(),
                toolchain: None,
                allowed_packs: None,
                built_requires: built_requires.clone(),
                probe: false,
            })
            .collect(),
    )
}

/// A wheel's own build requirements, then the workspace's `requires` (the tools' own
/// dependencies) that it does not pin itself: a rule that pins `packaging` gets its pin, not
/// both, which pip could not install together.
pub fn with_default_requires(mut own: Vec<Pinned>, defaults: &[Pinned]) -> Vec<Pinned> {
    let extra: Vec<Pinned> = defaults
        .iter()
        .filter(|d| {
            !own.iter()
                .any(|b| crate::rules::normalize(&b.name) == crate::rules::normalize(&d.name))
        })
        .cloned()
        .collect();
    own.extend(extra);
    own
}

/// `requires-built "//wheels:cffi-repaired"` children: build requirements built here, each
/// the repair of another wheel rule, taken in the variant of this wheel's platform and
/// Python version and put in its wheelhouse.
fn built_refs(r: &mut FileReader<'_>, node: &KdlNode) -> Vec<LabelRef> {
    let mut out = Vec::new();
    for child in r.children(node, "requires-built").collect::<Vec<_>>() {
        check_leaf(r, child);
        out.extend(r.labels(child));
    }
    out
}

/// `config-setting KEY VALUE` children, in order (PEP 517 config settings).
pub(super) fn read_config_settings(
    r: &mut FileReader<'_>,
    node: &KdlNode,
) -> Vec<(String, String)> {
    let mut config_settings = Vec::new();
    for c in r.children(node, "config-setting").collect::<Vec<_>>() {
        check_leaf(r, c);
        match r.string_args(c).as_slice() {
            [k, v] => config_settings.push((k.value.clone(), v.value.clone())),
            _ => r.error(
                "bad-config-setting",
                c.span(),
                "`config-setting` takes a key and a value".into(),
                "expected two strings",
                "Write it as `config-setting \"setup-args\" \"-Dblas=openblas\"`".into(),
            ),
        }
    }
    config_settings
}

/// The wheel's pinned build frontend: its own `frontend`, else the workspace default.
fn read_frontend(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    ws: &WorkspaceConfig,
    name: &str,
) -> Option<Pinned> {
    match r.child(node, "frontend") {
        Some(f) => r.pinned(f),
        None => match &ws.defaults.frontend {
            Some(f) => Some(f.clone()),
            None => {
                r.error(
                    "missing-field",
                    node.name().span(),
                    format!("`wheel \"{name}\"` has no build frontend"),
                    "no `frontend`",
                    "Add `frontend \"build==1.2.2.post1\" sha256=\"…\"` here or under `defaults` in workspace.kdl".into(),
                );
                None
            }
        },
    }
}

/// The `python` versions a wheel is built for: minor versions (`3.12`), each once; a bad or
/// repeated one is reported and left out, so that the others still make targets.
pub(super) fn read_python_minors(r: &mut FileReader<'_>, node: &KdlNode) -> Option<Vec<Version>> {
    let pythons = r
        .required_child(node, "python", "python \"3.12\"")
        .map(|p| {
            check_leaf(r, p);
            r.some_args(p)
        })?;
    let mut versions = Vec::new();
    for p in &pythons {
        let Some(v) = r.version(p) else { continue };
        if v.release().len() != 2 || v.any_prerelease() || v.is_post() || v.is_local() {
            r.error(
                "bad-version",
                p.span,
                format!("`{}` is not a Python minor version", p.value),
                "expected MAJOR.MINOR",
                "Wheels are built per minor version, such as `3.12`; the runtime gives the exact patch release".into(),
            );
            continue;
        }
        if versions.contains(&v) {
            r.error(
                "duplicate-target",
                p.span,
                format!("Python {} is listed twice", p.value),
                "listed again",
                "Keep one".into(),
            );
            continue;
        }
        versions.push(v);
    }
    Some(versions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(name: &str, version: &str) -> Pinned {
        Pinned {
            name: name.into(),
            version: version.into(),
            sha256: Sha256("0".repeat(64)),
        }
    }

    #[test]
    fn a_rules_own_pin_replaces_the_default_of_the_same_name() {
        let defaults = [pin("packaging", "24.2"), pin("pyproject_hooks", "1.2.0")];
        let got = with_default_requires(
            vec![pin("setuptools", "80"), pin("Packaging", "26.4")],
            &defaults,
        );
        let got: Vec<String> = got.iter().map(Pinned::requirement).collect();
        assert_eq!(
            got,
            [
                "setuptools==80",
                "Packaging==26.4",
                "pyproject_hooks==1.2.0"
            ]
        );
    }
}
