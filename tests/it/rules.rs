//! The rule language from the command line: loading, diagnostics for bad input, queries,
//! formatting. One integration-test binary for the area.

mod locks;
mod platforms;
mod requests;
mod toolchains;

use crate::common::*;

/// A workspace with the shared header, bases, runtimes and packs, plus `extra` files. The
/// recipes its pack rules name (`PACKS`'s, and the `r.sh` of many cases here) exist: a
/// missing recipe is an error of its own.
fn ws(extra: &[(&str, &str)]) -> TempWorkspace {
    let mut files: Vec<(&str, &str)> = vec![
        ("workspace.kdl", WORKSPACE),
        ("rules/bases.kdl", BASES),
        ("rules/runtimes.kdl", RUNTIMES),
        ("rules/packs.kdl", PACKS),
        ("recipes/yaml.sh", "#!/bin/sh\n"),
        ("r.sh", "#!/bin/sh\n"),
    ];
    for (path, text) in extra {
        files.retain(|(p, _)| p != path);
        files.push((path, text));
    }
    TempWorkspace::new(&files)
}

/// Runs `refine query //...` on a broken workspace: exit code 2, nothing on stdout, and the
/// rendered diagnostic, which the snapshot pins.
fn bad(name: &str, extra: &[(&str, &str)]) {
    bad_with(name, extra, &["query", "//..."]);
}

fn bad_with(name: &str, extra: &[(&str, &str)], args: &[&str]) {
    let w = ws(extra);
    let out = w.refine(args);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{name}: expected exit code 2\n{err}"
    );
    assert!(stdout(&out).is_empty(), "{name}: printed to stdout");
    assert!(!err.contains("panicked"), "{name}: panicked\n{err}");
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&w.path().display().to_string()), "[WS]");
    settings.bind(|| insta::assert_snapshot!(name, err));
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

fn wheel(body: &str) -> String {
    format!(
        "wheel \"w\" {{\n    source pypi=\"MarkupSafe\" version=\"3.0.2\" sha256=\"{SHA}\"\n    runtime \"//runtimes:py\"\n{body}}}\n"
    )
}

// ---- Bad input: each case is a snapshot of the full diagnostic. ----

#[test]
fn kdl_syntax_error() {
    bad(
        "kdl_syntax_error",
        &[("rules/wheels.kdl", "wheel \"w\" {\n    python \"3.11\n}\n")],
    );
}

#[test]
fn kdl_unbalanced_brace() {
    bad(
        "kdl_unbalanced_brace",
        &[("rules/wheels.kdl", "wheel \"w\" {\n    python \"3.11\"\n")],
    );
}

#[test]
fn unknown_rule_kind() {
    bad(
        "unknown_rule_kind",
        &[("rules/wheels.kdl", "whel \"w\" {}\n")],
    );
}

#[test]
fn unknown_field_did_you_mean() {
    bad(
        "unknown_field_did_you_mean",
        &[(
            "rules/wheels.kdl",
            &wheel("    pyhton \"3.11\"\n    python \"3.11\"\n"),
        )],
    );
}

#[test]
fn unknown_property_did_you_mean() {
    bad(
        "unknown_property_did_you_mean",
        &[(
            "rules/wheels.kdl",
            &format!(
                "wheel \"w\" {{\n    source pypi=\"x\" verison=\"1\" sha256=\"{SHA}\"\n    python \"3.11\"\n    runtime \"//runtimes:py\"\n}}\n"
            ),
        )],
    );
}

#[test]
fn wrong_value_type() {
    bad(
        "wrong_value_type",
        &[("rules/wheels.kdl", &wheel("    python 3.11\n"))],
    );
}

#[test]
fn invalid_python_version() {
    bad(
        "invalid_python_version",
        &[("rules/wheels.kdl", &wheel("    python \"3.x\"\n"))],
    );
}

#[test]
fn python_patch_version_in_wheel() {
    bad(
        "python_patch_version_in_wheel",
        &[("rules/wheels.kdl", &wheel("    python \"3.11.2\"\n"))],
    );
}

