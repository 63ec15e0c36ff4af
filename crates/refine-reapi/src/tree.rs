//! Folders as REAPI Merkle trees: `Directory` messages in canonical form (entries sorted by
//! name, no node properties), each named by the digest of its encoding.
//!
//! A stored artifact's tree never changes, so its Merkle tree is computed once and kept in the
//! store (`merkle/<manifest hex>`, a REAPI `Tree` message); an action's input root is then the
//! base's tree with the runtime, packs, `/src` and the shims grafted in, which costs a few new
//! `Directory` nodes along the grafted paths, not a re-hash of the base. A cache entry that does
//! not decode, or whose root does not match, is recomputed: the folder wins.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use prost::Message;
use rayon::prelude::*;
use refine_store::LocalStore;

use crate::digest::{ReDigest, digest_of};
use crate::error::ReapiError;
use crate::proto::re::{Directory, DirectoryNode, FileNode, SymlinkNode, Tree};

/// Where the bytes of a file blob can be read.
#[derive(Clone, Debug)]
pub enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// A Merkle tree: its root, every `Directory` in it, and where each file's content is.
#[derive(Clone, Debug)]
pub struct MerkleTree {
    pub root: ReDigest,
    dirs: HashMap<ReDigest, Directory>,
    files: HashMap<ReDigest, Source>,
}

/// What is grafted into a tree at a path.
pub enum Graft {
    Tree(MerkleTree),
    File {
        digest: ReDigest,
        executable: bool,
        source: Source,
    },
    EmptyDir,
}

impl MerkleTree {
    /// The tree of an empty folder.
    pub fn empty() -> MerkleTree {
        let mut t = MerkleTree {
            root: digest_of(&[]),
            dirs: HashMap::new(),
            files: HashMap::new(),
        };
        t.root = t.add_dir(Directory::default());
        t
    }

    fn add_dir(&mut self, dir: Directory) -> ReDigest {
        let d = digest_of(&dir.encode_to_vec());
        self.dirs.insert(d.clone(), dir);
        d
    }

    /// A `Directory` of the tree.
    pub fn dir(&self, digest: &ReDigest) -> Option<&Directory> {
        self.dirs.get(digest)
    }

