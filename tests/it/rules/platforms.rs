//! Platform matrices, repairs declared with their wheel, and names that do not trap: what
//! they expand to, how references resolve, and a snapshot of each new diagnostic.

use super::{bad, bad_with, ws};
use crate::common::*;

/// The shared header with a second platform, on the `deb-x86` base.
fn header(defaults: &str) -> String {
    WORKSPACE
        .replace(
            "defaults {\n",
            "platform \"x86_64\" arch=\"x86_64\" policy=\"manylinux_2_28\" base=\"//bases:deb-x86\"\ndefaults {\n",
        )
        .replace("    platform \"s390x\"\n", &format!("    platform \"s390x\"\n{defaults}"))
}

const BOTH_RUNTIMES: &str = "runtime \"py\" {\n    platforms \"s390x\" \"x86_64\"\n    python \"3.11\" adopt=\"/usr/bin/python3.11\"\n    python \"3.12\" adopt=\"/usr/bin/python3.12\"\n}\n";

const BOTH_PACKS: &str = "pack \"yaml\" {\n    platforms \"s390x\" \"x86_64\"\n    version \"0.2.5\"\n    recipe \"recipes/yaml.sh\"\n    on \"x86_64\" {\n        env \"TARGET\" \"HASWELL\"\n    }\n}\n";

fn wheel(name: &str, body: &str) -> String {
    format!(
        "wheel \"{name}\" {{\n    source pypi=\"MarkupSafe\" version=\"3.0.2\" sha256=\"{SHA}\"\n    runtime \"//runtimes:py\"\n{body}}}\n"
    )
}

/// A workspace with two platforms, runtimes and packs over both, and `extra` files.
fn two_platforms(extra: &[(&str, &str)]) -> TempWorkspace {
    let head = header("");
    let mut files: Vec<(&str, &str)> = vec![
        ("workspace.kdl", &head),
        ("rules/runtimes.kdl", BOTH_RUNTIMES),
        ("rules/packs.kdl", BOTH_PACKS),
    ];
    files.retain(|(p, _)| !extra.iter().any(|(e, _)| e == p));
    files.extend(extra.iter().copied());
    ws(&files)
}

fn lines(out: &std::process::Output) -> Vec<String> {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    stdout(out).lines().map(str::to_string).collect()
}

