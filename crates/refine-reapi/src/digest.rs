//! REAPI digests: sha256 (the `DigestFunction` refine asks for) of the content, and its size.

use std::io::Read;
use std::path::Path;

use bazel_remote_apis::build::bazel::remote::execution::v2::Digest as Proto;
use sha2::{Digest as _, Sha256};

use crate::error::ReapiError;

/// A blob's identity in the CAS: the lowercase hex sha256 of its bytes, and their number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReDigest {
    pub hash: String,
    pub size: i64,
}

impl ReDigest {
    pub fn proto(&self) -> Proto {
        Proto {
            hash: self.hash.clone(),
            size_bytes: self.size,
        }
    }

    pub fn from_proto(p: &Proto) -> Result<ReDigest, ReapiError> {
        let ok = p.hash.len() == 64
            && p.hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && p.size_bytes >= 0;
        if !ok {
            return Err(ReapiError::BadReply {
                what: format!("digest `{}/{}`", p.hash, p.size_bytes),
                reason: "not a sha256 digest and size".into(),
            });
        }
        Ok(ReDigest {
            hash: p.hash.clone(),
            size: p.size_bytes,
        })
    }

    /// The digest in an optional message field: a missing one is refused like a malformed one.
    pub fn from_field(p: &Option<Proto>) -> Result<ReDigest, ReapiError> {
        match p {
            Some(p) => ReDigest::from_proto(p),
            None => ReDigest::from_proto(&Proto::default()),
        }
    }

    /// Hashes a file, streaming.
    pub fn of_file(path: &Path) -> Result<ReDigest, ReapiError> {
        let mut file = fs_err::File::open(path).map_err(ReapiError::io("open", path))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0i64;
        loop {
            let n = file.read(&mut buf).map_err(ReapiError::io("read", path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as i64;
        }
        Ok(ReDigest {
            hash: hex::encode(hasher.finalize()),
            size,
        })
    }
}

impl std::fmt::Display for ReDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.hash, self.size)
    }
}

/// The digest of bytes held in memory (protos, small files).
pub fn digest_of(bytes: &[u8]) -> ReDigest {
    ReDigest {
        hash: hex::encode(Sha256::digest(bytes)),
        size: bytes.len() as i64,
    }
}
