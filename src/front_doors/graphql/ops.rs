//! Operations data in the same schema: pipelines (schedule, last and next run, state), runs, the
//! change feed, the live supervisor tree; the one mutation (`runPipeline`, admin token only);
//! and the subscriptions, driven by the event bus.

use std::sync::Arc;

use async_graphql::{Context, Enum, Object, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use hayloft_actors::command::{Caller, Command, CommandError, Reply};
use hayloft_actors::events::{BusItem, Event, EventBus};
use hayloft_actors::ledger::RunRecord;
use hayloft_actors::supervisor::TreeNode;

use super::errors::{bad_input, code, coded, database};
use crate::commands::CommandCore;
use crate::db::queries::{self, ChangeRow};
use crate::db::Database;
use crate::pipelines;

/// What the operations fields read, shared by all requests.
#[derive(Clone)]
pub struct Ops {
    /// Pipelines, runs and the tree come from the same core as every other front door.
    pub commands: CommandCore,
    pub events: EventBus,
}

/// Whether this request carries the admin token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admin(pub bool);

/// The most runs or changes one list returns.
const MAX_ROWS: i64 = 500;

fn clamp(first: Option<i32>, default: i64) -> Result<i64> {
    match first {
        None => Ok(default),
        Some(first) if first < 0 => Err(bad_input("`first` must not be negative")),
        Some(first) if i64::from(first) > MAX_ROWS => Err(bad_input(format!("`first` may be at most {MAX_ROWS}"))),
        Some(first) => Ok(i64::from(first)),
    }
}

/// One run of a pipeline, as the ledger records it.
#[derive(SimpleObject, Clone)]
pub struct Run {
    pub id: i64,
    pub pipeline: String,
    /// queued, running, succeeded, failed or abandoned.
    pub status: String,
    /// schedule, manual, misfire, recovery...
    pub trigger: String,
    pub attempt: i32,
    pub queued_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    pub unchanged: i64,
    pub error: Option<String>,
    /// The run report: skipped rows, unresolved names, failed pages.
    pub notes: Vec<String>,
}

impl From<&RunRecord> for Run {
    fn from(record: &RunRecord) -> Self {
        Self {
            id: record.id,
            pipeline: record.pipeline.clone(),
            status: record.status.to_string(),
            trigger: record.trigger.to_string(),
            attempt: record.attempt,
            queued_at: record.queued_at,
            started_at: record.started_at,
            finished_at: record.finished_at,
            duration_ms: record.duration_ms(),
            inserted: record.counts.inserted,
            updated: record.counts.updated,
            deleted: record.counts.deleted,
            unchanged: record.counts.unchanged,
            error: record.error.clone(),
            notes: record.notes.clone(),
        }
    }
}

/// A pipeline, its schedule and its latest runs.
#[derive(SimpleObject)]
pub struct Pipeline {
    pub name: String,
    pub schedule: String,
    /// The schedule with hashed fields resolved, as it fires.
    pub resolved_schedule: String,
    pub time_zone: String,
    pub enabled: bool,
    pub next_run: Option<DateTime<Utc>>,
    pub last_run: Option<Run>,
    pub last_failure: Option<Run>,
    /// Whether a run is in progress now.
    pub running: bool,
}

/// One change-feed entry.
#[derive(SimpleObject)]
pub struct ChangeEvent {
    pub id: i64,
    pub run_id: i64,
    pub entity: String,
    pub key: String,
    /// insert, update or delete.
    pub op: String,
    /// The fields an update changed.
    pub fields: Vec<String>,
    pub recorded_at: DateTime<Utc>,
}

impl From<ChangeRow> for ChangeEvent {
    fn from(row: ChangeRow) -> Self {
        Self {
            id: row.id,
            run_id: row.run_id,
            entity: row.entity,
            key: row.entity_key,
            op: row.op,
            fields: row.fields.split(',').filter(|field| !field.is_empty()).map(str::to_owned).collect(),
            recorded_at: row.recorded_at.and_utc(),
        }
    }
}

/// An actor of the supervisor tree.
#[derive(SimpleObject)]
pub struct Actor {
    pub name: String,
    pub path: String,
    /// running, restarting, quarantined or stopped.
    pub state: String,
    pub restarts: u64,
    pub incarnation: u64,
    pub last_exit: Option<String>,
    /// While quarantined: how long until the next attempt.
    pub quarantined_for_ms: Option<u64>,
    pub children: Vec<Actor>,
}

impl From<TreeNode> for Actor {
    fn from(node: TreeNode) -> Self {
        Self {
            name: node.name,
            path: node.path,
            state: node.state.to_string(),
            restarts: node.restarts,
            incarnation: node.incarnation,
            last_exit: node.last_exit.map(|exit| exit.to_string()),
            quarantined_for_ms: node.quarantined_for_ms,
            children: node.children.into_iter().map(Actor::from).collect(),
        }
    }
}

fn ops<'a>(ctx: &Context<'a>) -> Result<&'a Ops> {
    ctx.data::<Ops>().map_err(|_| coded(code::UNAVAILABLE, "operations data is only served by `hayloft serve`"))
}

