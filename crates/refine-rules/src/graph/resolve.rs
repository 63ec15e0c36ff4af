//! Resolving references: labels to targets, matrix rules to variants, kind checks, platform
//! consistency and cycle detection.

use std::collections::HashMap;

use crate::diag::{Errors, InputError, did_you_mean};
use crate::label::Label;
use crate::rules::{Kind, LabelRef, Spec, Workspace};
use petgraph::graph::{DiGraph, NodeIndex};

use super::variant::{Ctx, pick};
use super::{TargetGraph, TargetId};

struct Resolver<'a> {
    ws: &'a Workspace,
    by_label: &'a HashMap<Label, TargetId>,
    /// Matrix rules, by the label of the rule's name: their variants.
    matrix: &'a HashMap<Label, Vec<TargetId>>,
    errors: Errors,
}

impl Resolver<'_> {
    fn error(
        &mut self,
        r: &LabelRef,
        code: &'static str,
        message: String,
        label: &str,
        help: String,
    ) {
        let source = &self.ws.files[r.at.file];
        self.errors
            .push_unique(InputError::at(code, source, r.at.span, message, label).with_help(help));
    }

    fn resolve(&mut self, r: &LabelRef, want: Kind, ctx: &Ctx<'_>) -> Option<TargetId> {
        let label = &r.label;
        let found = match self.matrix.get(label) {
            Some(vs) if r.follow_matrix => match pick(self.ws, vs, ctx) {
                Ok(id) => Some(id),
                Err(miss) => {
                    let (code, message, label, help) = miss.describe(self.ws, &r.label, ctx.from);
                    self.error(r, code, message, label, help);
                    return None;
                }
            },
            _ => self.by_label.get(label).copied(),
        };
        let Some(id) = found else {
            self.unknown(r);
            return None;
        };
        let target = &self.ws.targets[id];
        if target.kind() != want {
            self.error(
                r,
                "wrong-kind",
                format!(
                    "`{label}` is a {}, but a {want} is needed here",
                    target.kind()
                ),
                &format!("expected a {want}"),
                format!("Name a `{want}` rule here"),
            );
            return None;
        }
        if let (Some(py), Some(have)) = (ctx.python, target.python())
            && py.release().get(..2) != have.release().get(..2)
        {
            self.error(
                r,
                "python-mismatch",
                format!("`{label}` is Python {have}, but this target is built for Python {py}"),
                "different Python",
                "Name the runtime rule without its suffix so that each variant gets its own match"
                    .into(),
            );
            return None;
        }
        Some(id)
    }

    /// An unknown label. The suggestion names a matrix rule rather than one of its variants:
    /// a rule file should refer to the rule, which resolves per variant.
    fn unknown(&mut self, r: &LabelRef) {
        let label = &r.label;
        let candidates: Vec<String> = self
            .by_label
            .iter()
            .filter(|(_, id)| !self.ws.targets[**id].matrix)
            .map(|(l, _)| l.to_string())
            .chain(self.matrix.keys().map(Label::to_string))
            .collect();
        let text = label.to_string();
        let help = match did_you_mean(&text, candidates.iter().map(String::as_str)) {
            Some(near) => format!("Did you mean `{near}`?"),
            None if !self
                .ws
                .files
                .iter()
                .any(|f| *f.name == *format!("rules/{}.kdl", label.package)) =>
            {
                format!("There is no rule file `rules/{}.kdl`", label.package)
            }
            None => format!(
                "`rules/{}.kdl` declares no target `{}`",
                label.package, label.name
            ),
        };
        self.error(
            r,
            "unknown-label",
            format!("Unknown target `{label}`"),
            "no such target",
            help,
        );
    }

    /// The context for a target's other references, once its first (its base, runtime or
    /// wheel) is resolved: a platform it inherits, or its base's architecture.
    fn after_first<'v>(&self, mut ctx: Ctx<'v>, first: TargetId) -> Ctx<'v> {
        let dep = &self.ws.targets[first];
        if ctx.platform.is_none() {
            ctx.platform = dep.platform.clone();
        }
        if ctx.platform.is_none() {
            ctx.arch = self.declared_arch(first);
        }
        ctx
    }

    /// A target's architecture as its rule declares it: a base's own, a platform's, or that
    /// of the base a rule names.
    fn declared_arch(&self, id: TargetId) -> Option<String> {
        let t = &self.ws.targets[id];
        if let Some(p) = t
            .platform
            .as_deref()
            .and_then(|p| self.ws.config.platform(p))
        {
            return Some(p.arch.clone());
        }
        let base = match &t.spec {
            Spec::Base(b) => return Some(b.arch.clone()),
            Spec::Runtime(r) => &r.base,
            Spec::Pack(p) => &p.base,
            _ => return None,
        };
        match &self.ws.targets[*self.by_label.get(&base.label)?].spec {
            Spec::Base(b) => Some(b.arch.clone()),
            _ => None,
        }
    }

    /// Resolves every reference of target `id`, its first reference before the others.
    fn resolve_target(&mut self, id: TargetId) -> Vec<TargetId> {
        let t = &self.ws.targets[id];
        let mut ctx = Ctx {
            platform: t.platform.clone(),
            arch: None,
            python: match &t.spec {
                Spec::Wheel(w) => Some(&w.python),
                _ => None,
            },
            from: Some(&t.label),
        };
        let mut resolved = Vec::new();
        for (i, (dep, kind)) in t.spec.deps().into_iter().enumerate() {
            if let Some(d) = self.resolve(dep, kind, &ctx) {
                resolved.push(d);
                if i == 0 {
                    ctx = self.after_first(ctx, d);
                }
            }
        }
        resolved
    }

    /// The context a wheel's catalog packs are resolved for.
    fn wheel_ctx(&self, id: TargetId, deps: &[Vec<TargetId>]) -> Ctx<'static> {
        let ctx = Ctx {
            platform: self.ws.targets[id].platform.clone(),
            ..Ctx::default()
        };
        match deps[id].first() {
            Some(&runtime) => self.after_first(ctx, runtime),
            None => ctx,
        }
    }
}

