//! The pinned resolver: uv's wheel for the host, fetched by sha256 like any pinned tool, and
//! `uv pip compile` run for a target platform (`--python-platform s390x-manylinux_2_28`) with
//! the user's package indexes.

use std::path::{Path, PathBuf};
use std::process::Command;

use refine_fetch::{Fetchable, PipConfig};
use refine_rules::rules::request::Request;
use refine_rules::rules::{Pinned, Workspace};
use refine_store::LocalStore;

use super::pylock::{self, PyLock};
use crate::ops::OpError;

/// The resolver, unpacked.
pub struct Uv {
    program: PathBuf,
    indexes: Vec<String>,
    /// uv runs at once ([`AT_ONCE`]).
    running: (std::sync::Mutex<usize>, std::sync::Condvar),
    /// The interpreter uv finds for each Python version, found once per lock: uv needs one
    /// even to resolve wheels only, and finding it anew (a pyenv shim, for one, is a shell
    /// script uv runs) cost ~0.5 s a run here, ten runs a lock.
    interpreters: std::sync::Mutex<std::collections::BTreeMap<String, Option<PathBuf>>>,
}

/// How many uv runs go at once. Each run looks up the index's hosts anew (A and AAAA), and
/// a DNS server may drop queries that arrive together: this machine's drops them past about
/// ten at once (12 parallel `getent ahosts` of the two PyPI hosts: 5.0 s, glibc's retry
/// timeout; 8: 13 ms). Measured with the demo (2 resolutions, then 8 build-requirement ones):
/// 4 at once stalled every lock for ~4.4 s (6.2–6.6 s), 3 stalled two in five, 2 never
/// (2.2–2.5 s). An earlier, quieter resolver gave 2.4 s with 4 at once and 3.5 s with 2.
const AT_ONCE: usize = 2;

/// What one `uv pip compile` reads: files in a folder of its own (uv runs in parallel).
pub struct Input {
    requirements: PathBuf,
    constraints: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

fn own_dir(work: &Path) -> Result<tempfile::TempDir, OpError> {
    tempfile::tempdir_in(work).map_err(OpError::io("write", work))
}

fn write(path: &Path, text: &str) -> Result<(), OpError> {
    fs_err::write(path, text).map_err(OpError::io("write", path))
}

impl Input {
    /// The request's requirements files and packages; its constraints files and override
    /// versions as constraints.
    pub fn of_request(ws: &Workspace, request: &Request, work: &Path) -> Result<Input, OpError> {
        let own = own_dir(work)?;
        let dir = own.path();
        let mut req = String::new();
        for f in &request.requirements {
            req.push_str(&format!("-r {}\n", ws.root.join(&f.path).display()));
        }
        for p in &request.packages {
            req.push_str(&format!("{}\n", p.requirement));
        }
        let mut con = String::new();
        for f in &request.constraints {
            con.push_str(&format!("-c {}\n", ws.root.join(&f.path).display()));
        }
        for o in &request.overrides {
            if let Some(v) = &o.version {
                con.push_str(&format!("{}{v}\n", o.package));
            }
        }
        let requirements = dir.join("request.in");
        write(&requirements, &req)?;
        let constraints = if con.is_empty() {
            None
        } else {
            let path = dir.join("constraints.in");
            write(&path, &con)?;
            Some(path)
        };
        Ok(Input {
            requirements,
            constraints,
            _dir: own,
        })
    }

    /// Requirements given one per line (an sdist's build requirements), with constraints.
    pub fn of_lines(
        lines: &[String],
        constraints: &[String],
        work: &Path,
    ) -> Result<Input, OpError> {
        let own = own_dir(work)?;
        let dir = own.path();
        let requirements = dir.join("build.in");
        write(&requirements, &(lines.join("\n") + "\n"))?;
        let constraints = if constraints.is_empty() {
            None
        } else {
            let path = dir.join("build-constraints.in");
            write(&path, &(constraints.join("\n") + "\n"))?;
            Some(path)
        };
        Ok(Input {
            requirements,
            constraints,
            _dir: own,
        })
    }
}

/// Where the program of the pinned uv wheel is unpacked: beside the store's temporary files,
/// once per wheel.
fn program_path(store: &LocalStore, pin: &Pinned) -> PathBuf {
    store
        .tmp_dir()
        .join(format!("uv-{}", &pin.sha256.0[..16]))
        .join("uv")
}

impl Uv {
    /// The uv an earlier run unpacked from the pinned wheel, if there is one, without the
    /// user's indexes yet ([`Uv::with_indexes`]): a lock finds its interpreters with it while
    /// pip's configuration is read.
    pub fn unpacked(store: &LocalStore, pin: &Pinned) -> Option<Uv> {
        let program = program_path(store, pin);
        program.is_file().then(|| Uv {
            program,
            indexes: Vec::new(),
            running: Default::default(),
            interpreters: Default::default(),
        })
    }

    /// This uv, resolving against the indexes of `pip`.
    pub fn with_indexes(mut self, pip: &PipConfig) -> Uv {
        self.indexes = pip.indexes.clone();
        self
    }

