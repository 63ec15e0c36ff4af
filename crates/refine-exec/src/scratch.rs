//! The action's own folder (`src/`, `out/`, `work/`, `log` and whatever staging needs), in the
//! store's `tmp/`: one per worker slot, made at the slot's first action and emptied after each
//! action instead of made and removed per action; removed with the build.
//!
//! Why: each action used to make and remove four folders and three files in the store's file
//! system. ext4 without a journal (the development machine's `/`) checks every inode freed in
//! the last minute when it allocates one (`recently_deleted` in `find_inode_bit`), so a build of
//! many short actions slowed down as it went: `perf record` of 999 trivial actions put 47 % of
//! the action threads' CPU in `__ext4_new_inode`. A kept folder leaves only what the action
//! itself writes (and its recipe) to be freed. The emptied folder is the fresh one again: the
//! kept folders get back the mode they were made with, and the log is cut to nothing.
//! `--sandbox-debug` keeps one folder per action instead, as before.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tempfile::TempDir;

/// The folders every action has; they are emptied, not removed.
const KEPT_FOLDERS: [&str; 3] = ["src", "out", "work"];
/// The file the sandbox writes the action's output to; it is cut, not removed.
const KEPT_LOG: &str = "log";

/// The slots' folders of one build.
pub struct Scratches {
    slots: Vec<Mutex<Option<Slot>>>,
}

/// A slot's folder and the mode its kept folders were made with.
pub struct Slot {
    dir: TempDir,
    mode: u32,
}

/// One action's folder; emptied (or, with `--sandbox-debug`, kept) when dropped.
pub enum Scratch<'a> {
    /// A slot's folder, lent for one action.
    Slot(MutexGuard<'a, Option<Slot>>),
    /// A folder of its own, kept after the build.
    Kept(TempDir),
}

impl Scratches {
    pub fn new(slots: usize) -> Scratches {
        Scratches {
            slots: (0..slots.max(1)).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// The folder of worker slot `slot`, made in `tmp` on its first use. The build loop runs one
    /// action per slot at a time, so the lock is never contended.
    pub fn take(&self, slot: usize, tmp: &Path) -> std::io::Result<Scratch<'_>> {
        let Some(cell) = self.slots.get(slot) else {
            return Err(std::io::Error::other(format!("no worker slot {slot}")));
        };
        let mut guard = cell.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            let dir = tempfile::Builder::new().prefix("action-").tempdir_in(tmp)?;
            for name in KEPT_FOLDERS {
                fs_err::create_dir(dir.path().join(name))?;
            }
            let mode = fs_err::metadata(dir.path().join(KEPT_FOLDERS[0]))?
                .permissions()
                .mode()
                & 0o7777;
            *guard = Some(Slot { dir, mode });
        }
        Ok(Scratch::Slot(guard))
    }
}

impl Scratch<'_> {
    pub fn path(&self) -> &Path {
        match self {
            Scratch::Slot(guard) => guard.as_ref().map_or(Path::new(""), |s| s.dir.path()),
            Scratch::Kept(dir) => dir.path(),
        }
    }
}

impl Drop for Scratch<'_> {
    /// Empties a slot's folder; one that cannot be emptied (an action may leave a folder it
    /// cannot list) is removed as far as it can be, and the slot's next action gets a new one.
    fn drop(&mut self) {
        if let Scratch::Slot(guard) = self
            && let Some(slot) = guard.as_ref()
            && empty(slot.dir.path(), slot.mode).is_err()
        {
            **guard = None;
        }
    }
}

/// Makes `dir` what [`Scratches::take`] made: the kept folders there, empty and with `mode`,
/// the log (if any) empty, nothing else.
fn empty(dir: &Path, mode: u32) -> std::io::Result<()> {
    // Which kept folders the listing met, so that only a missing one costs a look-up.
    let mut found = [false; KEPT_FOLDERS.len()];
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        let name = entry.file_name();
        let kept = KEPT_FOLDERS.iter().position(|kept| name == *kept);
        if let Some(index) = kept.filter(|_| file_type.is_dir()) {
            empty_folder(&path)?;
            if fs_err::metadata(&path)?.permissions().mode() & 0o7777 != mode {
                fs_err::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
            }
            found[index] = true;
        } else if file_type.is_file() && name == KEPT_LOG {
            fs_err::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&path)?;
        } else {
            remove(&path, file_type)?;
        }
    }
    for (name, _) in KEPT_FOLDERS.iter().zip(found).filter(|(_, found)| !found) {
        let path = dir.join(name);
        fs_err::create_dir(&path)?;
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn empty_folder(dir: &Path) -> std::io::Result<()> {
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        remove(&entry.path(), entry.file_type()?)?;
    }
    Ok(())
}

