//! Wiring: builds the supervisor tree of a running Hayloft from the configuration.
//!
//! ```text
//! root
//! ├─ heartbeat        this node's heartbeat in the `nodes` table
//! ├─ pages            this node's share of every fan-out run's pages (task rows)
//! ├─ scheduler        fires runs on schedule, recovers the runs of dead nodes
//! ├─ outbox           delivers notifications (only with channels configured)
//! ├─ serial           a serial device's line protocol (only when enabled)
//! ├─ streamdeck       Stream Deck keys (only when enabled)
//! ├─ discord          the Discord bot (only when enabled)
//! ├─ metrics          turns bus events into Prometheus counters
//! ├─ pipelines
//! │  └─ <pipeline>    runner, extractor, transformer, loader
//! ├─ http             dashboard, GraphQL, /metrics, /healthz, /readyz
//! └─ ssh              the SSH front door; one session actor per connection
//! ```

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use anyhow::Context as _;
use hayloft_actors::clock::{OffsetClock, SharedClock, SystemClock};
use hayloft_actors::events::EventBus;
use hayloft_actors::ledger::{Ledger, RunRecord};
use hayloft_actors::pipeline::{PipelineDeps, PipelineHandle, RunnerSettings};
use hayloft_actors::scheduler::{Scheduler, SchedulerSettings};
use hayloft_actors::supervisor::{ChildContext, ChildSpec, RestartPolicy, Shutdown, StopChild, Supervisor};
use tracing::{info, warn};

use crate::cluster::Heartbeat;
use crate::commands::{CommandCore, CommandSettings};
use crate::config::{Config, ConfigError, Overrides};
use crate::db::ledger::SqlLedger;
use crate::db::{queries, Database};
use crate::front_doors::devices::serial::SerialDevice;
use crate::front_doors::devices::streamdeck::{usb_connector, DeckConnector, DeckKind, SimulatedDeck};
use crate::front_doors::web::{HttpServerActor, WebState};
use crate::metrics::{Metrics, MetricsRecorder};
use crate::notify::sender::OutboxSender;
use crate::notify::Announcements;
use crate::pipelines::shared::page_worker::{PageWorker, PageWorkerSettings};
use crate::pipelines::shared::settings::{PipelineSettings, MAX_DEMO_COPIES};
use crate::pipelines::{self, PipelineEntry, PipelineSetup};
use crate::upstream::{ClusterShare, Upstream};

/// HTTP worker threads. Two keep memory small while one slow request cannot stall the other.
const HTTP_WORKERS: usize = 2;

/// The variable that shifts this process's scheduler clock, for cluster tests and benchmarks
/// (`+30s`, `-1500ms`): slots are named by the clock that fires them.
const TEST_CLOCK_OFFSET: &str = "HAYLOFT_TEST_CLOCK_OFFSET";

fn scheduler_clock() -> anyhow::Result<SharedClock> {
    let Some(text) = std::env::var(TEST_CLOCK_OFFSET).ok().filter(|text| !text.is_empty()) else {
        return Ok(Arc::new(SystemClock));
    };
    let (sign, amount) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(&text)),
    };
    let offset = humantime::parse_duration(amount).with_context(|| format!("{TEST_CLOCK_OFFSET}={text}"))?;
    let offset = chrono::Duration::from_std(offset).context(TEST_CLOCK_OFFSET)? * sign;
    warn!(%offset, "the scheduler's clock is shifted ({TEST_CLOCK_OFFSET}); for tests only");
    Ok(Arc::new(OffsetClock { inner: Arc::new(SystemClock), offset }))
}

/// Reads the configuration (see [`Config::load`]) and checks its `[pipelines]` sections
/// against the pipeline registry: the one way the program loads it.
pub fn load_config(file: Option<&std::path::Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
    let config = Config::load(file, overrides)?;
    config.check_pipelines(&pipelines::KNOWN)?;
    demo_copies(&config)?;
    Ok(config)
}

