//! refine-engine: from rule files to a typed, validated target graph; keys; planning;
//! execution; stores.

pub mod diag;
pub mod exec;
pub mod fetch;
pub mod fmt;
pub mod graph;
pub mod image;
pub mod key;
pub mod label;
pub mod plan;
pub mod query;
pub mod remote;
pub mod rules;
pub mod source;
pub mod store;
