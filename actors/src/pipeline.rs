//! Pipelines: an extractor, a transformer and a loader actor under one supervisor, driven by a
//! runner actor that owns each run's life in the ledger.
//!
//! ```text
//! pipeline supervisor (root/pipelines/<name>)
//! ├─ runner       takes TriggerRun; claims a run, drives the stages, finishes the run
//! ├─ extractor    ExtractRequest  → Result<E::Output, StageError>
//! ├─ transformer  TransformRequest → Result<T::Output, StageError>   (CPU work on spawn_blocking)
//! └─ loader       LoadRequest     → Result<LoadReport, StageError>
//! ```
//!
//! Each stage is its own actor with a bounded mailbox, so a panic in one stage restarts that stage
//! alone; the runner sees the stage's reply channel close, fails the run with the panic's message
//! and stays up for the next trigger. A run never overlaps another run of the same pipeline: the
//! runner refuses a trigger while busy, and the ledger refuses a second active row across processes.

use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix::prelude::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use serde::Serialize;
use tokio::sync::oneshot;
use tracing::{error, info, warn};

use crate::events::{Change, Event, EventBus};
use crate::ledger::{
    Claim, ClaimRequest, FailureKind, Ledger, LedgerError, RunCounts, RunId, RunOutcome, RunRecord, RunStatus, Trigger,
};
use crate::supervisor::{panic_message, ChildContext, ChildRef, ChildSpec, ExitReason, RestartPolicy, Supervisor};

/// What every stage of one run knows about it.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub run_id: RunId,
    pub pipeline: Arc<str>,
    pub attempt: i32,
    pub trigger: Trigger,
    pub options: RunOptions,
    /// When the ledger started the run: notices written during the run say how long it took.
    pub started_at: DateTime<Utc>,
    /// What every write of the run presents: a write whose claim was taken away is refused.
    pub claim: Claim,
}

/// Per-run switches given by whoever triggered the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Lets this one run delete more rows than the delete guard normally allows.
    pub allow_mass_delete: bool,
    /// The schedule slot the run stands for (set by the scheduler): one run per slot.
    pub slot: Option<DateTime<Utc>>,
}

/// A stage's failure, in words a person understands.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StageError {
    /// The upstream could not be reached or answered with an error.
    #[error("upstream: {0}")]
    Upstream(String),
    /// The upstream answered, but with something the pipeline cannot use.
    #[error("bad input: {0}")]
    BadInput(String),
    /// The load was refused on purpose (e.g. the delete guard); nothing was written.
    #[error("refused: {0}")]
    Refused(String),
    /// The database failed; its error is kept as the source.
    #[error("database: {0}")]
    Database(#[source] crate::storage::StorageFailure),
    /// The stage actor panicked while working on the run.
    #[error("{0}")]
    StagePanicked(String),
    /// The stage actor stopped while working on the run, or was not running.
    #[error("{0}")]
    StageDown(String),
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    /// The node no longer holds the run (another node took it over): nothing was committed.
    #[error("claim lost: {0}")]
    ClaimLost(String),
}

impl StageError {
    /// How the run this error ends is recorded.
    pub fn failure_kind(&self) -> FailureKind {
        match self {
            StageError::Refused(_) => FailureKind::Refused,
            StageError::TimedOut(_) => FailureKind::TimedOut,
            StageError::StagePanicked(_) => FailureKind::Panicked,
            StageError::Upstream(_)
            | StageError::BadInput(_)
            | StageError::Database(_)
            | StageError::StageDown(_)
            | StageError::ClaimLost(_) => FailureKind::Failed,
        }
    }
}

