//! The command core: carries out the typed commands of [`hayloft_actors::command`] for every
//! front door (CLI, SSH, dashboard, Discord, devices, GraphQL), so they answer alike and are
//! tested once. Front doors reach the database and the pipelines only through it.
//!
//! A core built for the server holds the pipelines' handles and the supervisor tree; one built
//! for a one-shot CLI command holds only the database and answers `tree` and `logs` with a hint
//! to ask the server instead.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use actix::Addr;
use chrono::Utc;
use futures::{Stream, StreamExt};
use hayloft_actors::command::{
    help_text, Caller, ChangeEntry, ChangeList, ChangesView, Command, CommandError, EntityChanges, LogItem, LogLevel,
    PipelineStatus, Reply, StatusReport, LOGS_DEFAULT,
};
use hayloft_actors::events::{BusItem, Change, ChangeOp, Event, EventBus};
use hayloft_actors::ledger::{RunRecord, RunStatus, Trigger};
use hayloft_actors::pipeline::{PipelineHandle, RunOptions, TriggerError};
use hayloft_actors::schedule::{MaintenanceWindow, Schedule};
use hayloft_actors::supervisor::{GetTree, Supervisor, TreeNode};
use tracing::info;

use crate::db::queries::{self, ChangeRow};
use crate::db::Database;
use crate::pipelines;

/// How many recent runs `status` scans for failures.
const STATUS_FAILURE_WINDOW: i64 = 20;

/// What the command core needs to know of the configuration, resolved once by the application.
#[derive(Debug, Clone, Default)]
pub struct CommandSettings {
    /// Every pipeline with its schedule as configured, in registry order: what `status` lists.
    pub schedules: Vec<(&'static str, Schedule)>,
    /// When scheduled runs are held back, for the next-run times `status` shows.
    pub maintenance: Vec<MaintenanceWindow>,
    /// The database as `status` names it, without its password.
    pub database: String,
    /// How nodes are judged live or dead, for `nodes` and `status`.
    pub liveness: crate::db::nodes::Liveness,
}

/// What commands read and drive. Cheap to clone: every front door holds one.
#[derive(Clone)]
pub struct CommandCore {
    settings: Arc<CommandSettings>,
    db: Database,
    pipelines: Arc<BTreeMap<String, PipelineHandle>>,
    /// The root supervisor, once the tree has started (server only).
    root: Arc<OnceLock<Addr<Supervisor>>>,
    /// The event bus, for `logs -f` (server only).
    events: Option<EventBus>,
}

/// Every entity `count` knows with its table: the pipelines' (from the registry), then the
/// ledger's.
fn countable() -> impl Iterator<Item = (&'static str, &'static str)> {
    pipelines::registry::entities()
        .map(|entity| (entity.name, entity.table))
        .chain(queries::LEDGER_ENTITIES.iter().map(|(name, table, _)| (*name, *table)))
}

/// The table of entity `name`: its entity name or its table name (run notes name tables:
/// `tower_rewards`), any case, `_` and `-` alike.
fn entity_table(name: &str) -> Option<&'static str> {
    let wanted = name.trim().to_ascii_lowercase().replace('_', "-");
    countable().find(|(entity, table)| *entity == wanted || table.replace('_', "-") == wanted).map(|(_, table)| table)
}

fn unknown_entity(name: &str) -> CommandError {
    let known: Vec<&str> = countable().map(|(name, _)| name).collect();
    let typed = name.replace('_', "-");
    let hint = pipelines::nearest(&typed, known.iter().copied())
        .map(|near| format!(" (did you mean {near:?}?)"))
        .unwrap_or_default();
    CommandError::NotFound(format!("unknown entity {name:?}{hint}; known entities: {}", known.join(", ")))
}

fn database_error(error: impl std::fmt::Display) -> CommandError {
    CommandError::Database(error.to_string())
}

fn unknown_pipeline(name: &str) -> CommandError {
    CommandError::UnknownPipeline {
        name: name.to_owned(),
        known: pipelines::KNOWN.iter().map(|known| (*known).to_owned()).collect(),
    }
}

