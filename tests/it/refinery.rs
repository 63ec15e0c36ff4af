//! The refinery end to end, on the repo's own workspace: real Debian bases bootstrapped with
//! debootstrap, libyaml built from Debian's source, PyYAML from its PyPI sdist, repaired by
//! auditwheel, installed into a clean venv in the sandbox and smoke-tested; CPython built from
//! source on the host. On the host's architecture and on s390x under qemu-user. These tests
//! need the network to PyPI and a Debian mirror, debootstrap, and qemu-user-static (see
//! .ci/setup.d/); they take minutes.

use std::path::{Path, PathBuf};

use crate::common::*;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch folder on disk (not tmpfs): bases are hundreds of megabytes.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("refine-refinery-")
        .tempdir_in("/var/tmp")
        .expect("a folder in /var/tmp")
}

fn build(store: &Path, target: &str, out: &Path, events: &Path) -> std::process::Output {
    run_refine(
        repo(),
        &[
            "--store",
            store.to_str().unwrap(),
            "build",
            target,
            "--out",
            out.to_str().unwrap(),
            "--events",
            events.to_str().unwrap(),
        ],
    )
}

fn action_starts(events: &Path) -> usize {
    fs_err::read_to_string(events)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"event\":\"action-start\""))
        .count()
}

fn only_wheel(dir: &Path) -> PathBuf {
    let wheels: Vec<PathBuf> = fs_err::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl"))
        .collect();
    assert_eq!(wheels.len(), 1, "{wheels:?}");
    wheels.into_iter().next().unwrap()
}

fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

