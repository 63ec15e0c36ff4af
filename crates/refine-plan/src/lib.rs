//! Planning: each target of a request, in dependency order, as `cached` (its key is in a
//! store), `build` (every input known, the key absent) or `pending` (it waits on a
//! dependency that must be built first, so its key cannot be known yet).
//!
//! Dependencies enter keys by their *content digest*: the digest of the artifact's layers
//! (what it holds), not of its manifest (which also records the key and label). A dependency
//! rebuilt bit for bit therefore leaves every key downstream unchanged (early cutoff).

mod explain;
pub mod key;
pub mod scripts;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::graph::{TargetGraph, TargetId};
use crate::key::{Key, KeyFields, KeyInputs, MissingInput, key_fields};
use crate::store::{Digest, LocalStore, StoreError};
use refine_digest as source;
use refine_rules::{graph, rules};
use refine_store as store;
use refine_store::remote::{Remote, RemoteError};

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
    /// Cached in the remote store only (not pulled yet).
    pub remote: bool,
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
    #[error(transparent)]
    #[diagnostic(transparent)]
    Remote(#[from] RemoteError),
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

    fn file_bytes(&self, path: &str) -> Result<Vec<u8>, String> {
        fs_err::read(self.root.join(path)).map_err(|e| e.to_string())
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

/// Plans `roots` and everything they depend on, looking each key up in `store`, then (on a
/// miss) in `remote`. Remote lookups of one level of the graph (targets whose dependencies
/// are all known) go out together through [`Remote::lookup_many`].
pub fn plan(
    graph: &TargetGraph,
    roots: &[TargetId],
    store: &LocalStore,
    remote: Option<&dyn Remote>,
) -> Result<Plan, PlanError> {
    let mut wanted = vec![false; graph.len()];
    for &r in roots {
        wanted[r] = true;
    }
    let wanted = graph.deps_closure(&wanted);
    let mut inputs = WorkspaceInputs::new(&graph.workspace.root);
    let mut nodes: Vec<PlanNode> = Vec::new();
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
    let mut at = 0;
    while at < order.len() {
        let this_level = level[order[at]];
        let end = order[at..]
            .iter()
            .position(|&id| level[id] != this_level)
            .map_or(order.len(), |p| at + p);
        // Nodes of this level that missed locally: (index in `nodes`, kind, key).
        let mut misses: Vec<(usize, String, String)> = Vec::new();
        for &id in &order[at..end] {
            let target = graph.target(id);
            let waits_on: Vec<TargetId> = graph
                .deps(id)
                .iter()
                .copied()
                .filter(|d| status.get(d) != Some(&Status::Cached))
                .collect();
            if !waits_on.is_empty() {
                status.insert(id, Status::Pending);
                nodes.push(PlanNode::pending(id, waits_on));
                continue;
            }
            let fields = match key_fields(graph, id, &inputs) {
                Ok(f) => f,
                Err(MissingInput::Dependency(d)) => {
                    // Unreachable while statuses and contents agree; treat as pending.
                    status.insert(id, Status::Pending);
                    nodes.push(PlanNode::pending(id, vec![d]));
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
            let mut node = PlanNode {
                id,
                status: Status::Build,
                fields: Some(fields),
                key: Some(key),
                digest: None,
                content: None,
                waits_on,
                remote: false,
            };
            match found {
                Some(digest) => {
                    let manifest = store.read_manifest(&digest)?;
                    node.cache(digest, manifest.content_digest().to_string(), false);
                }
                None => misses.push((nodes.len(), target.kind().to_string(), key.hex())),
            }
            nodes.push(node);
        }
        if let (Some(remote), false) = (remote, misses.is_empty()) {
            let keys: Vec<(String, String)> = misses
                .iter()
                .map(|(_, k, key)| (k.clone(), key.clone()))
                .collect();
            for ((i, _, _), answer) in misses.iter().zip(remote.lookup_many(&keys)) {
                if let Some((digest, manifest)) = answer? {
                    nodes[*i].cache(digest, manifest.content_digest().to_string(), true);
                }
            }
        }
        for n in &nodes[nodes.len() - (end - at)..] {
            status.insert(n.id, n.status);
            if let Some(c) = &n.content {
                inputs.contents.insert(n.id, c.clone());
            }
        }
        at = end;
    }
    Ok(Plan { nodes })
}

impl PlanNode {
    fn pending(id: TargetId, waits_on: Vec<TargetId>) -> Self {
        PlanNode {
            id,
            status: Status::Pending,
            fields: None,
            key: None,
            digest: None,
            content: None,
            waits_on,
            remote: false,
        }
    }

    fn cache(&mut self, digest: Digest, content: String, remote: bool) {
        self.status = Status::Cached;
        self.digest = Some(digest);
        self.content = Some(content);
        self.remote = remote;
    }
}