/// The GraphQL error for a command the core refused or could not carry out.
fn command_error(error: CommandError) -> async_graphql::Error {
    let kind = match &error {
        CommandError::Empty | CommandError::Unknown { .. } | CommandError::Usage { .. } => code::BAD_USER_INPUT,
        CommandError::Forbidden { .. } => code::FORBIDDEN,
        CommandError::NotFound(_) | CommandError::NoSuchRun(_) => code::NOT_FOUND,
        // GraphQL has always quoted the name the way JSON does.
        CommandError::UnknownPipeline { name, known } => {
            return coded(code::NOT_FOUND, format!("unknown pipeline {name:?}; known pipelines: {}", known.join(", ")));
        }
        // Logged in full and worded like every other database failure of the API.
        CommandError::Database(cause) => return database(cause),
        // Already running: the caller can try again later.
        CommandError::Failed(_) => code::BAD_USER_INPUT,
        CommandError::Unavailable(_) => code::UNAVAILABLE,
    };
    coded(kind, error.to_string())
}

fn known(name: &str) -> Result<()> {
    if pipelines::KNOWN.contains(&name) {
        return Ok(());
    }
    Err(coded(code::NOT_FOUND, format!("unknown pipeline {name:?}; known pipelines: {}", pipelines::KNOWN.join(", "))))
}

#[derive(Default)]
pub struct OpsQuery;

#[Object]
impl OpsQuery {
    /// Every pipeline with its schedule, last and next run, in dependency order.
    async fn pipelines(&self, ctx: &Context<'_>) -> Result<Vec<Pipeline>> {
        let report = ops(ctx)?.commands.status().await.map_err(command_error)?;
        Ok(report
            .pipelines
            .into_iter()
            .map(|pipeline| Pipeline {
                running: pipeline.running.is_some(),
                name: pipeline.name,
                schedule: pipeline.schedule,
                resolved_schedule: pipeline.resolved_schedule,
                time_zone: pipeline.time_zone,
                enabled: pipeline.enabled,
                next_run: pipeline.next_run,
                last_run: pipeline.last_run.as_ref().map(Run::from),
                last_failure: pipeline.last_failure.as_ref().map(Run::from),
            })
            .collect())
    }

    /// Recent runs, newest first, of one pipeline or all.
    async fn runs(&self, ctx: &Context<'_>, pipeline: Option<String>, first: Option<i32>) -> Result<Vec<Run>> {
        if let Some(name) = &pipeline {
            known(name)?;
        }
        let db = ctx.data::<Database>()?;
        let records = queries::recent_runs(db, pipeline.as_deref(), clamp(first, 20)?).await.map_err(database)?;
        Ok(records.iter().map(Run::from).collect())
    }

    /// One run by id.
    async fn run(&self, ctx: &Context<'_>, id: i64) -> Result<Option<Run>> {
        let db = ctx.data::<Database>()?;
        Ok(queries::run_by_id(db, id).await.map_err(database)?.as_ref().map(Run::from))
    }

