//! The command core's vocabulary: typed requests ([`Command`]), typed answers ([`Reply`]) and
//! errors ([`CommandError`]), shared by every front door (CLI, SSH, dashboard, chat, devices).
//!
//! A front door parses its input with [`Command::parse`] (or builds a [`Command`] directly),
//! hands it to the application's command core together with who is asking ([`Caller`]), and
//! renders the [`Reply`]: as text ([`Reply::to_text`]), as JSON (every type is `Serialize`), or
//! however its medium wants. Because parsing, permissions and answers live here, the front doors
//! agree with each other and are tested once.

use std::fmt::{self, Write as _};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::events::{Change, LogLine};
use crate::ledger::{RunId, RunRecord, RunStatus};
use crate::supervisor::TreeNode;

/// How many runs `recent` shows by default, and at most.
pub const RECENT_DEFAULT: usize = 10;
pub const RECENT_MAX: usize = 200;
/// How many log lines `logs` shows from the ring.
pub const LOGS_DEFAULT: usize = 50;
/// How many change-feed entries `history` shows by default, and at most.
pub const HISTORY_DEFAULT: usize = 20;
pub const HISTORY_MAX: usize = 500;

/// A request to the command core.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// How many rows an entity (a table) holds.
    Count { entity: String },
    /// Every pipeline: schedule, last and next run, recent failures.
    Status,
    /// Start a run now; `wait` answers when it has finished instead of when it has started.
    /// `allow_mass_delete` lets this one run past the delete guard.
    Run { pipeline: String, wait: bool, allow_mass_delete: bool },
    /// The latest runs (of one pipeline, or of all) and what they changed.
    Recent { limit: usize, pipeline: Option<String> },
    /// What one run changed (default: the latest run that changed anything): counts per
    /// entity, and with `view.rows` the rows themselves.
    Changes { run: Option<RunId>, view: ChangesView },
    /// One run in full: status, counts, timings, error and notes.
    Show { run: RunId },
    /// The change feed, newest first, narrowed to one run, one entity type or one row (`entity`
    /// and `key`) when given: how a row came to be what it is.
    History { run: Option<RunId>, entity: Option<String>, key: Option<String>, limit: usize },
    /// Recent log lines at `level` or above; `follow` keeps streaming new ones.
    Logs { follow: bool, level: LogLevel },
    /// The live supervisor tree.
    Tree,
    /// The nodes sharing the database: state, last heartbeat, what each runs.
    Nodes,
    /// The list of commands, or one command's usage.
    Help { topic: Option<String> },
}

/// One command's name, arguments and one-line description, for `help` and for errors.
pub struct Usage {
    pub name: &'static str,
    pub arguments: &'static str,
    pub summary: &'static str,
    /// Whether only admins may use it.
    pub admin: bool,
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[Usage] = &[
    Usage {
        name: "count",
        arguments: "<entity>",
        summary: "count the rows of an entity (items, runs...)",
        admin: false,
    },
    Usage { name: "status", arguments: "", summary: "pipelines: last and next run, recent failures", admin: false },
    Usage {
        name: "run",
        arguments: "<pipeline> [--no-wait] [--allow-mass-delete]",
        summary: "run a pipeline now (admins only)",
        admin: true,
    },
    Usage {
        name: "recent",
        arguments: "[n] [pipeline]",
        summary: "the latest runs and their change counts",
        admin: false,
    },
    Usage {
        name: "changes",
        arguments: "[run] [--rows] [--entity e] [-n n]",
        summary: "what a run changed per entity; --rows lists the rows (default: the latest change)",
        admin: false,
    },
    Usage { name: "show", arguments: "<run>", summary: "one run in full: counts, timings, error, notes", admin: false },
    Usage {
        name: "history",
        arguments: "[entity [key]] [--run <run>] [-n <n>]",
        summary: "the change feed, newest first: of an entity, one row or one run",
        admin: false,
    },
    Usage {
        name: "logs",
        arguments: "[-f] [--level error|warn|info]",
        summary: "recent log lines; -f follows new ones until Ctrl-C",
        admin: false,
    },
    Usage {
        name: "tree",
        arguments: "",
        summary: "the live supervisor tree: states, restarts, quarantine",
        admin: false,
    },
    Usage {
        name: "nodes",
        arguments: "",
        summary: "the nodes sharing the database: state, heartbeat, what each runs",
        admin: false,
    },
    Usage { name: "help", arguments: "[command]", summary: "this list, or one command's usage", admin: false },
];

fn usage_of(name: &str) -> Option<&'static Usage> {
    COMMANDS.iter().find(|usage| usage.name == name)
}

/// Log levels, most severe first; a filter keeps its level and everything more severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "error" => Some(Self::Error),
            "warn" | "warning" => Some(Self::Warn),
            "info" => Some(Self::Info),
            "debug" => Some(Self::Debug),
            "trace" => Some(Self::Trace),
            _ => None,
        }
    }

    /// Whether a line at `level` (as tracing spells it: `INFO`, `WARN`...) passes this filter.
    pub fn admits(self, level: &str) -> bool {
        LogLevel::parse(level).is_none_or(|level| level <= self)
    }
}

