//! The process's allocator: mimalloc for commands that work, glibc's malloc and no transparent
//! huge pages for the few that live milliseconds (`refine sandbox …` and the re-executed sandbox
//! helper), chosen before the first allocation.
//!
//! Why two: a build allocates per node (labels, keys, digests as text), and mimalloc's
//! thread-local free lists and huge pages beat glibc's malloc there (a no-op build over 10,000
//! nodes is slower without its huge pages). But mimalloc's start costs a short command dearly:
//! `perf record` of `refine sandbox run -- /bin/true` put 13 % of its samples in the kernel
//! clearing three fresh 2 MiB pages and about 10 % more in mimalloc setting up and, at exit,
//! purging its arena. With glibc's malloc and `PR_SET_THP_DISABLE` the same command used about
//! 0.8x the CPU time (README's benchmarks: benches/sandbox.sh).
//!
//! Rust's runtime allocates before `main`, so the choice is made earlier, in a constructor in
//! `.init_array`: glibc calls those with `argc`, `argv` and `envp` before any Rust code runs.
//! Neither allocator starts a thread (the sandbox helper must stay single-threaded).
//! `PR_SET_THP_DISABLE` is inherited by children and across `execve`; the sandbox helper sets
//! it for every action anyway, and it changes no output.

// Besides the sandbox crate, this is the one place with `unsafe`: a global allocator is an
// `unsafe impl`, and a constructor must be placed in `.init_array` by hand and read the raw
// `argv` glibc hands it.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::{CStr, c_char, c_int};
use std::sync::atomic::{AtomicBool, Ordering};

use mimalloc::MiMalloc;

/// The global allocator: mimalloc, or glibc's for a short-lived command.
pub struct Allocator;

/// Set by the constructor before the first allocation and never changed afterwards, so every
/// block is freed by the allocator that made it.
static SHORT_LIVED: AtomicBool = AtomicBool::new(false);

/// Calls `$method` on whichever allocator this process uses.
macro_rules! chosen {
    ($method:ident($($arg:expr),*)) => {
        if SHORT_LIVED.load(Ordering::Relaxed) {
            // SAFETY: the caller upholds `GlobalAlloc`'s contract, which we pass on unchanged.
            unsafe { System.$method($($arg),*) }
        } else {
            // SAFETY: as above.
            unsafe { MiMalloc.$method($($arg),*) }
        }
    };
}

// SAFETY: both allocators implement `GlobalAlloc`, and a block always returns to the one that
// made it (see `SHORT_LIVED`).
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        chosen!(alloc(layout))
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        chosen!(alloc_zeroed(layout))
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        chosen!(dealloc(ptr, layout));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        chosen!(realloc(ptr, layout, new_size))
    }
}

/// glibc calls each `.init_array` entry with the process's arguments (an extension that musl's
/// dynamic loader also honours).
#[used]
#[unsafe(link_section = ".init_array")]
static BEFORE_MAIN: extern "C" fn(c_int, *const *const c_char, *const *const c_char) =
    choose_before_main;

extern "C" fn choose_before_main(
    argc: c_int,
    argv: *const *const c_char,
    _envp: *const *const c_char,
) {
    if argv.is_null() {
        return;
    }
    let args = (1..usize::try_from(argc).unwrap_or(0)).map_while(|i| {
        // SAFETY: glibc passes the `argc` entries of `argv`, each a NUL-terminated string that
        // lives as long as the process.
        let arg = unsafe { *argv.add(i) };
        (!arg.is_null()).then(|| unsafe { CStr::from_ptr(arg) }.to_bytes())
    });
    if is_short_lived(args) {
        // Failure (a kernel older than 3.15) only costs time.
        let _ = nix::sys::prctl::set_thp_disable(true);
        SHORT_LIVED.store(true, Ordering::Relaxed);
    }
}

/// `refine sandbox …` (a command's own arguments start after `--`), and the sandbox helper and
/// its probe when refine re-executes itself as them.
fn is_short_lived<'a>(args: impl IntoIterator<Item = &'a [u8]>) -> bool {
    args.into_iter().take_while(|arg| *arg != b"--").any(|arg| {
        arg == b"sandbox"
            || arg == refine_sandbox::HELPER_ARG.as_bytes()
            || arg == refine_sandbox::PROBE_ARG.as_bytes()
    })
}

#[cfg(test)]
mod tests {
    use super::is_short_lived;

    fn short(line: &str) -> bool {
        is_short_lived(line.split(' ').map(str::as_bytes))
    }

    #[test]
    fn only_the_sandbox_and_its_helper_are_short_lived() {
        assert!(short("sandbox run --root /r -- /bin/true"));
        assert!(short("-C ws sandbox run -- /bin/true"));
        assert!(short(refine_sandbox::HELPER_ARG));
        assert!(short(refine_sandbox::PROBE_ARG));
        assert!(!short("build //wheels:numpy-py312"));
        assert!(!short("build //sandbox:x"));
        assert!(!short("query //..."));
        assert!(!short("serve --listen 127.0.0.1:0"));
    }
}
