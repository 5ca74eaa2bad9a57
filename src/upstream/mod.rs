//! Upstream access: where pipelines fetch from.
//!
//! * `http://` / `https://` — the live site (or a local replay): awc with one timeout over the
//!   whole exchange and an idle-read timeout, a maximum body size, bodies checked against their
//!   framing (see [`framing`]: complete or failed), retries with exponential backoff on
//!   connection errors, cut-short bodies, timeouts and 5xx, a
//!   per-host concurrency limit and rate limit shared by every pipeline and, split among the
//!   live nodes, by the whole cluster (see [`share`]), a User-Agent, and an
//!   optional auth cookie from `HAYLOFT_UPSTREAM_COOKIE` (never logged);
//! * `file:///dir/` — a capture directory laid out by its `routes.json` (see [`routes`]);
//! * `embedded` (the default) — generated sample data compiled into the binary, so Hayloft
//!   serves real-looking data with no network at all: the generated item list
//!   ([`demo_data`]) and every source's sample pages, which the pipelines provide (see
//!   [`demo_pages`]).

pub mod demo_data;
pub mod demo_pages;
pub mod framing;
pub mod replay;
pub mod routes;
pub mod share;

use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use awc::error::{PayloadError, SendRequestError};
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use demo_pages::SamplePages;
use routes::{split_request, Routes};
pub use share::ClusterShare;
use share::HostGate;

/// The environment variable holding a session cookie for the upstream, if it needs one.
pub const COOKIE_VARIABLE: &str = "HAYLOFT_UPSTREAM_COOKIE";

/// Politeness and safety settings for HTTP upstreams (`[upstream]` in the configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamSettings {
    /// Per request attempt: the whole exchange, from connecting to the body's last byte, so
    /// a server that trickles its answer cannot hold a run.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// The longest wait for the next bytes of a body; a stalled transfer fails this soon.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// A larger body fails the fetch instead of filling memory.
    pub max_body_bytes: usize,
    /// Attempts after the first, on connection errors, timeouts and 5xx answers.
    pub retries: usize,
    /// Requests in flight to one host, across all pipelines.
    pub concurrency: usize,
    /// Requests per second to one host, across all pipelines.
    pub rate_per_second: u32,
    pub user_agent: String,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(10),
            max_body_bytes: 32 * 1024 * 1024,
            retries: 3,
            concurrency: 4,
            rate_per_second: 5,
            user_agent: format!("hayloft/{} (small-footprint ETL)", env!("CARGO_PKG_VERSION")),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum UpstreamError {
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent a body larger than the {limit}-byte limit")]
    TooLarge { url: String, limit: usize },
    #[error("reading the answer of {url} failed: {reason}")]
    Body { url: String, reason: String },
    /// The body ended before its framing said it would (or the connection broke): worth
    /// another attempt, and never a body.
    #[error("the answer of {url} was cut short: {reason}")]
    Incomplete { url: String, reason: String },
    #[error("{url} sent nothing for {idle:?} in the middle of its answer")]
    Stalled { url: String, idle: Duration },
    #[error("no capture in {dir} answers {request} (see its routes.json)")]
    NotCaptured { dir: String, request: String },
    #[error("invalid upstream: {0}")]
    Invalid(String),
}

impl UpstreamError {
    /// Worth another attempt: the next one may well succeed.
    fn is_transient(&self) -> bool {
        match self {
            UpstreamError::Connect { .. }
            | UpstreamError::Timeout { .. }
            | UpstreamError::Incomplete { .. }
            | UpstreamError::Stalled { .. } => true,
            UpstreamError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A fetched body.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub url: String,
    pub body: Bytes,
    pub content_type: Option<String>,
}

/// Where data comes from. Cloning shares the HTTP client and the per-host limits.
#[derive(Clone)]
pub enum Upstream {
    Http(Rc<HttpUpstream>),
    /// A capture directory; its routes are read once, when the upstream is built.
    Files {
        dir: PathBuf,
        routes: Arc<Routes>,
        max_body: usize,
    },
    /// Generated on each fetch (a few milliseconds) rather than kept: two idle megabytes matter
    /// to a server whose whole footprint is meant to stay under twenty.
    Embedded(SamplePages),
}

pub struct HttpUpstream {
    base: String,
    client: awc::Client,
    settings: UpstreamSettings,
    cookie: Option<String>,
    gates: Mutex<HashMap<String, Arc<HostGate>>>,
    /// This node's part of the cluster-wide limits.
    share: Arc<ClusterShare>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Upstream::Http(http) => write!(f, "Upstream::Http({})", http.base),
            Upstream::Files { dir, .. } => write!(f, "Upstream::Files({})", dir.display()),
            Upstream::Embedded(_) => f.write_str("Upstream::Embedded"),
        }
    }
}

