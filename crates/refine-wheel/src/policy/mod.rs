//! The manylinux policies (PEP 600, with PEP 599's legacy aliases) for one architecture, and
//! the check of ELF files against one: symbol versions by membership in the policy's sets, as
//! auditwheel compares them, and `DT_NEEDED` libraries against its allow list.

mod data;

pub use data::POLICY_DATA;

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::elf::{Arch, ElfFile, prefix_of};
use crate::error::WheelError;

/// One policy's data, for every architecture it covers (`data.rs`).
pub(crate) struct PolicyData {
    name: String,
    alias: Option<String>,
    /// auditwheel's order: the higher, the older the glibc.
    priority: u32,
    libraries: Vec<String>,
    archs: Vec<ArchPolicy>,
}

pub(crate) struct ArchPolicy {
    arch: Arch,
    symbols: Vec<SymbolSet>,
}

/// The versions of one prefix a policy allows, without the prefix (`GLIBC` → `2.17`, …).
pub(crate) struct SymbolSet {
    prefix: String,
    versions: Vec<String>,
}

/// A manylinux policy for one architecture: `manylinux_2_17` for s390x.
#[derive(Clone, Copy)]
pub struct Policy {
    data: &'static PolicyData,
    arch: &'static ArchPolicy,
}

impl Policy {
    /// `manylinux_2_17`.
    pub fn name(&self) -> &'static str {
        self.data.name.as_str()
    }

    /// The PEP 599 legacy name, where there is one: `manylinux2014`.
    pub fn alias(&self) -> Option<&'static str> {
        self.data.alias.as_deref()
    }

    pub fn arch(&self) -> Arch {
        self.arch.arch
    }

    /// The platform tag a wheel meeting this policy carries, with the legacy alias after a
    /// dot where there is one: `manylinux_2_17_s390x.manylinux2014_s390x`.
    pub fn platform_tag(&self) -> String {
        let arch = self.arch();
        match self.alias() {
            Some(alias) => format!("{}_{arch}.{alias}_{arch}", self.name()),
            None => format!("{}_{arch}", self.name()),
        }
    }

    /// Whether `name` (`manylinux_2_17`, `manylinux2014`, either with `_<arch>`) names this.
    fn is_named(&self, name: &str) -> bool {
        let bare = name
            .strip_suffix(self.arch().as_str())
            .and_then(|rest| rest.strip_suffix('_'))
            .unwrap_or(name);
        bare == self.name() || Some(bare) == self.alias()
    }

    /// Everything in `files` this policy does not allow.
    pub fn breaches(&self, files: &[ElfFile]) -> Vec<Breach> {
        let shipped: BTreeSet<&str> = files.iter().map(ElfFile::file_name).collect();
        let mut out = Vec::new();
        for file in files {
            self.symbol_breaches(file, &mut out);
            self.library_breaches(file, &shipped, &mut out);
        }
        out
    }

    /// Versions of a prefix the policy names must be in its set; other prefixes (a
    /// grafted library's own, `OPENSSL_3.0`) are not the policy's business.
    fn symbol_breaches(&self, file: &ElfFile, out: &mut Vec<Breach>) {
        for req in &file.requires {
            let prefix = req.prefix();
            let Some(set) = self.arch.symbols.iter().find(|s| s.prefix == prefix) else {
                continue;
            };
            let version = req.version.get(prefix.len() + 1..).unwrap_or_default();
            if !set.versions.iter().any(|v| v == version) {
                out.push(Breach::Symbol {
                    file: file.path.clone(),
                    library: req.library.clone(),
                    version: req.version.clone(),
                });
            }
        }
    }

    /// A needed library must be on the allow list or shipped in the wheel (found through
    /// `RPATH` after repair); the dynamic loader is always there.
    fn library_breaches(&self, file: &ElfFile, shipped: &BTreeSet<&str>, out: &mut Vec<Breach>) {
        for library in &file.needed {
            let allowed = is_loader(library)
                || self.data.libraries.iter().any(|l| l == library)
                || shipped.contains(library.as_str());
            if !allowed {
                out.push(Breach::Library {
                    file: file.path.clone(),
                    library: library.clone(),
                });
            }
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.platform_tag())
    }
}

impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name() && self.arch() == other.arch()
    }
}

impl Serialize for Policy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Policy", 3)?;
        s.serialize_field("name", self.name())?;
        s.serialize_field("alias", &self.alias())?;
        s.serialize_field("platform_tag", &self.platform_tag())?;
        s.end()
    }
}

/// The loader's own names (`ld-linux-x86-64.so.2`, s390x's `ld64.so.1`), which auditwheel
/// also leaves out of the check.
fn is_loader(library: &str) -> bool {
    library.starts_with("ld-linux") || library == "ld64.so.1" || library == "ld64.so.2"
}

/// The policies for `arch`, lowest glibc first; empty where refine has no data.
pub fn policies_for(arch: Arch) -> Vec<Policy> {
    let all: &'static [PolicyData] = &data::POLICIES;
    let mut out: Vec<Policy> = all
        .iter()
        .filter_map(|data| {
            let arch = data.archs.iter().find(|a| a.arch == arch)?;
            Some(Policy { data, arch })
        })
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.data.priority));
    out
}

