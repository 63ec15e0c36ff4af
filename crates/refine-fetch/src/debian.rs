//! The Debian archive's indexes, for locking bases (docs/locks.md): a suite's `InRelease`,
//! verified with `gpgv` against Debian's archive keyring (as debootstrap does), and the
//! suite's `Packages` index of `main` for one architecture, verified against the release by
//! sha256. Debian lists `Architecture: all` packages in every architecture's index
//! (`No-Support-for-Architecture-all: Packages`), so one index answers for both.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use crate::{FetchError, PipConfig, http};

/// The keyring a suite's release is verified with, unless `REFINE_DEBIAN_KEYRING` names one.
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Debian's name for an architecture (`x86_64` → `amd64`).
pub fn deb_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "ppc64le" => "ppc64el",
        other => other,
    }
}

/// The Debian mirror: `REFINE_DEBIAN_MIRROR`, else the host's apt sources, else
/// `deb.debian.org`.
pub fn mirror() -> String {
    match std::env::var("REFINE_DEBIAN_MIRROR") {
        Ok(m) if !m.is_empty() => m,
        _ => crate::apt_sources::debian_mirror()
            .unwrap_or_else(|| "http://deb.debian.org/debian".into()),
    }
}

/// One package of a `Packages` index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub package: String,
    pub version: String,
    pub arch: String,
    /// `Filename`: the file's path below the mirror's root (`pool/main/…`).
    pub filename: String,
    pub sha256: String,
}

/// A suite's `Packages` index (main) for one architecture, by package name.
#[derive(Debug, Default)]
pub struct PackagesIndex {
    /// Where it came from, for messages.
    pub url: String,
    entries: HashMap<String, Vec<IndexEntry>>,
}

impl PackagesIndex {
    /// Fetches and verifies the index of `suite` for `deb_arch` from `mirror`, working in
    /// `work`.
    pub fn fetch(
        pip: &PipConfig,
        mirror: &str,
        suite: &str,
        deb_arch: &str,
        work: &Path,
    ) -> Result<PackagesIndex, FetchError> {
        let base = format!("{}/dists/{suite}", mirror.trim_end_matches('/'));
        let tmp = tempfile::tempdir_in(work).map_err(|e| FetchError::Failed {
            what: base.clone(),
            reason: e.to_string(),
            help: format!("Check that `{}` is writable", work.display()),
        })?;
        let http = pip.http()?;
        let in_release = http.download(
            &http::parse_url(&format!("{base}/InRelease"))?,
            &tmp.path().join("InRelease"),
        )?;
        let release = verified_release(&in_release, &base)?;
        let name = format!("main/binary-{deb_arch}/Packages.gz");
        let want = release_sha256(&release, &name).ok_or_else(|| FetchError::Failed {
            what: format!("{base}/{name}"),
            reason: "the suite's release does not list it".into(),
            help: format!("Check that the suite `{suite}` has the architecture `{deb_arch}`"),
        })?;
        let url = format!("{base}/{name}");
        let file = http.download(&http::parse_url(&url)?, &tmp.path().join("Packages.gz"))?;
        let (got, _) = refine_digest::sha256_file(&file).map_err(|e| FetchError::Failed {
            what: url.clone(),
            reason: e.to_string(),
            help: "Check the store's `tmp/` folder".into(),
        })?;
        if got.hex() != want {
            return Err(FetchError::Mismatch {
                what: url,
                expected: format!("sha256:{want}"),
                actual: got.to_string(),
            });
        }
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(fs_err::File::open(&file).map_err(|e| {
            FetchError::Failed {
                what: url.clone(),
                reason: e.to_string(),
                help: "Check the store's `tmp/` folder".into(),
            }
        })?)
        .read_to_string(&mut text)
        .map_err(|e| FetchError::Failed {
            what: url.clone(),
            reason: format!("not a gzip'd text index ({e})"),
            help: "Check the mirror".into(),
        })?;
        let mut index = PackagesIndex::parse(&text);
        index.url = url;
        Ok(index)
    }

