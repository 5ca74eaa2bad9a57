//! Reads the item API's answer (`{"items": [...], "recipes": [...]}`) into typed rows.
//!
//! The API's quirks, handled here: `0` means "none" for references and optional numbers;
//! `"0000-00-00"` means an unknown date; every boolean is `0`/`1`; lists are comma-separated ids;
//! a price is only meaningful when its flag is set (the API leaves stale numbers behind); one
//! recipe table means crafting, cooking or locksmith contents depending on the flags of the item
//! it belongs to, and rows of items with none of those flags are stale (skipped and counted).
//! A row that cannot be read, or a reference to an unknown item, is skipped and reported in the
//! run's notes — never a crash, never a failed batch.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::rows::{Item, LocksmithContent, RecipeIngredient, SeedCrop, WellOutput};
use crate::pipelines::shared::common::{json_answer, read_row, row_key, Unreadable};
use hayloft_actors::pipeline::StageError;

/// Bump when the reading of the API changes, so unchanged bodies are read again.
// 2: an unsellable item keeps its upstream sell price beside `can_sell`.
pub const TRANSFORM_VERSION: u32 = 2;

/// How many skipped-row notes a run keeps; the rest are counted.
const MAX_ROW_NOTES: usize = 50;

/// An item as the API sends it (only the fields Hayloft keeps).
#[derive(Debug, Deserialize)]
struct RawItem {
    id: i64,
    name: String,
    description: String,
    description_ext: String,
    yield_minutes: i64,
    yield_qty: i64,
    #[serde(rename = "type")]
    item_type: String,
    rarity: String,
    farming_level: i64,
    img: String,
    img_farm: String,
    weight: i64,
    rc_weight: i64,
    xp_value: i64,
    #[serde(deserialize_with = "flag")]
    can_buy: bool,
    buy_price: i64,
    #[serde(deserialize_with = "flag")]
    can_sell: bool,
    sell_price: i64,
    collect_ids: String,
    well_ids: String,
    #[serde(deserialize_with = "flag")]
    craftable: bool,
    craft_price: i64,
    crafting_level: i64,
    #[serde(deserialize_with = "flag")]
    fm_buy: bool,
    fm_price: i64,
    #[serde(deserialize_with = "flag")]
    fm_rotate: bool,
    #[serde(deserialize_with = "flag")]
    tent_buy: bool,
    tent_price: i64,
    #[serde(deserialize_with = "flag")]
    tent_rotate: bool,
    tent_max: i64,
    #[serde(deserialize_with = "flag")]
    bmerc_buy: bool,
    bmerc_price: i64,
    #[serde(deserialize_with = "flag")]
    givable: bool,
    #[serde(deserialize_with = "flag")]
    charter_drop: bool,
    #[serde(deserialize_with = "flag")]
    mastery: bool,
    #[serde(deserialize_with = "flag")]
    start_locked: bool,
    #[serde(deserialize_with = "flag")]
    find_alert: bool,
    #[serde(deserialize_with = "flag")]
    loot: bool,
    #[serde(deserialize_with = "flag")]
    loot_rand: bool,
    loot_key_id: i64,
    loot_gold: i64,
    #[serde(deserialize_with = "flag")]
    loot_show: bool,
    #[serde(deserialize_with = "flag")]
    active: bool,
    #[serde(deserialize_with = "flag")]
    event: bool,
    #[serde(deserialize_with = "flag")]
    manfish_only: bool,
    min_trade_level: i64,
    min_send_level: i64,
    min_rec_level: i64,
    #[serde(deserialize_with = "flag")]
    phr_exclude: bool,
    phr_limit: i64,
    #[serde(deserialize_with = "flag")]
    soap_buy: bool,
    soap_price: i64,
    #[serde(deserialize_with = "flag")]
    soap_rotate: bool,
    effect_mins: i64,
    effect_count: i64,
    effect_type: String,
    effect_amt: i64,
    #[serde(deserialize_with = "flag")]
    can_cook: bool,
    cooking_recipe: i64,
    cooking_level: i64,
    date_added: String,
    #[serde(deserialize_with = "flag")]
    void_bag_exclude: bool,
    #[serde(deserialize_with = "flag")]
    loot_void: bool,
    mcount1: i64,
    mcount2: i64,
    mcount3: i64,
    #[serde(deserialize_with = "flag")]
    event_buy: bool,
    event_price: i64,
}

#[derive(Debug, Deserialize)]
struct RawRecipe {
    id: i64,
    item_id: i64,
    req_id: i64,
    req_amt: i64,
}

