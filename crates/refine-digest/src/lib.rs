//! refine-digest: how refine identifies content. The lowest layer: it depends on no other
//! refine crate.
//!
//! - [`Digest`]: an OCI content digest (image-spec 1.1, "Digests"), `sha256:<hex>`, and
//!   [`HashingWriter`], which computes one while bytes pass through.
//! - [`sha256_file`] / [`verify_sha256`]: the identity of a fixed-output source (an sdist, a
//!   tarball, a wheel) is the sha256 of its bytes.
//! - [`Kind`]: the six kinds of node and artifact.
//! - [`tree_hash`]: the identity of a `path` source, a BLAKE3 hash over a folder
//!   (`refine-tree-v1`), and [`special_kind`], the name of a file type refine cannot store.

mod digest;
mod error;
mod file;
mod kind;
pub mod tree_hash;

pub use digest::{Digest, HashingWriter, hex32};
pub use error::{DigestError, Result};
pub use file::{sha256_file, verify_sha256};
pub use kind::Kind;
pub use tree_hash::{TreeDigest, hash_tree, special_kind};