    /// Every blob of the tree: directories by their encoding, files by where they are.
    pub fn blobs(&self) -> impl Iterator<Item = (ReDigest, Source)> + '_ {
        let dirs = self
            .dirs
            .iter()
            .map(|(d, dir)| (d.clone(), Source::Bytes(dir.encode_to_vec())));
        let files = self.files.iter().map(|(d, s)| (d.clone(), s.clone()));
        dirs.chain(files)
    }

    /// The number of `Directory` nodes and of distinct files.
    pub fn counts(&self) -> (usize, usize) {
        (self.dirs.len(), self.files.len())
    }

    /// Hashes the folder `path` (files in parallel). Sockets, pipes and devices are left out:
    /// REAPI has no node for them, and stored artifacts hold none.
    pub fn of_dir(path: &Path) -> Result<MerkleTree, ReapiError> {
        let mut tree = MerkleTree::empty();
        tree.dirs.clear();
        tree.root = tree.hash_dir(path)?;
        Ok(tree)
    }

    fn hash_dir(&mut self, path: &Path) -> Result<ReDigest, ReapiError> {
        let mut entries: Vec<(String, std::fs::Metadata)> = Vec::new();
        for entry in fs_err::read_dir(path).map_err(ReapiError::io("list", path))? {
            let entry = entry.map_err(ReapiError::io("list", path))?;
            let name = entry.file_name().into_string().map_err(|n| ReapiError::Unsupported {
                message: format!(
                    "`{}` holds `{}`, a name that is not UTF-8, which the Remote Execution API cannot carry",
                    path.display(),
                    n.to_string_lossy()
                ),
            })?;
            let meta = fs_err::symlink_metadata(entry.path())
                .map_err(ReapiError::io("read the metadata of", entry.path()))?;
            entries.push((name, meta));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut dir = Directory::default();
        let files: Vec<(String, bool)> = entries
            .iter()
            .filter(|(_, m)| m.is_file())
            .map(|(n, m)| (n.clone(), m.permissions().mode() & 0o111 != 0))
            .collect();
        let hashed: Vec<Result<ReDigest, ReapiError>> = files
            .par_iter()
            .map(|(name, _)| ReDigest::of_file(&path.join(name)))
            .collect();
        for ((name, executable), digest) in files.into_iter().zip(hashed) {
            let digest = digest?;
            self.files
                .entry(digest.clone())
                .or_insert_with(|| Source::File(path.join(&name)));
            dir.files.push(FileNode {
                name,
                digest: Some(digest.proto()),
                is_executable: executable,
                node_properties: None,
            });
        }
        for (name, meta) in &entries {
            let child = path.join(name);
            if meta.is_dir() {
                let digest = self.hash_dir(&child)?;
                dir.directories.push(DirectoryNode {
                    name: name.clone(),
                    digest: Some(digest.proto()),
                });
            } else if meta.file_type().is_symlink() {
                let target = fs_err::read_link(&child).map_err(ReapiError::io("read", &child))?;
                dir.symlinks.push(SymlinkNode {
                    name: name.clone(),
                    target: target.to_string_lossy().into_owned(),
                    node_properties: None,
                });
            }
        }
        Ok(self.add_dir(dir))
    }

    /// The tree as one REAPI `Tree` message (root and children), as kept in the store.
    pub fn to_tree(&self) -> Tree {
        let mut children: Vec<(&ReDigest, &Directory)> =
            self.dirs.iter().filter(|(d, _)| **d != self.root).collect();
        children.sort_by(|a, b| a.0.cmp(b.0));
        Tree {
            root: self.dirs.get(&self.root).cloned(),
            children: children.into_iter().map(|(_, d)| d.clone()).collect(),
        }
    }

    /// Reads a `Tree` message back, its files to be found under `host` (`None`: the files are
    /// not on this machine, as for a tree the farm sent).
    pub fn from_tree(tree: &Tree, host: Option<&Path>) -> Result<MerkleTree, ReapiError> {
        let root_dir = tree.root.clone().ok_or_else(|| ReapiError::BadReply {
            what: "a `Tree`".into(),
            reason: "it has no root".into(),
        })?;
        let mut t = MerkleTree::empty();
        t.dirs.clear();
        for child in &tree.children {
            t.add_dir(child.clone());
        }
        t.root = t.add_dir(root_dir);
        if let Some(host) = host {
            let root = t.root.clone();
            t.index_files(&root, host)?;
        }
        Ok(t)
    }

    fn index_files(&mut self, dir: &ReDigest, host: &Path) -> Result<(), ReapiError> {
        let d = self
            .dirs
            .get(dir)
            .cloned()
            .ok_or_else(|| missing_dir(dir))?;
        for f in &d.files {
            let digest = ReDigest::from_field(&f.digest)?;
            self.files
                .entry(digest)
                .or_insert_with(|| Source::File(host.join(&f.name)));
        }
        for sub in &d.directories {
            let digest = ReDigest::from_field(&sub.digest)?;
            self.index_files(&digest, &host.join(&sub.name))?;
        }
        Ok(())
    }

    /// Puts `graft` at the relative or absolute path `at`, replacing what is there and
    /// creating the folders on the way.
    pub fn graft(&mut self, at: &Path, graft: Graft) -> Result<(), ReapiError> {
        let names: Vec<String> = at
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        if names.is_empty() {
            return Err(ReapiError::Unsupported {
                message: format!("Cannot graft onto `{}`, the root itself", at.display()),
            });
        }
        let node = match graft {
            Graft::Tree(t) => {
                self.dirs.extend(t.dirs);
                for (d, s) in t.files {
                    self.files.entry(d).or_insert(s);
                }
                Node::Dir(t.root)
            }
            Graft::EmptyDir => Node::Dir(self.add_dir(Directory::default())),
            Graft::File {
                digest,
                executable,
                source,
            } => {
                self.files.entry(digest.clone()).or_insert(source);
                Node::File(digest, executable)
            }
        };
        let root = self.root.clone();
        self.root = self.graft_into(Some(&root), &names, node)?;
        Ok(())
    }

    fn graft_into(
        &mut self,
        dir: Option<&ReDigest>,
        names: &[String],
        node: Node,
    ) -> Result<ReDigest, ReapiError> {
        let mut d = match dir {
            Some(digest) => self
                .dirs
                .get(digest)
                .cloned()
                .ok_or_else(|| missing_dir(digest))?,
            None => Directory::default(),
        };
        let name = &names[0];
        d.files.retain(|f| &f.name != name);
        d.symlinks.retain(|s| &s.name != name);
        let below = d
            .directories
            .iter()
            .position(|x| &x.name == name)
            .map(|i| d.directories.remove(i));
        if names.len() > 1 {
            let existing = below
                .and_then(|b| b.digest)
                .map(|p| ReDigest::from_proto(&p))
                .transpose()?;
            let child = self.graft_into(existing.as_ref(), &names[1..], node)?;
            d.directories.push(DirectoryNode {
                name: name.clone(),
                digest: Some(child.proto()),
            });
        } else {
            match node {
                Node::Dir(digest) => d.directories.push(DirectoryNode {
                    name: name.clone(),
                    digest: Some(digest.proto()),
                }),
                Node::File(digest, executable) => d.files.push(FileNode {
                    name: name.clone(),
                    digest: Some(digest.proto()),
                    is_executable: executable,
                    node_properties: None,
                }),
            }
        }
        d.files.sort_by(|a, b| a.name.cmp(&b.name));
        d.directories.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(self.add_dir(d))
    }
}

