//! Operations data in the same schema: pipelines (schedule, last and next run, state), runs, the
//! change feed, the live supervisor tree; the one mutation (`runPipeline`, admin token only);
//! and the subscriptions.
//!
//! Every field is a thin adapter over the command core, like SSH, Discord and the dashboard: it
//! turns its arguments into a [`Command`], asks the core, and reshapes the [`Reply`] into the
//! GraphQL types clients know. Nothing here reads the database or drives a pipeline itself, so
//! the answers agree with every other front door. The run and change subscriptions listen to the
//! event bus directly: they follow what the engine announces, which no command answers.

use std::sync::Arc;

use async_graphql::{Context, Enum, Object, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use hayloft_actors::command::{Caller, ChangeEntry, Command, CommandError, LogItem, LogLevel, Reply};
use hayloft_actors::events::{BusItem, Event, EventBus};
use hayloft_actors::ledger::RunRecord;
use hayloft_actors::supervisor::TreeNode;

use super::errors::{bad_input, code, coded, database};
use crate::commands::CommandCore;

/// What the operations fields read, shared by all requests.
#[derive(Clone)]
pub struct Ops {
    /// Pipelines, runs, changes, logs and the tree come from the same core as every other front
    /// door.
    pub commands: CommandCore,
    /// What the run and change subscriptions follow.
    pub events: EventBus,
}

/// Who reads operations data: anyone who may query the API. Only `runPipeline` asks as an admin,
/// after checking the token.
fn reader() -> Caller {
    Caller::new("graphql", "graphql", false)
}

/// Whether this request carries the admin token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admin(pub bool);

/// The most runs or changes one list returns.
const MAX_ROWS: usize = 500;

/// How many rows a list returns: `first`, else `default`; never negative nor past [`MAX_ROWS`].
fn rows(first: Option<i32>, default: usize) -> Result<usize> {
    let Some(first) = first else { return Ok(default) };
    let Ok(first) = usize::try_from(first) else { return Err(bad_input("`first` must not be negative")) };
    if first > MAX_ROWS {
        return Err(bad_input(format!("`first` may be at most {MAX_ROWS}")));
    }
    Ok(first)
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
    /// The node that ran (or runs) it.
    pub node: Option<String>,
    /// The schedule slot a scheduled run stands for.
    pub slot: Option<DateTime<Utc>>,
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
            node: record.owner.clone(),
            slot: record.slot,
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

/// One node sharing the database.
#[derive(SimpleObject)]
pub struct Node {
    /// Its id (`[cluster] node_id`, or generated at its start).
    pub id: String,
    /// live, dead (silent past the limit, or its process gone) or left (stopped cleanly).
    pub state: String,
    pub host: String,
    pub pid: i64,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,
    /// Milliseconds since its last heartbeat, by the database's clock.
    pub heartbeat_age_ms: i64,
    /// The pipelines it runs now.
    pub running: Vec<String>,
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

impl From<ChangeEntry> for ChangeEvent {
    fn from(entry: ChangeEntry) -> Self {
        Self {
            id: entry.id,
            run_id: entry.run_id,
            op: entry.change.op.as_str().to_owned(),
            entity: entry.change.entity,
            key: entry.change.key,
            fields: entry.change.fields,
            recorded_at: entry.recorded_at,
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

/// Carries out `command` for `caller` through the command core.
async fn ask(ctx: &Context<'_>, caller: &Caller, command: Command) -> Result<Reply> {
    ops(ctx)?.commands.execute(caller, command).await.map_err(command_error)
}

/// The error for a reply of the wrong shape: the core and this adapter disagree.
fn unexpected(command: &str, reply: &Reply) -> async_graphql::Error {
    coded(code::INTERNAL, format!("unexpected answer to `{command}`: {reply:?}"))
}

#[derive(Default)]
pub struct OpsQuery;

#[Object]
impl OpsQuery {
    /// Every pipeline with its schedule, last and next run, in dependency order.
    async fn pipelines(&self, ctx: &Context<'_>) -> Result<Vec<Pipeline>> {
        let report = match ask(ctx, &reader(), Command::Status).await? {
            Reply::Status(report) => report,
            other => return Err(unexpected("status", &other)),
        };
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
        let limit = rows(first, 20)?;
        match ask(ctx, &reader(), Command::Recent { limit, pipeline }).await? {
            Reply::Recent { runs } => Ok(runs.iter().map(Run::from).collect()),
            other => Err(unexpected("recent", &other)),
        }
    }

    /// One run by id.
    async fn run(&self, ctx: &Context<'_>, id: i64) -> Result<Option<Run>> {
        match ops(ctx)?.commands.execute(&reader(), Command::Show { run: id }).await {
            Ok(Reply::Run(record)) => Ok(Some(Run::from(&record))),
            Ok(other) => Err(unexpected("show", &other)),
            // A field that names one thing answers null when there is no such thing.
            Err(CommandError::NoSuchRun(_)) => Ok(None),
            Err(error) => Err(command_error(error)),
        }
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
        let limit = rows(first, 100)?;
        match ask(ctx, &reader(), Command::History { run, entity, key, limit }).await? {
            Reply::History { entries } => Ok(entries.into_iter().map(ChangeEvent::from).collect()),
            other => Err(unexpected("history", &other)),
        }
    }

    /// The nodes sharing the database, live ones first: their heartbeats and what each runs.
    /// (Which node ran a run: its `node` field.)
    async fn nodes(&self, ctx: &Context<'_>) -> Result<Vec<Node>> {
        match ask(ctx, &reader(), Command::Nodes).await? {
            Reply::Nodes { nodes } => Ok(nodes
                .into_iter()
                .map(|node| Node {
                    id: node.node,
                    state: node.state.to_owned(),
                    host: node.host,
                    pid: node.pid,
                    version: node.version,
                    started_at: node.started_at,
                    last_heartbeat: node.last_heartbeat,
                    heartbeat_age_ms: node.heartbeat_age_ms,
                    running: node.running,
                })
                .collect()),
            other => Err(unexpected("nodes", &other)),
        }
    }

    /// The live supervisor tree: each actor, its state and restarts.
    async fn supervisor_tree(&self, ctx: &Context<'_>) -> Result<Actor> {
        match ask(ctx, &reader(), Command::Tree).await? {
            Reply::Tree(tree) => Ok(Actor::from(tree)),
            other => Err(unexpected("tree", &other)),
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
        let caller = Caller::new("graphql", "admin token", true);
        let command = Command::Run { pipeline: name, wait: false, allow_mass_delete: false };
        let run_id = match ask(ctx, &caller, command).await? {
            Reply::RunStarted { run_id, .. } => run_id,
            other => return Err(unexpected("run", &other)),
        };
        match ops(ctx)?.commands.execute(&caller, Command::Show { run: run_id }).await {
            Ok(Reply::Run(record)) => Ok(Run::from(&record)),
            Ok(other) => Err(unexpected("show", &other)),
            Err(CommandError::NoSuchRun(_)) => Err(coded(code::NOT_FOUND, format!("run {run_id} vanished"))),
            Err(error) => Err(command_error(error)),
        }
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

// The engine's `LogLevel` as GraphQL spells it. The engine knows nothing of GraphQL, so this
// mirror only names the values, in the order the schema has always listed them; it has no
// ordering and no parser of its own. `remote` derives `From` both ways, so the engine's type
// does all filtering and parsing, and the build fails if the two ever list different values.
// (Its doc comment is the schema's description: keep it one line.)
/// Log severities, from the most verbose.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "LogLevel", remote = "hayloft_actors::command::LogLevel")]
pub enum GraphqlLogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// A log record.
#[derive(SimpleObject, Clone)]
pub struct LogRecord {
    pub at: DateTime<Utc>,
    pub level: GraphqlLogLevel,
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
    async fn logs(
        &self,
        ctx: &Context<'_>,
        level: Option<GraphqlLogLevel>,
    ) -> Result<impl Stream<Item = LogRecord> + use<>> {
        let minimum = level.map(LogLevel::from).unwrap_or(LogLevel::Info);
        let lines = ops(ctx)?.commands.follow_logs(minimum).map_err(command_error)?;
        Ok(lines
            .take_while(|item| {
                let keep = match item {
                    LogItem::Line(_) => true,
                    LogItem::Missed { count } => {
                        tracing::info!(missed = count, "a GraphQL subscriber fell behind and was dropped");
                        false
                    }
                };
                std::future::ready(keep)
            })
            .filter_map(|item| async move {
                match item {
                    LogItem::Line(line) => Some(LogRecord {
                        at: line.at,
                        // Tracing only writes the five levels; anything else reads as INFO.
                        level: LogLevel::parse(&line.level).unwrap_or_default().into(),
                        actor: line.actor,
                        message: line.message,
                        fields: line.fields,
                    }),
                    LogItem::Missed { .. } => None,
                }
            }))
    }
}
