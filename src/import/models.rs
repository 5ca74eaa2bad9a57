//! Each model of the original system's dumps, mapped onto the table Hayloft keeps it in.
//!
//! Two kinds of table meet an import. **History** tables keep every row ever seen (tent weeks,
//! community-center days, exchange offers, passwords) or are written by the import alone
//! (skill-level rewards, manual productions, password clues): the import adds what is missing,
//! and where a live source already stored a row of the same key, that row stays (it is the
//! fresher observation; an exchange offer only takes the earlier first and later last day
//! seen). **Live lists** (pets, pet items, NPC rewards) are owned by their source, which
//! deletes what its API no longer lists: an imported row there would only be deleted again, so
//! the dump is compared with them instead, and what they lack is named in a note, not written.
//!
//! Item references are ids. A row that only holds the id keeps an id the stored item list does
//! not have yet (it resolves once the list catches up); a row that must also name the item
//! (tent offers, community days) is skipped with a note until the item is stored, so that no
//! name is made up. Every skip is counted in the import's notes, by model.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{NaiveDate, TimeZone as _};

use super::dump::{Record, EXCHANGE_LOG, PASSWORD_LIST};
use super::rows::{ManualProduction, PasswordClue, SkillLevelReward};
use crate::pipelines::community::CommunityGoal;
use crate::pipelines::exchange::ExchangeOffer;
use crate::pipelines::npcs::{NpcReward, NpcRewardItem};
use crate::pipelines::passwords::Password;
use crate::pipelines::pets::{Pet, PetItem};
use crate::pipelines::shared::names::{Names, Resolver};
use crate::pipelines::shared::table::{keep_stored, Dataset, DeletePolicy};
use crate::pipelines::tent::{tent_week, TentOffer};

/// Every model an import maps, with where it goes, in the order the tables are written.
pub const MODELS: [(&str, &str); 9] = [
    (PASSWORD_LIST, "passwords, password_clues"),
    ("pets.pet", "pets (compared)"),
    ("pets.petitem", "pet_items (compared)"),
    ("npcs.npcreward", "npc_rewards, npc_reward_items (compared)"),
    ("items.skilllevelreward", "skill_level_rewards"),
    ("items.manualproduction", "manual_productions"),
    ("borgen.borgenitem", "tent_offers"),
    ("community_center.communitycenter", "community_goals"),
    (EXCHANGE_LOG, "exchange_offers"),
];

/// Models a dump may hold that are not imported on purpose, and why (the report says so).
const NOT_IMPORTED: [(&str, &str); 2] = [
    ("auth.user", "accounts of the original system are not imported"),
    ("sessions.session", "sessions of the original system are not imported"),
];

fn mapped(model: &str) -> bool {
    MODELS.iter().any(|(known, _)| *known == model)
}

/// What the stored data says, read before mapping.
#[derive(Debug, Default)]
pub struct Stored {
    pub names: Names,
    /// Stored item names by id.
    pub item_names: HashMap<i64, String>,
    pub pets: Vec<Pet>,
    pub pet_items: Vec<PetItem>,
    pub npc_rewards: Vec<NpcReward>,
    pub npc_reward_items: Vec<NpcRewardItem>,
}

/// The import's rows, and its notes per model.
pub struct Mapped {
    pub dataset: Dataset,
    /// Records whose model was mapped and that became (or confirmed) a row.
    pub read: u64,
    /// Records skipped (unreadable, naming what is not stored, unknown models).
    pub skipped: u64,
}

/// Why a record was not imported.
enum Skip {
    /// It lacks a field its model needs, or holds one that cannot be read.
    Unreadable(String),
    /// It names what is not stored (yet): an item, an NPC, a row of a live list.
    Waiting(String),
}

impl From<String> for Skip {
    fn from(why: String) -> Self {
        Skip::Unreadable(why)
    }
}

/// What became of one model's records.
#[derive(Default)]
struct Tally {
    records: usize,
    skipped: Vec<String>,
    unreadable: usize,
    notes: Vec<String>,
}

