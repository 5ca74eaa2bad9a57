//! Hardware front doors: each device is an actor under the root supervisor, enabled by config.
//! When a device goes away its actor fails, and the supervisor starts it again with backoff
//! (quarantine: 0.5 s, 1 s, 2 s… up to 30 s between attempts) while the rest of Hayloft carries
//! on.

use std::time::Duration;

use hayloft_actors::supervisor::{Backoff, ChildSpec, RestartLimit, RestartPolicy};

pub mod serial;

/// Supervision for a device: every failure waits, longer each time, before the next attempt.
pub fn supervised(spec: ChildSpec) -> ChildSpec {
    spec.policy(RestartPolicy::Permanent)
        .limit(RestartLimit { max_restarts: 0, within: Duration::from_secs(60) })
        .backoff(Backoff { initial: Duration::from_millis(500), max: Duration::from_secs(30), factor: 2 })
}