/// How many copies of the demo pipeline the configuration asks for (`[pipelines.demo] copies`),
/// refusing `copies` on any other pipeline and more than [`MAX_DEMO_COPIES`].
pub fn demo_copies(config: &Config) -> Result<u32, ConfigError> {
    for (name, section) in &config.pipelines {
        if section.copies.is_some() && name != pipelines::demo::NAME {
            return Err(ConfigError::Pipeline {
                key: format!("pipelines.{name}.copies"),
                problem: format!("only the {} pipeline can be copied", pipelines::demo::NAME),
            });
        }
    }
    let copies = config.pipeline(pipelines::demo::NAME).copies.unwrap_or(0);
    if copies > MAX_DEMO_COPIES {
        return Err(ConfigError::Pipeline {
            key: format!("pipelines.{}.copies", pipelines::demo::NAME),
            problem: format!("{copies} is more than the {MAX_DEMO_COPIES} copies allowed"),
        });
    }
    Ok(copies)
}

/// Every pipeline this configuration runs: the registry and the demo pipeline's copies.
pub fn pipeline_entries(config: &Config) -> Result<Vec<PipelineEntry>, ConfigError> {
    Ok(pipelines::with_demo_copies(demo_copies(config)?))
}

/// The settings and schedule of one pipeline, from the configuration. A copy of the demo
/// pipeline reads the demo's section; its schedule's hashed fields (`H`) hash its own name, so
/// copies spread over the hour as distinct pipelines do.
pub fn pipeline_setup(config: &Config, entry: &PipelineEntry) -> Result<PipelineSetup, ConfigError> {
    let section = match pipelines::entry(entry.name) {
        Some(_) => entry.name,
        None => pipelines::demo::NAME,
    };
    let schedule = config.pipeline_schedule_as(section, entry.name, entry.default_schedule, entry.default_time_zone)?;
    let settings = PipelineSettings { options: config.pipeline(section), delete_guard: config.delete_guard };
    Ok(PipelineSetup { settings, schedule })
}

/// What the command core reads of the configuration.
pub fn command_settings(config: &Config) -> Result<CommandSettings, ConfigError> {
    let schedules = pipeline_entries(config)?
        .iter()
        .map(|entry| Ok((entry.name, pipeline_setup(config, entry)?.schedule)))
        .collect::<Result<_, ConfigError>>()?;
    Ok(CommandSettings {
        schedules,
        maintenance: config.maintenance_windows()?,
        database: config.database()?.redacted(),
        liveness: config.cluster.liveness(),
    })
}

/// The pieces of a running Hayloft that commands need.
pub struct Hayloft {
    pub config: Config,
    pub db: Database,
    pub ledger: Arc<SqlLedger>,
    pub events: EventBus,
    pub pipelines: BTreeMap<String, PipelineHandle>,
    pub root: Addr<Supervisor>,
    /// This node's id: the owner of the runs it claims.
    pub owner: Arc<str>,
    /// What every front door asks.
    pub commands: CommandCore,
}

/// Sockets bound before the tree starts, so a taken port is a start-up error and a restarted
/// front door keeps its port.
pub struct Listeners {
    pub http: TcpListener,
    pub ssh: Option<TcpListener>,
}

/// What to start besides the pipelines.
pub enum Mode {
    /// The whole server: scheduler, HTTP and (when enabled) SSH on these listeners.
    Serve(Listeners),
    /// Pipelines only, for one-shot CLI runs.
    Pipelines,
}

