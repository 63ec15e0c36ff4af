//! Links the `refine` binary as a position-dependent executable on Linux.
//!
//! Why: a position-independent `refine` makes the dynamic loader apply about 51,000 relative
//! relocations at every start, which writes (and so copies) most of its 0.9 MB of relocated
//! read-only data: 366 page faults and 2.9 ms for `refine --version` here, against 151 and
//! 2.2 ms linked at a fixed address. Every command pays it, and short ones (`sandbox run`, a
//! no-op `build`) feel it. The cost is ASLR for the binary's own code and data (libraries and
//! stacks stay randomised); the objects stay position-independent, only the link changes.
//! Tests and libraries are untouched (`-bins`).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