    /// Finds the interpreter of each of `pythons` (see [`Uv::interpreter`]), all at once.
    pub fn find_interpreters(&self, pythons: &[String]) {
        std::thread::scope(|s| {
            for python in pythons {
                s.spawn(|| self.interpreter(python));
            }
        });
    }

    /// Fetches the pinned uv wheel into the store (verified by sha256) and unpacks its
    /// program beside the store's temporary files, once per wheel.
    pub fn install(store: &LocalStore, pip: &PipConfig, pin: &Pinned) -> Result<Uv, OpError> {
        let work = store.tmp_dir();
        let (digest, _) = refine_fetch::fetch(store, &Fetchable::from_pinned(pin), pip, &work)?;
        let program = program_path(store, pin);
        let dir = program.parent().unwrap_or(&work).to_path_buf();
        if !program.is_file() {
            let wheel = store.existing_blob_path(&digest)?;
            let file = fs_err::File::open(&wheel).map_err(|e| OpError::io("read", &wheel)(e))?;
            let mut zip = zip::ZipArchive::new(file).map_err(|e| OpError::BadResolver {
                wheel: pin.requirement(),
                reason: e.to_string(),
            })?;
            let index = (0..zip.len())
                .find(|&i| {
                    zip.name_for_index(i)
                        .is_some_and(|n| n.is_ok_and(|n| n.ends_with(".data/scripts/uv")))
                })
                .ok_or_else(|| OpError::BadResolver {
                    wheel: pin.requirement(),
                    reason: "it holds no `*.data/scripts/uv` program".into(),
                })?;
            fs_err::create_dir_all(&dir).map_err(|e| OpError::io("write", &dir)(e))?;
            let tmp = dir.join("uv.partial");
            let mut out = fs_err::File::create(&tmp).map_err(|e| OpError::io("write", &tmp)(e))?;
            let mut entry = zip.by_index(index).map_err(|e| OpError::BadResolver {
                wheel: pin.requirement(),
                reason: e.to_string(),
            })?;
            std::io::copy(&mut entry, &mut out).map_err(OpError::io("write", &tmp))?;
            use std::os::unix::fs::PermissionsExt as _;
            fs_err::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| OpError::io("write", &tmp)(e))?;
            fs_err::rename(&tmp, &program).map_err(|e| OpError::io("write", &program)(e))?;
        }
        Ok(Uv {
            program,
            indexes: pip.indexes.clone(),
            running: Default::default(),
            interpreters: Default::default(),
        })
    }

    /// The interpreter `uv python find` gives for `python`, or none (uv then looks itself,
    /// and says what it lacks). Found once per Python version; two versions at once.
    fn interpreter(&self, python: &str) -> Option<PathBuf> {
        let known = |m: &std::sync::Mutex<std::collections::BTreeMap<String, Option<PathBuf>>>| {
            m.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(python)
                .cloned()
        };
        if let Some(found) = known(&self.interpreters) {
            return found;
        }
        let out = Command::new(&self.program)
            .args([
                "python",
                "find",
                "--no-config",
                "--no-python-downloads",
                python,
            ])
            .output()
            .ok();
        let found = out.and_then(|out| {
            let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
            (out.status.success() && path.is_absolute()).then_some(path)
        });
        self.interpreters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(python.to_string())
            .or_insert(found)
            .clone()
    }

    /// Resolves `input` for `platform` (`s390x-manylinux_2_28`) and Python `python`; with
    /// `only_binary`, wheels only. The error is uv's own message.
    pub fn compile(
        &self,
        input: &Input,
        platform: &str,
        python: &str,
        only_binary: bool,
        work: &Path,
    ) -> Result<PyLock, String> {
        let dir = tempfile::tempdir_in(work).map_err(|e| e.to_string())?;
        let out = dir.path().join("pylock.toml");
        let mut cmd = Command::new(&self.program);
        cmd.args(["pip", "compile", "--no-config", "--quiet", "--no-header"])
            .arg(&input.requirements)
            .args(["--format", "pylock.toml", "--python-platform", platform])
            .args(["--python-version", python])
            .arg("-o")
            .arg(&out);
        if let Some(interpreter) = self.interpreter(python) {
            cmd.arg("--python").arg(interpreter);
        }
        if let Some(c) = &input.constraints {
            cmd.arg("-c").arg(c);
        }
        if only_binary {
            cmd.args(["--only-binary", ":all:"]);
        }
        for (i, index) in self.indexes.iter().enumerate() {
            cmd.arg(if i == 0 {
                "--index-url"
            } else {
                "--extra-index-url"
            })
            .arg(index);
        }
        let output = {
            let (count, freed) = &self.running;
            let mut n = count
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while *n >= AT_ONCE {
                n = freed
                    .wait(n)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            *n += 1;
            drop(n);
            let output = cmd.output();
            *count
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) -= 1;
            freed.notify_one();
            output.map_err(|e| format!("cannot run `{}`: {e}", self.program.display()))?
        };
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        let text = fs_err::read_to_string(&out).map_err(|e| e.to_string())?;
        pylock::parse(&text)
    }
}
