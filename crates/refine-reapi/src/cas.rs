//! The farm's content-addressable storage: what is missing is asked first
//! (`FindMissingBlobs`), small blobs travel in batches, large ones stream through ByteStream
//! from and to files in 1 MiB chunks, so memory stays bounded by a few chunks whatever the
//! size of an input root or an output. Everything read is checked against its digest while it
//! streams, and lands under its final name only once it matched.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{StreamExt, TryStreamExt};
use sha2::{Digest as _, Sha256};

use crate::digest::ReDigest;
use crate::endpoint::{AuthChannel, Endpoint};
use crate::error::ReapiError;
use crate::proto::bytestream::byte_stream_client::ByteStreamClient;
use crate::proto::bytestream::{ReadRequest, WriteRequest};
use crate::proto::re::content_addressable_storage_client::ContentAddressableStorageClient;
use crate::proto::re::{
    BatchReadBlobsRequest, BatchUpdateBlobsRequest, FindMissingBlobsRequest,
    batch_update_blobs_request,
};
use crate::tree::Source;

/// Blobs up to this size go in batches; larger ones through ByteStream.
const BATCH_BLOB: i64 = 1 << 20;
/// The payload of one batch call, well under gRPC's default 4 MiB message limit.
const BATCH_BYTES: i64 = 3 << 20;
/// A ByteStream chunk.
const CHUNK: usize = 1 << 20;
/// Digests per `FindMissingBlobs` call.
const FIND_BATCH: usize = 4096;
/// Transfers in flight at once.
const PARALLEL: usize = 8;

/// A client of one farm's CAS.
pub struct Cas {
    endpoint: Endpoint,
    channel: AuthChannel,
    /// Blobs this process already knows the farm holds: a second action on the same base
    /// does not ask again.
    known: Mutex<HashSet<ReDigest>>,
    uploaded: AtomicU64,
    downloaded: AtomicU64,
}

impl Cas {
    pub fn new(endpoint: Endpoint, channel: AuthChannel) -> Cas {
        Cas {
            endpoint,
            channel,
            known: Mutex::new(HashSet::new()),
            uploaded: AtomicU64::new(0),
            downloaded: AtomicU64::new(0),
        }
    }

    fn instance(&self) -> String {
        self.endpoint.instance.clone()
    }

    /// Bytes sent and received so far.
    pub fn traffic(&self) -> (u64, u64) {
        (
            self.uploaded.load(Ordering::Relaxed),
            self.downloaded.load(Ordering::Relaxed),
        )
    }

