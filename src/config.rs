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
const TOOLING_VARIABLES: [&str; 12] = [
    "CONFIG",
    // Read by the build (`build.rs`): which commit the binary is.
    "COMMIT",
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
    /// `message` is worked out when the error happens: it reads the file for the line, and the
    /// file (relative to the working directory) may not be there to read later.
    #[error("invalid configuration: {message}")]
    Invalid { message: String, source: Box<figment::Error> },
    #[error("invalid configuration: {0}")]
    Schedule(#[from] ScheduleError),
    /// A setting of one key that does not parse: the key names where to look.
    #[error("invalid configuration: {key}: {source}")]
    Key { key: String, source: ScheduleError },
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
    #[error("invalid configuration: log_level {value:?}: {problem} (a level: error, warn, info, debug, trace; or a tracing filter such as \"hayloft=debug,info\")")]
    LogLevel { value: String, problem: String },
    #[error("invalid configuration: {key}: {problem}")]
    Pipeline { key: String, problem: String },
    #[error("invalid configuration: unknown pipeline {name:?} under [pipelines] (known: {known})")]
    UnknownPipeline { name: String, known: String },
}

/// A configuration error as the person who made it can act on it: the file (with the line,
/// when it can be found) or environment variable, the key without figment's profile prefix,
/// what was wrong, and a "did you mean" for a mistyped key.
fn describe(error: &figment::Error) -> String {
    error.clone().into_iter().map(|error| describe_one(&error)).collect::<Vec<_>>().join("; ")
}

fn describe_one(error: &figment::Error) -> String {
    use figment::error::Kind;
    let mut path = error.path.clone();
    if let Kind::UnknownField(field, _) = &error.kind {
        if path.last() != Some(field) {
            path.push(field.clone());
        }
    }
    let key = path.join(".");
    let file = error.metadata.as_ref().and_then(|meta| match &meta.source {
        Some(figment::Source::File(file)) => Some(file.clone()),
        _ => None,
    });
    let from_env = error.metadata.as_ref().is_some_and(|meta| meta.name.contains("environment"));
    let place = match (&file, from_env) {
        (Some(file), _) => match line_of(file, &path) {
            Some(line) => format!("{}, line {line}: ", file.display()),
            None => format!("{}: ", file.display()),
        },
        (None, true) => format!("HAYLOFT_{}: ", key.replace('.', "__").to_ascii_uppercase()),
        (None, false) => String::new(),
    };
    match &error.kind {
        Kind::UnknownField(field, expected) => {
            let within =
                if path.len() > 1 { format!(" under [{}]", path[..path.len() - 1].join(".")) } else { String::new() };
            match crate::pipelines::nearest(field, expected.iter().copied()) {
                Some(near) => format!("{place}unknown key {field:?}{within} (did you mean {near:?}?)"),
                None => format!("{place}unknown key {field:?}{within}; the keys there are {}", expected.join(", ")),
            }
        }
        kind => {
            let hint = if key.ends_with("addr") {
                " (an IP address and a port, e.g. 127.0.0.1:8080 or 0.0.0.0:8080; names such as localhost are not looked up)"
            } else {
                ""
            };
            if key.is_empty() {
                format!("{place}{kind}{hint}")
            } else {
                format!("{place}{key}: {kind}{hint}")
            }
        }
    }
}

/// The line of a TOML file where `path` is set, looked up by its table and key: figment keeps
/// the file but not the line.
fn line_of(file: &Path, path: &[String]) -> Option<usize> {
    let text = std::fs::read_to_string(file).ok()?;
    let (key, tables) = path.split_last()?;
    let wanted_table = tables.join(".");
    let mut table = String::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            table = header.trim_start_matches('[').trim_end_matches(']').trim().to_owned();
            continue;
        }
        let Some((name, _)) = line.split_once('=') else { continue };
        let name = name.trim().trim_matches('"');
        // `[ssh]` then `adr = …`, or `ssh.adr = …` at the top.
        let full = if table.is_empty() { name.to_owned() } else { format!("{table}.{name}") };
        if name == key.as_str() && table == wanted_table || full == path.join(".") {
            return Some(number + 1);
        }
    }
    None
}

