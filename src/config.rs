//! Configuration: built-in defaults, then `hayloft.toml` (if present), then `HAYLOFT_*`
//! environment variables, then command-line flags — each layer overriding the one before.
//!
//! Nested keys use `__` in the environment: `HAYLOFT_PIPELINES__DEMO__SCHEDULE="@every 1m"`.
//! `DATABASE_URL` is honoured too, as most tools expect, below `HAYLOFT_DATABASE_URL`.
//! Unknown keys are errors, so a typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use hayloft_actors::schedule::{parse_time_zone, MaintenanceWindow, Schedule, ScheduleError};
use serde::{Deserialize, Serialize};

use crate::db::DatabaseUrl;
use crate::pipelines::shared::common::DeleteGuard;
pub use crate::pipelines::shared::settings::PipelineConfig;
use crate::secret::Secret;
use crate::telemetry::LogFormat;
use crate::upstream::UpstreamSettings;

/// `HAYLOFT_*` variables that are not configuration keys: read elsewhere (the config path, the
/// upstream cookie, a test failpoint) or by the test suite, benchmarks and CI.
const TOOLING_VARIABLES: [&str; 11] = [
    "CONFIG",
    // Test-only: shifts this process's scheduler clock (cluster tests and benchmarks).
    "TEST_CLOCK_OFFSET",
    "UPSTREAM_COOKIE",
    "PAUSE_AT",
    "TEST_DATABASE",
    "TEST_STRICT",
    "CAPTURES",
    "BENCH_PG",
    "CI_PG_SERVER",
    "UPDATE_SNAPSHOTS",
    "TEST_ARTIFACTS",
];

/// The file read when `--config` / `HAYLOFT_CONFIG` are not given (only if it exists).
pub const DEFAULT_CONFIG_FILE: &str = "hayloft.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Schedule(#[from] ScheduleError),
    #[error("invalid configuration: database_url: {0}")]
    DatabaseUrl(String),
    #[error("invalid configuration: http: {0}")]
    Http(String),
    #[error("invalid configuration: discord: {0}")]
    Discord(String),
    #[error("invalid configuration: streamdeck: {0}")]
    StreamDeck(String),
    #[error("invalid configuration: cluster: {0}")]
    Cluster(String),
    #[error("invalid configuration: notify: {0}")]
    Notify(String),
    #[error("invalid configuration: unknown pipeline {name:?} under [pipelines] (known: {known})")]
    UnknownPipeline { name: String, known: String },
}

