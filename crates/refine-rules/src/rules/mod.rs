//! The rule language: `workspace.kdl`, `rules/**/*.kdl` and `catalog/*.kdl`, read into typed
//! targets. The grammar is documented in `docs/rules.md`.

mod cache;
mod catalog;
mod fast_kdl;
mod kinds;
mod load;
mod lock;
pub mod model;
mod platforms;
mod reader;
mod recipe;
mod repair;
pub mod request;
mod source;
mod toolchain;
mod workspace_file;

pub use catalog::{glob_match, normalize};
pub use kinds::py_suffix;
pub use load::{
    LoadedRequest, Workspace, find_root, parse_kdl, parse_kdl_formatted, workspace_files,
};
pub use lock::{
    LockCheck, LockEntry, LockState, check_locks, lock_inputs, lock_path, read_lock_file,
    render_lock,
};
pub use model::*;
pub use repair::inline_rule_name;
