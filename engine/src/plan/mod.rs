//! Planning: each target of a request, in dependency order, as `cached` (its key is in a
//! store), `build` (every input known, the key absent) or `pending` (it waits on a
//! dependency that must be built first, so its key cannot be known yet).
//!
//! Dependencies enter keys by their *content digest*: the digest of the artifact's layers
//! (what it holds), not of its manifest (which also records the key and label). A dependency
//! rebuilt bit for bit therefore leaves every key downstream unchanged (early cutoff).

mod explain;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::graph::{TargetGraph, TargetId};
use crate::key::{Key, KeyFields, KeyInputs, MissingInput, key_fields};
use crate::store::{Digest, LocalStore, Manifest, StoreError};

pub use explain::{Explanation, FieldDiff, explain};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Cached,
    Build,
    Pending,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Cached => "cached",
            Status::Build => "build",
            Status::Pending => "pending",
        })
    }
}

/// One target of a plan.
#[derive(Clone, Debug)]
pub struct PlanNode {
    pub id: TargetId,
    pub status: Status,
    /// Known unless pending.
    pub fields: Option<KeyFields>,
    pub key: Option<Key>,
    /// The artifact's manifest digest, when cached.
    pub digest: Option<Digest>,
    /// The digest of the artifact's content, when cached: what dependents' keys use.
    pub content: Option<String>,
    /// For a pending target: the dependencies it waits on.
    pub waits_on: Vec<TargetId>,
}

#[derive(Debug)]
pub struct Plan {
    /// Dependencies before dependents.
    pub nodes: Vec<PlanNode>,
}

/// Why planning stopped.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PlanError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error("`{label}` needs `{path}`, which cannot be read: {reason}")]
    #[diagnostic(
        code(refine::missing_input),
        help("Check that the file exists under the workspace root")
    )]
    Input {
        label: String,
        path: String,
        reason: String,
    },
}

/// The digest of an artifact's content: sha256 over its layers' digests, sizes and titles.
pub fn content_digest(manifest: &Manifest) -> String {
    let mut h = Sha256::new();
    for layer in &manifest.layers {
        let title = layer
            .annotations
            .as_ref()
            .and_then(|a| a.get(crate::store::annotations::TITLE));
        h.update(format!(
            "{} {} {} {}\n",
            layer.media_type,
            layer.digest,
            layer.size,
            title.map(String::as_str).unwrap_or("")
        ));
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Key inputs from the workspace and the content digests of planned dependencies.
pub struct WorkspaceInputs<'a> {
    pub root: &'a Path,
    pub contents: HashMap<TargetId, String>,
    trees: RefCell<HashMap<String, String>>,
    files: RefCell<HashMap<PathBuf, String>>,
}

impl<'a> WorkspaceInputs<'a> {
    pub fn new(root: &'a Path) -> Self {
        Self {
            root,
            contents: HashMap::new(),
            trees: RefCell::default(),
            files: RefCell::default(),
        }
    }
}

impl KeyInputs for WorkspaceInputs<'_> {
    fn artifact_digest(&self, id: TargetId) -> Option<String> {
        self.contents.get(&id).cloned()
    }

    fn file_digest(&self, path: &str) -> Result<String, String> {
        let full = self.root.join(path);
        if let Some(d) = self.files.borrow().get(&full) {
            return Ok(d.clone());
        }
        let (digest, _) = crate::source::sha256_file(&full).map_err(|e| e.to_string())?;
        self.files.borrow_mut().insert(full, digest.to_string());
        Ok(digest.to_string())
    }

    fn tree_digest(&self, path: &str) -> Result<String, String> {
        if let Some(d) = self.trees.borrow().get(path) {
            return Ok(d.clone());
        }
        let digest = crate::source::hash_tree(&self.root.join(path)).map_err(|e| e.to_string())?;
        let text = format!("blake3:{}", digest.hex());
        self.trees
            .borrow_mut()
            .insert(path.to_string(), text.clone());
        Ok(text)
    }
}

/// Plans `roots` and everything they depend on.
pub fn plan(
    graph: &TargetGraph,
    roots: &[TargetId],
    store: &LocalStore,
) -> Result<Plan, PlanError> {
    let mut wanted = vec![false; graph.len()];
    for &r in roots {
        wanted[r] = true;
    }
    let wanted = graph.deps_closure(&wanted);
    let mut inputs = WorkspaceInputs::new(&graph.workspace.root);
    let mut nodes = Vec::new();
    let mut status: HashMap<TargetId, Status> = HashMap::new();
    // Dependencies first; within a level, by label, so that output is stable.
    let mut level = vec![0usize; graph.len()];
    let mut order: Vec<TargetId> = graph
        .topo_order()
        .into_iter()
        .filter(|&id| wanted[id])
        .collect();
    for &id in &order {
        level[id] = graph
            .deps(id)
            .iter()
            .map(|&d| level[d] + 1)
            .max()
            .unwrap_or(0);
    }
    order.sort_by(|&a, &b| {
        level[a]
            .cmp(&level[b])
            .then_with(|| graph.target(a).label.cmp(&graph.target(b).label))
    });
    for id in order {
        let target = graph.target(id);
        let waits_on: Vec<TargetId> = graph
            .deps(id)
            .iter()
            .copied()
            .filter(|d| status.get(d) != Some(&Status::Cached))
            .collect();
        if !waits_on.is_empty() {
            status.insert(id, Status::Pending);
            nodes.push(PlanNode {
                id,
                status: Status::Pending,
                fields: None,
                key: None,
                digest: None,
                content: None,
                waits_on,
            });
            continue;
        }
        let fields = match key_fields(graph, id, &inputs) {
            Ok(f) => f,
            Err(MissingInput::Dependency(d)) => {
                // Unreachable while statuses and contents agree; treat as pending, not a panic.
                status.insert(id, Status::Pending);
                nodes.push(PlanNode {
                    id,
                    status: Status::Pending,
                    fields: None,
                    key: None,
                    digest: None,
                    content: None,
                    waits_on: vec![d],
                });
                continue;
            }
            Err(MissingInput::File { path, reason }) => {
                return Err(PlanError::Input {
                    label: target.label.to_string(),
                    path,
                    reason,
                });
            }
        };
        let key = fields.key();
        let found = store.lookup(target.kind().as_str(), &key.hex())?;
        let node = match found {
            Some(digest) => {
                let manifest = store.read_manifest(&digest)?;
                let content = content_digest(&manifest);
                inputs.contents.insert(id, content.clone());
                status.insert(id, Status::Cached);
                PlanNode {
                    id,
                    status: Status::Cached,
                    fields: Some(fields),
                    key: Some(key),
                    digest: Some(digest),
                    content: Some(content),
                    waits_on,
                }
            }
            None => {
                status.insert(id, Status::Build);
                PlanNode {
                    id,
                    status: Status::Build,
                    fields: Some(fields),
                    key: Some(key),
                    digest: None,
                    content: None,
                    waits_on,
                }
            }
        };
        nodes.push(node);
    }
    Ok(Plan { nodes })
}
