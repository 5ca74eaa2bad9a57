//! Generated sample pages for every source besides the item API: the NPC and tower APIs and the
//! HTML pages, in the game's markup with invented content that refers to the generated items
//! (see [`crate::upstream::demo_data`]) by id and by name. The embedded upstream answers each request by
//! generating just that page; `hayloft demo-data` writes them all beside the item API.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::json;

use crate::upstream::demo_data::{sample_item, ITEMS_PER_BLOCK};
use crate::upstream::routes::{split_request, Route};

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";

/// Sample locations: (type, id, name, subtitle).
const LOCATIONS: [(&str, i64, &str, &str); 4] = [
    ("fishing", 1, "Quiet Pond", "A still freshwater pond"),
    ("fishing", 2, "Windy Bay", "Salt water and gulls"),
    ("explore", 1, "Hollow Woods", "Mossy and dim"),
    ("explore", 2, "Copper Hills", "Dusty trails"),
];

/// Sample NPCs: (id, user id, name).
const NPCS: [(i64, i64, &str); 5] = [
    (1, 30001, "Marigold"),
    (2, 30002, "Captain Finch"),
    (3, 30003, "Old Tobias"),
    (4, 30004, "Wren"),
    (5, 30005, "Juniper Vale"),
];

/// Items the pages refer to by position in the generated list: plain items whose names the
/// generator does not rewrite.
fn item(position: usize) -> (i64, String) {
    sample_item(120 + position % 700)
}

fn navbar(title: &str) -> String {
    format!(
        "<div class=\"navbar\"><div class=\"navbar-inner\"><div class=\"center sliding\">{title}</div></div></div>\n\
         <div class=\"pages\"><div class=\"page\"><div class=\"page-content\"><div class=\"content-block\">\n"
    )
}

const END: &str = "</div></div></div></div>\n";

fn npcs_json() -> String {
    let list = |start: usize| (0..4).map(|step| item(start + step * 3).0.to_string()).collect::<Vec<_>>().join(",");
    let npcs: Vec<_> = NPCS
        .iter()
        .enumerate()
        .map(|(index, (id, user_id, name))| {
            json!({
                "id": id, "user_id": user_id, "name": name, "img": format!("/img/items/npc_{id}.png"),
                "img_oct": "", "img_dec": "", "explore_id": if index < 2 { index as i64 + 1 } else { 0 },
                "friendship": i64::from(index != 4), "items": list(index * 10),
                "like_items": list(index * 10 + 1), "love_items": list(index * 10 + 2),
                "hate_items": list(index * 10 + 50), "can_be_given_items": ""
            })
        })
        .collect();
    let mut rewards = Vec::new();
    for (index, (_, _, name)) in NPCS.iter().enumerate() {
        // The API names NPCs in rewards, sometimes by a short alias.
        let alias = match *name {
            "Captain Finch" => "Cpt Finch",
            "Juniper Vale" => "Juniper",
            other => other,
        };
        for level in [10, 20, 30] {
            rewards.push(json!({
                "id": rewards.len() + 1, "npc": alias, "level": level, "silver": level * 100, "gold": 0,
                "item1": item(index * 7 + level as usize).0, "item1_amt": level / 10,
                "item2": 0, "item2_amt": 0, "item3": 0, "item3_amt": 0
            }));
        }
    }
    json!({ "npcs": npcs, "npc_rewards": rewards }).to_string()
}

fn tower_json() -> String {
    let levels: Vec<_> = (1..=100_i64)
        .map(|level| {
            json!({
                "id": level, "level": level,
                "silver": if level % 10 == 0 { level * 1000 } else { 0 },
                "gold": if level % 25 == 0 { 10 } else { 0 },
                "item1": item(level as usize).0, "item1_amt": level % 5 + 1,
                "item2": item(level as usize + 40).0, "item2_amt": 1,
                "item3": if level % 3 == 0 { item(level as usize + 80).0 } else { 0 }, "item3_amt": 1,
                "mm_id1": 0, "mm_id2": 0, "mm_id3": 0
            })
        })
        .collect();
    json!({ "tower_levels": levels }).to_string()
}

