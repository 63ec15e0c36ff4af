//! HTTP(S) fetches with `reqwest`, on the process's one runtime (`refine_oci::runtime`):
//! index pages into memory, files streamed to disk (never whole in memory). The user's pip
//! settings apply: `cert` replaces the trusted roots (as it does for pip and did for curl's
//! `--cacert`), `proxy` carries every request; without one, the `HTTPS_PROXY` / `HTTP_PROXY` /
//! `NO_PROXY` variables are honoured. Transient failures (no connection, a transfer that broke
//! off, HTTP 429 and 5xx) are retried with `refine_oci::RetryPolicy::DEFAULT`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use refine_oci::RetryPolicy;
use reqwest::StatusCode;
use url::Url;

/// How long a transfer may stall (no byte read) before it counts as broken.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// The hint for a file download that failed.
pub(crate) const DOWNLOAD_HELP: &str =
    "Check the network and proxy settings, or seed the file with `refine fetch --import FILE`";
/// The hint for an index page that could not be read.
pub(crate) const INDEX_HELP: &str =
    "Check the network, proxy and index settings (`pip config list`)";

/// Why an HTTP fetch failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum HttpError {
    #[error("Cannot read the certificate bundle `{path}` (pip's `cert`): {source}")]
    #[diagnostic(
        code(refine::fetch::cert),
        help(
            "Point pip's `cert` (`PIP_CERT`, or `pip config set global.cert FILE`) at a PEM bundle"
        )
    )]
    CertRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("The certificate bundle `{path}` (pip's `cert`) is not a usable PEM bundle")]
    #[diagnostic(
        code(refine::fetch::cert),
        help(
            "Point pip's `cert` (`PIP_CERT`, or `pip config set global.cert FILE`) at a PEM bundle"
        )
    )]
    CertParse {
        path: PathBuf,
        source: reqwest::Error,
    },
    #[error("The certificate bundle `{path}` (pip's `cert`) holds no PEM certificate")]
    #[diagnostic(
        code(refine::fetch::cert),
        help(
            "Point pip's `cert` (`PIP_CERT`, or `pip config set global.cert FILE`) at a PEM bundle"
        )
    )]
    CertEmpty { path: PathBuf },
    #[error("pip's `proxy` `{proxy}` is not a proxy URL")]
    #[diagnostic(
        code(refine::fetch::proxy),
        help("Write it as `scheme://[user:password@]host:port` (`pip config list` shows it)")
    )]
    Proxy {
        proxy: String,
        source: reqwest::Error,
    },
    #[error("Cannot set up the HTTP client")]
    #[diagnostic(
        code(refine::fetch::client),
        help("Check the TLS settings (pip's `cert`)")
    )]
    Client { source: reqwest::Error },
    #[error("`{url}` is not a URL: {source}")]
    #[diagnostic(
        code(refine::fetch::url),
        help("Write an absolute `http://` or `https://` URL")
    )]
    BadUrl {
        url: String,
        source: url::ParseError,
    },
    #[error("Cannot fetch `{url}`: {}", describe(source))]
    #[diagnostic(code(refine::fetch::http), help("{help}"))]
    Request {
        url: Url,
        source: reqwest::Error,
        help: &'static str,
    },
    #[error("Cannot fetch `{url}`: the server answered {status}")]
    #[diagnostic(code(refine::fetch::http_status), help("{help}"))]
    Status {
        url: Url,
        status: StatusCode,
        help: &'static str,
    },
    #[error("Cannot write `{path}`: {source}")]
    #[diagnostic(
        code(refine::fetch::write),
        help("Check that the store's `tmp/` folder is writable and has room")
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Runtime(#[from] refine_oci::RuntimeError),
}

/// What went wrong, in a few words (the causes, in order, say why in full).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "no answer in time"
    } else if e.is_redirect() {
        "too many redirects"
    } else if e.is_body() || e.is_decode() {
        "the transfer broke off"
    } else {
        "the request failed"
    };
    // The innermost cause is the one a person can act on (`Connection refused`).
    let mut inner: &dyn std::error::Error = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    format!("{what} ({inner})")
}

/// Whether a failed attempt may succeed if sent again.
fn transient(e: &HttpError) -> bool {
    match e {
        HttpError::Status { status, .. } => {
            *status == StatusCode::TOO_MANY_REQUESTS
                || *status == StatusCode::REQUEST_TIMEOUT
                || status.is_server_error()
        }
        HttpError::Request { source, .. } => {
            source.is_connect() || source.is_timeout() || source.is_body() || source.is_request()
        }
        _ => false,
    }
}

