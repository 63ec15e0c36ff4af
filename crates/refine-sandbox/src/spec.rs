//! What to run and under which rules: the input of [`Sandbox::run`](crate::Sandbox::run).
//!
//! A [`Spec`] is plain data. It crosses a process boundary (the parent serialises it for the
//! helper), so it holds no file descriptors; every host path in it is opened by the helper.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::SandboxError;

/// The uid and gid the action runs as inside the sandbox. The invoking user is mapped to them:
/// files it owns on the host appear owned by this uid. Not 0, so that `execve` leaves the action
/// without capabilities even in its own user namespace.
pub const SANDBOX_UID: u32 = 1000;
/// See [`SANDBOX_UID`].
pub const SANDBOX_GID: u32 = 1000;
/// The host name inside the sandbox, fixed so that builds that record it stay reproducible.
pub const SANDBOX_HOSTNAME: &str = "refine";

/// Paths the sandbox itself provides; binds may not land on or under them.
pub const RESERVED: [&str; 5] = ["/proc", "/dev", "/tmp", "/work", "/out"];

/// One action to run in a fresh sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// The host directory that becomes `/`, mounted read-only.
    pub root: PathBuf,
    /// Host paths mounted into the sandbox, in addition to the root.
    pub binds: Vec<Bind>,
    /// What backs `/work` (writable; the default working directory).
    pub work: Writable,
    /// What backs `/out` (writable). Only [`Writable::Host`] keeps outputs after the run.
    pub out: Writable,
    /// The whole environment of the action, in order; nothing else is inherited.
    pub env: Vec<(String, String)>,
    /// The target architecture (`uname -m` spelling, e.g. `s390x`); `None` is the host's.
    pub arch: Option<String>,
    /// The working directory inside the sandbox.
    pub cwd: PathBuf,
    /// The program and its arguments. A program without `/` is looked up in the `PATH` of
    /// [`Spec::env`] (or a default search path) inside the sandbox.
    pub command: Vec<String>,
    /// Wall-clock limit; when it passes, the whole process tree is killed.
    pub timeout: Option<Duration>,
    /// Resource limits of the action.
    pub limits: Limits,
    /// A host file that receives the action's stdout and stderr, interleaved as they arrive.
    pub log: Option<PathBuf>,
    /// Whether the action's stdout and stderr are also copied to the stdout and stderr of the
    /// process that runs the helper (the caller's, when re-executed).
    pub echo: bool,
}

/// A host path mounted at `target` inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

/// What backs a writable directory of the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Writable {
    /// A fresh tmpfs, gone when the sandbox ends.
    Tmpfs,
    /// A host directory, mounted read-write.
    Host(PathBuf),
}

/// Resource limits (`setrlimit`) of the action; `None` keeps the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Address space in bytes (`RLIMIT_AS`). Emulators and some runtimes reserve large address
    /// ranges, so leave this unset under `qemu` unless you know the program.
    pub memory: Option<u64>,
    /// Processes of the sandbox user (`RLIMIT_NPROC`). The sandbox has its own user namespace,
    /// so this counts the sandbox's processes only.
    pub processes: Option<u64>,
    /// Open file descriptors per process (`RLIMIT_NOFILE`).
    pub open_files: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: None,
            processes: Some(4096),
            open_files: Some(65536),
        }
    }
}

impl Bind {
    /// Parses the command-line form `SRC:DST` or `SRC:DST:ro` (`:rw` is accepted too).
    pub fn parse(text: &str) -> Result<Bind, SandboxError> {
        let bad = || SandboxError::InvalidSpec {
            message: format!("Bind `{text}` is not of the form `SRC:DST` or `SRC:DST:ro`"),
        };
        let mut parts: Vec<&str> = text.split(':').collect();
        let read_only = match parts.last() {
            Some(&"ro") if parts.len() == 3 => true,
            Some(&"rw") if parts.len() == 3 => false,
            _ if parts.len() == 2 => false,
            _ => return Err(bad()),
        };
        if parts.len() == 3 {
            parts.pop();
        }
        match parts.as_slice() {
            [source, target] if !source.is_empty() && !target.is_empty() => Ok(Bind {
                source: PathBuf::from(source),
                target: PathBuf::from(target),
                read_only,
            }),
            _ => Err(bad()),
        }
    }
}

impl Spec {
    /// A spec with the defaults: no binds, tmpfs `/work` and `/out`, empty environment, host
    /// arch, cwd `/work`, no timeout, default [`Limits`], no log, no echo.
    pub fn new(root: impl Into<PathBuf>, command: Vec<String>) -> Spec {
        Spec {
            root: root.into(),
            binds: Vec::new(),
            work: Writable::Tmpfs,
            out: Writable::Tmpfs,
            env: Vec::new(),
            arch: None,
            cwd: PathBuf::from("/work"),
            command,
            timeout: None,
            limits: Limits::default(),
            log: None,
            echo: false,
        }
    }