#[test]
fn short_sha256() {
    bad(
        "short_sha256",
        &[(
            "rules/wheels.kdl",
            "wheel \"w\" {\n    source pypi=\"x\" version=\"1\" sha256=\"abc123\"\n    python \"3.11\"\n    runtime \"//runtimes:py\"\n}\n",
        )],
    );
}

#[test]
fn non_hex_sha256() {
    let sha = "z".repeat(64);
    bad(
        "non_hex_sha256",
        &[(
            "rules/wheels.kdl",
            &format!(
                "wheel \"w\" {{\n    source pypi=\"x\" version=\"1\" sha256=\"{sha}\"\n    python \"3.11\"\n    runtime \"//runtimes:py\"\n}}\n"
            ),
        )],
    );
}

#[test]
fn bad_oci_digest() {
    bad(
        "bad_oci_digest",
        &[(
            "rules/bases.kdl",
            "base \"deb\" {\n    arch \"s390x\"\n    policy \"manylinux_2_28\"\n    image \"pypa/manylinux_2_28_s390x\" digest=\"sha256:XYZ\"\n}\n",
        )],
    );
}

#[test]
fn duplicate_target() {
    bad(
        "duplicate_target",
        &[(
            "rules/packs.kdl",
            "pack \"yaml\" {\n    version \"1\"\n    recipe \"r.sh\"\n}\npack \"yaml\" {\n    version \"2\"\n    recipe \"r.sh\"\n}\n",
        )],
    );
}

#[test]
fn duplicate_matrix_variant() {
    bad(
        "duplicate_matrix_variant",
        &[(
            "rules/wheels.kdl",
            &format!(
                "{}pack \"w-py311\" {{\n    version \"1\"\n    recipe \"r.sh\"\n}}\n",
                wheel("    python \"3.11\"\n")
            ),
        )],
    );
}

#[test]
fn unknown_label() {
    bad(
        "unknown_label",
        &[(
            "rules/wheels.kdl",
            &wheel("    python \"3.11\"\n    packs \"//packs:yml\"\n"),
        )],
    );
}

#[test]
fn unknown_package() {
    bad(
        "unknown_package",
        &[(
            "rules/wheels.kdl",
            &wheel("    python \"3.11\"\n    packs \"//libs:zlib\"\n"),
        )],
    );
}

#[test]
fn wrong_kind_dependency() {
    bad(
        "wrong_kind_dependency",
        &[(
            "rules/wheels.kdl",
            &wheel("    python \"3.11\"\n    packs \"//bases:deb\"\n"),
        )],
    );
}

#[test]
fn missing_matrix_variant() {
    bad(
        "missing_matrix_variant",
        &[("rules/wheels.kdl", &wheel("    python \"3.13\"\n"))],
    );
}

#[test]
fn pack_cycle() {
    bad(
        "pack_cycle",
        &[(
            "rules/packs.kdl",
            "pack \"a\" {\n    version \"1\"\n    recipe \"r.sh\"\n    packs \":b\"\n}\npack \"b\" {\n    version \"1\"\n    recipe \"r.sh\"\n    packs \":c\"\n}\npack \"c\" {\n    version \"1\"\n    recipe \"r.sh\"\n    packs \"//packs:a\"\n}\n",
        )],
    );
}

#[test]
fn self_cycle() {
    bad(
        "self_cycle",
        &[(
            "rules/packs.kdl",
            "pack \"a\" {\n    version \"1\"\n    recipe \"r.sh\"\n    packs \":a\"\n}\n",
        )],
    );
}

#[test]
fn bad_label_syntax() {
    bad(
        "bad_label_syntax",
        &[(
            "rules/wheels.kdl",
            &wheel("    python \"3.11\"\n    packs \"packs:yaml\"\n"),
        )],
    );
}

#[test]
fn label_without_name() {
    bad(
        "label_without_name",
        &[(
            "rules/wheels.kdl",
            &wheel("    python \"3.11\"\n    packs \"//packs\"\n"),
        )],
    );
}

