//! Every source pipeline against the real captures, as an operator runs them: `hayloft replay`
//! serves `../shared/upstream` over HTTP on 127.0.0.1 and `hayloft run all` loads it, on SQLite
//! and on PostgreSQL:
//!
//! * cold: an empty database, every pipeline in dependency order (items first);
//! * unchanged: the same captures again — every fingerprint matches, nothing is written.
//!
//! Reported per pipeline (the run's own duration from the ledger) and as the whole command's
//! wall time, which adds process start-up and migrations. The item-pages pipeline fetches one
//! page per item (1,138 requests); the politeness limits are raised for the local replay — with
//! the default 5 requests per second that pipeline alone takes about four minutes, by design.
//! PostgreSQL is used when reachable (`HAYLOFT_BENCH_PG`, default postgres://postgres@127.0.0.1:5432).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::BTreeMap;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

const ITERATIONS: usize = 5;

/// A pipeline's run: its name, its duration in ms and the rows it wrote.
type PipelineRun = (String, (f64, i64));

/// One `hayloft run all`: wall time, and each pipeline's run in run order.
fn run_all(database_url: &str, upstream: &str, work: &Path) -> (Duration, Vec<PipelineRun>) {
    let started = Instant::now();
    let output = support::run_all(database_url, upstream, work);
    let wall = started.elapsed();
    let runs = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let run: serde_json::Value = serde_json::from_str(line).unwrap();
            let written = ["inserted", "updated", "deleted"].iter().map(|key| run[key].as_i64().unwrap()).sum();
            (run["pipeline"].as_str().unwrap().to_owned(), (run["duration_ms"].as_f64().unwrap(), written))
        })
        .collect();
    (wall, runs)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Runs the cold and unchanged loads `ITERATIONS` times; `fresh` gives an empty database's URL.
fn bench(label: &str, upstream: &str, work: &Path, mut fresh: impl FnMut(usize) -> String) {
    let mut cold_wall = Vec::new();
    let mut warm_wall = Vec::new();
    let mut cold: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut warm: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut written: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut order = Vec::new();
    for iteration in 0..ITERATIONS {
        let url = fresh(iteration);
        let (wall, runs) = run_all(&url, upstream, work);
        cold_wall.push(wall.as_secs_f64() * 1e3);
        order = runs.iter().map(|(name, _)| name.clone()).collect();
        for (name, (ms, rows)) in runs {
            cold.entry(name.clone()).or_default().push(ms);
            written.entry(name).or_default().0 = rows;
        }
        let (wall, runs) = run_all(&url, upstream, work);
        warm_wall.push(wall.as_secs_f64() * 1e3);
        for (name, (ms, rows)) in runs {
            warm.entry(name.clone()).or_default().push(ms);
            written.entry(name).or_default().1 = rows;
        }
    }
    println!("{label} (median of {ITERATIONS})");
    println!("  {:<12} {:>10} {:>8} {:>12} {:>8}", "pipeline", "cold ms", "rows", "unchanged ms", "rows");
    let (mut cold_sum, mut warm_sum) = (0.0, 0.0);
    for name in &order {
        let (cold_ms, warm_ms) = (median(cold[name].clone()), median(warm[name].clone()));
        cold_sum += cold_ms;
        warm_sum += warm_ms;
        let (cold_rows, warm_rows) = written[name];
        println!("  {name:<12} {cold_ms:>10.0} {cold_rows:>8} {warm_ms:>12.0} {warm_rows:>8}");
    }
    println!("  {:<12} {:>10.0} {:>8} {:>12.0}", "sum of runs", cold_sum, "", warm_sum);
    println!(
        "  {:<12} {:>10.0} {:>8} {:>12.0}   (process start-up and migrations included)",
        "wall",
        median(cold_wall),
        "",
        median(warm_wall)
    );
}

fn main() {
    let Some((_replay, replay_url)) = support::replayed_captures() else { return };
    let work = tempfile::tempdir().unwrap();
    bench("SQLite (file, WAL)", &replay_url, work.path(), |iteration| {
        work.path().join(format!("bench-{iteration}.db")).to_string_lossy().into_owned()
    });

    let admin = support::PgAdmin::new();
    let name = |iteration: usize| format!("hayloft_bench_sources_{}_{iteration}", std::process::id());
    if let Err(error) = admin.execute(&format!("CREATE DATABASE {}", name(0))) {
        eprintln!("SKIPPED PostgreSQL: {error}");
        return;
    }
    let _ = admin.execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", name(0)));
    bench("PostgreSQL", &replay_url, work.path(), |iteration| {
        admin.execute(&format!("CREATE DATABASE {}", name(iteration))).unwrap();
        format!("{}/{}", admin.server, name(iteration))
    });
    for iteration in 0..ITERATIONS {
        let _ = admin.execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", name(iteration)));
    }
}