/// A fetched page.
#[derive(Debug)]
pub(crate) struct Page {
    /// Where it came from after redirects: relative links resolve against it.
    pub url: Url,
    pub content_type: Option<String>,
    pub body: String,
}

/// An HTTP client with the user's pip settings.
#[derive(Clone, Debug)]
pub(crate) struct Http {
    client: reqwest::Client,
    policy: RetryPolicy,
}

impl Http {
    /// A client trusting the PEM bundle `cert` (instead of the system's roots) when given,
    /// through `proxy` when given.
    pub(crate) fn new(cert: Option<&Path>, proxy: Option<&str>) -> Result<Http, HttpError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(refine_oci::client::USER_AGENT)
            .connect_timeout(refine_oci::client::CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT);
        if let Some(path) = cert {
            let pem = fs_err::read(path).map_err(|source| HttpError::CertRead {
                path: path.to_path_buf(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                HttpError::CertParse {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
            // An empty list would silently trust nothing, and every HTTPS fetch would fail.
            if certs.is_empty() {
                return Err(HttpError::CertEmpty {
                    path: path.to_path_buf(),
                });
            }
            builder = builder.tls_certs_only(certs);
        }
        if let Some(p) = proxy {
            let proxy = reqwest::Proxy::all(p).map_err(|source| HttpError::Proxy {
                proxy: p.to_string(),
                source,
            })?;
            builder = builder.proxy(proxy);
        }
        let client = builder
            .build()
            .map_err(|source| HttpError::Client { source })?;
        Ok(Http {
            client,
            policy: RetryPolicy::DEFAULT,
        })
    }

    #[cfg(test)]
    pub(crate) fn with_policy(mut self, policy: RetryPolicy) -> Http {
        self.policy = policy;
        self
    }

    /// Sends a GET for `url` (with `accept`, if given) and checks the status.
    async fn get(
        &self,
        url: &Url,
        accept: Option<&str>,
        help: &'static str,
    ) -> Result<reqwest::Response, HttpError> {
        let mut request = self.client.get(url.clone());
        if let Some(accept) = accept {
            request = request.header(reqwest::header::ACCEPT, accept);
        }
        let response = request.send().await.map_err(|source| HttpError::Request {
            url: url.clone(),
            source,
            help,
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(HttpError::Status {
                url: url.clone(),
                status,
                help,
            });
        }
        Ok(response)
    }

    /// The page at `url`, asking for the media types in `accept`.
    pub(crate) fn page(&self, url: &Url, accept: &str) -> Result<Page, HttpError> {
        refine_oci::block_on(self.policy.run(
            || async {
                let response = self.get(url, Some(accept), INDEX_HELP).await?;
                let final_url = response.url().clone();
                let content_type = response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body = response.text().await.map_err(|source| HttpError::Request {
                    url: url.clone(),
                    source,
                    help: INDEX_HELP,
                })?;
                Ok(Page {
                    url: final_url,
                    content_type,
                    body,
                })
            },
            transient,
        ))?
    }

    /// Streams `url` into the file `to` (created, or truncated on each attempt).
    pub(crate) fn download(&self, url: &Url, to: &Path) -> Result<PathBuf, HttpError> {
        refine_oci::block_on(self.policy.run(|| self.download_once(url, to), transient))??;
        Ok(to.to_path_buf())
    }

    async fn download_once(&self, url: &Url, to: &Path) -> Result<(), HttpError> {
        let write_err = |source| HttpError::Write {
            path: to.to_path_buf(),
            source,
        };
        let mut response = self.get(url, None, DOWNLOAD_HELP).await?;
        // Plain writes: they land in the page cache and do not stall the runtime.
        let mut file = std::io::BufWriter::with_capacity(
            256 * 1024,
            fs_err::File::create(to).map_err(write_err)?,
        );
        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|source| HttpError::Request {
                    url: url.clone(),
                    source,
                    help: DOWNLOAD_HELP,
                })?;
            let Some(chunk) = chunk else { break };
            file.write_all(&chunk).map_err(write_err)?;
        }
        file.flush().map_err(write_err)
    }
}

/// Parses an absolute URL a rule or an index gives.
pub(crate) fn parse_url(url: &str) -> Result<Url, HttpError> {
    Url::parse(url).map_err(|source| HttpError::BadUrl {
        url: url.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use refine_oci::testing::{Reply, TestServer};

    fn quick() -> RetryPolicy {
        RetryPolicy {
            retries: 3,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        }
    }

    /// A server that answers `fail` with `status` `n` times, then 200 with `body`.
    fn flaky(n: u32, status: u16, body: &'static [u8]) -> (TestServer, Arc<AtomicU32>) {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        let server = TestServer::start(move |_| {
            if seen.fetch_add(1, Ordering::SeqCst) < n {
                Reply::status(status).body("try later")
            } else {
                Reply::status(200).body(body)
            }
        });
        (server, calls)
    }

    #[test]
    fn downloads_survive_two_503s_and_stream_to_the_file() {
        let body: &'static [u8] = b"the tarball\n";
        let (server, calls) = flaky(2, 503, body);
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("x.tar.gz");
        let http = Http::new(None, None).unwrap().with_policy(quick());
        let url = parse_url(&server.url("/x.tar.gz")).unwrap();
        http.download(&url, &to).unwrap();
        assert_eq!(fs_err::read(&to).unwrap(), body);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn retries_stop_at_the_budget_and_lasting_failures_are_not_retried() {
        let (server, calls) = flaky(99, 503, b"");
        let http = Http::new(None, None).unwrap().with_policy(quick());
        let dir = tempfile::tempdir().unwrap();
        let url = parse_url(&server.url("/x")).unwrap();
        let e = http.download(&url, &dir.path().join("x")).unwrap_err();
        assert!(
            matches!(e, HttpError::Status { status, .. } if status == StatusCode::SERVICE_UNAVAILABLE),
            "{e}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 4, "1 attempt + 3 retries");
        assert!(
            miette::Diagnostic::help(&e)
                .unwrap()
                .to_string()
                .contains("refine fetch --import")
        );

        let (server, calls) = flaky(99, 404, b"");
        let url = parse_url(&server.url("/x")).unwrap();
        let e = http.download(&url, &dir.path().join("x")).unwrap_err();
        assert!(e.to_string().contains("404"), "{e}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a 404 is final");

        let (server, calls) = flaky(1, 429, b"ok");
        let url = parse_url(&server.url("/x")).unwrap();
        http.download(&url, &dir.path().join("x")).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "429 is retried");
    }

    #[test]
    fn a_refused_connection_is_retried_then_named() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let http = Http::new(None, None).unwrap().with_policy(quick());
        let url = parse_url(&format!("http://127.0.0.1:{port}/x")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let e = http.download(&url, &dir.path().join("x")).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("cannot connect") && text.contains("refused"),
            "{text}"
        );
    }

    #[test]
    fn pages_report_their_final_url_and_type() {
        let server = TestServer::start(|req| {
            if req.path == "/simple/a" {
                return Reply::status(301).header("Location", "/simple/a/");
            }
            Reply::status(200)
                .header("Content-Type", "application/vnd.pypi.simple.v1+json")
                .body(req.header("accept").unwrap_or("none"))
        });
        let http = Http::new(None, None).unwrap();
        let page = http
            .page(
                &parse_url(&server.url("/simple/a")).unwrap(),
                "application/x-test",
            )
            .unwrap();
        assert_eq!(page.url.path(), "/simple/a/");
        assert_eq!(page.body, "application/x-test");
        assert_eq!(
            page.content_type.as_deref(),
            Some("application/vnd.pypi.simple.v1+json")
        );
    }

    #[test]
    fn pip_settings_are_checked_when_the_client_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        assert!(matches!(
            Http::new(Some(&missing), None),
            Err(HttpError::CertRead { .. })
        ));
        let junk = dir.path().join("junk.pem");
        fs_err::write(&junk, "not a certificate\n").unwrap();
        assert!(matches!(
            Http::new(Some(&junk), None),
            Err(HttpError::CertEmpty { .. })
        ));
        // The bundle Debian's ca-certificates installs (and CI's pip is pointed at) loads.
        Http::new(Some(Path::new("/etc/ssl/certs/ca-certificates.crt")), None).unwrap();
        assert!(matches!(
            Http::new(None, Some("http://[bad")),
            Err(HttpError::Proxy { .. })
        ));
        Http::new(None, Some("http://127.0.0.1:3128")).unwrap();
    }
}