/// A stored change-feed row as the engine's [`Change`].
fn change_of_row(row: ChangeRow) -> Change {
    Change {
        op: match row.op.as_str() {
            "insert" => ChangeOp::Insert,
            "delete" => ChangeOp::Delete,
            _ => ChangeOp::Update,
        },
        fields: row.fields.split(',').filter(|field| !field.is_empty()).map(str::to_owned).collect(),
        entity: row.entity,
        key: row.entity_key,
        label: row.label,
    }
}

impl CommandCore {
    /// The core of a running server.
    pub fn server(
        settings: Arc<CommandSettings>,
        db: Database,
        pipelines: Arc<BTreeMap<String, PipelineHandle>>,
        root: Arc<OnceLock<Addr<Supervisor>>>,
        events: EventBus,
    ) -> Self {
        Self { settings, db, pipelines, root, events: Some(events) }
    }

    /// The core of a one-shot CLI command; `pipelines` is empty unless the command runs some.
    pub fn offline(
        settings: Arc<CommandSettings>,
        db: Database,
        pipelines: Arc<BTreeMap<String, PipelineHandle>>,
    ) -> Self {
        Self { settings, db, pipelines, root: Arc::default(), events: None }
    }

    /// The database it answers from.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Parses and carries out one command line.
    pub async fn execute_line(&self, caller: &Caller, line: &str) -> Result<Reply, CommandError> {
        self.execute(caller, Command::parse(line)?).await
    }

    /// Carries out one command for `caller`, after checking they may.
    pub async fn execute(&self, caller: &Caller, command: Command) -> Result<Reply, CommandError> {
        if let Err(refused) = command.authorize(caller) {
            info!(front_door = caller.front_door, who = %caller.who, %command, "command refused");
            return Err(refused);
        }
        if command.needs_admin() {
            // Commands that change something leave a trace of who asked.
            info!(front_door = caller.front_door, who = %caller.who, %command, "command");
        }
        match command {
            Command::Count { entity } => {
                let Some(table) = entity_table(&entity) else { return Err(unknown_entity(&entity)) };
                let count = queries::count_rows(&self.db, table).await.map_err(database_error)?;
                Ok(Reply::Count { entity, count })
            }
            Command::Status => Ok(Reply::Status(self.status().await?)),
            Command::Run { pipeline, wait, allow_mass_delete } => self.run(&pipeline, wait, allow_mass_delete).await,
            Command::Recent { limit, pipeline } => {
                // Imports are runs too, recorded under a name no pipeline has.
                let pipeline = match pipeline {
                    Some(name) if name == crate::import::NAME => Some(name),
                    Some(name) => Some(self.pipeline_named(&name).ok_or_else(|| unknown_pipeline(&name))?.to_owned()),
                    None => None,
                };
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let runs = queries::recent_runs(&self.db, pipeline.as_deref(), limit).await.map_err(database_error)?;
                Ok(Reply::Recent { runs })
            }
            Command::Changes { run, view } => Ok(Reply::Changes(self.changes(run, &view).await?)),
            Command::Show { run } => match queries::run_by_id(&self.db, run).await.map_err(database_error)? {
                Some(record) => Ok(Reply::Run(record)),
                None => Err(CommandError::NoSuchRun(run)),
            },
            Command::History { run, entity, key, limit } => {
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let rows = queries::changes(&self.db, run, entity.as_deref(), key.as_deref(), limit)
                    .await
                    .map_err(database_error)?;
                let entries = rows
                    .into_iter()
                    .map(|row| ChangeEntry {
                        id: row.id,
                        run_id: row.run_id,
                        recorded_at: row.recorded_at.and_utc(),
                        change: change_of_row(row),
                    })
                    .collect();
                Ok(Reply::History { entries })
            }
            Command::Logs { level, .. } => {
                self.require_server("logs")?;
                Ok(Reply::Logs(crate::telemetry::recent_logs(LOGS_DEFAULT, level)))
            }
            Command::Tree => Ok(Reply::Tree(self.tree().await?)),
            Command::Nodes => {
                let nodes = crate::db::nodes::list(&self.db, self.settings.liveness).await.map_err(database_error)?;
                Ok(Reply::Nodes { nodes })
            }
            Command::Help { topic } => Ok(Reply::Help { text: help_text(topic.as_deref())? }),
        }
    }

