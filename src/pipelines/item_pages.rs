//! Item pages (`/item.php?id=N` for every stored item): what the item API does not say — the
//! rarity and XP as the page shows them, the Flea Market price in Gold, the Gold inside an
//! openable (the locksmith's Gold row), and the locations each item is found at. One page per
//! item, fetched politely (the upstream's per-host concurrency and rate limits) across the whole
//! item list and shared out among the nodes as fan-out tasks: each page writes its own item's
//! rows, and a page that fails is reported and its item's stored rows stay.

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use diesel::{ExpressionMethods, Insertable, QueryDsl, Queryable, Selectable, SelectableHelper};
use hayloft_actors::pipeline::StageError;
use hayloft_actors::storage::StorageFailure;
use select::node::Node;
use select::predicate::{Class, Name, Predicate};
use serde::Serialize;

use super::items::rows::Item;
use super::locations::{location_key, Location, SAMPLE_LOCATIONS};
use super::shared::html::{next_element, number, own_text, query_value, squash, Html, LinkTo};
use super::shared::names::Names;
use super::shared::source::{Page, Source, SourceInput};
use super::shared::table::{stored_table, Dataset, DeletePolicy};
use crate::db::schema::{item_details, item_sources, items};
use crate::db::{with_conn, Database, DbError};
use crate::front_doors::graphql::entity::{entity, links};
use crate::upstream::demo_data::{scaled_item, scaled_item_id, ITEMS_PER_BLOCK};
use crate::upstream::demo_pages::{SamplePage, SampleRequest};

pub const NAME: &str = "item_pages";

entity! {
    #[diesel(table_name = item_details)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct ItemDetail {
        pub item_id: i64,
        pub name: String,
        pub rarity: Option<String>,
        pub xp_value: Option<i64>,
        pub flea_market_gold: Option<i64>,
        pub contents_gold: Option<i64>,
    }
    key (item_id);
    roots (item_details, item_detail);
    relations {
        item: one items.id = item_id;
    }
}
stored_table!(
    ItemDetail,
    item_details,
    "item_detail",
    key(item_id),
    update(name, rarity, xp_value, flea_market_gold, contents_gold)
);

entity! {
    #[diesel(table_name = item_sources)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct ItemSource {
        pub item_id: i64,
        /// The page section listing the location, lower case: `fishing`, `exploring`, ...
        pub activity: String,
        pub location_type: String,
        pub location_id: i64,
    }
    key (item_id, activity, location_type, location_id);
    roots (item_sources, item_source);
    relations {
        item: one items.id = item_id;
        location: one locations.id = location_id, location_type = location_type;
    }
}
stored_table!(ItemSource, item_sources, "item_source", key(item_id, activity, location_type, location_id), update());

/// The path of an item page.
const PATH: &str = "/item.php";
links! {
    Item {
        /// What the item's own page adds.
        page_details: one item_details.item_id = id;
        /// Locations the item's page lists as sources.
        page_sources: many item_sources.item_id = id;
    }
    Location {
        /// Items whose pages list this location as a source.
        listed_by_item_pages: many item_sources.location_id = id, location_type = location_type;
    }
}

pub fn request(item_id: i64) -> String {
    format!("{PATH}?id={item_id}")
}

/// The elements of the section titled like `title` matches: everything after its
/// `div.content-block-title` up to the next one.
fn sections<'a>(page: &'a Html) -> Vec<(String, Vec<Node<'a>>)> {
    page.find(Name("div").and(Class("content-block-title")))
        .map(|title| {
            let mut body = Vec::new();
            let mut next = next_element(title);
            while let Some(node) = next {
                if node.is(Class("content-block-title")) {
                    break;
                }
                body.push(node);
                next = next_element(node);
            }
            (squash(&title.text()), body)
        })
        .collect()
}

