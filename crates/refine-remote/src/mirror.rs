//! The wheel mirror: repaired wheels in an S3-compatible bucket (through `object_store`),
//! laid out as a PEP 503 "simple" repository:
//!
//! ```text
//! s3://BUCKET/
//!   simple/index.html                    one link per project
//!   simple/<project>/index.html          one link per wheel, `#sha256=<hex>` fragments
//!   packages/<project>/<wheel>           the wheels
//!   packages/<project>/<wheel>.sha256    their sha256 (the pages are rebuilt from these)
//! ```
//!
//! `<project>` is the PEP 503 normalised name. Pages link with relative URLs, so the bucket
//! served as a static website (`…/simple/<project>/` → `index.html`) is a package index:
//! `pip install --index-url <website>/simple <project>`. Credentials come from the standard
//! `AWS_*` environment variables (never printed). The S3 client runs on the process's one
//! runtime (`refine_oci::runtime`).

use std::path::Path;
use std::sync::Arc;

use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::AsyncWriteExt;

use super::RemoteError;
use refine_store::Digest;

/// A bucket holding the mirror.
pub struct WheelMirror {
    store: Arc<dyn ObjectStore>,
    url: String,
}

impl std::fmt::Debug for WheelMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WheelMirror")
            .field("url", &self.url)
            .finish()
    }
}

/// PEP 503 name normalisation: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, links: &[(String, String)]) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n    <title>{}</title>\n  </head>\n  <body>\n",
        html_escape(title)
    );
    for (href, text) in links {
        s.push_str(&format!(
            "    <a href=\"{}\">{}</a><br>\n",
            html_escape(href),
            html_escape(text)
        ));
    }
    s.push_str("  </body>\n</html>\n");
    s
}

impl WheelMirror {
    /// Opens `s3://BUCKET` at `endpoint` (default: AWS) in `region` (default `us-east-1`).
    pub fn new(
        url: &str,
        endpoint: Option<&str>,
        region: Option<&str>,
    ) -> Result<Self, RemoteError> {
        let bucket = url
            .strip_prefix("s3://")
            .map(|b| b.trim_end_matches('/'))
            .filter(|b| !b.is_empty() && !b.contains('/'))
            .ok_or_else(|| {
                RemoteError::new(
                    format!("`{url}` is not a mirror URL"),
                    "Write `mirror \"s3://BUCKET\" endpoint=\"https://…\" region=\"…\"` in `workspace.kdl`",
                )
            })?;
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(region.unwrap_or("us-east-1"));
        if let Some(e) = endpoint {
            b = b
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = b.build().map_err(|e| {
            RemoteError::new(
                format!("Cannot use the mirror `{url}`: {e}"),
                "Check `endpoint`, `region` and the `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` variables",
            )
        })?;
        Ok(WheelMirror {
            store: Arc::new(store),
            url: url.to_string(),
        })
    }

    fn error(&self, doing: &str, e: object_store::Error) -> RemoteError {
        RemoteError::new(
            format!("The mirror `{}` failed to {doing}: {e}", self.url),
            "Check that the S3 endpoint is up, the bucket exists and the credentials may write to it",
        )
    }

    /// Whether the mirror holds the wheel `file` of `project` (a normalised name).
    pub fn contains(&self, project: &str, file: &str) -> Result<bool, RemoteError> {
        let path = ObjectPath::from(format!("packages/{project}/{file}"));
        refine_oci::block_on(async {
            match self.store.head(&path).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(self.error("answer", e)),
            }
        })
        .map_err(|e| {
            RemoteError::new(
                e.to_string(),
                "Check the process's limit on threads (`ulimit -u`)",
            )
        })?
    }

