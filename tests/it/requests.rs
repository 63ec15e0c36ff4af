//! Build requests end to end (docs/requests.md), on a copy of the repo's workspace and its
//! `demo` request: locked with the pinned uv for each platform, built (wheels of wheels
//! included), the wheelhouse installed offline into a clean venv in the target root (under
//! qemu for s390x) and every package imported; a second build builds nothing, and editing
//! one override rebuilds that package only. These tests need the network to PyPI and a
//! Debian mirror, debootstrap and, for s390x, qemu-user-static (.ci/setup.d/).

use std::path::{Path, PathBuf};

use crate::common::*;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch folder on disk (not tmpfs): bases are hundreds of megabytes.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("refine-requests-")
        .tempdir_in("/var/tmp")
        .expect("a folder in /var/tmp")
}

/// A copy of the repo's workspace (rules, catalog, recipes, requests, examples) in `work`,
/// to edit without touching the repo.
fn copy_workspace(work: &Path) -> PathBuf {
    let ws = work.join("ws");
    fs_err::create_dir_all(&ws).unwrap();
    for item in [
        "workspace.kdl",
        "rules",
        "catalog",
        "recipes",
        "requests",
        "examples",
    ] {
        let out = std::process::Command::new("cp")
            .arg("-a")
            .arg(repo().join(item))
            .arg(&ws)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ws
}

fn refine_in(ws: &Path, store: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--store", store.to_str().unwrap()];
    all.extend(args);
    run_refine(ws, &all)
}

fn action_labels(events: &Path) -> Vec<String> {
    fs_err::read_to_string(events)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"event\":\"action-start\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["label"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Builds the demo request's targets for `platform` into `out`.
fn build_request(ws: &Path, store: &Path, platform: &str, out: &Path, events: &Path) -> String {
    let q = refine_in(
        ws,
        store,
        &[
            "query",
            &format!("platform({platform}, //requests/demo/...)"),
        ],
    );
    assert_eq!(q.status.code(), Some(0), "{}", stderr(&q));
    let labels: Vec<String> = stdout(&q).lines().map(String::from).collect();
    assert_eq!(labels.len(), 8, "four wheels and their repairs: {labels:?}");
    let mut args = vec!["build", "--out", out.to_str().unwrap()];
    args.extend(["--events", events.to_str().unwrap()]);
    args.extend(labels.iter().map(String::as_str));
    let b = refine_in(ws, store, &args);
    assert_eq!(b.status.code(), Some(0), "{}", stderr(&b));
    stdout(&b) + &stderr(&b)
}

const IMPORTS: &str = "import attrs, charset_normalizer, markupsafe, yaml, cffi, _cffi_backend, _argon2_cffi_bindings, platform; from markupsafe import _speedups; assert yaml.__with_libyaml__; assert str(markupsafe.escape(\"<a>\")) == \"&lt;a&gt;\"";

/// The whole flow for one platform: lock, build, install offline in the root of `base`
/// (`arch` under qemu), build again (nothing), edit an override (one package rebuilt).
pub fn request_flow(work: &Path, store: &Path, platform: &str, arch: Option<&str>, base: &str) {
    let ws = copy_workspace(work);

    // Locking writes what the repo holds for the same inputs, and the lock is current.
    let lock = refine_in(&ws, store, &["request", "lock", "demo"]);
    assert_eq!(lock.status.code(), Some(0), "{}", stderr(&lock));
    let check = refine_in(&ws, store, &["request", "lock", "demo", "--check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    let text = fs_err::read_to_string(ws.join("requests/demo.lock")).unwrap();
    // Markers are evaluated for the target: colorama is for s390x only.
    let s390x = text.split("platform=s390x").nth(1).unwrap();
    let x86 = text
        .split("platform=x86_64")
        .nth(1)
        .unwrap()
        .split("resolution")
        .next()
        .unwrap();
    assert!(s390x.contains("package colorama"), "{text}");
    assert!(!x86.contains("package colorama"), "{text}");
    assert!(text.contains("requires-built \"cffi==1.17.1\""), "{text}");
    // The build uses the lock the repo holds: the one this test's expectations were made for.
    fs_err::copy(
        repo().join("requests/demo.lock"),
        ws.join("requests/demo.lock"),
    )
    .unwrap();

    let out = work.join(format!("wheelhouse-{platform}"));
    let events = work.join("events.jsonl");
    build_request(&ws, store, platform, &out, &events);
    assert!(out.join("simple/index.html").is_file());
    assert!(out.join("simple/argon2-cffi-bindings/index.html").is_file());
    let page = fs_err::read_to_string(out.join("simple/cffi/index.html")).unwrap();
    assert!(page.contains("#sha256="), "{page}");

    let root = artifact_tree(&ws, store, base);
    let has_colorama = platform.starts_with("s390x");
    let colorama = if has_colorama {
        "import colorama"
    } else {
        "import importlib.util as u; assert u.find_spec(\"colorama\") is None"
    };
    let script = format!(
        "python3 -m venv /tmp/v && /tmp/v/bin/pip install -q --no-index --find-links /wheels -r /req/demo.txt && /tmp/v/bin/python -c '{IMPORTS}; {colorama}; print(\"ok\", platform.machine())' && python3 -m venv /tmp/w && /tmp/w/bin/pip install -q --index-url file:///wheels/simple -r /req/demo.txt && /tmp/w/bin/python -c '{IMPORTS}; print(\"simple ok\")'"
    );
    let said = sandbox_sh(
        &root,
        arch,
        &[(out.as_path(), "/wheels"), (&ws.join("requests"), "/req")],
        &script,
    );
    let machine = if platform.starts_with("s390x") {
        "s390x"
    } else {
        "x86_64"
    };
    assert!(said.contains(&format!("ok {machine}")), "{said}");
    assert!(said.contains("simple ok"), "{said}");

    // Nothing to do the second time.
    build_request(&ws, store, platform, &out, &events);
    assert_eq!(
        action_labels(&events),
        Vec::<String>::new(),
        "a second build ran actions"
    );

    // One override edited: that package's wheel (and repair) only; explain says why.
    let kdl = ws.join("requests/demo.kdl");
    let text = fs_err::read_to_string(&kdl).unwrap();
    let edited = text.replacen(
        "    override \"cffi\" {",
        "    override \"markupsafe\" {\n        env \"REFINE_TEST_EDIT\" \"1\"\n    }\n    override \"cffi\" {",
        1,
    );
    assert_ne!(edited, text);
    fs_err::write(&kdl, edited).unwrap();
    let why = refine_in(
        &ws,
        store,
        &[
            "explain",
            &format!(
                "//requests/demo:markupsafe{}-py311",
                if platform == "s390x" {
                    String::new()
                } else {
                    format!("-{platform}")
                }
            ),
        ],
    );
    assert!(
        stdout(&why).contains("REFINE_TEST_EDIT"),
        "{}{}",
        stdout(&why),
        stderr(&why)
    );
    build_request(&ws, store, platform, &out, &events);
    let ran = action_labels(&events);
    let suffix = if platform == "s390x" {
        String::new()
    } else {
        format!("-{platform}")
    };
    // The wheel is rebuilt; its repair too unless the new wheel has the same bytes (the
    // variable changes nothing in it, and the build is reproducible): then it is cached.
    let wheel = format!("//requests/demo:markupsafe{suffix}-py311");
    let repair = format!("//requests/demo:markupsafe-repaired{suffix}-py311");
    assert!(ran.contains(&wheel), "{ran:?}");
    assert!(ran.iter().all(|l| *l == wheel || *l == repair), "{ran:?}");
}

#[test]
fn host_request_locks_builds_and_installs_offline() {
    let work = scratch();
    let store = work.path().join("store");
    request_flow(
        work.path(),
        &store,
        "x86_64",
        None,
        "//bases:bookworm-x86_64",
    );
}
