//! `/v1/builds`: queue a build, list builds, one build with its nodes, cancel, requeue; and
//! `/v1/search` over every build's nodes.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use refine_engine::session::{RemoteNeed, Session, Targets};
use serde::{Deserialize, Serialize};

use super::{ApiError, Json, Query, parse_id};
use crate::Hub;
use crate::runner::state_event;
use crate::state::{BuildRow, BuildState, NewBuild, NodeRow, rfc3339};

/// A build to queue.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildRequest {
    /// Target patterns, as `refine build` takes them (`//wheels:numpy-py312`, `//wheels/...`).
    pub patterns: Vec<String>,
    /// Build everything that does not depend on a failed target.
    #[serde(default)]
    pub keep_going: bool,
    /// Actions at once (default: the server's `-j`, else the number of cores).
    pub jobs: Option<usize>,
}

/// A build.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Build {
    pub id: i64,
    pub state: BuildState,
    pub patterns: Vec<String>,
    pub keep_going: bool,
    pub jobs: Option<usize>,
    /// RFC 3339 times.
    pub created: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// The counts and times of a build that ran (the `build-finish` event's fields).
    #[schema(value_type = Option<Object>)]
    pub summary: Option<serde_json::Value>,
    /// Why it could not run or finish, as a diagnostic.
    #[schema(value_type = Option<Object>)]
    pub error: Option<serde_json::Value>,
    /// The build this one runs again.
    pub requeue_of: Option<i64>,
    /// Its nodes, in plan order (`GET /v1/builds/{id}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<NodeRow>>,
}

impl Build {
    fn from_row(row: BuildRow, nodes: Option<Vec<NodeRow>>) -> Build {
        Build {
            id: row.id,
            state: row.state,
            patterns: row.patterns,
            keep_going: row.keep_going,
            jobs: row.jobs,
            created: rfc3339(row.created),
            started: row.started.map(rfc3339),
            finished: row.finished.map(rfc3339),
            summary: row.summary,
            error: row.error,
            requeue_of: row.requeue_of,
            nodes,
        }
    }
}

/// Builds, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BuildList {
    pub builds: Vec<Build>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// How many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// Checks the patterns against the workspace as it is now, as `refine build` would.
async fn check_patterns(hub: &Arc<Hub>, patterns: &[String]) -> Result<(), ApiError> {
    if patterns.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "No target patterns",
            "Give `patterns`, such as `[\"//wheels/...\"]`",
        ));
    }
    let options = hub.config.session.clone();
    let patterns = patterns.to_vec();
    tokio::task::spawn_blocking(move || {
        Session::open(&options, Targets::Patterns(&patterns), RemoteNeed::Unused)
            .map(drop)
            .map_err(|e| ApiError::session(&e))
    })
    .await
    .map_err(ApiError::internal)?
}

#[utoipa::path(post, path = "/v1/builds", request_body = BuildRequest,
    responses((status = 202, body = Build), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody), (status = 413, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(hub): State<Arc<Hub>>,
    request: Result<Json<BuildRequest>, ApiError>,
) -> Result<impl IntoResponse, ApiError> {
    let queued = match request {
        Ok(Json(request)) => queue(&hub, request).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &queued
        && e.status.is_client_error()
    {
        // `refine_builds_total{outcome="rejected"}`: bad input, nothing queued.
        hub.metrics.build_ended("rejected", false);
    }
    queued
}

async fn queue(
    hub: &Arc<Hub>,
    request: BuildRequest,
) -> Result<(StatusCode, axum::Json<Build>), ApiError> {
    if request.jobs == Some(0) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "`jobs: 0` runs nothing",
            "Give `jobs` of 1 or more, or leave it out",
        ));
    }
    check_patterns(hub, &request.patterns).await?;
    let row = hub.state.insert_build(&NewBuild {
        patterns: request.patterns,
        keep_going: request.keep_going,
        jobs: request.jobs,
        requeue_of: None,
    })?;
    hub.queued();
    Ok((StatusCode::ACCEPTED, axum::Json(Build::from_row(row, None))))
}

