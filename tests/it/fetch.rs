//! `refine fetch`: sources of targets into the store, verified; a wrong sha256 stores nothing.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use crate::common::*;

/// A real HTTP server (Python's http.server) on a free loopback port, serving `dir`.
struct HttpServer {
    child: Child,
    port: u16,
}

impl HttpServer {
    fn start(dir: &std::path::Path) -> HttpServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        // It prints "Serving HTTP on …" once it listens: wait for that line.
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        assert!(
            line.starts_with("Serving HTTP"),
            "http.server did not start: {line:?}"
        );
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        HttpServer { child, port }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    out.stdin.as_ref().unwrap().write_all(bytes).unwrap();
    let o = out.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout)[..64].to_string()
}

fn pack_workspace(url: &str, sha: &str) -> TempWorkspace {
    TempWorkspace::new(&[
        ("workspace.kdl", WORKSPACE),
        ("rules/bases.kdl", BASES),
        (
            "rules/packs.kdl",
            &format!(
                "pack \"p\" {{\n    version \"1\"\n    source url=\"{url}\" sha256=\"{sha}\"\n    recipe \"r.sh\"\n}}\n"
            ),
        ),
        ("r.sh", "#!/bin/sh\n"),
    ])
}

#[test]
fn url_sources_are_fetched_and_verified() {
    let served = tempfile::tempdir().unwrap();
    let body = b"the source tarball\n".repeat(1000);
    fs_err::write(served.path().join("src.tar.gz"), &body).unwrap();
    let server = HttpServer::start(served.path());
    let url = format!("http://127.0.0.1:{}/src.tar.gz", server.port);
    let sha = sha256_hex(&body);
    let store = tempfile::tempdir().unwrap();
    let w = pack_workspace(&url, &sha);
    let store_arg = store.path().display().to_string();

    let out = w.refine(&["--store", &store_arg, "fetch", "//packs:p"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("fetched {url} sha256:{sha}")),
        "{}",
        stdout(&out)
    );
    let blob = store.path().join("blobs/sha256").join(&sha);
    assert_eq!(fs_err::read(&blob).unwrap(), body);
    // Again: nothing to do.
    let out = w.refine(&["--store", &store_arg, "fetch", "//packs:p"]);
    assert!(
        stdout(&out).contains("0 fetched, 1 already in the store"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_wrong_sha256_is_a_hard_error_and_stores_nothing() {
    let served = tempfile::tempdir().unwrap();
    let body = b"not what the rule pinned".to_vec();
    fs_err::write(served.path().join("src.tar.gz"), &body).unwrap();
    let server = HttpServer::start(served.path());
    let url = format!("http://127.0.0.1:{}/src.tar.gz", server.port);
    let wrong = "ee55d3edf80167e48ea11a923c7386f4669df67d7994554387f84e7d8b0a2bf0";
    let store = tempfile::tempdir().unwrap();
    let w = pack_workspace(&url, wrong);
    let out = w.refine(&[
        "--store",
        &store.path().display().to_string(),
        "fetch",
        "//packs:p",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("sha256:{}", sha256_hex(&body))),
        "names the actual digest: {err}"
    );
    assert!(
        err.contains(&format!("sha256:{wrong}")),
        "names the expected digest: {err}"
    );
    assert!(!store.path().join("blobs/sha256").join(wrong).exists());
    assert!(
        !store
            .path()
            .join("blobs/sha256")
            .join(sha256_hex(&body))
            .exists(),
        "the unverified file was stored"
    );
}

#[test]
fn pypi_files_are_found_by_sha256_on_the_configured_index() {
    // A real PyPI file (the index pip is configured with must be reachable: CI has PyPI).
    let store = tempfile::tempdir().unwrap();
    let w = TempWorkspace::new(&[
        ("workspace.kdl", WORKSPACE),
        ("rules/bases.kdl", BASES),
        ("rules/runtimes.kdl", RUNTIMES),
        (
            "rules/wheels.kdl",
            &format!(
                "wheel \"m\" {{\n    source pypi=\"MarkupSafe\" version=\"3.0.2\" sha256=\"{SHA}\"\n    python \"3.11\"\n    runtime \"//runtimes:py\"\n}}\n"
            ),
        ),
    ]);
    let out = w.refine(&[
        "--store",
        &store.path().display().to_string(),
        "fetch",
        "//wheels:m-py311",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(store.path().join("blobs/sha256").join(SHA).is_file());
    // The frontend wheel pinned in workspace.kdl came too.
    assert!(
        store
            .path()
            .join("blobs/sha256/1d61c0887fa860c01971625baae8bdd338e517b836a2f70dd1f7aa3a6b2fc5b5")
            .is_file()
    );
}
