//! One rule, every platform, end to end: psutil, lz4 and ujson for s390x and x86_64 and
//! Python 3.11, written as three wheel rules with inline, stripping repairs. The targets are
//! those the naming scheme promises; their keys equal those of the same wheels written by
//! hand, one rule per architecture (computed for every target, and for the x86_64 ones also
//! found in a real store); and the x86_64 repairs are built from PyPI's sdists on a Debian
//! root bootstrapped with debootstrap, stripped, then installed and imported in a clean venv
//! in the sandbox.
//!
//! Like tests/it/refinery.rs, this needs the network to PyPI and a Debian mirror and takes
//! minutes. `REFINE_PLATFORMS_STORE=DIR` keeps the store (the base, above all) between runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;
use refine_engine::graph::{TargetGraph, TargetId};
use refine_engine::key::{KeyInputs, key_fields};
use refine_engine::rules::Workspace;

fn workspace_kdl() -> String {
    format!(
        "workspace \"platforms\"\nplatform \"s390x\" arch=\"s390x\" policy=\"manylinux_2_36\" base=\"//bases:bookworm-s390x\"\nplatform \"x86_64\" arch=\"x86_64\" policy=\"manylinux_2_36\" base=\"//bases:bookworm-x86_64\"\ndefaults {{\n    platform \"s390x\"\n{}}}\n",
        tool_defaults(&["s390x", "x86_64"])
    )
}

const SETUPTOOLS: &str = r#"requires "setuptools==80.9.0" sha256="062d34222ad13e0cc312a4c02d73f059e86a4acbfbdea8f8f76b28c99f306922""#;
const SETUPTOOLS_SCM: &str = r#"requires "setuptools-scm==9.2.2" sha256="30e8f84d2ab1ba7cb0e653429b179395d0c33775d54807fc5f1dd6671801aef7""#;
const WHEEL: &str = r#"requires "wheel==0.45.1" sha256="708e7481cc80179af0e556bbf0cc00b8444c7321e2700b8d8580231d13017248""#;
const PKGCONFIG: &str = r#"requires "pkgconfig==1.5.5" sha256="d20023bbeb42ee6d428a0fac6e0904631f545985a10cdd71a20aa58bc47a4209""#;

/// The three packages: rule name, sdist, build requirements.
fn packages() -> [(&'static str, String, Vec<&'static str>); 3] {
    [
        (
            "psutil",
            r#"source pypi="psutil" version="7.2.2" sha256="0746f5f8d406af344fd547f1c8daa5f5c33dbc293bb8d6a16d80b4bb88f59372""#.to_string(),
            vec![SETUPTOOLS],
        ),
        (
            "lz4",
            r#"source pypi="lz4" version="4.4.5" sha256="5f0b9e53c1e82e88c10d7c180069363980136b9d7a8306c4dca4f760d60c39f0""#.to_string(),
            vec![SETUPTOOLS, SETUPTOOLS_SCM, WHEEL, PKGCONFIG],
        ),
        (
            "ujson",
            r#"source pypi="ujson" version="6.1.0" sha256="aef7ea4cd9e2e9f8a35c4538a9780d58c80d76c5da66a8dad269b4cc6d930c29""#.to_string(),
            vec![SETUPTOOLS, SETUPTOOLS_SCM],
        ),
    ]
}

fn wheel_rule(name: &str, platform: &str, runtime: &str, repair: &str) -> String {
    let [(_, source, requires)] = packages()
        .into_iter()
        .filter(|(n, _, _)| *n == name.split('-').next().unwrap_or(name))
        .collect::<Vec<_>>()
        .try_into()
        .unwrap_or_else(|_| panic!("no package {name}"));
    let requires: String = requires.iter().map(|r| format!("    {r}\n")).collect();
    format!(
        "wheel \"{name}\" {{\n{platform}    {source}\n    python \"3.11\"\n    runtime \"{runtime}\"\n{requires}{repair}}}\n\n"
    )
}

