//! Every node's share of the fan-out pages: the [`PageWorker`] actor takes batches of open
//! tasks ([`crate::db::tasks`]) of any running fan-out run, whichever node owns the run, and
//! fetches, parses and writes each page on its own.
//!
//! A page whose fingerprint (its body, the parser version, the stored names) matches the one
//! it was last loaded with writes no rows; a page that cannot be fetched or read is marked
//! failed and its stored rows stay. Each write checks, inside its transaction, that the task is
//! still this node's: a node that was paused past `dead_after` and lost its tasks to others
//! commits nothing when it wakes up.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use async_trait::async_trait;
use futures::future::join_all;
use hayloft_actors::events::{Event, EventBus};
use hayloft_actors::ledger::RunId;
use hayloft_actors::pipeline::StageError;
use tracing::{debug, error, info};

use super::names::Names;
use super::source::{fetch_page, fingerprint_page, Source};
use super::table::{load_page, stage_error, Dataset};
use crate::db::nodes::Liveness;
use crate::db::tasks::{self, ClaimedTask, PageFailed};
use crate::db::{Database, DbError};
use crate::upstream::share::ClusterShare;
use crate::upstream::Upstream;

/// How often an idle node looks for open tasks (a cheap read on the readers).
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Runs whose stored names a node keeps (a fan-out run per pipeline at most, a few pipelines).
const NAMES_KEPT: usize = 4;

/// Stored names per run, loaded once per run on each node and kept across batches (reading
/// every item and NPC again for each batch would cost more than the pages).
type NamesByRun = Rc<RefCell<BTreeMap<RunId, Arc<Names>>>>;

/// What became of one page this node worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageResult {
    Written,
    Unchanged,
    Failed,
    /// The task was taken from this node meanwhile; nothing was written.
    Lost,
}

/// The work of one fan-out source on one page, whatever the source.
#[async_trait(?Send)]
pub trait PageHandler {
    fn pipeline(&self) -> &'static str;
    /// Stored names the source resolves against, loaded once per run on each node.
    async fn names(&self) -> Result<Arc<Names>, DbError>;
    async fn work(&self, task: &ClaimedTask, names: Arc<Names>) -> Result<PageResult, StageError>;
}

/// [`PageHandler`] for a [`Source`].
pub struct SourcePages<S> {
    source: Arc<S>,
    upstream: Upstream,
    db: Database,
    events: EventBus,
}

impl<S: Source> SourcePages<S> {
    pub fn new(source: Arc<S>, upstream: Upstream, db: Database, events: EventBus) -> Self {
        Self { source, upstream, db, events }
    }
}

#[async_trait(?Send)]
impl<S: Source> PageHandler for SourcePages<S> {
    fn pipeline(&self) -> &'static str {
        S::NAME
    }

    async fn names(&self) -> Result<Arc<Names>, DbError> {
        Names::load(&self.db).await.map(Arc::new)
    }

    async fn work(&self, task: &ClaimedTask, names: Arc<Names>) -> Result<PageResult, StageError> {
        let page = match fetch_page(&self.upstream, task.request.clone()).await {
            Ok(page) => page,
            Err(failure) => {
                let failed = tasks::fail(&self.db, &task.claim, PageFailed::Fetch, &failure.error).await;
                return finish(failed, PageResult::Failed);
            }
        };
        let fingerprint = fingerprint_page(S::TRANSFORM_VERSION, &names.digest(S::RESOLVES_NPCS), &page);
        let stored = tasks::page_fingerprint(&self.db, S::NAME, &task.request).await.map_err(stage_error)?;
        let unchanged = stored.as_deref() == Some(fingerprint.as_str());
        let (dataset, result) = if unchanged {
            (Dataset::new(), PageResult::Unchanged)
        } else {
            let source = self.source.clone();
            let parsed = tokio::task::spawn_blocking(move || source.parse_fanned(&page, &names))
                .await
                .unwrap_or_else(|panic| Err(StageError::BadInput(format!("the page parser panicked: {panic}"))));
            match parsed {
                Ok(dataset) => (dataset, PageResult::Written),
                Err(error) => {
                    let failed = tasks::fail(&self.db, &task.claim, PageFailed::Unreadable, &error.to_string()).await;
                    return finish(failed, PageResult::Failed);
                }
            }
        };
        match load_page(&self.db, dataset, &task.claim, S::NAME, &task.request, fingerprint).await {
            Ok((_, changes)) => {
                // Subscribers hear of a page's changes when it commits, as of a run's.
                if !changes.is_empty() {
                    let pipeline = S::NAME.to_owned();
                    self.events.publish(Event::Changes { run_id: task.run_id, pipeline, changes: changes.into() });
                }
                Ok(result)
            }
            Err(StageError::ClaimLost(_)) => Ok(PageResult::Lost),
            Err(error) => Err(error),
        }
    }
}

