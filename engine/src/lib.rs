//! refine-engine: from rule files to a typed, validated target graph; keys; planning;
//! execution; stores.

pub mod source;
pub mod store;
