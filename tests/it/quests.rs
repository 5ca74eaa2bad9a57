//! Quests: the real API examples in `../shared/fixtures/quests` (or `HAYLOFT_FIXTURES`) served
//! by a real replay server, and the talk's own GraphQL query over the embedded sample data.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::helpers::{skip, stored_rows, Replay, TestEnv};
use crate::sources::run;
use hayloft::pipelines::quests::{Quest, QuestRequiredItem, QuestRewardItem, Questline};

/// The quests API examples, or `None` (after a visible skip) when this clone has none.
fn fixtures() -> Option<PathBuf> {
    let dir = std::env::var_os("HAYLOFT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"))
        .join("quests");
    if dir.join("MANIFEST.md").is_file() {
        return Some(dir);
    }
    skip(&format!("the quests API examples are not at {} (set HAYLOFT_FIXTURES)", dir.display()));
    None
}

fn fixture(dir: &Path, file: &str) -> Vec<Value> {
    serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap()
}

/// A capture directory answering `/api/quests/` with `quests`.
fn quests_capture(quests: &[Value]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("api")).unwrap();
    std::fs::write(dir.path().join("api/quests.json"), Value::Array(quests.to_vec()).to_string()).unwrap();
    let routes = json!({ "routes": [{
        "file": "api/quests.json", "path": "/api/quests/", "query": {}, "content_type": "application/json"
    }]});
    std::fs::write(dir.path().join("routes.json"), routes.to_string()).unwrap();
    dir
}

/// A database for the quests pipeline alone (the examples name items the test does not load).
fn quests_env() -> Option<TestEnv> {
    Some(TestEnv::new()?.only(&["quests"]).env("HAYLOFT_UPSTREAM__RETRIES", "0"))
}

/// Runs the quests pipeline against a replay of `quests`, from a node on `env`'s database.
fn run_quests(env: &TestEnv, quests: &[Value]) -> Value {
    let capture = quests_capture(quests);
    let replay = Replay::start(capture.path());
    // Also from an environment made for other sources, with quests switched off.
    let node = env.sibling().env("HAYLOFT_UPSTREAM_URL", &replay.url).env("HAYLOFT_PIPELINES__QUESTS__ENABLED", "true");
    let summary = run(&node, "quests").remove(0);
    assert_eq!(summary["status"], "succeeded", "{summary}");
    summary
}

/// Loads the examples' quests (a line of two, and a seasonal one) into `env`'s database, for
/// tests over every entity; `false` (after a visible skip) when this clone has no examples.
pub(crate) fn load_examples(env: &TestEnv) -> bool {
    let Some(dir) = fixtures() else { return false };
    let mut quests = fixture(&dir, "predecessor_first.json");
    quests.extend(fixture(&dir, "one_dated_quest.json"));
    run_quests(env, &quests);
    true
}

fn quest(env: &TestEnv, id: i64) -> Value {
    stored_rows::<Quest>(env).into_iter().find(|row| row["id"] == id).unwrap_or_else(|| panic!("quest {id} stored"))
}

/// `(item, quantity)` of quest `id`'s rows of one item table.
fn items_of(rows: Vec<Value>, id: i64) -> Vec<(i64, i64)> {
    rows.iter()
        .filter(|row| row["quest_id"] == id)
        .map(|row| (row["item_id"].as_i64().unwrap(), row["quantity"].as_i64().unwrap()))
        .collect()
}

