//! Blobs: `blobs/sha256/<hex>`, written atomically and verified on every read.

use fs_err::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::digest::HashingWriter;
use super::error::io_err;
use super::{Digest, LocalStore, Result, StoreError};

const COPY_BUF: usize = 64 * 1024;

impl LocalStore {
    /// Stores the file at `path` as a blob and returns its digest.
    ///
    /// With `expected`, a mismatch is a [`StoreError::Mismatch`] naming both digests, and
    /// nothing enters the store.
    pub fn put_blob_file(&self, path: &Path, expected: Option<&Digest>) -> Result<Digest> {
        let file = File::open(path).map_err(io_err("open", path))?;
        let _lease = self.lease()?;
        self.put_blob_unlocked(file, expected, &path.display().to_string())
            .map(|(d, _)| d)
    }

    /// Stores everything `reader` yields as a blob, streaming: sha256 while copying to a
    /// temporary file in the store, fsync, verify, rename.
    pub fn put_blob_reader(&self, reader: impl Read, expected: Option<&Digest>) -> Result<Digest> {
        let _lease = self.lease()?;
        self.put_blob_unlocked(reader, expected, "the stream")
            .map(|(d, _)| d)
    }

    /// Stores `bytes` as a blob.
    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<Digest> {
        let _lease = self.lease()?;
        self.put_bytes_unlocked(bytes)
    }

    pub(crate) fn put_bytes_unlocked(&self, bytes: &[u8]) -> Result<Digest> {
        let digest = Digest::of_bytes(bytes);
        if !self.blob_is_complete(&digest, bytes.len() as u64) {
            self.write_atomic_mode(&self.blob_path(&digest), bytes, 0o444)?;
        }
        Ok(digest)
    }

    /// A blob of the right size is taken as present (the same digest means the same content;
    /// a lost race between two writers is harmless). A blob of the wrong size is replaced.
    fn blob_is_complete(&self, digest: &Digest, size: u64) -> bool {
        fs_err::metadata(self.blob_path(digest)).is_ok_and(|m| m.len() == size)
    }

    pub(crate) fn put_blob_unlocked(
        &self,
        mut reader: impl Read,
        expected: Option<&Digest>,
        what: &str,
    ) -> Result<(Digest, u64)> {
        let tmp_dir = self.tmp_dir();
        let tmp = self.temp_file("blob-", 0o444)?;
        let mut writer = HashingWriter::new(tmp);
        let mut buf = vec![0u8; COPY_BUF];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError::io("read", what, e)),
            };
            io::Write::write_all(&mut writer, &buf[..n])
                .map_err(io_err("write a temporary file in", &tmp_dir))?;
        }
        let (tmp, digest, size) = writer.finish();
        if let Some(expected) = expected
            && *expected != digest
        {
            // `tmp` is deleted on drop: nothing unverified enters the store.
            return Err(StoreError::Mismatch {
                what: what.to_owned(),
                expected: *expected,
                actual: digest,
            });
        }
        if !self.blob_is_complete(&digest, size) {
            self.finish_file(tmp, &self.blob_path(&digest))?;
        }
        Ok((digest, size))
    }

    /// Whether the blob is present (not whether it is intact: see [`LocalStore::open_blob`]).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens a blob for reading. The reader hashes what it yields and fails with
    /// [`StoreError::Corrupt`] (inside an `io::Error`, see [`StoreError::io`]) at the end of
    /// the blob if the content does not match its digest: read to the end before trusting it.
    pub fn open_blob(&self, digest: &Digest) -> Result<BlobReader> {
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::MissingBlob {
                    digest: *digest,
                    store: self.root.clone(),
                });
            }
            Err(e) => return Err(StoreError::io("open", path, e)),
        };
        Ok(BlobReader {
            inner: BufReader::with_capacity(COPY_BUF, file),
            hasher: Sha256::new(),
            expected: *digest,
            path,
            done: false,
        })
    }

    /// Reads a whole blob into memory, verified. For small blobs (manifests, indexes).
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut reader = self.open_blob(digest)?;
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(io_err("read", self.blob_path(digest)))?;
        Ok(bytes)
    }

    /// Rehashes a blob; `Ok(Err(actual))` when it is corrupt.
    pub(crate) fn check_blob(&self, digest: &Digest) -> Result<std::result::Result<u64, Digest>> {
        let path = self.blob_path(digest);
        let file = File::open(&path).map_err(io_err("open", &path))?;
        let (actual, size) = Digest::of_reader(BufReader::with_capacity(COPY_BUF, file))
            .map_err(io_err("read", &path))?;
        Ok(if actual == *digest {
            Ok(size)
        } else {
            Err(actual)
        })
    }
}

/// A blob being read; verifies the content against the digest when it reaches the end.
#[derive(Debug)]
pub struct BlobReader {
    inner: BufReader<File>,
    hasher: Sha256,
    expected: Digest,
    path: PathBuf,
    done: bool,
}

impl BlobReader {
    /// The digest this blob must have.
    pub fn digest(&self) -> &Digest {
        &self.expected
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let actual =
                Digest::from_sha256_bytes(std::mem::take(&mut self.hasher).finalize().into());
            if actual != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    StoreError::Corrupt {
                        digest: self.expected,
                        path: self.path.clone(),
                        actual,
                    },
                ));
            }
            self.done = true;
            return Ok(0);
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
