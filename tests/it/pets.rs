//! Pets: the original system's pet records (`_seed/pets.json` in the captures) served as the
//! game's pet API by a real replay server, and the relations both ways over the sample data.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{captures, stored_rows, Replay, TestEnv};
use crate::sources::run;
use hayloft::pipelines::pets::{Pet, PetItem};

/// The seed's pets as the pet API answers (the game's `pet` rows): `pets.pet` records give the
/// pet, its `pets.petitem` records its item lists per level. The seed has no description,
/// cooking level or display order: those are filled in.
fn pet_answer(seed: &[Value]) -> Vec<Value> {
    let mut lists: BTreeMap<(i64, i64), Vec<String>> = BTreeMap::new();
    for record in seed.iter().filter(|record| record["model"] == "pets.petitem") {
        let fields = &record["fields"];
        let key = (fields["pet"].as_i64().unwrap(), fields["level"].as_i64().unwrap());
        let item =
            fields["item"].as_i64().map_or_else(|| fields["item"].as_str().unwrap().to_owned(), |id| id.to_string());
        lists.entry(key).or_default().push(item);
    }
    seed.iter()
        .filter(|record| record["model"] == "pets.pet")
        .map(|record| {
            let (pk, fields) = (record["pk"].as_i64().unwrap(), &record["fields"]);
            let list = |level: i64| lists.get(&(pk, level)).map(|items| items.join(",")).unwrap_or_default();
            json!({
                "id": fields["game_id"], "name": fields["name"], "description": "", "img": fields["image"],
                "price": fields["cost"], "farming_level": fields["required_farming_level"],
                "fishing_level": fields["required_fishing_level"], "crafting_level": fields["required_crafting_level"],
                "exploring_level": fields["required_exploring_level"], "cooking_level": 0, "display_order": pk,
                "items": list(1), "items3": list(3), "items6": list(6)
            })
        })
        .collect()
}

/// The seed's records, or `None` (after a visible skip) when this clone has no captures.
fn seed() -> Option<Vec<Value>> {
    let dir = captures()?;
    Some(serde_json::from_str(&std::fs::read_to_string(dir.join("_seed/pets.json")).unwrap()).unwrap())
}

/// A replay server answering the pet API with the seed's pets.
fn seed_upstream(seed: &[Value]) -> (tempfile::TempDir, Replay) {
    let capture = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(capture.path().join("api")).unwrap();
    std::fs::write(capture.path().join("api/pets.json"), json!({ "pets": pet_answer(seed) }).to_string()).unwrap();
    let routes = json!({ "routes": [{
        "file": "api/pets.json", "path": "/api.php", "query": { "method": "pets" }, "content_type": "application/json"
    }]});
    std::fs::write(capture.path().join("routes.json"), routes.to_string()).unwrap();
    let replay = Replay::start(capture.path());
    (capture, replay)
}

/// Loads the seed's pets into `env`'s database (a node of its own, pets switched on), for
/// tests over every entity; `false` (after a visible skip) without captures.
pub(crate) fn load_seed_pets(env: &TestEnv) -> bool {
    let Some(seed) = seed() else { return false };
    let (_capture, replay) = seed_upstream(&seed);
    let node = env.sibling().env("HAYLOFT_UPSTREAM_URL", &replay.url).env("HAYLOFT_PIPELINES__PETS__ENABLED", "true");
    let summary = run(&node, "pets").remove(0);
    assert_eq!(summary["status"], "succeeded", "{summary}");
    true
}

// Every seed pet and pet item loads, with the seed's values; a second run writes nothing.
#[test]
fn the_original_pets_load() {
    let Some(seed) = seed() else { return };
    let count = |model: &str| seed.iter().filter(|record| record["model"] == model).count();
    let (_capture, replay) = seed_upstream(&seed);
    let Some(env) = TestEnv::new() else { return };
    let env = env.only(&["pets"]).env("HAYLOFT_UPSTREAM_URL", &replay.url);

    let first = run(&env, "pets").remove(0);
    assert_eq!(first["status"], "succeeded", "{first}");
    let (pets, items) = (stored_rows::<Pet>(&env), stored_rows::<PetItem>(&env));
    assert_eq!((pets.len(), items.len()), (count("pets.pet"), count("pets.petitem")), "23 pets, 276 items");
    // `{"model": "pets.pet", "pk": 20, "fields": {"game_id": 20, "name": "Banded Armadillo",
    // "image": "/img/pets/arma.png", "cost": 125000000, …, "required_crafting_level": 75, …}}`
    let armadillo = pets.iter().find(|pet| pet["id"] == 20).unwrap();
    assert_eq!(
        (&armadillo["name"], &armadillo["image"], &armadillo["cost"], &armadillo["required_crafting_level"]),
        (&json!("Banded Armadillo"), &json!("/img/pets/arma.png"), &json!(125000000), &json!(75))
    );
    // `{"model": "pets.petitem", "fields": {"pet": 20, "item": 21, "level": 1}}`
    assert!(items.iter().any(|item| item["pet_id"] == 20 && item["item_id"] == 21 && item["level"] == 1));

    let again = run(&env, "pets").remove(0);
    let writes: i64 = ["inserted", "updated", "deleted"].iter().map(|key| again[key].as_i64().unwrap()).sum();
    assert_eq!((again["status"].as_str(), writes), (Some("succeeded"), 0), "{again}");
}

// Over the sample data: a pet's items by level, and from an item the pets that bring it.
#[test]
fn pets_and_items_link_both_ways() {
    let Some(env) = TestEnv::new() else { return };
    assert!(run(&env, "all").iter().all(|summary| summary["status"] == "succeeded"));
    let server = env.serve();
    let query =
        "{ pet(id: 2) { name image items(level: 6) { level position item { id petItems { pet { name } } } } } }";
    let body: Value = reqwest::blocking::Client::new()
        .post(format!("{}/graphql", server.base_url))
        .timeout(Duration::from_secs(20))
        .json(&json!({ "query": query }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(body["errors"].is_null(), "{body}");
    let pet = &body["data"]["pet"];
    assert_eq!((&pet["name"], &pet["image"]), (&json!("Field Mouse"), &json!("/img/pets/pet_2.png")));
    let items = pet["items"].as_array().unwrap();
    assert_eq!(items.len(), 4, "the sample's level-6 list has four items: {pet}");
    for item in items {
        assert_eq!(item["level"], 6);
        let by = item["item"]["petItems"].as_array().unwrap();
        assert!(by.iter().any(|link| link["pet"]["name"] == "Field Mouse"), "{item}");
    }
}
