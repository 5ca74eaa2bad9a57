//! Three real `hayloft serve` nodes on one PostgreSQL database, as an operator runs a cluster:
//!
//! 1. Takeover: the demo pipeline and 20 copies of it (`[pipelines.demo] copies = 20`) on
//!    `@every 1s`, each run taking 3 s, every other pipeline off; the nodes' scheduler clocks
//!    offset by −30 s, 0 and +30 s, for `CLUSTER_BENCH_MINUTES`. Every 20 s a random node is
//!    SIGKILLed and restarted under its id; twice, node-c is SIGSTOPped past its timeout instead
//!    and resumed. For each run the node held, the time from the signal to the start of that
//!    pipeline's next attempt is read off the database's clock. Reported: takeover p50 and max,
//!    duplicate slots (must be 0) and missed slots (must be 0): a slot that no node ran and no
//!    node skipped because that pipeline's run was still going (read from the nodes' logs).
//! 2. Fan-out: `demo-data --scale N` (N × 1,138 item pages) served by `hayloft replay`, the
//!    cluster's rate limit at 300 requests per second, one node killed when half the pages are
//!    written. Reported: wall time, pages per second and each node's peak RSS.
//!
//! Settings: `HAYLOFT_BENCH_PG` (the server), `CLUSTER_BENCH_MINUTES` (default 10; 0 skips
//! the takeover phase), `CLUSTER_BENCH_SCALE` (default 10; 100 is the 113,800-page target).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{rss_kb, start, start_logged, PgAdmin, Process};

const TOKEN: &str = "bench-token";

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// One value from the database (`psql -Atc`).
fn query(url: &str, sql: &str) -> String {
    let output = Command::new("psql").args(["-Atc", sql, url]).output().expect("psql runs");
    assert!(output.status.success(), "{sql}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Seconds since the epoch, by the database's clock.
fn db_now(url: &str) -> f64 {
    query(url, "SELECT extract(epoch FROM clock_timestamp())").parse().unwrap()
}

fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(value) = probe() {
            return Some(value);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

struct Node {
    id: String,
    envs: Vec<(&'static str, String)>,
    process: Option<Process>,
    url: String,
    peak_rss_kb: u64,
    /// Where its log goes, across restarts.
    log: Option<std::path::PathBuf>,
}

impl Node {
    fn start(id: &str, envs: Vec<(&'static str, String)>, log: Option<std::path::PathBuf>) -> Self {
        let mut node = Node { id: id.to_owned(), envs, process: None, url: String::new(), peak_rss_kb: 0, log };
        node.restart();
        node
    }

    fn restart(&mut self) {
        let mut envs = self.envs.clone();
        envs.push(("HAYLOFT_NODE_ID", self.id.clone()));
        // The old process first: a restart under the same id must not overlap it.
        drop(self.process.take());
        let (process, url) = start_logged(&["serve", "--addr", "127.0.0.1:0"], &envs, self.log.as_deref());
        self.process = Some(process);
        self.url = url;
    }

    fn pid(&self) -> i32 {
        self.process.as_ref().map(|process| process.id() as i32).unwrap_or(0)
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).unwrap();
    }

    fn sample_rss(&mut self) {
        self.peak_rss_kb = self.peak_rss_kb.max(rss_kb(self.pid() as u32));
    }
}

fn percentile(sorted: &[f64], share: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * share).round() as usize]
}

/// A run left behind by a SIGKILLed or SIGSTOPped node.
struct Abandoned {
    pipeline: String,
    run_id: i64,
    /// When the node went, by the database's clock.
    at: f64,
    how: &'static str,
}

/// A small xorshift: which node dies next need not be cryptographic, only varied.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % sides as u64) as usize
    }
}

/// Copies of the demo pipeline beside it in the takeover phase.
const DEMO_COPIES: usize = 20;

/// The pipelines of the takeover phase: the demo and its copies, all on `@every 1s`.
fn takeover_pipelines() -> Vec<String> {
    std::iter::once("demo".to_owned()).chain((1..=DEMO_COPIES).map(|index| format!("demo_{index}"))).collect()
}

