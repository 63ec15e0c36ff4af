//! `/v1/plans`: what a build of some patterns would do, as `refine plan --output json` says it,
//! with the DAG's edges; kept for `GET /v1/plans/{id}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use refine_engine::ops;
use refine_engine::session::{RemoteNeed, Session, Targets};
use serde::{Deserialize, Serialize};

use super::{ApiError, Json, parse_id};
use crate::Hub;
use crate::state::{PlanRow, rfc3339};

/// Patterns to plan.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// Target patterns, as `refine plan` takes them.
    pub patterns: Vec<String>,
}

/// One node of a plan (the objects of `refine plan --output json`).
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // The schema of what `ops::plan::PlannedNode` serialises.
pub struct PlanNode {
    pub label: String,
    /// `base`, `runtime`, `pack`, `wheel` or `repair`.
    pub kind: String,
    /// `cached` (its key is in a store), `build` (every input known, the key absent), or
    /// `pending` (waits on a dependency that must be built first).
    pub status: String,
    /// For a cached node: `local`, or `remote` (in the remote store only).
    #[serde(rename = "where")]
    pub location: Option<String>,
    /// 64 hex digits; null while pending.
    pub key: Option<String>,
    /// The artifact's manifest digest, when cached.
    pub digest: Option<String>,
    /// The digest of the artifact's content, when cached.
    pub content: Option<String>,
    /// A pending node's dependencies whose artifacts its key waits on.
    pub waits_on: Vec<String>,
    /// Its direct dependencies.
    pub deps: Vec<String>,
    /// The key's inputs (digests of the sources, of the base, runtime and packs' artifacts),
    /// as `refine explain` names them; null while pending.
    #[schema(value_type = Option<Object>)]
    pub inputs: Option<serde_json::Value>,
}

/// An edge of the DAG: `from` depends on `to`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Edge {
    pub from: String,
    pub to: String,
}

/// A plan.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // Documents the response, which is written from stored JSON.
pub struct PlanDocument {
    pub id: i64,
    pub created: String,
    pub patterns: Vec<String>,
    /// Dependencies before dependants.
    pub nodes: Vec<PlanNode>,
    pub edges: Vec<Edge>,
}

/// The stored body: nodes and edges, as JSON text.
fn body(nodes: &[ops::plan::PlannedNode]) -> String {
    let edges: Vec<Edge> = nodes
        .iter()
        .flat_map(|n| {
            n.deps.iter().map(|d| Edge {
                from: n.label.clone(),
                to: d.clone(),
            })
        })
        .collect();
    let mut out = String::from("\"nodes\":");
    out.push_str(&serde_json::to_string(nodes).unwrap_or_else(|_| "[]".into()));
    out.push_str(",\"edges\":");
    out.push_str(&serde_json::to_string(&edges).unwrap_or_else(|_| "[]".into()));
    out
}

/// The document, spliced from the stored body: a large plan is not parsed again.
fn document(row: &PlanRow) -> Response {
    let head = serde_json::json!({
        "id": row.id,
        "created": rfc3339(row.created),
        "patterns": row.patterns,
    })
    .to_string();
    let mut text = head[..head.len() - 1].to_string();
    text.push(',');
    text.push_str(&row.body);
    text.push('}');
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

#[utoipa::path(post, path = "/v1/plans", request_body = PlanRequest,
    responses((status = 201, body = PlanDocument), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(hub): State<Arc<Hub>>,
    Json(request): Json<PlanRequest>,
) -> Result<Response, ApiError> {
    if request.patterns.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "No target patterns",
            "Give `patterns`, such as `[\"//wheels/...\"]`",
        ));
    }
    let options = hub.config.session.clone();
    let patterns = request.patterns;
    let hub2 = hub.clone();
    let row = tokio::task::spawn_blocking(move || {
        let session = Session::open(
            &options,
            Targets::Patterns(&patterns),
            RemoteNeed::IfConfigured,
        )
        .map_err(|e| ApiError::session(&e))?;
        let plan = session
            .plan(session.roots())
            .map_err(|e| ApiError::plan(&e))?;
        let nodes = ops::plan::planned_nodes(session.graph(), &plan);
        let mut row = hub2.state.reserve_plan(&patterns)?;
        row.body = body(&nodes);
        // The answer does not wait for the body to be compressed and written: until it is, the
        // plan is served from memory. (Freeing a large graph node by node is no one's wait
        // either.)
        let row = Arc::new(row);
        hub2.plans_in_flight().insert(row.id, row.clone());
        let (hub3, kept) = (hub2.clone(), row.clone());
        std::thread::spawn(move || {
            drop((session, plan, nodes));
            if let Err(e) = hub3.state.store_plan_body(kept.id, &kept.body) {
                crate::say(&format!("warning: plan {} was not stored: {e}", kept.id));
            }
            hub3.plans_in_flight().remove(&kept.id);
        });
        Ok::<_, ApiError>(row)
    })
    .await
    .map_err(ApiError::internal)??;
    let mut response = document(&row);
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

#[utoipa::path(get, path = "/v1/plans/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = PlanDocument), (status = 404, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_one(
    State(hub): State<Arc<Hub>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    if let Some(row) = hub.plans_in_flight().get(&id).cloned() {
        return Ok(document(&row));
    }
    let row = hub
        .state
        .plan(id)?
        .filter(|r| !r.body.is_empty())
        .ok_or_else(|| ApiError::not_found(&format!("plan {id}")))?;
    Ok(document(&row))
}
