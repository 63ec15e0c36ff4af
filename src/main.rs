//! The `refine` command line: a thin layer that parses arguments and calls the engine.
//!
//! Exit codes: 0 success, 1 a build or action failed, 2 bad input or usage.

// The CLI is the one place that writes to stdout and stderr (`[workspace.lints]` warns elsewhere).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod allocator;
mod cli;

// mimalloc, or glibc's malloc for the short-lived sandbox commands (see `allocator`).
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

use std::process::ExitCode;

fn main() -> ExitCode {
    // The sandbox helper must run before anything starts a thread: namespace setup is only
    // sound in a single-threaded process, so the re-executed binary branches off here.
    if let Some(code) = refine_sandbox::helper::run_if_helper() {
        return ExitCode::from(code);
    }
    cli::main()
}
