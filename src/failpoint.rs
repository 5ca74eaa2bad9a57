//! A test hook: `HAYLOFT_PAUSE_AT=<name>` makes the process stop at the named point of a load
//! and wait there forever, after logging `paused at failpoint`. Crash tests use it to SIGKILL the
//! server at an exact moment (before, during and after a load's write). Unset, it costs one
//! environment lookup per point.

use std::sync::OnceLock;
use std::time::Duration;

/// The variable naming the point to pause at.
pub const VARIABLE: &str = "HAYLOFT_PAUSE_AT";

/// Pauses forever if `name` is the requested failpoint. Blocks the calling thread on purpose:
/// nothing else should make progress once the point is reached.
pub fn pause(name: &str) {
    static REQUESTED: OnceLock<Option<String>> = OnceLock::new();
    let requested = REQUESTED.get_or_init(|| std::env::var(VARIABLE).ok().filter(|value| !value.is_empty()));
    if requested.as_deref() != Some(name) {
        return;
    }
    tracing::warn!(failpoint = name, "paused at failpoint");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
