//! File chores the executor shares: copying a folder, finding the wheels in one, and writing
//! a workspace folder as an sdist-shaped tarball (deterministic: the store's tar writer).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::ActionError;

/// Copies the folder `from` to `to`: folders, regular files (with their modes) and symbolic
/// links (as links, replacing what is at their place); other kinds of files are left out.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs_err::create_dir_all(to)?;
    for entry in fs_err::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ft = entry.file_type()?;
        if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            // A link left by an earlier copy is replaced.
            match fs_err::remove_file(&dst) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            fs_err::os::unix::fs::symlink(fs_err::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            fs_err::copy(&src, &dst)?;
        }
    }
    let mode = fs_err::metadata(from)?.permissions();
    fs_err::set_permissions(to, mode)
}

/// The `.whl` files at the top of `dir`, in name order.
pub fn wheels_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut wheels = Vec::new();
    for entry in fs_err::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "whl") && path.is_file() {
            wheels.push(path);
        }
    }
    wheels.sort();
    Ok(wheels)
}

/// Writes the folder `dir` as a gzip tarball at `to` whose one top folder is `top`, as
/// `python -m build --sdist` lays an sdist out. The bytes depend only on the folder's
/// contents (the store's deterministic tar writer, times set to `mtime`).
pub fn write_sdist(dir: &Path, top: &str, to: &Path, mtime: u64) -> Result<(), ActionError> {
    let file = fs_err::File::create(to).map_err(ActionError::io("create", to))?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_size(0);
    tar.append_data(&mut header, top, std::io::empty())
        .map_err(ActionError::io("write", to))?;
    refine_store::tar::append_tree(&mut tar, dir, Path::new(top), mtime)?;
    let mut gz = tar.into_inner().map_err(ActionError::io("write", to))?;
    gz.flush().map_err(ActionError::io("write", to))?;
    gz.finish().map_err(ActionError::io("write", to))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("pkg/sub")).unwrap();
        fs_err::write(dir.path().join("pkg/setup.py"), "print('x')\n").unwrap();
        fs_err::write(dir.path().join("pkg/sub/data.txt"), "data\n").unwrap();
        std::os::unix::fs::symlink("data.txt", dir.path().join("pkg/sub/link")).unwrap();
        dir
    }

    #[test]
    fn an_sdist_is_the_same_bytes_whatever_the_times_and_order() {
        let a = folder();
        let b = folder();
        // Other times on the second copy: they must not reach the tarball.
        let f = fs_err::File::options()
            .write(true)
            .open(b.path().join("pkg/setup.py"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1))
            .unwrap();
        let out = tempfile::tempdir().unwrap();
        let (ta, tb) = (out.path().join("a.tar.gz"), out.path().join("b.tar.gz"));
        write_sdist(&a.path().join("pkg"), "pkg", &ta, 315_532_800).unwrap();
        write_sdist(&b.path().join("pkg"), "pkg", &tb, 315_532_800).unwrap();
        assert_eq!(fs_err::read(&ta).unwrap(), fs_err::read(&tb).unwrap());
        // One top folder holding the files, as `tar` sees it.
        let listed = std::process::Command::new("tar")
            .env("TZ", "UTC")
            .arg("-tvzf")
            .arg(&ta)
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout);
        // `tar -tv`: mode, owner, size, date, time, name (and `-> target` for a link).
        let entries: Vec<(char, &str)> = listed
            .lines()
            .map(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                (l.chars().next().unwrap(), fields[5])
            })
            .collect();
        assert_eq!(
            entries,
            [
                ('d', "pkg"),
                ('-', "pkg/setup.py"),
                ('d', "pkg/sub"),
                ('-', "pkg/sub/data.txt"),
                ('l', "pkg/sub/link")
            ],
            "{listed}"
        );
        assert!(
            listed.contains("1980-01-01"),
            "times are SOURCE_DATE_EPOCH: {listed}"
        );
    }

    #[test]
    fn copy_tree_keeps_links_and_replaces_them() {
        let src = folder();
        let dst = tempfile::tempdir().unwrap();
        copy_tree(src.path(), dst.path()).unwrap();
        // Again over the first copy: the link is replaced, not an error.
        copy_tree(src.path(), dst.path()).unwrap();
        let link = dst.path().join("pkg/sub/link");
        assert_eq!(fs_err::read_link(&link).unwrap(), Path::new("data.txt"));
        assert_eq!(fs_err::read_to_string(&link).unwrap(), "data\n");
    }

    #[test]
    fn wheels_in_finds_only_wheel_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b-1-py3-none-any.whl", "a-1-py3-none-any.whl", "notes.txt"] {
            fs_err::write(dir.path().join(name), "").unwrap();
        }
        fs_err::create_dir(dir.path().join("dir.whl")).unwrap();
        let found = wheels_in(dir.path()).unwrap();
        let names: Vec<_> = found.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(names, ["a-1-py3-none-any.whl", "b-1-py3-none-any.whl"]);
    }
}
