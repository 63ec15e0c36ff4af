//! The policy is a promise, checked (docs/policy.md): two tiny C extensions from folders of a
//! workspace, built for s390x under qemu-user with Debian bookworm's interpreter and repaired
//! by auditwheel, come out tagged with the lowest manylinux policy their ELF files really meet
//! (not the platform's `manylinux_2_36`), as `auditwheel show` run in the s390x root agrees,
//! and pip installs and imports them there; a repair promising a policy below what the
//! extension requires fails, naming the symbol versions and the file, and stores nothing.
//!
//! Like tests/it/refinery.rs, this needs the network to PyPI and a Debian mirror,
//! debootstrap and qemu-user-static (.ci/setup.d/), and takes minutes (the s390x base is
//! bootstrapped first, into the store the s390x tests share). `REFINE_POLICY_STORE=DIR` keeps
//! the store between runs.

use std::path::{Path, PathBuf};

use crate::common::*;

const SETUPTOOLS: &str = "e3982f444617239225d675215d51f6ba05f845d4eec313da4418fdbb56fb27e3";

fn workspace_kdl() -> String {
    format!(
        "workspace \"policy\"\nplatform \"s390x\" arch=\"s390x\" policy=\"manylinux_2_36\" base=\"//bases:bookworm-s390x\"\ndefaults {{\n    platform \"s390x\"\n{}}}\n",
        tool_defaults(&["s390x"])
    )
}

const RUNTIMES: &str = r#"runtime "debian-python" {
    python "3.11" adopt="/usr/bin/python3.11"
}
"#;

fn wheels_kdl() -> String {
    ["plain", "cf"]
        .iter()
        .map(|n| {
            format!(
                "wheel \"{n}\" {{\n    source path=\"ext/{n}\"\n    python \"3.11\"\n    runtime \"//runtimes:debian-python\"\n    requires \"setuptools==75.8.0\" sha256=\"{SETUPTOOLS}\"\n    repair\n}}\n\n"
            )
        })
        .collect()
}

/// A repair that promises manylinux2014, below what `closefrom` (glibc 2.34) allows.
const REPAIRS: &str = r#"repair "cf-2014" {
    wheel "//wheels:cf-py311"
    policy "manylinux_2_17"
}
"#;

/// One C extension `<name>/_<name>.c` in the package `<name>-refine`, calling `call`.
fn extension(name: &str, includes: &str, call: &str) -> Vec<(String, String)> {
    let c = format!(
        r#"#define PY_SSIZE_T_CLEAN
#include <Python.h>
{includes}
static PyObject *run(PyObject *self, PyObject *arg) {{
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    {call}
}}
static PyMethodDef methods[] = {{{{"run", run, METH_O, NULL}}, {{NULL, NULL, 0, NULL}}}};
static struct PyModuleDef module = {{PyModuleDef_HEAD_INIT, "_{name}", NULL, -1, methods}};
PyMODINIT_FUNC PyInit__{name}(void) {{ return PyModule_Create(&module); }}
"#
    );
    vec![
        (
            format!("ext/{name}/pyproject.toml"),
            format!(
                "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"{name}-refine\"\nversion = \"0.1\"\n\n[tool.setuptools]\npackages = [\"{name}\"]\n"
            ),
        ),
        (
            format!("ext/{name}/setup.py"),
            format!(
                "from setuptools import Extension, setup\nsetup(ext_modules=[Extension(\"{name}._{name}\", [\"{name}/_{name}.c\"])])\n"
            ),
        ),
        (format!("ext/{name}/{name}/__init__.py"), String::new()),
        (format!("ext/{name}/{name}/_{name}.c"), c),
    ]
}