    /// Forgets what the farm was known to hold (after it said a blob is missing).
    pub fn forget(&self) {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The digests among `digests` the farm lacks.
    pub async fn find_missing(&self, digests: &[ReDigest]) -> Result<Vec<ReDigest>, ReapiError> {
        let mut client = ContentAddressableStorageClient::new(self.channel.clone());
        let mut missing = Vec::new();
        for chunk in digests.chunks(FIND_BATCH) {
            let reply = client
                .find_missing_blobs(FindMissingBlobsRequest {
                    instance_name: self.instance(),
                    blob_digests: chunk.iter().map(ReDigest::proto).collect(),
                    digest_function: 0,
                })
                .await
                .map_err(ReapiError::call(&self.endpoint, "FindMissingBlobs"))?
                .into_inner();
            for d in &reply.missing_blob_digests {
                missing.push(ReDigest::from_proto(d)?);
            }
        }
        Ok(missing)
    }

    /// Makes sure the farm holds every blob of `blobs`: asks which are missing and uploads
    /// those.
    pub async fn ensure(&self, blobs: Vec<(ReDigest, Source)>) -> Result<usize, ReapiError> {
        let wanted: Vec<(ReDigest, Source)> = {
            let known = self
                .known
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut seen = HashSet::new();
            blobs
                .into_iter()
                .filter(|(d, _)| d.size > 0 && !known.contains(d) && seen.insert(d.clone()))
                .collect()
        };
        let digests: Vec<ReDigest> = wanted.iter().map(|(d, _)| d.clone()).collect();
        let missing: HashSet<ReDigest> = self.find_missing(&digests).await?.into_iter().collect();
        let to_send: Vec<(ReDigest, Source)> = wanted
            .into_iter()
            .filter(|(d, _)| missing.contains(d))
            .collect();
        let sent = to_send.len();
        self.upload(to_send).await?;
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(digests);
        Ok(sent)
    }

    /// Uploads blobs, whether or not the farm has them.
    pub async fn upload(&self, blobs: Vec<(ReDigest, Source)>) -> Result<(), ReapiError> {
        let (batches, large) = batched(blobs);
        let (a, b) = tokio::join!(
            all(batches.into_iter().map(|b| self.upload_batch(b))),
            all(large.into_iter().map(|(d, s)| self.upload_stream(d, s))),
        );
        a.and(b)
    }

    async fn upload_batch(&self, blobs: Vec<(ReDigest, Source)>) -> Result<(), ReapiError> {
        let mut requests = Vec::with_capacity(blobs.len());
        for (digest, source) in blobs {
            let data = match source {
                Source::Bytes(b) => b,
                Source::File(p) => fs_err::read(&p).map_err(ReapiError::io("read", &p))?,
            };
            if crate::digest::digest_of(&data) != digest {
                return Err(ReapiError::Unsupported {
                    message: format!(
                        "A file changed while it was being sent to the farm (blob `{digest}`)"
                    ),
                });
            }
            requests.push(batch_update_blobs_request::Request {
                digest: Some(digest.proto()),
                data,
                compressor: 0,
            });
        }
        let size: i64 = requests.iter().map(|r| r.data.len() as i64).sum();
        let mut client = ContentAddressableStorageClient::new(self.channel.clone());
        let reply = client
            .batch_update_blobs(BatchUpdateBlobsRequest {
                instance_name: self.instance(),
                requests,
                digest_function: 0,
            })
            .await
            .map_err(ReapiError::call(&self.endpoint, "BatchUpdateBlobs"))?
            .into_inner();
        for r in reply.responses {
            if let Some(status) = r.status
                && status.code != 0
            {
                return Err(ReapiError::Call {
                    endpoint: self.endpoint.to_string(),
                    call: "BatchUpdateBlobs",
                    status: Box::new(tonic::Status::new(
                        tonic::Code::from(status.code),
                        status.message,
                    )),
                });
            }
        }
        self.uploaded.fetch_add(size as u64, Ordering::Relaxed);
        Ok(())
    }

    async fn upload_stream(&self, digest: ReDigest, source: Source) -> Result<(), ReapiError> {
        let resource = format!(
            "{}uploads/{}/blobs/{}/{}",
            prefix(&self.instance()),
            upload_id(),
            digest.hash,
            digest.size
        );
        let (tx, rx) = tokio::sync::mpsc::channel::<WriteRequest>(4);
        let size = digest.size;
        // A blocking reader feeds the stream chunk by chunk; the channel bounds what is held.
        let reader = tokio::task::spawn_blocking(move || -> Result<(), ReapiError> {
            let mut read: Box<dyn Read> = match &source {
                Source::Bytes(b) => Box::new(std::io::Cursor::new(b.clone())),
                Source::File(p) => {
                    Box::new(fs_err::File::open(p).map_err(ReapiError::io("open", p))?)
                }
            };
            let mut offset = 0i64;
            let mut first = true;
            loop {
                let mut buf = vec![0u8; CHUNK];
                let mut n = 0;
                while n < CHUNK {
                    let got = read.read(&mut buf[n..]).map_err(|e| ReapiError::Io {
                        action: "read",
                        path: match &source {
                            Source::File(p) => p.clone(),
                            Source::Bytes(_) => PathBuf::from("<memory>"),
                        },
                        source: e,
                    })?;
                    if got == 0 {
                        break;
                    }
                    n += got;
                }
                buf.truncate(n);
                let finish = offset + n as i64 >= size;
                let req = WriteRequest {
                    resource_name: if first {
                        resource.clone()
                    } else {
                        String::new()
                    },
                    write_offset: offset,
                    finish_write: finish,
                    data: buf,
                };
                first = false;
                offset += n as i64;
                if tx.blocking_send(req).is_err() || finish || n == 0 {
                    break;
                }
            }
            Ok(())
        });
        let mut client = ByteStreamClient::new(self.channel.clone())
            .max_encoding_message_size(CHUNK * 2)
            .max_decoding_message_size(CHUNK * 2);
        let reply = client
            .write(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await;
        reader.await.map_err(|e| ReapiError::Unsupported {
            message: format!("The upload reader stopped: {e}"),
        })??;
        let reply = reply.map_err(ReapiError::call(&self.endpoint, "ByteStream.Write"))?;
        if reply.into_inner().committed_size != size {
            return Err(ReapiError::BadReply {
                what: format!("the upload of `{digest}`"),
                reason: "the server committed a different size".into(),
            });
        }
        self.uploaded.fetch_add(size as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Reads a blob whole, for messages (`Action`, `Command`, `Directory`, `Tree`): at most
    /// 64 MiB.
    pub async fn read_bytes(&self, digest: &ReDigest) -> Result<Vec<u8>, ReapiError> {
        if digest.size > 64 << 20 {
            return Err(ReapiError::BadReply {
                what: format!("message `{digest}`"),
                reason: "it is larger than 64 MiB".into(),
            });
        }
        let mut out = Vec::with_capacity(digest.size as usize);
        self.read_into(digest, &mut out).await?;
        Ok(out)
    }

    /// The `Tree` of an output directory (`OutputDirectory.tree_digest`), as a Merkle tree whose
    /// files are on the farm.
    pub async fn read_output_tree(
        &self,
        dir: &crate::proto::re::OutputDirectory,
    ) -> Result<crate::tree::MerkleTree, ReapiError> {
        use prost::Message;
        let digest = ReDigest::from_field(&dir.tree_digest)?;
        let bytes = self.read_bytes(&digest).await?;
        let tree =
            crate::proto::re::Tree::decode(bytes.as_slice()).map_err(|e| ReapiError::BadReply {
                what: format!("output tree `{digest}`"),
                reason: e.to_string(),
            })?;
        crate::tree::MerkleTree::from_tree(&tree, None)
    }

    /// Downloads blobs to files: small ones in batches, large ones streamed. Each file is
    /// written under a temporary name beside its target and renamed once its digest matched.
    pub async fn download(&self, blobs: Vec<(ReDigest, PathBuf)>) -> Result<(), ReapiError> {
        let (batches, large) = batched(blobs);
        let (a, b) = tokio::join!(
            all(batches.into_iter().map(|b| self.download_batch(b))),
            all(large.into_iter().map(|(d, p)| self.download_stream(d, p))),
        );
        a.and(b)
    }

    async fn download_batch(&self, blobs: Vec<(ReDigest, PathBuf)>) -> Result<(), ReapiError> {
        let mut client = ContentAddressableStorageClient::new(self.channel.clone());
        let reply = client
            .batch_read_blobs(BatchReadBlobsRequest {
                instance_name: self.instance(),
                digests: blobs.iter().map(|(d, _)| d.proto()).collect(),
                acceptable_compressors: Vec::new(),
                digest_function: 0,
            })
            .await
            .map_err(ReapiError::call(&self.endpoint, "BatchReadBlobs"))?
            .into_inner();
        let mut by_digest: std::collections::HashMap<ReDigest, Vec<u8>> =
            std::collections::HashMap::new();
        let mut missing = Vec::new();
        for r in reply.responses {
            let d = ReDigest::from_proto(&r.digest.unwrap_or_default())?;
            if r.status
                .as_ref()
                .is_some_and(|s| s.code == tonic::Code::NotFound as i32)
            {
                missing.push(d);
                continue;
            }
            if let Some(status) = r.status
                && status.code != 0
            {
                return Err(ReapiError::Call {
                    endpoint: self.endpoint.to_string(),
                    call: "BatchReadBlobs",
                    status: Box::new(tonic::Status::new(
                        tonic::Code::from(status.code),
                        format!("blob `{d}`: {}", status.message),
                    )),
                });
            }
            if crate::digest::digest_of(&r.data) != d {
                return Err(ReapiError::CorruptBlob {
                    digest: d.to_string(),
                });
            }
            by_digest.insert(d, r.data);
        }
        if !missing.is_empty() {
            missing.sort();
            return Err(self.missing(missing));
        }
        for (d, path) in blobs {
            let data = by_digest.get(&d).ok_or_else(|| ReapiError::BadReply {
                what: "a `BatchReadBlobs` reply".into(),
                reason: format!("it lacks `{d}`"),
            })?;
            self.downloaded
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            write_whole(&path, data)?;
        }
        Ok(())
    }

    async fn download_stream(&self, digest: ReDigest, path: PathBuf) -> Result<(), ReapiError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(ReapiError::io("create a file in", dir))?;
        {
            let mut w = std::io::BufWriter::new(tmp.as_file_mut());
            self.read_into(&digest, &mut w).await?;
            w.flush().map_err(ReapiError::io("write", &path))?;
        }
        tmp.persist(&path).map_err(|e| ReapiError::Io {
            action: "rename into",
            path: path.clone(),
            source: e.error,
        })?;
        Ok(())
    }

    /// Streams a blob into `out`, checking its digest as it goes.
    async fn read_into(
        &self,
        digest: &ReDigest,
        out: &mut (dyn Write + Send),
    ) -> Result<(), ReapiError> {
        if digest.size == 0 {
            return Ok(());
        }
        let mut client =
            ByteStreamClient::new(self.channel.clone()).max_decoding_message_size(CHUNK * 4);
        let resource = format!(
            "{}blobs/{}/{}",
            prefix(&self.instance()),
            digest.hash,
            digest.size
        );
        let mut stream = client
            .read(ReadRequest {
                resource_name: resource,
                read_offset: 0,
                read_limit: 0,
            })
            .await
            .map_err(|s| self.read_failed(digest, s))?
            .into_inner();
        let mut hasher = Sha256::new();
        let mut size = 0i64;
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|s| self.read_failed(digest, s))?
        {
            hasher.update(&chunk.data);
            size += chunk.data.len() as i64;
            if size > digest.size {
                break;
            }
            out.write_all(&chunk.data)
                .map_err(ReapiError::io("write", PathBuf::from("<download>")))?;
        }
        self.downloaded.fetch_add(size as u64, Ordering::Relaxed);
        if size != digest.size || hex::encode(hasher.finalize()) != digest.hash {
            return Err(ReapiError::CorruptBlob {
                digest: digest.to_string(),
            });
        }
        Ok(())
    }
}

impl Cas {
    /// The error for blobs the farm does not hold.
    pub(crate) fn missing(&self, digests: Vec<ReDigest>) -> ReapiError {
        ReapiError::MissingBlobs {
            endpoint: self.endpoint.to_string(),
            digests,
        }
    }

    /// A failed `ByteStream.Read` of `digest`: `NOT_FOUND` says the farm lacks it.
    fn read_failed(&self, digest: &ReDigest, status: tonic::Status) -> ReapiError {
        if status.code() == tonic::Code::NotFound {
            self.missing(vec![digest.clone()])
        } else {
            ReapiError::call(&self.endpoint, "ByteStream.Read")(status)
        }
    }
}

/// Small blobs grouped into batch calls of at most [`BATCH_BYTES`], and the large ones.
#[allow(clippy::type_complexity)]
fn batched<T>(blobs: Vec<(ReDigest, T)>) -> (Vec<Vec<(ReDigest, T)>>, Vec<(ReDigest, T)>) {
    let (small, large): (Vec<_>, Vec<_>) =
        blobs.into_iter().partition(|(d, _)| d.size <= BATCH_BLOB);
    let mut batches: Vec<Vec<(ReDigest, T)>> = Vec::new();
    let mut bytes = 0;
    for blob in small {
        if batches.is_empty() || bytes + blob.0.size > BATCH_BYTES {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += blob.0.size;
        if let Some(b) = batches.last_mut() {
            b.push(blob);
        }
    }
    (batches, large)
}

/// Runs transfers, [`PARALLEL`] at a time; the first error wins.
async fn all<F>(jobs: impl Iterator<Item = F>) -> Result<(), ReapiError>
where
    F: std::future::Future<Output = Result<(), ReapiError>>,
{
    futures_util::stream::iter(jobs)
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}

/// `INSTANCE/` or nothing, before a ByteStream resource name.
fn prefix(instance: &str) -> String {
    if instance.is_empty() {
        String::new()
    } else {
        format!("{instance}/")
    }
}

/// A unique upload id (the resource name's `uuid`): the process, the time and a counter.
fn upload_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let h = hex::encode(Sha256::digest(format!("{}-{now}-{n}", std::process::id())));
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Writes `data` to `path` whole: under a temporary name, then renamed.
pub(crate) fn write_whole(path: &Path, data: &[u8]) -> Result<(), ReapiError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(ReapiError::io("create a file in", dir))?;
    tmp.write_all(data).map_err(ReapiError::io("write", path))?;
    tmp.persist(path).map_err(|e| ReapiError::Io {
        action: "rename into",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(size: i64) -> (ReDigest, ()) {
        (
            ReDigest {
                hash: format!("{size:064x}"),
                size,
            },
            (),
        )
    }

    #[test]
    fn small_blobs_are_batched_under_the_limit_and_large_ones_streamed() {
        let blobs = vec![
            blob(BATCH_BLOB),
            blob(BATCH_BLOB),
            blob(BATCH_BLOB),
            blob(BATCH_BLOB + 1),
            blob(10),
        ];
        let (batches, large) = batched(blobs);
        assert_eq!(large.len(), 1);
        assert!(
            batches
                .iter()
                .all(|b| b.iter().map(|(d, _)| d.size).sum::<i64>() <= BATCH_BYTES)
        );
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 4);
        assert_eq!(
            batches.len(),
            2,
            "3 MiB fit in one call, the fourth and the tiny one in the next"
        );
    }

    #[test]
    fn upload_ids_are_unique_and_uuid_shaped() {
        let (a, b) = (upload_id(), upload_id());
        assert_ne!(a, b);
        assert_eq!(
            a.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
    }
}
