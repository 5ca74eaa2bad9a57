//! Read queries shared by the CLI and the other front doors, and the change-feed writer.

use chrono::Utc;
use diesel::upsert::excluded;
use diesel::{
    ExpressionMethods, Insertable, NullableExpressionMethods, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use hayloft_actors::events::Change;
use hayloft_actors::ledger::{RunId, RunRecord};
use serde::Serialize;

use super::ledger::RunRow;
use super::schema::{change_events, pipelines, runs};
use super::{with_conn, Database, DbError};

/// Tables the engine itself keeps, under the names `count` knows them by: (entity, table,
/// what it counts). The pipelines' tables are listed by the pipeline registry.
pub const LEDGER_ENTITIES: [(&str, &str, &str); 3] = [
    ("runs", "runs", "pipeline runs in the ledger"),
    ("changes", "change_events", "change-feed entries"),
    ("outbox", "outbox", "notifications, delivered or waiting"),
];

#[derive(diesel::QueryableByName)]
struct RowCount {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// Counts the rows of `table`. The name is spliced into the SQL, so it must be one of the
/// program's own table names (`&'static str`), never a caller's text.
pub async fn count_rows(db: &Database, table: &'static str) -> Result<i64, DbError> {
    let query = format!("SELECT COUNT(*) AS count FROM {table}");
    let row: RowCount = with_conn!(db, readers, |conn| {
        diesel::sql_query(query.clone()).get_result(conn).await.map_err(DbError::Query)
    })?;
    Ok(row.count)
}

/// The latest runs (of one pipeline, or of all), newest first; queued rows included, so a
/// pending retry shows.
pub async fn recent_runs(db: &Database, pipeline: Option<&str>, limit: i64) -> Result<Vec<RunRecord>, DbError> {
    let rows: Vec<RunRow> = with_conn!(db, readers, |conn| {
        let mut query = runs::table.order(runs::id.desc()).limit(limit).select(RunRow::as_select()).into_boxed();
        if let Some(pipeline) = pipeline {
            query = query.filter(runs::pipeline.eq(pipeline));
        }
        query.load(conn).await.map_err(DbError::Query)
    })?;
    Ok(rows.into_iter().map(RunRow::into_record).collect())
}

/// Each pipeline's latest successful run, or with `changed_only` its latest successful run
/// that inserted, updated or deleted anything: when the data last changed, which the latest
/// (often unchanged) run does not say. Two statements however many pipelines there are.
pub async fn latest_successes(db: &Database, changed_only: bool) -> Result<Vec<RunRecord>, DbError> {
    let rows: Vec<RunRow> = with_conn!(db, readers, |conn| {
        let mut latest = runs::table
            .filter(runs::status.eq("succeeded"))
            .group_by(runs::pipeline)
            .select(diesel::dsl::max(runs::id))
            .into_boxed();
        if changed_only {
            latest = latest.filter((runs::inserted + runs::updated + runs::deleted).gt(0));
        }
        runs::table
            .filter(runs::id.nullable().eq_any(latest))
            .select(RunRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::Query)
    })?;
    Ok(rows.into_iter().map(RunRow::into_record).collect())
}

/// Runs queued since `since`, oldest first (the daily report).
pub async fn runs_since(db: &Database, since: chrono::DateTime<Utc>) -> Result<Vec<RunRecord>, DbError> {
    let since = since.naive_utc();
    let rows: Vec<RunRow> = with_conn!(db, readers, |conn| {
        runs::table
            .filter(runs::queued_at.ge(since))
            .order(runs::id)
            .select(RunRow::as_select())
            .load(conn)
            .await
            .map_err(DbError::Query)
    })?;
    Ok(rows.into_iter().map(RunRow::into_record).collect())
}

/// One run by id.
pub async fn run_by_id(db: &Database, id: RunId) -> Result<Option<RunRecord>, DbError> {
    use diesel::OptionalExtension as _;
    let row: Option<RunRow> = with_conn!(db, readers, |conn| {
        runs::table.find(id).select(RunRow::as_select()).first(conn).await.optional().map_err(DbError::Query)
    })?;
    Ok(row.map(RunRow::into_record))
}

/// Change-feed entries, newest first: of one run, of one entity type, of one row (`entity` and
/// `key`), or all.
pub async fn changes(
    db: &Database,
    run: Option<RunId>,
    entity: Option<&str>,
    key: Option<&str>,
    limit: i64,
) -> Result<Vec<ChangeRow>, DbError> {
    with_conn!(db, readers, |conn| {
        let mut query = change_events::table.order(change_events::id.desc()).limit(limit).into_boxed();
        if let Some(run) = run {
            query = query.filter(change_events::run_id.eq(run));
        }
        if let Some(entity) = entity {
            query = query.filter(change_events::entity.eq(entity.to_owned()));
        }
        if let Some(key) = key {
            query = query.filter(change_events::entity_key.eq(key.to_owned()));
        }
        query.select(ChangeRow::as_select()).load(conn).await.map_err(DbError::Query)
    })
}

/// Records (or refreshes) the pipelines this process knows, with their schedules.
pub async fn register_pipelines(db: &Database, known: &[(String, String, bool)]) -> Result<(), DbError> {
    let registered_at = Utc::now().naive_utc();
    with_conn!(db, writer, |conn| {
        for (name, schedule, enabled) in known {
            diesel::insert_into(pipelines::table)
                .values((
                    pipelines::name.eq(name),
                    pipelines::schedule.eq(schedule),
                    pipelines::enabled.eq(enabled),
                    pipelines::registered_at.eq(registered_at),
                ))
                .on_conflict(pipelines::name)
                .do_update()
                .set((
                    pipelines::schedule.eq(excluded(pipelines::schedule)),
                    pipelines::enabled.eq(excluded(pipelines::enabled)),
                ))
                .execute(conn)
                .await?;
        }
        Ok::<_, DbError>(())
    })
}

/// One change-feed entry as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = change_events)]
pub struct ChangeRow {
    pub id: i64,
    pub run_id: i64,
    pub entity: String,
    pub entity_key: String,
    pub op: String,
    pub fields: String,
    #[serde(serialize_with = "as_utc")]
    pub recorded_at: chrono::NaiveDateTime,
    pub label: Option<String>,
}

fn as_utc<S: serde::Serializer>(at: &chrono::NaiveDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&at.and_utc().to_rfc3339())
}

/// The latest run that recorded any change.
pub async fn latest_changed_run(db: &Database) -> Result<Option<RunId>, DbError> {
    with_conn!(db, readers, |conn| {
        change_events::table
            .select(diesel::dsl::max(change_events::run_id))
            .first::<Option<i64>>(conn)
            .await
            .map_err(DbError::Query)
    })
}

/// What one run changed, in order: its first `limit` change-feed entries, of the entity types
/// `entities` when given.
pub async fn changes_of_run(
    db: &Database,
    run_id: RunId,
    entities: Option<&[String]>,
    limit: i64,
) -> Result<Vec<ChangeRow>, DbError> {
    with_conn!(db, readers, |conn| {
        let mut query = change_events::table
            .filter(change_events::run_id.eq(run_id))
            .order(change_events::id)
            .limit(limit)
            .into_boxed();
        if let Some(entities) = entities {
            query = query.filter(change_events::entity.eq_any(entities.to_vec()));
        }
        query.select(ChangeRow::as_select()).load(conn).await.map_err(DbError::Query)
    })
}

/// How many changes of each kind one run recorded per entity type, counted by the database:
/// `(entity, op, count)`, entity types in the order the run first changed them. A run of the
/// 100× scale records ~290k changes; only these few rows leave the database.
pub async fn change_counts_of_run(
    db: &Database,
    run_id: RunId,
    entities: Option<&[String]>,
) -> Result<Vec<(String, String, i64)>, DbError> {
    use diesel::dsl::{count_star, min};
    let mut counts = with_conn!(db, readers, |conn| {
        let mut query = change_events::table
            .filter(change_events::run_id.eq(run_id))
            .group_by((change_events::entity, change_events::op))
            .select((change_events::entity, change_events::op, count_star(), min(change_events::id)))
            .into_boxed();
        if let Some(entities) = entities {
            query = query.filter(change_events::entity.eq_any(entities.to_vec()));
        }
        query.load::<(String, String, i64, Option<i64>)>(conn).await.map_err(DbError::Query)
    })?;
    // Each entity type where it first appears: by the smallest id of any of its kinds.
    let mut first_seen: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for (entity, _, _, first) in &counts {
        let first = first.unwrap_or(i64::MAX);
        first_seen.entry(entity.clone()).and_modify(|seen| *seen = (*seen).min(first)).or_insert(first);
    }
    counts.sort_by_key(|(entity, _, _, first)| (first_seen.get(entity).copied(), first.unwrap_or(i64::MAX)));
    Ok(counts.into_iter().map(|(entity, op, count, _)| (entity, op, count)).collect())
}

/// A change-feed entry ready to insert.
#[derive(Insertable)]
#[diesel(table_name = change_events, treat_none_as_default_value = false)]
pub struct NewChange<'a> {
    pub run_id: i64,
    pub entity: &'a str,
    pub entity_key: &'a str,
    pub op: &'a str,
    pub fields: String,
    pub recorded_at: chrono::NaiveDateTime,
    pub label: Option<&'a str>,
}

impl<'a> NewChange<'a> {
    pub fn from_change(run_id: RunId, change: &'a Change) -> Self {
        Self {
            run_id,
            entity: &change.entity,
            entity_key: &change.key,
            op: change.op.as_str(),
            fields: change.fields.join(","),
            recorded_at: Utc::now().naive_utc(),
            label: change.label.as_deref(),
        }
    }
}