fn takeover(url: &str, minutes: u64, logs: &std::path::Path) {
    let pipelines = takeover_pipelines();
    let common = |offset: &str| {
        let mut envs = vec![
            ("HAYLOFT_DATABASE_URL", url.to_owned()),
            ("HAYLOFT_PIPELINES__DEMO__DELAY", "3s".to_owned()),
            ("HAYLOFT_PIPELINES__DEMO__COPIES", DEMO_COPIES.to_string()),
            ("HAYLOFT_TEST_CLOCK_OFFSET", offset.to_owned()),
            // The scheduler's "slot skipped" lines are what tells a coalesced slot from a missed one.
            ("HAYLOFT_LOG_LEVEL", "warn,hayloft_actors::scheduler=info".to_owned()),
            ("HAYLOFT_LOG_FORMAT", "json".to_owned()),
        ];
        for name in hayloft::pipelines::KNOWN {
            let key: &'static str = Box::leak(format!("HAYLOFT_PIPELINES__{}__SCHEDULE", name.to_uppercase()).into());
            envs.push((key, if name == "demo" { "@every 1s" } else { "never" }.to_owned()));
        }
        envs
    };
    let mut nodes: Vec<Node> = [("node-a", "-30s"), ("node-b", "0s"), ("node-c", "+30s")]
        .iter()
        .map(|(id, offset)| Node::start(id, common(offset), Some(logs.join(format!("{id}.log")))))
        .collect();
    // Every node runs something before the first kill.
    wait_for(Duration::from_secs(120), || {
        let owners = query(url, "SELECT count(DISTINCT owner) FROM runs WHERE started_at IS NOT NULL");
        (owners == "3").then_some(())
    })
    .expect("all three nodes run pipelines");
    let began = db_now(url);
    let started = Instant::now();
    let length = Duration::from_secs(minutes * 60);
    let rounds = (length.as_secs() / 20).max(3) as usize;
    // node-c is the one paused, twice: at a third and at two thirds of the time.
    let pauses = [rounds / 3, 2 * rounds / 3];
    let mut dice = Dice(u64::from(std::process::id()) | 1 << 32);
    let mut abandoned = Vec::new();
    let (mut kills, mut stops) = (0, 0);
    for round in 0..rounds {
        let due = started + Duration::from_secs(20 * (round as u64 + 1));
        while Instant::now() < due {
            for node in &mut nodes {
                node.sample_rss();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let pause = pauses.contains(&round);
        let index = if pause { 2 } else { dice.roll(nodes.len()) };
        let node = &mut nodes[index];
        node.signal(if pause { nix::sys::signal::Signal::SIGSTOP } else { nix::sys::signal::Signal::SIGKILL });
        let at = db_now(url);
        // The node is gone (or frozen): what it still holds as running is what others must take over.
        let held = query(
            url,
            &format!(
                "SELECT string_agg(pipeline || ' ' || id, ',') FROM runs WHERE status = 'running' AND owner = '{}'",
                node.id
            ),
        );
        let how = if pause { "SIGSTOP" } else { "SIGKILL" };
        for run in held.split(',').filter(|run| !run.is_empty()) {
            let (pipeline, id) = run.split_once(' ').expect("pipeline and id");
            abandoned.push(Abandoned { pipeline: pipeline.to_owned(), run_id: id.parse().unwrap(), at, how });
        }
        eprintln!("  {:>4.0} s: {how} {} holding [{held}]", started.elapsed().as_secs_f64(), node.id);
        if pause {
            stops += 1;
            // Frozen past its timeout (5 s), then resumed: it must commit nothing of what it lost.
            std::thread::sleep(Duration::from_secs(8));
            node.signal(nix::sys::signal::Signal::SIGCONT);
        } else {
            kills += 1;
            node.restart();
        }
    }
    // Let the last takeovers happen, then stop every node before reading the logs.
    std::thread::sleep(Duration::from_secs(15));
    let finished = db_now(url);
    drop(nodes);

    let mut takeovers = Vec::new();
    let mut not_taken_over = Vec::new();
    for run in &abandoned {
        let next = query(
            url,
            &format!(
                "SELECT extract(epoch FROM min(started_at)) FROM runs WHERE pipeline = '{}' AND id > {} AND started_at IS NOT NULL",
                run.pipeline, run.run_id
            ),
        );
        match next.parse::<f64>() {
            Ok(next) => takeovers.push((next - run.at, run.how)),
            Err(_) => not_taken_over.push(format!("{} run {}", run.pipeline, run.run_id)),
        }
    }
    let duplicates = query(
        url,
        "SELECT count(*) FROM (SELECT 1 FROM runs WHERE slot IS NOT NULL GROUP BY pipeline, slot HAVING count(*) > 1) AS twice",
    );
    let (missed, covered) = missed_slots(url, &pipelines, logs, began + 35.0, finished - 35.0);
    let statuses = query(
        url,
        "SELECT string_agg(status || ' ' || n, ', ') FROM (SELECT status, count(*) AS n FROM runs GROUP BY status ORDER BY status) AS counted",
    );
    let mut seconds: Vec<f64> = takeovers.iter().map(|(seconds, _)| *seconds).collect();
    seconds.sort_by(f64::total_cmp);
    let worst_stop = takeovers.iter().filter(|(_, how)| *how == "SIGSTOP").map(|(s, _)| *s).fold(0.0, f64::max);
    eprintln!(
        "takeover: {} pipelines on @every 1s for {:.1} min, clocks −30 s/0/+30 s, {kills} SIGKILLs and {stops} SIGSTOPs; runs: {statuses}",
        pipelines.len(),
        started.elapsed().as_secs_f64() / 60.0
    );
    if seconds.is_empty() {
        eprintln!("  no node held a run when it went: no takeover to measure");
    } else {
        eprintln!(
            "  {} abandoned runs taken over: p50 {:.2} s, max {:.2} s (min {:.2} s; worst after a SIGSTOP {worst_stop:.2} s); not taken over: {}",
            seconds.len(),
            percentile(&seconds, 0.5),
            seconds[seconds.len() - 1],
            seconds[0],
            if not_taken_over.is_empty() { "none".to_owned() } else { not_taken_over.join(", ") }
        );
    }
    eprintln!("  duplicate slots: {duplicates}; missed slots: {missed} of {covered}");
}

/// Slots of `pipelines` due between `from` and `to` (database clock, seconds) that no node ran
/// and no node skipped because a run was still going (a slot coalesced into a running run is
/// not missed: no run of it was possible). Returns (missed, slots looked at).
fn missed_slots(url: &str, pipelines: &[String], logs: &std::path::Path, from: f64, to: f64) -> (usize, usize) {
    use std::collections::{BTreeMap, BTreeSet};
    let mut seen: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let ran = query(
        url,
        "SELECT string_agg(pipeline || ' ' || (extract(epoch FROM slot) * 1000)::bigint, ',') FROM runs WHERE slot IS NOT NULL",
    );
    for run in ran.split(',').filter(|run| !run.is_empty()) {
        let (pipeline, ms) = run.split_once(' ').expect("pipeline and slot");
        seen.entry(pipeline.to_owned()).or_default().insert(ms.parse().unwrap());
    }
    for entry in std::fs::read_dir(logs).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            let fields = &event["fields"];
            let message = fields["message"].as_str().unwrap_or_default();
            if !message.contains("skipped") {
                continue;
            }
            let (Some(pipeline), Some(slot)) = (fields["pipeline"].as_str(), fields["slot"].as_str()) else { continue };
            // Older builds logged the slot as `Some(…)`.
            let slot = slot.strip_prefix("Some(").and_then(|rest| rest.strip_suffix(')')).unwrap_or(slot);
            let Ok(slot) = chrono::DateTime::parse_from_rfc3339(slot) else { continue };
            seen.entry(pipeline.to_owned()).or_default().insert(slot.timestamp_millis());
        }
    }
    let (mut missed, mut looked_at) = (0, 0);
    for pipeline in pipelines {
        let Some(slots) = seen.get(pipeline) else {
            eprintln!("  {pipeline}: no slot ran at all");
            missed += (to - from) as usize;
            continue;
        };
        // `@every 1s` keeps a per-pipeline phase: slots are that phase plus whole seconds.
        let phase = slots.iter().next().map(|ms| ms.rem_euclid(1000)).unwrap_or(0);
        let first = (from * 1000.0) as i64 / 1000 * 1000 + phase;
        let mut gaps = Vec::new();
        let mut slot = first;
        while slot <= (to * 1000.0) as i64 {
            looked_at += 1;
            if !slots.contains(&slot) {
                gaps.push(slot);
            }
            slot += 1000;
        }
        if !gaps.is_empty() {
            eprintln!("  {pipeline}: {} missed slots, the first at {} ms", gaps.len(), gaps[0]);
        }
        missed += gaps.len();
    }
    (missed, looked_at)
}

