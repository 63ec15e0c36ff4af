//! [`OciRemote`]: the remote store over any OCI distribution-spec 1.1 registry, through
//! `oci-client`'s streaming calls (blobs go from file to socket and from socket to file; no
//! artifact is ever held in memory).
//!
//! Layout: repository `PREFIX/<kind>`, tag = the key (64 hex). A push sends every blob the
//! manifest names (config, layers, the provenance record and the log), then the provenance as
//! an in-toto referrer (updating the referrers tag schema `sha256-<hex>` when the registry has
//! no referrers API), then the manifest, by tag, last: a tag therefore always names a complete
//! artifact. An artifact whose push did not finish stays in the store's `outbox/` and is
//! pushed by the next build ([`OciRemote::flush_outbox`]). A pull verifies every blob against
//! its digest while it streams to a temporary file; nothing unverified enters the store.
//!
//! The [`Remote`] trait is synchronous and called from rayon workers: the remote owns a tokio
//! runtime and blocks on it.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::intoto;
use super::{Remote, RemoteError, RemoteUrl};
use crate::store::{
    Descriptor, Digest, INDEX_MEDIA_TYPE, IncomingBlob, Index, LocalStore, MANIFEST_MEDIA_TYPE,
    Manifest, PinRole, StoreError,
};
use refine_oci::auth::Credentials;

/// Lookups sent at once by [`Remote::lookup_many`].
const CONCURRENT_LOOKUPS: usize = 32;

/// How a remote behaves when the registry cannot be reached.
#[derive(Clone, Copy, Debug, Default)]
pub struct RemoteOptions {
    /// Carry on from the local store: failed lookups count as misses, failed pushes stay in
    /// the outbox, each with a warning on stderr.
    pub optional: bool,
}

type Cached = Option<(Digest, Manifest)>;

/// A registry used as refine's remote store.
pub struct OciRemote {
    rt: tokio::runtime::Runtime,
    client: Client,
    url: RemoteUrl,
    auth: RegistryAuth,
    who: String,
    opts: RemoteOptions,
    /// Lookups already answered in this process (plan, then build).
    cache: Mutex<HashMap<(String, String), Cached>>,
    warned: AtomicBool,
}

impl std::fmt::Debug for OciRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciRemote")
            .field("url", &self.url)
            .field("auth", &self.who)
            .finish()
    }
}

/// An `AsyncWrite` over a blob being received (plain file writes: they land in the page
/// cache and do not stall the runtime).
struct ToIncoming<'a>(&'a mut IncomingBlob);

impl tokio::io::AsyncWrite for ToIncoming<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(std::io::Write::write(self.get_mut().0, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(std::io::Write::flush(self.get_mut().0))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|e| {
            matches!(
                e.code,
                OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound
                    | OciErrorCode::BlobUnknown
            )
        }),
        _ => false,
    }
}

fn store_err(e: StoreError) -> RemoteError {
    use miette::Diagnostic;
    RemoteError {
        message: e.to_string(),
        help: e.help().map(|h| h.to_string()),
    }
}

impl OciRemote {
    /// Connects lazily to the registry `url` names, with the credentials [`Credentials`]
    /// finds for it. No request is made until the first operation (see [`OciRemote::ping`]).
    pub fn new(url: RemoteUrl, opts: RemoteOptions) -> Result<Self, RemoteError> {
        let creds = Credentials::resolve(&url.registry).map_err(|e| RemoteError {
            message: e.message,
            help: e.help,
        })?;
        Self::with_credentials(url, creds, opts)
    }

