//! What this host offers the sandbox, for `refine doctor`: kernel, namespaces, `binfmt_misc`
//! registrations and the emulators behind them.

use std::path::Path;

use crate::binfmt::{self, Registration};

/// A description of the host; every probe that failed says why.
#[derive(Debug, Clone)]
pub struct HostReport {
    /// `uname -sr`.
    pub kernel: String,
    pub arch: &'static str,
    /// Each namespace kind the sandbox needs, and whether this kernel has it.
    pub namespaces: Vec<(&'static str, bool)>,
    /// `/proc/sys/user/max_user_namespaces` (0 disables user namespaces).
    pub max_user_namespaces: Option<String>,
    pub binfmt: Result<Vec<Emulator>, String>,
}

/// One `binfmt_misc` registration, and what its interpreter says about itself.
#[derive(Debug, Clone)]
pub struct Emulator {
    pub registration: Registration,
    /// The first line of `INTERPRETER --version`.
    pub version: Result<String, String>,
}

pub fn host_report() -> HostReport {
    let kernel = match nix::sys::utsname::uname() {
        Ok(uts) => format!(
            "{} {}",
            uts.sysname().to_string_lossy(),
            uts.release().to_string_lossy()
        ),
        Err(err) => format!("unknown ({err})"),
    };
    let namespaces = [
        ("user", "user"),
        ("mount", "mnt"),
        ("pid", "pid"),
        ("network", "net"),
        ("ipc", "ipc"),
        ("uts", "uts"),
    ]
    .into_iter()
    .map(|(name, file)| (name, Path::new("/proc/self/ns").join(file).exists()))
    .collect();
    let max_user_namespaces = fs_err::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .map(|text| text.trim().to_owned());
    let binfmt = binfmt::registrations().map(|registrations| {
        registrations
            .into_iter()
            .map(|registration| {
                let version = match &registration.interpreter {
                    Some(interpreter) => version_of(interpreter),
                    None => Err("no interpreter".to_owned()),
                };
                Emulator {
                    registration,
                    version,
                }
            })
            .collect()
    });
    HostReport {
        kernel,
        arch: binfmt::host_arch(),
        namespaces,
        max_user_namespaces,
        binfmt,
    }
}

/// Debian's interpreters (`s390x-binfmt-P`) are symlinks to `qemu-s390x-static`, which refuses
/// `--version` under the link's name, so the link is resolved first.
fn version_of(interpreter: &Path) -> Result<String, String> {
    let real = fs_err::canonicalize(interpreter).map_err(|err| err.to_string())?;
    let output = std::process::Command::new(&real)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|err| format!("`{}`: {err}", real.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| format!("`{} --version` printed nothing", real.display()))
}