/// Counters each stage keeps, shown by status and metrics.
#[derive(Debug, Default)]
pub struct StageCounters {
    received: AtomicU64,
    emitted: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
    /// Messages sent to the stage and not yet answered: its mailbox depth.
    queued: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StageCountersSnapshot {
    pub received: u64,
    pub emitted: u64,
    pub dropped: u64,
    pub errors: u64,
    pub queued: u64,
}

/// Counts one message as queued at a stage until dropped (answered or abandoned).
pub struct Queued(Arc<StageCounters>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

impl StageCounters {
    pub fn received(&self, count: u64) {
        self.received.fetch_add(count, Ordering::Relaxed);
    }
    pub fn emitted(&self, count: u64) {
        self.emitted.fetch_add(count, Ordering::Relaxed);
    }
    pub fn dropped(&self, count: u64) {
        self.dropped.fetch_add(count, Ordering::Relaxed);
    }
    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }
    pub fn snapshot(&self) -> StageCountersSnapshot {
        StageCountersSnapshot {
            received: self.received.load(Ordering::Relaxed),
            emitted: self.emitted.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
        }
    }

    /// Marks a message as sent to this stage; the depth drops when the guard does.
    pub fn queue(self: &Arc<Self>) -> Queued {
        self.queued.fetch_add(1, Ordering::Relaxed);
        Queued(self.clone())
    }
}

/// Fetches the raw material of a run (HTTP, files...). Runs on the actor's arbiter: I/O only.
#[async_trait(?Send)]
pub trait Extract: 'static {
    type Output: Send + 'static;
    async fn extract(&self, run: &RunContext, counters: &StageCounters) -> Result<Self::Output, StageError>;
}

/// Turns raw material into typed records. CPU work: always called on a blocking thread.
pub trait Transform: Send + Sync + 'static {
    type Input: Send + 'static;
    type Output: Send + 'static;
    fn transform(
        &self,
        input: Self::Input,
        run: &RunContext,
        counters: &StageCounters,
    ) -> Result<Self::Output, StageError>;
}

/// Writes records to the database and reports what changed. A loader records its change feed in
/// the same transaction as the rows it writes, so a crash can never separate the two.
#[async_trait(?Send)]
pub trait Load: 'static {
    type Input: Send + 'static;
    async fn load(
        &self,
        input: Self::Input,
        run: &RunContext,
        counters: &StageCounters,
    ) -> Result<LoadReport, StageError>;
}

/// What a load did.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub counts: RunCounts,
    pub changes: Vec<Change>,
    /// Things worth telling the operator that did not fail the run (skipped rows, dangling ids).
    pub notes: Vec<String>,
}

/// Asks the extractor for a run's raw material.
pub struct ExtractRequest<O> {
    pub run: RunContext,
    output: PhantomData<fn() -> O>,
}

impl<O: 'static> Message for ExtractRequest<O> {
    type Result = Result<O, StageError>;
}

/// Hands raw material to the transformer.
pub struct TransformRequest<I, O> {
    pub run: RunContext,
    pub input: I,
    output: PhantomData<fn() -> O>,
}

impl<I: 'static, O: 'static> Message for TransformRequest<I, O> {
    type Result = Result<O, StageError>;
}

/// Hands records to the loader.
#[derive(Message)]
#[rtype(result = "Result<LoadReport, StageError>")]
pub struct LoadRequest<I> {
    pub run: RunContext,
    pub input: I,
}

/// The extractor stage actor.
pub struct Extractor<E: Extract> {
    stage: Rc<E>,
    counters: Arc<StageCounters>,
}

impl<E: Extract> Actor for Extractor<E> {
    type Context = Context<Self>;
}

impl<E: Extract> Handler<ExtractRequest<E::Output>> for Extractor<E> {
    type Result = ResponseActFuture<Self, Result<E::Output, StageError>>;

    fn handle(&mut self, request: ExtractRequest<E::Output>, _ctx: &mut Self::Context) -> Self::Result {
        let (stage, counters) = (self.stage.clone(), self.counters.clone());
        // Runs inside this actor's context: a panic here kills (and restarts) this actor only.
        Box::pin(
            async move {
                counters.received(1);
                let result = stage.extract(&request.run, &counters).await;
                if result.is_err() {
                    counters.error();
                }
                result
            }
            .into_actor(self),
        )
    }
}

/// The transformer stage actor.
pub struct Transformer<T: Transform> {
    stage: Arc<T>,
    counters: Arc<StageCounters>,
}

impl<T: Transform> Actor for Transformer<T> {
    type Context = Context<Self>;
}

