//! Deterministic tar layers.
//!
//! [`pack_tree`] writes a folder as a tar stream that depends only on the relative paths,
//! contents, the executable bit and symlink targets: entries depth-first with each folder's
//! children in byte order of their names (the order of the tree hash), GNU headers, mtime
//! fixed by the caller (0, or `SOURCE_DATE_EPOCH`), uid/gid 0 with empty owner names, modes
//! normalised to `0755` (folders, files with any execute bit) or `0644` (other files),
//! symbolic links kept as links (never followed), hard links stored as separate files.
//! Devices, FIFOs and sockets are refused. Compressed with zstd at a fixed level in a single
//! thread, the layer is byte-for-byte reproducible for a given zstd version (pinned).

use fs_err as fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::error::io_err;
use super::{Result, StoreError, TAR_MEDIA_TYPE, TAR_ZSTD_MEDIA_TYPE};

/// zstd level of tree layers: fast to write, and part of what makes a layer's bytes.
pub const ZSTD_LEVEL: i32 = 3;

/// Packs the folder `root` (its contents, not the folder itself) as a zstd-compressed,
/// deterministic tar into `out`, and returns `out`.
pub fn pack_tree<W: Write>(root: &Path, mtime: u64, out: W) -> Result<W> {
    let encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)
        .map_err(|e| StoreError::io("start compressing", root, e))?;
    let mut builder = tar::Builder::new(encoder);
    builder.follow_symlinks(false);
    append_tree(&mut builder, root, &PathBuf::new(), mtime)?;
    let encoder = builder
        .into_inner()
        .map_err(io_err("finish the archive of", root))?;
    encoder.finish().map_err(io_err("finish compressing", root))
}

/// Appends the folder `dir` to `builder` under the path `rel` (empty: at the top), with the
/// entries, order and metadata of [`pack_tree`], whatever the archive's compression.
pub fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &Path,
    rel: &Path,
    mtime: u64,
) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut names: Vec<std::ffi::OsString> = fs::read_dir(dir)
        .map_err(io_err("list", dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(io_err("list", dir))?;
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let path = dir.join(&name);
        let rel = rel.join(&name);
        let meta = fs::symlink_metadata(&path).map_err(io_err("read the metadata of", &path))?;
        let ft = meta.file_type();
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        let append = |r: io::Result<()>| r.map_err(io_err("archive", &path));
        if ft.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            append(builder.append_data(&mut header, &rel, io::empty()))?;
            append_tree(builder, &path, &rel, mtime)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(io_err("read the link", &path))?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            append(builder.append_link(&mut header, &rel, &target))?;
        } else if ft.is_file() {
            let exec = meta.permissions().mode() & 0o111 != 0;
            let file = fs::File::open(&path).map_err(io_err("open", &path))?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if exec { 0o755 } else { 0o644 });
            header.set_size(meta.len());
            // Exactly the size announced in the header, even if the file grows meanwhile.
            append(builder.append_data(&mut header, &rel, file.take(meta.len())))?;
        } else {
            return Err(StoreError::Unsupported {
                path,
                what: refine_digest::special_kind(&ft),
            });
        }
    }
    Ok(())
}

/// Whether refine can unpack a layer of this media type as a tree.
pub fn is_tree_layer(media_type: &str) -> bool {
    media_type == TAR_ZSTD_MEDIA_TYPE || media_type == TAR_MEDIA_TYPE
}

/// Unpacks a tar layer of `media_type` from `reader` into `dest`, then reads `reader` to its
/// end (so that a verifying reader checks the whole blob).
pub fn unpack_layer<R: Read>(reader: R, media_type: &str, dest: &Path) -> Result<()> {
    let err = io_err("unpack a layer into", dest);
    if media_type == TAR_ZSTD_MEDIA_TYPE {
        let decoder = zstd::stream::read::Decoder::new(reader)
            .map_err(io_err("unpack a layer into", dest))?;
        let mut decoder = unpack_tar(decoder, dest)?;
        io::copy(&mut decoder, &mut io::sink()).map_err(io_err("unpack a layer into", dest))?;
        let mut rest = decoder.finish();
        io::copy(&mut rest, &mut io::sink()).map_err(err)?;
    } else {
        let mut rest = unpack_tar(reader, dest)?;
        io::copy(&mut rest, &mut io::sink()).map_err(err)?;
    }
    Ok(())
}

fn unpack_tar<R: Read>(reader: R, dest: &Path) -> Result<R> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(false);
    archive
        .unpack(dest)
        .map_err(io_err("unpack a layer into", dest))?;
    Ok(archive.into_inner())
}
