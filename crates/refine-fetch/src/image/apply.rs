//! Applying one layer to a root tree, as the OCI image-spec's "Applying changesets" says:
//! entries replace what is there (a folder replacing a non-folder and the other way round),
//! `.wh.NAME` deletes NAME from the layers below, `.wh..wh..opq` empties its folder of what
//! the layers below put there. Devices and FIFOs are skipped (the sandbox brings its own
//! `/dev`); no entry may land outside the root, through `..` or through a symlink.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use super::ImageError;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Applies the layer in `path` (tar, tar+gzip or tar+zstd: told apart by their magic
/// numbers, not by media types, which registries get wrong) onto `root`.
pub fn layer(path: &Path, root: &Path) -> Result<(), ImageError> {
    let io = |e| ImageError::io(path, e);
    let f = fs_err::File::open(path).map_err(io)?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let head = r.fill_buf().map_err(io)?;
    let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(r))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(r).map_err(io)?)
    } else {
        Box::new(r)
    };
    apply(reader, root).map_err(|e| match e {
        Applied::Io(e) => ImageError::io(path, e),
        Applied::Bad(why) => ImageError::Invalid(
            format!("The layer `{}` {why}", path.display()),
            "The image is damaged or hostile: refine will not unpack it".into(),
        ),
    })
}

enum Applied {
    Io(std::io::Error),
    Bad(String),
}

impl From<std::io::Error> for Applied {
    fn from(e: std::io::Error) -> Self {
        Applied::Io(e)
    }
}

/// `path` without `.`, `/` and empty components; `None` when it climbs out with `..`.
fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Whether `rel`'s parent folders inside `root` are real folders (not symlinks): an entry
/// is never written through a symlink, which could point anywhere on the host.
fn parents_are_dirs(root: &Path, rel: &Path) -> bool {
    let mut at = root.to_path_buf();
    let mut parts: Vec<_> = rel.components().collect();
    parts.pop();
    for c in parts {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return false,
            // missing: the tar crate creates it as a folder
            Err(_) => return true,
        }
    }
    true
}

fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs_err::remove_dir_all(path),
        Ok(_) => fs_err::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn apply(reader: impl Read, root: &Path) -> Result<(), Applied> {
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    ar.set_unpack_xattrs(false);
    // Owners matter in a root file system; only root can set them.
    ar.set_preserve_ownerships(nix::unistd::geteuid().is_root());
    // What this layer wrote: an opaque whiteout hides only the layers below.
    let mut written: HashSet<PathBuf> = HashSet::new();
    for entry in ar.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let rel = clean(&raw).ok_or_else(|| {
            Applied::Bad(format!(
                "holds `{}`, which climbs out of the root",
                raw.display()
            ))
        })?;
        let Some(name) = rel.file_name().and_then(|n| n.to_str()) else {
            continue; // the root itself
        };
        if !parents_are_dirs(root, &rel) {
            return Err(Applied::Bad(format!(
                "writes `{}` through a symlink",
                rel.display()
            )));
        }
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        if name == OPAQUE {
            let dir = root.join(&parent);
            if dir.is_dir() {
                for child in fs_err::read_dir(&dir)? {
                    let child = child?;
                    if !written.contains(&parent.join(child.file_name())) {
                        remove(&child.path())?;
                    }
                }
            }
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            remove(&root.join(&parent).join(hidden))?;
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            continue;
        }
        let dst = root.join(&rel);
        if let Ok(m) = std::fs::symlink_metadata(&dst)
            && (!kind.is_dir() || !m.is_dir())
        {
            remove(&dst)?;
        }
        if kind.is_hard_link() {
            let target = entry
                .link_name()?
                .and_then(|t| clean(&t))
                .filter(|t| parents_are_dirs(root, t) && !t.as_os_str().is_empty())
                .ok_or_else(|| {
                    Applied::Bad(format!(
                        "links `{}` to a path outside the root",
                        rel.display()
                    ))
                })?;
            fs_err::hard_link(root.join(target), &dst)?;
        } else if !entry.unpack_in(root)? {
            return Err(Applied::Bad(format!(
                "holds `{}`, which lands outside the root",
                raw.display()
            )));
        }
        written.insert(rel);
    }
    Ok(())
}