/// Written once: a runtime and three wheels over both platforms, each repaired inline.
fn matrix_rules() -> Vec<(&'static str, String)> {
    let both = "    platforms \"s390x\" \"x86_64\"\n";
    let wheels: String = ["psutil", "lz4", "ujson"]
        .iter()
        .map(|n| wheel_rule(n, both, "//runtimes:python", "    repair strip=#true\n"))
        .collect();
    vec![
        (
            "rules/runtimes.kdl",
            format!("runtime \"python\" {{\n{both}    python \"3.11\" adopt=\"/usr/bin/python3.11\"\n}}\n"),
        ),
        ("rules/wheels.kdl", wheels),
        // A repair rule of its own, to compare with: lz4 on x86_64, not stripped.
        (
            "rules/overrides.kdl",
            "repair \"lz4-unstripped\" {\n    wheel \"//wheels:lz4\"\n    platforms \"x86_64\"\n}\n"
                .to_string(),
        ),
    ]
}

/// Written by hand, one rule per architecture, with the names the matrix gives its variants.
fn hand_written_rules() -> Vec<(&'static str, String)> {
    let x86 = "    platform \"x86_64\"\n";
    let mut runtimes = String::new();
    let mut wheels = String::new();
    for (suffix, platform) in [("", ""), ("-x86_64", x86)] {
        runtimes.push_str(&format!(
            "runtime \"python{suffix}\" {{\n{platform}    python \"3.11\" adopt=\"/usr/bin/python3.11\"\n}}\n"
        ));
        for n in ["psutil", "lz4", "ujson"] {
            let runtime = format!("//runtimes:python{suffix}");
            wheels.push_str(&wheel_rule(&format!("{n}{suffix}"), platform, &runtime, ""));
            wheels.push_str(&format!(
                "repair \"{n}-repaired{suffix}\" {{\n    wheel \":{n}{suffix}\"\n    strip #true\n}}\n\n"
            ));
        }
    }
    vec![
        ("rules/runtimes.kdl", runtimes),
        ("rules/wheels.kdl", wheels),
        (
            "rules/overrides.kdl",
            "repair \"lz4-unstripped-x86_64\" {\n    wheel \"//wheels:lz4-x86_64\"\n}\n"
                .to_string(),
        ),
    ]
}

fn write_workspace(dir: &Path, rules: Vec<(&str, String)>) {
    write_repo_bases(dir, &[BOOKWORM_S390X, BOOKWORM_X86_64]);
    let mut files = vec![("workspace.kdl", workspace_kdl())];
    files.extend(rules);
    for (path, text) in files {
        let full = dir.join(path);
        fs_err::create_dir_all(full.parent().unwrap()).unwrap();
        fs_err::write(full, text).unwrap();
    }
}

/// Keys as a deterministic build would give them: each artifact's digest follows from its
/// key. Enough to compare two workspaces target by target without building anything.
struct Simulated<'a> {
    graph: &'a TargetGraph,
    memo: std::cell::RefCell<BTreeMap<TargetId, String>>,
}

impl KeyInputs for Simulated<'_> {
    fn artifact_digest(&self, id: TargetId) -> Option<String> {
        if let Some(d) = self.memo.borrow().get(&id) {
            return Some(d.clone());
        }
        let key = key_fields(self.graph, id, self).ok()?.key();
        let digest = refine_engine::digest::Digest::of_bytes(key.hex().as_bytes()).to_string();
        self.memo.borrow_mut().insert(id, digest.clone());
        Some(digest)
    }
    fn file_digest(&self, path: &str) -> Result<String, String> {
        Err(format!("no workspace files here: {path}"))
    }
    fn file_bytes(&self, path: &str) -> Result<Vec<u8>, String> {
        Err(format!("no workspace files here: {path}"))
    }
    fn tree_digest(&self, path: &str) -> Result<String, String> {
        Err(format!("no workspace folders here: {path}"))
    }
}

fn simulated_keys(root: &Path) -> BTreeMap<String, String> {
    let ws = Workspace::load(root).unwrap_or_else(|e| panic!("{e:?}"));
    let graph = TargetGraph::build(ws).unwrap_or_else(|e| panic!("{e:?}"));
    let inputs = Simulated {
        graph: &graph,
        memo: Default::default(),
    };
    (0..graph.len())
        .map(|id| {
            let key = key_fields(&graph, id, &inputs).expect("every input known");
            (graph.target(id).label.to_string(), key.key().hex())
        })
        .collect()
}