/// Who is asking, as the front door authenticated them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `cli`, `ssh`, `dashboard`, `graphql`, `discord`, `serial`, `streamdeck`.
    pub front_door: &'static str,
    /// A name for the logs: a key's comment, a user id, a device path.
    pub who: String,
    /// Whether this caller may start runs.
    pub admin: bool,
}

impl Caller {
    pub fn new(front_door: &'static str, who: impl Into<String>, admin: bool) -> Self {
        Self { front_door, who: who.into(), admin }
    }
}

/// How much of a run's changes to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangesView {
    /// List the rows (by name, with their changed fields), not only the counts per entity.
    pub rows: bool,
    /// Only this entity's changes (as the feed names it: `item`, `npc_item`).
    pub entity: Option<String>,
    /// At most this many rows.
    pub limit: usize,
}

/// How many rows `changes --rows` lists unless told.
pub const CHANGES_DEFAULT: usize = 50;
/// The most rows one `changes` answer lists.
pub const CHANGES_MAX: usize = 10_000;

impl Default for ChangesView {
    fn default() -> Self {
        Self { rows: false, entity: None, limit: CHANGES_DEFAULT }
    }
}

/// Why a command was not carried out. Every message is short and says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("type a command; `help` lists them")]
    Empty,
    #[error("unknown command `{word}`{}; `help` lists the commands", suggestion.map(|name| format!(" (did you mean `{name}`?)")).unwrap_or_default())]
    Unknown { word: String, suggestion: Option<&'static str> },
    #[error("{problem}; usage: {usage}")]
    Usage { problem: String, usage: String },
    #[error("`{command}` is not allowed: {why}")]
    Forbidden { command: &'static str, why: String },
    #[error("{0}")]
    NotFound(String),
    /// A pipeline name that is not registered. Carried as its own kind so each front door can
    /// word it in its own medium (GraphQL quotes the name, a terminal uses backticks).
    #[error("unknown pipeline `{name}`{}; known pipelines: {}", nearest_hint(name, known), known.join(", "))]
    UnknownPipeline { name: String, known: Vec<String> },
    /// A run id the ledger does not hold: GraphQL answers it with `null`, terminals with an error.
    #[error("there is no run #{0}; `recent` lists the runs")]
    NoSuchRun(RunId),
    /// The database failed; the text is its cause, for front doors that report it their own way.
    #[error("the database did not answer: {0}")]
    Database(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

impl CommandError {
    /// The exit code a terminal front door ends with (the CLI, SSH exec): 2 when the command
    /// itself was wrong (nothing was looked up), 1 for everything else, not found included.
    pub fn exit_code(&self) -> u8 {
        if self.kind() == "bad_request" {
            2
        } else {
            1
        }
    }

    /// A short machine-readable kind, for JSON answers and exit codes.
    pub fn kind(&self) -> &'static str {
        match self {
            CommandError::Empty | CommandError::Unknown { .. } | CommandError::Usage { .. } => "bad_request",
            CommandError::Forbidden { .. } => "forbidden",
            CommandError::NotFound(_) | CommandError::UnknownPipeline { .. } | CommandError::NoSuchRun(_) => {
                "not_found"
            }
            CommandError::Unavailable(_) | CommandError::Database(_) => "unavailable",
            CommandError::Failed(_) => "failed",
        }
    }
}

fn usage_error(command: &'static str, problem: impl Into<String>) -> CommandError {
    let usage = usage_of(command).map(|usage| format!("{} {}", usage.name, usage.arguments)).unwrap_or_default();
    CommandError::Usage { problem: problem.into(), usage: usage.trim_end().to_owned() }
}

/// The longest command line accepted, in bytes; front doors cut input there.
pub const MAX_LINE: usize = 1024;

/// Takes `--json` out of a command line: the one flag every command accepts on a front door
/// that prints (the CLI, SSH), because it changes how the answer is written, not what is asked.
pub fn take_json_flag(line: &str) -> (String, bool) {
    let mut json = false;
    let words: Vec<&str> = line
        .split_whitespace()
        .filter(|word| {
            let flag = *word == "--json";
            json |= flag;
            !flag
        })
        .collect();
    (words.join(" "), json)
}

impl Command {
    /// Parses one command line: a command word (any case) and its arguments, separated by
    /// whitespace.
    pub fn parse(line: &str) -> Result<Command, CommandError> {
        if line.len() > MAX_LINE {
            return Err(usage_error("help", format!("the line is longer than {MAX_LINE} bytes")));
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((first, arguments)) = words.split_first() else { return Err(CommandError::Empty) };
        let word = first.to_ascii_lowercase();
        let command = match word.as_str() {
            "count" => match arguments {
                [entity] => Command::Count { entity: entity.to_ascii_lowercase() },
                [] => return Err(usage_error("count", "count needs an entity, e.g. `count items`")),
                _ => return Err(usage_error("count", "count takes one entity")),
            },
            "status" => {
                no_arguments("status", arguments)?;
                Command::Status
            }
            "run" => {
                let mut pipeline = None;
                let mut wait = true;
                let mut allow_mass_delete = false;
                for argument in arguments {
                    match *argument {
                        "--no-wait" | "--detach" => wait = false,
                        "--allow-mass-delete" => allow_mass_delete = true,
                        flag if flag.starts_with('-') => {
                            return Err(usage_error("run", format!("unknown option `{flag}`")));
                        }
                        name if pipeline.is_none() => pipeline = Some(name.to_ascii_lowercase()),
                        _ => return Err(usage_error("run", "run takes one pipeline")),
                    }
                }
                let Some(pipeline) = pipeline else {
                    return Err(usage_error("run", "run needs a pipeline, e.g. `run items`"));
                };
                Command::Run { pipeline, wait, allow_mass_delete }
            }
            "recent" => {
                let mut limit = None;
                let mut pipeline = None;
                for argument in arguments {
                    if argument.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                        match argument.parse::<usize>() {
                            Ok(n) if limit.is_none() && (1..=RECENT_MAX).contains(&n) => limit = Some(n),
                            _ => {
                                return Err(usage_error(
                                    "recent",
                                    format!("n must be a number from 1 to {RECENT_MAX}"),
                                ));
                            }
                        }
                    } else if pipeline.is_none() {
                        pipeline = Some(argument.to_ascii_lowercase());
                    } else {
                        return Err(usage_error("recent", "recent takes a number and a pipeline at most"));
                    }
                }
                Command::Recent { limit: limit.unwrap_or(RECENT_DEFAULT), pipeline }
            }
            "changes" => parse_changes(arguments)?,
            "show" => match arguments {
                [run] => Command::Show { run: parse_run_id("show", run)? },
                [] => return Err(usage_error("show", "show needs a run id, e.g. `show 42`")),
                _ => return Err(usage_error("show", "show takes one run id")),
            },
            "history" => parse_history(arguments)?,
            "logs" | "log" => {
                let mut follow = false;
                let mut level = LogLevel::Info;
                let mut rest = arguments.iter();
                while let Some(argument) = rest.next() {
                    match *argument {
                        "-f" | "--follow" => follow = true,
                        "--level" | "-l" => {
                            let Some(value) = rest.next() else {
                                return Err(usage_error("logs", "--level needs a value"));
                            };
                            level = LogLevel::parse(value)
                                .ok_or_else(|| usage_error("logs", format!("unknown level `{value}`")))?;
                        }
                        other => match other.strip_prefix("--level=") {
                            Some(value) => {
                                level = LogLevel::parse(value)
                                    .ok_or_else(|| usage_error("logs", format!("unknown level `{value}`")))?;
                            }
                            None => return Err(usage_error("logs", format!("unknown argument `{other}`"))),
                        },
                    }
                }
                Command::Logs { follow, level }
            }
            "tree" => {
                no_arguments("tree", arguments)?;
                Command::Tree
            }
            "nodes" => {
                no_arguments("nodes", arguments)?;
                Command::Nodes
            }
            "help" | "?" => match arguments {
                [] => Command::Help { topic: None },
                [topic] => Command::Help { topic: Some(topic.to_ascii_lowercase()) },
                _ => return Err(usage_error("help", "help takes at most one command")),
            },
            _ => return Err(CommandError::Unknown { suggestion: closest_command(&word), word: (*first).to_owned() }),
        };
        Ok(command)
    }

    /// The command's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Count { .. } => "count",
            Command::Status => "status",
            Command::Run { .. } => "run",
            Command::Recent { .. } => "recent",
            Command::Changes { .. } => "changes",
            Command::Show { .. } => "show",
            Command::History { .. } => "history",
            Command::Logs { .. } => "logs",
            Command::Tree => "tree",
            Command::Nodes => "nodes",
            Command::Help { .. } => "help",
        }
    }

    /// Whether only admin callers may use it.
    pub fn needs_admin(&self) -> bool {
        usage_of(self.name()).is_some_and(|usage| usage.admin)
    }

    /// Refuses the command if `caller` may not use it.
    pub fn authorize(&self, caller: &Caller) -> Result<(), CommandError> {
        if self.needs_admin() && !caller.admin {
            return Err(CommandError::Forbidden {
                command: self.name(),
                why: format!("only admins may start runs, and this {} login is not one", caller.front_door),
            });
        }
        Ok(())
    }
}

