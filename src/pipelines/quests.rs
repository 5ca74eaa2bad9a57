//! Quests (`/api/quests/`): what each quest asks for (items, silver, skill levels), what it gives,
//! who asks, and the quest it follows.
//!
//! The answer is a JSON array of quest objects. Item lists are `id|quantity` entries separated
//! by commas (`"2|10,5|1"`; empty for none). Dates are `YYYY-MM-DD` in game time (US Central),
//! `0000-00-00` for a quest that is always available; an end date means "through the end of that
//! day". Both are kept as the game gives them and as instants (`starts_at`, and `ends_at`, the
//! first instant after the last day, both RFC 3339 in UTC). `pred_id` names the quest this one follows (`0` for none); it may come before or after
//! that quest in the answer, or name one the answer does not list, so it is kept as a plain id.
//! Descriptions are HTML as the game writes it (`<br>` runs, `<font>`, `<marquee>`, and macros
//! such as `{player}` that the game fills in per player): `text` is what a browser shows of it,
//! with the macros left as they are, and `html` a clean copy with absolute links (tags repaired,
//! `<marquee>` unwrapped).
//!
//! Quest lines are not in the API; they are read from the titles, which carry the step:
//! `99 Bottles XLVIII` (a Roman numeral), `Name Part 3`, `Name IV - B` (a lettered part of a
//! step). A title without a number is the first step of the line of that name when the line has
//! numbered steps, and no line otherwise. `questlines` holds one row per line.
//!
//! Every field a quest row needs must be there: a quest missing one, or with a date or item
//! list that cannot be read, is skipped with a note and its stored version kept, so an answer cut
//! short in a field never turns into zeros. `npc_img` is the one field older answers lack: where
//! it is missing the stored picture stays.

use diesel::{Insertable, Queryable, Selectable};
use hayloft_actors::pipeline::StageError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

use super::items::rows::Item;
use super::items::transform::flag;
use super::shared::common::{json_answer, read_rows, Unreadable};
use super::shared::names::Resolver;
use super::shared::page_text::{clean_html, fragment_text};
use super::shared::source::{Source, SourceInput};
use super::shared::table::{stored_table, Dataset, DeletePolicy};
use crate::front_doors::graphql::entity::{entity, links};
use crate::upstream::demo_data::plain_item;
use crate::upstream::demo_pages::{SamplePage, SampleRequest};

pub const NAME: &str = "quests";
const REQUEST: &str = "/api/quests/";

entity! {
    #[diesel(table_name = quests)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct Quest {
        pub id: i64,
        pub title: String,
        /// Who gives the quest, as the API names them.
        pub npc_name: String,
        /// That NPC among the stored ones, when the name resolves.
        pub npc_id: Option<i64>,
        /// The quest giver's picture (`npc_img`); empty when the game shows none. `None` only
        /// when no answer so far carried a picture field.
        pub image: Option<String>,
        pub author: Option<String>,
        /// The quest this one follows; it may not be stored (yet).
        pub predecessor_id: Option<i64>,
        pub main_quest: bool,
        /// First day it can be done, `YYYY-MM-DD` in game time; `None` when always available.
        pub start_date: Option<String>,
        /// Last day it can be done (through the end of that day), `YYYY-MM-DD` in game time.
        pub end_date: Option<String>,
        /// When it becomes available: the start of `start_date` in game time, RFC 3339 in UTC.
        pub starts_at: Option<String>,
        /// The first instant it is no longer available: the end of `end_date` in game time.
        pub ends_at: Option<String>,
        /// The quest line its title names (`99 Bottles` for `99 Bottles XLVIII`).
        pub questline: Option<String>,
        /// Its step in that line (48 for `XLVIII`, 1 for an unnumbered first step).
        pub questline_step: Option<i64>,
        /// The lettered part of that step (`B` for `Name IV - B`).
        pub questline_part: Option<String>,
        /// The description as a browser shows it; game macros such as `{player}` are kept.
        pub text: String,
        /// The description as clean HTML, links absolute.
        pub html: String,
        pub reward_silver: i64,
        pub reward_gold: i64,
        pub required_silver: i64,
        /// An NPC the player must know, by the game's id; `None` for none.
        pub required_npc_id: Option<i64>,
        pub required_npc_level: i64,
        pub required_farming_level: i64,
        pub required_fishing_level: i64,
        pub required_crafting_level: i64,
        pub required_exploring_level: i64,
        pub required_cooking_level: i64,
        pub required_tower_level: i64,
        /// How many players have completed it.
        pub completed_count: i64,
    }
    key (id);
    roots (quests, quest);
    relations {
        /// Items the quest asks for.
        required_items: many quest_required_items.quest_id = id;
        /// Items the quest gives.
        reward_items: many quest_reward_items.quest_id = id;
        /// The quest this one follows.
        predecessor: one quests.id = predecessor_id;
        /// Quests that follow this one.
        successors: many quests.predecessor_id = id;
        /// The NPC who gives it.
        npc: one npcs.id = npc_id;
        /// The quest line it is a step of.
        line: one questlines.name = questline;
    }
}
stored_table!(
    Quest,
    quests,
    "quest",
    key(id),
    update(
        title,
        npc_name,
        npc_id,
        image,
        author,
        predecessor_id,
        main_quest,
        start_date,
        end_date,
        starts_at,
        ends_at,
        questline,
        questline_step,
        questline_part,
        text,
        html,
        reward_silver,
        reward_gold,
        required_silver,
        required_npc_id,
        required_npc_level,
        required_farming_level,
        required_fishing_level,
        required_crafting_level,
        required_exploring_level,
        required_cooking_level,
        required_tower_level,
        completed_count
    ), label title,
    unknown(image)
);

