//! Comparing an unpacked tree (`trees/<manifest hex>/`) with its artifact: the tree layer's
//! entries read again from the (verified) blob and checked one by one against the files on
//! disk (kind, content, executable bit, link target), each file layer rehashed at its title,
//! and nothing else present. Sandboxes mount trees read-only, so any difference is damage.
//!
//! Whatever stops the comparison (an unreadable file, say) counts as a difference: a tree is
//! only a cache of its artifact, and `unpack` recreates one that `--fix` removed.

use std::collections::HashSet;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

use super::Check;
use crate::walk::entries;
use crate::{
    Bucket, Descriptor, Digest, EMPTY_MEDIA_TYPE, LocalStore, Manifest, Result,
    TAR_ZSTD_MEDIA_TYPE, annotations,
};

impl Check<'_> {
    /// Every tree whose manifest is intact is compared with it. A tree of a missing manifest
    /// is a problem; one of a corrupt or broken manifest goes with it under `--fix`.
    pub(super) fn trees(&mut self) -> Result<()> {
        let mut compare = Vec::new();
        for (name, path, is_dir) in entries(&self.store.bucket_path(Bucket::Trees))? {
            let Some(digest) = Digest::from_hex(&name).filter(|_| is_dir) else {
                let message = format!(
                    "`{}` is malformed: it is not a folder named after a manifest digest",
                    path.display()
                );
                self.problem(message, path);
                continue;
            };
            match self.state(&digest) {
                Some("missing") => {
                    let message = format!(
                        "Tree `{}` belongs to manifest `{digest}`, which is missing",
                        path.display()
                    );
                    self.problem(message, path);
                }
                Some(_) => {}
                None if self.manifest(&digest).is_ok() => compare.push((digest, path)),
                None => {}
            }
        }
        self.report.trees = compare.len();
        let store = self.store;
        let diffs: Vec<Option<String>> = compare
            .par_iter()
            .map(|(digest, path)| first_difference(store, digest, path))
            .collect();
        for ((digest, path), diff) in compare.into_iter().zip(diffs) {
            if let Some(reason) = diff {
                let message = format!(
                    "Tree `{}` differs from manifest `{digest}`: {reason}",
                    path.display()
                );
                self.problem(message, path);
            }
        }
        Ok(())
    }
}

/// The first difference between the tree `dir` and the artifact `digest`, if any.
fn first_difference(store: &LocalStore, digest: &Digest, dir: &Path) -> Option<String> {
    let manifest = match store.read_manifest(digest) {
        Ok(m) => m,
        Err(e) => return Some(e.to_string()),
    };
    let mut expected = HashSet::new();
    match compare_layers(store, &manifest, dir, &mut expected) {
        Ok(None) => extra_entry(dir, Path::new(""), &expected),
        Ok(diff) => diff,
        Err(e) => Some(format!("it cannot be compared: {e}")),
    }
}

fn compare_layers(
    store: &LocalStore,
    manifest: &Manifest,
    dir: &Path,
    expected: &mut HashSet<PathBuf>,
) -> io::Result<Option<String>> {
    for layer in &manifest.layers {
        if layer.media_type == EMPTY_MEDIA_TYPE {
            continue;
        }
        let diff = match layer.annotation(annotations::TITLE) {
            Some(title) => compare_file_layer(layer, title, dir, expected)?,
            None if crate::tar::is_tree_layer(&layer.media_type) => {
                let blob = store.open_blob(&layer.digest).map_err(io::Error::other)?;
                if layer.media_type == TAR_ZSTD_MEDIA_TYPE {
                    compare_tar(zstd::stream::read::Decoder::new(blob)?, dir, expected)?
                } else {
                    compare_tar(blob, dir, expected)?
                }
            }
            // `unpack` refuses such a layer: no tree can hold it.
            None => Some(format!("layer `{}` cannot be placed", layer.digest)),
        };
        if diff.is_some() {
            return Ok(diff);
        }
    }
    Ok(None)
}

/// Adds `rel` and its parent folders to `expected`.
fn expect(expected: &mut HashSet<PathBuf>, rel: &Path) {
    let mut p = rel.to_path_buf();
    while !p.as_os_str().is_empty() && expected.insert(p.clone()) {
        p.pop();
    }
}