/// A run id as typed: `42` or `#42`.
fn parse_run_id(command: &'static str, text: &str) -> Result<RunId, CommandError> {
    match text.trim_start_matches('#').parse::<RunId>() {
        Ok(run) if run > 0 => Ok(run),
        _ => Err(usage_error(command, format!("`{text}` is not a run id"))),
    }
}

/// `history [entity [key]] [--run <run>] [-n <n>]`. The count is an option rather than a bare
/// number because keys are often numbers: `history npc 1` is npc 1's history.
fn parse_changes(arguments: &[&str]) -> Result<Command, CommandError> {
    let mut run = None;
    let mut view = ChangesView::default();
    let mut rest = arguments.iter();
    while let Some(argument) = rest.next() {
        let (flag, inline_value) = match argument.split_once('=') {
            Some((flag, value)) if flag.starts_with('-') => (flag, Some(value)),
            _ => (*argument, None),
        };
        let mut value = || {
            inline_value
                .or_else(|| rest.next().copied())
                .ok_or_else(|| usage_error("changes", format!("{flag} needs a value")))
        };
        match flag {
            "--rows" => view.rows = true,
            "--run" | "-r" => run = Some(parse_run_id("changes", value()?)?),
            "--entity" | "-e" => view.entity = Some(value()?.to_ascii_lowercase()),
            "-n" | "--limit" => match value()?.parse::<usize>() {
                Ok(n) if (1..=CHANGES_MAX).contains(&n) => view.limit = n,
                _ => return Err(usage_error("changes", format!("n must be a number from 1 to {CHANGES_MAX}"))),
            },
            other if other.starts_with('-') => {
                return Err(usage_error("changes", format!("unknown option `{other}`")));
            }
            word if run.is_none() => run = Some(parse_run_id("changes", word)?),
            _ => return Err(usage_error("changes", "changes takes one run id")),
        }
    }
    Ok(Command::Changes { run, view })
}