/// The API's booleans are the numbers 0 and 1.
pub(crate) fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Number(i64),
        Bool(bool),
    }
    match Flag::deserialize(deserializer) {
        Ok(Flag::Number(0)) | Ok(Flag::Bool(false)) => Ok(false),
        Ok(Flag::Number(1)) | Ok(Flag::Bool(true)) => Ok(true),
        Ok(Flag::Number(other)) => Err(de::Error::custom(format!("expected 0 or 1, found {other}"))),
        Err(_) => Err(de::Error::custom("expected 0 or 1")),
    }
}

/// The rows one item-API answer yields.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct ItemsData {
    pub items: Vec<Item>,
    pub recipe_ingredients: Vec<RecipeIngredient>,
    pub locksmith_contents: Vec<LocksmithContent>,
    pub seed_crops: Vec<SeedCrop>,
    pub well_outputs: Vec<WellOutput>,
    /// Items whose row could not be read: their stored version, and rows that point at them,
    /// are kept as they are rather than deleted — the item did not vanish, its row is broken.
    /// An item row without a readable id protects every stored item and link row.
    pub unreadable_items: Unreadable,
    /// Recipe rows that could not be read, by the item they belong to (when readable): that
    /// item's stored recipe and locksmith rows are kept; one without a readable item keeps all.
    pub unreadable_recipes: Unreadable,
    /// Items whose `collect_ids` or `well_ids` had a malformed entry: their stored seed-crop
    /// and wishing-well pairs are kept.
    pub unreadable_lists: Unreadable,
    /// Input rows (items, recipe rows, id-list entries) left out, for the stage's `dropped` counter.
    pub skipped_rows: u64,
    /// The run report: skipped rows, dangling references, stale rows.
    pub notes: Vec<String>,
}

/// Collects notes, keeping the first few in full and counting the rest.
#[derive(Default)]
struct Notes {
    kept: Vec<String>,
    dropped: usize,
}

impl Notes {
    fn push(&mut self, note: String) {
        if self.kept.len() < MAX_ROW_NOTES {
            self.kept.push(note);
        } else {
            self.dropped += 1;
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.dropped > 0 {
            self.kept.push(format!("… and {} more notes like these", self.dropped));
        }
        self.kept
    }
}

/// Parses the body. Fails only when the answer as a whole is unusable (not JSON, not the
/// expected object, no valid item at all); bad rows are skipped and noted.
pub fn parse(body: &[u8], url: &str) -> Result<ItemsData, StageError> {
    // Rows stay raw until each is read into its struct: no intermediate JSON tree, and a bad
    // row fails alone.
    #[derive(Deserialize)]
    struct Answer<'a> {
        #[serde(borrow)]
        items: Vec<&'a RawValue>,
        #[serde(default, borrow)]
        recipes: Vec<&'a RawValue>,
    }
    let answer: Answer<'_> = json_answer(body, url)?;
    if answer.items.is_empty() {
        return Err(StageError::BadInput(format!(
            "{url} returned an empty item list; refusing to read that as \"every item was removed\""
        )));
    }

    let mut notes = Notes::default();
    let mut unreadable_items = Unreadable::default();
    let mut skipped: u64 = 0;
    let total = answer.items.len();
    let raw_items: Vec<RawItem> = answer
        .items
        .into_iter()
        .filter_map(|raw| match read_row::<RawItem>(raw) {
            Ok(item) => Some(item),
            Err(error) => {
                let id = row_key(raw, "id");
                let shown = id.map_or_else(|| "without a readable id".to_owned(), |id| id.to_string());
                notes.push(format!(
                    "item {shown} skipped, its stored version kept: {}: {}",
                    error.path(),
                    error.inner()
                ));
                unreadable_items.add(id);
                skipped += 1;
                None
            }
        })
        .collect();
    if raw_items.is_empty() {
        let first = notes.kept.first().cloned().unwrap_or_default();
        return Err(StageError::BadInput(format!("none of the {total} items from {url} could be read ({first})")));
    }

    let mut seen_ids = BTreeSet::new();
    let mut seen_names = HashMap::new();
    let mut unique_items = Vec::with_capacity(raw_items.len());
    for item in raw_items {
        if !seen_ids.insert(item.id) {
            notes.push(format!("item {} skipped: the id appears twice", item.id));
            skipped += 1;
            continue;
        }
        if let Some(first) = seen_names.insert(item.name.clone(), item.id) {
            notes.push(format!("items {first} and {} share the name {:?}", item.id, item.name));
        }
        unique_items.push(item);
    }
    let known: BTreeSet<i64> = unique_items.iter().map(|item| item.id).collect();
    // Rows pointing at an unreadable item are not dangling: that item exists, its row is broken.
    let referable: BTreeSet<i64> = known.iter().copied().chain(unreadable_items.keys()).collect();
    let flags: BTreeMap<i64, (bool, bool, bool, bool)> =
        unique_items.iter().map(|item| (item.id, (item.craftable, item.can_cook, item.loot, item.loot_rand))).collect();

