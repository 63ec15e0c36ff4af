//! `refine graph PATTERN`: the targets a pattern matches and everything they depend on, in
//! Graphviz DOT.

use refine_engine::session::{SessionOptions, load_graph};

use super::Failure;
use super::query::{OutputFormat, print};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  refine graph //wheels:pyyaml-repaired-py311 | dot -Tsvg > pyyaml.svg"
)]
pub struct GraphArgs {
    /// Target patterns, such as `//wheels:all` or `//...`.
    #[arg(required = true)]
    pub patterns: Vec<String>,
}

pub fn run(options: &SessionOptions, args: GraphArgs) -> Result<(), Failure> {
    let graph = load_graph(options)?;
    let expr = format!("deps({})", args.patterns.join(" + "));
    let ids = refine_engine::query::query(&graph, &expr).map_err(Failure::bad_input)?;
    print(&graph, &ids, OutputFormat::Dot)
}
