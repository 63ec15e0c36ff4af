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
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("refine-requests-")
        .tempdir_in("/var/tmp")
        .expect("a folder in /var/tmp")
}

/// A copy of the repo's workspace (rules, catalog, recipes, requests, examples) in `work`,
/// to edit without touching the repo.
fn copy_workspace(work: &Path) -> PathBuf {
    copy_workspace_as(work, "ws")
}

fn copy_workspace_as(work: &Path, name: &str) -> PathBuf {
    let ws = work.join(name);
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
/// With `probe`, the lock asks every backend of both platforms in the sandbox what its
/// build needs (the demo's ask for nothing more); without, it pins the build systems'
/// `requires` only, and builds nothing for the platform this flow does not test.
fn request_flow(
    work: &Path,
    store: &Path,
    platform: &str,
    arch: Option<&str>,
    base: &str,
    probe: bool,
) {
    let ws = copy_workspace(work);

    // Locking writes what the repo holds for the same inputs, and the lock is current.
    let mut args = vec!["request", "lock", "demo"];
    if !probe {
        args.push("--no-probe");
    }
    let lock = refine_in(&ws, store, &args);
    assert_eq!(lock.status.code(), Some(0), "{}", stderr(&lock));
    assert_eq!(
        stderr(&lock).contains("asking the backends what their builds need"),
        probe,
        "{}",
        stderr(&lock)
    );
    let check = refine_in(&ws, store, &["request", "lock", "demo", "--check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    let text = fs_err::read_to_string(ws.join("requests/demo.lock")).unwrap();
    assert_eq!(
        text,
        fs_err::read_to_string(repo().join("requests/demo.lock")).unwrap(),
        "the lock differs from the repo's"
    );
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
        "{} && /tmp/v/bin/python -c '{IMPORTS}; {colorama}; print(\"ok\", platform.machine())' && {} && /tmp/w/bin/python -c '{IMPORTS}; print(\"simple ok\")'",
        venv_with("/tmp/v", "--no-index --find-links /wheels -r /req/demo.txt"),
        venv_with(
            "/tmp/w",
            "--index-url file:///wheels/simple -r /req/demo.txt"
        ),
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
            &format!("//requests/demo:markupsafe-{platform}-py311"),
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
    // The wheel is rebuilt; its repair too unless the new wheel has the same bytes (the
    // variable changes nothing in it, and the build is reproducible): then it is cached.
    let wheel = format!("//requests/demo:markupsafe-{platform}-py311");
    let repair = format!("//requests/demo:markupsafe-repaired-{platform}-py311");
    assert!(ran.contains(&wheel), "{ran:?}");
    assert!(ran.iter().all(|l| *l == wheel || *l == repair), "{ran:?}");
}

#[test]
fn host_request_locks_builds_and_installs_offline() {
    let work = scratch();
    let store = store_with_base("//bases:bookworm-x86_64");
    request_flow(
        work.path(),
        store,
        "x86_64",
        None,
        "//bases:bookworm-x86_64",
        false,
    );
    backends_are_asked_what_their_builds_need(work.path(), store);
    a_missing_pack_is_named(work.path(), store);
    a_request_of_index_wheels_only(work.path(), store);
    a_build_requirement_pinned_to_an_sdist(work.path(), store);
    the_wheelhouse_goes_to_the_mirror(work.path(), &work.path().join("ws"), store);
}

/// With a mirror configured, a request's build puts its whole wheelhouse there — the
/// repaired wheels and the index's wheels it takes — each with its PEP 503 page.
fn the_wheelhouse_goes_to_the_mirror(work: &Path, ws: &Path, store: &Path) {
    use crate::common::registry::{free_port, http_status, wait_until};
    let bucket_root = work.join("s3");
    fs_err::create_dir_all(bucket_root.join("wheels")).unwrap();
    let port = free_port();
    let mut s3 = std::process::Command::new(crate::mirror::s3s_fs())
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", "refinekey", "--secret-key", "refinesecret"])
        .arg(&bucket_root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start s3s-fs");
    wait_until("s3s-fs", &mut s3, || {
        http_status(port, "GET", "/", &[]).is_some()
    });
    let _s3 = crate::mirror::Server(s3);
    let kdl = ws.join("workspace.kdl");
    let text = fs_err::read_to_string(&kdl).unwrap();
    let with_mirror = text.replacen(
        "store {\n",
        &format!("store {{\n    mirror \"s3://wheels\" endpoint=\"http://127.0.0.1:{port}\" region=\"us-east-1\"\n"),
        1,
    );
    assert_ne!(with_mirror, text);
    fs_err::write(&kdl, with_mirror).unwrap();
    let q = refine_in(
        ws,
        store,
        &["query", "platform(x86_64, //requests/demo/...)"],
    );
    let labels: Vec<String> = stdout(&q).lines().map(String::from).collect();
    let out = std::process::Command::new(refine_bin())
        .args(["--store", store.to_str().unwrap(), "build"])
        .args(&labels)
        .current_dir(ws)
        .env("NO_COLOR", "1")
        .env("AWS_ACCESS_KEY_ID", "refinekey")
        .env("AWS_SECRET_ACCESS_KEY", "refinesecret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let index = fs_err::read_to_string(bucket_root.join("wheels/simple/index.html")).unwrap();
    for project in [
        "attrs",
        "charset-normalizer",
        "pycparser",
        "markupsafe",
        "pyyaml",
        "cffi",
        "argon2-cffi-bindings",
    ] {
        assert!(
            index.contains(&format!("href=\"{project}/\"")),
            "{project}: {index}"
        );
    }
    the_server_links_a_repaired_wheel_to_the_mirror(ws, store, &bucket_root, &labels);
}

/// `refine serve` over the same workspace and store: a repaired wheel's artifact links to its
/// file and project page where the bucket is served to pip (`public-url`), the link serves
/// the very bytes of the bucket, and pip installs the wheel from the linked index.
fn the_server_links_a_repaired_wheel_to_the_mirror(
    ws: &Path,
    store: &Path,
    bucket_root: &Path,
    labels: &[String],
) {
    use crate::common::registry::{free_port, http_status, wait_until};
    use crate::common::serve::Server;
    let web_port = free_port();
    let mut web = std::process::Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(web_port.to_string())
        .arg("--directory")
        .arg(bucket_root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("http.server", &mut web, || {
        http_status(web_port, "GET", "/wheels/simple/", &[]) == Some(200)
    });
    let _web = crate::mirror::Server(web);
    let public = format!("http://127.0.0.1:{web_port}/wheels/");
    let kdl = ws.join("workspace.kdl");
    let text = fs_err::read_to_string(&kdl).unwrap();
    let with_public = text.replacen(
        "region=\"us-east-1\"\n",
        &format!("region=\"us-east-1\" public-url=\"{public}\"\n"),
        1,
    );
    assert_ne!(with_public, text);
    fs_err::write(&kdl, with_public).unwrap();

    let repaired = labels
        .iter()
        .find(|l| l.contains("markupsafe-repaired"))
        .unwrap_or_else(|| panic!("no repaired markupsafe in {labels:?}"));
    let node = plan_node(ws, store, repaired);
    let key = node["key"].as_str().unwrap();
    let server = Server::start_with_env(
        ws,
        store,
        &[],
        &["--public-reads"],
        &[
            ("AWS_ACCESS_KEY_ID", "refinekey"),
            ("AWS_SECRET_ACCESS_KEY", "refinesecret"),
        ],
    );
    let curl = |url: &str| {
        let out = std::process::Command::new("curl")
            .args(["-sf", url])
            .output()
            .unwrap();
        assert!(out.status.success(), "curl {url}\n{}", server.log());
        out.stdout
    };
    let artifact: serde_json::Value =
        serde_json::from_slice(&curl(&server.url(&format!("/v1/artifacts/repair/{key}")))).unwrap();
    assert_eq!(artifact["label"], repaired.as_str(), "{artifact}");
    let mirror = &artifact["links"]["mirror"];
    assert_eq!(
        mirror["project_page"],
        format!("{public}simple/markupsafe/"),
        "{artifact}"
    );
    let wheels = mirror["wheels"].as_array().unwrap();
    assert!(!wheels.is_empty(), "{artifact}");
    for w in wheels {
        let file = w["file"].as_str().unwrap();
        assert_eq!(w["mirrored"], true, "{w}");
        assert_eq!(
            w["url"],
            format!("{public}packages/markupsafe/{file}"),
            "{w}"
        );
        let served = curl(w["url"].as_str().unwrap());
        let in_bucket =
            fs_err::read(bucket_root.join("wheels/packages/markupsafe").join(file)).unwrap();
        assert!(served == in_bucket, "the link serves the bucket's {file}");
    }
    let target = tempfile::tempdir().unwrap();
    pip_install(
        mirror["index"].as_str().unwrap(),
        "markupsafe",
        target.path(),
    );
    assert!(target.path().join("markupsafe/__init__.py").is_file());
}

/// A request whose lock takes every package from the index has no target to build, and
/// `refine build //requests/NAME/...` still leaves its whole wheelhouse — every platform of
/// the lock — with its simple index and a summary, and pip installs it offline.
fn a_request_of_index_wheels_only(work: &Path, store: &Path) {
    let ws = copy_workspace_as(work, "ws-wheels");
    fs_err::write(
        ws.join("requests/wheels.kdl"),
        r#"request "wheels" {
    platforms "x86_64" "s390x"
    python "3.11"
    runtime "//runtimes:debian-python"
    package "attrs"
    package "charset-normalizer"
    strategy "reuse-wheels"
}
"#,
    )
    .unwrap();
    let lock = refine_in(&ws, store, &["request", "lock", "wheels"]);
    assert_eq!(lock.status.code(), Some(0), "{}", stderr(&lock));
    let q = refine_in(&ws, store, &["query", "//requests/wheels/..."]);
    assert_eq!(q.status.code(), Some(0), "{}", stderr(&q));
    assert_eq!(stdout(&q), "", "no package is built here");

    let out = work.join("wheelhouse-wheels");
    let b = refine_in(
        &ws,
        store,
        &[
            "build",
            "//requests/wheels/...",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let said = stdout(&b) + &stderr(&b);
    assert_eq!(b.status.code(), Some(0), "{said}");
    for platform in ["x86_64", "s390x"] {
        for package in ["attrs", "charset-normalizer"] {
            assert!(
                said.contains(&format!("on {platform} (Python 3.11): reused"))
                    && said.contains(package),
                "{package} on {platform}: {said}"
            );
        }
    }
    let wheels: Vec<String> = fs_err::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".whl"))
        .collect();
    for want in ["attrs-", "_x86_64.whl", "_s390x.whl"] {
        assert!(
            wheels.iter().any(|w| w.contains(want)),
            "{want}: {wheels:?}"
        );
    }
    let page = fs_err::read_to_string(out.join("simple/charset-normalizer/index.html")).unwrap();
    assert_eq!(page.matches("#sha256=").count(), 2, "{page}");

    let root = artifact_tree(&ws, store, "//bases:bookworm-x86_64");
    let said = sandbox_sh(
        &root,
        None,
        &[(out.as_path(), "/wheels")],
        &format!(
            "{} && /tmp/v/bin/python -c 'import attrs, charset_normalizer; print(\"ok\")'",
            venv_with(
                "/tmp/v",
                "--index-url file:///wheels/simple attrs charset-normalizer"
            )
        ),
    );
    assert!(said.contains("ok"), "{said}");

    // A target that does not exist is still an error.
    let b = refine_in(&ws, store, &["build", "//requests/wheels:attrs-py311"]);
    assert_eq!(b.status.code(), Some(2), "{}", stderr(&b));
    assert!(stderr(&b).contains("matches no target"), "{}", stderr(&b));
}

/// The build requirements of `package` in the lock `text`, as `requires "NAME==VERSION"`
/// lines.
fn pinned_build_requires(text: &str, package: &str) -> Vec<String> {
    package_lines(text, package, "requires ")
}

/// What `package`'s backend asked for when probed, from the lock `text`'s `asked` lines.
fn asked_build_requires(text: &str, package: &str) -> Vec<String> {
    package_lines(text, package, "asked ")
        .iter()
        .map(|l| l["asked ".len()..].trim_matches('"').to_string())
        .collect()
}

/// The lines of `package`'s block in the lock `text` that start with `prefix`.
fn package_lines(text: &str, package: &str, prefix: &str) -> Vec<String> {
    let block = text
        .split(&format!("package {package} "))
        .nth(1)
        .and_then(|b| b.split('}').next())
        .unwrap_or_else(|| panic!("no package {package} in the lock:\n{text}"));
    block
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(prefix))
        .map(String::from)
        .collect()
}

/// A build requirement only the backend knows — fixtures 3.0.0 has no `pyproject.toml`, and
/// its `setup.py` says `setup_requires=['pbr>0.11']` — is asked of the backend in the
/// sandbox and pinned. A lock without probes leaves it out, and the build then fails naming
/// it; a backend that fails when asked is named with its probe, and the lock is kept.
fn backends_are_asked_what_their_builds_need(work: &Path, store: &Path) {
    let ws = copy_workspace_as(work, "ws-dynamic");
    let request = |extra: &str| {
        format!(
            r#"request "dynamic" {{
    platforms "x86_64"
    python "3.11"
    runtime "//runtimes:debian-python"
    package "fixtures" version="==3.0.0"
    package "markupsafe" version="==2.0.1"
    strategy "reuse-wheels"
    override "fixtures" {{
        take "sdist"
    }}
    override "markupsafe" {{
        take "sdist"{extra}
    }}
}}
"#
        )
    };
    let kdl = ws.join("requests/dynamic.kdl");
    let lock_file = ws.join("requests/dynamic.lock");
    fs_err::write(&kdl, request("")).unwrap();

    let lock = refine_in(&ws, store, &["request", "lock", "dynamic", "--no-probe"]);
    assert_eq!(lock.status.code(), Some(0), "{}", stderr(&lock));
    let text = fs_err::read_to_string(&lock_file).unwrap();
    let pins = pinned_build_requires(&text, "fixtures");
    assert!(!pins.iter().any(|p| p.contains("\"pbr==")), "{pins:?}");
    let wheel = "//requests/dynamic:fixtures-x86_64-py311";
    let b = refine_in(&ws, store, &["build", wheel]);
    assert_eq!(b.status.code(), Some(1), "{}", stderr(&b));
    assert!(stderr(&b).contains("pbr>0.11"), "{}", stderr(&b));

    let lock = refine_in(&ws, store, &["request", "lock", "dynamic"]);
    let said = stderr(&lock);
    assert_eq!(lock.status.code(), Some(0), "{said}");
    assert!(
        said.contains("(pass 2)"),
        "a second pass pins what the first found: {said}"
    );
    let text = fs_err::read_to_string(&lock_file).unwrap();
    let pins = pinned_build_requires(&text, "fixtures");
    assert!(
        pins.iter().any(|p| p.contains("\"pbr==")),
        "{pins:?}\n{text}"
    );
    // The lock says why it is there.
    assert_eq!(
        asked_build_requires(&text, "fixtures"),
        ["pbr>0.11"],
        "{text}"
    );
    // Only the backend that asked gets it.
    let pins = pinned_build_requires(&text, "markupsafe");
    assert!(!pins.iter().any(|p| p.contains("\"pbr==")), "{pins:?}");
    assert!(
        asked_build_requires(&text, "markupsafe").is_empty(),
        "{text}"
    );
    // The wheel is built, not taken for its probe (their keys differ).
    let out = work.join("wheelhouse-dynamic");
    let b = refine_in(
        &ws,
        store,
        &["build", wheel, "--out", out.to_str().unwrap()],
    );
    assert_eq!(b.status.code(), Some(0), "{}", stderr(&b));
    assert!(
        out.join("fixtures-3.0.0-py2.py3-none-any.whl").is_file(),
        "{}",
        stdout(&b)
    );
    // Asked again, the probes answer from the store: the same lock.
    let again = refine_in(&ws, store, &["request", "lock", "dynamic"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(fs_err::read_to_string(&lock_file).unwrap(), text);

    // setup.py refuses an option it does not know: the probe fails, and says so.
    fs_err::write(
        &kdl,
        request("\n        config-setting \"--global-option\" \"--refine-no-such-option\""),
    )
    .unwrap();
    let lock = refine_in(&ws, store, &["request", "lock", "dynamic"]);
    let err = stderr(&lock);
    assert_eq!(lock.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "The build requirements of request `dynamic` cannot be asked of their backends"
        ),
        "{err}"
    );
    assert!(
        err.contains("//requests/dynamic:markupsafe-probe-x86_64-py311"),
        "{err}"
    );
    assert!(err.contains("--no-probe"), "{err}");
    assert_eq!(
        fs_err::read_to_string(&lock_file).unwrap(),
        text,
        "a failed lock kept the lock"
    );
}

/// A request whose `packs` leave out the one PyYAML needs: the build fails naming the
/// missing header and the pack and override that provide it; nothing is stored for it.
fn a_missing_pack_is_named(work: &Path, store: &Path) {
    let ws = copy_workspace_as(work, "ws-nolib");
    fs_err::write(
        ws.join("requests/nolib.kdl"),
        r#"request "nolib" {
    platforms "x86_64"
    python "3.11"
    runtime "//runtimes:debian-python"
    package "pyyaml" version="==6.0.2"
    packs "//packs:libffi"
    override "pyyaml" {
        take "sdist"
        env "PYYAML_FORCE_LIBYAML" "1"
        build-requires "cython<3.1"
    }
}
"#,
    )
    .unwrap();
    let lock = refine_in(&ws, store, &["request", "lock", "nolib"]);
    assert_eq!(lock.status.code(), Some(0), "{}", stderr(&lock));
    // The override's build requirement is locked with the sdist's own.
    let text = fs_err::read_to_string(ws.join("requests/nolib.lock")).unwrap();
    assert!(text.contains("requires \"cython==3.0."), "{text}");
    let b = refine_in(
        &ws,
        store,
        &["build", "//requests/nolib:pyyaml-repaired-x86_64-py311"],
    );
    let err = stderr(&b);
    assert_eq!(b.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`pyyaml` cannot be built: yaml.h is missing"),
        "{err}"
    );
    assert!(
        err.contains("override \"pyyaml\" { packs \"//packs:libyaml\" }"),
        "{err}"
    );
    assert!(
        err.contains("pyyaml 6.0.2 on x86_64 (Python 3.11): failed"),
        "{err}"
    );
    let plan = plan_node(&ws, store, "//requests/nolib:pyyaml-x86_64-py311");
    assert_eq!(plan["status"], "build", "{plan}");
}

/// Resolution errors point at the request and carry the resolver's words.
#[test]
fn lock_errors_point_at_the_request() {
    let work = scratch();
    let store = work.path().join("store");
    let ws = copy_workspace(work.path());
    let cases = [
        (
            "unknown",
            "package \"refine-no-such-package-anywhere\"",
            "refine-no-such-package-anywhere",
        ),
        (
            "noversion",
            "package \"attrs\" version=\"==0.0.0.1\"",
            "attrs==0.0.0.1",
        ),
        (
            "conflict",
            "package \"attrs\" version=\">=23\"\n    package \"attrs\" version=\"<22\"",
            "attrs",
        ),
    ];
    for (name, packages, says) in cases {
        fs_err::write(
            ws.join(format!("requests/{name}.kdl")),
            format!(
                "request \"{name}\" {{\n    platforms \"s390x\"\n    python \"3.11\"\n    runtime \"//runtimes:debian-python\"\n    {packages}\n}}\n"
            ),
        )
        .unwrap();
        let out = refine_in(&ws, &store, &["request", "lock", name]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains("resolution-failed"), "{name}: {err}");
        assert!(
            err.contains(&format!(
                "Request `{name}` cannot be resolved for Python 3.11 on `s390x`"
            )),
            "{name}: {err}"
        );
        assert!(err.contains(says), "{name}: {err}");
        assert!(
            err.contains(&format!("requests/{name}.kdl:1:9")),
            "{name}: {err}"
        );
        assert!(
            !ws.join(format!("requests/{name}.lock")).exists(),
            "{name}: a lock was written"
        );
        fs_err::remove_file(ws.join(format!("requests/{name}.kdl"))).unwrap();
    }
}

/// A lock that replaces another asks the replaced lock's build-requirement questions ahead
/// (docs/requests.md); what it writes is what a first lock writes.
#[test]
fn a_lock_does_not_depend_on_the_lock_it_replaces() {
    let work = scratch();
    let store = work.path().join("store");
    let ws = copy_workspace(work.path());
    let lock_file = ws.join("requests/demo.lock");
    let mut texts = Vec::new();
    // The repo's lock, then the one just written, then none at all.
    for replaced in [true, true, false] {
        if !replaced {
            fs_err::remove_file(&lock_file).unwrap();
        }
        // No probes: they would need the bases built, and this test is about uv's questions.
        let out = refine_in(&ws, &store, &["request", "lock", "demo", "--no-probe"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        texts.push(fs_err::read_to_string(&lock_file).unwrap());
    }
    assert_eq!(texts[0], texts[1]);
    assert_eq!(texts[1], texts[2]);
}

/// An sdist whose bytes are not those the lock pins is refused before anything runs, and
/// a build requirement pinned to an sdist's hash is named as such.
#[test]
fn pinned_files_that_are_not_what_the_lock_says() {
    let work = scratch();
    let store = work.path().join("store");
    let ws = copy_workspace(work.path());
    let lock = ws.join("requests/demo.lock");
    let text = fs_err::read_to_string(&lock).unwrap();
    // markupsafe's sdist pinned to another file's hash (attrs' sdist): not on markupsafe's
    // index page.
    let attrs_sdist = text
        .split("sdist attrs-")
        .nth(1)
        .and_then(|s| s.split("sha256=").nth(1))
        .map(|s| {
            s.split_whitespace()
                .next()
                .unwrap()
                .trim_matches('"')
                .to_string()
        })
        .unwrap();
    let markupsafe_sdist = "594c67807fb16238b30c44bdf74f36c02cdf22d1c8cda91ef8a0ed8dabf5620a";
    assert!(text.contains(markupsafe_sdist));
    fs_err::write(&lock, text.replace(markupsafe_sdist, &attrs_sdist)).unwrap();
    let out = refine_in(
        &ws,
        &store,
        &["fetch", "//requests/demo:markupsafe-x86_64-py311"],
    );
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains(&attrs_sdist), "{err}");
    assert!(err.contains("markupsafe"), "{err}");
    assert!(
        !store.join("refs").exists() || fs_err::read_dir(store.join("refs")).unwrap().count() == 0
    );
}

/// A build requirement pinned to its sdist's sha256 rather than a wheel's: named, with the
/// file, before the sandbox runs (pip, offline, would say "from versions: none").
fn a_build_requirement_pinned_to_an_sdist(work: &Path, store: &Path) {
    let ws = copy_workspace_as(work, "ws-sdist-pin");
    let lock = ws.join("requests/demo.lock");
    let text = fs_err::read_to_string(&lock).unwrap();
    let wheel = "ca140b45d5325a9478f880e351484f62fef15f336462e449ca0c03c873d589c2";
    let sdist = "3ff8b3b5492a0aa66960f4419365a86b84e013070d4313e4d4a6894f5d64d6bc";
    assert!(
        text.contains(wheel),
        "the lock pins setuptools 84.2.1's wheel"
    );
    // Quoted: a KDL identifier cannot start with a digit.
    let edited = text.replace(&format!("sha256={wheel}"), &format!("sha256=\"{sdist}\""));
    fs_err::write(&lock, edited).unwrap();
    let out = refine_in(
        &ws,
        store,
        &["build", "//requests/demo:markupsafe-x86_64-py311"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "`setuptools==84.2.1` is pinned to `setuptools-84.2.1.tar.gz`, which is not a wheel"
        ),
        "{err}"
    );
}

/// The s390x flow on the `s390x-2_31` platform: everything under qemu but the toolchain's
/// compilers, over the store the s390x tests share (its base bootstrapped once, the packs
/// built once for this test and the 2_31 floor tests). With `REFINE_REQUEST_STORE=DIR`, in
/// that store instead.
#[test]
fn s390x_request_under_emulation() {
    let work = scratch();
    let store = store_from_env_or_shared("REFINE_REQUEST_STORE", &S390X_2_31_SHARED);
    request_flow(
        work.path(),
        &store,
        "s390x-2_31",
        Some("s390x"),
        "//bases:bookworm-s390x",
        true,
    );
}

/// `refine request new` writes a request file that loads and is `refine fmt`-clean, and
/// refuses to replace one or to name a file outside the workspace.
#[test]
fn request_new_writes_a_request_from_a_requirements_file() {
    let work = scratch();
    let ws = copy_workspace(work.path());
    fs_err::create_dir_all(ws.join("app")).unwrap();
    fs_err::write(ws.join("app/requirements.txt"), "attrs\n").unwrap();
    fs_err::write(ws.join("app/constraints.txt"), "attrs<30\n").unwrap();
    let store = work.path().join("store");
    let args = [
        "request",
        "new",
        "app",
        "-r",
        "app/requirements.txt",
        "-c",
        "app/constraints.txt",
        "--python",
        "3.11",
        "--python",
        "3.12",
        "--platform",
        "s390x",
        "--runtime",
        "//runtimes:debian-python",
    ];
    let out = refine_in(&ws, &store, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("wrote requests/app.kdl"),
        "{}",
        stdout(&out)
    );
    let text = fs_err::read_to_string(ws.join("requests/app.kdl")).unwrap();
    assert_eq!(
        text,
        "request \"app\" {\n    platforms \"s390x\"\n    python \"3.11\" \"3.12\"\n    runtime \"//runtimes:debian-python\"\n    requirements \"../app/requirements.txt\"\n    constraints \"../app/constraints.txt\"\n    strategy \"reuse-wheels\"\n}\n"
    );
    let fmt = refine_in(&ws, &store, &["fmt", "--check"]);
    assert_eq!(fmt.status.code(), Some(0), "{}", stderr(&fmt));
    // Not locked yet: the workspace says so, at the request, with the command.
    let q = refine_in(&ws, &store, &["query", "//requests/app/..."]);
    assert_eq!(q.status.code(), Some(2));
    assert!(
        stderr(&q).contains("refine request lock app"),
        "{}",
        stderr(&q)
    );
    // Again: refused, the file unchanged.
    let again = refine_in(&ws, &store, &args);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("`requests/app.kdl` exists already"),
        "{}",
        stderr(&again)
    );
    // A requirements file outside the workspace.
    let outside = work.path().join("elsewhere.txt");
    fs_err::write(&outside, "attrs\n").unwrap();
    let out = refine_in(
        &ws,
        &store,
        &[
            "request",
            "new",
            "other",
            "-r",
            outside.to_str().unwrap(),
            "--python",
            "3.11",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is outside the workspace"),
        "{}",
        stderr(&out)
    );
    assert!(!ws.join("requests/other.kdl").exists());
}
