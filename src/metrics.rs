//! Prometheus metrics, served at `/metrics` in the text exposition format.
//!
//! Counters and histograms live in one small registry ([`Metrics`]): the [`MetricsRecorder`]
//! actor fills the run and actor metrics from the event bus, the HTTP middleware and the GraphQL
//! handler record requests, and gauges that already exist elsewhere (stage mailboxes, stage
//! counters, bus subscribers) are read at scrape time. Label sets are small and bounded:
//! pipelines, actors, route patterns (never raw paths) and status codes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use actix::prelude::*;
use hayloft_actors::events::{BusItem, Event, EventBus};
use hayloft_actors::pipeline::PipelineHandle;

/// Histogram buckets, in seconds: from a fast HTTP answer to a slow run.
const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];

/// A metric's labels, as `name="value"` pairs in a fixed order.
type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bucket, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bucket {
                *count += 1;
            }
        }
        self.sum += seconds;
        self.total += 1;
    }
}

/// What a metric is, for its `# HELP` and `# TYPE` lines.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

pub const RUNS: &str = "hayloft_runs_total";
pub const RUN_DURATION: &str = "hayloft_run_duration_seconds";
pub const ROWS_WRITTEN: &str = "hayloft_rows_written_total";
pub const ACTOR_RESTARTS: &str = "hayloft_actor_restarts_total";
pub const ACTOR_QUARANTINES: &str = "hayloft_actor_quarantines_total";
pub const HTTP_REQUESTS: &str = "hayloft_http_requests_total";
pub const HTTP_DURATION: &str = "hayloft_http_request_duration_seconds";
pub const GRAPHQL_DURATION: &str = "hayloft_graphql_request_duration_seconds";
pub const GRAPHQL_REFUSED: &str = "hayloft_graphql_refused_total";
pub const BUS_MISSED: &str = "hayloft_metrics_events_missed_total";

const FAMILIES: &[Family] = &[
    Family { name: RUNS, kind: "counter", help: "Finished runs by pipeline and outcome." },
    Family { name: RUN_DURATION, kind: "histogram", help: "How long runs took, by pipeline." },
    Family { name: ROWS_WRITTEN, kind: "counter", help: "Rows inserted, updated or deleted by loads." },
    Family { name: ACTOR_RESTARTS, kind: "counter", help: "Restarts of supervised actors after a failure." },
    Family { name: ACTOR_QUARANTINES, kind: "counter", help: "Times an actor was quarantined past its restart limit." },
    Family { name: HTTP_REQUESTS, kind: "counter", help: "HTTP requests by route pattern, method and status." },
    Family { name: HTTP_DURATION, kind: "histogram", help: "HTTP request durations by route pattern." },
    Family { name: GRAPHQL_DURATION, kind: "histogram", help: "GraphQL request durations by outcome." },
    Family { name: GRAPHQL_REFUSED, kind: "counter", help: "GraphQL requests refused before execution, by reason." },
    Family { name: BUS_MISSED, kind: "counter", help: "Events the metrics recorder missed because it fell behind." },
];

/// The registry. Cheap to share (`Arc`); a scrape or an update holds its lock for microseconds.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, Labels), f64>>,
    histograms: Mutex<BTreeMap<(&'static str, Labels), Histogram>>,
}

impl Metrics {
    pub fn add(&self, name: &'static str, labels: Labels, value: f64) {
        *self.counters.lock().unwrap_or_else(PoisonError::into_inner).entry((name, labels)).or_default() += value;
    }

    pub fn observe(&self, name: &'static str, labels: Labels, seconds: f64) {
        self.histograms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((name, labels))
            .or_default()
            .observe(seconds);
    }

