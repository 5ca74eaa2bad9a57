//! Every source pipeline against the real captures (`../shared/upstream`) served by
//! `hayloft replay`: the counts MANIFEST.md documents, the run reports (dangling ids, unresolved
//! names, failed fan-out pages), zero writes on an unchanged re-run, and layout drift.

use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;

use crate::helpers::{captures, Replay, TestEnv};

/// The source pipelines, in `run all` order.
const SOURCES: [&str; 13] = [
    "items",
    "npcs",
    "npc_pages",
    "tower",
    "locations",
    "item_pages",
    "community",
    "exchange",
    "cards",
    "tent",
    "updates",
    "passwords",
    "gallery",
];

pub(crate) fn sources_env(upstream: &str) -> Option<TestEnv> {
    Some(
        TestEnv::new()?
            .only(&SOURCES)
            .env("HAYLOFT_UPSTREAM_URL", upstream)
            .env("HAYLOFT_UPSTREAM__RETRIES", "0")
            // A thousand item pages: as fast as the local replay allows.
            .env("HAYLOFT_UPSTREAM__RATE_PER_SECOND", "100000")
            .env("HAYLOFT_UPSTREAM__CONCURRENCY", "16"),
    )
}

/// Runs `pipeline` (or `all`) and returns one summary per run.
pub(crate) fn run(env: &TestEnv, pipeline: &str) -> Vec<Value> {
    let output = env.command().args(["run", pipeline, "--json"]).output().expect("hayloft runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|_| {
                panic!("not JSON: {line}\n{}", String::from_utf8_lossy(&output.stderr));
            })
        })
        .collect()
}

fn count(env: &TestEnv, entity: &str) -> i64 {
    env.json(&["count", entity, "--json"])["count"].as_i64().unwrap()
}

fn notes(summary: &Value) -> String {
    summary["notes"].as_array().unwrap().iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n")
}

fn writes(summary: &Value) -> i64 {
    ["inserted", "updated", "deleted"].iter().map(|key| summary[key].as_i64().unwrap()).sum()
}

/// Counts MANIFEST.md documents for the captures, per `hayloft count` entity.
const MANIFEST_COUNTS: [(&str, i64); 17] = [
    ("npcs", 29),
    ("npc-rewards", 113),
    // npclevels.php lists 19 NPCs, manage_npc.php all 29: one merged profile per NPC account.
    ("npc-profiles", 29),
    ("tower", 300),
    // 907 reward rows flattened, of which 30 are silver and 4 gold (columns of the level).
    ("tower-rewards", 873),
    ("locations", 23),
    ("drops", 17),
    ("community", 8),
    ("exchange", 5),
    ("cards", 13),
    ("tent", 7),
    // 437 in the whole history and 25 newest, of which three are newer than the history.
    ("updates", 440),
    ("passwords", 179),
    // 33 tiles: 29 backgrounds and 4 game themes.
    ("backgrounds", 29),
    // Three item pages are captured; the other 1,135 requests fail and are reported.
    ("item-details", 3),
    ("item-sources", 2),
    ("items", 1138),
];

fn by_pipeline<'a>(summaries: &'a [Value], pipeline: &str) -> &'a Value {
    summaries.iter().find(|summary| summary["pipeline"] == pipeline).unwrap_or_else(|| panic!("no {pipeline} run"))
}