fn locations_html() -> String {
    let mut page = navbar("Locations");
    for section in ["fishing", "explore"] {
        let title = if section == "fishing" { "Fishing Locations" } else { "Exploring Locations" };
        let _ = writeln!(
            page,
            "<div class=\"content-block-title\">{title}</div><div class=\"card\"><div class=\"list-block\"><ul>"
        );
        for (kind, id, name, subtitle) in LOCATIONS.iter().filter(|location| location.0 == section) {
            let _ = writeln!(
                page,
                "<li><a href=\"location.php?type={kind}&id={id}\" class=\"item-link close-panel\"><div class=\"item-content\">\
                 <div class=\"item-media\"><img src=\"/img/items/{kind}{id}.png\" class=\"itemimg\"></div><div class=\"item-inner\">\
                 <div class=\"item-title\">{name}<br/><span style=\"font-size: 11px\">{subtitle}</span></div></div></div></a></li>"
            );
        }
        page.push_str("</ul></div></div>\n");
    }
    page + END
}

fn location_html(kind: &str, id: i64) -> Option<String> {
    let (_, _, name, _) = LOCATIONS.iter().find(|location| location.0 == kind && location.1 == id)?;
    let mut page = navbar(name);
    let _ = write!(page, "<img src=\"/img/items/{kind}{id}.png\" class=\"exploreimg\">\n<div class=\"content-block-title\">Things found here</div>\n<div class=\"card\"><div class=\"card-content-inner\"><div class=\"row no-gutter\">");
    for step in 0..6 {
        let (item_id, item_name) = item(id as usize * 20 + step * 2 + usize::from(kind == "explore") * 200);
        let _ = write!(page, "<div class=\"col-25\"><a href='item.php?id={item_id}'><img class='itemimg'></a><br/>{item_name}<br/><span>1,204 / 1,204</span></div>");
    }
    Some(page + "</div></div></div>\n" + END)
}

fn comm_html() -> String {
    let (goal_id, goal) = item(300);
    let (reward_id, reward) = item(301);
    let mut page = navbar("Community Center");
    let _ = writeln!(
        page,
        "<div class=\"content-block-title\">Current Goal</div><div class=\"card\"><div class=\"card-content\"><div class=\"card-content-inner\">\
         <div class=\"row\"><div class=\"col-50\"><strong>GOAL</strong><br/><br/><a href=\"item.php?id={goal_id}\"><img class='itemimg'></a><br/> {goal} (1,250,000) </div>\
         <div class=\"col-50\"><strong>REWARD</strong><br/><br/><a href=\"item.php?id={reward_id}\"><img class='itemimg'></a><br/> <span>{reward} (x25)</span></div></div>\
         <br/><strong>Progress: 612,500 / 1,250,000 (49.00%)</strong></div></div></div>\n\
         <div class=\"content-block-title\">Last 7 Days</div><div class=\"list-block\"><ul>"
    );
    for day in (3..=9).rev() {
        let (goal_id, goal) = item(310 + day);
        let (reward_id, reward) = item(320 + day);
        let _ = goal_id;
        let _ = writeln!(
            page,
            "<li><div class=\"item-content\"><div class=\"item-media\"><a href=\"item.php?id={reward_id}\"><img class=\"itemimg\"></a></div>\
             <div class=\"item-inner\"><div class=\"item-title\">Jul {day}th, 2023 <br/><span><strong>2,000,000 / 1,000,000 (200.00%)</strong><br/>\
             Goal: {goal} (1,000,000)<br/> Reward: {reward} (x10) </span></div></div></div></li>"
        );
    }
    page + "</ul></div>\n" + END
}

