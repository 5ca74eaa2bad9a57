//! Hardware front doors: each device is an actor under the root supervisor, enabled by config.
//! When a device goes away its actor fails, and the supervisor starts it again with backoff
//! (quarantine: 0.5 s, 1 s, 2 s… up to 30 s between attempts) while the rest of Hayloft carries
//! on.

use std::time::Duration;

use hayloft_actors::supervisor::{Backoff, ChildSpec, RestartLimit, RestartPolicy};

pub mod serial;
pub mod streamdeck;

/// Supervision for a device: every failure waits, longer each time, before the next attempt.
pub fn supervised(spec: ChildSpec) -> ChildSpec {
    spec.policy(RestartPolicy::Permanent)
        .limit(RestartLimit { max_restarts: 0, within: Duration::from_secs(60) })
        .backoff(Backoff { initial: Duration::from_millis(500), max: Duration::from_secs(30), factor: 2 })
}

/// The Stream Deck's place in the tree, with `connector` as its hardware (real or simulated).
pub fn stream_deck(
    bindings: Vec<streamdeck::KeyBinding>,
    connector: std::sync::Arc<dyn streamdeck::DeckConnector>,
    core: crate::commands::CommandCore,
    events: hayloft_actors::events::EventBus,
) -> ChildSpec {
    let (spec, _) = ChildSpec::worker("streamdeck", move |child: &hayloft_actors::supervisor::ChildContext| {
        streamdeck::StreamDeckActor::new(
            bindings.clone(),
            connector.clone(),
            core.clone(),
            events.clone(),
            child.clone(),
        )
    });
    supervised(spec)
}
