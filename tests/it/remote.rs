//! The remote store against a real registry (Debian's `docker-registry`, the CNCF
//! distribution registry 2.8, which has no referrers API): two machines sharing one
//! registry, provenance referrers, a registry that is down, htpasswd auth (environment,
//! Docker config, credential helper, wrong password), a corrupted blob, a registry killed
//! in the middle of a push, and large blobs mounted across repositories instead of sent again.

use crate::common::registry;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::*;
use registry::*;

const BUSYBOX: &str = "/bin/busybox";
const A: &str = "mkdir -p $REFINE_OUT/lib\necho hello > $REFINE_OUT/lib/a.txt\n";
const B: &str = "cat $REFINE_PACKS/lib/a.txt > $REFINE_OUT/b.txt\necho b >> $REFINE_OUT/b.txt\n";

/// A workspace with a busybox root base, pack `a`, and pack `b` on `a`.
pub(crate) fn tiny() -> TempWorkspace {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing: apt-get install busybox-static (see .ci/setup.d/sandbox.sh)"
    );
    let arch = std::env::consts::ARCH;
    let ws = format!(
        "workspace \"tiny\"\nplatform \"host\" arch=\"{arch}\" policy=\"linux\" base=\"//bases:tiny\"\ndefaults {{\n    platform \"host\"\n}}\n"
    );
    let bases = format!(
        "base \"tiny\" {{\n    arch \"{arch}\"\n    policy \"linux\"\n    tree \"roots/tiny\"\n}}\n"
    );
    let packs = "pack \"a\" {\n    version \"1\"\n    recipe \"recipes/a.sh\"\n}\npack \"b\" {\n    version \"1\"\n    recipe \"recipes/b.sh\"\n    packs \":a\"\n}\n";
    let w = TempWorkspace::new(&[
        ("workspace.kdl", &ws),
        ("rules/bases.kdl", &bases),
        ("rules/packs.kdl", packs),
        ("recipes/a.sh", A),
        ("recipes/b.sh", B),
    ]);
    let bin = w.path().join("roots/tiny/bin");
    fs_err::create_dir_all(&bin).unwrap();
    fs_err::copy(BUSYBOX, bin.join("busybox")).unwrap();
    for tool in ["sh", "echo", "cat", "mkdir"] {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
    }
    w
}

