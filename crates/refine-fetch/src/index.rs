//! A project's page on a "simple" package index: PEP 691 JSON when the index speaks it, the
//! PEP 503 HTML page otherwise (content negotiation picks, through `Accept`). Links are
//! resolved with the URL standard's rules (`url::Url::join`) against the page's final URL,
//! or the HTML page's `<base href>`; the HTML is read with a WHATWG tokenizer (`html5gum`),
//! so entities, attribute quoting and odd markup read as a browser (and pip) reads them.

use serde::Deserialize;
use url::Url;

/// What refine asks an index for: PEP 691 JSON, else PEP 503 HTML (PEP 691's own example).
pub(crate) const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

const JSON_TYPE: &str = "application/vnd.pypi.simple.v1+json";

/// One file the page lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileLink {
    /// The file's name, as the index gives it.
    pub filename: String,
    /// Absolute, without the fragment.
    pub url: Url,
    /// The hex sha256, when the index gives one.
    pub sha256: Option<String>,
}

/// Why a page could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PageError {
    #[error("its JSON is not a PEP 691 project page: {0}")]
    Json(String),
    #[error("it speaks version {0} of the simple API; refine reads version 1")]
    Version(String),
}

/// The files listed on a page fetched from `base` with `content_type`.
pub(crate) fn files(
    body: &str,
    base: &Url,
    content_type: Option<&str>,
) -> Result<Vec<FileLink>, PageError> {
    let is_json = content_type
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(JSON_TYPE));
    if is_json {
        from_json(body, base)
    } else {
        Ok(from_html(body, base))
    }
}

#[derive(Deserialize)]
struct JsonPage {
    meta: JsonMeta,
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonMeta {
    #[serde(rename = "api-version")]
    api_version: String,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
}

/// A PEP 691 project page.
fn from_json(body: &str, base: &Url) -> Result<Vec<FileLink>, PageError> {
    let page: JsonPage = serde_json::from_str(body).map_err(|e| PageError::Json(e.to_string()))?;
    // PEP 691: a client refuses a major version it does not know.
    if page.meta.api_version.split('.').next() != Some("1") {
        return Err(PageError::Version(page.meta.api_version));
    }
    Ok(page
        .files
        .into_iter()
        .filter_map(|f| {
            let mut url = base.join(&f.url).ok()?;
            url.set_fragment(None);
            Some(FileLink {
                filename: f.filename,
                url,
                sha256: f.hashes.get("sha256").map(|h| h.to_ascii_lowercase()),
            })
        })
        .collect())
}

/// A PEP 503 project page: every `<a href>`, its text the file name, its fragment
/// `#sha256=<hex>` the hash; `<base href>` moves the base, as in a browser.
fn from_html(body: &str, page_url: &Url) -> Vec<FileLink> {
    use html5gum::{Token, Tokenizer};
    let mut base = page_url.clone();
    let mut out = Vec::new();
    // The anchor being read: its href, and its text so far.
    let mut open: Option<(String, String)> = None;
    for Ok(token) in Tokenizer::new(body) {
        match token {
            Token::StartTag(tag) if tag.name == b"base" => {
                if let Some(href) = attribute(&tag, b"href")
                    && let Ok(moved) = base.join(&href)
                {
                    base = moved;
                }
            }
            Token::StartTag(tag) if tag.name == b"a" => {
                open = attribute(&tag, b"href").map(|h| (h, String::new()));
            }
            Token::String(text) => {
                if let Some((_, t)) = &mut open {
                    t.push_str(&String::from_utf8_lossy(&text));
                }
            }
            Token::EndTag(tag) if tag.name == b"a" => {
                if let Some((href, text)) = open.take() {
                    out.extend(link(&base, &href, text.trim()));
                }
            }
            _ => {}
        }
    }
    out
}

fn attribute(tag: &html5gum::StartTag<()>, name: &[u8]) -> Option<String> {
    tag.attributes
        .get(name)
        .map(|v| String::from_utf8_lossy(&v.value).into_owned())
}

fn link(base: &Url, href: &str, text: &str) -> Option<FileLink> {
    let mut url = base.join(href).ok()?;
    let sha256 = url
        .fragment()
        .and_then(|f| f.split('&').find_map(|kv| kv.strip_prefix("sha256=")))
        .map(str::to_ascii_lowercase);
    url.set_fragment(None);
    Some(FileLink {
        filename: text.to_string(),
        url,
        sha256,
    })
}

/// A file name safe to create in a folder: the index's name if it is one, else the last
/// segment of the URL's path.
pub(crate) fn safe_file_name(link: &FileLink) -> Option<String> {
    let ok = |n: &str| !n.is_empty() && n != "." && n != ".." && !n.contains(['/', '\\', '\0']);
    if ok(&link.filename) {
        return Some(link.filename.clone());
    }
    link.url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|n| ok(n))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://i.example/simple/pyyaml/").unwrap()
    }

    /// The shape of pypi.org's PEP 691 page (trimmed to two files).
    const JSON: &str = r#"{"alternate-locations":[],"files":[{"core-metadata":false,"data-dist-info-metadata":false,"filename":"PyYAML-6.0.2.tar.gz","hashes":{"sha256":"D584D9EC91AD65861CC08D42E834324EF890A082E591037ABE114850FF7BBC3E"},"provenance":null,"requires-python":">=3.8","size":130631,"upload-time":"2024-08-06T20:33:50.674630Z","url":"https://files.pythonhosted.org/packages/54/ed/79a089b6be93607fa5cdaedf301d7dfb23af5f25c398d5ead2525b063e17/pyyaml-6.0.2.tar.gz","yanked":false},{"filename":"PyYAML-6.0.1.tar.gz","hashes":{"sha256":"bfdf460b1736c775f2ba9f6a92bca30bc2095067b8a9d77876d1fad6cc3b4a43"},"url":"../../packages/cd/e5/PyYAML-6.0.1.tar.gz","yanked":false}],"meta":{"_last-serial":24722428,"api-version":"1.3"},"name":"pyyaml","project-status":{"status":"active"},"versions":["6.0.1","6.0.2"]}"#;

    /// The shape of pypi.org's (and devpi's, and refine's own mirror's) PEP 503 page.
    const HTML: &str = r#"<!DOCTYPE html>
