//! The worker's local CAS and how an input root is staged from it.
//!
//! Every file blob is kept once in `CACHE/cas/<hash>` (read-only; `<hash>.x` for the
//! executable twin, since hard links share their mode) and every `Directory` in
//! `CACHE/dirs/<hash>`. The folders an action may write (`work`, `tmp`) get copies, never
//! links: a write there must not reach the cache.
//!
//! The rest of an input root is not laid out file by file for every action. A subtree is
//! materialised once, with hard links into the CAS, as `CACHE/trees/<directory hash>`, and each
//! action that holds the same subtree gets it as a read-only bind mount: an empty folder in the
//! staged root, and a read-only [`Bind`] for the sandbox. So the second action on a base stages in
//! the time of a few `mkdir`s, whatever the base's size, and removing its root is as cheap.
//!
//! Which subtrees: every folder below the root is materialised whole the first time its path
//! is staged. A path later staged with another digest (`/opt`, when another runtime is
//! grafted there) is a folder that varies between actions: from then on it is laid out as a
//! real folder and its own subfolders are materialised, so a tree is bound at the highest
//! folder that stays the same. Trees are built in a temporary folder and renamed into place:
//! a tree that exists is whole.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use prost::Message;
use refine_sandbox::{Bind, RESERVED};

use crate::cas::Cas;
use crate::digest::ReDigest;
use crate::error::ReapiError;
use crate::proto::re::Directory;
use crate::proto::re::content_addressable_storage_client::ContentAddressableStorageClient;

/// What staging one input root took, and the trees the sandbox binds into it.
#[derive(Clone, Debug, Default)]
pub struct Staged {
    /// Files linked or copied for this action (into its root or into new trees).
    pub files: usize,
    pub fetched: usize,
    pub fetched_bytes: u64,
    /// Trees bound that were materialised before this staging.
    pub reused_trees: usize,
    /// The materialised trees, bound read-only at their paths in the sandbox.
    pub binds: Vec<Bind>,
}

/// The cache folder of a worker.
pub struct LocalCas {
    root: PathBuf,
    /// The directory digest last staged at each path of an input root (relative to it).
    staged_at: Mutex<HashMap<PathBuf, ReDigest>>,
}

/// Top-level folders of an input root that the action may write: staged by copy.
const WRITABLE: [&str; 2] = ["work", "tmp"];

/// Whether the sandbox mounts its own folder at the top-level `name`: such a folder is laid
/// out (the sandbox hides it), never bound.
fn sandbox_own(name: &str) -> bool {
    RESERVED.iter().any(|r| r.strip_prefix('/') == Some(name))
}

impl LocalCas {
    /// Opens the cache at `root`. Folders of actions and unfinished trees left by a worker
    /// that stopped are removed.
    pub fn open(root: &Path) -> Result<LocalCas, ReapiError> {
        for d in ["cas", "dirs", "exec", "trees"] {
            let p = root.join(d);
            fs_err::create_dir_all(&p).map_err(ReapiError::io("create", &p))?;
        }
        let stale = |d: &str, keep: fn(&str) -> bool| -> Result<(), ReapiError> {
            let p = root.join(d);
            for entry in fs_err::read_dir(&p)
                .map_err(ReapiError::io("list", &p))?
                .flatten()
            {
                if !keep(&entry.file_name().to_string_lossy()) {
                    remove_tree(&entry.path())?;
                }
            }
            Ok(())
        };
        stale("exec", |_| false)?;
        stale("trees", |name| !name.starts_with(".tmp"))?;
        Ok(LocalCas {
            root: root.to_path_buf(),
            staged_at: Mutex::new(HashMap::new()),
        })
    }

    /// A fresh folder for one action, under the cache (same file system: links work).
    pub fn exec_dir(&self) -> Result<tempfile::TempDir, ReapiError> {
        let at = self.root.join("exec");
        tempfile::Builder::new()
            .prefix("action-")
            .tempdir_in(&at)
            .map_err(ReapiError::io("create a folder in", &at))
    }

