//! The verdict on a wheel: the lowest manylinux policy all its ELF files meet, and what
//! breaks each policy it fails; and the check of a wheel against a promised policy.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::archive::{Wheel, read_wheel};
use crate::elf::{Arch, ElfFile};
use crate::error::WheelError;
use crate::policy::{Breach, Policy, arch_suffix, find_policy, policies_for};

/// What a wheel's ELF files need, judged against every policy of their architecture.
#[derive(Debug, Serialize)]
pub struct Verdict {
    pub wheel: PathBuf,
    /// `None` for a wheel without ELF files (no manylinux policy applies).
    pub arch: Option<Arch>,
    pub files: Vec<ElfFile>,
    /// The lowest policy met; `None` if the wheel meets none (or has no ELF files).
    pub lowest: Option<Policy>,
    /// Every policy not met, lowest glibc first, with what breaks it.
    pub failures: Vec<PolicyFailure>,
}

#[derive(Debug, Serialize)]
pub struct PolicyFailure {
    pub policy: Policy,
    pub breaches: Vec<Breach>,
}

/// Reads the wheel at `path` and judges it.
pub fn judge_file(path: &Path) -> Result<Verdict, WheelError> {
    judge(read_wheel(path)?)
}

/// Judges a wheel's ELF files against every policy of their (one) architecture.
pub fn judge(wheel: Wheel) -> Result<Verdict, WheelError> {
    let arch = common_arch(&wheel)?;
    let mut lowest = None;
    let mut failures = Vec::new();
    if let Some(arch) = arch {
        let policies = policies_for(arch);
        if policies.is_empty() {
            return Err(WheelError::NoPolicies { arch });
        }
        for policy in policies {
            let breaches = policy.breaches(&wheel.elf_files);
            if !breaches.is_empty() {
                failures.push(PolicyFailure { policy, breaches });
            } else if lowest.is_none() {
                lowest = Some(policy);
            }
        }
    }
    Ok(Verdict {
        wheel: wheel.path,
        arch,
        files: wheel.elf_files,
        lowest,
        failures,
    })
}

/// The one architecture of all ELF files; an error names two files that differ.
fn common_arch(wheel: &Wheel) -> Result<Option<Arch>, WheelError> {
    let Some(first) = wheel.elf_files.first() else {
        return Ok(None);
    };
    match wheel.elf_files.iter().find(|f| f.arch != first.arch) {
        None => Ok(Some(first.arch)),
        Some(other) => Err(WheelError::MixedArchitectures {
            path: wheel.path.clone(),
            first: first.path.clone(),
            first_arch: first.arch,
            second: other.path.clone(),
            second_arch: other.arch,
        }),
    }
}

impl Verdict {
    /// Whether the wheel meets the policy `name` (`manylinux_2_28`, `manylinux2014`, either
    /// with `_<arch>`); an error names every breach and what to do. A wheel without ELF files
    /// meets every policy.
    pub fn check(&self, name: &str) -> Result<(), WheelError> {
        let Some(arch) = self.arch else {
            return Ok(());
        };
        if let Some(policy_arch) = arch_suffix(name).filter(|a| *a != arch) {
            return Err(WheelError::PolicyArch {
                path: self.wheel.clone(),
                policy: name.to_owned(),
                policy_arch,
                arch,
            });
        }
        let policy = find_policy(name, arch)?;
        let Some(failure) = self.failures.iter().find(|f| f.policy == policy) else {
            return Ok(());
        };
        Err(WheelError::Exceeds {
            path: self.wheel.clone(),
            policy: policy.platform_tag(),
            breaches: failure.breaches.clone(),
            advice: self.advice(&failure.breaches),
        })
    }

    /// What to do about `breaches`: lower the build's floor, ship the libraries, or promise
    /// less.
    fn advice(&self, breaches: &[Breach]) -> String {
        let mut steps = Vec::new();
        if breaches.iter().any(|b| b.prefix().is_some()) {
            steps.push(
                "build against an older glibc (a toolchain whose sysroot, libstdc++ and libgcc \
                 have a lower floor: they decide GLIBC, GLIBCXX, CXXABI and GCC)"
                    .to_owned(),
            );
        }
        if breaches.iter().any(|b| b.prefix().is_none()) {
            steps.push(
                "ship the libraries the policy does not allow inside the wheel (repair grafts them)"
                    .to_owned(),
            );
        }
        match &self.lowest {
            Some(lowest) => steps.push(format!(
                "raise the policy to `{}`, the lowest this wheel meets",
                lowest.platform_tag()
            )),
            None => steps.push("no manylinux policy accepts this wheel as it is".to_owned()),
        }
        let mut advice = steps.join(", or ");
        advice[..1].make_ascii_uppercase();
        advice
    }
}