<html>
  <head>
    <meta name="pypi:repository-version" content="1.3">
    <title>Links for pyyaml</title>
  </head>
  <body>
    <h1>Links for pyyaml</h1>
    <a href="https://files.pythonhosted.org/packages/54/ed/pyyaml-6.0.2.tar.gz#sha256=d584d9ec91ad65861cc08d42e834324ef890a082e591037abe114850ff7bbc3e" data-requires-python="&gt;=3.8" >PyYAML-6.0.2.tar.gz</a><br />
    <a href="../../packages/cd/e5/PyYAML-6.0.1.tar.gz#sha256=bfdf460b1736c775f2ba9f6a92bca30bc2095067b8a9d77876d1fad6cc3b4a43&amp;x=1">PyYAML-6.0.1.tar.gz</a><br />
    <a href='/root/pyyaml-5.tar.gz#sha256=fed'>pyyaml-5.tar.gz</a>
    <a href=nohash.tar.gz>nohash.tar.gz</a>
  </body>
</html>
<!--SERIAL 24722428-->"#;

    #[test]
    fn pep691_json_pages() {
        let files = files(JSON, &base(), Some("application/vnd.pypi.simple.v1+json")).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].filename, "PyYAML-6.0.2.tar.gz");
        assert_eq!(
            files[0].sha256.as_deref(),
            Some("d584d9ec91ad65861cc08d42e834324ef890a082e591037abe114850ff7bbc3e")
        );
        assert_eq!(
            files[1].url.as_str(),
            "https://i.example/packages/cd/e5/PyYAML-6.0.1.tar.gz"
        );
        let v2 = JSON.replace("\"1.3\"", "\"2.0\"");
        assert_eq!(
            from_json(&v2, &base()),
            Err(PageError::Version("2.0".into()))
        );
        assert!(matches!(
            from_json("<html>", &base()),
            Err(PageError::Json(_))
        ));
    }

    #[test]
    fn pep503_html_pages() {
        for content_type in [
            Some("text/html; charset=utf-8"),
            Some("application/vnd.pypi.simple.v1+html"),
            None,
        ] {
            let files = files(HTML, &base(), content_type).unwrap();
            let urls: Vec<&str> = files.iter().map(|f| f.url.as_str()).collect();
            assert_eq!(
                urls,
                [
                    "https://files.pythonhosted.org/packages/54/ed/pyyaml-6.0.2.tar.gz",
                    "https://i.example/packages/cd/e5/PyYAML-6.0.1.tar.gz",
                    "https://i.example/root/pyyaml-5.tar.gz",
                    "https://i.example/simple/pyyaml/nohash.tar.gz",
                ]
            );
            let hashes: Vec<Option<&str>> = files.iter().map(|f| f.sha256.as_deref()).collect();
            assert_eq!(
                hashes[1],
                Some("bfdf460b1736c775f2ba9f6a92bca30bc2095067b8a9d77876d1fad6cc3b4a43")
            );
            assert_eq!(hashes[2], Some("fed"));
            assert_eq!(hashes[3], None);
            assert_eq!(files[0].filename, "PyYAML-6.0.2.tar.gz");
        }
    }

    #[test]
    fn base_href_moves_relative_links() {
        let page = r#"<html><head><base href="https://cdn.example/pkgs/"></head>
<body><a href="a-1.tar.gz#sha256=ab">a-1.tar.gz</a></body></html>"#;
        let files = files(page, &base(), Some("text/html")).unwrap();
        assert_eq!(files[0].url.as_str(), "https://cdn.example/pkgs/a-1.tar.gz");
    }

    #[test]
    fn file_names_never_leave_the_folder() {
        let link = |name: &str, url: &str| FileLink {
            filename: name.into(),
            url: Url::parse(url).unwrap(),
            sha256: None,
        };
        assert_eq!(
            safe_file_name(&link("a-1.tar.gz", "https://x/b")).as_deref(),
            Some("a-1.tar.gz")
        );
        assert_eq!(
            safe_file_name(&link("../../etc/passwd", "https://x/p/a-2.whl")).as_deref(),
            Some("a-2.whl")
        );
        assert_eq!(safe_file_name(&link("..", "https://x/")), None);
    }
}
