//! The HTTP API: the router, the bearer-token check, request limits, and errors as JSON.

mod artifacts;
mod builds;
mod docs;
mod events;
mod plans;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use crate::Hub;
use crate::state::StateError;
use refine_engine::plan::PlanError;
use refine_engine::session::SessionError;
use refine_engine::store::StoreError;

pub use docs::openapi;

/// The largest request body taken (a build request is a few patterns).
pub const MAX_BODY: usize = 64 * 1024;

/// Every route.
pub fn router(hub: Arc<Hub>) -> Router {
    let api = Router::new()
        .route("/v1/plans", post(plans::create))
        .route("/v1/plans/{id}", get(plans::get_one))
        .route("/v1/builds", post(builds::create).get(builds::list))
        .route(
            "/v1/builds/{id}",
            get(builds::get_one).delete(builds::cancel),
        )
        .route("/v1/builds/{id}/requeue", post(builds::requeue))
        .route("/v1/artifacts/{kind}/{key}", get(artifacts::get_one))
        .route("/v1/artifacts/{kind}/{key}/log", get(artifacts::log))
        .route("/v1/logs/{digest}", get(artifacts::log_by_digest))
        .route("/v1/search", get(builds::search))
        .route("/v1/events", get(events::stream))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(hub.clone(), authorize));
    Router::new()
        .merge(api)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/openapi.json", get(docs::serve))
        .merge(crate::web::router())
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "No such endpoint",
                "See `/openapi.json` for the API",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(hub)
}

/// `POST` and `DELETE` need the bearer token; reads too unless `--public-reads`.
async fn authorize(State(hub): State<Arc<Hub>>, request: Request, next: Next) -> Response {
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    if reading && hub.config.public_reads {
        return next.run(request).await;
    }
    match bearer(request.headers()) {
        Some(given) if hub.config.token.as_ref().is_some_and(|t| t.matches(given)) => {
            next.run(request).await
        }
        Some(_) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "The bearer token is wrong",
            "Send `Authorization: Bearer TOKEN` with the server's token (`--token-file`)",
        )
        .into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "This endpoint needs a bearer token",
            "Send `Authorization: Bearer TOKEN` with the server's token (`--token-file`)",
        )
        .into_response(),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

async fn metrics(State(hub): State<Arc<Hub>>) -> Response {
    hub.refresh_queue_length();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        hub.metrics.encode(),
    )
        .into_response()
}

/// An error as the API returns it: a status and `{"error": {message, help, …}}`; for bad input
/// in rule files or patterns, the miette diagnostic as JSON (labels with byte spans).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: serde_json::Value,
}

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// `message`, and where known `help`, `code`, `labels` (`{label, span: {offset, length}}`)
    /// and `filename`: miette's JSON rendering of the diagnostic.
    #[schema(value_type = Object)]
    pub error: serde_json::Value,
}

impl ApiError {
    pub fn new(status: StatusCode, message: &str, help: &str) -> ApiError {
        ApiError {
            status,
            error: serde_json::json!({"message": message, "help": help}),
        }
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            &format!("No {what}"),
            "Check the id or key (`GET /v1/builds` lists builds)",
        )
    }

    /// Bad input, with the diagnostic the CLI would print.
    pub fn bad_input(diagnostic: &dyn miette::Diagnostic) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: diagnostic_json(diagnostic),
        }
    }

    /// A diagnostic with the status that fits it.
    pub fn diagnostic(status: StatusCode, diagnostic: &dyn miette::Diagnostic) -> ApiError {
        ApiError {
            status,
            error: diagnostic_json(diagnostic),
        }
    }

    /// A session that could not be opened: the request's fault (400) unless the remote store
    /// did not answer (502) or the server's own files failed (500).
    pub fn session(e: &SessionError) -> ApiError {
        let status = match e {
            SessionError::RemoteUnreachable(_) => StatusCode::BAD_GATEWAY,
            SessionError::CurrentDir { .. } | SessionError::Store(StoreError::Io { .. }) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::diagnostic(status, e)
    }

    /// Planning failed: the remote store (502), the store's files (500), else an input (400).
    pub fn plan(e: &PlanError) -> ApiError {
        let status = match e {
            PlanError::Remote(_) => StatusCode::BAD_GATEWAY,
            PlanError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::diagnostic(status, e)
    }

    /// The local store failed to answer about an artifact: the server's problem.
    pub fn store(e: &StoreError) -> ApiError {
        ApiError::diagnostic(StatusCode::INTERNAL_SERVER_ERROR, e)
    }

    pub fn internal(what: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            &what.to_string(),
            "See the server's log",
        )
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(ErrorBody { error: self.error })).into_response()
    }
}

/// A diagnostic as miette renders it in JSON; its message alone if that fails.
pub fn diagnostic_json(diagnostic: &dyn miette::Diagnostic) -> serde_json::Value {
    let mut text = String::new();
    if miette::JSONReportHandler::new()
        .render_report(&mut text, diagnostic)
        .is_ok()
        && let Ok(v) = serde_json::from_str(&text)
    {
        return v;
    }
    serde_json::json!({"message": diagnostic.to_string()})
}

/// `axum::Json` whose rejections (malformed JSON, a wrong field, a body too large) are
/// [`ApiError`]s.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    let status = rejection.status();
    let help = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("Request bodies are limited to {MAX_BODY} bytes")
    } else {
        "Send a JSON object as `/openapi.json` describes, with `Content-Type: application/json`"
            .to_string()
    };
    ApiError::new(status, &rejection.body_text(), &help)
}

/// `axum::extract::Query` whose rejections (a missing or malformed parameter) are
/// [`ApiError`]s, so that every error the API returns is JSON.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(rejection) => Err(ApiError::new(
                rejection.status(),
                &rejection.body_text(),
                "See `/openapi.json` for the endpoint's parameters",
            )),
        }
    }
}

/// An id in a path (`/v1/builds/{id}`), as a number.
pub fn parse_id(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            &format!("`{text}` is not an id"),
            "Ids are numbers, as `POST` returned them",
        )
    })
}
