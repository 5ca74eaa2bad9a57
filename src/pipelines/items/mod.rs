//! The items pipeline: the game's item API (`/api.php?method=items`), the hub almost every other
//! record points at. Fetch (fingerprinted) → parse (see [`transform`]) → diff and write (see
//! [`load`]) into `items`, `recipe_ingredients`, `locksmith_contents`, `seed_crops` and
//! `wishing_well_outputs`.

pub mod load;
pub mod rows;
pub mod transform;

use std::sync::Arc;

use async_trait::async_trait;
use hayloft_actors::pipeline::{
    pipeline, Extract, Load, LoadReport, PipelineDeps, PipelineHandle, RunContext, StageCounters, StageError, Transform,
};
use hayloft_actors::supervisor::ChildSpec;

use super::shared::BuildParts;
use crate::db::outbox::Announcer;
use crate::db::Database;
use crate::pipelines::shared::common::{fetch_fingerprinted, unchanged_report, DeleteGuard, Extracted};
use crate::upstream::Upstream;
use transform::{ItemsData, TRANSFORM_VERSION};

pub const NAME: &str = "items";
/// Every 30 minutes, at a hashed minute and second.
pub const DEFAULT_SCHEDULE: &str = "H H/30 * * * *";
const REQUEST: &str = "/api.php?method=items";

pub struct FetchItems {
    upstream: Upstream,
    db: Database,
}

#[async_trait(?Send)]
impl Extract for FetchItems {
    type Output = Extracted;

    async fn extract(&self, _run: &RunContext, counters: &StageCounters) -> Result<Extracted, StageError> {
        let extracted = fetch_fingerprinted(&self.upstream, &self.db, NAME, REQUEST, TRANSFORM_VERSION).await?;
        counters.emitted(1);
        Ok(extracted)
    }
}

/// What the parser hands the loader.
pub enum Parsed {
    Unchanged { fingerprint: String },
    Fresh { data: Box<ItemsData>, fingerprint: String },
}

pub struct ParseItems;

impl Transform for ParseItems {
    type Input = Extracted;
    type Output = Parsed;

    fn transform(&self, input: Extracted, _run: &RunContext, counters: &StageCounters) -> Result<Parsed, StageError> {
        let (fetched, fingerprint) = match input {
            Extracted::Unchanged { fingerprint } => return Ok(Parsed::Unchanged { fingerprint }),
            Extracted::Fresh { fetched, fingerprint } => (fetched, fingerprint),
        };
        let data = transform::parse(&fetched.body, &fetched.url)?;
        let rows = data.items.len()
            + data.recipe_ingredients.len()
            + data.locksmith_contents.len()
            + data.seed_crops.len()
            + data.well_outputs.len();
        counters.emitted(rows as u64);
        counters.dropped(data.skipped_rows);
        Ok(Parsed::Fresh { data: Box::new(data), fingerprint })
    }
}

pub struct StoreItems {
    db: Database,
    guard: DeleteGuard,
    announcer: Option<Arc<dyn Announcer>>,
}

#[async_trait(?Send)]
impl Load for StoreItems {
    type Input = Parsed;

    async fn load(&self, input: Parsed, run: &RunContext, _counters: &StageCounters) -> Result<LoadReport, StageError> {
        match input {
            Parsed::Unchanged { fingerprint } => Ok(unchanged_report(&fingerprint)),
            Parsed::Fresh { data, fingerprint } => {
                load::load(&self.db, *data, fingerprint, run, &self.guard, NAME, self.announcer.as_deref()).await
            }
        }
    }
}