/// `refine plan //... --output json` against `store`: label → (status, key), of the x86_64
/// targets. The s390x ones are left out: the store is shared with tests that may store the
/// s390x base between two plans, which changes their status.
fn planned(root: &Path, store: &Path) -> BTreeMap<String, (String, Option<String>)> {
    let out = run_refine(
        root,
        &[
            "--store",
            store.to_str().unwrap(),
            "plan",
            "//...",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan json");
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["label"].as_str().unwrap().to_string(),
                (
                    n["status"].as_str().unwrap().to_string(),
                    n["key"].as_str().map(str::to_string),
                ),
            )
        })
        .filter(|(label, _)| label.contains("x86_64"))
        .collect()
}

/// Installs `wheel` into a clean venv in the sandbox on `root` and runs `smoke` with it.
fn smoke(root: &Path, wheel: &Path, smoke: &str) -> String {
    let name = wheel.file_name().unwrap().to_str().unwrap();
    let bind = format!("{}:/wheels:ro", wheel.parent().unwrap().display());
    let script = format!(
        "{} && /tmp/v/bin/python -c '{smoke}'",
        venv_with("/tmp/v", &format!("--no-index --no-deps /wheels/{name}"))
    );
    let out = run_refine(
        Path::new("/"),
        &[
            "sandbox",
            "run",
            "--root",
            root.to_str().unwrap(),
            "--bind",
            &bind,
            "--env",
            "PATH=/usr/bin:/bin",
            "--env",
            "HOME=/tmp",
            "--",
            "/bin/sh",
            "-c",
            &script,
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "installing and importing {name} failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// The ELF files of a wheel, by name, with whether they still hold DWARF.
fn elf_files(wheel: &Path) -> Vec<(String, u64, bool)> {
    let script = "import sys, zipfile\nfor i in zipfile.ZipFile(sys.argv[1]).infolist():\n    b = zipfile.ZipFile(sys.argv[1]).read(i)\n    if b[:4] == b'\\x7fELF': print(i.filename, len(b), b'.debug_info' in b)\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(wheel)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[0].to_string(), f[1].parse().unwrap(), f[2] == "True")
        })
        .collect()
}

fn wheels_in(dir: &Path) -> Vec<PathBuf> {
    refine_engine::exec::wheels_in(dir).unwrap()
}

const SMOKES: &[(&str, &str)] = &[
    (
        "psutil-",
        "import psutil, os; assert psutil.Process(os.getpid()).pid == os.getpid(); assert psutil.cpu_count() >= 1; print(\"ok psutil\", psutil.__version__)",
    ),
    (
        "lz4-",
        "import lz4.frame; d = bytes(range(256)) * 64; assert lz4.frame.decompress(lz4.frame.compress(d)) == d; print(\"ok lz4\", lz4.library_version_string())",
    ),
    (
        "ujson-",
        "import ujson; d = {\"a\": [1, 2.5, None, \"é\"]}; assert ujson.loads(ujson.dumps(d)) == d; print(\"ok ujson\", ujson.__version__)",
    ),
];

/// The x86_64 repairs of the three wheels.
const BUILT: [&str; 3] = [
    "//wheels:psutil-repaired-x86_64-py311",
    "//wheels:lz4-repaired-x86_64-py311",
    "//wheels:ujson-repaired-x86_64-py311",
];

/// lz4's x86_64 repair by a repair rule of its own, without `strip`.
const UNSTRIPPED: &str = "//overrides:lz4-unstripped-x86_64-py311";

#[test]
fn psutil_lz4_and_ujson_for_two_platforms_from_one_rule_each() {
    let work = tempfile::Builder::new()
        .prefix("refine-platforms-")
        .tempdir_in("/var/tmp")
        .expect("a folder in /var/tmp");
    let (matrix, hand) = (work.path().join("matrix"), work.path().join("hand"));
    write_workspace(&matrix, matrix_rules());
    write_workspace(&hand, hand_written_rules());
    check_targets(&matrix);

    // Every target keys as its hand-written twin, on both platforms.
    let (keys_matrix, keys_hand) = (simulated_keys(&matrix), simulated_keys(&hand));
    assert_eq!(keys_matrix.len(), 2 + 2 + 12 + 1);
    assert_eq!(keys_matrix, keys_hand);

    let store = store_from_env_or_shared("REFINE_PLATFORMS_STORE", &["//bases:bookworm-x86_64"]);
    let (out_dir, plain_dir) = (work.path().join("wheels"), work.path().join("unstripped"));
    build(&matrix, &store, &BUILT, &out_dir);
    // The unstripped lz4 has the stripped one's file name: into a folder of its own.
    build(&matrix, &store, &[UNSTRIPPED], &plain_dir);

    // A real store agrees: the hand-written workspace finds every x86_64 target cached,
    // under the matrix's keys.
    let (plan_matrix, plan_hand) = (planned(&matrix, &store), planned(&hand, &store));
    assert_eq!(plan_matrix, plan_hand);
    for t in BUILT.iter().chain([&UNSTRIPPED]) {
        assert_eq!(plan_hand[*t].0, "cached", "{t}: {:?}", plan_hand[*t]);
        assert!(plan_hand[*t].1.is_some(), "{t}");
    }

    let wheels = wheels_in(&out_dir);
    assert_eq!(wheels.len(), 3, "{wheels:?}");
    let base = artifact_tree(&matrix, &store, "//bases:bookworm-x86_64");
    for (prefix, code) in SMOKES {
        let wheel = wheels
            .iter()
            .find(|w| {
                let name = w.file_name().unwrap().to_str().unwrap();
                name.starts_with(prefix)
                    && name.contains("-manylinux_")
                    && name.ends_with("_x86_64.whl")
            })
            .unwrap_or_else(|| panic!("no {prefix} wheel in {wheels:?}"));
        let said = smoke(&base, wheel, code);
        assert!(
            said.contains(&format!("ok {}", prefix.trim_end_matches('-'))),
            "{said}"
        );
    }
    check_stripped(&wheels, &plain_dir);
}

/// The targets: `<rule>[-x86_64]-py311`, s390x keeping the bare names.
fn check_targets(root: &Path) {
    let out = run_refine(root, &["query", "//wheels:all + //overrides:all"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut want = Vec::new();
    for n in ["lz4", "psutil", "ujson"] {
        for platform in ["", "-x86_64"] {
            want.push(format!("//wheels:{n}-repaired{platform}-py311"));
            want.push(format!("//wheels:{n}{platform}-py311"));
        }
    }
    want.sort();
    want.insert(0, UNSTRIPPED.to_string());
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), want);
}

fn build(root: &Path, store: &Path, targets: &[&str], out_dir: &Path) {
    let mut args = vec!["--store", store.to_str().unwrap(), "build"];
    args.extend(targets);
    args.extend(["--out", out_dir.to_str().unwrap()]);
    let out = run_refine(root, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// Stripped: no DWARF left in any wheel, and lz4's libraries smaller than in the same repair
/// without `strip` (whose wheel is the only one in `plain_dir`).
#[allow(clippy::print_stderr)] // the sizes, for the test log
fn check_stripped(wheels: &[PathBuf], plain_dir: &Path) {
    let lz4 = wheels
        .iter()
        .find(|w| w.file_name().unwrap().to_str().unwrap().starts_with("lz4-"))
        .expect("the stripped lz4");
    let plain = match wheels_in(plain_dir).as_slice() {
        [one] => one.clone(),
        other => panic!("expected one unstripped lz4 wheel: {other:?}"),
    };
    assert_eq!(lz4.file_name(), plain.file_name());
    let (s, p) = (elf_files(lz4), elf_files(&plain));
    assert!(!s.is_empty() && s.len() == p.len(), "{s:?} {p:?}");
    assert!(
        p.iter().all(|(_, _, dwarf)| *dwarf),
        "Debian builds with -g: {p:?}"
    );
    for ((name, size, dwarf), (_, plain_size, _)) in s.iter().zip(&p) {
        assert!(!dwarf, "{name} still holds .debug_info");
        assert!(
            size < plain_size,
            "{name}: {size} is not below {plain_size}"
        );
        eprintln!("{name}: {plain_size} bytes, {size} stripped");
    }
    for w in wheels {
        for (name, _, dwarf) in elf_files(w) {
            assert!(!dwarf, "{name} in {} still holds .debug_info", w.display());
        }
    }
}
