//! refine-engine: the top of the layers (see `docs/architecture.md`). It re-exports every
//! layer below under one roof, so that the CLI and the integration tests name one crate, and
//! holds what the commands share: the [`session::Session`] (workspace, targets, stores) and
//! the operations in [`ops`].

pub mod ops;
pub mod session;

pub use refine_attest as attest;
pub use refine_digest as digest;
pub use refine_exec as exec;
pub use refine_fetch as fetch;
pub use refine_fetch::image;
pub use refine_plan as plan;
pub use refine_plan::key;
pub use refine_reapi as reapi;
pub use refine_remote as remote;
pub use refine_rules::{diag, fmt, graph, label, query, rules};
pub use refine_store as store;
pub use refine_wheel as wheel;
