//! The shape every page-based source shares: fetch its pages (a fixed list, then optionally a
//! fan-out derived from them or from stored data) → parse them into a [`Dataset`] → load it.
//! A source supplies only what differs — its requests, its parser, its tables — through
//! [`Source`]; [`build`] wires it into a supervised extractor → transformer → loader chain.
//!
//! A source that fans out ([`Source::FANS_OUT`]: a page per item, per location) does not fetch
//! its fan-out itself: its run writes one task row per page ([`crate::db::tasks`]), every
//! node's [`super::page_worker::PageWorker`] takes batches of them and writes each page's rows
//! on its own ([`Source::parse_fanned`]), and the run waits until none is left, then loads
//! what its fixed pages give and deletes the rows of pages no longer asked for.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::join_all;
use hayloft_actors::ledger::{RunCounts, Trigger};
use hayloft_actors::pipeline::{
    pipeline, Extract, Load, LoadReport, PipelineDeps, PipelineHandle, RunContext, StageCounters, StageError, Transform,
};
use hayloft_actors::supervisor::ChildSpec;
use sha2::{Digest, Sha256};

use super::common::{stored_fingerprint, unchanged_report, DeleteGuard};
use super::names::Names;
use super::table::{load_dataset, stage_error, Dataset};
use super::BuildParts;
use crate::db::outbox::Announcer;
use crate::db::{tasks, Database};
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

/// What became of a fan-out run's pages, for the end of the run.
#[derive(Debug, Clone, Default)]
pub struct FanOutResult {
    /// Every page the run asked for, written or failed: the stored rows of any other page are
    /// deleted at the end.
    pub requested: HashSet<String>,
    /// The pages that could not be fetched; their stored rows stay.
    pub failures: Vec<PageFailure>,
    /// The pages that were fetched but could not be read; their stored rows stay too.
    pub unreadable: Vec<PageFailure>,
    /// What the pages' own writes counted.
    pub written: RunCounts,
    /// What the pages' parsers noted, each note after its page's request.
    pub notes: Vec<String>,
}

/// Everything a parser gets.
pub struct SourceInput {
    /// The fixed pages, in the order of [`Source::requests`]; every one was fetched.
    pub pages: Vec<Page>,
    /// A fan-out source's pages, already written one by one (empty for other sources).
    pub fan_out: FanOutResult,
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

    /// Whether the source fans out: its [`Source::fan_out`] pages become shared tasks, each
    /// loaded on its own by [`Source::parse_fanned`].
    const FANS_OUT: bool = false;
    /// What its fan-out pages are called in reports (`item` pages).
    const PAGE_KIND: &'static str = "fan-out";

    /// Pages fetched on every run; failing to fetch any fails the run.
    fn requests(&self) -> Vec<String>;

    /// Pages to fetch next, found in the fixed pages or the stored data (detail pages). Each may
    /// fail on its own: the end of the run is told which did.
    async fn fan_out(&self, _pages: &[Page], _db: &Database) -> Result<Vec<String>, StageError> {
        Ok(Vec::new())
    }

    /// Turns one fan-out page into its rows, each table added with [`Dataset::page_table`]
    /// (the page is the authority for those stored rows alone). Runs on a blocking thread, on
    /// whichever node took the page.
    fn parse_fanned(&self, page: &Page, _names: &Names) -> Result<Dataset, StageError> {
        Err(StageError::BadInput(format!("{} does not fan out, yet was handed {}", Self::NAME, page.request)))
    }

    /// A fan-out source's rows from its fixed pages that its fan-out pages' rows reference (the
    /// locations its location pages' drops belong to): written before the pages are shared
    /// out, without deleting anything (the end of the run does that, in [`Source::parse`]).
    fn parse_fixed(&self, _pages: &[Page], _names: &Names) -> Result<Option<Dataset>, StageError> {
        Ok(None)
    }