    /// Like [`OciRemote::new`], with given credentials.
    pub fn with_credentials(
        url: RemoteUrl,
        creds: Credentials,
        opts: RemoteOptions,
    ) -> Result<Self, RemoteError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("refine-remote")
            .enable_all()
            .build()
            .map_err(|e| {
                RemoteError::new(
                    format!("Cannot start the remote store's runtime: {e}"),
                    "Check the process's thread limit",
                )
            })?;
        let protocol = if url.plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let client = Client::new(ClientConfig {
            protocol,
            use_monolithic_push: true,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            user_agent: concat!("refine/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        });
        let auth = creds.registry_auth();
        let who = creds.describe();
        rt.block_on(client.store_auth_if_needed(&url.registry, &auth));
        Ok(OciRemote {
            rt,
            client,
            url,
            auth,
            who,
            opts,
            cache: Mutex::new(HashMap::new()),
            warned: AtomicBool::new(false),
        })
    }

    /// The registry and prefix.
    pub fn url(&self) -> &RemoteUrl {
        &self.url
    }

    fn tag_ref(&self, kind: &str, tag: &str) -> Reference {
        Reference::with_tag(
            self.url.registry.clone(),
            self.url.repository(kind),
            tag.to_string(),
        )
    }

    fn digest_ref(&self, kind: &str, digest: &Digest) -> Reference {
        Reference::with_digest(
            self.url.registry.clone(),
            self.url.repository(kind),
            digest.to_string(),
        )
    }

    /// Turns a client error into a message naming the registry (never the credentials).
    fn error(&self, doing: &str, e: OciDistributionError) -> RemoteError {
        let reg = &self.url;
        let unauthorized = match &e {
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => true,
            OciDistributionError::ServerError { code, .. } => *code == 401 || *code == 403,
            OciDistributionError::RegistryError { envelope, .. } => envelope
                .errors
                .iter()
                .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
            _ => false,
        };
        if unauthorized {
            return RemoteError::new(
                format!(
                    "The registry {reg} refused the credentials ({}) while trying to {doing}",
                    self.who
                ),
                format!(
                    "Check `REFINE_REGISTRY_USER` / `REFINE_REGISTRY_PASSWORD` or run `docker login {}`",
                    reg.registry
                ),
            );
        }
        if let OciDistributionError::RequestError(r) = &e
            && (r.is_connect() || r.is_timeout())
        {
            return RemoteError::new(
                format!("Cannot reach the registry {reg} (trying to {doing}): it is not answering"),
                "Start the registry or check `--remote` / `REFINE_REMOTE` / `store { remote … }`; pass `--remote-optional` to build from the local store alone",
            );
        }
        if let OciDistributionError::DigestError(d) = &e {
            return RemoteError::new(
                format!("The registry {reg} sent corrupt data while trying to {doing}: {d}"),
                "Nothing was stored locally. The registry's copy is damaged: delete it there (or push it again from a good store with `refine push`)",
            );
        }
        let text = match &e {
            OciDistributionError::RequestError(r) => {
                let mut s = r.to_string();
                let mut src = std::error::Error::source(r);
                while let Some(inner) = src {
                    s.push_str(": ");
                    s.push_str(&inner.to_string());
                    src = inner.source();
                }
                s
            }
            other => other.to_string(),
        };
        RemoteError::new(
            format!("The registry {reg} failed to {doing}: {text}"),
            "Check that the registry is up and implements the OCI distribution-spec",
        )
    }

    fn warn(&self, e: &RemoteError) {
        if !self.warned.swap(true, Ordering::SeqCst) {
            eprintln!(
                "warning: {e}; continuing from the local store (`--remote-optional`); further remote errors are not shown"
            );
        }
    }

    /// Checks that the registry answers `/v2/` (with the credentials).
    pub fn ping(&self) -> Result<(), RemoteError> {
        self.rt.block_on(async {
            // Any repository works: listing tags needs `/v2/` and the credentials.
            let r = self.tag_ref("base", "latest");
            match self.client.list_tags(&r, &self.auth, Some(1), None).await {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(self.error("check that it answers", e)),
            }
        })
    }

    async fn lookup_async(&self, kind: &str, key: &str) -> Result<Cached, RemoteError> {
        let r = self.tag_ref(kind, key);
        match self
            .client
            .pull_manifest_raw(&r, &self.auth, &[MANIFEST_MEDIA_TYPE])
            .await
        {
            Ok((bytes, _)) => {
                let digest = Digest::of_bytes(&bytes);
                let manifest = Manifest::from_slice(&bytes).map_err(|why| {
                    RemoteError::new(
                        format!(
                            "The registry {} holds an unusable manifest for `{kind}` key `{key}`: {why}",
                            self.url
                        ),
                        "Delete that tag in the registry; the next build pushes a good one",
                    )
                })?;
                Ok(Some((digest, manifest)))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.error(&format!("look up `{kind}` key `{key}`"), e)),
        }
    }

    fn cached(&self, kind: &str, key: &str) -> Option<Cached> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(kind.to_string(), key.to_string()))
            .cloned()
    }