fn compare_file_layer(
    layer: &Descriptor,
    title: &str,
    dir: &Path,
    expected: &mut HashSet<PathBuf>,
) -> io::Result<Option<String>> {
    expect(expected, Path::new(title));
    let path = dir.join(title);
    match fs_err::symlink_metadata(&path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Ok(Some(format!("`{title}` is not a file"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Some(format!("`{title}` is missing")));
        }
        Err(e) => return Err(e),
    }
    let (actual, _) = Digest::of_reader(fs_err::File::open(&path)?)?;
    Ok((actual != layer.digest).then(|| format!("`{title}` has other content")))
}

/// Where `unpack` puts an entry, relative to the tree: `None` for what it skips (the root
/// itself, paths with `..`). Leading `/` and `.` parts are dropped, as the tar crate does.
fn placed(path: &Path) -> Option<PathBuf> {
    let mut rel = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return None,
            Component::Normal(p) => rel.push(p),
        }
    }
    (!rel.as_os_str().is_empty()).then_some(rel)
}

fn compare_tar(
    reader: impl Read,
    dir: &Path,
    expected: &mut HashSet<PathBuf>,
) -> io::Result<Option<String>> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            continue;
        }
        let Some(rel) = placed(&entry.path()?) else {
            continue;
        };
        expect(expected, &rel);
        if let Some(diff) = compare_entry(&mut entry, &dir.join(&rel))? {
            return Ok(Some(format!("`{}` {diff}", rel.display())));
        }
    }
    Ok(None)
}

/// How the file at `path` differs from a tar entry (a phrase after its name), if it does.
fn compare_entry<R: Read>(
    entry: &mut tar::Entry<R>,
    path: &Path,
) -> io::Result<Option<&'static str>> {
    let meta = match fs_err::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some("is missing")),
        Err(e) => return Err(e),
    };
    let header = entry.header();
    let kind = header.entry_type();
    let trailing_slash = header.path_bytes().ends_with(b"/");
    if kind.is_dir() || (kind.is_file() && trailing_slash) {
        return Ok((!meta.is_dir()).then_some("is not a folder"));
    }
    if kind.is_symlink() {
        if !meta.is_symlink() {
            return Ok(Some("is not a symbolic link"));
        }
        let target = entry.link_name()?.unwrap_or_default().into_owned();
        return Ok((fs_err::read_link(path)? != target).then_some("points elsewhere"));
    }
    if kind.is_hard_link() {
        return Ok((!meta.is_file()).then_some("is not a file"));
    }
    if !(kind.is_file() || kind.is_contiguous()) {
        return Ok(None);
    }
    if !meta.is_file() {
        return Ok(Some("is not a file"));
    }
    let exec = |mode: u32| mode & 0o111 != 0;
    if exec(header.mode()?) != exec(meta.permissions().mode()) {
        return Ok(Some("has another executable bit"));
    }
    if meta.len() != entry.size() || !same_bytes(entry, fs_err::File::open(path)?)? {
        return Ok(Some("has other content"));
    }
    Ok(None)
}

/// Whether two readers yield the same bytes.
fn same_bytes(mut a: impl Read, mut b: impl Read) -> io::Result<bool> {
    let mut buf_a = vec![0u8; 64 * 1024];
    let mut buf_b = vec![0u8; 64 * 1024];
    loop {
        let n = read_full(&mut a, &mut buf_a)?;
        let m = read_full(&mut b, &mut buf_b)?;
        if buf_a[..n] != buf_b[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Fills `buf` as far as the reader goes.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The first entry under `dir` that the artifact does not hold. Names are compared as
/// bytes: a tree may hold names that are not UTF-8.
fn extra_entry(dir: &Path, rel: &Path, expected: &HashSet<PathBuf>) -> Option<String> {
    let listed: io::Result<Vec<(PathBuf, bool)>> = fs_err::read_dir(dir.join(rel)).and_then(|rd| {
        rd.map(|e| {
            let e = e?;
            Ok((rel.join(e.file_name()), e.file_type()?.is_dir()))
        })
        .collect()
    });
    let listed = match listed {
        Ok(listed) => listed,
        Err(e) => return Some(format!("it cannot be listed: {e}")),
    };
    for (rel, is_dir) in listed {
        if !expected.contains(&rel) {
            return Some(format!("`{}` is not part of the artifact", rel.display()));
        }
        if is_dir && let Some(extra) = extra_entry(dir, &rel, expected) {
            return Some(extra);
        }
    }
    None
}