impl Tally {
    fn skip(&mut self, why: Skip) {
        match why {
            Skip::Unreadable(why) => {
                self.unreadable += 1;
                self.skipped.push(why);
            }
            Skip::Waiting(why) => self.skipped.push(why),
        }
    }

    /// `pets.pet: 23 records → 23 rows`, then why any were skipped (the first few).
    fn summary(&self, model: &str, rows: usize, into: &str) -> Vec<String> {
        const SHOWN: usize = 5;
        let mut notes = vec![format!("{model}: {} records → {rows} {into} rows", self.records)];
        if !self.skipped.is_empty() {
            let shown: Vec<&str> = self.skipped.iter().take(SHOWN).map(String::as_str).collect();
            let more = self.skipped.len().saturating_sub(SHOWN);
            let more = if more > 0 { format!("; and {more} more") } else { String::new() };
            notes.push(format!("{model}: {} records skipped: {}{more}", self.skipped.len(), shown.join("; ")));
        }
        notes.extend(self.notes.iter().map(|note| format!("{model}: {note}")));
        notes
    }
}

/// Maps every record onto its table. Records of models no table holds are counted and named.
pub fn map(records: &[Record], stored: &Stored) -> Result<Mapped, String> {
    let mut by_model: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    let mut unknown: BTreeMap<String, Vec<&Record>> = BTreeMap::new();
    for record in records {
        match record.model.as_deref() {
            Some(model) if mapped(model) => by_model.entry(model).or_default().push(record),
            Some(model) => unknown.entry(model.to_owned()).or_default().push(record),
            None => unknown.entry("(no model)".to_owned()).or_default().push(record),
        }
    }
    let mut dataset = Dataset::new();
    let mut notes = Vec::new();
    let (mut read, mut skipped) = (0_u64, 0_u64);
    let mut finish = |tally: &Tally, model: &str, rows: usize, into: &str, notes: &mut Vec<String>| {
        notes.extend(tally.summary(model, rows, into));
        skipped += tally.skipped.len() as u64;
        read += (tally.records - tally.skipped.len()) as u64;
        if tally.records > 0 && tally.unreadable == tally.records {
            // Not one record of a non-empty list could be read: its layout is not the one
            // expected. Say where instead of succeeding with nothing.
            return Err(format!("no {model} record could be read; the first: {}", tally.skipped[0]));
        }
        Ok(())
    };
    let models = |model: &str| by_model.get(model).map(Vec::as_slice);

    if let Some(records) = models(PASSWORD_LIST) {
        let (passwords, clues, tally) = password_list(records);
        finish(&tally, PASSWORD_LIST, clues.len(), "password", &mut notes)?;
        dataset = dataset.history_table(passwords, keep_stored).table(clues, DeletePolicy::KeepAll);
    }
    let pet_records = models("pets.pet");
    if let Some(records) = pet_records {
        let (pets, tally) = pets(records, stored);
        finish(&tally, "pets.pet", pets.len(), "pet", &mut notes)?;
        dataset = dataset.history_table(pets, keep_stored);
    }
    if let Some(records) = models("pets.petitem") {
        let (items, tally) = pet_items(records, pet_records.unwrap_or_default(), stored);
        finish(&tally, "pets.petitem", items.len(), "pet item", &mut notes)?;
        dataset = dataset.history_table(items, keep_stored);
    }
    if let Some(records) = models("npcs.npcreward") {
        let (rewards, items, tally) = npc_rewards(records, stored);
        finish(&tally, "npcs.npcreward", items.len(), "NPC reward item", &mut notes)?;
        dataset = dataset.history_table(rewards, keep_stored).history_table(items, keep_stored);
    }
    if let Some(records) = models("items.skilllevelreward") {
        let mut resolver = Resolver::new(&stored.names);
        let (rows, mut tally) = each(records, |record| {
            let (kind, item_id, quantity) = match record.optional_int("item")? {
                Some(item) => ("item", Some(resolver.item_id(item)), record.int("item_quantity")?),
                None => match (record.optional_int("silver")?, record.optional_int("gold")?) {
                    (Some(silver), _) => ("silver", None, silver),
                    (None, Some(gold)) => ("gold", None, gold),
                    (None, None) => {
                        return Err(Skip::Unreadable(format!(
                            "{}: neither an item, Silver nor Gold",
                            record.describe()
                        )))
                    }
                },
            };
            Ok(SkillLevelReward {
                skill: record.text("skill")?.trim().to_lowercase(),
                level: record.int("level")?,
                slot: record.int("order")?,
                kind: kind.to_owned(),
                item_id,
                quantity,
            })
        });
        tally.notes.extend(resolver.notes());
        finish(&tally, "items.skilllevelreward", rows.len(), "skill-level reward", &mut notes)?;
        dataset = dataset.table(rows, DeletePolicy::KeepAll);
    }
    if let Some(records) = models("items.manualproduction") {
        let mut resolver = Resolver::new(&stored.names);
        let (rows, mut tally) = each(records, |record| {
            Ok(ManualProduction {
                id: record.int_pk()?,
                item_id: resolver.item_id(record.int("item")?),
                line_one: record.text("line_one")?,
                line_two: record.text("line_two")?,
                image: record.text("image")?,
                rate: record.text("value")?,
                sort: record.int("sort")?,
            })
        });
        tally.notes.extend(resolver.notes());
        finish(&tally, "items.manualproduction", rows.len(), "manual production", &mut notes)?;
        dataset = dataset.table(rows, DeletePolicy::KeepAll);
    }
    if let Some(records) = models("borgen.borgenitem") {
        let (rows, tally) = each(records, |record| {
            let item_id = record.int("item")?;
            Ok(TentOffer {
                week: tent_week(date(record, "date")?).to_string(),
                item_id,
                item_name: item_name(stored, record, item_id)?,
                price: Some(record.int("price")?),
            })
        });
        finish(&tally, "borgen.borgenitem", rows.len(), "tent offer", &mut notes)?;
        dataset = dataset.history_table(rows, keep_stored);
    }
    if let Some(records) = models("community_center.communitycenter") {
        let (rows, tally) = each(records, |record| community_day(record, stored));
        finish(&tally, "community_center.communitycenter", rows.len(), "community day", &mut notes)?;
        dataset = dataset.history_table(rows, keep_stored);
    }
    if let Some(records) = models(EXCHANGE_LOG) {
        let (rows, tally) = exchange_log(records, stored);
        finish(&tally, EXCHANGE_LOG, rows.len(), "exchange offer", &mut notes)?;
        dataset = dataset.history_table(rows, stored_seen_wider);
    }
    for (model, records) in &unknown {
        skipped += records.len() as u64;
        let why = NOT_IMPORTED
            .iter()
            .find(|(known, _)| known == model)
            .map_or("no Hayloft table holds this model; its records were not imported", |(_, why)| why);
        let first = records.first().map(|record| record.origin.as_str()).unwrap_or_default();
        notes.push(format!("{model}: {} records not imported (the first: {first}): {why}", records.len()));
    }
    if read == 0 {
        return Err(match notes.is_empty() {
            true => "the files hold no records".to_owned(),
            false => format!("nothing could be imported: {}", notes.join("; ")),
        });
    }
    Ok(Mapped { dataset: dataset.with_notes(notes).with_dropped(skipped), read, skipped })
}