fn exchange_html() -> String {
    let mut page = navbar("Exchange Center") + "<div class=\"content-block-title\">Current Offers</div>\n";
    for offer in 0..3 {
        let (give_id, give) = item(400 + offer * 2);
        let (get_id, get) = item(401 + offer * 2);
        let _ = writeln!(
            page,
            "<div class=\"card\"><div class=\"card-content\"><div class=\"card-content-inner\"><div class=\"row\">\
             <div class=\"col-50\"><strong>Trade in</strong><br/><br/><a href=\"item.php?id={give_id}\"><img class='itemimg'></a><br/> {give} (x{}) <br/><span>You have 12</span></div>\
             <div class=\"col-50\"><strong>You receive</strong><br/><br/><a href=\"item.php?id={get_id}\"><img class='itemimg'></a><br/> {get} (x{}) <br/><span>You have 3</span></div></div>\
             <div>{}</div></div></div></div>\n<a href=\"#\" class='button btngreen acceptbtn' data-id=\"{}\">Accept Offer</a>",
            (offer + 1) * 100,
            offer + 1,
            if offer == 0 { "This offer can only ever be accepted once" } else { "" },
            offer + 1
        );
    }
    page + END
}

fn hoc_html() -> String {
    let mut page = String::from("<h2>All Card Combos</h2><table><tr><td>ID</td><td>Cards to Play</td><td>Reward</td><td>Times Turned In</td></tr>\n");
    let suits = ["Spades", "Hearts", "Diamonds", "Clubs"];
    for combo in 0..4_usize {
        let (_, reward) = item(500 + combo);
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td><img> {} (x{}) <img> {} (x1) </td><td><img> {reward} (x{}) </td><td>{}</td></tr>",
            combo + 1,
            suits[combo],
            combo + 2,
            suits[(combo + 1) % 4],
            combo * 5 + 1,
            combo * 1234
        );
    }
    page + "</table>"
}

fn tent_html() -> String {
    let mut page = navbar("Borgen's Camp")
        + "<div class=\"content-block-title\">Take a look</div><div class=\"card\"><div class=\"list-block\"><ul>\n";
    for offer in 0..5_usize {
        let (id, name) = item(520 + offer);
        let _ = writeln!(
            page,
            "<li class=\"close-panel\"><div class=\"item-content\"><div class=\"item-media\"><a href=\"item.php?id={id}\"><img class=\"itemimg\"></a></div>\
             <div class=\"item-inner\"><div class=\"item-title\"><strong data-inv=\"3\">{name}</strong></div>\
             <div class=\"item-after\"><button class=\"button buybtn\"><span>{}</span> AC</button></div></div></div></li>",
            offer * 2 + 1
        );
    }
    page + "</ul></div></div>\n" + END
}

fn about_html(all: bool) -> String {
    let mut page = navbar("About") + "<div class=\"content-block-title\">Game Updates</div>\n";
    let ids: Vec<i64> = if all { (1..=30).collect() } else { (21..=32).collect() };
    for id in ids.into_iter().rev() {
        let (item_id, name) = item(600 + id as usize);
        let _ = writeln!(
            page,
            "<div class=\"card recentUpdates\"><div class=\"card-header\"><a href=\"about.php?id={id}\"><i class=\"fa fa-calendar\"></i>&nbsp;May {}th, 2023</a></div>\
             <div class=\"card-content\"><div class=\"card-content-inner\">SMALL UPDATES:<br /> - <a href=\"item.php?id={item_id}\">{name}</a> can now be found in more places<br />\
             - Thanks to <strong>Sparkfoo</strong> for the help</div></div><div class=\"card-footer\">{} likes</div></div>",
            id % 20 + 4,
            id * 7
        );
    }
    page + END
}

fn popwlog_html() -> String {
    let mut page = navbar("Password Log") + "<div class=\"list-block\"><ul>\n";
    for (index, password) in ["lantern", "quill", "acorn", "kettle", "anchor", "clover"].iter().enumerate() {
        let (_, name) = item(700 + index);
        let _ = writeln!(
            page,
            "<li class=\"item-content\"><div class=\"item-inner\"><div class=\"item-title\"><span>{password}</span> <span><br/>May {}, 10:{:02}:00 PM</span></div>\
             <div class=\"item-after\"><span><img>{name} (x{})<br/>{}</span></div></div></li>",
            index + 1,
            index * 7,
            index + 1,
            if index % 2 == 0 { "<img>Silver (x1,000)<br/>" } else { "" }
        );
    }
    page + "</ul></div>\n" + END
}

