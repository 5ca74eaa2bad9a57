//! Logging: human-readable lines by default, one JSON object per line with `--log-format json`.
//! Every actor's work runs inside an `actor{name=…}` span (set by the supervisor), so each line
//! says which actor wrote it. Panics are logged through tracing too, with their location.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// Installs the global subscriber. `level` is a tracing filter (`info`, `hayloft=debug,info`);
/// `RUST_LOG`, when set, wins.
pub fn init(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.is_empty() => EnvFilter::try_new(from_env)?,
        _ => EnvFilter::try_new(level).map_err(|error| anyhow::anyhow!("invalid log_level {level:?}: {error}"))?,
    };
    // Logs go to stderr: stdout is reserved for command output (`--json`).
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry.with(fmt::layer().with_writer(std::io::stderr).with_target(false)).try_init()?,
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr).with_current_span(true).with_span_list(false))
            .try_init()?,
    }
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|location| location.to_string()).unwrap_or_default();
        let message = hayloft_actors::supervisor::panic_message(info.payload());
        tracing::error!(panic = %message, %location, "panic");
    }));
    Ok(())
}
