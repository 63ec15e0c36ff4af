//! The host's apt sources (`/etc/apt/sources.list` and `sources.list.d/`, one-line and deb822
//! forms), read in one place: the Debian mirror that bases are bootstrapped from, and the
//! `deb-src` entries that Debian source files are fetched through.

use std::path::PathBuf;

/// One sources file of the host.
struct SourcesFile {
    path: PathBuf,
    text: String,
}

impl SourcesFile {
    /// deb822 (`.sources`) rather than one-line (`.list`) form.
    fn is_deb822(&self) -> bool {
        self.path.extension().is_some_and(|e| e == "sources")
    }
}

/// Every readable sources file, `sources.list.d/` in name order, then `sources.list`.
fn host_sources() -> Vec<SourcesFile> {
    let mut paths: Vec<PathBuf> = fs_err::read_dir("/etc/apt/sources.list.d")
        .map(|dir| dir.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    paths.push(PathBuf::from("/etc/apt/sources.list"));
    paths
        .into_iter()
        .filter_map(|path| {
            let text = fs_err::read_to_string(&path).ok()?;
            Some(SourcesFile { path, text })
        })
        .collect()
}

/// The URI of Debian's own archive among the host's sources: the first whose path ends in
/// `/debian` (not `-security`, not a third party's repository).
pub fn debian_mirror() -> Option<String> {
    host_sources().iter().find_map(|file| {
        file.text.lines().find_map(|line| {
            let line = line.trim();
            let uri = if let Some(rest) = line.strip_prefix("URIs:") {
                rest.split_whitespace().next()
            } else if let Some(rest) = line.strip_prefix("deb ") {
                rest.split_whitespace().find(|w| w.contains("://"))
            } else {
                None
            };
            uri.filter(|u| u.trim_end_matches('/').ends_with("/debian"))
                .map(str::to_string)
        })
    })
}

/// The host's `deb` sources turned into `deb-src` ones, in their own form.
pub fn deb_src_entries() -> String {
    let mut out = String::new();
    for file in host_sources() {
        if file.is_deb822() {
            for stanza in file.text.split("\n\n") {
                if stanza
                    .lines()
                    .any(|l| l.trim() == "Types: deb" || l.trim().starts_with("Types: deb "))
                {
                    out.push_str(&stanza.replace("Types: deb", "Types: deb-src"));
                    out.push_str("\n\n");
                }
            }
        } else {
            for line in file.text.lines() {
                if let Some(rest) = line.trim().strip_prefix("deb ") {
                    out.push_str(&format!("deb-src {rest}\n"));
                }
            }
        }
    }
    out
}
