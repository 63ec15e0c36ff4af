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
    #[error("Cannot run `{tool}`")]
    Spawn {
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
    #[error("The bootstrapped root does not hold the locked packages: {differences}")]
    #[diagnostic(help(
        "The root is not stored. The bootstrap installed other packages than the lock pins: refresh the lock with `refine lock {label}` and report this if it persists"
    ))]
    NotAsLocked { label: String, differences: String },
    #[error("Cannot read the packages installed in `{path}`")]
    DpkgStatus {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{tool} --print-debs` failed ({status}): {stderr}")]
    #[diagnostic(help(
        "Check the mirror (`REFINE_DEBIAN_MIRROR` or the host's apt sources) and the rule's suite and packages"
    ))]
    PrintDebs {
        tool: String,
        status: String,
        stderr: String,
    },
    #[error(
        "`refine lock` resolves packages with debootstrap; `{tool}` cannot print its package set"
    )]
    #[diagnostic(help("Bootstrap the base with `debootstrap` to lock it"))]
    CannotLock { tool: String },
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
    let deb_arch = refine_fetch::debian::deb_arch(arch);
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

/// The packages `debootstrap --print-debs` would install for the base, sorted: what
/// `refine lock` pins. Runs on the host, downloading the suite's indexes into `work` (a
/// foreign architecture needs no emulator for this).
pub fn print_debs(
    tool: &str,
    arch: &str,
    variant: &str,
    suite: &str,
    packages: &[String],
    work: &Path,
    mirror: &str,
) -> Result<Vec<String>, BootstrapError> {
    if tool != "debootstrap" {
        return Err(BootstrapError::CannotLock {
            tool: tool.to_string(),
        });
    }
    let mut cmd = command(tool, arch, variant, suite, packages, work, mirror);
    cmd.insert(1, "--print-debs".into());
    let out = Command::new(&cmd[0])
        .args(&cmd[1..])
        .env("LANG", "C.UTF-8")
        .output()
        .map_err(|source| BootstrapError::Spawn {
            tool: tool.to_string(),
            source,
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(BootstrapError::PrintDebs {
            tool: tool.to_string(),
            status: out.status.to_string(),
            stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    let mut debs: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    debs.sort();
    debs.dedup();
    Ok(debs)
}

/// Checks that the root holds exactly the locked packages (name, version, architecture), as
/// its dpkg database says.
pub fn check_as_locked(
    root: &Path,
    label: &str,
    debs: &[refine_rules::rules::DebPin],
) -> Result<(), BootstrapError> {
    use std::collections::BTreeMap;
    let status = root.join("var/lib/dpkg/status");
    let text = fs_err::read_to_string(&status).map_err(|source| BootstrapError::DpkgStatus {
        path: status.clone(),
        source,
    })?;
    let installed = installed_packages(&text);
    let locked: BTreeMap<String, (String, String)> = debs
        .iter()
        .map(|d| (d.package.clone(), (d.version.clone(), d.arch.clone())))
        .collect();
    let mut differences = Vec::new();
    for (name, (version, arch)) in &locked {
        match installed.get(name) {
            None => differences.push(format!("{name} {version} is not installed")),
            Some((v, a)) if v != version || a != arch => {
                differences.push(format!(
                    "{name} is {v} ({a}), the lock pins {version} ({arch})"
                ));
            }
            Some(_) => {}
        }
    }
    for (name, (v, _)) in &installed {
        if !locked.contains_key(name) {
            differences.push(format!("{name} {v} is installed but not locked"));
        }
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(BootstrapError::NotAsLocked {
            label: label.to_string(),
            differences: differences.join("; "),
        })
    }
}

/// The installed packages of a dpkg `status` file: name → (version, architecture).
pub fn installed_packages(status: &str) -> std::collections::BTreeMap<String, (String, String)> {
    let mut out = std::collections::BTreeMap::new();
    for stanza in status.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|r| r.strip_prefix(':'))
                    .map(|v| v.trim().to_string())
            })
        };
        let installed = field("Status").is_some_and(|s| s.ends_with(" installed"));
        if let (true, Some(p), Some(v), Some(a)) = (
            installed,
            field("Package"),
            field("Version"),
            field("Architecture"),
        ) {
            out.insert(p, (v, a));
        }
    }
    out
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
