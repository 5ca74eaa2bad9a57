//! Logging: human-readable lines by default, one JSON object per line with `--log-format json`.
//! Every actor's work runs inside an `actor{path=…}` span (set by the supervisor), so each line
//! says which actor wrote it. Panics are logged through tracing too, with their location.
//!
//! Records at `info` and above are also kept in a bounded in-memory ring ([`recent_logs`]) and
//! published on the event bus, which is what `logs`, `logs -f` (SSH), the dashboard's log tail and
//! the GraphQL log subscription read. Pushing to the ring takes a short lock and publishing never
//! waits, so a slow reader loses lines (and is told how many) but never slows the engine.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use hayloft_actors::command::{LogLevel, LogPage};
use hayloft_actors::events::{Event, EventBus, LogLine};
use serde::{Deserialize, Serialize};
use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// How log lines are written (`log_format` in the configuration, `--log-format` on the command
/// line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The progress bar `hayloft run` shows on a terminal, while it shows one: log lines are
/// written above it rather than into it.
static PROGRESS: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Shows log lines above `bar` from now on (`None`: no bar any more).
pub fn write_logs_above(bar: Option<indicatif::ProgressBar>) {
    *PROGRESS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = bar;
}

/// stderr, with the progress bar (if any) lifted out of the way for each line.
struct Stderr;

impl std::io::Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = PROGRESS.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf)).map(|()| buf.len()),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The bus log records are published on, once the application has started one.
static LOG_BUS: OnceLock<EventBus> = OnceLock::new();

/// Publishes log records at `info` and above on `bus` from now on (the first call wins).
pub fn publish_logs_to(bus: &EventBus) {
    let _ = LOG_BUS.set(bus.clone());
}

/// How many log records the ring keeps.
pub const LOG_RING_CAPACITY: usize = 2000;

/// The newest log records, oldest first, and whether older ones were pushed out.
struct LogRing {
    lines: VecDeque<LogLine>,
    overflowed: bool,
}

static LOG_RING: Mutex<LogRing> = Mutex::new(LogRing { lines: VecDeque::new(), overflowed: false });

fn remember(line: LogLine) {
    // A poisoned lock only means a panic while pushing; the ring itself is still usable.
    let mut ring = LOG_RING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if ring.lines.len() == LOG_RING_CAPACITY {
        ring.lines.pop_front();
        ring.overflowed = true;
    }
    ring.lines.push_back(line);
}

/// The newest `limit` records at `level` or above, oldest first.
pub fn recent_logs(limit: usize, level: LogLevel) -> LogPage {
    let ring = LOG_RING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let matching: Vec<&LogLine> = ring.lines.iter().filter(|line| level.admits(&line.level)).collect();
    let skip = matching.len().saturating_sub(limit);
    LogPage {
        lines: matching[skip..].iter().map(|line| (*line).clone()).collect(),
        truncated: skip > 0 || ring.overflowed,
    }
}

/// Turns each log record into an [`Event::Log`]: message, fields, and the actor it came from.
struct BusLayer;

#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl Visit for LineVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let separator = if self.fields.is_empty() { "" } else { " " };
            let _ = write!(self.fields, "{separator}{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

/// Finds the `path` field of an `actor` span, recorded when the span was created.
#[derive(Default)]
struct ActorName(Option<String>);

impl Visit for ActorName {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "path" {
            self.0 = Some(format!("{value:?}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "path" {
            self.0 = Some(value.to_owned());
        }
    }
}

struct SpanActor(String);

impl<S> Layer<S> for BusLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        if attributes.metadata().name() != "actor" {
            return;
        }
        let mut name = ActorName::default();
        attributes.record(&mut name);
        if let (Some(name), Some(span)) = (name.0, ctx.span(id)) {
            span.extensions_mut().insert(SpanActor(name));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() > Level::INFO {
            return;
        }
        let mut visitor = LineVisitor::default();
        event.record(&mut visitor);
        let actor = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .filter_map(|span| span.extensions().get::<SpanActor>().map(|actor| actor.0.clone()))
                .last()
        });
        let line = LogLine {
            at: chrono::Utc::now(),
            level: event.metadata().level().to_string(),
            actor,
            message: visitor.message,
            fields: visitor.fields,
        };
        if let Some(bus) = LOG_BUS.get() {
            bus.publish(Event::Log(line.clone()));
        }
        remember(line);
    }
}

/// The filter a configured `log_level` stands for. A bare level (`info`, `debug`) is meant for
/// Hayloft itself: its crates log at that level and every dependency at `warn` (their `info` is
/// chatter nobody asked for, like actix announcing its runtime), or quieter when Hayloft is. A
/// full tracing filter (`hayloft=debug,awc=debug,info`) is taken as written.
pub fn filter_for(level: &str) -> String {
    let level = level.trim();
    if level.contains('=') || level.contains(',') {
        return level.to_owned();
    }
    let dependencies = if matches!(level.to_ascii_lowercase().as_str(), "error" | "off") { level } else { "warn" };
    format!("{dependencies},hayloft={level},hayloft_actors={level}")
}

