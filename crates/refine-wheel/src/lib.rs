//! refine-wheel: what a built wheel really needs from the system that installs it, judged
//! against the manylinux policies (see `docs/policy.md`).
//!
//! A wheel (PEP 427: a zip archive) is read with the `zip` crate; every ELF file in it is
//! parsed with `goblin` for its architecture, its `DT_NEEDED` libraries and the symbol
//! versions it requires (`.gnu.version_r`: `GLIBC_2.17`, `GLIBCXX_3.4.19`, `CXXABI_1.3.7`,
//! `GCC_4.7.0`, …). [`judge`] checks them against the manylinux policies of PEP 600
//! (`manylinux_2_17`, `manylinux_2_28`, …, with the PEP 599 legacy alias `manylinux2014`),
//! whose data is auditwheel's own policy file, embedded, and returns a [`Verdict`]: the lowest
//! policy every ELF file meets, and for each policy it fails, the symbols and libraries (and
//! the files that need them) that break it.
//!
//! [`retag`] rewrites a wheel with another platform tag (file name, `WHEEL`, `RECORD`),
//! deterministically: the executor tags every repaired wheel with the lowest policy it meets.
//!
//! Uses refine-digest (sha256) and no other refine crate: a leaf that the executor (the
//! repair action's check) and the engine build on.

mod archive;
mod elf;
mod error;
mod policy;
mod retag;
mod verdict;

pub use archive::{Wheel, read_wheel};
pub use elf::{Arch, ElfFile, Requirement, version_max};
pub use error::WheelError;
pub use policy::{Breach, POLICY_DATA, Policy, policies_for};
pub use retag::{
    platform_tag_of, record_line, retag, retag_archive, retag_record, retag_wheel_metadata,
    retagged_name,
};
pub use verdict::{PolicyFailure, Verdict, judge, judge_file};