impl Hayloft {
    /// Connects to the (already migrated) database and starts the supervisor tree.
    pub async fn start(config: Config, mode: Mode) -> anyhow::Result<Self> {
        // This node's connections carry its id, so other nodes see at once when it is gone.
        let identity = Arc::new(config.cluster.identity());
        let url = config.database()?.for_node(&identity.id);
        let db =
            Database::connect(&url, config.pool_size).await.with_context(|| format!("opening {}", url.redacted()))?;
        let notify = Arc::new(config.notify.clone());
        let announcer = Announcements::for_settings(notify.clone());
        let liveness = config.cluster.liveness();
        let ledger = Arc::new(SqlLedger::new(db.clone()).with_announcer(announcer.clone()).with_liveness(liveness));
        let events = EventBus::default();
        crate::telemetry::publish_logs_to(&events);
        // Registered before anything can claim a run: other nodes must see this one alive.
        let clash = crate::db::nodes::register(&db, &identity, liveness).await.context("joining the cluster")?;
        if clash {
            warn!(node = %identity.id, "another process seems to be running under this node id; give each node its own id");
        }
        info!(node = %identity.id, "joined the cluster");
        // A previous process under this id is certainly gone: its unfinished runs go back now.
        for run in ledger.hand_over(&identity.id).await.context("taking back this node's unfinished runs")? {
            warn!(pipeline = %run.pipeline, run_id = run.id, "run left unfinished by this node's previous process, queued again");
        }
        // Its fan-out pages too: under its own id it would otherwise look alive while holding
        // them, until their lease ran out.
        let released = crate::db::tasks::release(&db, &identity.id).await.context("giving back this node's pages")?;
        if released > 0 {
            warn!(pages = released, "fan-out pages left in hand by this node's previous process, given back");
        }
        let owner: Arc<str> = Arc::from(identity.id.as_str());
        // The upstream's limits hold for the whole cluster: this node waits until the others
        // count it, then takes its share (see upstream::share).
        let share = ClusterShare::joining();
        let (heartbeat_spec, _) = ChildSpec::worker("heartbeat", {
            let (db, identity, share) = (db.clone(), identity.clone(), share.clone());
            move |_: &ChildContext| Heartbeat::new(db.clone(), identity.clone(), liveness, share.clone())
        });
        let deps = PipelineDeps {
            ledger: ledger.clone(),
            events: events.clone(),
            settings: RunnerSettings { owner: owner.clone(), lease: config.lease, timeout: config.run_timeout },
        };
        let upstream = Upstream::from_url(&config.upstream_url, &config.upstream, &pipelines::registry::sample_pages())
            .context("upstream_url")?
            .shared_by(share.clone());
        let entries = pipeline_entries(&config)?;
        let built =
            pipelines::build_all(&entries, &db, &upstream, announcer, &deps, |entry| pipeline_setup(&config, entry))?;
        let command_settings = Arc::new(command_settings(&config)?);
        let registered: Vec<_> = built
            .scheduled
            .iter()
            .map(|scheduled| {
                (
                    scheduled.handle.name().to_owned(),
                    scheduled.schedule.spec().to_owned(),
                    !scheduled.schedule.is_never(),
                )
            })
            .collect();
        queries::register_pipelines(&db, &registered).await.context("registering pipelines")?;

        // Every node takes a share of every fan-out run's pages, whoever owns the run.
        let (pages_spec, _) = ChildSpec::worker("pages", {
            let (db, owner, handlers, share) = (db.clone(), owner.clone(), built.pages.clone(), share.clone());
            let settings =
                PageWorkerSettings { concurrency: config.upstream.concurrency, lease: config.lease, liveness };
            move |_: &ChildContext| {
                PageWorker::new(db.clone(), owner.clone(), handlers.clone(), settings, share.clone())
            }
        });
        let pipeline_specs = built.specs.clone();
        let (pipelines_spec, _) = ChildSpec::supervisor("pipelines", {
            let events = events.clone();
            move |child: &ChildContext| {
                Supervisor::new(child.path()).children(pipeline_specs.iter().cloned()).publish_to(events.clone())
            }
        });
        let mut root = Supervisor::new("root")
            .publish_to(events.clone())
            .child(heartbeat_spec.policy(RestartPolicy::Permanent))
            .child(pages_spec.policy(RestartPolicy::Permanent));
        let root_slot: Arc<std::sync::OnceLock<Addr<Supervisor>>> = Arc::default();
        let handles = Arc::new(built.handles.clone());
        let commands = match mode {
            Mode::Serve(_) => {
                CommandCore::server(command_settings, db.clone(), handles, root_slot.clone(), events.clone())
            }
            Mode::Pipelines => CommandCore::offline(command_settings, db.clone(), handles),
        };
        if let Mode::Serve(Listeners { http: listener, ssh }) = mode {
            // Dead nodes' runs are looked for at the heartbeat's pace: takeover within
            // dead_after plus one heartbeat.
            let settings = Arc::new(SchedulerSettings {
                windows: config.maintenance_windows()?,
                recovery_interval: liveness.heartbeat,
                ..SchedulerSettings::default()
            });
            let scheduled = built.scheduled.clone();
            let scheduler_ledger: Arc<dyn Ledger> = ledger.clone();
            let clock = scheduler_clock()?;
            let (scheduler_spec, _) = ChildSpec::worker("scheduler", move |_: &ChildContext| {
                Scheduler::new(scheduled.clone(), settings.clone(), clock.clone(), scheduler_ledger.clone())
            });
            let ops = crate::front_doors::graphql::Ops { commands: commands.clone(), events: events.clone() };
            let metrics = Arc::new(Metrics::default());
            let admin_token: Option<Arc<str>> = config.admin_token.as_ref().map(|token| Arc::from(token.expose()));
            let (metrics_spec, _) = ChildSpec::worker("metrics", {
                let (metrics, events) = (metrics.clone(), events.clone());
                move |_: &ChildContext| MetricsRecorder::new(metrics.clone(), events.clone())
            });
            // Built once, on first use: every HTTP worker serves the same schema.
            let settings = Arc::new(config.graphql.clone());
            let graphql = crate::front_doors::graphql::http::GraphqlState {
                schema: crate::front_doors::graphql::http::LazySchema::new(db.clone(), ops, settings.clone()),
                db: db.clone(),
                admission: Arc::new(crate::front_doors::graphql::http::Admission::new(&settings)),
                settings,
                admin_token: admin_token.clone(),
                metrics: metrics.clone(),
            };
            let state = WebState {
                db: db.clone(),
                version: env!("CARGO_PKG_VERSION"),
                graphql: Some(graphql),
                commands: commands.clone(),
                events: events.clone(),
                metrics: metrics.clone(),
                admin_token,
                http: Arc::new(config.http.clone()),
                sessions: Arc::new(crate::front_doors::web::sessions::SessionStore::new(config.http.session_limits())),
                sign_in: Arc::new(crate::front_doors::web::limiter::SignInLimiter::new(
                    config.http.sign_in_attempts,
                    config.http.sign_in_window,
                )),
            };
            let listener = Arc::new(listener);
            let (http_spec, _) = ChildSpec::worker("http", move |child: &ChildContext| {
                HttpServerActor::new(listener.clone(), state.clone(), HTTP_WORKERS, child.clone())
            });
            for spec in integrations(&config, &db, &commands, &events)? {
                root = root.child(spec);
            }
            root = root
                .child(scheduler_spec.policy(RestartPolicy::Permanent))
                .child(metrics_spec)
                .child(pipelines_spec)
                .child(http_spec);
            if let Some(listener) = ssh {
                let shared = Arc::new(crate::front_doors::ssh::SshShared::new(config.ssh.clone())?);
                let listener = Arc::new(listener);
                let commands = commands.clone();
                let (ssh_spec, _) = ChildSpec::worker("ssh", move |child: &ChildContext| {
                    crate::front_doors::ssh::SshServer::new(
                        listener.clone(),
                        shared.clone(),
                        commands.clone(),
                        child.clone(),
                    )
                });
                root = root.child(ssh_spec);
            }
        } else {
            root = root.child(pipelines_spec);
        }
        let root = root.start();
        let _ = root_slot.set(root.clone());
        Ok(Self { config, db, ledger, events, pipelines: built.handles, root, owner, commands })
    }