#[utoipa::path(get, path = "/v1/builds", params(ListParams),
    responses((status = 200, body = BuildList)), security(("bearer" = [])))]
pub async fn list(
    State(hub): State<Arc<Hub>>,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<BuildList>, ApiError> {
    let rows = hub.state.builds(params.limit.unwrap_or(100).min(1000))?;
    Ok(axum::Json(BuildList {
        builds: rows.into_iter().map(|r| Build::from_row(r, None)).collect(),
    }))
}

fn find(hub: &Hub, id: &str) -> Result<BuildRow, ApiError> {
    let id = parse_id(id)?;
    hub.state
        .build(id)?
        .ok_or_else(|| ApiError::not_found(&format!("build {id}")))
}

#[utoipa::path(get, path = "/v1/builds/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = Build), (status = 404, body = super::ErrorBody)), security(("bearer" = [])))]
pub async fn get_one(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
) -> Result<axum::Json<Build>, ApiError> {
    let row = find(&hub, &id)?;
    let nodes = hub.state.nodes(row.id)?;
    Ok(axum::Json(Build::from_row(row, Some(nodes))))
}

/// Cancels a queued build at once, or stops a running one (its sandboxes are killed, the store
/// stays valid; the build ends `cancelled`). A build that is over is left as it is: 409.
#[utoipa::path(delete, path = "/v1/builds/{id}", params(("id" = i64, Path)),
    responses((status = 202, body = Build), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let row = find(&hub, &id)?;
    match row.state {
        BuildState::Queued if hub.state.cancel_queued(row.id)? => {
            hub.metrics.build_ended("cancelled", false);
            hub.live
                .emit(row.id, state_event(BuildState::Cancelled, None), true);
            hub.live.finish(row.id);
            hub.refresh_queue_length();
        }
        BuildState::Queued | BuildState::Running => hub.cancel_running(row.id),
        state => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                &format!("Build {} is already {}", row.id, state.as_str()),
                "Only a queued or running build can be cancelled",
            ));
        }
    }
    let row = find(&hub, &id)?;
    Ok((StatusCode::ACCEPTED, axum::Json(Build::from_row(row, None))))
}

/// Queues a new build with the same patterns and options as one that is over (interrupted by a
/// restart, cancelled, failed).
#[utoipa::path(post, path = "/v1/builds/{id}/requeue", params(("id" = i64, Path)),
    responses((status = 202, body = Build), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub async fn requeue(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let old = find(&hub, &id)?;
    if !old.state.is_final() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            &format!("Build {} is {}", old.id, old.state.as_str()),
            "Requeue a build once it is over",
        ));
    }
    check_patterns(&hub, &old.patterns).await?;
    let row = hub.state.insert_build(&NewBuild {
        patterns: old.patterns,
        keep_going: old.keep_going,
        jobs: old.jobs,
        requeue_of: Some(old.id),
    })?;
    hub.queued();
    Ok((StatusCode::ACCEPTED, axum::Json(Build::from_row(row, None))))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct SearchParams {
    /// Part of a label, or the start of a key or digest (with or without `sha256:`).
    pub q: String,
}

/// A node found by `/v1/search`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Found {
    /// The newest build it appears in.
    pub build: i64,
    pub node: NodeRow,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchResults {
    pub results: Vec<Found>,
}

#[utoipa::path(get, path = "/v1/search", params(SearchParams),
    responses((status = 200, body = SearchResults)), security(("bearer" = [])))]
pub async fn search(
    State(hub): State<Arc<Hub>>,
    Query(params): Query<SearchParams>,
) -> Result<axum::Json<SearchResults>, ApiError> {
    let q = params.q.trim();
    if q.is_empty() {
        return Ok(axum::Json(SearchResults {
            results: Vec::new(),
        }));
    }
    let results = hub
        .state
        .search(q.strip_prefix("sha256:").unwrap_or(q), 50)?
        .into_iter()
        .map(|(build, node)| Found { build, node })
        .collect();
    Ok(axum::Json(SearchResults { results }))
}
