//! Mutated input never hurts: every source's parser is fed thousands of mutations of its real
//! capture — bytes cut, tags dropped, values retyped, keys nulled, rows duplicated — and must
//! never panic, never take much longer than on the whole capture, and never produce rows whose
//! load would delete a stored row it could not read.
//!
//! Mutations are drawn from a seeded generator, so a failure names the seed that reproduces it
//! (`HAYLOFT_MUTATION_SEED`, `HAYLOFT_MUTATIONS` for how many per source).

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hayloft::pipelines::items::transform::{parse as parse_items, ItemsData};
use hayloft::pipelines::shared::names::Names;
use hayloft::pipelines::shared::source::{parse_pages, Page, Source};
use hayloft::pipelines::shared::table::Dataset;
use hayloft::upstream::routes::{split_request, Routes};
use hayloft_actors::pipeline::StageError;
use serde_json::Value;

use crate::helpers::captures;

fn seed() -> u64 {
    std::env::var("HAYLOFT_MUTATION_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or(20_261_201)
}

fn mutations_per_source() -> usize {
    std::env::var("HAYLOFT_MUTATIONS").ok().and_then(|count| count.parse().ok()).unwrap_or(200)
}

/// A mutation of a whole body, at the byte level.
fn mutate_bytes(rng: &mut fastrand::Rng, body: &[u8]) -> (String, Vec<u8>) {
    let mut body = body.to_vec();
    match rng.u8(0..5) {
        0 => {
            let at = rng.usize(0..=body.len());
            body.truncate(at);
            (format!("cut at byte {at}"), body)
        }
        1 => {
            let start = rng.usize(0..=body.len());
            let end = (start + rng.usize(1..2000)).min(body.len());
            body.drain(start..end);
            (format!("bytes {start}..{end} removed"), body)
        }
        2 => {
            // Drop one tag (`<…>`), opening or closing.
            let tags: Vec<usize> =
                body.iter().enumerate().filter(|(_, byte)| **byte == b'<').map(|(at, _)| at).collect();
            if tags.is_empty() {
                return ("nothing to drop".to_owned(), body);
            }
            let start = tags[rng.usize(0..tags.len())];
            let end = body[start..].iter().position(|byte| *byte == b'>').map_or(body.len(), |at| start + at + 1);
            body.drain(start..end);
            (format!("tag at {start} dropped"), body)
        }
        3 => {
            // Retype: a run of digits becomes letters.
            let digits: Vec<usize> =
                body.iter().enumerate().filter(|(_, byte)| byte.is_ascii_digit()).map(|(at, _)| at).collect();
            if digits.is_empty() {
                return ("nothing to retype".to_owned(), body);
            }
            let mut at = digits[rng.usize(0..digits.len())];
            let first = at;
            while at < body.len() && body[at].is_ascii_digit() {
                body[at] = b'x';
                at += 1;
            }
            (format!("digits at {first} retyped"), body)
        }
        _ => {
            // Duplicate a table row or list item (`<tr>…</tr>` / `<li>…</li>`), or any span.
            let text = String::from_utf8_lossy(&body).into_owned();
            let open = if rng.bool() { "<tr" } else { "<li" };
            let close = if open == "<tr" { "</tr>" } else { "</li>" };
            let starts: Vec<usize> = text.match_indices(open).map(|(at, _)| at).collect();
            let Some(&start) = starts.get(rng.usize(0..starts.len().max(1))) else {
                return ("nothing to duplicate".to_owned(), body);
            };
            let Some(length) = text[start..].find(close) else { return ("unclosed row".to_owned(), body) };
            let end = start + length + close.len();
            let row = body[start..end].to_vec();
            body.splice(end..end, row);
            (format!("row at {start} duplicated"), body)
        }
    }
}

/// A structured mutation of one row of a JSON list: its key nulled, one field retyped, or the
/// row duplicated. None of these is a reason to delete anything.
fn mutate_json(rng: &mut fastrand::Rng, body: &[u8], lists: &[(&str, &str)]) -> (String, Vec<u8>) {
    let mut value: Value = serde_json::from_slice(body).unwrap();
    let (list, key) = lists[rng.usize(0..lists.len())];
    let rows = value[list].as_array_mut().unwrap();
    let index = rng.usize(0..rows.len());
    let what = match rng.u8(0..3) {
        0 => {
            rows[index][key] = Value::Null;
            format!("{list}[{index}].{key} nulled")
        }
        1 => {
            let fields: Vec<String> = rows[index].as_object().unwrap().keys().cloned().collect();
            let field = fields[rng.usize(0..fields.len())].clone();
            let retyped = match &rows[index][&field] {
                Value::String(_) => Value::from(12_345),
                Value::Number(_) => Value::from("many"),
                _ => Value::from(true),
            };
            rows[index][&field] = retyped;
            format!("{list}[{index}].{field} retyped")
        }
        _ => {
            let row = rows[index].clone();
            rows.insert(index, row);
            format!("{list}[{index}] duplicated")
        }
    };
    (what, serde_json::to_vec(&value).unwrap())
}

/// Runs `parse` on `body`, failing the test on a panic or on a time far past `baseline`.
fn guarded<T>(what: &str, baseline: Duration, parse: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(parse)).unwrap_or_else(|_| panic!("the parser panicked on {what}"));
    // Linear work on at most a little more input: a generous bound that a quadratic blow-up
    // (or a hang) still exceeds by far, and that a loaded machine does not.
    let limit = baseline * 20 + Duration::from_secs(2);
    assert!(started.elapsed() <= limit, "{what} took {:?} (the whole capture: {baseline:?})", started.elapsed());
    result
}

