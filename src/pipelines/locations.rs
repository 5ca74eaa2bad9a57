//! Locations and drops: `/locations.php` lists every fishing and exploring location; each one's
//! `/location.php?type=…&id=…` page lists the items found there. A fan-out: the detail pages are
//! shared out among the nodes as tasks and fetched within the per-host limits; each writes its
//! location's drops, and a detail page that is missing or broken fails alone — it is reported,
//! and the drops already stored for that location stay.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use diesel::{ExpressionMethods, Insertable, QueryDsl, Queryable, Selectable, SelectableHelper};
use hayloft_actors::pipeline::StageError;
use select::predicate::{Class, Name, Predicate};
use serde::Serialize;

use super::items::rows::Item;
use super::shared::html::{item_link_id, own_text, query_value, squash, Html, LinkTo};
use super::shared::names::{Names, Resolver};
use super::shared::source::{Page, Source, SourceInput};
use super::shared::table::{stored_table, Dataset, DeletePolicy};
use crate::db::schema::location_drops;
use crate::db::{with_conn, Database, DbError};
use crate::front_doors::graphql::entity::{entity, links};
use crate::upstream::demo_data::plain_item;
use crate::upstream::demo_pages::{navbar, SamplePage, SampleRequest, PAGE_END};

pub const NAME: &str = "locations";
const LIST: &str = "/locations.php";

entity! {
    #[diesel(table_name = locations)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct Location {
        pub location_type: String,
        pub id: i64,
        pub name: String,
        pub subtitle: Option<String>,
        pub image: Option<String>,
    }
    key (location_type, id);
    roots (locations, location);
    relations {
        /// Items found here.
        drops: many location_drops.location_id = id, location_type = location_type;
    }
}
stored_table!(Location, locations, "location", key(location_type, id), update(name, subtitle, image), label name);

entity! {
    #[diesel(table_name = location_drops)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct LocationDrop {
        pub location_type: String,
        pub location_id: i64,
        pub item_id: i64,
    }
    key (location_type, location_id, item_id);
    roots (location_drops, location_drop);
    relations {
        location: one locations.id = location_id, location_type = location_type;
        item: one items.id = item_id;
    }
}
stored_table!(LocationDrop, location_drops, "location_drop", key(location_type, location_id, item_id), update());

/// The path of a location's detail page.
const DETAIL_PATH: &str = "/location.php";
links! {
    Item {
        /// Locations where this item is found.
        dropped_at: many location_drops.item_id = id;
    }
}

/// The request of a location's detail page.
pub fn detail_request(location_type: &str, id: i64) -> String {
    format!("{DETAIL_PATH}?type={location_type}&id={id}")
}

/// `(type, id)` of a `location.php?type=…&id=…` link, in either parameter order.
pub fn location_key(href: &str) -> Option<(String, i64)> {
    let location_type = query_value(href, "type")?;
    let id = query_value(href, "id")?.parse().ok()?;
    Some((location_type.to_owned(), id))
}

/// The locations the list page links to.
pub fn parse_list(page: &Html) -> Result<Vec<Location>, StageError> {
    let selector = "a.item-link[href^=\"location.php?\"]";
    let links = page.require(LinkTo("location.php").and(Class("item-link")), selector)?;
    let mut seen = BTreeSet::new();
    let mut rows = Vec::new();
    for link in links {
        let Some((location_type, id)) = link.attr("href").and_then(location_key) else { continue };
        if !seen.insert((location_type.clone(), id)) {
            continue;
        }
        let title = link.find(Class("item-title")).next();
        let name = title.map(own_text).unwrap_or_default();
        if name.is_empty() {
            return Err(page.layout_error(&format!("{selector} div.item-title (text)")));
        }
        let subtitle = title.and_then(|title| title.find(Name("span")).next()).map(|span| squash(&span.text()));
        let image = link
            .find(Class("item-media").descendant(Name("img")))
            .next()
            .and_then(|img| img.attr("src"))
            .map(str::to_owned);
        rows.push(Location { location_type, id, name, subtitle: subtitle.filter(|text| !text.is_empty()), image });
    }
    Ok(rows)
}

