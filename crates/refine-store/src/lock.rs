//! Advisory locks (`flock(2)` through `std::fs::File::lock*`) on files in the store.
//!
//! - `lock`: every operation that writes blobs, refs, pins, labels or trees holds it
//!   **shared**; `gc` and `verify --fix` hold it **exclusive**. So gc never runs between a
//!   writer's blob and the ref that makes the blob reachable, and everything in `tmp/` belongs
//!   to a live writer unless gc holds the lock.
//! - `index.lock`: exclusive while `index.json` is regenerated.
//!
//! Locks belong to an open file description, so each acquisition opens its own descriptor:
//! two threads of one process hold independent shared locks. They are released when the
//! guard drops, or by the kernel if the process dies.

use fs_err::File;
use std::fs::TryLockError;
use std::path::Path;

use super::error::io_err;
use super::{Bucket, LocalStore, Result, StoreError};

/// A held lock; released on drop.
#[derive(Debug)]
pub struct StoreLease {
    _file: File,
}

fn open(path: &Path) -> Result<File> {
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err("open the lock file", path))
}

impl LocalStore {
    /// Holds the store's lock shared until the lease drops: `gc` waits meanwhile.
    ///
    /// Each write operation takes it on its own; a build holds one for its whole run so that
    /// the trees it mounted and the artifacts it looked up cannot be collected under it.
    pub fn lease(&self) -> Result<StoreLease> {
        let path = self.bucket_path(Bucket::Lock);
        let file = open(&path)?;
        file.lock_shared().map_err(io_err("lock", &path))?;
        Ok(StoreLease { _file: file })
    }

    /// The store's lock, exclusive. `on_wait` is called once if another process holds it.
    pub(crate) fn lock_exclusive(&self, on_wait: &mut dyn FnMut()) -> Result<StoreLease> {
        lock_exclusive(&self.bucket_path(Bucket::Lock), on_wait)
    }

    pub(crate) fn lock_index(&self) -> Result<StoreLease> {
        lock_exclusive(&self.bucket_path(Bucket::IndexLock), &mut || {})
    }
}

fn lock_exclusive(path: &Path, on_wait: &mut dyn FnMut()) -> Result<StoreLease> {
    let file = open(path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            on_wait();
            file.lock().map_err(io_err("lock", path))?;
        }
        Err(TryLockError::Error(e)) => return Err(StoreError::io("lock", path, e)),
    }
    Ok(StoreLease { _file: file })
}
