//! Pets (`/api.php?method=pets`): what each pet costs, the skill levels it needs, its place in
//! the game's list, and the items it brings back at pet levels 1, 3 and 6.
//!
//! The answer carries the game's `pet` rows as they are: `id`, `name`, `description`, `img` (a
//! file name under `/img/pets/`), `price`, `farming_level`, `fishing_level`, `crafting_level`,
//! `exploring_level`, `cooking_level`, `display_order`, and the item lists `items`, `items3`
//! and `items6` (comma-separated item ids, for levels 1, 3 and 6). Those are the columns the
//! original system read; no capture of the endpoint exists, so both answer layouts seen in the
//! game's API are accepted: a bare array, or an object holding it under `pets`.
//!
//! As for quests, no field has a default: a pet missing one is skipped with a note and keeps
//! its stored version, and an unreadable item list keeps that pet's stored items.

use diesel::{Insertable, Queryable, Selectable};
use hayloft_actors::pipeline::StageError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

use super::items::rows::Item;
use super::npcs::id_list;
use super::shared::common::{json_answer, read_rows, Unreadable};
use super::shared::names::Resolver;
use super::shared::source::{Source, SourceInput};
use super::shared::table::{stored_table, Dataset, DeletePolicy};
use crate::front_doors::graphql::entity::{entity, links};
use crate::upstream::demo_data::plain_item;
use crate::upstream::demo_pages::{SamplePage, SampleRequest};

pub const NAME: &str = "pets";
const REQUEST: &str = "/api.php?method=pets";

entity! {
    #[diesel(table_name = pets)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct Pet {
        pub id: i64,
        pub name: String,
        pub description: String,
        /// The pet's picture, site-relative (`/img/pets/arma.png`).
        pub image: String,
        /// Its price in Silver.
        pub cost: i64,
        /// Its place in the game's pet list.
        pub display_order: i64,
        pub required_farming_level: i64,
        pub required_fishing_level: i64,
        pub required_crafting_level: i64,
        pub required_exploring_level: i64,
        pub required_cooking_level: i64,
    }
    key (id);
    roots (pets, pet);
    relations {
        /// Items the pet brings back (`level` narrows it to 1, 3 or 6).
        items(level): many pet_items.pet_id = id;
    }
}
stored_table!(
    Pet,
    pets,
    "pet",
    key(id),
    update(
        name,
        description,
        image,
        cost,
        display_order,
        required_farming_level,
        required_fishing_level,
        required_crafting_level,
        required_exploring_level,
        required_cooking_level
    ), label name
);

entity! {
    #[diesel(table_name = pet_items)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct PetItem {
        pub pet_id: i64,
        /// The pet level from which it brings the item: 1, 3 or 6.
        pub level: i64,
        pub item_id: i64,
        /// Its place in that level's list, from 1.
        pub position: i64,
    }
    key (pet_id, level, item_id);
    roots (pet_items, pet_item);
    relations {
        pet: one pets.id = pet_id;
        item: one items.id = item_id;
    }
}
stored_table!(PetItem, pet_items, "pet_item", key(pet_id, level, item_id), update(position));

links! {
    Item {
        /// Pets that bring back this item, and from which level.
        pet_items: many pet_items.item_id = id;
    }
}

/// One pet as the API sends it (see the module documentation).
#[derive(Debug, Deserialize)]
struct RawPet {
    id: i64,
    name: String,
    description: String,
    img: String,
    price: i64,
    farming_level: i64,
    fishing_level: i64,
    crafting_level: i64,
    exploring_level: i64,
    cooking_level: i64,
    display_order: i64,
    items: String,
    items3: String,
    items6: String,
}

/// The answer wrapped in an object.
#[derive(Deserialize)]
struct Wrapped<'a> {
    #[serde(borrow)]
    pets: Vec<&'a RawValue>,
}

/// The pet rows of either layout of the answer (see the module documentation). The layout is
/// told by the first character: serde's untagged enums buffer their input and cannot lend out
/// raw rows.
fn pet_rows<'a>(body: &'a [u8], url: &str) -> Result<Vec<&'a RawValue>, StageError> {
    let bare = body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'[');
    if bare {
        json_answer::<Vec<&RawValue>>(body, url)
    } else {
        Ok(json_answer::<Wrapped<'_>>(body, url)?.pets)
    }
}

/// `arma.png` → `/img/pets/arma.png`; a path that is already site-relative or absolute stays.
fn pet_image(img: &str) -> String {
    let img = img.trim();
    if img.starts_with('/') || img.contains("://") || img.is_empty() {
        img.to_owned()
    } else {
        format!("/img/pets/{img}")
    }
}

#[derive(Default)]
pub struct Pets;

impl Source for Pets {
    const NAME: &'static str = NAME;
    /// Daily, at a hashed time: pets rarely change.
    const DEFAULT_SCHEDULE: &'static str = "H H H * * *";
    const TRANSFORM_VERSION: u32 = 1;

    fn requests(&self) -> Vec<String> {
        vec![REQUEST.to_owned()]
    }

    fn sample_page(&self, request: &SampleRequest) -> Option<SamplePage> {
        request.asks_for(REQUEST).then(|| SamplePage::json(sample_answer()))
    }