/// The details and sources one item page gives.
pub fn parse_item_page(page: &Html, item_id: i64) -> Result<(ItemDetail, Vec<ItemSource>), StageError> {
    let name = page
        .find(Class("sharelink"))
        .find_map(|link| link.attr("data-clipboard-text"))
        .map(|text| squash(text.trim_start_matches("((").trim_end_matches("))")))
        .filter(|name| !name.is_empty())
        .ok_or_else(|| page.layout_error(".center.sliding a.sharelink[data-clipboard-text]"))?;
    let sections = sections(page);
    let details = sections
        .iter()
        .find(|(title, _)| title == "Item Details")
        .ok_or_else(|| page.layout_error("div.content-block-title \"Item Details\""))?;
    let mut detail =
        ItemDetail { item_id, name, rarity: None, xp_value: None, flea_market_gold: None, contents_gold: None };
    for row in details.1.iter().flat_map(|node| node.find(Class("item-inner"))) {
        let label = row.find(Class("item-title")).next().map(own_text).unwrap_or_default();
        let value = row.find(Class("item-after")).next().map(own_text).unwrap_or_default();
        match label.as_str() {
            "Rarity" => detail.rarity = Some(value).filter(|value| !value.is_empty()),
            "XP Value" => detail.xp_value = value.strip_suffix("XP").and_then(number),
            "Flea Market" => detail.flea_market_gold = value.strip_suffix("Gold").and_then(number),
            _ => {}
        }
    }
    let mut sources = Vec::new();
    for (title, body) in &sections {
        if title == "Item Contents" {
            // The Gold row links nowhere (`href="#"`) and shows an amount without an `x`.
            detail.contents_gold = body
                .iter()
                .flat_map(|node| node.find(Name("a").and(Class("item-link"))))
                .filter(|link| link.attr("href") == Some("#"))
                .filter(|link| {
                    link.find(Class("item-title")).next().is_some_and(|title| squash(&title.text()).starts_with("Gold"))
                })
                .find_map(|link| link.find(Class("item-after")).next().and_then(|after| number(&after.text())));
        }
        let activity = title.to_lowercase();
        for link in body.iter().flat_map(|node| node.find(LinkTo("location.php"))) {
            if let Some((location_type, location_id)) = link.attr("href").and_then(location_key) {
                sources.push(ItemSource { item_id, activity: activity.clone(), location_type, location_id });
            }
        }
    }
    sources.sort_by(|a, b| {
        (&a.activity, &a.location_type, a.location_id).cmp(&(&b.activity, &b.location_type, b.location_id))
    });
    sources.dedup();
    Ok((detail, sources))
}

#[derive(Default)]
pub struct ItemPages;

#[async_trait(?Send)]
impl Source for ItemPages {
    const NAME: &'static str = NAME;
    /// Daily, at a hashed time: a thousand pages, fetched within the politeness limits.
    const DEFAULT_SCHEDULE: &'static str = "H H H * * *";
    const TRANSFORM_VERSION: u32 = 1;
    const FANS_OUT: bool = true;
    const PAGE_KIND: &'static str = "item";

    fn requests(&self) -> Vec<String> {
        Vec::new()
    }

    fn sample_requests(&self, scale: u32) -> Vec<String> {
        (0..scale.max(1))
            .flat_map(|block| (0..ITEMS_PER_BLOCK).map(move |position| request(scaled_item_id(block, position))))
            .collect()
    }

    fn sample_page(&self, request: &SampleRequest) -> Option<SamplePage> {
        if request.path() != PATH {
            return None;
        }
        sample_html(request.param("id")?.parse().ok()?).map(SamplePage::html)
    }

    async fn fan_out(&self, _pages: &[Page], db: &Database) -> Result<Vec<String>, StageError> {
        let ids: Vec<i64> = with_conn!(db, readers, |conn| {
            items::table.select(items::id).order(items::id).load(conn).await.map_err(DbError::Query)
        })
        .map_err(|error| StageError::Database(StorageFailure::new(error)))?;
        if ids.is_empty() {
            return Err(StageError::BadInput(
                "no items are stored yet; run the items pipeline first (`hayloft run items`)".to_owned(),
            ));
        }
        Ok(ids.into_iter().map(request).collect())
    }

    fn parse_fanned(&self, page: &Page, _names: &Names) -> Result<Dataset, StageError> {
        let item_id = query_value(&page.request, "id")
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| StageError::BadInput(format!("{}: not an item page request", page.request)))?;
        let (detail, sources) = parse_item_page(&Html::parse(page), item_id)?;
        Ok(Dataset::new()
            .page_table(vec![detail], move |db| Box::pin(stored_of_item::<ItemDetail>(db, item_id)))
            .page_table(sources, move |db| Box::pin(stored_of_item::<ItemSource>(db, item_id))))
    }

    /// The end of the run: the pages wrote their own rows; the rows of items whose page was
    /// not asked for (the item is gone) are deleted, within the delete guard.
    fn parse(&self, input: &SourceInput) -> Result<Dataset, StageError> {
        let requested = Arc::new(input.fan_out.requested.clone());
        let asked = requested.clone();
        Ok(Dataset::new()
            .table(
                Vec::<ItemDetail>::new(),
                DeletePolicy::keep_where(move |row: &ItemDetail| requested.contains(&request(row.item_id))),
            )
            .table(
                Vec::<ItemSource>::new(),
                DeletePolicy::keep_where(move |row: &ItemSource| asked.contains(&request(row.item_id))),
            ))
    }
}

