//! Fan-out tasks: the pages of a fan-out run (one item page per item, one location page per
//! location) as rows every node can take a share of.
//!
//! The protocol, on the same three things as the ledger (unique indexes, conditional updates,
//! the database's clock):
//! - The run's owner writes one `fan_out_tasks` row per page (unique per run and request),
//!   fenced by its run claim. A retry of an abandoned run takes the unfinished run's tasks over
//!   instead, so pages already written are not fetched again.
//! - Any node takes a batch: the ids are picked with `FOR UPDATE SKIP LOCKED` on PostgreSQL (two
//!   nodes never wait for, or get, the same rows) and inside the one write transaction on
//!   SQLite, then marked `claimed` by this node with a lease and `attempt + 1`.
//! - A claimed task whose node is no longer live (see [`super::nodes`]) or whose lease ran out
//!   can be taken again: a crash loses only the pages the dead node had in hand.
//! - A task's result (its page's rows, its fingerprint, `done` or `failed`) is written only
//!   while the task is still claimed by this node with this attempt: a node whose task was
//!   taken from it commits nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::{
    BoolExpressionMethods, ExpressionMethods, NullableExpressionMethods, QueryDsl, Queryable, Selectable,
    SelectableHelper,
};
use hayloft_actors::ledger::{Claim, RunCounts, RunId};

use super::clock::{plus, DbClock};
use super::ledger::{fence_postgres, fence_sqlite};
use super::nodes::Liveness;
use super::schema::{fan_out_tasks, page_fingerprints, runs};
use super::{carry, unwrap_carried, with_conn, write_transaction, Database, DbError};

/// Rows per insert statement when writing a run's tasks.
const INSERT_BATCH: usize = 500;

/// What a node holds while it works on one task: a write presenting it is refused once the
/// task was taken from the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskClaim {
    pub task_id: i64,
    pub node: Arc<str>,
    pub attempt: i32,
}

/// A task this node took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedTask {
    pub claim: TaskClaim,
    pub run_id: RunId,
    pub pipeline: String,
    pub request: String,
}

/// What a page's write records on its task: its counts, and its fingerprint for the next run.
#[derive(Debug, Clone)]
pub struct PageDone {
    pub pipeline: String,
    pub request: String,
    pub fingerprint: String,
    pub counts: RunCounts,
    /// What the page's parser noted, one note per line (`None`: nothing).
    pub notes: Option<String>,
}

/// How far a run's tasks are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub queued: u64,
    pub claimed: u64,
    pub done: u64,
    pub failed: u64,
}

impl Progress {
    pub fn total(&self) -> u64 {
        self.queued + self.claimed + self.done + self.failed
    }

    pub fn finished(&self) -> u64 {
        self.done + self.failed
    }

    pub fn open(&self) -> u64 {
        self.queued + self.claimed
    }
}

/// One task of a finished fan-out, as the end of the run reads it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct TaskOutcome {
    pub request: String,
    pub status: String,
    pub error: Option<String>,
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    pub unchanged: i64,
    /// What the page's parser noted, one note per line.
    pub notes: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = fan_out_tasks)]
struct TaskRow {
    id: i64,
    run_id: i64,
    pipeline: String,
    request: String,
    attempt: i32,
}

/// The rows of one insert of a run's tasks: plain column tuples, which both backends' multi-row
/// inserts take (SQLite's takes no DEFAULT values).
type NewTask<'a> = (
    diesel::dsl::Eq<fan_out_tasks::run_id, i64>,
    diesel::dsl::Eq<fan_out_tasks::pipeline, &'a str>,
    diesel::dsl::Eq<fan_out_tasks::request, &'a str>,
);

fn new_tasks<'a>(run_id: RunId, pipeline: &'a str, requests: &'a [String]) -> Vec<NewTask<'a>> {
    requests
        .iter()
        .map(|request| {
            (
                fan_out_tasks::run_id.eq(run_id),
                fan_out_tasks::pipeline.eq(pipeline),
                fan_out_tasks::request.eq(request.as_str()),
            )
        })
        .collect()
}

/// The task rows `$task` still holds: claimed by its node, with its attempt. Whatever became
/// of its run: should the run's owner die, its retry takes the task over as it is, so a page
/// being written by a live node meanwhile still counts.
macro_rules! held_task {
    ($task:expr) => {
        fan_out_tasks::table
            .find($task.task_id)
            .filter(fan_out_tasks::status.eq("claimed"))
            .filter(fan_out_tasks::owner.eq(&*$task.node))
            .filter(fan_out_tasks::attempt.eq($task.attempt))
    };
}

