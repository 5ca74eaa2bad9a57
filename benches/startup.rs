//! Whole-process benchmark: time from `hayloft serve` to its first answered request, and the
//! resident memory of an idle server — before any load (every pipeline off) and after a first
//! start has loaded the whole sample data (every pipeline's first run succeeded) — each on a
//! fresh SQLite database.
//!
//! Targets (see DESIGN.md): start-up to first answer ≤ 100 ms, idle resident memory ≤ 20 MB.
//! Prints each measurement with its ratio to the target; the baseline in the same run is a
//! process that only starts and exits (`hayloft --version`), so machine noise shows up in both.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::rss_kb;

const RUNS: usize = 10;
const STARTUP_TARGET: Duration = Duration::from_millis(100);
const IDLE_RSS_TARGET_KB: u64 = 20 * 1024;

fn healthz_ok(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200")
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let binary = env!("CARGO_BIN_EXE_hayloft");
    let mut baseline = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let status = Command::new(binary).arg("--version").stdout(Stdio::null()).status().expect("hayloft runs");
        assert!(status.success());
        baseline.push(started.elapsed());
    }

    // The sample upstream is in the process: no one to be polite to, so its pages come at once.
    let (startup, rss_loaded) = measure(binary, &[("HAYLOFT_UPSTREAM__RATE_PER_SECOND", "100000")], true);
    let off: Vec<(String, String)> = hayloft::pipelines::KNOWN
        .iter()
        .map(|name| (format!("HAYLOFT_PIPELINES__{}__ENABLED", name.to_uppercase()), "false".to_owned()))
        .collect();
    let off: Vec<(&str, &str)> = off.iter().map(|(key, value)| (key.as_str(), value.as_str())).collect();
    let (_, rss_empty) = measure(binary, &off, false);
    let baseline = median(baseline);
    println!("process start and exit (baseline)   {:>8.1} ms", baseline.as_secs_f64() * 1e3);
    println!(
        "serve → first /healthz answer       {:>8.1} ms  ({:.2}× the {} ms target, {:.1}× the baseline)",
        startup.as_secs_f64() * 1e3,
        startup.as_secs_f64() / STARTUP_TARGET.as_secs_f64(),
        STARTUP_TARGET.as_millis(),
        startup.as_secs_f64() / baseline.as_secs_f64()
    );
    for (label, rss) in [("idle, before any load", rss_empty), ("idle, after loading the sample data", rss_loaded)] {
        println!(
            "{label:<36}{:>8.1} MB  ({:.2}× the {} MB target)",
            rss as f64 / 1024.0,
            rss as f64 / IDLE_RSS_TARGET_KB as f64,
            IDLE_RSS_TARGET_KB / 1024
        );
    }
}

/// Median time to the first answer, and median resident memory once idle, over `RUNS` starts.
/// With `loaded`, idle is after every pipeline's first-start run has succeeded (the whole sample
/// data loaded, the item and location pages included), read by another process.
fn measure(binary: &str, variables: &[(&str, &str)], loaded: bool) -> (Duration, u64) {
    let mut startups = Vec::new();
    let mut idle_rss = Vec::new();
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().expect("a temp dir");
        let started = Instant::now();
        let mut child = Command::new(binary)
            .current_dir(dir.path())
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("HAYLOFT_LOG_LEVEL", "warn")
            .env("HAYLOFT_DATABASE_URL", "hayloft.db")
            .env("HAYLOFT_SSH_ADDR", "127.0.0.1:0")
            .envs(variables.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("listening line");
        let addr = line.trim().trim_start_matches("listening on http://").to_owned();
        while !healthz_ok(&addr) {
            assert!(started.elapsed() < Duration::from_secs(10), "no answer from {addr}");
            std::thread::sleep(Duration::from_millis(1));
        }
        startups.push(started.elapsed());
        if loaded {
            let deadline = Instant::now() + Duration::from_secs(300);
            while !all_loaded(binary, dir.path()) {
                assert!(Instant::now() < deadline, "the first start did not load the sample data in 5 minutes");
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        // Idle: jemalloc gives freed pages back about a second after they are freed.
        std::thread::sleep(Duration::from_millis(2500));
        idle_rss.push(rss_kb(child.id()));
        let _ = child.kill();
        let _ = child.wait();
    }

    idle_rss.sort_unstable();
    (median(startups), idle_rss[idle_rss.len() / 2])
}

/// Whether every pipeline's latest run in the database in `dir` succeeded.
fn all_loaded(binary: &str, dir: &std::path::Path) -> bool {
    let Ok(output) = Command::new(binary)
        .current_dir(dir)
        .args(["pipelines", "--json"])
        .env("HAYLOFT_LOG_LEVEL", "error")
        .env("HAYLOFT_DATABASE_URL", "hayloft.db")
        .output()
    else {
        return false;
    };
    let Ok(pipelines) = serde_json::from_slice::<serde_json::Value>(&output.stdout) else { return false };
    pipelines.as_array().is_some_and(|pipelines| {
        pipelines.iter().all(|pipeline| pipeline["last_run"]["status"] == "succeeded" && pipeline["running"].is_null())
    })
}