/// The stored rows of one item's page.
async fn stored_of_item<R: OfItem>(db: Database, item_id: i64) -> Result<Vec<R>, DbError> {
    R::of_item(&db, item_id).await
}

/// Rows that belong to one item's page.
trait OfItem: Sized {
    async fn of_item(db: &Database, item_id: i64) -> Result<Vec<Self>, DbError>;
}

impl OfItem for ItemDetail {
    async fn of_item(db: &Database, item_id: i64) -> Result<Vec<Self>, DbError> {
        with_conn!(db, readers, |conn| {
            item_details::table
                .filter(item_details::item_id.eq(item_id))
                .select(ItemDetail::as_select())
                .load(conn)
                .await
                .map_err(DbError::Query)
        })
    }
}

impl OfItem for ItemSource {
    async fn of_item(db: &Database, item_id: i64) -> Result<Vec<Self>, DbError> {
        with_conn!(db, readers, |conn| {
            item_sources::table
                .filter(item_sources::item_id.eq(item_id))
                .select(ItemSource::as_select())
                .load(conn)
                .await
                .map_err(DbError::Query)
        })
    }
}

/// The sample page of the item with `id`, for every item of the first generated block: its XP
/// and rarity, and for every fourth item a sample location it is found at.
fn sample_html(id: i64) -> Option<String> {
    let (position, name) = scaled_item(id)?;
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
        let (kind, location_id, _, _) = SAMPLE_LOCATIONS[position % SAMPLE_LOCATIONS.len()];
        let activity = if kind == "fishing" { "Fishing" } else { "Exploring" };
        let _ = writeln!(
            page,
            "<div class=\"content-block-title\">{activity}</div><div class=\"card\"><div class=\"card-content-inner\"><strong>{name}</strong> can be found here.</div></div>\
             <div class=\"list-block\"><ul><li><a href=\"location.php?id={location_id}&type={kind}\" class=\"item-link\">there</a></li></ul></div>"
        );
    }
    Some(page)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PAGE: &str = r##"<div class="center sliding"><a class="sharelink" data-clipboard-text="((Grab Bag 02))">x</a></div>
        <div class="content-block-title">Item Details</div><div class="card"><ul>
        <li><div class="item-inner"><div class="item-title">XP Value <br/><span>XP gained</span></div><div class="item-after"> 1 XP </div></div>
        <li><div class="item-inner"><div class="item-title">Flea Market <br/><span>On sale</span></div>
            <div class="item-after"> 4 Gold &nbsp; <a href='flea.php'>go</a></div></div>
        <li><div class="item-inner"><div class="item-title">Rarity</div><div class="item-after"> Uncommon </div></div></ul></div>
        <div class="content-block-title">Item Contents</div><div class="card">opened at the Locksmith</div>
        <div class="list-block"><ul><li><a href="#" class="item-link"><div class="item-title"><strong>Gold</strong></div>
            <div class="item-after">25</div></a></ul></div>
        <div class="content-block-title">Exploring</div><div class="card">found by exploring</div>
        <div class="list-block"><ul><li><a href="location.php?id=1&type=explore" class="item-link">Forest</a></ul></div>"##;

    // Details, the contents' Gold row and the drop sources are read from their sections.
    #[test]
    fn item_page_details_and_sources() {
        let (detail, sources) = parse_item_page(&Html::from_text("/item.php?id=334", PAGE), 334).unwrap();
        assert_eq!(detail.name, "Grab Bag 02");
        assert_eq!((detail.xp_value, detail.flea_market_gold, detail.contents_gold), (Some(1), Some(4), Some(25)));
        assert_eq!(detail.rarity.as_deref(), Some("Uncommon"));
        assert_eq!(sources.len(), 1);
        assert_eq!(
            (sources[0].activity.as_str(), sources[0].location_type.as_str(), sources[0].location_id),
            ("exploring", "explore", 1)
        );
    }

    // Another page kind is a layout error naming the selector.
    #[test]
    fn another_page_is_a_layout_error() {
        let error = parse_item_page(&Html::from_text("/item.php?id=1", "<div>Tent</div>"), 1).unwrap_err().to_string();
        assert!(error.contains("/item.php?id=1") && error.contains("sharelink"), "{error}");
    }
}
