//! Bases bootstrapped with debootstrap (or mmdebstrap) on the host: the one kind of action
//! that cannot run in the sandbox (it needs root on the host and the network, like a fetch).
//! The tool's version must be the one the rule pins; the mirror is the user's
//! (`REFINE_DEBIAN_MIRROR`, else the host's apt sources), never a name in code or rules.

use std::path::Path;
use std::process::Command;

/// Why a bootstrap cannot start, or its tree cannot become a root.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BootstrapError {
    #[error("No Debian mirror to bootstrap from")]
    #[diagnostic(help(
        "Set `REFINE_DEBIAN_MIRROR` or add a Debian mirror to the host's apt sources"
    ))]
    NoMirror,
    #[error("Cannot run `dpkg-query` to find `{tool}`'s version")]
    DpkgQuery {
        tool: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{tool}` is not installed (the rule pins {want})")]
    #[diagnostic(help("Install it: `apt-get install {tool}`"))]
    NotInstalled { tool: String, want: String },
    #[error("The rule pins {tool} {want}, but this host has {have}")]
    #[diagnostic(help("Install that version or change the rule"))]
    WrongVersion {
        tool: String,
        want: String,
        have: String,
    },
    #[error("Cannot {action} `{path}` while making it a sandbox root")]
    Sanitize {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The Debian mirror to bootstrap from.
pub fn mirror() -> Result<String, BootstrapError> {
    if let Ok(m) = std::env::var("REFINE_DEBIAN_MIRROR")
        && !m.is_empty()
    {
        return Ok(m);
    }
    refine_fetch::apt_sources::debian_mirror().ok_or(BootstrapError::NoMirror)
}

/// The installed tool's version, checked against the rule's pin.
pub fn check_version(tool: &str, want: &str) -> Result<(), BootstrapError> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", tool])
        .output()
        .map_err(|source| BootstrapError::DpkgQuery {
            tool: tool.to_string(),
            source,
        })?;
    let have = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if have.is_empty() {
        return Err(BootstrapError::NotInstalled {
            tool: tool.to_string(),
            want: want.to_string(),
        });
    }
    if have != want {
        return Err(BootstrapError::WrongVersion {
            tool: tool.to_string(),
            want: want.to_string(),
            have,
        });
    }
    Ok(())
}

/// The bootstrap command line.
pub fn command(
    tool: &str,
    arch: &str,
    variant: &str,
    suite: &str,
    packages: &[String],
    out: &Path,
    mirror: &str,
) -> Vec<String> {
    let deb_arch = match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "ppc64le" => "ppc64el",
        other => other,
    };
    let mut cmd = vec![tool.to_string()];
    if tool == "mmdebstrap" {
        cmd.extend([
            format!("--architectures={deb_arch}"),
            format!("--variant={variant}"),
        ]);
        if !packages.is_empty() {
            cmd.push(format!("--include={}", packages.join(",")));
        }
    } else {
        cmd.extend([format!("--arch={deb_arch}"), format!("--variant={variant}")]);
        if !packages.is_empty() {
            cmd.push(format!("--include={}", packages.join(",")));
        }
    }
    cmd.extend([
        suite.to_string(),
        out.display().to_string(),
        mirror.to_string(),
    ]);
    cmd
}

/// Makes a bootstrapped tree a sandbox root: special files go (the sandbox brings its own
/// `/dev`), apt's caches and logs that differ from run to run go, and the mount points the
/// sandbox binds onto exist.
pub fn sanitize(root: &Path) -> Result<(), BootstrapError> {
    let fail = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| BootstrapError::Sanitize {
            action,
            path,
            source,
        }
    };
    remove_special_files(root).map_err(fail("clean", root))?;
    for rel in [
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "var/log",
        "var/cache/debconf",
    ] {
        let p = root.join(rel);
        if p.is_dir() {
            for e in fs_err::read_dir(&p).map_err(fail("list", &p))?.flatten() {
                let path = e.path();
                // What cannot be removed only makes the root a little larger.
                let _ = if path.is_dir() {
                    fs_err::remove_dir_all(&path)
                } else {
                    fs_err::remove_file(&path)
                };
            }
        }
    }
    for d in [
        "work",
        "out",
        "src",
        "opt/python",
        "opt/packs",
        "tmp",
        "proc",
        "dev",
    ] {
        let p = root.join(d);
        fs_err::create_dir_all(&p).map_err(fail("create", &p))?;
    }
    Ok(())
}

/// Removes devices, FIFOs and sockets under `dir`: the sandbox brings its own `/dev`.
fn remove_special_files(dir: &Path) -> std::io::Result<()> {
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_dir() {
            remove_special_files(&entry.path())?;
        } else if !ft.is_file() && !ft.is_symlink() {
            fs_err::remove_file(entry.path())?;
        }
    }
    Ok(())
}