/// Matrix rules by the label of their name, each with its variants in label order.
fn matrix_rules(ws: &Workspace) -> HashMap<Label, Vec<TargetId>> {
    let mut matrix: HashMap<Label, Vec<TargetId>> = HashMap::new();
    for (id, t) in ws.targets.iter().enumerate() {
        if t.matrix {
            matrix
                .entry(Label {
                    package: t.label.package.clone(),
                    name: t.rule.clone(),
                })
                .or_default()
                .push(id);
        }
    }
    for vs in matrix.values_mut() {
        vs.sort_by(|a, b| ws.targets[*a].label.cmp(&ws.targets[*b].label));
    }
    matrix
}

pub(super) fn build(workspace: Workspace) -> Result<TargetGraph, Errors> {
    let mut by_label = HashMap::with_capacity(workspace.targets.len());
    for (id, t) in workspace.targets.iter().enumerate() {
        by_label.entry(t.label.clone()).or_insert(id);
    }
    let matrix = matrix_rules(&workspace);
    let mut deps: Vec<Vec<TargetId>> = Vec::with_capacity(workspace.targets.len());
    let errors = {
        let mut r = Resolver {
            ws: &workspace,
            by_label: &by_label,
            matrix: &matrix,
            errors: Errors::default(),
        };
        for platform in &workspace.config.platforms {
            r.resolve(&platform.base, Kind::Base, &Ctx::default());
            if let Some(t) = &platform.toolchain {
                r.resolve(t, Kind::Toolchain, &Ctx::default());
            }
        }
        for id in 0..workspace.targets.len() {
            deps.push(r.resolve_target(id));
        }
        let added = if r.errors.is_empty() {
            catalog_packs(&mut r, &deps)
        } else {
            Vec::new()
        };
        (r.errors, added)
    };
    let (mut errors, added) = errors;
    let mut workspace = workspace;
    for (id, pack_ref, pack) in added {
        if let Spec::Wheel(w) = &mut workspace.targets[id].spec {
            // Packs come before the toolchain, which stays the last dependency.
            let at = 1 + w.packs.len();
            w.packs.push(pack_ref);
            let at = at.min(deps[id].len());
            deps[id].insert(at, pack);
        }
    }
    if errors.is_empty() {
        inherit_platforms(&mut workspace, &deps);
        check_arches(&workspace, &deps, &mut errors);
    }

    let mut graph =
        DiGraph::with_capacity(workspace.targets.len(), deps.iter().map(Vec::len).sum());
    for id in 0..workspace.targets.len() {
        graph.add_node(id);
    }
    for (id, ds) in deps.iter().enumerate() {
        // `update_edge` would scan a node's edges on every insert: quadratic for a base that
        // thousands of targets use. Duplicates are dropped per target instead.
        let mut seen: Vec<TargetId> = Vec::with_capacity(ds.len());
        for &d in ds {
            if !seen.contains(&d) {
                seen.push(d);
                graph.add_edge(NodeIndex::new(d), NodeIndex::new(id), ());
            }
        }
    }
    if errors.is_empty() {
        find_cycles(&workspace, &deps, &mut errors);
    }
    errors.into_result(TargetGraph {
        workspace,
        graph,
        deps,
        by_label,
        matrix,
    })
}

