//! The target graph (petgraph): every reference resolved to a target of the right kind,
//! matrix references matched to the referrer's platform and Python version, and cycles
//! reported with their full path. Edges point from a dependency to what depends on it, so a topological
//! order builds dependencies first.

mod resolve;
mod variant;

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::diag::Errors;
use crate::label::{Label, Pattern};
use crate::rules::{Kind, Target, Workspace};

/// Index of a target in [`TargetGraph::targets`].
pub type TargetId = usize;

#[derive(Debug)]
pub struct TargetGraph {
    pub workspace: Workspace,
    graph: DiGraph<TargetId, ()>,
    /// For each target, the targets it depends on, in the order [`crate::rules::Spec::deps`]
    /// lists its references.
    deps: Vec<Vec<TargetId>>,
    by_label: HashMap<Label, TargetId>,
    /// Matrix rules by the label of their name (`//wheels:numpy`), with their variants.
    matrix: HashMap<Label, Vec<TargetId>>,
}

impl TargetGraph {
    /// Resolves every reference of a loaded workspace; all errors are reported together.
    pub fn build(workspace: Workspace) -> Result<TargetGraph, Errors> {
        resolve::build(workspace)
    }

    pub fn targets(&self) -> &[Target] {
        &self.workspace.targets
    }

    pub fn target(&self, id: TargetId) -> &Target {
        &self.workspace.targets[id]
    }

    pub fn len(&self) -> usize {
        self.workspace.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workspace.targets.is_empty()
    }

    /// The target a label names. A matrix rule with a single variant also answers to its
    /// bare name (`//wheels:pyyaml-debian` is `//wheels:pyyaml-debian-py311`).
    pub fn find(&self, label: &Label) -> Option<TargetId> {
        self.by_label
            .get(label)
            .copied()
            .or_else(|| match self.variants(label) {
                [one] => Some(*one),
                _ => None,
            })
    }

    /// The variants of the matrix rule a label names, in label order; empty when it names none.
    pub fn variants(&self, label: &Label) -> &[TargetId] {
        self.matrix.get(label).map_or(&[], Vec::as_slice)
    }

