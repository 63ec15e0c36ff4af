//! A request and its lock as targets: each package built from its sdist becomes a wheel
//! target and its repair, per Python version and platform, named like a matrix rule's
//! variants (`lxml-py311`, `lxml-x86_64-py311`, `lxml-repaired-py311`).

use crate::label::Label;

use super::super::kinds::{py_suffix, with_default_requires};
use super::super::model::*;
use super::super::reader::relabel;
use super::*;

/// `-<platform>` for every platform but the workspace's primary one.
pub fn platform_suffix(ws: &WorkspaceConfig, platform: &str) -> String {
    if ws.primary_platform() == Some(platform) {
        String::new()
    } else {
        format!("-{platform}")
    }
}

/// The name of a request's wheel target for `package` (`lxml-x86_64-py311`).
pub fn wheel_target_name(
    ws: &WorkspaceConfig,
    package: &str,
    platform: &str,
    python: &Version,
) -> String {
    variant(ws, package, platform, python)
}

/// `<rule>[-<platform>]-pyXY`, as a matrix rule's variants are named.
fn variant(ws: &WorkspaceConfig, rule: &str, platform: &str, python: &Version) -> String {
    format!(
        "{rule}{}-{}",
        platform_suffix(ws, platform),
        py_suffix(python)
    )
}

/// The name of a request's repair target for `package` (`lxml-repaired-x86_64-py311`).
pub fn repair_target_name(
    ws: &WorkspaceConfig,
    package: &str,
    platform: &str,
    python: &Version,
) -> String {
    variant(ws, &format!("{package}-repaired"), platform, python)
}

fn merged(o: Option<&Override>, python: &Version) -> OverrideFields {
    let mut out = OverrideFields::default();
    if let Some(o) = o {
        out = o.fields.clone();
        for (v, f) in &o.per_python {
            if v == python {
                out.packs.extend(f.packs.iter().cloned());
                out.env.extend(f.env.clone());
                out.config_settings
                    .extend(f.config_settings.iter().cloned());
            }
        }
    }
    out
}

/// The name of a request's probe target for `package` (`lxml-probe-x86_64-py311`).
pub fn probe_target_name(
    ws: &WorkspaceConfig,
    package: &str,
    platform: &str,
    python: &Version,
) -> String {
    variant(ws, &format!("{package}-probe"), platform, python)
}

/// The wheel and repair targets of `request` as `lock` pins it; with `probes`, each wheel's
/// probe too (`refine request lock` asks them what their backends need, docs/requests.md).
pub fn request_targets(
    request: &Request,
    lock: &RequestLock,
    ws: &WorkspaceConfig,
    probes: bool,
) -> Vec<Target> {
    let package = request_package(&request.name);
    let mut out = Vec::new();
    let (Some(frontend), Some(tool)) = (&ws.defaults.frontend, &ws.defaults.repair_tool) else {
        return out;
    };
    let allowed: Option<Vec<Label>> = (!request.allowed_packs.is_empty()).then(|| {
        request
            .allowed_packs
            .iter()
            .map(|p| p.label.clone())
            .collect()
    });
    for res in &lock.resolutions {
        let Some(platform) = ws.platform(&res.platform) else {
            continue;
        };
        for p in res.packages.iter().filter(|p| p.take == Take::Sdist) {
            let Some(sdist) = &p.sdist else { continue };
            let over = merged(request.override_for(&p.name), &res.python);
            let requires = with_default_requires(p.build_requires.clone(), &ws.defaults.requires);
            let name = wheel_target_name(ws, &p.name, &res.platform, &res.python);
            let at = p.at;
            let wheel = WheelSpec {
                source: SourceSpec::Pypi {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    sha256: sdist.sha256.clone(),
                },
                python: res.python.clone(),
                runtime: request.runtime.clone(),
                packs: over.packs,
                backend: p.backend.as_deref().map(backend_name),
                config_settings: over.config_settings,
                env: over.env,
                requires,
                frontend: frontend.clone(),
                toolchain: platform.toolchain.clone(),
                allowed_packs: allowed.clone(),
                built_requires: p
                    .built_requires
                    .iter()
                    .map(|(dep, _)| LabelRef {
                        label: Label {
                            package: package.clone(),
                            name: repair_target_name(ws, dep, &res.platform, &res.python),
                        },
                        at: p.at,
                        follow_matrix: false,
                    })
                    .collect(),
                probe: false,
            };
            // Every target of the request is a variant for the resolution's platform.
            let target = |name: String, rule: String, spec: Spec| Target {
                label: Label {
                    package: package.clone(),
                    name,
                },
                rule,
                at,
                spec,
                platform: Some(res.platform.clone()),
                matrix: true,
            };
            if probes {
                out.push(target(
                    probe_target_name(ws, &p.name, &res.platform, &res.python),
                    format!("{}-probe", p.name),
                    Spec::Wheel(WheelSpec {
                        probe: true,
                        ..wheel.clone()
                    }),
                ));
            }
            let wheel_label = Label {
                package: package.clone(),
                name: name.clone(),
            };
            let repair = RepairSpec {
                wheel: relabel(&request.runtime, wheel_label),
                policy: None,
                tool: tool.clone(),
                patchelf: ws.defaults.patchelf.clone(),
                requires: ws.defaults.requires.clone(),
                strip: false,
            };
            out.push(target(name, p.name.clone(), Spec::Wheel(wheel)));
            out.push(target(
                repair_target_name(ws, &p.name, &res.platform, &res.python),
                format!("{}-repaired", p.name),
                Spec::Repair(repair),
            ));
        }
    }
    out
}

/// The catalog matches backends by their module's first part (`mesonpy`, `setuptools`).
fn backend_name(backend: &str) -> String {
    backend
        .split(['.', ':'])
        .next()
        .unwrap_or(backend)
        .to_string()
}