/// Task ids a node may take now (`$now` by the database's clock): queued ones, and claimed ones
/// whose node is not among the `$live` ones or whose lease ran out. Oldest first, so a run's
/// pages go in the order they were asked for.
macro_rules! claimable {
    ($now:expr, $pipelines:expr, $live:expr, $limit:expr) => {{
        let live = $live;
        let running = runs::table.filter(runs::status.eq("running")).select(runs::id);
        fan_out_tasks::table
            // Spelled as the open-task index's predicate (`fan_out_tasks_open`), so the planner
            // can prove the index applies even to a generic plan, where the statuses below are
            // parameters.
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>("fan_out_tasks.status IN ('queued', 'claimed')"))
            .filter(fan_out_tasks::pipeline.eq_any($pipelines))
            .filter(fan_out_tasks::run_id.eq_any(running))
            .filter(
                fan_out_tasks::status.eq("queued").or(fan_out_tasks::status
                    .eq("claimed")
                    .and(fan_out_tasks::lease_until.lt($now).or(fan_out_tasks::owner.assume_not_null().ne_all(live)))),
            )
            .order(fan_out_tasks::id.asc())
            .limit($limit)
            .select(fan_out_tasks::id)
    }};
}

/// Marks the picked task ids claimed by `$node` until `$until`: one statement inside the
/// picking transaction.
macro_rules! take {
    ($conn:ident, $ids:ident, $node:expr, $until:expr, $($await:tt)*) => {
        diesel::update(fan_out_tasks::table.filter(fan_out_tasks::id.eq_any(&$ids)))
            .set((
                fan_out_tasks::status.eq("claimed"),
                fan_out_tasks::owner.eq(&**$node),
                fan_out_tasks::lease_until.eq($until),
                fan_out_tasks::attempt.eq(fan_out_tasks::attempt + 1),
            ))
            .returning(TaskRow::as_returning())
            .get_results::<TaskRow>($conn)$($await)*
            .map_err(DbError::Query)
    };
}

/// The columns a page's write sets on its task.
macro_rules! completed {
    ($done:expr) => {
        (
            fan_out_tasks::status.eq("done"),
            fan_out_tasks::lease_until.eq(None::<NaiveDateTime>),
            fan_out_tasks::inserted.eq($done.counts.inserted),
            fan_out_tasks::updated.eq($done.counts.updated),
            fan_out_tasks::deleted.eq($done.counts.deleted),
            fan_out_tasks::unchanged.eq($done.counts.unchanged),
            fan_out_tasks::notes.eq(&$done.notes),
        )
    };
}

/// Upserts the page's fingerprint (`$($await)*` is empty on synchronous SQLite).
macro_rules! remember {
    ($conn:ident, $done:expr, $($await:tt)*) => {{
        use diesel::upsert::excluded;
        diesel::insert_into(page_fingerprints::table)
            .values((
                page_fingerprints::pipeline.eq(&$done.pipeline),
                page_fingerprints::request.eq(&$done.request),
                page_fingerprints::fingerprint.eq(&$done.fingerprint),
                page_fingerprints::loaded_at.eq(chrono::Utc::now().naive_utc()),
            ))
            .on_conflict((page_fingerprints::pipeline, page_fingerprints::request))
            .do_update()
            .set((
                page_fingerprints::fingerprint.eq(excluded(page_fingerprints::fingerprint)),
                page_fingerprints::loaded_at.eq(excluded(page_fingerprints::loaded_at)),
            ))
            .execute($conn)$($await)*
    }};
}

fn lost(task: &TaskClaim) -> DbError {
    DbError::TaskLost { task_id: task.task_id, node: task.node.to_string(), attempt: task.attempt }
}