/// The policy for `arch` that `name` names, with or without its architecture suffix.
pub(crate) fn find_policy(name: &str, arch: Arch) -> Result<Policy, WheelError> {
    let known = policies_for(arch);
    if let Some(policy) = known.iter().find(|p| p.is_named(name)) {
        return Ok(*policy);
    }
    let known = known
        .iter()
        .map(|p| {
            p.alias()
                .map_or_else(|| p.name().to_owned(), |a| format!("{} ({a})", p.name()))
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(WheelError::UnknownPolicy {
        name: name.to_owned(),
        known: format!("{known}, each optionally followed by `_{arch}`"),
    })
}

/// The architecture a policy name ends in, if any (`manylinux_2_28_s390x` → s390x).
pub(crate) fn arch_suffix(name: &str) -> Option<Arch> {
    Arch::ALL.into_iter().find(|arch| {
        name.strip_suffix(arch.as_str())
            .is_some_and(|rest| rest.ends_with('_'))
    })
}

/// One thing in one ELF file that a policy does not allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Breach {
    /// A symbol version outside the policy's set: `GLIBC_2.34` of `libc.so.6`.
    Symbol {
        file: String,
        library: String,
        version: String,
    },
    /// A needed library that is neither allowed nor shipped in the wheel.
    Library { file: String, library: String },
}

impl Breach {
    pub fn file(&self) -> &str {
        match self {
            Breach::Symbol { file, .. } | Breach::Library { file, .. } => file,
        }
    }

    /// The symbol-version family broken (`GLIBC`), or `None` for a library.
    pub fn prefix(&self) -> Option<&str> {
        match self {
            Breach::Symbol { version, .. } => Some(prefix_of(version)),
            Breach::Library { .. } => None,
        }
    }
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Breach::Symbol {
                file,
                library,
                version,
            } => write!(f, "`{file}` requires `{version}` (of `{library}`)"),
            Breach::Library { file, library } => write!(
                f,
                "`{file}` needs `{library}`, which the policy does not allow and the wheel does not ship"
            ),
        }
    }
}

/// The breaches one per line, for an error message.
pub(crate) fn list_breaches(breaches: &[Breach]) -> String {
    breaches
        .iter()
        .map(|b| format!("  - {b}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_of(policy: &Policy, prefix: &str) -> String {
        let set = policy
            .arch
            .symbols
            .iter()
            .find(|s| s.prefix == prefix)
            .unwrap();
        let versions: Vec<String> = set
            .versions
            .iter()
            .map(|v| format!("{prefix}_{v}"))
            .collect();
        let max = crate::version_max(versions.iter().map(String::as_str)).unwrap();
        max[prefix.len() + 1..].to_owned()
    }

    /// The floors checked by hand against auditwheel's policy file (issue 12's facts).
    #[test]
    fn s390x_floors_match_auditwheel() {
        let expected = [
            ("manylinux_2_17", ["2.17", "3.4.19", "1.3.7", "4.7.0"]),
            ("manylinux_2_28", ["2.28", "3.4.24", "1.3.11", "7.0.0"]),
            ("manylinux_2_31", ["2.31", "3.4.28", "1.3.12", "7.0.0"]),
            ("manylinux_2_34", ["2.34", "3.4.29", "1.3.13", "7.0.0"]),
        ];
        for (name, maxima) in expected {
            let policy = find_policy(name, Arch::S390x).unwrap();
            let got: Vec<String> = ["GLIBC", "GLIBCXX", "CXXABI", "GCC"]
                .iter()
                .map(|prefix| max_of(&policy, prefix))
                .collect();
            assert_eq!(got, maxima, "{name}");
        }
    }

    #[test]
    fn policies_run_from_the_oldest_glibc_with_aliases() {
        let s390x: Vec<String> = policies_for(Arch::S390x)
            .iter()
            .map(Policy::platform_tag)
            .collect();
        assert_eq!(s390x[0], "manylinux_2_17_s390x.manylinux2014_s390x");
        for name in [
            "manylinux_2_28",
            "manylinux_2_31",
            "manylinux_2_34",
            "manylinux_2_35",
            "manylinux_2_36",
            "manylinux_2_39",
        ] {
            assert!(s390x.contains(&format!("{name}_s390x")), "{name} missing");
        }
        let x86 = policies_for(Arch::X86_64);
        assert_eq!(
            x86[0].platform_tag(),
            "manylinux_2_5_x86_64.manylinux1_x86_64"
        );
        assert!(
            policies_for(Arch::Riscv64)
                .iter()
                .all(|p| p.name() != "manylinux_2_17")
        );
    }

    #[test]
    fn names_resolve_with_or_without_arch_and_by_alias() {
        assert_eq!(
            find_policy("manylinux2014", Arch::S390x).unwrap().name(),
            "manylinux_2_17"
        );
        assert_eq!(
            find_policy("manylinux_2_28_s390x", Arch::S390x)
                .unwrap()
                .name(),
            "manylinux_2_28"
        );
        assert_eq!(arch_suffix("manylinux_2_28_x86_64"), Some(Arch::X86_64));
        assert_eq!(arch_suffix("manylinux2014"), None);
        let err = find_policy("manylinux_2_99", Arch::S390x).unwrap_err();
        assert!(
            matches!(err, WheelError::UnknownPolicy { ref known, .. } if known.contains("manylinux_2_17 (manylinux2014)"))
        );
    }
}