    /// The change feed: what one run changed, or an entity's history (`entity` and `key`),
    /// newest first.
    async fn changes(
        &self,
        ctx: &Context<'_>,
        run: Option<i64>,
        entity: Option<String>,
        key: Option<String>,
        first: Option<i32>,
    ) -> Result<Vec<ChangeEvent>> {
        let db = ctx.data::<Database>()?;
        let rows =
            queries::changes(db, run, entity.as_deref(), key.as_deref(), clamp(first, 100)?).await.map_err(database)?;
        Ok(rows.into_iter().map(ChangeEvent::from).collect())
    }

    /// The live supervisor tree: each actor, its state and restarts.
    async fn supervisor_tree(&self, ctx: &Context<'_>) -> Result<Actor> {
        let caller = Caller::new("graphql", "graphql", false);
        match ops(ctx)?.commands.execute(&caller, Command::Tree).await.map_err(command_error)? {
            Reply::Tree(tree) => Ok(Actor::from(tree)),
            other => Err(coded(code::INTERNAL, format!("unexpected answer to `tree`: {other:?}"))),
        }
    }
}

#[derive(Default)]
pub struct Mutation;

#[Object]
impl Mutation {
    /// Starts a run of `name` now, through the ledger like a scheduled run (admin token only).
    /// Returns the run, queued or running; follow it with `runFinished`.
    async fn run_pipeline(&self, ctx: &Context<'_>, name: String) -> Result<Run> {
        if ctx.data_opt::<super::http::ViaGet>().is_some() {
            return Err(coded(code::BAD_USER_INPUT, "mutations are not allowed over GET; POST them"));
        }
        if ctx.data_opt::<Admin>() != Some(&Admin(true)) {
            return Err(coded(
                code::FORBIDDEN,
                "runPipeline needs the admin token: send `Authorization: Bearer <token>` (HAYLOFT_ADMIN_TOKEN)",
            ));
        }
        known(&name)?;
        let caller = Caller::new("graphql", "admin token", true);
        let command = Command::Run { pipeline: name, wait: false, allow_mass_delete: false };
        let run_id = match ops(ctx)?.commands.execute(&caller, command).await.map_err(command_error)? {
            Reply::RunStarted { run_id, .. } => run_id,
            other => return Err(coded(code::INTERNAL, format!("unexpected answer to `run`: {other:?}"))),
        };
        let db = ctx.data::<Database>()?;
        let record = queries::run_by_id(db, run_id).await.map_err(database)?;
        record.as_ref().map(Run::from).ok_or_else(|| coded(code::NOT_FOUND, format!("run {run_id} vanished")))
    }
}

/// A run that started.
#[derive(SimpleObject, Clone)]
pub struct RunStarted {
    pub run_id: i64,
    pub pipeline: String,
    pub trigger: String,
    pub attempt: i32,
}

/// A run that finished (succeeded, failed or abandoned).
#[derive(SimpleObject, Clone)]
pub struct RunFinished {
    pub run_id: i64,
    pub pipeline: String,
    pub status: String,
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    pub unchanged: i64,
    pub duration_ms: i64,
    pub error: Option<String>,
}

/// One changed row, as a run reports it.
#[derive(SimpleObject, Clone)]
pub struct RowChange {
    pub run_id: i64,
    pub pipeline: String,
    pub entity: String,
    pub key: String,
    pub op: String,
    pub fields: Vec<String>,
}

/// Log severities, from the most verbose.
#[derive(Enum, Copy, Clone, Eq, PartialEq, PartialOrd, Ord, Debug)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    fn parse(level: &str) -> Self {
        match level.to_ascii_uppercase().as_str() {
            "TRACE" => LogLevel::Trace,
            "DEBUG" => LogLevel::Debug,
            "WARN" => LogLevel::Warn,
            "ERROR" => LogLevel::Error,
            _ => LogLevel::Info,
        }
    }
}

/// A log record.
#[derive(SimpleObject, Clone)]
pub struct LogRecord {
    pub at: DateTime<Utc>,
    pub level: LogLevel,
    /// The actor that wrote it, as a supervisor path.
    pub actor: Option<String>,
    pub message: String,
    pub fields: String,
}