/// Maps each record on its own: the rows of those that could be read, and why the others
/// could not.
fn each<R>(records: &[&Record], mut row: impl FnMut(&Record) -> Result<R, Skip>) -> (Vec<R>, Tally) {
    let mut tally = Tally { records: records.len(), ..Tally::default() };
    let mut rows = Vec::with_capacity(records.len());
    for record in records {
        match row(record) {
            Ok(value) => rows.push(value),
            Err(why) => tally.skip(why),
        }
    }
    (rows, tally)
}

/// A `YYYY-MM-DD` field (the exchange log's `2023-05-25-12` carries an hour after it).
fn date(record: &Record, field: &str) -> Result<NaiveDate, String> {
    let text = record.text(field)?;
    let day = text.get(..10).unwrap_or(&text);
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| format!("{}: {field:?} is not a date: {text:?}", record.describe()))
}

/// The stored name of item `id`, or why the record must wait for it.
fn item_name(stored: &Stored, record: &Record, id: i64) -> Result<String, Skip> {
    stored.item_names.get(&id).cloned().ok_or_else(|| {
        Skip::Waiting(format!(
            "{}: item {id} is not in the stored item list (run `items`, then import again)",
            record.describe()
        ))
    })
}

fn password_list(records: &[&Record]) -> (Vec<Password>, Vec<PasswordClue>, Tally) {
    let (clues, mut tally) = each(records, |record| {
        Ok(PasswordClue {
            password: record.text("password")?.trim().to_owned(),
            event: record.text("group")?.trim().to_owned(),
            clue1: record.text("clue1")?,
            clue2: record.text("clue2")?,
            clue3: record.text("clue3")?,
        })
    });
    // The list names when nothing was redeemed: a stored password keeps its date.
    let passwords: BTreeSet<&str> = clues.iter().map(|clue| clue.password.as_str()).collect();
    if passwords.len() < clues.len() {
        tally.notes.push(format!(
            "{} passwords are listed more than once; the first clues were kept",
            clues.len() - passwords.len()
        ));
    }
    let passwords =
        passwords.into_iter().map(|password| Password { password: password.to_owned(), redeemed_at: None }).collect();
    (passwords, clues, tally)
}

