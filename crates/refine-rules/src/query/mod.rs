//! The query language of `refine query`:
//!
//! ```text
//! expr := term (op term)*          op: `+` `-` `^` (or `union` `except` `intersect`),
//!                                   left to right, all of equal precedence
//! term := PATTERN | ( expr ) | deps(expr) | rdeps(expr, expr) | kind(KIND, expr)
//!       | platform(PLATFORM, expr)
//! ```
//!
//! Operators stand apart from their operands by spaces, since `-` and `+` may appear in
//! target names. `deps(X)` is X and everything it depends on; `rdeps(U, X)` is the targets of
//! U that depend on X, X's members of U included; `kind(K, X)` keeps the targets of kind K;
//! `platform(P, X)` keeps those built for the workspace platform P (bases belong to none).

mod parse;

use crate::diag::{Errors, InputError, Source};
use crate::graph::{TargetGraph, TargetId};
use crate::label::Pattern;

pub use parse::Expr;

/// Parses and evaluates `text` against the graph, returning matching targets in label order.
pub fn query(graph: &TargetGraph, text: &str) -> Result<Vec<TargetId>, Errors> {
    let source = Source::new("query", text);
    let expr = parse::parse(&source)?;
    let mut errors = Errors::default();
    let set = eval(graph, &source, &expr, &mut errors);
    let mut ids: Vec<TargetId> = (0..set.len()).filter(|&i| set[i]).collect();
    ids.sort_by(|a, b| graph.target(*a).label.cmp(&graph.target(*b).label));
    errors.into_result(ids)
}

/// The targets several patterns match, each pattern required to match something.
pub fn resolve_patterns(graph: &TargetGraph, patterns: &[String]) -> Result<Vec<TargetId>, Errors> {
    let joined = patterns.join(" + ");
    query(graph, &joined)
}

fn eval(graph: &TargetGraph, source: &Source, expr: &Expr, errors: &mut Errors) -> Vec<bool> {
    let n = graph.len();
    match expr {
        Expr::Pattern(pattern, span) => {
            let mut set = vec![false; n];
            let ids = graph.matching(pattern);
            // A request whose lock takes every package from the index has no target, and
            // naming it is still a request for its wheelhouse.
            if ids.is_empty() && graph.requests_named(pattern).is_empty() {
                errors.push(no_match(graph, source, pattern, *span));
            }
            for id in ids {
                set[id] = true;
            }
            set
        }
        Expr::Deps(x) => graph.deps_closure(&eval(graph, source, x, errors)),
        Expr::Rdeps(u, x) => {
            let universe = eval(graph, source, u, errors);
            let reached = graph.rdeps_closure(&eval(graph, source, x, errors));
            universe.iter().zip(reached).map(|(a, b)| *a && b).collect()
        }
        Expr::Kind(kind, x) => {
            let set = eval(graph, source, x, errors);
            (0..n)
                .map(|i| set[i] && graph.target(i).kind() == *kind)
                .collect()
        }
        Expr::Platform(name, span, x) => {
            let set = eval(graph, source, x, errors);
            if graph.workspace.config.platform(name).is_none() {
                errors.push(unknown_platform(graph, source, name, *span));
            }
            (0..n)
                .map(|i| set[i] && graph.target(i).platform.as_deref() == Some(name.as_str()))
                .collect()
        }
        Expr::Union(a, b) => zip(
            eval(graph, source, a, errors),
            eval(graph, source, b, errors),
            |x, y| x || y,
        ),
        Expr::Except(a, b) => zip(
            eval(graph, source, a, errors),
            eval(graph, source, b, errors),
            |x, y| x && !y,
        ),
        Expr::Intersect(a, b) => zip(
            eval(graph, source, a, errors),
            eval(graph, source, b, errors),
            |x, y| x && y,
        ),
    }
}

fn zip(a: Vec<bool>, b: Vec<bool>, f: impl Fn(bool, bool) -> bool) -> Vec<bool> {
    a.into_iter().zip(b).map(|(x, y)| f(x, y)).collect()
}

fn unknown_platform(
    graph: &TargetGraph,
    source: &Source,
    name: &str,
    span: miette::SourceSpan,
) -> InputError {
    let names: Vec<&str> = graph
        .workspace
        .config
        .platforms
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let help = match crate::diag::did_you_mean(name, names.iter().copied()) {
        Some(near) => format!("Did you mean `{near}`?"),
        None if names.is_empty() => "workspace.kdl declares no platforms".into(),
        None => format!("workspace.kdl declares: {}", names.join(", ")),
    };
    InputError::at(
        "unknown-platform",
        source,
        span,
        format!("Unknown platform `{name}`"),
        "not in workspace.kdl",
    )
    .with_help(help)
}

/// What a matrix rule's name stands for: its axes and its targets.
fn explain_matrix(graph: &TargetGraph, label: &crate::label::Label, ids: &[TargetId]) -> String {
    let mut platforms: Vec<&str> = Vec::new();
    let mut pythons: Vec<String> = Vec::new();
    for &id in ids {
        let t = graph.target(id);
        if let Some(p) = t.platform.as_deref()
            && !platforms.contains(&p)
        {
            platforms.push(p);
        }
        let py = match &t.spec {
            crate::rules::Spec::Runtime(r) => Some(r.python.to_string()),
            crate::rules::Spec::Wheel(w) => Some(w.python.to_string()),
            crate::rules::Spec::Repair(r) => graph
                .find(&r.wheel.label)
                .and_then(|w| graph.target(w).python())
                .map(std::string::ToString::to_string),
            _ => None,
        };
        if let Some(py) = py
            && !pythons.contains(&py)
        {
            pythons.push(py);
        }
    }
    let mut axes = Vec::new();
    if platforms.len() > 1 {
        axes.push(format!("platforms {}", platforms.join(", ")));
    }
    if !pythons.is_empty() {
        axes.push(format!("Python {}", pythons.join(", ")));
    }
    let names: Vec<String> = ids
        .iter()
        .map(|&id| graph.target(id).label.to_string())
        .collect();
    format!(
        "`{label}` is a matrix rule over {}; name one of its targets: {}",
        axes.join(" and "),
        names.join(", ")
    )
}

fn no_match(
    graph: &TargetGraph,
    source: &Source,
    pattern: &Pattern,
    span: miette::SourceSpan,
) -> InputError {
    let help = match pattern {
        Pattern::Target(label) => {
            let names: Vec<String> = graph
                .targets()
                .iter()
                .map(|t| t.label.to_string())
                .collect();
            let variants = graph.variants(label);
            if variants.is_empty() {
                match crate::diag::did_you_mean(
                    &label.to_string(),
                    names.iter().map(String::as_str),
                ) {
                    Some(near) => format!("Did you mean `{near}`?"),
                    None => "Run `refine query //...` to list every target".into(),
                }
            } else {
                explain_matrix(graph, label, variants)
            }
        }
        _ => "Run `refine query //...` to list every target".into(),
    };
    InputError::at(
        "no-match",
        source,
        span,
        format!("`{pattern}` matches no target"),
        "matches nothing",
    )
    .with_help(help)
}
