//! The platform axis of a rule: which workspace platforms it is built for (`platform`,
//! `platforms`, `base`, or the workspace's defaults), how its variants are named, and the
//! `on "PLATFORM" { … }` blocks that add fields for some platforms only.
//!
//! Naming: a variant is `<rule>[-<platform>][-pyXY]`. The platform suffix is left out for the
//! workspace's default platform, and for rules that are not a platform matrix (`platform`,
//! `base`, or the single default platform); docs/rules.md says why.

use kdl::KdlNode;

use super::model::*;
use super::reader::{FileReader, Spanned, rule_name};

/// Where one variant of a rule is built.
#[derive(Clone, Debug)]
pub struct Placement {
    /// The workspace platform, when the rule names one or takes the default.
    pub platform: Option<String>,
    /// The base: the platform's, or the rule's own `base`. `None` for a wheel that takes
    /// its platform from its runtime.
    pub base: Option<LabelRef>,
    /// The platform's toolchain: native compilers for the variant's actions.
    pub toolchain: Option<LabelRef>,
    /// `-x86_64` for a platform matrix's variant on a platform other than the default.
    pub suffix: String,
    /// Part of a platform matrix (several platforms, or `platforms` at all).
    pub matrix: bool,
}

/// The name of a variant: the rule's, its platform suffix, then its Python suffix.
pub fn variant_name(rule: &str, placement: &Placement, python: Option<&str>) -> String {
    match python {
        Some(py) => format!("{rule}{}-{py}", placement.suffix),
        None => format!("{rule}{}", placement.suffix),
    }
}

/// The rule's placements, one per platform it is built for. `wheel` rules may name no
/// platform at all: they are then built where their runtime is.
pub fn read_placements(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    ws: &WorkspaceConfig,
    kind: Kind,
) -> Option<Vec<Placement>> {
    r.unique_children(node, &["base", "platform", "platforms"]);
    let given: Vec<&KdlNode> = node
        .iter_children()
        .filter(|c| matches!(c.name().value(), "base" | "platform" | "platforms"))
        .collect();
    if let [first, second, ..] = given.as_slice()
        && first.name().value() != second.name().value()
    {
        r.error(
            "conflicting-fields",
            second.name().span(),
            format!(
                "`{}` gives both `{}` and `{}`",
                rule_name(node),
                first.name().value(),
                second.name().value()
            ),
            "one too many",
            "Keep `base` (a label), `platform` (one platform) or `platforms` (a platform matrix), not two of them".into(),
        );
        return None;
    }
    match given.first() {
        Some(b) if b.name().value() == "base" => {
            check_leaf(r, b);
            let text = r.one_arg(b)?;
            let base = r.label(&text, false)?;
            Some(vec![Placement {
                platform: None,
                base: Some(base),
                toolchain: None,
                suffix: String::new(),
                matrix: false,
            }])
        }
        Some(p) if p.name().value() == "platform" => {
            check_leaf(r, p);
            let text = r.one_arg(p)?;
            let platform = known_platform(r, ws, &text)?;
            Some(vec![single(platform)])
        }
        Some(list) => matrix_placements(r, ws, list),
        None => default_placements(r, node, ws, kind),
    }
}

/// `platforms "s390x" "x86_64"`: one placement per platform, each declared and listed once.
fn matrix_placements(
    r: &mut FileReader<'_>,
    ws: &WorkspaceConfig,
    list: &KdlNode,
) -> Option<Vec<Placement>> {
    check_leaf(r, list);
    let names = r.some_args(list);
    let (platforms, known) = unique_platforms(r, ws, &names);
    let out: Vec<Placement> = platforms.into_iter().map(|p| in_matrix(ws, p)).collect();
    (known && !out.is_empty()).then_some(out)
}

/// The platforms `names` name, each once: an unknown or repeated name is reported (and
/// left out); `false` when one was unknown.
pub fn unique_platforms<'w>(
    r: &mut FileReader<'_>,
    ws: &'w WorkspaceConfig,
    names: &[Spanned<String>],
) -> (Vec<&'w Platform>, bool) {
    let mut out: Vec<&Platform> = Vec::new();
    let mut known = true;
    for name in names {
        let Some(platform) = known_platform(r, ws, name) else {
            known = false;
            continue;
        };
        if out.iter().any(|p| p.name == name.value) {
            r.error(
                "duplicate-field",
                name.span,
                format!("Platform `{}` is listed twice", name.value),
                "listed again",
                "Keep one".into(),
            );
            continue;
        }
        out.push(platform);
    }
    (out, known)
}

