//! Build requests (`requests/NAME.kdl`) and their locks (`requests/NAME.lock`): a request
//! with a current lock becomes wheel and repair targets, and a snapshot of each diagnostic
//! for a request or a lock written wrong, or a lock that no longer matches its request.

use refine_engine::rules::Workspace;

use super::{bad, ws};
use crate::common::*;

/// The shared header with a second platform, `x86_64`, and the resolver a request lock
/// needs (the shared `WORKSPACE` has none: adding it there would change other snapshots).
fn header() -> String {
    WORKSPACE.replace(
        "defaults {\n",
        "platform \"x86_64\" arch=\"x86_64\" policy=\"manylinux_2_28\" base=\"//bases:deb-x86\"\ndefaults {\n    platforms \"s390x\" \"x86_64\"\n    resolver \"uv==0.13.9\" sha256=\"d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19\"\n",
    )
}

/// The requirements file `requests/app.kdl` names.
const REQUIREMENTS: &str = "pyyaml\nattrs\n";

/// `request "app"` with its required fields, then `body`.
fn request(body: &str) -> String {
    format!(
        "request \"app\" {{\n    python \"3.11\"\n    runtime \"//runtimes:py\"\n    requirements \"app.txt\"\n{body}}}\n"
    )
}

/// The request the lock cases lock: both platforms, Python 3.11, `app.txt`.
fn locked_request() -> String {
    request("    platforms \"s390x\" \"x86_64\"\n")
}

/// The workspace's files for a request `app` written as `kdl`, plus `extra` files.
fn files<'a>(head: &'a str, kdl: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut out = vec![
        ("workspace.kdl", head),
        ("requests/app.txt", REQUIREMENTS),
        ("requests/app.kdl", kdl),
    ];
    for (path, text) in extra {
        out.retain(|(p, _)| p != path);
        out.push((path, text));
    }
    out
}

/// A request file written wrong: its diagnostic, as `refine query //...` prints it.
fn bad_request(name: &str, kdl: &str) {
    let head = header();
    bad(name, &files(&head, kdl, &[]));
}

/// The `inputs` digest a lock of request `app` records, for the workspace of `files`: the
/// library computes it exactly as `refine request lock` does.
fn inputs_of(files: &[(&str, &str)]) -> String {
    let w = ws(files);
    let loaded = Workspace::load_without_locks(w.path())
        .unwrap_or_else(|e| panic!("the workspace loads: {e:?}"));
    let resolver = loaded
        .config
        .defaults
        .resolver
        .as_ref()
        .expect("the header has a resolver");
    let r = loaded
        .requests
        .iter()
        .find(|r| r.request.name == "app")
        .expect("request `app` was read");
    r.request.inputs_digest(&loaded.config, resolver)
}

const SDIST_SHA: &str = "d857db8e8f8f2a4a5f4f9a40ca1b3c8fee8d8fb8ea3a3b5c7a8f1e0c6a2b4d9e";
const WHEEL_SHA: &str = "c647aa4a12dfbad9333ca4e71fe62ddc36f4e63b2d260a37a8b83d2f043ac309";
const SETUPTOOLS_SHA: &str = "ca140b45d5325a9478f880e351484f62fef15f336462e449ca0c03c873d589c2";

/// `pyyaml`, built here from its sdist, with one build requirement.
const PYYAML: &str = "    package \"pyyaml\" version=\"6.0.2\" take=\"sdist\" {\n        sdist \"pyyaml-6.0.2.tar.gz\" sha256=\"SDIST\"\n        backend \"setuptools.build_meta\"\n        requires \"setuptools==84.2.1\" sha256=\"SETUPTOOLS\"\n    }\n";

/// `attrs`, the index's wheel.
const ATTRS: &str = "    package \"attrs\" version=\"26.1.0\" take=\"wheel\" {\n        sdist \"attrs-26.1.0.tar.gz\" sha256=\"SDIST\"\n        wheel \"attrs-26.1.0-py3-none-any.whl\" sha256=\"WHEEL\"\n    }\n";

