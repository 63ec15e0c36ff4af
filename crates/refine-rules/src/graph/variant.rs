//! Choosing the variant of a matrix rule that a reference means: the one for the referring
//! target's platform (or, when it names none, its base's architecture), then for its Python
//! version; and saying why none fits.

use uv_pep440::Version;

use crate::label::Label;
use crate::rules::{Workspace, py_suffix};

use super::TargetId;

/// What a reference is resolved for.
#[derive(Clone, Default)]
pub struct Ctx<'v> {
    pub platform: Option<String>,
    pub arch: Option<String>,
    pub python: Option<&'v Version>,
    /// The referring target, for messages.
    pub from: Option<&'v Label>,
}

/// Why no variant of a matrix rule fits a reference.
pub enum Miss {
    /// None for this platform, or (for a referrer that names no platform) this architecture.
    Platform {
        want: String,
        arch: bool,
        have: Vec<String>,
    },
    Python {
        want: Version,
        have: Vec<String>,
    },
    /// Several fit: the reference must name one.
    Ambiguous(Vec<TargetId>),
}

/// The variant of a matrix rule (`vs`, its variants) for `ctx`.
pub fn pick(ws: &Workspace, vs: &[TargetId], ctx: &Ctx<'_>) -> Result<TargetId, Miss> {
    let mut cands = vs.to_vec();
    if let Some(p) = platform_for(ws, vs, ctx)? {
        cands.retain(|&id| ws.targets[id].platform.as_deref() == Some(p.as_str()));
        if cands.is_empty() {
            return Err(Miss::Platform {
                want: p,
                arch: false,
                have: platforms_of(ws, vs),
            });
        }
    }
    if let Some(py) = ctx.python
        && cands.iter().any(|&id| python_suffix(ws, id).is_some())
    {
        let suffix = py_suffix(py);
        let fits: Vec<TargetId> = cands
            .iter()
            .copied()
            .filter(|&id| python_suffix(ws, id).as_ref() == Some(&suffix))
            .collect();
        if fits.is_empty() {
            return Err(Miss::Python {
                want: py.clone(),
                have: cands
                    .iter()
                    .filter_map(|&id| ws.targets[id].python())
                    .map(std::string::ToString::to_string)
                    .collect(),
            });
        }
        cands = fits;
    }
    match cands.as_slice() {
        [one] => Ok(*one),
        _ => Err(Miss::Ambiguous(cands)),
    }
}

/// `pyXY` of a variant: its wheel's Python version, or for a repair (which has none of its
/// own) the suffix every matrix variant's name ends with (`a-repaired-x86_64-py311`).
fn python_suffix(ws: &Workspace, id: TargetId) -> Option<String> {
    let t = &ws.targets[id];
    match t.python() {
        Some(py) => Some(py_suffix(py)),
        None if t.matrix => t
            .label
            .name
            .rsplit_once('-')
            .map(|(_, last)| last)
            .filter(|last| {
                last.strip_prefix("py")
                    .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(str::to_string),
        None => None,
    }
}

/// The platforms a matrix rule's variants are built for, in order of first appearance.
fn platforms_of(ws: &Workspace, vs: &[TargetId]) -> Vec<String> {
    let mut have: Vec<String> = Vec::new();
    for p in vs.iter().filter_map(|&id| ws.targets[id].platform.as_ref()) {
        if !have.contains(p) {
            have.push(p.clone());
        }
    }
    have
}

/// The platform whose variants a reference means; `None` when the rule's variants are not
/// told apart by platform (one platform, or none named), or it cannot be told.
fn platform_for(ws: &Workspace, vs: &[TargetId], ctx: &Ctx<'_>) -> Result<Option<String>, Miss> {
    let have = platforms_of(ws, vs);
    if have.is_empty() {
        return Ok(None);
    }
    let primary = ws
        .config
        .primary_platform()
        .filter(|p| have.iter().any(|h| h == p))
        .map(str::to_string);
    Ok(match (&ctx.platform, &ctx.arch) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(arch)) => {
            let same: Vec<&String> = have
                .iter()
                .filter(|p| ws.config.platform(p).is_some_and(|p| &p.arch == arch))
                .collect();
            match same.as_slice() {
                [one] => Some((*one).clone()),
                [] => {
                    return Err(Miss::Platform {
                        want: arch.clone(),
                        arch: true,
                        have,
                    });
                }
                _ => primary.filter(|p| same.contains(&p)),
            }
        }
        (None, None) if have.len() == 1 => None,
        (None, None) => primary,
    })
}

impl Miss {
    /// The diagnostic's code, message, label and help, for a reference to `label` from
    /// `from`.
    pub fn describe(
        &self,
        ws: &Workspace,
        label: &Label,
        from: Option<&Label>,
    ) -> (&'static str, String, &'static str, String) {
        let needs = from
            .map(|f| format!("`{f}` needs it. "))
            .unwrap_or_default();
        match self {
            Miss::Platform {
                want,
                arch: false,
                have,
            } => (
                "no-variant",
                format!("`{label}` has no variant for platform `{want}`"),
                "no such platform",
                format!(
                    "{needs}`{label}` is built for {}: add `\"{want}\"` to its `platforms`, or drop `{want}` from this rule",
                    have.join(", ")
                ),
            ),
            Miss::Platform {
                want,
                arch: true,
                have,
            } => (
                "no-variant",
                format!("`{label}` has no variant for architecture `{want}`"),
                "no such architecture",
                format!(
                    "{needs}`{label}` is built for the platforms {}: give it a platform of architecture `{want}`, or name this rule's `platform` instead of its `base`",
                    have.join(", ")
                ),
            ),
            Miss::Python { want, have } => (
                "no-variant",
                format!("`{label}` has no variant for Python {want}"),
                "no such Python version",
                format!(
                    "It is built for Python {}; add `python \"{want}…\"` to it, or drop {want} from this rule",
                    have.join(", ")
                ),
            ),
            Miss::Ambiguous(vs) => {
                let names: Vec<String> = vs
                    .iter()
                    .map(|&id| ws.targets[id].label.to_string())
                    .collect();
                (
                    "ambiguous-label",
                    format!("`{label}` is a matrix rule; name one of its targets"),
                    "which variant?",
                    format!("Use one of: {}", names.join(", ")),
                )
            }
        }
    }
}