enum Node {
    Dir(ReDigest),
    File(ReDigest, bool),
}

fn missing_dir(d: &ReDigest) -> ReapiError {
    ReapiError::BadReply {
        what: format!("directory `{d}`"),
        reason: "the tree does not hold it".into(),
    }
}

/// The Merkle tree of a folder: from the store's cache when the folder is one of the store's
/// unpacked artifacts (computed and kept there the first time), hashed afresh otherwise.
pub fn of_folder(store: &LocalStore, path: &Path) -> Result<MerkleTree, ReapiError> {
    let Some(manifest) = store.tree_manifest(path) else {
        return MerkleTree::of_dir(path);
    };
    let cache = store.merkle_path(&manifest);
    if let Ok(bytes) = fs_err::read(&cache)
        && let Ok(tree) = Tree::decode(bytes.as_slice())
        && let Ok(t) = MerkleTree::from_tree(&tree, Some(path))
    {
        return Ok(t);
    }
    let t = MerkleTree::of_dir(path)?;
    // Written whole under a temporary name and renamed: readers see all of it or none. A
    // cache that cannot be written only costs the next action a re-hash.
    if let Some(dir) = cache.parent()
        && let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir)
        && std::io::Write::write_all(&mut tmp, &t.to_tree().encode_to_vec()).is_ok()
    {
        let _ = tmp.persist(&cache);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs_err::create_dir_all(p.parent().unwrap()).unwrap();
        fs_err::write(p, text).unwrap();
    }

    #[test]
    fn same_content_same_root_and_grafts_equal_building_whole() {
        let a = tempfile::tempdir().unwrap();
        write(a.path(), "usr/bin/tool", "#!/bin/sh\n");
        write(a.path(), "etc/conf", "x");
        std::os::unix::fs::symlink("usr/bin", a.path().join("bin")).unwrap();
        let b = tempfile::tempdir().unwrap();
        write(b.path(), "lib/x.so", "elf");

        let mut grafted = MerkleTree::of_dir(a.path()).unwrap();
        grafted
            .graft(
                Path::new("/opt/packs/b"),
                Graft::Tree(MerkleTree::of_dir(b.path()).unwrap()),
            )
            .unwrap();
        write(a.path(), "opt/packs/b/lib/x.so", "elf");
        let whole = MerkleTree::of_dir(a.path()).unwrap();
        assert_eq!(grafted.root, whole.root);

        let back = MerkleTree::from_tree(&whole.to_tree(), Some(a.path())).unwrap();
        assert_eq!(back.root, whole.root);
        assert_eq!(back.counts(), whole.counts());
    }

    #[test]
    fn a_graft_replaces_a_file() {
        let a = tempfile::tempdir().unwrap();
        write(a.path(), "usr/bin/gcc", "native");
        let mut t = MerkleTree::of_dir(a.path()).unwrap();
        let shim = digest_of(b"shim");
        t.graft(
            Path::new("/usr/bin/gcc"),
            Graft::File {
                digest: shim.clone(),
                executable: true,
                source: Source::Bytes(b"shim".to_vec()),
            },
        )
        .unwrap();
        write(a.path(), "usr/bin/gcc", "shim");
        fs_err::set_permissions(
            a.path().join("usr/bin/gcc"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        assert_eq!(t.root, MerkleTree::of_dir(a.path()).unwrap().root);
    }
}