    let mut data = ItemsData::default();
    for raw in unique_items {
        let id = raw.id;
        let (seeds, left_out) =
            id_list(&raw.collect_ids, id, "collect_ids", &referable, &mut notes, &mut data.unreadable_lists);
        skipped += left_out;
        for (seed_id, crop_id) in seeds {
            data.seed_crops.push(SeedCrop { seed_id, crop_id });
        }
        let (wells, left_out) =
            id_list(&raw.well_ids, id, "well_ids", &referable, &mut notes, &mut data.unreadable_lists);
        skipped += left_out;
        for (item_id, output_id) in wells {
            data.well_outputs.push(WellOutput { item_id, output_id });
        }
        let cooking_recipe_id = reference(raw.cooking_recipe, id, "cooking_recipe", &referable, &mut notes);
        let loot_key_id = reference(raw.loot_key_id, id, "loot_key_id", &referable, &mut notes);
        let date_added = match raw.date_added.as_str() {
            "0000-00-00" | "" => None,
            text => match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                Ok(date) => Some(date.to_string()),
                Err(_) => {
                    notes.push(format!("item {id}: date_added {text:?} is not a date; stored as unknown"));
                    None
                }
            },
        };
        data.items.push(Item {
            id,
            name: raw.name.trim().to_owned(),
            item_type: raw.item_type,
            rarity: non_empty(raw.rarity),
            description: raw.description,
            description_ext: non_empty(raw.description_ext),
            image: raw.img,
            farm_image: non_empty(raw.img_farm),
            xp_value: raw.xp_value,
            buy_price: raw.can_buy.then_some(raw.buy_price),
            sell_price: Some(raw.sell_price),
            can_sell: raw.can_sell,
            craft_price: raw.craftable.then_some(raw.craft_price),
            crafting_level: raw.craftable.then_some(raw.crafting_level),
            flea_market_price: raw.fm_buy.then_some(raw.fm_price),
            flea_market_rotates: raw.fm_rotate,
            tent_price: raw.tent_buy.then_some(raw.tent_price),
            tent_rotates: raw.tent_rotate,
            tent_max: non_zero(raw.tent_max),
            black_market_price: raw.bmerc_buy.then_some(raw.bmerc_price),
            soap_price: raw.soap_buy.then_some(raw.soap_price),
            soap_rotates: raw.soap_rotate,
            event_price: raw.event_buy.then_some(raw.event_price),
            yield_minutes: non_zero(raw.yield_minutes),
            yield_quantity: raw.yield_qty,
            farming_level: raw.farming_level,
            can_cook: raw.can_cook,
            cooking_level: raw.can_cook.then_some(raw.cooking_level),
            cooking_recipe_id,
            drop_weight: raw.weight,
            runecube_weight: raw.rc_weight,
            manual_fishing_only: raw.manfish_only,
            charter_drop: raw.charter_drop,
            openable: raw.loot,
            random_contents: raw.loot_rand,
            loot_key_id,
            loot_gold: non_zero(raw.loot_gold),
            loot_shown: raw.loot_show,
            void_bag: raw.loot_void,
            void_bag_excluded: raw.void_bag_exclude,
            active: raw.active,
            event_item: raw.event,
            givable: raw.givable,
            mastery: raw.mastery,
            start_locked: raw.start_locked,
            find_alert: raw.find_alert,
            min_trade_level: raw.min_trade_level,
            min_send_level: raw.min_send_level,
            min_receive_level: raw.min_rec_level,
            phr_excluded: raw.phr_exclude,
            phr_limit: raw.phr_limit,
            effect_minutes: non_zero(raw.effect_mins),
            effect_count: non_zero(raw.effect_count),
            effect_type: non_empty(raw.effect_type),
            effect_amount: non_zero(raw.effect_amt),
            date_added,
            mastery_count_1: raw.mcount1,
            mastery_count_2: raw.mcount2,
            mastery_count_3: raw.mcount3,
        });
    }

    let mut stale = 0;
    let mut unreadable_recipes = Unreadable::default();
    let mut seen_pairs = BTreeSet::new();
    for raw in answer.recipes {
        let recipe: RawRecipe = match read_row(raw) {
            Ok(recipe) => recipe,
            Err(error) => {
                let recipe_id = row_key(raw, "id").map_or_else(|| "?".to_owned(), |id| id.to_string());
                notes.push(format!("recipe {recipe_id} skipped: {}: {}", error.path(), error.inner()));
                unreadable_recipes.add(row_key(raw, "item_id"));
                skipped += 1;
                continue;
            }
        };
        let Some(&(craftable, can_cook, openable, random)) = flags.get(&recipe.item_id) else {
            if !unreadable_items.protects(recipe.item_id) {
                notes.push(format!("recipe {} skipped: item {} is not in the item list", recipe.id, recipe.item_id));
            }
            skipped += 1;
            continue;
        };
        if !(craftable || can_cook || openable) {
            stale += 1;
            continue;
        }
        if !referable.contains(&recipe.req_id) {
            notes.push(format!(
                "recipe {} skipped: item {} needs unknown item {}",
                recipe.id, recipe.item_id, recipe.req_id
            ));
            skipped += 1;
            continue;
        }
        if !seen_pairs.insert((recipe.item_id, recipe.req_id)) {
            notes
                .push(format!("recipe {} skipped: a second row for {} → {}", recipe.id, recipe.item_id, recipe.req_id));
            skipped += 1;
            continue;
        }
        if openable {
            // A random grab bag's amount is a maximum; the game gives 1 (or 10 for big stacks) at least.
            let quantity_min = match (random, recipe.req_amt) {
                (true, amount) if amount <= 10 => 1,
                (true, _) => 10,
                (false, amount) => amount,
            };
            data.locksmith_contents.push(LocksmithContent {
                container_id: recipe.item_id,
                item_id: recipe.req_id,
                quantity_min,
                quantity_max: recipe.req_amt,
            });
        } else {
            data.recipe_ingredients.push(RecipeIngredient {
                item_id: recipe.item_id,
                ingredient_id: recipe.req_id,
                quantity: recipe.req_amt,
                kind: if can_cook { "cooking" } else { "crafting" }.to_owned(),
            });
        }
    }
    if stale > 0 {
        notes.push(format!(
            "skipped {stale} stale recipe rows of items that are neither craftable, cookable nor openable"
        ));
    }
    // First, and never cut by the note limit: these explain why a run deleted nothing.
    let protecting_all = [
        unreadable_items
            .note("item", "items, recipe_ingredients, locksmith_contents, seed_crops or wishing_well_outputs"),
        unreadable_recipes.note("recipe", "recipe_ingredients or locksmith_contents"),
    ];
    data.notes = protecting_all.into_iter().flatten().chain(notes.finish()).collect();
    data.unreadable_items = unreadable_items;
    data.unreadable_recipes = unreadable_recipes;
    data.skipped_rows = skipped + stale;
    Ok(data)
}