/// A task write's result, with a lost task read as [`PageResult::Lost`].
fn finish(written: Result<(), DbError>, result: PageResult) -> Result<PageResult, StageError> {
    match written {
        Ok(()) => Ok(result),
        Err(DbError::TaskLost { .. }) => Ok(PageResult::Lost),
        Err(error) => Err(stage_error(error)),
    }
}

/// How a node takes part in fan-outs.
#[derive(Debug, Clone, Copy)]
pub struct PageWorkerSettings {
    /// The upstream's requests in flight for the whole cluster: this node takes twice its
    /// share of them at once (see [`ClusterShare::part_of`]), the pages it fetches side by side
    /// before it asks for more, so a batch never waits long behind the rate limit while other
    /// nodes run out of pages.
    pub concurrency: usize,
    /// How long a taken task stays this node's without being written, should the node stay
    /// alive yet stop working on it.
    pub lease: Duration,
    pub liveness: Liveness,
}

/// One node's fan-out worker.
pub struct PageWorker {
    db: Database,
    node: Arc<str>,
    handlers: Rc<HashMap<&'static str, Rc<dyn PageHandler>>>,
    settings: PageWorkerSettings,
    share: Arc<ClusterShare>,
    names: NamesByRun,
    busy: bool,
}

impl PageWorker {
    pub fn new(
        db: Database,
        node: Arc<str>,
        handlers: Rc<HashMap<&'static str, Rc<dyn PageHandler>>>,
        settings: PageWorkerSettings,
        share: Arc<ClusterShare>,
    ) -> Self {
        Self { db, node, handlers, settings, share, names: NamesByRun::default(), busy: false }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.handlers.is_empty() {
            return;
        }
        // A node the others do not count yet may not fetch: pages it took would only wait.
        if self.share.nodes().is_none() {
            return;
        }
        self.busy = true;
        let (db, node, handlers, settings, share, names) = (
            self.db.clone(),
            self.node.clone(),
            self.handlers.clone(),
            self.settings,
            self.share.clone(),
            self.names.clone(),
        );
        let work = async move { drain(&db, &node, &handlers, settings, &share, &names).await };
        ctx.spawn(work.into_actor(self).map(|result, worker, _| {
            worker.busy = false;
            if let Err(error) = result {
                error!(%error, "fan-out worker: taking or writing pages failed; they go back to the other nodes when their lease ends");
            }
        }));
    }
}

/// Takes and works batches until none is open.
async fn drain(
    db: &Database,
    node: &Arc<str>,
    handlers: &HashMap<&'static str, Rc<dyn PageHandler>>,
    settings: PageWorkerSettings,
    share: &ClusterShare,
    names: &NamesByRun,
) -> Result<(), DbError> {
    let pipelines: Vec<String> = handlers.keys().map(|name| (*name).to_owned()).collect();
    if !tasks::any_open(db, &pipelines).await? {
        return Ok(());
    }
    let concurrency = u32::try_from(settings.concurrency).unwrap_or(u32::MAX);
    loop {
        // Read again for every batch: nodes join and leave during a long fan-out.
        let Some(part) = share.part_of(concurrency) else { return Ok(()) };
        let limit = i64::from(part) * 2;
        let batch = tasks::claim_batch(db, node, &pipelines, limit, settings.lease, settings.liveness).await?;
        if batch.is_empty() {
            return Ok(());
        }
        debug!(pages = batch.len(), "fan-out pages taken");
        for task in &batch {
            if names.borrow().contains_key(&task.run_id) {
                continue;
            }
            let Some(handler) = handlers.get(task.pipeline.as_str()) else { continue };
            let loaded = handler.names().await?;
            let mut names = names.borrow_mut();
            names.insert(task.run_id, loaded);
            // The oldest runs' names go first: their fan-outs are over.
            while names.len() > NAMES_KEPT {
                names.pop_first();
            }
        }
        let results = join_all(batch.iter().map(|task| {
            let handler = handlers.get(task.pipeline.as_str()).cloned();
            let names = names.borrow().get(&task.run_id).cloned().unwrap_or_default();
            async move {
                match handler {
                    Some(handler) => (task, handler.work(task, names).await),
                    None => (task, Ok(PageResult::Lost)),
                }
            }
        }))
        .await;
        for (task, result) in results {
            match result {
                Ok(PageResult::Lost) => info!(
                    pipeline = %task.pipeline, run_id = task.run_id, request = %task.request,
                    "fan-out page taken over by another node meanwhile (this node was counted dead); nothing committed"
                ),
                // The run's report names the failed pages; one line each here would drown the log.
                Ok(PageResult::Failed) => {
                    debug!(pipeline = %task.pipeline, run_id = task.run_id, request = %task.request, "fan-out page failed; its stored rows stay")
                }
                Ok(_) => {}
                Err(error) => {
                    error!(pipeline = %task.pipeline, run_id = task.run_id, request = %task.request, %error, "fan-out page could not be written")
                }
            }
        }
    }
}

impl Actor for PageWorker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.tick(ctx);
        ctx.run_interval(IDLE_POLL, |worker, ctx| worker.tick(ctx));
    }
}