#[test]
fn missing_required_field() {
    bad(
        "missing_required_field",
        &[(
            "rules/wheels.kdl",
            "wheel \"w\" {\n    python \"3.11\"\n}\n",
        )],
    );
}

#[test]
fn unpinned_requirement() {
    bad(
        "unpinned_requirement",
        &[(
            "rules/wheels.kdl",
            &wheel(&format!(
                "    python \"3.11\"\n    requires \"setuptools>=70\" sha256=\"{SHA}\"\n"
            )),
        )],
    );
}

#[test]
fn invalid_requirement() {
    bad(
        "invalid_requirement",
        &[(
            "rules/wheels.kdl",
            &wheel(&format!(
                "    python \"3.11\"\n    requires \"setup tools==1\" sha256=\"{SHA}\"\n"
            )),
        )],
    );
}

#[test]
fn source_with_two_origins() {
    bad(
        "source_with_two_origins",
        &[(
            "rules/wheels.kdl",
            &format!(
                "wheel \"w\" {{\n    source pypi=\"x\" url=\"https://e.invalid/x.tgz\" version=\"1\" sha256=\"{SHA}\"\n    python \"3.11\"\n    runtime \"//runtimes:py\"\n}}\n"
            ),
        )],
    );
}

#[test]
fn path_source_escapes_workspace() {
    bad(
        "path_source_escapes_workspace",
        &[(
            "rules/wheels.kdl",
            "wheel \"w\" {\n    source path=\"../outside\"\n    python \"3.11\"\n    runtime \"//runtimes:py\"\n}\n",
        )],
    );
}

#[test]
fn unknown_platform() {
    bad(
        "unknown_platform",
        &[(
            "rules/packs.kdl",
            "pack \"yaml\" {\n    platform \"s390\"\n    version \"1\"\n    recipe \"r.sh\"\n}\n",
        )],
    );
}

#[test]
fn unknown_arch() {
    bad(
        "unknown_arch",
        &[(
            "rules/bases.kdl",
            "base \"deb\" {\n    arch \"s390\"\n    policy \"manylinux_2_28\"\n    bootstrap \"debootstrap\" version=\"1\" suite=\"bookworm\"\n}\n",
        )],
    );
}

#[test]
fn bad_policy() {
    bad(
        "bad_policy",
        &[(
            "rules/bases.kdl",
            "base \"deb\" {\n    arch \"s390x\"\n    policy \"manylinux2028\"\n    bootstrap \"debootstrap\" version=\"1\" suite=\"bookworm\"\n}\n",
        )],
    );
}

#[test]
fn arch_mismatch() {
    bad(
        "arch_mismatch",
        &[
            (
                "rules/packs.kdl",
                "pack \"yaml\" {\n    base \"//bases:deb-x86\"\n    version \"1\"\n    recipe \"r.sh\"\n}\n",
            ),
            (
                "rules/wheels.kdl",
                &wheel("    python \"3.11\"\n    packs \"//packs:yaml\"\n"),
            ),
        ],
    );
}

#[test]
fn missing_recipe_near_an_existing_one() {
    bad(
        "missing_recipe_near_an_existing_one",
        &[(
            "rules/packs.kdl",
            "pack \"yaml\" {\n    version \"0.2.5\"\n    recipe \"recipes/yml.sh\"\n}\n",
        )],
    );
}

#[test]
fn missing_recipe() {
    bad(
        "missing_recipe",
        &[(
            "rules/packs.kdl",
            "pack \"yaml\" {\n    version \"0.2.5\"\n    recipe \"build/pack.sh\"\n}\n",
        )],
    );
}

#[test]
fn recipe_is_a_folder() {
    bad(
        "recipe_is_a_folder",
        &[(
            "rules/packs.kdl",
            "pack \"yaml\" {\n    version \"0.2.5\"\n    recipe \"recipes\"\n}\n",
        )],
    );
}

#[test]
fn workspace_unknown_node() {
    bad(
        "workspace_unknown_node",
        &[("workspace.kdl", &format!("{WORKSPACE}plattform \"x\"\n"))],
    );
}