// The whole set loads the captures with the documented counts and a report of what did not
// resolve; the unchanged re-run writes nothing on every pipeline.
#[test]
fn every_source_loads_the_captures_and_reruns_write_nothing() {
    let Some(dir) = captures() else { return };
    let replay = Replay::start(&dir);
    let Some(env) = sources_env(&replay.url) else { return };
    let first = run(&env, "all");
    assert_eq!(
        first.iter().map(|summary| summary["pipeline"].as_str().unwrap()).collect::<Vec<_>>(),
        SOURCES,
        "run all runs every enabled pipeline in dependency order"
    );
    for summary in &first {
        assert_eq!(summary["status"], "succeeded", "{summary}");
    }
    for (entity, expected) in MANIFEST_COUNTS {
        assert_eq!(count(&env, entity), expected, "{entity}");
    }

    let npcs = notes(by_pipeline(&first, "npcs"));
    assert!(npcs.contains("1 item ids are not in the stored item list yet") && npcs.contains("1313"), "{npcs}");
    let tower = notes(by_pipeline(&first, "tower"));
    assert!(tower.contains("1203, 1230, 1232, 1256, 1257"), "{tower}");
    let npc_pages = notes(by_pipeline(&first, "npc_pages"));
    assert!(npc_pages.contains("\"Pumpkin Spiced Milk\""), "staff-table names that match no item: {npc_pages}");
    let locations = notes(by_pipeline(&first, "locations"));
    assert!(
        locations.contains("22 pages failed") && locations.contains("/location.php?type=fishing&id=1"),
        "{locations}"
    );
    let item_pages = notes(by_pipeline(&first, "item_pages"));
    assert!(item_pages.contains("1135 pages failed"), "{item_pages}");

    // The updates are served as an Atom feed, newest first.
    let server = env.serve();
    let feed = server.get("/updates/feed");
    assert_eq!(feed.status(), 200);
    assert!(feed.headers()["content-type"].to_str().unwrap().starts_with("application/atom+xml"));
    let feed = feed.text().unwrap();
    assert_eq!(feed.matches("<entry>").count(), 50, "{feed}");
    let newest = feed.find("urn:hayloft:update:451").unwrap();
    assert!(newest < feed.find("urn:hayloft:update:450").unwrap(), "newest first");
    assert!(feed.contains("<updated>2023-06-01T00:00:00Z</updated>"));
    drop(server);

    let changes = count(&env, "changes");
    let second = run(&env, "all");
    for summary in &second {
        assert_eq!(summary["status"], "succeeded", "{summary}");
        assert_eq!(writes(summary), 0, "an unchanged re-run writes nothing: {summary}");
        assert!(notes(summary).contains("upstream unchanged"), "{summary}");
    }
    assert_eq!(count(&env, "changes"), changes, "no change-feed entries either");
}

/// A copy of the captures where each `(path, query)` route answers with another capture's file.
fn capture_with_swaps(dir: &Path, swaps: &[(&str, &str)]) -> TempDir {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(dir, copy.path());
    let routes_path = copy.path().join("routes.json");
    let mut routes: Value = serde_json::from_slice(&std::fs::read(&routes_path).unwrap()).unwrap();
    for route in routes["routes"].as_array_mut().unwrap() {
        let request = match (route["path"].as_str(), route["query"].as_object()) {
            (Some(path), Some(query)) if !query.is_empty() => {
                let pairs: Vec<String> =
                    query.iter().map(|(key, value)| format!("{key}={}", value.as_str().unwrap())).collect();
                format!("{path}?{}", pairs.join("&"))
            }
            (Some(path), _) => path.to_owned(),
            (None, _) => continue,
        };
        if let Some((_, file)) = swaps.iter().find(|(swapped, _)| sorted_query(swapped) == sorted_query(&request)) {
            route["file"] = Value::from(*file);
            route["content_type"] = Value::from("text/html; charset=utf-8");
        }
    }
    std::fs::write(routes_path, routes.to_string()).unwrap();
    copy
}