entity! {
    #[diesel(table_name = questlines)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct Questline {
        /// The line's name as its titles give it.
        pub name: String,
        /// How many quests of the answer are steps of it.
        pub step_count: i64,
        /// Its lowest step's quest.
        pub first_quest_id: i64,
    }
    key (name);
    roots (questlines, questline);
    relations {
        /// Its quests.
        steps: many quests.questline = name;
    }
}
stored_table!(Questline, questlines, "questline", key(name), update(step_count, first_quest_id));

entity! {
    #[diesel(table_name = quest_required_items)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct QuestRequiredItem {
        pub quest_id: i64,
        /// Position in the quest's list, from 1.
        pub slot: i64,
        pub item_id: i64,
        pub quantity: i64,
    }
    key (quest_id, slot);
    roots (quest_required_items, quest_required_item);
    relations {
        quest: one quests.id = quest_id;
        item: one items.id = item_id;
    }
}
stored_table!(
    QuestRequiredItem,
    quest_required_items,
    "quest_required_item",
    key(quest_id, slot),
    update(item_id, quantity)
);

entity! {
    #[diesel(table_name = quest_reward_items)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct QuestRewardItem {
        pub quest_id: i64,
        /// Position in the quest's list, from 1.
        pub slot: i64,
        pub item_id: i64,
        pub quantity: i64,
    }
    key (quest_id, slot);
    roots (quest_reward_items, quest_reward_item);
    relations {
        quest: one quests.id = quest_id;
        item: one items.id = item_id;
    }
}
stored_table!(QuestRewardItem, quest_reward_items, "quest_reward_item", key(quest_id, slot), update(item_id, quantity));

links! {
    Item {
        /// Quests that ask for this item.
        required_for: many quest_required_items.item_id = id;
        /// Quests that give this item.
        reward_for: many quest_reward_items.item_id = id;
    }
}

/// One quest as the API sends it. No field has a default: a missing one makes the row
/// unreadable rather than zero (see the module documentation), except `npc_img`.
#[derive(Debug, Deserialize)]
struct RawQuest {
    id: i64,
    npc: String,
    npc_img: Option<String>,
    title: String,
    author: Option<String>,
    pred_id: i64,
    start_date: String,
    end_date: String,
    #[serde(deserialize_with = "flag")]
    main_quest: bool,
    description: String,
    reward_gold: i64,
    reward_silver: i64,
    reward_items: String,
    required_items: String,
    required_silver: i64,
    required_npc_id: i64,
    required_npc_level: i64,
    required_farming_level: i64,
    required_fishing_level: i64,
    required_crafting_level: i64,
    required_exploring_level: i64,
    required_cooking_level: i64,
    required_tower_level: i64,
    completed_count: i64,
}

