//! refine-sandbox: runs one action in fresh Linux namespaces (user, mount, PID, network, IPC,
//! UTS) from a single-threaded helper. It depends on nothing of the engine.
pub mod helper;
