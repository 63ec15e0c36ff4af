//! Unit tests of the local store.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;

pub(super) const KEY_A: &str = "aa00000000000000000000000000000000000000000000000000000000000001";
pub(super) const KEY_B: &str = "bb00000000000000000000000000000000000000000000000000000000000002";

pub(super) fn store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path().join("store")).unwrap();
    (dir, store)
}

pub(super) fn sample_tree(root: &Path) {
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("lib/empty")).unwrap();
    fs::write(root.join("bin/tool"), "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("lib/data.txt"), "data\n").unwrap();
    symlink("../lib/data.txt", root.join("bin/data")).unwrap();
}

fn wheel_input(tree: &Path, key: &str) -> ArtifactInput {
    ArtifactInput::new(Kind::Wheel, key, "//wheels:demo-py312")
        .tree(tree)
        .key_fields(serde_json::json!({"py_tag": "cp312", "source_digest": "sha256:00"}))
}

#[test]
fn open_creates_a_layout_and_refuses_foreign_folders() {
    let (dir, store) = store();
    assert_eq!(
        fs::read_to_string(store.root().join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    assert!(store.root().join("blobs/sha256").is_dir());
    assert_eq!(store.read_index().unwrap().manifests, vec![]);
    // Reopening is fine.
    LocalStore::open(store.root()).unwrap();

    let foreign = dir.path().join("home");
    fs::create_dir(&foreign).unwrap();
    fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let err = LocalStore::open(&foreign).unwrap_err();
    assert!(matches!(err, StoreError::NotALayout { .. }), "{err}");
}

#[test]
fn resolve_path_prefers_explicit_then_configured() {
    let a = Path::new("/a");
    let b = Path::new("/b");
    assert_eq!(LocalStore::resolve_path(Some(a), Some(b)).unwrap(), a);
    assert_eq!(LocalStore::resolve_path(None, Some(b)).unwrap(), b);
}

#[test]
fn same_tree_same_digest_whatever_the_mtimes() {
    let (dir, s1) = store();
    let (_dir2, s2) = store();
    let t1 = dir.path().join("t1");
    let t2 = dir.path().join("t2");
    sample_tree(&t1);
    sample_tree(&t2);
    let f = fs::File::options()
        .write(true)
        .open(t2.join("lib/data.txt"))
        .unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
        .unwrap();
    let d1 = s1.put_artifact(&wheel_input(&t1, KEY_A)).unwrap();
    let d2 = s2.put_artifact(&wheel_input(&t2, KEY_A)).unwrap();
    assert_eq!(d1, d2);
    // Storing it again is a no-op with the same digest.
    assert_eq!(s1.put_artifact(&wheel_input(&t1, KEY_A)).unwrap(), d1);
    // The layer blobs are identical too.
    assert_eq!(
        s1.read_manifest(&d1).unwrap(),
        s2.read_manifest(&d2).unwrap()
    );

    // The execute bit is content.
    fs::set_permissions(t2.join("lib/data.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    let d3 = s2.put_artifact(&wheel_input(&t2, KEY_A)).unwrap();
    assert_ne!(d1, d3);
    // So is a file's content.
    fs::set_permissions(t2.join("lib/data.txt"), fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(s2.put_artifact(&wheel_input(&t2, KEY_A)).unwrap(), d1);
    fs::write(t2.join("lib/data.txt"), "other\n").unwrap();
    assert_ne!(s2.put_artifact(&wheel_input(&t2, KEY_A)).unwrap(), d1);
}

#[test]
fn manifest_is_an_oci_artifact_manifest() {
    let (dir, s) = store();
    let t = dir.path().join("t");
    sample_tree(&t);
    let whl = dir.path().join("demo-1.0-cp312-cp312-linux_s390x.whl");
    fs::write(&whl, "PK fake wheel").unwrap();
    let input = wheel_input(&t, KEY_A).file(&whl, "demo-1.0-cp312-cp312-linux_s390x.whl");
    let d = s.put_artifact(&input).unwrap();
    let raw: serde_json::Value = serde_json::from_slice(&s.read_blob(&d).unwrap()).unwrap();
    assert_eq!(raw["mediaType"], MANIFEST_MEDIA_TYPE);
    assert_eq!(raw["artifactType"], "application/vnd.refine.wheel.v1");
    assert_eq!(raw["config"]["mediaType"], EMPTY_MEDIA_TYPE);
    assert_eq!(
        raw["config"]["digest"],
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    assert_eq!(raw["config"]["size"], 2);
    assert_eq!(s.read_blob(&Digest::EMPTY_JSON).unwrap(), b"{}");
    assert_eq!(raw["layers"][0]["mediaType"], TAR_ZSTD_MEDIA_TYPE);
    assert_eq!(raw["layers"][1]["mediaType"], FILE_MEDIA_TYPE);
    assert_eq!(
        raw["layers"][1]["annotations"]["org.opencontainers.image.title"],
        "demo-1.0-cp312-cp312-linux_s390x.whl"
    );
    let notes = &raw["annotations"];
    assert_eq!(
        notes["org.opencontainers.image.title"],
        "//wheels:demo-py312"
    );
    assert_eq!(notes["dev.refine.label"], "//wheels:demo-py312");
    assert_eq!(notes["dev.refine.kind"], "wheel");
    assert_eq!(notes["dev.refine.key"], KEY_A);
    assert_eq!(
        notes["dev.refine.key.fields"],
        r#"{"py_tag":"cp312","source_digest":"sha256:00"}"#
    );
}

#[test]
fn put_lookup_and_latest_for_label() {
    let (dir, s) = store();
    let t = dir.path().join("t");
    sample_tree(&t);
    assert_eq!(s.lookup("wheel", KEY_A).unwrap(), None);
    assert_eq!(s.latest_for_label("//wheels:demo-py312").unwrap(), None);
    let a = s.put_artifact(&wheel_input(&t, KEY_A)).unwrap();
    assert_eq!(s.lookup("wheel", KEY_A).unwrap(), Some(a));
    // The kind is part of the ref.
    assert_eq!(s.lookup("repair", KEY_A).unwrap(), None);
    assert_eq!(s.latest_for_label("//wheels:demo-py312").unwrap(), Some(a));

    fs::write(t.join("lib/data.txt"), "changed\n").unwrap();
    let b = s.put_artifact(&wheel_input(&t, KEY_B)).unwrap();
    assert_ne!(a, b);
    assert_eq!(s.lookup("wheel", KEY_A).unwrap(), Some(a));
    assert_eq!(s.lookup("wheel", KEY_B).unwrap(), Some(b));
    let record = s.label_record("//wheels:demo-py312").unwrap().unwrap();
    assert_eq!((record.digest, record.key.as_str()), (b, KEY_B));

    assert!(matches!(
        s.lookup("sdist", KEY_A),
        Err(StoreError::BadKind { .. })
    ));
    assert!(matches!(
        s.lookup("wheel", "abc"),
        Err(StoreError::BadKey { .. })
    ));
    assert!(matches!(
        s.lookup("wheel", &KEY_A.to_uppercase()),
        Err(StoreError::BadKey { .. })
    ));

    // A ref whose manifest vanished is a miss, not an error.
    fs::remove_file(s.blob_path(&a)).unwrap();
    assert_eq!(s.lookup("wheel", KEY_A).unwrap(), None);
}

#[test]
fn sync_index_lists_tags_once_and_keeps_foreign_entries() {
    let (dir, s) = store();
    let t = dir.path().join("t");
    sample_tree(&t);
    let a = s.put_artifact(&wheel_input(&t, KEY_A)).unwrap();
    // Not yet in index.json: refs are the source of truth until the sync.
    assert!(s.read_index().unwrap().manifests.is_empty());
    s.sync_index().unwrap();
    let index = s.read_index().unwrap();
    assert_eq!(index.manifests.len(), 1);
    assert_eq!(index.manifests[0].digest, a);
    assert_eq!(
        index.manifests[0].annotation(annotations::REF_NAME),
        Some(KEY_A)
    );

    // A foreign entry survives a sync.
    let mut index = index;
    index.manifests.insert(
        0,
        Descriptor {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            digest: a,
            size: 1,
            artifact_type: None,
            annotations: Some([(annotations::REF_NAME.to_owned(), "latest".to_owned())].into()),
        },
    );
    fs::write(s.root().join("index.json"), index.to_bytes()).unwrap();
    s.put_artifact(&wheel_input(&t, KEY_B)).unwrap();
    drop(s); // syncs
    let s = LocalStore::open(dir.path().join("store")).unwrap();
    let names: Vec<_> = s
        .read_index()
        .unwrap()
        .manifests
        .iter()
        .map(|d| d.annotation(annotations::REF_NAME).unwrap().to_owned())
        .collect();
    assert_eq!(names, ["latest", KEY_A, KEY_B]);
}

#[test]
fn unpack_places_the_tree_and_the_files() {
    let (dir, s) = store();
    let t = dir.path().join("t");
    sample_tree(&t);
    let whl = dir.path().join("x.whl");
    fs::write(&whl, "wheel bytes").unwrap();
    let d = s
        .put_artifact(&wheel_input(&t, KEY_A).file(&whl, "dist/x.whl"))
        .unwrap();
    let out = s.unpack(&d).unwrap();
    assert_eq!(out, s.root().join("trees").join(d.hex()));
    assert_eq!(
        fs::read_to_string(out.join("lib/data.txt")).unwrap(),
        "data\n"
    );
    assert_eq!(
        fs::read_to_string(out.join("dist/x.whl")).unwrap(),
        "wheel bytes"
    );
    assert!(out.join("lib/empty").is_dir());
    assert_eq!(
        fs::read_link(out.join("bin/data")).unwrap(),
        Path::new("../lib/data.txt")
    );
    let mode = fs::metadata(out.join("bin/tool"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    // The unpacked tree hashes like the original (same paths, contents, exec bits, links).
    let mut original = refine_digest::hash_tree(&t).unwrap();
    fs::create_dir(t.join("dist")).unwrap();
    fs::copy(&whl, t.join("dist/x.whl")).unwrap();
    assert_ne!(original, refine_digest::hash_tree(&t).unwrap());
    original = refine_digest::hash_tree(&t).unwrap();
    assert_eq!(original, refine_digest::hash_tree(&out).unwrap());
    // Second call: same folder.
    assert_eq!(s.unpack(&d).unwrap(), out);
}

#[test]
fn unpack_of_a_corrupt_layer_fails_and_leaves_no_tree() {
    let (dir, s) = store();
    let t = dir.path().join("t");
    sample_tree(&t);
    fs::write(t.join("big"), vec![9u8; 200_000]).unwrap();
    let d = s.put_artifact(&wheel_input(&t, KEY_A)).unwrap();
    let layer = s.read_manifest(&d).unwrap().layers[0].digest;
    flip_byte(&s.blob_path(&layer), 40);
    let err = s.unpack(&d).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { digest, .. } if digest == layer),
        "{err}"
    );
    assert!(!s.root().join("trees").join(d.hex()).exists());
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(path, bytes).unwrap();
}

#[test]
fn blobs_are_verified_on_write_and_read() {
    let (dir, s) = store();
    let wrong = Digest::of_bytes(b"something else");
    let err = s.put_blob_reader(&b"hello"[..], Some(&wrong)).unwrap_err();
    match &err {
        StoreError::Mismatch {
            expected, actual, ..
        } => {
            assert_eq!(*expected, wrong);
            assert_eq!(*actual, Digest::of_bytes(b"hello"));
        }
        other => panic!("{other}"),
    }
    assert!(!s.has_blob(&Digest::of_bytes(b"hello")));
    assert_eq!(fs::read_dir(s.root().join("tmp")).unwrap().count(), 0);

    let file = dir.path().join("f");
    fs::write(&file, vec![5u8; 1 << 20]).unwrap();
    let d = s.put_blob_file(&file, None).unwrap();
    assert_eq!(d, refine_digest::sha256_file(&file).unwrap().0);
    let mut back = Vec::new();
    s.open_blob(&d).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(back.len(), 1 << 20);

    flip_byte(&s.blob_path(&d), 1000);
    let err = s.read_blob(&d).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&format!("Blob `{d}` in `")),
        "{err}"
    );

    let missing = Digest::of_bytes(b"nope");
    assert!(matches!(
        s.open_blob(&missing),
        Err(StoreError::MissingBlob { .. })
    ));
}

#[test]
fn verify_finds_corrupt_and_missing_blobs_and_fix_drops_them() {
    let (dir, s) = store();
    let t = dir.path().join("t");
    sample_tree(&t);
    let whl = dir.path().join("x.whl");
    fs::write(&whl, "wheel bytes").unwrap();
    let a = s
        .put_artifact(&wheel_input(&t, KEY_A).file(&whl, "x.whl"))
        .unwrap();
    fs::write(t.join("lib/data.txt"), "b\n").unwrap();
    let b = s.put_artifact(&wheel_input(&t, KEY_B)).unwrap();
    s.sync_index().unwrap();
    let clean = s.verify(VerifyOptions::default()).unwrap();
    assert!(clean.is_clean(), "{:?}", clean.problems);
    assert_eq!((clean.refs, clean.manifests), (2, 2));

    let ma = s.read_manifest(&a).unwrap();
    let file_layer = ma.layers[1].digest;
    flip_byte(&s.blob_path(&file_layer), 0);
    let tree_layer = s.read_manifest(&b).unwrap().layers[0].digest;
    fs::remove_file(s.blob_path(&tree_layer)).unwrap();

    let report = s.verify(VerifyOptions::default()).unwrap();
    let text: Vec<String> = report.problems.iter().map(|p| p.message.clone()).collect();
    let all = text.join("\n");
    assert!(
        all.contains(&format!("Blob `{file_layer}` is corrupt")),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "Ref `wheel/{KEY_A}` points at manifest `{a}`, whose layer `{file_layer}` is corrupt"
        )),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "Ref `wheel/{KEY_B}` points at manifest `{b}`, whose layer `{tree_layer}` is missing"
        )),
        "{all}"
    );

    let fixed = s.verify(VerifyOptions { fix: true }).unwrap();
    assert!(fixed.fixed);
    assert!(s.verify(VerifyOptions::default()).unwrap().is_clean());
    assert_eq!(s.lookup("wheel", KEY_A).unwrap(), None);
    assert_eq!(s.lookup("wheel", KEY_B).unwrap(), None);
    assert!(s.read_index().unwrap().manifests.is_empty());
}

