//! The capture layout: a directory whose `routes.json` maps each upstream URL (a path plus the
//! query parameters that matter) to a file. `file://` upstreams and `hayloft replay` read it.

use std::collections::BTreeMap;
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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Routes {
    pub routes: Vec<Route>,
}

impl Routes {
    pub const FILE_NAME: &'static str = "routes.json";

    pub fn load(dir: &Path) -> Result<Self, RoutesError> {
        let path = dir.join(Self::FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(|reason| RoutesError::Read { path: path.clone(), reason })?;
        serde_json::from_str(&text).map_err(|reason| RoutesError::Parse { path, reason })
    }

    /// The capture answering `path` with `query`: every query key the route lists must match;
    /// among matches, the route listing the most keys wins (`/about.php?all=1` over `/about.php`).
    pub fn resolve<'a>(&'a self, path: &str, query: &[(String, String)]) -> Option<&'a Route> {
        self.routes
            .iter()
            .filter(|route| route.path.as_deref() == Some(path))
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