/// Removes `path` without following a symlink.
fn remove(path: &Path, file_type: std::fs::FileType) -> std::io::Result<()> {
    if file_type.is_dir() {
        fs_err::remove_dir_all(path)
    } else {
        fs_err::remove_file(path)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn list(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs_err::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_slots_next_action_finds_the_folder_as_new_and_the_same_inodes() {
        let tmp = tempfile::tempdir().unwrap();
        let scratches = Scratches::new(2);
        let (path, work_inode) = {
            let scratch = scratches.take(1, tmp.path()).unwrap();
            let path = scratch.path().to_path_buf();
            assert_eq!(list(&path), ["out", "src", "work"]);
            let mode = fs_err::metadata(path.join("work")).unwrap().mode();
            // What an action leaves: outputs, a tree in `/work`, a changed mode, a log, a
            // symlink out of the folder (never followed), and staging's extras.
            fs_err::create_dir_all(path.join("work/build/deep")).unwrap();
            fs_err::write(path.join("work/build/deep/o.o"), "obj").unwrap();
            fs_err::write(path.join("out/n"), "1").unwrap();
            fs_err::write(path.join("src/recipe.sh"), "echo").unwrap();
            fs_err::write(path.join("log"), "lines").unwrap();
            fs_err::create_dir(path.join("retagged")).unwrap();
            let outside = tmp.path().join("outside");
            fs_err::write(&outside, "keep me").unwrap();
            std::os::unix::fs::symlink(&outside, path.join("out/link")).unwrap();
            fs_err::set_permissions(path.join("work"), std::fs::Permissions::from_mode(0o700))
                .unwrap();
            assert_ne!(mode & 0o777, 0o700, "the test needs a mode that differs");
            let inode = fs_err::metadata(path.join("work")).unwrap().ino();
            (path, (inode, mode))
        };
        let scratch = scratches.take(1, tmp.path()).unwrap();
        assert_eq!(scratch.path(), path, "the slot keeps its folder");
        assert_eq!(list(&path), ["log", "out", "src", "work"]);
        for kept in KEPT_FOLDERS {
            assert!(list(&path.join(kept)).is_empty(), "{kept} is emptied");
        }
        assert_eq!(fs_err::read(path.join("log")).unwrap(), b"");
        let work = fs_err::metadata(path.join("work")).unwrap();
        assert_eq!(work.ino(), work_inode.0, "the folder itself is kept");
        assert_eq!(
            work.mode(),
            work_inode.1,
            "its mode is the one it was made with"
        );
        assert_eq!(
            fs_err::read_to_string(tmp.path().join("outside")).unwrap(),
            "keep me"
        );
        // Another slot has a folder of its own.
        let other = scratches.take(0, tmp.path()).unwrap();
        assert_ne!(other.path(), path);
    }

    #[test]
    fn the_folders_go_with_the_build() {
        let tmp = tempfile::tempdir().unwrap();
        let scratches = Scratches::new(1);
        let path = scratches.take(0, tmp.path()).unwrap().path().to_path_buf();
        assert!(path.is_dir());
        drop(scratches);
        assert!(!path.exists());
    }

    #[test]
    fn a_kept_name_that_is_not_a_folder_becomes_one_again() {
        let tmp = tempfile::tempdir().unwrap();
        let scratches = Scratches::new(1);
        {
            let scratch = scratches.take(0, tmp.path()).unwrap();
            let path = scratch.path();
            fs_err::remove_dir(path.join("src")).unwrap();
            fs_err::write(path.join("src"), "").unwrap();
            fs_err::remove_dir(path.join("out")).unwrap();
        }
        let scratch = scratches.take(0, tmp.path()).unwrap();
        assert_eq!(list(scratch.path()), ["out", "src", "work"]);
        assert!(scratch.path().join("src").is_dir());
    }
}
