//! Test harness for `refine serve`: the real binary on a free loopback port over a workspace,
//! with a token file of its own; stopped with SIGTERM on drop (SIGKILL with `kill`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::refine_bin;
use super::registry::{free_port, http_status, wait_until};

pub const TOKEN: &str = "test-token-6c1f0e";

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub token_file: PathBuf,
    pub log: PathBuf,
    workspace: PathBuf,
    store: PathBuf,
    /// Global options (before `serve`) and `serve`'s own.
    globals: Vec<String>,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `refine -C workspace --store store serve` with `extra` arguments (such as
    /// `--public-reads`, `--database FILE`, or global options placed before `serve` with
    /// [`Server::start_with_globals`]).
    pub fn start(workspace: &Path, store: &Path, extra: &[&str]) -> Server {
        Self::start_with_globals(workspace, store, &[], extra)
    }

    pub fn start_with_globals(
        workspace: &Path,
        store: &Path,
        globals: &[&str],
        extra: &[&str],
    ) -> Server {
        Self::start_with_env(workspace, store, globals, extra, &[])
    }

    /// Like [`Server::start_with_globals`], with environment variables for the server (such
    /// as the mirror's `AWS_*` credentials).
    pub fn start_with_env(
        workspace: &Path,
        store: &Path,
        globals: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        fs_err::write(&token_file, format!("{TOKEN}\n")).unwrap();
        let log = dir.path().join("serve.log");
        let owned = |args: &[&str]| args.iter().map(ToString::to_string).collect();
        let mut s = Server {
            child: Command::new("true").spawn().unwrap(),
            port: 0,
            token_file,
            log,
            workspace: workspace.to_path_buf(),
            store: store.to_path_buf(),
            globals: owned(globals),
            extra: owned(extra),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            _dir: dir,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let port = free_port();
        let mut cmd = Command::new(refine_bin());
        cmd.arg("-C")
            .arg(&self.workspace)
            .arg("--store")
            .arg(&self.store)
            .args(&self.globals)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--token-file")
            .arg(&self.token_file)
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs_err::File::create(&self.log).unwrap().into_file());
        let mut child = cmd.spawn().expect("start refine serve");
        wait_until("refine serve", &mut child, || {
            http_status(port, "GET", "/healthz", &[]) == Some(200)
        });
        self.child = child;
        self.port = port;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        fs_err::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it with SIGTERM and waits.
    pub fn stop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }

    /// Kills it with SIGKILL and waits.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same workspace, store, database and token (a new port).
    pub fn restart(&mut self) {
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}