#[test]
fn variants_are_named_rule_platform_python() {
    let w = two_platforms(&[(
        "rules/wheels.kdl",
        &wheel(
            "w",
            "    platforms \"s390x\" \"x86_64\"\n    python \"3.11\"\n    packs \"//packs:yaml\"\n    repair strip=#true\n",
        ),
    )]);
    assert_eq!(
        lines(&w.refine(&["query", "//... - //bases:all"])),
        [
            "//packs:yaml",
            "//packs:yaml-x86_64",
            "//runtimes:py-py311",
            "//runtimes:py-py312",
            "//runtimes:py-x86_64-py311",
            "//runtimes:py-x86_64-py312",
            "//wheels:w-py311",
            "//wheels:w-repaired-py311",
            "//wheels:w-repaired-x86_64-py311",
            "//wheels:w-x86_64-py311",
        ]
    );
    // Each variant's references go to the variants of its own platform and Python.
    assert_eq!(
        lines(&w.refine(&["query", "deps(//wheels:w-repaired-x86_64-py311)"])),
        [
            "//bases:deb-x86",
            "//packs:yaml-x86_64",
            "//runtimes:py-x86_64-py311",
            "//wheels:w-repaired-x86_64-py311",
            "//wheels:w-x86_64-py311",
        ]
    );
    assert_eq!(
        lines(&w.refine(&["query", "platform(s390x, //wheels:all)"])),
        ["//wheels:w-py311", "//wheels:w-repaired-py311"]
    );
    let out = w.refine(&["query", "//wheels:w-x86_64-py311", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["platform"], "x86_64");
    assert_eq!(v[0]["rule"], "w");
}

#[test]
fn the_default_platform_set_stands_in_for_rules_that_name_none() {
    let head = header("    platforms \"s390x\" \"x86_64\"\n");
    let runtimes = BOTH_RUNTIMES.replace("    platforms \"s390x\" \"x86_64\"\n", "");
    let w = two_platforms(&[
        ("workspace.kdl", &head),
        ("rules/runtimes.kdl", &runtimes),
        ("rules/wheels.kdl", &wheel("w", "    python \"3.12\"\n")),
    ]);
    assert_eq!(
        lines(&w.refine(&["query", "kind(wheel, //...) + kind(runtime, //...)"])),
        [
            "//runtimes:py-py311",
            "//runtimes:py-py312",
            "//runtimes:py-x86_64-py311",
            "//runtimes:py-x86_64-py312",
            "//wheels:w-py312",
            "//wheels:w-x86_64-py312",
        ]
    );
}

#[test]
fn a_matrix_rule_with_one_variant_answers_to_its_bare_name() {
    let w = two_platforms(&[
        ("rules/wheels.kdl", &wheel("w", "    python \"3.12\"\n")),
        (
            "rules/repairs.kdl",
            // A repair of one wheel variant takes the variant's suffixes.
            "repair \"fix\" {\n    wheel \"//wheels:w-py312\"\n}\n",
        ),
    ]);
    assert_eq!(
        lines(&w.refine(&["query", "//wheels:w"])),
        ["//wheels:w-py312"]
    );
    assert_eq!(
        lines(&w.refine(&["query", "//repairs:all"])),
        ["//repairs:fix-py312"]
    );
    assert_eq!(
        lines(&w.refine(&["query", "deps(//repairs:fix) ^ kind(wheel, //...)"])),
        ["//wheels:w-py312"]
    );
}

#[test]
fn a_wheel_without_platforms_follows_its_runtime() {
    // It is built for the default platform, where its runtime is a matrix over several.
    let w = two_platforms(&[(
        "rules/wheels.kdl",
        &wheel("w", "    python \"3.11\"\n    packs \"//packs:yaml\"\n"),
    )]);
    assert_eq!(
        lines(&w.refine(&["query", "deps(//wheels:w-py311) - //bases:all"])),
        ["//packs:yaml", "//runtimes:py-py311", "//wheels:w-py311"]
    );
    assert_eq!(
        lines(&w.refine(&["query", "platform(s390x, //wheels:all)"])),
        ["//wheels:w-py311"]
    );
}

#[test]
fn a_repair_rule_may_repair_some_platforms_only() {
    let w = two_platforms(&[
        (
            "rules/wheels.kdl",
            &wheel(
                "w",
                "    platforms \"s390x\" \"x86_64\"\n    python \"3.11\"\n",
            ),
        ),
        (
            "rules/repairs.kdl",
            "repair \"w\" {\n    wheel \"//wheels:w\"\n    platforms \"x86_64\"\n    strip #true\n}\n",
        ),
    ]);
    assert_eq!(
        lines(&w.refine(&["query", "//repairs:all"])),
        ["//repairs:w-x86_64-py311"]
    );
}

#[test]
fn requires_built_takes_the_repair_of_the_same_platform_and_python() {
    // `b` builds against `a`'s repaired wheel: per variant, the repair of its own platform
    // and Python version becomes a dependency.
    let a = wheel(
        "a",
        "    platforms \"s390x\" \"x86_64\"\n    python \"3.11\" \"3.12\"\n    repair\n",
    );
    let b = wheel(
        "b",
        "    platforms \"s390x\" \"x86_64\"\n    python \"3.11\" \"3.12\"\n    requires-built \"//wheels:a-repaired\"\n",
    );
    let w = two_platforms(&[("rules/wheels.kdl", &format!("{a}\n{b}"))]);
    assert_eq!(
        lines(&w.refine(&[
            "query",
            "deps(//wheels:b-x86_64-py312) - deps(//runtimes:all)"
        ])),
        [
            "//wheels:a-repaired-x86_64-py312",
            "//wheels:a-x86_64-py312",
            "//wheels:b-x86_64-py312"
        ]
    );
    assert_eq!(
        lines(&w.refine(&["query", "rdeps(//..., //wheels:a-repaired-py311)"])),
        ["//wheels:a-repaired-py311", "//wheels:b-py311"]
    );
}

#[test]
fn requires_built_names_a_wheel_not_its_repair() {
    let a = wheel("a", "    python \"3.11\"\n    repair\n");
    let b = wheel(
        "b",
        "    python \"3.11\"\n    requires-built \"//wheels:a\"\n",
    );
    bad2(
        "requires_built_names_a_wheel",
        &[("rules/wheels.kdl", &format!("{a}\n{b}"))],
    );
}

#[test]
fn fmt_keeps_the_new_fields() {
    let messy = format!(
        "wheel   \"w\"{{\n  platforms  \"s390x\"   \"x86_64\"\n source pypi=\"MarkupSafe\" version=\"3.0.2\" sha256=\"{SHA}\"\n  python \"3.11\"\n      runtime \"//runtimes:py\"\n on \"x86_64\"{{\n env \"A\"   \"1\" // x86 only\n}}\n  repair   policy=\"manylinux_2_28\"   strip=#true\n}}\n"
    );
    let w = two_platforms(&[("rules/wheels.kdl", &messy)]);
    let before = stdout(&w.refine(&["query", "//..."]));
    let out = w.refine(&["fmt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = fs_err::read_to_string(w.path().join("rules/wheels.kdl")).unwrap();
    assert_eq!(
        text,
        format!(
            "wheel \"w\" {{\n    platforms \"s390x\" \"x86_64\"\n    source pypi=\"MarkupSafe\" version=\"3.0.2\" sha256=\"{SHA}\"\n    python \"3.11\"\n    runtime \"//runtimes:py\"\n    on \"x86_64\" {{\n        env \"A\" \"1\" // x86 only\n    }}\n    repair policy=\"manylinux_2_28\" strip=#true\n}}\n"
        )
    );
    assert_eq!(w.refine(&["fmt", "--check"]).status.code(), Some(0));
    assert_eq!(stdout(&w.refine(&["query", "//..."])), before);
}

// ---- Bad input. ----

/// As [`bad`], on the two-platform workspace.
fn bad2(name: &str, extra: &[(&str, &str)]) {
    bad2_with(name, extra, &["query", "//..."]);
}

fn bad2_with(name: &str, extra: &[(&str, &str)], args: &[&str]) {
    let head = header("");
    let mut files: Vec<(&str, &str)> = vec![
        ("workspace.kdl", &head),
        ("rules/runtimes.kdl", BOTH_RUNTIMES),
        ("rules/packs.kdl", BOTH_PACKS),
    ];
    files.retain(|(p, _)| !extra.iter().any(|(e, _)| e == p));
    files.extend(extra.iter().copied());
    bad_with(name, &files, args);
}

#[test]
fn platforms_unknown_platform() {
    bad2(
        "platforms_unknown_platform",
        &[(
            "rules/packs.kdl",
            "pack \"yaml\" {\n    platforms \"s390x\" \"x86\"\n    version \"1\"\n    recipe \"r.sh\"\n}\n",
        )],
    );
}

#[test]
fn platform_listed_twice() {
    bad2(
        "platform_listed_twice",
        &[(
            "rules/packs.kdl",
            "pack \"yaml\" {\n    platforms \"s390x\" \"x86_64\" \"s390x\"\n    version \"1\"\n    recipe \"r.sh\"\n}\n",
        )],
    );
}

#[test]
fn platforms_and_base() {
    bad2(
        "platforms_and_base",
        &[(
            "rules/packs.kdl",
            "pack \"yaml\" {\n    base \"//bases:deb\"\n    platforms \"s390x\"\n    version \"1\"\n    recipe \"r.sh\"\n}\n",
        )],
    );
}

#[test]
fn reference_lacks_the_platform() {
    // The runtime is built for s390x only; the wheel wants it on x86_64 too.
    bad2(
        "reference_lacks_the_platform",
        &[
            (
                "rules/runtimes.kdl",
                "runtime \"py\" {\n    python \"3.11\" adopt=\"/usr/bin/python3.11\"\n}\n",
            ),
            (
                "rules/wheels.kdl",
                &wheel(
                    "w",
                    "    platforms \"s390x\" \"x86_64\"\n    python \"3.11\"\n",
                ),
            ),
        ],
    );
}

#[test]
fn repair_child_on_a_pack() {
    bad2(
        "repair_child_on_a_pack",
        &[(
            "rules/packs.kdl",
            "pack \"yaml\" {\n    version \"1\"\n    recipe \"r.sh\"\n    repair strip=#true\n}\n",
        )],
    );
}

#[test]
fn on_block_names_another_platform() {
    bad2(
        "on_block_names_another_platform",
        &[(
            "rules/packs.kdl",
            "pack \"yaml\" {\n    platforms \"s390x\"\n    version \"1\"\n    recipe \"r.sh\"\n    on \"x86_64\" {\n        env \"TARGET\" \"HASWELL\"\n    }\n}\n",
        )],
    );
}

#[test]
fn on_block_holds_a_field_for_all_platforms() {
    bad2(
        "on_block_holds_a_field_for_all_platforms",
        &[(
            "rules/packs.kdl",
            "pack \"yaml\" {\n    platforms \"s390x\" \"x86_64\"\n    recipe \"r.sh\"\n    on \"x86_64\" {\n        version \"1\"\n    }\n}\n",
        )],
    );
}

#[test]
fn on_block_repeats_a_variable() {
    bad2(
        "on_block_repeats_a_variable",
        &[(
            "rules/packs.kdl",
            "pack \"yaml\" {\n    platforms \"s390x\" \"x86_64\"\n    version \"1\"\n    recipe \"r.sh\"\n    env \"TARGET\" \"GENERIC\"\n    on \"x86_64\" {\n        env \"TARGET\" \"HASWELL\"\n    }\n}\n",
        )],
    );
}

#[test]
fn strip_is_not_a_boolean() {
    bad2(
        "strip_is_not_a_boolean",
        &[(
            "rules/wheels.kdl",
            &wheel("w", "    python \"3.11\"\n    repair strip=\"yes\"\n"),
        )],
    );
}

#[test]
fn inline_repair_with_a_name() {
    bad2(
        "inline_repair_with_a_name",
        &[(
            "rules/wheels.kdl",
            &wheel("w", "    python \"3.11\"\n    repair \"w-fixed\"\n"),
        )],
    );
}

#[test]
fn repair_platforms_the_wheel_lacks() {
    bad2(
        "repair_platforms_the_wheel_lacks",
        &[
            (
                "rules/wheels.kdl",
                &wheel("w", "    platforms \"s390x\"\n    python \"3.11\"\n"),
            ),
            (
                "rules/repairs.kdl",
                "repair \"w\" {\n    wheel \"//wheels:w\"\n    platforms \"x86_64\"\n}\n",
            ),
        ],
    );
}

#[test]
fn did_you_mean_names_the_matrix_rule() {
    // Not `//wheels:pyyaml-py311`: a repair naming the rule gets a target per variant.
    bad2(
        "did_you_mean_names_the_matrix_rule",
        &[
            (
                "rules/wheels.kdl",
                &wheel("pyyaml", "    python \"3.11\"\n"),
            ),
            (
                "rules/repairs.kdl",
                "repair \"pyyaml\" {\n    wheel \"//wheels:pyyml\"\n}\n",
            ),
        ],
    );
}

#[test]
fn default_platform_set_without_the_default() {
    let head = header("").replace(
        "    platform \"s390x\"\n",
        "    platform \"s390x\"\n    platforms \"x86_64\" \"ppc\"\n",
    );
    bad2(
        "default_platform_set_without_the_default",
        &[("workspace.kdl", &head)],
    );
}

#[test]
fn query_unknown_platform() {
    bad2_with(
        "query_unknown_platform",
        &[],
        &["query", "platform(x86, //...)"],
    );
}

#[test]
fn query_explains_a_matrix_rule() {
    bad2_with(
        "query_explains_a_matrix_rule",
        &[],
        &["query", "//runtimes:py"],
    );
}

#[test]
fn an_unknown_platform_in_a_one_platform_workspace() {
    bad(
        "platforms_in_a_one_platform_workspace",
        &[(
            "rules/packs.kdl",
            "pack \"yaml\" {\n    platforms \"s390x\" \"x86_64\"\n    version \"1\"\n    recipe \"r.sh\"\n}\n",
        )],
    );
}

#[test]
fn the_repo_workspace_writes_each_rule_once() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let q = |e: &str| lines(&run_refine(root, &["query", e]));
    // What used to be `-host` and `-x86_64` copies are the rules' x86_64 variants.
    for want in [
        "//packs:libyaml-x86_64",
        "//packs:openblas-x86_64",
        "//runtimes:cpython-x86_64-py311",
        "//runtimes:debian-python-x86_64-py311",
        "//wheels:pyyaml-debian-x86_64-py311",
        "//wheels:pyyaml-debian-repaired-x86_64-py311",
        "//wheels:numpy-debian-repaired-x86_64-py311",
        "//wheels:hello-x86_64-py311",
    ] {
        assert_eq!(q(want), [want]);
    }
    // Each variant gets its own platform's packs, from the rule and from the catalog.
    assert_eq!(
        q("deps(//wheels:numpy-debian-x86_64-py311) ^ kind(pack, //...)"),
        ["//packs:lapack-x86_64", "//packs:openblas-x86_64"]
    );
    assert_eq!(
        q("deps(//wheels:pyyaml-debian-py311) ^ kind(pack, //...)"),
        ["//packs:libyaml"]
    );
    assert_eq!(
        q("deps(//wheels:pyyaml-debian-x86_64-py311) ^ kind(pack, //...)"),
        ["//packs:libyaml-x86_64"]
    );
    // No rule file holds a repair rule any more: every repair is its wheel's. (The demo
    // build request's repairs, `//requests/...`, come from no rule file.)
    assert!(q("kind(repair, //...) - //wheels:all - //requests/...").is_empty());
    // Five wheels on CPython 3.11-3.13 and four on Debian's 3.11, repaired for x86_64 too;
    // the floor checks' two wheels are for s390x-2_31 only.
    assert_eq!(
        q("platform(x86_64, kind(repair, //...) - //requests/...)").len(),
        5 * 3 + 4
    );
    assert_eq!(
        q("platform(s390x-2_31, kind(repair, //...) - //requests/...)").len(),
        5 * 3 + 4 + 2
    );
}