impl<T: Transform> Handler<TransformRequest<T::Input, T::Output>> for Transformer<T> {
    type Result = ResponseActFuture<Self, Result<T::Output, StageError>>;

    fn handle(&mut self, request: TransformRequest<T::Input, T::Output>, _ctx: &mut Self::Context) -> Self::Result {
        let (stage, counters) = (self.stage.clone(), self.counters.clone());
        Box::pin(
            async move {
                counters.received(1);
                let blocking_counters = counters.clone();
                let TransformRequest { run, input, .. } = request;
                let joined =
                    tokio::task::spawn_blocking(move || stage.transform(input, &run, &blocking_counters)).await;
                let result = match joined {
                    Ok(result) => result,
                    // Re-raise in this actor's context so the supervisor restarts the transformer.
                    Err(join_error) if join_error.is_panic() => std::panic::resume_unwind(join_error.into_panic()),
                    Err(_) => Err(StageError::StageDown("transform task was cancelled".to_owned())),
                };
                if result.is_err() {
                    counters.error();
                }
                result
            }
            .into_actor(self),
        )
    }
}

/// The loader stage actor.
pub struct Loader<L: Load> {
    stage: Rc<L>,
    counters: Arc<StageCounters>,
}

impl<L: Load> Actor for Loader<L> {
    type Context = Context<Self>;
}

impl<L: Load> Handler<LoadRequest<L::Input>> for Loader<L> {
    type Result = ResponseActFuture<Self, Result<LoadReport, StageError>>;

    fn handle(&mut self, request: LoadRequest<L::Input>, _ctx: &mut Self::Context) -> Self::Result {
        let (stage, counters) = (self.stage.clone(), self.counters.clone());
        Box::pin(
            async move {
                counters.received(1);
                let result = stage.load(request.input, &request.run, &counters).await;
                match &result {
                    Ok(report) => counters.emitted(report.counts.written() as u64),
                    Err(_) => counters.error(),
                }
                result
            }
            .into_actor(self),
        )
    }
}

/// The three stages of one pipeline, as the runner drives them.
trait RunStages {
    fn run(&self, run: RunContext) -> LocalBoxFuture<'static, Result<LoadReport, StageError>>;
}

struct StageRefs<E: Extract, T: Transform<Input = E::Output>, L: Load<Input = T::Output>> {
    counters: PipelineCounters,
    extractor: ChildRef<Extractor<E>>,
    transformer: ChildRef<Transformer<T>>,
    loader: ChildRef<Loader<L>>,
}

/// Explains why a stage did not answer, using the exit reason its supervisor recorded.
async fn stage_down<A: Actor>(stage: &str, child: &ChildRef<A>) -> StageError {
    // The reply channel closes while the actor unwinds; let its watcher record the reason first.
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
    match child.last_exit() {
        Some(ExitReason::Panicked(message)) => StageError::StagePanicked(format!("{stage} panicked: {message}")),
        Some(reason) => StageError::StageDown(format!("{stage} stopped during the run ({reason})")),
        None => StageError::StageDown(format!("{stage} is not running")),
    }
}

/// A run that reaches a quarantined stage is refused for that reason, not for the failure
/// that led to the quarantine (checked before sending, so a run whose own message made the
/// stage fail still says what failed).
fn quarantined<A: Actor>(stage: &str, child: &ChildRef<A>) -> Result<(), StageError> {
    let Some(left) = child.quarantined_for() else { return Ok(()) };
    let last = child.last_exit().map_or_else(String::new, |reason| format!("; it last stopped: {reason}"));
    Err(StageError::StageDown(format!(
        "{stage} is quarantined after repeated failures, retried in {} s{last}",
        left.as_secs_f64().ceil()
    )))
}

