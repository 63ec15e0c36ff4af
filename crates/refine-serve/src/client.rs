//! The other end of the API, for `refine build --server URL`: queues a build on a server and
//! follows its events (the server-sent `/v1/events?build=ID` stream) until it ends, handing
//! each to the caller as the [`Event`] a local build would have produced.

use std::time::Duration;

use futures_util::StreamExt;
use refine_engine::exec::Event;

use crate::Token;

/// Why talking to the server failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ClientError {
    #[error("`{url}` is not a server URL: {why}")]
    #[diagnostic(help("Write `--server http://HOST:PORT`"))]
    BadUrl { url: String, why: String },
    #[error("The server `{url}` did not answer: {error}")]
    #[diagnostic(help("Check that `refine serve` runs there and listens on that address"))]
    Unreachable { url: String, error: String },
    /// The server refused the request; its own message and help.
    #[error("The server refused the build ({status}): {message}")]
    #[diagnostic(help("{help}"))]
    Refused {
        status: u16,
        message: String,
        help: String,
    },
    #[error("The server's answer could not be read: {0}")]
    #[diagnostic(help("Is the server a `refine serve` of this version?"))]
    Protocol(String),
}

impl ClientError {
    /// The refusal was about the request (bad patterns, a bad token): bad input.
    pub fn is_bad_input(&self) -> bool {
        match self {
            ClientError::BadUrl { .. } => true,
            ClientError::Refused { status, .. } => (400..500).contains(status),
            _ => false,
        }
    }
}

/// A build as the server took it.
#[derive(Debug, serde::Deserialize)]
pub struct Queued {
    pub id: i64,
}

/// How a followed build ended.
#[derive(Debug)]
pub struct Ended {
    /// `succeeded`, `failed`, `cancelled` or `interrupted`.
    pub state: String,
    /// Why it could not run, as the server said it.
    pub error: Option<String>,
}

/// A client of one server.
pub struct Client {
    base: String,
    token: Option<Token>,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    pub fn new(url: &str, token: Option<Token>) -> Result<Client, ClientError> {
        let bad = |why: &str| ClientError::BadUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad("it must start with `http://` or `https://`"));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(Client {
            base: url.trim_end_matches('/').to_string(),
            token,
            http,
            runtime,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(&t.0),
            None => r,
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> ClientError {
        ClientError::Unreachable {
            url: self.base.clone(),
            error: e.to_string(),
        }
    }

    /// Queues a build of `patterns`.
    pub fn queue(
        &self,
        patterns: &[String],
        keep_going: bool,
        jobs: Option<usize>,
    ) -> Result<Queued, ClientError> {
        self.runtime.block_on(async {
            let body =
                serde_json::json!({"patterns": patterns, "keep_going": keep_going, "jobs": jobs});
            let response = self
                .request(reqwest::Method::POST, "/v1/builds")
                .json(&body)
                .send()
                .await
                .map_err(|e| self.unreachable(&e))?;
            let response = refusal(response).await?;
            response
                .json::<Queued>()
                .await
                .map_err(|e| ClientError::Protocol(e.to_string()))
        })
    }

    /// Asks the server to stop build `id`.
    pub fn cancel(&self, id: i64) -> Result<(), ClientError> {
        self.runtime.block_on(async {
            let response = self
                .request(reqwest::Method::DELETE, &format!("/v1/builds/{id}"))
                .send()
                .await
                .map_err(|e| self.unreachable(&e))?;
            refusal(response).await.map(drop)
        })
    }

    /// Follows build `id` from its first event to its end.
    pub fn follow(&self, id: i64, on_event: &mut dyn FnMut(&Event)) -> Result<Ended, ClientError> {
        self.runtime.block_on(async {
            let response = self
                .request(reqwest::Method::GET, &format!("/v1/events?build={id}"))
                .send()
                .await
                .map_err(|e| self.unreachable(&e))?;
            let response = refusal(response).await?;
            let mut stream = response.bytes_stream();
            let mut buffer = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.unreachable(&e))?;
                buffer.extend_from_slice(&chunk);
                while let Some(end) = find_blank_line(&buffer) {
                    let message: Vec<u8> = buffer.drain(..end).collect();
                    if let Some(ended) = dispatch(&message, on_event)? {
                        return Ok(ended);
                    }
                }
            }
            Err(ClientError::Protocol(
                "the event stream ended before the build did".into(),
            ))
        })
    }
}

/// The end of the first message in `buffer` (past its blank line).
fn find_blank_line(buffer: &[u8]) -> Option<usize> {
    buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
}

/// Handles one server-sent message: an event for the caller, or the build's end.
fn dispatch(
    message: &[u8],
    on_event: &mut dyn FnMut(&Event),
) -> Result<Option<Ended>, ClientError> {
    let text = String::from_utf8_lossy(message);
    let data: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.strip_prefix(' ').unwrap_or(d))
        .collect::<Vec<_>>()
        .join("\n");
    if data.is_empty() {
        return Ok(None); // A keep-alive comment.
    }
    let value: serde_json::Value =
        serde_json::from_str(&data).map_err(|e| ClientError::Protocol(e.to_string()))?;
    if value["event"] == "build-state" {
        let state = value["state"].as_str().unwrap_or_default().to_string();
        if matches!(state.as_str(), "queued" | "running") {
            return Ok(None);
        }
        let error = value.get("error").filter(|e| !e.is_null()).map(|e| {
            let message = e["message"].as_str().unwrap_or("unknown error");
            match e["help"].as_str() {
                Some(help) => format!("{message}\n  help: {help}"),
                None => message.to_string(),
            }
        });
        return Ok(Some(Ended { state, error }));
    }
    // An event kind from a newer server is not this client's business.
    if let Ok(event) = serde_json::from_value::<Event>(value) {
        on_event(&event);
    }
    Ok(None)
}

/// The response, or the server's refusal as an error.
async fn refusal(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let error = &body["error"];
    let mut message = error["message"]
        .as_str()
        .unwrap_or(status.canonical_reason().unwrap_or("error"))
        .to_string();
    // A pattern's diagnostic names the part of the pattern that is wrong.
    if let Some(labels) = error["labels"].as_array() {
        for l in labels {
            if let Some(label) = l["label"].as_str() {
                message.push_str(&format!(" ({label})"));
            }
        }
    }
    Err(ClientError::Refused {
        status: status.as_u16(),
        message,
        help: error["help"]
            .as_str()
            .unwrap_or("See the server's log")
            .to_string(),
    })
}
