//! The one tokio runtime of the process. refine's engine is synchronous (rayon workers, the
//! CLI); the async clients it uses (`oci-client`, `reqwest`, `object_store`) run here, and
//! callers block on them with [`block_on`]. It is built on first use, so that a build that
//! never talks to the network starts no threads, and lives as long as the process: connection
//! pools are tied to the runtime that made them, and one runtime lets every client keep its
//! pool.
//!
//! [`block_on`] must not be called from inside the runtime (tokio refuses to nest): nothing in
//! refine runs futures except through it.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

/// Worker threads: the work is waiting on sockets, and the machines have few cores.
const WORKERS: usize = 2;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The runtime could not be started.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("Cannot start refine's network runtime: {source}")]
#[diagnostic(
    code(refine::oci::runtime),
    help("Check the process's limit on threads (`ulimit -u`)")
)]
pub struct RuntimeError {
    #[source]
    source: std::io::Error,
}

/// The shared runtime, built on first use.
pub fn runtime() -> Result<&'static Runtime, RuntimeError> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let built = Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .thread_name("refine-net")
        .enable_all()
        .build()
        .map_err(|source| RuntimeError { source })?;
    // Two first callers may race: one runtime wins, the other is dropped unused.
    Ok(RUNTIME.get_or_init(|| built))
}

/// Runs `future` to completion on the shared runtime, blocking this thread.
pub fn block_on<F: Future>(future: F) -> Result<F::Output, RuntimeError> {
    Ok(runtime()?.block_on(future))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_runtime_for_every_caller() {
        let a = runtime().unwrap() as *const Runtime;
        let b = std::thread::spawn(|| runtime().unwrap() as *const Runtime as usize)
            .join()
            .unwrap();
        assert_eq!(a as usize, b);
        assert_eq!(block_on(async { 6 * 7 }).unwrap(), 42);
    }
}
