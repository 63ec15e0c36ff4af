//! `/metrics`: the server's counters in the Prometheus text format, named as Prometheus asks
//! (`refine_` prefix, base units, `_total` for counters, `_seconds` and `_bytes`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use refine_engine::exec::{Event, Location};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    kind: String,
    /// `built`, `local_hit`, `remote_hit`, `failed` or `skipped`.
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

fn seconds_histogram() -> Histogram {
    // 10 ms to about 6 hours: a cached base to OpenBLAS under emulation.
    Histogram::new(exponential_buckets(0.01, 3.0, 13))
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    actions: Family<ActionLabels, Counter>,
    action_seconds: Family<KindLabel, Histogram, fn() -> Histogram>,
    overhead_seconds: Family<KindLabel, Histogram, fn() -> Histogram>,
    queue_length: Gauge,
    queue_wait: Histogram,
    pushed: Counter,
    pulled: Counter,
    store_size: Gauge,
    builds: Family<OutcomeLabel, Counter>,
    running: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("refine");
        let actions = Family::<ActionLabels, Counter>::default();
        registry.register(
            "actions",
            "Nodes of the server's builds by kind and result: built (the action ran), local_hit, remote_hit, failed, skipped",
            actions.clone(),
        );
        let action_seconds: Family<KindLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(seconds_histogram);
        registry.register_with_unit(
            "action_duration",
            "Wall time of each action's own process (the sandbox), by kind",
            Unit::Seconds,
            action_seconds.clone(),
        );
        let overhead_seconds: Family<KindLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(seconds_histogram);
        registry.register_with_unit(
            "action_overhead",
            "What refine spent on each action outside its process: staging, checking, storing",
            Unit::Seconds,
            overhead_seconds.clone(),
        );
        let queue_length = Gauge::default();
        registry.register(
            "queue_length",
            "Builds waiting for a slot",
            queue_length.clone(),
        );
        let queue_wait = seconds_histogram();
        registry.register_with_unit(
            "queue_wait",
            "Time each build waited in the queue before it started",
            Unit::Seconds,
            queue_wait.clone(),
        );
        let pushed = Counter::default();
        registry.register_with_unit(
            "pushed",
            "Blob bytes pushed to the remote store",
            Unit::Bytes,
            pushed.clone(),
        );
        let pulled = Counter::default();
        registry.register_with_unit(
            "pulled",
            "Blob bytes pulled from the remote store",
            Unit::Bytes,
            pulled.clone(),
        );
        let store_size = Gauge::default();
        registry.register_with_unit(
            "store_size",
            "Size of the local store's blobs, as of the last build's end",
            Unit::Bytes,
            store_size.clone(),
        );
        let builds = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "builds",
            "Builds that ended, by outcome: succeeded, failed, cancelled, rejected (bad input)",
            builds.clone(),
        );
        let running = Gauge::default();
        registry.register("builds_running", "Builds running now", running.clone());
        Metrics {
            registry,
            actions,
            action_seconds,
            overhead_seconds,
            queue_length,
            queue_wait,
            pushed,
            pulled,
            store_size,
            builds,
            running,
        }
    }

    /// Counts what an event says about a node.
    pub fn observe(&self, event: &Event) {
        let count = |kind: &str, result| {
            self.actions
                .get_or_create(&ActionLabels {
                    kind: kind.to_string(),
                    result,
                })
                .inc();
        };
        match event {
            Event::CacheHit { kind, location, .. } => count(
                kind,
                if *location == Location::Remote {
                    "remote_hit"
                } else {
                    "local_hit"
                },
            ),
            Event::ActionFinish {
                kind,
                action_seconds,
                overhead_seconds,
                ..
            } => {
                count(kind, "built");
                let label = KindLabel { kind: kind.clone() };
                if let Some(s) = action_seconds {
                    self.action_seconds.get_or_create(&label).observe(*s);
                }
                self.overhead_seconds
                    .get_or_create(&label)
                    .observe(*overhead_seconds);
            }
            Event::ActionFail { kind, .. } => count(kind, "failed"),
            _ => {}
        }
    }

    /// A node skipped, with its kind (the `skipped` event lacks it).
    pub fn skipped(&self, kind: &str) {
        self.actions
            .get_or_create(&ActionLabels {
                kind: kind.to_string(),
                result: "skipped",
            })
            .inc();
    }

    pub fn set_queue_length(&self, n: i64) {
        self.queue_length.set(n);
    }

    pub fn build_started(&self, waited_seconds: f64) {
        self.queue_wait.observe(waited_seconds.max(0.0));
        self.running.inc();
    }

    pub fn build_ended(&self, outcome: &'static str, started: bool) {
        if started {
            self.running.dec();
        }
        self.builds.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub fn traffic(&self, pushed: u64, pulled: u64) {
        self.pushed.inc_by(pushed);
        self.pulled.inc_by(pulled);
    }

    pub fn set_store_size(&self, bytes: u64) {
        self.store_size
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// The text exposition format 0.0.4 (what `/metrics` says it sends).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        openmetrics_to_text(&out)
    }
}

/// prometheus-client writes OpenMetrics: a counter's family is named without the `_total` its
/// samples carry, and there are `# UNIT` and `# EOF` lines. The text format 0.0.4 names a
/// family as its samples (else a parser takes the counters for untyped metrics) and has
/// neither line.
fn openmetrics_to_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let doc = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match doc {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{prefix}{name}_total {tail}"));
                } else {
                    out.push_str(line);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn counters_are_named_as_their_samples_in_the_text_format() {
        let m = super::Metrics::new();
        m.build_ended("succeeded", false);
        let text = m.encode();
        assert!(
            text.contains("# TYPE refine_builds_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# HELP refine_builds_total Builds"), "{text}");
        assert!(text.contains("refine_builds_total{outcome=\"succeeded\"} 1\n"));
        assert!(text.contains("# TYPE refine_queue_length gauge\n"));
        assert!(
            !text.contains("# UNIT") && !text.contains("# EOF"),
            "{text}"
        );
    }
}
