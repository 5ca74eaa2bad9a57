//! NPC pages: friendship levels (`/npclevels.php`) and the staff NPC table (`/manage_npc.php`),
//! merged per NPC account (`npcs.user_id`) into one profile row each — zone, staff numbers,
//! friendship level and progress, townsfolk of the day — beside the API's NPC rows rather than
//! as a second copy of them. The staff table's preference lists name items; they are checked
//! against the API's lists (stored by the `npcs` pipeline) and any difference is reported.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use diesel::{Insertable, Queryable, Selectable};
use hayloft_actors::pipeline::StageError;
use select::predicate::{Class, Name};
use serde::Serialize;

use super::locations::SAMPLE_LOCATIONS;
use super::npcs::SAMPLE_NPCS;
use super::shared::common::Unreadable;
use super::shared::html::{number, own_text, query_value, squash, text_lines, Html, LinkTo};
use super::shared::names::{normalize, Resolver};
use super::shared::source::{Source, SourceInput};
use super::shared::table::{stored_table, Dataset, DeletePolicy};
use crate::front_doors::graphql::entity::entity;
use crate::upstream::demo_data::plain_item;
use crate::upstream::demo_pages::{navbar, SamplePage, SampleRequest, PAGE_END};

pub const NAME: &str = "npc_pages";
const LEVELS: &str = "/npclevels.php";
const STAFF: &str = "/manage_npc.php";

entity! {
    #[diesel(table_name = npc_profiles)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct NpcProfile {
        pub user_id: i64,
        /// The API's NPC with this account, when stored.
        pub npc_id: Option<i64>,
        pub name: String,
        pub zone: Option<String>,
        pub staff_image: Option<String>,
        pub friendship_level: Option<i64>,
        pub friendship_progress: Option<f64>,
        pub townsfolk_of_the_day: bool,
        pub staff_stat_1: Option<i64>,
        pub staff_stat_2: Option<i64>,
        pub staff_stat_3: Option<i64>,
        pub staff_stat_4: Option<i64>,
    }
    key (user_id);
    roots (npc_profiles, npc_profile);
    relations {
        npc: one npcs.id = npc_id;
    }
}
stored_table!(
    NpcProfile,
    npc_profiles,
    "npc_profile",
    key(user_id),
    update(
        npc_id,
        name,
        zone,
        staff_image,
        friendship_level,
        friendship_progress,
        townsfolk_of_the_day,
        staff_stat_1,
        staff_stat_2,
        staff_stat_3,
        staff_stat_4
    )
);

/// The staff table's preference columns, by title, and the API relation each one mirrors.
/// "Can Be Given" came in 2025: a page without it (the older layout) reads the rest.
const STAFF_LISTS: [(&str, &str); 5] = [
    ("Gives in Chat", "gives"),
    ("Can Be Given", "can_be_given"),
    ("Likes", "likes"),
    ("Loves", "loves"),
    ("Hates", "hates"),
];
/// The preference columns a staff table may lack.
const OPTIONAL_LISTS: [&str; 1] = ["Can Be Given"];

impl NpcProfile {
    fn new(user_id: i64, name: String) -> Self {
        Self {
            user_id,
            npc_id: None,
            name,
            zone: None,
            staff_image: None,
            friendship_level: None,
            friendship_progress: None,
            townsfolk_of_the_day: false,
            staff_stat_1: None,
            staff_stat_2: None,
            staff_stat_3: None,
            staff_stat_4: None,
        }
    }
}