pub fn build(parts: &BuildParts<'_>, deps: PipelineDeps) -> (ChildSpec, PipelineHandle) {
    let fetch = FetchItems { upstream: parts.upstream.clone(), db: parts.db.clone() };
    let store =
        StoreItems { db: parts.db.clone(), guard: parts.settings.delete_guard, announcer: parts.announcer.clone() };
    pipeline(NAME, fetch, ParseItems, store, deps)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::{json, Value};

    use super::transform::parse;

    /// A raw API item with every key, as the game sends it.
    pub(crate) fn raw_item(id: i64) -> Value {
        let body: Value = serde_json::from_slice(&crate::upstream::demo_data::items_body(1)).unwrap();
        let mut item = body["items"][0].clone();
        item["id"] = json!(id);
        item["name"] = json!(format!("Thing {id}"));
        item
    }

    fn body(items: Vec<Value>, recipes: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({ "items": items, "recipes": recipes })).unwrap()
    }

    // Flags decide what a price means; 0 and "0000-00-00" mean nothing.
    #[test]
    fn flags_zeroes_and_dates_are_read_as_documented() {
        let mut item = raw_item(1);
        item["can_buy"] = json!(0);
        item["buy_price"] = json!(500);
        item["fm_buy"] = json!(1);
        item["fm_price"] = json!(20);
        item["date_added"] = json!("0000-00-00");
        item["loot_key_id"] = json!(0);
        item["mcount1"] = json!(9_000_000_000_i64);
        let data = parse(&body(vec![item], vec![]), "test").unwrap();
        let item = &data.items[0];
        assert_eq!((item.buy_price, item.flea_market_price), (None, Some(20)));
        assert_eq!((item.date_added.clone(), item.loot_key_id), (None, None));
        assert_eq!(item.mastery_count_1, 9_000_000_000, "counters past 32 bits survive");
    }

    // A row with a wrong type is skipped and reported with its field; the others load.
    #[test]
    fn a_bad_row_is_skipped_and_named() {
        let mut bad = raw_item(2);
        bad["sell_price"] = json!("lots");
        let data = parse(&body(vec![raw_item(1), bad], vec![]), "test").unwrap();
        assert_eq!(data.items.len(), 1);
        assert!(data.notes[0].starts_with("item 2 skipped, its stored version kept: sell_price:"), "{:?}", data.notes);
        assert!(data.unreadable_items.protects(2) && !data.unreadable_items.protects(1));
        assert!(!data.unreadable_items.protects_all());
    }

    // Recipe rows mean crafting, cooking or contents by their item's flags; stale and dangling
    // rows are skipped and reported.
    #[test]
    fn recipe_rows_follow_their_item_flags() {
        let mut craftable = raw_item(1);
        craftable["craftable"] = json!(1);
        let mut bag = raw_item(2);
        bag["loot"] = json!(1);
        bag["loot_rand"] = json!(1);
        let plain = raw_item(3);
        let recipes = vec![
            json!({"id": 1, "item_id": 1, "req_id": 3, "req_amt": 2}),
            json!({"id": 2, "item_id": 2, "req_id": 3, "req_amt": 25}),
            json!({"id": 3, "item_id": 3, "req_id": 1, "req_amt": 1}),
            json!({"id": 4, "item_id": 1, "req_id": 77, "req_amt": 1}),
        ];
        let data = parse(&body(vec![craftable, bag, plain], recipes), "test").unwrap();
        assert_eq!(data.recipe_ingredients.len(), 1);
        assert_eq!(data.recipe_ingredients[0].kind, "crafting");
        assert_eq!((data.locksmith_contents[0].quantity_min, data.locksmith_contents[0].quantity_max), (10, 25));
        assert!(data.notes.iter().any(|note| note.contains("unknown item 77")), "{:?}", data.notes);
        assert!(data.notes.iter().any(|note| note.contains("skipped 1 stale recipe rows")), "{:?}", data.notes);
        assert_eq!(data.skipped_rows, 2, "the stale row and the dangling one");
    }

    // Whole-answer problems fail with a reason a person understands.
    #[test]
    fn unusable_answers_fail_clearly() {
        let html = parse(b"<!DOCTYPE html><html><body>Maintenance</body></html>", "http://x/api.php").unwrap_err();
        assert!(html.to_string().contains("HTML page instead of JSON"), "{html}");
        let truncated = parse(&body(vec![raw_item(1)], vec![])[..100], "u").unwrap_err();
        assert!(truncated.to_string().contains("truncated"), "{truncated}");
        let empty = parse(br#"{"items": [], "recipes": []}"#, "u").unwrap_err();
        assert!(empty.to_string().contains("empty item list"), "{empty}");
    }
}