fn parse_history(arguments: &[&str]) -> Result<Command, CommandError> {
    let mut run = None;
    let mut limit = None;
    let mut entity = None;
    let mut key = None;
    let mut rest = arguments.iter();
    while let Some(argument) = rest.next() {
        let (flag, inline_value) = match argument.split_once('=') {
            Some((flag, value)) if flag.starts_with('-') => (flag, Some(value)),
            _ => (*argument, None),
        };
        match flag {
            "--run" | "-r" | "-n" | "--limit" => {
                let Some(value) = inline_value.or_else(|| rest.next().copied()) else {
                    return Err(usage_error("history", format!("{flag} needs a value")));
                };
                if flag == "--run" || flag == "-r" {
                    run = Some(parse_run_id("history", value)?);
                } else {
                    match value.parse::<usize>() {
                        Ok(n) if (1..=HISTORY_MAX).contains(&n) => limit = Some(n),
                        _ => {
                            return Err(usage_error("history", format!("n must be a number from 1 to {HISTORY_MAX}")));
                        }
                    }
                }
            }
            other if other.starts_with('-') => {
                return Err(usage_error("history", format!("unknown option `{other}`")));
            }
            // Entity names are lowercase, like `count`'s; keys are kept as typed.
            word if entity.is_none() => entity = Some(word.to_ascii_lowercase()),
            word if key.is_none() => key = Some(word.to_owned()),
            _ => return Err(usage_error("history", "history takes an entity and a key at most")),
        }
    }
    Ok(Command::History { run, entity, key, limit: limit.unwrap_or(HISTORY_DEFAULT) })
}

fn no_arguments(command: &'static str, arguments: &[&str]) -> Result<(), CommandError> {
    match arguments.first() {
        None => Ok(()),
        Some(extra) => Err(usage_error(command, format!("{command} takes no arguments (got `{extra}`)"))),
    }
}

/// ` (did you mean `x`?)` when one of `known` is close enough to `name` to be a typo.
fn nearest_hint(name: &str, known: &[String]) -> String {
    let typed = name.to_ascii_lowercase().replace('-', "_");
    known
        .iter()
        .map(|known| (edit_distance(&typed, known), known))
        .filter(|(distance, known)| *distance <= 2 && *distance < known.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| format!(" (did you mean `{known}`?)"))
        .unwrap_or_default()
}

/// The known command nearest to a mistyped word, if it is close enough to be a typo.
fn closest_command(word: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .map(|usage| (edit_distance(word, usage.name), usage.name))
        .filter(|(distance, name)| *distance <= 2 && *distance < name.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// Levenshtein distance, for "did you mean".
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// One pipeline as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineStatus {
    pub name: String,
    pub schedule: String,
    /// The schedule with hashed fields resolved, as it fires.
    pub resolved_schedule: String,
    /// The schedule in words with its time zone (`every 30 minutes at :17 (UTC)`).
    pub schedule_words: String,
    pub time_zone: String,
    pub enabled: bool,
    /// Whether a retry is queued (after an abandoned run).
    pub queued_retry: bool,
    /// The run in progress, if any.
    pub running: Option<RunId>,
    pub last_run: Option<RunRecord>,
    pub next_run: Option<DateTime<Utc>>,
    pub last_failure: Option<RunRecord>,
    /// The latest run that succeeded.
    pub last_success: Option<RunRecord>,
    /// The latest successful run that changed rows: when the data last changed.
    pub last_change: Option<RunRecord>,
}

impl PipelineStatus {
    /// Where the pipeline stands: running now, or how its last run ended; `None` if it never ran.
    pub fn state(&self) -> Option<RunStatus> {
        match (&self.running, &self.last_run) {
            (Some(_), _) => Some(RunStatus::Running),
            (None, Some(run)) => Some(run.status),
            (None, None) => None,
        }
    }

    /// [`Self::state`] as one word: `running`, `succeeded`, `failed`..., or `never`.
    pub fn state_word(&self) -> &'static str {
        self.state().map_or("never", RunStatus::as_str)
    }
}

/// What `status` answers.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub database: String,
    pub pipelines: Vec<PipelineStatus>,
    /// Failed or abandoned runs among the latest ones, newest first.
    pub recent_failures: Vec<RunRecord>,
    /// The nodes sharing the database, live ones first.
    pub nodes: Vec<NodeInfo>,
}

/// One node of the cluster, as operators see it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeInfo {
    pub node: String,
    /// `live`, `dead` (silent past the limit, or its process gone) or `left` (stopped cleanly).
    pub state: &'static str,
    pub host: String,
    pub pid: i64,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,
    /// Milliseconds since the last heartbeat, by the database's clock.
    pub heartbeat_age_ms: i64,
    /// The pipelines it is running now.
    pub running: Vec<String>,
}