/// Runs `script` with `/bin/sh` in the sandbox on `root`, with host folders bound read-only.
fn run_in_sandbox(
    root: &Path,
    arch: Option<&str>,
    binds: &[(&Path, &str)],
    script: &str,
) -> String {
    let binds: Vec<String> = binds
        .iter()
        .map(|(from, to)| format!("{}:{to}:ro", from.display()))
        .collect();
    let mut args = vec!["sandbox", "run", "--root", root.to_str().unwrap()];
    for b in &binds {
        args.extend(["--bind", b.as_str()]);
    }
    args.extend(["--env", "PATH=/usr/bin:/bin", "--env", "HOME=/tmp"]);
    if let Some(a) = arch {
        args.extend(["--arch", a]);
    }
    args.extend(["--", "/bin/sh", "-c", script]);
    let out = run_refine(Path::new("/"), &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "in the sandbox, `{script}` failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Installs `wheel` into a clean venv inside the sandbox on `root` and runs `smoke` with it.
fn smoke_in_sandbox(root: &Path, arch: Option<&str>, wheel: &Path, smoke: &str) -> String {
    let name = wheel.file_name().unwrap().to_str().unwrap();
    let script = format!(
        "python3 -m venv /tmp/v && /tmp/v/bin/pip install -q --no-index --no-deps /wheels/{name} && /tmp/v/bin/python -c '{smoke}'"
    );
    run_in_sandbox(root, arch, &[(wheel.parent().unwrap(), "/wheels")], &script)
}

const YAML_SMOKE: &str = "import yaml, platform; assert yaml.__with_libyaml__; d = yaml.load(\"a: [1, 2]\", Loader=yaml.CLoader); assert d == {\"a\": [1, 2]}; print(\"ok\", platform.machine())";

#[test]
fn host_arch_markupsafe_and_pyyaml_from_sdist_to_repaired_wheels() {
    let arch = std::env::consts::ARCH;
    assert_eq!(
        arch, "x86_64",
        "the repo's host targets are its rules' x86_64 variants (rules/wheels.kdl)"
    );
    let work = scratch();
    let (store_a, store_b) = (work.path().join("store-a"), work.path().join("store-b"));
    let out_a = work.path().join("wheels-a");
    let events = work.path().join("events.jsonl");

    let out = build(
        &store_a,
        "//wheels:pyyaml-debian-repaired-x86_64-py311",
        &out_a,
        &events,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let wheel = only_wheel(&out_a);
    let name = wheel.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("PyYAML-6.0.2-cp311-cp311-manylinux_") && name.ends_with("_x86_64.whl"),
        "{name}"
    );
    let base = artifact_tree(repo(), &store_a, "//bases:bookworm-x86_64");
    let said = smoke_in_sandbox(&base, None, &wheel, YAML_SMOKE);
    assert!(said.contains("ok x86_64"), "{said}");

    // A second build runs nothing.
    let out = build(
        &store_a,
        "//wheels:pyyaml-debian-repaired-x86_64-py311",
        &out_a,
        &events,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(action_starts(&events), 0, "a second build ran actions");

    // markupsafe (one C file, no packs) through the same base and runtime.
    let out_m = work.path().join("wheels-m");
    let out = build(
        &store_a,
        "//wheels:markupsafe-debian-repaired-x86_64-py311",
        &out_m,
        &events,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = only_wheel(&out_m);
    let said = smoke_in_sandbox(
        &base,
        None,
        &m,
        "import markupsafe; assert str(markupsafe.escape(\"<a>\")) == \"&lt;a&gt;\"; print(\"ok\")",
    );
    assert!(said.contains("ok"));

    // CPython built from source (Debian's copy of upstream's 3.11.2 tarball, fetched by
    // refine through apt), then markupsafe built and repaired with it, installed into a venv
    // of that very interpreter: mounted where it was built for.
    let out_c = work.path().join("wheels-c");
    let out = build(
        &store_a,
        "//wheels:markupsafe-repaired-x86_64-py311",
        &out_c,
        &events,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let c = only_wheel(&out_c);
    let runtime = artifact_tree(repo(), &store_a, "//runtimes:cpython-x86_64-py311");
    let name = c.file_name().unwrap().to_str().unwrap();
    let said = run_in_sandbox(
        &base,
        None,
        &[
            (runtime.as_path(), "/opt/python/cp311-cp311"),
            (c.parent().unwrap(), "/wheels"),
        ],
        &format!(
            "/opt/python/cp311-cp311/bin/python3 -m venv /tmp/v && /tmp/v/bin/pip install -q --no-index --no-deps /wheels/{name} && /tmp/v/bin/python -c 'import sys, ctypes, markupsafe; assert sys.version.startswith(\"3.11.2 \"), sys.version; assert sys.base_prefix == \"/opt/python/cp311-cp311\", sys.base_prefix; assert str(markupsafe.escape(\"<a>\")) == \"&lt;a&gt;\"; print(\"ok\", sys.version.split()[0])'"
        ),
    );
    assert!(said.contains("ok 3.11.2"), "{said}");

    // A wheel from a folder of the workspace rather than an sdist.
    let out_h = work.path().join("wheels-h");
    let out = build(&store_a, "//wheels:hello-x86_64-py311", &out_h, &events);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let h = only_wheel(&out_h);
    assert_eq!(
        h.file_name().unwrap().to_str().unwrap(),
        "hello_refine-0.1.0-py3-none-any.whl"
    );
    let said = smoke_in_sandbox(
        &base,
        None,
        &h,
        "import hello_refine; print(hello_refine.greet())",
    );
    assert!(said.contains("hello from refine"), "{said}");

    // From an empty store, the same bytes.
    let out_b = work.path().join("wheels-b");
    let out = build(
        &store_b,
        "//wheels:pyyaml-debian-repaired-x86_64-py311",
        &out_b,
        &events,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        sha256(&wheel),
        sha256(&only_wheel(&out_b)),
        "two builds from empty stores differ"
    );
}

#[test]
fn s390x_pyyaml_with_libyaml_under_emulation() {
    let work = scratch();
    let store = work.path().join("store");
    let out_dir = work.path().join("wheels");
    let events = work.path().join("events.jsonl");
    let out = build(
        &store,
        "//wheels:pyyaml-debian-repaired-py311",
        &out_dir,
        &events,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let wheel = only_wheel(&out_dir);
    let name = wheel.file_name().unwrap().to_str().unwrap().to_string();
    // The platform promises manylinux_2_36; the extension needs no more than GLIBC_2.4, so
    // refine tags the repaired wheel with the lowest policy it meets, alias included.
    assert_eq!(
        name,
        "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x.whl"
    );

    // `auditwheel show` agrees, run where the wheel belongs: in the s390x root, under qemu
    // (auditwheel judges wheels against the machine it runs on). Its pinned wheels come
    // from PyPI into a folder bound into the sandbox.
    let wh = work.path().join("auditwheel-wheels");
    let pip = std::process::Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary",
            ":all:",
            "-d",
        ])
        .arg(&wh)
        .args(["auditwheel==6.1.0", "pyelftools==0.31", "packaging==24.2"])
        .output()
        .unwrap();
    assert!(
        pip.status.success(),
        "{}",
        String::from_utf8_lossy(&pip.stderr)
    );
    let base = artifact_tree(repo(), &store, "//bases:bookworm-s390x");
    let show = run_in_sandbox(
        &base,
        Some("s390x"),
        &[(wh.as_path(), "/aw"), (out_dir.as_path(), "/wheels")],
        &format!(
            "python3 -m venv /tmp/aw && /tmp/aw/bin/pip install -q --no-index --find-links /aw auditwheel && /tmp/aw/bin/auditwheel show /wheels/{name}"
        ),
    );
    assert!(
        // auditwheel wraps its lines: match words, not the sentence.
        show.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains("consistent with the following platform tag: \"manylinux_2_17_s390x\""),
        "{show}"
    );

    // Installed into a clean venv and smoke-tested, under qemu.
    let said = smoke_in_sandbox(&base, Some("s390x"), &wheel, YAML_SMOKE);
    assert!(said.contains("ok s390x"), "{said}");

    let out = build(
        &store,
        "//wheels:pyyaml-debian-repaired-py311",
        &out_dir,
        &events,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(action_starts(&events), 0, "a second build ran actions");
}

const NUMPY_SMOKE: &str = "import numpy as np, platform; a = np.array([[4.0, 1.0], [2.0, 3.0]]); x = np.linalg.solve(a, [1.0, 2.0]); assert np.allclose(a @ x, [1.0, 2.0]); assert np.allclose(np.linalg.eigvalsh([[2.0, 1.0], [1.0, 2.0]]), [1.0, 3.0]); deps = np.show_config(mode=\"dicts\")[\"Build Dependencies\"]; assert deps[\"blas\"][\"name\"] == \"openblas\" and deps[\"lapack\"][\"name\"] == \"openblas\", deps; print(\"ok\", platform.machine(), np.__version__)";

/// The flagship: numpy 2.1.3 on s390x with OpenBLAS (and Debian's way of adding reference
/// LAPACK to it), everything under qemu. Hours on a 2-core machine, so opt-in:
/// `cargo test --test it -- --ignored refinery::s390x_numpy` (README.md, "Tests").
#[test]
#[ignore = "hours under emulation: run with `-- --ignored s390x_numpy`"]
fn s390x_numpy_with_openblas_under_emulation() {
    let work = scratch();
    // A store of your own (REFINE_FLAGSHIP_STORE) keeps the base and the pack between runs.
    let store = std::env::var_os("REFINE_FLAGSHIP_STORE")
        .map_or_else(|| work.path().join("store"), PathBuf::from);
    let out_dir = work.path().join("wheels");
    let events = work.path().join("events.jsonl");
    let out = build(
        &store,
        "//wheels:numpy-debian-repaired-py311",
        &out_dir,
        &events,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let wheel = only_wheel(&out_dir);
    let name = wheel.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("numpy-2.1.3-cp311-cp311-manylinux_") && name.ends_with("_s390x.whl"),
        "{name}"
    );
    // The repair grafted OpenBLAS (with its gfortran runtime) into the wheel.
    let list = std::process::Command::new("python3")
        .args(["-m", "zipfile", "-l"])
        .arg(&wheel)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(
        listing.contains("numpy.libs/libopenblas") && listing.contains("numpy.libs/libgfortran"),
        "{listing}"
    );
    let base = artifact_tree(repo(), &store, "//bases:bookworm-s390x");
    let said = smoke_in_sandbox(&base, Some("s390x"), &wheel, NUMPY_SMOKE);
    assert!(said.contains("ok s390x 2.1.3"), "{said}");
}

/// The flagship's recipes on the host: LAPACK, OpenBLAS (one CPU target), numpy 2.1.3,
/// repaired and smoke-tested. About a quarter of an hour on two cores, so opt-in with the
/// flagship: `cargo test --test it -- --ignored refinery::host_numpy`.
#[test]
#[ignore = "a quarter of an hour: run with `-- --ignored host_numpy`"]
fn host_numpy_with_openblas() {
    let work = scratch();
    let store = work.path().join("store");
    let out_dir = work.path().join("wheels");
    let events = work.path().join("events.jsonl");
    let out = build(
        &store,
        "//wheels:numpy-debian-repaired-x86_64-py311",
        &out_dir,
        &events,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let wheel = only_wheel(&out_dir);
    let name = wheel.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("numpy-2.1.3-cp311-cp311-manylinux_") && name.ends_with("_x86_64.whl"),
        "{name}"
    );
    let base = artifact_tree(repo(), &store, "//bases:bookworm-x86_64");
    let said = smoke_in_sandbox(&base, None, &wheel, NUMPY_SMOKE);
    assert!(said.contains("ok x86_64 2.1.3"), "{said}");
}
