//! Bases from OCI images: an image layout folder, an OCI archive, a `docker save` tarball and
//! a real registry (docker-registry, pushed to with skopeo). Each image is built here from
//! the host's static busybox in two layers, the second with a whiteout, an opaque whiteout
//! and a replaced file; a pack's recipe then runs in the base and reports what it sees.
//! Bad images (wrong digest, wrong architecture, damaged or hostile layers, no registry
//! configured) fail with a message and leave the store sound.

use crate::common::registry;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::common::*;
use sha2::Digest as _;

const BUSYBOX: &str = "/bin/busybox";

fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn sha256(bytes: &[u8]) -> String {
    let hex: String = sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// One tar entry of a test layer.
enum Entry<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    /// A name written raw into the header: the tar crate's builder refuses `..`.
    RawName(&'a str, &'a [u8]),
}

fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::File(path, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, *data).unwrap();
            }
            Entry::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, &[][..]).unwrap();
            }
            Entry::Symlink(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target).unwrap();
            }
            Entry::HardLink(path, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_link(&mut h, path, target).unwrap();
            }
            Entry::RawName(name, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                let raw = &mut h.as_old_mut().name;
                raw[..name.len()].copy_from_slice(name.as_bytes());
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The two standard layers: busybox and a few files, then changes to them.
fn standard_layers() -> Vec<Vec<u8>> {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing: apt-get install busybox-static (see .ci/setup.d/sandbox.sh)"
    );
    let busybox = fs_err::read(BUSYBOX).unwrap();
    let mut one = vec![
        Entry::Dir("bin"),
        Entry::File("bin/busybox", &busybox, 0o755),
        Entry::HardLink("bin/busybox2", "bin/busybox"),
        Entry::Dir("etc"),
        Entry::File("etc/hello", b"one\n", 0o644),
        Entry::File("etc/gone", b"lower\n", 0o644),
        Entry::Dir("opt/stale"),
        Entry::File("opt/stale/a", b"a\n", 0o644),
        Entry::File("opt/stale/b", b"b\n", 0o644),
    ];
    let tools = ["sh", "cat", "ls", "test", "echo", "mkdir", "cp", "cmp"];
    let links: Vec<String> = tools.iter().map(|t| format!("bin/{t}")).collect();
    for l in &links {
        one.push(Entry::Symlink(l, "busybox"));
    }
    let two = vec![
        Entry::File("etc/hello", b"two\n", 0o644),
        Entry::File("etc/.wh.gone", b"", 0o644),
        Entry::File("opt/stale/c", b"c\n", 0o644),
        // after a sibling this layer wrote: the opaque whiteout hides only the layers below
        Entry::File("opt/stale/.wh..wh..opq", b"", 0o644),
    ];
    vec![tar_of(&one), tar_of(&two)]
}

/// Digests of an image written as an OCI layout.
struct Image {
    manifest: String,
    index: String,
    config: String,
}

fn blob(dir: &Path, bytes: &[u8]) -> String {
    let d = sha256(bytes);
    let p = dir.join("blobs/sha256").join(&d[7..]);
    fs_err::create_dir_all(p.parent().unwrap()).unwrap();
    fs_err::write(p, bytes).unwrap();
    d
}

/// Writes `layers` as an image for `arch` into the OCI layout `dir`: the first layer gzip,
/// the others zstd; an index with the image for `arch` (and a decoy) tagged `latest`.
fn write_layout(dir: &Path, layers: &[Vec<u8>], arch: &str) -> Image {
    fs_err::create_dir_all(dir).unwrap();
    fs_err::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        diff_ids.push(sha256(l));
        let (bytes, mt) = if i == 0 {
            (gzip(l), "application/vnd.oci.image.layer.v1.tar+gzip")
        } else {
            (
                zstd::encode_all(&l[..], 3).unwrap(),
                "application/vnd.oci.image.layer.v1.tar+zstd",
            )
        };
        let d = blob(dir, &bytes);
        descs.push(serde_json::json!({"mediaType": mt, "digest": d, "size": bytes.len()}));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    }))
    .unwrap();
    let config_digest = blob(dir, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    let manifest_digest = blob(dir, &manifest);
    let decoy = if arch == "riscv64" {
        "ppc64le"
    } else {
        "riscv64"
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len(), "platform": {"architecture": arch, "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len(), "platform": {"architecture": decoy, "os": "linux"}},
        ],
    }))
    .unwrap();
    let index_digest = blob(dir, &index);
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": index_digest, "size": index.len(), "annotations": {"org.opencontainers.image.ref.name": "latest"}}],
    });
    fs_err::write(dir.join("index.json"), top.to_string()).unwrap();
    Image {
        manifest: manifest_digest,
        index: index_digest,
        config: config_digest,
    }
}