#[test]
fn workspace_bad_remote() {
    bad(
        "workspace_bad_remote",
        &[(
            "workspace.kdl",
            &format!("{WORKSPACE}store {{\n    remote \"http://127.0.0.1:5000\"\n}}\n"),
        )],
    );
}

#[test]
fn workspace_bad_executor_url() {
    bad(
        "workspace_bad_executor_url",
        &[(
            "workspace.kdl",
            &format!("{WORKSPACE}store {{\n    executor \"http://farm:8980\"\n}}\n"),
        )],
    );
}

#[test]
fn workspace_bad_executor_settings() {
    bad(
        "workspace_bad_executor_settings",
        &[(
            "workspace.kdl",
            &format!(
                "{WORKSPACE}store {{\n    executor \"reapi://farm:8980/main\" queue-timeout=\"10m\" {{\n        property \"pool\"\n        property \"ISA\" \"s390x\"\n        property \"ISA\" \"x86_64\"\n    }}\n}}\n"
            ),
        )],
    );
}

#[test]
fn catalog_unknown_entry() {
    bad(
        "catalog_unknown_entry",
        &[(
            "catalog/c.kdl",
            "sauce \"py*\" {\n    packs \"//packs:yaml\"\n}\n",
        )],
    );
}

#[test]
fn catalog_unknown_pack() {
    bad(
        "catalog_unknown_pack",
        &[
            (
                "catalog/c.kdl",
                "source \"markupsafe\" {\n    packs \"//packs:yml\"\n}\n",
            ),
            ("rules/wheels.kdl", &wheel("    python \"3.11\"\n")),
        ],
    );
}

#[test]
fn too_deeply_nested() {
    let deep = format!("{}{}", "a {\n".repeat(100_000), "}\n".repeat(100_000));
    bad("too_deeply_nested", &[("rules/deep.kdl", &deep)]);
}

/// A 30 MiB name (issue 17: 131 s and the whole name echoed) is refused before parsing, with
/// one screen line of it.
#[test]
fn a_huge_name_is_refused_before_parsing() {
    let name = "n".repeat(30 << 20);
    let file = format!("pack \"{name}\" {{\n    version \"1\"\n    recipe \"r.sh\"\n}}\n");
    bad("a_huge_name_is_refused", &[("rules/huge.kdl", &file)]);
}

/// A name short enough to parse but far too long to show is cut in the middle of the
/// message and of the line shown.
#[test]
fn a_long_name_is_shown_cut() {
    let name = "n".repeat(3000);
    let file = format!("pack \"{name}\" {{\n    version \"1\"\n}}\n");
    bad("a_long_name_is_shown_cut", &[("rules/long.kdl", &file)]);
}

#[test]
fn deeply_nested_block_comments() {
    let deep = format!("{}{}", "/*\n".repeat(100_000), "*/\n".repeat(100_000));
    bad("deeply_nested_block_comments", &[("rules/deep.kdl", &deep)]);
}

#[test]
fn many_errors_reported_together() {
    bad(
        "many_errors_reported_together",
        &[
            ("rules/wheels.kdl", &wheel("    pyhton \"3.11\"\n")),
            (
                "rules/more.kdl",
                "pack \"p\" {\n    version 1\n    recipe \"r.sh\"\n}\nrepair \"r\" {\n    wheel \"//wheels:nope\"\n}\n",
            ),
        ],
    );
}

#[test]
fn pattern_matches_nothing() {
    bad_with("pattern_matches_nothing", &[], &["query", "//wheels/..."]);
}

#[test]
fn pattern_near_miss() {
    bad_with("pattern_near_miss", &[], &["query", "//packs:yml"]);
}

#[test]
fn query_syntax_error() {
    bad_with("query_syntax_error", &[], &["query", "deps(//... "]);
}

#[test]
fn query_unknown_function() {
    bad_with("query_unknown_function", &[], &["query", "dep(//...)"]);
}

#[test]
fn query_unknown_kind() {
    bad_with("query_unknown_kind", &[], &["query", "kind(wheels, //...)"]);
}