/// `"2023-03-01"` → that date; `"0000-00-00"` (and empty) → none; anything else is an error.
fn game_date(field: &str, text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.is_empty() || text == "0000-00-00" {
        return Ok(None);
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|date| Some(date.format("%Y-%m-%d").to_string()))
        .map_err(|_| format!("{field} {text:?} is not a YYYY-MM-DD date"))
}

/// The first instant of game day `date` (US Central), RFC 3339 in UTC.
fn game_day_start(date: chrono::NaiveDate) -> String {
    use chrono::TimeZone as _;
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    // A day in US Central always starts at 00:00 (daylight saving switches at 02:00), so the
    // earliest reading is the only one; the fallback keeps a wrong zone table from panicking.
    let start = chrono_tz::America::Chicago
        .from_local_datetime(&midnight)
        .earliest()
        .map_or_else(|| midnight.and_utc(), |start| start.with_timezone(&chrono::Utc));
    start.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `starts_at` and `ends_at` of a quest available from `start` through `end` (game dates).
fn instants(start: Option<&str>, end: Option<&str>) -> (Option<String>, Option<String>) {
    let parse = |date: &str| chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok();
    let starts_at = start.and_then(parse).map(game_day_start);
    let ends_at = end.and_then(parse).and_then(|end| end.succ_opt()).map(game_day_start);
    (starts_at, ends_at)
}

/// The value of an upper-case Roman numeral (`XLVIII` → 48), written the canonical way and below
/// 400 (quest lines are far shorter; a word such as `MIX` is no step).
fn roman(word: &str) -> Option<i64> {
    const DIGITS: [(i64, &str); 13] = [
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ];
    if word.is_empty() || !word.chars().all(|c| "IVXLCDM".contains(c)) {
        return None;
    }
    let mut rest = word;
    let mut value = 0;
    for (digit, letters) in DIGITS {
        // No digit repeats more than three times in a canonical numeral.
        for _ in 0..3 {
            match rest.strip_prefix(letters) {
                Some(after) => {
                    value += digit;
                    rest = after;
                }
                None => break,
            }
        }
    }
    (rest.is_empty() && value < 400 && canonical_roman(value, &DIGITS) == word).then_some(value)
}

fn canonical_roman(mut value: i64, digits: &[(i64, &str)]) -> String {
    let mut out = String::new();
    for (digit, letters) in digits {
        while value >= *digit {
            out.push_str(letters);
            value -= digit;
        }
    }
    out
}

/// A title's quest line, step and lettered part: `99 Bottles XLVIII` → (`99 Bottles`, 48,
/// None), `Name Part 3` → (`Name`, 3, None), `Name IV - B` → (`Name`, 4, `B`); `None` for a
/// title without a step number.
fn title_step(title: &str) -> Option<TitleStep> {
    let title = title.trim();
    let (title, part) = match title.rsplit_once(" - ") {
        Some((head, part)) if (1..=2).contains(&part.len()) && part.chars().all(|c| c.is_ascii_alphanumeric()) => {
            (head.trim_end(), Some(part.to_owned()))
        }
        _ => (title, None),
    };
    let (head, last) = title.rsplit_once(' ')?;
    let step = last.parse::<i64>().ok().filter(|step| *step > 0).or_else(|| roman(last))?;
    let head = head.trim_end();
    let name = match head.rsplit_once(' ') {
        Some((name, word)) if word.eq_ignore_ascii_case("part") => name.trim_end(),
        None if head.eq_ignore_ascii_case("part") => return None,
        _ => head,
    };
    (!name.is_empty()).then(|| (name.to_owned(), step, part))
}

/// A title's place in its line: (line, step, lettered part), as [`title_step`] reads it.
type TitleStep = (String, i64, Option<String>);

/// A line being counted: its steps so far and its lowest (step, part, quest id).
struct LineTally {
    steps: i64,
    lowest: (i64, Option<String>, i64),
}

/// Sets every quest's line and step from the titles (see the module documentation) and
/// returns the lines.
fn assign_questlines(quests: &mut [Quest]) -> Vec<Questline> {
    let steps: Vec<Option<TitleStep>> = quests.iter().map(|quest| title_step(&quest.title)).collect();
    let numbered: std::collections::BTreeSet<String> = steps.iter().flatten().map(|(name, ..)| name.clone()).collect();
    let mut lines: std::collections::BTreeMap<String, LineTally> = std::collections::BTreeMap::new();
    for (quest, step) in quests.iter_mut().zip(steps) {
        let step =
            step.or_else(|| numbered.contains(quest.title.trim()).then(|| (quest.title.trim().to_owned(), 1, None)));
        let Some((name, number, part)) = step else { continue };
        let place = (number, part.clone(), quest.id);
        match lines.get_mut(&name) {
            Some(tally) => {
                tally.steps += 1;
                if place < tally.lowest {
                    tally.lowest = place;
                }
            }
            None => {
                lines.insert(name.clone(), LineTally { steps: 1, lowest: place });
            }
        }
        quest.questline = Some(name);
        quest.questline_step = Some(number);
        quest.questline_part = part;
    }
    lines
        .into_iter()
        .map(|(name, tally)| Questline { name, step_count: tally.steps, first_quest_id: tally.lowest.2 })
        .collect()
}

/// `"2|10,5|1"` → `[(2, 10), (5, 1)]`; empty entries are skipped, unreadable ones returned apart.
fn item_list(text: &str) -> (Vec<(i64, i64)>, Vec<String>) {
    let mut items = Vec::new();
    let mut bad = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
        let parsed = entry
            .split_once('|')
            .and_then(|(id, quantity)| Some((id.trim().parse::<i64>().ok()?, quantity.trim().parse::<i64>().ok()?)));
        match parsed {
            Some((id, quantity)) if id > 0 && quantity > 0 => items.push((id, quantity)),
            _ => bad.push(entry.to_owned()),
        }
    }
    (items, bad)
}