/// Tars the folder `dir` (an OCI archive when it is a layout).
fn tar_dir(dir: &Path, to: &Path) {
    let mut b = tar::Builder::new(fs_err::File::create(to).unwrap().into_file());
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap().flush().unwrap();
}

const PROBE: &str = "cat /etc/hello > $REFINE_OUT/hello\nls /opt/stale > $REFINE_OUT/stale\ntest -e /etc/gone || echo gone > $REFINE_OUT/gone\ncmp /bin/busybox2 /bin/busybox && echo linked > $REFINE_OUT/link\n";

/// A workspace whose base `img` is `origin` (a KDL line), with a pack `probe` on it.
fn workspace(origin: &str, arch: &str) -> TempWorkspace {
    let host = std::env::consts::ARCH;
    TempWorkspace::new(&[
        (
            "workspace.kdl",
            &format!(
                "workspace \"img\"\nplatform \"host\" arch=\"{host}\" policy=\"linux\" base=\"//bases:img\"\ndefaults {{\n    platform \"host\"\n}}\n"
            ),
        ),
        (
            "rules/bases.kdl",
            &format!(
                "base \"img\" {{\n    arch \"{arch}\"\n    policy \"linux\"\n    {origin}\n}}\n"
            ),
        ),
        (
            "rules/packs.kdl",
            "pack \"probe\" {\n    version \"1\"\n    recipe \"recipes/probe.sh\"\n}\n",
        ),
        ("recipes/probe.sh", PROBE),
    ])
}

struct Built {
    code: Option<i32>,
    stderr: String,
    out: tempfile::TempDir,
}