    /// Counts one HTTP request.
    pub fn http_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let labels = vec![("route", route.to_owned()), ("method", method.to_owned()), ("status", status.to_string())];
        self.add(HTTP_REQUESTS, labels, 1.0);
        self.observe(HTTP_DURATION, vec![("route", route.to_owned())], seconds);
    }

    /// Records what the event bus announced.
    pub fn record(&self, event: &Event) {
        match event {
            Event::RunFinished { pipeline, status, counts, duration_ms, .. } => {
                self.add(RUNS, vec![("pipeline", pipeline.clone()), ("status", status.to_string())], 1.0);
                self.observe(RUN_DURATION, vec![("pipeline", pipeline.clone())], *duration_ms as f64 / 1000.0);
                for (op, rows) in [("insert", counts.inserted), ("update", counts.updated), ("delete", counts.deleted)]
                {
                    self.add(ROWS_WRITTEN, vec![("pipeline", pipeline.clone()), ("op", op.to_owned())], rows as f64);
                }
            }
            Event::ActorRestarted { actor, .. } => self.add(ACTOR_RESTARTS, vec![("actor", actor.clone())], 1.0),
            Event::ActorQuarantined { actor, .. } => self.add(ACTOR_QUARANTINES, vec![("actor", actor.clone())], 1.0),
            Event::RunStarted { .. } | Event::Changes { .. } | Event::Log(_) => {}
        }
    }

    /// The exposition text: the registry, then the gauges read now.
    pub fn render(&self, pipelines: &BTreeMap<String, PipelineHandle>, events: Option<&EventBus>) -> String {
        let mut out = String::new();
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let histograms = self.histograms.lock().unwrap_or_else(PoisonError::into_inner);
        for family in FAMILIES {
            let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {}", family.name, family.help, family.name, family.kind);
            for ((name, labels), value) in counters.range((family.name, Vec::new())..) {
                if *name != family.name {
                    break;
                }
                let _ = writeln!(out, "{name}{} {value}", label_text(labels, None));
            }
            for ((name, labels), histogram) in histograms.range((family.name, Vec::new())..) {
                if *name != family.name {
                    break;
                }
                for (bucket, count) in BUCKETS.iter().zip(histogram.counts.iter()) {
                    let _ = writeln!(out, "{name}_bucket{} {count}", label_text(labels, Some(&bucket.to_string())));
                }
                let _ = writeln!(out, "{name}_bucket{} {}", label_text(labels, Some("+Inf")), histogram.total);
                let _ = writeln!(out, "{name}_sum{} {}", label_text(labels, None), histogram.sum);
                let _ = writeln!(out, "{name}_count{} {}", label_text(labels, None), histogram.total);
            }
        }
        drop((counters, histograms));
        render_stage_gauges(&mut out, pipelines);
        if let Some(events) = events {
            let _ = writeln!(
                out,
                "# HELP hayloft_event_bus_subscribers Readers of the event bus (dashboards, log followers, devices).\n# TYPE hayloft_event_bus_subscribers gauge\nhayloft_event_bus_subscribers {}",
                events.subscriber_count()
            );
        }
        out
    }
}

/// Per pipeline, when it last succeeded and when it last changed data, for alerts such as
/// "items has not succeeded for two hours".
pub fn render_pipelines(out: &mut String, pipelines: &[hayloft_actors::command::PipelineStatus]) {
    for (metric, help, pick) in [
        (
            "hayloft_pipeline_last_success_timestamp_seconds",
            "When a pipeline's latest successful run finished (Unix time).",
            0,
        ),
        (
            "hayloft_pipeline_last_change_timestamp_seconds",
            "When a pipeline's latest run that changed rows finished (Unix time).",
            1,
        ),
    ] {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} gauge");
        for pipeline in pipelines {
            let run = [&pipeline.last_success, &pipeline.last_change][pick];
            let Some(finished) = run.as_ref().and_then(|run| run.finished_at.or(run.started_at)) else { continue };
            let labels = vec![("pipeline", pipeline.name.clone())];
            let seconds = finished.timestamp_millis() as f64 / 1000.0;
            let _ = writeln!(out, "{metric}{} {seconds}", label_text(&labels, None));
        }
    }
}

/// `hayloft_build_info` (always 1: the labels are the point), then the standard `process_*`
/// series every Prometheus client library exports, read from `/proc/self` at scrape time
/// (Linux; elsewhere they are left out).
pub fn render_process(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP hayloft_build_info The running build: version and commit.\n# TYPE hayloft_build_info gauge\nhayloft_build_info{} 1",
        label_text(&vec![("version", env!("CARGO_PKG_VERSION").to_owned()), ("commit", crate::COMMIT.to_owned())], None)
    );
    let Some(process) = ProcessStats::read() else { return };
    let series: [(&str, &str, &str, f64); 7] = [
        (
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            process.cpu_seconds,
        ),
        ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", process.resident_bytes),
        ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", process.virtual_bytes),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            process.start_time,
        ),
        ("process_open_fds", "gauge", "Number of open file descriptors.", process.open_fds),
        ("process_max_fds", "gauge", "Maximum number of open file descriptors.", process.max_fds),
        ("process_threads", "gauge", "Number of OS threads in the process.", process.threads),
    ];
    for (name, kind, help, value) in series {
        if value.is_nan() {
            continue;
        }
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    }
}