impl<E, T, L> RunStages for StageRefs<E, T, L>
where
    E: Extract,
    T: Transform<Input = E::Output>,
    L: Load<Input = T::Output>,
{
    fn run(&self, run: RunContext) -> LocalBoxFuture<'static, Result<LoadReport, StageError>> {
        let (extractor, transformer, loader) = (self.extractor.clone(), self.transformer.clone(), self.loader.clone());
        let counters = self.counters.clone();
        Box::pin(async move {
            // Nothing is fetched for a run a quarantined stage would refuse later on.
            quarantined("extractor", &extractor)?;
            quarantined("transformer", &transformer)?;
            quarantined("loader", &loader)?;
            let request = ExtractRequest { run: run.clone(), output: PhantomData };
            let queued = counters.extractor.queue();
            let raw = match extractor.send(request).await {
                Ok(result) => result?,
                Err(_) => return Err(stage_down("extractor", &extractor).await),
            };
            drop(queued);
            quarantined("transformer", &transformer)?;
            let request = TransformRequest { run: run.clone(), input: raw, output: PhantomData };
            let queued = counters.transformer.queue();
            let records = match transformer.send(request).await {
                Ok(result) => result?,
                Err(_) => return Err(stage_down("transformer", &transformer).await),
            };
            drop(queued);
            quarantined("loader", &loader)?;
            let _queued = counters.loader.queue();
            match loader.send(LoadRequest { run, input: records }).await {
                Ok(result) => result,
                Err(_) => Err(stage_down("loader", &loader).await),
            }
        })
    }
}

/// Why a trigger was not accepted.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TriggerError {
    #[error("pipeline {pipeline} is already running{}", run_id.map(|id| format!(" (run {id})")).unwrap_or_default())]
    AlreadyRunning { pipeline: String, run_id: Option<RunId> },
    #[error("pipeline {pipeline} already ran its slot {slot}")]
    SlotTaken { pipeline: String, slot: DateTime<Utc> },
    #[error(
        "run {run_id} of {pipeline} was taken over by another node before it finished; nothing of it was committed"
    )]
    ClaimLost { pipeline: String, run_id: RunId },
    #[error("pipeline {0} has no queued run left (another node took it)")]
    NothingQueued(String),
    #[error("pipeline {0} is not running right now (its runner is restarting)")]
    Unavailable(String),
    #[error("ledger: {0}")]
    Ledger(String),
    #[error("unknown pipeline {0:?}")]
    UnknownPipeline(String),
}

/// Starts a run. Answers once the run is claimed in the ledger; `completion`, if given, receives
/// the finished run record.
#[derive(Message)]
#[rtype(result = "Result<RunId, TriggerError>")]
pub struct TriggerRun {
    pub trigger: Trigger,
    pub options: RunOptions,
    pub completion: Option<oneshot::Sender<Result<RunRecord, TriggerError>>>,
}

/// Asks a runner which run it is working on.
#[derive(Message)]
#[rtype(result = "Option<RunId>")]
pub struct ActiveRun;

/// Settings shared by every pipeline's runner.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// This node's id, written as the owner of the runs it claims.
    pub owner: Arc<str>,
    /// How long a claim stays valid without renewal; renewed every third of it.
    pub lease: Duration,
    /// A run that takes longer fails with a timeout.
    pub timeout: Duration,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self { owner: Arc::from("local"), lease: Duration::from_secs(60), timeout: Duration::from_secs(600) }
    }
}

enum RunnerState {
    Idle,
    Claiming,
    Running(RunId),
}

/// Owns the runs of one pipeline: claim, drive the stages, finish, announce.
pub struct PipelineRunner {
    name: Arc<str>,
    stages: Rc<dyn RunStages>,
    ledger: Arc<dyn Ledger>,
    events: EventBus,
    settings: RunnerSettings,
    state: RunnerState,
    /// The claim of the run in flight, kept outside the actor so a restarted runner can close it.
    in_flight: Arc<Mutex<Option<Claim>>>,
}

