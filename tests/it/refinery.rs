//! The refinery end to end, on the repo's own workspace: real Debian bases bootstrapped with
//! debootstrap, libyaml built from Debian's source, PyYAML from its PyPI sdist, repaired by
//! auditwheel, installed into a clean venv in the sandbox and smoke-tested; CPython built from
//! source on the host. On the host's architecture and on s390x under qemu-user. These tests
//! need the network to PyPI and a Debian mirror, debootstrap, and qemu-user-static (see
//! .ci/setup.d/); they take minutes.

use std::path::{Path, PathBuf};

use crate::common::*;

mod same_objects;

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

/// Installs `wheel` into a clean venv inside the sandbox on `root` and runs `smoke` with it.
fn smoke_in_sandbox(root: &Path, arch: Option<&str>, wheel: &Path, smoke: &str) -> String {
    let name = wheel.file_name().unwrap().to_str().unwrap();
    let script = format!(
        "{} && /tmp/v/bin/python -c '{smoke}'",
        venv_with("/tmp/v", &format!("--no-index --no-deps /wheels/{name}"))
    );
    sandbox_sh(root, arch, &[(wheel.parent().unwrap(), "/wheels")], &script)
}

/// The platform tag `auditwheel show` finds `wheel` consistent with, run in the s390x root
/// under qemu (auditwheel judges wheels against the machine it runs on). Its pinned wheels
/// come from PyPI into a folder of `work` bound into the sandbox.
fn auditwheel_show(base: &Path, work: &tempfile::TempDir, wheel: &Path) -> String {
    let wh = work.path().join("auditwheel-wheels");
    if !wh.exists() {
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
    }
    let name = wheel.file_name().unwrap().to_str().unwrap();
    let show = sandbox_sh(
        base,
        Some("s390x"),
        &[(wh.as_path(), "/aw"), (wheel.parent().unwrap(), "/wheels")],
        &format!(
            "{} && /tmp/aw/bin/auditwheel show /wheels/{name}",
            venv_with("/tmp/aw", "--no-index --find-links /aw auditwheel")
        ),
    );
    // auditwheel wraps its lines: match words, not the sentence.
    let words = show.split_whitespace().collect::<Vec<_>>().join(" ");
    let (_, after) = words
        .split_once("consistent with the following platform tag: \"")
        .unwrap_or_else(|| panic!("no platform tag in:\n{show}"));
    after.split('"').next().unwrap().to_string()
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
    // The first store is shared with the other tests that build on this base; the second
    // starts empty, so that two builds from nothing can be compared.
    let store_a = store_with_base("//bases:bookworm-x86_64").to_path_buf();
    let store_b = work.path().join("store-b");
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
    let said = sandbox_sh(
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

/// The s390x root, and the x86_64 one that toolchains are unpacked in.
const BOTH_BASES: [&str; 2] = ["//bases:bookworm-s390x", "//bases:bookworm-x86_64"];

/// PyYAML with libyaml for s390x, everything under qemu, then the same targets with the
/// root's own gcc 12 running natively: the same objects. With `REFINE_IDENTITY_STORE=DIR`, in
/// that store instead of the shared one.
#[test]
fn s390x_pyyaml_under_emulation_and_with_native_compilers() {
    let work = scratch();
    let store = store_from_env_or_shared("REFINE_IDENTITY_STORE", &BOTH_BASES);
    let store = store.as_path();
    let out_dir = work.path().join("wheels");
    let events = work.path().join("events.jsonl");
    let out = build(
        store,
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
    // (auditwheel judges wheels against the machine it runs on).
    let base = artifact_tree(repo(), store, "//bases:bookworm-s390x");
    let show = auditwheel_show(&base, &work, &wheel);
    assert!(show == "manylinux_2_17_s390x", "{show}");

    // Installed into a clean venv and smoke-tested, under qemu.
    let said = smoke_in_sandbox(&base, Some("s390x"), &wheel, YAML_SMOKE);
    assert!(said.contains("ok s390x"), "{said}");

    let out = build(
        store,
        "//wheels:pyyaml-debian-repaired-py311",
        &out_dir,
        &events,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(action_starts(&events), 0, "a second build ran actions");

    native_compilers_make_the_same_objects(&work, store);
}

/// The `s390x-2_31` platform, C: see [`s390x_2_31_floors`]. The toolchain is built once
/// for this test and the next, which run at once.
#[test]
fn s390x_c_wheels_at_the_2_31_floor() {
    s390x_2_31_floors(&[
        (
            "//wheels:pyyaml-debian-repaired-s390x-2_31-py311",
            YAML_SMOKE,
        ),
        ("//wheels:cffi-debian-repaired-s390x-2_31-py311", CFFI_SMOKE),
    ]);
}

/// The `s390x-2_31` platform, C++ and Fortran: see [`s390x_2_31_floors`].
#[test]
fn s390x_cxx_and_fortran_wheels_at_the_2_31_floor() {
    s390x_2_31_floors(&[
        ("//wheels:floor-cxx-repaired-py311", CXX_SMOKE),
        ("//wheels:floor-fortran-repaired-py311", FORTRAN_SMOKE),
    ]);
}

/// The `s390x-2_17` platform: see [`s390x_2_17_with_zig`].
#[test]
fn s390x_pyyaml_at_2_17_with_zig() {
    let work = scratch();
    let store = store_with(&BOTH_BASES);
    let base = artifact_tree(repo(), store, "//bases:bookworm-s390x");
    s390x_2_17_with_zig(&work, store, &base);
}

/// The `s390x-native-compilers` platform: the bookworm root with the toolchain of the root's
/// own gcc 12, running natively (docs/toolchains.md). libyaml and the PyYAML wheel built there
/// hold the same objects as those built by the root's gcc under qemu, as
/// [`same_objects::same_objects`] judges them.
fn native_compilers_make_the_same_objects(work: &tempfile::TempDir, store: &Path) {
    // The native pack is built here (the emulated one was, for the wheel above).
    let emulated_pack = artifact_copy(work.path(), store, "//packs:libyaml");
    let native_pack = artifact_copy(work.path(), store, "//packs:libyaml-s390x-native-compilers");
    let same = same_objects::same_objects(&emulated_pack, &native_pack);
    assert!(same.is_ok(), "libyaml: {same:?}");

    let [emulated, native] = [
        "//wheels:pyyaml-debian-py311",
        "//wheels:pyyaml-debian-s390x-native-compilers-py311",
    ]
    .map(|label| wheel_unzipped(work.path(), store, label));
    let same = same_objects::same_objects(&emulated, &native);
    assert!(same.is_ok(), "PyYAML: {same:?}");
}

/// Builds the wheel target `label` into `store` and unzips its one wheel into a folder of
/// `work`, which it returns.
fn wheel_unzipped(work: &Path, store: &Path, label: &str) -> PathBuf {
    let out_dir = work.join(label.replace([':', '/'], "_"));
    let out = build(store, label, &out_dir, &work.join("events-unzipped.jsonl"));
    assert_eq!(out.status.code(), Some(0), "{label}: {}", stderr(&out));
    let dir = out_dir.with_extension("d");
    unzip(&only_wheel(&out_dir), &dir);
    dir
}

// The backend alone (`cffi.FFI` needs pycparser, which `--no-deps` leaves out): a call through
// a function pointer goes through the grafted libffi.
const CFFI_SMOKE: &str = "import _cffi_backend as b, platform; i = b.new_primitive_type(\"int\"); f = b.new_function_type((i,), i, False); fn = b.load_library(None).load_function(f, \"abs\"); assert fn(-3) == 3; print(\"ok\", platform.machine())";
const CXX_SMOKE: &str = "import floor_cxx, platform; assert floor_cxx.greet(\"z\") == \"hello z from C++\"; print(\"ok\", platform.machine())";
const FORTRAN_SMOKE: &str = "import floor_fortran, platform; assert abs(floor_fortran.norm(3.0, 4.0) - 5.0) < 1e-9; print(\"ok\", platform.machine())";

/// The `s390x-2_31` platform (docs/toolchains.md): PyYAML with libyaml, cffi with libffi, a
/// C++ extension and a C extension over a Fortran pack, built in the bookworm root with the
/// bullseye gcc-10 toolchain's native compilers. Each wheel is tagged manylinux_2_31 or lower;
/// refine's scan and `auditwheel show` name the same lowest policy; it installs and imports in
/// a clean venv under qemu; and every ELF file in it loads with the glibc 2.31 runtime of the
/// toolchain's sysroot (its loader and libc, run under qemu), so nothing needs a newer glibc.
fn s390x_2_31_floors(wheels: &[(&str, &str)]) {
    let work = scratch();
    let toolchain_label = "//toolchains:gcc-10-s390x-glibc-2.31";
    let store = store_with(&S390X_2_31_SHARED);
    let base = artifact_tree(repo(), store, "//bases:bookworm-s390x");
    let toolchain = artifact_copy(work.path(), store, toolchain_label);
    let sysroot_lib = toolchain.join("usr/s390x-linux-gnu/lib");
    for &(label, smoke) in wheels {
        let out_dir = work.path().join(label.replace([':', '/'], "_"));
        let events = work.path().join("events-2_31.jsonl");
        let out = build(store, label, &out_dir, &events);
        assert_eq!(out.status.code(), Some(0), "{label}: {}", stderr(&out));
        let wheel = only_wheel(&out_dir);
        let name = wheel.file_name().unwrap().to_str().unwrap().to_string();
        let tags: Vec<&str> = name
            .trim_end_matches(".whl")
            .rsplit('-')
            .next()
            .unwrap()
            .split('.')
            .collect();
        for tag in &tags {
            assert!(
                at_most_2_31(tag),
                "{label}: `{name}` is tagged above manylinux_2_31"
            );
        }

        let lowest = lowest_policy(&wheel);
        assert!(at_most_2_31(&lowest), "{label}: {lowest}");
        let show = auditwheel_show(&base, &work, &wheel);
        assert_eq!(
            show,
            format!("{lowest}_s390x"),
            "{label}: refine's scan and auditwheel disagree"
        );

        let said = smoke_in_sandbox(&base, Some("s390x"), &wheel, smoke);
        assert!(said.contains("ok s390x"), "{label}: {said}");

        // Every ELF file, grafted libraries included, loads with glibc 2.31.
        let unpacked = work.path().join(format!("{name}.d"));
        unzip(&wheel, &unpacked);
        let elves = shared_objects(&unpacked);
        assert!(!elves.is_empty(), "{label}: no shared object in {name}");
        for so in elves {
            let dir = so.parent().unwrap();
            let list = std::process::Command::new(sysroot_lib.join("ld64.so.1"))
                .arg("--library-path")
                .arg(format!("{}:{}", sysroot_lib.display(), dir.display()))
                .arg("--list")
                .arg(&so)
                .output()
                .unwrap();
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&list.stdout),
                String::from_utf8_lossy(&list.stderr)
            );
            assert!(
                list.status.success() && !said.contains("not found"),
                "{label}: {} does not load with glibc 2.31:\n{said}",
                so.display()
            );
        }
    }
}

/// The `s390x-2_17` platform (docs/toolchains.md): PyYAML with libyaml compiled and linked by
/// zig's clang against its glibc 2.17 stubs, in the bookworm root. The wheel is tagged
/// manylinux_2_17 (with its alias) because it needs no more, refine's scan and `auditwheel show`
/// agree, every ELF file in it was made by clang and LLD (not by a compiler of the root), and it
/// installs and imports in a clean venv under qemu.
fn s390x_2_17_with_zig(work: &tempfile::TempDir, store: &Path, base: &Path) {
    let label = "//wheels:pyyaml-debian-repaired-s390x-2_17-py311";
    let out_dir = work.path().join("wheels-2_17");
    let events = work.path().join("events-2_17.jsonl");
    let out = build(store, label, &out_dir, &events);
    assert_eq!(out.status.code(), Some(0), "{label}: {}", stderr(&out));
    let wheel = only_wheel(&out_dir);
    let name = wheel.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(
        name,
        "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x.whl"
    );
    assert_eq!(lowest_policy(&wheel), "manylinux_2_17");
    assert_eq!(auditwheel_show(base, work, &wheel), "manylinux_2_17_s390x");

    // The 2_31 floor's PyYAML wheel has the same name: a folder of its own.
    let unpacked = work.path().join(format!("zig-{name}.d"));
    unzip(&wheel, &unpacked);
    let elves = shared_objects(&unpacked);
    assert_eq!(elves.len(), 2, "the extension and the grafted libyaml");
    for so in elves {
        let comment = std::process::Command::new("readelf")
            .args(["-p", ".comment"])
            .arg(&so)
            .output()
            .expect("readelf runs");
        let comment = String::from_utf8_lossy(&comment.stdout);
        assert!(
            comment.contains("clang version") && !comment.contains("GCC:"),
            "{} was not compiled by zig's clang alone:\n{comment}",
            so.display()
        );
    }

    let said = smoke_in_sandbox(base, Some("s390x"), &wheel, YAML_SMOKE);
    assert!(said.contains("ok s390x"), "{label}: {said}");
}

/// The lowest policy `refine wheel scan` finds that `wheel` meets.
fn lowest_policy(wheel: &Path) -> String {
    let scan = run_refine(
        repo(),
        &["wheel", "scan", "-o", "json", wheel.to_str().unwrap()],
    );
    assert_eq!(scan.status.code(), Some(0), "{}", stderr(&scan));
    let verdict: serde_json::Value = serde_json::from_slice(&scan.stdout).unwrap();
    verdict["lowest"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("no lowest policy: {verdict}"))
        .to_string()
}

/// A `manylinux_X_Y_<arch>` tag or policy name (or a legacy alias) at most manylinux_2_31.
fn at_most_2_31(tag: &str) -> bool {
    for (alias, glibc) in [
        ("manylinux1", 5),
        ("manylinux2010", 12),
        ("manylinux2014", 17),
    ] {
        if tag.starts_with(alias) {
            return glibc <= 31;
        }
    }
    let mut parts = tag.trim_start_matches("manylinux_").split('_');
    let major: u32 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(u32::MAX);
    let minor: u32 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(u32::MAX);
    (major, minor) <= (2, 31)
}

/// Unpacks a wheel into `dir`.
fn unzip(wheel: &Path, dir: &Path) {
    let out = std::process::Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(wheel)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every `*.so` and `*.so.N` file below `dir`.
fn shared_objects(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs_err::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(shared_objects(&path));
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".so") || n.contains(".so."))
        {
            out.push(path);
        }
    }
    out
}