/// What `/proc/self` says about this process; a value it does not give is NaN (and skipped).
struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time: f64,
    open_fds: f64,
    max_fds: f64,
    threads: f64,
}

/// Clock ticks per second in `/proc/<pid>/stat`: the kernel's USER_HZ, which is 100 on every
/// Linux architecture's user ABI (reading `sysconf` would need `unsafe`).
const USER_HZ: f64 = 100.0;

impl ProcessStats {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) is in parentheses and may hold spaces: count from after it.
        let after_name = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // Fields 3… of proc(5) start at index 0 here: utime is field 14, stime 15,
        // num_threads 20, starttime 22 (ticks after boot).
        let field = |number: usize| fields.get(number - 3).and_then(|value| value.parse::<f64>().ok());
        let cpu_seconds = (field(14)? + field(15)?) / USER_HZ;
        let threads = field(20).unwrap_or(f64::NAN);
        let boot_time = std::fs::read_to_string("/proc/stat").ok().and_then(|text| {
            text.lines().find_map(|line| line.strip_prefix("btime ")).and_then(|value| value.trim().parse::<f64>().ok())
        });
        let start_time = match (boot_time, field(22)) {
            (Some(boot), Some(ticks)) => boot + ticks / USER_HZ,
            _ => f64::NAN,
        };
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kilobytes = |key: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map_or(f64::NAN, |kb| kb * 1024.0)
        };
        let open_fds = std::fs::read_dir("/proc/self/fd").map_or(f64::NAN, |entries| entries.count() as f64);
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|line| line.starts_with("Max open files"))
                    .and_then(|line| line.split_whitespace().nth(3))
                    .and_then(|soft| soft.parse::<f64>().ok())
            })
            .unwrap_or(f64::NAN);
        Some(Self {
            cpu_seconds,
            resident_bytes: kilobytes("VmRSS:"),
            virtual_bytes: kilobytes("VmSize:"),
            start_time,
            open_fds,
            max_fds,
            threads,
        })
    }
}

/// Gauges of the nodes sharing the database: how many are in each state, and each node's
/// heartbeat age and running pipelines.
pub fn render_nodes(out: &mut String, nodes: &[hayloft_actors::command::NodeInfo]) {
    let _ = writeln!(out, "# HELP hayloft_nodes Nodes sharing the database, by state.\n# TYPE hayloft_nodes gauge");
    for state in ["live", "dead", "left"] {
        let count = nodes.iter().filter(|node| node.state == state).count();
        let _ = writeln!(out, "hayloft_nodes{{state=\"{state}\"}} {count}");
    }
    let _ = writeln!(
        out,
        "# HELP hayloft_node_heartbeat_age_seconds Time since a node's last heartbeat, by the database's clock.\n# TYPE hayloft_node_heartbeat_age_seconds gauge"
    );
    for node in nodes.iter().filter(|node| node.state != "left") {
        let labels = vec![("node", node.node.clone()), ("state", node.state.to_owned())];
        let _ = writeln!(
            out,
            "hayloft_node_heartbeat_age_seconds{} {}",
            label_text(&labels, None),
            node.heartbeat_age_ms as f64 / 1000.0
        );
    }
    let _ = writeln!(
        out,
        "# HELP hayloft_node_running_runs Runs a node holds now.\n# TYPE hayloft_node_running_runs gauge"
    );
    for node in nodes.iter().filter(|node| node.state != "left") {
        let labels = vec![("node", node.node.clone())];
        let _ = writeln!(out, "hayloft_node_running_runs{} {}", label_text(&labels, None), node.running.len());
    }
}

fn render_stage_gauges(out: &mut String, pipelines: &BTreeMap<String, PipelineHandle>) {
    let stages = |handle: &PipelineHandle| {
        let counters = handle.counters();
        [
            ("extractor", counters.extractor.snapshot()),
            ("transformer", counters.transformer.snapshot()),
            ("loader", counters.loader.snapshot()),
        ]
    };
    let _ = writeln!(
        out,
        "# HELP hayloft_stage_mailbox_depth Messages sent to a pipeline stage and not yet handled.\n# TYPE hayloft_stage_mailbox_depth gauge"
    );
    for (name, handle) in pipelines {
        for (stage, snapshot) in stages(handle) {
            let labels = vec![("pipeline", name.clone()), ("stage", stage.to_owned())];
            let _ = writeln!(out, "hayloft_stage_mailbox_depth{} {}", label_text(&labels, None), snapshot.queued);
        }
    }
    for (metric, help, pick) in [
        ("hayloft_stage_received_total", "Messages a stage received.", 0),
        ("hayloft_stage_emitted_total", "Records a stage emitted (rows written, for loaders).", 1),
        ("hayloft_stage_errors_total", "Messages a stage failed on.", 2),
    ] {
        let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} counter");
        for (name, handle) in pipelines {
            for (stage, snapshot) in stages(handle) {
                let value = [snapshot.received, snapshot.emitted, snapshot.errors][pick];
                let labels = vec![("pipeline", name.clone()), ("stage", stage.to_owned())];
                let _ = writeln!(out, "{metric}{} {value}", label_text(&labels, None));
            }
        }
    }
}