fn write_workspace(dir: &Path) {
    write_repo_bases(dir, &[BOOKWORM_S390X]);
    let mut files = vec![
        ("workspace.kdl".to_string(), workspace_kdl()),
        ("rules/runtimes.kdl".to_string(), RUNTIMES.to_string()),
        ("rules/wheels.kdl".to_string(), wheels_kdl()),
        ("rules/repairs.kdl".to_string(), REPAIRS.to_string()),
    ];
    // `plain` needs nothing newer than the oldest s390x policy; `cf` calls closefrom(3),
    // `GLIBC_2.34` in libc.so.6.
    files.extend(extension(
        "plain",
        "#include <stdlib.h>",
        "return PyLong_FromLong(labs(n));",
    ));
    files.extend(extension(
        "cf",
        "#include <unistd.h>",
        "closefrom((int)n);\n    Py_RETURN_NONE;",
    ));
    for (path, text) in files {
        let full = dir.join(path);
        fs_err::create_dir_all(full.parent().unwrap()).unwrap();
        fs_err::write(full, text).unwrap();
    }
}

fn build(root: &Path, store: &Path, targets: &[&str], out_dir: &Path) -> std::process::Output {
    let mut args = vec!["--store", store.to_str().unwrap(), "build"];
    args.extend(targets);
    args.extend(["--out", out_dir.to_str().unwrap()]);
    run_refine(root, &args)
}

/// Runs `script` with `/bin/sh` in the sandbox on the s390x `root`, `binds` read-only.
fn in_s390x_root(root: &Path, binds: &[(&Path, &str)], script: &str) -> String {
    sandbox_sh(root, Some("s390x"), binds, script)
}

/// The tag `auditwheel show` finds for each wheel in `wheels`, run in the s390x root under
/// qemu (auditwheel judges against the machine it runs on), from PyPI's wheels.
fn auditwheel_tags(work: &Path, root: &Path, wheels: &Path, names: &[String]) -> Vec<String> {
    let wh = work.join("auditwheel-wheels");
    let pip = std::process::Command::new("python3")
        .args(["-m", "pip", "download", "-q", "--no-deps"])
        .args(["--only-binary", ":all:", "-d"])
        .arg(&wh)
        .args(["auditwheel==6.1.0", "pyelftools==0.31", "packaging==24.2"])
        .output()
        .unwrap();
    assert!(pip.status.success(), "{}", stderr(&pip));
    let shows: Vec<String> = names
        .iter()
        .map(|n| format!("/tmp/aw/bin/auditwheel show /wheels/{n}; echo '<<end>>'"))
        .collect();
    let said = in_s390x_root(
        root,
        &[(wh.as_path(), "/aw"), (wheels, "/wheels")],
        &format!(
            "{} && {}",
            venv_with("/tmp/aw", "--no-index --find-links /aw auditwheel"),
            shows.join(" && ")
        ),
    );
    // auditwheel wraps its lines: the first quoted word after "platform tag:".
    said.split("<<end>>")
        .take(names.len())
        .map(|show| {
            let words = show.split_whitespace().collect::<Vec<_>>().join(" ");
            let after = words
                .split("consistent with the following platform tag: ")
                .nth(1)
                .unwrap_or_else(|| panic!("no tag in:\n{show}"));
            after.split('"').nth(1).unwrap().to_owned()
        })
        .collect()
}

