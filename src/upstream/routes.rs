//! The capture layout: a directory whose `routes.json` maps each upstream URL (a path plus the
//! query parameters that matter) to a file. `file://` upstreams and `hayloft replay` read it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum RoutesError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: std::io::Error },
    #[error("{path} is not a valid routes file: {reason}")]
    Parse { path: PathBuf, reason: serde_json::Error },
}

/// One capture: which request it answers and where its body is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Route {
    pub file: String,
    /// The request path, e.g. `/api.php`; `None` for data that answers no URL.
    pub path: Option<String>,
    /// Query parameters that select this capture; other parameters are ignored.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub query: BTreeMap<String, String>,
    #[serde(default = "default_content_type")]
    pub content_type: String,
}

/// Captures that answer no URL carry `"query": null`.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::deserialize(deserializer)?.unwrap_or_default())
}

fn default_content_type() -> String {
    "application/octet-stream".to_owned()
}

/// The stored form of `routes.json`.
#[derive(Clone, Default, Serialize, Deserialize)]
struct RouteList {
    routes: Vec<Route>,
}

/// Every capture of a directory, indexed for look-up. A 100× sample holds over 100,000 item
/// pages on one path, so a scan of every route per request made the replay server, not the
/// servers it feeds, the bound of a benchmark.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "RouteList", into = "RouteList")]
pub struct Routes {
    routes: Vec<Route>,
    /// Positions in `routes`, by request path. Built once with the list, which is private so
    /// that the two cannot drift apart.
    by_path: HashMap<String, PathRoutes>,
}

/// The routes of one path: those that list no query key, and the others by their first query
/// pair (every match must carry that pair, so it is a complete candidate key).
#[derive(Debug, Clone, Default)]
struct PathRoutes {
    unconditional: Vec<usize>,
    by_first_pair: HashMap<String, HashMap<String, Vec<usize>>>,
}

impl From<RouteList> for Routes {
    fn from(list: RouteList) -> Self {
        Self::new(list.routes)
    }
}

impl From<Routes> for RouteList {
    fn from(routes: Routes) -> Self {
        Self { routes: routes.routes }
    }
}

impl Routes {
    pub const FILE_NAME: &'static str = "routes.json";

    pub fn new(routes: Vec<Route>) -> Self {
        let mut by_path: HashMap<String, PathRoutes> = HashMap::new();
        for (position, route) in routes.iter().enumerate() {
            let Some(path) = &route.path else { continue };
            let on_path = by_path.entry(path.clone()).or_default();
            match route.query.iter().next() {
                None => on_path.unconditional.push(position),
                Some((key, value)) => on_path
                    .by_first_pair
                    .entry(key.clone())
                    .or_default()
                    .entry(value.clone())
                    .or_default()
                    .push(position),
            }
        }
        Self { routes, by_path }
    }

    pub fn load(dir: &Path) -> Result<Self, RoutesError> {
        let path = dir.join(Self::FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(|reason| RoutesError::Read { path: path.clone(), reason })?;
        serde_json::from_str(&text).map_err(|reason| RoutesError::Parse { path, reason })
    }

    /// Every capture, in file order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The capture answering `path` with `query`: every query key the route lists must match;
    /// among matches, the route listing the most keys wins (`/about.php?all=1` over `/about.php`),
    /// and among equals the last in file order.
    pub fn resolve<'a>(&'a self, path: &str, query: &[(String, String)]) -> Option<&'a Route> {
        let on_path = self.by_path.get(path)?;
        let mut candidates = on_path.unconditional.clone();
        for (key, value) in query {
            if let Some(found) = on_path.by_first_pair.get(key).and_then(|values| values.get(value)) {
                candidates.extend_from_slice(found);
            }
        }
        // File order, so that ties resolve as they always have.
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .filter_map(|position| self.routes.get(position))
            .filter(|route| route.query.iter().all(|(key, value)| query.iter().any(|(k, v)| k == key && v == value)))
            .max_by_key(|route| route.query.len())
    }
}

/// Splits `/api.php?method=items&x=1` into its path and decoded query pairs.
pub fn split_request(request: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = request.split_once('?').unwrap_or((request, ""));
    let path = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
    let pairs = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect();
    (path, pairs)
}

