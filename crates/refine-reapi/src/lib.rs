//! Remote execution for refine over Bazel's Remote Execution API v2 (REAPI,
//! `build.bazel.remote.execution.v2`, with `google.bytestream` for large blobs and
//! `google.longrunning` for operations), so that a team runs refine's actions on the build farm
//! it already has: Buildbarn, BuildBuddy, NativeLink, EngFlow or BuildGrid.
//!
//! - [`Endpoint`]: `reapi://HOST:PORT[/INSTANCE]`, TLS, a bearer token.
//! - [`tree`]: a folder as REAPI `Directory` nodes (a Merkle tree); the trees of stored
//!   artifacts are computed once and kept in the store, so an action's input root is the base's
//!   tree with a few nodes grafted in, not a re-hash of the base.
//! - [`cas`]: the content-addressable storage: `FindMissingBlobs` first, small blobs in batches,
//!   large ones streamed through ByteStream from and to files, never held whole in memory.
//! - [`client`]: one sandbox [`Spec`](refine_sandbox::Spec) as an `Action` and a `Command`,
//!   executed, waited for (reconnecting with `WaitExecution`), cancelled, and its outputs
//!   brought back.
//! - [`verify`]: `--executor-verify`, an action the farm's cache answers for run again and its
//!   outputs compared, so that a worker whose output differs is reported, not stored.
//! - [`worker`]: `refine worker`, a bot of the Remote Workers API
//!   (`google.devtools.remoteworkers.v1test2`, which BuildGrid serves) that runs leases in
//!   refine's namespace sandbox.
//!
//! The choice of executor never enters a key: what comes back is checked and stored exactly as
//! a local action's outputs are.

pub mod cas;
pub mod client;
mod digest;
mod endpoint;
mod error;
pub mod proto;
pub mod tree;
mod verify;
pub mod worker;

pub use client::{Executor, RemoteAction, RemoteRun};
pub use digest::{ReDigest, digest_of};
pub use endpoint::{Credentials, Endpoint};
pub use error::ReapiError;
