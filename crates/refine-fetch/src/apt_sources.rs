//! The host's apt sources (`/etc/apt/sources.list` and `sources.list.d/`, one-line and deb822
//! forms), read in one place: the Debian mirror that bases are bootstrapped from, and the
//! `deb-src` entries that Debian source files are fetched through.

use std::path::{Path, PathBuf};

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

/// Every readable sources file that apt itself reads: `sources.list.d/*.list` and `*.sources`
/// in name order (apt ignores other names, such as `x.list.disabled`), then `sources.list`.
fn host_sources() -> Vec<SourcesFile> {
    sources_in(Path::new("/etc/apt"))
}

/// [`host_sources`] under an apt configuration folder `etc` (`/etc/apt` on the host).
fn sources_in(etc: &Path) -> Vec<SourcesFile> {
    let mut paths: Vec<PathBuf> = fs_err::read_dir(etc.join("sources.list.d"))
        .map(|dir| {
            dir.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths.push(etc.join("sources.list"));
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
    mirror_of(&host_sources())
}

fn mirror_of(files: &[SourcesFile]) -> Option<String> {
    files.iter().find_map(|file| {
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

/// The host's `deb` sources turned into `deb-src` ones, each in its own form: apt reads the
/// two forms from files of their own (`.list`, `.sources`), never mixed in one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DebSrc {
    /// One-line entries, for a `.list` file.
    pub list: String,
    /// deb822 stanzas, for a `.sources` file.
    pub sources: String,
}

/// The host's sources as `deb-src` entries.
pub fn deb_src_entries() -> DebSrc {
    deb_src_of(host_sources())
}

fn deb_src_of(files: Vec<SourcesFile>) -> DebSrc {
    let mut out = DebSrc::default();
    for file in files {
        if file.is_deb822() {
            for stanza in file.text.split("\n\n") {
                if stanza
                    .lines()
                    .any(|l| l.trim() == "Types: deb" || l.trim().starts_with("Types: deb "))
                {
                    out.sources
                        .push_str(&stanza.replace("Types: deb", "Types: deb-src"));
                    out.sources.push_str("\n\n");
                }
            }
        } else {
            for line in file.text.lines() {
                if let Some(rest) = line.trim().strip_prefix("deb ") {
                    out.list.push_str(&format!("deb-src {rest}\n"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// apt reads `*.list` and `*.sources` only: a disabled file must not leak into the
    /// `deb-src` entries (a one-line entry inside a `.sources` file makes apt refuse them all).
    #[test]
    fn only_the_files_apt_reads_each_form_in_its_own_file() {
        let etc = tempfile::tempdir().unwrap();
        let d = etc.path().join("sources.list.d");
        fs_err::create_dir_all(&d).unwrap();
        fs_err::write(
            d.join("debian.sources"),
            "Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm\nComponents: main\n\nTypes: deb\nURIs: http://deb.example/debian-security\nSuites: bookworm-security\nComponents: main\n",
        )
        .unwrap();
        fs_err::write(
            d.join("extra.list"),
            "deb http://x.example/apt stable main\n",
        )
        .unwrap();
        fs_err::write(
            d.join("vendor.list.disabled-by-admin"),
            "deb https://vendor.example/apt stable main\n",
        )
        .unwrap();
        let out = deb_src_of(sources_in(etc.path()));
        assert_eq!(out.list, "deb-src http://x.example/apt stable main\n");
        assert_eq!(
            out.sources.matches("Types: deb-src\n").count(),
            2,
            "{}",
            out.sources
        );
        assert!(!out.sources.contains("vendor") && !out.list.contains("vendor"));
        let mirror = mirror_of(&sources_in(etc.path()));
        assert_eq!(mirror.as_deref(), Some("http://deb.example/debian"));
    }
}
