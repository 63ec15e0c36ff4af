//! Foreign architectures: whether the kernel can run another arch's programs through
//! `qemu-user`, registered in `binfmt_misc` with the `F` (fix binary) flag.
//!
//! `F` makes the kernel open the interpreter when it is registered, so it still works after
//! `pivot_root` into a root that holds no `qemu`. Without `F` the kernel looks the interpreter
//! up inside the sandbox at every `execve`, and fails.

use std::path::{Path, PathBuf};

use crate::error::SandboxError;

const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// One `binfmt_misc` entry, as the kernel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The entry's file name, such as `qemu-s390x`.
    pub name: String,
    pub enabled: bool,
    pub interpreter: Option<PathBuf>,
    /// The flag letters, such as `PF`.
    pub flags: String,
}

impl Registration {
    pub fn fix_binary(&self) -> bool {
        self.flags.contains('F')
    }
}

/// The architecture this process runs as, in `uname -m` spelling.
pub fn host_arch() -> &'static str {
    std::env::consts::ARCH
}

/// Maps Debian's architecture names to the `uname -m` ones; others pass through.
pub fn normalize_arch(arch: &str) -> &str {
    match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "ppc64el" => "ppc64le",
        "armhf" | "armel" => "arm",
        other => other,
    }
}

/// Whether `arch` differs from the host's.
pub fn is_foreign(arch: &str) -> bool {
    normalize_arch(arch) != host_arch()
}

/// Checks that programs of `arch` can run: nothing to check for the host's arch; otherwise
/// `qemu-<arch>` must be registered, enabled and have the `F` flag.
pub fn check(arch: &str) -> Result<(), SandboxError> {
    let arch = normalize_arch(arch);
    if !is_foreign(arch) {
        return Ok(());
    }
    let problem = |problem: String| {
        Err(SandboxError::Binfmt {
            arch: arch.to_owned(),
            problem,
        })
    };
    if !Path::new(BINFMT_DIR).join("status").exists() {
        return problem(format!("`{BINFMT_DIR}` is not mounted"));
    }
    let path = Path::new(BINFMT_DIR).join(format!("qemu-{arch}"));
    let text = match fs_err::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return problem(format!("`{}` does not exist", path.display()));
        }
        Err(err) => return problem(err.to_string()),
    };
    let registration = parse(&format!("qemu-{arch}"), &text);
    if !registration.enabled {
        return problem(format!("`{}` is disabled", path.display()));
    }
    if !registration.fix_binary() {
        return problem(format!(
            "`{}` has flags `{}` without `F`, so the emulator cannot be found inside the sandbox",
            path.display(),
            registration.flags
        ));
    }
    Ok(())
}

/// Every `binfmt_misc` registration of the host; an error says why none can be read.
pub fn registrations() -> Result<Vec<Registration>, String> {
    if !Path::new(BINFMT_DIR).join("status").exists() {
        return Err(format!("`{BINFMT_DIR}` is not mounted"));
    }
    let mut found = Vec::new();
    for entry in fs_err::read_dir(BINFMT_DIR).map_err(|err| err.to_string())? {
        let entry = entry.map_err(|err| err.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "status" || name == "register" {
            continue;
        }
        if let Ok(text) = fs_err::read_to_string(entry.path()) {
            found.push(parse(&name, &text));
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Parses the text of `/proc/sys/fs/binfmt_misc/<name>`.
pub fn parse(name: &str, text: &str) -> Registration {
    let mut registration = Registration {
        name: name.to_owned(),
        enabled: false,
        interpreter: None,
        flags: String::new(),
    };
    for line in text.lines() {
        if line == "enabled" {
            registration.enabled = true;
        } else if let Some(interpreter) = line.strip_prefix("interpreter ") {
            registration.interpreter = Some(PathBuf::from(interpreter));
        } else if let Some(flags) = line.strip_prefix("flags:") {
            registration.flags = flags.trim().to_owned();
        }
    }
    registration
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_registration() {
        let text = "enabled\ninterpreter /usr/libexec/qemu-binfmt/s390x-binfmt-P\nflags: PF\n\
                    offset 0\nmagic 7f454c46\nmask ffffffff\n";
        let r = parse("qemu-s390x", text);
        assert!(r.enabled && r.fix_binary());
        assert_eq!(
            r.interpreter.as_deref(),
            Some(Path::new("/usr/libexec/qemu-binfmt/s390x-binfmt-P"))
        );
        let r = parse("qemu-s390x", "disabled\ninterpreter /x\nflags: P\n");
        assert!(!r.enabled && !r.fix_binary());
    }

    #[test]
    fn host_arch_needs_no_registration() {
        assert!(check(host_arch()).is_ok());
        assert!(!is_foreign(host_arch()));
    }

    #[test]
    fn missing_registration_says_how_to_fix_it() {
        let err = check("nosucharch").expect_err("no such registration");
        let text = err.to_string();
        assert!(text.contains("apt-get install qemu-user-static"), "{text}");
        assert!(
            text.contains("update-binfmts --enable qemu-nosucharch"),
            "{text}"
        );
    }
}
