//! Bringing artifacts in from elsewhere (a remote OCI registry): blobs written as they arrive
//! and verified before they enter `blobs/`, then the manifest and its ref once every blob it
//! names is present. So `verify` never sees a ref to a manifest with missing blobs, and no
//! unverified byte ever enters the store.

use std::io::{self, Write};

use sha2::{Digest as _, Sha256};

use super::artifact::validate_key;
use super::error::io_err;
use super::refs::{LabelRecord, PinRole};
use super::{Digest, LocalStore, Manifest, Result, StoreError, annotations};

/// A blob being received: bytes go to a temporary file in the store's `tmp/` and through
/// sha256. [`LocalStore::commit_incoming`] moves it into `blobs/` if it has the expected
/// digest; dropping it deletes the temporary file.
#[derive(Debug)]
pub struct IncomingBlob {
    file: io::BufWriter<tempfile::NamedTempFile>,
    hasher: Sha256,
    size: u64,
}

impl IncomingBlob {
    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Write for IncomingBlob {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl LocalStore {
    /// Starts receiving a blob. Hold a [`LocalStore::lease`] until it is committed, so that
    /// `gc` does not clear `tmp/` meanwhile.
    pub fn incoming_blob(&self) -> Result<IncomingBlob> {
        let tmp = self.temp_file("pull-", 0o444)?;
        Ok(IncomingBlob {
            file: io::BufWriter::with_capacity(256 * 1024, tmp),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Moves a received blob into `blobs/` if its content hashes to `expected`; otherwise
    /// deletes it and fails with [`StoreError::Mismatch`] (`what` names the source).
    pub fn commit_incoming(
        &self,
        incoming: IncomingBlob,
        expected: &Digest,
        what: &str,
    ) -> Result<Digest> {
        let IncomingBlob { file, hasher, size } = incoming;
        let actual = Digest::from_sha256_bytes(hasher.finalize().into());
        if actual != *expected {
            return Err(StoreError::Mismatch {
                what: what.to_owned(),
                expected: *expected,
                actual,
            });
        }
        let tmp_dir = self.tmp_dir();
        let tmp = file
            .into_inner()
            .map_err(|e| StoreError::io("write a temporary file in", &tmp_dir, e.into_error()))?;
        let path = self.blob_path(&actual);
        if !fs_err::metadata(&path).is_ok_and(|m| m.len() == size) {
            self.finish_file(tmp, &path)?;
        }
        Ok(actual)
    }

    /// Pins a blob already in the store (a pulled log or provenance record) so gc keeps it.
    pub fn pin_blob(&self, digest: &Digest, role: PinRole) -> Result<()> {
        if !self.has_blob(digest) {
            return Err(StoreError::MissingBlob {
                digest: *digest,
                store: self.root.clone(),
            });
        }
        let _lease = self.lease()?;
        self.write_pin(digest, role)
    }

    /// Stores the manifest `bytes` as the artifact for (`kind`, `key`): checks that it is an
    /// OCI image manifest whose config and layers are all in the store, writes the manifest
    /// blob, then the ref (and the label record, from `dev.refine.label`). Returns the
    /// manifest digest. Blobs come first (see [`LocalStore::incoming_blob`]): a ref never
    /// points at a manifest with missing blobs.
    pub fn put_manifest_bytes(&self, kind: &str, key: &str, bytes: &[u8]) -> Result<Digest> {
        let kind = super::artifact::parse_kind(kind)?;
        validate_key(key)?;
        let digest = Digest::of_bytes(bytes);
        let manifest = Manifest::from_slice(bytes)
            .map_err(|reason| StoreError::BadManifest { digest, reason })?;
        let _lease = self.lease()?;
        for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
            if !self.has_blob(&d.digest) {
                return Err(StoreError::MissingBlob {
                    digest: d.digest,
                    store: self.root.clone(),
                });
            }
        }
        if let Some(k) = manifest.annotation(annotations::KEY)
            && k != key
        {
            return Err(StoreError::BadManifest {
                digest,
                reason: format!("it is annotated with key `{k}`, not `{key}`"),
            });
        }
        self.put_bytes_unlocked(bytes)?;
        if let Some(label) = manifest.annotation(annotations::LABEL) {
            self.write_label(&LabelRecord {
                label: label.to_owned(),
                kind: kind.as_str().into(),
                key: key.to_owned(),
                digest,
            })?;
        }
        self.write_ref(kind, key, &digest, bytes.len() as u64)?;
        self.add_pending(super::index::PendingTag {
            kind,
            key: key.to_owned(),
            artifact: super::CachedArtifact {
                manifest: digest,
                content: manifest.content_digest(),
            },
        });
        Ok(digest)
    }

    /// The raw bytes of a manifest blob, verified (what a push sends, byte for byte).
    pub fn read_manifest_bytes(&self, digest: &Digest) -> Result<Vec<u8>> {
        self.read_blob(digest)
    }

    /// The path of a blob, failing with [`StoreError::MissingBlob`] if it is absent.
    pub fn existing_blob_path(&self, digest: &Digest) -> Result<std::path::PathBuf> {
        let path = self.blob_path(digest);
        match fs_err::metadata(&path) {
            Ok(_) => Ok(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::MissingBlob {
                digest: *digest,
                store: self.root.clone(),
            }),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }
}
