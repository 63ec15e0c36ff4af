//! Debian source files through `apt-get source --download-only`, with a private apt
//! configuration that adds `deb-src` entries for the host's own mirrors, so that nothing of
//! the host's apt state changes.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::FetchError;

fn failed(what: &str, reason: impl Into<String>) -> FetchError {
    FetchError::Failed {
        what: what.to_string(),
        reason: reason.into(),
        help: "Check that apt can reach a Debian mirror, or seed the file with `refine fetch --import FILE`".into(),
    }
}

pub fn download(
    package: &str,
    version: &str,
    file: &str,
    dir: &Path,
) -> Result<PathBuf, FetchError> {
    let what = format!("{file} (Debian {package} {version})");
    let etc = dir.join("apt-etc");
    let lists = dir.join("apt-lists");
    let cache = dir.join("apt-cache");
    for d in [
        &etc,
        &lists.join("partial"),
        &cache.join("archives/partial"),
    ] {
        fs_err::create_dir_all(d).map_err(|e| failed(&what, e.to_string()))?;
    }
    let entries = crate::apt_sources::deb_src_entries();
    for (name, text) in [
        ("refine-src.list", entries.list),
        ("refine-src.sources", entries.sources),
    ] {
        fs_err::write(etc.join(name), text).map_err(|e| failed(&what, e.to_string()))?;
    }
    let opts = [
        format!("-oDir::Etc::SourceParts={}", etc.display()),
        "-oDir::Etc::SourceList=/dev/null".to_string(),
        format!("-oDir::State::Lists={}", lists.display()),
        format!("-oDir::Cache={}", cache.display()),
        "-oAPT::Sandbox::User=root".to_string(),
        "-qq".to_string(),
    ];
    let run = |args: &[&str]| -> Result<(), FetchError> {
        let out = Command::new("apt-get")
            .args(&opts)
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| failed(&what, format!("cannot run `apt-get`: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(failed(
                &what,
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))
        }
    };
    run(&["update"])?;
    // The Debian revision is where to look first; the file's sha256 is the pin. A stable
    // release's security updates replace revisions (3.11.2-6+deb12u8 goes when u9 comes),
    // while the upstream tarball they carry stays the same file: so when the pinned revision
    // is gone, the current one is tried, and the caller checks the file's sha256 either way.
    if let Err(pinned) = run(&["source", "--download-only", &format!("{package}={version}")])
        && (run(&["source", "--download-only", package]).is_err() || !dir.join(file).is_file())
    {
        return Err(pinned);
    }
    let path = dir.join(file);
    if !path.is_file() {
        return Err(failed(
            &what,
            format!("apt-get fetched the source package, but it holds no `{file}`"),
        ));
    }
    Ok(path)
}
