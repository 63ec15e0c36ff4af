//! `refine query EXPR`: targets as labels, JSON or DOT.

use std::io::Write;

use refine_engine::graph::{TargetGraph, TargetId};

use refine_engine::session::{SessionOptions, load_graph};

use super::Failure;
use super::common::finish_output;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub enum OutputFormat {
    /// One label per line.
    #[default]
    Label,
    /// A JSON list of objects with `label`, `kind`, `rule`, `python`, `platform`, `deps` and
    /// `location`.
    Json,
    /// A Graphviz digraph of the targets and the edges among them.
    Dot,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  refine query //...                              every target
  refine query 'deps(//wheels:pyyaml-repaired-py311)'     a target and all it depends on
  refine query 'rdeps(//..., //packs:libyaml)'    everything that uses libyaml
  refine query 'kind(wheel, //...) - //wheels:numpy-py313'
  refine query 'platform(x86_64, //wheels:all)'   the wheels built for one platform

Operators `+` (union), `-` (except) and `^` (intersect) need spaces around them.")]
pub struct QueryArgs {
    /// The query: target patterns, `deps(X)`, `rdeps(U, X)`, `kind(K, X)`, `platform(P, X)`,
    /// joined by `+ - ^`.
    pub expr: String,
    /// How to print the result.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
}

pub fn run(options: &SessionOptions, args: QueryArgs) -> Result<(), Failure> {
    let graph = load_graph(options)?;
    let ids = refine_engine::query::query(&graph, &args.expr).map_err(Failure::bad_input)?;
    print(&graph, &ids, args.output)
}

pub fn print(graph: &TargetGraph, ids: &[TargetId], format: OutputFormat) -> Result<(), Failure> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let result = match format {
        OutputFormat::Label => ids
            .iter()
            .try_for_each(|&id| writeln!(out, "{}", graph.target(id).label)),
        OutputFormat::Json => {
            let list: Vec<serde_json::Value> = ids
                .iter()
                .map(|&id| {
                    let t = graph.target(id);
                    serde_json::json!({
                        "label": t.label.to_string(),
                        "kind": t.kind(),
                        "rule": t.rule,
                        "python": t.python().map(std::string::ToString::to_string),
                        "platform": t.platform,
                        "deps": graph.deps(id).iter().map(|&d| graph.target(d).label.to_string()).collect::<Vec<_>>(),
                        "location": graph.workspace.describe(t.at),
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &list)
                .map_err(std::io::Error::other)
                .and_then(|()| writeln!(out))
        }
        OutputFormat::Dot => write_dot(&mut out, graph, ids),
    };
    finish_output(result.and_then(|()| out.flush()))
}

/// DOT of the given targets and the edges among them, dependency → dependent.
pub fn write_dot(
    out: &mut impl Write,
    graph: &TargetGraph,
    ids: &[TargetId],
) -> std::io::Result<()> {
    let mut member = vec![false; graph.len()];
    for &id in ids {
        member[id] = true;
    }
    writeln!(out, "digraph refine {{")?;
    writeln!(out, "  rankdir=LR;")?;
    writeln!(out, "  node [shape=box, fontname=\"monospace\"];")?;
    for &id in ids {
        let t = graph.target(id);
        writeln!(
            out,
            "  \"{}\" [label=\"{}\\n{}\"];",
            t.label,
            t.label,
            t.kind()
        )?;
    }
    for &id in ids {
        for &d in graph.deps(id) {
            if member[d] {
                writeln!(
                    out,
                    "  \"{}\" -> \"{}\";",
                    graph.target(d).label,
                    graph.target(id).label
                )?;
            }
        }
    }
    writeln!(out, "}}")
}
