//! The tree hash of a `path` source: BLAKE3 over relative paths, contents and the executable
//! bit, never mtimes, owners or other permission bits.
//!
//! # Definition (`refine-tree-v1`)
//!
//! The tree is walked depth-first; the children of each folder are visited in the byte order
//! of their names. Links are never followed (only the root itself is resolved when it is a
//! link). Each entry contributes one record to a single BLAKE3 stream that starts with the
//! domain tag `refine-tree-v1\0`:
//!
//! | entry | record |
//! |---|---|
//! | folder | `d` · len(path) · path |
//! | regular file | `f` (or `x` if any execute bit is set) · len(path) · path · size · BLAKE3(content) |
//! | symbolic link | `l` · len(path) · path · len(target) · target |
//!
//! where `path` is the entry's path relative to the root, components joined by `/`, as raw
//! bytes, and every length or size is a little-endian `u64`. The root folder has no record;
//! when the root is a file, its one record has the empty path. Devices, FIFOs and sockets are
//! an error.
//!
//! Files are hashed in parallel on the rayon pool (sub-folders are walked in parallel too);
//! files of 4 MiB and more are memory-mapped and hashed with BLAKE3's own parallelism, files
//! of 16 KiB and more are memory-mapped, small ones read into a buffer.

use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rayon::prelude::*;

use crate::error::io_err;
use crate::error::{DigestError, Result};

const DOMAIN: &[u8] = b"refine-tree-v1\0";
const MMAP_MIN: u64 = 16 * 1024;
const RAYON_MIN: u64 = 4 * 1024 * 1024;

/// A `refine-tree-v1` tree hash; `Display` gives `blake3:<64 hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TreeDigest(pub [u8; 32]);

impl TreeDigest {
    /// 64 lowercase hex digits.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for TreeDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blake3:{}", self.hex())
    }
}

impl fmt::Debug for TreeDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TreeDigest({self})")
    }
}