/// Writes the run's tasks, one per request (a request listed twice is one task), fenced by the
/// run's claim. Returns how many there are.
pub async fn create(db: &Database, claim: &Claim, pipeline: &str, requests: &[String]) -> Result<usize, DbError> {
    for chunk in requests.chunks(INSERT_BATCH) {
        match db {
            Database::Postgres(pool) => {
                use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
                let rows = new_tasks(claim.run_id, pipeline, chunk);
                let mut conn = pool.get().await.map_err(DbError::pool)?;
                conn.transaction(async |conn| {
                    fence_postgres(conn, claim).await?;
                    diesel::insert_into(fan_out_tasks::table)
                        .values(&rows)
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                    Ok::<_, DbError>(())
                })
                .await?;
            }
            // Multi-row inserts need synchronous diesel on SQLite.
            Database::Sqlite { writer, .. } => {
                let mut conn = writer.get().await.map_err(DbError::pool)?;
                let (claim, pipeline, chunk) = (claim.clone(), pipeline.to_owned(), chunk.to_vec());
                conn.spawn_blocking(move |conn| {
                    use diesel::RunQueryDsl as _;
                    let rows = new_tasks(claim.run_id, &pipeline, &chunk);
                    conn.immediate_transaction(|conn| {
                        fence_sqlite(conn, &claim)?;
                        diesel::insert_into(fan_out_tasks::table)
                            .values(&rows)
                            .on_conflict_do_nothing()
                            .execute(conn)?;
                        Ok::<_, DbError>(())
                    })
                    .map_err(carry)
                })
                .await
                .map_err(unwrap_carried)?;
            }
        }
    }
    if let Database::Postgres(pool) = db {
        // A run's tasks arrive at once, long before autovacuum looks at the table: with the
        // statistics of an empty table the planner reads every open task and sorts them on each
        // claim (200 ms at 100,000 pages) instead of walking the open-task index (0.2 ms).
        // Only a speed-up: a role that may not analyze the table still gets its pages.
        use diesel_async::SimpleAsyncConnection as _;
        let mut conn = pool.get().await.map_err(DbError::pool)?;
        if let Err(error) = conn.batch_execute("ANALYZE fan_out_tasks").await {
            tracing::warn!(%error, "could not refresh the planner's statistics of fan_out_tasks; claims may be slow");
        }
    }
    count(db, claim.run_id).await
}