impl Upstream {
    /// Builds the upstream named by `url`: `embedded` (answering with `samples` besides the
    /// generated item list), `file:///dir/` or `http(s)://host/`, with the session cookie from
    /// [`COOKIE_VARIABLE`] if set. Must be called on the arbiter that will fetch (the HTTP client
    /// is thread-local).
    pub fn from_url(url: &str, settings: &UpstreamSettings, samples: &SamplePages) -> Result<Self, UpstreamError> {
        let cookie = std::env::var(COOKIE_VARIABLE).ok().filter(|cookie| !cookie.is_empty());
        Self::with_cookie(url, settings, samples, cookie)
    }

    /// As [`Upstream::from_url`], with an explicit session cookie for HTTP upstreams.
    pub fn with_cookie(
        url: &str,
        settings: &UpstreamSettings,
        samples: &SamplePages,
        cookie: Option<String>,
    ) -> Result<Self, UpstreamError> {
        let url = url.trim();
        if url.is_empty() || url == "embedded" {
            return Ok(Upstream::Embedded(samples.clone()));
        }
        if let Some(path) = url.strip_prefix("file://") {
            let dir = PathBuf::from(path);
            let routes = Routes::load(&dir).map_err(|error| UpstreamError::Invalid(error.to_string()))?;
            return Ok(Upstream::Files { dir, routes: Arc::new(routes), max_body: settings.max_body_bytes });
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(UpstreamError::Invalid(format!("{url:?}: expected embedded, file:///dir/ or http(s)://host/")));
        }
        let connector = awc::Connector::new().connector(framing::GuardedConnector::default());
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(settings.timeout)
            .add_default_header((awc::http::header::USER_AGENT, settings.user_agent.clone()))
            .finish();
        Ok(Upstream::Http(Rc::new(HttpUpstream {
            base: url.trim_end_matches('/').to_owned(),
            client,
            settings: settings.clone(),
            cookie,
            gates: Mutex::new(HashMap::new()),
            share: ClusterShare::alone(),
        })))
    }

    /// Holds this upstream's per-host limits for the whole cluster: this node takes only
    /// `share` of them. Call before cloning the upstream.
    pub fn shared_by(mut self, share: Arc<ClusterShare>) -> Self {
        if let Upstream::Http(http) = &mut self {
            match Rc::get_mut(http) {
                Some(http) => http.share = share,
                None => warn!("the upstream was cloned before its cluster share was set; it keeps the whole limits"),
            }
        }
        self
    }

    /// Fetches `request` (a path with its query, e.g. `/api.php?method=items`), refusing bodies
    /// over the configured `max_body_bytes`.
    pub async fn fetch(&self, request: &str) -> Result<Fetched, UpstreamError> {
        match self {
            Upstream::Http(http) => http.fetch(request).await,
            Upstream::Files { dir, routes, max_body } => {
                let (dir, routes, max_body) = (dir.clone(), routes.clone(), *max_body);
                let request = request.to_owned();
                tokio::task::spawn_blocking(move || read_capture(&dir, &routes, &request, max_body))
                    .await
                    .map_err(|error| UpstreamError::Invalid(format!("file reader failed: {error}")))?
            }
            Upstream::Embedded(samples) => {
                let url = format!("embedded:{request}");
                if request.trim_start_matches('/') == "api.php?method=items" {
                    let body = tokio::task::spawn_blocking(|| demo_data::items_body(1))
                        .await
                        .map_err(|error| UpstreamError::Invalid(format!("sample data generator failed: {error}")))?;
                    return Ok(Fetched { url, body, content_type: Some("application/json".to_owned()) });
                }
                let page = samples.page(request).ok_or_else(|| UpstreamError::NotCaptured {
                    dir: "the embedded sample data".to_owned(),
                    request: request.to_owned(),
                })?;
                Ok(Fetched { url, body: Bytes::from(page.body), content_type: Some(page.content_type.to_owned()) })
            }
        }
    }
}

fn read_capture(
    dir: &std::path::Path,
    routes: &Routes,
    request: &str,
    max_body: usize,
) -> Result<Fetched, UpstreamError> {
    let not_captured = || UpstreamError::NotCaptured { dir: dir.display().to_string(), request: request.to_owned() };
    let (path, query) = split_request(request);
    let route = routes.resolve(&path, &query).ok_or_else(not_captured)?;
    let file = dir.join(&route.file);
    let url = format!("file://{}", file.display());
    let size = std::fs::metadata(&file).map_err(|_| not_captured())?.len();
    if size > max_body as u64 {
        return Err(UpstreamError::TooLarge { url, limit: max_body });
    }
    let body =
        std::fs::read(&file).map_err(|error| UpstreamError::Body { url: url.clone(), reason: error.to_string() })?;
    Ok(Fetched { url, body: Bytes::from(body), content_type: Some(route.content_type.clone()) })
}