    /// Checks everything that can be checked without touching the file system.
    pub fn validate(&self) -> Result<(), SandboxError> {
        let invalid = |message: String| Err(SandboxError::InvalidSpec { message });
        if !self.root.is_absolute() {
            return invalid(format!(
                "The root `{}` must be an absolute path",
                self.root.display()
            ));
        }
        let Some(program) = self.command.first() else {
            return invalid("The command is empty: give a program to run".into());
        };
        if program.is_empty() {
            return invalid("The program name is empty".into());
        }
        if self.command.iter().any(|arg| arg.contains('\0')) {
            return invalid("An argument of the command contains a NUL byte".into());
        }
        for (key, value) in &self.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return invalid(format!(
                    "Environment variable name `{key}` is not valid: it must be non-empty and \
                     hold no `=`"
                ));
            }
            if value.contains('\0') {
                return invalid(format!("The value of `{key}` contains a NUL byte"));
            }
        }
        if !is_clean_absolute(&self.cwd) {
            return invalid(format!(
                "The working directory `{}` must be an absolute path without `.` or `..`",
                self.cwd.display()
            ));
        }
        if let Some(arch) = &self.arch
            && (arch.is_empty() || !arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return invalid(format!(
                "Architecture `{arch}` is not valid: use the `uname -m` spelling, such as `s390x`"
            ));
        }
        if self.timeout == Some(Duration::ZERO) {
            return invalid("The timeout must be longer than zero".into());
        }
        for writable in [&self.work, &self.out] {
            if let Writable::Host(dir) = writable
                && !dir.is_absolute()
            {
                return invalid(format!("`{}` must be an absolute path", dir.display()));
            }
        }
        for (i, bind) in self.binds.iter().enumerate() {
            if !bind.source.is_absolute() {
                return invalid(format!(
                    "Bind source `{}` must be an absolute path",
                    bind.source.display()
                ));
            }
            if !is_clean_absolute(&bind.target) || bind.target == Path::new("/") {
                return invalid(format!(
                    "Bind target `{}` must be an absolute path below `/`, without `.` or `..`",
                    bind.target.display()
                ));
            }
            if let Some(reserved) = RESERVED
                .iter()
                .find(|reserved| bind.target.starts_with(reserved))
            {
                return invalid(format!(
                    "Bind target `{}` lies in `{reserved}`, which the sandbox provides itself; \
                     pick another place",
                    bind.target.display()
                ));
            }
            for other in &self.binds[..i] {
                if bind.target.starts_with(&other.target) || other.target.starts_with(&bind.target)
                {
                    return invalid(format!(
                        "Bind targets `{}` and `{}` overlap; bind them to separate places",
                        other.target.display(),
                        bind.target.display()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether `path` is absolute and made only of normal components.
pub(crate) fn is_clean_absolute(path: &Path) -> bool {
    let mut components = path.components();
    components.next() == Some(Component::RootDir)
        && components.all(|c| matches!(c, Component::Normal(_)))
        && !path.as_os_str().as_encoded_bytes().contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec::new("/r", vec!["/bin/true".into()])
    }

    #[test]
    fn bind_forms() {
        let bind = Bind::parse("/a:/b:ro").expect("valid");
        assert_eq!(
            (bind.source.to_str(), bind.target.to_str(), bind.read_only),
            (Some("/a"), Some("/b"), true)
        );
        assert!(!Bind::parse("/a:/b").expect("valid").read_only);
        assert!(!Bind::parse("/a:/b:rw").expect("valid").read_only);
        for bad in ["/a", "/a:/b:xx", ":/b", "/a:", "/a:/b:ro:ro"] {
            assert!(Bind::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_rejects_bad_specs() {
        assert!(spec().validate().is_ok());
        type Breaks = Box<dyn Fn(&mut Spec)>;
        let cases: Vec<Breaks> = vec![
            Box::new(|s| s.command.clear()),
            Box::new(|s| s.root = "r".into()),
            Box::new(|s| s.cwd = "/work/../etc".into()),
            Box::new(|s| s.env.push(("A=B".into(), "c".into()))),
            Box::new(|s| s.arch = Some("s390x; rm".into())),
            Box::new(|s| s.timeout = Some(Duration::ZERO)),
            Box::new(|s| {
                s.binds.push(Bind {
                    source: "/a".into(),
                    target: "/proc/x".into(),
                    read_only: true,
                });
            }),
            Box::new(|s| {
                s.binds.push(Bind {
                    source: "/a".into(),
                    target: "/".into(),
                    read_only: true,
                });
            }),
            Box::new(|s| {
                s.binds.push(Bind {
                    source: "a".into(),
                    target: "/a".into(),
                    read_only: true,
                });
            }),
            Box::new(|s| {
                s.binds.push(Bind {
                    source: "/a".into(),
                    target: "/opt".into(),
                    read_only: true,
                });
                s.binds.push(Bind {
                    source: "/b".into(),
                    target: "/opt/x".into(),
                    read_only: true,
                });
            }),
        ];
        for (i, case) in cases.iter().enumerate() {
            let mut s = spec();
            case(&mut s);
            assert!(s.validate().is_err(), "case {i} should be rejected");
        }
    }
}
