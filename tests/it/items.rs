//! The items pipeline against the real capture (`../shared/upstream`) served by `hayloft replay`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{json, Value};

use crate::helpers::{captures, eventually, items_capture, items_snapshot, runs_of, Replay, TestEnv};

/// A test environment whose items come from `upstream` and whose other pipelines stay idle.
fn items_env(upstream: &str) -> Option<TestEnv> {
    Some(TestEnv::new()?.env("HAYLOFT_UPSTREAM_URL", upstream).only(&["items"]).env("HAYLOFT_UPSTREAM__RETRIES", "1"))
}

/// The real capture replayed, an environment that has loaded it once, and the parsed answer
/// (for tests that build a changed capture from it).
struct Loaded {
    env: TestEnv,
    items: Value,
    _replay: Replay,
}

fn loaded_from_real_capture() -> Option<Loaded> {
    let dir = captures()?;
    let items = serde_json::from_slice(&std::fs::read(dir.join("api/items.json")).unwrap()).unwrap();
    let replay = Replay::start(&dir);
    let env = items_env(&replay.url)?;
    let (code, first) = run_items(&env, &[]);
    assert_eq!(code, Some(0), "{first}");
    Some(Loaded { env, items, _replay: replay })
}

fn count(env: &TestEnv, entity: &str) -> i64 {
    env.json(&["count", entity, "--json"])["count"].as_i64().unwrap()
}

fn run_items(env: &TestEnv, extra: &[&str]) -> (Option<i32>, Value) {
    run_items_with(env, extra, &[])
}