fn wheel_named(dir: &Path, prefix: &str) -> PathBuf {
    let found: Vec<PathBuf> = refine_engine::exec::wheels_in(dir)
        .unwrap()
        .into_iter()
        .filter(|w| w.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .collect();
    assert_eq!(found.len(), 1, "{prefix} in {found:?}");
    found.into_iter().next().unwrap()
}

/// What `refine plan` says of `label`: `cached` or `build`.
fn status(root: &Path, store: &Path, label: &str) -> String {
    plan_node(root, store, label)["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn s390x_repairs_are_tagged_with_the_lowest_policy_met_and_a_broken_promise_fails() {
    let work = tempfile::Builder::new()
        .prefix("refine-policy-")
        .tempdir_in("/var/tmp")
        .expect("a folder in /var/tmp");
    let ws = work.path().join("ws");
    write_workspace(&ws);
    let store = store_from_env_or_shared("REFINE_POLICY_STORE", &["//bases:bookworm-s390x"]);
    let out_dir = work.path().join("wheels");

    let out = build(
        &ws,
        &store,
        &[
            "//wheels:plain-repaired-py311",
            "//wheels:cf-repaired-py311",
        ],
        &out_dir,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // The platform promises manylinux_2_36; each wheel is tagged with what it really needs.
    let plain = wheel_named(&out_dir, "plain_refine-");
    let cf = wheel_named(&out_dir, "cf_refine-");
    let names: Vec<String> = [&plain, &cf]
        .iter()
        .map(|w| w.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "plain_refine-0.1-cp311-cp311-manylinux_2_17_s390x.manylinux2014_s390x.whl",
            "cf_refine-0.1-cp311-cp311-manylinux_2_34_s390x.whl",
        ]
    );

    // auditwheel agrees, judging in the s390x root.
    let base = artifact_tree(&ws, &store, "//bases:bookworm-s390x");
    assert_eq!(
        auditwheel_tags(work.path(), &base, &out_dir, &names),
        ["manylinux_2_17_s390x", "manylinux_2_34_s390x"]
    );
    // pip checks the tags (and RECORD) and installs both; the extensions run under qemu.
    let said = in_s390x_root(
        &base,
        &[(out_dir.as_path(), "/wheels")],
        &format!(
            "{} && /tmp/v/bin/python -c 'from plain import _plain; from cf import _cf; assert _plain.run(-7) == 7; _cf.run(1000); print(\"ok\")'",
            venv_with(
                "/tmp/v",
                &format!(
                    "--no-index --no-deps /wheels/{} /wheels/{}",
                    names[0], names[1]
                )
            )
        ),
    );
    assert!(said.contains("ok"), "{said}");

    // manylinux2014 is below closefrom's glibc: auditwheel refuses, and the failure names
    // the symbol version and the file that requires it. Nothing is stored.
    let bad_out = work.path().join("bad");
    let out = build(&ws, &store, &["//repairs:cf-2014-py311"], &bad_out);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let raw = stderr(&out);
    let err = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        err.contains(
            "`cf/_cf.cpython-311-s390x-linux-gnu.so` requires `GLIBC_2.34` (of `libc.so.6`)"
        ),
        "{raw}"
    );
    assert!(
        err.contains("cannot be repaired to `manylinux_2_17_s390x.manylinux2014_s390x`"),
        "{raw}"
    );
    assert!(
        err.contains("raise the policy to `manylinux_2_34`"),
        "{raw}"
    );
    assert_eq!(status(&ws, &store, "//repairs:cf-2014-py311"), "build");
    assert!(
        !bad_out.exists() || refine_engine::exec::wheels_in(&bad_out).unwrap().is_empty(),
        "a wheel was exported"
    );
    // The two good repairs are cached, under their keys.
    for label in [
        "//wheels:plain-repaired-py311",
        "//wheels:cf-repaired-py311",
    ] {
        assert_eq!(status(&ws, &store, label), "cached", "{label}");
    }
    let verify = run_refine(
        &ws,
        &["--store", store.to_str().unwrap(), "store", "verify"],
    );
    assert!(verify.status.success(), "{}", stderr(&verify));
    insta::assert_snapshot!("cf_2014_refused", failure_block(&raw, work.path()));
}

/// The build's failure line, the error under it and its help; the end of the log (pip's and
/// auditwheel's lines) and the log's path are left out.
fn failure_block(stderr: &str, work: &Path) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim_end).collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("FAILED"))
        .expect("a FAILED line");
    let tail = lines[start..]
        .iter()
        .position(|l| *l == "The end of the log:")
        .map_or(lines.len(), |at| start + at + 1);
    let mut out: Vec<&str> = lines[start..tail].to_vec();
    out.push("[…]");
    out.extend(lines[tail..].iter().filter(|l| l.starts_with("help:")));
    out.join("\n")
        .replace(&work.display().to_string(), "[WORK]")
}