impl PipelineRunner {
    fn finish_run(
        &self,
        claim: Claim,
        outcome: RunOutcome,
        changes: Vec<Change>,
    ) -> LocalBoxFuture<'static, Result<RunRecord, TriggerError>> {
        let (ledger, events, name) = (self.ledger.clone(), self.events.clone(), self.name.clone());
        let in_flight = self.in_flight.clone();
        let run_id = claim.run_id;
        Box::pin(async move {
            let record = match ledger.finish(&claim, outcome).await {
                Ok(record) => record,
                Err(error @ LedgerError::LeaseLost { .. }) => {
                    *in_flight.lock().unwrap_or_else(PoisonError::into_inner) = None;
                    error!(pipeline = %name, run_id, %error, "claim lost: another node took the run over");
                    return Err(TriggerError::ClaimLost { pipeline: name.to_string(), run_id });
                }
                Err(error) => {
                    // The row stays `running`; recovery will mark it abandoned and retry.
                    error!(pipeline = %name, run_id, %error, "could not record the end of the run");
                    return Err(TriggerError::Ledger(format!("could not record the end of run {run_id}: {error}")));
                }
            };
            *in_flight.lock().unwrap_or_else(PoisonError::into_inner) = None;
            if !changes.is_empty() {
                events.publish(Event::Changes { run_id, pipeline: name.to_string(), changes: changes.into() });
            }
            events.publish(Event::RunFinished {
                run_id,
                pipeline: name.to_string(),
                status: record.status,
                counts: record.counts,
                duration_ms: record.duration_ms().unwrap_or(0),
                error: record.error.clone(),
            });
            match record.status {
                RunStatus::Succeeded => info!(
                    pipeline = %name,
                    run_id,
                    inserted = record.counts.inserted,
                    updated = record.counts.updated,
                    deleted = record.counts.deleted,
                    unchanged = record.counts.unchanged,
                    duration_ms = record.duration_ms().unwrap_or(0),
                    "run succeeded"
                ),
                _ => warn!(pipeline = %name, run_id, error = record.error.as_deref().unwrap_or(""), "run failed"),
            }
            Ok(record)
        })
    }
}

impl Actor for PipelineRunner {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // A previous incarnation died mid-run: close its run so the pipeline is free again.
        let orphan = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(claim) = orphan {
            let outcome = RunOutcome::failed(FailureKind::Panicked, "the pipeline runner restarted during the run");
            ctx.wait(self.finish_run(claim, outcome, Vec::new()).into_actor(self).map(|_, _, _| ()));
        }
        let renew_every = self.settings.lease / 3;
        ctx.run_interval(renew_every.max(Duration::from_millis(100)), |runner, ctx| {
            let RunnerState::Running(run_id) = runner.state else { return };
            let Some(claim) = runner.in_flight.lock().unwrap_or_else(PoisonError::into_inner).clone() else { return };
            let (ledger, lease, name) = (runner.ledger.clone(), runner.settings.lease, runner.name.clone());
            ctx.spawn(
                async move {
                    match ledger.renew(&claim, lease).await {
                        Ok(()) => {}
                        // Its writes are refused from now on (every write checks the claim).
                        Err(error @ LedgerError::LeaseLost { .. }) => {
                            error!(pipeline = %name, run_id, %error, "claim lost: this run's writes will be refused")
                        }
                        Err(error) => warn!(pipeline = %name, run_id, %error, "lease renewal failed"),
                    }
                }
                .into_actor(runner),
            );
        });
    }
}

impl Handler<TriggerRun> for PipelineRunner {
    type Result = ResponseActFuture<Self, Result<RunId, TriggerError>>;