    fn parse(&self, input: &SourceInput) -> Result<Dataset, StageError> {
        let page = &input.pages[0];
        let raws = pet_rows(&page.body, &page.url)?;
        if raws.is_empty() {
            return Err(StageError::BadInput(format!(
                "{} returned an empty pet list; refusing to read that as \"every pet is gone\"",
                page.url
            )));
        }
        let mut notes = Vec::new();
        let mut resolver = Resolver::new(&input.names);
        let read = read_rows::<RawPet>(raws, "pet", "id");
        let mut dropped = read.unreadable.len();
        notes.extend(read.notes);
        let unreadable = std::sync::Arc::new(read.unreadable);
        let mut unreadable_items = Unreadable::default();
        let mut pets = Vec::with_capacity(read.rows.len());
        let mut items = Vec::new();
        for raw in read.rows {
            for (level, list) in [(1, &raw.items), (3, &raw.items3), (6, &raw.items6)] {
                let (ids, bad) = id_list(list);
                if !bad.is_empty() {
                    notes.push(format!(
                        "pet {}: unreadable level {level} item entries skipped, its stored items kept: {}",
                        raw.id,
                        bad.join(", ")
                    ));
                    unreadable_items.add(Some(raw.id));
                    dropped += bad.len() as u64;
                }
                for (position, id) in (1..).zip(ids) {
                    items.push(PetItem { pet_id: raw.id, level, item_id: resolver.item_id(id), position });
                }
            }
            pets.push(Pet {
                id: raw.id,
                name: raw.name.trim().to_owned(),
                description: raw.description.trim().to_owned(),
                image: pet_image(&raw.img),
                cost: raw.price,
                display_order: raw.display_order,
                required_farming_level: raw.farming_level,
                required_fishing_level: raw.fishing_level,
                required_crafting_level: raw.crafting_level,
                required_exploring_level: raw.exploring_level,
                required_cooking_level: raw.cooking_level,
            });
        }
        if pets.is_empty() {
            return Err(StageError::BadInput(format!(
                "{} listed pets but none could be read: {}",
                page.url,
                notes.first().map_or("", String::as_str)
            )));
        }
        notes.extend(resolver.notes());
        let keep_items = unreadable.clone();
        Ok(Dataset::new()
            .table(pets, DeletePolicy::keep_where(move |row: &Pet| unreadable.protects(row.id)))
            .table(
                items,
                DeletePolicy::keep_where(move |row: &PetItem| {
                    keep_items.protects(row.pet_id) || unreadable_items.protects(row.pet_id)
                }),
            )
            .with_notes(notes)
            .with_dropped(dropped))
    }
}

/// The sample pet answer: six pets of rising cost, each bringing back plain sample items.
fn sample_answer() -> String {
    const NAMES: [&str; 6] = ["Barn Cat", "Field Mouse", "River Otter", "Hill Goat", "Moss Turtle", "Sky Owl"];
    let list = |start: usize, count: usize| {
        (0..count).map(|step| plain_item(start + step * 11).0.to_string()).collect::<Vec<_>>().join(",")
    };
    let pets: Vec<_> = NAMES
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let level = 10 * index as i64;
            json!({
                "id": index + 1, "name": name, "description": format!("A loyal {}.", name.to_lowercase()),
                "img": format!("pet_{}.png", index + 1), "price": 1_000_000 * (index as i64 + 1),
                "farming_level": level, "fishing_level": if index % 2 == 0 { level } else { 0 },
                "crafting_level": 0, "exploring_level": level / 2, "cooking_level": 0,
                "display_order": 10 * (index + 1), "items": list(index * 3, 2),
                "items3": list(index * 3 + 1, 3), "items6": list(index * 3 + 2, 4)
            })
        })
        .collect();
    json!({ "pets": pets }).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bytes::Bytes;

    use super::*;
    use crate::pipelines::shared::names::Names;
    use crate::pipelines::shared::source::{parse_pages, Page};

    fn page(body: &str) -> Page {
        Page { request: REQUEST.to_owned(), url: REQUEST.to_owned(), body: Bytes::from(body.to_owned()) }
    }

    // The sample reads whole, wrapped or bare; pictures become site paths.
    #[test]
    fn pets_and_their_items() {
        let dataset = parse_pages(&Pets, vec![page(&sample_answer())], Names::default()).unwrap();
        assert_eq!(dataset.table_rows(), [("pets", 6), ("pet_items", 54)]);
        let sample: serde_json::Value = serde_json::from_str(&sample_answer()).unwrap();
        let bare = parse_pages(&Pets, vec![page(&sample["pets"].to_string())], Names::default()).unwrap();
        assert_eq!(bare.table_rows(), [("pets", 6), ("pet_items", 54)]);
        assert_eq!(
            (pet_image("arma.png"), pet_image("/img/pets/a.png")),
            ("/img/pets/arma.png".into(), "/img/pets/a.png".into())
        );
    }

    // A pet missing a field is skipped and kept; an unreadable list keeps its stored items; an
    // empty list is refused.
    #[test]
    fn unreadable_pets_are_kept() {
        let mut sample: serde_json::Value = serde_json::from_str(&sample_answer()).unwrap();
        sample["pets"][0].as_object_mut().unwrap().remove("price");
        sample["pets"][1]["items3"] = json!("12,x");
        let dataset = parse_pages(&Pets, vec![page(&sample.to_string())], Names::default()).unwrap();
        assert_eq!(dataset.table_rows(), [("pets", 5), ("pet_items", 43)]);
        let notes = dataset.notes.join("\n");
        assert!(notes.contains("pet 1 skipped, its stored version kept: .: missing field `price`"), "{notes}");
        assert!(notes.contains("pet 2: unreadable level 3 item entries skipped, its stored items kept: x"), "{notes}");
        let error = parse_pages(&Pets, vec![page("{\"pets\": []}")], Names::default()).err().unwrap();
        assert!(error.to_string().contains("empty pet list"), "{error}");
    }
}
