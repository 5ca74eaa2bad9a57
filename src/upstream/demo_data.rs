//! Generated sample upstream data: the same shapes and quirks as the game's API (see the items
//! pipeline), with invented content, at any scale. Scale 1 is what `embedded` serves, so a fresh
//! `hayloft serve` has real-looking data with no network; `hayloft demo-data --scale N --out DIR`
//! writes a capture directory (with its `routes.json`) for replay and scale benchmarks.
//!
//! Deterministic: the same scale always gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::upstream::demo_pages::SamplePages;
use crate::upstream::routes::{Route, Routes};

/// A capture held in memory: routes plus file bodies.
#[derive(Debug, Clone)]
pub struct Capture {
    pub routes: Routes,
    pub files: BTreeMap<String, Bytes>,
}

impl Capture {
    /// Writes the capture as a directory `hayloft replay` and `file://` upstreams can read.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        for (file, body) in &self.files {
            let path = dir.join(file);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, body)?;
        }
        let routes = serde_json::to_vec_pretty(&self.routes).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(Routes::FILE_NAME), routes)
    }
}

/// Items in one block; a scale of N repeats the block N times with fresh ids and names.
pub const ITEMS_PER_BLOCK: usize = 1138;
/// Ids of one block span this range (the game's ids have gaps).
const ID_SPAN: i64 = 1200;

const ADJECTIVES: [&str; 40] = [
    "Amber",
    "Bitter",
    "Bright",
    "Copper",
    "Crimson",
    "Dusty",
    "Elder",
    "Emerald",
    "Faded",
    "Frosty",
    "Gilded",
    "Golden",
    "Hollow",
    "Ivory",
    "Jade",
    "Lucky",
    "Misty",
    "Mossy",
    "Old",
    "Pale",
    "Quiet",
    "Rusty",
    "Salty",
    "Shiny",
    "Silver",
    "Smoky",
    "Spicy",
    "Stormy",
    "Sunny",
    "Sweet",
    "Tangled",
    "Tiny",
    "Velvet",
    "Wild",
    "Windy",
    "Woolly",
    "Zesty",
    "Ancient",
    "Glowing",
    "Grandpa's",
];
const NOUNS: [&str; 40] = [
    "Acorn", "Anchor", "Apple", "Bell", "Berry", "Boot", "Bucket", "Candle", "Carrot", "Clover", "Coin", "Feather",
    "Fern", "Flute", "Gear", "Gourd", "Hammer", "Honey", "Kettle", "Lantern", "Leaf", "Map", "Mushroom", "Nail",
    "Onion", "Pebble", "Pepper", "Plank", "Quill", "Rope", "Shell", "Spoon", "Stone", "Thread", "Tulip", "Twig",
    "Wheel", "Whistle", "Yarn", "Piñata",
];

/// Generates the sample capture at `scale` (1 = the size of the real item list): the item API
/// answer at that scale plus the sample pages of every other source (`pages`, which the
/// pipeline registry provides; see [`crate::upstream::demo_pages`]).
pub fn generate(scale: u32, pages: &SamplePages) -> Capture {
    let route = Route {
        file: "api/items.json".to_owned(),
        path: Some("/api.php".to_owned()),
        query: BTreeMap::from([("method".to_owned(), "items".to_owned())]),
        content_type: "application/json".to_owned(),
    };
    let mut files = BTreeMap::from([(route.file.clone(), items_body(scale))]);
    let mut routes = vec![route];
    for (route, body) in pages.all(scale) {
        files.insert(route.file.clone(), Bytes::from(body));
        routes.push(route);
    }
    Capture { routes: Routes::new(routes), files }
}

/// The item API's answer at `scale`.
pub fn items_body(scale: u32) -> Bytes {
    // Items are written out as soon as each is built: a JSON tree of the whole list would cost
    // several times the body's size, and the embedded upstream builds this on a running server.
    let mut body = Vec::with_capacity(2_000_000 * scale as usize);
    body.extend_from_slice(b"{\"items\":[");
    let mut recipes = Vec::new();
    for block in 0..scale.max(1) {
        generate_block(block, &mut body, &mut recipes);
    }
    body.extend_from_slice(b"],\"recipes\":");
    // Writing into a Vec cannot fail, and the rows are plain numbers.
    let _ = serde_json::to_writer(&mut body, &recipes);
    body.push(b'}');
    Bytes::from(body)
}