    pub fn pipeline(&self, name: &str) -> Option<&PipelineHandle> {
        self.pipelines.get(name)
    }

    /// Stops taking new work, lets running runs finish within the grace period, hands what is
    /// left over (a fresh attempt is queued, which another node starts at once), leaves the
    /// cluster, then stops the tree.
    pub async fn shutdown(&self) {
        // The page worker too: the pages it holds are given back below, for the other nodes.
        for child in ["http", "ssh", "scheduler", "pages"] {
            let _ = self.root.send(StopChild(child.to_owned())).await;
        }
        let deadline = tokio::time::Instant::now() + self.config.shutdown_grace;
        loop {
            let mut busy = Vec::new();
            for handle in self.pipelines.values() {
                if let Some(run_id) = handle.active_run().await {
                    busy.push((handle.name().to_owned(), run_id));
                }
            }
            if busy.is_empty() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                warn!(runs = ?busy, "grace period over, abandoning running runs");
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match self.ledger.hand_over(&self.owner).await {
            Ok(abandoned) => {
                for run in abandoned {
                    warn!(pipeline = %run.pipeline, run_id = run.id, "run handed over at shutdown; another node (or the next start) runs it again");
                }
            }
            Err(error) => warn!(%error, "could not hand over unfinished runs"),
        }
        if let Err(error) = crate::db::tasks::release(&self.db, &self.owner).await {
            warn!(%error, "could not give back this node's fan-out pages; other nodes take them once it has left");
        }
        match crate::db::nodes::leave(&self.db, &self.owner).await {
            Ok(()) => info!(node = %self.owner, "left the cluster"),
            Err(error) => warn!(%error, "could not leave the cluster; other nodes will count this one dead shortly"),
        }
        let _ = self.root.send(Shutdown).await;
        info!("stopped");
    }
}

/// The optional parts of the tree, each only when configured: notifications, the serial device,
/// the Stream Deck and the Discord bot. Devices and the bot fail when their hardware or service
/// goes away and are restarted with backoff (see [`crate::front_doors::devices::supervised`]).
fn integrations(
    config: &Config,
    db: &Database,
    commands: &CommandCore,
    events: &EventBus,
) -> anyhow::Result<Vec<ChildSpec>> {
    let mut specs = Vec::new();
    let notify = Arc::new(config.notify.clone());
    if !notify.channels().is_empty() {
        let report = config.daily_report_schedule()?;
        let (db, events) = (db.clone(), events.clone());
        let discord_token = config.discord.token.as_ref().map(|token| token.expose().to_owned());
        let (spec, _) = ChildSpec::worker("outbox", move |child: &ChildContext| {
            let token = discord_token.clone();
            OutboxSender::new(db.clone(), notify.clone(), events.clone(), report.clone(), token, child.clone())
        });
        specs.push(spec);
    }
    if config.serial.enabled {
        let settings = config.serial.clone();
        let (commands, events) = (commands.clone(), events.clone());
        let (spec, _) = ChildSpec::worker("serial", move |child: &ChildContext| {
            SerialDevice::new(settings.clone(), commands.clone(), events.clone(), child.clone())
        });
        specs.push(crate::front_doors::devices::supervised(spec));
    }
    if config.streamdeck.enabled {
        let settings = &config.streamdeck;
        let connector: Arc<dyn DeckConnector> = match settings.device {
            DeckKind::Usb => usb_connector(settings).map_err(|error| anyhow::anyhow!("streamdeck: {error}"))?,
            // A 15-key deck that only logs what it would show.
            DeckKind::Simulated => Arc::new(SimulatedDeck::new(15)),
        };
        specs.push(crate::front_doors::devices::stream_deck(
            settings.keys.clone(),
            connector,
            commands.clone(),
            events.clone(),
        ));
    }
    if config.discord.enabled {
        let settings = Arc::new(config.discord.clone());
        let commands = commands.clone();
        let (spec, _) = ChildSpec::worker("discord", move |child: &ChildContext| {
            crate::front_doors::discord::DiscordBot::new(settings.clone(), commands.clone(), child.clone())
        });
        specs.push(crate::front_doors::devices::supervised(spec));
    }
    Ok(specs)
}

/// A run as JSON: the flat shape every front door prints.
pub fn run_summary(record: &RunRecord) -> serde_json::Value {
    serde_json::to_value(record).unwrap_or_default()
}
