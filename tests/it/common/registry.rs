//! Test harness for the remote store: Debian's `docker-registry` (the CNCF distribution
//! registry 2.8) on a free loopback port, with a storage folder of its own and optional
//! htpasswd auth; killed on drop. Readiness is awaited by polling `GET /v2/`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The status code of a plain HTTP/1.0 request to `127.0.0.1:port`, or `None` if nothing
/// answers.
pub fn http_status(port: u16, method: &str, path: &str, headers: &[&str]) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Polls until `ready()` or the process exits; panics with `what` after 60 s.
pub fn wait_until(what: &str, child: &mut Child, mut ready: impl FnMut() -> bool) {
    // A deadline only bounds a hung server; readiness itself is the condition waited on.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if ready() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before it was ready: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not become ready within 60 s"
        );
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub auth: Option<(String, String)>,
    child: Option<Child>,
    /// Whether the access log goes to `registry.log`.
    logged: bool,
}

impl Registry {
    pub fn start() -> Registry {
        Self::start_with(None)
    }

    /// Like [`Registry::start`], with the registry's access log kept (see [`Registry::requests`]).
    pub fn start_logged() -> Registry {
        let mut r = Self::configure(None, "info");
        r.logged = true;
        r.spawn();
        r
    }

    /// With htpasswd auth for `user` / `password` (bcrypt, `htpasswd -B`).
    pub fn start_with(auth: Option<(&str, &str)>) -> Registry {
        let mut r = Self::configure(auth, "error");
        r.spawn();
        r
    }

    fn configure(auth: Option<(&str, &str)>, level: &str) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).is_file(),
            "{REGISTRY_BIN} is missing: apt-get install docker-registry (see .ci/setup.d/remote.sh)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let r = Registry {
            dir,
            port: free_port(),
            auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
            child: None,
            logged: false,
        };
        let mut config = format!(
            "version: 0.1\nlog:\n  level: {level}\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{}\n",
            r.storage().display(),
            r.port
        );
        if let Some((user, password)) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd is missing: apt-get install apache2-utils (see .ci/setup.d/remote.sh)");
            assert!(out.status.success(), "htpasswd failed");
            let file = r.dir.path().join("htpasswd");
            fs_err::write(&file, &out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: refine-test\n    path: {}\n",
                file.display()
            ));
        }
        fs_err::write(r.dir.path().join("config.yml"), config).unwrap();
        r
    }

    /// The GET, HEAD and PUT requests the registry logged so far, as `METHOD /path` (a logged
    /// registry only).
    pub fn requests(&self) -> Vec<String> {
        self.all_requests()
            .into_iter()
            .filter(|r| r.starts_with("GET ") || r.starts_with("HEAD ") || r.starts_with("PUT "))
            .collect()
    }

    /// Every request the registry logged so far, as `METHOD /path?query`.
    pub fn all_requests(&self) -> Vec<String> {
        assert!(
            self.logged,
            "start the registry with `Registry::start_logged`"
        );
        let log = fs_err::read_to_string(self.dir.path().join("registry.log")).unwrap();
        log.lines()
            .filter_map(|line| {
                let request = line.split('"').nth(1)?;
                let (method_path, _) = request.rsplit_once(' ')?;
                Some(method_path.to_string())
            })
            .collect()
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(&mut self) {
        let (out, err) = if self.logged {
            let log = fs_err::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.path().join("registry.log"))
                .expect("open the registry's log");
            let copy = log.try_clone().expect("dup the log");
            (
                Stdio::from(log.into_parts().0),
                Stdio::from(copy.into_parts().0),
            )
        } else {
            (Stdio::null(), Stdio::null())
        };
        let mut child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start docker-registry");
        let port = self.port;
        wait_until("docker-registry", &mut child, || {
            matches!(http_status(port, "GET", "/v2/", &[]), Some(200 | 401))
        });
        self.child = Some(child);
    }

    /// Kills the registry (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The child's pid, for a test that kills it from elsewhere.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    pub fn url(&self, prefix: &str) -> String {
        format!("oci://127.0.0.1:{}/{prefix}", self.port)
    }

    /// The HTTP status of `HEAD /v2/<repo>/manifests/<reference>` (anonymous).
    pub fn manifest_status(&self, repo: &str, reference: &str) -> Option<u16> {
        http_status(
            self.port,
            "HEAD",
            &format!("/v2/{repo}/manifests/{reference}"),
            &["Accept: application/vnd.oci.image.manifest.v1+json"],
        )
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}