/// The id and name of the item at `position` of the first block, as the item API sample
/// names it (other sample pages refer to items by both).
pub fn sample_item(position: usize) -> (i64, String) {
    let id = 11 + position as i64;
    let name =
        format!("{} {}", ADJECTIVES[position % ADJECTIVES.len()], NOUNS[(position / ADJECTIVES.len()) % NOUNS.len()]);
    let name = if Layout::KEYS.contains(&position) {
        format!("{} Key", ["Small", "Square", "Treasure", "Skeleton"][position])
    } else if Layout::COOKBOOKS.contains(&position) {
        format!("Rosalie's {name}")
    } else {
        name
    };
    (id, name)
}

/// The position in its block and the name of the generated item `id` at any scale (the item
/// of block `b` at a position is the first block's, its name followed by ` {b + 1:02}`);
/// `None` for an id no block holds.
pub fn scaled_item(id: i64) -> Option<(usize, String)> {
    let offset = id.checked_sub(11).filter(|offset| *offset >= 0)?;
    let (block, position) = (offset / ID_SPAN, usize::try_from(offset % ID_SPAN).ok()?);
    if position >= ITEMS_PER_BLOCK || block >= i64::from(u32::MAX) {
        return None;
    }
    let (_, name) = sample_item(position);
    let name = if block == 0 { name } else { format!("{name} {:02}", block + 1) };
    Some((position, name))
}

/// The id of the item at `position` of block `block`.
pub fn scaled_item_id(block: u32, position: usize) -> i64 {
    11 + i64::from(block) * ID_SPAN + position as i64
}

/// A plain sample item (one whose name the generator does not rewrite) by position, as
/// `(id, name)`: the items the other sources' sample pages refer to.
pub fn plain_item(position: usize) -> (i64, String) {
    sample_item(120 + position % 700)
}

/// The layout of one block: which positions hold which kinds of item.
struct Layout;

impl Layout {
    const FISH: std::ops::Range<usize> = 924..1030;
    const CROPS: std::ops::Range<usize> = 1030..1066;
    const SEEDS: std::ops::Range<usize> = 1066..1098;
    const MEALS: std::ops::Range<usize> = 1098..1119;
    const CARDS: std::ops::Range<usize> = 1119..1133;
    const BAIT: std::ops::Range<usize> = 1133..1138;
    /// Plain items with special roles.
    const KEYS: std::ops::Range<usize> = 0..4;
    const COOKBOOKS: std::ops::Range<usize> = 4..20;
    const CHESTS: std::ops::Range<usize> = 20..29;
    const CONTAINERS: std::ops::Range<usize> = 20..104;
    const GRAB_BAGS: std::ops::Range<usize> = 90..104;
    const GOLD_ONLY: std::ops::Range<usize> = 104..116;
    const CRAFTABLE: std::ops::Range<usize> = 200..384;
    const STALE: std::ops::Range<usize> = 500..515;
    const INACTIVE: usize = 700;

    fn item_type(position: usize) -> &'static str {
        match position {
            p if Self::FISH.contains(&p) => "fish",
            p if Self::CROPS.contains(&p) => "crop",
            p if Self::SEEDS.contains(&p) => "seeds",
            p if Self::MEALS.contains(&p) => "meal",
            p if Self::CARDS.contains(&p) => "card",
            p if Self::BAIT.contains(&p) => "bait",
            _ => "item",
        }
    }
}

/// One recipe row, as the API sends it.
#[derive(Serialize)]
struct SampleRecipe {
    id: i64,
    item_id: i64,
    req_id: i64,
    req_amt: i64,
}

