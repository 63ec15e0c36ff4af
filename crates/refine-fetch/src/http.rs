//! Downloads over HTTP(S) with curl, which honours the user's proxy environment.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::FetchError;

/// curl's stderr, each distinct line once (retries repeat them).
fn curl_error(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let mut lines: Vec<&str> = Vec::new();
    for l in text.lines() {
        if !lines.contains(&l) {
            lines.push(l);
        }
    }
    lines.join("\n").trim().to_string()
}

pub fn download(url: &str, to: &Path, extra: &[String]) -> Result<PathBuf, FetchError> {
    let out = Command::new("curl")
        .args(["--fail", "--location", "--silent", "--show-error", "--retry", "2", "--output"])
        .arg(to)
        .args(extra)
        .arg(url)
        .output()
        .map_err(|e| FetchError::Failed {
            what: url.to_string(),
            reason: format!("cannot run `curl`: {e}"),
            help: "Install curl (`apt-get install curl`), or seed the file with `refine fetch --import FILE`".into(),
        })?;
    if !out.status.success() {
        return Err(FetchError::Failed {
            what: url.to_string(),
            reason: curl_error(&out.stderr),
            help: "Check the network and proxy settings, or seed the file with `refine fetch --import FILE`".into(),
        });
    }
    Ok(to.to_path_buf())
}

/// The body of a URL, as text.
pub fn get_text(url: &str, extra: &[String]) -> Result<String, FetchError> {
    let out = Command::new("curl")
        .args([
            "--fail",
            "--location",
            "--silent",
            "--show-error",
            "--retry",
            "2",
            "--compressed",
        ])
        .args(extra)
        .arg(url)
        .output()
        .map_err(|e| FetchError::Failed {
            what: url.to_string(),
            reason: format!("cannot run `curl`: {e}"),
            help: "Install curl".into(),
        })?;
    if !out.status.success() {
        return Err(FetchError::Failed {
            what: url.to_string(),
            reason: curl_error(&out.stderr),
            help: "Check the network, proxy and index settings (`pip config list`)".into(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