    fn remember(&self, kind: &str, key: &str, v: Cached) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((kind.to_string(), key.to_string()), v);
    }

    async fn pull_blob_to_store(
        &self,
        local: &LocalStore,
        kind: &str,
        d: &Descriptor,
    ) -> Result<(), RemoteError> {
        if local.has_blob(&d.digest) {
            return Ok(());
        }
        let r = self.digest_ref(kind, &d.digest);
        let mut incoming = local.incoming_blob().map_err(store_err)?;
        let digest = d.digest.to_string();
        self.client
            .pull_blob(&r, digest.as_str(), ToIncoming(&mut incoming))
            .await
            .map_err(|e| self.error(&format!("send blob `{digest}`"), e))?;
        local
            .commit_incoming(
                incoming,
                &d.digest,
                &format!(
                    "blob from {}/{}",
                    self.url.registry,
                    self.url.repository(kind)
                ),
            )
            .map_err(store_err)?;
        Ok(())
    }

    async fn pull_async(
        &self,
        local: &LocalStore,
        kind: &str,
        key: &str,
        digest: &Digest,
    ) -> Result<(), RemoteError> {
        let _lease = local.lease().map_err(store_err)?;
        let r = self.digest_ref(kind, digest);
        let (bytes, _) = self
            .client
            .pull_manifest_raw(&r, &self.auth, &[MANIFEST_MEDIA_TYPE])
            .await
            .map_err(|e| self.error(&format!("send manifest `{digest}`"), e))?;
        let actual = Digest::of_bytes(&bytes);
        if actual != *digest {
            return Err(RemoteError::new(
                format!(
                    "The registry {} sent manifest `{actual}` for `{digest}`",
                    self.url
                ),
                "Nothing was stored locally. The registry's copy is damaged: delete it there",
            ));
        }
        let manifest = Manifest::from_slice(&bytes).map_err(|why| {
            RemoteError::new(
                format!("Manifest `{digest}` in {} is unusable: {why}", self.url),
                "Delete it in the registry; the next build pushes a good one",
            )
        })?;
        for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
            self.pull_blob_to_store(local, kind, d).await?;
        }
        // The provenance record and the log: best effort (an artifact pushed by another tool
        // may lack them), pinned like the ones built here.
        for note in ["dev.refine.provenance", "dev.refine.log"] {
            let Some(d) = manifest
                .annotation(note)
                .and_then(|v| Digest::parse(v).ok())
            else {
                continue;
            };
            let desc = Descriptor {
                media_type: "application/json".into(),
                digest: d,
                size: 0,
                artifact_type: None,
                annotations: None,
            };
            if self.pull_blob_to_store(local, kind, &desc).await.is_ok() {
                local.pin_blob(&d, PinRole::Log).map_err(store_err)?;
            }
        }
        local
            .put_manifest_bytes(kind, key, &bytes)
            .map_err(store_err)?;
        Ok(())
    }

    async fn push_blob_file(
        &self,
        local: &LocalStore,
        kind: &str,
        digest: &Digest,
    ) -> Result<(), RemoteError> {
        let r = self.digest_ref(kind, digest);
        let d = digest.to_string();
        let exists = self
            .client
            .blob_exists(&r, &d)
            .await
            .map_err(|e| self.error(&format!("check blob `{d}`"), e))?;
        if exists {
            return Ok(());
        }
        let path = local.existing_blob_path(digest).map_err(store_err)?;
        let file = tokio::fs::File::open(&path).await.map_err(|e| {
            store_err(StoreError::Io {
                action: "open",
                path: path.clone(),
                source: e,
            })
        })?;
        let size = file.metadata().await.map(|m| m.len()).ok();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)
            .map_err(OciDistributionError::IoError);
        self.client
            .push_blob_stream(&r, stream, &d, size)
            .await
            .map_err(|e| self.error(&format!("receive blob `{d}`"), e))?;
        Ok(())
    }

    async fn push_async(
        &self,
        local: &LocalStore,
        kind: &str,
        key: &str,
        digest: &Digest,
    ) -> Result<(), RemoteError> {
        let bytes = local.read_manifest_bytes(digest).map_err(store_err)?;
        let manifest = Manifest::from_slice(&bytes).map_err(|reason| {
            store_err(StoreError::BadManifest {
                digest: *digest,
                reason,
            })
        })?;
        let tag = self.tag_ref(kind, key);
        // Already there (another machine, or an earlier push): nothing to do.
        match self.client.fetch_manifest_digest(&tag, &self.auth).await {
            Ok(d) if d == digest.to_string() => return Ok(()),
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(self.error(&format!("look up `{kind}` key `{key}`"), e)),
        }
        let mut blobs: Vec<Digest> = std::iter::once(&manifest.config)
            .chain(&manifest.layers)
            .map(|d| d.digest)
            .collect();
        let provenance = manifest
            .annotation("dev.refine.provenance")
            .and_then(|v| Digest::parse(v).ok())
            .filter(|d| local.has_blob(d));
        for note in [
            provenance,
            manifest
                .annotation("dev.refine.log")
                .and_then(|v| Digest::parse(v).ok())
                .filter(|d| local.has_blob(d)),
        ]
        .into_iter()
        .flatten()
        {
            blobs.push(note);
        }
        blobs.sort();
        blobs.dedup();
        for b in &blobs {
            self.push_blob_file(local, kind, b).await?;
        }
        if let Some(p) = provenance {
            self.push_provenance(local, kind, key, digest, bytes.len() as u64, &p)
                .await?;
        }
        // The manifest, tagged with the key, last: the tag names a complete artifact.
        self.client
            .push_manifest_raw(&tag, bytes, http_header(MANIFEST_MEDIA_TYPE))
            .await
            .map_err(|e| {
                self.error(&format!("receive the manifest for `{kind}` key `{key}`"), e)
            })?;
        self.remember(kind, key, Some((*digest, manifest)));
        Ok(())
    }

    /// Pushes the in-toto statement for `subject` as a referrer, and records it in the
    /// referrers tag schema if the registry's referrers API does not list it.
    async fn push_provenance(
        &self,
        local: &LocalStore,
        kind: &str,
        key: &str,
        subject: &Digest,
        subject_size: u64,
        record: &Digest,
    ) -> Result<(), RemoteError> {
        let record_bytes = local.read_blob(record).map_err(store_err)?;
        let record: serde_json::Value = serde_json::from_slice(&record_bytes).map_err(|e| {
            RemoteError::new(
                format!("The provenance record `{record}` is not JSON: {e}"),
                "Run `refine store verify`",
            )
        })?;
        let statement = serde_json::to_vec(&intoto::statement(subject, &record))
            .map_err(|e| RemoteError::new(format!("Cannot write JSON: {e}"), "Report a bug"))?;
        let st_digest = Digest::of_bytes(&statement);
        let r = self.digest_ref(kind, &st_digest);
        let st = st_digest.to_string();
        if !self
            .client
            .blob_exists(&r, &st)
            .await
            .map_err(|e| self.error("check the provenance blob", e))?
        {
            self.client
                .push_blob(&r, statement.clone(), &st)
                .await
                .map_err(|e| self.error("receive the provenance blob", e))?;
        }
        let referrer = intoto::referrer_manifest(
            subject,
            subject_size,
            &st_digest,
            statement.len() as u64,
            key,
        );
        let ref_bytes = referrer.to_bytes();
        let ref_digest = Digest::of_bytes(&ref_bytes);
        self.client
            .push_manifest_raw(
                &self.digest_ref(kind, &ref_digest),
                ref_bytes.clone(),
                http_header(MANIFEST_MEDIA_TYPE),
            )
            .await
            .map_err(|e| self.error("receive the provenance referrer", e))?;
        // distribution-spec 1.1: a registry with the referrers API lists it now; otherwise
        // the client maintains the `sha256-<hex>` tag holding an index of referrers.
        let listed = self
            .client
            .pull_referrers(&self.digest_ref(kind, subject), None)
            .await
            .map(|idx| {
                idx.manifests
                    .iter()
                    .any(|m| m.digest == ref_digest.to_string())
            })
            .unwrap_or(false);
        if listed {
            return Ok(());
        }
        let tag = self.tag_ref(kind, &format!("sha256-{}", subject.hex()));
        let mut index = match self
            .client
            .pull_manifest_raw(&tag, &self.auth, &[INDEX_MEDIA_TYPE])
            .await
        {
            Ok((b, _)) => {
                serde_json::from_slice::<Index>(&b).unwrap_or_else(|_| Index::new(vec![]))
            }
            Err(e) if is_not_found(&e) => Index::new(Vec::new()),
            Err(e) => return Err(self.error("read the referrers tag", e)),
        };
        index.manifests.push(Descriptor {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            digest: ref_digest,
            size: ref_bytes.len() as u64,
            artifact_type: Some(intoto::INTOTO_MEDIA_TYPE.into()),
            annotations: referrer.annotations.clone(),
        });
        self.client
            .push_manifest_raw(&tag, index.to_bytes(), http_header(INDEX_MEDIA_TYPE))
            .await
            .map_err(|e| self.error("update the referrers tag", e))?;
        Ok(())
    }

    /// The in-toto statement attached to the artifact `subject` of `kind`, if any.
    pub fn provenance(
        &self,
        kind: &str,
        subject: &Digest,
    ) -> Result<Option<serde_json::Value>, RemoteError> {
        self.rt.block_on(async {
            let idx = self
                .client
                .pull_referrers(
                    &self.digest_ref(kind, subject),
                    Some(intoto::INTOTO_MEDIA_TYPE),
                )
                .await
                .map_err(|e| self.error("list the referrers", e))?;
            let Some(entry) = idx.manifests.first() else {
                return Ok(None);
            };
            let rd = Digest::parse(&entry.digest).map_err(|e| store_err(e.into()))?;
            let (bytes, _) = self
                .client
                .pull_manifest_raw(
                    &self.digest_ref(kind, &rd),
                    &self.auth,
                    &[MANIFEST_MEDIA_TYPE],
                )
                .await
                .map_err(|e| self.error("send the provenance referrer", e))?;
            if Digest::of_bytes(&bytes) != rd {
                return Err(RemoteError::new(
                    format!("The registry {} sent a corrupt referrer `{rd}`", self.url),
                    "Delete it in the registry",
                ));
            }
            let m = Manifest::from_slice(&bytes).map_err(|why| {
                RemoteError::new(
                    format!("Referrer `{rd}` is unusable: {why}"),
                    "Delete it in the registry",
                )
            })?;
            let Some(layer) = m.layers.first() else {
                return Ok(None);
            };
            let mut buf = Vec::new();
            self.client
                .pull_blob(
                    &self.digest_ref(kind, &layer.digest),
                    layer.digest.to_string().as_str(),
                    &mut buf,
                )
                .await
                .map_err(|e| self.error("send the provenance statement", e))?;
            if Digest::of_bytes(&buf) != layer.digest {
                return Err(RemoteError::new(
                    format!(
                        "The registry {} sent a corrupt statement `{}`",
                        self.url, layer.digest
                    ),
                    "Delete it in the registry",
                ));
            }
            serde_json::from_slice(&buf).map(Some).map_err(|e| {
                RemoteError::new(
                    format!("The provenance statement is not JSON: {e}"),
                    "Delete it in the registry",
                )
            })
        })
    }

    /// Pushes every artifact whose push did not finish (a registry that went away mid-push).
    /// Returns how many were pushed.
    pub fn flush_outbox(&self, local: &LocalStore) -> Result<usize, RemoteError> {
        let pending = local.outbox_list().map_err(store_err)?;
        let mut n = 0;
        for crate::store::OutboxEntry { kind, key, digest } in pending {
            let kind = kind.as_str();
            if !local.has_blob(&digest) {
                local.outbox_remove(kind, &key).map_err(store_err)?;
                continue;
            }
            self.push_now(local, kind, &key, &digest)?;
            n += 1;
        }
        Ok(n)
    }

    fn push_now(
        &self,
        local: &LocalStore,
        kind: &str,
        key: &str,
        digest: &Digest,
    ) -> Result<(), RemoteError> {
        local.outbox_add(kind, key, digest).map_err(store_err)?;
        self.rt
            .block_on(self.push_async(local, kind, key, digest))?;
        local.outbox_remove(kind, key).map_err(store_err)
    }
}

