//! Signatures: `signatures/<manifest hex>` lists, one `sha256:<hex>` per line, the blobs that
//! hold signed envelopes of the artifact's provenance (DSSE, written by `refine-attest`). The
//! store does not read them: the remote store and `refine verify` check them against the
//! workspace's trusted keys. A list follows its artifact: gc keeps the envelopes of every
//! artifact it keeps and removes the lists of artifacts it removes; `verify` reports a list
//! whose envelope is missing or corrupt.
//!
//! Written before the artifact's ref (the remote pulls blobs, then the envelope, then the
//! manifest), so that a ref whose artifact came from a signed cache always has its envelope.

use std::io;
use std::path::PathBuf;

use super::walk::{BadEntry, entries};
use super::{Bucket, Digest, LocalStore, Result, StoreError};

/// A signature list: its file, the artifact, and the envelope blobs it names.
pub(crate) type SignatureList = (PathBuf, Digest, Vec<Digest>);

fn parse_list(text: &str) -> std::result::Result<Vec<Digest>, String> {
    text.lines()
        .map(|l| Digest::parse(l).map_err(|e| format!("expected `sha256:<hex>` lines: {e}")))
        .collect()
}

impl LocalStore {
    fn signature_path(&self, manifest: &Digest) -> PathBuf {
        self.bucket_path(Bucket::Signatures).join(manifest.hex())
    }

    /// Stores `envelope` beside the artifact `manifest` (once: the same envelope again is a
    /// no-op). Returns the envelope's blob digest.
    pub fn put_signature(&self, manifest: &Digest, envelope: &[u8]) -> Result<Digest> {
        let _lease = self.lease()?;
        let digest = self.put_bytes_unlocked(envelope)?;
        let mut listed = self.signature_digests(manifest)?;
        if !listed.contains(&digest) {
            listed.push(digest);
            let text: String = listed.iter().map(|d| format!("{d}\n")).collect();
            self.write_atomic(&self.signature_path(manifest), text.as_bytes())?;
        }
        Ok(digest)
    }

    /// The envelopes stored beside the artifact `manifest`, each verified against its digest.
    pub fn signatures(&self, manifest: &Digest) -> Result<Vec<Vec<u8>>> {
        self.signature_digests(manifest)?
            .iter()
            .map(|d| self.read_blob(d))
            .collect()
    }

    /// The envelope digests listed for `manifest`; none when there is no list.
    pub(crate) fn signature_digests(&self, manifest: &Digest) -> Result<Vec<Digest>> {
        let path = self.signature_path(manifest);
        match fs_err::read_to_string(&path) {
            Ok(text) => parse_list(&text).map_err(|reason| StoreError::BadRef {
                path: path.clone(),
                reason,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(StoreError::io("read", path, e)),
        }
    }

    /// Every signature list, and what under `signatures/` is malformed.
    pub(crate) fn list_signatures(&self) -> Result<(Vec<SignatureList>, Vec<BadEntry>)> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (name, path, is_dir) in entries(&self.bucket_path(Bucket::Signatures))? {
            let list = (|| {
                if is_dir {
                    return Err("it is a folder, not a file".to_owned());
                }
                let manifest = Digest::from_hex(&name)
                    .ok_or_else(|| "the file name is not a sha256 hex digest".to_owned())?;
                let text = fs_err::read_to_string(&path).map_err(|e| e.to_string())?;
                Ok((manifest, parse_list(&text)?))
            })();
            match list {
                Ok((manifest, envelopes)) => good.push((path, manifest, envelopes)),
                Err(reason) => bad.push(BadEntry::new(&path, reason)),
            }
        }
        Ok((good, bad))
    }
}