    fn blob(&self, d: &ReDigest, exec: bool) -> PathBuf {
        let name = if exec {
            format!("{}.x", d.hash)
        } else {
            d.hash.clone()
        };
        self.root.join("cas").join(name)
    }

    fn dir_path(&self, d: &ReDigest) -> PathBuf {
        self.root.join("dirs").join(&d.hash)
    }

    fn tree_path(&self, d: &ReDigest) -> PathBuf {
        self.root.join("trees").join(&d.hash)
    }

    /// Every `Directory` of the tree at `root`: from the cache, else with one `GetTree`
    /// stream, which fills the cache. Directories the farm lacks are all named in one
    /// [`ReapiError::MissingBlobs`].
    async fn directories(
        &self,
        cas: &Cas,
        channel: &crate::endpoint::AuthChannel,
        instance: &str,
        endpoint: &crate::Endpoint,
        root: &ReDigest,
    ) -> Result<HashMap<ReDigest, Directory>, ReapiError> {
        let mut out = HashMap::new();
        let mut todo = vec![root.clone()];
        let mut fetched_tree = false;
        let mut missing = Vec::new();
        while let Some(d) = todo.pop() {
            if out.contains_key(&d) {
                continue;
            }
            let dir = match fs_err::read(self.dir_path(&d))
                .ok()
                .and_then(|b| Directory::decode(b.as_slice()).ok())
            {
                Some(dir) => dir,
                None if !fetched_tree => {
                    fetched_tree = true;
                    self.fetch_tree(cas, channel, instance, endpoint, root)
                        .await?;
                    todo.push(d);
                    continue;
                }
                None => {
                    let bytes = match cas.read_bytes(&d).await {
                        Ok(b) => b,
                        Err(ReapiError::MissingBlobs { digests, .. }) => {
                            missing.extend(digests);
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    let dir =
                        Directory::decode(bytes.as_slice()).map_err(|e| ReapiError::BadReply {
                            what: format!("directory `{d}`"),
                            reason: e.to_string(),
                        })?;
                    crate::cas::write_whole(&self.dir_path(&d), &bytes)?;
                    dir
                }
            };
            for sub in &dir.directories {
                todo.push(ReDigest::from_proto(
                    &sub.digest.clone().unwrap_or_default(),
                )?);
            }
            out.insert(d, dir);
        }
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            return Err(cas.missing(missing));
        }
        Ok(out)
    }

    async fn fetch_tree(
        &self,
        cas: &Cas,
        channel: &crate::endpoint::AuthChannel,
        instance: &str,
        endpoint: &crate::Endpoint,
        root: &ReDigest,
    ) -> Result<(), ReapiError> {
        let mut client = ContentAddressableStorageClient::new(channel.clone())
            .max_decoding_message_size(64 << 20);
        let mut page_token = String::new();
        // `NOT_FOUND` from `GetTree` says the root itself is missing.
        let failed = |status: tonic::Status| {
            if status.code() == tonic::Code::NotFound {
                cas.missing(vec![root.clone()])
            } else {
                ReapiError::call(endpoint, "GetTree")(status)
            }
        };
        loop {
            let mut stream = client
                .get_tree(crate::proto::re::GetTreeRequest {
                    instance_name: instance.to_string(),
                    root_digest: Some(root.proto()),
                    page_size: 0,
                    page_token: page_token.clone(),
                    digest_function: 0,
                })
                .await
                .map_err(failed)?
                .into_inner();
            let mut next = String::new();
            while let Some(page) = stream.message().await.map_err(failed)? {
                for dir in page.directories {
                    let bytes = dir.encode_to_vec();
                    let d = crate::digest::digest_of(&bytes);
                    let path = self.dir_path(&d);
                    if !path.exists() {
                        crate::cas::write_whole(&path, &bytes)?;
                    }
                }
                next = page.next_page_token;
            }
            if next.is_empty() {
                return Ok(());
            }
            page_token = next;
        }
    }

    /// Lays out the tree at `root` in the folder `dest`: writable folders copied, the rest
    /// as bound trees (see the module's doc) or, in folders that vary, hard links.
    pub async fn stage(
        &self,
        cas: &Cas,
        channel: &crate::endpoint::AuthChannel,
        endpoint: &crate::Endpoint,
        root: &ReDigest,
        dest: &Path,
    ) -> Result<Staged, ReapiError> {
        let dirs = self
            .directories(cas, channel, &endpoint.instance, endpoint, root)
            .await?;
        let mut plan = Plan::default();
        {
            let mut staged_at = self
                .staged_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.plan_root(&dirs, root, dest, &mut staged_at, &mut plan)?;
        }
        // Fetch what the cache lacks, each content once.
        let mut missing: Vec<(ReDigest, PathBuf)> = Vec::new();
        let mut seen = HashSet::new();
        let mut new_tree_files = Vec::new();
        for (tree, tmp) in &plan.new_trees {
            lay_out(&dirs, tree, tmp, false, &mut new_tree_files)?;
        }
        for (d, _, _, _) in plan.files.iter().chain(&new_tree_files) {
            if d.size > 0
                && seen.insert(d.clone())
                && !self.blob(d, false).exists()
                && !self.blob(d, true).exists()
            {
                missing.push((d.clone(), self.blob(d, false)));
            }
        }
        // Asked first, so that every blob the farm lost is named at once (the client sends
        // them all again), not just the first a download meets.
        let digests: Vec<ReDigest> = missing.iter().map(|(d, _)| d.clone()).collect();
        let mut lost = cas.find_missing(&digests).await?;
        if !lost.is_empty() {
            lost.sort();
            return Err(cas.missing(lost));
        }
        let fetched = missing.len();
        let fetched_bytes = missing.iter().map(|(d, _)| d.size as u64).sum();
        let landed: Vec<PathBuf> = missing.iter().map(|(_, p)| p.clone()).collect();
        let downloaded = cas.download(missing).await;
        // Downloads land owner-only (temporary files); the cache is read-only for everyone,
        // which is what the sandbox's user sees through the links. Also after a download that
        // broke off (a server restart): what landed stays and is linked by the next lease.
        for p in landed.iter().filter(|p| p.exists()) {
            fs_err::set_permissions(p, std::fs::Permissions::from_mode(0o444))
                .map_err(ReapiError::io("set the mode of", p))?;
        }
        downloaded?;
        for (d, path, exec, copy) in plan.files.iter().chain(&new_tree_files) {
            self.place(d, path, *exec, *copy)?;
        }
        for (tree, tmp) in &plan.new_trees {
            let at = self.tree_path(tree);
            match fs_err::rename(tmp, &at) {
                Ok(()) => {}
                // Another lease that built the same tree first wins; this copy goes.
                Err(_) if at.is_dir() => remove_tree(tmp)?,
                Err(e) => return Err(ReapiError::io("materialise the tree", &at)(e)),
            }
        }
        Ok(Staged {
            files: plan.files.len() + new_tree_files.len(),
            fetched,
            fetched_bytes,
            reused_trees: plan.reused,
            binds: plan.binds,
        })
    }

    /// Plans the root folder: a real folder whose entries are planned by [`Self::plan_dir`],
    /// with every mount point the sandbox needs, so that it binds the root whole.
    fn plan_root(
        &self,
        dirs: &HashMap<ReDigest, Directory>,
        root: &ReDigest,
        dest: &Path,
        staged_at: &mut HashMap<PathBuf, ReDigest>,
        plan: &mut Plan,
    ) -> Result<(), ReapiError> {
        let d = directory(dirs, root)?;
        shallow(d, dest, false, &mut plan.files)?;
        for sub in &d.directories {
            let digest = ReDigest::from_field(&sub.digest)?;
            let host = dest.join(&sub.name);
            if sandbox_own(&sub.name) {
                let copy = WRITABLE.contains(&sub.name.as_str());
                lay_out(dirs, &digest, &host, copy, &mut plan.files)?;
            } else {
                self.plan_dir(dirs, &digest, Path::new(&sub.name), &host, staged_at, plan)?;
            }
        }
        for mount in RESERVED {
            let p = dest.join(&mount[1..]);
            fs_err::create_dir_all(&p).map_err(ReapiError::io("create", &p))?;
        }
        Ok(())
    }

    /// Plans a read-only folder at `rel` (relative to the root): a bound tree, or, where the
    /// path has held other trees, a real folder whose subfolders are planned the same way.
    fn plan_dir(
        &self,
        dirs: &HashMap<ReDigest, Directory>,
        digest: &ReDigest,
        rel: &Path,
        host: &Path,
        staged_at: &mut HashMap<PathBuf, ReDigest>,
        plan: &mut Plan,
    ) -> Result<(), ReapiError> {
        let d = directory(dirs, digest)?;
        let varies = staged_at
            .insert(rel.to_path_buf(), digest.clone())
            .is_some_and(|before| before != *digest);
        let empty = d.files.is_empty() && d.directories.is_empty() && d.symlinks.is_empty();
        fs_err::create_dir_all(host).map_err(ReapiError::io("create", host))?;
        if empty {
            return Ok(());
        }
        let source = self.tree_path(digest);
        let built = source.is_dir() || plan.new_trees.iter().any(|(t, _)| t == digest);
        if built || !varies {
            if built {
                plan.reused += 1;
            } else {
                let tmp = self.root.join("trees").join(format!(
                    ".tmp-{}-{}-{}",
                    digest.hash,
                    std::process::id(),
                    TMP_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                ));
                plan.new_trees.push((digest.clone(), tmp));
            }
            plan.binds.push(Bind {
                source,
                target: Path::new("/").join(rel),
                read_only: true,
            });
            return Ok(());
        }
        shallow(d, host, false, &mut plan.files)?;
        for sub in &d.directories {
            let sub_digest = ReDigest::from_field(&sub.digest)?;
            self.plan_dir(
                dirs,
                &sub_digest,
                &rel.join(&sub.name),
                &host.join(&sub.name),
                staged_at,
                plan,
            )?;
        }
        Ok(())
    }

    /// Puts the cached file of `d` at `path`: a hard link, or a copy where the action may
    /// write (or the link fails).
    fn place(&self, d: &ReDigest, path: &Path, exec: bool, copy: bool) -> Result<(), ReapiError> {
        let cached = self.cached(d, exec)?;
        if copy || fs_err::hard_link(&cached, path).is_err() {
            fs_err::copy(&cached, path).map_err(ReapiError::io("copy to", path))?;
            let mode = if exec { 0o755 } else { 0o644 };
            fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(ReapiError::io("set the mode of", path))?;
        }
        Ok(())
    }

    /// The cached file of `d` with the mode asked for, made from its twin if need be.
    fn cached(&self, d: &ReDigest, exec: bool) -> Result<PathBuf, ReapiError> {
        let want = self.blob(d, exec);
        let mode = if exec { 0o555 } else { 0o444 };
        if let Ok(meta) = fs_err::metadata(&want) {
            // A cache written by an older worker, or a stage that stopped between landing a
            // file and opening it up, may hold it owner-only: the sandbox's user could not
            // read it through the link.
            if meta.permissions().mode() & 0o777 != mode {
                fs_err::set_permissions(&want, std::fs::Permissions::from_mode(mode))
                    .map_err(ReapiError::io("set the mode of", &want))?;
            }
            return Ok(want);
        }
        if d.size == 0 {
            crate::cas::write_whole(&want, b"")?;
        } else {
            let twin = self.blob(d, !exec);
            let tmp = want.with_extension("tmp");
            fs_err::copy(&twin, &tmp).map_err(ReapiError::io("copy to", &tmp))?;
            fs_err::rename(&tmp, &want).map_err(ReapiError::io("rename", &want))?;
        }
        fs_err::set_permissions(&want, std::fs::Permissions::from_mode(mode))
            .map_err(ReapiError::io("set the mode of", &want))?;
        Ok(want)
    }
}

/// What one input root is made of.
#[derive(Default)]
struct Plan {
    /// Files to put in place: digest, path, executable, copied (not linked).
    files: Vec<FileSlot>,
    /// Trees to materialise, and the temporary folder each is built in.
    new_trees: Vec<(ReDigest, PathBuf)>,
    /// Every tree the sandbox binds, new or not.
    binds: Vec<Bind>,
    /// Binds of trees already materialised (or planned earlier in this root).
    reused: usize,
}

type FileSlot = (ReDigest, PathBuf, bool, bool);

fn directory<'a>(
    dirs: &'a HashMap<ReDigest, Directory>,
    d: &ReDigest,
) -> Result<&'a Directory, ReapiError> {
    dirs.get(d).ok_or_else(|| ReapiError::BadReply {
        what: format!("directory `{d}`"),
        reason: "the farm does not hold it".into(),
    })
}