/// Percent-decoding for query parameters (`+` is a space).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        index += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn routes() -> Routes {
        serde_json::from_str(
            r#"{"routes": [
                {"file": "about.html", "path": "/about.php", "query": {}, "content_type": "text/html"},
                {"file": "about/all.html", "path": "/about.php", "query": {"all": "1"}, "content_type": "text/html"},
                {"file": "api/items.json", "path": "/api.php", "query": {"method": "items"}, "content_type": "application/json"},
                {"file": "_seed/x.json", "path": null, "query": null}
            ]}"#,
        )
        .unwrap()
    }

    // The most specific route wins and unlisted parameters are ignored.
    #[test]
    fn resolves_the_most_specific_route() {
        let routes = routes();
        let (path, query) = split_request("/about.php?all=1&cachebuster=123");
        assert_eq!(routes.resolve(&path, &query).unwrap().file, "about/all.html");
        let (path, query) = split_request("/about.php");
        assert_eq!(routes.resolve(&path, &query).unwrap().file, "about.html");
        let (path, query) = split_request("api.php?method=items");
        assert_eq!(routes.resolve(&path, &query).unwrap().file, "api/items.json");
        let (path, query) = split_request("/api.php?method=npcs");
        assert!(routes.resolve(&path, &query).is_none());
        let (path, query) = split_request("/nowhere.php");
        assert!(routes.resolve(&path, &query).is_none());
    }

    // The index answers exactly as a scan of every route would, for requests that hit, miss,
    // carry extra or repeated parameters, and for routes that list several keys.
    #[test]
    fn the_index_agrees_with_a_scan() {
        let mut list = Vec::new();
        for id in 0..50 {
            list.push(Route {
                file: format!("item/{id}.html"),
                path: Some("/item.php".into()),
                query: BTreeMap::from([("id".into(), id.to_string())]),
                content_type: "text/html".into(),
            });
        }
        for (file, query) in [
            ("item.html", vec![]),
            ("item/7-all.html", vec![("id", "7"), ("all", "1")]),
            ("item/7-again.html", vec![("id", "7")]),
            ("a/b.html", vec![("a", "1"), ("b", "2")]),
        ] {
            list.push(Route {
                file: file.into(),
                path: Some("/item.php".into()),
                query: query.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
                content_type: "text/html".into(),
            });
        }
        let routes = Routes::new(list.clone());
        let scan = |path: &str, query: &[(String, String)]| {
            list.iter()
                .filter(|route| route.path.as_deref() == Some(path))
                .filter(|route| {
                    route.query.iter().all(|(key, value)| query.iter().any(|(k, v)| k == key && v == value))
                })
                .max_by_key(|route| route.query.len())
                .map(|route| route.file.clone())
        };
        for request in [
            "/item.php?id=3",
            "/item.php?id=7",
            "/item.php?id=7&all=1",
            "/item.php?all=1&id=7&id=8",
            "/item.php?id=99",
            "/item.php",
            "/item.php?b=2&a=1",
            "/item.php?a=1",
            "/other.php?id=3",
        ] {
            let (path, query) = split_request(request);
            assert_eq!(routes.resolve(&path, &query).map(|route| route.file.clone()), scan(&path, &query), "{request}");
        }
        assert_eq!(routes.resolve("/item.php", &split_request("/item.php?id=7").1).unwrap().file, "item/7-again.html");
    }

    // The file written back reads as the same routes.
    #[test]
    fn routes_round_trip_through_their_file_form() {
        let routes = routes();
        let text = serde_json::to_string(&routes).unwrap();
        let again: Routes = serde_json::from_str(&text).unwrap();
        assert_eq!(again.routes(), routes.routes());
        assert!(text.starts_with(r#"{"routes":["#));
    }

    // Query values are percent-decoded.
    #[test]
    fn query_values_are_decoded() {
        let (_, query) = split_request("/x.php?name=Cpt%20Thomas&q=a+b&bad=%zz");
        assert_eq!(
            query,
            [("name".into(), "Cpt Thomas".into()), ("q".into(), "a b".into()), ("bad".into(), "%zz".into())]
        );
    }
}
