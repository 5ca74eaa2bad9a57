//! Several nodes on one database: each slot runs once whatever the nodes' clocks say, a queued
//! run goes to exactly one claimant, a node paused past its takeover commits nothing, and a
//! fan-out's pages are shared among the nodes, a killed node's pages going to the others.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use hayloft::db::ledger::SqlLedger;
use hayloft::db::{Database, DatabaseUrl};
use hayloft_actors::ledger::{ClaimRequest, Ledger, LedgerError, Trigger};
use nix::sys::signal::Signal;

use crate::helpers::{eventually, runs_of, stored_rows, without_colours, CountingUpstream, TestEnv};

fn claim(owner: &'static str, trigger: Trigger) -> ClaimRequest<'static> {
    ClaimRequest { pipeline: "demo", trigger, owner, lease: Duration::from_secs(60), slot: None }
}

// Two nodes race for one queued run, many times over: each time exactly one gets it and the
// other gets nothing (no second owner, no second run).
#[test]
fn two_nodes_claiming_one_queued_run_only_one_gets_it() {
    let Some(env) = TestEnv::new() else { return };
    let url = DatabaseUrl::parse(&env.database_url).unwrap();
    url.migrate().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        // Each node has its own pool, as two processes would.
        let a = Arc::new(SqlLedger::new(Database::connect(&url, 2).await.unwrap()));
        let b = Arc::new(SqlLedger::new(Database::connect(&url, 2).await.unwrap()));
        for round in 0..20 {
            // A run of a node that goes away, handed over: one queued attempt waits.
            let first = a.claim(claim("gone", Trigger::Manual)).await.unwrap();
            assert_eq!(a.hand_over("gone").await.unwrap().len(), 1, "round {round}");
            let (left, right) = tokio::join!(
                tokio::spawn({
                    let a = a.clone();
                    async move { a.claim(claim("node-a", Trigger::Recovery)).await }
                }),
                tokio::spawn({
                    let b = b.clone();
                    async move { b.claim(claim("node-b", Trigger::Recovery)).await }
                }),
            );
            let outcomes = [left.unwrap(), right.unwrap()];
            let winners: Vec<_> = outcomes.iter().filter_map(|outcome| outcome.as_ref().ok()).collect();
            assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
            let winner = winners[0];
            assert_eq!((winner.attempt, winner.epoch), (2, 1), "round {round}: the queued attempt, claimed once");
            assert!(winner.id > first.id);
            for loser in outcomes.iter().filter_map(|outcome| outcome.as_ref().err()) {
                assert!(
                    matches!(loser, LedgerError::AlreadyRunning { .. } | LedgerError::NothingQueued(_)),
                    "round {round}: {loser}"
                );
            }
            // Only the winner's claim holds the run: the other node, or an older epoch, cannot
            // finish it.
            let owner = winner.owner.clone().unwrap();
            let other = if owner == "node-a" { "node-b" } else { "node-a" };
            let outcome = || hayloft_actors::ledger::RunOutcome::succeeded(Default::default(), Vec::new());
            let mut forged = winner.claim();
            forged.node = Arc::from(other);
            let refused = b.finish(&forged, outcome()).await.unwrap_err();
            assert!(matches!(refused, LedgerError::LeaseLost { .. }), "round {round}: {refused}");
            let mut stale = winner.claim();
            stale.epoch -= 1;
            let refused = b.finish(&stale, outcome()).await.unwrap_err();
            assert!(matches!(refused, LedgerError::LeaseLost { .. }), "round {round}: {refused}");
            a.finish(&winner.claim(), outcome())
                .await
                .unwrap_or_else(|error| panic!("round {round}: {owner}: {error}"));
        }
    });
}

/// A server that runs only the demo pipeline, every `every`, as node `node`.
fn demo_node(env: &TestEnv, node: &str, schedule: &str) -> TestEnv {
    env.sibling()
        .only(&["demo"])
        .env("HAYLOFT_NODE_ID", node)
        .env("HAYLOFT_PIPELINES__DEMO__SCHEDULE", schedule)
        .env("HAYLOFT_SSH__ENABLED", "false")
}