/// Creates `host` with the files (as slots) and links of `d`, not its subfolders.
fn shallow(
    d: &Directory,
    host: &Path,
    copy: bool,
    files: &mut Vec<FileSlot>,
) -> Result<(), ReapiError> {
    fs_err::create_dir_all(host).map_err(ReapiError::io("create", host))?;
    for f in &d.files {
        one_component(&f.name)?;
        files.push((
            ReDigest::from_field(&f.digest)?,
            host.join(&f.name),
            f.is_executable,
            copy,
        ));
    }
    for l in &d.symlinks {
        one_component(&l.name)?;
        let at = host.join(&l.name);
        std::os::unix::fs::symlink(&l.target, &at)
            .map_err(ReapiError::io("create the link", &at))?;
    }
    for sub in &d.directories {
        one_component(&sub.name)?;
    }
    Ok(())
}

/// Lays out the whole tree `dir` at `host`.
fn lay_out(
    dirs: &HashMap<ReDigest, Directory>,
    dir: &ReDigest,
    host: &Path,
    copy: bool,
    files: &mut Vec<FileSlot>,
) -> Result<(), ReapiError> {
    let d = directory(dirs, dir)?;
    shallow(d, host, copy, files)?;
    for sub in &d.directories {
        let digest = ReDigest::from_field(&sub.digest)?;
        lay_out(dirs, &digest, &host.join(&sub.name), copy, files)?;
    }
    Ok(())
}

