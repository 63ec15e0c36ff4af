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
//! A large blob the local store knows to be in another repository of the registry (its
//! `locations/`, written by pushes and pulls) is mounted from there rather than sent again.
//!
//! The [`Remote`] trait is synchronous and called from rayon workers: the remote blocks on the
//! process's one runtime (`refine_oci::runtime`). The client, the error classes and the retry
//! policy (transient failures are sent again, see `refine_oci::retry`) come from `refine-oci`.

pub mod attest;
mod referrers;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::BlobResponse;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::{Remote, RemoteError, RemoteUrl};
use refine_oci::auth::Credentials;
use refine_oci::open;
use refine_oci::retry::{Attempt, retried, retried_attempt};
use refine_oci::{ErrorClass, classify};
use refine_store::{
    Descriptor, Digest, LocalStore, MANIFEST_MEDIA_TYPE, Manifest, PinRole, StoreError,
};

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
    client: Client,
    url: RemoteUrl,
    auth: RegistryAuth,
    who: String,
    opts: RemoteOptions,
    /// Lookups already answered in this process (plan, then build).
    cache: Mutex<HashMap<(String, String), Cached>>,
    warned: AtomicBool,
    /// Blob bytes sent to and received from the registry, for `refine serve`'s metrics.
    traffic: Traffic,
    /// What it signs pushes with and whom it trusts for pulls.
    attest: attest::Attestation,
    /// Direct manifest lookups, with anonymous credentials (`refine_oci::open`).
    open: Option<open::OpenLookups>,
}

impl std::fmt::Debug for OciRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciRemote")
            .field("url", &self.url)
            .field("auth", &self.who)
            .finish()
    }
}

fn is_not_found(e: &OciDistributionError) -> bool {
    classify(e) == ErrorClass::NotFound
}