/// `{a="1",b="2"}` (with `le` last for buckets), values escaped as the format requires.
fn label_text(labels: &Labels, le: Option<&str>) -> String {
    let mut pairs: Vec<String> = labels
        .iter()
        .map(|(key, value)| {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            format!("{key}=\"{escaped}\"")
        })
        .collect();
    if let Some(le) = le {
        pairs.push(format!("le=\"{le}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

/// The actor that turns bus events into metrics.
pub struct MetricsRecorder {
    metrics: Arc<Metrics>,
    events: EventBus,
}

impl MetricsRecorder {
    pub fn new(metrics: Arc<Metrics>, events: EventBus) -> Self {
        Self { metrics, events }
    }
}

impl Actor for MetricsRecorder {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.add_stream(self.events.stream());
    }
}

impl StreamHandler<BusItem> for MetricsRecorder {
    fn handle(&mut self, item: BusItem, _ctx: &mut Self::Context) {
        match item {
            BusItem::Event(event) => self.metrics.record(&event),
            BusItem::Missed(count) => self.metrics.add(BUS_MISSED, Vec::new(), count as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use hayloft_actors::ledger::{RunCounts, RunStatus};

    #[test]
    fn runs_and_restarts_become_series() {
        let metrics = Metrics::default();
        metrics.record(&Event::RunFinished {
            run_id: 1,
            pipeline: "items".into(),
            status: RunStatus::Succeeded,
            counts: RunCounts { inserted: 5, updated: 2, deleted: 0, unchanged: 9 },
            duration_ms: 38,
            error: None,
        });
        metrics.record(&Event::ActorRestarted { actor: "root/x".into(), reason: "panic".into(), restarts: 1 });
        metrics.http_request("/graphql", "POST", 200, 0.004);
        let text = metrics.render(&BTreeMap::new(), None);
        assert!(text.contains("hayloft_runs_total{pipeline=\"items\",status=\"succeeded\"} 1\n"), "{text}");
        assert!(text.contains("hayloft_rows_written_total{pipeline=\"items\",op=\"insert\"} 5\n"), "{text}");
        assert!(text.contains("hayloft_run_duration_seconds_bucket{pipeline=\"items\",le=\"0.05\"} 1\n"), "{text}");
        assert!(text.contains("hayloft_run_duration_seconds_bucket{pipeline=\"items\",le=\"0.025\"} 0\n"), "{text}");
        assert!(text.contains("hayloft_actor_restarts_total{actor=\"root/x\"} 1\n"), "{text}");
        assert!(
            text.contains("hayloft_http_requests_total{route=\"/graphql\",method=\"POST\",status=\"200\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE hayloft_stage_mailbox_depth gauge"));
    }

    // The process series are there, with values a process can have.
    #[test]
    fn process_series_are_read_from_proc() {
        let mut text = String::new();
        render_process(&mut text);
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let value = |name: &str| -> f64 {
            let line = text
                .lines()
                .find(|line| line.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name}: {text}"));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert!(value("process_resident_memory_bytes") > 1_000_000.0, "{text}");
        assert!(value("process_open_fds") >= 3.0, "{text}");
        assert!(value("process_max_fds") >= value("process_open_fds"), "{text}");
        assert!(value("process_threads") >= 1.0, "{text}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let started = value("process_start_time_seconds");
        assert!(started <= now + 1.0 && started > now - 86_400.0 * 365.0, "{started} vs {now}");
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"), "{text}");
        assert!(
            text.contains(&format!(
                "hayloft_build_info{{version=\"{}\",commit=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION"),
                crate::COMMIT
            )),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_text(&vec![("actor", "a\"b\\c\nd".to_owned())], None), "{actor=\"a\\\"b\\\\c\\nd\"}");
    }
}