/// The dump's pets, compared with the stored ones (the pets source's): stored pets are kept as
/// they are; a pet the source has not stored is named, not written (the dump has no
/// description, display order or cooking level for it).
fn pets(records: &[&Record], stored: &Stored) -> (Vec<Pet>, Tally) {
    let by_id: HashMap<i64, &Pet> = stored.pets.iter().map(|pet| (pet.id, pet)).collect();
    let mut differing = Vec::new();
    let (rows, mut tally) = each(records, |record| {
        let id = record.int("game_id")?;
        let Some(pet) = by_id.get(&id) else {
            return Err(Skip::Waiting(format!(
                "{}: pet {id} is not stored; the dump lacks its description, display order and cooking level, which the pets source loads",
                record.describe()
            )));
        };
        let dump = (
            record.text("name")?,
            record.text("image")?,
            record.int("cost")?,
            [
                record.int("required_farming_level")?,
                record.int("required_fishing_level")?,
                record.int("required_crafting_level")?,
                record.int("required_exploring_level")?,
            ],
        );
        let kept = (
            pet.name.clone(),
            pet.image.clone(),
            pet.cost,
            [
                pet.required_farming_level,
                pet.required_fishing_level,
                pet.required_crafting_level,
                pet.required_exploring_level,
            ],
        );
        if dump != kept {
            differing.push(id.to_string());
        }
        Ok((*pet).clone())
    });
    if !differing.is_empty() {
        tally.notes.push(format!(
            "{} pets differ from the dump ({}); the stored rows, from the pets source, were kept",
            differing.len(),
            differing.join(", ")
        ));
    }
    (rows, tally)
}