/// Friendship levels: user id, name, level and progress per NPC; and today's townsfolk.
fn parse_levels(page: &Html, profiles: &mut BTreeMap<i64, NpcProfile>) -> Result<(), StageError> {
    let selector = "a[href^=\"mailbox.php?id=\"] (in div.col-33 with strong name and \"Level N\")";
    let links = page.require(LinkTo("mailbox.php"), selector)?;
    let townsfolk = page
        .find(Class("card-content-inner"))
        .find(|node| squash(&node.text()).contains("is the Townsfolk of the Day"))
        .and_then(|node| node.find(Name("strong")).next())
        .map(|strong| normalize(&strong.text()));
    for link in links {
        let Some(user_id) = link.attr("href").and_then(|href| query_value(href, "id")).and_then(|id| id.parse().ok())
        else {
            continue;
        };
        let Some(tile) = link.parent() else { continue };
        let Some(name) = tile.find(Name("strong")).next().map(|strong| squash(&strong.text())) else { continue };
        let level = text_lines(tile).iter().find_map(|line| line.strip_prefix("Level ").and_then(number));
        let progress = tile
            .find(Class("progressbar"))
            .next()
            .and_then(|bar| bar.attr("data-progress"))
            .and_then(|value| value.trim().parse().ok());
        let profile = profiles.entry(user_id).or_insert_with(|| NpcProfile::new(user_id, name.clone()));
        profile.friendship_level = level;
        profile.friendship_progress = progress;
        profile.townsfolk_of_the_day = townsfolk.as_deref() == Some(normalize(&name).as_str());
    }
    Ok(())
}

/// What the staff table gave: its preference lists by item name, the rows it could not read and
/// notes for the run report.
struct StaffTable {
    lists: BTreeMap<(i64, &'static str), BTreeSet<i64>>,
    unreadable: Unreadable,
    notes: Vec<String>,
}

/// One readable staff row.
struct StaffRow {
    user_id: i64,
    name: String,
    image: Option<String>,
    zone: Option<String>,
    stats: [Option<i64>; 4],
    lists: Vec<(&'static str, String)>,
}

/// The staff table, read by its header: zone, image and numbers per NPC (the picture and the
/// four numbers sit in untitled columns after "Name" and "Zone"), and its preference lists by
/// item name.
fn parse_staff(
    page: &Html,
    profiles: &mut BTreeMap<i64, NpcProfile>,
    resolver: &mut Resolver<'_>,
) -> Result<StaffTable, StageError> {
    let table = page.table_with("the staff table", &["ID", "Name"])?;
    let (id, name, zone) = (table.column("ID")?, table.column("Name")?, table.column("Zone")?);
    let image = table.untitled_after("Name", 1, "the NPC's picture")?.start;
    let stats: Vec<usize> = table.untitled_after("Zone", 4, "the staff numbers")?.collect();
    let mut list_columns = Vec::new();
    let mut notes = Vec::new();
    for (title, relation) in STAFF_LISTS {
        match table.optional(title) {
            Some(column) => list_columns.push((column, relation)),
            None if OPTIONAL_LISTS.contains(&title) => notes.push(format!(
                "the staff table on {} has no \"{title}\" column (an older layout): that list is not compared",
                page.request()
            )),
            None => return Err(table.error(&format!("has no \"{title}\" column"))),
        }
    }
    let read = table.read(id, |cells| {
        let user_id = number(&cells.text(id)).ok_or_else(|| format!("ID {:?} is not a number", cells.text(id)))?;
        let stat = |index: usize| stats.get(index).and_then(|&column| number(&cells.text(column)));
        Ok(StaffRow {
            user_id,
            name: cells.text(name),
            image: cells
                .node(image)
                .and_then(|cell| cell.find(Name("img")).next())
                .and_then(|img| img.attr("src"))
                .map(str::to_owned),
            zone: cells.node(zone).map(own_text).filter(|zone| !zone.is_empty()),
            stats: [stat(0), stat(1), stat(2), stat(3)],
            lists: list_columns
                .iter()
                .map(|&(column, relation)| (relation, cells.node(column).map(|cell| cell.text()).unwrap_or_default()))
                .collect(),
        })
    })?;
    let mut lists = BTreeMap::new();
    for row in read.rows {
        let profile = profiles.entry(row.user_id).or_insert_with(|| NpcProfile::new(row.user_id, row.name.clone()));
        profile.name = row.name;
        profile.staff_image = row.image;
        profile.zone = row.zone;
        [profile.staff_stat_1, profile.staff_stat_2, profile.staff_stat_3, profile.staff_stat_4] = row.stats;
        for (relation, names) in row.lists {
            let ids: BTreeSet<i64> = names
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .filter_map(|name| resolver.item(name))
                .collect();
            lists.insert((row.user_id, relation), ids);
        }
    }
    notes.extend(read.notes);
    Ok(StaffTable { lists, unreadable: read.unreadable, notes })
}

#[derive(Default)]
pub struct NpcPages;

impl Source for NpcPages {
    const NAME: &'static str = NAME;
    /// Every 6 hours, at a hashed minute.
    const DEFAULT_SCHEDULE: &'static str = "H H H/6 * * *";
    const TRANSFORM_VERSION: u32 = 1;
    const RESOLVES_NPCS: bool = true;