fn shas(text: &str) -> String {
    text.replace("SDIST", SDIST_SHA)
        .replace("WHEEL", WHEEL_SHA)
        .replace("SETUPTOOLS", SETUPTOOLS_SHA)
}

/// A lock of request `app` recording the digest `inputs`, as `refine request lock` writes
/// one: a resolution per platform for Python 3.11; `s390x`'s packages are `s390x`,
/// `x86_64`'s a consistent pair (`attrs` from the index, `pyyaml` built here).
fn lock_text(inputs: &str, s390x: &str) -> String {
    shas(&format!(
        "// Written by `refine request lock app`: what requests/app.kdl resolved to, for each\n// Python version and platform. Do not edit; refresh with `refine request lock app`\n// (docs/requests.md).\nrequest \"app\" inputs=\"{inputs}\" resolver=\"uv==0.13.9\"\n\nresolution python=\"3.11\" platform=\"s390x\" {{\n{s390x}}}\n\nresolution python=\"3.11\" platform=\"x86_64\" {{\n{ATTRS}{PYYAML}}}\n"
    ))
}

/// A lock of `locked_request()` whose inputs are current, with `s390x`'s packages written
/// as `s390x`.
fn current_lock(s390x: &str) -> String {
    let head = header();
    let kdl = locked_request();
    lock_text(&inputs_of(&files(&head, &kdl, &[])), s390x)
}

/// A lock written wrong, `lock`, for a current request: its diagnostic. The snapshots do
/// not pin the `inputs` digest (what goes into it is the stale-lock case's business).
fn bad_lock(name: &str, lock: &str) {
    let head = header();
    let kdl = locked_request();
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        r#"inputs="sha256:[0-9a-f]{64}""#,
        r#"inputs="sha256:[INPUTS]""#,
    );
    settings.bind(|| bad(name, &files(&head, &kdl, &[("requests/app.lock", lock)])));
}

// ---- What works. ----

/// A request whose lock is current loads; each package the lock builds from its sdist is a
/// wheel target and its repair per platform and Python version (the primary platform's
/// without a suffix), and a package taken from the index is no target at all.
#[test]
fn a_current_request_lock_loads() {
    let head = header();
    let kdl = locked_request();
    let lock = current_lock(&format!("{ATTRS}{PYYAML}"));
    let w = ws(&files(&head, &kdl, &[("requests/app.lock", &lock)]));
    let out = w.refine(&["query", "//requests/app/..."]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "//requests/app:pyyaml-py311\n//requests/app:pyyaml-repaired-py311\n//requests/app:pyyaml-repaired-x86_64-py311\n//requests/app:pyyaml-x86_64-py311\n"
    );
    // Each wheel is built with its platform's variant of the request's runtime.
    let out = w.refine(&[
        "query",
        "deps(//requests/app:pyyaml-x86_64-py311) ^ kind(runtime, //...)",
    ]);
    assert_eq!(
        stdout(&out),
        "//runtimes:py-x86_64-py311\n",
        "{}",
        stderr(&out)
    );
}

