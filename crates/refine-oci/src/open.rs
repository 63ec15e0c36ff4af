//! Manifest lookups on a registry that asks for no credentials, without oci-client's `/v2/`
//! round trip before each one.
//!
//! oci-client 0.18 asks `/v2/` before every request for which it holds no token, and an open
//! registry (one whose `/v2/` sets no `WWW-Authenticate` challenge) never hands one out:
//! planning 1,000 remote keys sent 1,001 `GET /v2/` beside the 1,000 manifest `GET`s (the
//! registry's access log). When the remote's credentials are anonymous and `/v2/` answers 200
//! without a challenge (asked once per remote), lookups go straight to the manifest with a
//! client of their own. Only the two plain answers are taken here: the manifest (200) and its
//! absence (404). Anything else (a transport error, a refusal, a redirect, an oversized body)
//! goes to the oci-client path, whose retries and diagnostics stay the only ones.

use http::StatusCode;
use http::header::{ACCEPT, WWW_AUTHENTICATE};
use tokio::sync::OnceCell;

use crate::client::{CONNECT_TIMEOUT, USER_AGENT};

/// A body larger than this is no refine manifest: the oci-client path decides what it is.
const MAX_MANIFEST: usize = 4 << 20;

/// What a direct lookup found.
pub enum Answer {
    /// The manifest's bytes, as the registry sent them.
    Found(Vec<u8>),
    /// The registry has no manifest under that tag.
    Missing,
    /// Not answered here: ask through oci-client.
    Ask,
}

pub struct OpenLookups {
    client: reqwest::Client,
    /// `http://host:port` or `https://host`.
    base: String,
    open: OnceCell<bool>,
}

impl OpenLookups {
    /// Direct lookups for `registry`, or `None` when a client cannot be made (the oci-client
    /// path then answers every lookup).
    pub fn new(plain_http: bool, registry: &str) -> Option<OpenLookups> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .ok()?;
        let scheme = if plain_http { "http" } else { "https" };
        Some(OpenLookups {
            client,
            base: format!("{scheme}://{registry}"),
            open: OnceCell::new(),
        })
    }

    /// Whether `/v2/` answers 200 with no challenge; asked once, a failure counts as no.
    pub async fn is_open(&self) -> bool {
        *self
            .open
            .get_or_init(|| async {
                match self.client.get(format!("{}/v2/", self.base)).send().await {
                    Ok(r) => {
                        r.status() == StatusCode::OK && !r.headers().contains_key(WWW_AUTHENTICATE)
                    }
                    Err(_) => false,
                }
            })
            .await
    }

    /// The manifest tagged `tag` in `repository`, asked for as `media_type`.
    pub async fn manifest(&self, repository: &str, tag: &str, media_type: &str) -> Answer {
        if !self.is_open().await {
            return Answer::Ask;
        }
        let url = format!("{}/v2/{repository}/manifests/{tag}", self.base);
        let Ok(mut response) = self.client.get(url).header(ACCEPT, media_type).send().await else {
            return Answer::Ask;
        };
        match response.status() {
            StatusCode::NOT_FOUND => Answer::Missing,
            StatusCode::OK => {
                let mut body = Vec::new();
                loop {
                    match response.chunk().await {
                        Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_MANIFEST => {
                            body.extend_from_slice(&chunk);
                        }
                        Ok(None) => return Answer::Found(body),
                        Ok(Some(_)) | Err(_) => return Answer::Ask,
                    }
                }
            }
            _ => Answer::Ask,
        }
    }
}
