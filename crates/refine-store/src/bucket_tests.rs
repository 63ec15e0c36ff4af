//! Unit tests of the layout's buckets: fetched names, the outbox, and `verify` and `gc` over
//! every bucket (damage, stray entries, unpacked trees compared with their artifacts).

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

use super::tests::{KEY_A, KEY_B, age, sample_tree, store};

/// A wheel with a tree layer and a file layer at `dist/x.whl`.
fn put_wheel(dir: &Path, s: &LocalStore, key: &str, payload: &str) -> Digest {
    let t = dir.join(format!("t-{key}"));
    sample_tree(&t);
    fs_err::write(t.join("lib/data.txt"), payload).unwrap();
    let whl = dir.join(format!("{key}.whl"));
    fs_err::write(&whl, format!("wheel {payload}")).unwrap();
    let input = ArtifactInput::new(Kind::Wheel, key, format!("//wheels:w-{}", &key[..2]))
        .tree(&t)
        .file(&whl, "dist/x.whl");
    s.put_artifact(&input).unwrap()
}

fn messages(report: &VerifyReport) -> String {
    report
        .problems
        .iter()
        .map(|p| p.message.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn names_are_recorded_looked_up_and_refused_when_unusable() {
    let (_dir, s) = store();
    let d = s.put_blob_bytes(b"an sdist").unwrap();
    assert_eq!(s.lookup_name(&d).unwrap(), None);
    s.record_name(&d, "demo-1.0.tar.gz").unwrap();
    assert_eq!(
        s.lookup_name(&d).unwrap().as_deref(),
        Some("demo-1.0.tar.gz")
    );
    // The format earlier refines wrote and read: the bare name, no newline.
    let path = s.root().join("names").join(d.hex());
    assert_eq!(fs_err::read(&path).unwrap(), b"demo-1.0.tar.gz");
    // And what they wrote with a newline still reads.
    fs_err::write(&path, "demo-1.0.tar.gz\n").unwrap();
    assert_eq!(
        s.lookup_name(&d).unwrap().as_deref(),
        Some("demo-1.0.tar.gz")
    );

    for bad in ["", " ", "a/b", "..", "x\0y", " pad"] {
        let err = s.record_name(&d, bad).unwrap_err();
        assert!(matches!(err, StoreError::BadName { .. }), "{bad:?}: {err}");
    }
    fs_err::write(&path, "../escape").unwrap();
    let err = s.lookup_name(&d).unwrap_err();
    assert!(
        matches!(&err, StoreError::BadRef { path: p, .. } if *p == path),
        "{err}"
    );
}

#[test]
fn outbox_entries_are_added_listed_and_removed() {
    let (_dir, s) = store();
    let m = s.put_blob_bytes(b"pretend manifest").unwrap();
    assert!(s.outbox_list().unwrap().is_empty());
    s.outbox_add("wheel", KEY_B, &m).unwrap();
    s.outbox_add("pack", KEY_A, &m).unwrap();
    let path = s.root().join("outbox/wheel").join(KEY_B);
    assert_eq!(fs_err::read_to_string(&path).unwrap(), format!("{m}\n"));
    let listed = s.outbox_list().unwrap();
    let entry = |kind, key: &str| OutboxEntry {
        kind,
        key: key.to_owned(),
        digest: m,
    };
    assert_eq!(
        listed,
        [entry(Kind::Pack, KEY_A), entry(Kind::Wheel, KEY_B)]
    );
    s.outbox_remove("wheel", KEY_B).unwrap();
    s.outbox_remove("wheel", KEY_B).unwrap();
    assert_eq!(s.outbox_list().unwrap(), [entry(Kind::Pack, KEY_A)]);
    // A malformed entry is left out of the list (verify reports it).
    fs_err::create_dir(s.root().join("outbox/base")).unwrap();
    fs_err::write(s.root().join("outbox/base").join(KEY_A), "junk").unwrap();
    assert_eq!(s.outbox_list().unwrap().len(), 1);
    assert!(matches!(
        s.outbox_add("egg", KEY_A, &m),
        Err(StoreError::BadKind { .. })
    ));
    assert!(matches!(
        s.outbox_add("wheel", "short", &m),
        Err(StoreError::BadKey { .. })
    ));
}

#[test]
fn content_digest_is_sha256_over_one_line_per_layer() {
    let layer = |media: &str, content: &[u8], size, title: Option<&str>| Descriptor {
        media_type: media.into(),
        digest: Digest::of_bytes(content),
        size,
        artifact_type: None,
        annotations: title.map(|t| [(annotations::TITLE.to_owned(), t.to_owned())].into()),
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.into(),
        artifact_type: None,
        config: Descriptor::empty(),
        layers: vec![
            layer(TAR_ZSTD_MEDIA_TYPE, b"a", 10, None),
            layer(FILE_MEDIA_TYPE, b"b", 20, Some("x-1.0.whl")),
        ],
        subject: None,
        annotations: Some([(annotations::KEY.to_owned(), KEY_A.to_owned())].into()),
    };
    // sha256 of "<media> <digest> <size> <title>\n" per layer, computed outside refine.
    assert_eq!(
        manifest.content_digest().to_string(),
        "sha256:30d0939ad3037afb47f6f2ab302555772852c934e70b1adc6ddc2cd424f2ed9a"
    );
}

#[test]
fn io_errors_name_the_path_once() {
    let (_dir, s) = store();
    let d = s.put_blob_bytes(b"x").unwrap();
    let path = s.root().join("names").join(d.hex());
    fs_err::create_dir(&path).unwrap();
    let err = s.lookup_name(&d).unwrap_err().to_string();
    assert_eq!(
        err.matches(&*path.display().to_string()).count(),
        1,
        "{err}"
    );
    assert!(err.starts_with("Could not read"), "{err}");
}

/// A store holding something in every bucket, and the paths of what the tests damage.
struct Full {
    _dir: tempfile::TempDir,
    s: LocalStore,
    wheel: Digest,
    source: Digest,
    /// A pinned source of [`MIN_LOCATED_SIZE`] bytes, with a location record.
    large: Digest,
}

fn full_store() -> Full {
    let (dir, s) = store();
    let wheel = put_wheel(dir.path(), &s, KEY_A, "a\n");
    s.unpack(&wheel).unwrap();
    let src = dir.path().join("demo-1.0.tar.gz");
    fs_err::write(&src, "sdist").unwrap();
    let source = s.put_source_file(&src, None).unwrap();
    s.record_name(&source, "demo-1.0.tar.gz").unwrap();
    s.outbox_add("wheel", KEY_A, &wheel).unwrap();
    s.put_log(&b"log\n"[..]).unwrap();
    let large = dir.path().join("large.tar.gz");
    fs_err::write(&large, vec![7u8; MIN_LOCATED_SIZE as usize]).unwrap();
    let large = s.put_source_file(&large, None).unwrap();
    s.record_location(&large, "127.0.0.1:5000", "ci/pack")
        .unwrap();
    s.sync_index().unwrap();
    let report = s.verify(VerifyOptions::default()).unwrap();
    assert!(report.is_clean(), "{}", messages(&report));
    assert_eq!(
        (report.refs, report.pins, report.labels),
        (1, 3, 1),
        "{report:?}"
    );
    assert_eq!((report.names, report.outbox, report.trees), (1, 1, 1));
    assert_eq!(report.locations, 1);
    Full {
        _dir: dir,
        s,
        wheel,
        source,
        large,
    }
}

/// Damages something in every bucket verify checks; returns (path, what the report says).
fn damage_every_bucket(f: &Full) -> Vec<(PathBuf, String)> {
    let root = f.s.root().to_owned();
    let missing = Digest::of_bytes(b"never stored");
    let w = |rel: &str, text: &str| {
        let p = root.join(rel);
        fs_err::create_dir_all(p.parent().unwrap()).unwrap();
        fs_err::write(&p, text).unwrap();
        p
    };
    let tree = f.s.tree_path(&f.wheel);
    fs_err::write(tree.join("lib/data.txt"), "changed\n").unwrap();
    vec![
        (
            w("blobs/sha256/partial", "x"),
            "is not named after a sha256 digest".into(),
        ),
        (
            w(&format!("refs/wheel/bb/{KEY_B}"), "sha256:zz 1\n"),
            "is malformed".into(),
        ),
        (
            w("refs/egg", "x"),
            "is not a folder named after a kind".into(),
        ),
        (
            w(
                &format!("pins/{}/{}", &missing.hex()[..2], missing.hex()),
                "source\n",
            ),
            format!("Pinned blob `{missing}` is missing"),
        ),
        (w("labels/00/0000", "{not json"), "is malformed".into()),
        (
            tree,
            format!(
                "differs from manifest `{}`: `lib/data.txt` has other content",
                f.wheel
            ),
        ),
        (
            w(&format!("names/{}", missing.hex()), "gone.tar.gz"),
            format!("is for blob `{missing}`, which is missing"),
        ),
        (
            w(&format!("names/{}", f.wheel.hex()), "a/b"),
            "is unusable".into(),
        ),
        (
            w(&format!("outbox/pack/{KEY_B}"), &format!("{missing}\n")),
            format!("Outbox entry `pack/{KEY_B}` points at manifest `{missing}`, which is missing"),
        ),
        (
            w(&format!("outbox/wheel/{KEY_B}"), "junk"),
            "expected `sha256:<hex>`".into(),
        ),
        (
            w("trees/not-a-digest", ""),
            "is not a folder named after a manifest digest".into(),
        ),
        (
            w(
                &format!("locations/{}", missing.hex()),
                "127.0.0.1:5000 ci/pack\n",
            ),
            format!("is for blob `{missing}`, which is missing"),
        ),
        (
            w(&format!("locations/{}", f.wheel.hex()), "no-repository\n"),
            "is not `<registry> <repository>`".into(),
        ),
    ]
}

#[test]
fn verify_reports_damage_in_every_bucket_and_fix_repairs_it() {
    let f = full_store();
    let damaged = damage_every_bucket(&f);
    let report = f.s.verify(VerifyOptions::default()).unwrap();
    let all = messages(&report);
    for (path, says) in &damaged {
        let p = report.problems.iter().find(|p| p.remove == *path);
        let p = p.unwrap_or_else(|| panic!("nothing reported for `{}`:\n{all}", path.display()));
        assert!(
            p.message.contains(says.as_str()),
            "{}: {all}",
            path.display()
        );
    }
    assert_eq!(report.problems.len(), damaged.len(), "{all}");

    let fixed = f.s.verify(VerifyOptions { fix: true }).unwrap();
    assert!(fixed.fixed);
    for (path, _) in &damaged {
        assert!(!path.exists(), "{} survived --fix", path.display());
    }
    let again = f.s.verify(VerifyOptions::default()).unwrap();
    assert!(again.is_clean(), "{}", messages(&again));
    // What was intact stays: the artifact, its outbox entry, the source and its name.
    assert_eq!(f.s.lookup("wheel", KEY_A).unwrap(), Some(f.wheel));
    assert_eq!(f.s.outbox_list().unwrap().len(), 1);
    assert!(f.s.lookup_name(&f.source).unwrap().is_some());
    assert_eq!(f.s.blob_locations(&f.large).len(), 1);
    // The damaged tree was dropped; unpacking again gives an intact one.
    let tree = f.s.unpack(&f.wheel).unwrap();
    assert_eq!(
        fs_err::read_to_string(tree.join("lib/data.txt")).unwrap(),
        "a\n"
    );
    assert!(f.s.verify(VerifyOptions::default()).unwrap().is_clean());
}

#[test]
fn fix_drops_the_name_and_outbox_entry_of_a_corrupt_blob() {
    let f = full_store();
    let flip = |d: &Digest| {
        let p = f.s.blob_path(d);
        let mut bytes = fs_err::read(&p).unwrap();
        bytes[0] ^= 0x20;
        fs_err::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        fs_err::write(&p, bytes).unwrap();
    };
    flip(&f.source);
    flip(&f.wheel);
    let report = f.s.verify(VerifyOptions::default()).unwrap();
    let all = messages(&report);
    // The name follows its blob and is not reported apart; the outbox entry is, like the ref.
    assert!(!all.contains("fetched name"), "{all}");
    assert!(
        all.contains(&format!(
            "Outbox entry `wheel/{KEY_A}` points at manifest `{}`, which is corrupt",
            f.wheel
        )),
        "{all}"
    );
    f.s.verify(VerifyOptions { fix: true }).unwrap();
    assert_eq!(f.s.lookup_name(&f.source).unwrap(), None);
    assert!(f.s.outbox_list().unwrap().is_empty());
    assert!(!f.s.tree_path(&f.wheel).exists());
    assert!(f.s.verify(VerifyOptions::default()).unwrap().is_clean());
}

#[test]
fn tree_comparison_finds_each_kind_of_difference() {
    type Damage = fn(&Path);
    let cases: [(&str, Damage, &str); 8] = [
        (
            "content",
            |t| fs_err::write(t.join("lib/data.txt"), "other\n").unwrap(),
            "`lib/data.txt` has other content",
        ),
        (
            "exec bit",
            |t| {
                fs_err::set_permissions(t.join("bin/tool"), std::fs::Permissions::from_mode(0o644))
                    .unwrap();
            },
            "`bin/tool` has another executable bit",
        ),
        (
            "link",
            |t| {
                fs_err::remove_file(t.join("bin/data")).unwrap();
                symlink("/etc/passwd", t.join("bin/data")).unwrap();
            },
            "`bin/data` points elsewhere",
        ),
        (
            "extra",
            |t| fs_err::write(t.join("lib/empty/new"), "").unwrap(),
            "`lib/empty/new` is not part of the artifact",
        ),
        (
            "missing",
            |t| fs_err::remove_file(t.join("bin/tool")).unwrap(),
            "`bin/tool` is missing",
        ),
        (
            "folder",
            |t| {
                fs_err::remove_dir(t.join("lib/empty")).unwrap();
                fs_err::write(t.join("lib/empty"), "").unwrap();
            },
            "`lib/empty` is not a folder",
        ),
        (
            "file layer",
            |t| fs_err::write(t.join("dist/x.whl"), "tampered").unwrap(),
            "`dist/x.whl` has other content",
        ),
        (
            "file layer gone",
            |t| fs_err::remove_file(t.join("dist/x.whl")).unwrap(),
            "`dist/x.whl` is missing",
        ),
    ];
    let (dir, s) = store();
    let d = put_wheel(dir.path(), &s, KEY_A, "a\n");
    for (name, damage, says) in cases {
        let tree = s.unpack(&d).unwrap();
        damage(&tree);
        let report = s.verify(VerifyOptions::default()).unwrap();
        let all = messages(&report);
        assert_eq!(report.problems.len(), 1, "{name}: {all}");
        assert_eq!(report.problems[0].remove, tree, "{name}");
        assert!(all.contains(says), "{name}: {all}");
        s.verify(VerifyOptions { fix: true }).unwrap();
        assert!(!tree.exists(), "{name}");
    }
    s.unpack(&d).unwrap();
    assert!(s.verify(VerifyOptions::default()).unwrap().is_clean());
}

#[test]
fn stray_entries_in_fanned_buckets_are_reported() {
    let (dir, s) = store();
    let d = put_wheel(dir.path(), &s, KEY_A, "a\n");
    let root = s.root().to_owned();
    let ref_file = root.join("refs/wheel/aa").join(KEY_A);
    // A ref filed under the wrong fan-out folder, a folder where a file belongs, a file
    // beside the fan-out folders, a pin that is neither source nor log.
    fs_err::create_dir_all(root.join("refs/wheel/bb")).unwrap();
    fs_err::copy(&ref_file, root.join("refs/wheel/bb").join(KEY_A)).unwrap();
    fs_err::create_dir_all(root.join("labels/ab/abcd")).unwrap();
    fs_err::write(root.join("pins/README"), "hi").unwrap();
    let pin = s.put_log(&b"log"[..]).unwrap();
    fs_err::write(s.pin_path(&pin), "junk\n").unwrap();
    let report = s.verify(VerifyOptions::default()).unwrap();
    let all = messages(&report);
    assert_eq!(report.problems.len(), 4, "{all}");
    assert!(all.contains("is filed under `bb/`"), "{all}");
    assert!(all.contains("it is a folder, not a file"), "{all}");
    assert!(all.contains("it is not a fan-out folder"), "{all}");
    assert!(all.contains("it holds neither `source` nor `log`"), "{all}");
    // gc keeps a malformed pin's blob: the pin's name says which blob it keeps.
    s.gc(&GcOptions::default()).unwrap();
    assert!(s.has_blob(&pin));
    s.verify(VerifyOptions { fix: true }).unwrap();
    assert!(s.verify(VerifyOptions::default()).unwrap().is_clean());
    assert_eq!(s.lookup("wheel", KEY_A).unwrap(), Some(d));
}

#[test]
fn gc_removes_names_and_outbox_entries_whose_blob_goes() {
    let (dir, s) = store();
    let kept = put_wheel(dir.path(), &s, KEY_A, "a\n");
    let evicted = put_wheel(dir.path(), &s, KEY_B, "b\n");
    s.outbox_add("wheel", KEY_A, &kept).unwrap();
    s.outbox_add("wheel", KEY_B, &evicted).unwrap();
    fs_err::create_dir(s.root().join("outbox/pack")).unwrap();
    fs_err::write(s.root().join("outbox/pack").join(KEY_A), "junk").unwrap();
    let src = dir.path().join("demo.tar.gz");
    fs_err::write(&src, "sdist").unwrap();
    let pinned = s.put_source_file(&src, None).unwrap();
    s.record_name(&pinned, "demo.tar.gz").unwrap();
    let loose = s.put_blob_bytes(b"loose").unwrap();
    s.record_name(&loose, "loose.whl").unwrap();
    let never = Digest::of_bytes(b"never stored");
    s.record_name(&never, "never.whl").unwrap();
    fs_err::write(s.root().join("names/README"), "x").unwrap();
    age(&s.root().join("refs/wheel/bb").join(KEY_B), 3 * 3600);

    let options = GcOptions {
        older_than: Some(Duration::from_secs(3600)),
        ..Default::default()
    };
    let dry = s
        .gc(&GcOptions {
            dry_run: true,
            ..options.clone()
        })
        .unwrap();
    assert_eq!((dry.removed_names, dry.removed_outbox), (3, 2));
    assert_eq!(s.outbox_list().unwrap().len(), 2);
    let report = s.gc(&options).unwrap();
    assert_eq!(report.evicted, [format!("wheel/{KEY_B}")]);
    assert_eq!((report.removed_names, report.removed_outbox), (3, 2));
    assert_eq!(
        s.lookup_name(&pinned).unwrap().as_deref(),
        Some("demo.tar.gz")
    );
    assert_eq!(s.lookup_name(&loose).unwrap(), None);
    assert_eq!(s.lookup_name(&never).unwrap(), None);
    assert!(!s.root().join("names/README").exists());
    let left: Vec<String> = s
        .outbox_list()
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(left, [KEY_A]);
    assert!(!s.root().join("outbox/pack").join(KEY_A).exists());
    assert!(s.verify(VerifyOptions::default()).unwrap().is_clean());
}

#[test]
fn signatures_follow_their_artifact_through_gc_and_verify() {
    let (dir, s) = store();
    let kept = put_wheel(dir.path(), &s, KEY_A, "a\n");
    let evicted = put_wheel(dir.path(), &s, KEY_B, "b\n");
    assert!(s.signatures(&kept).unwrap().is_empty());
    let env = s.put_signature(&kept, b"{\"envelope\":1}").unwrap();
    // The same envelope twice is listed once; a second one is added.
    s.put_signature(&kept, b"{\"envelope\":1}").unwrap();
    s.put_signature(&kept, b"{\"envelope\":2}").unwrap();
    assert_eq!(
        s.signatures(&kept).unwrap(),
        [b"{\"envelope\":1}".to_vec(), b"{\"envelope\":2}".to_vec()]
    );
    let gone = s.put_signature(&evicted, b"{\"envelope\":3}").unwrap();
    assert!(s.verify(VerifyOptions::default()).unwrap().is_clean());

    age(&s.root().join("refs/wheel/bb").join(KEY_B), 3 * 3600);
    let report = s
        .gc(&GcOptions {
            older_than: Some(Duration::from_secs(3600)),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(report.removed_signatures, 1);
    assert!(s.has_blob(&env), "a live artifact's envelope is kept");
    assert!(!s.has_blob(&gone), "an evicted artifact's envelope goes");
    assert!(!s.root().join("signatures").join(evicted.hex()).exists());
    assert_eq!(s.signatures(&kept).unwrap().len(), 2);

    // A list whose envelope is missing is reported, and `--fix` drops the list only.
    fs_err::remove_file(s.blob_path(&env)).unwrap();
    let report = s.verify(VerifyOptions::default()).unwrap();
    assert!(
        messages(&report).contains("names envelope"),
        "{}",
        messages(&report)
    );
    fs_err::write(s.root().join("signatures/junk"), "x").unwrap();
    s.verify(VerifyOptions { fix: true }).unwrap();
    assert!(s.verify(VerifyOptions::default()).unwrap().is_clean());
    assert_eq!(s.lookup("wheel", KEY_A).unwrap(), Some(kept));
    assert!(s.signatures(&kept).unwrap().is_empty());
}

#[test]
fn locations_are_kept_for_large_blobs_only_and_follow_their_blob() {
    let (dir, s) = store();
    let located = |d: &Digest| -> Vec<String> {
        s.blob_locations(d)
            .into_iter()
            .map(|l| format!("{} {}", l.registry, l.repository))
            .collect()
    };
    let small = s.put_blob_bytes(b"small").unwrap();
    s.record_location(&small, "reg:5000", "a/pack").unwrap();
    assert!(located(&small).is_empty());
    assert!(!s.root().join("locations").join(small.hex()).exists());

    let path = dir.path().join("large.tar.gz");
    fs_err::write(&path, vec![1u8; MIN_LOCATED_SIZE as usize]).unwrap();
    let large = s.put_source_file(&path, None).unwrap();
    // A blob the store lacks gets no record either.
    let never = Digest::of_bytes(b"never stored");
    s.record_location(&never, "reg:5000", "a/pack").unwrap();
    assert!(!s.root().join("locations").join(never.hex()).exists());

    s.record_location(&large, "reg:5000", "a/pack").unwrap();
    s.record_location(&large, "reg:5000", "a/pack").unwrap();
    s.record_location(&large, "reg:5000", "has space").unwrap();
    assert_eq!(located(&large), ["reg:5000 a/pack"]);
    for i in 0..10 {
        s.record_location(&large, "reg:5000", &format!("r{i}/pack"))
            .unwrap();
    }
    // The eight most recent, oldest first.
    let expected: Vec<String> = (2..10).map(|i| format!("reg:5000 r{i}/pack")).collect();
    assert_eq!(located(&large), expected);
    let record = s.root().join("locations").join(large.hex());
    assert_eq!(
        fs_err::read_to_string(&record).unwrap(),
        expected
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );

    // A damaged record is no hint at all, and verify names it.
    fs_err::write(&record, "junk\n").unwrap();
    assert!(located(&large).is_empty());
    let report = s.verify(VerifyOptions::default()).unwrap();
    assert!(
        messages(&report).contains("is malformed"),
        "{}",
        messages(&report)
    );
    s.record_location(&large, "reg:5000", "b/pack").unwrap();
    assert_eq!(located(&large), ["reg:5000 b/pack"]);

    // gc drops the record with its blob (an unpinned blob, reached by nothing).
    let loose = dir.path().join("loose");
    fs_err::write(&loose, vec![2u8; MIN_LOCATED_SIZE as usize]).unwrap();
    let loose = s.put_blob_file(&loose, None).unwrap();
    s.record_location(&loose, "reg:5000", "a/pack").unwrap();
    let report = s.gc(&GcOptions::default()).unwrap();
    assert_eq!(report.removed_locations, 1);
    assert!(!s.has_blob(&loose));
    assert!(located(&loose).is_empty());
    assert_eq!(located(&large), ["reg:5000 b/pack"]);
    assert!(s.verify(VerifyOptions::default()).unwrap().is_clean());
}