/// Hashes the tree at `root` (a folder, a file, or a link to either).
pub fn hash_tree(root: &Path) -> Result<TreeDigest> {
    let meta = fs::metadata(root).map_err(io_err("read the metadata of", root))?;
    let mut out = Vec::new();
    if meta.is_dir() {
        walk(root, &[], &mut out)?;
    } else {
        record(root, b"", &meta, &mut out)?;
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(DOMAIN);
    hasher.update(&out);
    Ok(TreeDigest(*hasher.finalize().as_bytes()))
}

fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends the records of `dir`'s descendants (not `dir` itself) to `out`.
fn walk(dir: &Path, rel: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let mut names: Vec<std::ffi::OsString> = fs::read_dir(dir)
        .map_err(io_err("list", dir))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(io_err("list", dir))?;
    names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let parts: Vec<Vec<u8>> = names
        .par_iter()
        .map(|name| {
            let path = dir.join(name);
            let mut child = Vec::with_capacity(rel.len() + 1 + name.len());
            if !rel.is_empty() {
                child.extend_from_slice(rel);
                child.push(b'/');
            }
            child.extend_from_slice(name.as_bytes());
            let meta =
                fs::symlink_metadata(&path).map_err(io_err("read the metadata of", &path))?;
            let mut buf = Vec::new();
            record(&path, &child, &meta, &mut buf)?;
            if meta.is_dir() {
                walk(&path, &child, &mut buf)?;
            }
            Ok(buf)
        })
        .collect::<Result<_>>()?;
    for part in parts {
        out.extend_from_slice(&part);
    }
    Ok(())
}

fn record(path: &Path, rel: &[u8], meta: &fs::Metadata, out: &mut Vec<u8>) -> Result<()> {
    let file_type = meta.file_type();
    if file_type.is_dir() {
        out.push(b'd');
        push_bytes(out, rel);
    } else if file_type.is_symlink() {
        let target = fs::read_link(path).map_err(io_err("read the link", path))?;
        out.push(b'l');
        push_bytes(out, rel);
        push_bytes(out, target.as_os_str().as_bytes());
    } else if file_type.is_file() {
        let exec = meta.permissions().mode() & 0o111 != 0;
        let (size, hash) = hash_file(path, meta.len())?;
        out.push(if exec { b'x' } else { b'f' });
        push_bytes(out, rel);
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(hash.as_bytes());
    } else {
        return Err(DigestError::Unsupported {
            path: path.to_owned(),
            what: special_kind(&file_type),
        });
    }
    Ok(())
}

/// The BLAKE3 of one file's content, and the number of bytes hashed.
pub fn hash_file(path: &Path, size_hint: u64) -> Result<(u64, blake3::Hash)> {
    let mut hasher = blake3::Hasher::new();
    if size_hint >= RAYON_MIN {
        hasher
            .update_mmap_rayon(path)
            .map_err(io_err("read", path))?;
    } else if size_hint >= MMAP_MIN {
        hasher.update_mmap(path).map_err(io_err("read", path))?;
    } else {
        let mut file = fs::File::open(path).map_err(io_err("open", path))?;
        let mut buf = [0u8; MMAP_MIN as usize];
        loop {
            let n = file.read(&mut buf).map_err(io_err("read", path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
    }
    Ok((hasher.count(), hasher.finalize()))
}

pub fn special_kind(file_type: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::time::{Duration, SystemTime};

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("pkg/sub")).unwrap();
        fs::write(root.join("pkg/__init__.py"), "x = 1\n").unwrap();
        fs::write(root.join("pkg/sub/data.bin"), vec![7u8; 100_000]).unwrap();
        fs::write(root.join("setup.py"), "print('hi')\n").unwrap();
        fs::write(root.join("big.bin"), vec![3u8; 5 << 20]).unwrap();
        symlink("pkg/__init__.py", root.join("link")).unwrap();
        dir
    }

    fn h(p: &Path) -> TreeDigest {
        hash_tree(p).unwrap()
    }

    #[test]
    fn same_content_same_hash_in_another_folder() {
        let (a, b) = (tree(), tree());
        assert_eq!(h(a.path()), h(b.path()));
    }

    #[test]
    fn mtime_insensitive() {
        let a = tree();
        let before = h(a.path());
        let f = fs::File::options()
            .write(true)
            .open(a.path().join("setup.py"))
            .unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(12345))
            .unwrap();
        assert_eq!(before, h(a.path()));
    }

    #[test]
    fn path_content_and_exec_bit_sensitive() {
        let a = tree();
        let base = h(a.path());

        fs::rename(a.path().join("setup.py"), a.path().join("setup2.py")).unwrap();
        let renamed = h(a.path());
        assert_ne!(base, renamed);
        fs::rename(a.path().join("setup2.py"), a.path().join("setup.py")).unwrap();
        assert_eq!(base, h(a.path()));

        fs::write(a.path().join("setup.py"), "print('ho')\n").unwrap();
        assert_ne!(base, h(a.path()));
        fs::write(a.path().join("setup.py"), "print('hi')\n").unwrap();
        assert_eq!(base, h(a.path()));

        let p = a.path().join("setup.py");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(base, h(a.path()));
        // Only the execute bit counts, not the other permission bits.
        let exec = h(a.path());
        fs::set_permissions(&p, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(exec, h(a.path()));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(base, h(a.path()));

        // A big (memory-mapped, parallel) file is content-sensitive too.
        let mut big = vec![3u8; 5 << 20];
        big[4 << 20] = 4;
        fs::write(a.path().join("big.bin"), big).unwrap();
        assert_ne!(base, h(a.path()));
    }

    #[test]
    fn symlinks_are_hashed_as_links() {
        let a = tree();
        let base = h(a.path());
        // Same target content through another path: a different link, a different hash.
        fs::remove_file(a.path().join("link")).unwrap();
        symlink("./pkg/__init__.py", a.path().join("link")).unwrap();
        assert_ne!(base, h(a.path()));
        // A regular file with the content the link pointed at is not the link.
        fs::remove_file(a.path().join("link")).unwrap();
        fs::write(a.path().join("link"), "x = 1\n").unwrap();
        assert_ne!(base, h(a.path()));
        // A dangling link is fine: it is never followed.
        fs::remove_file(a.path().join("link")).unwrap();
        symlink("nowhere", a.path().join("link")).unwrap();
        h(a.path());
    }

    #[test]
    fn empty_folders_count() {
        let a = tree();
        let base = h(a.path());
        fs::create_dir(a.path().join("empty")).unwrap();
        assert_ne!(base, h(a.path()));
    }

    #[test]
    fn a_single_file_hashes() {
        let a = tree();
        let one = h(&a.path().join("setup.py"));
        let b = tree();
        assert_eq!(one, h(&b.path().join("setup.py")));
        assert_ne!(one, h(&b.path().join("pkg/__init__.py")));
    }

    #[test]
    fn golden_vector() {
        // Pins the encoding: a change here changes every path source's identity.
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("a")).unwrap();
        fs::write(dir.path().join("a/f"), "hello\n").unwrap();
        fs::write(dir.path().join("run"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(dir.path().join("run"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("a/f", dir.path().join("l")).unwrap();
        let mut expect = Vec::new();
        expect.extend_from_slice(DOMAIN);
        expect.push(b'd');
        push_bytes(&mut expect, b"a");
        expect.push(b'f');
        push_bytes(&mut expect, b"a/f");
        expect.extend_from_slice(&6u64.to_le_bytes());
        expect.extend_from_slice(blake3::hash(b"hello\n").as_bytes());
        expect.push(b'l');
        push_bytes(&mut expect, b"l");
        push_bytes(&mut expect, b"a/f");
        expect.push(b'x');
        push_bytes(&mut expect, b"run");
        expect.extend_from_slice(&10u64.to_le_bytes());
        expect.extend_from_slice(blake3::hash(b"#!/bin/sh\n").as_bytes());
        assert_eq!(h(dir.path()).0, *blake3::hash(&expect).as_bytes());
        assert_eq!(
            h(dir.path()).hex(),
            "44c3e206a3b2b824ecd075b9049fed3c4e28594e2b91983436b2b1b6574b81bc"
        );
    }

    #[test]
    fn fifo_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        nix_mkfifo(&dir.path().join("pipe"));
        let err = hash_tree(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is a FIFO"), "{err}");
    }

    fn nix_mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}
