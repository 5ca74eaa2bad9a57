//! The shape every page-based source shares: fetch its pages (a fixed list, then optionally a
//! fan-out derived from them or from stored data) → parse them into a [`Dataset`] → load it.
//! A source supplies only what differs — its requests, its parser, its tables — through
//! [`Source`]; [`build`] wires it into a supervised extractor → transformer → loader chain.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::join_all;
use hayloft_actors::pipeline::{
    pipeline, Extract, Load, LoadReport, PipelineDeps, PipelineHandle, RunContext, StageCounters, StageError, Transform,
};
use hayloft_actors::storage::StorageFailure;
use hayloft_actors::supervisor::ChildSpec;
use sha2::{Digest, Sha256};

use super::common::{stored_fingerprint, unchanged_report, DeleteGuard};
use super::names::Names;
use super::table::{load_dataset, Dataset};
use super::BuildParts;
use crate::db::outbox::Announcer;
use crate::db::Database;
use crate::upstream::demo_pages::{SamplePage, SampleRequest};
use crate::upstream::Upstream;

/// One fetched page.
#[derive(Debug, Clone)]
pub struct Page {
    /// The request as the source wrote it (`/location.php?type=explore&id=5`).
    pub request: String,
    pub url: String,
    pub body: Bytes,
}

impl Page {
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// A fan-out page that could not be fetched; the run reports it and carries on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageFailure {
    pub request: String,
    pub error: String,
}

/// Everything a parser gets.
pub struct SourceInput {
    /// The fixed pages, in the order of [`Source::requests`]; every one was fetched.
    pub pages: Vec<Page>,
    /// The fan-out pages that were fetched, in request order.
    pub fanned: Vec<Page>,
    /// The fan-out pages that were not.
    pub failures: Vec<PageFailure>,
    /// Stored items and NPCs, for resolving names.
    pub names: Names,
}

/// One upstream source.
#[async_trait(?Send)]
pub trait Source: Send + Sync + 'static {
    /// The pipeline's name.
    const NAME: &'static str;
    /// Its schedule when the configuration names none.
    const DEFAULT_SCHEDULE: &'static str;
    /// The time zone its default schedule is meant in, when it is not the server's.
    const DEFAULT_TIME_ZONE: Option<&'static str> = None;
    /// Bump when the parser changes, so unchanged pages are parsed again.
    const TRANSFORM_VERSION: u32;
    /// Whether the parser resolves NPCs (not only items): then a change of the stored NPCs
    /// makes unchanged pages be read again too.
    const RESOLVES_NPCS: bool = false;

    /// Pages fetched on every run; failing to fetch any fails the run.
    fn requests(&self) -> Vec<String>;

    /// Pages to fetch next, found in the fixed pages or the stored data (detail pages). Each may
    /// fail on its own: the parser is told which did.
    async fn fan_out(&self, _pages: &[Page], _db: &Database) -> Result<Vec<String>, StageError> {
        Ok(Vec::new())
    }

    /// Turns the pages into rows. Runs on a blocking thread.
    fn parse(&self, input: &SourceInput) -> Result<Dataset, StageError>;

    /// The requests the generated sample upstream answers for this source, fan-out included,
    /// in the order `hayloft demo-data` lists them.
    fn sample_requests(&self) -> Vec<String> {
        self.requests()
    }

    /// This source's page of the generated sample upstream answering `request` (invented
    /// content in the game's shapes, naming the generated items), so a server with no upstream
    /// loads every pipeline; `None` when the request is not one of this source's.
    fn sample_page(&self, request: &SampleRequest) -> Option<SamplePage>;
}

/// Today in game time (the game runs on US Central time).
pub fn game_today() -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&chrono_tz::America::Chicago).date_naive()
}

