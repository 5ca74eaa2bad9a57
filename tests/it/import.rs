//! `hayloft import`: the original system's dumps (`_seed/` in the captures) imported over the
//! sources loaded from the real captures, once, as one ledger run with its change feed; and
//! dumps that cannot be read failing without writing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::helpers::{captures, runs_of, stored_rows, Replay, TestEnv};
use crate::pets::load_seed_pets;
use crate::sources::run;
use hayloft::import::rows::{ManualProduction, PasswordClue, SkillLevelReward};
use hayloft::pipelines::community::CommunityGoal;
use hayloft::pipelines::exchange::ExchangeOffer;
use hayloft::pipelines::tent::TentOffer;

/// The sources whose tables the dumps add to or are compared with.
const LOADED_FIRST: [&str; 6] = ["items", "npcs", "tent", "community", "exchange", "passwords"];

/// `hayloft import <files> --json`: its exit code and its run.
fn import(env: &TestEnv, files: &[PathBuf]) -> (Option<i32>, Value) {
    let mut command = env.command();
    command.args(["import", "--json"]).args(files);
    let output = command.output().expect("hayloft runs");
    let run = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "import printed no JSON ({error}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), run)
}

/// Imports every dump file into `env`'s database, for tests over every entity; `false` (after
/// a visible skip) without captures.
pub(crate) fn import_seed(env: &TestEnv) -> bool {
    let Some(dir) = captures() else { return false };
    let (files, _) = seed_files(&dir);
    let (code, run) = import(env, &files);
    assert_eq!((code, run["status"].as_str()), (Some(0), Some("succeeded")), "{run}");
    true
}

fn written(run: &Value) -> i64 {
    ["inserted", "updated", "deleted"].iter().map(|key| run[key].as_i64().unwrap()).sum()
}

fn notes(run: &Value) -> Vec<String> {
    run["notes"].as_array().unwrap().iter().map(|note| note.as_str().unwrap().to_owned()).collect()
}

/// The dump files, and their records counted per model (`None`: the two model-less lists).
fn seed_files(dir: &Path) -> (Vec<PathBuf>, BTreeMap<Option<String>, usize>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("_seed"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "json"))
        .collect();
    files.sort();
    let mut counts = BTreeMap::new();
    for file in &files {
        let records: Vec<Value> = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        for record in records {
            *counts.entry(record["model"].as_str().map(str::to_owned)).or_default() += 1;
        }
    }
    (files, counts)
}