/// The bus as a stream of events. The bus is a bounded ring that never waits for a reader: a
/// subscriber that falls a whole ring behind is dropped — its subscription completes, and the
/// client may subscribe again — rather than slowing the engine or silently missing events.
fn bus(ctx: &Context<'_>) -> Result<impl Stream<Item = Arc<Event>> + Send + 'static> {
    let events = ops(ctx)?.events.clone();
    Ok(events
        .stream()
        .take_while(|item| {
            let keep = match item {
                BusItem::Event(_) => true,
                BusItem::Missed(missed) => {
                    tracing::info!(missed, "a GraphQL subscriber fell behind and was dropped");
                    false
                }
            };
            std::future::ready(keep)
        })
        .filter_map(|item| async move {
            match item {
                BusItem::Event(event) => Some(event),
                BusItem::Missed(_) => None,
            }
        }))
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Runs as they start, of one pipeline or all.
    async fn run_started(
        &self,
        ctx: &Context<'_>,
        pipeline: Option<String>,
    ) -> Result<impl Stream<Item = RunStarted> + use<>> {
        Ok(bus(ctx)?.filter_map(move |event| {
            let wanted = pipeline.clone();
            async move {
                match &*event {
                    Event::RunStarted { run_id, pipeline, trigger, attempt }
                        if wanted.as_ref().is_none_or(|wanted| wanted == pipeline) =>
                    {
                        Some(RunStarted {
                            run_id: *run_id,
                            pipeline: pipeline.clone(),
                            trigger: trigger.to_string(),
                            attempt: *attempt,
                        })
                    }
                    _ => None,
                }
            }
        }))
    }

    /// Runs as they finish, of one pipeline or all.
    async fn run_finished(
        &self,
        ctx: &Context<'_>,
        pipeline: Option<String>,
    ) -> Result<impl Stream<Item = RunFinished> + use<>> {
        Ok(bus(ctx)?.filter_map(move |event| {
            let wanted = pipeline.clone();
            async move {
                match &*event {
                    Event::RunFinished { run_id, pipeline, status, counts, duration_ms, error }
                        if wanted.as_ref().is_none_or(|wanted| wanted == pipeline) =>
                    {
                        Some(RunFinished {
                            run_id: *run_id,
                            pipeline: pipeline.clone(),
                            status: status.to_string(),
                            inserted: counts.inserted,
                            updated: counts.updated,
                            deleted: counts.deleted,
                            unchanged: counts.unchanged,
                            duration_ms: *duration_ms,
                            error: error.clone(),
                        })
                    }
                    _ => None,
                }
            }
        }))
    }

    /// Rows as runs change them, of one entity type (`item`, `npc`, `tower_reward`...) or all.
    async fn changes(
        &self,
        ctx: &Context<'_>,
        entity: Option<String>,
    ) -> Result<impl Stream<Item = RowChange> + use<>> {
        Ok(bus(ctx)?
            .map(move |event| {
                let mut rows = Vec::new();
                if let Event::Changes { run_id, pipeline, changes } = &*event {
                    for change in changes.iter() {
                        if entity.as_ref().is_none_or(|entity| *entity == change.entity) {
                            rows.push(RowChange {
                                run_id: *run_id,
                                pipeline: pipeline.clone(),
                                entity: change.entity.clone(),
                                key: change.key.clone(),
                                op: change.op.as_str().to_owned(),
                                fields: change.fields.clone(),
                            });
                        }
                    }
                }
                futures::stream::iter(rows)
            })
            .flatten())
    }

    /// Log lines at or above `level` (default INFO).
    async fn logs(&self, ctx: &Context<'_>, level: Option<LogLevel>) -> Result<impl Stream<Item = LogRecord> + use<>> {
        let minimum = level.unwrap_or(LogLevel::Info);
        Ok(bus(ctx)?.filter_map(move |event| async move {
            match &*event {
                Event::Log(line) if LogLevel::parse(&line.level) >= minimum => Some(LogRecord {
                    at: line.at,
                    level: LogLevel::parse(&line.level),
                    actor: line.actor.clone(),
                    message: line.message.clone(),
                    fields: line.fields.clone(),
                }),
                _ => None,
            }
        }))
    }
}