/// Lines listing `nodes`, two spaces in.
fn nodes_text(nodes: &[NodeInfo], out: &mut String) {
    if nodes.is_empty() {
        let _ = writeln!(out, "  (none has started yet)");
    }
    for node in nodes {
        let running =
            if node.running.is_empty() { "idle".to_owned() } else { format!("running {}", node.running.join(", ")) };
        let _ = writeln!(
            out,
            "  {:<24} {:<5} heartbeat {:.1} s ago  {}  ({} pid {}, v{})",
            node.node,
            node.state,
            node.heartbeat_age_ms as f64 / 1000.0,
            running,
            node.host,
            node.pid,
            node.version
        );
    }
}

/// What `changes` answers.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeList {
    /// `None` when no run has changed anything yet.
    pub run_id: Option<RunId>,
    /// Inserted, updated and deleted rows per entity, over every change of the run (or of the
    /// entity asked for).
    pub summary: Vec<EntityChanges>,
    /// The rows, in the order they were written, at most the limit asked for.
    pub changes: Vec<Change>,
    /// How many changes the run made in all (of the entity asked for): `changes` may be cut short.
    pub total: usize,
    /// Whether the rows were asked for (`--rows`): the text answer lists them only then.
    #[serde(skip)]
    pub rows: bool,
}

/// One entity's share of a run's changes.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EntityChanges {
    pub entity: String,
    pub inserted: usize,
    pub updated: usize,
    pub deleted: usize,
}

/// One change-feed entry as recorded: the change, the run that made it, and when.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeEntry {
    /// The entry's place in the feed: a later entry has a larger id.
    pub id: i64,
    pub run_id: RunId,
    pub recorded_at: DateTime<Utc>,
    #[serde(flatten)]
    pub change: Change,
}

/// What `logs` answers: the newest lines of the in-memory ring, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct LogPage {
    pub lines: Vec<LogLine>,
    /// Whether older lines were already pushed out of the ring.
    pub truncated: bool,
}

/// An answer of the command core.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Count {
        entity: String,
        count: i64,
    },
    Status(StatusReport),
    /// `run --no-wait`: the run is claimed and on its way.
    RunStarted {
        pipeline: String,
        run_id: RunId,
    },
    /// `run`: the run finished (successfully or not: see its status).
    RunFinished(RunRecord),
    Recent {
        runs: Vec<RunRecord>,
    },
    Changes(ChangeList),
    /// `show`: one run as the ledger holds it.
    Run(RunRecord),
    /// `history`: change-feed entries, newest first.
    History {
        entries: Vec<ChangeEntry>,
    },
    Logs(LogPage),
    Tree(TreeNode),
    Nodes {
        nodes: Vec<NodeInfo>,
    },
    Help {
        text: String,
    },
}

/// A line a `logs -f` stream yields.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LogItem {
    Line(LogLine),
    /// The reader fell behind and this many lines were skipped.
    Missed {
        count: u64,
    },
}

impl LogItem {
    pub fn to_text(&self) -> String {
        match self {
            LogItem::Line(line) => log_line_text(line),
            LogItem::Missed { count } => format!("… {count} log lines missed (the reader fell behind)"),
        }
    }
}

fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2026-11-24T07:35:01Z  INFO root/pipelines/items/runner: run succeeded pipeline="items"`.
pub fn log_line_text(line: &LogLine) -> String {
    let mut text = format!("{} {:>5}", timestamp(&line.at), line.level);
    if let Some(actor) = &line.actor {
        let _ = write!(text, " {actor}:");
    }
    let _ = write!(text, " {}", line.message);
    if !line.fields.is_empty() {
        let _ = write!(text, " {}", line.fields);
    }
    text
}

/// `+5 ~12 -0 =1121`.
pub fn counts_text(run: &RunRecord) -> String {
    let counts = run.counts;
    format!("+{} ~{} -{} ={}", counts.inserted, counts.updated, counts.deleted, counts.unchanged)
}

/// One line per run: `#42 items succeeded +5 ~12 -0 =1121 in 38 ms (manual)`, then its error.
pub fn run_line(run: &RunRecord) -> String {
    let mut line = format!("#{} {} {}", run.id, run.pipeline, run.status);
    if run.status.is_finished() || run.status == RunStatus::Running {
        let _ = write!(line, " {}", counts_text(run));
    }
    if let Some(ms) = run.duration_ms() {
        let _ = write!(line, " in {ms} ms");
    }
    let _ = write!(line, " ({})", run.trigger);
    if let Some(error) = &run.error {
        let _ = write!(line, ": {error}");
    }
    line
}

