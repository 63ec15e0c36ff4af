//! The web view: one static page, its style and its script (native ES modules, `web/js/`) over
//! the JSON API, compiled into the binary (no build step, no tool outside the Rust toolchain).
//! The page's routes live after `#`, so every link is a real URL the server answers with the
//! same page.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::Hub;

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Each file of the page: where it is served, its text, its type. A module's imports are
/// relative (`./dom.js`), so the modules keep `web/js/`'s layout under `/ui/js/`.
const FILES: &[(&str, &str, &str)] = &[
    ("/", include_str!("../web/index.html"), HTML),
    ("/ui/style.css", include_str!("../web/style.css"), CSS),
    ("/ui/js/app.js", include_str!("../web/js/app.js"), JS),
    ("/ui/js/view.js", include_str!("../web/js/view.js"), JS),
    ("/ui/js/api.js", include_str!("../web/js/api.js"), JS),
    ("/ui/js/dom.js", include_str!("../web/js/dom.js"), JS),
    ("/ui/js/builds.js", include_str!("../web/js/builds.js"), JS),
    ("/ui/js/build.js", include_str!("../web/js/build.js"), JS),
    ("/ui/js/events.js", include_str!("../web/js/events.js"), JS),
    ("/ui/js/graph.js", include_str!("../web/js/graph.js"), JS),
    (
        "/ui/js/artifact.js",
        include_str!("../web/js/artifact.js"),
        JS,
    ),
    ("/ui/js/search.js", include_str!("../web/js/search.js"), JS),
];

pub fn router() -> Router<Arc<Hub>> {
    FILES
        .iter()
        .fold(Router::new(), |router, &(path, text, content_type)| {
            router.route(path, get(move || async move { page(text, content_type) }))
        })
}

fn page(text: &'static str, content_type: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
}

#[cfg(test)]
mod tests {
    use super::FILES;

    /// Every module in `web/js/` is served, and every module's imports name a served one: a
    /// module left out would fail only on the page that loads it.
    #[test]
    fn every_module_is_served() {
        let served = |path: &str| FILES.iter().any(|&(p, _, _)| p == path);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/js");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                served(&format!("/ui/js/{name}")),
                "web/js/{name} is not served"
            );
        }
        for &(path, text, _) in FILES {
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let module = line.rsplit_once("from './").map(|(_, m)| m);
                let module = module.and_then(|m| m.strip_suffix("';"));
                let module =
                    module.unwrap_or_else(|| panic!("{path}: `{line}` is not `from './x.js';`"));
                assert!(
                    served(&format!("/ui/js/{module}")),
                    "{path} imports {module}, not served"
                );
            }
        }
    }
}