/// The item ids a detail page lists as found there.
pub fn parse_detail(page: &Html) -> Result<Vec<i64>, StageError> {
    let section = page.section("Things found here")?;
    let mut ids: Vec<i64> = section.find(LinkTo("item.php")).filter_map(item_link_id).collect();
    if ids.is_empty() {
        return Err(page.layout_error("div.content-block-title \"Things found here\" + * a[href^=\"item.php\"]"));
    }
    let mut seen = BTreeSet::new();
    ids.retain(|id| seen.insert(*id));
    Ok(ids)
}

#[derive(Default)]
pub struct Locations;

#[async_trait(?Send)]
impl Source for Locations {
    const NAME: &'static str = NAME;
    /// Daily, at a hashed time.
    const DEFAULT_SCHEDULE: &'static str = "H H H * * *";
    const TRANSFORM_VERSION: u32 = 1;
    const FANS_OUT: bool = true;
    const PAGE_KIND: &'static str = "location";

    fn requests(&self) -> Vec<String> {
        vec![LIST.to_owned()]
    }

    fn sample_requests(&self, _scale: u32) -> Vec<String> {
        let details = SAMPLE_LOCATIONS.iter().map(|(kind, id, _, _)| detail_request(kind, *id));
        self.requests().into_iter().chain(details).collect()
    }

    fn sample_page(&self, request: &SampleRequest) -> Option<SamplePage> {
        if request.asks_for(LIST) {
            return Some(SamplePage::html(sample_list_html()));
        }
        if request.path() != DETAIL_PATH {
            return None;
        }
        let id = request.param("id")?.parse().ok()?;
        sample_detail_html(request.param("type")?, id).map(SamplePage::html)
    }

    async fn fan_out(&self, pages: &[Page], _db: &Database) -> Result<Vec<String>, StageError> {
        let list = parse_list(&Html::parse(&pages[0]))?;
        Ok(list.iter().map(|location| detail_request(&location.location_type, location.id)).collect())
    }

    fn parse_fanned(&self, page: &Page, names: &Names) -> Result<Dataset, StageError> {
        let (location_type, location_id) = location_key(&page.request)
            .ok_or_else(|| StageError::BadInput(format!("{}: not a location page request", page.request)))?;
        let mut resolver = Resolver::new(names);
        let drops: Vec<LocationDrop> = parse_detail(&Html::parse(page))?
            .into_iter()
            .map(|item| LocationDrop {
                location_type: location_type.clone(),
                location_id,
                item_id: resolver.item_id(item),
            })
            .collect();
        Ok(Dataset::new()
            .page_table(drops, move |db| Box::pin(stored_drops(db, location_type, location_id)))
            .with_notes(resolver.notes()))
    }

    /// The listed locations, written before their pages' drops (which reference them).
    fn parse_fixed(&self, pages: &[Page], _names: &Names) -> Result<Option<Dataset>, StageError> {
        let list = parse_list(&Html::parse(&pages[0]))?;
        Ok(Some(Dataset::new().table(list, DeletePolicy::KeepAll)))
    }

    /// The end of the run: the list page's locations, and deletes of the drops of locations
    /// whose page was not asked for (the pages wrote their own drops).
    fn parse(&self, input: &SourceInput) -> Result<Dataset, StageError> {
        let list = parse_list(&Html::parse(&input.pages[0]))?;
        let requested = Arc::new(input.fan_out.requested.clone());
        Ok(Dataset::new().table(list, DeletePolicy::Replace).table(
            Vec::<LocationDrop>::new(),
            DeletePolicy::keep_where(move |row: &LocationDrop| {
                requested.contains(&detail_request(&row.location_type, row.location_id))
            }),
        ))
    }
}

/// The stored drops of one location's page.
async fn stored_drops(db: Database, location_type: String, location_id: i64) -> Result<Vec<LocationDrop>, DbError> {
    with_conn!(&db, readers, |conn| {
        location_drops::table
            .filter(location_drops::location_id.eq(location_id))
            .filter(location_drops::location_type.eq(&location_type))
            .select(LocationDrop::as_select())
            .load(conn)
            .await
            .map_err(DbError::Query)
    })
}