    fn requests(&self) -> Vec<String> {
        vec![LEVELS.to_owned(), STAFF.to_owned()]
    }

    fn sample_page(&self, request: &SampleRequest) -> Option<SamplePage> {
        if request.asks_for(LEVELS) {
            return Some(SamplePage::html(sample_levels_html()));
        }
        request.asks_for(STAFF).then(|| SamplePage::html(sample_staff_html()))
    }

    fn parse(&self, input: &SourceInput) -> Result<Dataset, StageError> {
        let mut profiles = BTreeMap::new();
        let mut resolver = Resolver::new(&input.names);
        parse_levels(&Html::parse(&input.pages[0]), &mut profiles)?;
        let staff = parse_staff(&Html::parse(&input.pages[1]), &mut profiles, &mut resolver)?;
        let staff_lists = staff.lists;
        let mut notes = staff.notes;
        let mut differences = Vec::new();
        for profile in profiles.values_mut() {
            profile.npc_id = resolver.npc_user(profile.user_id, &profile.name);
            let Some(npc_id) = profile.npc_id else { continue };
            for (_, relation) in STAFF_LISTS {
                let Some(staff) = staff_lists.get(&(profile.user_id, relation)) else { continue };
                let api = input.names.npc_items.get(&(npc_id, relation.to_owned())).cloned().unwrap_or_default();
                let only_staff = staff.difference(&api).count();
                let only_api = api.difference(staff).count();
                if only_staff + only_api > 0 {
                    differences.push(format!("{} {relation} (+{only_staff}/-{only_api})", profile.name));
                }
            }
        }
        if !differences.is_empty() {
            notes.push(format!(
                "the staff table's preference lists differ from the API's for {} lists (items only in the staff \
                 table/only in the API; the API's lists are kept): {}",
                differences.len(),
                differences.join(", ")
            ));
        }
        notes.extend(resolver.notes());
        let profiles: Vec<NpcProfile> = profiles.into_values().collect();
        let unreadable = staff.unreadable;
        let dropped = unreadable.len();
        // A staff row that could not be read may be an NPC whose stored profile must stay.
        let policy = DeletePolicy::keep_where(move |row: &NpcProfile| unreadable.protects(row.user_id));
        Ok(Dataset::new().table(profiles, policy).with_notes(notes).with_dropped(dropped))
    }
}

/// The sample friendship levels of the first four sample NPCs.
fn sample_levels_html() -> String {
    let mut page = navbar("Friendship Levels")
        + "<div class=\"card\"><div class=\"card-content-inner\"><strong>WREN</strong> is the Townsfolk of the Day!</div></div>\n<div class=\"row\">";
    for (index, (_, user_id, name)) in SAMPLE_NPCS.iter().enumerate().take(4) {
        let _ = write!(
            page,
            "<div class=\"col-33\"><a href='mailbox.php?id={user_id}'><img class='itemimg'></a><br/><strong>{name}</strong><br/>Level {} <div class=\"progressbar\" data-progress=\"{}.5\"></div></div>",
            index * 10 + 5,
            index * 20
        );
    }
    page + "</div>\n" + PAGE_END
}

/// The sample staff table of every sample NPC: zone, numbers, and item lists naming plain
/// sample items.
fn sample_staff_html() -> String {
    let mut page = String::from(
        "<table><tr><td>ID</td><td>Name</td><td>&nbsp;</td><td>Zone</td><td>&nbsp;</td><td>&nbsp;</td><td>&nbsp;</td><td>&nbsp;</td>\
         <td>Gives in Chat</td><td>Can Be Given <td>Likes</td><td>Loves</td><td>Hates</td></tr>\n",
    );
    for (index, (_, user_id, name)) in SAMPLE_NPCS.iter().enumerate() {
        let names = |start: usize| (0..4).map(|step| plain_item(start + step * 3).1).collect::<Vec<_>>().join(",");
        let _ = writeln!(
            page,
            "<tr><td>{user_id}</td><td>{name}</td><td><img src='img/items/npc.png'></td><td>{}</td><td>99</td><td>36</td><td>36</td><td>36</td>\
             <td>{}</td><td></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            SAMPLE_LOCATIONS[index % SAMPLE_LOCATIONS.len()].2,
            names(index * 10),
            names(index * 10 + 1),
            names(index * 10 + 2),
            names(index * 10 + 50)
        );
    }
    page + "</table>"
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pipelines::shared::names::{NameIndex, Names};
    use crate::pipelines::shared::source::{parse_pages, Page};

    // Both pages merge into one profile per account, with the NPC id resolved by account.
    #[test]
    fn pages_merge_per_account() {
        let levels = r#"<div class="card-content-inner"><strong>ROSALIE</strong> is the Townsfolk of the Day!</div>
            <div class="col-33"><a href='mailbox.php?id=22438'><img></a><br/><strong>Rosalie</strong><br/>Level 55
            <div class="progressbar" data-progress="28.71"></div></div>"#;
        let staff =
            "<table><tr><td>ID</td><td>Name</td><td>&nbsp;</td><td>Zone</td><td></td><td></td><td></td><td></td>\
            <td>Gives in Chat</td><td>Can Be Given <td>Likes</td><td>Loves</td><td>Hates</td></tr>\
            <tr><td>22438</td><td>Rosalie</td><td><img src='img/a.png'></td><td>Small Spring</td><td>99</td><td>36</td>\
            <td>36</td><td>36</td><td>Apple</td><td></td><td>Apple,Pear</td><td></td><td></td></tr>\
            <tr><td>99</td><td>Nobody</td><td></td><td>Town</td><td>1</td><td>2</td><td>3</td><td>4</td>\
            <td></td><td></td><td></td><td></td><td></td></tr></table>";
        let page = |request: &str, body: &str| Page {
            request: request.to_owned(),
            url: request.to_owned(),
            body: body.to_owned().into(),
        };
        let mut names = Names { items: NameIndex::new([("Apple".to_owned(), 1)]), ..Names::default() };
        names.npc_user_ids.insert(22438, 1);
        names.npc_items.insert((1, "gives".to_owned()), [1].into());
        let dataset = parse_pages(&NpcPages, vec![page(LEVELS, levels), page(STAFF, staff)], names).unwrap();
        let rows = dataset.rows_of("npc_profiles");
        assert_eq!(rows.len(), 2);
        let rosalie = &rows[1];
        assert_eq!((rosalie["npc_id"].as_i64(), rosalie["friendship_level"].as_i64()), (Some(1), Some(55)));
        assert_eq!(
            (rosalie["zone"].as_str(), rosalie["townsfolk_of_the_day"].as_bool()),
            (Some("Small Spring"), Some(true))
        );
        let notes = dataset.notes.join("\n");
        assert!(notes.contains("Rosalie likes (+1/-0)"), "{notes}");
        assert!(notes.contains("\"Pear\"") && notes.contains("Nobody (user 99)"), "{notes}");
    }
}