/// Runs `future` on the shared runtime.
fn block_on<T>(future: impl Future<Output = Result<T, RemoteError>>) -> Result<T, RemoteError> {
    refine_oci::block_on(future).map_err(|e| {
        RemoteError::new(
            e.to_string(),
            "Check the process's limit on threads (`ulimit -u`)",
        )
    })?
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
        let client = refine_oci::client::client(url.plain_http);
        let auth = creds.registry_auth();
        let who = creds.describe();
        block_on(async {
            client.store_auth_if_needed(&url.registry, &auth).await;
            Ok(())
        })?;
        let open = match auth {
            RegistryAuth::Anonymous => open::OpenLookups::new(url.plain_http, &url.registry),
            _ => None,
        };
        Ok(OciRemote {
            client,
            url,
            auth,
            who,
            opts,
            cache: Mutex::new(HashMap::new()),
            warned: AtomicBool::new(false),
            traffic: Traffic::default(),
            attest: attest::Attestation::default(),
            open,
        })
    }

    /// The registry and prefix.
    pub fn url(&self) -> &RemoteUrl {
        &self.url
    }

    /// Blob bytes pushed and pulled by this client so far (blobs the other side had already
    /// are not counted).
    pub fn traffic(&self) -> (u64, u64) {
        (
            self.traffic.pushed.load(Ordering::Relaxed),
            self.traffic.pulled.load(Ordering::Relaxed),
        )
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
    fn error(&self, doing: &str, e: &OciDistributionError) -> RemoteError {
        let reg = &self.url;
        match classify(e) {
            ErrorClass::Unauthorized => RemoteError::new(
                format!(
                    "The registry {reg} refused the credentials ({}) while trying to {doing}",
                    self.who
                ),
                format!(
                    "Check `REFINE_REGISTRY_USER` / `REFINE_REGISTRY_PASSWORD` or run `docker login {}`",
                    reg.registry
                ),
            ),
            ErrorClass::Unreachable => RemoteError::new(
                format!("Cannot reach the registry {reg} (trying to {doing}): it is not answering"),
                "Start the registry or check `--remote` / `REFINE_REMOTE` / `store { remote … }`; pass `--remote-optional` to build from the local store alone",
            ),
            ErrorClass::Corrupt => RemoteError::new(
                format!(
                    "The registry {reg} sent corrupt data while trying to {doing}: {}",
                    refine_oci::error::describe(e)
                ),
                "Nothing was stored locally. The registry's copy is damaged: delete it there (or push it again from a good store with `refine push`)",
            ),
            _ => RemoteError::new(
                format!(
                    "The registry {reg} failed to {doing}: {}",
                    refine_oci::error::describe(e)
                ),
                "Check that the registry is up and implements the OCI distribution-spec",
            ),
        }
    }

    fn attempt_error(&self, doing: &str, e: Attempt<StoreError>) -> RemoteError {
        match e {
            Attempt::Local(e) => store_err(e),
            Attempt::Registry(e) => self.error(doing, &e),
        }
    }

    // `--remote-optional` promises one warning on stderr when the remote fails mid-build; this
    // runs on rayon workers deep below the CLI, with no observer to hand it to.
    #[allow(clippy::print_stderr)]
    fn warn(&self, e: &RemoteError) {
        if !self.warned.swap(true, Ordering::SeqCst) {
            eprintln!(
                "warning: {e}; continuing from the local store (`--remote-optional`); further remote errors are not shown"
            );
        }
    }

    /// Checks that the registry answers `/v2/` (with the credentials).
    pub fn ping(&self) -> Result<(), RemoteError> {
        block_on(async {
            // An open registry answered `/v2/` already (and lookups will reuse the answer).
            if let Some(open) = &self.open
                && open.is_open().await
            {
                return Ok(());
            }
            // Any repository works: listing tags needs `/v2/` and the credentials.
            let r = self.tag_ref("base", "latest");
            match retried(|| self.client.list_tags(&r, &self.auth, Some(1), None)).await {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(self.error("check that it answers", &e)),
            }
        })
    }

    async fn lookup_async(&self, kind: &str, key: &str) -> Result<Cached, RemoteError> {
        match self.find_async(kind, key).await? {
            Some((digest, _)) if !self.accept(kind, key, &digest).await? => Ok(None),
            found => Ok(found),
        }
    }

    /// The manifest the registry holds for `(kind, key)`, whoever signed it (`refine verify`
    /// says who did; lookups accept it only from a trusted key).
    pub fn find(&self, kind: &str, key: &str) -> Result<Cached, RemoteError> {
        block_on(self.find_async(kind, key))
    }

    async fn find_async(&self, kind: &str, key: &str) -> Result<Cached, RemoteError> {
        let direct = match &self.open {
            Some(open) => {
                open.manifest(&self.url.repository(kind), key, MANIFEST_MEDIA_TYPE)
                    .await
            }
            None => open::Answer::Ask,
        };
        let bytes = match direct {
            open::Answer::Found(bytes) => bytes,
            open::Answer::Missing => return Ok(None),
            open::Answer::Ask => {
                let r = self.tag_ref(kind, key);
                match retried(|| {
                    self.client
                        .pull_manifest_raw(&r, &self.auth, &[MANIFEST_MEDIA_TYPE])
                })
                .await
                {
                    Ok((bytes, _)) => bytes.to_vec(),
                    Err(e) if is_not_found(&e) => return Ok(None),
                    Err(e) => return Err(self.error(&format!("look up `{kind}` key `{key}`"), &e)),
                }
            }
        };
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

    fn cached(&self, kind: &str, key: &str) -> Option<Cached> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(kind.to_string(), key.to_string()))
            .cloned()
    }

    fn remember(&self, kind: &str, key: &str, v: Cached) {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let digest = d.digest.to_string();
        // Each attempt starts a fresh temporary file: a broken-off transfer leaves nothing.
        // The store hashes what it receives and refuses a blob that is not `digest`
        // (`commit_incoming`), so the transport need not hash it too: asked for the blob
        // "from byte 0", a registry that serves ranges answers 206, which oci-client streams
        // as it comes; one that answers 200 gets it verified twice, never less.
        let incoming = retried_attempt(|| async {
            let mut incoming = local.incoming_blob().map_err(Attempt::Local)?;
            let response = self
                .client
                .pull_blob_stream_partial(&r, digest.as_str(), 0, None)
                .await
                .map_err(Attempt::Registry)?;
            let (BlobResponse::Full(mut stream) | BlobResponse::Partial(mut stream)) = response;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Attempt::Registry(OciDistributionError::from(e)))?;
                std::io::Write::write_all(&mut incoming, &chunk)
                    .map_err(|e| Attempt::Local(StoreError::io("write", "a pulled blob", e)))?;
            }
            Ok(incoming)
        })
        .await
        .map_err(|e| self.attempt_error(&format!("send blob `{digest}`"), e))?;
        self.traffic
            .pulled
            .fetch_add(incoming.size(), Ordering::Relaxed);
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
        self.note_location(local, kind, &d.digest);
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
        let (bytes, _) = retried(|| {
            self.client
                .pull_manifest_raw(&r, &self.auth, &[MANIFEST_MEDIA_TYPE])
        })
        .await
        .map_err(|e| self.error(&format!("send manifest `{digest}`"), &e))?;
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
        let envelope = self.envelope_for_pull(kind, key, digest).await?;
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
        // The envelope before the ref: a ref from a signed cache always has its proof.
        if let Some(envelope) = envelope {
            local.put_signature(digest, &envelope).map_err(store_err)?;
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
        let exists = retried(|| self.client.blob_exists(&r, &d))
            .await
            .map_err(|e| self.error(&format!("check blob `{d}`"), &e))?;
        if exists {
            self.note_location(local, kind, digest);
            return Ok(());
        }
        if self.mount_from_elsewhere(local, kind, &r, digest).await {
            self.note_location(local, kind, digest);
            return Ok(());
        }
        let path = local.existing_blob_path(digest).map_err(store_err)?;
        // Each attempt streams the file from its start.
        retried_attempt(|| async {
            let file = tokio::fs::File::open(&path).await.map_err(|e| {
                Attempt::Local(StoreError::Io {
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
                .map_err(Attempt::Registry)?;
            self.traffic
                .pushed
                .fetch_add(size.unwrap_or(0), Ordering::Relaxed);
            Ok(())
        })
        .await
        .map_err(|e| self.attempt_error(&format!("receive blob `{d}`"), e))?;
        self.note_location(local, kind, digest);
        Ok(())
    }

    /// Asks the registry to mount `digest` into `target` from another of its repositories
    /// that the local store knows holds it (most recent first), instead of uploading it.
    /// Whether one mount was accepted; a refused one costs a request and nothing else.
    async fn mount_from_elsewhere(
        &self,
        local: &LocalStore,
        kind: &str,
        target: &Reference,
        digest: &Digest,
    ) -> bool {
        let repository = self.url.repository(kind);
        let d = digest.to_string();
        for place in local.blob_locations(digest).iter().rev() {
            if place.registry != self.url.registry || place.repository == repository {
                continue;
            }
            let source = Reference::with_digest(
                self.url.registry.clone(),
                place.repository.clone(),
                d.clone(),
            );
            if self.client.mount_blob(target, &source, &d).await.is_ok() {
                return true;
            }
        }
        false
    }

    /// Remembers that the blob is in this registry's repository for `kind`, for later pushes
    /// to other repositories. Best effort: the record is only a hint.
    fn note_location(&self, local: &LocalStore, kind: &str, digest: &Digest) {
        let _ = local.record_location(digest, &self.url.registry, &self.url.repository(kind));
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
        match retried(|| self.client.fetch_manifest_digest(&tag, &self.auth)).await {
            Ok(d) if d == digest.to_string() => return Ok(()),
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(self.error(&format!("look up `{kind}` key `{key}`"), &e)),
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
        let subject = (digest, bytes.len() as u64);
        let record = provenance
            .map(|p| referrers::read_record(local, &p))
            .transpose()?;
        if let Some(record) = &record {
            self.push_provenance(kind, key, subject, record).await?;
        }
        self.push_signatures(local, kind, key, subject, record.as_ref())
            .await?;
        // The manifest, tagged with the key, last: the tag names a complete artifact.
        retried(|| {
            self.client
                .push_manifest_raw(&tag, bytes.clone(), http_header(MANIFEST_MEDIA_TYPE))
        })
        .await
        .map_err(|e| {
            self.error(
                &format!("receive the manifest for `{kind}` key `{key}`"),
                &e,
            )
        })?;
        self.remember(kind, key, Some((*digest, manifest)));
        Ok(())
    }

    /// Pushes every artifact whose push did not finish (a registry that went away mid-push).
    /// Returns how many were pushed.
    pub fn flush_outbox(&self, local: &LocalStore) -> Result<usize, RemoteError> {
        let pending = local.outbox_list().map_err(store_err)?;
        let mut n = 0;
        for refine_store::OutboxEntry { kind, key, digest } in pending {
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
        block_on(self.push_async(local, kind, key, digest))?;
        local.outbox_remove(kind, key).map_err(store_err)
    }
}

pub(crate) fn http_header(v: &'static str) -> http::HeaderValue {
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
        match block_on(self.lookup_async(kind, key)) {
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
        let answers: Vec<(usize, Result<Cached, RemoteError>)> = match block_on(async {
            Ok(futures_util::stream::iter(
                todo.iter()
                    .map(|&i| async move { (i, self.lookup_async(&keys[i].0, &keys[i].1).await) }),
            )
            .buffer_unordered(CONCURRENT_LOOKUPS)
            .collect()
            .await)
        }) {
            Ok(answers) => answers,
            // No runtime: every lookup failed alike.
            Err(e) => todo.iter().map(|&i| (i, Err(e.clone()))).collect(),
        };
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
        block_on(self.pull_async(local, kind, key, digest))
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

/// Byte counters of one client.
#[derive(Debug, Default)]
struct Traffic {
    pushed: std::sync::atomic::AtomicU64,
    pulled: std::sync::atomic::AtomicU64,
}
