//! `refine explain`: why a target is not cached. Its key fields side by side with those of
//! the artifact last built for the same label, naming each field that differs; for a target
//! that waits on others, the dependencies that must be built and why.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::graph::{TargetGraph, TargetId};
use crate::store::{LocalStore, annotations};

use super::{Plan, PlanError, Status, plan};

/// One key field that differs from the last build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldDiff {
    pub field: String,
    /// `None`: the field is new.
    pub before: Option<String>,
    /// `None`: the field is gone.
    pub after: Option<String>,
    /// The dependency whose artifact the field holds, if it holds one.
    pub dependency: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Explanation {
    /// The key is in the store.
    Cached {
        label: String,
        key: String,
        digest: String,
    },
    /// Not cached; `previous` is the artifact last built for the label, if any.
    Build {
        label: String,
        key: String,
        fields: Vec<(String, String)>,
        previous: Option<Previous>,
        diffs: Vec<FieldDiff>,
    },
    /// Waits on dependencies that must be built; each is explained in turn.
    Pending {
        label: String,
        must_build: Vec<Explanation>,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct Previous {
    pub key: String,
    pub digest: String,
}

/// The label of the dependency a key field refers to, for fields that hold artifacts.
fn dependency_of(graph: &TargetGraph, id: TargetId, field: &str) -> Option<String> {
    let deps = graph.deps(id);
    let name = field
        .strip_prefix("packs[")
        .and_then(|f| f.strip_suffix(']'));
    match (field, name) {
        ("base" | "runtime" | "wheel", _) => {
            deps.first().map(|&d| graph.target(d).label.to_string())
        }
        (_, Some(pack)) => deps
            .iter()
            .map(|&d| graph.target(d))
            .find(|t| t.label.name == pack)
            .map(|t| t.label.to_string()),
        _ => None,
    }
}

/// How [`crate::key::KeyFields::flat`] writes a map field without entries. A map with entries
/// is flattened to one `name[k]` field per entry instead, so an empty map on one side and no
/// field on the other is no difference: the entries that came or went are compared one by one.
const EMPTY_MAP: &str = "{}";

fn diff(
    before: &[(String, String)],
    after: &[(String, String)],
) -> Vec<(String, Option<String>, Option<String>)> {
    let b: BTreeMap<&str, &str> = before
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let a: BTreeMap<&str, &str> = after
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut out = Vec::new();
    // In the kind's field order, then fields that are gone.
    for (k, v) in after {
        match b.get(k.as_str()) {
            Some(old) if old == v => {}
            None if v == EMPTY_MAP => {}
            old => out.push((
                k.clone(),
                old.map(std::string::ToString::to_string),
                Some(v.clone()),
            )),
        }
    }
    for (k, v) in before {
        if !a.contains_key(k.as_str()) && v != EMPTY_MAP {
            out.push((k.clone(), Some(v.clone()), None));
        }
    }
    out
}

fn explain_node(
    graph: &TargetGraph,
    plan: &Plan,
    id: TargetId,
    store: &LocalStore,
    depth: usize,
) -> Result<Explanation, PlanError> {
    let label = graph.target(id).label.to_string();
    let Some(node) = plan.nodes.iter().find(|n| n.id == id) else {
        return Ok(Explanation::Pending {
            label,
            must_build: Vec::new(),
        });
    };
    match node.status {
        Status::Cached => Ok(Explanation::Cached {
            label,
            key: node.key.map(|k| k.hex()).unwrap_or_default(),
            digest: node
                .digest
                .as_ref()
                .map(std::string::ToString::to_string)
                .unwrap_or_default(),
        }),
        Status::Pending => {
            // The dependencies that must be built, found by walking down through pending ones.
            let mut must_build = Vec::new();
            if depth < 8 {
                let mut seen = Vec::new();
                let mut stack: Vec<TargetId> = node.waits_on.clone();
                while let Some(d) = stack.pop() {
                    if seen.contains(&d) {
                        continue;
                    }
                    seen.push(d);
                    match plan.nodes.iter().find(|n| n.id == d).map(|n| n.status) {
                        Some(Status::Build) => {
                            must_build.push(explain_node(graph, plan, d, store, depth + 1)?);
                        }
                        Some(Status::Pending) => stack.extend(
                            plan.nodes
                                .iter()
                                .find(|n| n.id == d)
                                .map(|n| n.waits_on.clone())
                                .unwrap_or_default(),
                        ),
                        _ => {}
                    }
                }
            }
            Ok(Explanation::Pending { label, must_build })
        }
        Status::Build => {
            let fields = node
                .fields
                .as_ref()
                .map(super::key::KeyFields::flat)
                .unwrap_or_default();
            let key = node.key.map(|k| k.hex()).unwrap_or_default();
            let mut previous = None;
            let mut diffs = Vec::new();
            if let Some(record) = store.label_record(&label)? {
                let manifest = store.read_manifest(&record.digest)?;
                let old: Vec<(String, String)> = manifest
                    .annotation(annotations::KEY_FIELDS)
                    .and_then(|j| serde_json::from_str(j).ok())
                    .unwrap_or_default();
                diffs = diff(&old, &fields)
                    .into_iter()
                    .map(|(field, before, after)| FieldDiff {
                        dependency: dependency_of(graph, id, &field),
                        field,
                        before,
                        after,
                    })
                    .collect();
                previous = Some(Previous {
                    key: record.key,
                    digest: record.digest.to_string(),
                });
            }
            Ok(Explanation::Build {
                label,
                key,
                fields,
                previous,
                diffs,
            })
        }
    }
}

/// Explains why `id` is not cached (or says that it is).
pub fn explain(
    graph: &TargetGraph,
    id: TargetId,
    store: &LocalStore,
    remote: Option<&dyn refine_store::remote::Remote>,
) -> Result<Explanation, PlanError> {
    let plan = plan(graph, &[id], store, remote)?;
    explain_node(graph, &plan, id, store, 0)
}

#[cfg(test)]
mod tests {
    use super::diff;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_empty_map_against_its_first_entry_is_one_difference() {
        let before = fields(&[("recipe", "sha256:ab"), ("env", "{}")]);
        let after = fields(&[("recipe", "sha256:ab"), ("env[CFLAGS]", "-O2")]);
        assert_eq!(
            diff(&before, &after),
            [("env[CFLAGS]".to_string(), None, Some("-O2".to_string()))]
        );
        assert_eq!(
            diff(&after, &before),
            [("env[CFLAGS]".to_string(), Some("-O2".to_string()), None)]
        );
    }

    #[test]
    fn a_changed_entry_and_a_field_that_is_gone_are_differences() {
        let before = fields(&[("env[CFLAGS]", "-O2"), ("jobs", "4")]);
        let after = fields(&[("env[CFLAGS]", "-O3")]);
        assert_eq!(
            diff(&before, &after),
            [
                (
                    "env[CFLAGS]".to_string(),
                    Some("-O2".to_string()),
                    Some("-O3".to_string())
                ),
                ("jobs".to_string(), Some("4".to_string()), None),
            ]
        );
    }
}
