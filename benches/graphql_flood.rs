//! A bounded flood of heavy GraphQL queries against a real `hayloft serve` over every source
//! loaded from the captures, on SQLite and on PostgreSQL: 200 clients posting a heavy nested
//! query (inside the limits) for 20 s, while a prober asks `/healthz` and a small query every
//! 100 ms and a sampler reads the server's resident memory.
//!
//! Targets: resident memory under 256 MB throughout, `/healthz` within 100 ms throughout, small
//! queries keep succeeding, and memory back under 64 MB within 10 s of the flood's end. The
//! baseline in the same run is the server's memory before the flood and the latency of
//! `/healthz` on the idle server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::rss_kb;

const CLIENTS: usize = 200;
const FLOOD_FOR: Duration = Duration::from_secs(20);
const SETTLE_FOR: Duration = Duration::from_secs(10);
const PEAK_TARGET_MB: f64 = 256.0;
const AFTER_TARGET_MB: f64 = 64.0;
const HEALTHZ_TARGET_MS: f64 = 100.0;

const HEAVY: &str = "{ items(first: 2000) { nodes { id name description recipeIngredients { quantity \
                     ingredient { name recipeIngredients { quantity ingredient { name } } } } \
                     droppedAt { location { name } } } } }";
const SMALL: &str = "{ item(id: 11) { name } }";

#[derive(Default)]
struct Outcomes {
    ok: AtomicU64,
    busy: AtomicU64,
    timeout: AtomicU64,
    other: AtomicU64,
}

fn classify(response: reqwest::Result<reqwest::blocking::Response>) -> &'static str {
    let Ok(response) = response else { return "other" };
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    let code = body["errors"][0]["extensions"]["code"].as_str().unwrap_or_default();
    match (status, code) {
        (200, "") => "ok",
        (503, "UNAVAILABLE") => "busy",
        (_, "TIMEOUT") => "timeout",
        _ => "other",
    }
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn flood(label: &str, database_url: &str, upstream: &str, work: &std::path::Path) {
    support::run_all(database_url, upstream, work);
    let mut envs: Vec<(&str, String)> = vec![("HAYLOFT_DATABASE_URL", database_url.to_owned())];
    let disabled: Vec<(String, String)> = hayloft::pipelines::KNOWN
        .iter()
        .map(|name| (format!("HAYLOFT_PIPELINES__{}__ENABLED", name.to_uppercase()), "false".to_owned()))
        .collect();
    envs.extend(disabled.iter().map(|(key, value)| (key.as_str(), value.clone())));
    let (server, base) = support::start(&["serve", "--addr", "127.0.0.1:0"], &envs);
    let pid = server.id();
    let graphql = format!("{base}/graphql");
    let healthz = format!("{base}/healthz");
    let probe_client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let heavy = probe_client.post(&graphql).json(&json!({ "query": HEAVY })).send().unwrap();
    assert_eq!(classify(Ok(heavy)), "ok", "the heavy query must be inside the limits");
    let idle_kb = rss_kb(pid);
    let idle_healthz: Vec<f64> = (0..20)
        .map(|_| {
            let started = Instant::now();
            probe_client.get(&healthz).send().unwrap();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();

    let outcomes = Outcomes::default();
    let stop = AtomicBool::new(false);
    let peak_kb = AtomicU64::new(idle_kb);
    let healthz_ms = Mutex::new(Vec::new());
    let (small_ok, small_failed) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                scope.spawn(|| {
                    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
                    let until = Instant::now() + FLOOD_FOR;
                    while Instant::now() < until {
                        let counter = match classify(client.post(&graphql).json(&json!({ "query": HEAVY })).send()) {
                            "ok" => &outcomes.ok,
                            "busy" => &outcomes.busy,
                            "timeout" => &outcomes.timeout,
                            _ => &outcomes.other,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        scope.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                peak_kb.fetch_max(rss_kb(pid), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let prober = scope.spawn(|| {
            let until = Instant::now() + FLOOD_FOR;
            while Instant::now() < until {
                let started = Instant::now();
                let answered = probe_client.get(&healthz).send().is_ok_and(|response| response.status() == 200);
                let elapsed = started.elapsed().as_secs_f64() * 1e3;
                healthz_ms.lock().unwrap().push(if answered { elapsed } else { f64::INFINITY });
                let small = classify(probe_client.post(&graphql).json(&json!({ "query": SMALL })).send());
                if small == "ok" { &small_ok } else { &small_failed }.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        for client in clients {
            client.join().unwrap();
        }
        prober.join().unwrap();
        stop.store(true, Ordering::SeqCst);
    });
    let flood_end = Instant::now();
    let mut back_under_target = None;
    let mut after_kb = rss_kb(pid);
    while flood_end.elapsed() < SETTLE_FOR {
        after_kb = rss_kb(pid);
        if back_under_target.is_none() && mb(after_kb) <= AFTER_TARGET_MB {
            back_under_target = Some(flood_end.elapsed());
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    let mut healthz_ms = healthz_ms.into_inner().unwrap();
    healthz_ms.sort_by(f64::total_cmp);
    let worst = healthz_ms.last().copied().unwrap_or_default();
    let median = healthz_ms.get(healthz_ms.len() / 2).copied().unwrap_or_default();
    let idle_median = {
        let mut idle = idle_healthz;
        idle.sort_by(f64::total_cmp);
        idle[idle.len() / 2]
    };
    let peak = mb(peak_kb.load(Ordering::SeqCst));
    println!("{label}: {CLIENTS} clients × {FLOOD_FOR:?} of the heavy nested query");
    println!(
        "  heavy requests     ok {}, refused busy (503) {}, timed out {}, other {}",
        outcomes.ok.load(Ordering::Relaxed),
        outcomes.busy.load(Ordering::Relaxed),
        outcomes.timeout.load(Ordering::Relaxed),
        outcomes.other.load(Ordering::Relaxed)
    );
    println!(
        "  small queries      ok {}, failed {}",
        small_ok.load(Ordering::Relaxed),
        small_failed.load(Ordering::Relaxed)
    );
    println!(
        "  /healthz           median {median:.1} ms, worst {worst:.1} ms (target {HEALTHZ_TARGET_MS} ms; idle median {idle_median:.1} ms)"
    );
    println!(
        "  resident memory    idle {:.1} MB, peak {peak:.1} MB ({:.2}× the {PEAK_TARGET_MB} MB target)",
        mb(idle_kb),
        peak / PEAK_TARGET_MB
    );
    let back =
        back_under_target.map_or_else(|| "not within 10 s".to_owned(), |at| format!("after {:.1} s", at.as_secs_f64()));
    println!(
        "  after the flood    {:.1} MB at 10 s; under {AFTER_TARGET_MB} MB {back} (idle before: {:.1} MB)",
        mb(after_kb),
        mb(idle_kb)
    );
    drop(server);
}

fn main() {
    support::on_both_databases("hayloft_bench_flood", flood);
}