impl From<figment::Error> for ConfigError {
    fn from(error: figment::Error) -> Self {
        ConfigError::Invalid { message: describe(&error), source: Box::new(error) }
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
    /// How much to log: a level for Hayloft itself (`info`, `debug`; dependencies stay at
    /// `warn`), or a whole tracing filter (`hayloft=debug,awc=debug,info`).
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

/// One line of `hayloft config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// The dotted key, as in the file (`ssh.addr`).
    pub key: String,
    /// The value as TOML would write it, secrets masked.
    pub value: String,
    /// `default`, `hayloft.toml`, `HAYLOFT_SSH__ADDR`, `command line`...
    pub source: String,
}

/// Keys whose values are never printed, whatever their layer.
fn is_secret(key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    ["token", "password", "secret"].iter().any(|word| last.contains(word))
}

fn flatten(figment: &Figment, prefix: &str, dict: &figment::value::Dict, out: &mut Vec<Setting>) {
    use figment::value::Value;
    for (name, value) in dict {
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        if let Value::Dict(_, inner) = value {
            flatten(figment, &key, inner, out);
            continue;
        }
        let source = figment.find_metadata(&key).map_or_else(|| "default".to_owned(), |meta| source_of(&key, meta));
        out.push(Setting { value: shown_value(&key, value), key, source });
    }
}

/// Where a value came from, as the operator would change it.
fn source_of(key: &str, meta: &figment::Metadata) -> String {
    let name = meta.name.as_ref();
    if name.contains("environment") {
        let prefixed = match key {
            "ssh.addr" => "HAYLOFT_SSH_ADDR".to_owned(),
            "cluster.node_id" => "HAYLOFT_NODE_ID".to_owned(),
            other => format!("HAYLOFT_{}", other.replace('.', "__").to_ascii_uppercase()),
        };
        return match key {
            // The unprefixed fallbacks, when the prefixed variable is not what set it.
            "database_url" if !name.contains("HAYLOFT_") => "DATABASE_URL".to_owned(),
            "discord.token" if !name.contains("HAYLOFT_") => "DISCORD_TOKEN".to_owned(),
            _ => prefixed,
        };
    }
    if name.contains("Overrides") {
        return "command line".to_owned();
    }
    match &meta.source {
        Some(figment::Source::File(path)) => path.display().to_string(),
        _ if name.contains("TOML") => DEFAULT_CONFIG_FILE.to_owned(),
        _ => "default".to_owned(),
    }
}

/// A value as TOML writes it, with secrets, passwords in database URLs and webhook addresses
/// (whose path is the credential) masked.
fn shown_value(key: &str, value: &figment::value::Value) -> String {
    let json = value.deserialize::<serde_json::Value>().unwrap_or(serde_json::Value::Null);
    let masked = mask(key, json);
    match masked {
        serde_json::Value::String(text) if key == "database_url" => {
            serde_json::Value::String(DatabaseUrl::parse(&text).map(|url| url.redacted()).unwrap_or(text)).to_string()
        }
        other => other.to_string(),
    }
}

fn mask(key: &str, value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        _ if is_secret(key) => Value::String("***".to_owned()),
        Value::String(url) if key.ends_with(".url") || key == "url" => {
            let kept = url.find("://").and_then(|scheme| url[scheme + 3..].find('/').map(|slash| scheme + 3 + slash));
            Value::String(kept.map_or(url.clone(), |end| format!("{}/***", &url[..end])))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|item| mask(key, item)).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(name, field)| {
                    let inner = mask(&format!("{key}.{name}"), field);
                    (name, inner)
                })
                .collect(),
        ),
        other => other,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
}