fn gallery_html() -> String {
    let mut page = navbar("Art Gallery") + "<div class=\"row\">\n";
    let tile = |image: &str, name: &str, button: &str| {
        format!("<div class=\"col-50\"><img src=\"{image}\"><br/><strong>{name}</strong><br/><span>1,024 players unlocked</span><br/>{button}</div>\n")
    };
    page += &tile(
        "/img/pbgs/light/bg_def.jpg",
        "Home Farm",
        "<button class='button btnblue activepbgbtn' data-id='1'>Use this Background</button>",
    );
    for index in 0..4_usize {
        let (_, name) = item(720 + index);
        let cost = if index == 3 { "250 Gold".to_owned() } else { format!("{}x {name}", (index + 1) * 10) };
        page += &tile(
            &format!("/img/pbgs/light/bg_{index}.jpg"),
            &format!("Scene {}", index + 1),
            &format!(
                "<button class='button btngreen unlockpbgbtn' data-type='bg' data-id='{}'>Unlock ({cost})</button>",
                index + 2
            ),
        );
    }
    page += &tile(
        "/img/pbgs/theme_def.jpg",
        "Default Theme",
        "<button class='button btnblue activepthmbtn' data-id='9'>Use this Theme</button>",
    );
    page + "</div>\n" + END
}

fn item_html(id: i64) -> Option<String> {
    let position = usize::try_from(id - 11).ok().filter(|position| *position < ITEMS_PER_BLOCK)?;
    let (_, name) = sample_item(position);
    let mut page = format!(
        "<div class=\"navbar\"><div class=\"navbar-inner\"><div class=\"center sliding\"><a class=\"sharelink\" data-clipboard-text=\"(({name}))\">{name}</a></div></div></div>\n\
         <div class=\"content-block-title\">Item Details</div><div class=\"card\"><div class=\"list-block\"><ul>\
         <li><div class=\"item-content\"><div class=\"item-inner\"><div class=\"item-title\">XP Value <br/><span>XP gained to Skill</span></div><div class=\"item-after\"> {} XP </div></div></div></li>\
         <li><div class=\"item-content\"><div class=\"item-inner\"><div class=\"item-title\">Rarity <br/><span>Difficulty to Acquire</span></div><div class=\"item-after\"> {} </div></div></div></li>\
         </ul></div></div>\n",
        position % 50 + 1,
        ["Common", "Uncommon", "Rare"][position % 3]
    );
    if position % 4 == 0 {
        let (kind, location_id, _, _) = LOCATIONS[position % LOCATIONS.len()];
        let activity = if kind == "fishing" { "Fishing" } else { "Exploring" };
        let _ = writeln!(
            page,
            "<div class=\"content-block-title\">{activity}</div><div class=\"card\"><div class=\"card-content-inner\"><strong>{name}</strong> can be found here.</div></div>\
             <div class=\"list-block\"><ul><li><a href=\"location.php?id={location_id}&type={kind}\" class=\"item-link\">there</a></li></ul></div>"
        );
    }
    Some(page)
}

fn npclevels_html() -> String {
    let mut page = navbar("Friendship Levels")
        + "<div class=\"card\"><div class=\"card-content-inner\"><strong>WREN</strong> is the Townsfolk of the Day!</div></div>\n<div class=\"row\">";
    for (index, (_, user_id, name)) in NPCS.iter().enumerate().take(4) {
        let _ = write!(
            page,
            "<div class=\"col-33\"><a href='mailbox.php?id={user_id}'><img class='itemimg'></a><br/><strong>{name}</strong><br/>Level {} <div class=\"progressbar\" data-progress=\"{}.5\"></div></div>",
            index * 10 + 5,
            index * 20
        );
    }
    page + "</div>\n" + END
}

