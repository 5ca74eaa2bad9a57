//! The command line: `hayloft [serve]`, `run`, `import`, `status`, `pipelines`, `count`, `recent`,
//! `changes`, `migrate`. The commands that ask about or drive pipelines go through the same
//! command core as SSH and the dashboard ([`crate::commands`]).
//!
//! Every command reads the same configuration layers (see [`crate::config`]). Output meant for
//! programs goes to stdout (`--json`); logs go to stderr.

use std::io::IsTerminal;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use hayloft_actors::command::{run_line, Caller, Command as CoreCommand, Reply, RECENT_MAX};
use hayloft_actors::ledger::RunStatus;
use serde_json::json;
use tracing::info;

use crate::app::{run_summary, Hayloft, Listeners, Mode};
use crate::commands::CommandCore;
use crate::config::{Config, Overrides};
use crate::db::Database;
use crate::telemetry::LogFormat;
use crate::{pipelines, telemetry};
use hayloft_actors::ledger::Ledger as _;

/// Writes command output to stdout. When the reader has gone (`hayloft status | head -3`), the
/// command's output is no longer wanted: exit quietly instead of panicking as `println!` does.
fn write_out(args: std::fmt::Arguments<'_>, newline: bool) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(args).and_then(|()| if newline { stdout.write_all(b"\n") } else { Ok(()) });
    if let Err(error) = written.and_then(|()| stdout.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        tracing::warn!(%error, "cannot write to stdout");
    }
}

macro_rules! out {
    ($($arg:tt)*) => { write_out(format_args!($($arg)*), false) };
}

macro_rules! outln {
    ($($arg:tt)*) => { write_out(format_args!($($arg)*), true) };
}