/// The locations of the generated sample upstream: (type, id, name, subtitle). Item and NPC
/// sample pages name them too.
pub const SAMPLE_LOCATIONS: [(&str, i64, &str, &str); 4] = [
    ("fishing", 1, "Quiet Pond", "A still freshwater pond"),
    ("fishing", 2, "Windy Bay", "Salt water and gulls"),
    ("explore", 1, "Hollow Woods", "Mossy and dim"),
    ("explore", 2, "Copper Hills", "Dusty trails"),
];

/// The sample location list: the fishing and the exploring locations.
fn sample_list_html() -> String {
    let mut page = navbar("Locations");
    for section in ["fishing", "explore"] {
        let title = if section == "fishing" { "Fishing Locations" } else { "Exploring Locations" };
        let _ = writeln!(
            page,
            "<div class=\"content-block-title\">{title}</div><div class=\"card\"><div class=\"list-block\"><ul>"
        );
        for (kind, id, name, subtitle) in SAMPLE_LOCATIONS.iter().filter(|location| location.0 == section) {
            let _ = writeln!(
                page,
                "<li><a href=\"location.php?type={kind}&id={id}\" class=\"item-link close-panel\"><div class=\"item-content\">\
                 <div class=\"item-media\"><img src=\"/img/items/{kind}{id}.png\" class=\"itemimg\"></div><div class=\"item-inner\">\
                 <div class=\"item-title\">{name}<br/><span style=\"font-size: 11px\">{subtitle}</span></div></div></div></a></li>"
            );
        }
        page.push_str("</ul></div></div>\n");
    }
    page + PAGE_END
}

/// The sample page of one location: six plain sample items found there.
fn sample_detail_html(kind: &str, id: i64) -> Option<String> {
    let (_, _, name, _) = SAMPLE_LOCATIONS.iter().find(|location| location.0 == kind && location.1 == id)?;
    let mut page = navbar(name);
    let _ = write!(page, "<img src=\"/img/items/{kind}{id}.png\" class=\"exploreimg\">\n<div class=\"content-block-title\">Things found here</div>\n<div class=\"card\"><div class=\"card-content-inner\"><div class=\"row no-gutter\">");
    for step in 0..6 {
        let (item_id, item_name) = plain_item(id as usize * 20 + step * 2 + usize::from(kind == "explore") * 200);
        let _ = write!(page, "<div class=\"col-25\"><a href='item.php?id={item_id}'><img class='itemimg'></a><br/>{item_name}<br/><span>1,204 / 1,204</span></div>");
    }
    Some(page + "</div></div></div>\n" + PAGE_END)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // The list gives type, id, name and subtitle; a drop page its item ids, once each.
    #[test]
    fn list_and_detail_pages() {
        let list = Html::from_text(
            LIST,
            r#"<ul><li><a href="location.php?type=fishing&id=1" class="item-link"><div class="item-content">
               <div class="item-media"><img src="/img/pond.png"></div><div class="item-inner">
               <div class="item-title">Small Pond<br/><span>Small freshwater pond</span></div></div></div></a>
               <li><a href="location.php?id=5&type=explore" class="item-link"><div class="item-title">Misty Forest</div></a></ul>"#,
        );
        let rows = parse_list(&list).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].name.as_str(), rows[0].subtitle.as_deref()), ("Small Pond", Some("Small freshwater pond")));
        assert_eq!((rows[1].location_type.as_str(), rows[1].id), ("explore", 5));
        let detail = Html::from_text(
            "/location.php?type=explore&id=5",
            r#"<div class="content-block-title">Things found here</div><div><a href='item.php?id=35'>Wood</a>
               <a href='item.php?id=43'>x</a><a href='item.php?id=35'>again</a></div>"#,
        );
        assert_eq!(parse_detail(&detail).unwrap(), [35, 43]);
    }

    // A page of another kind is a layout error naming the selector.
    #[test]
    fn another_page_is_a_layout_error() {
        let error = parse_list(&Html::from_text(LIST, "<div class='card'>Borgen</div>")).unwrap_err().to_string();
        assert!(error.contains("/locations.php") && error.contains("a.item-link"), "{error}");
    }
}