    /// Turns the pages into rows. Runs on a blocking thread. For a fan-out source this is the
    /// end of the run: the fixed pages' rows, and deletes of the rows of pages no longer asked
    /// for ([`SourceInput::fan_out`]).
    fn parse(&self, input: &SourceInput) -> Result<Dataset, StageError>;

    /// The requests the generated sample upstream answers for this source, fan-out included,
    /// in the order `hayloft demo-data` lists them, for an item list `scale` times the real
    /// one (a fan-out over items has a page per item at every scale).
    fn sample_requests(&self, _scale: u32) -> Vec<String> {
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
fn fingerprint_pages(version: u32, names: &[u8; 32], pages: &[Page], failures: &[PageFailure]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(version.to_le_bytes());
    hasher.update(names);
    for page in pages {
        hasher.update(page.request.as_bytes());
        hasher.update((page.body.len() as u64).to_le_bytes());
        hasher.update(&page.body);
    }
    for failure in failures {
        hasher.update(b"failed:");
        hasher.update(failure.request.as_bytes());
        hasher.update(failure.error.as_bytes());
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The fingerprint of one fan-out page: its body, read by this parser version against these
/// stored names.
pub fn fingerprint_page(version: u32, names: &[u8; 32], page: &Page) -> String {
    fingerprint_pages(version, names, std::slice::from_ref(page), &[])
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
    /// A fan-out run fails when no page finishes for this long.
    stall_after: Duration,
}

/// How often a fan-out run looks at its tasks while it waits.
const FAN_OUT_POLL: Duration = Duration::from_millis(250);

pub(crate) async fn fetch_page(upstream: &Upstream, request: String) -> Result<Page, PageFailure> {
    match upstream.fetch(&request).await {
        Ok(fetched) => Ok(Page { request, url: fetched.url, body: fetched.body }),
        Err(error) => Err(PageFailure { request, error: error.to_string() }),
    }
}

#[async_trait(?Send)]
impl<S: Source> Extract for FetchSource<S> {
    type Output = Fetched;

    async fn extract(&self, run: &RunContext, counters: &StageCounters) -> Result<Fetched, StageError> {
        let requests = self.source.requests();
        // The upstream's per-host gate keeps these within the concurrency and rate limits.
        let mut pages = Vec::with_capacity(requests.len());
        for result in join_all(requests.into_iter().map(|request| fetch_page(&self.upstream, request))).await {
            pages.push(result.map_err(|failure| StageError::Upstream(failure.error))?);
        }
        // Names are part of the input: a name that did not resolve is retried once the stored
        // items (or NPCs) change, even if the pages did not.
        let names = Names::load(&self.db).await.map_err(stage_error)?;
        let fan_out =
            if S::FANS_OUT { self.fan_out(&pages, &names, run, counters).await? } else { FanOutResult::default() };
        counters.emitted(pages.len() as u64);
        let fingerprint = fingerprint_pages(S::TRANSFORM_VERSION, &names.digest(S::RESOLVES_NPCS), &pages, &[]);
        // A fan-out run's pages were written already; its end always compares with what is
        // stored (its deletes depend on which pages were asked for, not on the fixed pages).
        if !S::FANS_OUT
            && stored_fingerprint(&self.db, S::NAME).await.map_err(stage_error)?.as_deref()
                == Some(fingerprint.as_str())
        {
            return Ok(Fetched::Unchanged { fingerprint });
        }
        Ok(Fetched::Fresh { input: Box::new(SourceInput { pages, fan_out, names }), fingerprint })
    }
}

impl<S: Source> FetchSource<S> {
    /// Writes the run's fan-out pages as tasks (or takes over those of the attempt this run
    /// retries), waits until every one is written or failed — by any node — and sums them up.
    async fn fan_out(
        &self,
        pages: &[Page],
        names: &Names,
        run: &RunContext,
        counters: &StageCounters,
    ) -> Result<FanOutResult, StageError> {
        let claim = &run.claim;
        if let Some(parents) = self.source.parse_fixed(pages, names)? {
            // The fingerprint is rewritten by the end of the run.
            let guard = DeleteGuard::default();
            load_dataset(&self.db, parents, String::new(), run, &guard, S::NAME, None).await?;
        }
        let adopted = if run.trigger == Trigger::Recovery {
            tasks::adopt(&self.db, claim, S::NAME).await.map_err(stage_error)?
        } else {
            tasks::discard_others(&self.db, claim, S::NAME).await.map_err(stage_error)?;
            0
        };
        let total = if adopted > 0 {
            tracing::info!(
                pipeline = S::NAME,
                run_id = run.run_id,
                pages = adopted,
                "took over the pages of the attempt this run retries"
            );
            adopted
        } else {
            let requests = self.source.fan_out(pages, &self.db).await?;
            if requests.is_empty() {
                // Nothing to ask for is not "every page gone": the end of the run would delete
                // every stored row.
                return Err(StageError::BadInput(format!(
                    "{} found no {} pages to fetch; the stored rows are kept",
                    S::NAME,
                    S::PAGE_KIND
                )));
            }
            tasks::create(&self.db, claim, S::NAME, &requests).await.map_err(stage_error)?
        };
        tracing::info!(pipeline = S::NAME, run_id = run.run_id, pages = total, "fan-out pages queued for every node");
        let mut finished = 0;
        let mut progressed_at = Instant::now();
        loop {
            let progress = tasks::progress(&self.db, claim).await.map_err(stage_error)?;
            if progress.open() == 0 {
                break;
            }
            if progress.finished() > finished {
                finished = progress.finished();
                progressed_at = Instant::now();
            } else if progressed_at.elapsed() >= self.stall_after {
                return Err(StageError::Upstream(format!(
                    "no fan-out page was written for {:?}: {} of {} pages are still open",
                    self.stall_after,
                    progress.open(),
                    progress.total()
                )));
            }
            tokio::time::sleep(FAN_OUT_POLL).await;
        }
        let mut result = FanOutResult::default();
        let mut written = 0_u64;
        for task in tasks::outcomes(&self.db, run.run_id).await.map_err(stage_error)? {
            result.written.inserted += task.inserted;
            result.written.updated += task.updated;
            result.written.deleted += task.deleted;
            result.written.unchanged += task.unchanged;
            for note in task.notes.iter().flat_map(|notes| notes.lines()) {
                result.notes.push(format!("{}: {note}", task.request));
            }
            let failure = || PageFailure {
                request: task.request.clone(),
                error: task.error.clone().unwrap_or_else(|| "not written".to_owned()),
            };
            match task.status.as_str() {
                "done" => written += 1,
                "unreadable" => result.unreadable.push(failure()),
                _ => result.failures.push(failure()),
            }
            result.requested.insert(task.request);
        }
        counters.emitted(written);
        counters.dropped((result.failures.len() + result.unreadable.len()) as u64);
        if written == 0 && !result.unreadable.is_empty() && pages.is_empty() {
            // Every page fetched, none readable, and nothing else read: the layout changed,
            // not a few pages. (A source with fixed pages read those.)
            return Err(StageError::BadInput(format!(
                "none of the {} {} pages could be read; the first error: {}",
                result.unreadable.len(),
                S::PAGE_KIND,
                result.unreadable[0].error
            )));
        }
        Ok(result)
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
        let mut dataset = self.source.parse(&input)?.with_prior(input.fan_out.written);
        let mut notes = Vec::new();
        if !input.fan_out.failures.is_empty() {
            notes.push(failures_note(&input.fan_out.failures));
        }
        notes.extend(unreadable_notes(S::PAGE_KIND, &input.fan_out.unreadable));
        notes.extend(page_notes(S::PAGE_KIND, &input.fan_out.notes));
        dataset.notes.splice(0..0, notes);
        counters.emitted(dataset.rows() as u64);
        counters.dropped(dataset.dropped);
        Ok(Parsed::Fresh { dataset, fingerprint })
    }
}

/// The fan-out pages' own notes: the first ones, and how many more there were (a layout change
/// can make every page note the same thing).
fn page_notes(kind: &str, notes: &[String]) -> Vec<String> {
    const SHOWN: usize = 20;
    let mut shown: Vec<String> = notes.iter().take(SHOWN).cloned().collect();
    if notes.len() > SHOWN {
        shown.push(format!("... and {} more notes from {kind} pages", notes.len() - SHOWN));
    }
    shown
}

/// The first few unreadable pages with their errors, and how many more there were.
fn unreadable_notes(kind: &str, unreadable: &[PageFailure]) -> Vec<String> {
    const SHOWN: usize = 5;
    let mut notes: Vec<String> =
        unreadable.iter().take(SHOWN).map(|page| format!("{}: {}", page.request, page.error)).collect();
    if unreadable.len() > SHOWN {
        notes.push(format!("... and {} more unreadable {kind} pages", unreadable.len() - SHOWN));
    }
    notes
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
    /// A fan-out source: its run's tasks are dropped once its result is written.
    fans_out: bool,
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
                let mut report =
                    load_dataset(&self.db, dataset, fingerprint, run, &self.guard, self.name, announcer).await?;
                if self.fans_out {
                    let counts = report.counts;
                    if counts.inserted + counts.updated + counts.deleted == 0 {
                        report
                            .notes
                            .push("upstream unchanged: every fan-out page as last loaded; nothing written".to_owned());
                    }
                    // Written: the tasks have nothing left to say. Should this fail, the next
                    // fresh run drops them, and a retry finds them all done.
                    if let Err(error) = tasks::clear(&self.db, run.run_id).await {
                        tracing::warn!(pipeline = self.name, run_id = run.run_id, %error, "could not drop the run's fan-out tasks");
                    }
                }
                Ok(report)
            }
        }
    }
}

/// The outer limit of a fan-out run, which is otherwise bound by its progress.
const FAN_OUT_RUN_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);