/// Runs refine in `w` with `store`, `--remote url` and extra environment.
pub(crate) fn refine(
    w: &TempWorkspace,
    store: &Path,
    url: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> Output {
    let mut c = std::process::Command::new(refine_bin());
    c.args(["--store", store.to_str().unwrap(), "--remote", url])
        .args(args)
        .current_dir(w.path())
        .env("NO_COLOR", "1")
        .env_remove("REFINE_STORE")
        .env_remove("REFINE_REMOTE")
        .env_remove("REFINE_REGISTRY_USER")
        .env_remove("REFINE_REGISTRY_PASSWORD")
        // No Docker config unless a test gives one.
        .env("DOCKER_CONFIG", w.path().join("no-docker-config"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run refine")
}

pub(crate) fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "refine failed ({:?}):\n{}{}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

pub(crate) fn plan_json(o: &Output) -> Vec<serde_json::Value> {
    serde_json::from_str(&ok(o)).expect("plan JSON")
}

/// The plan of `//packs:b` from `store`, which must find every node in the registry only.
pub(crate) fn plan_from_registry(
    w: &TempWorkspace,
    store: &Path,
    url: &str,
) -> Vec<serde_json::Value> {
    let plan = plan_json(&refine(
        w,
        store,
        url,
        &[],
        &["plan", "//packs:b", "-o", "json"],
    ));
    assert!(
        plan.iter()
            .all(|n| n["status"] == "cached" && n["where"] == "remote"),
        "{plan:?}"
    );
    plan
}

fn digests(plan: &[serde_json::Value]) -> Vec<(String, String)> {
    plan.iter()
        .map(|n| {
            (
                n["label"].as_str().unwrap().to_string(),
                n["digest"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

pub(crate) fn verify_clean(store: &Path) {
    let out = run_refine(
        Path::new("/"),
        &["--store", store.to_str().unwrap(), "store", "verify"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn two_machines_share_one_registry() {
    let reg = Registry::start();
    let url = reg.url("ci");
    let w = tiny();
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    ok(&refine(&w, one.path(), &url, &[], &["build", "//packs:b"]));
    let plan_one = plan_json(&refine(
        &w,
        one.path(),
        &url,
        &[],
        &["plan", "//packs:b", "-o", "json"],
    ));
    assert!(plan_one.iter().all(|n| n["where"] == "local"));
    // One repository per kind under the prefix, tagged with the keys.
    for n in &plan_one {
        let repo = format!("ci/{}", n["kind"].as_str().unwrap());
        assert_eq!(
            reg.manifest_status(&repo, n["key"].as_str().unwrap()),
            Some(200),
            "{n}"
        );
    }

    // The second machine: everything is cached remotely, nothing is built, same digests.
    let plan_two = plan_from_registry(&w, two.path(), &url);
    assert_eq!(digests(&plan_one), digests(&plan_two));
    let events = two.path().join("../events-two.jsonl");
    let out_dir = tempfile::tempdir().unwrap();
    let b = refine(
        &w,
        two.path(),
        &url,
        &[],
        &[
            "build",
            "//packs:b",
            "--events",
            events.to_str().unwrap(),
            "--out",
            out_dir.path().to_str().unwrap(),
        ],
    );
    ok(&b);
    let log = fs_err::read_to_string(&events).unwrap();
    assert!(!log.contains("\"action-start\""), "built something:\n{log}");
    assert!(stderr(&b).contains("0 built, 3 cached"), "{}", stderr(&b));
    assert_eq!(
        fs_err::read_to_string(out_dir.path().join("b/b.txt")).unwrap(),
        "hello\nb\n"
    );
    verify_clean(two.path());
    // Pulled: now local, same digests.
    let plan_three = plan_json(&refine(
        &w,
        two.path(),
        &url,
        &[],
        &["plan", "//packs:b", "-o", "json"],
    ));
    assert_eq!(digests(&plan_one), digests(&plan_three));

    // Provenance from the registry's referrer (a third, empty store), then locally.
    let three = tempfile::tempdir().unwrap();
    let p = ok(&refine(
        &w,
        three.path(),
        &url,
        &[],
        &["provenance", "//packs:b"],
    ));
    let st: serde_json::Value = serde_json::from_str(&p).unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(st["predicateType"], "https://slsa.dev/provenance/v1");
    let b_digest = &plan_one.iter().find(|n| n["label"] == "//packs:b").unwrap()["digest"];
    assert_eq!(
        format!(
            "sha256:{}",
            st["subject"][0]["digest"]["sha256"].as_str().unwrap()
        ),
        b_digest.as_str().unwrap()
    );
    // The registry has no referrers API: the tag schema holds the index.
    let tag = format!("sha256-{}", &b_digest.as_str().unwrap()[7..]);
    assert_eq!(
        http_status(
            reg.port,
            "HEAD",
            &format!("/v2/ci/pack/manifests/{tag}"),
            &["Accept: application/vnd.oci.image.index.v1+json"]
        ),
        Some(200)
    );
    let local = ok(&refine(
        &w,
        one.path(),
        &url,
        &[],
        &["provenance", b_digest.as_str().unwrap()],
    ));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&local).unwrap(),
        st
    );

    // Explicit transfer: pull into a fourth store, push from it to another prefix.
    let four = tempfile::tempdir().unwrap();
    let pulled = ok(&refine(&w, four.path(), &url, &[], &["pull", "//packs:b"]));
    assert_eq!(
        pulled.lines().filter(|l| l.starts_with("pulled ")).count(),
        3
    );
    verify_clean(four.path());
    let other = reg.url("mirror2");
    ok(&refine(&w, four.path(), &other, &[], &["push", "//..."]));
    let plan_other = plan_json(&refine(
        &w,
        tempfile::tempdir().unwrap().path(),
        &other,
        &[],
        &["plan", "//packs:b", "-o", "json"],
    ));
    assert_eq!(digests(&plan_one), digests(&plan_other));
}

/// oci-client asks `/v2/` before every request it holds no token for, and an open registry
/// hands out none: a lookup of every key must not cost two round trips, and the command's
/// reachability check reuses the one `/v2/` answer.
#[test]
fn lookups_on_an_open_registry_ask_v2_once_per_command() {
    let reg = Registry::start_logged();
    let url = reg.url("open");
    let w = tiny();
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    ok(&refine(&w, one.path(), &url, &[], &["build", "//packs:b"]));
    let before = reg.requests().len();
    let plan = plan_from_registry(&w, two.path(), &url);
    let asked = reg.requests()[before..].to_vec();
    let manifests = asked
        .iter()
        .filter(|r| r.starts_with("GET /v2/open/") && r.contains("/manifests/"))
        .count();
    let pings = asked.iter().filter(|r| *r == "GET /v2/").count();
    assert_eq!(manifests, plan.len(), "{asked:#?}");
    assert!(
        pings <= 1,
        "{pings} pings for {manifests} lookups: {asked:#?}"
    );
}

/// The digest (`sha256:<hex>`) of the one layer of `label`'s artifact in `store`.
fn only_layer(w: &TempWorkspace, store: &Path, label: &str) -> String {
    let node = plan_node(w.path(), store, label);
    let hex = node["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs_err::read(store.join("blobs/sha256").join(hex)).unwrap())
            .unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    layers[0]["digest"].as_str().unwrap().to_owned()
}

/// What `asked` says of the layer `hex` in `repository`: (a mount from `from` was asked,
/// the layer was uploaded).
fn layer_transfer(asked: &[String], repository: &str, hex: &str, from: &str) -> (bool, bool) {
    let uploads = format!("/v2/{repository}/blobs/uploads/");
    let mounted = asked.iter().any(|r| {
        r.starts_with(&format!("POST {uploads}"))
            && r.contains("mount=")
            && r.contains(hex)
            && (r.contains(&format!("from={from}"))
                || r.contains(&format!("from={}", from.replace('/', "%2F"))))
    });
    let uploaded = asked
        .iter()
        .any(|r| r.starts_with(&format!("PUT {uploads}")) && r.contains(hex));
    (mounted, uploaded)
}

#[test]
fn a_push_to_another_repository_mounts_large_blobs_instead_of_sending_them() {
    let reg = Registry::start_logged();
    let w = tiny();
    // 2 MiB of random bytes: zstd leaves the layer above the 1 MiB a location needs.
    fs_err::write(
        w.path().join("recipes/big.sh"),
        "head -c 2097152 /dev/urandom > $REFINE_OUT/big\n",
    )
    .unwrap();
    let packs = fs_err::read_to_string(w.path().join("rules/packs.kdl")).unwrap();
    fs_err::write(
        w.path().join("rules/packs.kdl"),
        format!("{packs}pack \"big\" {{\n    version \"1\"\n    recipe \"recipes/big.sh\"\n}}\n"),
    )
    .unwrap();
    std::os::unix::fs::symlink("busybox", w.path().join("roots/tiny/bin/head")).unwrap();
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Pushes `//packs:big` from `store` to the prefix `to`; returns what the registry was asked.
    let push = |store: &Path, to: &str| {
        let n = reg.all_requests().len();
        ok(&refine(
            &w,
            store,
            &reg.url(to),
            &[],
            &["push", "//packs:big"],
        ));
        reg.all_requests()[n..].to_vec()
    };
    // Pulls `//packs:big` from the prefix `from` into `store`, which must then verify clean.
    let pull = |store: &Path, from: &str| {
        ok(&refine(
            &w,
            store,
            &reg.url(from),
            &[],
            &["pull", "//packs:big"],
        ));
        verify_clean(store);
    };

    // Built and pushed to `a/pack`: uploaded, and the store remembers where it went.
    ok(&refine(
        &w,
        one.path(),
        &reg.url("a"),
        &[],
        &["build", "//packs:big"],
    ));
    let layer = only_layer(&w, one.path(), "//packs:big");
    let hex = layer.trim_start_matches("sha256:");
    let record = one.path().join("locations").join(hex);
    let port = reg.port;
    assert_eq!(
        fs_err::read_to_string(&record).unwrap(),
        format!("127.0.0.1:{port} a/pack\n")
    );
    assert_eq!(
        layer_transfer(&reg.all_requests(), "a/pack", hex, "-"),
        (false, true)
    );

    // Pushed to `b`: mounted from `a/pack`, not sent again.
    let asked = push(one.path(), "b");
    assert_eq!(
        layer_transfer(&asked, "b/pack", hex, "a/pack"),
        (true, false),
        "{asked:#?}"
    );

    // What `b` holds is whole: pulled into a new store, which now knows `b/pack` has it.
    pull(two.path(), "b");
    assert_eq!(
        fs_err::read(two.path().join("blobs/sha256").join(hex)).unwrap(),
        fs_err::read(one.path().join("blobs/sha256").join(hex)).unwrap()
    );
    assert_eq!(
        fs_err::read_to_string(two.path().join("locations").join(hex)).unwrap(),
        format!("127.0.0.1:{port} b/pack\n")
    );
    let asked = push(two.path(), "c");
    assert_eq!(
        layer_transfer(&asked, "c/pack", hex, "b/pack"),
        (true, false),
        "{asked:#?}"
    );

    // A location the registry cannot mount from (the repository never had the blob) costs a
    // refused mount, then the blob is uploaded as before.
    fs_err::write(&record, format!("127.0.0.1:{port} nowhere/pack\n")).unwrap();
    let asked = push(one.path(), "d");
    assert_eq!(
        layer_transfer(&asked, "d/pack", hex, "nowhere/pack"),
        (true, true),
        "{asked:#?}"
    );
    let three = tempfile::tempdir().unwrap();
    pull(three.path(), "d");
    verify_clean(one.path());
}

#[test]
fn registry_not_running_fails_clearly_or_continues_when_optional() {
    let url = format!("oci://127.0.0.1:{}/ci", free_port());
    let w = tiny();
    let store = tempfile::tempdir().unwrap();
    for cmd in [&["plan", "//packs:b"][..], &["build", "//packs:b"][..]] {
        let o = refine(&w, store.path(), &url, &[], cmd);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("Cannot reach the registry"), "{e}");
        assert!(e.contains(&url[6..]), "{e}");
        assert!(e.contains("--remote-optional"), "{e}");
    }
    let o = refine(
        &w,
        store.path(),
        &url,
        &[],
        &["--remote-optional", "build", "//packs:b"],
    );
    ok(&o);
    assert!(
        stderr(&o).contains("warning: Cannot reach the registry"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("3 built"), "{}", stderr(&o));
}

#[test]
fn htpasswd_auth_from_env_docker_config_and_helper() {
    let secret = "s3cret-Pa55word";
    let reg = Registry::start_with(Some(("builder", secret)));
    let url = reg.url("ci");
    let w = tiny();

    // Wrong credentials: a clear error naming the registry, never the password.
    let store = tempfile::tempdir().unwrap();
    let wrong = "wrong-Pa55word";
    let o = refine(
        &w,
        store.path(),
        &url,
        &[
            ("REFINE_REGISTRY_USER", "builder"),
            ("REFINE_REGISTRY_PASSWORD", wrong),
        ],
        &["build", "//packs:b"],
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("refused the credentials"), "{e}");
    assert!(e.contains(&format!("127.0.0.1:{}", reg.port)), "{e}");
    assert!(!e.contains(wrong) && !stdout(&o).contains(wrong), "{e}");
    // No credentials at all.
    let o = refine(&w, store.path(), &url, &[], &["plan", "//packs:b"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("refused the credentials"),
        "{}",
        stderr(&o)
    );

    // From the environment.
    let events = store.path().join("../auth-events.jsonl");
    ok(&refine(
        &w,
        store.path(),
        &url,
        &[
            ("REFINE_REGISTRY_USER", "builder"),
            ("REFINE_REGISTRY_PASSWORD", secret),
        ],
        &["build", "//packs:b", "--events", events.to_str().unwrap()],
    ));
    let log = fs_err::read_to_string(&events).unwrap();
    assert!(!log.contains(secret));

    // From a Docker config's `auths`.
    let docker = tempfile::tempdir().unwrap();
    let b64 = {
        let o = std::process::Command::new("base64")
            .arg("-w0")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(format!("builder:{secret}").as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        String::from_utf8(o.stdout).unwrap()
    };
    let host = format!("127.0.0.1:{}", reg.port);
    fs_err::write(
        docker.path().join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{b64}"}}}}}}"#),
    )
    .unwrap();
    let two = tempfile::tempdir().unwrap();
    let dc = docker.path().to_str().unwrap();
    let plan = plan_json(&refine(
        &w,
        two.path(),
        &url,
        &[("DOCKER_CONFIG", dc)],
        &["plan", "//packs:b", "-o", "json"],
    ));
    assert!(plan.iter().all(|n| n["where"] == "remote"), "{plan:?}");

    // From a credential helper (`credHelpers`).
    let helper_dir = tempfile::tempdir().unwrap();
    let helper = helper_dir.path().join("docker-credential-refinetest");
    fs_err::write(
        &helper,
        format!("#!/bin/sh\nread server\necho '{{\"ServerURL\":\"'$server'\",\"Username\":\"builder\",\"Secret\":\"{secret}\"}}'\n"),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fs_err::write(
        docker.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{host}":"refinetest"}}}}"#),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        helper_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out_dir = tempfile::tempdir().unwrap();
    let o = refine(
        &w,
        two.path(),
        &url,
        &[("DOCKER_CONFIG", dc), ("PATH", &path)],
        &[
            "build",
            "//packs:b",
            "--out",
            out_dir.path().to_str().unwrap(),
        ],
    );
    ok(&o);
    assert!(stderr(&o).contains("0 built, 3 cached"), "{}", stderr(&o));
    assert!(!stderr(&o).contains(secret));
}

/// Where the distribution registry's filesystem driver keeps a blob.
fn registry_blob(storage: &Path, hex: &str) -> std::path::PathBuf {
    storage
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

#[test]
fn corrupt_blob_in_registry_is_rejected_and_never_stored() {
    let reg = Registry::start();
    let url = reg.url("ci");
    let w = tiny();
    let one = tempfile::tempdir().unwrap();
    ok(&refine(&w, one.path(), &url, &[], &["build", "//packs:a"]));
    // The tree layer of //packs:a, from the local store's manifest.
    let plan = plan_json(&refine(
        &w,
        one.path(),
        &url,
        &[],
        &["plan", "//packs:a", "-o", "json"],
    ));
    let a = plan.iter().find(|n| n["label"] == "//packs:a").unwrap();
    let m_hex = &a["digest"].as_str().unwrap()[7..];
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs_err::read(one.path().join("blobs/sha256").join(m_hex)).unwrap())
            .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = registry_blob(&reg.storage(), &layer[7..]);
    let mut bytes = fs_err::read(&blob).unwrap();
    bytes[0] ^= 0xff;
    fs_err::write(&blob, &bytes).unwrap();

    let two = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let o = refine(
        &w,
        two.path(),
        &url,
        &[],
        &[
            "build",
            "//packs:a",
            "--out",
            out_dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(layer), "{e}");
    assert!(
        e.contains("Nothing was stored") || e.contains("does not match"),
        "{e}"
    );
    assert!(!two.path().join("blobs/sha256").join(&layer[7..]).exists());
    let o = refine(&w, two.path(), &url, &[], &["pull", "//packs:a"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!two.path().join("blobs/sha256").join(&layer[7..]).exists());
    verify_clean(two.path());
}

/// A TCP proxy to the registry that kills it when it sees the request that would tag
/// `needle` (the manifest PUT), before forwarding that request.
struct KillingProxy {
    port: u16,
    fired: Arc<AtomicBool>,
}

/// What the client-to-registry direction looks for: the bytes, the registry's pid, a flag.
type Watch = (Vec<u8>, Arc<Mutex<Option<u32>>>, Arc<AtomicBool>);

fn pump(mut from: TcpStream, mut to: TcpStream, watch: Option<Watch>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((needle, pid, fired)) = &watch {
            tail.extend_from_slice(&buf[..n]);
            if tail.windows(needle.len()).any(|w| w == &needle[..]) {
                if let Some(pid) = pid.lock().unwrap().take() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                fired.store(true, Ordering::SeqCst);
                let _ = to.shutdown(std::net::Shutdown::Both);
                let _ = from.shutdown(std::net::Shutdown::Both);
                break;
            }
            let keep = tail.len().saturating_sub(needle.len());
            tail.drain(..keep);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

impl KillingProxy {
    fn start(upstream: u16, needle: String, pid: u32) -> KillingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let fired = Arc::new(AtomicBool::new(false));
        let pid = Arc::new(Mutex::new(Some(pid)));
        let f = fired.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let watch = Some((needle.clone().into_bytes(), pid.clone(), f.clone()));
                std::thread::spawn(move || pump(client, server, watch));
                std::thread::spawn(move || pump(s2, c2, None));
            }
        });
        KillingProxy { port, fired }
    }
}

#[test]
fn registry_killed_during_push_leaves_no_tag_and_next_build_pushes() {
    let mut reg = Registry::start();
    let w = tiny();
    let store = tempfile::tempdir().unwrap();
    // The base, built and pushed first; then the key of //packs:a from a plan.
    ok(&refine(
        &w,
        store.path(),
        &reg.url("ci"),
        &[],
        &["build", "//bases:tiny"],
    ));
    let plan: Vec<serde_json::Value> = serde_json::from_str(&ok(&run_refine(
        w.path(),
        &[
            "--store",
            store.path().to_str().unwrap(),
            "plan",
            "//packs:a",
            "-o",
            "json",
        ],
    )))
    .unwrap();
    let key = plan.iter().find(|n| n["label"] == "//packs:a").unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let proxy = KillingProxy::start(
        reg.port,
        format!("PUT /v2/ci/pack/manifests/{key}"),
        reg.pid().unwrap(),
    );
    let via_proxy = format!("oci://127.0.0.1:{}/ci", proxy.port);
    let o = refine(&w, store.path(), &via_proxy, &[], &["build", "//packs:a"]);
    assert!(
        proxy.fired.load(Ordering::SeqCst),
        "the manifest push was never seen"
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot push"), "{}", stderr(&o));

    reg.restart();
    assert_eq!(reg.manifest_status("ci/pack", &key), Some(404));
    // The artifact is in the local store: the next build finds it there and pushes it.
    let url = reg.url("ci");
    let o = refine(&w, store.path(), &url, &[], &["build", "//packs:a"]);
    ok(&o);
    assert!(stderr(&o).contains("pushed 1 artifact"), "{}", stderr(&o));
    assert_eq!(reg.manifest_status("ci/pack", &key), Some(200));
    let other = tempfile::tempdir().unwrap();
    let plan = plan_json(&refine(
        &w,
        other.path(),
        &url,
        &[],
        &["plan", "//packs:a", "-o", "json"],
    ));
    assert!(plan.iter().all(|n| n["where"] == "remote"), "{plan:?}");
}
