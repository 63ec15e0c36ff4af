//! `/v1/artifacts/{kind}/{key}`: an artifact of the local store, its provenance, and where it
//! is outside: its tag and digest in the remote registry, its referrers, and for a repaired
//! wheel its file and project page in the S3 mirror. `…/log` sends the action's log.
//!
//! The kind must be one of the six and the key 64 hex digits before anything is looked up, so
//! no path from a request reaches the file system.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use refine_engine::digest::Kind;
use refine_engine::remote::{RemoteUrl, WheelMirror, mirror::normalize};
use refine_engine::rules::Mirror;
use refine_engine::store::{Digest, PinRole, annotations, parse_kind, validate_key};
use serde::Serialize;

use super::ApiError;
use crate::Hub;

/// An artifact.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Artifact {
    pub kind: String,
    pub key: String,
    /// The target that made it.
    pub label: Option<String>,
    /// The manifest's digest: the artifact's identity.
    pub manifest: String,
    /// The digest of its content (what dependants' keys name).
    pub content: String,
    /// Bytes: the manifest, its config and its layers.
    pub size: u64,
    /// The key's fields (what `refine explain` compares).
    #[schema(value_type = Option<Object>)]
    pub key_fields: Option<serde_json::Value>,
    /// Its layers: media type, digest, size, title.
    pub layers: Vec<Layer>,
    pub provenance: Option<ProvenanceInfo>,
    /// The action's log, when it has one: `GET {url}` sends it.
    pub log: Option<LogInfo>,
    pub links: ArtifactLinks,
    /// Not pushed to the remote store yet (in the outbox: the next successful build pushes it).
    pub push_pending: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Layer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub title: Option<String>,
}