    /// Reads a `Packages` index's stanzas (the fields a lock needs).
    pub fn parse(text: &str) -> PackagesIndex {
        let mut entries: HashMap<String, Vec<IndexEntry>> = HashMap::new();
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza.lines().find_map(|l| {
                    l.strip_prefix(name)
                        .and_then(|r| r.strip_prefix(':'))
                        .map(|v| v.trim().to_string())
                })
            };
            if let (Some(package), Some(version), Some(arch), Some(filename), Some(sha256)) = (
                field("Package"),
                field("Version"),
                field("Architecture"),
                field("Filename"),
                field("SHA256"),
            ) {
                entries
                    .entry(package.clone())
                    .or_default()
                    .push(IndexEntry {
                        package,
                        version,
                        arch,
                        filename,
                        sha256,
                    });
            }
        }
        PackagesIndex {
            url: String::new(),
            entries,
        }
    }

    /// The package `name` for `deb_arch` (or `all`); the index lists one version per
    /// package and architecture.
    pub fn lookup(&self, name: &str, deb_arch: &str) -> Option<&IndexEntry> {
        let all = self.entries.get(name)?;
        all.iter()
            .find(|e| e.arch == deb_arch)
            .or_else(|| all.iter().find(|e| e.arch == "all"))
    }
}

/// The signed text of an `InRelease` file, as `gpgv` verified it.
fn verified_release(in_release: &Path, what: &str) -> Result<String, FetchError> {
    let keyring = std::env::var("REFINE_DEBIAN_KEYRING").unwrap_or_else(|_| KEYRING.to_string());
    let out_file = in_release.with_file_name("Release");
    let out = Command::new("gpgv")
        .arg("--keyring")
        .arg(&keyring)
        .arg("--output")
        .arg(&out_file)
        .arg(in_release)
        .output()
        .map_err(|e| FetchError::Failed {
            what: format!("{what}/InRelease"),
            reason: format!("cannot run `gpgv` ({e})"),
            help: "Install gpgv (`apt-get install gpgv`)".into(),
        })?;
    if !out.status.success() {
        return Err(FetchError::Failed {
            what: format!("{what}/InRelease"),
            reason: format!(
                "its signature does not verify with `{keyring}`: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            help: "Install debian-archive-keyring, or set `REFINE_DEBIAN_KEYRING` to the keyring that signs the mirror".into(),
        });
    }
    fs_err::read_to_string(&out_file).map_err(|e| FetchError::Failed {
        what: format!("{what}/InRelease"),
        reason: e.to_string(),
        help: "Check the store's `tmp/` folder".into(),
    })
}

/// The sha256 a release lists for one of its files.
fn release_sha256(release: &str, name: &str) -> Option<String> {
    let mut in_sha256 = false;
    for line in release.lines() {
        if !line.starts_with(' ') {
            in_sha256 = line.trim_end() == "SHA256:";
            continue;
        }
        if in_sha256 {
            let mut parts = line.split_whitespace();
            if let (Some(hash), Some(_size), Some(file)) =
                (parts.next(), parts.next(), parts.next())
                && file == name
            {
                return Some(hash.to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_answers_for_the_arch_and_all() {
        let text = "Package: a\nVersion: 1\nArchitecture: amd64\nFilename: pool/main/a/a_1_amd64.deb\nSHA256: 11\n\nPackage: b\nVersion: 1:2\nArchitecture: all\nFilename: pool/main/b/b_2_all.deb\nSHA256: 22\n";
        let index = PackagesIndex::parse(text);
        assert_eq!(
            index.lookup("a", "amd64").map(|e| e.sha256.as_str()),
            Some("11")
        );
        assert_eq!(
            index.lookup("b", "amd64").map(|e| e.version.as_str()),
            Some("1:2")
        );
        assert_eq!(index.lookup("a", "s390x"), None);
        assert_eq!(index.lookup("c", "amd64"), None);
    }

    #[test]
    fn the_release_lists_sha256_sums() {
        let release = "Suite: x\nMD5Sum:\n aa 1 main/binary-amd64/Packages.gz\nSHA256:\n bb 1 main/binary-amd64/Packages\n cc 2 main/binary-amd64/Packages.gz\n";
        assert_eq!(
            release_sha256(release, "main/binary-amd64/Packages.gz").as_deref(),
            Some("cc")
        );
        assert_eq!(
            release_sha256(release, "main/binary-s390x/Packages.gz"),
            None
        );
    }
}
