//! The outbox table: what the sender reads and marks. Rows for a run's changes and result are
//! written by the load and the ledger, inside their transactions (see `crate::db::outbox`).

use chrono::NaiveDateTime;
use diesel::{ExpressionMethods, QueryDsl};

use super::{Notice, OutboxMessage};
use crate::db::outbox::NewOutboxRow;
use crate::db::schema::outbox;
use crate::db::{with_conn, write_transaction, Database, DbError};

type Row = (i64, String, String, i32, NaiveDateTime);

/// Writes `rows` in one transaction (the daily report; run results go with the ledger's).
pub async fn enqueue(db: &Database, rows: Vec<NewOutboxRow>) -> Result<(), DbError> {
    write_transaction!(db, |conn| {
        // One statement per row: SQLite multi-row inserts do not go through diesel-async.
        for row in &rows {
            diesel::insert_into(outbox::table).values(row).execute(conn).await?;
        }
        Ok::<_, DbError>(())
    })
}

/// Undelivered rows with attempts left, oldest first, due or not (the sender keeps each
/// channel in order, so a row waiting for its retry holds back the ones after it).
pub async fn pending(db: &Database, max_attempts: i32, limit: i64) -> Result<Vec<OutboxMessage>, DbError> {
    let rows: Vec<Row> = with_conn!(db, readers, |conn| {
        outbox::table
            .filter(outbox::delivered_at.is_null())
            .filter(outbox::attempts.lt(max_attempts))
            .order(outbox::id)
            .limit(limit)
            .select((outbox::id, outbox::channel, outbox::payload, outbox::attempts, outbox::next_attempt_at))
            .load(conn)
            .await
            .map_err(DbError::Query)
    })?;
    Ok(rows
        .into_iter()
        .map(|(id, channel, payload, attempts, next_attempt_at)| OutboxMessage {
            id,
            channel,
            // A payload this version cannot read is still delivered, as plain text.
            notice: serde_json::from_str(&payload)
                .unwrap_or(Notice { kind: super::NoticeKind::Failure, text: payload }),
            attempts,
            next_attempt_at,
        })
        .collect())
}

pub async fn mark_delivered(db: &Database, id: i64, now: NaiveDateTime) -> Result<(), DbError> {
    with_conn!(db, writer, |conn| {
        diesel::update(outbox::table.find(id))
            .set((
                outbox::delivered_at.eq(Some(now)),
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::last_error.eq(None::<String>),
            ))
            .execute(conn)
            .await
            .map_err(DbError::Query)
    })?;
    Ok(())
}

pub async fn mark_failed(db: &Database, id: i64, error: &str, retry_at: NaiveDateTime) -> Result<(), DbError> {
    with_conn!(db, writer, |conn| {
        diesel::update(outbox::table.find(id))
            .set((
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::last_error.eq(Some(error)),
                outbox::next_attempt_at.eq(retry_at),
            ))
            .execute(conn)
            .await
            .map_err(DbError::Query)
    })?;
    Ok(())
}