/// The dump's pet items (`pet` is the pk of a `pets.pet` record), compared with the stored
/// ones in the same way as [`pets`].
fn pet_items(records: &[&Record], pet_records: &[&Record], stored: &Stored) -> (Vec<PetItem>, Tally) {
    let pet_ids: HashMap<i64, i64> =
        pet_records.iter().filter_map(|record| Some((record.int_pk().ok()?, record.int("game_id").ok()?))).collect();
    let by_key: HashMap<(i64, i64, i64), &PetItem> =
        stored.pet_items.iter().map(|item| ((item.pet_id, item.level, item.item_id), item)).collect();
    each(records, |record| {
        let pk = record.int("pet")?;
        // Without the pet records, the pk is the game's id (as in every dump seen).
        let pet_id = pet_ids.get(&pk).copied().unwrap_or(pk);
        let key = (pet_id, record.int("level")?, record.int("item")?);
        by_key.get(&key).map(|item| (*item).clone()).ok_or_else(|| {
            Skip::Waiting(format!(
                "{}: pet {} brings item {} at level {} in the dump, not in the stored list of the pets source",
                record.describe(),
                key.0,
                key.2,
                key.1
            ))
        })
    })
}

/// The dump's NPC rewards (one record per item: `npc` is the NPC's player account, `order` the
/// item's place), compared per NPC and level with the rewards the npcs source stored.
fn npc_rewards(records: &[&Record], stored: &Stored) -> (Vec<NpcReward>, Vec<NpcRewardItem>, Tally) {
    let by_npc_level: HashMap<(Option<i64>, i64), &NpcReward> =
        stored.npc_rewards.iter().map(|reward| ((reward.npc_id, reward.level), reward)).collect();
    let mut items_of: BTreeMap<i64, Vec<&NpcRewardItem>> = BTreeMap::new();
    for item in &stored.npc_reward_items {
        items_of.entry(item.reward_id).or_default().push(item);
    }
    let mut differing = BTreeSet::new();
    let mut matched: BTreeMap<i64, &NpcReward> = BTreeMap::new();
    let (items, mut tally) = each(records, |record| {
        let user = record.int("npc")?;
        let level = record.int("level")?;
        let (item_id, quantity) = (record.int("item")?, record.int("quantity")?);
        let npc_id = stored.names.npc_user_ids.get(&user).copied().ok_or_else(|| {
            Skip::Waiting(format!(
                "{}: no stored NPC has player account {user} (run `npcs`, then import again)",
                record.describe()
            ))
        })?;
        let reward = by_npc_level.get(&(Some(npc_id), level)).ok_or_else(|| {
            Skip::Waiting(format!(
                "{}: NPC {npc_id} has no stored reward at level {level}; the npcs source owns that list",
                record.describe()
            ))
        })?;
        matched.insert(reward.id, reward);
        let stored_items = items_of.get(&reward.id).map(Vec::as_slice).unwrap_or_default();
        match stored_items.iter().find(|item| item.item_id == item_id) {
            Some(item) => {
                if item.quantity != quantity {
                    differing.insert(reward.id);
                }
                Ok((*item).clone())
            }
            None => Err(Skip::Waiting(format!(
                "{}: NPC {npc_id}'s level-{level} reward holds no item {item_id} in the stored list of the npcs source",
                record.describe()
            ))),
        }
    });
    if !differing.is_empty() {
        let ids: Vec<String> = differing.iter().map(ToString::to_string).collect();
        tally.notes.push(format!(
            "{} rewards give other quantities than the dump ({}); the stored rows, from the npcs source, were kept",
            ids.len(),
            ids.join(", ")
        ));
    }
    let rewards = matched.into_values().cloned().collect();
    (rewards, items, tally)
}

/// One community-center day: the goal item and quantity, the reward (an item, or Gold) and the
/// progress the original system last saw.
fn community_day(record: &Record, stored: &Stored) -> Result<CommunityGoal, Skip> {
    let goal_date = date(record, "date")?.to_string();
    let goal_item = record.int("input_item")?;
    let (reward_item_id, reward_item_name, reward_quantity) = match record.optional_int("output_item")? {
        Some(id) => (Some(id), item_name(stored, record, id)?, record.int("output_quantity")?),
        None => match record.optional_int("output_gold")? {
            Some(gold) => (None, "Gold".to_owned(), gold),
            None => {
                return Err(Skip::Unreadable(format!("{}: neither an output item nor output gold", record.describe())))
            }
        },
    };
    Ok(CommunityGoal {
        goal_date,
        goal_item_id: Some(goal_item),
        goal_item_name: item_name(stored, record, goal_item)?,
        goal_quantity: record.int("input_quantity")?,
        reward_item_id,
        reward_item_name,
        reward_quantity,
        progress: record.optional_int("progress")?,
        // The page shows a percentage; the dump has only the count.
        progress_percent: None,
    })
}