/// How the artifact was made: an in-toto v1 statement with the SLSA provenance v1 predicate.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProvenanceInfo {
    /// The digest of refine's provenance record in the store.
    pub digest: String,
    #[schema(value_type = Object)]
    pub statement: serde_json::Value,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LogInfo {
    pub digest: String,
    pub url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ArtifactLinks {
    pub registry: Option<RegistryLinks>,
    pub mirror: Option<MirrorLinks>,
}

/// The artifact in the remote store (one repository per kind, tag = key).
#[derive(Serialize, utoipa::ToSchema)]
pub struct RegistryLinks {
    /// `HOST/PREFIX/KIND:KEY`, for `skopeo`, `oras` or `crane`.
    pub tag: String,
    /// `HOST/PREFIX/KIND@sha256:…`.
    pub by_digest: String,
    /// The manifest over the distribution API.
    pub manifest_url: String,
    /// Its referrers (provenance, signatures) over the distribution API.
    pub referrers_url: String,
}

/// A repaired wheel's place in the S3 mirror (a PEP 503 index).
#[derive(Serialize, utoipa::ToSchema)]
pub struct MirrorLinks {
    pub mirror: String,
    /// The project's page: `pip install --index-url {index} NAME`.
    pub index: String,
    pub project_page: String,
    pub wheels: Vec<MirroredWheel>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MirroredWheel {
    pub file: String,
    pub url: String,
    /// The mirror holds it (asked when the artifact was looked up).
    pub mirrored: bool,
}

fn checked(kind: &str, key: &str) -> Result<Kind, ApiError> {
    let kind = parse_kind(kind).map_err(|e| ApiError::bad_input(&e))?;
    validate_key(key).map_err(|e| ApiError::bad_input(&e))?;
    Ok(kind)
}

#[utoipa::path(get, path = "/v1/artifacts/{kind}/{key}",
    params(("kind" = String, Path), ("key" = String, Path, description = "64 hex digits")),
    responses((status = 200, body = Artifact), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_one(
    State(hub): State<Arc<Hub>>,
    Path((kind, key)): Path<(String, String)>,
) -> Result<axum::Json<Artifact>, ApiError> {
    let kind = checked(&kind, &key)?;
    // The mirror's client blocks on its own runtime: off this one.
    tokio::task::spawn_blocking(move || describe(&hub, kind, &key))
        .await
        .map_err(ApiError::internal)?
        .map(axum::Json)
}

fn describe(hub: &Hub, kind: Kind, key: &str) -> Result<Artifact, ApiError> {
    let store = &hub.store;
    let found = store
        .lookup_artifact(kind, key)
        .map_err(|e| ApiError::store(&e))?
        .ok_or_else(|| {
            ApiError::not_found(&format!(
                "{kind} artifact with key `{key}` in the local store"
            ))
        })?;
    let manifest = store
        .read_manifest(&found.manifest)
        .map_err(|e| ApiError::store(&e))?;
    // `read_manifest` read and hashed it; its size needs no second read.
    let manifest_size = store
        .existing_blob_path(&found.manifest)
        .ok()
        .and_then(|p| fs_err::metadata(p).ok())
        .map_or(0, |m| m.len());
    let annotation = |k: &str| manifest.annotation(k).map(ToString::to_string);
    let provenance = annotation("dev.refine.provenance")
        .and_then(|d| Digest::parse(&d).ok())
        .and_then(|d| {
            let bytes = store.read_blob(&d).ok()?;
            let record: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            Some(ProvenanceInfo {
                digest: d.to_string(),
                statement: refine_engine::attest::statement(&found.manifest, &record),
            })
        });
    let log = annotation("dev.refine.log").map(|digest| LogInfo {
        digest,
        url: format!("/v1/artifacts/{kind}/{key}/log"),
    });
    let push_pending = store
        .outbox_list()
        .is_ok_and(|o| o.iter().any(|e| e.kind == kind && e.key == key));
    let registry = hub
        .links
        .remote
        .as_ref()
        .map(|r| registry_links(r, kind, key, &found.manifest));
    let mirror = if kind == Kind::Repair {
        mirror_links(hub, &found.manifest)?
    } else {
        None
    };
    Ok(Artifact {
        kind: kind.to_string(),
        key: key.to_string(),
        label: annotation(annotations::LABEL),
        manifest: found.manifest.to_string(),
        content: found.content.to_string(),
        size: manifest_size
            + manifest.config.size
            + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
        key_fields: annotation(annotations::KEY_FIELDS).and_then(|f| serde_json::from_str(&f).ok()),
        layers: manifest
            .layers
            .iter()
            .map(|l| Layer {
                media_type: l.media_type.clone(),
                digest: l.digest.to_string(),
                size: l.size,
                title: l
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(annotations::TITLE).cloned()),
            })
            .collect(),
        provenance,
        log,
        links: ArtifactLinks { registry, mirror },
        push_pending,
    })
}

fn registry_links(remote: &RemoteUrl, kind: Kind, key: &str, manifest: &Digest) -> RegistryLinks {
    let repository = remote.repository(kind.as_str());
    let scheme = if remote.plain_http { "http" } else { "https" };
    let api = format!("{scheme}://{}/v2/{repository}", remote.registry);
    RegistryLinks {
        tag: format!("{}/{repository}:{key}", remote.registry),
        by_digest: format!("{}/{repository}@{manifest}", remote.registry),
        manifest_url: format!("{api}/manifests/{key}"),
        referrers_url: format!("{api}/referrers/{manifest}"),
    }
}

/// The HTTP root of the mirror's bucket: its `public-url`, else path-style under the configured
/// endpoint, else AWS's virtual-hosted address.
fn mirror_root(config: &Mirror) -> Option<String> {
    if let Some(public) = &config.public_url {
        return Some(format!("{}/", public.trim_end_matches('/')));
    }
    let (url, endpoint, region) = (
        &config.url,
        config.endpoint.as_deref(),
        config.region.as_deref(),
    );
    let bucket = url.strip_prefix("s3://")?.trim_end_matches('/');
    Some(match endpoint {
        Some(e) => format!("{}/{bucket}/", e.trim_end_matches('/')),
        None => format!(
            "https://{bucket}.s3.{}.amazonaws.com/",
            region.unwrap_or("us-east-1")
        ),
    })
}

fn mirror_links(hub: &Hub, manifest: &Digest) -> Result<Option<MirrorLinks>, ApiError> {
    let Some(config) = &hub.links.mirror else {
        return Ok(None);
    };
    let Some(root) = mirror_root(config) else {
        return Ok(None);
    };
    let tree = hub
        .store
        .unpack(manifest)
        .map_err(|e| ApiError::store(&e))?;
    let wheels = refine_engine::exec::wheels_in(&tree).map_err(ApiError::internal)?;
    let client = WheelMirror::new(
        &config.url,
        config.endpoint.as_deref(),
        config.region.as_deref(),
    )
    .ok();
    let mut project = String::new();
    let mut out = Vec::new();
    for wheel in wheels {
        let Some(file) = wheel.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        project = normalize(file.split('-').next().unwrap_or(file));
        let mirrored = client
            .as_ref()
            .is_some_and(|c| c.contains(&project, file).unwrap_or(false));
        out.push(MirroredWheel {
            url: format!("{root}packages/{project}/{file}"),
            file: file.to_string(),
            mirrored,
        });
    }
    Ok(Some(MirrorLinks {
        mirror: config.url.clone(),
        index: format!("{root}simple/"),
        project_page: format!("{root}simple/{project}/"),
        wheels: out,
    }))
}

#[utoipa::path(get, path = "/v1/artifacts/{kind}/{key}/log",
    params(("kind" = String, Path), ("key" = String, Path)),
    responses((status = 200, content_type = "text/plain", body = String), (status = 404, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub async fn log(
    State(hub): State<Arc<Hub>>,
    Path((kind, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let kind = checked(&kind, &key)?;
    let store = &hub.store;
    let found = store
        .lookup_artifact(kind, &key)
        .map_err(|e| ApiError::store(&e))?
        .ok_or_else(|| ApiError::not_found(&format!("{kind} artifact with key `{key}`")))?;
    let manifest = store
        .read_manifest(&found.manifest)
        .map_err(|e| ApiError::store(&e))?;
    let digest = manifest
        .annotation("dev.refine.log")
        .and_then(|d| Digest::parse(d).ok())
        .ok_or_else(|| ApiError::not_found("log for this artifact (it ran no action)"))?;
    send_log(&hub, &digest).await
}

/// A log of the store, streamed as text.
async fn send_log(hub: &Hub, digest: &Digest) -> Result<Response, ApiError> {
    let path = hub
        .store
        .existing_blob_path(digest)
        .map_err(|_| ApiError::not_found("log in the local store"))?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(ApiError::internal)?;
    let stream = tokio_util::io::ReaderStream::new(file);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Any action's log by its digest, a failed one's too (a build's node names it): only a blob
/// the store keeps as a log is sent, never another blob.
#[utoipa::path(get, path = "/v1/logs/{digest}",
    params(("digest" = String, Path, description = "`sha256:…`, as a node's `log` names it")),
    responses((status = 200, content_type = "text/plain", body = String), (status = 400, body = super::ErrorBody), (status = 404, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub async fn log_by_digest(
    State(hub): State<Arc<Hub>>,
    Path(digest): Path<String>,
) -> Result<Response, ApiError> {
    let digest = Digest::parse(&digest).map_err(|e| ApiError::bad_input(&e))?;
    if hub.store.pin_role(&digest) != Some(PinRole::Log) {
        return Err(ApiError::not_found(&format!(
            "log `{digest}` in the local store"
        )));
    }
    send_log(&hub, &digest).await
}
