//! The S3 wheel mirror against `s3s-fs` (a real S3 server over a folder) on loopback: a
//! wheel put through refine lands in the bucket with a PEP 503 index, and `pip install
//! --index-url <bucket website>/simple` installs it. The bucket is served as a static website
//! (what S3 website hosting or a CDN does: `…/simple/<project>/` → `index.html`) by Python's
//! `http.server` over s3s-fs's folder.

use crate::common::registry;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::common::*;
use registry::{free_port, http_status, wait_until};

pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn s3s_fs() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    let installed = home.join("bin/s3s-fs");
    if installed.is_file() {
        return installed;
    }
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("s3s-fs"))
            .find(|p| p.is_file())
    });
    found.expect("s3s-fs is missing: cargo install s3s-fs@0.14.1 --features binary --locked (see .ci/setup.d/remote.sh)")
}

/// A minimal pure-Python wheel, written with Python's zipfile.
fn make_wheel(dir: &std::path::Path) -> PathBuf {
    let script = r#"
import base64, hashlib, sys, zipfile
name = "refine_tiny-0.1-py3-none-any.whl"
files = {
    "refine_tiny/__init__.py": b"VALUE = 42\n",
    "refine_tiny-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: refine-tiny\nVersion: 0.1\n",
    "refine_tiny-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: refine-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = ""
for path, data in files.items():
    h = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record += f"{path},sha256={h},{len(data)}\n"
record += "refine_tiny-0.1.dist-info/RECORD,,\n"
with zipfile.ZipFile(sys.argv[1] + "/" + name, "w") as z:
    for path, data in files.items():
        z.writestr(path, data)
    z.writestr("refine_tiny-0.1.dist-info/RECORD", record)
"#;
    let st = Command::new("python3")
        .args(["-c", script, dir.to_str().unwrap()])
        .status()
        .expect("python3 is missing (see .ci/setup.d/remote.sh)");
    assert!(st.success());
    dir.join("refine_tiny-0.1-py3-none-any.whl")
}

#[test]
fn wheels_in_the_s3_mirror_install_with_pip() {
    let root = tempfile::tempdir().unwrap();
    fs_err::create_dir_all(root.path().join("wheels")).unwrap();
    let s3_port = free_port();
    let mut s3 = Command::new(s3s_fs())
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &s3_port.to_string(),
            "--access-key",
            "refinekey",
            "--secret-key",
            "refinesecret",
        ])
        .arg(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start s3s-fs");
    wait_until("s3s-fs", &mut s3, || {
        http_status(s3_port, "GET", "/", &[]).is_some()
    });
    let _s3 = Server(s3);

    let ws = format!(
        "workspace \"m\"\nstore {{\n    mirror \"s3://wheels\" endpoint=\"http://127.0.0.1:{s3_port}\" region=\"us-east-1\"\n}}\n"
    );
    let w = TempWorkspace::new(&[("workspace.kdl", &ws)]);
    let wheel = make_wheel(w.path());
    let out = Command::new(refine_bin())
        .args(["mirror", wheel.to_str().unwrap()])
        .current_dir(w.path())
        .env("NO_COLOR", "1")
        .env("AWS_ACCESS_KEY_ID", "refinekey")
        .env("AWS_SECRET_ACCESS_KEY", "refinesecret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(!stderr(&out).contains("refinesecret"));

    // The layout, as s3s-fs stored it.
    let bucket = root.path().join("wheels");
    let page = fs_err::read_to_string(bucket.join("simple/refine-tiny/index.html")).unwrap();
    let sha = {
        let o = Command::new("sha256sum").arg(&wheel).output().unwrap();
        String::from_utf8(o.stdout).unwrap()[..64].to_string()
    };
    assert!(
        page.contains(&format!(
            "../../packages/refine-tiny/refine_tiny-0.1-py3-none-any.whl#sha256={sha}"
        )),
        "{page}"
    );
    let index = fs_err::read_to_string(bucket.join("simple/index.html")).unwrap();
    assert!(index.contains("href=\"refine-tiny/\""), "{index}");

    // Served as a static website, pip installs from it.
    let web_port = free_port();
    let mut web = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(web_port.to_string())
        .arg("--directory")
        .arg(&bucket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("http.server", &mut web, || {
        http_status(web_port, "GET", "/simple/", &[]) == Some(200)
    });
    let _web = Server(web);
    let target = tempfile::tempdir().unwrap();
    let index = format!("http://127.0.0.1:{web_port}/simple");
    pip_install(&index, "refine-tiny", target.path());
    assert_eq!(
        fs_err::read_to_string(target.path().join("refine_tiny/__init__.py")).unwrap(),
        "VALUE = 42\n"
    );
}
