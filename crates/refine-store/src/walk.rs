//! Walking the store's folders strictly: every entry is either what the layout puts there or
//! a [`BadEntry`] that `verify` reports and `--fix` (or `gc`, for the buckets it cleans)
//! removes. Nothing under a bucket is skipped silently.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rayon::prelude::*;

use super::error::io_err;
use super::{Digest, Result, StoreError};

/// Something in a bucket that could not be read, is malformed, or does not belong there.
#[derive(Clone, Debug)]
pub(crate) struct BadEntry {
    pub path: PathBuf,
    pub reason: String,
}

impl BadEntry {
    pub fn new(path: &Path, reason: impl Into<String>) -> Self {
        BadEntry {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A record file named after the blob it follows (`names/<hex>`, `locations/<hex>`).
#[derive(Clone, Debug)]
pub(crate) struct BlobRecord {
    pub digest: Digest,
    pub path: PathBuf,
}

/// The records of a flat folder of [`BlobRecord`]s whose content `check` accepts, and what
/// in it is unreadable or malformed (`check` says why).
pub(crate) fn blob_records(
    dir: &Path,
    check: impl Fn(&[u8]) -> std::result::Result<(), String>,
) -> Result<(Vec<BlobRecord>, Vec<BadEntry>)> {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (name, path, is_dir) in entries(dir)? {
        let record = (|| {
            if is_dir {
                return Err("it is a folder, not a file".to_owned());
            }
            let digest = Digest::from_hex(&name).ok_or("the file name is not a sha256")?;
            let bytes = fs_err::read(&path).map_err(|e| e.to_string())?;
            check(&bytes)?;
            Ok(BlobRecord {
                digest,
                path: path.clone(),
            })
        })();
        match record {
            Ok(r) => good.push(r),
            Err(reason) => bad.push(BadEntry::new(&path, reason)),
        }
    }
    Ok((good, bad))
}

/// The entries of a folder, as (name, path, is a folder); an absent folder is empty.
pub(crate) fn entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>> {
    let rd = match fs_err::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io("list", dir, e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io_err("list", dir))?;
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((name, entry.path(), is_dir));
    }
    Ok(out)
}

fn is_fan_name(name: &str) -> bool {
    name.len() == 2 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lists the files `dir/<xx>/<name>` (a 256-way fan-out, `xx` = the name's first two
/// characters) in parallel over the fan-out folders, parsing each with `parse`. Anything else
/// (a file beside the fan-out folders, a folder inside one, a file under the wrong one) and
/// every file `parse` refuses is a [`BadEntry`].
pub(crate) fn list_fanned<T: Send>(
    dir: &Path,
    parse: impl Fn(&str, &Path) -> std::result::Result<T, String> + Sync,
) -> Result<(Vec<T>, Vec<BadEntry>)> {
    let mut bad = Vec::new();
    let mut fans = Vec::new();
    for (name, path, is_dir) in entries(dir)? {
        if is_dir && is_fan_name(&name) {
            fans.push((name, path));
        } else {
            bad.push(BadEntry::new(
                &path,
                "it is not a fan-out folder (two lowercase hexadecimal digits)",
            ));
        }
    }
    let lists: Vec<Vec<std::result::Result<T, BadEntry>>> = fans
        .par_iter()
        .map(|(fan, fan_path)| {
            let found = entries(fan_path)?;
            Ok(found
                .into_iter()
                .map(|(name, path, is_dir)| {
                    if is_dir {
                        return Err(BadEntry::new(&path, "it is a folder, not a file"));
                    }
                    if name.get(..2) != Some(fan.as_str()) {
                        return Err(BadEntry::new(
                            &path,
                            format!("it is filed under `{fan}/`, not under its name's first two characters"),
                        ));
                    }
                    parse(&name, &path).map_err(|reason| BadEntry::new(&path, reason))
                })
                .collect())
        })
        .collect::<Result<_>>()?;
    let mut good = Vec::new();
    for r in lists.into_iter().flatten() {
        match r {
            Ok(t) => good.push(t),
            Err(b) => bad.push(b),
        }
    }
    Ok((good, bad))
}

/// A file's mtime, which refine reads as its last use; the epoch if it cannot be read.
pub(crate) fn mtime(path: &Path) -> SystemTime {
    fs_err::symlink_metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Removes a file or a folder with its contents; an absent one is fine.
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let result = match fs_err::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs_err::remove_dir_all(path),
        Ok(_) => fs_err::remove_file(path),
        Err(_) => Ok(()),
    };
    match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::io("remove", path, e)),
        _ => Ok(()),
    }
}

/// The total size of a file or folder; what cannot be read counts as nothing.
pub(crate) fn size_of(path: &Path) -> u64 {
    let Ok(meta) = fs_err::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs_err::read_dir(path).map_or(0, |rd| {
        rd.filter_map(std::result::Result::ok)
            .map(|e| size_of(&e.path()))
            .sum()
    })
}
