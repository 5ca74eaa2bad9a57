//! The `nodes` table: who is in the cluster, by heartbeat on the database's clock.
//!
//! A node registers when it starts, beats every `[cluster] heartbeat`, and leaves when it stops.
//! It is alive while it has not left and its last heartbeat is younger than `dead_after` by the
//! database's clock.
//!
//! On PostgreSQL, death is seen sooner: every node's connections carry its id as their
//! `application_name` ([`super::DatabaseUrl::for_node`]), and a process that dies (killed,
//! crashed) loses them at once. A node with no connection left whose heartbeat is late by more
//! than two heartbeats is dead without waiting for `dead_after`. This is only a speed-up: the
//! rule above alone is what a node relies on (a partitioned node keeps its sessions until TCP
//! gives up, a paused one keeps them until it is counted dead by heartbeat), and engines whose
//! `pg_stat_activity` says nothing simply get `dead_after`. Any node may then abandon the runs
//! of a dead one (see
//! [`super::ledger::SqlLedger`]); a node that finds it was declared dead rejoins, and the runs it
//! still thinks it holds are refused at their next write.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::{ExpressionMethods, Insertable, OptionalExtension, QueryDsl, Queryable, Selectable, SelectableHelper};
use hayloft_actors::command::NodeInfo;

use super::clock::{minus, DbClock};
use super::schema::{nodes, runs};
use super::{with_conn, write_transaction, Database, DbError};

/// The liveness rule, shared by every node of a cluster (they must agree on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// How often a node writes its heartbeat.
    pub heartbeat: Duration,
    /// A node whose heartbeat is older than this is dead.
    pub dead_after: Duration,
}

impl Liveness {
    /// How late a heartbeat may be before a node without database sessions counts as dead.
    pub fn sessionless_after(&self) -> Duration {
        (self.heartbeat * 2).min(self.dead_after)
    }
}

/// The `application_name` prefix of a node's PostgreSQL connections.
pub const SESSION_PREFIX: &str = "hayloft-node:";

#[derive(diesel::QueryableByName)]
struct Session {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// The nodes that hold a PostgreSQL connection now (`None` on SQLite, which has no sessions to
/// look at).
async fn connected(db: &Database) -> Result<Option<std::collections::HashSet<String>>, DbError> {
    if db.backend() != super::Backend::Postgres {
        return Ok(None);
    }
    let sessions: Vec<Session> = with_conn!(db, readers, |conn| {
        diesel::sql_query(
            "SELECT application_name AS name FROM pg_stat_activity WHERE starts_with(application_name, 'hayloft-node:')",
        )
        .load(conn)
        .await
        .map_err(DbError::Query)
    })?;
    Ok(Some(
        sessions
            .into_iter()
            .filter_map(|session| session.name.strip_prefix(SESSION_PREFIX).map(str::to_owned))
            .collect(),
    ))
}

/// Whether a node that has not left, last heard from `age` ago, is alive.
fn alive(
    id: &str,
    age: chrono::Duration,
    connected: Option<&std::collections::HashSet<String>>,
    liveness: Liveness,
) -> bool {
    let longer = |limit: Duration| age > chrono::Duration::from_std(limit).unwrap_or(chrono::Duration::MAX);
    if longer(liveness.dead_after) {
        return false;
    }
    match connected {
        Some(connected) if longer(liveness.sessionless_after()) => connected.contains(id),
        _ => true,
    }
}

impl Default for Liveness {
    fn default() -> Self {
        Self { heartbeat: Duration::from_secs(1), dead_after: Duration::from_secs(5) }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = nodes)]
struct NodeRow {
    id: String,
    host: String,
    pid: i64,
    version: String,
    started_at: NaiveDateTime,
    heartbeat_at: NaiveDateTime,
    left_at: Option<NaiveDateTime>,
}

/// What a node registers as.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub version: &'static str,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Alive, as before.
    Alive,
    /// The node had been silent past `dead_after` (paused, partitioned) or had left; it
    /// registered again, and its old claims are void.
    Rejoined,
}

#[derive(Insertable)]
#[diesel(table_name = nodes)]
struct NewNode<'a> {
    id: &'a str,
    host: &'a str,
    pid: i64,
    version: &'a str,
    started_at: NaiveDateTime,
    heartbeat_at: NaiveDateTime,
}

fn row_values(identity: &NodeIdentity, now: NaiveDateTime) -> NewNode<'_> {
    NewNode {
        id: &identity.id,
        host: &identity.host,
        pid: i64::from(identity.pid),
        version: identity.version,
        started_at: now,
        heartbeat_at: now,
    }
}

