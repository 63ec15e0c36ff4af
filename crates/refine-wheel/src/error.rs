//! The errors of reading and judging a wheel: what went wrong, on which file, and what to do.

use std::path::PathBuf;

use crate::policy::{Breach, list_breaches};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum WheelError {
    #[error("Cannot open wheel `{path}`")]
    #[diagnostic(
        code(refine::wheel::open),
        help("Check that the path names a `.whl` file you can read")
    )]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("`{path}` is not a readable wheel: its zip directory is damaged")]
    #[diagnostic(
        code(refine::wheel::zip),
        help(
            "A wheel is a zip archive (PEP 427): download or build it again (`unzip -l` shows the damage)"
        )
    )]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },

    #[error("Cannot read `{member}` in wheel `{path}`")]
    #[diagnostic(
        code(refine::wheel::member),
        help("The wheel is truncated or corrupt: download or build it again")
    )]
    Member {
        path: PathBuf,
        member: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{member}` in wheel `{path}` starts like an ELF file but cannot be parsed")]
    #[diagnostic(
        code(refine::wheel::elf),
        help("The ELF file is truncated or corrupt: rebuild the wheel")
    )]
    Elf {
        path: PathBuf,
        member: String,
        #[source]
        source: goblin::error::Error,
    },

    #[error(
        "`{member}` in wheel `{path}` is built for ELF machine {machine}, which refine does not know"
    )]
    #[diagnostic(
        code(refine::wheel::machine),
        help("refine knows s390x, x86_64, i686, aarch64, ppc64, ppc64le and riscv64 ELF files")
    )]
    UnknownMachine {
        path: PathBuf,
        member: String,
        machine: u16,
    },

    #[error(
        "Wheel `{path}` mixes architectures: `{first}` is {first_arch}, `{second}` is {second_arch}"
    )]
    #[diagnostic(
        code(refine::wheel::mixed),
        help("A manylinux wheel is for one architecture: build it again for one platform")
    )]
    MixedArchitectures {
        path: PathBuf,
        first: String,
        first_arch: crate::Arch,
        second: String,
        second_arch: crate::Arch,
    },

    #[error("refine has no manylinux policies for {arch}")]
    #[diagnostic(
        code(refine::wheel::no_policies),
        help("The embedded policies (from auditwheel 6.8.0) cover s390x and x86_64")
    )]
    NoPolicies { arch: crate::Arch },

    #[error("Unknown policy `{name}`")]
    #[diagnostic(code(refine::wheel::unknown_policy), help("Known policies: {known}"))]
    UnknownPolicy { name: String, known: String },

    #[error("Policy `{policy}` is for {policy_arch}, but wheel `{path}` is {arch}")]
    #[diagnostic(
        code(refine::wheel::policy_arch),
        help(
            "Name the policy without an architecture (`{policy}` minus its `_{policy_arch}`) or with the wheel's"
        )
    )]
    PolicyArch {
        path: PathBuf,
        policy: String,
        policy_arch: crate::Arch,
        arch: crate::Arch,
    },

    #[error("`{path}` is not named like a wheel (`name-version-python-abi-platform.whl`)")]
    #[diagnostic(
        code(refine::wheel::name),
        help("A wheel's file name carries its tags (PEP 427): keep the name the build gave it")
    )]
    NotAWheelName { path: PathBuf },

    #[error("Wheel `{path}` has no `*.dist-info/WHEEL` (or its `RECORD` does not list it)")]
    #[diagnostic(
        code(refine::wheel::metadata),
        help("A wheel carries its tags in `*.dist-info/WHEEL` (PEP 427): build it again")
    )]
    NoMetadata { path: PathBuf },

    #[error("Cannot write `{path}`")]
    #[diagnostic(
        code(refine::wheel::write),
        help("Check that the folder exists, is writable and has space")
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("Cannot rewrite wheel `{path}` with its new tags")]
    #[diagnostic(
        code(refine::wheel::rewrite),
        help(
            "Check the space left where the wheel is written; if there is room, the wheel is corrupt: build it again"
        )
    )]
    Rewrite {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },

    #[error("Wheel `{path}` exceeds `{policy}`:\n{}", list_breaches(.breaches))]
    #[diagnostic(code(refine::wheel::exceeds), help("{advice}"))]
    Exceeds {
        path: PathBuf,
        policy: String,
        breaches: Vec<Breach>,
        advice: String,
    },
}
