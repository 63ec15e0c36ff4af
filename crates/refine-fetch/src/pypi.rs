//! PyPI files by sha256, from the PEP 503 simple index pip is configured with.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{FetchError, http};

/// The parts of pip's configuration that decide where and how files are fetched.
#[derive(Clone, Debug, Default)]
pub struct PipConfig {
    pub indexes: Vec<String>,
    pub cert: Option<String>,
    pub proxy: Option<String>,
}

impl PipConfig {
    /// Reads `pip config list` (which merges files and `PIP_*` variables); falls back to PyPI.
    pub fn load() -> PipConfig {
        let mut cfg = PipConfig::default();
        let listed = Command::new("python3")
            .args(["-m", "pip", "config", "list"])
            .output();
        if let Ok(out) = listed {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let Some((key, value)) = line.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('\'').to_string();
                let name = key.rsplit('.').next().unwrap_or(key);
                match name {
                    "index-url" => cfg.indexes.insert(0, value),
                    "extra-index-url" => cfg
                        .indexes
                        .extend(value.split_whitespace().map(str::to_string)),
                    "cert" => cfg.cert = Some(value),
                    "proxy" => cfg.proxy = Some(value),
                    _ => {}
                }
            }
        }
        if cfg.indexes.is_empty() {
            cfg.indexes.push("https://pypi.org/simple".into());
        }
        cfg
    }

    pub fn curl_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(c) = &self.cert {
            args.extend(["--cacert".to_string(), c.clone()]);
        }
        if let Some(p) = &self.proxy {
            args.extend(["--proxy".to_string(), p.clone()]);
        }
        args
    }
}

/// PEP 503 normalized name.
fn normalize(name: &str) -> String {
    crate::rules::normalize(name)
}

/// Finds the link whose `#sha256=` fragment is `sha256` on a simple-index page.
fn find_link(page: &str, base: &str, sha256: &str) -> Option<String> {
    let needle = format!("#sha256={sha256}");
    let at = page.find(&needle)?;
    let start = page[..at].rfind("href=\"")? + 6;
    let href = &page[start..at];
    let href = href.replace("&amp;", "&");
    Some(
        if href.starts_with("http://") || href.starts_with("https://") {
            href
        } else if let Some(rest) = href.strip_prefix('/') {
            // Absolute path on the index's host.
            let host_end = base
                .find("://")
                .map(|i| i + 3)
                .and_then(|i| base[i..].find('/').map(|j| i + j))
                .unwrap_or(base.len());
            format!("{}/{rest}", &base[..host_end])
        } else {
            format!("{}/{href}", base.trim_end_matches('/'))
        },
    )
}

pub fn download(
    cfg: &PipConfig,
    project: &str,
    version: &str,
    sha256: &str,
    dir: &Path,
) -> Result<PathBuf, FetchError> {
    let name = normalize(project);
    let mut tried = Vec::new();
    for index in &cfg.indexes {
        let page_url = format!("{}/{name}/", index.trim_end_matches('/'));
        let page = match http::get_text(&page_url, &cfg.curl_args()) {
            Ok(p) => p,
            Err(e) => {
                tried.push(format!("{page_url}: {e}"));
                continue;
            }
        };
        if let Some(url) = find_link(&page, &page_url, sha256) {
            let file = url
                .rsplit('/')
                .next()
                .unwrap_or("download")
                .split(['#', '?'])
                .next()
                .unwrap_or("download")
                .to_string();
            return http::download(&url, &dir.join(file), &cfg.curl_args());
        }
        tried.push(page_url);
    }
    Err(FetchError::NotOnIndex {
        project: project.to_string(),
        version: version.to_string(),
        sha256: sha256.to_string(),
        index: tried.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_by_sha256() {
        let page = r#"<a href="https://files.example/pyyaml-6.0.2.tar.gz#sha256=abc">x</a>
<a href="../../packages/ab/pyyaml-6.0.1.tar.gz#sha256=def&amp;x">y</a>
<a href="/root/pyyaml-5.tar.gz#sha256=fed">z</a>"#;
        assert_eq!(
            find_link(page, "https://i.example/simple/pyyaml/", "abc").unwrap(),
            "https://files.example/pyyaml-6.0.2.tar.gz"
        );
        assert_eq!(
            find_link(page, "https://i.example/simple/pyyaml/", "def").unwrap(),
            "https://i.example/simple/pyyaml/../../packages/ab/pyyaml-6.0.1.tar.gz"
        );
        assert_eq!(
            find_link(page, "https://i.example/simple/pyyaml/", "fed").unwrap(),
            "https://i.example/root/pyyaml-5.tar.gz"
        );
        assert!(find_link(page, "https://i.example/simple/pyyaml/", "000").is_none());
    }
}