    fn handle(&mut self, request: TriggerRun, _ctx: &mut Self::Context) -> Self::Result {
        let busy = match self.state {
            RunnerState::Idle => None,
            RunnerState::Claiming => Some(None),
            RunnerState::Running(run_id) => Some(Some(run_id)),
        };
        if let Some(run_id) = busy {
            let error = TriggerError::AlreadyRunning { pipeline: self.name.to_string(), run_id };
            return Box::pin(fut::ready(Err(error)));
        }
        // Set synchronously, before any await, so a second trigger in the mailbox sees it.
        self.state = RunnerState::Claiming;
        let (ledger, name, settings) = (self.ledger.clone(), self.name.clone(), self.settings.clone());
        let claim = async move {
            let claim_request = ClaimRequest {
                pipeline: &name,
                trigger: request.trigger,
                owner: &settings.owner,
                lease: settings.lease,
                slot: request.options.slot,
            };
            ledger.claim(claim_request).await
        };
        Box::pin(claim.into_actor(self).map(move |claimed, runner, ctx| {
            let record = match claimed {
                Ok(record) => record,
                Err(error) => {
                    runner.state = RunnerState::Idle;
                    return Err(match error {
                        LedgerError::AlreadyRunning { pipeline, run_id } => {
                            TriggerError::AlreadyRunning { pipeline, run_id: Some(run_id) }
                        }
                        LedgerError::SlotTaken { pipeline, slot } => TriggerError::SlotTaken { pipeline, slot },
                        LedgerError::NothingQueued(pipeline) => TriggerError::NothingQueued(pipeline),
                        other => TriggerError::Ledger(other.to_string()),
                    });
                }
            };
            let run_id = record.id;
            runner.state = RunnerState::Running(run_id);
            let claim = record.claim();
            *runner.in_flight.lock().unwrap_or_else(PoisonError::into_inner) = Some(claim.clone());
            let run = RunContext {
                run_id,
                pipeline: runner.name.clone(),
                attempt: record.attempt,
                trigger: record.trigger,
                options: request.options,
                started_at: record.started_at.unwrap_or_else(Utc::now),
                claim: claim.clone(),
            };
            runner.events.publish(Event::RunStarted {
                run_id,
                pipeline: runner.name.to_string(),
                trigger: record.trigger,
                attempt: record.attempt,
            });
            info!(pipeline = %runner.name, run_id, trigger = %record.trigger, attempt = record.attempt, "run started");
            let work = runner.stages.run(run);
            let timeout = runner.settings.timeout;
            let guarded = async move {
                match tokio::time::timeout(timeout, AssertUnwindSafe(work).catch_unwind()).await {
                    Ok(Ok(result)) => Ok(result),
                    Ok(Err(payload)) => Err(payload),
                    Err(_) => Ok(Err(StageError::TimedOut(timeout))),
                }
            };
            let completion = request.completion;
            ctx.spawn(guarded.into_actor(runner).then(move |result, runner, _ctx| {
                let (outcome, changes, panic) = match result {
                    Ok(Ok(report)) => {
                        for note in &report.notes {
                            info!(pipeline = %runner.name, run_id, note = %note, "run note");
                        }
                        let outcome = RunOutcome::succeeded(report.counts, report.notes);
                        (outcome, report.changes, None)
                    }
                    Ok(Err(error)) => (RunOutcome::failed(error.failure_kind(), error.to_string()), Vec::new(), None),
                    Err(payload) => {
                        let message = format!("pipeline runner panicked: {}", panic_message(payload.as_ref()));
                        (RunOutcome::failed(FailureKind::Panicked, message), Vec::new(), Some(payload))
                    }
                };
                runner.finish_run(claim, outcome, changes).into_actor(runner).map(move |record, runner, _ctx| {
                    runner.state = RunnerState::Idle;
                    if let Some(completion) = completion {
                        // The waiter may have gone away; that is its business.
                        let _ = completion.send(record);
                    }
                    if let Some(payload) = panic {
                        // The run is closed in the ledger; now let the supervisor restart us.
                        std::panic::resume_unwind(payload);
                    }
                })
            }));
            Ok(run_id)
        }))
    }
}

impl Handler<ActiveRun> for PipelineRunner {
    type Result = Option<RunId>;

    fn handle(&mut self, _: ActiveRun, _ctx: &mut Self::Context) -> Option<RunId> {
        match self.state {
            RunnerState::Running(run_id) => Some(run_id),
            _ => None,
        }
    }
}

/// Counters of the three stages of one pipeline.
#[derive(Debug, Clone, Default)]
pub struct PipelineCounters {
    pub extractor: Arc<StageCounters>,
    pub transformer: Arc<StageCounters>,
    pub loader: Arc<StageCounters>,
}

/// How long a trigger waits for a runner that is (re)starting before giving up.
const RUNNER_PATIENCE: Duration = Duration::from_secs(5);

/// What the rest of the application holds to talk to one pipeline.
#[derive(Clone)]
pub struct PipelineHandle {
    name: Arc<str>,
    runner: ChildRef<PipelineRunner>,
    counters: PipelineCounters,
}

