//! Resolving references: labels to targets, matrix rules to variants, kind checks, platform
//! consistency and cycle detection.

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::diag::{Errors, InputError, did_you_mean};
use crate::label::Label;
use crate::rules::{Kind, LabelRef, Spec, Workspace, py_suffix};

use super::{TargetGraph, TargetId};

struct Resolver<'a> {
    ws: &'a Workspace,
    by_label: &'a HashMap<Label, TargetId>,
    /// Matrix rules: (package, rule name) → their variants.
    matrix: HashMap<(&'a str, &'a str), Vec<TargetId>>,
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
            .push(InputError::at(code, source, r.at.span, message, label).with_help(help));
    }

    fn resolve(
        &mut self,
        r: &LabelRef,
        want: Kind,
        python: Option<&uv_pep440::Version>,
    ) -> Option<TargetId> {
        let label = &r.label;
        let variants = self
            .matrix
            .get(&(label.package.as_str(), label.name.as_str()))
            .cloned();
        let found = match (&variants, python) {
            (Some(vs), Some(py)) if r.follow_matrix => {
                let suffix = py_suffix(py);
                let hit = vs.iter().copied().find(|&id| {
                    self.ws.targets[id]
                        .label
                        .name
                        .ends_with(&format!("-{suffix}"))
                });
                if hit.is_none() {
                    let have: Vec<String> = vs
                        .iter()
                        .filter_map(|&id| self.ws.targets[id].python())
                        .map(|v| v.to_string())
                        .collect();
                    self.error(
                        r,
                        "no-variant",
                        format!("`{label}` has no variant for Python {py}"),
                        "no such Python version",
                        format!("It is built for Python {}; add `python \"{py}…\"` to it, or drop {py} from this rule", have.join(", ")),
                    );
                    return None;
                }
                hit
            }
            (Some(vs), None) if vs.len() == 1 => Some(vs[0]),
            _ => self.by_label.get(label).copied(),
        };
        let Some(id) = found else {
            if let Some(vs) = variants {
                let names: Vec<String> = vs
                    .iter()
                    .map(|&id| self.ws.targets[id].label.to_string())
                    .collect();
                self.error(
                    r,
                    "ambiguous-label",
                    format!("`{label}` is a matrix rule; name one of its targets"),
                    "which variant?",
                    format!("Use one of: {}", names.join(", ")),
                );
                return None;
            }
            let candidates: Vec<String> = self.by_label.keys().map(|l| l.to_string()).collect();
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
        if let (Some(py), Some(have)) = (python, target.python())
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
}

pub(super) fn build(workspace: Workspace) -> Result<TargetGraph, Errors> {
    let mut by_label = HashMap::with_capacity(workspace.targets.len());
    for (id, t) in workspace.targets.iter().enumerate() {
        by_label.entry(t.label.clone()).or_insert(id);
    }
    let mut deps: Vec<Vec<TargetId>> = Vec::with_capacity(workspace.targets.len());
    let errors = {
        let mut matrix: HashMap<(&str, &str), Vec<TargetId>> = HashMap::new();
        for (id, t) in workspace.targets.iter().enumerate() {
            if t.label.name != t.rule {
                matrix
                    .entry((t.label.package.as_str(), t.rule.as_str()))
                    .or_default()
                    .push(id);
            }
        }
        let mut r = Resolver {
            ws: &workspace,
            by_label: &by_label,
            matrix,
            errors: Errors::default(),
        };
        for platform in &workspace.config.platforms {
            r.resolve(&platform.base, Kind::Base, None);
        }
        for t in &workspace.targets {
            let python = match &t.spec {
                Spec::Wheel(w) => Some(&w.python),
                _ => None,
            };
            let resolved: Vec<TargetId> = t
                .spec
                .deps()
                .into_iter()
                .filter_map(|(dep, kind)| r.resolve(dep, kind, python))
                .collect();
            deps.push(resolved);
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
            w.packs.push(pack_ref);
            deps[id].push(pack);
        }
    }
    if errors.is_empty() {
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
    })
}

/// The packs the catalog adds to each wheel: those it names for the wheel's source or backend
/// that are built for the wheel's architecture and not already declared.
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
        let mut candidates = ws.catalog.packs_for(name, w.backend.as_deref());
        candidates.dedup_by(|a, b| a.label == b.label);
        for c in candidates {
            let Some(pack) = r.resolve(c, Kind::Pack, None) else {
                continue;
            };
            let same_arch = arch_of(ws, deps, pack, 0) == arch;
            if same_arch
                && !deps[id].contains(&pack)
                && !added.iter().any(|(i, _, p)| *i == id && *p == pack)
            {
                added.push((
                    id,
                    LabelRef {
                        label: c.label.clone(),
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