async fn count(db: &Database, run_id: RunId) -> Result<usize, DbError> {
    let count: i64 = with_conn!(db, readers, |conn| {
        fan_out_tasks::table
            .filter(fan_out_tasks::run_id.eq(run_id))
            .count()
            .get_result(conn)
            .await
            .map_err(DbError::Query)
    })?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// The fencing check inside a `write_transaction!`, whichever backend `conn` is.
trait FenceInTransaction {
    async fn fence(&mut self, claim: &Claim) -> Result<(), DbError>;
}

impl FenceInTransaction for diesel_async::AsyncPgConnection {
    async fn fence(&mut self, claim: &Claim) -> Result<(), DbError> {
        fence_postgres(self, claim).await
    }
}

impl FenceInTransaction for super::SqliteConn {
    async fn fence(&mut self, claim: &Claim) -> Result<(), DbError> {
        super::ledger::fence_sqlite_async(self, claim).await
    }
}

/// Takes over the tasks an abandoned run of `pipeline` left (the run's earlier attempt), keeping
/// what they say: pages already written stay done. Returns how many were taken over.
pub async fn adopt(db: &Database, claim: &Claim, pipeline: &str) -> Result<usize, DbError> {
    write_transaction!(db, |conn| {
        conn.fence(claim).await?;
        let taken = diesel::update(
            fan_out_tasks::table
                .filter(fan_out_tasks::pipeline.eq(pipeline))
                .filter(fan_out_tasks::run_id.ne(claim.run_id)),
        )
        .set(fan_out_tasks::run_id.eq(claim.run_id))
        .execute(conn)
        .await?;
        Ok::<_, DbError>(taken)
    })
}

/// Drops the tasks of `pipeline` that do not belong to `claim`'s run (left by a run that ended
/// without clearing them), so a fresh run starts from every page. Fenced: a node whose run was
/// taken over meanwhile must not drop the tasks the retry took over.
pub async fn discard_others(db: &Database, claim: &Claim, pipeline: &str) -> Result<usize, DbError> {
    write_transaction!(db, |conn| {
        conn.fence(claim).await?;
        let dropped = diesel::delete(
            fan_out_tasks::table
                .filter(fan_out_tasks::pipeline.eq(pipeline))
                .filter(fan_out_tasks::run_id.ne(claim.run_id)),
        )
        .execute(conn)
        .await?;
        Ok::<_, DbError>(dropped)
    })
}

/// Gives the pages `node` holds back to every node: its previous process is gone (it restarts
/// under its id), or it is stopping. A write still under way for one of them is refused (the
/// task is no longer claimed). Returns how many were given back.
pub async fn release(db: &Database, node: &str) -> Result<usize, DbError> {
    with_conn!(db, writer, |conn| {
        diesel::update(
            fan_out_tasks::table.filter(fan_out_tasks::status.eq("claimed")).filter(fan_out_tasks::owner.eq(node)),
        )
        .set((
            fan_out_tasks::status.eq("queued"),
            fan_out_tasks::owner.eq(None::<String>),
            fan_out_tasks::lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
        .await
        .map_err(DbError::Query)
    })
}

/// Drops a run's tasks once its result is written.
pub async fn clear(db: &Database, run_id: RunId) -> Result<usize, DbError> {
    with_conn!(db, writer, |conn| {
        diesel::delete(fan_out_tasks::table.filter(fan_out_tasks::run_id.eq(run_id)))
            .execute(conn)
            .await
            .map_err(DbError::Query)
    })
}

/// Whether any task of these pipelines is open: a cheap read on the readers, so idle nodes do
/// not take the write lock to find nothing.
pub async fn any_open(db: &Database, pipelines: &[String]) -> Result<bool, DbError> {
    let found: Option<i64> = with_conn!(db, readers, |conn| {
        use diesel::OptionalExtension as _;
        fan_out_tasks::table
            .filter(fan_out_tasks::pipeline.eq_any(pipelines))
            .filter(fan_out_tasks::status.eq_any(["queued", "claimed"]))
            .select(fan_out_tasks::id)
            .first(conn)
            .await
            .optional()
            .map_err(DbError::Query)
    })?;
    Ok(found.is_some())
}

/// Takes up to `limit` tasks of `pipelines` for `node`, each leased for `lease`.
pub async fn claim_batch(
    db: &Database,
    node: &Arc<str>,
    pipelines: &[String],
    limit: i64,
    lease: Duration,
    liveness: Liveness,
) -> Result<Vec<ClaimedTask>, DbError> {
    use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
    // Judged by the nodes' rule (heartbeats, and on PostgreSQL their sessions), just before.
    let (_, live) = super::nodes::live_nodes(db, liveness).await?;
    let rows: Vec<TaskRow> = match db {
        Database::Postgres(pool) => {
            let mut conn = pool.get().await.map_err(DbError::pool)?;
            conn.transaction(async |conn| {
                let now = conn.db_now().await?;
                // Rows another node is taking right now are skipped, not waited for.
                let ids: Vec<i64> =
                    claimable!(now, pipelines, &live, limit).for_update().skip_locked().load(conn).await?;
                take!(conn, ids, node, plus(now, lease), .await)
            })
            .await?
        }
        Database::Sqlite { writer, .. } => {
            let mut conn = writer.get().await.map_err(DbError::pool)?;
            // One writer at a time: the pick and the update are one step for every other node.
            conn.immediate_transaction(async |conn| {
                let now = conn.db_now().await?;
                let ids: Vec<i64> = claimable!(now, pipelines, &live, limit).load(conn).await?;
                take!(conn, ids, node, plus(now, lease), .await)
            })
            .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|row| ClaimedTask {
            claim: TaskClaim { task_id: row.id, node: node.clone(), attempt: row.attempt },
            run_id: row.run_id,
            pipeline: row.pipeline,
            request: row.request,
        })
        .collect())
}

/// The run's tasks counted by status; fails with [`DbError::ClaimLost`] when `claim` no longer
/// holds the run (the owner stops waiting for pages it can no longer finish).
pub async fn progress(db: &Database, claim: &Claim) -> Result<Progress, DbError> {
    let held: i64 = with_conn!(db, readers, |conn| {
        runs::table
            .find(claim.run_id)
            .filter(runs::status.eq("running"))
            .filter(runs::owner.eq(&*claim.node))
            .filter(runs::epoch.eq(claim.epoch))
            .count()
            .get_result(conn)
            .await
            .map_err(DbError::Query)
    })?;
    if held == 0 {
        return Err(DbError::ClaimLost { run_id: claim.run_id, node: claim.node.to_string(), epoch: claim.epoch });
    }
    progress_of_run(db, claim.run_id).await
}

/// How far a run's tasks are, for people watching it (`hayloft run`): no claim needed.
pub async fn progress_of_run(db: &Database, run_id: RunId) -> Result<Progress, DbError> {
    let counts: Vec<(String, i64)> = with_conn!(db, readers, |conn| {
        fan_out_tasks::table
            .filter(fan_out_tasks::run_id.eq(run_id))
            .group_by(fan_out_tasks::status)
            .select((fan_out_tasks::status, diesel::dsl::count_star()))
            .load(conn)
            .await
            .map_err(DbError::Query)
    })?;
    let mut progress = Progress::default();
    for (status, count) in counts {
        let count = u64::try_from(count).unwrap_or(0);
        match status.as_str() {
            "queued" => progress.queued = count,
            "claimed" => progress.claimed = count,
            "done" => progress.done = count,
            _ => progress.failed += count,
        }
    }
    Ok(progress)
}

/// Every task of a run with its result, in the order the pages were asked for.
pub async fn outcomes(db: &Database, run_id: RunId) -> Result<Vec<TaskOutcome>, DbError> {
    with_conn!(db, readers, |conn| {
        fan_out_tasks::table
            .filter(fan_out_tasks::run_id.eq(run_id))
            .order(fan_out_tasks::id.asc())
            .select((
                fan_out_tasks::request,
                fan_out_tasks::status,
                fan_out_tasks::error,
                fan_out_tasks::inserted,
                fan_out_tasks::updated,
                fan_out_tasks::deleted,
                fan_out_tasks::unchanged,
                fan_out_tasks::notes,
            ))
            .load(conn)
            .await
            .map_err(DbError::Query)
    })
}

/// Why a page wrote nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFailed {
    /// It could not be fetched.
    Fetch,
    /// It was fetched, and its parser could not read it.
    Unreadable,
}

/// Marks a task failed; its stored rows stay.
pub async fn fail(db: &Database, task: &TaskClaim, why: PageFailed, error: &str) -> Result<(), DbError> {
    let status = match why {
        PageFailed::Fetch => "failed",
        PageFailed::Unreadable => "unreadable",
    };
    let changed = with_conn!(db, writer, |conn| {
        diesel::update(held_task!(task))
            .set((
                fan_out_tasks::status.eq(status),
                fan_out_tasks::error.eq(error),
                fan_out_tasks::lease_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)
            .await
            .map_err(DbError::Query)
    })?;
    if changed == 0 {
        return Err(lost(task));
    }
    Ok(())
}

/// The fingerprint the page `request` of `pipeline` was last loaded with.
pub async fn page_fingerprint(db: &Database, pipeline: &str, request: &str) -> Result<Option<String>, DbError> {
    with_conn!(db, readers, |conn| {
        use diesel::OptionalExtension as _;
        page_fingerprints::table
            .find((pipeline, request))
            .select(page_fingerprints::fingerprint)
            .first(conn)
            .await
            .optional()
            .map_err(DbError::Query)
    })
}

/// Records a page's result on its task and its fingerprint, inside the page's write
/// transaction (SQLite, synchronous diesel); fails with [`DbError::TaskLost`] first if the task
/// was taken from this node, so nothing of the page commits. Returns the task's run.
pub fn complete_sqlite(
    conn: &mut diesel::SqliteConnection,
    task: &TaskClaim,
    done: &PageDone,
) -> Result<RunId, DbError> {
    use diesel::RunQueryDsl as _;
    let run_id: Option<RunId> = {
        use diesel::OptionalExtension as _;
        diesel::update(held_task!(task))
            .set(completed!(done))
            .returning(fan_out_tasks::run_id)
            .get_result(conn)
            .optional()?
    };
    let run_id = run_id.ok_or_else(|| lost(task))?;
    remember!(conn, done,)?;
    Ok(run_id)
}

/// [`complete_sqlite`] for PostgreSQL.
pub async fn complete_postgres(
    conn: &mut diesel_async::AsyncPgConnection,
    task: &TaskClaim,
    done: &PageDone,
) -> Result<RunId, DbError> {
    use diesel::OptionalExtension as _;
    use diesel_async::RunQueryDsl as _;
    let run_id: Option<RunId> = diesel::update(held_task!(task))
        .set(completed!(done))
        .returning(fan_out_tasks::run_id)
        .get_result(conn)
        .await
        .optional()?;
    let run_id = run_id.ok_or_else(|| lost(task))?;
    remember!(conn, done, .await)?;
    Ok(run_id)
}