fn manage_npc_html() -> String {
    let mut page = String::from(
        "<table><tr><td>ID</td><td>Name</td><td>&nbsp;</td><td>Zone</td><td>&nbsp;</td><td>&nbsp;</td><td>&nbsp;</td><td>&nbsp;</td>\
         <td>Gives in Chat</td><td>Can Be Given <td>Likes</td><td>Loves</td><td>Hates</td></tr>\n",
    );
    for (index, (_, user_id, name)) in NPCS.iter().enumerate() {
        let names = |start: usize| (0..4).map(|step| item(start + step * 3).1).collect::<Vec<_>>().join(",");
        let _ = writeln!(
            page,
            "<tr><td>{user_id}</td><td>{name}</td><td><img src='img/items/npc.png'></td><td>{}</td><td>99</td><td>36</td><td>36</td><td>36</td>\
             <td>{}</td><td></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            LOCATIONS[index % LOCATIONS.len()].2,
            names(index * 10),
            names(index * 10 + 1),
            names(index * 10 + 2),
            names(index * 10 + 50)
        );
    }
    page + "</table>"
}

/// The sample page answering `request`, with its content type; `None` when the sample has none.
pub fn page(request: &str) -> Option<(String, &'static str)> {
    let (path, query) = split_request(request);
    let param = |key: &str| query.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str());
    let html = |body: String| Some((body, HTML));
    match path.as_str() {
        "/api.php" => match param("method")? {
            "npcs" => Some((npcs_json(), JSON)),
            "tower" => Some((tower_json(), JSON)),
            _ => None,
        },
        "/locations.php" => html(locations_html()),
        "/location.php" => html(location_html(param("type")?, param("id")?.parse().ok()?)?),
        "/comm.php" => html(comm_html()),
        "/exchange.php" => html(exchange_html()),
        "/manage_hoc.php" => html(hoc_html()),
        "/tent.php" => html(tent_html()),
        "/about.php" => html(about_html(param("all") == Some("1"))),
        "/popwlog.php" => html(popwlog_html()),
        "/gallery.php" => html(gallery_html()),
        "/item.php" => html(item_html(param("id")?.parse().ok()?)?),
        "/npclevels.php" => html(npclevels_html()),
        "/manage_npc.php" => html(manage_npc_html()),
        _ => None,
    }
}

