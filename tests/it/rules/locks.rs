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