impl HttpUpstream {
    fn gate(&self, host: &str) -> Arc<HostGate> {
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        gates
            .entry(host.to_owned())
            .or_insert_with(|| {
                Arc::new(HostGate::new(self.settings.concurrency, self.settings.rate_per_second, self.share.clone()))
            })
            .clone()
    }

    async fn fetch(&self, request: &str) -> Result<Fetched, UpstreamError> {
        let url = format!("{}/{}", self.base, request.trim_start_matches('/'));
        let host = self.base.split("://").nth(1).unwrap_or_default().split('/').next().unwrap_or_default().to_owned();
        let gate = self.gate(&host);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(10))
            .with_max_times(self.settings.retries)
            .with_jitter();
        let attempt = || async {
            // Both limits are per host, shared by every pipeline fetching from it and, through
            // the share, by every node of the cluster.
            let _permit = gate.enter().await;
            self.fetch_once(&url).await
        };
        attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(UpstreamError::is_transient)
            .notify(
                |error, delay| warn!(%url, %error, retry_in_ms = delay.as_millis() as u64, "fetch failed, retrying"),
            )
            .await
    }

    /// One attempt, bounded as a whole by `timeout`.
    async fn fetch_once(&self, url: &str) -> Result<Fetched, UpstreamError> {
        let timeout = self.settings.timeout;
        tokio::time::timeout(timeout, self.exchange(url))
            .await
            .unwrap_or_else(|_| Err(UpstreamError::Timeout { url: url.to_owned(), timeout }))
    }

    async fn exchange(&self, url: &str) -> Result<Fetched, UpstreamError> {
        use futures::StreamExt as _;

        let mut request = self.client.get(url);
        if let Some(cookie) = &self.cookie {
            request = request.insert_header((awc::http::header::COOKIE, cookie.as_str()));
        }
        debug!(%url, "fetching");
        let mut response = request.send().await.map_err(|error| match error {
            SendRequestError::Timeout => UpstreamError::Timeout { url: url.to_owned(), timeout: self.settings.timeout },
            other => UpstreamError::Connect { url: url.to_owned(), reason: other.to_string() },
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(UpstreamError::Status { url: url.to_owned(), status: status.as_u16() });
        }
        let content_type = response
            .headers()
            .get(awc::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let announced = announced_length(response.headers());
        let limit = self.settings.max_body_bytes;
        if announced.is_some_and(|length| length > limit as u64) {
            return Err(UpstreamError::TooLarge { url: url.to_owned(), limit });
        }
        let mut body = bytes::BytesMut::with_capacity(announced.map_or(0, |length| length as usize));
        loop {
            let idle = self.settings.idle_timeout;
            let next = tokio::time::timeout(idle, response.next())
                .await
                .map_err(|_| UpstreamError::Stalled { url: url.to_owned(), idle })?;
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|error| payload_error(url, error))?;
            if body.len() + chunk.len() > limit {
                return Err(UpstreamError::TooLarge { url: url.to_owned(), limit });
            }
            body.extend_from_slice(&chunk);
        }
        // The framing guard checks plain HTTP on the wire; this also covers TLS connections.
        if let Some(announced) = announced.filter(|length| *length != body.len() as u64) {
            return Err(UpstreamError::Incomplete {
                url: url.to_owned(),
                reason: format!("{} of the {announced} body bytes announced arrived", body.len()),
            });
        }
        Ok(Fetched { url: url.to_owned(), body: body.freeze(), content_type })
    }
}

/// The length a response's body must have as awc hands it on: its `Content-Length`, unless it
/// is chunked (the header then means nothing) or compressed (awc decompresses it).
fn announced_length(headers: &awc::http::header::HeaderMap) -> Option<u64> {
    use awc::http::header::{CONTENT_ENCODING, TRANSFER_ENCODING};
    let compressed = headers
        .get(CONTENT_ENCODING)
        .is_some_and(|coding| !coding.to_str().is_ok_and(|coding| coding.trim().eq_ignore_ascii_case("identity")));
    if compressed || headers.contains_key(TRANSFER_ENCODING) {
        return None;
    }
    headers.get(awc::http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn payload_error(url: &str, error: PayloadError) -> UpstreamError {
    match error {
        PayloadError::Overflow => UpstreamError::Body { url: url.to_owned(), reason: error.to_string() },
        PayloadError::Incomplete(_) | PayloadError::Io(_) => {
            UpstreamError::Incomplete { url: url.to_owned(), reason: error.to_string() }
        }
        other => UpstreamError::Body { url: url.to_owned(), reason: other.to_string() },
    }
}