/// Every sample page as a route and its body, for writing a capture directory.
pub fn all() -> Vec<(Route, String)> {
    let mut requests: Vec<String> = [
        "/api.php?method=npcs",
        "/api.php?method=tower",
        "/locations.php",
        "/comm.php",
        "/exchange.php",
        "/manage_hoc.php",
        "/tent.php",
        "/about.php",
        "/about.php?all=1",
        "/popwlog.php",
        "/gallery.php",
        "/npclevels.php",
        "/manage_npc.php",
    ]
    .iter()
    .map(|request| (*request).to_owned())
    .collect();
    requests.extend(LOCATIONS.iter().map(|(kind, id, _, _)| format!("/location.php?type={kind}&id={id}")));
    requests.extend((0..ITEMS_PER_BLOCK as i64).map(|position| format!("/item.php?id={}", position + 11)));
    requests
        .into_iter()
        .filter_map(|request| {
            let (body, content_type) = page(&request)?;
            let (path, query) = split_request(&request);
            let query: BTreeMap<String, String> = query.into_iter().collect();
            let stem = path.trim_start_matches('/').trim_end_matches(".php").to_owned();
            let extension = if content_type == JSON { "json" } else { "html" };
            let file = match (stem.as_str(), query.is_empty()) {
                ("api", _) => format!("api/{}.{extension}", query.get("method").map_or("", String::as_str)),
                (_, true) => format!("{stem}.{extension}"),
                (_, false) => format!("{stem}/{}.{extension}", query.values().cloned().collect::<Vec<_>>().join("/")),
            };
            Some((Route { file, path: Some(path), query, content_type: content_type.to_owned() }, body))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pipelines::cards::Cards;
    use crate::pipelines::community::Community;
    use crate::pipelines::exchange::Exchange;
    use crate::pipelines::gallery::Gallery;
    use crate::pipelines::item_pages::ItemPages;
    use crate::pipelines::locations::Locations;
    use crate::pipelines::npc_pages::NpcPages;
    use crate::pipelines::npcs::Npcs;
    use crate::pipelines::passwords::Passwords;
    use crate::pipelines::shared::names::{NameIndex, Names};
    use crate::pipelines::shared::source::{parse_pages, Page};
    use crate::pipelines::shared::table::Dataset;
    use crate::pipelines::tent::Tent;
    use crate::pipelines::tower::Tower;
    use crate::pipelines::updates::Updates;

    // Every sample request has a page and a distinct file.
    #[test]
    fn every_page_has_a_distinct_file() {
        let pages = all();
        assert_eq!(pages.len(), 13 + LOCATIONS.len() + ITEMS_PER_BLOCK);
        let files: std::collections::BTreeSet<_> = pages.iter().map(|(route, _)| route.file.clone()).collect();
        assert_eq!(files.len(), pages.len());
        assert!(page("/item.php?id=99999").is_none());
        assert!(page("/location.php?type=explore&id=1").is_some());
    }

    fn sample(request: &str) -> Page {
        let (body, _) = page(request).unwrap();
        Page { request: request.to_owned(), url: request.to_owned(), body: body.into() }
    }

    // Every source parses its sample pages, and every name in them resolves to a sample item:
    // a fresh server on the embedded data loads every pipeline without a note.
    #[test]
    fn sample_pages_parse_and_resolve() {
        let items =
            crate::pipelines::items::transform::parse(&crate::upstream::demo_data::items_body(1), "sample").unwrap();
        let mut names = Names {
            item_ids: items.items.iter().map(|item| item.id).collect(),
            items: NameIndex::new(items.items.iter().map(|item| (item.name.clone(), item.id))),
            ..Names::default()
        };
        for (id, user_id, _) in NPCS {
            names.npc_user_ids.insert(user_id, id);
        }
        let check = |dataset: Dataset| {
            assert!(dataset.table_rows().iter().all(|(_, rows)| *rows > 0), "{:?}", dataset.table_rows());
            assert!(dataset.notes.is_empty(), "{:?}", dataset.notes);
        };
        let one = |request: &str| vec![sample(request)];
        let npcs = parse_pages(&Npcs, one("/api.php?method=npcs"), vec![], names.clone()).unwrap();
        for row in npcs.rows_of("npc_items") {
            let key = (row["npc_id"].as_i64().unwrap(), row["relation"].as_str().unwrap().to_owned());
            names.npc_items.entry(key).or_default().insert(row["item_id"].as_i64().unwrap());
        }
        check(npcs);
        check(parse_pages(&Tower, one("/api.php?method=tower"), vec![], names.clone()).unwrap());
        let details = LOCATIONS.iter().map(|(kind, id, _, _)| sample(&format!("/location.php?type={kind}&id={id}")));
        check(parse_pages(&Locations, one("/locations.php"), details.collect(), names.clone()).unwrap());
        check(parse_pages(&Community, one("/comm.php"), vec![], names.clone()).unwrap());
        check(parse_pages(&Exchange, one("/exchange.php"), vec![], names.clone()).unwrap());
        check(parse_pages(&Cards, one("/manage_hoc.php"), vec![], names.clone()).unwrap());
        check(parse_pages(&Tent, one("/tent.php"), vec![], names.clone()).unwrap());
        check(
            parse_pages(&Updates, vec![sample("/about.php?all=1"), sample("/about.php")], vec![], names.clone())
                .unwrap(),
        );
        check(parse_pages(&Passwords, one("/popwlog.php"), vec![], names.clone()).unwrap());
        check(parse_pages(&Gallery, one("/gallery.php"), vec![], names.clone()).unwrap());
        let items_pages = (11..31).map(|id| sample(&format!("/item.php?id={id}"))).collect();
        check(parse_pages(&ItemPages, vec![], items_pages, names.clone()).unwrap());
        check(
            parse_pages(&NpcPages, vec![sample("/npclevels.php"), sample("/manage_npc.php")], vec![], names).unwrap(),
        );
    }
}
