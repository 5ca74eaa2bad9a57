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
    version,
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
        /// How many runs.
        #[arg(default_value_t = 10)]
        limit: usize,
        /// Only this pipeline's runs.
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// What a run changed (default: the latest run that changed anything).
    Changes {
        /// The run to show.
        #[arg(long)]
        run: Option<i64>,
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
    /// Exit 0 if the server at `addr` answers /healthz (for container health checks).
    Healthcheck {
        /// Address of the server (default: the configured `addr`).
        #[arg(long)]
        addr: Option<String>,
    },
}

/// Entry point used by `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run_cli(cli) {
        Ok(code) => code,
        Err(error) => {
            // `{:#}` prints the whole cause chain on one line.
            tracing::error!(error = %format!("{error:#}"), "command failed");
            #[expect(clippy::print_stderr, reason = "the last word of a failed command, for the person who ran it")]
            {
                eprintln!("error: {error:#}");
            }
            ExitCode::from(2)
        }
    }
}

fn run_cli(cli: Cli) -> anyhow::Result<ExitCode> {
    let command = cli.command.unwrap_or(Command::Serve { addr: None });
    let addr = match &command {
        Command::Serve { addr } | Command::Healthcheck { addr } => addr.clone(),
        _ => None,
    };
    let overrides = Overrides { database_url: cli.database_url, addr, log_format: cli.log_format };
    let config = crate::app::load_config(cli.config.as_deref(), &overrides)?;
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
    // Migrations run before the actix runtime exists: diesel's harness blocks.
    let applied = url.migrate().with_context(|| format!("migrating {}", url.redacted()))?;
    if !applied.is_empty() {
        info!(versions = ?applied, database = %url.redacted(), "migrations applied");
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
        Command::Run { pipeline, json, allow_mass_delete } => {
            system.block_on(run(config, pipeline, json, allow_mass_delete))
        }
        Command::Import { files, json } => system.block_on(import(config, files, json)),
        Command::Status { json, pipeline, limit } => system.block_on(status(config, json, pipeline, limit)),
        Command::Pipelines { json } => system.block_on(list_pipelines(config, json)),
        Command::Nodes { json } => system.block_on(list_nodes(config, json)),
        Command::Count { entity, json } => system.block_on(ask(config, CoreCommand::Count { entity }, json)),
        Command::Changes { run, json } => system.block_on(ask(config, CoreCommand::Changes { run }, json)),
        Command::Recent { limit, pipeline, json } => {
            system.block_on(ask(config, CoreCommand::Recent { limit, pipeline }, json))
        }
        Command::Healthcheck { .. } | Command::Replay { .. } | Command::DemoData { .. } | Command::Schema => {
            Ok(ExitCode::SUCCESS)
        }
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
    let names: Vec<String> = if pipeline == "all" {
        // Every enabled pipeline, in dependency order; a disabled one runs only when named.
        pipelines::KNOWN
            .iter()
            .filter(|name| config.pipeline(name).enabled != Some(false))
            .map(|name| (*name).to_owned())
            .collect()
    } else if pipelines::KNOWN.contains(&pipeline.as_str()) {
        vec![pipeline]
    } else {
        bail!("unknown pipeline {pipeline:?}; known pipelines: {}, or `all`", pipelines::KNOWN.join(", "));
    };
    let hayloft = Hayloft::start(config, Mode::Pipelines).await?;
    // A run left `running` by a dead node would block ours: settle those first.
    settle_dead_nodes(&hayloft, &names).await?;
    let mut all_succeeded = true;
    // The person at the terminal owns the database: the CLI is an admin front door.
    let caller = Caller::new("cli", whoami(), true);
    for name in names {
        let spinner = progress(&name, json);
        let command = CoreCommand::Run { pipeline: name.clone(), wait: true, allow_mass_delete };
        let result = hayloft.commands.execute(&caller, command).await;
        if let Some(spinner) = spinner {
            spinner.finish_and_clear();
        }
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
            out!("{}", Reply::RunFinished(record).to_text());
        }
    }
    hayloft.shutdown().await;
    Ok(if all_succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE })
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
    let spinner = progress(crate::import::NAME, json);
    let result = handle.run_to_completion(Trigger::Import, RunOptions::default()).await;
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
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
        for run in hayloft.ledger.recover().await? {
            info!(pipeline = %run.pipeline, run_id = run.id, "marked a run of a dead node as abandoned");
        }
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
fn progress(pipeline: &str, json: bool) -> Option<indicatif::ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("running {pipeline}…"));
    spinner.enable_steady_tick(Duration::from_millis(100));
    Some(spinner)
}

async fn open(config: &Config) -> anyhow::Result<CommandCore> {
    let url = config.database()?;
    let db = Database::connect(&url, config.pool_size).await.with_context(|| format!("opening {}", url.redacted()))?;
    Ok(CommandCore::offline(Arc::new(crate::app::command_settings(config)?), db, Arc::default()))
}

/// Asks the command core once and prints its answer, as text or as JSON.
async fn ask(config: Config, command: CoreCommand, json: bool) -> anyhow::Result<ExitCode> {
    let core = open(&config).await?;
    let reply = core.execute(&Caller::new("cli", whoami(), true), command).await?;
    if json {
        let value = match reply {
            // `count --json` has always printed just these two fields.
            Reply::Count { entity, count } => json!({ "entity": entity, "count": count }),
            Reply::Changes(list) => serde_json::to_value(&list)?,
            Reply::Recent { runs } => serde_json::to_value(&runs)?,
            other => serde_json::to_value(&other)?,
        };
        outln!("{value}");
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
        Reply::Nodes { nodes } if json => outln!("{}", json!({ "nodes": nodes })),
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