fn read_page(dir: &Path, routes: &Routes, request: &str) -> Option<Page> {
    let (path, query) = split_request(request);
    let route = routes.resolve(&path, &query)?;
    let body = std::fs::read(dir.join(&route.file)).ok()?;
    Some(Page { request: request.to_owned(), url: request.to_owned(), body: Bytes::from(body) })
}

/// Parses the fixed pages, and each fan-out page on its own as a node would (an unreadable
/// fan-out page fails alone: its task is marked failed and its rows stay).
fn parse_all<S: Source>(source: &S, pages: Vec<Page>, fanned: &[Page]) -> Result<Dataset, StageError> {
    for page in fanned {
        let _ = source.parse_fanned(page, &Names::default());
    }
    parse_pages(source, pages, Names::default())
}

/// Mutates each page of `source` in turn (the others stay whole) and checks every result.
/// `json_lists` names the JSON lists of a JSON source and the key of their rows.
fn check_source<S: Source>(source: S, pages: Vec<Page>, fanned: Vec<Page>, json_lists: &[(&str, &str)]) -> usize {
    let started = Instant::now();
    let stored = parse_all(&source, pages.clone(), &fanned);
    let baseline = started.elapsed();
    let stored = stored.unwrap_or_else(|error| panic!("{} cannot read its own capture: {error}", S::NAME));
    let mut rng = fastrand::Rng::with_seed(seed());
    let count = mutations_per_source();
    let targets = pages.len() + fanned.len();
    for round in 0..count {
        let target = round % targets;
        let original = if target < pages.len() { &pages[target].body } else { &fanned[target - pages.len()].body };
        let structured = !json_lists.is_empty() && rng.bool();
        let (what, body) =
            if structured { mutate_json(&mut rng, original, json_lists) } else { mutate_bytes(&mut rng, original) };
        let what = format!("{} round {round} (seed {}): {what}", S::NAME, seed());
        let (mut mutated_pages, mut mutated_fanned) = (pages.clone(), fanned.clone());
        let page =
            if target < pages.len() { &mut mutated_pages[target] } else { &mut mutated_fanned[target - pages.len()] };
        page.body = Bytes::from(body);
        let parsed = guarded(&what, baseline, || parse_all(&source, mutated_pages, &mutated_fanned));
        if let (true, Ok(dataset)) = (structured, parsed) {
            assert_no_deletions(&what, &dataset, &stored);
        }
    }
    count
}

fn assert_no_deletions(what: &str, dataset: &Dataset, stored: &Dataset) {
    let deleted = dataset.would_delete(stored);
    assert!(deleted.is_empty(), "{what} would delete {deleted:?}");
}

/// The stored rows of an items load, by table and key.
fn item_keys(data: &ItemsData) -> BTreeSet<(&'static str, i64, i64)> {
    let mut keys = BTreeSet::new();
    keys.extend(data.items.iter().map(|item| ("items", item.id, 0)));
    keys.extend(data.recipe_ingredients.iter().map(|row| ("recipe_ingredients", row.item_id, row.ingredient_id)));
    keys.extend(data.locksmith_contents.iter().map(|row| ("locksmith_contents", row.container_id, row.item_id)));
    keys.extend(data.seed_crops.iter().map(|row| ("seed_crops", row.seed_id, row.crop_id)));
    keys.extend(data.well_outputs.iter().map(|row| ("wishing_well_outputs", row.item_id, row.output_id)));
    keys
}