    /// The live supervisor tree.
    pub async fn tree(&self) -> Result<TreeNode, CommandError> {
        self.require_server("tree")?;
        let root = self.root.get().ok_or_else(|| CommandError::Unavailable("the tree is starting".into()))?;
        root.send(GetTree).await.map_err(|_| CommandError::Unavailable("the root supervisor did not answer".into()))
    }

    /// The pipelines this process runs.
    pub fn pipelines(&self) -> &BTreeMap<String, PipelineHandle> {
        &self.pipelines
    }

    fn require_server(&self, command: &str) -> Result<(), CommandError> {
        if self.events.is_some() {
            return Ok(());
        }
        Err(CommandError::Unavailable(format!(
            "`{command}` shows a running server: ask it over SSH (`ssh -p 2222 hayloft@host {command}`) or open its dashboard"
        )))
    }

    /// New log lines at `level` or above, from now until the stream is dropped. A reader that
    /// falls behind gets [`LogItem::Missed`] instead of the lines it lost.
    pub fn follow_logs(
        &self,
        level: LogLevel,
    ) -> Result<impl Stream<Item = LogItem> + Send + Unpin + 'static, CommandError> {
        self.require_server("logs -f")?;
        let events = self.events.as_ref().ok_or_else(|| CommandError::Unavailable("no event bus".into()))?;
        Ok(events.stream().filter_map(move |item| {
            futures::future::ready(match item {
                BusItem::Event(event) => match &*event {
                    Event::Log(line) if level.admits(&line.level) => Some(LogItem::Line(line.clone())),
                    _ => None,
                },
                BusItem::Missed(count) => Some(LogItem::Missed { count }),
            })
        }))
    }

    /// The pipeline a person meant, among those this configuration runs (the registry and any
    /// copies of the demo pipeline).
    fn pipeline_named(&self, name: &str) -> Option<&'static str> {
        pipelines::named_among(name, self.settings.schedules.iter().map(|(known, _)| *known))
    }

    /// Every pipeline with its schedule, last and next run, and the latest failures.
    pub async fn status(&self) -> Result<StatusReport, CommandError> {
        let windows = &self.settings.maintenance;
        let now = Utc::now();
        let mut rows = Vec::new();
        let by_pipeline = |runs: Vec<RunRecord>| -> std::collections::HashMap<String, RunRecord> {
            runs.into_iter().map(|run| (run.pipeline.clone(), run)).collect()
        };
        let mut successes = by_pipeline(queries::latest_successes(&self.db, false).await.map_err(database_error)?);
        let mut changes = by_pipeline(queries::latest_successes(&self.db, true).await.map_err(database_error)?);
        for &(name, ref schedule) in &self.settings.schedules {
            let recent = queries::recent_runs(&self.db, Some(name), 10).await.map_err(database_error)?;
            let running = match self.pipelines.get(name) {
                Some(handle) => handle.active_run().await,
                None => None,
            };
            rows.push(PipelineStatus {
                name: name.to_owned(),
                schedule: schedule.spec().to_owned(),
                resolved_schedule: schedule.resolved().to_owned(),
                schedule_words: schedule.in_words(),
                time_zone: schedule.time_zone().to_string(),
                enabled: !schedule.is_never(),
                queued_retry: recent.iter().any(|run| run.status == RunStatus::Queued),
                running,
                next_run: schedule.next_fire_after(now, windows),
                last_run: recent.iter().find(|run| run.status != RunStatus::Queued).cloned(),
                last_failure: recent
                    .iter()
                    .find(|run| matches!(run.status, RunStatus::Failed | RunStatus::Abandoned))
                    .cloned(),
                last_success: successes.remove(name),
                last_change: changes.remove(name),
            });
        }
        let recent_failures = queries::recent_runs(&self.db, None, STATUS_FAILURE_WINDOW)
            .await
            .map_err(database_error)?
            .into_iter()
            .filter(|run| matches!(run.status, RunStatus::Failed | RunStatus::Abandoned))
            .collect();
        let database = match self.settings.database.as_str() {
            "" => self.db.backend().to_string(),
            named => named.to_owned(),
        };
        let nodes = crate::db::nodes::list(&self.db, self.settings.liveness).await.map_err(database_error)?;
        Ok(StatusReport { database, pipelines: rows, recent_failures, nodes })
    }

    async fn run(&self, name: &str, wait: bool, allow_mass_delete: bool) -> Result<Reply, CommandError> {
        let name = self.pipeline_named(name).ok_or_else(|| unknown_pipeline(name))?;
        let Some(handle) = self.pipelines.get(name) else {
            return Err(CommandError::Unavailable(format!("pipeline {name} is not loaded in this process")));
        };
        let trigger_error = |error: TriggerError| match error {
            TriggerError::AlreadyRunning { .. } | TriggerError::ClaimLost { .. } => {
                CommandError::Failed(error.to_string())
            }
            TriggerError::UnknownPipeline(_) => unknown_pipeline(name),
            other => CommandError::Unavailable(other.to_string()),
        };
        let options = RunOptions { allow_mass_delete, ..RunOptions::default() };
        if wait {
            let record = handle.run_to_completion(Trigger::Manual, options).await.map_err(trigger_error)?;
            Ok(Reply::RunFinished(record))
        } else {
            let run_id = handle.trigger(Trigger::Manual, options).await.map_err(trigger_error)?;
            Ok(Reply::RunStarted { pipeline: name.to_owned(), run_id })
        }
    }

    async fn changes(&self, run: Option<i64>, view: &ChangesView) -> Result<ChangeList, CommandError> {
        let run_id = match run {
            Some(run_id) => {
                if queries::run_by_id(&self.db, run_id).await.map_err(database_error)?.is_none() {
                    return Err(CommandError::NoSuchRun(run_id));
                }
                run_id
            }
            None => match queries::latest_changed_run(&self.db).await.map_err(database_error)? {
                Some(run_id) => run_id,
                None => {
                    return Ok(ChangeList {
                        run_id: None,
                        summary: Vec::new(),
                        changes: Vec::new(),
                        total: 0,
                        rows: view.rows,
                    })
                }
            },
        };
        // As the feed names it, with `-` for `_` and a plural `s` forgiven (`items`, `npc-items`).
        let entities = view.entity.as_ref().map(|wanted| {
            let wanted = wanted.replace('-', "_");
            let singular = wanted.strip_suffix('s').unwrap_or(&wanted).to_owned();
            vec![wanted, singular]
        });
        // Counted by the database, and only the rows to show read: a big run's feed stays there.
        let counts =
            queries::change_counts_of_run(&self.db, run_id, entities.as_deref()).await.map_err(database_error)?;
        let mut summary: Vec<EntityChanges> = Vec::new();
        for (entity, op, count) in counts {
            let index = match summary.iter().position(|known| known.entity == entity) {
                Some(index) => index,
                None => {
                    summary.push(EntityChanges { entity, inserted: 0, updated: 0, deleted: 0 });
                    summary.len() - 1
                }
            };
            let count = usize::try_from(count).unwrap_or(usize::MAX);
            let counts = &mut summary[index];
            match op.as_str() {
                "insert" => counts.inserted += count,
                "delete" => counts.deleted += count,
                _ => counts.updated += count,
            }
        }
        let total = summary.iter().map(|entity| entity.inserted + entity.updated + entity.deleted).sum();
        let limit = i64::try_from(view.limit).unwrap_or(i64::MAX);
        let rows =
            queries::changes_of_run(&self.db, run_id, entities.as_deref(), limit).await.map_err(database_error)?;
        let changes = rows.into_iter().map(change_of_row).collect();
        Ok(ChangeList { run_id: Some(run_id), summary, changes, total, rows: view.rows })
    }
}