fn http_header(v: &'static str) -> http::HeaderValue {
    http::HeaderValue::from_static(v)
}

impl Remote for OciRemote {
    fn describe(&self) -> String {
        self.url.to_string()
    }

    fn lookup(&self, kind: &str, key: &str) -> Result<Option<(Digest, Manifest)>, RemoteError> {
        if let Some(v) = self.cached(kind, key) {
            return Ok(v);
        }
        match self.rt.block_on(self.lookup_async(kind, key)) {
            Ok(v) => {
                self.remember(kind, key, v.clone());
                Ok(v)
            }
            Err(e) if self.opts.optional => {
                self.warn(&e);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn lookup_many(
        &self,
        keys: &[(String, String)],
    ) -> Vec<Result<Option<(Digest, Manifest)>, RemoteError>> {
        let todo: Vec<usize> = (0..keys.len())
            .filter(|&i| self.cached(&keys[i].0, &keys[i].1).is_none())
            .collect();
        let answers: Vec<(usize, Result<Cached, RemoteError>)> = self.rt.block_on(
            futures_util::stream::iter(
                todo.into_iter()
                    .map(|i| async move { (i, self.lookup_async(&keys[i].0, &keys[i].1).await) }),
            )
            .buffer_unordered(CONCURRENT_LOOKUPS)
            .collect(),
        );
        for (i, a) in &answers {
            if let Ok(v) = a {
                self.remember(&keys[*i].0, &keys[*i].1, v.clone());
            }
        }
        let mut failed: HashMap<usize, RemoteError> = answers
            .into_iter()
            .filter_map(|(i, a)| a.err().map(|e| (i, e)))
            .collect();
        (0..keys.len())
            .map(|i| match failed.remove(&i) {
                Some(e) if self.opts.optional => {
                    self.warn(&e);
                    Ok(None)
                }
                Some(e) => Err(e),
                None => Ok(self.cached(&keys[i].0, &keys[i].1).flatten()),
            })
            .collect()
    }

    fn pull(
        &self,
        local: &LocalStore,
        kind: &str,
        key: &str,
        digest: &Digest,
    ) -> Result<(), RemoteError> {
        self.rt.block_on(self.pull_async(local, kind, key, digest))
    }

    fn push(
        &self,
        local: &LocalStore,
        kind: &str,
        key: &str,
        digest: &Digest,
    ) -> Result<(), RemoteError> {
        match self.push_now(local, kind, key, digest) {
            Err(e) if self.opts.optional => {
                self.warn(&e);
                Ok(())
            }
            r => r,
        }
    }
}
