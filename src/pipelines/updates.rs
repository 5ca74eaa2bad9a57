//! Game updates (`/about.php`, the newest 25, and `/about.php?all=1`, the whole history): each
//! post's date, its text as the page shows it, a clean copy of its HTML with absolute links (see
//! [`page_text`](super::shared::page_text)) and the items it mentions. The staff-name macros
//! render a random name on every page view, always as a bold word (`<strong>Geckopath</strong>`,
//! `<strong>Dogfoo</strong>`): those, and only those, are normalised (`…path`, `…foo`), so the
//! same post reads the same on every fetch while the plain word "firestream" or a link to
//! `com.firestream.farmrpg` stays as written. Posts accumulate; they are also served as an Atom
//! feed at `/updates/feed`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use diesel::{Insertable, Queryable, Selectable};
use hayloft_actors::pipeline::StageError;
use select::predicate::{Attr, Class, Name, Predicate};
use serde::Serialize;

use super::items::rows::Item;
use select::node::Node;
use url::Url;

use super::shared::html::{game_date, item_link_id, query_value, squash, Html, LinkTo};
use super::shared::names::Resolver;
use super::shared::page_text::{clean_html, visible_text};
use super::shared::source::{Source, SourceInput};
use super::shared::table::{stored_table, Dataset, DeletePolicy};
use crate::front_doors::graphql::entity::{entity, links};
use crate::upstream::demo_data::plain_item;
use crate::upstream::demo_pages::{navbar, SamplePage, SampleRequest, PAGE_END};

pub const NAME: &str = "updates";
const ALL: &str = "/about.php?all=1";
const NEWEST: &str = "/about.php";
/// The whole history first, then the newest posts (which win where both have a post).
const REQUESTS: [&str; 2] = [ALL, NEWEST];

entity! {
    #[diesel(table_name = game_updates)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct GameUpdate {
        pub id: i64,
        /// `YYYY-MM-DD`.
        pub posted_on: String,
        pub text: String,
        pub html: String,
    }
    key (id);
    roots (game_updates, game_update);
    relations {
        /// Items the post mentions.
        items: many game_update_items.update_id = id;
    }
}
stored_table!(GameUpdate, game_updates, "game_update", key(id), update(posted_on, text, html));

entity! {
    #[diesel(table_name = game_update_items)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct GameUpdateItem {
        pub update_id: i64,
        pub item_id: i64,
    }
    key (update_id, item_id);
    roots (game_update_items, game_update_item);
    relations {
        update: one game_updates.id = update_id;
        item: one items.id = item_id;
    }
}
stored_table!(GameUpdateItem, game_update_items, "game_update_item", key(update_id, item_id), update());

links! {
    Item {
        /// Game updates that mention this item.
        mentioned_in: many game_update_items.item_id = id;
    }
}

/// Words that end like a staff macro but are ordinary words.
const NOT_STAFF: [&str; 9] =
    ["upstream", "downstream", "mainstream", "livestream", "bloodstream", "footpath", "warpath", "bypath", "towpath"];
const STAFF_SUFFIXES: [&str; 3] = ["path", "foo", "stream"];

/// The stable form (`…path`, `…foo`, `…stream`) of one random rendering of a staff macro: a
/// single word of at least three letters before its suffix.
pub fn staff_macro(word: &str) -> Option<String> {
    let word = word.trim();
    if !word.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let lower = word.to_ascii_lowercase();
    STAFF_SUFFIXES
        .iter()
        .find(|suffix| {
            lower.len() >= suffix.len() + 3 && lower.ends_with(*suffix) && !NOT_STAFF.contains(&lower.as_str())
        })
        .map(|suffix| format!("…{suffix}"))
}

/// The page's mark-up of a staff macro: a `<strong>` holding nothing but such a word.
fn staff_markup(node: Node<'_>) -> Option<String> {
    if node.name() != Some("strong") || node.children().any(|child| child.name().is_some()) {
        return None;
    }
    staff_macro(&node.text())
}