// Every file imports: each model's records are all accounted for (as rows, or compared with
// the live sources' rows), the values are the dump's, the run is in the ledger with trigger
// `import` and its change feed; a second import writes nothing.
#[test]
fn the_original_systems_dumps_import_once() {
    let Some(dir) = captures() else { return };
    let replay = Replay::start(&dir);
    let Some(env) = TestEnv::new() else { return };
    let env = env.only(&LOADED_FIRST).env("HAYLOFT_UPSTREAM_URL", &replay.url);
    for source in LOADED_FIRST {
        let summary = run(&env, source).remove(0);
        assert_eq!(summary["status"], "succeeded", "{summary}");
    }
    assert!(load_seed_pets(&env));
    let (files, counts) = seed_files(&dir);
    assert_eq!(files.len(), 8, "{files:?}");

    let (code, first) = import(&env, &files);
    assert_eq!((code, first["status"].as_str()), (Some(0), Some("succeeded")), "{first}");
    assert_eq!((first["pipeline"].as_str(), first["trigger"].as_str()), (Some("import"), Some("import")));
    let notes = notes(&first);
    let note = |prefix: &str| {
        notes
            .iter()
            .find(|note| note.starts_with(prefix))
            .cloned()
            .unwrap_or_else(|| panic!("no {prefix:?} in {notes:?}"))
    };
    // Every model's records are counted whole, and none is skipped: every item, NPC, pet and
    // reward they name is stored.
    for (model, expected) in [
        ("pets.pet", counts[&Some("pets.pet".to_owned())]),
        ("pets.petitem", counts[&Some("pets.petitem".to_owned())]),
        ("npcs.npcreward", 146),
        ("items.skilllevelreward", 141),
        ("items.manualproduction", 36),
        ("borgen.borgenitem", 267),
        ("community_center.communitycenter", 503),
        ("exchange-center log", 3616),
        ("password list", 179),
    ] {
        assert!(note(&format!("{model}: ")).starts_with(&format!("{model}: {expected} records → ")), "{notes:?}");
        assert!(
            !notes.iter().any(|note| note.starts_with(&format!("{model}: ")) && note.contains("skipped")),
            "{notes:?}"
        );
    }
    assert_eq!(counts[&None], 3616 + 179, "the two model-less lists");
    assert_eq!(note("pets.pet: "), "pets.pet: 23 records → 23 pet rows");
    assert_eq!(note("pets.petitem: "), "pets.petitem: 276 records → 276 pet item rows");

    // `{"model": "items.skilllevelreward", "pk": 0, "fields": {"skill": "farming", "level": 10,
    // "order": 1, "item": "31", "item_quantity": 12}}` and `{"pk": 2, "fields": {"skill":
    // "farming", "level": 10, "order": 3, "silver": 1500}}`
    let skill = stored_rows::<SkillLevelReward>(&env);
    assert_eq!(skill.len(), 141);
    let level_10: Vec<&Value> = skill.iter().filter(|row| row["skill"] == "farming" && row["level"] == 10).collect();
    assert!(level_10.contains(
        &&json!({"skill": "farming", "level": 10, "slot": 1, "kind": "item", "item_id": 31, "quantity": 12})
    ));
    assert!(level_10.contains(
        &&json!({"skill": "farming", "level": 10, "slot": 3, "kind": "silver", "item_id": null, "quantity": 1500})
    ));
    // `{"model": "items.manualproduction", "pk": 0, "fields": {"item": "35", "line_one":
    // "Sawmill", "line_two": "Building", "image": "/img/items/sawmill_sm.png", "value": "Hourly",
    // "sort": 60, …}}`
    let productions = stored_rows::<ManualProduction>(&env);
    assert_eq!(productions.len(), 36);
    assert!(productions.contains(&json!({"id": 0, "item_id": 35, "line_one": "Sawmill", "line_two": "Building",
        "image": "/img/items/sawmill_sm.png", "rate": "Hourly", "sort": 60})));
    // `{"clue1": "Speak friend and enter", …, "group": "Winter Event 2022", "password": "mellon"}`
    let clues = stored_rows::<PasswordClue>(&env);
    assert_eq!(clues.len(), 179);
    let mellon = clues.iter().find(|clue| clue["password"] == "mellon").unwrap();
    assert_eq!((&mellon["event"], &mellon["clue1"]), (&json!("Winter Event 2022"), &json!("Speak friend and enter")));
    // `{"model": "borgen.borgenitem", "pk": 8, "fields": {"date": "2022-04-13", "item": "44",
    // "price": 1, …}}`: a Wednesday, the tent's week.
    let tent = stored_rows::<TentOffer>(&env);
    assert!(tent.iter().any(|offer| offer["week"] == "2022-04-13" && offer["item_id"] == 44 && offer["price"] == 1));
    // `{"model": "community_center.communitycenter", "pk": 10, "fields": {"date": "2021-12-27",
    // "input_item": "349", "input_quantity": 400000, "output_gold": null, "output_item": "269",
    // "output_quantity": 2, "progress": 0, …}}` and a Gold reward: `{"pk": 14, "fields": {"date":
    // "2022-01-01", "input_item": "120", "input_quantity": 850000, "output_gold": 35, …}}`
    let days = stored_rows::<CommunityGoal>(&env);
    let day = |date: &str| days.iter().find(|day| day["goal_date"] == date).unwrap().clone();
    let first_day = day("2021-12-27");
    assert_eq!(
        (
            &first_day["goal_item_id"],
            &first_day["goal_quantity"],
            &first_day["reward_item_id"],
            &first_day["reward_quantity"]
        ),
        (&json!(349), &json!(400000), &json!(269), &json!(2))
    );
    let gold = day("2022-01-01");
    assert_eq!(
        (&gold["reward_item_name"], &gold["reward_quantity"], &gold["reward_item_id"]),
        (&json!("Gold"), &json!(35), &Value::Null)
    );
    // `{"firstSeen": 1653101024772, "date": "2022-05-20", "giveItem": "Acorn", "giveQuantity":
    // 250, "receiveItem": "Grapes", "receiveQuantity": 125, …}`: firstSeen is 2022-05-20 21:03
    // UTC, the same day in game time.
    let offers = stored_rows::<ExchangeOffer>(&env);
    let acorns = offers
        .iter()
        .find(|offer| {
            offer["give_item_name"] == "Acorn"
                && offer["give_quantity"] == 250
                && offer["receive_item_name"] == "Grapes"
        })
        .unwrap();
    assert!(acorns["first_seen"].as_str().unwrap() <= "2022-05-20", "{acorns}");
    assert!(acorns["last_seen"].as_str().unwrap() >= "2022-05-20", "{acorns}");

    // One change-feed entry per row written, all under the import's run.
    let run_id = first["run_id"].as_i64().unwrap();
    let changes = env.json(&["changes", "--run", &run_id.to_string(), "--json"]);
    let entries = changes["total"].as_i64().unwrap();
    assert_eq!(entries, first["inserted"].as_i64().unwrap() + first["updated"].as_i64().unwrap(), "{}", first["notes"]);
    assert!(written(&first) > 1000, "{first}");
    assert_eq!(runs_of(&env, "import")[0]["trigger"], "import");

    let (code, again) = import(&env, &files);
    assert_eq!((code, again["status"].as_str(), written(&again)), (Some(0), Some("succeeded"), 0), "{again}");
    // A live run after the import deletes none of it.
    let tent_again = run(&env, "tent").remove(0);
    assert_eq!((tent_again["status"].as_str(), tent_again["deleted"].as_i64()), (Some("succeeded"), Some(0)));
    assert_eq!(stored_rows::<TentOffer>(&env).len(), tent.len());
}

