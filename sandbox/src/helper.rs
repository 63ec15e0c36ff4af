//! The re-executed, single-threaded helper process that sets up namespaces.

/// If this process was started as the sandbox helper, runs it and returns its exit code.
pub fn run_if_helper() -> Option<u8> {
    None
}
