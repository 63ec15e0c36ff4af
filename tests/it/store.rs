//! CLI-level tests of the local store: `refine fetch --import`, `refine store verify|gc`,
//! skopeo reading what refine wrote, and several processes writing one store at once.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use refine_engine::store::{ArtifactInput, Digest, Kind, LocalStore, VerifyOptions};

const KEY_A: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const KEY_B: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";

fn refine(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_refine"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("REFINE_STORE")
        .env("NO_COLOR", "1")
        .output()
        .expect("run refine")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Redacts the temporary folder from rendered output and undoes miette's line wrapping
/// (which depends on the length of that folder's name).
fn redact(s: &str, tmp: &Path) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let trimmed = line.trim_start();
        let continuation =
            trimmed.starts_with("│ ") || (line.starts_with("        ") && !out.is_empty());
        if continuation {
            out.push(' ');
            out.push_str(trimmed.trim_start_matches("│ ").trim_start());
        } else {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(line);
        }
    }
    out.replace(&tmp.display().to_string(), "[TMP]")
}

fn sample_tree(root: &Path, payload: &str) {
    fs::create_dir_all(root.join("lib/pkg")).unwrap();
    fs::write(root.join("lib/pkg/__init__.py"), payload).unwrap();
    fs::write(root.join("run.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("lib/pkg", root.join("pkg")).unwrap();
}

fn put_wheel(store: &LocalStore, dir: &Path, key: &str, payload: &str) -> Digest {
    let tree = dir.join(format!("tree-{key}"));
    sample_tree(&tree, payload);
    let whl = dir.join(format!("demo-{key}.whl"));
    fs::write(&whl, format!("wheel {payload}")).unwrap();
    let input = ArtifactInput::new(Kind::Wheel, key, "//wheels:demo-py312")
        .tree(&tree)
        .file(&whl, "demo-1.0-cp312-cp312-linux_s390x.whl")
        .key_fields(serde_json::json!({"python": "3.12"}));
    store.put_artifact(&input).unwrap()
}

fn skopeo(args: &[&str]) -> Output {
    match Command::new("skopeo").args(args).output() {
        Ok(out) => out,
        Err(e) => panic!("skopeo is needed by this test ({e}): apt-get install skopeo"),
    }
}

#[test]
fn skopeo_reads_a_tag_refine_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LocalStore::open(&dir).unwrap();
    let digest = put_wheel(&store, tmp.path(), KEY_A, "x = 1\n");
    drop(store); // as at the end of a command: index.json is synced

    let layout = format!("oci:{}:{KEY_A}", dir.display());
    let out = skopeo(&["inspect", "--raw", &layout]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        Digest::of_bytes(&out.stdout),
        digest,
        "skopeo found another manifest"
    );
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(manifest["artifactType"], "application/vnd.refine.wheel.v1");
    assert_eq!(manifest["annotations"]["dev.refine.key"], KEY_A);

    // `skopeo copy` fetches and checks every blob against its digest.
    let copy = format!("oci:{}:{KEY_A}", tmp.path().join("copy").display());
    let out = skopeo(&["copy", "--quiet", &layout, &copy]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = skopeo(&["inspect", "--raw", &copy]);
    assert_eq!(Digest::of_bytes(&out.stdout), digest);

    let out = refine(&dir, &["store", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn fetch_import_with_the_right_sha256_stores_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let file = tmp.path().join("demo-1.0.tar.gz");
    fs::write(&file, "pretend sdist").unwrap();
    let digest = Digest::of_bytes(b"pretend sdist");

    let out = refine(
        &store,
        &[
            "fetch",
            "--import",
            file.to_str().unwrap(),
            "--sha256",
            &digest.hex(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{digest}  {}\n", file.display()));
    let stored = store.join("blobs/sha256").join(digest.hex());
    assert_eq!(fs::read(stored).unwrap(), b"pretend sdist");

    // Without --sha256, and with the `sha256:` form, too.
    let out = refine(&store, &["fetch", "--import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = refine(
        &store,
        &[
            "fetch",
            "--import",
            file.to_str().unwrap(),
            "--sha256",
            &digest.to_string(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Pinned: gc keeps it.
    let out = refine(&store, &["store", "gc"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(store.join("blobs/sha256").join(digest.hex()).exists());
}

#[test]
fn fetch_import_with_a_wrong_sha256_stores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let file = tmp.path().join("demo-1.0.tar.gz");
    fs::write(&file, "pretend sdist").unwrap();
    let wrong = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    let out = refine(
        &store,
        &[
            "fetch",
            "--import",
            file.to_str().unwrap(),
            "--sha256",
            wrong,
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("sha256:{wrong}")), "{stderr}");
    assert!(
        stderr.contains(&Digest::of_bytes(b"pretend sdist").to_string()),
        "{stderr}"
    );
    insta::assert_snapshot!("fetch_import_wrong_sha256", redact(&stderr, tmp.path()));
    assert_eq!(fs::read_dir(store.join("blobs/sha256")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(store.join("tmp")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(store.join("pins")).unwrap().count(), 0);

    // Not a digest at all, and a count that does not match: usage errors.
    let out = refine(
        &store,
        &[
            "fetch",
            "--import",
            file.to_str().unwrap(),
            "--sha256",
            "xyz",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`xyz` is not a sha256 digest"));
    let out = refine(
        &store,
        &[
            "fetch",
            "--import",
            file.to_str().unwrap(),
            "--import",
            file.to_str().unwrap(),
            "--sha256",
            wrong,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = refine(
        &store,
        &[
            "fetch",
            "--import",
            tmp.path().join("absent").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x20;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(path, bytes).unwrap();
}

#[test]
fn verify_names_a_blob_with_a_flipped_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let file = tmp.path().join("src.tar.gz");
    fs::write(&file, "some source bytes").unwrap();
    let out = refine(&store, &["fetch", "--import", file.to_str().unwrap()]);
    assert!(out.status.success());
    let digest = Digest::of_bytes(b"some source bytes");
    assert!(refine(&store, &["store", "verify"]).status.success());

    flip_byte(&store.join("blobs/sha256").join(digest.hex()), 3);
    let out = refine(&store, &["store", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("problem: Blob `{digest}` is corrupt")),
        "{stderr}"
    );
    insta::assert_snapshot!("verify_flipped_byte", redact(&stderr, tmp.path()));

    let out = refine(&store, &["store", "verify", "--fix"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(refine(&store, &["store", "verify"]).status.success());
}

#[test]
fn verify_names_a_missing_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LocalStore::open(&dir).unwrap();
    let digest = put_wheel(&store, tmp.path(), KEY_A, "x = 1\n");
    let layer = store.read_manifest(&digest).unwrap().layers[1].digest;
    drop(store);
    fs::remove_file(dir.join("blobs/sha256").join(layer.hex())).unwrap();

    let out = refine(&dir, &["store", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "problem: Ref `wheel/{KEY_A}` points at manifest `{digest}`, whose layer `{layer}` is missing"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("problem: Tag `{KEY_A}` in `index.json`")),
        "{stderr}"
    );
}

fn age(path: &Path, secs: u64) {
    let f = fs::File::open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(secs))
        .unwrap();
}

fn ref_path(store: &Path, key: &str) -> PathBuf {
    store.join("refs/wheel").join(&key[..2]).join(key)
}

#[test]
fn gc_removes_unreachable_blobs_and_evicts_by_age_and_size() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let store = LocalStore::open(&dir).unwrap();
    let a = put_wheel(&store, tmp.path(), KEY_A, &"a".repeat(50_000));
    let b = put_wheel(&store, tmp.path(), KEY_B, &"b".repeat(50_000));
    let loose = store.put_blob_bytes(b"unreachable").unwrap();
    drop(store);
    age(&ref_path(&dir, KEY_A), 3 * 3600);
    age(&ref_path(&dir, KEY_B), 3600);
    let blob = |d: &Digest| dir.join("blobs/sha256").join(d.hex());

    let out = refine(&dir, &["store", "gc", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("Would remove 1 blob(s)"),
        "{}",
        text(&out.stdout)
    );
    assert!(blob(&loose).exists());

    let out = refine(&dir, &["store", "gc"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("Removed 1 blob(s)"),
        "{}",
        text(&out.stdout)
    );
    assert!(!blob(&loose).exists());
    assert!(blob(&a).exists() && blob(&b).exists());

    let out = refine(&dir, &["store", "gc", "--older-than", "2h"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("evicted wheel/{KEY_A}")),
        "{}",
        text(&out.stdout)
    );
    assert!(!blob(&a).exists() && blob(&b).exists());

    // B's blobs are over 1 KiB: a 1 KiB limit evicts it.
    let out = refine(&dir, &["store", "gc", "--max-size", "1KiB"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("evicted wheel/{KEY_B}")),
        "{}",
        text(&out.stdout)
    );
    assert!(!blob(&b).exists());
    let out = refine(&dir, &["store", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"], serde_json::json!([]));

    let out = refine(&dir, &["store", "gc", "--older-than", "soon"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Not a test on its own: the body of a child process of `several_processes_share_a_store`.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var("REFINE_TEST_CHILD_STORE") else {
        return;
    };
    let which: usize = std::env::var("REFINE_TEST_CHILD_INDEX")
        .unwrap()
        .parse()
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&dir).unwrap();
    // Children 0 and 1 write keys 0..30 and 15..45: 15 in common, with identical content.
    for i in which * 15..which * 15 + 30 {
        let key = format!("{i:064x}");
        let tree = work.path().join(&key);
        sample_tree(&tree, &format!("n = {i}\n"));
        let input = ArtifactInput::new(Kind::Pack, &key, format!("//packs:p{i}")).tree(&tree);
        store.put_artifact(&input).unwrap();
        store
            .put_blob_bytes(format!("shared blob {}", i % 10).as_bytes())
            .unwrap();
    }
    store.sync_index().unwrap();
}

#[test]
fn several_processes_share_a_store() {
    let tmp = tempfile::tempdir().unwrap();
    // Not created beforehand: the processes race to create it, too.
    let dir = tmp.path().join("store");
    let files: Vec<PathBuf> = (0..60)
        .map(|i| {
            let p = tmp.path().join(format!("file{i}"));
            fs::write(&p, format!("content {i}\n").repeat(1000 + i)).unwrap();
            p
        })
        .collect();

    let mut children = Vec::new();
    // Two `refine fetch --import` processes over overlapping files (20..40 in both)...
    for range in [0..40, 20..60] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_refine"));
        cmd.arg("--store").arg(&dir).arg("fetch");
        for f in &files[range] {
            cmd.arg("--import").arg(f);
        }
        children.push(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    // ...and two processes storing artifacts with overlapping keys.
    for which in 0..2 {
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "store::child_writer", "--test-threads=1"])
            .env("REFINE_TEST_CHILD_STORE", &dir)
            .env("REFINE_TEST_CHILD_INDEX", which.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
    }
    // ...while gc runs: it must never remove what a writer is about to reference.
    for _ in 0..2 {
        let child = Command::new(env!("CARGO_BIN_EXE_refine"))
            .arg("--store")
            .arg(&dir)
            .args(["store", "gc"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    let out = refine(&dir, &["store", "verify"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let store = LocalStore::open(&dir).unwrap();
    for f in &files {
        let digest = Digest::of_bytes(&fs::read(f).unwrap());
        assert!(store.has_blob(&digest), "{}", f.display());
    }
    let index = store.read_index().unwrap();
    assert_eq!(index.manifests.len(), 45);
    for i in 0..45 {
        assert!(
            store
                .lookup("pack", &format!("{i:064x}"))
                .unwrap()
                .is_some(),
            "{i}"
        );
    }
    let report = store.verify(VerifyOptions::default()).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!((report.refs, report.pins), (45, 60));
    assert_eq!(fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
}

/// Writes `text` to `store/rel`, creating its folder.
fn plant(store: &Path, rel: &str, text: &str) -> PathBuf {
    let path = store.join(rel);
    fs_err::create_dir_all(path.parent().unwrap()).unwrap();
    fs_err::write(&path, text).unwrap();
    path
}

/// A store with something in every folder: an imported source (blob, pin, fetched name), a
/// wheel (manifest, layers, ref, label, tag), its unpacked tree and an unfinished push.
fn populated_store(tmp: &Path) -> (PathBuf, Digest, Digest) {
    let dir = tmp.join("store");
    let file = tmp.join("demo-1.0.tar.gz");
    fs_err::write(&file, "pretend sdist").unwrap();
    let out = refine(&dir, &["fetch", "--import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let source = Digest::of_bytes(b"pretend sdist");
    let store = LocalStore::open(&dir).unwrap();
    let wheel = put_wheel(&store, tmp, KEY_A, "x = 1\n");
    store.unpack(&wheel).unwrap();
    store.outbox_add("wheel", KEY_A, &wheel).unwrap();
    drop(store);
    let out = refine(&dir, &["store", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    (dir, source, wheel)
}

#[test]
fn verify_reports_damage_under_every_store_folder_and_fix_repairs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, source, wheel) = populated_store(tmp.path());
    let missing = Digest::of_bytes(b"never stored");
    let label_file = fs_err::read_dir(dir.join("labels"))
        .unwrap()
        .flat_map(|fan| fs_err::read_dir(fan.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let tree = dir.join("trees").join(wheel.hex());
    fs_err::write(tree.join("lib/pkg/__init__.py"), "x = 2\n").unwrap();
    // One damaged file under every folder, and what `verify` says of it.
    let blob = dir.join("blobs/sha256").join(source.hex());
    flip_byte(&blob, 0);
    let bad_ref = plant(&dir, &format!("refs/wheel/b2/{KEY_B}"), "garbage\n");
    let pin = format!("pins/{}/{}", &missing.hex()[..2], missing.hex());
    plant(&dir, &pin, "source\n");
    let label = fs_err::read(&label_file).unwrap();
    fs_err::write(&label_file, &label[..label.len() / 2]).unwrap();
    plant(&dir, &format!("names/{}", missing.hex()), "gone.whl");
    plant(
        &dir,
        &format!("outbox/pack/{KEY_B}"),
        &format!("{missing}\n"),
    );
    let index = plant(&dir, "index.json", "{\"truncated");
    let shown = |p: &Path| p.display().to_string();
    let damage = [
        ("blobs", format!("Blob `{source}` is corrupt")),
        (
            "refs",
            format!("Ref file `{}` is malformed", shown(&bad_ref)),
        ),
        ("pins", format!("Pinned blob `{missing}` is missing")),
        ("labels", format!("`{}` is malformed", shown(&label_file))),
        (
            "trees",
            format!(
                "Tree `{}` differs from manifest `{wheel}`: `lib/pkg/__init__.py` has other content",
                shown(&tree)
            ),
        ),
        (
            "names",
            format!("is for blob `{missing}`, which is missing"),
        ),
        (
            "outbox",
            format!("Outbox entry `pack/{KEY_B}` points at manifest `{missing}`, which is missing"),
        ),
        ("index.json", format!("`{}` is malformed", shown(&index))),
    ];

    let out = refine(&dir, &["store", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    for (folder, says) in &damage {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("problem: ") && l.contains(says.as_str())),
            "nothing about `{folder}` ({says}):\n{stderr}"
        );
    }

    let out = refine(&dir, &["store", "verify", "--fix"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("Removed "),
        "{}",
        text(&out.stdout)
    );
    let out = refine(&dir, &["store", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("no problems"),
        "{}",
        text(&out.stdout)
    );
    // What was intact is still there; the damaged source went with its pin and name.
    let store = LocalStore::open(&dir).unwrap();
    assert_eq!(store.lookup("wheel", KEY_A).unwrap(), Some(wheel));
    assert_eq!(store.outbox_list().unwrap().len(), 1);
    assert!(!store.has_blob(&source));
    assert_eq!(store.lookup_name(&source).unwrap(), None);

    // A damaged `oci-layout` makes every command refuse the folder, naming the file.
    fs_err::write(dir.join("oci-layout"), "{").unwrap();
    let out = refine(&dir, &["store", "verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("`oci-layout` is not JSON"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn gc_removes_garbage_in_names_and_outbox_and_keeps_what_is_live() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, source, wheel) = populated_store(tmp.path());
    let store = LocalStore::open(&dir).unwrap();
    let old = put_wheel(&store, tmp.path(), KEY_B, "y = 1\n");
    store.outbox_add("wheel", KEY_B, &old).unwrap();
    let loose = store.put_blob_bytes(b"a wheel nobody pinned").unwrap();
    store
        .record_name(&loose, "loose-1.0-py3-none-any.whl")
        .unwrap();
    let missing = Digest::of_bytes(b"never stored");
    store.record_name(&missing, "gone-1.0.tar.gz").unwrap();
    drop(store);
    plant(&dir, &format!("outbox/repair/{KEY_A}"), "not a digest");
    plant(&dir, "tmp/blob-crashed", "partial");
    age(&ref_path(&dir, KEY_B), 3 * 3600);

    let out = refine(&dir, &["store", "gc", "--older-than", "2h"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("evicted wheel/{KEY_B}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "1 temporary file(s), 2 fetched name(s), 0 location record(s), 2 outbox entries"
        ),
        "{stdout}"
    );
    let name = |d: &Digest| dir.join("names").join(d.hex());
    assert!(name(&source).is_file(), "the name of a pinned source stays");
    assert!(!name(&loose).exists() && !name(&missing).exists());
    assert!(
        dir.join("outbox/wheel").join(KEY_A).is_file(),
        "a live artifact's push stays"
    );
    assert!(!dir.join("outbox/wheel").join(KEY_B).exists());
    assert!(!dir.join("outbox/repair").join(KEY_A).exists());
    assert!(!dir.join("tmp/blob-crashed").exists());
    assert!(dir.join("trees").join(wheel.hex()).is_dir());
    let out = refine(&dir, &["store", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
