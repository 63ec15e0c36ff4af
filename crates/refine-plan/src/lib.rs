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
    let (order, level) = planning_order(graph, roots);
    let mut planner = Planner {
        graph,
        store,
        remote,
        inputs: WorkspaceInputs::new(&graph.workspace.root),
        nodes: Vec::new(),
        status: HashMap::new(),
    };
    for ids in order.chunk_by(|&a, &b| level[a] == level[b]) {
        planner.plan_level(ids)?;
    }
    Ok(Plan {
        nodes: planner.nodes,
    })
}

/// The targets `roots` need, dependencies first; within a level, by label, so that output is
/// stable. Also gives each target's level: the length of its longest path to a leaf.
fn planning_order(graph: &TargetGraph, roots: &[TargetId]) -> (Vec<TargetId>, Vec<usize>) {
    let mut wanted = vec![false; graph.len()];
    for &r in roots {
        wanted[r] = true;
    }
    let wanted = graph.deps_closure(&wanted);
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
    (order, level)
}

/// A plan being made, level by level: the nodes so far, and what the next level's keys need
/// from them (their statuses and content digests).
struct Planner<'a> {
    graph: &'a TargetGraph,
    store: &'a LocalStore,
    remote: Option<&'a dyn Remote>,
    inputs: WorkspaceInputs<'a>,
    nodes: Vec<PlanNode>,
    status: HashMap<TargetId, Status>,
}

impl Planner<'_> {
    /// Plans one level: every target's dependencies lie in the levels already planned.
    fn plan_level(&mut self, ids: &[TargetId]) -> Result<(), PlanError> {
        // Nodes of this level that missed locally: (index in `nodes`, kind, key).
        let mut misses: Vec<(usize, String, String)> = Vec::new();
        for &id in ids {
            let node = self.plan_target(id)?;
            if let (Status::Build, Some(key)) = (node.status, &node.key) {
                let kind = self.graph.target(id).kind().to_string();
                misses.push((self.nodes.len(), kind, key.hex()));
            }
            self.nodes.push(node);
        }
        self.lookup_remote(&misses)?;
        for n in &self.nodes[self.nodes.len() - ids.len()..] {
            self.status.insert(n.id, n.status);
            if let Some(c) = &n.content {
                self.inputs.contents.insert(n.id, c.clone());
            }
        }
        Ok(())
    }

    /// One target, looked up in the local store: pending while a dependency is not cached.
    fn plan_target(&self, id: TargetId) -> Result<PlanNode, PlanError> {
        let target = self.graph.target(id);
        let waits_on: Vec<TargetId> = self
            .graph
            .deps(id)
            .iter()
            .copied()
            .filter(|d| self.status.get(d) != Some(&Status::Cached))
            .collect();
        if !waits_on.is_empty() {
            return Ok(PlanNode::pending(id, waits_on));
        }
        let fields = match key_fields(self.graph, id, &self.inputs) {
            Ok(f) => f,
            // Unreachable while statuses and contents agree; treat as pending.
            Err(MissingInput::Dependency(d)) => return Ok(PlanNode::pending(id, vec![d])),
            Err(MissingInput::File { path, reason }) => {
                return Err(PlanError::Input {
                    label: target.label.to_string(),
                    path,
                    reason,
                });
            }
        };
        let key = fields.key();
        let found = self.store.lookup_artifact_key(target.kind(), &key.0)?;
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
        if let Some(found) = found {
            node.cache(found.manifest, found.content.to_string(), false);
        }
        Ok(node)
    }

    /// Asks the remote store for a level's local misses, all in one batch.
    fn lookup_remote(&mut self, misses: &[(usize, String, String)]) -> Result<(), PlanError> {
        let Some(remote) = self.remote else {
            return Ok(());
        };
        if misses.is_empty() {
            return Ok(());
        }
        let keys: Vec<(String, String)> = misses
            .iter()
            .map(|(_, k, key)| (k.clone(), key.clone()))
            .collect();
        for ((i, _, _), answer) in misses.iter().zip(remote.lookup_many(&keys)) {
            if let Some((digest, manifest)) = answer? {
                self.nodes[*i].cache(digest, manifest.content_digest().to_string(), true);
            }
        }
        Ok(())
    }
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