/// Whether log lines get colours: only on a terminal, and never when `NO_COLOR` is set (to
/// anything but the empty string, see no-color.org) or the terminal says it is `dumb`.
fn colour_wanted(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>, term: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty()) && term.is_none_or(|term| term != "dumb")
}

/// Installs the global subscriber. `level` is a configured log level (see [`filter_for`]);
/// `RUST_LOG`, when set, wins and is taken as written.
pub fn init(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.is_empty() => EnvFilter::try_new(from_env)?,
        _ => EnvFilter::try_new(filter_for(level))
            .map_err(|error| anyhow::anyhow!("invalid log_level {level:?}: {error} (try info, debug or warn)"))?,
    };
    let ansi = colour_wanted(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    );
    // Logs go to stderr: stdout is reserved for command output (`--json`).
    let registry = tracing_subscriber::registry().with(filter).with(BusLayer);
    match format {
        LogFormat::Text => {
            registry.with(fmt::layer().with_writer(|| Stderr).with_target(false).with_ansi(ansi)).try_init()?
        }
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_ansi(false)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init()?,
    }
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|location| location.to_string()).unwrap_or_default();
        let message = hayloft_actors::supervisor::panic_message(info.payload());
        tracing::error!(panic = %message, %location, "panic");
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // A bare level is Hayloft's own; dependencies stay at warn unless Hayloft is quieter still.
    #[test]
    fn a_bare_level_leaves_dependencies_at_warn() {
        assert_eq!(filter_for("info"), "warn,hayloft=info,hayloft_actors=info");
        assert_eq!(filter_for(" debug "), "warn,hayloft=debug,hayloft_actors=debug");
        assert_eq!(filter_for("error"), "error,hayloft=error,hayloft_actors=error");
        assert_eq!(filter_for("hayloft=debug,info"), "hayloft=debug,info");
        assert_eq!(filter_for("awc=debug"), "awc=debug");
    }

    // Colours only on a terminal that is not dumb, and never with NO_COLOR.
    #[test]
    fn colours_only_where_someone_sees_them() {
        use std::ffi::OsStr;
        let xterm = Some(OsStr::new("xterm-256color"));
        assert!(colour_wanted(true, None, xterm));
        assert!(colour_wanted(true, Some(OsStr::new("")), None), "an empty NO_COLOR does not count");
        assert!(!colour_wanted(false, None, xterm), "a file or a pipe");
        assert!(!colour_wanted(true, Some(OsStr::new("1")), xterm));
        assert!(!colour_wanted(true, None, Some(OsStr::new("dumb"))));
    }

    // Log records reach the event bus with their message, fields and the actor that wrote them.
    #[test]
    fn log_lines_are_published_with_their_actor() {
        let bus = EventBus::default();
        publish_logs_to(&bus);
        let mut events = bus.subscribe();
        let subscriber = tracing_subscriber::registry().with(BusLayer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("actor", path = "root/pipelines/demo/runner");
            let _entered = span.enter();
            tracing::info!(run_id = 7, "run started");
            tracing::debug!("too quiet to publish");
        });
        let event = events.try_recv().unwrap();
        let Event::Log(line) = &*event else { panic!("not a log line: {event:?}") };
        assert_eq!(line.message, "run started");
        assert_eq!(line.fields, "run_id=7");
        assert_eq!(line.level, "INFO");
        assert_eq!(line.actor.as_deref(), Some("root/pipelines/demo/runner"));
        assert!(events.try_recv().is_err(), "debug lines are not published");
    }

    // The ring keeps the newest lines and says when older ones are gone.
    #[test]
    fn the_ring_is_bounded() {
        let subscriber = tracing_subscriber::registry().with(BusLayer);
        tracing::subscriber::with_default(subscriber, || {
            for index in 0..LOG_RING_CAPACITY + 5 {
                tracing::warn!(index, "filling the ring");
            }
        });
        // Other tests in this process may log too: look at this test's lines only.
        let page = recent_logs(LOG_RING_CAPACITY * 2, LogLevel::Warn);
        assert!(page.lines.len() <= LOG_RING_CAPACITY);
        assert!(page.truncated);
        let ours: Vec<_> = page.lines.iter().filter(|line| line.message == "filling the ring").collect();
        assert!(ours.len() >= LOG_RING_CAPACITY - 10, "{}", ours.len());
        assert_eq!(ours.last().unwrap().fields, format!("index={}", LOG_RING_CAPACITY + 4));
        assert!(ours.first().unwrap().fields != "index=0", "the oldest lines were pushed out");
        assert!(recent_logs(3, LogLevel::Error).lines.iter().all(|line| line.level == "ERROR"));
    }
}