/// For a rule that names no platform: the workspace's default set, else its default platform
/// (a wheel without either follows its runtime).
fn default_placements(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    ws: &WorkspaceConfig,
    kind: Kind,
) -> Option<Vec<Placement>> {
    if !ws.defaults.platforms.is_empty() {
        // Unknown names are reported once, where workspace.kdl declares them.
        let set: Vec<Placement> = ws
            .defaults
            .platforms
            .iter()
            .filter_map(|name| ws.platform(name))
            .map(|p| in_matrix(ws, p))
            .collect();
        return (set.len() == ws.defaults.platforms.len()).then_some(set);
    }
    if kind == Kind::Wheel {
        return Some(vec![Placement {
            platform: None,
            base: None,
            toolchain: None,
            suffix: String::new(),
            matrix: false,
        }]);
    }
    match &ws.defaults.platform {
        Some(name) => ws.platform(name).map(|p| vec![single(p)]),
        None => {
            r.error(
                "missing-field",
                node.name().span(),
                format!("`{} \"{}\"` needs a `base` or a `platform`", node.name().value(), rule_name(node)),
                "no base",
                "Add `platform \"NAME\"` (from workspace.kdl), `base \"//bases:NAME\"`, or set `defaults { platform \"NAME\" }` in workspace.kdl".into(),
            );
            None
        }
    }
}

fn single(p: &Platform) -> Placement {
    Placement {
        platform: Some(p.name.clone()),
        base: Some(p.base.clone()),
        toolchain: p.toolchain.clone(),
        suffix: String::new(),
        matrix: false,
    }
}

fn in_matrix(ws: &WorkspaceConfig, p: &Platform) -> Placement {
    let suffix = if ws.primary_platform() == Some(p.name.as_str()) {
        String::new()
    } else {
        format!("-{}", p.name)
    };
    Placement {
        platform: Some(p.name.clone()),
        base: Some(p.base.clone()),
        toolchain: p.toolchain.clone(),
        suffix,
        matrix: true,
    }
}

/// A platform declared in workspace.kdl, or a diagnostic at its name.
pub fn known_platform<'w>(
    r: &mut FileReader<'_>,
    ws: &'w WorkspaceConfig,
    name: &Spanned<String>,
) -> Option<&'w Platform> {
    if let Some(p) = ws.platform(&name.value) {
        return Some(p);
    }
    let names: Vec<&str> = ws.platforms.iter().map(|p| p.name.as_str()).collect();
    let help = match crate::diag::did_you_mean(&name.value, names.iter().copied()) {
        Some(near) => format!("Did you mean `{near}`?"),
        None if names.is_empty() => "Declare it in workspace.kdl: `platform \"NAME\" arch=\"s390x\" policy=\"manylinux_2_28\" base=\"//bases:NAME\"`".into(),
        None => format!("workspace.kdl declares: {}", names.join(", ")),
    };
    r.error(
        "unknown-platform",
        name.span,
        format!("Unknown platform `{}`", name.value),
        "not in workspace.kdl",
        help,
    );
    None
}

fn check_leaf(r: &mut FileReader<'_>, node: &KdlNode) {
    r.check_props(node, &[]);
    r.check_children(node, &[]);
}

/// Checks the rule's `on "PLATFORM" { … }` blocks: they name platforms of the rule, and hold
/// only the fields in `allowed` (those that may differ from one platform to another).
pub fn check_on_blocks(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    placements: &[Placement],
    allowed: &[&str],
) {
    let mine: Vec<&str> = placements
        .iter()
        .filter_map(|p| p.platform.as_deref())
        .collect();
    for block in node.iter_children().filter(|c| c.name().value() == "on") {
        r.check_props(block, &[]);
        r.check_children(block, allowed);
        for name in r.some_args(block) {
            if mine.contains(&name.value.as_str()) {
                continue;
            }
            let help = if mine.is_empty() {
                format!(
                    "`{}` names no platform: add `platforms \"{}\" …` to it, or move these fields out of `on`",
                    rule_name(node),
                    name.value
                )
            } else {
                format!(
                    "`{}` is built for {}; add `{}` to its `platforms`, or remove this `on` block",
                    rule_name(node),
                    mine.join(", "),
                    name.value
                )
            };
            r.error(
                "unknown-platform",
                name.span,
                format!(
                    "`{}` is not built for platform `{}`",
                    rule_name(node),
                    name.value
                ),
                "not one of the rule's platforms",
                help,
            );
        }
    }
}

/// The rule as it reads for one platform: its own fields, then the fields of the `on`
/// blocks naming that platform (spans kept, so diagnostics point where things are written).
pub fn for_platform(node: &KdlNode, platform: Option<&str>, allowed: &[&str]) -> KdlNode {
    let mut out = node.clone();
    let Some(children) = out.children_mut().as_mut() else {
        return out;
    };
    let mut extra = Vec::new();
    for block in node.iter_children().filter(|c| c.name().value() == "on") {
        let applies = platform.is_some_and(|p| {
            block
                .entries()
                .iter()
                .any(|e| e.name().is_none() && e.value().as_string() == Some(p))
        });
        if applies {
            extra.extend(
                block
                    .iter_children()
                    .filter(|c| allowed.contains(&c.name().value()))
                    .cloned(),
            );
        }
    }
    children.nodes_mut().retain(|c| c.name().value() != "on");
    children.nodes_mut().extend(extra);
    out
}