impl PipelineHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn counters(&self) -> &PipelineCounters {
        &self.counters
    }

    /// Starts a run; answers with its id once claimed.
    pub async fn trigger(&self, trigger: Trigger, options: RunOptions) -> Result<RunId, TriggerError> {
        self.send(TriggerRun { trigger, options, completion: None }).await
    }

    /// Starts a run and waits for it to finish.
    pub async fn run_to_completion(&self, trigger: Trigger, options: RunOptions) -> Result<RunRecord, TriggerError> {
        let (sender, receiver) = oneshot::channel();
        self.send(TriggerRun { trigger, options, completion: Some(sender) }).await?;
        receiver.await.map_err(|_| TriggerError::Unavailable(self.name.to_string()))?
    }

    /// The run in flight, if any.
    pub async fn active_run(&self) -> Option<RunId> {
        self.runner.send(ActiveRun).await.ok().flatten()
    }

    async fn send(&self, message: TriggerRun) -> Result<RunId, TriggerError> {
        // The runner may be starting, or restarting after a panic: give it a moment.
        let Some(runner) = self.runner.wait_addr(RUNNER_PATIENCE).await else {
            return Err(TriggerError::Unavailable(self.name.to_string()));
        };
        match runner.send(message).await {
            Ok(result) => result,
            Err(_) => Err(TriggerError::Unavailable(self.name.to_string())),
        }
    }
}

/// Everything a pipeline's actors share with the rest of the engine.
#[derive(Clone)]
pub struct PipelineDeps {
    pub ledger: Arc<dyn Ledger>,
    pub events: EventBus,
    pub settings: RunnerSettings,
}

/// Builds the supervisor of one pipeline and the handle to drive it.
///
/// Stages are shared across restarts of their actors (they hold configuration and clients, not
/// per-run state); a restart replaces the actor, its mailbox and anything it was doing.
pub fn pipeline<E, T, L>(
    name: &str,
    extract: E,
    transform: T,
    load: L,
    deps: PipelineDeps,
) -> (ChildSpec, PipelineHandle)
where
    E: Extract,
    T: Transform<Input = E::Output>,
    L: Load<Input = T::Output>,
{
    let counters = PipelineCounters::default();
    let (extract, transform, load) = (Rc::new(extract), Arc::new(transform), Rc::new(load));

    let extractor_counters = counters.extractor.clone();
    let (extractor_spec, extractor) = ChildSpec::worker("extractor", move |_: &ChildContext| Extractor {
        stage: extract.clone(),
        counters: extractor_counters.clone(),
    });
    let transformer_counters = counters.transformer.clone();
    let (transformer_spec, transformer) = ChildSpec::worker("transformer", move |_: &ChildContext| Transformer {
        stage: transform.clone(),
        counters: transformer_counters.clone(),
    });
    let loader_counters = counters.loader.clone();
    let (loader_spec, loader) = ChildSpec::worker("loader", move |_: &ChildContext| Loader {
        stage: load.clone(),
        counters: loader_counters.clone(),
    });

    let stages: Rc<dyn RunStages> = Rc::new(StageRefs { counters: counters.clone(), extractor, transformer, loader });
    let name: Arc<str> = Arc::from(name);
    let in_flight = Arc::new(Mutex::new(None));
    let runner_name = name.clone();
    let runner_deps = deps.clone();
    let (runner_spec, runner) = ChildSpec::worker("runner", move |_: &ChildContext| PipelineRunner {
        name: runner_name.clone(),
        stages: stages.clone(),
        ledger: runner_deps.ledger.clone(),
        events: runner_deps.events.clone(),
        settings: runner_deps.settings.clone(),
        state: RunnerState::Idle,
        in_flight: in_flight.clone(),
    });

    let children = [runner_spec, extractor_spec, transformer_spec, loader_spec];
    let events = deps.events.clone();
    let (spec, _supervisor) = ChildSpec::supervisor(name.to_string(), move |child: &ChildContext| {
        Supervisor::new(child.path()).children(children.iter().cloned()).publish_to(events.clone())
    });
    let handle = PipelineHandle { name, runner, counters };
    (spec.policy(RestartPolicy::Permanent), handle)
}
