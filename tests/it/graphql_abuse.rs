//! Hostile and greedy GraphQL clients against a real server: documents that expand
//! exponentially through fragments, long batches, oversized bodies and floods of heavy queries.
//! What must hold: costs are bounded before they are paid, every refusal is GraphQL-shaped JSON
//! with a code, and `/healthz` and small queries keep answering.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{Server, TestEnv};

/// A server over the sample items, with small limits where a test sets them.
fn server(variables: &[(&str, &str)]) -> Option<(TestEnv, Server)> {
    let mut env = TestEnv::new()?.only(&["items"]).env("HAYLOFT_SSH__ENABLED", "false");
    for (key, value) in variables {
        env = env.env(key, value);
    }
    let loaded = env.run(&["run", "items"]);
    assert!(loaded.status.success(), "{}", String::from_utf8_lossy(&loaded.stderr));
    let server = env.serve();
    Some((env, server))
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

fn post_body(server: &Server, body: Vec<u8>) -> (u16, Value) {
    let response = client()
        .post(format!("{}/graphql", server.base_url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .expect("the request is answered");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn post(server: &Server, query: &str) -> (u16, Value) {
    post_body(server, serde_json::to_vec(&json!({ "query": query })).unwrap())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}"))
}

/// `levels` fragments, each spreading the next twice: 1.2 KB that expands to 2^levels fields.
fn doubling(levels: usize) -> String {
    let mut query = String::from("{ items { nodes { ...F1 } } }\n");
    for level in 1..levels {
        query.push_str(&format!("fragment F{level} on Item {{ id ...F{next} ...F{next} }}\n", next = level + 1));
    }
    query.push_str(&format!("fragment F{levels} on Item {{ id }}\n"));
    query
}

const HEAVY: &str = "{ items(first: 2000) { nodes { id name description recipeIngredients { quantity \
                     ingredient { name recipeIngredients { ingredient { name } } } } } } }";
const SMALL: &str = "{ item(id: 11) { name } }";

// Fragment doubling is refused as TOO_COMPLEX in one linear pass, even two at once, and the
// server keeps answering (it used to spend a minute of CPU per request validating).
#[test]
fn fragment_doubling_is_refused_before_validation() {
    let Some((_env, server)) = server(&[]) else { return };
    let query = doubling(28);
    assert!(query.len() < 1500, "{} bytes", query.len());
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let requests: Vec<_> = (0..2).map(|_| scope.spawn(|| post(&server, &query))).collect();
        requests.into_iter().map(|request| request.join().unwrap()).collect()
    });
    for (status, body) in answers {
        assert_eq!(status, 200, "{body}");
        assert_eq!(code(&body), "TOO_COMPLEX", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("expands to"), "{body}");
    }
    let started = Instant::now();
    assert_eq!(server.get("/healthz").status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    // A fragment that spreads itself is refused too, with its own reason.
    let (_, body) = post(&server, "{ items { nodes { ...A } } } fragment A on Item { id ...A }");
    assert_eq!(code(&body), "TOO_COMPLEX", "{body}");
}

// A batch holds at most max_batch requests; a longer one is refused whole, as JSON.
#[test]
fn batches_are_limited_in_length() {
    let Some((_env, server)) = server(&[("HAYLOFT_GRAPHQL__MAX_BATCH", "10")]) else { return };
    let batch = |length: usize| serde_json::to_vec(&vec![json!({ "query": SMALL }); length]).unwrap();
    let (status, body) = post_body(&server, batch(10));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 10);
    assert!(body.as_array().unwrap().iter().all(|answer| answer["data"]["item"]["name"].is_string()), "{body}");
    let (status, body) = post_body(&server, batch(300));
    assert_eq!(status, 400, "{body}");
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("at most 10 requests"), "{body}");
}

// A body over the limit gets a 413 that is GraphQL-shaped JSON with a code.
#[test]
fn an_oversized_body_gets_a_coded_413() {
    let Some((_env, server)) = server(&[]) else { return };
    let huge = format!("{{ item(id: 11) {{ name }} }} #{}", "x".repeat(10 * 1024 * 1024));
    let (status, body) = post(&server, &huge);
    assert_eq!(status, 413, "{body}");
    assert_eq!(code(&body), "TOO_LARGE", "{body}");
}

// Under a flood of heavy queries (more than the server runs at once), each heavy request is
// answered — with data, or refused fast with UNAVAILABLE (HTTP 503) — while small queries and
// /healthz keep answering, and nothing panics.
#[test]
fn a_flood_of_heavy_queries_leaves_small_ones_answering() {
    let settings = [
        ("HAYLOFT_GRAPHQL__MAX_CONCURRENT", "1"),
        ("HAYLOFT_GRAPHQL__MAX_QUEUED", "2"),
        ("HAYLOFT_GRAPHQL__QUEUE_TIMEOUT", "1s"),
        ("HAYLOFT_GRAPHQL__TIMEOUT", "30s"),
    ];
    let Some((_env, server)) = server(&settings) else { return };
    let (status, body) = post(&server, HEAVY);
    assert_eq!(status, 200, "the heavy query is within the limits: {body}");
    let flood_done = std::sync::atomic::AtomicBool::new(false);
    let (heavy, probes) = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..12)
            .map(|_| {
                scope.spawn(|| {
                    (0..4)
                        .map(|_| {
                            let (status, body) = post(&server, HEAVY);
                            let outcome = if status == 200 && body["errors"].is_null() {
                                "ok".to_owned()
                            } else {
                                format!("{status} {}", code(&body))
                            };
                            outcome
                        })
                        .collect::<Vec<String>>()
                })
            })
            .collect();
        let prober = scope.spawn(|| {
            let mut probes = Vec::new();
            while !flood_done.load(std::sync::atomic::Ordering::SeqCst) {
                let healthz = server.get("/healthz").status().as_u16();
                let (status, body) = post(&server, SMALL);
                probes.push((healthz, status, body["data"]["item"]["name"].is_string()));
            }
            probes
        });
        let heavy: Vec<String> = clients.into_iter().flat_map(|client| client.join().unwrap()).collect();
        flood_done.store(true, std::sync::atomic::Ordering::SeqCst);
        (heavy, prober.join().unwrap())
    });
    assert_eq!(heavy.len(), 48);
    assert!(heavy.iter().all(|outcome| outcome == "ok" || outcome == "503 UNAVAILABLE"), "{heavy:?}");
    assert!(
        heavy.iter().any(|outcome| outcome == "503 UNAVAILABLE"),
        "twelve clients, one place, two waiting: {heavy:?}"
    );
    assert!(heavy.iter().any(|outcome| outcome == "ok"), "{heavy:?}");
    assert!(!probes.is_empty());
    assert!(probes.iter().all(|probe| *probe == (200, 200, true)), "{probes:?}");
    assert!(!server.logs().contains("panicked"), "{}", server.logs());
}