/// A lock read from the rules cache answers as one parsed afresh, and its targets still
/// point into the lock when another file shifts the ids of the files loaded after it.
#[test]
fn a_cached_lock_answers_the_same_and_points_into_the_lock() {
    let cache = tempfile::tempdir().unwrap();
    let head = header();
    let kdl = locked_request();
    let lock = current_lock(&format!("{ATTRS}{PYYAML}"));
    let w = ws(&files(&head, &kdl, &[("requests/app.lock", &lock)]));
    let run = || {
        let out = std::process::Command::new(refine_bin())
            .args(["query", "//requests/app/...", "--output", "json"])
            .current_dir(w.path())
            .env("NO_COLOR", "1")
            .env("REFINE_RULES_CACHE", cache.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    let fresh = run();
    assert!(
        fresh.contains("\"location\": \"requests/app.lock:"),
        "{fresh}"
    );
    let locks = || {
        walk_files(cache.path())
            .into_iter()
            .filter(|p| {
                // Only the lock names its packages' files.
                let bytes = fs_err::read(p).unwrap();
                bytes
                    .windows(b"attrs-26.1.0.tar.gz".len())
                    .any(|w| w == b"attrs-26.1.0.tar.gz")
            })
            .count()
    };
    assert_eq!(locks(), 1, "the lock went into the cache");
    fs_err::write(
        w.path().join("rules/aaa.kdl"),
        "pack \"z\" {\n    version \"1\"\n    recipe \"r.sh\"\n}\n",
    )
    .unwrap();
    assert_eq!(run(), fresh, "a cached lock answers the same");
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs_err::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

// ---- Bad request files: each case is a snapshot of the full diagnostic. ----

#[test]
fn request_unknown_field_did_you_mean() {
    bad_request(
        "request_unknown_field_did_you_mean",
        &request("    stratgy \"build-all\"\n"),
    );
}

#[test]
fn request_name_is_not_the_file_name() {
    bad_request(
        "request_name_is_not_the_file_name",
        &request("").replace("request \"app\"", "request \"ap\""),
    );
}

#[test]
fn request_unknown_platform() {
    bad_request(
        "request_unknown_platform",
        &request("    platforms \"s390\"\n"),
    );
}

#[test]
fn request_bad_python_version() {
    bad_request(
        "request_bad_python_version",
        &request("").replace("python \"3.11\"", "python \"3.x\""),
    );
}

#[test]
fn request_python_patch_version() {
    bad_request(
        "request_python_patch_version",
        &request("").replace("python \"3.11\"", "python \"3.11.4\""),
    );
}

#[test]
fn request_requirements_file_missing() {
    bad_request(
        "request_requirements_file_missing",
        &request("").replace("\"app.txt\"", "\"ap.txt\""),
    );
}

#[test]
fn request_requirements_outside_the_workspace() {
    bad_request(
        "request_requirements_outside_the_workspace",
        &request("").replace("\"app.txt\"", "\"../../x.txt\""),
    );
}

#[test]
fn request_invalid_package_name() {
    bad_request(
        "request_invalid_package_name",
        &request("    package \"num py\" version=\">=2\"\n"),
    );
}

#[test]
fn request_invalid_version_specifier() {
    bad_request(
        "request_invalid_version_specifier",
        &request("    package \"numpy\" version=\"=>2\"\n"),
    );
}

/// `version="2"` is no specifier: it must not be read as a requirement on `numpy2`.
#[test]
fn request_version_without_an_operator() {
    bad_request(
        "request_version_without_an_operator",
        &request("    package \"numpy\" version=\"2\"\n"),
    );
}

#[test]
fn request_package_name_carries_a_version() {
    bad_request(
        "request_package_name_carries_a_version",
        &request("    package \"numpy>=2\"\n"),
    );
}

#[test]
fn request_unknown_strategy() {
    bad_request(
        "request_unknown_strategy",
        &request("    strategy \"reuse\"\n"),
    );
}

#[test]
fn request_override_bad_take() {
    bad_request(
        "request_override_bad_take",
        &request("    override \"pyyaml\" {\n        take \"wheel\"\n    }\n"),
    );
}

#[test]
fn request_override_bad_build_requires() {
    bad_request(
        "request_override_bad_build_requires",
        &request(
            "    override \"pyyaml\" {\n        build-requires \"cython<3.1\" \"ninja>=\"\n    }\n",
        ),
    );
}

#[test]
fn request_override_bad_version() {
    bad_request(
        "request_override_bad_version",
        &request("    override \"pyyaml\" {\n        version \"6.0.2\"\n    }\n"),
    );
}

/// Override names compare PEP 503 normalized: `PyYAML` is `pyyaml`.
#[test]
fn request_duplicate_override() {
    bad_request(
        "request_duplicate_override",
        &request(
            "    override \"pyyaml\" {\n        take \"sdist\"\n    }\n    override \"PyYAML\" {\n        env \"X\" \"1\"\n    }\n",
        ),
    );
}

#[test]
fn request_asks_for_nothing() {
    bad_request(
        "request_asks_for_nothing",
        &request("").replace("    requirements \"app.txt\"\n", ""),
    );
}

#[test]
fn request_without_a_resolver() {
    let head = WORKSPACE.to_string();
    bad(
        "request_without_a_resolver",
        &files(&head, &request(""), &[]),
    );
}

// ---- Locks that do not match their request. ----

#[test]
fn request_without_its_lock() {
    bad_request("request_without_its_lock", &request(""));
}

/// The requirements file changed after the lock was written.
#[test]
fn request_lock_stale() {
    let head = header();
    let kdl = locked_request();
    let lock = current_lock(&format!("{ATTRS}{PYYAML}"));
    bad(
        "request_lock_stale",
        &files(
            &head,
            &kdl,
            &[
                ("requests/app.lock", &lock),
                ("requests/app.txt", "pyyaml\nattrs\nnumpy\n"),
            ],
        ),
    );
}

/// Files a requirements file includes (`-r`, `--constraint=`, nested) are inputs of the lock
/// too: the resolver reads them, so editing one makes the lock stale.
#[test]
fn included_requirements_files_are_inputs_of_the_lock() {
    let head = header();
    let kdl = locked_request();
    let app = "-r base.txt\npyyaml\n";
    let with = |base: &str, nested: &str| {
        inputs_of(&files(
            &head,
            &kdl,
            &[
                ("requests/app.txt", app),
                ("requests/base.txt", base),
                ("requests/pins/nested.txt", nested),
            ],
        ))
    };
    let one = with("attrs\n--constraint=pins/nested.txt\n", "attrs<27\n");
    assert_eq!(
        one,
        with("attrs\n--constraint=pins/nested.txt\n", "attrs<27\n")
    );
    assert_ne!(
        one,
        with("attrs\nidna\n--constraint=pins/nested.txt\n", "attrs<27\n")
    );
    assert_ne!(
        one,
        with("attrs\n--constraint=pins/nested.txt\n", "attrs<26\n")
    );
}

/// An include that does not exist, or leaves the workspace.
#[test]
fn request_requirements_include_missing() {
    let head = header();
    let kdl = locked_request();
    bad(
        "request_requirements_include_missing",
        &files(
            &head,
            &kdl,
            &[("requests/app.txt", "-r base.txt\npyyaml\n")],
        ),
    );
    bad(
        "request_requirements_include_outside",
        &files(
            &head,
            &kdl,
            &[("requests/app.txt", "-r ../../../etc/passwd\n")],
        ),
    );
}

// ---- Locks edited by hand into inconsistent states. ----

#[test]
fn request_lock_takes_an_sdist_it_lacks() {
    bad_lock(
        "request_lock_takes_an_sdist_it_lacks",
        &current_lock(&format!(
            "{ATTRS}{}",
            PYYAML.replace(
                "        sdist \"pyyaml-6.0.2.tar.gz\" sha256=\"SDIST\"\n",
                ""
            )
        )),
    );
}

#[test]
fn request_lock_package_listed_twice() {
    bad_lock(
        "request_lock_package_listed_twice",
        &current_lock(&format!("{ATTRS}{PYYAML}{PYYAML}")),
    );
}

#[test]
fn request_lock_wheel_with_build_requirements() {
    bad_lock(
        "request_lock_wheel_with_build_requirements",
        &current_lock(&format!(
            "{}{PYYAML}",
            ATTRS.replace(
                "    }\n",
                "        requires \"setuptools==84.2.1\" sha256=\"SETUPTOOLS\"\n    }\n"
            )
        )),
    );
}

/// What a backend asked for when `refine request lock` probed it is kept in the lock
/// (`asked`), read back as written, and changes no target: the build requirements it led
/// to are pinned beside it.
#[test]
fn a_lock_keeps_what_backends_asked_for() {
    use refine_engine::rules::request::{read_previous_lock, render_request_lock};
    let asked = PYYAML.replace(
        "        requires",
        "        asked \"setuptools>=40.8\"\n        requires",
    );
    let plain = current_lock(&format!("{ATTRS}{PYYAML}"));
    let with_asked = current_lock(&format!("{ATTRS}{asked}"));
    let lock = read_previous_lock("requests/app.lock", &with_asked).expect("a clean lock");
    let pyyaml = |lock: &refine_engine::rules::request::RequestLock| {
        lock.resolutions[0]
            .packages
            .iter()
            .find(|p| p.name == "pyyaml")
            .expect("pyyaml is locked")
            .asked
            .clone()
    };
    assert_eq!(pyyaml(&lock), ["setuptools>=40.8"]);
    let written = render_request_lock(&lock);
    assert!(
        written.contains("        asked \"setuptools>=40.8\"\n"),
        "{written}"
    );
    let again = read_previous_lock("requests/app.lock", &written).expect("written clean");
    assert_eq!(pyyaml(&again), ["setuptools>=40.8"]);
    // The same targets, with the same keys, as the lock without it.
    let head = header();
    let kdl = locked_request();
    let plan = |lock: &str| {
        let w = ws(&files(&head, &kdl, &[("requests/app.lock", lock)]));
        let out = w.refine(&["plan", "//requests/app/...", "--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    assert_eq!(plan(&plain), plan(&with_asked));
}

#[test]
fn request_lock_wheel_with_asked_build_requirements() {
    bad_lock(
        "request_lock_wheel_with_asked_build_requirements",
        &current_lock(&format!(
            "{}{PYYAML}",
            ATTRS.replace("    }\n", "        asked \"setuptools>=40.8\"\n    }\n")
        )),
    );
}

#[test]
fn request_lock_package_name_not_normalized() {
    bad_lock(
        "request_lock_package_name_not_normalized",
        &current_lock(&format!(
            "{ATTRS}{}",
            PYYAML.replace("\"pyyaml\"", "\"PyYAML\"")
        )),
    );
}

#[test]
fn request_lock_unknown_entry() {
    bad_lock(
        "request_lock_unknown_entry",
        &format!("{}wheel \"w\"\n", current_lock(&format!("{ATTRS}{PYYAML}"))),
    );
}

#[test]
fn request_lock_bad_sha256() {
    bad_lock(
        "request_lock_bad_sha256",
        &current_lock(&format!(
            "{}{PYYAML}",
            ATTRS.replace("\"WHEEL\"", "\"c647aa4a\"")
        )),
    );
}

/// The wheelhouse copies a wheel under its name: a name with a folder would leave it.
#[test]
fn request_lock_wheel_outside_the_wheelhouse() {
    bad_lock(
        "request_lock_wheel_outside_the_wheelhouse",
        &current_lock(&format!(
            "{}{PYYAML}",
            ATTRS.replace(
                "\"attrs-26.1.0-py3-none-any.whl\"",
                "\"../../attrs-26.1.0-py3-none-any.whl\""
            )
        )),
    );
}

#[test]
fn request_lock_bad_take() {
    bad_lock(
        "request_lock_bad_take",
        &current_lock(&format!(
            "{ATTRS}{}",
            PYYAML.replace("take=\"sdist\"", "take=\"any\"")
        )),
    );
}

#[test]
fn request_lock_for_another_request() {
    let lock = current_lock(&format!("{ATTRS}{PYYAML}"))
        .replace("request \"app\" inputs", "request \"other\" inputs");
    bad_lock("request_lock_for_another_request", &lock);
}

/// A resolution the request does not ask for (Python 3.12), added by hand.
#[test]
fn request_lock_resolution_not_asked_for() {
    let lock = format!(
        "{}\nresolution python=\"3.12\" platform=\"s390x\" {{\n{}}}\n",
        current_lock(&format!("{ATTRS}{PYYAML}")),
        shas(PYYAML)
    );
    bad_lock("request_lock_resolution_not_asked_for", &lock);
}

/// A resolution the request asks for (`x86_64`), removed by hand.
#[test]
fn request_lock_without_a_resolution() {
    let lock = current_lock(&format!("{ATTRS}{PYYAML}"));
    let cut = lock
        .find("\nresolution python=\"3.11\" platform=\"x86_64\"")
        .unwrap();
    bad_lock("request_lock_without_a_resolution", &lock[..cut]);
}
