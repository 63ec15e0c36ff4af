//! `refine build --profile FILE`: a Chrome trace (the JSON array format) of the actions that
//! ran, one row per worker, for chrome://tracing or Perfetto.

use std::io::Write;
use std::path::Path;

use refine_exec::{BuildReport, NodeResult};
use refine_rules::graph::TargetGraph;

use super::OpError;

/// The trace's events: one complete event (`"ph": "X"`) per action that ran, in start order,
/// with times in microseconds from the first start.
pub fn trace_events(graph: &TargetGraph, report: &BuildReport) -> Vec<serde_json::Value> {
    let first = report
        .results
        .values()
        .filter_map(|r| match r {
            NodeResult::Built { start, .. } => Some(*start),
            _ => None,
        })
        .fold(f64::INFINITY, f64::min);
    let mut events: Vec<serde_json::Value> = report
        .results
        .iter()
        .filter_map(|(id, r)| match r {
            NodeResult::Built {
                seconds,
                start,
                worker,
                ..
            } => Some(serde_json::json!({
                "name": graph.target(*id).label.to_string(),
                "cat": graph.target(*id).kind().to_string(),
                "ph": "X",
                "ts": ((start - first) * 1e6).round() as u64,
                "dur": (seconds * 1e6).round() as u64,
                "pid": 1,
                "tid": worker,
            })),
            _ => None,
        })
        .collect();
    events.sort_by_key(|e| e["ts"].as_u64());
    events
}

/// Writes the trace of a build to `path`.
pub fn write_trace(path: &Path, graph: &TargetGraph, report: &BuildReport) -> Result<(), OpError> {
    let write = || -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(fs_err::File::create(path)?);
        let trace = serde_json::json!({
            "traceEvents": trace_events(graph, report),
            "displayTimeUnit": "ms",
        });
        serde_json::to_writer_pretty(&mut f, &trace)?;
        f.flush()
    };
    write().map_err(OpError::io("write", path))
}