/// A copy of the artifact of `label` (built if it is not in the store yet), out of the store
/// with `build --out` into a folder of `work`: a tree is unpacked in the store only when a
/// dependent has needed it.
fn artifact_copy(work: &Path, store: &Path, label: &str) -> PathBuf {
    let dir = work.join(format!("copy-{}", label.replace([':', '/'], "_")));
    let out = run_refine(
        repo(),
        &[
            "--store",
            store.to_str().unwrap(),
            "build",
            label,
            "--out",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{label}: {}", stderr(&out));
    dir.join(label.rsplit(':').next().unwrap())
}

const NUMPY_SMOKE: &str = "import numpy as np, platform; a = np.array([[4.0, 1.0], [2.0, 3.0]]); x = np.linalg.solve(a, [1.0, 2.0]); assert np.allclose(a @ x, [1.0, 2.0]); assert np.allclose(np.linalg.eigvalsh([[2.0, 1.0], [1.0, 2.0]]), [1.0, 3.0]); deps = np.show_config(mode=\"dicts\")[\"Build Dependencies\"]; assert deps[\"blas\"][\"name\"] == \"openblas\" and deps[\"lapack\"][\"name\"] == \"openblas\", deps; print(\"ok\", platform.machine(), np.__version__)";

/// The flagship: numpy 2.1.3 on s390x with OpenBLAS (and Debian's way of adding reference
/// LAPACK to it), everything under qemu. Hours on a 2-core machine, so opt-in:
/// `cargo test --test it -- --ignored refinery::s390x_numpy` (README.md, "Tests").
#[test]
#[ignore = "hours under emulation: run with `-- --ignored s390x_numpy`"]
fn s390x_numpy_with_openblas_under_emulation() {
    let (name, _) = s390x_flagship("//wheels:numpy-debian-repaired-py311");
    assert!(name.contains("-manylinux_"), "{name}");
}

/// Builds the flagship's repaired wheel `label` for s390x (in REFINE_FLAGSHIP_STORE when set:
/// it keeps the base and the packs between runs), checks that the repair grafted OpenBLAS with
/// its gfortran runtime, and smoke-tests it in a clean venv under qemu. Returns the wheel's
/// name and the scratch folder holding it.
fn s390x_flagship(label: &str) -> (String, tempfile::TempDir) {
    let work = scratch();
    let store = std::env::var_os("REFINE_FLAGSHIP_STORE")
        .map_or_else(|| work.path().join("store"), PathBuf::from);
    let out_dir = work.path().join("wheels");
    let events = work.path().join("events.jsonl");
    let out = build(&store, label, &out_dir, &events);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let wheel = only_wheel(&out_dir);
    let name = wheel.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("numpy-2.1.3-cp311-cp311-") && name.ends_with("_s390x.whl"),
        "{name}"
    );
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
    (name, work)
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

/// CPython 3.11 from Debian's copy of the upstream tarball, for s390x, with the `s390x-2_31`
/// platform's native compilers (docs/toolchains.md): configure's test programs and the
/// interpreter's own build steps run under qemu, every compile natively. Tens of minutes on
/// two cores (an hour and more with every compiler emulated), so opt-in:
/// `cargo test --test it -- --ignored refinery::s390x_cpython` (REFINE_FLAGSHIP_STORE=DIR
/// keeps the bases and the toolchain between runs).
#[test]
#[ignore = "tens of minutes under emulation: run with `-- --ignored s390x_cpython`"]
fn s390x_cpython_with_native_compilers() {
    let work = scratch();
    let store = std::env::var_os("REFINE_FLAGSHIP_STORE")
        .map_or_else(|| work.path().join("store"), PathBuf::from);
    let label = "//runtimes:cpython-s390x-2_31-py311";
    let runtime = artifact_copy(work.path(), &store, label);
    let base = artifact_tree(repo(), &store, "//bases:bookworm-s390x");
    let said = sandbox_sh(
        &base,
        Some("s390x"),
        &[(runtime.as_path(), "/opt/python/cp311-cp311")],
        "/opt/python/cp311-cp311/bin/python3 -c 'import ctypes, json, platform, sys, zlib; assert sys.version_info[:2] == (3, 11); print(\"ok\", platform.machine(), sys.prefix)'",
    );
    assert!(said.contains("ok s390x /opt/python/cp311-cp311"), "{said}");
    // The interpreter needs nothing above glibc 2.31: it loads with the toolchain's.
    let toolchain = artifact_copy(work.path(), &store, "//toolchains:gcc-10-s390x-glibc-2.31");
    let sysroot_lib = toolchain.join("usr/s390x-linux-gnu/lib");
    let list = std::process::Command::new(sysroot_lib.join("ld64.so.1"))
        .arg("--library-path")
        .arg(&sysroot_lib)
        .arg("--list")
        .arg(runtime.join("bin/python3.11"))
        .output()
        .unwrap();
    let listed =
        String::from_utf8_lossy(&list.stdout).to_string() + &String::from_utf8_lossy(&list.stderr);
    assert!(
        list.status.success() && !listed.contains("not found"),
        "{listed}"
    );
}

/// The flagship's identity (docs/toolchains.md, "Identity"): reference LAPACK, OpenBLAS and
/// the numpy 2.1.3 wheel built on the `s390x-native-compilers` platform (the root's own gcc 12
/// as x86_64 cross compilers) hold the same objects as those built with every compiler under
/// qemu. Hours for the emulated side, so opt-in:
/// `cargo test --test it -- --ignored refinery::s390x_numpy_native`. With
/// REFINE_FLAGSHIP_STORE=DIR it finds what `benches/toolchain.sh DIR` built and only compares.
#[test]
#[ignore = "hours under emulation: run with `-- --ignored s390x_numpy_native`"]
fn s390x_numpy_native_compilers_make_the_same_objects() {
    let work = scratch();
    let store = std::env::var_os("REFINE_FLAGSHIP_STORE")
        .map_or_else(|| work.path().join("store"), PathBuf::from);
    for pack in ["//packs:lapack", "//packs:openblas"] {
        let emulated = artifact_copy(work.path(), &store, pack);
        let native = artifact_copy(
            work.path(),
            &store,
            &format!("{pack}-s390x-native-compilers"),
        );
        let same = same_objects::same_objects(&emulated, &native);
        assert!(same.is_ok(), "{pack}: {same:?}");
        eprintln!("{pack}: {} ELF files the same", same.unwrap());
    }
    let [emulated, native] = [
        "//wheels:numpy-debian-py311",
        "//wheels:numpy-debian-s390x-native-compilers-py311",
    ]
    .map(|label| wheel_unzipped(work.path(), &store, label));
    let same = same_objects::same_objects(&emulated, &native);
    assert!(same.is_ok(), "numpy: {same:?}");
    eprintln!("numpy: {} ELF files the same", same.unwrap());
}

/// The flagship on the `s390x-2_31` platform: reference LAPACK, OpenBLAS and numpy 2.1.3
/// compiled natively in the emulated root against glibc 2.31, repaired to manylinux_2_31 or
/// lower, installed and smoke-tested under qemu. Opt-in like the emulated flagship:
/// `cargo test --test it -- --ignored refinery::s390x_2_31_numpy`.
#[test]
#[ignore = "an hour and more on two cores: run with `-- --ignored s390x_2_31_numpy`"]
fn s390x_2_31_numpy_with_native_compilers() {
    let (name, _) = s390x_flagship("//wheels:numpy-debian-repaired-s390x-2_31-py311");
    let tags = name.trim_end_matches(".whl").rsplit('-').next().unwrap();
    assert!(tags.split('.').all(at_most_2_31), "{name}");
}
