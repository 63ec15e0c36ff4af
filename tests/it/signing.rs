//! Signed artifacts against a real registry (Debian's `docker-registry`): two builders with
//! two keys, one trusted; unsigned, untrusted, replaced and replayed artifacts refused and
//! rebuilt; key rotation and removal; `refine verify`; `refine key generate`; and refine's
//! envelopes checked by the in-toto project's reference implementation (securesystemslib,
//! installed by `.ci/setup.d/signing.sh`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::registry::Registry;
use crate::common::*;
use crate::remote::{ok, plan_from_registry, plan_json, refine, tiny, verify_clean};

/// Where `.ci/setup.d/signing.sh` installs securesystemslib (pip `--target`).
const INTOTO_LIB: &str = "/opt/refine-test-tools/intoto";

struct Key {
    file: PathBuf,
    public: String,
}

fn generate(dir: &Path, name: &str) -> Key {
    let out = run_refine(
        Path::new("/"),
        &["key", "generate", name, "--dir", dir.to_str().unwrap()],
    );
    let text = ok(&out);
    let file = dir.join(format!("{name}.key"));
    let public = fs_err::read_to_string(dir.join(format!("{name}.pub")))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        text.contains(&format!("key \"{name}\" \"{public}\"")),
        "{text}"
    );
    Key { file, public }
}

/// The tiny workspace, trusting `keys`.
fn trusting(w: &TempWorkspace, keys: &[(&str, &Key)]) {
    let path = w.path().join("workspace.kdl");
    let text = fs_err::read_to_string(&path).unwrap();
    let base = text.split("trust {").next().unwrap().to_string();
    let lines: String = keys
        .iter()
        .map(|(n, k)| format!("    key \"{n}\" \"{}\"\n", k.public))
        .collect();
    fs_err::write(&path, format!("{base}trust {{\n{lines}}}\n")).unwrap();
}

fn signing(key: &Key) -> Vec<(&'static str, &str)> {
    vec![("REFINE_SIGNING_KEY_FILE", key.file.to_str().unwrap())]
}

fn statuses(plan: &[serde_json::Value]) -> Vec<String> {
    plan.iter()
        .map(|n| format!("{} {}", n["status"].as_str().unwrap(), n["where"]))
        .collect()
}

/// `(kind, key, digest)` of every node of a plan.
fn nodes(plan: &[serde_json::Value]) -> Vec<(String, String, String)> {
    plan.iter()
        .map(|n| {
            let s = |k: &str| n[k].as_str().unwrap_or("-").to_string();
            (s("kind"), s("key"), s("digest"))
        })
        .collect()
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sSf"])
        .args(args)
        .output()
        .expect("curl (apt-get install curl; see .ci/setup.d/remote.sh)");
    assert!(out.status.success(), "curl {args:?}: {}", stderr(&out));
    out.stdout
}

const MANIFEST: &str = "Content-Type: application/vnd.oci.image.manifest.v1+json";
const ACCEPT: &str = "Accept: application/vnd.oci.image.manifest.v1+json";

/// Copies the manifest tagged `from` to the tag `to` in `repo`, as a registry writer could.
fn retag(reg: &Registry, repo: &str, from: &str, to: &str) {
    let base = format!("http://127.0.0.1:{}/v2/{repo}/manifests", reg.port);
    let bytes = curl(&["-H", ACCEPT, &format!("{base}/{from}")]);
    let file = tempfile::NamedTempFile::new().unwrap();
    fs_err::write(file.path(), &bytes).unwrap();
    curl(&[
        "-X",
        "PUT",
        "-H",
        MANIFEST,
        "--data-binary",
        &format!("@{}", file.path().display()),
        &format!("{base}/{to}"),
    ]);
}