fn non_empty(text: String) -> Option<String> {
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

fn non_zero(number: i64) -> Option<i64> {
    (number != 0).then_some(number)
}

/// A single item reference: 0 is none, an unknown id is noted and dropped.
fn reference(target: i64, item: i64, field: &str, known: &BTreeSet<i64>, notes: &mut Notes) -> Option<i64> {
    if target == 0 {
        return None;
    }
    if known.contains(&target) {
        return Some(target);
    }
    notes.push(format!("item {item}: {field} points at unknown item {target}; left empty"));
    None
}

/// A comma-separated list of item ids, as (item, target) pairs, and how many entries were left
/// out; unknown, malformed and repeated ids are noted. A malformed entry could be any item, so
/// it marks `item` in `unreadable`: its stored pairs are kept.
fn id_list(
    text: &str,
    item: i64,
    field: &str,
    known: &BTreeSet<i64>,
    notes: &mut Notes,
    unreadable: &mut Unreadable,
) -> (Vec<(i64, i64)>, u64) {
    let mut targets = BTreeSet::new();
    let mut left_out = 0;
    for part in text.split(',').map(str::trim).filter(|part| !part.is_empty() && *part != "0") {
        match part.parse::<i64>() {
            Ok(target) if known.contains(&target) => {
                if !targets.insert(target) {
                    notes.push(format!("item {item}: {field} lists item {target} twice; kept once"));
                    left_out += 1;
                }
            }
            Ok(target) => {
                notes.push(format!("item {item}: {field} names unknown item {target}; skipped"));
                left_out += 1;
            }
            Err(_) => {
                notes.push(format!("item {item}: {field} has a malformed id {part:?}; skipped, its stored pairs kept"));
                unreadable.add(Some(item));
                left_out += 1;
            }
        }
    }
    (targets.into_iter().map(|target| (item, target)).collect(), left_out)
}
