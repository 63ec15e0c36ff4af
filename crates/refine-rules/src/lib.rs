//! refine-rules: the rule language. KDL rule files (`workspace.kdl`, `rules/**.kdl`,
//! `catalog/*.kdl`) read into a typed model, labels and target patterns, the resolved target
//! graph, `refine query`'s language and `refine fmt`. Pure: it reads rule files and nothing
//! else, and depends only on refine-digest.

pub mod diag;
pub mod fmt;
pub mod graph;
pub mod label;
pub mod query;
pub mod rules;