fn non_zero(number: i64) -> Option<i64> {
    (number != 0).then_some(number)
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|text| text.trim().to_owned()).filter(|text| !text.is_empty())
}

/// One item list of every quest, and the quests whose stored list must be kept.
struct ItemLists<R> {
    rows: Vec<R>,
    unreadable: Unreadable,
}

impl<R> ItemLists<R> {
    fn new() -> Self {
        Self { rows: Vec::new(), unreadable: Unreadable::default() }
    }

    /// Reads quest `quest`'s `field` into rows made by `row`; unreadable entries keep the
    /// stored list and say so in `notes`.
    fn read(
        &mut self,
        quest: i64,
        field: &str,
        text: &str,
        notes: &mut Vec<String>,
        resolver: &mut Resolver<'_>,
        row: impl Fn(i64, i64, i64, i64) -> R,
    ) -> u64 {
        let (items, bad) = item_list(text);
        for (slot, (item, quantity)) in (1..).zip(items) {
            self.rows.push(row(quest, slot, resolver.item_id(item), quantity));
        }
        if bad.is_empty() {
            return 0;
        }
        notes.push(format!(
            "quest {quest}: unreadable {field} entries (not \"id|quantity\"), its stored {field} kept: {}",
            bad.join(", ")
        ));
        self.unreadable.add(Some(quest));
        bad.len() as u64
    }
}

#[derive(Default)]
pub struct Quests;

impl Source for Quests {
    const NAME: &'static str = NAME;
    /// Every 6 hours, at a hashed minute: seasonal quests come and go.
    const DEFAULT_SCHEDULE: &'static str = "H H H/6 * * *";
    const TRANSFORM_VERSION: u32 = 1;
    const RESOLVES_NPCS: bool = true;

    fn requests(&self) -> Vec<String> {
        vec![REQUEST.to_owned()]
    }

    fn sample_page(&self, request: &SampleRequest) -> Option<SamplePage> {
        request.asks_for(REQUEST).then(|| SamplePage::json(sample_answer()))
    }