fn tree_text(node: &TreeNode, prefix: &str, last: bool, root: bool, out: &mut String) {
    let (branch, child_prefix) = match (root, last) {
        (true, _) => (String::new(), String::new()),
        (false, true) => (format!("{prefix}└─ "), format!("{prefix}   ")),
        (false, false) => (format!("{prefix}├─ "), format!("{prefix}│  ")),
    };
    let _ = write!(out, "{branch}{} [{}]", node.name, node.state);
    if node.restarts > 0 {
        let _ = write!(out, " restarts={}", node.restarts);
    }
    if let Some(ms) = node.quarantined_for_ms {
        let _ =
            write!(out, " quarantined, retry in {}", humantime::format_duration(std::time::Duration::from_millis(ms)));
    }
    if let Some(exit) = &node.last_exit {
        let _ = write!(out, " last exit: {exit}");
    }
    out.push('\n');
    let count = node.children.len();
    for (index, child) in node.children.iter().enumerate() {
        tree_text(child, &child_prefix, index + 1 == count, false, out);
    }
}

/// The text of `help`, or of `help <command>`.
pub fn help_text(topic: Option<&str>) -> Result<String, CommandError> {
    if let Some(topic) = topic {
        let Some(usage) = usage_of(topic) else {
            return Err(CommandError::Unknown { word: topic.to_owned(), suggestion: closest_command(topic) });
        };
        return Ok(format!("{} {}\n  {}\n", usage.name, usage.arguments, usage.summary).replace("  \n", "\n"));
    }
    let mut text = String::from("commands:\n");
    for usage in COMMANDS {
        let synopsis = format!("{} {}", usage.name, usage.arguments);
        let _ = writeln!(text, "  {:<38} {}", synopsis.trim_end(), usage.summary);
    }
    Ok(text)
}