// Two nodes, one with its scheduler clock 900 ms ahead: it fires each slot first, the other one
// fires the same slot later and is refused. Every slot has exactly one run, none is missed.
#[test]
fn a_slot_runs_once_even_when_node_clocks_disagree() {
    let Some(env) = TestEnv::new() else { return };
    let early = demo_node(&env, "early", "@every 2s").env("HAYLOFT_TEST_CLOCK_OFFSET", "+900ms");
    let late = demo_node(&env, "late", "@every 2s");
    let early_server = early.serve();
    let _late = late.serve();
    let scheduled = |env: &TestEnv| -> Vec<serde_json::Value> {
        runs_of(env, "demo")
            .into_iter()
            .filter(|run| run["trigger"] == "schedule" && run["status"] == "succeeded")
            .collect()
    };
    let runs = eventually(Duration::from_secs(60), || Some(scheduled(&env)).filter(|runs| runs.len() >= 5))
        .unwrap_or_else(|| panic!("five scheduled runs did not happen: {:?}", runs_of(&env, "demo")));
    let slots: Vec<String> =
        runs.iter().map(|run| run["slot"].as_str().expect("a scheduled run names its slot").to_owned()).collect();
    let distinct: BTreeSet<&String> = slots.iter().collect();
    assert_eq!(distinct.len(), slots.len(), "a slot ran twice: {slots:?}");
    // Consecutive slots two seconds apart: none was missed.
    let instants: Vec<chrono::DateTime<chrono::Utc>> = distinct.iter().map(|slot| slot.parse().unwrap()).collect();
    for pair in instants.windows(2) {
        assert_eq!((pair[1] - pair[0]).num_milliseconds(), 2_000, "a slot was missed: {slots:?}");
    }
    let status = env.json(&["nodes", "--json"]);
    let nodes: BTreeSet<&str> =
        status["nodes"].as_array().unwrap().iter().filter_map(|node| node["node"].as_str()).collect();
    assert!(nodes.contains("early") && nodes.contains("late"), "{status}");

    // Every front door shows both nodes, and which node ran each run.
    let metrics = early_server.get("/metrics").text().unwrap();
    assert!(metrics.contains("hayloft_nodes{state=\"live\"} 2"), "{metrics}");
    assert!(metrics.contains("hayloft_node_heartbeat_age_seconds{node=\"late\""), "{metrics}");
    let dashboard = early_server.get("/dashboard/nodes").text().unwrap();
    assert!(dashboard.contains("data-node=\"early\"") && dashboard.contains("data-node=\"late\""), "{dashboard}");
    let answer: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("{}/graphql", early_server.base_url))
        .json(
            &serde_json::json!({ "query": "{ nodes { id state } runs(pipeline: \"demo\", first: 5) { node slot } }" }),
        )
        .timeout(Duration::from_secs(20))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let graphql_nodes: BTreeSet<&str> =
        answer["data"]["nodes"].as_array().unwrap().iter().filter_map(|node| node["id"].as_str()).collect();
    assert!(graphql_nodes.contains("early") && graphql_nodes.contains("late"), "{answer}");
    let ran_by: BTreeSet<&str> =
        answer["data"]["runs"].as_array().unwrap().iter().filter_map(|run| run["node"].as_str()).collect();
    assert!(!ran_by.is_empty() && ran_by.iter().all(|node| ["early", "late"].contains(node)), "{answer}");
}

// A node paused (SIGSTOP) in the middle of a run for longer than dead_after: another node takes
// the run over and finishes it; the paused node, resumed, commits nothing and says why.
#[test]
fn a_paused_node_commits_nothing_after_its_run_was_taken_over() {
    let Some(env) = TestEnv::new() else { return };
    let survivor = demo_node(&env, "survivor", "never");
    let _survivor = survivor.serve();
    let paused_env = demo_node(&env, "paused", "never")
        .env("HAYLOFT_PIPELINES__DEMO__DELAY", "4s")
        .env("HAYLOFT_PIPELINES__DEMO__ROWS", "50");
    let mut paused = paused_env
        .command()
        .args(["run", "demo", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first = eventually(Duration::from_secs(30), || {
        runs_of(&env, "demo").into_iter().find(|run| run["status"] == "running" && run["node"] == "paused")
    })
    .expect("the paused node's run started");
    let pid = nix::unistd::Pid::from_raw(paused.id() as i32);
    nix::sys::signal::kill(pid, Signal::SIGSTOP).unwrap();
    // Counted dead after 5 s of silence; the survivor runs the queued attempt with its 100 rows.
    let taken_over = eventually(Duration::from_secs(60), || {
        runs_of(&env, "demo").into_iter().find(|run| run["status"] == "succeeded" && run["node"] == "survivor")
    });
    nix::sys::signal::kill(pid, Signal::SIGCONT).unwrap();
    let taken_over = taken_over.unwrap_or_else(|| panic!("no takeover: {:?}", runs_of(&env, "demo")));
    assert_eq!((taken_over["attempt"].as_i64(), taken_over["trigger"].as_str()), (Some(2), Some("recovery")));

    let output = eventually(Duration::from_secs(60), || paused.try_wait().unwrap().map(|_| ()))
        .map(|()| paused.wait_with_output().unwrap())
        .expect("the resumed node finished");
    let said = without_colours(&format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ));
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("claim lost"), "the resumed node must say it lost its claim: {said}");
    let rows = stored_rows::<hayloft::pipelines::demo::DemoRecord>(&env);
    assert_eq!(rows.len(), 100, "the paused node's 50 rows must not have been committed");
    let first_now = runs_of(&env, "demo").into_iter().find(|run| run["run_id"] == first["run_id"]).unwrap();
    assert_eq!(first_now["status"], "abandoned", "{first_now}");
}

