//! The manylinux policies refine judges wheels against: for s390x and x86_64, each policy's
//! allowed symbol versions and allowed `DT_NEEDED` libraries.
//!
//! Origin: auditwheel 6.8.0 (PyPI wheel `auditwheel-6.8.0-py3-none-any.whl`),
//! `auditwheel/policy/manylinux-policy.json`, embedded as `manylinux-policy.json` with only
//! what refine uses: the `manylinux_*` policies, their `s390x` and `x86_64` symbol versions,
//! aliases, priority and library allow list (the `linux` catch-all, other architectures and
//! the per-library blacklists are left out). Regenerate it from a newer auditwheel with the
//! same filter rather than editing by hand: the lists are sets of exact version names
//! (auditwheel compares by membership, not by order), so a harmless-looking edit can change
//! a verdict.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

use super::{ArchPolicy, PolicyData, SymbolSet};
use crate::Arch;

/// Where the embedded policy data comes from: the auditwheel release whose file it is.
/// Repair keys name it (`refine_plan::key::REPAIR_CHECK`): change both together.
pub const POLICY_DATA: &str = "auditwheel-6.8.0";

/// auditwheel's shape of one policy (the fields refine reads).
#[derive(Deserialize)]
struct RawPolicy {
    name: String,
    aliases: Vec<String>,
    priority: u32,
    /// arch → prefix (`GLIBC`) → versions without the prefix (`2.17`).
    symbol_versions: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    lib_whitelist: Vec<String>,
}

/// Every manylinux policy, in the file's order (auditwheel's priority, highest first).
pub(super) static POLICIES: LazyLock<Vec<PolicyData>> = LazyLock::new(|| {
    // The file is part of the source, not input: a broken copy fails every test of this crate.
    let raw: Vec<RawPolicy> = serde_json::from_str(include_str!("manylinux-policy.json"))
        .expect("the embedded manylinux-policy.json parses");
    raw.into_iter().map(policy_data).collect()
});

fn policy_data(raw: RawPolicy) -> PolicyData {
    let archs = raw
        .symbol_versions
        .into_iter()
        .filter_map(|(arch, sets)| {
            let arch = Arch::ALL.into_iter().find(|a| a.as_str() == arch)?;
            let symbols = sets
                .into_iter()
                .map(|(prefix, versions)| SymbolSet { prefix, versions })
                .collect();
            Some(ArchPolicy { arch, symbols })
        })
        .collect();
    PolicyData {
        name: raw.name,
        alias: raw.aliases.into_iter().next(),
        priority: raw.priority,
        libraries: raw.lib_whitelist,
        archs,
    }
}