impl Config {
    /// Reads every layer. `file` is an explicit path (must exist); without it `hayloft.toml` in
    /// the working directory is read if present.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut config: Config = Self::layers(file, overrides)?.extract()?;
        // `HAYLOFT_ADMIN_TOKEN=` (as compose passes an unset variable) means no token, never
        // an empty one that an empty `Authorization: Bearer` would match.
        if config.admin_token.as_ref().is_some_and(|token| token.expose().trim().is_empty()) {
            config.admin_token = None;
        }
        config.validate()?;
        Ok(config)
    }

    /// Every layer, merged but not yet read into a [`Config`].
    fn layers(file: Option<&Path>, overrides: &Overrides) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.to_owned())),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE))
            }
            None => {}
        }
        Ok(figment
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
            .merge(Serialized::defaults(overrides)))
    }

    /// The effective configuration, one line per setting, with where each value came from and
    /// every secret masked (`hayloft config`). Fails as [`Config::load`] does on a bad value.
    pub fn explain(file: Option<&Path>, overrides: &Overrides) -> Result<Vec<Setting>, ConfigError> {
        Self::load(file, overrides)?;
        let figment = Self::layers(file, overrides)?;
        let tree: figment::value::Dict = figment.extract()?;
        let mut settings = Vec::new();
        flatten(&figment, "", &tree, &mut settings);
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        DatabaseUrl::parse(&self.database_url).map_err(ConfigError::DatabaseUrl)?;
        tracing_subscriber::EnvFilter::try_new(crate::telemetry::filter_for(&self.log_level))
            .map_err(|error| ConfigError::LogLevel { value: self.log_level.clone(), problem: error.to_string() })?;
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
            Some(spec) => Ok(Some(
                Schedule::parse(spec, "daily_report", self.time_zone()?, Duration::ZERO)
                    .map_err(|source| ConfigError::Key { key: "notify.daily_report".to_owned(), source })?,
            )),
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
        self.pipeline_schedule_as(name, name, default_spec, default_zone)
    }

    /// [`Config::pipeline_schedule`] of section `section` for the pipeline `name` (a copy
    /// reading its original's section): hashed fields hash `name`.
    pub fn pipeline_schedule_as(
        &self,
        section: &str,
        name: &str,
        default_spec: &str,
        default_zone: Option<&str>,
    ) -> Result<Schedule, ConfigError> {
        let pipeline = self.pipeline(section);
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
        let key = match &pipeline.schedule {
            Some(_) => format!("pipelines.{section}.schedule"),
            None => format!("the default schedule of {name}"),
        };
        Schedule::parse(spec, name, time_zone, pipeline.jitter.unwrap_or_default())
            .map_err(|source| ConfigError::Key { key, source })
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

    // An empty admin token (compose passes `${HAYLOFT_ADMIN_TOKEN:-}` when it is unset) is no
    // token at all, so an empty bearer header can never match it.
    #[test]
    fn an_empty_admin_token_is_none() {
        let config = load_with("", &[("HAYLOFT_ADMIN_TOKEN", "")]).unwrap();
        assert!(config.admin_token.is_none());
        let config = load_with("", &[("HAYLOFT_ADMIN_TOKEN", "s3cret")]).unwrap();
        assert_eq!(config.admin_token.map(|token| token.expose().to_owned()).as_deref(), Some("s3cret"));
    }

    // A log level that is neither a level nor a tracing filter is a configuration error.
    #[test]
    fn a_bad_log_level_names_the_key() {
        let error = load_with("log_level = \"loud\"\n", &[]).unwrap_err().to_string();
        assert!(error.contains("log_level \"loud\"") && error.contains("debug"), "{error}");
        assert!(load_with("log_level = \"hayloft=debug,warn\"\n", &[]).is_ok());
    }

    // `hayloft config`: every setting with its source, secrets masked in every layer.
    #[test]
    #[expect(clippy::result_large_err, reason = "figment::Error is large; this is figment's own test API")]
    fn the_effective_configuration_says_where_each_value_came_from() {
        let mut settings = None;
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "hayloft.toml",
                "pool_size = 3\n[[notify.webhooks]]\nname = \"ops\"\nurl = \"https://hooks.example/T0/B0/secretpath\"\n",
            )?;
            jail.set_env("HAYLOFT_SSH_ADDR", "127.0.0.1:2200");
            jail.set_env("HAYLOFT_ADMIN_TOKEN", "hunter2");
            jail.set_env("DATABASE_URL", "postgres://app:pw@db/hayloft");
            let overrides = Overrides { log_level: Some("debug".to_owned()), ..Overrides::default() };
            settings = Some(Config::explain(None, &overrides));
            Ok(())
        });
        let settings = settings.unwrap().unwrap();
        let find = |key: &str| {
            settings.iter().find(|setting| setting.key == key).unwrap_or_else(|| panic!("{key}: {settings:?}"))
        };
        assert_eq!((find("pool_size").value.as_str(), find("pool_size").source.as_str()), ("3", "hayloft.toml"));
        assert_eq!(find("ssh.addr").source, "HAYLOFT_SSH_ADDR");
        assert_eq!(find("log_level").source, "command line");
        assert_eq!(find("addr").source, "default");
        assert_eq!(find("admin_token").value, "\"***\"");
        assert_eq!(find("database_url").value, "\"postgres://app:***@db/hayloft\"");
        assert_eq!(find("database_url").source, "DATABASE_URL");
        let hooks = &find("notify.webhooks").value;
        assert!(hooks.contains("https://hooks.example/***") && !hooks.contains("secretpath"), "{hooks}");
    }

    // A mistyped key: where it is (file and line, or variable), what it is, what was meant,
    // with no internal profile prefix and no list of every key.
    #[test]
    fn a_mistyped_key_says_where_and_what_was_meant() {
        let error = load_with("pool_size = 2\nadr = \"127.0.0.1:1\"\n", &[]).unwrap_err().to_string();
        assert!(error.contains("hayloft.toml, line 2: unknown key \"adr\" (did you mean \"addr\"?)"), "{error}");
        assert!(!error.contains("default.") && !error.contains("database_url"), "{error}");
        let error = load_with("[ssh]\nmax_sesions = 3\n", &[]).unwrap_err().to_string();
        assert!(
            error.contains("line 2: unknown key \"max_sesions\" under [ssh] (did you mean \"max_sessions\"?)"),
            "{error}"
        );
        let error = load_with("", &[("HAYLOFT_POOL_SIZ", "3")]).unwrap_err().to_string();
        assert!(error.contains("HAYLOFT_POOL_SIZ: unknown key \"pool_siz\" (did you mean \"pool_size\"?)"), "{error}");
        let error = load_with("addr = \"localhost:8080\"\n", &[]).unwrap_err().to_string();
        assert!(error.contains("line 1: addr: ") && error.contains("127.0.0.1:8080"), "{error}");
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