#[derive(Default)]
pub struct Updates;

impl Source for Updates {
    const NAME: &'static str = NAME;
    /// Every 2 hours, at a hashed minute.
    const DEFAULT_SCHEDULE: &'static str = "H H H/2 * * *";
    // 2: text as the page shows it, staff macros only where marked up, absolute links.
    const TRANSFORM_VERSION: u32 = 2;

    fn requests(&self) -> Vec<String> {
        REQUESTS.iter().map(|request| (*request).to_owned()).collect()
    }

    fn sample_requests(&self, _scale: u32) -> Vec<String> {
        vec![NEWEST.to_owned(), ALL.to_owned()]
    }

    fn sample_page(&self, request: &SampleRequest) -> Option<SamplePage> {
        if request.asks_for(ALL) {
            return Some(SamplePage::html(sample_html(true)));
        }
        request.asks_for(NEWEST).then(|| SamplePage::html(sample_html(false)))
    }

    fn parse(&self, input: &SourceInput) -> Result<Dataset, StageError> {
        let mut resolver = Resolver::new(&input.names);
        let mut notes = Vec::new();
        let mut posts: BTreeMap<i64, (GameUpdate, Vec<i64>)> = BTreeMap::new();
        for page in &input.pages {
            // Links are made absolute against the page they came from.
            let base = Url::parse(&page.url).ok().filter(|url| matches!(url.scheme(), "http" | "https"));
            let page = Html::parse(page);
            let selector = "div.card.recentUpdates div.card-header a[href^=\"about.php?id=\"]";
            let cards = page.require(Name("div").and(Class("card")).and(Class("recentUpdates")), selector)?;
            for card in cards {
                let Some(link) = card.find(Class("card-header").descendant(LinkTo("about.php"))).next() else {
                    notes.push(format!("{}: an update card without a header link was skipped", page.request()));
                    continue;
                };
                let Some(id) =
                    link.attr("href").and_then(|href| query_value(href, "id")).and_then(|id| id.parse().ok())
                else {
                    continue;
                };
                let Some(date) = game_date(&link.text()) else {
                    notes.push(format!("update {id} skipped: unreadable date {:?}", squash(&link.text())));
                    continue;
                };
                let Some(body) = card.find(Class("card-content-inner")).next() else {
                    notes.push(format!("update {id} skipped: no div.card-content-inner"));
                    continue;
                };
                let html = clean_html(body, base.as_ref(), &staff_markup);
                let text = visible_text(body, &staff_markup);
                let mut items: Vec<i64> = body.find(LinkTo("item.php")).filter_map(item_link_id).collect();
                for icon in body.find(Name("img").and(Class("itemimgsm")).and(Attr("alt", ()))) {
                    if let Some(id) = icon.attr("alt").and_then(|name| resolver.item(name)) {
                        items.push(id);
                    }
                }
                items.sort_unstable();
                items.dedup();
                let items = items.into_iter().map(|item| resolver.item_id(item)).collect();
                posts.insert(id, (GameUpdate { id, posted_on: date.to_string(), text, html }, items));
            }
        }
        let skipped = notes.len() as u64;
        notes.extend(resolver.notes());
        let present: Arc<Vec<i64>> = Arc::new(posts.keys().copied().collect());
        let mut updates = Vec::with_capacity(posts.len());
        let mut links = Vec::new();
        for (id, (update, items)) in posts {
            updates.push(update);
            links.extend(items.into_iter().map(|item_id| GameUpdateItem { update_id: id, item_id }));
        }
        Ok(Dataset::new()
            .table(updates, DeletePolicy::KeepAll)
            // An update on the page lists exactly its items now; older updates keep theirs.
            .table(
                links,
                DeletePolicy::keep_where(move |row: &GameUpdateItem| present.binary_search(&row.update_id).is_err()),
            )
            .with_notes(notes)
            .with_dropped(skipped))
    }
}