/// Wheels and repairs that name no platform are built on their runtime's (or wheel's): the
/// graph records it, for `platform(P, X)` and for `refine query`.
fn inherit_platforms(ws: &mut Workspace, deps: &[Vec<TargetId>]) {
    for id in 0..ws.targets.len() {
        if ws.targets[id].platform.is_some() {
            continue;
        }
        let mut at = id;
        for _ in 0..ws.targets.len() {
            match (&ws.targets[at].spec, deps[at].first()) {
                (Spec::Wheel(_) | Spec::Repair(_), Some(&first)) => at = first,
                _ => break,
            }
            if ws.targets[at].platform.is_some() {
                ws.targets[id].platform = ws.targets[at].platform.clone();
                break;
            }
        }
    }
}

/// The packs the catalog adds to each wheel: those it names for the wheel's source or backend
/// that are built for the wheel's platform (a matrix pack's variant for it) or architecture,
/// and not already declared.
fn catalog_packs(
    r: &mut Resolver<'_>,
    deps: &[Vec<TargetId>],
) -> Vec<(TargetId, LabelRef, TargetId)> {
    let ws = r.ws;
    let mut added = Vec::new();
    for (id, t) in ws.targets.iter().enumerate() {
        let Spec::Wheel(w) = &t.spec else { continue };
        let name = match &w.source {
            crate::rules::SourceSpec::Pypi { name, .. } => name.as_str(),
            _ => t.rule.as_str(),
        };
        let arch = arch_of(ws, deps, id, 0);
        let ctx = r.wheel_ctx(id, deps);
        let mut candidates = ws.catalog.packs_for(name, w.backend.as_deref());
        candidates.dedup_by(|a, b| a.label == b.label);
        for c in candidates {
            if let Some(allowed) = &w.allowed_packs
                && !allowed.contains(&c.label)
            {
                continue;
            }
            let pack = match r.matrix.get(&c.label) {
                // A matrix pack without a variant for this wheel's platform is not for it.
                Some(vs) if c.follow_matrix => match pick(ws, vs, &ctx) {
                    Ok(pack) if ws.targets[pack].kind() == Kind::Pack => pack,
                    _ => continue,
                },
                _ => match r.resolve(c, Kind::Pack, &Ctx::default()) {
                    Some(pack) => pack,
                    None => continue,
                },
            };
            let same_arch = arch_of(ws, deps, pack, 0) == arch;
            if same_arch
                && !deps[id].contains(&pack)
                && !added.iter().any(|(i, _, p)| *i == id && *p == pack)
            {
                added.push((
                    id,
                    LabelRef {
                        label: ws.targets[pack].label.clone(),
                        at: c.at,
                        follow_matrix: false,
                    },
                    pack,
                ));
            }
        }
    }
    added
}

