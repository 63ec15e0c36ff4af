//! The worker's local CAS and how an input root is staged from it.
//!
//! Every file blob is kept once in `CACHE/cas/<hash>` (read-only; `<hash>.x` for the
//! executable twin, since hard links share their mode) and every `Directory` in
//! `CACHE/dirs/<hash>`. An input root is laid out with hard links into the cache, so a second
//! action on the same base fetches nothing and stages in the time of its `link` calls. The
//! folders an action may write (`work`, `tmp`) get copies, never links: a write there must not
//! reach the cache.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use prost::Message;

use crate::cas::Cas;
use crate::digest::ReDigest;
use crate::error::ReapiError;
use crate::proto::re::Directory;
use crate::proto::re::content_addressable_storage_client::ContentAddressableStorageClient;

/// What staging one input root took.
#[derive(Clone, Copy, Debug, Default)]
pub struct Staged {
    pub files: usize,
    pub fetched: usize,
    pub fetched_bytes: u64,
}

/// The cache folder of a worker.
pub struct LocalCas {
    root: PathBuf,
}

/// Top-level folders of an input root that the action may write: staged by copy.
const WRITABLE: [&str; 2] = ["work", "tmp"];

impl LocalCas {
    pub fn open(root: &Path) -> Result<LocalCas, ReapiError> {
        for d in ["cas", "dirs", "exec"] {
            let p = root.join(d);
            fs_err::create_dir_all(&p).map_err(ReapiError::io("create", &p))?;
        }
        Ok(LocalCas {
            root: root.to_path_buf(),
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

    /// Lays out the tree at `root` in the folder `dest`.
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
        let mut files: Vec<(ReDigest, PathBuf, bool, bool)> = Vec::new();
        lay_out(&dirs, root, dest, false, true, &mut files)?;
        // Fetch what the cache lacks, each content once, then make the executable twins.
        let mut missing: Vec<(ReDigest, PathBuf)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (d, _, _, _) in &files {
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
        for (d, path, exec, copy) in &files {
            let cached = self.cached(d, *exec)?;
            if *copy || fs_err::hard_link(&cached, path).is_err() {
                fs_err::copy(&cached, path).map_err(ReapiError::io("copy to", path))?;
                let mode = if *exec { 0o755 } else { 0o644 };
                fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(ReapiError::io("set the mode of", path))?;
            }
        }
        Ok(Staged {
            files: files.len(),
            fetched,
            fetched_bytes,
        })
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

fn lay_out(
    dirs: &HashMap<ReDigest, Directory>,
    dir: &ReDigest,
    host: &Path,
    copy: bool,
    top: bool,
    files: &mut Vec<(ReDigest, PathBuf, bool, bool)>,
) -> Result<(), ReapiError> {
    let d = dirs.get(dir).ok_or_else(|| ReapiError::BadReply {
        what: format!("directory `{dir}`"),
        reason: "the farm does not hold it".into(),
    })?;
    fs_err::create_dir_all(host).map_err(ReapiError::io("create", host))?;
    for f in &d.files {
        one_component(&f.name)?;
        files.push((
            ReDigest::from_proto(&f.digest.clone().unwrap_or_default())?,
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
        let digest = ReDigest::from_proto(&sub.digest.clone().unwrap_or_default())?;
        let copy = copy || (top && WRITABLE.contains(&sub.name.as_str()));
        lay_out(dirs, &digest, &host.join(&sub.name), copy, false, files)?;
    }
    Ok(())
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