// A file that is not a dump fails the run, naming it, before anything is written; records of a
// model no table holds are listed; a model none of whose records can be read fails the run
// naming the field.
#[test]
fn dumps_that_cannot_be_read_fail_and_write_nothing() {
    let Some(env) = TestEnv::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path
    };
    let good = write(
        "productions.json",
        r#"[{"model": "items.manualproduction", "pk": 7, "fields": {"item": "35", "line_one": "Sawmill",
            "line_two": "Building", "image": "/img/items/sawmill_sm.png", "value": "Hourly", "sort": 60}}]"#,
    );
    let cut = write("cut.json", r#"[{"model": "items.manualproduction", "pk": 8, "fie"#);

    let (code, failed) = import(&env, &[good.clone(), cut]);
    assert_eq!((code, failed["status"].as_str(), written(&failed)), (Some(1), Some("failed"), 0), "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("cut.json is not JSON"), "{error}");
    assert_eq!(env.json(&["count", "manual-productions", "--json"])["count"], 0);

    let unknown = write(
        "mixed.json",
        r#"[{"model": "auth.user", "pk": 1, "fields": {"username": "admin"}},
            {"model": "farm.tractor", "pk": 1, "fields": {}},
            {"model": "farm.tractor", "pk": 2, "fields": {}}]"#,
    );
    let (code, listed) = import(&env, &[good.clone(), unknown]);
    assert_eq!(
        (code, listed["status"].as_str(), listed["inserted"].as_i64()),
        (Some(0), Some("succeeded"), Some(1)),
        "{listed}"
    );
    let notes = notes(&listed);
    assert!(
        notes
            .iter()
            .any(|note| note.starts_with("farm.tractor: 2 records not imported") && note.contains("mixed.json #2")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|note| note.starts_with("auth.user: 1 records not imported")), "{notes:?}");

    let drifted = write(
        "drifted.json",
        r#"[{"model": "items.manualproduction", "pk": 9, "fields": {"item_id": "35", "line_one": "Sawmill"}}]"#,
    );
    let (code, failed) = import(&env, &[drifted]);
    assert_eq!((code, failed["status"].as_str()), (Some(1), Some("failed")), "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("no items.manualproduction record could be read") && error.contains("no \"item\""),
        "{error}"
    );
    assert_eq!(env.json(&["count", "manual-productions", "--json"])["count"], 1);
}