/// The architecture each target is built for, through its base.
fn arch_of(ws: &Workspace, deps: &[Vec<TargetId>], id: TargetId, depth: usize) -> Option<String> {
    if depth > ws.targets.len() {
        return None;
    }
    match &ws.targets[id].spec {
        Spec::Base(b) => Some(b.arch.clone()),
        _ => deps[id]
            .first()
            .and_then(|&d| arch_of(ws, deps, d, depth + 1)),
    }
}

/// A wheel's packs and a runtime's packs must be built for the same architecture as it.
fn check_arches(ws: &Workspace, deps: &[Vec<TargetId>], errors: &mut Errors) {
    for (id, t) in ws.targets.iter().enumerate() {
        let (Some(arch), refs) = (arch_of(ws, deps, id, 0), t.spec.deps()) else {
            continue;
        };
        for (pos, (r, kind)) in refs.iter().enumerate() {
            if *kind != Kind::Pack {
                continue;
            }
            let Some(&dep) = deps[id].get(pos) else {
                continue;
            };
            if let Some(dep_arch) = arch_of(ws, deps, dep, 0)
                && dep_arch != arch
            {
                let source = &ws.files[r.at.file];
                errors.push(
                    InputError::at(
                        "arch-mismatch",
                        source,
                        r.at.span,
                        format!(
                            "`{}` is built for {dep_arch}, but `{}` is built for {arch}",
                            r.label, t.label
                        ),
                        "different architecture",
                    )
                    .with_help(format!("Use a pack whose base is {arch}")),
                );
            }
        }
    }
}

/// Reports each cycle once, with its full path, at the reference that closes it.
fn find_cycles(ws: &Workspace, deps: &[Vec<TargetId>], errors: &mut Errors) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let n = ws.targets.len();
    let mut mark = vec![Mark::New; n];
    for start in 0..n {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative DFS: (target, next dependency to visit); `path` mirrors the open stack.
        let mut stack = vec![(start, 0usize)];
        mark[start] = Mark::Open;
        while let Some(&mut (id, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = deps[id].get(*next) {
                *next += 1;
                match mark[dep] {
                    Mark::New => {
                        mark[dep] = Mark::Open;
                        stack.push((dep, 0));
                    }
                    Mark::Open => {
                        let from = stack.iter().position(|(t, _)| *t == dep).unwrap_or(0);
                        let mut path: Vec<String> = stack[from..]
                            .iter()
                            .map(|(t, _)| ws.targets[*t].label.to_string())
                            .collect();
                        path.push(ws.targets[dep].label.to_string());
                        let refs = ws.targets[id].spec.deps();
                        let r = refs.iter().map(|(r, _)| *r).find(|r| {
                            r.label == ws.targets[dep].label
                                || ws.targets[dep].label.name.starts_with(&r.label.name)
                        });
                        let (source, span) = match r {
                            Some(r) => (&ws.files[r.at.file], r.at.span),
                            None => (&ws.files[ws.targets[id].at.file], ws.targets[id].at.span),
                        };
                        errors.push(
                            InputError::at("cycle", source, span, format!("Dependency cycle: {}", path.join(" → ")), "closes the cycle")
                                .with_help("Targets cannot depend on themselves, directly or through others; remove one of these references"),
                        );
                    }
                    Mark::Done => {}
                }
            } else {
                mark[id] = Mark::Done;
                stack.pop();
            }
        }
    }
}