    /// The labels of every matrix rule.
    pub fn matrix_rules(&self) -> impl Iterator<Item = &Label> + '_ {
        self.matrix.keys()
    }

    /// Direct dependencies of a target.
    pub fn deps(&self, id: TargetId) -> &[TargetId] {
        &self.deps[id]
    }

    /// Direct dependents of a target.
    pub fn dependents(&self, id: TargetId) -> impl Iterator<Item = TargetId> + '_ {
        self.graph
            .edges(NodeIndex::new(id))
            .map(|e| self.graph[e.target()])
    }

    /// The base a target is built on: found through first dependencies (a runtime's or a
    /// pack's base, a wheel's runtime, a repair's wheel).
    pub fn base_of(&self, id: TargetId) -> Option<&crate::rules::BaseSpec> {
        match &self.target(self.base_target_of(id)?).spec {
            crate::rules::Spec::Base(b) => Some(b),
            _ => None,
        }
    }

    /// The manylinux policy a target is built for: its platform's, else its base's (`linux`
    /// when it has neither).
    pub fn policy_of(&self, id: TargetId) -> String {
        let platform = self.target(id).platform.as_deref();
        match platform.and_then(|p| self.workspace.config.platform(p)) {
            Some(p) => p.policy.clone(),
            None => self
                .base_of(id)
                .map_or_else(|| "linux".into(), |b| b.policy.clone()),
        }
    }

    /// The toolchain a target's actions compile with: the platform's, unless its rule turns
    /// native compilers off. Always the target's last dependency.
    pub fn toolchain_of(&self, id: TargetId) -> Option<TargetId> {
        let has = match &self.target(id).spec {
            crate::rules::Spec::Runtime(r) => r.toolchain.is_some(),
            crate::rules::Spec::Pack(p) => p.toolchain.is_some(),
            crate::rules::Spec::Wheel(w) => w.toolchain.is_some(),
            _ => false,
        };
        if has {
            self.deps(id).last().copied()
        } else {
            None
        }
    }

    /// A runtime's, pack's or wheel's packs: its dependencies after the first, without the
    /// toolchain.
    pub fn packs_of(&self, id: TargetId) -> &[TargetId] {
        let deps = self.deps(id);
        let end = deps.len() - usize::from(self.toolchain_of(id).is_some());
        let end = end.saturating_sub(self.built_requires_count(id));
        deps.get(1..end).unwrap_or_default()
    }

    fn built_requires_count(&self, id: TargetId) -> usize {
        match &self.target(id).spec {
            crate::rules::Spec::Wheel(w) => w.built_requires.len(),
            _ => 0,
        }
    }

    /// A wheel's build requirements built here (repairs of other wheels): its dependencies
    /// after its packs, before its toolchain.
    pub fn built_requires_of(&self, id: TargetId) -> &[TargetId] {
        let deps = self.deps(id);
        let end = deps.len() - usize::from(self.toolchain_of(id).is_some());
        let n = self.built_requires_count(id);
        deps.get(end.saturating_sub(n)..end).unwrap_or_default()
    }

    /// The base target itself, as with [`TargetGraph::base_of`].
    pub fn base_target_of(&self, id: TargetId) -> Option<TargetId> {
        let mut at = id;
        for _ in 0..self.len() {
            match &self.target(at).spec {
                crate::rules::Spec::Base(_) => return Some(at),
                _ => at = *self.deps(at).first()?,
            }
        }
        None
    }

    /// Targets a pattern matches, in label order.
    pub fn matching(&self, pattern: &Pattern) -> Vec<TargetId> {
        if let Pattern::Target(label) = pattern {
            return self.find(label).into_iter().collect();
        }
        let mut ids: Vec<TargetId> = (0..self.len())
            .filter(|&id| pattern.matches(&self.target(id).label))
            .collect();
        ids.sort_by(|a, b| self.target(*a).label.cmp(&self.target(*b).label));
        ids
    }

    /// The locked requests whose whole package `pattern` names (`//requests/NAME/...`,
    /// `//requests/NAME:all`, `//...`): such a pattern asks for the request's wheelhouse, which
    /// holds the index's wheels the lock takes even where no package is built here.
    pub fn requests_named(&self, pattern: &Pattern) -> Vec<&str> {
        if matches!(pattern, Pattern::Target(_)) {
            return Vec::new();
        }
        self.workspace
            .requests
            .iter()
            .filter(|r| r.lock.is_some())
            .map(|r| r.request.name.as_str())
            .filter(|name| {
                pattern.matches(&Label {
                    package: crate::rules::request::request_package(name),
                    name: String::new(),
                })
            })
            .collect()
    }

    /// The targets of `kind`.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = TargetId> + '_ {
        (0..self.len()).filter(move |&id| self.target(id).kind() == kind)
    }

    /// Every target, dependencies before dependents. The graph is acyclic once built.
    pub fn topo_order(&self) -> Vec<TargetId> {
        petgraph::algo::toposort(&self.graph, None)
            .map(|order| order.into_iter().map(|n| self.graph[n]).collect())
            .unwrap_or_default()
    }

    /// The set closed under dependencies (`deps(X)`), as a membership vector.
    pub fn deps_closure(&self, roots: &[bool]) -> Vec<bool> {
        self.closure(roots, |id| self.deps[id].clone())
    }

    /// The set closed under dependents.
    pub fn rdeps_closure(&self, roots: &[bool]) -> Vec<bool> {
        self.closure(roots, |id| self.dependents(id).collect())
    }

    fn closure(&self, roots: &[bool], next: impl Fn(TargetId) -> Vec<TargetId>) -> Vec<bool> {
        let mut seen = roots.to_vec();
        let mut stack: Vec<TargetId> = (0..seen.len()).filter(|&i| seen[i]).collect();
        while let Some(id) = stack.pop() {
            for n in next(id) {
                if !seen[n] {
                    seen[n] = true;
                    stack.push(n);
                }
            }
        }
        seen
    }
}