// A seasonal quest keeps its game-time dates and `id|quantity` lists; the same quest renamed
// and changed later updates in place (title, required item, and the picture field the later
// answer carries); without dates it is always available.
#[test]
fn a_quest_is_read_and_follows_its_changes() {
    let Some(dir) = fixtures() else { return };
    let Some(env) = quests_env() else { return };
    const ID: i64 = 2768520;

    run_quests(&env, &fixture(&dir, "one_dated_quest.json"));
    let dated = quest(&env, ID);
    assert_eq!(
        (&dated["title"], &dated["npc_name"], &dated["start_date"], &dated["end_date"]),
        (&json!("Blooming Thaw Already IV"), &json!("Borgen"), &json!("2023-03-01"), &json!("2023-05-31"))
    );
    assert_eq!(
        (&dated["author"], &dated["image"], &dated["predecessor_id"]),
        (&Value::Null, &Value::Null, &Value::Null)
    );
    assert_eq!((&dated["required_farming_level"], &dated["completed_count"]), (&json!(20), &json!(2038)));
    // Through the end of May 31 in US Central (daylight saving time by then: UTC-5).
    assert_eq!(
        (&dated["starts_at"], &dated["ends_at"]),
        (&json!("2023-03-01T06:00:00Z"), &json!("2023-06-01T05:00:00Z"))
    );
    assert_eq!((&dated["questline"], &dated["questline_step"]), (&json!("Blooming Thaw Already"), &json!(4)));
    assert_eq!(items_of(stored_rows::<QuestRequiredItem>(&env), ID), [(2, 10)]);
    assert_eq!(items_of(stored_rows::<QuestRewardItem>(&env), ID), [(1, 5)]);

    let changed = run_quests(&env, &fixture(&dir, "one_quest_renamed_and_changed.json"));
    // Updated in place; the new title names no step, so its line is gone.
    let notes = changed["notes"].to_string();
    assert!(
        notes.contains("quests: +0 inserted, ~1 updated, -0 deleted")
            && notes.contains("questlines: +0 inserted, ~0 updated, -1 deleted"),
        "{changed}"
    );
    let renamed = quest(&env, ID);
    assert_eq!((&renamed["title"], &renamed["image"]), (&json!("Blooming Thaw Already IV Updated"), &json!("")));
    assert_eq!(items_of(stored_rows::<QuestRequiredItem>(&env), ID), [(1, 10)]);

    run_quests(&env, &fixture(&dir, "one_undated_quest.json"));
    let undated = quest(&env, ID);
    assert_eq!((&undated["start_date"], &undated["end_date"]), (&Value::Null, &Value::Null));
    assert_eq!((&undated["starts_at"], &undated["ends_at"]), (&Value::Null, &Value::Null));
    assert_eq!(
        (&undated["title"], &undated["questline"]),
        (&json!("Blooming Thaw Already IV"), &json!("Blooming Thaw Already"))
    );
    assert_eq!(stored_rows::<Quest>(&env).len(), 1);
}

// A quest names the one it follows whether that one comes first or last in the answer; both
// orders store the same rows, and an unchanged answer in the other order writes nothing.
#[test]
fn a_predecessor_is_found_in_either_order() {
    let Some(dir) = fixtures() else { return };
    let Some(env) = quests_env() else { return };
    let first = run_quests(&env, &fixture(&dir, "predecessor_first.json"));
    assert_eq!(first["inserted"], 3, "two quests and their line: {first}");
    let stored = stored_rows::<Quest>(&env);
    let again = run_quests(&env, &fixture(&dir, "predecessor_last.json"));
    assert_eq!((again["inserted"].as_i64(), again["updated"].as_i64()), (Some(0), Some(0)), "{again}");
    assert_eq!(stored_rows::<Quest>(&env), stored);
    assert_eq!(quest(&env, 522)["predecessor_id"], 533);
    assert_eq!(quest(&env, 533)["predecessor_id"], Value::Null);
    // `99 Bottles XXXVII` and `99 Bottles XLVIII`: steps 37 and 48 of one line.
    assert_eq!((&quest(&env, 522)["questline_step"], &quest(&env, 533)["questline_step"]), (&json!(37), &json!(48)));
    assert_eq!(
        stored_rows::<Questline>(&env),
        [json!({ "name": "99 Bottles", "step_count": 2, "first_quest_id": 522 })]
    );

    let Some(other) = quests_env() else { return };
    run_quests(&other, &fixture(&dir, "predecessor_last.json"));
    assert_eq!(stored_rows::<Quest>(&other), stored, "the same rows from the other order");
}

/// The two real descriptions as a player's browser shows them: `<br>` runs as line breaks
/// (two make a blank line), `\r\n` and other source whitespace collapsed, the `<marquee>` and
/// `<font>` text inline, the curly quotes and the game's `{player}`/`{mycabbages}` macros kept.
const BUDDY: &str = "Buddy has been so happy since you repaired his peg leg. A few days have passed, and he knocks \
on your door.\n\n\"Hi best friend! Best friends give each other things, right? I have some things I want to give \
you! Do you have any things for me?\"\n\n:D BEST FRIENDS FOREVER :D";