/// Runs the items pipeline once with extra arguments and environment variables.
fn run_items_with(env: &TestEnv, extra: &[&str], variables: &[(&str, &str)]) -> (Option<i32>, Value) {
    let mut args = vec!["run", "items", "--json"];
    args.extend_from_slice(extra);
    let output = env.command().args(&args).envs(variables.iter().copied()).output().expect("hayloft runs");
    let summary = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!("no JSON: {}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    });
    (output.status.code(), summary)
}

fn counts(summary: &Value) -> [i64; 4] {
    ["inserted", "updated", "deleted", "unchanged"].map(|key| summary[key].as_i64().unwrap())
}

// A first run loads every row the manifest counts; an immediate second run writes nothing.
#[test]
fn real_capture_loads_with_manifest_counts() {
    let Some(dir) = captures() else { return };
    let replay = Replay::start(&dir);
    let Some(env) = items_env(&replay.url) else { return };
    let (code, first) = run_items(&env, &[]);
    assert_eq!(code, Some(0), "{first}");
    // 1,138 items; 625 crafting + 111 cooking rows; 581 locksmith rows; 58 seed → crop links;
    // 360 well references of which one pair is listed twice (item 459 → 461).
    assert_eq!(
        [
            count(&env, "items"),
            count(&env, "recipes"),
            count(&env, "locksmith"),
            count(&env, "seeds"),
            count(&env, "well")
        ],
        [1138, 736, 581, 58, 359]
    );
    assert_eq!(counts(&first), [2872, 0, 0, 0]);
    let notes: Vec<&str> = first["notes"].as_array().unwrap().iter().map(|note| note.as_str().unwrap()).collect();
    assert!(
        notes.contains(&"skipped 77 stale recipe rows of items that are neither craftable, cookable nor openable"),
        "{notes:?}"
    );
    assert!(notes.contains(&"item 459: well_ids lists item 461 twice; kept once"), "{notes:?}");

    let (code, second) = run_items(&env, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(counts(&second), [0, 0, 0, 0], "an unchanged upstream writes nothing");
    assert!(second["notes"][0].as_str().unwrap().starts_with("upstream unchanged"), "{second}");
    assert_eq!(count(&env, "changes"), 2872, "the unchanged run recorded no change");
}

// An item the game does not buy keeps its upstream sell price, beside its own `canSell` flag
// (a NULL price used to stand for "cannot be sold"). From the capture:
// `{"id": 180, "name": "Book of Schemas", …, "can_sell": 0, "sell_price": 10000}` and
// `{"id": 11, "name": "Peppers", …, "can_sell": 1, "sell_price": 10}`.
#[test]
fn an_unsellable_item_keeps_its_sell_price() {
    let Some(loaded) = loaded_from_real_capture() else { return };
    let raw = |id: i64| loaded.items["items"].as_array().unwrap().iter().find(|item| item["id"] == id).unwrap().clone();
    assert_eq!((raw(180)["can_sell"].clone(), raw(180)["sell_price"].clone()), (json!(0), json!(10000)));
    let server = loaded.env.serve();
    let query = "{ book: item(id: 180) { name sellPrice canSell } peppers: item(id: 11) { name sellPrice canSell } \
                 unsellable: items(filter: { canSell: false }) { totalCount } }";
    let body: Value = reqwest::blocking::Client::new()
        .post(format!("{}/graphql", server.base_url))
        .timeout(Duration::from_secs(20))
        .json(&json!({ "query": query }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(body["errors"].is_null(), "{body}");
    let data = &body["data"];
    assert_eq!(data["book"], json!({"name": "Book of Schemas", "sellPrice": 10000, "canSell": false}));
    assert_eq!(data["peppers"], json!({"name": "Peppers", "sellPrice": 10, "canSell": true}));
    let unsellable = loaded.items["items"].as_array().unwrap().iter().filter(|item| item["can_sell"] == 0).count();
    assert_eq!(data["unsellable"]["totalCount"].as_u64(), Some(unsellable as u64));
}

// Items added, removed, renamed and repriced upstream produce exactly those writes and changes.
#[test]
fn a_changed_capture_produces_exactly_those_changes() {
    let Some(Loaded { env, mut items, _replay }) = loaded_from_real_capture() else { return };

    // Items nothing points at can vanish without touching any other table.
    let mut referenced = BTreeSet::new();
    for recipe in items["recipes"].as_array().unwrap() {
        referenced.insert(recipe["item_id"].as_i64().unwrap());
        referenced.insert(recipe["req_id"].as_i64().unwrap());
    }
    for item in items["items"].as_array().unwrap() {
        for key in ["cooking_recipe", "loot_key_id"] {
            referenced.insert(item[key].as_i64().unwrap());
        }
        for key in ["collect_ids", "well_ids"] {
            referenced.extend(item[key].as_str().unwrap().split(',').filter_map(|id| id.trim().parse::<i64>().ok()));
        }
        if !item["collect_ids"].as_str().unwrap().is_empty() || !item["well_ids"].as_str().unwrap().is_empty() {
            referenced.insert(item["id"].as_i64().unwrap());
        }
    }
    let list = items["items"].as_array_mut().unwrap();
    let removable: Vec<i64> =
        list.iter().map(|item| item["id"].as_i64().unwrap()).filter(|id| !referenced.contains(id)).take(3).collect();
    list.retain(|item| !removable.contains(&item["id"].as_i64().unwrap()));
    let renamed = list[10]["id"].as_i64().unwrap();
    list[10]["name"] = json!("Renamed Thing");
    let repriced_index = list.iter().position(|item| item["can_sell"] == 1).unwrap();
    let repriced = list[repriced_index]["id"].as_i64().unwrap();
    let price = list[repriced_index]["sell_price"].as_i64().unwrap();
    list[repriced_index]["sell_price"] = json!(price + 1);
    for (offset, name) in ["Brand New Hoe", "Brand New Rake"].iter().enumerate() {
        let mut added = list[0].clone();
        added["id"] = json!(5000 + offset);
        added["name"] = json!(name);
        list.push(added);
    }
    let changed = items_capture(&serde_json::to_vec(&items).unwrap());
    let changed_replay = Replay::start(changed.path());
    let env = env.env("HAYLOFT_UPSTREAM_URL", &changed_replay.url);

    let (code, run) = run_items(&env, &[]);
    assert_eq!(code, Some(0), "{run}");
    assert_eq!(counts(&run)[..3], [2, 2, 3], "{run}");
    let feed = env.json(&["changes", "--run", &run["run_id"].to_string(), "--json"]);
    let mut seen: Vec<(String, String, String)> = feed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| {
            let key = change["key"].as_str().unwrap().to_owned();
            let fields: Vec<&str> =
                change["fields"].as_array().unwrap().iter().map(|field| field.as_str().unwrap()).collect();
            (change["op"].as_str().unwrap().to_owned(), key, fields.join(","))
        })
        .collect();
    seen.sort();
    let mut expected: Vec<(String, String, String)> = vec![
        ("insert".into(), "5000".into(), String::new()),
        ("insert".into(), "5001".into(), String::new()),
        ("update".into(), renamed.to_string(), "name".into()),
        ("update".into(), repriced.to_string(), "sell_price".into()),
    ];
    expected.extend(removable.iter().map(|id| ("delete".to_owned(), id.to_string(), String::new())));
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(count(&env, "items"), 1138 - 3 + 2);
}

// New items that reference each other are written in two steps (first without the references,
// then whole), and the recipe rows a capture drops are deleted — only those — in the same run.
#[test]
fn a_reference_cycle_and_dropped_recipe_rows_load_in_one_run() {
    let Some(Loaded { env, mut items, _replay }) = loaded_from_real_capture() else { return };
    let before = items_snapshot(&env);

    let list = items["items"].as_array_mut().unwrap();
    let template = list[0].clone();
    for (id, partner) in [(6000, 6001), (6001, 6000)] {
        let mut added = template.clone();
        added["id"] = json!(id);
        added["name"] = json!(format!("Cycle Key {id}"));
        added["loot_key_id"] = json!(partner);
        list.push(added);
    }
    let containers: BTreeSet<i64> = before["locksmith_contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["container_id"].as_i64().unwrap())
        .collect();
    let mut crafted: Vec<i64> = before["recipe_ingredients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["item_id"].as_i64().unwrap())
        .filter(|item| !containers.contains(item))
        .collect();
    crafted.dedup();
    crafted.truncate(2);
    items["recipes"].as_array_mut().unwrap().retain(|row| !crafted.contains(&row["item_id"].as_i64().unwrap()));
    let kept_recipes: Vec<Value> = before["recipe_ingredients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| !crafted.contains(&row["item_id"].as_i64().unwrap()))
        .cloned()
        .collect();
    let dropped = before["recipe_ingredients"].as_array().unwrap().len() - kept_recipes.len();
    assert!(crafted.len() == 2 && dropped > 2, "two items with several recipe rows each: {crafted:?}");

    let changed = items_capture(&serde_json::to_vec(&items).unwrap());
    let changed_replay = Replay::start(changed.path());
    let env = env.env("HAYLOFT_UPSTREAM_URL", &changed_replay.url);
    let (code, run) = run_items(&env, &[]);
    assert_eq!(code, Some(0), "{run}");
    assert_eq!(counts(&run)[..3], [2, 0, dropped as i64], "{run}");
    let notes: Vec<&str> = run["notes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(notes.contains(&"items: 2 rows reference each other in a cycle; written in two steps"), "{notes:?}");

    let after = items_snapshot(&env);
    let loot_key = |id: i64| {
        after["items"].as_array().unwrap().iter().find(|item| item["id"] == id).map(|item| item["loot_key_id"].clone())
    };
    assert_eq!((loot_key(6000), loot_key(6001)), (Some(json!(6001)), Some(json!(6000))));
    assert_eq!(after["recipe_ingredients"].as_array().unwrap(), &kept_recipes);
    for table in ["locksmith_contents", "seed_crops", "wishing_well_outputs"] {
        assert_eq!(after[table], before[table], "{table}");
    }
}

// A capture with most items missing trips the delete guard: nothing changes, the reason is
// clear, and --allow-mass-delete lets it through once.
#[test]
fn most_items_missing_trips_the_guard() {
    let Some(Loaded { env, mut items, _replay }) = loaded_from_real_capture() else { return };
    let before = items_snapshot(&env);

    items["items"].as_array_mut().unwrap().truncate(100);
    let shrunk = items_capture(&serde_json::to_vec(&items).unwrap());
    let shrunk_replay = Replay::start(shrunk.path());
    let env = env.env("HAYLOFT_UPSTREAM_URL", &shrunk_replay.url);
    let (code, refused) = run_items(&env, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(refused["status"], "failed");
    assert_eq!(refused["failure"], "refused", "stored as a refusal, not just worded as one");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("1038 of 1138 rows of items") && error.contains("--allow-mass-delete"), "{error}");
    assert_eq!(items_snapshot(&env), before, "a refused run changes nothing");

    let (code, forced) = run_items(&env, &["--allow-mass-delete"]);
    assert_eq!(code, Some(0), "{forced}");
    assert_eq!(count(&env, "items"), 100);
}

/// One kind of bad upstream answer and the words its failure must contain.
struct BadInput {
    what: &'static str,
    upstream: String,
    variables: Vec<(&'static str, &'static str)>,
    expected: &'static str,
}

impl BadInput {
    fn new(what: &'static str, upstream: String, expected: &'static str) -> Self {
        Self { what, upstream, variables: Vec::new(), expected }
    }

    fn with(mut self, key: &'static str, value: &'static str) -> Self {
        self.variables.push((key, value));
        self
    }
}

/// Serves `response` (raw HTTP) to every connection, or holds connections open when `None`.
fn misbehaving_server(response: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(20).flatten() {
            let mut stream = stream;
            let mut buffer = [0_u8; 4096];
            let _ = stream.read(&mut buffer);
            match response {
                Some(response) => {
                    let _ = stream.write_all(response.as_bytes());
                }
                None => held.push(stream),
            }
        }
    });
    format!("http://{addr}/")
}

// Each kind of bad input fails the run with a one-line reason and leaves the data intact.
#[test]
fn bad_inputs_fail_cleanly_and_keep_the_data() {
    let Some(Loaded { env, items, _replay: replay }) = loaded_from_real_capture() else { return };
    let before = items_snapshot(&env);

    let real = serde_json::to_vec(&items).unwrap();
    let truncated = items_capture(&real[..real.len() / 2]);
    let html = items_capture(b"<!DOCTYPE html><html><body><h1>Down for maintenance</h1></body></html>");
    let empty = items_capture(br#"{"items": [], "recipes": []}"#);
    let truncated_replay = Replay::start(truncated.path());
    let html_replay = Replay::start(html.path());
    let empty_replay = Replay::start(empty.path());
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", listener.local_addr().unwrap())
    };
    let cases: Vec<BadInput> = vec![
        BadInput::new("truncated JSON", truncated_replay.url.clone(), "looks truncated"),
        BadInput::new("an HTML page", html_replay.url.clone(), "HTML page instead of JSON"),
        BadInput::new("an empty list", empty_replay.url.clone(), "empty item list"),
        BadInput::new("a refused connection", closed, "cannot connect"),
        BadInput::new(
            "a server error",
            misbehaving_server(Some("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n")),
            "HTTP 500",
        ),
        BadInput::new("a timeout", misbehaving_server(None), "did not answer within")
            .with("HAYLOFT_UPSTREAM__TIMEOUT", "300ms"),
        BadInput::new("an oversized body", replay.url.clone(), "larger than the 10000-byte limit")
            .with("HAYLOFT_UPSTREAM__MAX_BODY_BYTES", "10000"),
    ];
    for BadInput { what, upstream, mut variables, expected } in cases {
        variables.push(("HAYLOFT_UPSTREAM_URL", &upstream));
        let (code, run) = run_items_with(&env, &[], &variables);
        assert_eq!(code, Some(1), "{what}: {run}");
        let error = run["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "{what}: {error}");
        assert!(!error.contains('\n'), "{what}: one line");
        assert_eq!(items_snapshot(&env), before, "{what} changed the data");
    }
}

// One row with a wrong type is reported and skipped; its stored version stays.
#[test]
fn a_bad_row_is_reported_and_its_stored_version_kept() {
    let Some(Loaded { env, mut items, _replay }) = loaded_from_real_capture() else { return };
    let before = items_snapshot(&env);
    let broken_id = items["items"][5]["id"].as_i64().unwrap();
    items["items"][5]["sell_price"] = json!("a lot");
    let capture = items_capture(&serde_json::to_vec(&items).unwrap());
    let broken_replay = Replay::start(capture.path());
    let env = env.env("HAYLOFT_UPSTREAM_URL", &broken_replay.url);
    let (code, run) = run_items(&env, &[]);
    assert_eq!(code, Some(0), "{run}");
    let feed = env.json(&["changes", "--run", &run["run_id"].to_string(), "--json"]);
    assert_eq!(counts(&run)[..3], [0, 0, 0], "{run}\n{feed}");
    let note = run["notes"][0].as_str().unwrap();
    assert!(note.starts_with(&format!("item {broken_id} skipped, its stored version kept: sell_price:")), "{note}");
    assert_eq!(items_snapshot(&env), before);
}

// An item whose id cannot be read could be any stored item: the run deletes nothing — not
// that item, not its recipe or locksmith rows — and says why.
#[test]
fn a_row_without_a_readable_key_deletes_nothing() {
    let Some(Loaded { env, mut items, _replay }) = loaded_from_real_capture() else { return };
    let before = items_snapshot(&env);
    let with_recipe: BTreeSet<i64> =
        items["recipes"].as_array().unwrap().iter().map(|recipe| recipe["item_id"].as_i64().unwrap()).collect();
    let list = items["items"].as_array_mut().unwrap();
    let index = list.iter().position(|item| with_recipe.contains(&item["id"].as_i64().unwrap())).unwrap();
    let nulled = list[index]["id"].take();
    let capture = items_capture(&serde_json::to_vec(&items).unwrap());
    let broken_replay = Replay::start(capture.path());
    let env = env.env("HAYLOFT_UPSTREAM_URL", &broken_replay.url);
    let (code, run) = run_items(&env, &[]);
    assert_eq!(code, Some(0), "{run}");
    assert_eq!(counts(&run)[..3], [0, 0, 0], "{run}");
    let notes: Vec<&str> = run["notes"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(
        notes.iter().any(|note| note.starts_with("1 item rows without a readable key: no row of items")),
        "{notes:?}"
    );
    assert_eq!(items_snapshot(&env), before);

    // A recipe row whose item cannot be read keeps every stored recipe row, even those of an
    // item whose recipe rows really vanished from this answer.
    items["items"].as_array_mut().unwrap()[index]["id"] = nulled;
    let recipes = items["recipes"].as_array_mut().unwrap();
    let vanished = recipes[1]["item_id"].as_i64().unwrap();
    recipes.retain(|recipe| recipe["item_id"] != vanished);
    recipes[0]["item_id"] = json!("not a number");
    let capture = items_capture(&serde_json::to_vec(&items).unwrap());
    let broken_replay = Replay::start(capture.path());
    let env = env.env("HAYLOFT_UPSTREAM_URL", &broken_replay.url);
    let (code, run) = run_items(&env, &[]);
    assert_eq!(code, Some(0), "{run}");
    assert_eq!(counts(&run)[..3], [0, 0, 0], "{run}");
    assert_eq!(items_snapshot(&env), before, "{run}");
}

// With a broken upstream, serve fails the run and keeps answering.
#[test]
fn serve_survives_a_broken_upstream() {
    let html = items_capture(b"<html>oops</html>");
    let replay = Replay::start(html.path());
    let Some(env) = items_env(&replay.url) else { return };
    let server = env.serve();
    let failed = eventually(Duration::from_secs(15), || {
        runs_of(&env, "items").into_iter().find(|run| run["status"] == "failed")
    })
    .unwrap_or_else(|| panic!("the items run did not fail:\n{}", server.logs()));
    assert!(failed["error"].as_str().unwrap().contains("HTML page"));
    assert_eq!(server.get("/healthz").status(), 200);
}

// SIGKILL before, during and after a load's write: after a restart the database holds exactly
// the rows of an uninterrupted run, and the ledger shows the interrupted run as abandoned.
#[test]
fn killed_loads_converge_after_restart() {
    let Some(dir) = captures() else { return };
    let replay = Replay::start(&dir);
    let Some(reference) = items_env(&replay.url) else { return };
    assert_eq!(run_items(&reference, &[]).0, Some(0));
    let expected = items_snapshot(&reference);

    for point in ["items.before-write", "items.during-write", "items.after-write"] {
        let Some(env) = items_env(&replay.url) else { return };
        let paused = env.env("HAYLOFT_PAUSE_AT", point);
        let mut server = paused.serve();
        eventually(Duration::from_secs(20), || server.logs().contains("paused at failpoint").then_some(()))
            .unwrap_or_else(|| panic!("{point} was never reached:\n{}", server.logs()));
        server.signal(Signal::SIGKILL);
        server.wait_exit(Duration::from_secs(5)).expect("killed");

        let env = paused.env("HAYLOFT_PAUSE_AT", "");
        let server = env.serve();
        let runs = eventually(Duration::from_secs(20), || {
            let runs = runs_of(&env, "items");
            (runs.first()?["status"] == "succeeded").then_some(runs)
        })
        .unwrap_or_else(|| {
            panic!("{point}: no recovery run succeeded: {:?}\n{}", runs_of(&env, "items"), server.logs())
        });
        assert_eq!(runs[1]["status"], "abandoned", "{point}: {runs:?}");
        assert_eq!(runs[0]["trigger"], "recovery", "{point}");
        assert_eq!(items_snapshot(&env), expected, "{point}: the rows differ from an uninterrupted run");
    }
}