#[test]
fn not_a_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_refine(dir.path(), &["query", "//..."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("No `workspace.kdl`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_cli_usage_exits_2() {
    let w = ws(&[]);
    let out = w.refine(&["query"]);
    assert_eq!(out.status.code(), Some(2));
    let out = w.refine(&["query", "//...", "--output", "xml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn huge_file_loads() {
    let mut text = String::with_capacity(8 << 20);
    for i in 0..40_000 {
        text.push_str(&format!(
            "pack \"p{i}\" {{\n    version \"1\"\n    recipe \"r.sh\"\n}}\n"
        ));
    }
    let w = ws(&[("rules/big.kdl", &text)]);
    let out = w.refine(&["query", "//big:all"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 40_000);
}

#[test]
fn bad_input_writes_nothing() {
    let w = ws(&[("rules/wheels.kdl", "whel \"w\" {}\n")]);
    let before = list_tree(w.path());
    let out = w.refine(&["query", "//..."]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(before, list_tree(w.path()), "a failed load changed files");
}

fn list_tree(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs_err::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), fs_err::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

// ---- What works. ----

#[test]
fn matrix_expansion_and_repairs() {
    let w = ws(&[
        ("rules/wheels.kdl", &wheel("    python \"3.11\" \"3.12\"\n")),
        (
            "rules/repairs.kdl",
            "repair \"w\" {\n    wheel \"//wheels:w\"\n}\n",
        ),
    ]);
    let out = w.refine(&["query", "kind(wheel, //...) + kind(repair, //...)"]);
    assert_eq!(
        stdout(&out),
        "//repairs:w-py311\n//repairs:w-py312\n//wheels:w-py311\n//wheels:w-py312\n",
        "{}",
        stderr(&out)
    );
    // Each wheel variant gets the runtime variant of its own Python version.
    let out = w.refine(&["query", "deps(//repairs:w-py312) ^ kind(runtime, //...)"]);
    assert_eq!(stdout(&out), "//runtimes:py-py312\n");
}

#[test]
fn query_operators() {
    let w = ws(&[(
        "rules/wheels.kdl",
        &wheel("    python \"3.11\" \"3.12\"\n    packs \"//packs:yaml\"\n"),
    )]);
    let q = |e: &str| stdout(&w.refine(&["query", e]));
    assert_eq!(
        q("rdeps(//..., //packs:yaml)"),
        "//packs:yaml\n//wheels:w-py311\n//wheels:w-py312\n"
    );
    assert_eq!(
        q("rdeps(//wheels/..., //packs:yaml)"),
        "//wheels:w-py311\n//wheels:w-py312\n"
    );
    assert_eq!(
        q("deps(//wheels:w-py311) - //wheels:all"),
        "//bases:deb\n//packs:yaml\n//runtimes:py-py311\n"
    );
    assert_eq!(q("//wheels:all ^ //wheels:w-py312"), "//wheels:w-py312\n");
    assert_eq!(
        q("kind(base, //...) union //packs:yaml"),
        "//bases:deb\n//bases:deb-x86\n//packs:yaml\n"
    );
    assert_eq!(
        q("(//wheels:all - //wheels:w-py311) + //packs:all"),
        "//packs:yaml\n//wheels:w-py312\n"
    );
}

#[test]
fn query_json_and_dot() {
    let w = ws(&[("rules/wheels.kdl", &wheel("    python \"3.11\"\n"))]);
    let out = w.refine(&["query", "deps(//wheels:w-py311)", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 3);
    let wheel = list
        .iter()
        .find(|t| t["label"] == "//wheels:w-py311")
        .unwrap();
    assert_eq!(wheel["kind"], "wheel");
    assert_eq!(wheel["deps"], serde_json::json!(["//runtimes:py-py311"]));
    assert_eq!(wheel["location"], "rules/wheels.kdl:1:1");
    let dot = stdout(&w.refine(&["graph", "//wheels:w-py311"]));
    assert!(dot.starts_with("digraph refine {"), "{dot}");
    assert!(
        dot.contains("\"//runtimes:py-py311\" -> \"//wheels:w-py311\";"),
        "{dot}"
    );
    assert!(
        dot.contains("\"//bases:deb\" -> \"//runtimes:py-py311\";"),
        "{dot}"
    );
}

#[test]
fn catalog_adds_packs_by_source_name() {
    let w = ws(&[
        (
            "catalog/native.kdl",
            "source \"markup*\" {\n    packs \"//packs:yaml\"\n}\n",
        ),
        ("rules/wheels.kdl", &wheel("    python \"3.11\"\n")),
    ]);
    let out = w.refine(&["query", "deps(//wheels:w-py311) ^ kind(pack, //...)"]);
    assert_eq!(stdout(&out), "//packs:yaml\n", "{}", stderr(&out));
}

#[test]
fn works_from_a_subfolder_and_nested_packages() {
    let w = ws(&[("rules/wheels/sci.kdl", &wheel("    python \"3.11\"\n"))]);
    fs_err::create_dir_all(w.path().join("deep/er")).unwrap();
    let out = run_refine(&w.path().join("deep/er"), &["query", "//wheels/..."]);
    assert_eq!(stdout(&out), "//wheels/sci:w-py311\n", "{}", stderr(&out));
}

#[test]
fn fmt_check_and_write() {
    let w = ws(&[(
        "rules/wheels.kdl",
        "// keep me\nwheel   \"w\"{\n source pypi=\"MarkupSafe\" version=\"3.0.2\" sha256=\"ee55d3edf80167e48ea11a923c7386f4669df67d7994554387f84e7d8b0a2bf0\" // and me\n  python \"3.11\"\n      runtime \"//runtimes:py\"\n}\n",
    )]);
    let out = w.refine(&["fmt", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("rules/wheels.kdl"));
    let out = w.refine(&["fmt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = fs_err::read_to_string(w.path().join("rules/wheels.kdl")).unwrap();
    assert!(
        text.contains("// keep me") && text.contains("// and me"),
        "{text}"
    );
    assert!(text.contains("\n    python \"3.11\"\n"), "{text}");
    assert_eq!(w.refine(&["fmt", "--check"]).status.code(), Some(0));
    // Formatting does not change what the rules mean.
    assert_eq!(stdout(&w.refine(&["query", "//..."])).lines().count(), 6);
}

#[test]
fn repo_workspace_is_valid_and_formatted() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run_refine(root, &["query", "//..."]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let labels = stdout(&out);
    for want in [
        "//bases:bookworm-s390x",
        "//bases:manylinux_2_28-s390x",
        "//runtimes:cpython-py311",
        "//runtimes:cpython-py313",
        "//packs:libyaml",
        "//packs:libffi",
        "//packs:openblas",
        "//wheels:numpy-py312",
        "//wheels:markupsafe-py311",
        "//wheels:msgpack-py311",
        "//wheels:cffi-py311",
        // Repairs are declared with their wheels (they were //repairs:pyyaml-py311, ...).
        "//wheels:pyyaml-repaired-py311",
    ] {
        assert!(
            labels.lines().any(|l| l == want),
            "missing {want} in\n{labels}"
        );
    }
    let deps = stdout(&run_refine(
        root,
        &[
            "query",
            "deps(//wheels:pyyaml-py311) ^ kind(pack, //...) - deps(//runtimes:cpython-py311)",
        ],
    ));
    assert_eq!(
        deps, "//packs:libyaml\n",
        "the catalog adds libyaml to pyyaml"
    );
    let out = run_refine(root, &["fmt", "--check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn completions_are_generated() {
    let w = ws(&[]);
    let out = w.refine(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("refine"));
}

/// The rule-file cache holds what a rule file says, not whether its recipe still exists: a
/// recipe removed after a cached load is still reported.
#[test]
fn a_recipe_removed_after_a_cached_load_is_reported() {
    let cache = tempfile::tempdir().unwrap();
    let w = ws(&[]);
    let run = || {
        std::process::Command::new(refine_bin())
            .args(["query", "//..."])
            .current_dir(w.path())
            .env("NO_COLOR", "1")
            .env("REFINE_RULES_CACHE", cache.path())
            .output()
            .unwrap()
    };
    let first = run();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(fs_err::read_dir(cache.path()).unwrap().next().is_some());
    fs_err::remove_file(w.path().join("recipes/yaml.sh")).unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("Recipe `recipes/yaml.sh` does not exist")
            && err.contains("[rules/packs.kdl:3:12]"),
        "{err}"
    );
}

/// Every entry the repo's own workspace (every kind, request locks, toolchains, platforms)
/// writes to the cache is read back: a second load rewrites none of them. An entry that did
/// not decode would be a silent miss, parsed and written again.
#[test]
fn the_repos_own_workspace_is_read_back_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let run = || {
        std::process::Command::new(refine_bin())
            .args(["query", "//...", "--output", "json"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("NO_COLOR", "1")
            .env("REFINE_RULES_CACHE", cache.path())
            .output()
            .unwrap()
    };
    let entries = || {
        let mut found = Vec::new();
        for sub in fs_err::read_dir(cache.path()).unwrap() {
            for entry in fs_err::read_dir(sub.unwrap().path()).unwrap() {
                let entry = entry.unwrap();
                let meta = entry.metadata().unwrap();
                found.push((
                    entry.file_name(),
                    std::os::unix::fs::MetadataExt::ino(&meta),
                ));
            }
        }
        found.sort();
        found
    };
    let first = run();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let written = entries();
    let files = glob_rule_files(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    assert_eq!(
        written.len(),
        files,
        "an entry for each rule file and request lock"
    );
    let second = run();
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert_eq!(
        first.stdout, second.stdout,
        "a cached load answers the same"
    );
    assert_eq!(written, entries(), "no entry was missed and written again");
}

/// How many rule files (`rules/**.kdl`) and request locks (`requests/*.lock`) a workspace
/// holds: what the cache keeps an entry for.
fn glob_rule_files(root: &std::path::Path) -> usize {
    let mut n = 0;
    for dir in ["rules", "requests"] {
        let mut stack = vec![root.join(dir)];
        while let Some(d) = stack.pop() {
            for e in fs_err::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p
                    .extension()
                    .is_some_and(|x| x == if dir == "rules" { "kdl" } else { "lock" })
                {
                    n += 1;
                }
            }
        }
    }
    n
}

#[test]
fn cached_rule_files_point_errors_at_the_right_place() {
    let cache = tempfile::tempdir().unwrap();
    let w = ws(&[(
        "rules/wheels.kdl",
        &wheel("    python \"3.11\"\n    packs \"//packs:yaml\"\n"),
    )]);
    let run = |args: &[&str]| {
        std::process::Command::new(refine_bin())
            .args(args)
            .current_dir(w.path())
            .env("NO_COLOR", "1")
            .env("REFINE_RULES_CACHE", cache.path())
            .output()
            .unwrap()
    };
    let first = run(&["query", "//...", "--output", "json"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(
        fs_err::read_dir(cache.path()).unwrap().next().is_some(),
        "the cache was filled"
    );
    let second = run(&["query", "//...", "--output", "json"]);
    assert_eq!(
        first.stdout, second.stdout,
        "a cached load answers the same"
    );
    // A new file sorts before wheels.kdl (file ids shift), and the pack the cached wheel
    // rule names goes away: the error must still point into rules/wheels.kdl.
    fs_err::write(
        w.path().join("rules/aaa.kdl"),
        "pack \"z\" {\n    version \"1\"\n    recipe \"r.sh\"\n}\n",
    )
    .unwrap();
    fs_err::write(
        w.path().join("rules/packs.kdl"),
        "pack \"yml\" {\n    version \"1\"\n    recipe \"r.sh\"\n}\n",
    )
    .unwrap();
    let out = run(&["query", "//..."]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("[rules/wheels.kdl:5:11]") && err.contains("Unknown target `//packs:yaml`"),
        "{err}"
    );
}
