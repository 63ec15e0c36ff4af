//! Keys as a deterministic build would give them, without building: each artifact's digest
//! follows from its key, and files are hashed with BLAKE3 (the golden vectors were computed
//! this way). Shared by the key tests.

use std::collections::HashMap;
use std::path::Path;

use refine_engine::graph::{TargetGraph, TargetId};
use refine_engine::key::{KeyInputs, key_fields};

/// Builds as a deterministic build would: each artifact's digest follows from its key.
pub(crate) struct Simulated<'a> {
    pub(crate) graph: &'a TargetGraph,
    pub(crate) root: &'a Path,
    pub(crate) memo: std::cell::RefCell<HashMap<TargetId, String>>,
}

impl KeyInputs for Simulated<'_> {
    fn artifact_digest(&self, id: TargetId) -> Option<String> {
        if let Some(d) = self.memo.borrow().get(&id) {
            return Some(d.clone());
        }
        let key = key_fields(self.graph, id, self).ok()?.key();
        let digest = format!("sha256:{}", blake3::hash(key.hex().as_bytes()).to_hex());
        self.memo.borrow_mut().insert(id, digest.clone());
        Some(digest)
    }
    fn file_digest(&self, path: &str) -> Result<String, String> {
        let bytes = std::fs::read(self.root.join(path)).map_err(|e| e.to_string())?;
        Ok(format!("sha256:{}", blake3::hash(&bytes).to_hex()))
    }
    fn file_bytes(&self, path: &str) -> Result<Vec<u8>, String> {
        std::fs::read(self.root.join(path)).map_err(|e| e.to_string())
    }
    fn tree_digest(&self, path: &str) -> Result<String, String> {
        Err(format!("no tree hashing in this test: {path}"))
    }
}