/// `path?b=2&a=1` as `path?a=1&b=2`, to compare requests whatever their parameter order.
fn sorted_query(request: &str) -> String {
    let (path, query) = request.split_once('?').unwrap_or((request, ""));
    let mut pairs: Vec<&str> = query.split('&').filter(|pair| !pair.is_empty()).collect();
    pairs.sort_unstable();
    format!("{path}?{}", pairs.join("&"))
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

// Feeding each pipeline a page of another kind fails its run with an error naming the page and
// what was looked for; the rows loaded before stay, never an empty table.
#[test]
fn a_page_of_another_kind_fails_the_run_and_keeps_the_rows() {
    let Some(dir) = captures() else { return };
    let good = Replay::start(&dir);
    let Some(env) = sources_env(&good.url) else { return };
    assert!(run(&env, "all").iter().all(|summary| summary["status"] == "succeeded"));
    let before: Vec<i64> = MANIFEST_COUNTS.iter().map(|(entity, _)| count(&env, entity)).collect();

    // Each page answers with the page of another source.
    let swaps = [
        ("/api.php?method=npcs", "tent.html"),
        ("/api.php?method=tower", "comm.html"),
        ("/npclevels.php", "gallery.html"),
        ("/locations.php", "exchange.html"),
        ("/item.php?id=326", "tent.html"),
        ("/item.php?id=572", "tent.html"),
        ("/item.php?id=334", "tent.html"),
        ("/comm.php", "tent.html"),
        ("/exchange.php", "comm.html"),
        ("/manage_hoc.php", "manage_npc.html"),
        ("/tent.php", "exchange.html"),
        ("/about.php?all=1", "popwlog.html"),
        ("/about.php", "popwlog.html"),
        ("/popwlog.php", "gallery.html"),
        ("/gallery.php", "tent.html"),
    ];
    let drifted = capture_with_swaps(&dir, &swaps);
    let replay = Replay::start(drifted.path());
    let env = env.env("HAYLOFT_UPSTREAM_URL", &replay.url);
    let expected_errors: [(&str, &[&str]); 12] = [
        ("npcs", &["api.php?method=npcs", "HTML page instead of JSON"]),
        ("tower", &["api.php?method=tower", "HTML page instead of JSON"]),
        ("npc_pages", &["layout changed on /npclevels.php", "mailbox.php"]),
        ("locations", &["layout changed on /locations.php", "a.item-link"]),
        ("item_pages", &["none of the 3 item pages could be read", "sharelink"]),
        ("community", &["layout changed on /comm.php", "Current Goal"]),
        ("exchange", &["layout changed on /exchange.php", "Trade in"]),
        ("cards", &["layout changed on /manage_hoc.php", "Cards to Play"]),
        ("tent", &["layout changed on /tent.php", "Take a look"]),
        ("updates", &["layout changed on /about.php?all=1", "recentUpdates"]),
        ("passwords", &["layout changed on /popwlog.php", "li.item-content"]),
        ("gallery", &["layout changed on /gallery.php", "div.col-50"]),
    ];
    for (pipeline, fragments) in expected_errors {
        let summary = &run(&env, pipeline)[0];
        assert_eq!(summary["status"], "failed", "{pipeline}: {summary}");
        let error = summary["error"].as_str().unwrap();
        for fragment in fragments {
            assert!(error.contains(fragment), "{pipeline}: {error:?} does not mention {fragment:?}");
        }
    }
    let after: Vec<i64> = MANIFEST_COUNTS.iter().map(|(entity, _)| count(&env, entity)).collect();
    assert_eq!(after, before, "no rows were lost to a drifted page");
}

// A detail page that is broken fails alone: the run succeeds, reports the page, and the drops
// already stored for that location stay.
#[test]
fn a_broken_location_page_fails_alone() {
    let Some(dir) = captures() else { return };
    let good = Replay::start(&dir);
    let Some(env) = sources_env(&good.url) else { return };
    assert_eq!(run(&env, "locations")[0]["status"], "succeeded");
    assert_eq!(count(&env, "drops"), 17);

    let broken = capture_with_swaps(&dir, &[("/location.php?type=explore&id=5", "tent.html")]);
    let replay = Replay::start(broken.path());
    let env = env.env("HAYLOFT_UPSTREAM_URL", &replay.url);
    let summary = &run(&env, "locations")[0];
    assert_eq!(summary["status"], "succeeded", "{summary}");
    let notes = notes(summary);
    assert!(
        notes.contains("/location.php?type=explore&id=5: bad input: layout changed")
            && notes.contains("Things found here"),
        "{notes}"
    );
    assert_eq!(writes(summary), 0, "{summary}");
    assert_eq!(count(&env, "drops"), 17, "the Misty Forest drops stay");
}

// An offer the page lists twice is one row: the run succeeds (one statement cannot write a key
// twice on PostgreSQL), counts it once and says which key repeated.
#[test]
fn a_row_listed_twice_is_written_once_and_reported() {
    let Some(dir) = captures() else { return };
    let copy = tempfile::tempdir().unwrap();
    copy_tree(&dir, copy.path());
    let page_path = copy.path().join("exchange.html");
    let page = std::fs::read_to_string(&page_path).unwrap();
    let offer = page.find("Trade in").unwrap();
    let start = page[..offer].rfind("<div class=\"card\">").unwrap();
    let end = start + 1 + page[start + 1..].find("<div class=\"card\">").unwrap();
    let doubled = format!("{}{}{}", &page[..end], &page[start..end], &page[end..]);
    std::fs::write(&page_path, doubled).unwrap();
    let replay = Replay::start(copy.path());
    let Some(env) = sources_env(&replay.url) else { return };

    let summary = &run(&env, "exchange")[0];
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert_eq!(summary["inserted"], 5, "{summary}");
    assert_eq!(count(&env, "exchange"), 5);
    let notes = notes(summary);
    assert!(
        notes.contains("exchange_offers: 1 keys came in more than once (")
            && notes.contains("the first row of each was kept"),
        "{notes}"
    );
}

/// `html` with the cells of every table row (`<tr>…</tr>`, header included) reworked by
/// `rework`: each cell is its text from `<td` up to the next `<td` or the end of the row, so the
/// staff page's unclosed `<td>Can Be Given` header cell moves as one.
fn rework_columns(html: &str, rework: impl Fn(&mut Vec<String>)) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<tr>") {
        let end = start + rest[start..].find("</tr>").unwrap();
        out.push_str(&rest[..start + "<tr>".len()]);
        let mut cells: Vec<String> = rest[start + "<tr>".len()..end].split("<td").map(str::to_owned).collect();
        out.push_str(&cells.remove(0));
        rework(&mut cells);
        for cell in cells {
            out.push_str("<td");
            out.push_str(&cell);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A copy of the captures with `file`'s table columns reworked (see [`rework_columns`]).
fn capture_with_columns(dir: &Path, file: &str, rework: impl Fn(&mut Vec<String>)) -> TempDir {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(dir, copy.path());
    let path = copy.path().join(file);
    let page = std::fs::read_to_string(&path).unwrap();
    let reworked = rework_columns(&page, rework);
    assert_ne!(reworked, page, "{file} has tables to rework");
    std::fs::write(path, reworked).unwrap();
    copy
}

// Tables are read by their headers. The staff page before 2025 had no "Can Be Given" column:
// that layout (the capture with the column deleted) loads the same profiles, with a note;
// reordered columns load the same rows; a column the parser needs that is gone fails the run
// naming page, table and column, and keeps the stored rows. The same for the House of Cards.
#[test]
fn tables_are_read_by_their_headers() {
    let Some(dir) = captures() else { return };
    let good = Replay::start(&dir);
    let Some(env) = sources_env(&good.url) else { return };
    for pipeline in ["items", "npcs", "npc_pages", "cards"] {
        assert_eq!(run(&env, pipeline)[0]["status"], "succeeded", "{pipeline}");
    }
    let (profiles, combos) = (count(&env, "npc-profiles"), count(&env, "cards"));
    assert_eq!((profiles, combos), (29, 13));

    // The header's tenth cell, `<td>Can Be Given`, and each row's tenth cell.
    let older = capture_with_columns(&dir, "manage_npc.html", |cells| {
        cells.remove(9);
    });
    // Hates first, then Zone with its four untitled numbers, then ID, Name and the picture.
    let reordered = capture_with_columns(&dir, "manage_npc.html", |cells| {
        let order = [12, 3, 4, 5, 6, 7, 0, 1, 2, 8, 9, 10, 11];
        *cells = order.iter().map(|&index| cells[index].clone()).collect();
    });
    let no_zone = capture_with_columns(&dir, "manage_npc.html", |cells| {
        cells.remove(3);
    });
    // "Reward" and "Times Turned In" swapped; then "Times Turned In" gone.
    let cards_reordered = capture_with_columns(&dir, "manage_hoc.html", |cells| cells.swap(2, 3));
    let cards_short = capture_with_columns(&dir, "manage_hoc.html", |cells| {
        cells.remove(3);
    });

    for (capture, pipeline, expected_note) in [
        (
            &older,
            "npc_pages",
            Some("the staff table on /manage_npc.php has no \"Can Be Given\" column (an older layout)"),
        ),
        (&reordered, "npc_pages", None),
        (&cards_reordered, "cards", None),
    ] {
        let replay = Replay::start(capture.path());
        // A second node on the same database, pointed at the reworked capture.
        let env = env.sibling().env("HAYLOFT_UPSTREAM_URL", &replay.url);
        let summary = &run(&env, pipeline)[0];
        assert_eq!(summary["status"], "succeeded", "{summary}");
        assert_eq!(writes(summary), 0, "the same rows, read by header: {summary}");
        let notes = notes(summary);
        match expected_note {
            Some(note) => assert!(notes.contains(note), "{notes}"),
            None => assert!(!notes.contains("could not be read"), "{notes}"),
        }
    }
    for (capture, pipeline, fragment) in [
        (&no_zone, "npc_pages", "the staff table has no \"Zone\" column"),
        (&cards_short, "cards", "the card combo table has no \"Times Turned In\" column"),
    ] {
        let replay = Replay::start(capture.path());
        // A second node on the same database, pointed at the reworked capture.
        let env = env.sibling().env("HAYLOFT_UPSTREAM_URL", &replay.url);
        let summary = &run(&env, pipeline)[0];
        assert_eq!(summary["status"], "failed", "{summary}");
        let error = summary["error"].as_str().unwrap();
        let page = if pipeline == "cards" { "/manage_hoc.php" } else { "/manage_npc.php" };
        assert!(error.contains(&format!("layout changed on {page}")) && error.contains(fragment), "{error}");
    }
    assert_eq!((count(&env, "npc-profiles"), count(&env, "cards")), (profiles, combos), "the stored rows stay");
}

// A row that cannot be read is skipped, counted in the notes and keeps its stored version: the
// House of Cards with one combo's reward made unreadable deletes nothing.
#[test]
fn an_unreadable_table_row_keeps_its_stored_row() {
    let Some(dir) = captures() else { return };
    let good = Replay::start(&dir);
    let Some(env) = sources_env(&good.url) else { return };
    assert_eq!(run(&env, "cards")[0]["status"], "succeeded");
    let combos = count(&env, "cards");

    let copy = tempfile::tempdir().unwrap();
    copy_tree(&dir, copy.path());
    let path = copy.path().join("manage_hoc.html");
    let page = std::fs::read_to_string(&path).unwrap();
    // Snippet of the page: `<td><img src='/img/items/piece11.png?1' style='width:20px'> Piece 11 (x1) </td>`.
    let garbled = page.replacen("Piece 11 (x1)", "Piece 11", 1);
    assert_ne!(garbled, page);
    std::fs::write(&path, garbled).unwrap();
    let replay = Replay::start(copy.path());
    let env = env.env("HAYLOFT_UPSTREAM_URL", &replay.url);
    let summary = &run(&env, "cards")[0];
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert_eq!(writes(summary), 0, "{summary}");
    let notes = notes(summary);
    assert!(
        notes.contains("the card combo table on /manage_hoc.php: 1 of 13 rows could not be read")
            && notes.contains("row 2 (key 2): no \"Name (xN)\" reward"),
        "{notes}"
    );
    assert_eq!(count(&env, "cards"), combos, "combo 2 stays");
}

// A price the tent page does not show this time ("Inv Full" when the inventory is full) keeps
// the last known price: the run writes nothing and says so. The capture's Coal offer reads
// `<button class="button buybtn" data-id="103" data-name="Coal"><span class="price103">1</span> AC</button>`.
#[test]
fn a_price_not_shown_keeps_the_last_known_one() {
    let Some(dir) = captures() else { return };
    let good = Replay::start(&dir);
    let Some(env) = sources_env(&good.url) else { return };
    assert_eq!(run(&env, "tent")[0]["status"], "succeeded");

    let copy = tempfile::tempdir().unwrap();
    copy_tree(&dir, copy.path());
    let path = copy.path().join("tent.html");
    let page = std::fs::read_to_string(&path).unwrap();
    let price = "<button class=\"button buybtn\" data-id=\"103\" data-name=\"Coal\"><span class=\"price103\">1</span> AC</button>";
    assert!(page.contains(price));
    std::fs::write(&path, page.replacen(price, "Inv Full", 1)).unwrap();
    let replay = Replay::start(copy.path());
    let env = env.env("HAYLOFT_UPSTREAM_URL", &replay.url);
    let summary = &run(&env, "tent")[0];
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert_eq!(writes(summary), 0, "the stored price of Coal stays 1: {summary}");
    let notes = notes(summary);
    assert!(
        notes.contains("tent_offers: price not shown this time for 1 row; the last known value was kept for 1 (")
            && notes.contains("/103)"),
        "{notes}"
    );
}

/// Posts 451, 439 and 423 as the about pages show them (`about.html`, `about/all.html`): inline
/// links inline, `<br />` a line, `<br /><br />` a blank line, the hidden `<span
/// style="display:none">` copies of item names left out, item pictures by their `alt` unless
/// the words before them say it, and the staff macros (`<strong>Geckopath</strong>`,
/// `<strong>Dogfoo</strong>`) in their stable form while the plain word firestream stays.
const POST_451: &str = "JUNE STARTER PACK AVAILABLE:
- This month, the starter pack contains Holger's Lunch Box
- The Lunch Box has a number of meals, including a new item -> Lemon Cream Pie
- Lemon Cream Pie allows you to use 5x Arnold Palmers per tap and is pretty handy
- Also, look for the quest 'Sweet Days of Summer' for an extra bonus!
- You can get the Starter Pack here -> Gold

MEDIUM UPDATES:
- The Soap Shop has been updated with new items
- There are new June Raptor types available in RFC
- In your Raptor Pen, check out RaptorDex. This is a great new way to track all of your Raptor types at a glance. You can see which you have unlocked and tap to filter your Raptor Pen by each type.
- There are a couple rare items moving around the Explore locations this month. Keep an eye out!
- There are a few perks on sale a the Farm Supply

DEVELOPMENT BREAK
- A lot of content dropped in May and with that firestream is going to take a 2-week break from development.
- In his absence, …path will be working hard to drop nightmarish quests while …foo occasionally helps. Keep an eye out for new help requests, passwords or quizzes!";

const POST_439: &str = "INTRODUCING BORGEN BUCKS
- Borgen has a deal for ya... every 10,000 AC you spend on the Wheel, at his Camp or cracking the Vault will earn you a Borgen Buck
- To help you track your progress, a progress bar has been added to the bottom of the Wheel, the Vault and Borgen's Camp
- The new Borgen Buck currency will unlock a new shop in May that Borgen runs with some very highly sought after items, if you have enough bucks...
- For more info, check out Borgen Bucks

IOS NOTIFICATIONS IN BETA:
- IN BETA: The Crop Harvest Notifications are now in Beta for players using an iOS device
- IN BETA: When you hit 'Plant All', your iOS app should ask you if you want to allow notifications. If you have any trouble, try going Home > top-right refresh and you may need to completely close out / re-open the iOS app
- IN BETA: It is possible you might need to update the iOS app from the App Store if you are not getting the notifications!

SMALL UPDATES:
- Two new high level craftable items -> Steel Vise and Red Trunk
- Vault Codes Cracked stat added to Profiles
- Some stats have been added to the bottom of your Bank History Log";

const POST_423: &str = "NEW CRAFTABLE ITEMS:
- Added on 3/17, the Green Top Hat is craftable until 3/31 --> Green Top Hat
- Added today, there are 3 other new items you can craft
- Wooden Table, Fancy Chair and Fancy Pan Flute

LARGE NET LAUNCHER SETTING IN BETA
- IN BETA: If you have the Large Net Launcher Farm Supply perk, you can go to Settings and set it to use between 10 and 50 large nets per click now
- IN BETA: This setting reduces clicks even more, but you have to be careful of your inventory cap to make full use of the setting

SMALL UPDATES:
- There is a chance now every 10 minutes that fish start biting more in a Fishing Location
- This means when you fish there, you'll get 2-3 more fish per bait (similar to the event bonus)
- The chance of this happening is 1 out of 10 every 10 minutes and the bonus will last 10 minutes
- On the Craftable Items list, Crafting XP has been added for quick reference

HIDE HELP REQUESTS IN ALPHA
- IN ALPHA: You can hide Help Requests now, just go into one you want to hide and scroll to the bottom to hide it
- IN ALPHA: It will then show in a 'Requests Hidden' view that is at the bottom of the Help Needed section";

// Update posts are stored as the page shows them, and their HTML with absolute links: the feed
// publishes links that resolve against the upstream, and the plain word in a link
// (`details?id=com.firestream.farmrpg`, post 265) is never taken for a staff macro.
#[test]
fn update_posts_read_as_the_page_shows_them() {
    let Some(dir) = captures() else { return };
    let replay = Replay::start(&dir);
    let Some(env) = sources_env(&replay.url) else { return };
    assert_eq!(run(&env, "updates")[0]["status"], "succeeded");
    let server = env.serve();
    let query = "{ p451: gameUpdate(id: 451) { text html } p439: gameUpdate(id: 439) { text } \
                 p423: gameUpdate(id: 423) { text } p265: gameUpdate(id: 265) { text html } }";
    let body: Value = reqwest::blocking::Client::new()
        .post(format!("{}/graphql", server.base_url))
        .timeout(std::time::Duration::from_secs(20))
        .json(&serde_json::json!({ "query": query }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(body["errors"].is_null(), "{body}");
    let data = &body["data"];
    for (post, expected) in [("p451", POST_451), ("p439", POST_439), ("p423", POST_423)] {
        assert_eq!(data[post]["text"].as_str().unwrap(), expected, "{post}");
    }
    let html = data["p451"]["html"].as_str().unwrap();
    assert!(html.contains(&format!("<a href=\"{}gold.php\"", replay.url)), "{html}");
    assert!(html.contains("<strong>…path</strong>") && html.contains("with that firestream is"), "{html}");
    let android = data["p265"]["html"].as_str().unwrap();
    assert!(android.contains("https://play.google.com/store/apps/details?id=com.firestream.farmrpg"), "{android}");

    let feed = reqwest::blocking::get(format!("{}/updates/feed", server.base_url)).unwrap().text().unwrap();
    assert!(feed.contains(&format!("href=&quot;{}gold.php&quot;", replay.url)), "the feed's links are absolute");
    assert!(!feed.contains("href=&quot;gold.php") && !feed.contains("src=&quot;/img/"), "no relative link is left");
    assert!(!feed.contains("display:none"), "hidden copies are not published");
}
