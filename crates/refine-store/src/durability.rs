//! When the store's writes reach the disk. Every file is written to `tmp/` and renamed into
//! place, so a reader never sees a partial file; by default each is also fsynced before its
//! rename. An action's store step writes many files (its log and pin, provenance and pin,
//! layer, manifest, label record, ref), and an fsync each costs a journal commit each.
//! [`LocalStore::in_one_sync`] groups them: inside it, writes are not synced one by one; the
//! commit point of an artifact (just before its ref is written) flushes the file system once
//! (`syncfs`), then the ref alone is fsynced. A power loss thus leaves either no ref (the
//! blobs before it are unreachable and gc removes them; a damaged one is reported by
//! `verify`) or a ref whose manifest and layers are on disk. Whatever the step wrote after its
//! last commit point (a failed action's log) is flushed once when it ends.

use std::cell::Cell;

use super::error::io_err;
use super::{LocalStore, Result, StoreError};

#[derive(Clone, Copy, Default)]
struct Deferred {
    /// Inside [`LocalStore::in_one_sync`] on this thread.
    active: bool,
    /// Something was written and not synced since the last flush.
    dirty: bool,
}

thread_local! {
    static DEFERRED: Cell<Deferred> = const { Cell::new(Deferred { active: false, dirty: false }) };
}

impl LocalStore {
    /// Runs `step` (on this thread) with the syncs of its writes grouped, as the module
    /// documentation says. Nested calls join the outer one.
    pub fn in_one_sync<T, E: From<StoreError>>(
        &self,
        step: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let outer = DEFERRED.get();
        if outer.active {
            return step();
        }
        DEFERRED.set(Deferred {
            active: true,
            dirty: false,
        });
        // Ends the step even if `step` panics: this thread's later writes sync again.
        struct End;
        impl Drop for End {
            fn drop(&mut self) {
                DEFERRED.set(Deferred::default());
            }
        }
        let end = End;
        let result = step();
        let dirty = DEFERRED.get().dirty;
        drop(end);
        if dirty {
            self.flush_file_system()?;
        }
        result
    }

    /// Syncs `file` now, or leaves it to the step's next flush.
    pub(crate) fn sync_or_defer(&self, file: &std::fs::File, path: &std::path::Path) -> Result<()> {
        if !self.fsync {
            return Ok(());
        }
        let state = DEFERRED.get();
        if state.active {
            DEFERRED.set(Deferred {
                dirty: true,
                ..state
            });
            return Ok(());
        }
        file.sync_all().map_err(io_err("sync", path))
    }

    /// An artifact's commit point: inside a step, everything written so far reaches the disk
    /// before the ref that makes it reachable is written.
    pub(crate) fn commit_point(&self) -> Result<()> {
        let state = DEFERRED.get();
        if state.active && state.dirty {
            self.flush_file_system()?;
            DEFERRED.set(Deferred {
                dirty: false,
                ..state
            });
        }
        Ok(())
    }

    fn flush_file_system(&self) -> Result<()> {
        if !self.fsync {
            return Ok(());
        }
        let dir = fs_err::File::open(&self.root).map_err(io_err("open", &self.root))?;
        nix::unistd::syncfs(dir.file())
            .map_err(|e| StoreError::io("sync the file system of", &self.root, e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::DEFERRED;
    use crate::tests::store;

    #[test]
    fn a_step_ends_even_when_it_panics_and_its_writes_are_in_place() {
        let (_dir, s) = store();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            s.in_one_sync(|| -> crate::Result<()> { panic!("an action's code panicked") })
        }));
        assert!(r.is_err());
        assert!(
            !DEFERRED.get().active,
            "the panic left the thread deferring"
        );
        let log = s
            .in_one_sync(|| {
                assert!(DEFERRED.get().active);
                s.put_log(&b"the log"[..])
            })
            .unwrap();
        let after = DEFERRED.get();
        assert!(!after.active && !after.dirty);
        assert!(s.has_blob(&log));
        assert!(
            s.verify(crate::VerifyOptions::default())
                .unwrap()
                .is_clean()
        );
    }
}