    fn parse(&self, input: &SourceInput) -> Result<Dataset, StageError> {
        let page = &input.pages[0];
        let raws: Vec<&RawValue> = json_answer(&page.body, &page.url)?;
        if raws.is_empty() {
            return Err(StageError::BadInput(format!(
                "{} returned an empty quest list; refusing to read that as \"every quest is gone\"",
                page.url
            )));
        }
        let base = url::Url::parse(&page.url).ok().filter(|url| url.scheme().starts_with("http"));
        let mut notes = Vec::new();
        let mut resolver = Resolver::new(&input.names);
        let read = read_rows::<RawQuest>(raws, "quest", "id");
        let mut dropped = read.unreadable.len();
        notes.extend(read.notes);
        let mut unreadable = read.unreadable;
        let mut quests = Vec::with_capacity(read.rows.len());
        let mut required = ItemLists::new();
        let mut rewards = ItemLists::new();
        for raw in read.rows {
            let dates = game_date("start_date", &raw.start_date)
                .and_then(|start| Ok((start, game_date("end_date", &raw.end_date)?)));
            let (start_date, end_date) = match dates {
                Ok(dates) => dates,
                Err(problem) => {
                    notes.push(format!("quest {} skipped, its stored version kept: {problem}", raw.id));
                    unreadable.add(Some(raw.id));
                    dropped += 1;
                    continue;
                }
            };
            let (starts_at, ends_at) = instants(start_date.as_deref(), end_date.as_deref());
            dropped += required.read(raw.id, "required_items", &raw.required_items, &mut notes, &mut resolver, {
                |quest_id, slot, item_id, quantity| QuestRequiredItem { quest_id, slot, item_id, quantity }
            });
            dropped += rewards.read(raw.id, "reward_items", &raw.reward_items, &mut notes, &mut resolver, {
                |quest_id, slot, item_id, quantity| QuestRewardItem { quest_id, slot, item_id, quantity }
            });
            let document = select::document::Document::from(raw.description.as_str());
            let html = document
                .find(select::predicate::Name("body"))
                .next()
                .map_or_else(String::new, |body| clean_html(body, base.as_ref(), &|_| None));
            quests.push(Quest {
                id: raw.id,
                title: raw.title.trim().to_owned(),
                npc_id: resolver.npc_in(&input.names.npcs, &raw.npc),
                npc_name: raw.npc.trim().to_owned(),
                image: raw.npc_img.map(|image| image.trim().to_owned()),
                author: non_empty(raw.author),
                predecessor_id: non_zero(raw.pred_id),
                main_quest: raw.main_quest,
                starts_at,
                ends_at,
                start_date,
                end_date,
                questline: None,
                questline_step: None,
                questline_part: None,
                text: fragment_text(&raw.description),
                html,
                reward_silver: raw.reward_silver,
                reward_gold: raw.reward_gold,
                required_silver: raw.required_silver,
                required_npc_id: non_zero(raw.required_npc_id),
                required_npc_level: raw.required_npc_level,
                required_farming_level: raw.required_farming_level,
                required_fishing_level: raw.required_fishing_level,
                required_crafting_level: raw.required_crafting_level,
                required_exploring_level: raw.required_exploring_level,
                required_cooking_level: raw.required_cooking_level,
                required_tower_level: raw.required_tower_level,
                completed_count: raw.completed_count,
            });
        }
        if quests.is_empty() {
            return Err(StageError::BadInput(format!(
                "{} listed quests but none could be read: {}",
                page.url,
                notes.first().map_or("", String::as_str)
            )));
        }
        let questlines = assign_questlines(&mut quests);
        let listed: std::collections::BTreeSet<i64> = quests.iter().map(|quest| quest.id).collect();
        let unlisted: Vec<String> = quests
            .iter()
            .filter_map(|quest| {
                let predecessor = quest.predecessor_id?;
                (!listed.contains(&predecessor) && !unreadable.protects(predecessor))
                    .then(|| format!("{} follows {predecessor}", quest.id))
            })
            .collect();
        if !unlisted.is_empty() {
            notes.push(format!(
                "quests naming a predecessor this answer does not list (kept as given): {}",
                unlisted.join(", ")
            ));
        }
        notes.extend(resolver.notes());

        // A line's steps are counted from the quests read this time: while one could not be
        // read, every stored line stays as it was rather than be recounted without it.
        let keep_lines = !unreadable.is_empty();
        let unreadable = std::sync::Arc::new(unreadable);
        let (keep_required, keep_rewards) = (unreadable.clone(), unreadable.clone());
        let (required_unreadable, reward_unreadable) = (required.unreadable, rewards.unreadable);
        Ok(Dataset::new()
            .table(quests, DeletePolicy::keep_where(move |row: &Quest| unreadable.protects(row.id)))
            .table(questlines, DeletePolicy::keep_where(move |_: &Questline| keep_lines))
            .table(
                required.rows,
                DeletePolicy::keep_where(move |row: &QuestRequiredItem| {
                    keep_required.protects(row.quest_id) || required_unreadable.protects(row.quest_id)
                }),
            )
            .table(
                rewards.rows,
                DeletePolicy::keep_where(move |row: &QuestRewardItem| {
                    keep_rewards.protects(row.quest_id) || reward_unreadable.protects(row.quest_id)
                }),
            )
            .with_notes(notes)
            .with_dropped(dropped))
    }
}