/// The exchange-center log: one record per sighting of an offer, items by name. Sightings of
/// one offer (same items and quantities) become one row, first seen on the earliest day any
/// of them was (`firstSeen`, milliseconds, or its `date`), last seen on the latest `date`.
fn exchange_log(records: &[&Record], stored: &Stored) -> (Vec<ExchangeOffer>, Tally) {
    let mut resolver = Resolver::new(&stored.names);
    let (sightings, mut tally) = each(records, |record| {
        let give_name = record.text("giveItem")?;
        let receive_name = record.text("receiveItem")?;
        let missing = |name: &str| Skip::Waiting(format!("{}: no stored item is called {name:?}", record.describe()));
        let give_item_id = resolver.item(&give_name).ok_or_else(|| missing(&give_name))?;
        let receive_item_id = resolver.item(&receive_name).ok_or_else(|| missing(&receive_name))?;
        let day = date(record, "date")?.to_string();
        let first_seen = match record.optional_int("firstSeen")? {
            Some(millis) => game_day(millis).map_or_else(|| day.clone(), |first| first.min(day.clone())),
            None => day.clone(),
        };
        Ok(ExchangeOffer {
            give_item_id,
            give_quantity: record.int("giveQuantity")?,
            receive_item_id,
            receive_quantity: record.int("receiveQuantity")?,
            give_item_name: give_name.trim().to_owned(),
            receive_item_name: receive_name.trim().to_owned(),
            one_shot: record.boolean("oneShot")?,
            trade_id: None,
            first_seen,
            last_seen: day,
        })
    });
    let mut offers: BTreeMap<(i64, i64, i64, i64), ExchangeOffer> = BTreeMap::new();
    for sighting in sightings {
        let key = (sighting.give_item_id, sighting.give_quantity, sighting.receive_item_id, sighting.receive_quantity);
        match offers.get_mut(&key) {
            Some(offer) => {
                widen_seen(offer, &sighting);
                offer.one_shot |= sighting.one_shot;
            }
            None => {
                offers.insert(key, sighting);
            }
        }
    }
    let offers: Vec<ExchangeOffer> = offers.into_values().collect();
    tally.notes.push(format!("the sightings are {} distinct offers", offers.len()));
    (offers, tally)
}

/// The game day (US Central) of a millisecond timestamp.
fn game_day(millis: i64) -> Option<String> {
    let instant = chrono::Utc.timestamp_millis_opt(millis).single()?;
    Some(instant.with_timezone(&chrono_tz::America::Chicago).date_naive().to_string())
}

/// Two sightings of one offer: `offer` stays, seen from the earlier first day to the later
/// last day of both.
fn widen_seen(offer: &mut ExchangeOffer, other: &ExchangeOffer) {
    if other.first_seen < offer.first_seen {
        offer.first_seen.clone_from(&other.first_seen);
    }
    if other.last_seen > offer.last_seen {
        offer.last_seen.clone_from(&other.last_seen);
    }
}

