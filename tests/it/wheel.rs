//! `refine wheel scan`: the lowest manylinux policy of real wheels from PyPI, cross-checked
//! against their own platform tags and `auditwheel show` (installed from PyPI into a virtual
//! environment in the test's folder), and a broken promise failing with the symbols named.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// Runs `program args` in `dir`; fails the test with its output (network, pip, …) if it fails.
fn must_run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}` (needed by this test): {e}"));
    assert!(
        out.status.success(),
        "`{program} {}` failed (this test needs PyPI through pip):\n{}{}",
        args.join(" "),
        stdout(&out),
        stderr(&out)
    );
}

/// Downloads one binary wheel from PyPI into `dir` and returns its path.
fn download(dir: &Path, platform: &str, requirement: &str) -> PathBuf {
    let sub = dir.join(platform);
    let args = [
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--platform",
        platform,
        "--python-version",
        "3.11",
        requirement,
        "-d",
        sub.to_str().unwrap(),
    ];
    must_run(dir, "python3", &args);
    let mut wheels = fs_err::read_dir(&sub).unwrap().map(|e| e.unwrap().path());
    wheels.next().expect("pip downloaded a wheel")
}

/// The tag `auditwheel show` finds: the first quoted word after "platform tag:".
fn auditwheel_tag(auditwheel: &Path, wheel: &Path) -> String {
    let out = Command::new(auditwheel)
        .arg("show")
        .arg(wheel)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "auditwheel show failed:\n{text}{}",
        stderr(&out)
    );
    let after = text
        .split("platform tag:")
        .nth(1)
        .unwrap_or_else(|| panic!("no tag in:\n{text}"));
    after.split('"').nth(1).unwrap().to_owned()
}

fn scan_json(wheel: &Path) -> serde_json::Value {
    let out = run_refine(
        wheel.parent().unwrap(),
        &["wheel", "scan", wheel.to_str().unwrap(), "--output", "json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn lowest_policy_agrees_with_auditwheel_show() {
    let dir = tempfile::tempdir().unwrap();
    let wheels = [
        download(dir.path(), "manylinux2014_x86_64", "markupsafe==3.0.2"),
        download(dir.path(), "manylinux_2_17_s390x", "pyyaml==6.0.2"),
    ];
    must_run(dir.path(), "python3", &["-m", "venv", "venv"]);
    must_run(
        dir.path(),
        "venv/bin/python",
        &["-m", "pip", "install", "-q", "auditwheel==6.8.0"],
    );
    let auditwheel = dir.path().join("venv/bin/auditwheel");
    for wheel in wheels {
        let verdict = scan_json(&wheel);
        let lowest = &verdict["lowest"];
        let tag = format!(
            "{}_{}",
            lowest["name"].as_str().unwrap(),
            verdict["arch"].as_str().unwrap()
        );
        assert_eq!(
            tag,
            auditwheel_tag(&auditwheel, &wheel),
            "{}",
            wheel.display()
        );
        // The wheel's own platform tag, alias included, is what the scan would tag it with.
        let platform = lowest["platform_tag"].as_str().unwrap();
        let name = wheel.file_name().unwrap().to_str().unwrap();
        assert!(
            name.ends_with(&format!("-{platform}.whl")),
            "{name} vs {platform}"
        );
    }
}

/// A tiny extension that calls arc4random (glibc 2.36, this machine's), zipped as a wheel.
fn newer_symbol_wheel(dir: &Path) -> PathBuf {
    fs_err::write(
        dir.join("r.c"),
        "#include <stdlib.h>\nunsigned draw(void) { return arc4random(); }\n",
    )
    .unwrap();
    must_run(dir, "gcc", &["-shared", "-fPIC", "-o", "_r.so", "r.c"]);
    let zip = "import zipfile; z = zipfile.ZipFile('r-1.0-cp311-cp311-linux_x86_64.whl', 'w'); \
               z.write('_r.so', 'r/_r.so'); z.close()";
    must_run(dir, "python3", &["-c", zip]);
    dir.join("r-1.0-cp311-cp311-linux_x86_64.whl")
}

#[test]
fn a_broken_promise_exits_1_naming_symbols_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = newer_symbol_wheel(dir.path());
    let path = wheel.to_str().unwrap();

    let ok = run_refine(
        dir.path(),
        &["wheel", "scan", path, "--policy", "manylinux_2_36"],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        stdout(&ok).starts_with("lowest policy: manylinux_2_36_x86_64\n"),
        "{}",
        stdout(&ok)
    );
    assert!(
        stdout(&ok).contains("r/_r.so: GLIBC 2.36; needs libc.so.6"),
        "{}",
        stdout(&ok)
    );

    let out = run_refine(
        dir.path(),
        &["wheel", "scan", path, "--policy", "manylinux2014"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // miette wraps at 100 columns: compare the words.
    let raw = stderr(&out);
    let err = raw
        .split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        err.contains("exceeds `manylinux_2_17_x86_64.manylinux2014_x86_64`"),
        "{err}"
    );
    assert!(
        err.contains("`r/_r.so` requires `GLIBC_2.36` (of `libc.so.6`)"),
        "{err}"
    );
    assert!(err.contains("older glibc"), "{err}");
    assert!(
        err.contains("raise the policy to `manylinux_2_36_x86_64`"),
        "{err}"
    );

    let bad = run_refine(
        dir.path(),
        &["wheel", "scan", path, "--policy", "manylinux_9"],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("Known policies: manylinux_2_5 (manylinux1)"),
        "{}",
        stderr(&bad)
    );
}

/// A shared object that needs no library and no versioned symbol (built with `-nostdlib`) is
/// listed as such, and meets the oldest policy.
#[test]
fn a_file_that_needs_nothing_says_so() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(dir.path().join("n.c"), "int answer(void) { return 42; }\n").unwrap();
    must_run(
        dir.path(),
        "gcc",
        &["-shared", "-fPIC", "-nostdlib", "-o", "_n.so", "n.c"],
    );
    let zip = "import zipfile; z = zipfile.ZipFile('n-1.0-cp311-cp311-linux_x86_64.whl', 'w'); \
               z.write('_n.so', 'n/_n.so'); z.close()";
    must_run(dir.path(), "python3", &["-c", zip]);
    let out = run_refine(
        dir.path(),
        &["wheel", "scan", "n-1.0-cp311-cp311-linux_x86_64.whl"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "lowest policy: manylinux_2_5_x86_64.manylinux1_x86_64\nn/_n.so: no versioned symbols; no libraries\n"
    );
}