impl Reply {
    /// The answer as JSON, the same on every front door that prints it (`--json` on the CLI and
    /// over SSH): the bare list or object a script wants, not the tagged enum.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Reply::Count { entity, count } => Ok(serde_json::json!({ "entity": entity, "count": count })),
            Reply::Changes(list) => serde_json::to_value(list),
            Reply::Recent { runs } => serde_json::to_value(runs),
            Reply::Nodes { nodes } => Ok(serde_json::json!({ "nodes": nodes })),
            other => serde_json::to_value(other),
        };
        // Every part is plain data (strings, numbers, maps with string keys): it always converts.
        value.unwrap_or_else(|error| serde_json::json!({ "error": error.to_string() }))
    }

    /// The answer as plain text lines, for terminals, the CLI and serial devices.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        match self {
            Reply::Count { count, .. } => {
                let _ = writeln!(out, "{count}");
            }
            Reply::Status(report) => {
                let _ = writeln!(out, "database: {}", report.database);
                let _ = writeln!(
                    out,
                    "{:<12} {:<22} {:<10} {:<20} {:<14} next run",
                    "pipeline", "schedule", "last", "last run at", "counts"
                );
                for pipeline in &report.pipelines {
                    let last = pipeline.state_word();
                    let last_at = pipeline
                        .last_run
                        .as_ref()
                        .and_then(|run| run.started_at.as_ref().map(timestamp))
                        .unwrap_or_else(|| "-".to_owned());
                    let counts = pipeline.last_run.as_ref().map(counts_text).unwrap_or_else(|| "-".to_owned());
                    let next = match (&pipeline.next_run, pipeline.enabled) {
                        (_, false) => "disabled".to_owned(),
                        (Some(next), true) => timestamp(next),
                        (None, true) => "-".to_owned(),
                    };
                    let _ = writeln!(
                        out,
                        "{:<12} {:<22} {:<10} {:<20} {:<14} {next}",
                        pipeline.name, pipeline.schedule, last, last_at, counts
                    );
                }
                if !report.recent_failures.is_empty() {
                    let _ = writeln!(out, "recent failures:");
                    for run in &report.recent_failures {
                        let _ = writeln!(out, "  {}", run_line(run));
                    }
                }
                if !report.nodes.is_empty() {
                    let _ = writeln!(out, "nodes:");
                    nodes_text(&report.nodes, &mut out);
                }
            }
            Reply::RunStarted { pipeline, run_id } => {
                let _ = writeln!(out, "{pipeline}: run #{run_id} started");
            }
            Reply::RunFinished(run) => {
                let _ = writeln!(out, "{}", run_line(run));
                for note in run.notes.iter().take(10) {
                    let _ = writeln!(out, "  note: {note}");
                }
                if run.notes.len() > 10 {
                    let _ = writeln!(out, "  … and {} more notes", run.notes.len() - 10);
                }
            }
            Reply::Recent { runs } => {
                if runs.is_empty() {
                    let _ = writeln!(out, "no runs yet");
                }
                for run in runs {
                    let _ = writeln!(out, "{}", run_line(run));
                }
            }
            Reply::Changes(list) => match list.run_id {
                None => {
                    let _ = writeln!(out, "no run has changed anything yet");
                }
                Some(run_id) => {
                    let _ = writeln!(out, "run #{run_id}: {} changes", list.total);
                    let width = list.summary.iter().map(|entity| entity.entity.len()).max().unwrap_or(0) + 1;
                    for entity in &list.summary {
                        let name = format!("{}:", entity.entity);
                        let _ = writeln!(
                            out,
                            "  {name:<width$} +{} ~{} −{}",
                            entity.inserted, entity.updated, entity.deleted
                        );
                    }
                    if list.rows {
                        for change in &list.changes {
                            let _ = write!(out, "  {:<6} {} {}", change.op.as_str(), change.entity, change.key);
                            if let Some(label) = &change.label {
                                let _ = write!(out, " {label}");
                            }
                            if !change.fields.is_empty() {
                                let _ = write!(out, " ({})", change.fields.join(", "));
                            }
                            out.push('\n');
                        }
                        if list.total > list.changes.len() {
                            let _ = writeln!(out, "  … and {} more (-n to see more)", list.total - list.changes.len());
                        }
                    } else if list.total > 0 {
                        let _ = writeln!(out, "  (`changes {run_id} --rows` lists them)");
                    }
                }
            },
            Reply::Run(run) => {
                let _ = writeln!(out, "{}", run_line(run));
                let times = [
                    ("queued", Some(&run.queued_at)),
                    ("started", run.started_at.as_ref()),
                    ("finished", run.finished_at.as_ref()),
                ];
                for (what, at) in times {
                    if let Some(at) = at {
                        let _ = writeln!(out, "  {what} at {}", timestamp(at));
                    }
                }
                for note in &run.notes {
                    let _ = writeln!(out, "  note: {note}");
                }
            }
            Reply::History { entries } => {
                if entries.is_empty() {
                    let _ = writeln!(out, "no changes recorded");
                }
                for entry in entries {
                    let change = &entry.change;
                    let _ = write!(
                        out,
                        "{} run #{} {:<6} {} {}",
                        timestamp(&entry.recorded_at),
                        entry.run_id,
                        change.op.as_str(),
                        change.entity,
                        change.key
                    );
                    if !change.fields.is_empty() {
                        let _ = write!(out, " ({})", change.fields.join(", "));
                    }
                    out.push('\n');
                }
            }
            Reply::Logs(page) => {
                if page.truncated {
                    let _ = writeln!(out, "… older lines are no longer kept");
                }
                for line in &page.lines {
                    let _ = writeln!(out, "{}", log_line_text(line));
                }
            }
            Reply::Tree(root) => tree_text(root, "", true, true, &mut out),
            Reply::Nodes { nodes } => nodes_text(nodes, &mut out),
            Reply::Help { text } => out.push_str(text),
        }
        out
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Count { entity } => write!(f, "count {entity}"),
            Command::Status => f.write_str("status"),
            Command::Run { pipeline, wait, allow_mass_delete } => {
                write!(f, "run {pipeline}")?;
                if !wait {
                    f.write_str(" --no-wait")?;
                }
                if *allow_mass_delete {
                    f.write_str(" --allow-mass-delete")?;
                }
                Ok(())
            }
            Command::Recent { limit, pipeline: Some(pipeline) } => write!(f, "recent {limit} {pipeline}"),
            Command::Recent { limit, pipeline: None } => write!(f, "recent {limit}"),
            Command::Changes { run, view } => {
                f.write_str("changes")?;
                if let Some(run) = run {
                    write!(f, " {run}")?;
                }
                if view.rows {
                    f.write_str(" --rows")?;
                }
                if let Some(entity) = &view.entity {
                    write!(f, " --entity {entity}")?;
                }
                if view.limit != CHANGES_DEFAULT {
                    write!(f, " -n {}", view.limit)?;
                }
                Ok(())
            }
            Command::Show { run } => write!(f, "show {run}"),
            Command::History { run, entity, key, limit } => {
                f.write_str("history")?;
                for word in [entity, key].into_iter().flatten() {
                    write!(f, " {word}")?;
                }
                if let Some(run) = run {
                    write!(f, " --run {run}")?;
                }
                write!(f, " -n {limit}")
            }
            Command::Logs { follow, level } => {
                write!(f, "logs{} --level {}", if *follow { " -f" } else { "" }, format!("{level:?}").to_lowercase())
            }
            Command::Tree => f.write_str("tree"),
            Command::Nodes => f.write_str("nodes"),
            Command::Help { topic: Some(topic) } => write!(f, "help {topic}"),
            Command::Help { topic: None } => f.write_str("help"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_every_command() {
        let cases = [
            ("count items", Command::Count { entity: "items".into() }),
            ("COUNT Items", Command::Count { entity: "items".into() }),
            ("status", Command::Status),
            ("run items", Command::Run { pipeline: "items".into(), wait: true, allow_mass_delete: false }),
            ("run items --no-wait", Command::Run { pipeline: "items".into(), wait: false, allow_mass_delete: false }),
            ("recent", Command::Recent { limit: RECENT_DEFAULT, pipeline: None }),
            ("recent 3", Command::Recent { limit: 3, pipeline: None }),
            ("recent items 3", Command::Recent { limit: 3, pipeline: Some("items".into()) }),
            ("changes", Command::Changes { run: None, view: ChangesView::default() }),
            ("changes #12", Command::Changes { run: Some(12), view: ChangesView::default() }),
            (
                "changes 12 --rows --entity item -n 5",
                Command::Changes {
                    run: Some(12),
                    view: ChangesView { rows: true, entity: Some("item".to_owned()), limit: 5 },
                },
            ),
            ("logs", Command::Logs { follow: false, level: LogLevel::Info }),
            ("logs -f --level warn", Command::Logs { follow: true, level: LogLevel::Warn }),
            ("logs --level=error -f", Command::Logs { follow: true, level: LogLevel::Error }),
            ("  tree  ", Command::Tree),
            ("help run", Command::Help { topic: Some("run".into()) }),
        ];
        for (line, expected) in cases {
            assert_eq!(Command::parse(line).unwrap(), expected, "{line}");
        }
    }

    #[test]
    fn mistakes_get_short_helpful_errors() {
        let message = |line: &str| Command::parse(line).unwrap_err().to_string();
        assert_eq!(message(""), "type a command; `help` lists them");
        assert_eq!(message("stauts"), "unknown command `stauts` (did you mean `status`?); `help` lists the commands");
        assert_eq!(message("shutdown -h now"), "unknown command `shutdown`; `help` lists the commands");
        assert_eq!(message("count"), "count needs an entity, e.g. `count items`; usage: count <entity>");
        assert_eq!(message("recent 0"), "n must be a number from 1 to 200; usage: recent [n] [pipeline]");
        assert_eq!(message("changes abc"), "`abc` is not a run id; usage: changes [run] [--rows] [--entity e] [-n n]");
        assert_eq!(message("logs --level loud"), "unknown level `loud`; usage: logs [-f] [--level error|warn|info]");
        assert!(message("run").starts_with("run needs a pipeline, e.g. `run items`; usage: run <pipeline>"));
        assert_eq!(message("status now"), "status takes no arguments (got `now`); usage: status");
        assert!(message(&"x".repeat(MAX_LINE + 1)).contains("longer than 1024 bytes"));
    }

    #[test]
    fn only_admins_may_run() {
        let run = Command::parse("run items").unwrap();
        let guest = Caller::new("ssh", "guest", false);
        let error = run.authorize(&guest).unwrap_err();
        assert_eq!(error.kind(), "forbidden");
        assert!(error.to_string().starts_with("`run` is not allowed"), "{error}");
        assert!(run.authorize(&Caller::new("ssh", "admin", true)).is_ok());
        assert!(Command::Status.authorize(&guest).is_ok());
    }

    #[test]
    fn help_lists_every_command_and_each_usage() {
        let text = help_text(None).unwrap();
        for usage in COMMANDS {
            assert!(text.contains(usage.name), "{}", usage.name);
        }
        assert!(help_text(Some("logs")).unwrap().starts_with("logs [-f]"));
        assert!(help_text(Some("nope")).is_err());
    }

    #[test]
    fn levels_filter_from_the_most_severe() {
        assert!(LogLevel::Warn.admits("ERROR"));
        assert!(LogLevel::Warn.admits("WARN"));
        assert!(!LogLevel::Warn.admits("INFO"));
        assert!(LogLevel::Info.admits("INFO"));
    }

    // `show` takes one run id; `history` takes an entity, a key (often a number), a run and a
    // count, and says what is wrong with anything else.
    #[test]
    fn parses_show_and_history() {
        let history = |run, entity: Option<&str>, key: Option<&str>, limit| Command::History {
            run,
            entity: entity.map(str::to_owned),
            key: key.map(str::to_owned),
            limit,
        };
        let cases = [
            ("show 42", Command::Show { run: 42 }),
            ("SHOW #7", Command::Show { run: 7 }),
            ("history", history(None, None, None, HISTORY_DEFAULT)),
            ("history NPC 1", history(None, Some("npc"), Some("1"), HISTORY_DEFAULT)),
            ("history item Apple -n 5", history(None, Some("item"), Some("Apple"), 5)),
            ("history --run 12", history(Some(12), None, None, HISTORY_DEFAULT)),
            ("history tower_reward --run=#3 --limit=500", history(Some(3), Some("tower_reward"), None, 500)),
        ];
        for (line, expected) in cases {
            let command = Command::parse(line).unwrap();
            assert_eq!(command, expected, "{line}");
            // What the logs show of a command parses back to the same command.
            assert_eq!(Command::parse(&command.to_string()).unwrap(), command, "{command}");
        }
        let message = |line: &str| Command::parse(line).unwrap_err().to_string();
        assert_eq!(message("show"), "show needs a run id, e.g. `show 42`; usage: show <run>");
        assert_eq!(message("show x"), "`x` is not a run id; usage: show <run>");
        assert!(message("history -n 0").starts_with("n must be a number from 1 to 500"));
        assert!(message("history --run").starts_with("--run needs a value"));
        assert!(message("history npc 1 2").starts_with("history takes an entity and a key at most"));
        assert!(message("history --since 1").starts_with("unknown option `--since`"));
    }

    // The new error kinds keep the words terminals have always shown, and their kinds.
    #[test]
    fn typed_errors_read_as_before() {
        let unknown = CommandError::UnknownPipeline { name: "nope".into(), known: vec!["items".into(), "npcs".into()] };
        assert_eq!(unknown.to_string(), "unknown pipeline `nope`; known pipelines: items, npcs");
        assert_eq!(unknown.kind(), "not_found");
        assert_eq!(CommandError::NoSuchRun(9).to_string(), "there is no run #9; `recent` lists the runs");
        assert_eq!(CommandError::Database("gone".into()).to_string(), "the database did not answer: gone");
        assert_eq!(CommandError::Database("gone".into()).kind(), "unavailable");
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("stauts", "status"), 2);
        assert_eq!(edit_distance("cont", "count"), 1);
        assert_eq!(edit_distance("", "tree"), 4);
    }
}
