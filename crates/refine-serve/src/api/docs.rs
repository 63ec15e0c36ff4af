//! `/openapi.json`: the API's OpenAPI document, derived from the handlers' and types'
//! annotations (utoipa), so it cannot drift from the code.

use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{artifacts, builds, events, plans};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "refine serve",
        version = "1",
        description = "Plans, a build queue, artifacts with their registry and mirror links, and build events. See docs/api.md."
    ),
    paths(
        plans::create,
        plans::get_one,
        builds::create,
        builds::list,
        builds::get_one,
        builds::cancel,
        builds::requeue,
        builds::search,
        artifacts::get_one,
        artifacts::log,
        artifacts::log_by_digest,
        events::stream,
    ),
    components(schemas(super::ErrorBody, crate::state::NodeRow, crate::state::BuildState)),
    modifiers(&Bearer)
)]
struct ApiDoc;

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub async fn serve() -> impl IntoResponse {
    axum::Json(openapi())
}