fn generate_block(block: u32, body: &mut Vec<u8>, recipes: &mut Vec<SampleRecipe>) {
    let mut rng = fastrand::Rng::with_seed(0x4841_594c_4f46_5400 + u64::from(block));
    let block_start = recipes.len();
    let first_id = 11 + i64::from(block) * ID_SPAN;
    let id_of = |position: usize| first_id + position as i64;
    let mut next_recipe_id = 1 + i64::from(block) * 2000;
    let mut add_recipe = |recipes: &mut Vec<SampleRecipe>, item_id: i64, req_id: i64, req_amt: i64| {
        recipes.push(SampleRecipe { id: next_recipe_id, item_id, req_id, req_amt });
        next_recipe_id += 1;
    };
    let suffix = if block == 0 { String::new() } else { format!(" {:02}", block + 1) };

    for position in 0..ITEMS_PER_BLOCK {
        let id = id_of(position);
        let name = format!(
            "{} {}{suffix}",
            ADJECTIVES[position % ADJECTIVES.len()],
            NOUNS[(position / ADJECTIVES.len()) % NOUNS.len()]
        );
        let mut item = base_item(id, &name, Layout::item_type(position), &mut rng);
        let set = |item: &mut Map<String, Value>, key: &str, value: Value| {
            item.insert(key.to_owned(), value);
        };
        if Layout::KEYS.contains(&position) {
            set(
                &mut item,
                "name",
                json!(format!("{} Key{suffix}", ["Small", "Square", "Treasure", "Skeleton"][position])),
            );
        }
        if Layout::COOKBOOKS.contains(&position) {
            set(&mut item, "name", json!(format!("Rosalie's {name}")));
        }
        if Layout::CONTAINERS.contains(&position) {
            set(&mut item, "loot", json!(1));
            set(&mut item, "loot_show", json!(1));
            let contents = rng.usize(3..=12);
            let mut picked = BTreeSet::new();
            while picked.len() < contents {
                picked.insert(id_of(rng.usize(300..900)));
            }
            for content in picked {
                add_recipe(recipes, id, content, rng.i64(1..=25));
            }
            if Layout::GRAB_BAGS.contains(&position) {
                set(&mut item, "loot_rand", json!(1));
            }
        }
        if Layout::CHESTS.contains(&position) {
            set(&mut item, "loot_key_id", json!(id_of(position % Layout::KEYS.len())));
        }
        if Layout::GOLD_ONLY.contains(&position) {
            set(&mut item, "loot", json!(1));
            set(&mut item, "loot_gold", json!(rng.i64(1..=150)));
        }
        if Layout::CRAFTABLE.contains(&position) {
            set(&mut item, "craftable", json!(1));
            set(&mut item, "craft_price", json!(rng.i64(10..=50_000)));
            set(&mut item, "crafting_level", json!(rng.i64(1..=99)));
            let wanted = rng.usize(1..=6);
            let mut picked = BTreeSet::new();
            while picked.len() < wanted {
                picked.insert(id_of(rng.usize(300..924)));
            }
            for ingredient in picked {
                add_recipe(recipes, id, ingredient, rng.i64(1..=40));
            }
        }
        if Layout::MEALS.contains(&position) && position - Layout::MEALS.start < 14 {
            let index = position - Layout::MEALS.start;
            set(&mut item, "can_cook", json!(1));
            set(&mut item, "cooking_level", json!(rng.i64(1..=40)));
            set(&mut item, "cooking_recipe", json!(id_of(Layout::COOKBOOKS.start + index)));
            let wanted = rng.usize(5..=10);
            let mut picked = BTreeSet::new();
            while picked.len() < wanted {
                picked.insert(id_of(rng.usize(Layout::CROPS.start..Layout::CROPS.end)));
            }
            for ingredient in picked {
                add_recipe(recipes, id, ingredient, rng.i64(1..=10));
            }
        }
        if Layout::SEEDS.contains(&position) {
            let crop = id_of(Layout::CROPS.start + (position - Layout::SEEDS.start));
            let extra = id_of(rng.usize(Layout::CROPS.start..Layout::CROPS.end));
            let crops: BTreeSet<i64> = [crop, extra].into();
            set(&mut item, "collect_ids", json!(crops.iter().map(i64::to_string).collect::<Vec<_>>().join(",")));
            set(&mut item, "yield_minutes", json!(rng.i64(1..=14_400)));
        }
        if position % 11 == 3 && position < 1089 {
            let outputs: BTreeSet<i64> = (0..rng.usize(1..=6)).map(|_| id_of(rng.usize(0..ITEMS_PER_BLOCK))).collect();
            set(&mut item, "well_ids", json!(outputs.iter().map(i64::to_string).collect::<Vec<_>>().join(",")));
        }
        if Layout::STALE.contains(&position) {
            // An old event item whose recipe rows outlived its flags: the pipeline skips them.
            set(&mut item, "event", json!(1));
            for _ in 0..5 {
                add_recipe(recipes, id, id_of(rng.usize(300..900)), 1);
            }
        }
        if position == Layout::INACTIVE {
            set(&mut item, "active", json!(0));
        }
        if block > 0 || position > 0 {
            body.push(b',');
        }
        let _ = serde_json::to_writer(&mut *body, &item);
    }
    // Like the real API: recipe rows are not sorted.
    rng.shuffle(&mut recipes[block_start..]);
}