    /// Uploads a wheel (streamed) and rebuilds its project's page and the root page.
    /// Returns the normalised project name.
    pub fn publish(&self, wheel: &Path) -> Result<String, RemoteError> {
        let name = wheel
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.ends_with(".whl"))
            .ok_or_else(|| {
                RemoteError::new(
                    format!("`{}` is not a wheel file", wheel.display()),
                    "Give a `.whl` file",
                )
            })?;
        let project = normalize(name.split('-').next().unwrap_or(name));
        let (digest, _) = std::fs::File::open(wheel)
            .and_then(|f| Digest::of_reader(std::io::BufReader::new(f)))
            .map_err(|e| {
                RemoteError::new(
                    format!("Cannot read `{}`: {e}", wheel.display()),
                    "Check the file",
                )
            })?;
        refine_oci::block_on(async {
            let key = ObjectPath::from(format!("packages/{project}/{name}"));
            let mut file = tokio::fs::File::open(wheel).await.map_err(|e| {
                RemoteError::new(
                    format!("Cannot read `{}`: {e}", wheel.display()),
                    "Check the file",
                )
            })?;
            let mut w = object_store::buffered::BufWriter::new(self.store.clone(), key);
            let copied = tokio::io::copy(&mut file, &mut w).await;
            let closed = match copied {
                Ok(_) => w.shutdown().await,
                Err(e) => {
                    let _ = w.abort().await;
                    Err(e)
                }
            };
            closed.map_err(|e| {
                RemoteError::new(
                    format!("The mirror `{}` failed to receive `{name}`: {e}", self.url),
                    "Check that the S3 endpoint is up and the credentials may write to the bucket",
                )
            })?;
            self.store
                .put(
                    &ObjectPath::from(format!("packages/{project}/{name}.sha256")),
                    PutPayload::from(format!("{}\n", digest.hex())),
                )
                .await
                .map_err(|e| self.error("store a checksum", e))?;
            self.rebuild_project(&project).await?;
            self.rebuild_root().await
        })
        .map_err(|e| {
            RemoteError::new(
                e.to_string(),
                "Check the process's limit on threads (`ulimit -u`)",
            )
        })??;
        Ok(project)
    }

    async fn rebuild_project(&self, project: &str) -> Result<(), RemoteError> {
        let prefix = ObjectPath::from(format!("packages/{project}"));
        let objects: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.error("list the wheels", e))?;
        let mut links = Vec::new();
        for o in &objects {
            let Some(file) = o.location.filename().filter(|f| f.ends_with(".whl")) else {
                continue;
            };
            let sum = ObjectPath::from(format!("packages/{project}/{file}.sha256"));
            let hex = match self.store.get(&sum).await {
                Ok(r) => r
                    .bytes()
                    .await
                    .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                    .map_err(|e| self.error("read a checksum", e))?,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.error("read a checksum", e)),
            };
            links.push((
                format!("../../packages/{project}/{file}#sha256={hex}"),
                file.to_string(),
            ));
        }
        links.sort();
        let html = page(&format!("Links for {project}"), &links);
        self.store
            .put(
                &ObjectPath::from(format!("simple/{project}/index.html")),
                PutPayload::from(html),
            )
            .await
            .map_err(|e| self.error("write a project page", e))?;
        Ok(())
    }

    async fn rebuild_root(&self) -> Result<(), RemoteError> {
        let listing = self
            .store
            .list_with_delimiter(Some(&ObjectPath::from("packages")))
            .await
            .map_err(|e| self.error("list the projects", e))?;
        let mut links: Vec<(String, String)> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(|n| (format!("{n}/"), n.to_string())))
            .collect();
        links.sort();
        self.store
            .put(
                &ObjectPath::from("simple/index.html"),
                PutPayload::from(page("Simple index", &links)),
            )
            .await
            .map_err(|e| self.error("write the root page", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep503_names() {
        assert_eq!(normalize("PyYAML"), "pyyaml");
        assert_eq!(normalize("zope.interface"), "zope-interface");
        assert_eq!(normalize("a__b-.c"), "a-b-c");
    }
}