/// An imported offer a live run stored already: the stored row stays (its trade id, its
/// names), seen over both spans.
fn stored_seen_wider(incoming: &mut ExchangeOffer, stored: &ExchangeOffer) {
    let mut kept = stored.clone();
    widen_seen(&mut kept, incoming);
    *incoming = kept;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::import::dump::parse;
    use crate::pipelines::shared::names::NameIndex;

    fn stored() -> Stored {
        let items = [(44, "Acorn"), (45, "Grapes")];
        Stored {
            names: Names {
                item_ids: items.iter().map(|(id, _)| *id).collect(),
                items: NameIndex::new(items.iter().map(|(id, name)| ((*name).to_owned(), *id))),
                ..Names::default()
            },
            item_names: items.iter().map(|(id, name)| (*id, (*name).to_owned())).collect(),
            ..Stored::default()
        }
    }

    // Sightings of one offer become one row seen from the earliest to the latest day; a name no
    // item has skips its record, with a note naming it.
    #[test]
    fn exchange_sightings_become_one_offer_each() {
        let body = br#"[
            {"firstSeen": 1653101024772, "date": "2022-05-21", "giveItem": "Acorn", "giveQuantity": 250,
             "receiveItem": "Grapes", "receiveQuantity": 125, "completed": true, "oneShot": false},
            {"firstSeen": 1685035218850, "date": "2023-05-25-12", "giveItem": "Acorn", "giveQuantity": 250,
             "receiveItem": "Grapes", "receiveQuantity": 125, "completed": false, "oneShot": false},
            {"firstSeen": 1685035218850, "date": "2023-05-25", "giveItem": "Thorns", "giveQuantity": 1,
             "receiveItem": "Grapes", "receiveQuantity": 1, "completed": false, "oneShot": true}
        ]"#;
        let records = parse("log.json", body).unwrap();
        let records: Vec<&Record> = records.iter().collect();
        let (offers, tally) = exchange_log(&records, &stored());
        assert_eq!(offers.len(), 1);
        // 1653101024772 is 2022-05-21 02:43 UTC: still the 20th in game time.
        assert_eq!((offers[0].first_seen.as_str(), offers[0].last_seen.as_str()), ("2022-05-20", "2023-05-25"));
        assert_eq!(tally.skipped.len(), 1);
        assert!(tally.skipped[0].contains("\"Thorns\""), "{:?}", tally.skipped);

        // Against a stored row the stored one stays, over both spans.
        let mut incoming = offers[0].clone();
        let mut kept = offers[0].clone();
        kept.trade_id = Some(7);
        kept.first_seen = "2022-06-01".to_owned();
        kept.last_seen = "2026-12-01".to_owned();
        stored_seen_wider(&mut incoming, &kept);
        assert_eq!(
            (incoming.trade_id, incoming.first_seen.as_str(), incoming.last_seen.as_str()),
            (Some(7), "2022-05-20", "2026-12-01")
        );
    }

    // A skill level's Silver is a reward of its own kind; a model of which no record can be read
    // fails the mapping, naming the field; nothing at all to import fails too.
    #[test]
    fn rewards_of_every_kind_and_unreadable_models() {
        let body = br#"[
            {"model": "items.skilllevelreward", "pk": 0, "fields": {"skill": "Farming", "level": 10, "order": 1, "item": "31", "item_quantity": 12}},
            {"model": "items.skilllevelreward", "pk": 2, "fields": {"skill": "farming", "level": 10, "order": 3, "silver": 1500}}
        ]"#;
        let mapped = map(&parse("skills.json", body).unwrap(), &stored()).unwrap();
        let rows = mapped.dataset.rows_of("skill_level_rewards");
        assert_eq!(rows[0]["kind"], "item");
        assert_eq!(rows[0]["skill"], "farming");
        assert_eq!(
            (&rows[1]["kind"], &rows[1]["quantity"], &rows[1]["item_id"]),
            (&"silver".into(), &1500.into(), &serde_json::Value::Null)
        );
        assert!(mapped
            .dataset
            .notes
            .iter()
            .any(|note| note.contains("item ids are not in the stored item list") && note.contains("31")));

        let drifted =
            br#"[{"model": "borgen.borgenitem", "pk": 1, "fields": {"day": "2022-04-13", "item": "44", "price": 1}}]"#;
        let error = map(&parse("tent.json", drifted).unwrap(), &stored()).err().unwrap();
        assert!(
            error.contains("no borgen.borgenitem record could be read") && error.contains("no \"date\""),
            "{error}"
        );
        assert_eq!(map(&[], &stored()).err().unwrap(), "the files hold no records");
    }
}
