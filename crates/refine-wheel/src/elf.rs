//! One ELF file of a wheel: its architecture, the libraries it names (`DT_NEEDED`) and the
//! symbol versions it requires of them (`.gnu.version_r`), read with goblin.

use std::collections::BTreeMap;
use std::fmt;

use goblin::elf::Elf;
use goblin::elf::header::{EM_386, EM_AARCH64, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64};
use serde::Serialize;

/// The symbol-version prefixes whose maxima a scan reports: the C library, the C++ library
/// and its ABI, and the GCC runtime. These are what set a wheel's manylinux floor.
pub const REPORTED_PREFIXES: [&str; 4] = ["GLIBC", "GLIBCXX", "CXXABI", "GCC"];

/// An architecture, named as in wheel platform tags (`manylinux_2_17_s390x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    S390x,
    X86_64,
    I686,
    Aarch64,
    Ppc64,
    Ppc64le,
    Riscv64,
}

impl Arch {
    pub const ALL: [Arch; 7] = [
        Arch::S390x,
        Arch::X86_64,
        Arch::I686,
        Arch::Aarch64,
        Arch::Ppc64,
        Arch::Ppc64le,
        Arch::Riscv64,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Arch::S390x => "s390x",
            Arch::X86_64 => "x86_64",
            Arch::I686 => "i686",
            Arch::Aarch64 => "aarch64",
            Arch::Ppc64 => "ppc64",
            Arch::Ppc64le => "ppc64le",
            Arch::Riscv64 => "riscv64",
        }
    }

    /// The architecture of an ELF header's machine field; `None` for machines no manylinux
    /// tag names (31-bit s390 shares `EM_S390` with s390x and is told apart by its class).
    fn from_elf(elf: &Elf<'_>) -> Option<Arch> {
        match elf.header.e_machine {
            EM_S390 if elf.is_64 => Some(Arch::S390x),
            EM_X86_64 => Some(Arch::X86_64),
            EM_386 => Some(Arch::I686),
            EM_AARCH64 => Some(Arch::Aarch64),
            EM_PPC64 if elf.little_endian => Some(Arch::Ppc64le),
            EM_PPC64 => Some(Arch::Ppc64),
            EM_RISCV if elf.is_64 => Some(Arch::Riscv64),
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One symbol version an ELF file requires of a library: `GLIBC_2.17` of `libc.so.6`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Requirement {
    pub library: String,
    pub version: String,
}

impl Requirement {
    /// The family a version belongs to, as auditwheel splits it: up to the first `_`
    /// (`GLIBCXX_3.4.19` → `GLIBCXX`, `GLIBC_PRIVATE` → `GLIBC`).
    pub fn prefix(&self) -> &str {
        prefix_of(&self.version)
    }
}

pub(crate) fn prefix_of(version: &str) -> &str {
    version
        .split_once('_')
        .map_or(version, |(prefix, _)| prefix)
}

/// What one ELF file of a wheel needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElfFile {
    /// The path inside the wheel.
    pub path: String,
    pub arch: Arch,
    /// `DT_NEEDED`, in the file's order.
    pub needed: Vec<String>,
    /// Every required symbol version, sorted.
    pub requires: Vec<Requirement>,
    /// The highest numeric version required per reported prefix (`GLIBC` → `2.17`).
    pub max_versions: BTreeMap<String, String>,
}

/// Why an ELF file could not be read; the caller names the wheel.
pub(crate) enum ElfProblem {
    Parse(goblin::error::Error),
    UnknownMachine(u16),
}

impl ElfFile {
    /// Parses `bytes`, the ELF file at `path` inside a wheel.
    pub(crate) fn parse(path: &str, bytes: &[u8]) -> Result<ElfFile, ElfProblem> {
        let elf = Elf::parse(bytes).map_err(ElfProblem::Parse)?;
        let arch = Arch::from_elf(&elf).ok_or(ElfProblem::UnknownMachine(elf.header.e_machine))?;
        let requires = requirements(&elf);
        Ok(ElfFile {
            path: path.to_owned(),
            arch,
            needed: elf.libraries.iter().map(|&l| l.to_owned()).collect(),
            max_versions: max_versions(&requires),
            requires,
        })
    }

    /// The file name alone (what another file's `DT_NEEDED` names it by).
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

fn requirements(elf: &Elf<'_>) -> Vec<Requirement> {
    let mut out = Vec::new();
    if let Some(verneed) = &elf.verneed {
        for need in verneed {
            let library = elf.dynstrtab.get_at(need.vn_file).unwrap_or_default();
            for aux in &need {
                if let Some(version) = elf.dynstrtab.get_at(aux.vna_name) {
                    out.push(Requirement {
                        library: library.to_owned(),
                        version: version.to_owned(),
                    });
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn max_versions(requires: &[Requirement]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for prefix in REPORTED_PREFIXES {
        let versions = requires
            .iter()
            .filter(|r| r.prefix() == prefix)
            .map(|r| r.version.as_str());
        if let Some(max) = version_max(versions) {
            out.insert(
                prefix.to_owned(),
                max.split_once('_').map_or(max, |(_, v)| v).to_owned(),
            );
        }
    }
    out
}

/// The highest of numeric symbol versions (`GLIBC_2.17` > `GLIBC_2.5`), compared number by
/// number; versions that are not numbers after the prefix (`GLIBC_PRIVATE`,
/// `GLIBCXX_LDBL_3.4`) are left out.
pub fn version_max<'a>(versions: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    versions
        .filter_map(|v| numeric(v).map(|n| (n, v)))
        .max()
        .map(|(_, v)| v)
}

fn numeric(version: &str) -> Option<Vec<u32>> {
    let (_, number) = version.split_once('_')?;
    number.split('.').map(|part| part.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number_not_text() {
        let versions = ["GLIBC_2.5", "GLIBC_2.17", "GLIBC_2.2.5", "GLIBC_PRIVATE"];
        assert_eq!(version_max(versions.into_iter()), Some("GLIBC_2.17"));
    }

    #[test]
    fn prefixes_split_at_the_first_underscore() {
        assert_eq!(prefix_of("GLIBCXX_LDBL_3.4"), "GLIBCXX");
        assert_eq!(prefix_of("GLIBC_PRIVATE"), "GLIBC");
        assert_eq!(prefix_of("Base"), "Base");
    }
}
