//! The per-host politeness limits, held for the whole cluster: the configured requests per
//! second and requests in flight are split among the live nodes, so N nodes together never go
//! past them.
//!
//! Each node's heartbeat reads the live nodes (by the database's clock, see
//! [`crate::db::nodes`]) and gives this node its [`ClusterShare`]: with the live ids sorted, the
//! node at position `k` of `n` gets `total / n`, plus one if `k < total % n`, so the shares add
//! up to the total exactly. A node paces its requests one every `1 s / share` (no bursts), so
//! within any one-second window it sends at most its share.
//!
//! Joining: a new node fetches nothing until two heartbeats have passed, by which time every
//! other node's heartbeat has counted it and lowered its own share. Leaving: a node that stops
//! gracefully is dropped from the count at once; one that dies is counted until it is declared
//! dead, so the others stay below the limit meanwhile. With more nodes than requests per
//! second, a node whose share would be nothing sends one request every `n / rate` seconds.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// This node's place among the live nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    nodes: u32,
    rank: u32,
}

/// This node's share of every host's limits; updated by the heartbeat.
#[derive(Debug)]
pub struct ClusterShare {
    /// `None` until every other node has had time to count this one.
    place: Mutex<Option<Place>>,
    changed: Notify,
}

impl ClusterShare {
    /// A process on its own (tests, tools): the whole limits, at once.
    pub fn alone() -> Arc<Self> {
        Arc::new(Self { place: Mutex::new(Some(Place { nodes: 1, rank: 0 })), changed: Notify::new() })
    }

    /// A cluster node that has not yet been counted by the others: it waits for [`Self::set`].
    pub fn joining() -> Arc<Self> {
        Arc::new(Self { place: Mutex::new(None), changed: Notify::new() })
    }

    /// This node's place among `live` (every live node's id, this one's included). Returns
    /// the number of nodes when it changed.
    pub fn set(&self, live: &[String], me: &str) -> Option<u32> {
        let mut ids: Vec<&str> = live.iter().map(String::as_str).collect();
        if !ids.contains(&me) {
            ids.push(me);
        }
        ids.sort_unstable();
        ids.dedup();
        let rank = ids.iter().position(|id| *id == me).unwrap_or(0);
        let place = Place { nodes: ids.len().max(1) as u32, rank: rank as u32 };
        let before = self.place.lock().unwrap_or_else(PoisonError::into_inner).replace(place);
        self.changed.notify_waiters();
        (before.map(|before| before.nodes) != Some(place.nodes)).then_some(place.nodes)
    }

    /// How many live nodes share the limits (`None` while joining).
    pub fn nodes(&self) -> Option<u32> {
        self.place().map(|place| place.nodes)
    }

    /// This node's part of `total` (requests in flight, pages taken at once): `None` while
    /// joining, when it must not take anything yet.
    pub fn part_of(&self, total: u32) -> Option<u32> {
        self.place().map(|place| split(total.max(1), place).max(1))
    }

    fn place(&self) -> Option<Place> {
        *self.place.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn placed(&self) -> Place {
        loop {
            let changed = self.changed.notified();
            if let Some(place) = self.place() {
                return place;
            }
            changed.await;
        }
    }
}

/// `total` split among `place.nodes`: this node's part.
fn split(total: u32, place: Place) -> u32 {
    total / place.nodes + u32::from(place.rank < total % place.nodes)
}

/// One host's limits on this node: its share of the requests in flight and of the rate.
#[derive(Debug)]
pub struct HostGate {
    concurrency: u32,
    rate_per_second: u32,
    share: Arc<ClusterShare>,
    state: Mutex<GateState>,
    freed: Notify,
}

#[derive(Debug)]
struct GateState {
    in_flight: u32,
    /// When the next request may start.
    next_at: Instant,
}

/// A request in flight; dropping it frees its place.
pub struct Permit<'a> {
    gate: &'a HostGate,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut state = self.gate.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.in_flight = state.in_flight.saturating_sub(1);
        drop(state);
        self.gate.freed.notify_waiters();
    }
}

impl HostGate {
    pub fn new(concurrency: usize, rate_per_second: u32, share: Arc<ClusterShare>) -> Self {
        Self {
            concurrency: u32::try_from(concurrency.max(1)).unwrap_or(u32::MAX),
            rate_per_second: rate_per_second.max(1),
            share,
            state: Mutex::new(GateState { in_flight: 0, next_at: Instant::now() }),
            freed: Notify::new(),
        }
    }

    /// Waits for a place among this node's requests in flight, then for this node's next turn
    /// under its share of the rate.
    pub async fn enter(&self) -> Permit<'_> {
        loop {
            let place = self.share.placed().await;
            let limit = split(self.concurrency, place).max(1);
            // Registered before the check, so a place freed in between is not missed.
            let freed = self.freed.notified();
            let changed = self.share.changed.notified();
            {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if state.in_flight < limit {
                    state.in_flight += 1;
                    break;
                }
            }
            tokio::select! {
                () = freed => {}
                () = changed => {}
            }
        }
        let permit = Permit { gate: self };
        let spacing = self.spacing();
        let start_at = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let at = state.next_at.max(Instant::now());
            state.next_at = at + spacing;
            at
        };
        tokio::time::sleep_until(start_at).await;
        permit
    }

    /// The time between two requests of this node.
    fn spacing(&self) -> Duration {
        let Some(place) = self.share.place() else { return Duration::from_secs(1) };
        match split(self.rate_per_second, place) {
            0 => Duration::from_secs_f64(f64::from(place.nodes) / f64::from(self.rate_per_second)),
            share => Duration::from_secs(1) / share,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // The shares of every node add up to the total, whatever the count.
    #[test]
    fn shares_add_up_to_the_limit() {
        for nodes in 1..=7 {
            for total in [1, 4, 5, 300] {
                let sum: u32 = (0..nodes).map(|rank| split(total, Place { nodes, rank })).sum();
                assert_eq!(sum, total, "{total} among {nodes}");
            }
        }
    }

    // A node's place is its position among the sorted live ids, itself included.
    #[test]
    fn place_is_the_position_among_live_ids() {
        let share = ClusterShare::joining();
        assert_eq!(share.nodes(), None);
        share.set(&["c".to_owned(), "a".to_owned()], "b");
        assert_eq!(share.place(), Some(Place { nodes: 3, rank: 1 }));
    }

    // Paced, not bursty: five requests at 5 per second (one node) take 0.8 s of pacing.
    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_by_the_share() {
        let gate = HostGate::new(4, 5, ClusterShare::alone());
        let started = Instant::now();
        for _ in 0..5 {
            drop(gate.enter().await);
        }
        assert_eq!(started.elapsed(), Duration::from_millis(800));
        let share = ClusterShare::alone();
        share.set(&["a".to_owned(), "b".to_owned()], "a");
        // 5 per second between two nodes: this one (first) gets 3.
        let gate = HostGate::new(4, 5, share);
        assert_eq!(gate.spacing(), Duration::from_secs(1) / 3);
    }
}
