//! Three real `hayloft serve` nodes on one PostgreSQL database, as an operator runs a cluster:
//!
//! 1. Takeover: the demo pipeline on `@every 1s` (each run takes a few seconds), the nodes'
//!    scheduler clocks offset by −30 s, 0 and +30 s. Again and again the node running the demo
//!    run is SIGKILLed and restarted under its id; the time from the kill to the start of the
//!    next attempt is read off the database's clock. One node is also SIGSTOPped past its
//!    takeover and resumed. Reported: takeover p50 and max, and duplicate slots (must be 0).
//! 2. Fan-out: `demo-data --scale N` (N × 1,138 item pages) served by `hayloft replay`, the
//!    cluster's rate limit at 300 requests per second, one node killed when half the pages are
//!    written. Reported: wall time, pages per second and each node's peak RSS.
//!
//! Settings: `HAYLOFT_BENCH_PG` (the server), `CLUSTER_BENCH_KILLS` (default 10),
//! `CLUSTER_BENCH_SCALE` (default 10; 100 is the 113,800-page target).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{rss_kb, start, PgAdmin, Process};

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
}

impl Node {
    fn start(id: &str, envs: Vec<(&'static str, String)>) -> Self {
        let mut node = Node { id: id.to_owned(), envs, process: None, url: String::new(), peak_rss_kb: 0 };
        node.restart();
        node
    }

    fn restart(&mut self) {
        let mut envs = self.envs.clone();
        envs.push(("HAYLOFT_NODE_ID", self.id.clone()));
        let (process, url) = start(&["serve", "--addr", "127.0.0.1:0"], &envs);
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

fn takeover(url: &str, kills: usize) {
    let common = |offset: &str| {
        vec![
            ("HAYLOFT_DATABASE_URL", url.to_owned()),
            ("HAYLOFT_PIPELINES__DEMO__SCHEDULE", "@every 1s".to_owned()),
            ("HAYLOFT_PIPELINES__DEMO__DELAY", "3s".to_owned()),
            ("HAYLOFT_TEST_CLOCK_OFFSET", offset.to_owned()),
        ]
        .into_iter()
        .chain(hayloft::pipelines::KNOWN.iter().filter(|name| **name != "demo").map(|name| {
            let key: &'static str = Box::leak(format!("HAYLOFT_PIPELINES__{}__ENABLED", name.to_uppercase()).into());
            (key, "false".to_owned())
        }))
        .collect::<Vec<_>>()
    };
    let mut nodes: Vec<Node> = [("node-a", "-30s"), ("node-b", "0s"), ("node-c", "+30s")]
        .iter()
        .map(|(id, offset)| Node::start(id, common(offset)))
        .collect();
    let mut takeovers = Vec::new();
    for trial in 0..kills {
        // The node running the demo now.
        let (run_id, owner) = wait_for(Duration::from_secs(60), || {
            let row = query(url, "SELECT id || ' ' || owner FROM runs WHERE status = 'running' AND pipeline = 'demo'");
            let (id, owner) = row.split_once(' ')?;
            Some((id.parse::<i64>().ok()?, owner.to_owned()))
        })
        .expect("a running demo run");
        let node = nodes.iter_mut().find(|node| node.id == owner).expect("a known owner");
        let stop = trial == kills / 2;
        if stop {
            node.signal(nix::sys::signal::Signal::SIGSTOP);
        } else {
            node.signal(nix::sys::signal::Signal::SIGKILL);
        }
        let killed_at = db_now(url);
        let started: f64 = wait_for(Duration::from_secs(60), || {
            query(
                url,
                &format!(
                    "SELECT extract(epoch FROM started_at) FROM runs WHERE pipeline = 'demo' AND id > {run_id} AND started_at IS NOT NULL ORDER BY id LIMIT 1"
                ),
            )
            .parse()
            .ok()
        })
        .expect("the run was taken over");
        let seconds = started - killed_at;
        eprintln!(
            "  trial {trial}: {} {owner}, next attempt {seconds:.2} s later",
            if stop { "SIGSTOP" } else { "SIGKILL" }
        );
        takeovers.push(seconds);
        if stop {
            node.signal(nix::sys::signal::Signal::SIGCONT);
        } else {
            node.restart();
        }
    }
    takeovers.sort_by(f64::total_cmp);
    let duplicates = query(
        url,
        "SELECT count(*) FROM (SELECT 1 FROM runs WHERE slot IS NOT NULL GROUP BY pipeline, slot HAVING count(*) > 1) AS twice",
    );
    let slots = query(url, "SELECT count(*) FROM runs WHERE slot IS NOT NULL");
    eprintln!(
        "takeover over {} kills: p50 {:.2} s, max {:.2} s (min {:.2} s); {slots} slot runs, duplicate slots: {duplicates}",
        takeovers.len(),
        percentile(&takeovers, 0.5),
        takeovers[takeovers.len() - 1],
        takeovers[0]
    );
    drop(nodes);
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
    let mut nodes: Vec<Node> = ["node-a", "node-b", "node-c"].iter().map(|id| Node::start(id, envs())).collect();
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
        let open: usize = query(
            url,
            "SELECT count(*) FROM fan_out_tasks WHERE pipeline = 'item_pages' AND status IN ('queued', 'claimed')",
        )
        .parse()
        .unwrap();
        if !killed && open > 0 && open <= pages / 2 {
            nodes[1].signal(nix::sys::signal::Signal::SIGKILL);
            eprintln!("  killed node-b with {open} of {pages} pages open");
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
    takeover(&url, setting("CLUSTER_BENCH_KILLS", 10));
    fan_out(&url, setting("CLUSTER_BENCH_SCALE", 10));
    let _ = admin.execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