// Descriptions are stored as the page shows them, and as clean HTML.
#[test]
fn a_description_reads_as_the_game_shows_it() {
    let Some(dir) = fixtures() else { return };
    let Some(env) = quests_env() else { return };
    let descriptions: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("descriptions.json")).unwrap()).unwrap();
    let base = fixture(&dir, "one_undated_quest.json").remove(0);
    let quests: Vec<Value> = descriptions
        .iter()
        .enumerate()
        .map(|(index, description)| {
            let mut quest = base.clone();
            quest["id"] = json!(index + 1);
            quest["description"] = json!(description);
            quest
        })
        .collect();
    run_quests(&env, &quests);
    assert_eq!(quest(&env, 1)["text"], BUDDY);
    let html = quest(&env, 1)["html"].as_str().unwrap().to_owned();
    // `<marquee …><marquee …><font size = "5"><font color="mediumseagreen">:D BEST FRIENDS
    // FOREVER :D</font color></font size></marquee></marquee>`: unwrapped, the fonts balanced.
    assert!(
        !html.contains("marquee")
            && html
                .contains("<font size=\"5\"><font color=\"mediumseagreen\">:D BEST FRIENDS FOREVER :D</font></font>"),
        "{html}"
    );
    let stew = quest(&env, 2)["text"].as_str().unwrap().to_owned();
    assert!(stew.starts_with("Baba’s new soup ingredients are delivered, and his excitement is palpable.\n\n“This is going to be the greatest soup in the history of the wo-”\n\n"), "{stew}");
    assert!(
        stew.contains("“Oh hi, {player} it’s been a while!")
            && stew.contains("\n\n“MY CABBAGES!!!!!!”\n\n{mycabbages}\n\n"),
        "{stew}"
    );
    assert!(!stew.contains('\r') && !stew.contains("  "), "{stew}");
}

// The talk's own example query answers over the embedded sample data: every item with the
// quests that ask for it, each quest's title, picture and text.
#[test]
fn the_talks_quest_query_answers() {
    let Some(env) = TestEnv::new() else { return };
    assert!(run(&env, "all").iter().all(|summary| summary["status"] == "succeeded"));
    let server = env.serve();
    let post = |query: &str| -> Value {
        let body: Value = reqwest::blocking::Client::new()
            .post(format!("{}/graphql", server.base_url))
            .timeout(Duration::from_secs(20))
            .json(&json!({ "query": query }))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert!(body["errors"].is_null(), "{body}");
        body
    };
    let query = "{ items(first: 2000) { nodes { name image requiredFor { quantity quest { title image text } } } } }";
    let body = post(query);
    let wanted: Vec<&Value> = body["data"]["items"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["requiredFor"].as_array().is_some_and(|quests| !quests.is_empty()))
        .collect();
    assert_eq!(wanted.len(), 10, "the sample's quests ask for ten items");
    let asked = wanted
        .iter()
        .flat_map(|item| item["requiredFor"].as_array().unwrap().iter().map(move |entry| (item, entry)))
        .find(|(_, entry)| entry["quest"]["title"] == "Helping Hands II")
        .unwrap();
    let (item, entry) = asked;
    assert_eq!(entry["quantity"], 10);
    assert_eq!(entry["quest"]["image"], "/img/items/npc_1.png");
    assert_eq!(
        entry["quest"]["text"],
        format!(
            "Hello {{player}}!\n\nCould you bring me {}?\nI will make it worth your while.",
            item["name"].as_str().unwrap()
        )
    );

    // Lines and their order both ways.
    let lines = post(
        "{ questline(name: \"Helping Hands\") { stepCount firstQuestId steps { id questlineStep } } \
           quest(id: 101) { predecessor { title } successors { title } line { name } } }",
    );
    let line = &lines["data"]["questline"];
    assert_eq!((&line["stepCount"], &line["firstQuestId"]), (&json!(4), &json!(100)), "{lines}");
    let mut steps: Vec<(i64, i64)> = line["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| (step["id"].as_i64().unwrap(), step["questlineStep"].as_i64().unwrap()))
        .collect();
    steps.sort_unstable();
    assert_eq!(steps, [(100, 1), (101, 2), (102, 3), (103, 4)]);
    let second = &lines["data"]["quest"];
    assert_eq!(
        (&second["predecessor"]["title"], &second["successors"], &second["line"]["name"]),
        (&json!("Helping Hands"), &json!([{ "title": "Helping Hands III" }]), &json!("Helping Hands"))
    );
}