/// Joins the cluster (or rejoins under the same id). Returns whether a row under this id looked
/// alive: another process may be using the same node id, which the operator must hear about.
pub async fn register(db: &Database, identity: &NodeIdentity, liveness: Liveness) -> Result<bool, DbError> {
    write_transaction!(db, |conn| {
        let now = conn.db_now().await?;
        let previous: Option<NodeRow> =
            nodes::table.find(&identity.id).select(NodeRow::as_select()).first(conn).await.optional()?;
        let clash =
            previous.is_some_and(|row| row.left_at.is_none() && row.heartbeat_at >= minus(now, liveness.dead_after));
        diesel::delete(nodes::table.find(&identity.id)).execute(conn).await?;
        diesel::insert_into(nodes::table).values(row_values(identity, now)).execute(conn).await?;
        Ok::<_, DbError>(clash)
    })
}

/// Writes this node's heartbeat, if it is still alive; otherwise registers it again.
pub async fn beat(db: &Database, identity: &NodeIdentity, liveness: Liveness) -> Result<Beat, DbError> {
    let alive = with_conn!(db, writer, |conn| {
        let now = conn.db_now().await?;
        diesel::update(
            nodes::table
                .find(&identity.id)
                .filter(nodes::left_at.is_null())
                .filter(nodes::heartbeat_at.ge(minus(now, liveness.dead_after))),
        )
        .set(nodes::heartbeat_at.eq(now))
        .execute(conn)
        .await
        .map_err(DbError::Query)
    })?;
    if alive == 1 {
        return Ok(Beat::Alive);
    }
    register(db, identity, liveness).await?;
    Ok(Beat::Rejoined)
}

/// Leaves the cluster: other nodes stop counting this one at once.
pub async fn leave(db: &Database, node: &str) -> Result<(), DbError> {
    with_conn!(db, writer, |conn| {
        let now = conn.db_now().await?;
        diesel::update(nodes::table.find(node)).set(nodes::left_at.eq(now)).execute(conn).await.map_err(DbError::Query)
    })?;
    Ok(())
}

/// The ids of the live nodes, and the database's time they were judged by.
pub async fn live_nodes(db: &Database, liveness: Liveness) -> Result<(NaiveDateTime, Vec<String>), DbError> {
    let connected = connected(db).await?;
    let (now, rows): (NaiveDateTime, Vec<(String, NaiveDateTime)>) = with_conn!(db, readers, |conn| {
        let now = conn.db_now().await?;
        let rows = nodes::table
            .filter(nodes::left_at.is_null())
            .filter(nodes::heartbeat_at.ge(minus(now, liveness.dead_after)))
            .select((nodes::id, nodes::heartbeat_at))
            .load(conn)
            .await?;
        Ok::<_, DbError>((now, rows))
    })?;
    let live = rows
        .into_iter()
        .filter(|(id, heartbeat_at)| alive(id, now - *heartbeat_at, connected.as_ref(), liveness))
        .map(|(id, _)| id)
        .collect();
    Ok((now, live))
}

/// Every node that ever registered here, live ones first, with what each is running.
pub async fn list(db: &Database, liveness: Liveness) -> Result<Vec<NodeInfo>, DbError> {
    let connected = connected(db).await?;
    let (now, rows, running) = with_conn!(db, readers, |conn| {
        let now = conn.db_now().await?;
        let rows: Vec<NodeRow> = nodes::table.order(nodes::id.asc()).select(NodeRow::as_select()).load(conn).await?;
        let running: Vec<(Option<String>, String)> = runs::table
            .filter(runs::status.eq("running"))
            .order(runs::pipeline.asc())
            .select((runs::owner, runs::pipeline))
            .load(conn)
            .await?;
        Ok::<_, DbError>((now, rows, running))
    })?;
    let mut listed: Vec<NodeInfo> = rows
        .into_iter()
        .map(|row| {
            let age = now - row.heartbeat_at;
            let state = match row.left_at {
                Some(_) => "left",
                None if alive(&row.id, age, connected.as_ref(), liveness) => "live",
                None => "dead",
            };
            NodeInfo {
                running: running
                    .iter()
                    .filter(|(owner, _)| owner.as_deref() == Some(row.id.as_str()))
                    .map(|(_, pipeline)| pipeline.clone())
                    .collect(),
                node: row.id,
                state,
                host: row.host,
                pid: row.pid,
                version: row.version,
                started_at: row.started_at.and_utc(),
                last_heartbeat: row.heartbeat_at.and_utc(),
                heartbeat_age_ms: age.num_milliseconds(),
            }
        })
        .collect();
    listed.sort_by_key(|node| (node.state != "live", node.state == "left"));
    Ok(listed)
}