#[test]
fn only_artifacts_signed_by_a_trusted_key_are_used() {
    let reg = Registry::start();
    let url = reg.url("shared");
    let keys = tempfile::tempdir().unwrap();
    let ci = generate(keys.path(), "ci");
    let laptop = generate(keys.path(), "laptop");
    let w = tiny();
    trusting(&w, &[("ci", &ci)]);
    let store = |_: &str| tempfile::tempdir().unwrap();

    // The untrusted builder pushes first: its signed artifacts are not used.
    let l = store("laptop");
    ok(&refine(
        &w,
        l.path(),
        &url,
        &signing(&laptop),
        &["build", "//packs:b"],
    ));
    let x = store("x");
    let plan = refine(
        &w,
        x.path(),
        &url,
        &[],
        &["plan", "//packs:b", "-o", "json"],
    );
    assert!(
        plan_json(&plan).iter().all(|n| n["status"] != "cached"),
        "{:?}",
        statuses(&plan_json(&plan))
    );
    let warn = stderr(&plan);
    assert!(
        warn.contains("Not using `base` key")
            && warn.contains("signed only by keys this workspace does not trust"),
        "{warn}"
    );
    let v = refine(&w, x.path(), &url, &[], &["verify", "//packs:b"]);
    assert_eq!(v.status.code(), Some(1), "{}{}", stdout(&v), stderr(&v));
    assert!(
        stdout(&v).contains("remote") && stdout(&v).contains("NOT TRUSTED"),
        "{}",
        stdout(&v)
    );

    // The trusted builder rebuilds everything and pushes its own, signed.
    let c = store("ci");
    let events = c.path().join("events.jsonl");
    ok(&refine(
        &w,
        c.path(),
        &url,
        &signing(&ci),
        &["build", "//packs:b", "--events", events.to_str().unwrap()],
    ));
    let log = fs_err::read_to_string(&events).unwrap();
    assert_eq!(log.matches("\"action-start\"").count(), 3, "{log}");
    let ci_plan = plan_json(&refine(
        &w,
        c.path(),
        &url,
        &[],
        &["plan", "//packs:b", "-o", "json"],
    ));

    // A consumer with no key uses them, and keeps the envelopes beside what it pulled.
    let y = store("y");
    plan_from_registry(&w, y.path(), &url);
    let b = refine(&w, y.path(), &url, &[], &["build", "//packs:b"]);
    assert!(stderr(&b).contains("0 built, 3 cached"), "{}", stderr(&b));
    ok(&refine(&w, y.path(), &url, &[], &["pull", "//packs:b"]));
    let verified = ok(&refine(&w, y.path(), &url, &[], &["verify", "//packs:b"]));
    assert_eq!(verified.matches("signed by `ci`").count(), 6, "{verified}");
    verify_clean(y.path());
    for (_, _, digest) in nodes(&ci_plan) {
        let list = y.path().join("signatures").join(&digest[7..]);
        assert!(list.is_file(), "no envelope stored for {digest}");
    }

    // A registry writer replaces the artifacts with the laptop's (consistent manifests,
    // signed by an untrusted key): refused, and rebuilt.
    ok(&refine(&w, l.path(), &url, &[], &["push", "//packs:b"]));
    let z = store("z");
    let plan = refine(
        &w,
        z.path(),
        &url,
        &[],
        &["plan", "//packs:b", "-o", "json"],
    );
    assert!(plan_json(&plan).iter().all(|n| n["status"] != "cached"));
    assert!(
        stderr(&plan).contains("does not trust"),
        "{}",
        stderr(&plan)
    );

    // The trusted builder's artifact of `a`, with its valid envelope, put under `b`'s tag:
    // the envelope names `a`'s key, so it is refused for `b`.
    ok(&refine(&w, c.path(), &url, &[], &["push", "//packs:b"]));
    let key_of = |label: &str| {
        ci_plan.iter().find(|n| n["label"] == label).unwrap()["key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (key_a, key_b) = (key_of("//packs:a"), key_of("//packs:b"));
    retag(&reg, "shared/pack", &key_a, &key_b);
    let r = store("r");
    let plan = refine(
        &w,
        r.path(),
        &url,
        &[],
        &["plan", "//packs:b", "-o", "json"],
    );
    let b_node = plan_json(&plan)
        .into_iter()
        .find(|n| n["label"] == "//packs:b")
        .unwrap();
    // `a` is still trusted; `b`'s tag now holds `a`'s artifact, refused: `b` is built here.
    assert_eq!(b_node["status"], "build", "{b_node}");
    assert!(
        stderr(&plan).contains("is for `pack` key"),
        "{}",
        stderr(&plan)
    );
    ok(&refine(&w, r.path(), &url, &[], &["build", "//packs:b"]));
    verify_clean(r.path());
    let out = tempfile::tempdir().unwrap();
    ok(&refine(
        &w,
        r.path(),
        &url,
        &[],
        &["build", "//packs:b", "--out", out.path().to_str().unwrap()],
    ));
    assert_eq!(
        fs_err::read_to_string(out.path().join("b/b.txt")).unwrap(),
        "hello\nb\n"
    );
}

#[test]
fn unsigned_artifacts_are_refused_once_keys_are_trusted_and_keys_rotate() {
    let reg = Registry::start();
    let url = reg.url("rot");
    let keys = tempfile::tempdir().unwrap();
    let old = generate(keys.path(), "old");
    let new = generate(keys.path(), "new");
    let w = tiny();

    // No trusted keys: as before signatures, an unsigned artifact is used.
    let u = tempfile::tempdir().unwrap();
    ok(&refine(&w, u.path(), &url, &[], &["build", "//packs:a"]));
    let fresh = tempfile::tempdir().unwrap();
    let plan = plan_json(&refine(
        &w,
        fresh.path(),
        &url,
        &[],
        &["plan", "//packs:a", "-o", "json"],
    ));
    assert_eq!(plan[1]["where"], "remote", "{plan:?}");
    // Doctor's exit code says whether the sandbox works; the cache line is what matters here.
    let doctor = stdout(&refine(&w, fresh.path(), &url, &[], &["doctor"]));
    assert!(doctor.contains("UNAUTHENTICATED"), "{doctor}");

    // With keys: the unsigned artifact is refused.
    trusting(&w, &[("old", &old), ("new", &new)]);
    let plan = refine(
        &w,
        fresh.path(),
        &url,
        &[],
        &["plan", "//packs:a", "-o", "json"],
    );
    assert_ne!(plan_json(&plan)[1]["status"], "cached");
    assert!(
        stderr(&plan).contains("carries no signed provenance"),
        "{}",
        stderr(&plan)
    );

    // Signed by the old key, while both are trusted: used.
    let o = tempfile::tempdir().unwrap();
    ok(&refine(
        &w,
        o.path(),
        &url,
        &signing(&old),
        &["build", "//packs:a"],
    ));
    let pulled = tempfile::tempdir().unwrap();
    ok(&refine(
        &w,
        pulled.path(),
        &url,
        &[],
        &["pull", "//packs:a"],
    ));
    let v = ok(&refine(
        &w,
        pulled.path(),
        &url,
        &[],
        &["verify", "//packs:a"],
    ));
    assert!(v.contains("local") && v.contains("signed by `old`"), "{v}");
    let sv = ok(&refine(
        &w,
        pulled.path(),
        &url,
        &[],
        &["store", "verify", "--signatures"],
    ));
    assert!(sv.contains("each is signed by a trusted key"), "{sv}");

    // The old key is removed: refused at once, in the registry and in the local store.
    trusting(&w, &[("new", &new)]);
    let v = refine(&w, pulled.path(), &url, &[], &["verify", "//packs:a"]);
    assert_eq!(v.status.code(), Some(1));
    let text = stdout(&v);
    assert!(
        text.lines()
            .filter(|l| l.contains("//packs:a"))
            .all(|l| l.contains("NOT TRUSTED")),
        "{text}"
    );
    let plan = refine(
        &w,
        tempfile::tempdir().unwrap().path(),
        &url,
        &[],
        &["plan", "//packs:a", "-o", "json"],
    );
    assert_ne!(plan_json(&plan)[1]["status"], "cached");
    verify_clean(pulled.path());
}

#[test]
fn keys_are_generated_owner_only_and_never_overwritten_or_printed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = run_refine(
        Path::new("/"),
        &[
            "key",
            "generate",
            "ci-2026",
            "--dir",
            dir.path().to_str().unwrap(),
        ],
    );
    let text = ok(&out);
    let private = dir.path().join("ci-2026.key");
    let pem = fs_err::read_to_string(&private).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let mode = fs_err::metadata(&private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let secret_line = pem.lines().nth(1).unwrap();
    assert!(!text.contains(secret_line) && !stderr(&out).contains(secret_line));

    let again = run_refine(
        Path::new("/"),
        &[
            "key",
            "generate",
            "ci-2026",
            "--dir",
            dir.path().to_str().unwrap(),
        ],
    );
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(fs_err::read_to_string(&private).unwrap(), pem);
    for bad in ["", "../x", ".hidden", "a b"] {
        let o = run_refine(
            Path::new("/"),
            &[
                "key",
                "generate",
                bad,
                "--dir",
                dir.path().to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
    }

    // A bad key in the environment: a diagnostic naming where it came from, never its text.
    let w = tiny();
    let o = Command::new(refine_bin())
        .args(["plan", "//packs:a"])
        .current_dir(w.path())
        .env("NO_COLOR", "1")
        .env(
            "REFINE_SIGNING_KEY",
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n",
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("REFINE_SIGNING_KEY"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("c2VjcmV0"), "{}", stderr(&o));
}

#[test]
fn a_bad_trust_block_points_at_the_line() {
    let w = tiny();
    let path = w.path().join("workspace.kdl");
    let text = fs_err::read_to_string(&path).unwrap();
    fs_err::write(
        &path,
        format!("{text}trust {{\n    key \"ci\" \"ed25519:abcd\"\n    key \"solo\"\n}}\n"),
    )
    .unwrap();
    let o = w.refine(&["query", "//..."]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("is not an Ed25519 public key"), "{e}");
    assert!(e.contains("takes a name and a public key"), "{e}");
    assert!(e.contains("workspace.kdl:"), "{e}");
}

/// The in-toto project's reference implementation verifies refine's envelope with the
/// public key, computes the same key id, and rejects a tampered envelope.
#[test]
fn the_reference_implementation_verifies_refines_envelopes() {
    assert!(
        Path::new(INTOTO_LIB).join("securesystemslib").is_dir(),
        "securesystemslib is missing from {INTOTO_LIB}: run .ci/setup.d/signing.sh"
    );
    let keys = tempfile::tempdir().unwrap();
    let ci = generate(keys.path(), "ci");
    let w = tiny();
    let store = tempfile::tempdir().unwrap();
    let built = Command::new(refine_bin())
        .args([
            "--store",
            store.path().to_str().unwrap(),
            "build",
            "//packs:a",
        ])
        .current_dir(w.path())
        .env("NO_COLOR", "1")
        .env("REFINE_SIGNING_KEY_FILE", &ci.file)
        .env_remove("REFINE_REMOTE")
        .output()
        .unwrap();
    ok(&built);
    let lists: Vec<PathBuf> = fs_err::read_dir(store.path().join("signatures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(lists.len(), 2, "the base and `a`, each signed: {lists:?}");
    let manifest = format!("sha256:{}", lists[0].file_name().unwrap().to_str().unwrap());
    let line = fs_err::read_to_string(&lists[0]).unwrap();
    let envelope = store
        .path()
        .join("blobs/sha256")
        .join(line.trim().strip_prefix("sha256:").unwrap());
    let tampered = store.path().join("../tampered.json");
    let mut env: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(&envelope).unwrap()).unwrap();
    let payload = env["payload"].as_str().unwrap().to_string();
    env["payload"] = serde_json::Value::String(format!("e30{}", &payload[3..]));
    fs_err::write(&tampered, env.to_string()).unwrap();

    const SCRIPT: &str = r#"
import json, sys
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
from securesystemslib.signer._utils import compute_default_keyid
path, public, expect_subject = sys.argv[1], sys.argv[2], sys.argv[3]
keyval = {"public": public}
keyid = compute_default_keyid("ed25519", "ed25519", keyval)
key = SSlibKey(keyid, "ed25519", "ed25519", keyval)
env = Envelope.from_dict(json.load(open(path)))
try:
    env.verify([key], 1)
except Exception as e:
    print("REJECTED", type(e).__name__, e)
    sys.exit(3)
statement = json.loads(env.payload)
assert statement["_type"] == "https://in-toto.io/Statement/v1", statement["_type"]
assert "sha256:" + statement["subject"][0]["digest"]["sha256"] == expect_subject
print("VERIFIED", keyid)
"#;
    let public = ci.public.strip_prefix("ed25519:").unwrap();
    let run = |file: &Path| {
        Command::new("python3")
            .args(["-c", SCRIPT, file.to_str().unwrap(), public, &manifest])
            .env("PYTHONPATH", INTOTO_LIB)
            .output()
            .expect("python3")
    };
    let good = run(&envelope);
    assert!(
        good.status.success() && stdout(&good).starts_with("VERIFIED"),
        "{}{}",
        stdout(&good),
        stderr(&good)
    );
    let bad = run(&tampered);
    assert_eq!(
        bad.status.code(),
        Some(3),
        "{}{}",
        stdout(&bad),
        stderr(&bad)
    );
    assert!(stdout(&bad).starts_with("REJECTED"), "{}", stdout(&bad));
}