/// Numbers the temporary folders of trees, which concurrent leases may build at once.
static TMP_SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Removes a folder of the cache (its files are read-only; its folders are not).
fn remove_tree(path: &Path) -> Result<(), ReapiError> {
    match fs_err::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ReapiError::io("remove", path)(e)),
    }
}

fn one_component(name: &str) -> Result<(), ReapiError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(ReapiError::BadReply {
            what: format!("node name `{name}`"),
            reason: "a name must be one path component".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::digest::digest_of;

    #[test]
    fn a_cached_file_left_owner_only_is_opened_up_before_it_is_linked() {
        let dir = tempfile::tempdir().unwrap();
        let cas = LocalCas::open(dir.path()).unwrap();
        let d = digest_of(b"echo hi\n");
        let landed = cas.blob(&d, false);
        fs_err::write(&landed, b"echo hi\n").unwrap();
        fs_err::set_permissions(&landed, std::fs::Permissions::from_mode(0o600)).unwrap();
        let plain = cas.cached(&d, false).unwrap();
        let mode = |p: &Path| fs_err::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&plain), 0o444);
        let exec = cas.cached(&d, true).unwrap();
        assert_eq!(mode(&exec), 0o555);
        assert_eq!(fs_err::read(&exec).unwrap(), b"echo hi\n");
    }
}