pub(super) fn age(path: &Path, secs: u64) {
    let f = fs::File::open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(secs))
        .unwrap();
}

fn ref_file(s: &LocalStore, key: &str) -> std::path::PathBuf {
    s.root().join("refs/wheel").join(&key[..2]).join(key)
}

#[test]
fn gc_removes_unreachable_and_keeps_reachable() {
    let (dir, s) = store();
    let t = dir.path().join("t");
    sample_tree(&t);
    let a = s.put_artifact(&wheel_input(&t, KEY_A)).unwrap();
    s.unpack(&a).unwrap();
    let loose = s.put_blob_bytes(b"nobody refers to me").unwrap();
    let src = dir.path().join("src.tar.gz");
    fs::write(&src, "source").unwrap();
    let pinned = s.put_source_file(&src, None).unwrap();
    assert_eq!(s.pin_role(&pinned), Some(PinRole::Source));
    fs::write(s.root().join("tmp/blob-crashed"), "partial").unwrap();

    let dry = s
        .gc(&GcOptions {
            dry_run: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((dry.removed_blobs, dry.removed_temp), (1, 1));
    assert!(s.has_blob(&loose));

    let report = s.gc(&GcOptions::default()).unwrap();
    assert_eq!(report.removed_blobs, 1);
    assert!(report.evicted.is_empty());
    assert!(!s.has_blob(&loose));
    assert!(s.has_blob(&pinned));
    assert_eq!(s.lookup("wheel", KEY_A).unwrap(), Some(a));
    assert!(s.root().join("trees").join(a.hex()).is_dir());
    assert!(!s.root().join("tmp/blob-crashed").exists());
    assert!(s.verify(VerifyOptions::default()).unwrap().is_clean());
}

#[test]
fn gc_evicts_by_age_and_by_size() {
    let (dir, s) = store();
    let t = dir.path().join("t");
    sample_tree(&t);
    fs::write(t.join("payload"), vec![1u8; 100_000]).unwrap();
    let a = s.put_artifact(&wheel_input(&t, KEY_A)).unwrap();
    fs::write(t.join("payload"), vec![2u8; 100_000]).unwrap();
    let b = s.put_artifact(&wheel_input(&t, KEY_B)).unwrap();
    s.sync_index().unwrap();
    age(&ref_file(&s, KEY_A), 3 * 3600);
    age(&ref_file(&s, KEY_B), 3600);

    // Both fit: nothing goes.
    let r = s
        .gc(&GcOptions {
            max_size: Some(10 << 20),
            ..Default::default()
        })
        .unwrap();
    assert!(r.evicted.is_empty());
    // Too big for both: the least recently used goes.
    let r = s
        .gc(&GcOptions {
            max_size: Some(r.kept_bytes - 1),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.evicted, [format!("wheel/{KEY_A}")]);
    assert_eq!(s.lookup("wheel", KEY_A).unwrap(), None);
    assert!(!s.has_blob(&a));
    assert_eq!(s.lookup("wheel", KEY_B).unwrap(), Some(b));
    assert_eq!(s.latest_for_label("//wheels:demo-py312").unwrap(), Some(b));
    // A lookup refreshed B; age it again, then evict by age.
    age(&ref_file(&s, KEY_B), 3600);
    let r = s
        .gc(&GcOptions {
            older_than: Some(Duration::from_secs(7200)),
            ..Default::default()
        })
        .unwrap();
    assert!(r.evicted.is_empty());
    let r = s
        .gc(&GcOptions {
            older_than: Some(Duration::from_secs(1800)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.evicted, [format!("wheel/{KEY_B}")]);
    assert!(!s.has_blob(&b));
    assert_eq!(s.latest_for_label("//wheels:demo-py312").unwrap(), None);
    assert!(s.read_index().unwrap().manifests.is_empty());
    assert!(s.verify(VerifyOptions::default()).unwrap().is_clean());
}

#[test]
fn artifacts_without_content_use_the_empty_layer() {
    let (_dir, s) = store();
    let d = s
        .put_artifact(&ArtifactInput::new(Kind::Base, KEY_A, "//bases:empty"))
        .unwrap();
    let m = s.read_manifest(&d).unwrap();
    assert_eq!(m.layers, vec![Descriptor::empty()]);
    assert!(s.unpack(&d).unwrap().is_dir());
}

#[test]
fn unsafe_titles_are_refused() {
    let (dir, s) = store();
    let f = dir.path().join("f");
    fs::write(&f, "x").unwrap();
    for title in ["../escape", "/abs", "", "a/../b", "dir/"] {
        let input = ArtifactInput::new(Kind::Wheel, KEY_A, "//w:x").file(&f, title);
        assert!(
            matches!(s.put_artifact(&input), Err(StoreError::BadTitle { .. })),
            "{title}"
        );
    }
}

#[test]
fn lookup_refreshes_a_stale_last_use() {
    let (dir, s) = store();
    let t = dir.path().join("t");
    sample_tree(&t);
    s.put_artifact(&wheel_input(&t, KEY_A)).unwrap();
    let r = ref_file(&s, KEY_A);
    let mtime = || fs::metadata(&r).unwrap().modified().unwrap();
    age(&r, 3600);
    let old = mtime();
    s.lookup("wheel", KEY_A).unwrap().unwrap();
    assert!(mtime() > old + Duration::from_secs(3000));
    // A fresh one is left alone (lookups rarely write).
    age(&r, 60);
    let recent = mtime();
    s.lookup("wheel", KEY_A).unwrap().unwrap();
    assert_eq!(mtime(), recent);
}

#[test]
fn special_files_and_logs() {
    let (dir, s) = store();
    let t = dir.path().join("t");
    sample_tree(&t);
    let status = std::process::Command::new("mkfifo")
        .arg(t.join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    let err = s.put_artifact(&wheel_input(&t, KEY_A)).unwrap_err();
    assert!(
        matches!(err, StoreError::Unsupported { what: "FIFO", .. }),
        "{err}"
    );
    assert_eq!(s.lookup("wheel", KEY_A).unwrap(), None);

    let log = s.put_log(&b"configure: ok\n"[..]).unwrap();
    assert_eq!(s.pin_role(&log), Some(PinRole::Log));
    s.gc(&GcOptions::default()).unwrap();
    assert_eq!(s.read_blob(&log).unwrap(), b"configure: ok\n");
}

#[test]
fn incremental_sync_matches_a_rebuild() {
    let (dir, s1) = store();
    let s2 = LocalStore::open(s1.root()).unwrap();
    let t = dir.path().join("t");
    sample_tree(&t);
    let names = |s: &LocalStore| -> Vec<(String, Digest)> {
        s.read_index()
            .unwrap()
            .manifests
            .iter()
            .map(|d| {
                (
                    d.annotation(annotations::REF_NAME).unwrap().to_owned(),
                    d.digest,
                )
            })
            .collect()
    };
    let a = s1.put_artifact(&wheel_input(&t, KEY_A)).unwrap();
    let b = s2.put_artifact(&wheel_input(&t, KEY_B)).unwrap();
    s1.sync_index().unwrap();
    // Only what s1 stored: s2 merges its own tags.
    assert_eq!(names(&s1), [(KEY_A.to_owned(), a)]);
    s2.sync_index().unwrap();
    assert_eq!(names(&s1), [(KEY_A.to_owned(), a), (KEY_B.to_owned(), b)]);
    let merged = fs::read(s1.root().join("index.json")).unwrap();
    s1.rebuild_index().unwrap();
    assert_eq!(fs::read(s1.root().join("index.json")).unwrap(), merged);

    // The ref wins over what this process stored: s2 rewrote A after s1.
    fs::write(t.join("lib/data.txt"), "one\n").unwrap();
    s1.put_artifact(&wheel_input(&t, KEY_A)).unwrap();
    fs::write(t.join("lib/data.txt"), "two\n").unwrap();
    let a2 = s2.put_artifact(&wheel_input(&t, KEY_A)).unwrap();
    s1.sync_index().unwrap();
    assert_eq!(names(&s1), [(KEY_A.to_owned(), a2), (KEY_B.to_owned(), b)]);
    s2.sync_index().unwrap();

    // A ref removed meanwhile (gc) leaves the index.
    s2.put_artifact(&wheel_input(&t, KEY_B)).unwrap();
    fs::remove_file(ref_file(&s2, KEY_B)).unwrap();
    s2.sync_index().unwrap();
    assert_eq!(names(&s1), [(KEY_A.to_owned(), a2)]);

    // An unreadable index.json is rebuilt.
    fs::write(s1.root().join("index.json"), "garbage").unwrap();
    s1.put_artifact(&wheel_input(&t, KEY_B)).unwrap();
    s1.sync_index().unwrap();
    assert_eq!(names(&s1).len(), 2);
}
