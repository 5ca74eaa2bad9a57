//! This process as a node of a cluster: several `hayloft serve` (and `hayloft run`) processes on
//! one database share the work, each slot run once, a dead node's runs taken over in seconds.
//!
//! A node registers in the `nodes` table at start, then the [`Heartbeat`] actor writes its
//! heartbeat every `heartbeat` (1 s by default). Every node's scheduler, at the same pace, asks
//! the ledger to abandon the runs of nodes silent for longer than `dead_after` (5 s), judged by
//! the database's clock, and starts the queued attempts. A node that stops cleanly hands its runs
//! over and leaves at once. See "Running several nodes" in the README.
//!
//! The per-host upstream limits hold for the whole cluster: every beat counts the live nodes and
//! sets this node's share of them ([`ClusterShare`]).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use crate::db::nodes::{self, Beat, Liveness, NodeIdentity};
use crate::db::Database;
use crate::upstream::ClusterShare;

/// `[cluster]`: this node's id and the liveness rule (which every node must share).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// This node's id (`HAYLOFT_NODE_ID`); generated (host name and a random suffix) when unset.
    /// Letters, digits, `.`, `_` and `-`. A node restarting under its own id takes its
    /// unfinished runs back at once instead of waiting for `dead_after`.
    pub node_id: Option<String>,
    /// How often the node writes its heartbeat (and looks for dead nodes' runs).
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// A node silent for longer than this, by the database's clock, is dead: its runs go to
    /// the others.
    #[serde(with = "humantime_serde")]
    pub dead_after: Duration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        let liveness = Liveness::default();
        Self { node_id: None, heartbeat: liveness.heartbeat, dead_after: liveness.dead_after }
    }
}

impl ClusterSettings {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(id) = &self.node_id {
            let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if id.is_empty() || id.len() > 64 || !id.chars().all(valid) {
                return Err(format!("node_id {id:?}: use 1 to 64 letters, digits, '.', '_' or '-'"));
            }
        }
        if self.heartbeat < Duration::from_millis(100) {
            return Err("heartbeat must be at least 100ms".to_owned());
        }
        if self.dead_after < self.heartbeat * 3 {
            return Err(format!(
                "dead_after ({:?}) must be at least three heartbeats ({:?}): a node must not be declared dead for one late beat",
                self.dead_after,
                self.heartbeat * 3
            ));
        }
        Ok(())
    }

    pub fn liveness(&self) -> Liveness {
        Liveness { heartbeat: self.heartbeat, dead_after: self.dead_after }
    }

    /// Who this process is in the cluster.
    pub fn identity(&self) -> NodeIdentity {
        let host =
            hostname::get().map(|name| name.to_string_lossy().into_owned()).unwrap_or_else(|_| "localhost".to_owned());
        let id = self.node_id.clone().unwrap_or_else(|| generated_id(&host));
        NodeIdentity { id, host, pid: std::process::id(), version: env!("CARGO_PKG_VERSION") }
    }
}

/// `<host>-<8 hex digits>`: unique enough per start, readable in logs. The suffix mixes the
/// start time and pid, so two containers with the same host name and pid 1 still differ.
fn generated_id(host: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u128);
    hasher.write_u32(std::process::id());
    let host: String =
        host.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).take(40).collect();
    format!("{}-{:08x}", if host.is_empty() { "node" } else { &host }, hasher.finish() as u32)
}

/// Writes this node's heartbeat; when it finds the node was declared dead (it was paused or cut
/// off for longer than `dead_after`), it says so and rejoins. The runs it holds are not given
/// up: those another node took over meanwhile refuse its writes, the others are still its own.
pub struct Heartbeat {
    db: Database,
    identity: Arc<NodeIdentity>,
    liveness: Liveness,
    /// This node's part of the upstream limits, recomputed from the live nodes on every beat.
    share: Arc<ClusterShare>,
    /// Beats written since this actor started.
    beats: u32,
    busy: bool,
}

/// Beats after which every other node has counted this one (each beats once per interval):
/// from then on this node takes its share of the upstream limits.
const COUNTED_AFTER_BEATS: u32 = 3;

impl Heartbeat {
    pub fn new(db: Database, identity: Arc<NodeIdentity>, liveness: Liveness, share: Arc<ClusterShare>) -> Self {
        Self { db, identity, liveness, share, beats: 0, busy: false }
    }

    fn beat(&mut self, ctx: &mut Context<Self>) {
        // A slow database must not pile up beats: skip this one, the next tells the same.
        if self.busy {
            return;
        }
        self.busy = true;
        let (db, identity, liveness, share) =
            (self.db.clone(), self.identity.clone(), self.liveness, self.share.clone());
        self.beats = self.beats.saturating_add(1);
        let counted = self.beats >= COUNTED_AFTER_BEATS || share.nodes().is_some();
        let beat = async move {
            let beat = nodes::beat(&db, &identity, liveness).await.map_err(|error| error.to_string())?;
            if counted {
                let (_, live) = nodes::live_nodes(&db, liveness).await.map_err(|error| error.to_string())?;
                if let Some(nodes) = share.set(&live, &identity.id) {
                    info!(nodes, "the upstream limits are shared among {nodes} live nodes");
                }
            }
            if beat == Beat::Rejoined {
                // The runs it holds stay its own as long as no other node took them: their
                // claims are intact, and a run another node did take refuses this node's
                // writes (fencing). Giving them up here would fail runs nobody took over, as
                // when a busy machine delays the first beat past `dead_after`.
                warn!(
                    node = %identity.id,
                    dead_after = ?liveness.dead_after,
                    "this node was silent for longer than dead_after (paused, cut off or starved) and was counted as dead; \
                     it rejoined, and any run another node took over meanwhile refuses this node's writes"
                );
            }
            Ok::<_, String>(())
        };
        ctx.spawn(beat.into_actor(self).map(|result, heartbeat, _| {
            heartbeat.busy = false;
            if let Err(error) = result {
                error!(%error, "heartbeat failed; other nodes will take this node's runs if it keeps failing")
            }
        }));
    }
}

impl Actor for Heartbeat {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.beat(ctx);
        ctx.run_interval(self.liveness.heartbeat, |heartbeat, ctx| heartbeat.beat(ctx));
    }
}