/// The sample about page: the newest updates, or with `all` every one of the first 30.
fn sample_html(all: bool) -> String {
    let mut page = navbar("About") + "<div class=\"content-block-title\">Game Updates</div>\n";
    let ids: Vec<i64> = if all { (1..=30).collect() } else { (21..=32).collect() };
    for id in ids.into_iter().rev() {
        let (item_id, name) = plain_item(600 + id as usize);
        let _ = writeln!(
            page,
            "<div class=\"card recentUpdates\"><div class=\"card-header\"><a href=\"about.php?id={id}\"><i class=\"fa fa-calendar\"></i>&nbsp;May {}th, 2023</a></div>\
             <div class=\"card-content\"><div class=\"card-content-inner\">SMALL UPDATES:<br /> - <a href=\"item.php?id={item_id}\">{name}</a> can now be found in more places<br />\
             - Thanks to <strong>Sparkfoo</strong> for the help</div></div><div class=\"card-footer\">{} likes</div></div>",
            id % 20 + 4,
            id * 7
        );
    }
    page + PAGE_END
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pipelines::shared::names::{NameIndex, Names};
    use crate::pipelines::shared::source::{parse_pages, Page};

    // Random staff renderings normalise to one stable form where the page marks them up as
    // such (a bold word); ordinary words, links and attribute values are left alone.
    #[test]
    fn staff_macros_are_normalised_only_where_marked_up() {
        assert_eq!(staff_macro("Forcepath"), staff_macro("Rocketpath"));
        assert_eq!(staff_macro("Dogfoo").as_deref(), Some("…foo"));
        assert_eq!((staff_macro("upstream"), staff_macro("path"), staff_macro("two words")), (None, None, None));
        let document = select::document::Document::from(
            "<div><strong>Geckopath</strong> and <strong>Dogfoo</strong>, with firestream upstream \
             <a href='details?id=com.firestream.farmrpg'>Android</a> <strong>Our Staff:</strong></div>",
        );
        let body = document.find(Name("div")).next().unwrap();
        assert_eq!(visible_text(body, &staff_markup), "…path and …foo, with firestream upstream Android Our Staff:");
        assert!(clean_html(body, None, &staff_markup).contains("href=\"details?id=com.firestream.farmrpg\""));
    }

    // Id, date, text and mentioned items (by link and by icon name) are read.
    #[test]
    fn update_cards() {
        let card = |id: i64, date: &str, body: &str| {
            format!(
                r#"<div class="card recentUpdates"><div class="card-header"><a href="about.php?id={id}"><i></i>&nbsp;{date}</a></div>
                <div class="card-content"><div class="card-content-inner">{body}</div></div></div>"#
            )
        };
        let all = card(3, "April 1st, 2021", "Hello <a href='item.php?id=5'>Wood</a>") + &card(4, "Nope", "x");
        let newest = card(3, "April 1st, 2021", "New <img class='itemimgsm' alt='Apple'> <strong>Tenfoo</strong>");
        let page = |request: &str, body: String| Page {
            request: request.to_owned(),
            url: request.to_owned(),
            body: body.into(),
        };
        let names = Names { items: NameIndex::new([("Apple".to_owned(), 9)]), ..Names::default() };
        let dataset = parse_pages(&Updates, vec![page(REQUESTS[0], all), page(REQUESTS[1], newest)], names).unwrap();
        assert_eq!(dataset.table_rows(), [("game_updates", 1), ("game_update_items", 1)]);
        let update = &dataset.rows_of("game_updates")[0];
        assert_eq!(update["posted_on"], "2021-04-01");
        assert!(update["text"].as_str().unwrap().contains("…foo"), "{update}");
        assert_eq!(dataset.rows_of("game_update_items")[0]["item_id"], 9);
        assert_eq!(dataset.dropped, 1, "the update with an unreadable date");
    }
}