/// The supervised chain of one source.
pub fn build<S: Source>(source: Arc<S>, parts: &BuildParts<'_>, mut deps: PipelineDeps) -> (ChildSpec, PipelineHandle) {
    let stall_after = deps.settings.timeout;
    if S::FANS_OUT {
        // Bound by progress instead (a page written at least every `stall_after`): a fan-out
        // of a hundred thousand pages may rightly take hours.
        deps.settings.timeout = FAN_OUT_RUN_LIMIT;
    }
    let fetch =
        FetchSource { source: source.clone(), upstream: parts.upstream.clone(), db: parts.db.clone(), stall_after };
    let store = StoreSource {
        name: S::NAME,
        fans_out: S::FANS_OUT,
        db: parts.db.clone(),
        guard: parts.settings.delete_guard,
        announcer: parts.announcer.clone(),
    };
    pipeline(S::NAME, fetch, ParseSource { source }, store, deps)
}

/// Parses `pages` (each answering the matching request of `source`) without a database: for
/// unit tests and benchmarks of a parser.
pub fn parse_pages<S: Source>(source: &S, pages: Vec<Page>, names: Names) -> Result<Dataset, StageError> {
    source.parse(&SourceInput { pages, fan_out: FanOutResult::default(), names })
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
        let base = fingerprint_pages(1, &names, &pages, std::slice::from_ref(&failure));
        assert_eq!(base, fingerprint_pages(1, &names, &pages, std::slice::from_ref(&failure)));
        assert_ne!(base, fingerprint_pages(2, &names, &pages, std::slice::from_ref(&failure)));
        assert_ne!(base, fingerprint_pages(1, &[1; 32], &pages, std::slice::from_ref(&failure)));
        assert_ne!(base, fingerprint_pages(1, &names, &pages, &[]));
        assert_ne!(base, fingerprint_pages(1, &names, &[page("/a", "xy"), page("/b", "")], &[failure]));
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
