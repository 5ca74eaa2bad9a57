//! The GraphQL API on the real data, as a client sees it: every source loaded from the captures
//! by `hayloft run all`, then `hayloft serve` answering over HTTP on 127.0.0.1, on SQLite and on
//! PostgreSQL. For each query: median and p95 latency of sequential requests, the SQL statements
//! one request issues, and requests per second from concurrent clients.
//!
//! Targets (DESIGN.md): `{ items { id name } }` ≤ 3 ms, the nested queries ≤ 15 ms with ≤ 4
//! statements per nesting path. The talk's Django/strawberry version: 222 ms and 1.13 s.
//! PostgreSQL is used when reachable (`HAYLOFT_BENCH_PG`, default postgres://postgres@127.0.0.1:5432).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const SEQUENTIAL: usize = 60;
const CLIENTS: usize = 4;
const LOAD_FOR: Duration = Duration::from_secs(3);

/// (name, query, nesting paths, Django's time for the comparable query)
const QUERIES: [(&str, &str, u64, Option<u64>); 5] = [
    ("items { id name }", "{ items(first: 2000) { nodes { id name } } }", 0, Some(222)),
    (
        "items → ingredients → names",
        "{ items(first: 2000) { nodes { name recipeIngredients { quantity ingredient { name } } } } }",
        1,
        Some(1130),
    ),
    (
        "items → dropped at → location",
        "{ items(first: 2000) { nodes { name droppedAt { location { name } } } } }",
        1,
        None,
    ),
    ("NPCs → loved items", "{ npcs { nodes { name items(relation: \"loves\") { item { name } } } } }", 1, None),
    (
        "all three paths at once",
        "{ items(first: 2000) { nodes { name recipeIngredients { quantity ingredient { name } }
           droppedAt { location { name } } } } npcs { nodes { name items(relation: \"loves\") { item { name } } } } }",
        3,
        None,
    ),
];

fn every_pipeline_disabled() -> Vec<(String, String)> {
    hayloft::pipelines::KNOWN
        .iter()
        .map(|name| (format!("HAYLOFT_PIPELINES__{}__ENABLED", name.to_uppercase()), "false".to_owned()))
        .collect()
}

fn post(client: &reqwest::blocking::Client, url: &str, query: &str) -> Value {
    let body: Value = client
        .post(url)
        .header("hayloft-statements", "on")
        .json(&json!({ "query": query }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(body["errors"].is_null(), "{body}");
    body
}

fn percentile(samples: &mut [Duration], share: f64) -> f64 {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * share).round() as usize;
    samples[index].as_secs_f64() * 1e3
}

fn bench(label: &str, database_url: &str, upstream: &str, work: &Path) {
    support::run_all(database_url, upstream, work);

    let mut envs: Vec<(&str, String)> = vec![("HAYLOFT_DATABASE_URL", database_url.to_owned())];
    let disabled = every_pipeline_disabled();
    envs.extend(disabled.iter().map(|(key, value)| (key.as_str(), value.clone())));
    let (_server, base) = support::start(&["serve", "--addr", "127.0.0.1:0"], &envs);
    let url = format!("{base}/graphql");
    let client = reqwest::blocking::Client::new();
    println!("{label}");
    println!(
        "  {:<32} {:>9} {:>9} {:>11} {:>9} {:>10}",
        "query", "median ms", "p95 ms", "statements", "req/s", "Django"
    );
    for (name, query, paths, django) in QUERIES {
        for _ in 0..5 {
            post(&client, &url, query);
        }
        let statements =
            (0..3).map(|_| post(&client, &url, query)["extensions"]["sqlStatements"].as_u64().unwrap()).min().unwrap();
        let mut samples: Vec<Duration> = (0..SEQUENTIAL)
            .map(|_| {
                let started = Instant::now();
                post(&client, &url, query);
                started.elapsed()
            })
            .collect();
        let median = percentile(&mut samples, 0.5);
        let p95 = percentile(&mut samples, 0.95);
        let done: usize = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..CLIENTS)
                .map(|_| {
                    scope.spawn(|| {
                        let client = reqwest::blocking::Client::new();
                        let until = Instant::now() + LOAD_FOR;
                        let mut done = 0;
                        while Instant::now() < until {
                            post(&client, &url, query);
                            done += 1;
                        }
                        done
                    })
                })
                .collect();
            workers.into_iter().map(|worker| worker.join().unwrap()).sum()
        });
        let per_second = done as f64 / LOAD_FOR.as_secs_f64();
        let django = django.map_or_else(|| "—".to_owned(), |ms| format!("{ms} ms ({:.0}×)", ms as f64 / median));
        println!(
            "  {name:<32} {median:>9.2} {p95:>9.2} {statements:>5} ({paths} paths) {per_second:>6.0} {django:>10}"
        );
    }
}

fn main() {
    support::on_both_databases("hayloft_bench_graphql", bench);
}