fn base_item(id: i64, name: &str, item_type: &str, rng: &mut fastrand::Rng) -> Map<String, Value> {
    let date_added = if rng.u8(0..100) < 62 {
        "0000-00-00".to_owned()
    } else {
        format!("20{}-{:02}-{:02}", rng.u8(23..=24), rng.u8(1..=12), rng.u8(1..=28))
    };
    let description = if rng.u8(0..10) == 0 {
        format!("A fine {}.<br/>Found far and wide.", name.to_lowercase())
    } else {
        format!("A fine {}.", name.to_lowercase())
    };
    let can_sell = u8::from(rng.u8(0..10) < 8);
    let fm_price = if rng.u8(0..20) == 0 { rng.i64(1..=900) } else { 0 };
    let value = json!({
        "id": id, "name": name, "description": description,
        "description_ext": if rng.u8(0..20) == 0 { "<strong>Tip:</strong>\r\n<ol><li>Keep it dry</li></ol>" } else { "" },
        "yield_minutes": 0, "yield_qty": if item_type == "card" { 0 } else { rng.i64(1..=10) }, "type": item_type,
        "rarity": if rng.u8(0..10) == 0 { "Common" } else { "" }, "farming_level": rng.i64(0..=91),
        "img": format!("/img/items/{}.png", 8000 + id), "img_farm": format!("/img/items/{}.png", 8000 + id),
        "weight": rng.i64(0..=1_000_250), "rc_weight": rng.i64(0..=800_080), "xp_value": rng.i64(0..=400_000),
        "can_buy": u8::from(rng.u8(0..10) == 0), "buy_price": rng.i64(0..=1_890_000),
        "can_sell": can_sell, "sell_price": rng.i64(1..=25_000_000),
        "collect_ids": "", "well_ids": "", "craftable": 0, "craft_price": 0, "crafting_level": 1,
        "fm_buy": 0, "fm_price": fm_price, "fm_rotate": 0, "tent_buy": 0, "tent_price": 0, "tent_rotate": 0,
        "bmerc_buy": 0, "bmerc_price": 0, "givable": 1, "charter_drop": u8::from(rng.bool()), "mastery": u8::from(rng.bool()),
        "start_locked": 0, "find_alert": 0, "loot": 0, "loot_rand": 0, "loot_key_id": 0, "loot_gold": 0, "loot_show": 0,
        "active": 1, "event": 0, "effect_id": 0, "manfish_only": 0, "min_trade_level": 0, "min_send_level": 0,
        "min_rec_level": 0, "subskills": "", "phr_exclude": 0, "phr_limit": 0, "soap_buy": 0, "soap_price": 0,
        "soap_rotate": 0, "effect_mins": 0, "effect_count": 0, "effect_type": "", "effect_amt": 0, "can_cook": 0,
        "cooking_recipe": 0, "cooking_level": 1, "date_added": date_added, "void_bag_exclude": 0, "loot_void": 0,
        "mcount1": rng.i64(0..=65_569), "mcount2": rng.i64(0..=46_259), "mcount3": rng.i64(0..=19_713),
        "event_buy": 0, "event_price": 0, "tent_max": 0
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    // The same scale gives the same bytes, with the real capture's shape and size.
    #[test]
    fn generation_is_deterministic_and_shaped_like_the_api() {
        let first = generate(1, &SamplePages::default());
        let second = generate(1, &SamplePages::default());
        let body = &first.files["api/items.json"];
        assert_eq!(body, &second.files["api/items.json"]);
        let parsed: Value = serde_json::from_slice(body).unwrap();
        let items = parsed["items"].as_array().unwrap();
        assert_eq!(items.len(), ITEMS_PER_BLOCK);
        assert_eq!(items[0].as_object().unwrap().len(), 70, "every item carries the API's 70 keys");
        let names: BTreeSet<&str> = items.iter().map(|item| item["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), items.len(), "names are unique");
        assert!(parsed["recipes"].as_array().unwrap().len() > 1000);
    }

    // Scale N repeats the block with distinct ids and names.
    #[test]
    fn scale_multiplies_the_data() {
        let parsed: Value =
            serde_json::from_slice(&generate(3, &SamplePages::default()).files["api/items.json"]).unwrap();
        let items = parsed["items"].as_array().unwrap();
        assert_eq!(items.len(), 3 * ITEMS_PER_BLOCK);
        let ids: BTreeSet<i64> = items.iter().map(|item| item["id"].as_i64().unwrap()).collect();
        assert_eq!(ids.len(), items.len());
        // The item pages of a scaled capture name the scaled items.
        for item in items {
            let (_, name) = scaled_item(item["id"].as_i64().unwrap()).expect("every generated id is a scaled item");
            assert_eq!(item["name"].as_str(), Some(name.as_str()));
        }
        assert_eq!(scaled_item(11 + ITEMS_PER_BLOCK as i64), None, "between two blocks");
    }
}
