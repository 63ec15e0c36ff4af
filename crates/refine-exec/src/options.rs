//! How a build runs: actions at once, cores per action, keep-going, cancellation, the
//! sandbox helper, the remote store, the remote executor and sandbox debugging.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use refine_store::remote::Remote;

#[derive(Clone)]
pub struct BuildOptions {
    /// Actions run at once.
    pub jobs: usize,
    /// Compile jobs one action may run (`REFINE_JOBS`, `make -j`): like Nix's `--cores`, every
    /// action gets all cores by default, because most builds are one long action at a time.
    pub cores: usize,
    pub keep_going: bool,
    /// Stops the build (from a signal handler's thread): running sandboxes are killed.
    pub cancel: Cancel,
    /// The helper executable for sandboxes (default: this executable).
    pub sandbox_helper: Option<PathBuf>,
    /// A shared cache behind the local store.
    pub remote: Option<Arc<dyn Remote>>,
    /// Signs the provenance of every artifact stored (docs/security.md).
    pub signer: Option<Arc<refine_attest::SigningKey>>,
    /// Keep each sandboxed action's folder here, with a `replay.sh` that re-runs the action
    /// by hand (like Bazel's `--sandbox_debug`).
    pub sandbox_debug: Option<PathBuf>,
    /// Run sandboxed actions on a Remote Execution API farm instead of here
    /// (docs/remote-execution.md). Never part of a key.
    pub executor: Option<Arc<refine_reapi::Executor>>,
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            jobs: available_cores(),
            cores: available_cores(),
            keep_going: false,
            cancel: Cancel::default(),
            sandbox_helper: None,
            sandbox_debug: None,
            signer: None,
            remote: None,
            executor: None,
        }
    }
}

type Waker = Box<dyn Fn() + Send + Sync>;

/// A request to stop, shared by clones: [`Cancel::cancel`] sets it and wakes every build
/// waiting on it at once (a build loop blocks on its channel; it is not polling a flag).
///
/// A signal handler may not do that much; a thread that waits for the signals and calls
/// `cancel` (such as `signal_hook::iterator::Signals`) can.
#[derive(Clone, Default)]
pub struct Cancel {
    inner: Arc<CancelInner>,
}

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    next_waker: AtomicU64,
    wakers: Mutex<Vec<(u64, Waker)>>,
}

impl Cancel {
    /// Asks every build using this to stop.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        for (_, wake) in self.wakers().iter() {
            wake();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Calls `wake` on [`Cancel::cancel`] until the guard is dropped. A cancel that came
    /// before is not replayed: check [`Cancel::is_cancelled`] after registering.
    pub fn on_cancel(&self, wake: impl Fn() + Send + Sync + 'static) -> OnCancel {
        let id = self.inner.next_waker.fetch_add(1, Ordering::SeqCst);
        self.wakers().push((id, Box::new(wake)));
        OnCancel {
            cancel: self.clone(),
            id,
        }
    }

    fn wakers(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Waker)>> {
        self.inner
            .wakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel")
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// Unregisters a waker of [`Cancel::on_cancel`] when dropped.
pub struct OnCancel {
    cancel: Cancel,
    id: u64,
}

impl Drop for OnCancel {
    fn drop(&mut self) {
        self.cancel.wakers().retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_wakes_every_registered_waiter_until_dropped() {
        let cancel = Cancel::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let tx2 = tx.clone();
        let first = cancel.on_cancel(move || tx.send(1).unwrap());
        let second = cancel.clone().on_cancel(move || tx2.send(2).unwrap());
        drop(second);
        assert!(!cancel.is_cancelled());
        // From another thread, as a signal-waiting thread would.
        let c = cancel.clone();
        std::thread::spawn(move || c.cancel()).join().unwrap();
        assert_eq!(rx.recv().unwrap(), 1);
        assert!(rx.try_recv().is_err(), "the dropped waiter was not called");
        assert!(cancel.is_cancelled());
        drop(first);
        assert!(cancel.wakers().is_empty());
    }
}