/// Whether the mutated answer keeps `key` (a stored row it no longer lists) from deletion.
fn items_protect(data: &ItemsData, (table, first, second): (&str, i64, i64)) -> bool {
    let items = &data.unreadable_items;
    let item_involved = items.protects(first) || (table != "items" && items.protects(second));
    match table {
        "recipe_ingredients" | "locksmith_contents" => item_involved || data.unreadable_recipes.protects(first),
        "seed_crops" | "wishing_well_outputs" => item_involved || data.unreadable_lists.protects(first),
        _ => item_involved,
    }
}

// Thousands of mutated item answers: no panic, no blow-up, and a nulled key, a retyped value or
// a duplicated row never leaves a stored row both missing and unprotected.
#[test]
fn mutated_item_answers_never_delete_what_they_could_not_read() {
    let Some(dir) = captures() else { return };
    let body = std::fs::read(dir.join("api/items.json")).unwrap();
    let started = Instant::now();
    let stored = parse_items(&body, "items").unwrap();
    let baseline = started.elapsed();
    let stored_keys = item_keys(&stored);
    let mut rng = fastrand::Rng::with_seed(seed());
    // The item answer is 2 MB: fewer rounds, each still a full parse.
    for round in 0..mutations_per_source() / 3 {
        let structured = rng.u8(0..4) != 0;
        let (what, mutated) = if structured {
            mutate_json(&mut rng, &body, &[("items", "id"), ("recipes", "item_id")])
        } else {
            mutate_bytes(&mut rng, &body)
        };
        let what = format!("items round {round} (seed {}): {what}", seed());
        let parsed = guarded(&what, baseline, || parse_items(&mutated, "items"));
        let (true, Ok(data)) = (structured, parsed) else { continue };
        let present = item_keys(&data);
        let lost: Vec<_> =
            stored_keys.iter().filter(|key| !present.contains(key) && !items_protect(&data, **key)).collect();
        assert!(lost.is_empty(), "{what} would delete {lost:?}");
    }
}

// Every page source, its capture mutated a few hundred times each: no panic, no blow-up, and
// (for the JSON answers) no deletion of what could not be read.
#[test]
fn mutated_pages_never_panic_or_delete_what_they_could_not_read() {
    use hayloft::pipelines::{
        cards::Cards, community::Community, exchange::Exchange, gallery::Gallery, item_pages::ItemPages,
        locations::Locations, npc_pages::NpcPages, npcs::Npcs, passwords::Passwords, tent::Tent, tower::Tower,
        updates::Updates,
    };
    let Some(dir) = captures() else { return };
    let routes = Routes::load(&dir).unwrap();
    let fixed = |requests: Vec<String>| -> Vec<Page> {
        requests
            .iter()
            .map(|request| read_page(&dir, &routes, request).unwrap_or_else(|| panic!("no capture for {request}")))
            .collect()
    };
    let item_pages: Vec<Page> = ["/item.php?id=11", "/item.php?id=22", "/item.php?id=326"]
        .iter()
        .filter_map(|request| read_page(&dir, &routes, request))
        .collect();
    assert!(!item_pages.is_empty(), "no item page captures");
    let mut checked = 0;
    checked += check_source(Cards, fixed(Cards.requests()), vec![], &[]);
    checked += check_source(Community, fixed(Community.requests()), vec![], &[]);
    checked += check_source(Exchange, fixed(Exchange.requests()), vec![], &[]);
    checked += check_source(Gallery, fixed(Gallery.requests()), vec![], &[]);
    checked += check_source(ItemPages, vec![], item_pages, &[]);
    checked += check_source(Locations, fixed(Locations.requests()), vec![], &[]);
    checked += check_source(NpcPages, fixed(NpcPages.requests()), vec![], &[]);
    checked += check_source(Npcs, fixed(Npcs.requests()), vec![], &[("npcs", "id"), ("npc_rewards", "id")]);
    checked += check_source(Passwords, fixed(Passwords.requests()), vec![], &[]);
    checked += check_source(Tent, fixed(Tent.requests()), vec![], &[]);
    checked += check_source(Tower, fixed(Tower.requests()), vec![], &[("tower_levels", "level")]);
    checked += check_source(Updates, fixed(Updates.requests()), vec![], &[]);
    assert!(checked >= 2400, "{checked} mutations");
}