fn build(w: &TempWorkspace, store: &Path, target: &str, env: &[(&str, &str)]) -> Built {
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(refine_bin())
        .current_dir(w.path())
        .env("NO_COLOR", "1")
        .env_remove("REFINE_IMAGE_REGISTRY")
        .envs(env.iter().copied())
        .args(["--store", store.to_str().unwrap(), "build", target, "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    Built {
        code: o.status.code(),
        stderr: stderr(&o),
        out,
    }
}

/// The probe saw the image as its layers make it.
fn assert_probe(b: &Built) {
    assert_eq!(b.code, Some(0), "{}", b.stderr);
    let read = |f: &str| fs_err::read_to_string(b.out.path().join("probe").join(f)).unwrap();
    assert_eq!(read("hello"), "two\n", "the upper layer's file wins");
    assert_eq!(read("stale"), "c\n", "the opaque whiteout hid a and b");
    assert_eq!(read("gone"), "gone\n", "the whiteout deleted /etc/gone");
    assert_eq!(
        read("link"),
        "linked\n",
        "the hard link has its target's bytes"
    );
}

fn verify(store: &Path) {
    let o = run_refine(
        Path::new("/"),
        &["--store", store.to_str().unwrap(), "store", "verify"],
    );
    assert!(o.status.success(), "store verify: {}", stderr(&o));
}

#[test]
fn layout_folder_archive_and_index_become_roots() {
    let host = std::env::consts::ARCH;
    let layers = standard_layers();
    let scratch = tempfile::tempdir().unwrap();
    let layout = scratch.path().join("img");
    let img = write_layout(&layout, &layers, oci_arch());

    // An OCI layout folder, pinned by the manifest's digest.
    let w = workspace(
        &format!(
            "layout \"{}\" digest=\"{}\"",
            layout.display(),
            img.manifest
        ),
        host,
    );
    let store = tempfile::tempdir().unwrap();
    assert_probe(&build(&w, store.path(), "//packs:probe", &[]));
    verify(store.path());

    // A folder inside the workspace, pinned by the index: the manifest for the host's
    // architecture is chosen from it.
    let w2 = workspace(
        &format!("layout \"vendor/img\" digest=\"{}\"", img.index),
        host,
    );
    fs_err::create_dir_all(w2.path().join("vendor")).unwrap();
    fs_err::rename(&layout, w2.path().join("vendor/img")).unwrap();
    let store2 = tempfile::tempdir().unwrap();
    assert_probe(&build(&w2, store2.path(), "//packs:probe", &[]));

    // An OCI archive (a tarball of the layout), in a fresh store.
    let archive = scratch.path().join("img.tar");
    tar_dir(&w2.path().join("vendor/img"), &archive);
    let w3 = workspace(
        &format!("layout \"{}\" digest=\"{}\"", archive.display(), img.index),
        host,
    );
    let store3 = tempfile::tempdir().unwrap();
    assert_probe(&build(&w3, store3.path(), "//packs:probe", &[]));
    verify(store3.path());
}

#[test]
fn docker_save_tarball_is_pinned_by_its_image_id() {
    let layers = standard_layers();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("saved");
    fs_err::create_dir_all(&dir).unwrap();
    let mut names = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let name = format!("layer{i}/layer.tar");
        fs_err::create_dir_all(dir.join(format!("layer{i}"))).unwrap();
        fs_err::write(dir.join(&name), l).unwrap();
        names.push(name);
        diff_ids.push(sha256(l));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": oci_arch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let id = sha256(&config);
    fs_err::write(dir.join(format!("{}.json", &id[7..])), &config).unwrap();
    fs_err::write(
        dir.join("manifest.json"),
        serde_json::json!([{"Config": format!("{}.json", &id[7..]), "RepoTags": ["img:1"], "Layers": names}]).to_string(),
    )
    .unwrap();
    let tarball = scratch.path().join("saved.tar");
    tar_dir(&dir, &tarball);
    let w = workspace(
        &format!("layout \"{}\" digest=\"{id}\"", tarball.display()),
        std::env::consts::ARCH,
    );
    let store = tempfile::tempdir().unwrap();
    assert_probe(&build(&w, store.path(), "//packs:probe", &[]));

    // A layer that does not match the config's diff_ids is refused.
    fs_err::write(
        dir.join(&names[1]),
        tar_of(&[Entry::File("etc/hello", b"evil\n", 0o644)]),
    )
    .unwrap();
    let damaged = scratch.path().join("damaged.tar");
    tar_dir(&dir, &damaged);
    let w = workspace(
        &format!("layout \"{}\" digest=\"{id}\"", damaged.display()),
        std::env::consts::ARCH,
    );
    let b = build(
        &w,
        tempfile::tempdir().unwrap().path(),
        "//packs:probe",
        &[],
    );
    assert_eq!(b.code, Some(1), "{}", b.stderr);
    assert!(b.stderr.contains("layer.tar` has digest"), "{}", b.stderr);
}

#[test]
fn image_from_a_registry_by_digest_and_by_tag() {
    let reg = registry::Registry::start();
    let scratch = tempfile::tempdir().unwrap();
    let layout = scratch.path().join("img");
    let img = write_layout(&layout, &standard_layers(), oci_arch());
    let dest = format!("docker://127.0.0.1:{}/mirror/test/busybox:1", reg.port);
    let o = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(&dest)
        .output()
        .expect("skopeo is missing: apt-get install skopeo (see .ci/setup.d/store.sh)");
    assert!(o.status.success(), "skopeo copy: {}", stderr(&o));

    let registry_env = format!("127.0.0.1:{}/mirror", reg.port);
    let env = [("REFINE_IMAGE_REGISTRY", registry_env.as_str())];
    let host = std::env::consts::ARCH;
    let w = workspace(
        &format!("image \"test/busybox\" digest=\"{}\"", img.index),
        host,
    );
    let store = tempfile::tempdir().unwrap();
    assert_probe(&build(&w, store.path(), "//packs:probe", &env));
    verify(store.path());
    // The provenance names where the root came from, and the manifest chosen from the index.
    let o = w.refine(&[
        "--store",
        store.path().to_str().unwrap(),
        "provenance",
        "//bases:img",
    ]);
    let text = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    let uri = format!("oci://127.0.0.1:{}/mirror/test/busybox", reg.port);
    assert!(text.contains(&uri), "the registry and repository: {text}");
    assert!(
        text.contains(&img.index[7..]) && text.contains(&img.manifest[7..]),
        "{text}"
    );

    // Unpinned, by tag: resolved at pull time.
    let w = workspace("image \"test/busybox\" tag=\"1\"", host);
    assert_probe(&build(
        &w,
        tempfile::tempdir().unwrap().path(),
        "//packs:probe",
        &env,
    ));

    // Not configured: the message says which variable to set.
    let w = workspace(
        &format!("image \"test/busybox\" digest=\"{}\"", img.index),
        host,
    );
    let b = build(&w, tempfile::tempdir().unwrap().path(), "//bases:img", &[]);
    assert_eq!(b.code, Some(1), "{}", b.stderr);
    assert!(
        b.stderr.contains("`REFINE_IMAGE_REGISTRY` is not set"),
        "{}",
        b.stderr
    );

    // A digest the registry does not have.
    let w = workspace(
        &format!("image \"test/busybox\" digest=\"{}\"", sha256(b"nothing")),
        host,
    );
    let b = build(&w, tempfile::tempdir().unwrap().path(), "//bases:img", &env);
    assert_eq!(b.code, Some(1), "{}", b.stderr);
    assert!(b.stderr.contains("Cannot pull"), "{}", b.stderr);
    assert!(
        b.stderr.contains("Check the repository and digest"),
        "{}",
        b.stderr
    );
    let _ = img.config;
}

#[test]
fn bad_images_fail_clearly_and_store_nothing() {
    let host = std::env::consts::ARCH;
    let scratch = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let fails = |origin: String, arch: &str, want: &str| {
        let w = workspace(&origin, arch);
        let b = build(&w, store.path(), "//bases:img", &[]);
        assert_eq!(b.code, Some(1), "{origin}: {}", b.stderr);
        assert!(
            b.stderr.contains(want),
            "{origin}: wanted {want:?} in:\n{}",
            b.stderr
        );
        assert!(!b.stderr.contains("panicked"), "{}", b.stderr);
    };

    // A digest the layout does not hold.
    let good = scratch.path().join("good");
    let img_good = write_layout(&good, &standard_layers(), oci_arch());
    fails(
        format!("layout \"{}\" digest=\"{}\"", good.display(), sha256(b"x")),
        host,
        "holds no `sha256:",
    );
    // The image is for another architecture than the base.
    let other = if host == "s390x" { "x86_64" } else { "s390x" };
    fails(
        format!(
            "layout \"{}\" digest=\"{}\"",
            good.display(),
            img_good.manifest
        ),
        other,
        "but the base is for",
    );
    fails(
        format!(
            "layout \"{}\" digest=\"{}\"",
            good.display(),
            img_good.index
        ),
        other,
        "but the base is for",
    );
    // Not a layout at all.
    fails(
        format!(
            "layout \"{}\" digest=\"{}\"",
            scratch.path().display(),
            img_good.index
        ),
        host,
        "neither an OCI image layout",
    );

    // A layer whose bytes changed after the manifest was written.
    let damaged = scratch.path().join("damaged");
    let img = write_layout(&damaged, &standard_layers(), oci_arch());
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs_err::read(damaged.join("blobs/sha256").join(&img.manifest[7..])).unwrap(),
    )
    .unwrap();
    let layer = damaged
        .join("blobs/sha256")
        .join(&manifest["layers"][1]["digest"].as_str().unwrap()[7..]);
    let mut bytes = fs_err::read(&layer).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs_err::write(&layer, bytes).unwrap();
    fails(
        format!(
            "layout \"{}\" digest=\"{}\"",
            damaged.display(),
            img.manifest
        ),
        host,
        "has digest",
    );

    // Hostile layers: a path that climbs out, and a write through a symlink.
    let victim = scratch.path().join("victim");
    fs_err::create_dir_all(&victim).unwrap();
    let climbing = scratch.path().join("climbing");
    let img = write_layout(
        &climbing,
        &[tar_of(&[Entry::RawName(
            "../../../../../../../../tmp/refine-evil",
            b"x",
        )])],
        oci_arch(),
    );
    fails(
        format!(
            "layout \"{}\" digest=\"{}\"",
            climbing.display(),
            img.manifest
        ),
        host,
        "climbs out of the root",
    );
    assert!(!Path::new("/tmp/refine-evil").exists());
    let through = scratch.path().join("through");
    let img = write_layout(
        &through,
        &[
            tar_of(&[Entry::Symlink("etc", victim.to_str().unwrap())]),
            tar_of(&[Entry::File("etc/pwned", b"x", 0o644)]),
        ],
        oci_arch(),
    );
    fails(
        format!(
            "layout \"{}\" digest=\"{}\"",
            through.display(),
            img.manifest
        ),
        host,
        "through a symlink",
    );
    assert!(!victim.join("pwned").exists());

    // Nothing half-made entered the store.
    verify(store.path());
    let w = workspace(
        &format!(
            "layout \"{}\" digest=\"{}\"",
            good.display(),
            img_good.manifest
        ),
        host,
    );
    let plan = w.refine(&[
        "--store",
        store.path().to_str().unwrap(),
        "plan",
        "//bases:img",
    ]);
    assert!(
        stdout(&plan).contains("build    base     //bases:img"),
        "{}",
        stdout(&plan)
    );
}