#[derive(Debug, Parser)]
#[command(
    name = "hayloft",
    version = crate::VERSION,
    about = "A small-footprint ETL server: extract on a schedule, load into SQLite or PostgreSQL, serve it back."
)]
pub struct Cli {
    /// Configuration file (default: ./hayloft.toml if it exists).
    #[arg(long, global = true, env = "HAYLOFT_CONFIG")]
    config: Option<PathBuf>,
    /// Database: a SQLite path / sqlite:// URL, or a postgres:// URL (env: HAYLOFT_DATABASE_URL or DATABASE_URL).
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Log format (env: HAYLOFT_LOG_FORMAT).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    /// How much to log: a level for Hayloft itself (error, warn, info, debug, trace) or a whole
    /// tracing filter (env: HAYLOFT_LOG_LEVEL; RUST_LOG wins over both).
    #[arg(long, global = true, value_name = "LEVEL", conflicts_with_all = ["verbose", "quiet"])]
    log_level: Option<String>,
    /// Log more: -v for debug, -vv for trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Log less: -q for warnings and errors only, -qq for errors only.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    quiet: u8,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: scheduler, pipelines and HTTP (the default command).
    Serve {
        /// Address to listen on (env: HAYLOFT_ADDR; default 127.0.0.1:8080).
        #[arg(long)]
        addr: Option<String>,
    },
    /// Run one pipeline (or `all`) once and print the outcome.
    Run {
        pipeline: String,
        /// Print one JSON object per run.
        #[arg(long)]
        json: bool,
        /// Let this run delete more rows than the delete guard allows.
        #[arg(long)]
        allow_mass_delete: bool,
        /// Queue the run for a serving node (`hayloft serve`, any node of the cluster) and exit
        /// at once with its id, instead of running it in this process.
        #[arg(long, conflicts_with = "allow_mass_delete")]
        no_wait: bool,
    },
    /// Import the original system's dump files (`dumpdata` JSON) as one run, trigger `import`.
    Import {
        /// The files, e.g. `upstream/_seed/*.json`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the run as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Pipelines, their last and next runs, and recent failures.
    Status {
        #[arg(long)]
        json: bool,
        /// Show only this pipeline's recent runs.
        #[arg(long)]
        pipeline: Option<String>,
        /// How many recent runs to show.
        #[arg(long, default_value_t = 10)]
        limit: i64,
    },
    /// List the pipelines with their schedules.
    Pipelines {
        #[arg(long)]
        json: bool,
    },
    /// The nodes sharing this database: state, last heartbeat, what each runs.
    Nodes {
        #[arg(long)]
        json: bool,
    },
    /// Count the rows of an entity (`hayloft count runs`).
    Count {
        entity: String,
        #[arg(long)]
        json: bool,
    },
    /// The latest runs and their change counts.
    Recent {
        /// How many runs (1 to 200).
        #[arg(default_value_t = 10, value_parser = recent_limit)]
        limit: usize,
        /// Only this pipeline's runs (`recent 3 items`, as over SSH).
        #[arg(value_name = "PIPELINE", conflicts_with = "pipeline")]
        only: Option<String>,
        /// Only this pipeline's runs.
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// What a run changed, per entity (default: the latest run that changed anything).
    Changes {
        /// The run to show (`changes 42`, as over SSH).
        #[arg(value_name = "RUN", conflicts_with = "run")]
        only: Option<i64>,
        /// The run to show.
        #[arg(long)]
        run: Option<i64>,
        /// List the rows, by name, with the fields that changed.
        #[arg(long)]
        rows: bool,
        /// Only this entity's changes, as the feed names it (`item`, `npc_item`).
        #[arg(long)]
        entity: Option<String>,
        /// At most this many rows.
        #[arg(long, short = 'n', default_value_t = hayloft_actors::command::CHANGES_DEFAULT, value_parser = changes_limit)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Serve a capture directory (laid out by its routes.json) over HTTP, as the upstream would.
    Replay {
        dir: PathBuf,
        /// Address to listen on (port 0 picks a free port; the chosen one is printed).
        #[arg(long, default_value = "127.0.0.1:8081")]
        addr: String,
    },
    /// Write generated sample upstream data (same shapes as the game's API) to a directory.
    DemoData {
        /// 1 = the size of the real item list (1,138 items); N repeats it N times.
        #[arg(long, default_value_t = 1)]
        scale: u32,
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Check the configuration (file, environment, flags) without starting anything: exit 0 if
    /// it is valid, 2 with what is wrong if not.
    Validate,
    /// Print the effective configuration, where each value came from, secrets masked.
    Config {
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: `hayloft completions bash > /etc/bash_completion.d/hayloft`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `hayloft man > hayloft.1 && man ./hayloft.1`.
    Man,
    /// Exit 0 if the server at `addr` answers /healthz (for container health checks).
    Healthcheck {
        /// Address of the server (default: the configured `addr`).
        #[arg(long)]
        addr: Option<String>,
    },
}

/// The exit code of a command that stopped with an error. The same on every front door:
/// 0 done, 1 failed or not found, 2 the command itself was wrong (a bad argument, a bad
/// configuration), which clap also uses for the arguments it refuses.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

fn exit_code_of(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(error) = cause.downcast_ref::<hayloft_actors::command::CommandError>() {
            return error.exit_code();
        }
        if cause.is::<crate::config::ConfigError>() {
            return EXIT_USAGE;
        }
    }
    EXIT_FAILED
}

/// The error and its causes on one line, `outer: cause: root cause`, each said once: an error
/// that already quotes its cause (many library errors do) does not get it appended again.
fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.is_empty() {
            text = cause;
        } else if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

/// The level `-v`/`-q` ask for, if they were given.
fn level_from_flags(verbose: u8, quiet: u8) -> Option<String> {
    let level = match (verbose, quiet) {
        (0, 0) => return None,
        (1, _) => "debug",
        (_, 0) => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    Some(level.to_owned())
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run_cli(cli) {
        Ok(code) => code,
        Err(error) => {
            // Printed once, here, and not logged as well: the person who ran the command reads
            // it on stderr either way.
            #[expect(clippy::print_stderr, reason = "the last word of a failed command, for the person who ran it")]
            {
                eprintln!("error: {}", error_text(&error));
            }
            ExitCode::from(exit_code_of(&error))
        }
    }
}

fn run_cli(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = cli.command.unwrap_or(Command::Serve { addr: None });
    // Generated from the definitions alone: no configuration is read, so a broken one does not
    // stand in the way.
    match &command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut <Cli as clap::CommandFactory>::command(), "hayloft", &mut script);
            out!("{}", String::from_utf8_lossy(&script));
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut page)?;
            out!("{}", String::from_utf8_lossy(&page));
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let addr = match &command {
        Command::Serve { addr } | Command::Healthcheck { addr } => addr.clone(),
        _ => None,
    };
    let log_level = cli.log_level.or_else(|| level_from_flags(cli.verbose, cli.quiet));
    let overrides = Overrides { database_url: cli.database_url, addr, log_format: cli.log_format, log_level };
    let config = crate::app::load_config(cli.config.as_deref(), &overrides)?;
    match &command {
        Command::Validate => {
            // Schedules, time zones and maintenance windows of every pipeline, as serve builds them.
            let settings = crate::app::command_settings(&config)?;
            let file = cli.config.clone().or_else(|| {
                let default = PathBuf::from(crate::config::DEFAULT_CONFIG_FILE);
                default.exists().then_some(default)
            });
            let from = file.map_or_else(|| "defaults and environment".to_owned(), |file| file.display().to_string());
            let enabled = settings.schedules.iter().filter(|(_, schedule)| !schedule.is_never()).count();
            outln!(
                "configuration is valid ({from}): database {}, {enabled} of {} pipelines scheduled",
                settings.database,
                settings.schedules.len()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Command::Config { json } => {
            let settings = Config::explain(cli.config.as_deref(), &overrides)?;
            if *json {
                outln!("{}", serde_json::to_value(&settings)?);
            } else {
                let width =
                    settings.iter().map(|setting| setting.key.len() + setting.value.len() + 3).max().unwrap_or(0);
                for setting in &settings {
                    let line = format!("{} = {}", setting.key, setting.value);
                    outln!("{line:<width$}  # {}", setting.source);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    telemetry::init(config.log_format, &config.log_level)?;
    // awc may find more than one rustls crypto provider compiled in; choose ours, once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Commands that never touch the database.
    match &command {
        Command::Healthcheck { .. } => return healthcheck(config.addr),
        Command::Replay { dir, addr } => {
            let listener = TcpListener::bind(addr.as_str()).with_context(|| format!("cannot listen on {addr}"))?;
            outln!("listening on http://{}", listener.local_addr()?);
            actix::System::new().block_on(crate::upstream::replay::serve(dir.clone(), listener))?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::DemoData { scale, out } => {
            crate::upstream::demo_data::generate(*scale, &crate::pipelines::registry::sample_pages())
                .write_to(out)
                .with_context(|| format!("writing {}", out.display()))?;
            outln!("wrote sample data at scale {scale} to {}", out.display());
            return Ok(ExitCode::SUCCESS);
        }
        Command::Schema => {
            out!("{}", crate::front_doors::graphql::sdl());
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    // awc and friends may enable more than one rustls provider; pick ours once, up front.
    let url = config.database()?;
    if let (Some(name), crate::db::DatabaseUrl::Sqlite(path)) = (command.only_reads(), &url) {
        if !path.exists() {
            // An empty directory is not an empty install: a mistyped path must not look like one.
            return Err(anyhow::anyhow!(hayloft_actors::command::CommandError::NotFound(format!(
                "no database at {} (start it with `hayloft serve`, or pass --database-url); `{name}` creates none",
                shown_path(path)
            ))));
        }
    }
    // Migrations run before the actix runtime exists: diesel's harness blocks.
    let applied = url.migrate().map_err(|error| {
        let step = if matches!(error, crate::db::DbError::Connect(_)) { "connecting to" } else { "migrating" };
        anyhow::Error::new(error).context(format!("{step} {}", url.redacted()))
    })?;
    if !applied.is_empty() {
        info!(versions = %applied.join(", "), database = %url.redacted(), "migrations applied");
    }
    let system = actix::System::new();
    match command {
        Command::Serve { .. } => {
            let listener =
                TcpListener::bind(config.addr).with_context(|| format!("cannot listen on {}", config.addr))?;
            let ssh = if config.ssh.enabled { Some(crate::front_doors::ssh::bind(&config.ssh)?) } else { None };
            let local = listener.local_addr()?;
            system.block_on(serve(config, Listeners { http: listener, ssh }, local))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { pipeline, json, no_wait: true, .. } => system.block_on(queue_run(config, pipeline, json)),
        Command::Run { pipeline, json, allow_mass_delete, no_wait: false } => {
            system.block_on(run(config, pipeline, json, allow_mass_delete))
        }
        Command::Import { files, json } => system.block_on(import(config, files, json)),
        Command::Status { json, pipeline, limit } => system.block_on(status(config, json, pipeline, limit)),
        Command::Pipelines { json } => system.block_on(list_pipelines(config, json)),
        Command::Nodes { json } => system.block_on(list_nodes(config, json)),
        Command::Count { entity, json } => system.block_on(ask(config, CoreCommand::Count { entity }, json)),
        Command::Changes { only, run, rows, entity, limit, json } => {
            let view = hayloft_actors::command::ChangesView { rows, entity, limit };
            system.block_on(ask(config, CoreCommand::Changes { run: only.or(run), view }, json))
        }
        Command::Recent { limit, only, pipeline, json } => {
            system.block_on(ask(config, CoreCommand::Recent { limit, pipeline: only.or(pipeline) }, json))
        }
        Command::Healthcheck { .. }
        | Command::Replay { .. }
        | Command::DemoData { .. }
        | Command::Schema
        | Command::Completions { .. }
        | Command::Validate
        | Command::Config { .. }
        | Command::Man => Ok(ExitCode::SUCCESS),
        Command::Migrate => {
            outln!(
                "{}",
                if applied.is_empty() {
                    "database is up to date".to_owned()
                } else {
                    format!("applied {}", applied.join(", "))
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `recent N`: the same bounds as over SSH, refused as a usage error rather than answered
/// with "no runs yet".
fn recent_limit(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(limit) if (1..=RECENT_MAX).contains(&limit) => Ok(limit),
        _ => Err(format!("a number of runs from 1 to {RECENT_MAX}")),
    }
}

fn changes_limit(text: &str) -> Result<usize, String> {
    use hayloft_actors::command::CHANGES_MAX;
    match text.parse::<usize>() {
        Ok(limit) if (1..=CHANGES_MAX).contains(&limit) => Ok(limit),
        _ => Err(format!("a number of rows from 1 to {CHANGES_MAX}")),
    }
}

impl Command {
    /// The name of a command that only reads the database, which must therefore exist already:
    /// only `serve`, `migrate`, `run` and `import` may create one.
    fn only_reads(&self) -> Option<&'static str> {
        match self {
            Command::Status { .. } => Some("status"),
            Command::Pipelines { .. } => Some("pipelines"),
            Command::Nodes { .. } => Some("nodes"),
            Command::Count { .. } => Some("count"),
            Command::Changes { .. } => Some("changes"),
            Command::Recent { .. } => Some("recent"),
            _ => None,
        }
    }
}

/// A relative path as a shell would show it (`./hayloft.db`).
fn shown_path(path: &std::path::Path) -> String {
    if path.is_relative() && !path.starts_with(".") {
        format!("./{}", path.display())
    } else {
        path.display().to_string()
    }
}

/// A dependency-free HTTP/1.0 GET of /healthz: the container image has no curl.
fn healthcheck(mut addr: std::net::SocketAddr) -> anyhow::Result<ExitCode> {
    use std::io::{Read, Write};
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = Duration::from_secs(3);
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(format!("GET /healthz HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status_line = response.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) == Some("200") {
        outln!("healthy");
        Ok(ExitCode::SUCCESS)
    } else {
        bail!("unhealthy: {status_line}")
    }
}

async fn serve(config: Config, listeners: Listeners, local: std::net::SocketAddr) -> anyhow::Result<()> {
    let database = config.database()?.redacted();
    let ssh = listeners.ssh.as_ref().map(TcpListener::local_addr).transpose()?;
    let hayloft = Hayloft::start(config, Mode::Serve(listeners)).await?;
    info!(addr = %local, %database, "listening");
    // Machine-readable lines for scripts and tests that start us on port 0: HTTP first (what
    // scripts wait for), then SSH when it is on. A reader may close the pipe after the first
    // line: a failed write must not take the server down (`println!` would panic).
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "listening on http://{local}");
        if let Some(ssh) = ssh {
            let _ = writeln!(stdout, "ssh listening on {ssh}");
        }
        let _ = stdout.flush();
    }
    wait_for_shutdown_signal().await?;
    info!("shutting down");
    hayloft.shutdown().await;
    actix::System::current().stop();
    Ok(())
}

async fn wait_for_shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

async fn run(config: Config, pipeline: String, json: bool, allow_mass_delete: bool) -> anyhow::Result<ExitCode> {
    // Plain progress lines would break a stderr of JSON log lines.
    let machine = json || config.log_format == LogFormat::Json;
    let names: Vec<String> = if pipeline == "all" {
        // Every enabled pipeline, in dependency order; a disabled one runs only when named.
        pipelines::KNOWN
            .iter()
            .filter(|name| config.pipeline(name).enabled != Some(false))
            .map(|name| (*name).to_owned())
            .collect()
    } else if let Some(name) = pipelines::named_in(&pipeline, crate::app::demo_copies(&config)?) {
        vec![name.to_owned()]
    } else {
        let hint = pipelines::nearest(&pipeline.replace('-', "_"), pipelines::KNOWN)
            .map(|near| format!(" (did you mean {near:?}?)"))
            .unwrap_or_default();
        return Err(anyhow::Error::new(hayloft_actors::command::CommandError::NotFound(format!(
            "unknown pipeline {pipeline:?}{hint}; known pipelines: {}, or `all`",
            pipelines::KNOWN.join(", ")
        ))));
    };
    let hayloft = Hayloft::start(config, Mode::Pipelines).await?;
    // A run left `running` by a dead node would block ours: settle those first.
    settle_dead_nodes(&hayloft, &names).await?;
    let mut all_succeeded = true;
    // The person at the terminal owns the database: the CLI is an admin front door.
    let caller = Caller::new("cli", whoami(), true);
    let many = names.len() > 1;
    let mut finished = Vec::new();
    let began = std::time::Instant::now();
    // Registered once, before the first run: a Ctrl-C between two polls is not lost.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    for name in names {
        let mut watch = Watch::start(&name, machine);
        let command = CoreCommand::Run { pipeline: name.clone(), wait: true, allow_mass_delete };
        let execute = hayloft.commands.execute(&caller, command);
        tokio::pin!(execute);
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        let result = loop {
            tokio::select! {
                result = &mut execute => break result,
                _ = ticks.tick() => watch.tick(&hayloft.db).await,
                signal = &mut interrupted => {
                    watch.finish();
                    signal.context("listening for Ctrl-C")?;
                    return cancel(&hayloft, &name, json).await;
                }
            }
        };
        watch.finish();
        let record = match result {
            Ok(Reply::RunFinished(record)) => record,
            Ok(other) => bail!("unexpected answer to `run`: {other:?}"),
            Err(error) => {
                all_succeeded = false;
                if json {
                    outln!("{}", json!({ "pipeline": name, "status": "refused", "error": error.to_string() }));
                } else {
                    outln!("{name}: not run: {error}");
                }
                continue;
            }
        };
        all_succeeded &= record.status == RunStatus::Succeeded;
        if json {
            outln!("{}", run_summary(&record));
        } else {
            out!("{}", Reply::RunFinished(record.clone()).to_text());
        }
        finished.push(record);
    }
    if many && !json {
        out!("{}", summary_table(&finished, began.elapsed()));
    }
    hayloft.shutdown().await;
    Ok(if all_succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Ctrl-C during `run`: the run this process holds is marked failed at once (`cancelled`), so
/// no other node waits for its lease to run out, and every write still under way is refused by
/// its fencing check; the process exits 130 like any interrupted command, without the grace
/// period a server's shutdown gives its runs.
async fn cancel(hayloft: &Hayloft, pipeline: &str, json: bool) -> anyhow::Result<ExitCode> {
    let why = "cancelled: interrupted (Ctrl-C) before it finished";
    let cancelled = hayloft.ledger.cancel_owned(&hayloft.owner, why).await?;
    let runs = cancelled.iter().map(|id| format!("run {id}")).collect::<Vec<_>>().join(", ");
    if json {
        outln!("{}", json!({ "pipeline": pipeline, "status": "cancelled", "runs": cancelled }));
    } else if cancelled.is_empty() {
        outln!("{pipeline}: interrupted before its run started");
    } else {
        outln!("{pipeline}: cancelled ({runs} marked failed)");
    }
    if let Err(error) = crate::db::tasks::release(&hayloft.db, &hayloft.owner).await {
        tracing::warn!(%error, "could not give back the fan-out pages this process held");
    }
    Ok(ExitCode::from(130))
}

/// Imports `files` as one run of its own supervised chain, beside this node's pipelines.
async fn import(config: Config, files: Vec<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    use hayloft_actors::ledger::Trigger;
    use hayloft_actors::pipeline::{PipelineDeps, RunOptions, RunnerSettings};
    use hayloft_actors::supervisor::{Shutdown, Supervisor};

    let hayloft = Hayloft::start(config, Mode::Pipelines).await?;
    let settings = RunnerSettings {
        owner: hayloft.owner.clone(),
        lease: hayloft.config.lease,
        timeout: hayloft.config.run_timeout,
    };
    let deps = PipelineDeps { ledger: hayloft.ledger.clone(), events: hayloft.events.clone(), settings };
    let (spec, handle) = crate::import::build(files, &hayloft.db, deps);
    let tree = actix::Actor::start(Supervisor::new(crate::import::NAME).child(spec).publish_to(hayloft.events.clone()));
    let mut watch = Watch::start(crate::import::NAME, json || hayloft.config.log_format == LogFormat::Json);
    let result = handle.run_to_completion(Trigger::Import, RunOptions::default()).await;
    watch.finish();
    let _ = tree.send(Shutdown).await;
    hayloft.shutdown().await;
    let record = match result {
        Ok(record) => record,
        Err(error) => {
            if json {
                outln!(
                    "{}",
                    json!({ "pipeline": crate::import::NAME, "status": "refused", "error": error.to_string() })
                );
            } else {
                outln!("import: not run: {error}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let succeeded = record.status == RunStatus::Succeeded;
    if json {
        outln!("{}", run_summary(&record));
    } else {
        out!("{}", Reply::RunFinished(record).to_text());
    }
    Ok(if succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Waits, for at most `dead_after` and two heartbeats, until each node running one of `names`
/// either shows it is alive (its heartbeat moves on) or is counted dead (its run is abandoned
/// and queued again, which our run then takes). A process killed a moment ago still looks
/// alive; this is what lets `hayloft run` right after such a kill converge instead of refusing.
async fn settle_dead_nodes(hayloft: &Hayloft, names: &[String]) -> anyhow::Result<()> {
    let liveness = hayloft.config.cluster.liveness();
    let deadline = tokio::time::Instant::now() + liveness.dead_after + liveness.heartbeat * 2;
    let mut first_seen: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> = Default::default();
    loop {
        let nodes = crate::db::nodes::list(&hayloft.db, liveness).await?;
        let mut waiting = false;
        for node in nodes.iter().filter(|node| node.node != *hayloft.owner && node.state == "live") {
            if !node.running.iter().any(|pipeline| names.contains(pipeline)) {
                continue;
            }
            let seen = *first_seen.entry(node.node.clone()).or_insert(node.last_heartbeat);
            // A heartbeat since we started looking: that node is alive and its run stands.
            waiting |= node.last_heartbeat == seen;
        }
        if !waiting || tokio::time::Instant::now() >= deadline {
            // After the look at the nodes, never before it: a node that went dead between a
            // recovery and the look would otherwise keep its run `running` and refuse ours.
            for run in hayloft.ledger.recover().await? {
                info!(pipeline = %run.pipeline, run_id = run.id, "marked a run of a dead node as abandoned");
            }
            return Ok(());
        }
        tokio::time::sleep(liveness.heartbeat / 4).await;
    }
}

/// The local user's name, for the logs of commands run from the CLI.
fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".to_owned())
}

/// A spinner on stderr when a person is watching (never in JSON mode or when piped).
/// `run all`'s last word: one line per pipeline and the totals.
fn summary_table(runs: &[hayloft_actors::ledger::RunRecord], took: Duration) -> String {
    use std::fmt::Write as _;
    let failed = runs.iter().filter(|run| run.status != RunStatus::Succeeded).count();
    let width = runs.iter().map(|run| run.pipeline.len()).max().unwrap_or(8);
    let mut text = format!(
        "\nsummary: {} pipelines, {} succeeded, {failed} did not, in {:.1} s\n",
        runs.len(),
        runs.len() - failed,
        took.as_secs_f64()
    );
    for run in runs {
        let counts = run.counts;
        let _ = writeln!(
            text,
            "  {:<width$}  {:<9}  +{} ~{} −{}  {} ms",
            run.pipeline,
            run.status.as_str(),
            counts.inserted,
            counts.updated,
            counts.deleted,
            run.duration_ms().unwrap_or(0)
        );
    }
    text
}

/// How often a plain progress line is written when stderr is not a terminal.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What `run` shows while one run goes. On a terminal: a spinner, which becomes a bar (pages
/// done of all, rate, time left) once a fan-out's pages are known, with log lines written above
/// it. Elsewhere (a file, a pipe, a CI log): a plain line every [`PLAIN_PROGRESS_EVERY`]. With
/// `--json`: nothing, stdout and stderr stay machine-readable.
struct Watch {
    pipeline: String,
    bar: Option<indicatif::ProgressBar>,
    plain: bool,
    started: std::time::Instant,
    last_line: std::time::Instant,
    /// The run and its pages finished when first seen: the rate counts from there.
    first_seen: Option<(hayloft_actors::ledger::RunId, u64, std::time::Instant)>,
}

impl Watch {
    /// `machine`: the output is for programs (`--json`, JSON logs): show nothing.
    fn start(pipeline: &str, machine: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (terminal && !machine).then(|| {
            let spinner = indicatif::ProgressBar::new_spinner();
            spinner.set_message(format!("running {pipeline}…"));
            spinner.enable_steady_tick(Duration::from_millis(100));
            telemetry::write_logs_above(Some(spinner.clone()));
            spinner
        });
        let now = std::time::Instant::now();
        Self {
            pipeline: pipeline.to_owned(),
            bar,
            plain: !terminal && !machine,
            started: now,
            last_line: now,
            first_seen: None,
        }
    }

    /// Reads how far the run is (its fan-out pages, when it has them) and shows it.
    async fn tick(&mut self, db: &Database) {
        if self.bar.is_none() && !self.plain {
            return;
        }
        let running = crate::db::queries::recent_runs(db, Some(&self.pipeline), 1)
            .await
            .ok()
            .and_then(|runs| runs.into_iter().next())
            .filter(|run| run.status == RunStatus::Running);
        let Some(run) = running else { return };
        let pages = crate::db::tasks::progress_of_run(db, run.id).await.ok().filter(|pages| pages.total() > 0);
        let now = std::time::Instant::now();
        let (finished, total) = pages.map_or((0, 0), |pages| (pages.finished(), pages.total()));
        let (_, seen_at_start, since) = *self.first_seen.get_or_insert((run.id, finished, now));
        let elapsed = now.duration_since(since).as_secs_f64();
        let rate = if elapsed > 0.5 { finished.saturating_sub(seen_at_start) as f64 / elapsed } else { 0.0 };
        if let Some(bar) = &self.bar {
            if total > 0 {
                if bar.length() != Some(total) {
                    bar.set_length(total);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{msg} [{bar:30}] {pos}/{len} pages · {per_sec} · {eta} left",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_message(format!("{} run {}", self.pipeline, run.id));
                }
                bar.set_position(finished);
            }
            return;
        }
        if now.duration_since(self.last_line) < PLAIN_PROGRESS_EVERY {
            return;
        }
        self.last_line = now;
        let line = if total > 0 {
            let left = (rate > 0.0).then(|| {
                let seconds = (total - finished) as f64 / rate;
                humantime::format_duration(Duration::from_secs(seconds.round() as u64)).to_string()
            });
            format!(
                "{} run {}: {finished} of {total} pages ({:.0} %), {rate:.1} pages/s{}",
                self.pipeline,
                run.id,
                finished as f64 * 100.0 / total as f64,
                left.map(|left| format!(", about {left} left")).unwrap_or_default()
            )
        } else {
            format!("{} run {}: running for {} s", self.pipeline, run.id, self.started.elapsed().as_secs())
        };
        #[expect(clippy::print_stderr, reason = "progress for the person (or the CI log) watching the command")]
        {
            eprintln!("{line}");
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            telemetry::write_logs_above(None);
            bar.finish_and_clear();
        }
    }
}

async fn open(config: &Config) -> anyhow::Result<CommandCore> {
    let url = config.database()?;
    let db = Database::connect(&url, config.pool_size).await.with_context(|| format!("opening {}", url.redacted()))?;
    Ok(CommandCore::offline(Arc::new(crate::app::command_settings(config)?), db, Arc::default()))
}

/// `run --no-wait`: the run is queued in the ledger, where every serving node looks for queued
/// runs each heartbeat, and the command exits with its id (`recent` or `show` follow it).
async fn queue_run(config: Config, pipeline: String, json: bool) -> anyhow::Result<ExitCode> {
    let Some(name) = pipelines::named(&pipeline) else {
        return Err(anyhow::Error::new(hayloft_actors::command::CommandError::Usage {
            problem: format!("--no-wait queues one pipeline, and {pipeline:?} is not one"),
            usage: "run <pipeline> --no-wait".to_owned(),
        }));
    };
    let url = config.database()?;
    let db = Database::connect(&url, 1).await.with_context(|| format!("opening {}", url.redacted()))?;
    let ledger = crate::db::ledger::SqlLedger::new(db.clone());
    let run = match ledger.enqueue(name, hayloft_actors::ledger::Trigger::Manual).await {
        Ok(run) => run,
        Err(error) => {
            if json {
                outln!("{}", json!({ "pipeline": name, "status": "refused", "error": error.to_string() }));
            } else {
                outln!("not queued: {error}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let liveness = config.cluster.liveness();
    let serving = crate::db::nodes::list(&db, liveness).await?.iter().filter(|node| node.state == "live").count();
    if json {
        outln!("{}", json!({ "run_id": run.id, "pipeline": name, "status": "queued", "live_nodes": serving }));
    } else if serving == 0 {
        outln!("queued run {} of {name}; no node is serving now: it starts when one does (`hayloft serve`)", run.id);
    } else {
        outln!(
            "queued run {} of {name}; a serving node starts it within a heartbeat (`hayloft recent 1 {name}`)",
            run.id
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks the command core once and prints its answer, as text or as JSON.
async fn ask(config: Config, command: CoreCommand, json: bool) -> anyhow::Result<ExitCode> {
    let core = open(&config).await?;
    let reply = core.execute(&Caller::new("cli", whoami(), true), command).await?;
    if json {
        outln!("{}", reply.to_json());
    } else {
        out!("{}", reply.to_text());
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(config: Config, json: bool, pipeline: Option<String>, limit: i64) -> anyhow::Result<ExitCode> {
    let core = open(&config).await?;
    let caller = Caller::new("cli", whoami(), true);
    let report = core.status().await?;
    let limit = usize::try_from(limit.clamp(1, RECENT_MAX as i64)).unwrap_or(RECENT_MAX);
    let Reply::Recent { runs } = core.execute(&caller, CoreCommand::Recent { limit, pipeline }).await? else {
        bail!("unexpected answer to `recent`")
    };
    if json {
        let mut value = serde_json::to_value(&report)?;
        value["recent_runs"] = serde_json::to_value(&runs)?;
        outln!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    out!("{}", Reply::Status(report).to_text());
    outln!("\nrecent runs:");
    if runs.is_empty() {
        outln!("  (none yet)");
    }
    for run in &runs {
        outln!("  {}", run_line(run));
    }
    Ok(ExitCode::SUCCESS)
}

async fn list_nodes(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let core = open(&config).await?;
    let caller = Caller::new("cli", whoami(), true);
    let reply = core.execute(&caller, CoreCommand::Nodes).await?;
    match reply {
        reply if json => outln!("{}", reply.to_json()),
        reply => out!("{}", reply.to_text()),
    }
    Ok(ExitCode::SUCCESS)
}

async fn list_pipelines(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let core = open(&config).await?;
    let mut report = core.status().await?;
    if json {
        outln!("{}", serde_json::to_value(&report.pipelines)?);
    } else {
        report.recent_failures.clear();
        out!("{}", Reply::Status(report).to_text());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    // A cause already quoted by the error around it is not said twice.
    #[test]
    fn each_cause_is_said_once() {
        let quoted = anyhow::anyhow!("disk full").context("writing x: disk full").context("saving");
        assert_eq!(super::error_text(&quoted), "saving: writing x: disk full");
        let plain = anyhow::anyhow!("refused").context("connecting");
        assert_eq!(super::error_text(&plain), "connecting: refused");
    }
}
