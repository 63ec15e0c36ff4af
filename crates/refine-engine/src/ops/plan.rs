//! A plan as data: each node's label, kind, status, key, digests, the DAG's edges and the
//! key's inputs. One shape for `refine plan --output json` and `refine serve`'s `/v1/plans`.

use std::collections::BTreeMap;

use refine_plan::{Plan, Status};
use refine_rules::graph::TargetGraph;
use serde::Serialize;

/// One node of a plan.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedNode {
    pub label: String,
    pub kind: String,
    /// `cached`, `build` or `pending`.
    pub status: Status,
    /// For a cached node: `local` or `remote` (in the remote store only, pulled when needed).
    #[serde(rename = "where")]
    pub location: Option<&'static str>,
    /// 64 hex digits; `None` while pending.
    pub key: Option<String>,
    /// The artifact's manifest digest, when cached.
    pub digest: Option<String>,
    /// The digest of the artifact's content, when cached: what dependants' keys name.
    pub content: Option<String>,
    /// For a pending node: the dependencies whose artifacts its key waits on.
    pub waits_on: Vec<String>,
    /// The DAG's edges: the node's direct dependencies.
    pub deps: Vec<String>,
    /// The key's inputs (digests of sources, of the base, runtime and packs' artifacts, pins),
    /// as `refine explain` names them; `None` while pending.
    pub inputs: Option<BTreeMap<String, String>>,
}

/// The plan's nodes, dependencies before dependants.
pub fn planned_nodes(graph: &TargetGraph, plan: &Plan) -> Vec<PlannedNode> {
    let label = |id| graph.target(id).label.to_string();
    plan.nodes
        .iter()
        .map(|n| PlannedNode {
            label: label(n.id),
            kind: graph.target(n.id).kind().to_string(),
            status: n.status,
            location: (n.status == Status::Cached).then_some(if n.remote {
                "remote"
            } else {
                "local"
            }),
            key: n.key.map(|k| k.hex()),
            digest: n.digest.as_ref().map(ToString::to_string),
            content: n.content.clone(),
            waits_on: n.waits_on.iter().map(|&d| label(d)).collect(),
            deps: graph.deps(n.id).iter().map(|&d| label(d)).collect(),
            inputs: n.fields.as_ref().map(|f| f.flat().into_iter().collect()),
        })
        .collect()
}