/// The sample quest API answer: two short quest lines of the sample NPCs (each step follows the
/// one before), asking for and giving plain sample items, and one seasonal quest.
fn sample_answer() -> String {
    let givers = ["Marigold", "Captain Finch"];
    let lines = ["Helping Hands", "Fish Tales"];
    let numerals = ["", " II", " III", " IV"];
    let mut quests = Vec::new();
    for (line, (title, npc)) in lines.iter().zip(givers).enumerate() {
        for (step, numeral) in numerals.iter().enumerate() {
            let id = 100 + line as i64 * 10 + step as i64;
            let (wanted, wanted_name) = plain_item(line * 40 + step * 5);
            let (reward, _) = plain_item(line * 40 + step * 5 + 2);
            quests.push(json!({
                "id": id, "npc": npc, "npc_img": format!("/img/items/npc_{}.png", line + 1),
                "title": format!("{title}{numeral}"), "author": "", "pred_id": if step == 0 { 0 } else { id - 1 },
                "start_date": "0000-00-00", "end_date": "0000-00-00", "main_quest": i64::from(line == 0),
                "description": format!(
                    "Hello {{player}}! <br><br>Could you bring me <strong>{wanted_name}</strong>?\r\n<br>I will make it worth your while."
                ),
                "reward_gold": 0, "reward_silver": 500 * (step as i64 + 1),
                "reward_items": format!("{reward}|{}", step + 1),
                "required_items": format!("{wanted}|{}", 5 * (step + 1)),
                "required_silver": 0, "required_npc_id": 0, "required_npc_level": 0,
                "required_farming_level": 10 * step as i64, "required_fishing_level": if line == 1 { 5 } else { 0 },
                "required_crafting_level": 0, "required_exploring_level": 0, "required_cooking_level": 0,
                "required_tower_level": 0, "completed_count": 1000 - 100 * step as i64
            }));
        }
    }
    let (wanted, _) = plain_item(90);
    let (other, _) = plain_item(93);
    quests.push(json!({
        "id": 900, "npc": "Wren", "npc_img": "", "title": "Spring Thaw", "author": "Wren",
        "pred_id": 0, "start_date": "2026-03-01", "end_date": "2026-05-31", "main_quest": 0,
        "description": "The snow is melting.<br><br><font color=\"green\">Spring is here!</font color>",
        "reward_gold": 5, "reward_silver": 0, "reward_items": "", "required_items": format!("{wanted}|20,{other}|3"),
        "required_silver": 1000, "required_npc_id": 0, "required_npc_level": 0, "required_farming_level": 20,
        "required_fishing_level": 20, "required_crafting_level": 20, "required_exploring_level": 20,
        "required_cooking_level": 0, "required_tower_level": 0, "completed_count": 42
    }));
    serde_json::Value::Array(quests).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use bytes::Bytes;

    use super::*;
    use crate::pipelines::shared::names::Names;
    use crate::pipelines::shared::source::{parse_pages, Page};

    fn page(body: &str) -> Page {
        Page {
            request: REQUEST.to_owned(),
            url: format!("https://farmrpg.com{REQUEST}"),
            body: Bytes::from(body.to_owned()),
        }
    }

    // The sample answer reads whole: every quest, its lists and its description's text.
    #[test]
    fn the_sample_answer_reads() {
        let dataset = parse_pages(&Quests, vec![page(&sample_answer())], Names::default()).unwrap();
        assert_eq!(
            dataset.table_rows(),
            [("quests", 9), ("questlines", 2), ("quest_required_items", 10), ("quest_reward_items", 8)]
        );
    }

    // Dates, lists and the predecessor are read as the module documentation says.
    #[test]
    fn dates_lists_and_predecessors() {
        assert_eq!(game_date("start_date", "2023-03-01"), Ok(Some("2023-03-01".to_owned())));
        assert_eq!(game_date("start_date", "0000-00-00"), Ok(None));
        assert!(game_date("end_date", "31/05/2023").unwrap_err().contains("end_date \"31/05/2023\""));
        assert_eq!(item_list("2|10, 5|1,"), (vec![(2, 10), (5, 1)], vec![]));
        assert_eq!(item_list("2|x,7"), (vec![], vec!["2|x".to_owned(), "7".to_owned()]));
        assert_eq!(item_list(""), (vec![], vec![]));
    }

    // Lines and steps come from the titles; instants from game dates.
    #[test]
    fn questlines_and_instants() {
        assert_eq!(title_step("99 Bottles XLVIII"), Some(("99 Bottles".to_owned(), 48, None)));
        assert_eq!(title_step("Name Part 3"), Some(("Name".to_owned(), 3, None)));
        assert_eq!(title_step("Name IV - B"), Some(("Name".to_owned(), 4, Some("B".to_owned()))));
        assert_eq!(title_step("Blooming Thaw Already IV"), Some(("Blooming Thaw Already".to_owned(), 4, None)));
        for title in ["Spring Thaw", "Part 3", "Remix MIX", "IIII of them IIII", "V"] {
            assert_eq!(title_step(title), None, "{title}");
        }
        assert_eq!((roman("XCIX"), roman("IIII"), roman("IC"), roman("xl")), (Some(99), None, None, None));
        // Daylight saving in March: 06:00 UTC before it, 05:00 after; the end is exclusive.
        assert_eq!(
            instants(Some("2023-03-01"), Some("2023-05-31")),
            (Some("2023-03-01T06:00:00Z".to_owned()), Some("2023-06-01T05:00:00Z".to_owned()))
        );
        let titled = |id: i64, title: &str| Quest {
            id,
            title: title.to_owned(),
            npc_name: String::new(),
            npc_id: None,
            image: None,
            author: None,
            predecessor_id: None,
            main_quest: false,
            start_date: None,
            end_date: None,
            starts_at: None,
            ends_at: None,
            questline: None,
            questline_step: None,
            questline_part: None,
            text: String::new(),
            html: String::new(),
            reward_silver: 0,
            reward_gold: 0,
            required_silver: 0,
            required_npc_id: None,
            required_npc_level: 0,
            required_farming_level: 0,
            required_fishing_level: 0,
            required_crafting_level: 0,
            required_exploring_level: 0,
            required_cooking_level: 0,
            required_tower_level: 0,
            completed_count: 0,
        };
        // The unnumbered first step joins its line; a lone unnumbered title has none.
        let mut quests = [titled(7, "Name II"), titled(5, "Name"), titled(9, "Alone"), titled(3, "Name III - A")];
        let lines = assign_questlines(&mut quests);
        assert_eq!(lines, [Questline { name: "Name".to_owned(), step_count: 3, first_quest_id: 5 }]);
        let steps: Vec<_> =
            quests.iter().map(|quest| (quest.questline_step, quest.questline_part.as_deref())).collect();
        assert_eq!(steps, [(Some(2), None), (Some(1), None), (None, None), (Some(3), Some("A"))]);
    }

    // A quest with a field missing or an unreadable date is skipped and kept; an unreadable
    // item entry keeps that quest's stored list; an empty answer is refused.
    #[test]
    fn unreadable_quests_are_kept() {
        let sample: Vec<serde_json::Value> = serde_json::from_str(&sample_answer()).unwrap();
        let mut broken = sample.clone();
        broken[0].as_object_mut().unwrap().remove("completed_count");
        broken[1]["end_date"] = json!("soon");
        broken[2]["required_items"] = json!("12|");
        let body = serde_json::Value::Array(broken).to_string();
        let dataset = parse_pages(&Quests, vec![page(&body)], Names::default()).unwrap();
        assert_eq!(
            dataset.table_rows(),
            [("quests", 7), ("questlines", 2), ("quest_required_items", 7), ("quest_reward_items", 6)]
        );
        let notes = dataset.notes.join("\n");
        assert!(
            notes.contains("quest 100 skipped, its stored version kept: .: missing field `completed_count`"),
            "{notes}"
        );
        assert!(notes.contains("quest 101 skipped, its stored version kept: end_date \"soon\""), "{notes}");
        assert!(notes.contains("quest 102: unreadable required_items entries"), "{notes}");
        assert_eq!(dataset.dropped, 3);
        let error = parse_pages(&Quests, vec![page("[]")], Names::default()).err().unwrap();
        assert!(error.to_string().contains("empty quest list"), "{error}");
    }
}
