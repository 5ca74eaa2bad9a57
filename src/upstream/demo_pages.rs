//! The sample pages of the embedded upstream: what they are made of and how they are found.
//!
//! Each source generates its own sample pages next to its parser (invented content in the
//! game's markup, naming the generated items of [`crate::upstream::demo_data`] by id and by
//! name), and the pipeline registry hands them in as [`SampleSource`]s. Here is only what they
//! share — requests, pages, the game's page chrome — and [`SamplePages`], which the embedded
//! upstream asks for one page per request and `hayloft demo-data` asks for all of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::upstream::routes::{split_request, Route};

pub const HTML: &str = "text/html; charset=utf-8";
pub const JSON: &str = "application/json";

/// The part of every HTML sample page before its content: the game's navigation bar and page
/// wrappers, which the parsers read the title from.
pub fn navbar(title: &str) -> String {
    format!(
        "<div class=\"navbar\"><div class=\"navbar-inner\"><div class=\"center sliding\">{title}</div></div></div>\n\
         <div class=\"pages\"><div class=\"page\"><div class=\"page-content\"><div class=\"content-block\">\n"
    )
}

/// Closes what [`navbar`] opened.
pub const PAGE_END: &str = "</div></div></div></div>\n";

/// A request as a sample page generator reads it: the path and the decoded query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRequest {
    path: String,
    query: Vec<(String, String)>,
}

impl SampleRequest {
    pub fn parse(request: &str) -> Self {
        let (path, query) = split_request(request);
        Self { path, query }
    }

    /// The path, with its leading `/` (`/location.php`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The value of the query parameter `key`, if the request has it.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str())
    }

    /// Whether this asks for the page `request` names: the same path, and every parameter of
    /// `request` with the same value (others, such as a cache buster, do not matter).
    pub fn asks_for(&self, request: &str) -> bool {
        let (path, query) = split_request(request);
        path == self.path && query.iter().all(|(key, value)| self.param(key) == Some(value.as_str()))
    }
}

/// One generated page and its content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplePage {
    pub body: String,
    pub content_type: &'static str,
}

impl SamplePage {
    pub fn html(body: String) -> Self {
        Self { body, content_type: HTML }
    }

    pub fn json(body: String) -> Self {
        Self { body, content_type: JSON }
    }
}

/// One source's sample pages, as its pipeline provides them.
#[derive(Debug, Clone, Copy)]
pub struct SampleSource {
    /// Every request the sample answers (the fixed pages and the fan-out they lead to), in the
    /// order `hayloft demo-data` lists them, for an item list of this scale.
    pub requests: fn(u32) -> Vec<String>,
    /// The page answering a request; `None` when the request is not one of this source's.
    pub page: fn(&SampleRequest) -> Option<SamplePage>,
}

/// Every source's sample pages. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct SamplePages {
    sources: Arc<[SampleSource]>,
}

impl SamplePages {
    pub fn new(sources: impl IntoIterator<Item = SampleSource>) -> Self {
        Self { sources: sources.into_iter().collect() }
    }

    pub fn sources(&self) -> &[SampleSource] {
        &self.sources
    }

    /// The sample page answering `request`; `None` when no source has one.
    pub fn page(&self, request: &str) -> Option<SamplePage> {
        let request = SampleRequest::parse(request);
        self.sources.iter().find_map(|source| (source.page)(&request))
    }

    /// Every sample page as a route and its body, source by source, for writing a capture
    /// directory whose item list is `scale` times the real one.
    pub fn all(&self, scale: u32) -> Vec<(Route, String)> {
        self.sources
            .iter()
            .flat_map(|source| (source.requests)(scale))
            .filter_map(|request| {
                let SamplePage { body, content_type } = self.page(&request)?;
                Some((route(&request, content_type), body))
            })
            .collect()
    }
}

/// Where a capture directory keeps the page answering `request`: `api/<method>.json` for the
/// API, `<page>.html` for a page without a query, `<page>/<values…>.html` for one with.
fn route(request: &str, content_type: &'static str) -> Route {
    let (path, query) = split_request(request);
    let query: BTreeMap<String, String> = query.into_iter().collect();
    // `/api/quests/` keeps its page in `api/quests.json`.
    let stem = path.trim_start_matches('/').trim_end_matches('/').trim_end_matches(".php").to_owned();
    let extension = if content_type == JSON { "json" } else { "html" };
    let file = match (stem.as_str(), query.is_empty()) {
        ("api", _) => format!("api/{}.{extension}", query.get("method").map_or("", String::as_str)),
        (_, true) => format!("{stem}.{extension}"),
        (_, false) => format!("{stem}/{}.{extension}", query.values().cloned().collect::<Vec<_>>().join("/")),
    };
    Route { file, path: Some(path), query, content_type: content_type.to_owned() }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pages(request: &SampleRequest) -> Option<SamplePage> {
        if request.asks_for("/api.php?method=things") {
            return Some(SamplePage::json("[]".to_owned()));
        }
        match (request.path(), request.param("id")) {
            ("/thing.php", Some(id)) => Some(SamplePage::html(format!("thing {id}"))),
            ("/things.php", None) => Some(SamplePage::html("things".to_owned())),
            _ => None,
        }
    }

    fn requests(_scale: u32) -> Vec<String> {
        ["/api.php?method=things", "/things.php", "/thing.php?id=1", "/thing.php?id=2", "/missing.php"]
            .map(str::to_owned)
            .to_vec()
    }

    // A request finds its source's page whatever else it carries; every listed request with a
    // page gets a file of its own, named after its path and query.
    #[test]
    fn pages_are_found_by_request_and_filed_by_route() {
        let samples = SamplePages::new([SampleSource { requests, page: pages }]);
        assert_eq!(samples.page("/thing.php?id=7&cachebuster=1").unwrap().body, "thing 7");
        assert!(samples.page("/thing.php").is_none());
        assert!(samples.page("/api.php?method=others").is_none());
        assert!(samples.page("/api.php?cachebuster=1&method=things").is_some());
        let files: Vec<String> = samples.all(1).into_iter().map(|(route, _)| route.file).collect();
        assert_eq!(files, ["api/things.json", "things.html", "thing/1.html", "thing/2.html"]);
        assert!(SamplePages::default().page("/things.php").is_none());
    }
}