fn fan_out(url: &str, scale: usize) {
    let data = tempfile::tempdir().unwrap();
    let hayloft = env!("CARGO_BIN_EXE_hayloft");
    let written = Command::new(hayloft)
        .args(["demo-data", "--scale", &scale.to_string(), "--out", data.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    let (_replay, upstream) = start(&["replay", data.path().to_str().unwrap(), "--addr", "127.0.0.1:0"], &[]);
    let envs = || {
        let mut envs = vec![
            ("HAYLOFT_DATABASE_URL", url.to_owned()),
            ("HAYLOFT_UPSTREAM_URL", format!("{upstream}/")),
            ("HAYLOFT_UPSTREAM__RATE_PER_SECOND", "300".to_owned()),
            ("HAYLOFT_UPSTREAM__CONCURRENCY", "12".to_owned()),
            ("HAYLOFT_UPSTREAM__RETRIES", "0".to_owned()),
            // The item list at 100× is about 212 MB, past the default 32 MiB body limit.
            ("HAYLOFT_UPSTREAM__MAX_BODY_BYTES", (1usize << 30).to_string()),
            ("HAYLOFT_ADMIN_TOKEN", TOKEN.to_owned()),
            ("HAYLOFT_PIPELINES__DEMO__ENABLED", "false".to_owned()),
        ];
        for name in hayloft::pipelines::KNOWN {
            let key: &'static str = Box::leak(format!("HAYLOFT_PIPELINES__{}__SCHEDULE", name.to_uppercase()).into());
            envs.push((key, "never".to_owned()));
        }
        envs
    };
    let items = Command::new(hayloft)
        .args(["run", "items", "--json"])
        .envs(envs())
        .env("HAYLOFT_UPSTREAM__RATE_PER_SECOND", "100000")
        .output()
        .unwrap();
    assert!(items.status.success(), "{}", String::from_utf8_lossy(&items.stderr));
    let pages: usize = query(url, "SELECT count(*) FROM items").parse().unwrap();
    let mut nodes: Vec<Node> = ["node-a", "node-b", "node-c"].iter().map(|id| Node::start(id, envs(), None)).collect();
    // Every node shares the limits once the others count it: three heartbeats after its start,
    // by the database's clock.
    wait_for(Duration::from_secs(60), || {
        let counted = query(
            url,
            "SELECT count(*) FROM nodes WHERE left_at IS NULL AND started_at < clock_timestamp() AT TIME ZONE 'UTC' - interval '3 seconds'",
        );
        (counted == "3").then_some(())
    })
    .expect("three counted nodes");
    let started = Instant::now();
    let response: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("{}/graphql", nodes[0].url))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "query": "mutation { runPipeline(name: \"item_pages\") { id } }" }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let run_id = response["data"]["runPipeline"]["id"].as_i64().unwrap_or_else(|| panic!("{response}"));
    let mut killed = false;
    loop {
        for node in &mut nodes {
            node.sample_rss();
        }
        // Counted by pages finished, not pages open: the run's owner writes its tasks in
        // batches, so "few open" is also true while they are still being written.
        let finished: usize = query(
            url,
            "SELECT count(*) FROM fan_out_tasks WHERE pipeline = 'item_pages' AND status NOT IN ('queued', 'claimed')",
        )
        .parse()
        .unwrap();
        if !killed && finished >= pages / 2 {
            nodes[1].signal(nix::sys::signal::Signal::SIGKILL);
            eprintln!("  killed node-b with {finished} of {pages} pages finished");
            nodes[1].restart();
            killed = true;
        }
        let finished = query(
            url,
            &format!(
                "SELECT count(*) FROM runs WHERE pipeline = 'item_pages' AND id >= {run_id} AND status = 'succeeded'"
            ),
        );
        if finished != "0" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(3600), "the fan-out did not finish within an hour");
        std::thread::sleep(Duration::from_millis(200));
    }
    let wall = started.elapsed().as_secs_f64();
    eprintln!(
        "fan-out of {pages} item pages on 3 nodes at 300 requests/s, one kill at 50 %: {wall:.1} s ({:.0} pages/s); peak RSS {}",
        pages as f64 / wall,
        nodes.iter().map(|node| format!("{} {:.1} MiB", node.id, node.peak_rss_kb as f64 / 1024.0)).collect::<Vec<_>>().join(", ")
    );
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let admin = PgAdmin::new();
    let name = format!("hayloft_bench_cluster_{}", std::process::id());
    if let Err(error) = admin.execute(&format!("CREATE DATABASE {name}")) {
        eprintln!("SKIPPED: the cluster benchmark needs PostgreSQL: {error}");
        return;
    }
    let url = format!("{}/{name}", admin.server);
    let migrated = Command::new(env!("CARGO_BIN_EXE_hayloft"))
        .args(["migrate"])
        .env("HAYLOFT_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    eprintln!("cluster: three nodes on PostgreSQL");
    let logs = tempfile::tempdir().unwrap();
    let minutes = setting("CLUSTER_BENCH_MINUTES", 10) as u64;
    if minutes > 0 {
        takeover(&url, minutes, logs.path());
    }
    fan_out(&url, setting("CLUSTER_BENCH_SCALE", 10));
    let _ = admin.execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
