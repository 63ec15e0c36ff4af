//! PyPI files by sha256, from the simple indexes pip is configured with ([`PipConfig`]): the
//! project's page (PEP 691 JSON, or PEP 503 HTML) is read from each index in turn, and the
//! file whose sha256 the rule pins is downloaded.

use std::path::{Path, PathBuf};

use url::Url;

use super::FetchError;
use crate::http::parse_url;
use crate::index::{self, FileLink};
pub use crate::pip::PipConfig;

/// The page of `project` (PEP 503 normalized) on `index`: `INDEX/<name>/`.
fn project_page(index: &str, project: &str) -> Result<Url, FetchError> {
    // A trailing `/` makes the index a folder that `join` goes into rather than replaces.
    let index = parse_url(&format!("{}/", index.trim_end_matches('/')))?;
    let name = refine_rules::rules::normalize(project);
    index
        .join(&format!("{name}/"))
        .map_err(|source| FetchError::Http(crate::http::HttpError::BadUrl { url: name, source }))
}

/// The file with `sha256` among `files`.
fn find<'a>(files: &'a [FileLink], sha256: &str) -> Option<&'a FileLink> {
    files.iter().find(|f| {
        f.sha256
            .as_deref()
            .is_some_and(|h| h.eq_ignore_ascii_case(sha256))
    })
}

/// Downloads the file of `project` whose sha256 is `sha256` into `dir`.
pub fn download(
    cfg: &PipConfig,
    project: &str,
    version: &str,
    sha256: &str,
    dir: &Path,
) -> Result<PathBuf, FetchError> {
    let http = cfg.http()?;
    let mut tried = Vec::new();
    for index in &cfg.indexes {
        let page_url = project_page(index, project)?;
        let page = match http.page(&page_url, index::ACCEPT) {
            Ok(p) => p,
            Err(e) => {
                tried.push(format!("{page_url}: {e}"));
                continue;
            }
        };
        let files = match index::files(&page.body, &page.url, page.content_type.as_deref()) {
            Ok(f) => f,
            Err(e) => {
                tried.push(format!("{page_url}: {e}"));
                continue;
            }
        };
        if let Some(link) = find(&files, sha256) {
            let name = index::safe_file_name(link).unwrap_or_else(|| "download".into());
            return Ok(http.download(&link.url, &dir.join(name))?);
        }
        tried.push(page_url.to_string());
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
    use refine_oci::testing::{Reply, TestServer};

    #[test]
    fn project_pages_are_joined_not_concatenated() {
        for index in ["https://i.example/simple", "https://i.example/simple/"] {
            assert_eq!(
                project_page(index, "PyYAML").unwrap().as_str(),
                "https://i.example/simple/pyyaml/"
            );
        }
        assert!(matches!(
            project_page("not a url", "x"),
            Err(FetchError::Http(_))
        ));
    }

    /// Two real indexes on loopback: one that does not have the file (PEP 691 JSON), one that
    /// serves PEP 503 HTML only and links the file relatively; the file comes from the second.
    #[test]
    fn the_file_is_found_by_sha256_across_indexes_and_page_formats() {
        let body = b"pyyaml source\n";
        let sha = refine_digest::Digest::of_bytes(body).hex();
        let accepts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = accepts.clone();
        let json_index = TestServer::start(move |req| {
            seen.lock()
                .unwrap()
                .push(req.header("accept").unwrap_or("").to_string());
            Reply::status(200)
                .header("Content-Type", "application/vnd.pypi.simple.v1+json")
                .body(r#"{"meta":{"api-version":"1.1"},"name":"pyyaml","files":[{"filename":"other.tar.gz","url":"other.tar.gz","hashes":{"sha256":"00"}}]}"#)
        });
        let page = format!(
            "<!DOCTYPE html><html><body><a href=\"../../files/PyYAML-6.0.tar.gz#sha256={sha}\">PyYAML-6.0.tar.gz</a></body></html>"
        );
        let html_index = TestServer::start(move |req| match req.path.as_str() {
            "/simple/pyyaml/" => Reply::status(200)
                .header("Content-Type", "text/html")
                .body(page.as_bytes()),
            "/files/PyYAML-6.0.tar.gz" => Reply::status(200).body(body),
            _ => Reply::status(404),
        });
        let cfg = PipConfig {
            indexes: vec![json_index.url("/simple"), html_index.url("/simple/")],
            ..PipConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let file = download(&cfg, "PyYAML", "6.0", &sha, dir.path()).unwrap();
        assert_eq!(file, dir.path().join("PyYAML-6.0.tar.gz"));
        assert_eq!(fs_err::read(&file).unwrap(), body);
        assert_eq!(
            *accepts.lock().unwrap(),
            [index::ACCEPT],
            "JSON asked for first"
        );

        let e = download(&cfg, "PyYAML", "6.0", &"1".repeat(64), dir.path()).unwrap_err();
        let FetchError::NotOnIndex { index, .. } = e else {
            panic!("{e}")
        };
        assert!(
            index.contains(&json_index.url("/simple/pyyaml/")),
            "{index}"
        );
        assert!(
            index.contains(&html_index.url("/simple/pyyaml/")),
            "{index}"
        );
    }
}