const TOKEN: &str = "cluster-test-token";

/// A server that runs only items and item pages (never on schedule), as node `node`, sending
/// `node` as its User-Agent so the upstream can tell the nodes apart.
fn fan_out_node(env: &TestEnv, node: &str) -> TestEnv {
    env.sibling().env("HAYLOFT_NODE_ID", node).env("HAYLOFT_UPSTREAM__USER_AGENT", node)
}

/// Starts a run of `pipeline` on `server` (through the GraphQL mutation) and returns its id.
fn start_run(server: &crate::helpers::Server, pipeline: &str) -> i64 {
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/graphql", server.base_url))
        .bearer_auth(TOKEN)
        .timeout(Duration::from_secs(20))
        .json(&serde_json::json!({ "query": format!("mutation {{ runPipeline(name: \"{pipeline}\") {{ id }} }}") }))
        .send()
        .unwrap();
    let body: serde_json::Value = response.json().unwrap();
    body["data"]["runPipeline"]["id"].as_i64().unwrap_or_else(|| panic!("no run started: {body}"))
}

/// The item-page requests among `seen`.
fn item_pages(seen: &[crate::helpers::Seen]) -> Vec<&crate::helpers::Seen> {
    seen.iter().filter(|seen| seen.request.starts_with("/item.php")).collect()
}

/// Sorted JSON rows of a table, to compare two databases.
fn sorted_rows<R: hayloft::pipelines::shared::table::StoredRow>(env: &TestEnv) -> Vec<String> {
    let mut rows: Vec<String> = stored_rows::<R>(env).iter().map(|row| row.to_string()).collect();
    rows.sort();
    rows
}