/// The fingerprint of everything a run read: the same pages (and the same failed pages) read by
/// the same parser version against the same stored names give the same fingerprint.
fn fingerprint_pages(
    version: u32,
    names: &[u8; 32],
    pages: &[Page],
    fanned: &[Page],
    failures: &[PageFailure],
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(version.to_le_bytes());
    hasher.update(names);
    for page in pages.iter().chain(fanned) {
        hasher.update(page.request.as_bytes());
        hasher.update((page.body.len() as u64).to_le_bytes());
        hasher.update(&page.body);
    }
    for failure in failures {
        hasher.update(b"failed:");
        hasher.update(failure.request.as_bytes());
        hasher.update(failure.error.as_bytes());
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

pub enum Fetched {
    Unchanged { fingerprint: String },
    Fresh { input: Box<SourceInput>, fingerprint: String },
}

pub enum Parsed {
    Unchanged { fingerprint: String },
    Fresh { dataset: Dataset, fingerprint: String },
}

pub struct FetchSource<S> {
    source: Arc<S>,
    upstream: Upstream,
    db: Database,
}

async fn fetch_page(upstream: &Upstream, request: String) -> Result<Page, PageFailure> {
    match upstream.fetch(&request).await {
        Ok(fetched) => Ok(Page { request, url: fetched.url, body: fetched.body }),
        Err(error) => Err(PageFailure { request, error: error.to_string() }),
    }
}

#[async_trait(?Send)]
impl<S: Source> Extract for FetchSource<S> {
    type Output = Fetched;

    async fn extract(&self, _run: &RunContext, counters: &StageCounters) -> Result<Fetched, StageError> {
        let requests = self.source.requests();
        // The upstream's per-host gate keeps these within the concurrency and rate limits.
        let mut pages = Vec::with_capacity(requests.len());
        for result in join_all(requests.into_iter().map(|request| fetch_page(&self.upstream, request))).await {
            pages.push(result.map_err(|failure| StageError::Upstream(failure.error))?);
        }
        let more = self.source.fan_out(&pages, &self.db).await?;
        let mut fanned = Vec::with_capacity(more.len());
        let mut failures = Vec::new();
        for result in join_all(more.into_iter().map(|request| fetch_page(&self.upstream, request))).await {
            match result {
                Ok(page) => fanned.push(page),
                Err(failure) => failures.push(failure),
            }
        }
        counters.emitted((pages.len() + fanned.len()) as u64);
        counters.dropped(failures.len() as u64);
        let database = |error: crate::db::DbError| StageError::Database(StorageFailure::new(error));
        // Names are part of the input: a name that did not resolve is retried once the stored
        // items (or NPCs) change, even if the pages did not.
        let names = Names::load(&self.db).await.map_err(database)?;
        let fingerprint =
            fingerprint_pages(S::TRANSFORM_VERSION, &names.digest(S::RESOLVES_NPCS), &pages, &fanned, &failures);
        if stored_fingerprint(&self.db, S::NAME).await.map_err(database)?.as_deref() == Some(fingerprint.as_str()) {
            return Ok(Fetched::Unchanged { fingerprint });
        }
        Ok(Fetched::Fresh { input: Box::new(SourceInput { pages, fanned, failures, names }), fingerprint })
    }
}

pub struct ParseSource<S> {
    source: Arc<S>,
}

impl<S: Source> Transform for ParseSource<S> {
    type Input = Fetched;
    type Output = Parsed;

    fn transform(&self, input: Fetched, _run: &RunContext, counters: &StageCounters) -> Result<Parsed, StageError> {
        let (input, fingerprint) = match input {
            Fetched::Unchanged { fingerprint } => return Ok(Parsed::Unchanged { fingerprint }),
            Fetched::Fresh { input, fingerprint } => (input, fingerprint),
        };
        let mut dataset = self.source.parse(&input)?;
        if !input.failures.is_empty() {
            dataset.notes.insert(0, failures_note(&input.failures));
        }
        counters.emitted(dataset.rows() as u64);
        counters.dropped(dataset.dropped);
        Ok(Parsed::Fresh { dataset, fingerprint })
    }
}

/// How many pages failed, and the first few of them with their errors.
pub fn failures_note(failures: &[PageFailure]) -> String {
    const SHOWN: usize = 5;
    let shown: Vec<String> =
        failures.iter().take(SHOWN).map(|failure| format!("{} ({})", failure.request, failure.error)).collect();
    let more = if failures.len() > SHOWN { format!(" and {} more", failures.len() - SHOWN) } else { String::new() };
    format!("{} pages failed and were skipped, their stored rows kept: {}{more}", failures.len(), shown.join("; "))
}

pub struct StoreSource {
    name: &'static str,
    db: Database,
    guard: DeleteGuard,
    announcer: Option<Arc<dyn Announcer>>,
}

#[async_trait(?Send)]
impl Load for StoreSource {
    type Input = Parsed;

    async fn load(&self, input: Parsed, run: &RunContext, _counters: &StageCounters) -> Result<LoadReport, StageError> {
        match input {
            Parsed::Unchanged { fingerprint } => Ok(unchanged_report(&fingerprint)),
            Parsed::Fresh { dataset, fingerprint } => {
                let announcer = self.announcer.as_deref();
                load_dataset(&self.db, dataset, fingerprint, run, &self.guard, self.name, announcer).await
            }
        }
    }
}

/// The supervised chain of one source.
pub fn build<S: Source>(source: S, parts: &BuildParts<'_>, deps: PipelineDeps) -> (ChildSpec, PipelineHandle) {
    let source = Arc::new(source);
    let fetch = FetchSource { source: source.clone(), upstream: parts.upstream.clone(), db: parts.db.clone() };
    let store = StoreSource {
        name: S::NAME,
        db: parts.db.clone(),
        guard: parts.settings.delete_guard,
        announcer: parts.announcer.clone(),
    };
    pipeline(S::NAME, fetch, ParseSource { source }, store, deps)
}

/// Parses `pages` (each answering the matching request of `source`) without a database: for
/// unit tests and benchmarks of a parser.
pub fn parse_pages<S: Source>(
    source: &S,
    pages: Vec<Page>,
    fanned: Vec<Page>,
    names: Names,
) -> Result<Dataset, StageError> {
    source.parse(&SourceInput { pages, fanned, failures: Vec::new(), names })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(request: &str, body: &'static str) -> Page {
        Page { request: request.to_owned(), url: request.to_owned(), body: Bytes::from_static(body.as_bytes()) }
    }

    // Same pages, failures, names and version: same fingerprint; any difference changes it.
    #[test]
    fn page_fingerprints_cover_pages_failures_and_version() {
        let pages = [page("/a", "x"), page("/b", "y")];
        let failure = PageFailure { request: "/c".to_owned(), error: "404".to_owned() };
        let names = [0; 32];
        let base = fingerprint_pages(1, &names, &pages, &[], std::slice::from_ref(&failure));
        assert_eq!(base, fingerprint_pages(1, &names, &pages, &[], std::slice::from_ref(&failure)));
        assert_ne!(base, fingerprint_pages(2, &names, &pages, &[], std::slice::from_ref(&failure)));
        assert_ne!(base, fingerprint_pages(1, &[1; 32], &pages, &[], std::slice::from_ref(&failure)));
        assert_ne!(base, fingerprint_pages(1, &names, &pages, &[], &[]));
        assert_ne!(base, fingerprint_pages(1, &names, &[page("/a", "xy"), page("/b", "")], &[], &[failure]));
    }

    // The failures note names the first pages and counts the rest.
    #[test]
    fn failures_note_is_short() {
        let failures: Vec<PageFailure> =
            (0..8).map(|id| PageFailure { request: format!("/item.php?id={id}"), error: "404".to_owned() }).collect();
        let note = failures_note(&failures);
        assert!(note.starts_with("8 pages failed") && note.ends_with("and 3 more"), "{note}");
    }
}