impl From<figment::Error> for ConfigError {
    fn from(error: figment::Error) -> Self {
        ConfigError::Invalid(Box::new(error))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// A SQLite path or `sqlite://` URL, or a `postgres://` URL.
    pub database_url: String,
    /// Connections in the PostgreSQL pool (SQLite always uses one writer and a few readers).
    pub pool_size: u32,
    /// Where `serve` listens for HTTP.
    pub addr: SocketAddr,
    /// The HTTP server (`[http]`): dashboard sessions, sign-in limits, a reverse proxy in front.
    pub http: crate::front_doors::web::HttpSettings,
    pub log_format: LogFormat,
    /// A tracing filter: `info`, `hayloft=debug,info`...
    pub log_level: String,
    /// Time zone for schedules and maintenance windows (IANA name).
    pub timezone: String,
    /// Periods when scheduled runs are held back, e.g. `["Sun 02:00-04:00"]`.
    pub maintenance: Vec<String>,
    /// How long a run's claim lasts without renewal; another process may take over after it.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// A run taking longer than this fails.
    #[serde(with = "humantime_serde")]
    pub run_timeout: Duration,
    /// On shutdown, how long running runs get to finish before they are abandoned.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Where pipelines fetch from: `embedded` (generated sample data), `file:///dir/` (a capture
    /// directory) or `http(s)://host/`.
    pub upstream_url: String,
    pub upstream: UpstreamSettings,
    pub delete_guard: DeleteGuard,
    pub pipelines: BTreeMap<String, PipelineConfig>,
    /// The admin bearer token (`HAYLOFT_ADMIN_TOKEN`): it allows `runPipeline` over GraphQL.
    /// Unset, nobody may trigger runs over HTTP.
    pub admin_token: Option<Secret>,
    pub graphql: crate::front_doors::graphql::GraphqlSettings,
    /// The SSH front door (`[ssh]`; `HAYLOFT_SSH_ADDR` sets its address).
    pub ssh: crate::front_doors::ssh::SshSettings,
    /// Notifications (`[notify]`): webhooks, what to announce, retries, the daily report.
    pub notify: crate::notify::NotifySettings,
    /// A serial device speaking the line protocol (`[serial]`, off by default).
    pub serial: crate::front_doors::devices::serial::SerialSettings,
    /// A Stream Deck's keys (`[streamdeck]`, off by default).
    pub streamdeck: crate::front_doors::devices::streamdeck::StreamDeckSettings,
    /// The Discord bot (`[discord]`, off by default; token from `DISCORD_TOKEN`).
    pub discord: crate::front_doors::discord::DiscordSettings,
    /// This process as a node (`[cluster]`; `HAYLOFT_NODE_ID` sets its id).
    pub cluster: crate::cluster::ClusterSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "hayloft.db".to_owned(),
            pool_size: 8,
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            http: crate::front_doors::web::HttpSettings::default(),
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            timezone: "UTC".to_owned(),
            maintenance: Vec::new(),
            lease: Duration::from_secs(60),
            run_timeout: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(10),
            upstream_url: "embedded".to_owned(),
            upstream: UpstreamSettings::default(),
            delete_guard: DeleteGuard::default(),
            pipelines: BTreeMap::new(),
            admin_token: None,
            graphql: crate::front_doors::graphql::GraphqlSettings::default(),
            ssh: crate::front_doors::ssh::SshSettings::default(),
            notify: crate::notify::NotifySettings::default(),
            serial: crate::front_doors::devices::serial::SerialSettings::default(),
            streamdeck: crate::front_doors::devices::streamdeck::StreamDeckSettings::default(),
            discord: crate::front_doors::discord::DiscordSettings::default(),
            cluster: crate::cluster::ClusterSettings::default(),
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers alone.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

impl Config {
    /// Reads every layer. `file` is an explicit path (must exist); without it `hayloft.toml` in
    /// the working directory is read if present.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.to_owned())),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE))
            }
            None => {}
        }
        let config: Config = figment
            .merge(Env::raw().only(&["DATABASE_URL"]).map(|_| "database_url".into()))
            .merge(Env::raw().only(&["DISCORD_TOKEN"]).map(|_| "discord.token".into()))
            .merge(Env::prefixed("HAYLOFT_").ignore(&TOOLING_VARIABLES).map(|key| {
                // `HAYLOFT_SSH_ADDR` reads better than `HAYLOFT_SSH__ADDR`; both work.
                if key.as_str().eq_ignore_ascii_case("ssh_addr") {
                    "ssh.addr".into()
                } else if key.as_str().eq_ignore_ascii_case("node_id") {
                    "cluster.node_id".into()
                } else {
                    key.as_str().replace("__", ".").into()
                }
            }))
            .merge(Serialized::defaults(overrides))
            .extract()?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        DatabaseUrl::parse(&self.database_url).map_err(ConfigError::DatabaseUrl)?;
        self.time_zone()?;
        self.maintenance_windows()?;
        self.daily_report_schedule()?;
        self.http.validate().map_err(ConfigError::Http)?;
        self.streamdeck.validate().map_err(ConfigError::StreamDeck)?;
        self.discord.validate().map_err(ConfigError::Discord)?;
        self.cluster.validate().map_err(ConfigError::Cluster)?;
        if self.notify.discord_channel.is_some() && self.discord.token.is_none() {
            return Err(ConfigError::Notify("discord_channel needs the bot's token: set DISCORD_TOKEN".to_owned()));
        }
        let mut names = std::collections::HashSet::new();
        for webhook in &self.notify.webhooks {
            if !(webhook.url.starts_with("http://") || webhook.url.starts_with("https://")) {
                return Err(ConfigError::Notify(format!(
                    "webhook {:?}: the url must be http:// or https://",
                    webhook.name
                )));
            }
            if !names.insert(webhook.name.as_str()) {
                return Err(ConfigError::Notify(format!("two webhooks are named {:?}", webhook.name)));
            }
        }
        Ok(())
    }

    /// When the daily report goes out, if configured.
    pub fn daily_report_schedule(&self) -> Result<Option<Schedule>, ConfigError> {
        match &self.notify.daily_report {
            None => Ok(None),
            Some(spec) => Ok(Some(Schedule::parse(spec, "daily_report", self.time_zone()?, Duration::ZERO)?)),
        }
    }

    pub fn database(&self) -> Result<DatabaseUrl, ConfigError> {
        DatabaseUrl::parse(&self.database_url).map_err(ConfigError::DatabaseUrl)
    }

    pub fn time_zone(&self) -> Result<Tz, ConfigError> {
        Ok(parse_time_zone(&self.timezone)?)
    }

    pub fn maintenance_windows(&self) -> Result<Vec<MaintenanceWindow>, ConfigError> {
        let time_zone = self.time_zone()?;
        Ok(self
            .maintenance
            .iter()
            .map(|window| MaintenanceWindow::parse(window, time_zone))
            .collect::<Result<_, _>>()?)
    }

    /// The settings of pipeline `name` (defaults if it has no section).
    pub fn pipeline(&self, name: &str) -> PipelineConfig {
        self.pipelines.get(name).cloned().unwrap_or_default()
    }

    /// Refuses `[pipelines.<name>]` sections that name no pipeline in `known`, and checks the
    /// schedules of those that do. Kept apart from [`Config::load`]: which pipelines exist is
    /// the application's knowledge (its registry), not the configuration's.
    pub fn check_pipelines(&self, known: &[&str]) -> Result<(), ConfigError> {
        for name in self.pipelines.keys() {
            if !known.contains(&name.as_str()) {
                return Err(ConfigError::UnknownPipeline { name: name.clone(), known: known.join(", ") });
            }
            self.pipeline_schedule(name, "never", None)?;
        }
        Ok(())
    }

    /// The parsed schedule of pipeline `name`: `default_spec` (in `default_zone`, else the
    /// global time zone) when none is configured.
    pub fn pipeline_schedule(
        &self,
        name: &str,
        default_spec: &str,
        default_zone: Option<&str>,
    ) -> Result<Schedule, ConfigError> {
        let pipeline = self.pipeline(name);
        let time_zone = match (&pipeline.timezone, default_zone) {
            (Some(zone), _) => parse_time_zone(zone)?,
            (None, Some(zone)) => parse_time_zone(zone)?,
            (None, None) => self.time_zone()?,
        };
        let spec = match (pipeline.enabled, &pipeline.schedule) {
            (Some(false), _) => "never",
            (_, Some(spec)) => spec.as_str(),
            (_, None) => default_spec,
        };
        Ok(Schedule::parse(spec, name, time_zone, pipeline.jitter.unwrap_or_default())?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[expect(clippy::result_large_err, reason = "figment::Error is large; this is figment's own test API")]
    fn load_with(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut result = None;
        figment::Jail::expect_with(|jail| {
            jail.create_file("hayloft.toml", toml)?;
            for (key, value) in env {
                jail.set_env(key, value);
            }
            result = Some(Config::load(None, &Overrides::default()));
            Ok(())
        });
        result.unwrap()
    }

    // With nothing configured, the defaults are SQLite in the working directory on 127.0.0.1:8080.
    #[test]
    fn defaults_need_no_configuration() {
        let config = load_with("", &[]).unwrap();
        assert_eq!(config.database_url, "hayloft.db");
        assert_eq!(config.addr.to_string(), "127.0.0.1:8080");
    }

    // Environment beats the file, and flags beat the environment.
    #[test]
    fn layers_override_in_order() {
        let config = load_with(
            "addr = \"127.0.0.1:9000\"\n[pipelines.demo]\nrows = 5\n",
            &[
                ("HAYLOFT_ADDR", "127.0.0.1:9100"),
                ("HAYLOFT_PIPELINES__DEMO__SCHEDULE", "@every 1m"),
                // Tooling variables share the prefix but are not configuration.
                ("HAYLOFT_CAPTURES", "/somewhere"),
                ("HAYLOFT_TEST_STRICT", "1"),
                ("HAYLOFT_SSH_ADDR", "127.0.0.1:2200"),
                ("HAYLOFT_SSH__MAX_SESSIONS", "3"),
                ("HAYLOFT_HTTP__SIGN_IN_WINDOW", "2m"),
                ("HAYLOFT_NODE_ID", "barn-2"),
                ("HAYLOFT_CLUSTER__DEAD_AFTER", "8s"),
            ],
        )
        .unwrap();
        assert_eq!(config.cluster.node_id.as_deref(), Some("barn-2"));
        assert_eq!(config.cluster.dead_after, Duration::from_secs(8));
        assert_eq!(config.addr.port(), 9100);
        assert_eq!((config.ssh.addr.port(), config.ssh.max_sessions), (2200, 3));
        assert_eq!(config.http.sign_in_window, Duration::from_secs(120));
        assert_eq!(config.pipeline("demo").rows, Some(5));
        assert_eq!(config.pipeline("demo").schedule.as_deref(), Some("@every 1m"));
    }

    // The configuration example in the README is one the program accepts, key for key.
    #[test]
    fn the_readme_example_is_valid() {
        let readme = include_str!("../README.md");
        let section = &readme[readme.find("## Configuration").unwrap()..];
        let start = section.find("```toml\n").unwrap() + "```toml\n".len();
        let example = &section[start..start + section[start..].find("```").unwrap()];
        let config = load_with(example, &[]).unwrap_or_else(|error| panic!("{error}\n{example}"));
        assert_eq!(config.ssh.admins.len(), 2);
        assert!(config.admin_token.is_some());
    }

    // Bad values are errors that name the key.
    #[test]
    fn bad_values_are_clear_errors() {
        let error = load_with("addr = \"nowhere\"\n", &[]).unwrap_err().to_string();
        assert!(error.contains("addr"), "{error}");
        let error = load_with("adr = \"127.0.0.1:1\"\n", &[]).unwrap_err().to_string();
        assert!(error.contains("adr"), "{error}");
        let checked = |toml: &str| load_with(toml, &[]).and_then(|config| config.check_pipelines(&["demo"]));
        let error = checked("[pipelines.nope]\n").unwrap_err().to_string();
        assert!(error.contains("unknown pipeline \"nope\""), "{error}");
        let error = checked("[pipelines.demo]\nschedule = \"every tuesday\"\n").unwrap_err().to_string();
        assert!(error.contains("every tuesday"), "{error}");
        let error = load_with("timezone = \"Mars/Olympus\"\n", &[]).unwrap_err().to_string();
        assert!(error.contains("Mars/Olympus"), "{error}");
        let error = load_with("[http]\nsign_in_attempts = 0\n", &[]).unwrap_err().to_string();
        assert!(error.contains("sign_in_attempts"), "{error}");
        let error = load_with("[cluster]\nnode_id = \"a b\"\n", &[]).unwrap_err().to_string();
        assert!(error.contains("node_id"), "{error}");
        let error = load_with("[cluster]\nheartbeat = \"2s\"\ndead_after = \"3s\"\n", &[]).unwrap_err().to_string();
        assert!(error.contains("dead_after"), "{error}");
        let error = load_with("", &[("DATABASE_URL", "mysql://x")]).unwrap_err().to_string();
        assert!(error.contains("database_url"), "{error}");
    }
}