// Three real nodes share one fan-out: every item page is fetched exactly once, each node
// fetching about a third; after one node is killed in the middle of a run, only the pages it
// had in hand are fetched again; the rows equal a single node's.
#[test]
fn three_nodes_share_a_fan_out_and_a_kill_refetches_only_pages_in_flight() {
    use hayloft::pipelines::item_pages::{ItemDetail, ItemSource};
    let Some(base) = TestEnv::new() else { return };
    let data = tempfile::tempdir().unwrap();
    let written = base.run(&["demo-data", "--out", data.path().to_str().unwrap()]);
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    let upstream = CountingUpstream::start(data.path());
    // 150 requests a second for the whole cluster, 6 in flight: 50 and 2 per node.
    let base = base
        .only(&["items", "item_pages"])
        .env("HAYLOFT_UPSTREAM_URL", &upstream.url)
        .env("HAYLOFT_UPSTREAM__RATE_PER_SECOND", "150")
        .env("HAYLOFT_UPSTREAM__CONCURRENCY", "6")
        .env("HAYLOFT_UPSTREAM__RETRIES", "0")
        .env("HAYLOFT_PIPELINES__ITEMS__SCHEDULE", "never")
        .env("HAYLOFT_PIPELINES__ITEM_PAGES__SCHEDULE", "never")
        .env("HAYLOFT_SSH__ENABLED", "false")
        .env("HAYLOFT_ADMIN_TOKEN", TOKEN);
    let loaded = base.json(&["run", "items", "--json"]);
    assert_eq!(loaded["status"], "succeeded", "{loaded}");
    let items = base.json(&["count", "items", "--json"]);
    let pages = items["count"].as_u64().unwrap_or_else(|| panic!("{items}")) as usize;

    let names = ["node-a", "node-b", "node-c"];
    // Each node keeps its own directory (and its log) for the whole test.
    let nodes: Vec<TestEnv> = names.iter().map(|name| fan_out_node(&base, name)).collect();
    let mut servers: Vec<_> = nodes.iter().map(TestEnv::serve).collect();
    // Each node takes its share once every other node counts it.
    for server in &servers {
        eventually(Duration::from_secs(60), || server.logs().contains("shared among 3 live nodes").then_some(()))
            .unwrap_or_else(|| panic!("the node never counted three nodes:\n{}", server.logs()));
    }
    upstream.reset();
    let run_id = start_run(&servers[0], "item_pages");
    let finished = eventually(Duration::from_secs(120), || {
        runs_of(&base, "item_pages").into_iter().find(|run| run["run_id"] == run_id && run["status"] != "running")
    })
    .expect("the fan-out run finished");
    assert_eq!(finished["status"], "succeeded", "{finished}");
    let seen = upstream.seen();
    let fetched = item_pages(&seen);
    let distinct: BTreeSet<&str> = fetched.iter().map(|seen| seen.request.as_str()).collect();
    assert_eq!((fetched.len(), distinct.len()), (pages, pages), "every item page exactly once");
    for name in names {
        let share = fetched.iter().filter(|seen| seen.user_agent == name).count() as f64 / pages as f64;
        assert!((0.23..=0.43).contains(&share), "{name} fetched {:.0} % of the pages", share * 100.0);
    }

    // The same rows as one node on its own.
    let single = TestEnv::new()
        .unwrap()
        .env("HAYLOFT_UPSTREAM_URL", &upstream.url)
        .env("HAYLOFT_UPSTREAM__RATE_PER_SECOND", "100000");
    assert_eq!(single.json(&["run", "items", "--json"])["status"], "succeeded");
    assert_eq!(single.json(&["run", "item_pages", "--json"])["status"], "succeeded");
    assert_eq!(sorted_rows::<ItemDetail>(&base), sorted_rows::<ItemDetail>(&single));
    assert_eq!(sorted_rows::<ItemSource>(&base), sorted_rows::<ItemSource>(&single));

    // Again, killing the node that owns the run a third of the way through, and starting it
    // again at once under its id: the others take the run over (a retry that keeps the pages
    // already done), and the killed node's pages go back to the nodes at once.
    upstream.reset();
    let run_id = start_run(&servers[0], "item_pages");
    eventually(Duration::from_secs(60), || (item_pages(&upstream.seen()).len() >= pages / 3).then_some(()))
        .expect("the second run fetched a third of the pages");
    servers[0].signal(Signal::SIGKILL);
    // Restarted under its id, but telling the upstream apart from the process that was killed
    // (whose last requests may reach the upstream's log after the kill).
    let restarted = fan_out_node(&base, "node-a").env("HAYLOFT_UPSTREAM__USER_AGENT", "node-a-restarted");
    servers[0] = restarted.serve();
    let retried = eventually(Duration::from_secs(120), || {
        runs_of(&base, "item_pages")
            .into_iter()
            .find(|run| run["run_id"].as_i64() > Some(run_id) && run["status"] == "succeeded")
    })
    .unwrap_or_else(|| panic!("no retry finished: {:?}", runs_of(&base, "item_pages")));
    assert_eq!(retried["trigger"], "recovery", "{retried}");
    let seen = upstream.seen();
    let fetched = item_pages(&seen);
    let mut times: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for seen in &fetched {
        *times.entry(seen.request.as_str()).or_default() += 1;
    }
    assert_eq!(times.len(), pages, "every page was fetched");
    let again: Vec<&str> = times.iter().filter(|(_, times)| **times > 1).map(|(request, _)| *request).collect();
    let askers = |request: &str| -> Vec<&str> {
        fetched.iter().filter(|seen| seen.request == request).map(|seen| seen.user_agent.as_str()).collect()
    };
    // In hand on the killed node: at most its batch (twice the concurrency), and each one a
    // page the killed process had asked for first.
    assert!(again.len() <= 12, "fetched again: {again:?}");
    for request in &again {
        assert_eq!(askers(request).first(), Some(&"node-a"), "{request} was fetched by {:?}", askers(request));
    }
    assert_eq!(sorted_rows::<ItemDetail>(&base), sorted_rows::<ItemDetail>(&single));
    servers.clear();
}
