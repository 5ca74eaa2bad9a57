//! Pieces every source pipeline shares: fetching with a fingerprint (an unchanged body skips
//! transform and load), diffing keyed rows into writes plus a change feed, and the delete guard.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Display;

use bytes::Bytes;
use diesel::{OptionalExtension, QueryDsl};
use hayloft_actors::events::{Change, ChangeOp};
use hayloft_actors::ledger::RunCounts;
use hayloft_actors::pipeline::{RunContext, StageError};
use hayloft_actors::storage::StorageFailure;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::outbox::{Announcer, ChangeSummary, NewOutboxRow};
use crate::db::queries::NewChange;
use crate::db::schema::{change_events, outbox, source_fingerprints};
use crate::db::{with_conn, Database, DbError};
use crate::upstream::{Fetched, Upstream};

/// What an extractor hands on: a fresh body, or the news that nothing changed upstream.
#[derive(Debug, Clone)]
pub enum Extracted {
    Unchanged { fingerprint: String },
    Fresh { fetched: Fetched, fingerprint: String },
}

/// The fingerprint of a body as a given transform version reads it: bump the version when the
/// transform changes, so stored bodies are read again.
pub fn fingerprint(body: &[u8], transform_version: u32) -> String {
    let mut hasher = Sha256::new();
    hasher.update(transform_version.to_le_bytes());
    hasher.update(body);
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The fingerprint stored by the last successful load of `source`.
pub async fn stored_fingerprint(db: &Database, source: &str) -> Result<Option<String>, DbError> {
    with_conn!(db, readers, |conn| {
        source_fingerprints::table
            .find(source)
            .select(source_fingerprints::fingerprint)
            .first::<String>(conn)
            .await
            .optional()
            .map_err(DbError::Query)
    })
}

/// Fetches `request` and compares its fingerprint with the last loaded one.
pub async fn fetch_fingerprinted(
    upstream: &Upstream,
    db: &Database,
    source: &str,
    request: &str,
    transform_version: u32,
) -> Result<Extracted, StageError> {
    let fetched = upstream.fetch(request).await.map_err(|error| StageError::Upstream(error.to_string()))?;
    let fingerprint = fingerprint(&fetched.body, transform_version);
    let stored =
        stored_fingerprint(db, source).await.map_err(|error| StageError::Database(StorageFailure::new(error)))?;
    if stored.as_deref() == Some(fingerprint.as_str()) {
        return Ok(Extracted::Unchanged { fingerprint });
    }
    Ok(Extracted::Fresh { fetched, fingerprint })
}

/// Reads a JSON answer as `T`. An empty body, an HTML page (a login or maintenance page) and
/// invalid or truncated JSON fail with a reason a person understands.
pub fn json_answer<'a, T: Deserialize<'a>>(body: &'a [u8], url: &str) -> Result<T, StageError> {
    let trimmed = body.iter().position(|byte| !byte.is_ascii_whitespace()).map_or(&body[..0], |start| &body[start..]);
    if trimmed.is_empty() {
        return Err(StageError::BadInput(format!("{url} answered with an empty body")));
    }
    if trimmed.first() == Some(&b'<') {
        let excerpt = body_excerpt(&Bytes::copy_from_slice(trimmed));
        return Err(StageError::BadInput(format!("{url} answered with an HTML page instead of JSON: {excerpt}")));
    }
    serde_json::from_slice(trimmed).map_err(|error| {
        let hint = if error.is_eof() { " (the body looks truncated)" } else { "" };
        StageError::BadInput(format!("{url} sent invalid JSON: {error}{hint}"))
    })
}

/// `1 row`, `2 rows`: a count of rows as a run report says it.
pub fn rows_counted(count: usize) -> String {
    if count == 1 {
        "1 row".to_owned()
    } else {
        format!("{count} rows")
    }
}

/// Which stored rows an unreadable input row may stand for, so that they are kept rather than
/// deleted: the keys that could still be read, and a count of rows whose key could not be.
/// A row without a readable key could be any stored row, so one of those protects them all.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    keys: std::collections::BTreeSet<i64>,
    unkeyed: u64,
}

impl Unreadable {
    /// Records one unreadable row, by its key if that much could be read.
    pub fn add(&mut self, key: Option<i64>) {
        match key {
            Some(key) => {
                self.keys.insert(key);
            }
            None => self.unkeyed += 1,
        }
    }

    /// Whether the stored row with `key` must be kept this run.
    pub fn protects(&self, key: i64) -> bool {
        self.unkeyed > 0 || self.keys.contains(&key)
    }

    /// The keys that could be read.
    pub fn keys(&self) -> impl Iterator<Item = i64> + '_ {
        self.keys.iter().copied()
    }

    /// Whether every stored row is protected (a row without a readable key was seen).
    pub fn protects_all(&self) -> bool {
        self.unkeyed > 0
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.unkeyed == 0
    }

    /// Unreadable rows seen, with or without a key.
    pub fn len(&self) -> u64 {
        self.keys.len() as u64 + self.unkeyed
    }

    /// The note a run report carries when rows without a key protect a whole table.
    pub fn note(&self, what: &str, tables: &str) -> Option<String> {
        (self.unkeyed > 0).then(|| {
            format!("{} {what} rows without a readable key: no row of {tables} is deleted this run", self.unkeyed)
        })
    }
}

/// Rows of a JSON list read one by one: a row that does not fit `T` is skipped, noted with the
/// field that failed, and its key (the field `key`, if readable) recorded so its stored version
/// is kept; a row whose key cannot be read protects every stored row of the table.
pub struct ReadRows<T> {
    pub rows: Vec<T>,
    pub notes: Vec<String>,
    pub unreadable: Unreadable,
}

pub fn read_rows<'a, T: Deserialize<'a>>(
    raws: Vec<&'a serde_json::value::RawValue>,
    what: &str,
    key: &str,
) -> ReadRows<T> {
    let mut read =
        ReadRows { rows: Vec::with_capacity(raws.len()), notes: Vec::new(), unreadable: Unreadable::default() };
    for raw in raws {
        match read_row::<T>(raw) {
            Ok(row) => read.rows.push(row),
            Err(error) => {
                let id = row_key(raw, key);
                let shown = id.map_or_else(|| "without a readable key".to_owned(), |id| id.to_string());
                read.notes.push(format!(
                    "{what} {shown} skipped, its stored version kept: {}: {}",
                    error.path(),
                    error.inner()
                ));
                read.unreadable.add(id);
            }
        }
    }
    read
}

/// Reads one raw row, keeping the path of the field that failed.
pub fn read_row<'a, T: Deserialize<'a>>(
    raw: &'a serde_json::value::RawValue,
) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(&mut deserializer)
}

/// The integer field `key` of a row that could not be read whole, if that much can be read.
pub fn row_key(raw: &serde_json::value::RawValue, key: &str) -> Option<i64> {
    let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw.get()).ok()?;
    row.get(key)?.as_i64()
}

/// The three `itemN` / `itemN_amt` reward slots the NPC-reward and tower answers share
/// (item 0 = an empty slot).
#[derive(Debug, Default, Deserialize)]
pub struct ItemSlots {
    #[serde(default)]
    item1: i64,
    #[serde(default)]
    item1_amt: i64,
    #[serde(default)]
    item2: i64,
    #[serde(default)]
    item2_amt: i64,
    #[serde(default)]
    item3: i64,
    #[serde(default)]
    item3_amt: i64,
}

impl ItemSlots {
    /// `(slot number from 1, item id, quantity)` of each filled slot.
    pub fn filled(&self) -> impl Iterator<Item = (i64, i64, i64)> {
        [(1, self.item1, self.item1_amt), (2, self.item2, self.item2_amt), (3, self.item3, self.item3_amt)]
            .into_iter()
            .filter(|(_, item, _)| *item != 0)
    }
}

/// The report of a load skipped because the upstream answered exactly as last time.
pub fn unchanged_report(fingerprint: &str) -> hayloft_actors::pipeline::LoadReport {
    let shown = fingerprint.get(..12).unwrap_or(fingerprint);
    hayloft_actors::pipeline::LoadReport {
        notes: vec![format!("upstream unchanged since the last load (fingerprint {shown}); nothing to do")],
        ..hayloft_actors::pipeline::LoadReport::default()
    }
}

/// A short, printable start of a body, for error messages about what came back instead.
pub fn body_excerpt(body: &Bytes) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let mut excerpt: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if excerpt.len() > 80 {
        let cut = (0..=80).rev().find(|index| excerpt.is_char_boundary(*index)).unwrap_or(0);
        excerpt.truncate(cut);
        excerpt.push('…');
    }
    excerpt
}

/// The writes one table needs, and what they change.
#[derive(Debug)]
pub struct TableDiff<R, K> {
    /// New rows and changed rows, both written by one upsert.
    pub upserts: Vec<R>,
    pub deletes: Vec<K>,
    pub counts: TableCounts,
    pub changes: Vec<Change>,
    /// Keys the incoming rows carried more than once, in key order: the first such row is the
    /// one written, as the parsers that look for repeats themselves decide (an upstream lists
    /// newest first). (One statement cannot write a key twice on PostgreSQL, and the count of
    /// inserts must not count one row twice.)
    pub repeated: Vec<K>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCounts {
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
    pub unchanged: i64,
    /// Rows stored before this load.
    pub stored: i64,
}

/// Compares stored rows with incoming ones by key. Unchanged rows produce no write at all. A
/// key that comes in more than once is written once, as its first row (see
/// [`TableDiff::repeated`]).
pub fn diff_rows<R, K>(
    entity: &str,
    stored: Vec<R>,
    incoming: Vec<R>,
    key: impl Fn(&R) -> K,
    label: impl Fn(&R) -> Option<String>,
) -> TableDiff<R, K>
where
    R: PartialEq + Serialize,
    K: Ord + Clone + Display,
{
    let (incoming, repeated) = first_row_per_key(incoming, &key);
    let mut counts = TableCounts { stored: stored.len() as i64, ..TableCounts::default() };
    let mut stored: BTreeMap<K, R> = stored.into_iter().map(|row| (key(&row), row)).collect();
    let mut upserts = Vec::new();
    let mut changes = Vec::new();
    let change = |key: &K, op, fields: Vec<String>, row: &R| Change {
        entity: entity.to_owned(),
        key: key.to_string(),
        op,
        fields,
        label: label(row),
    };
    for row in incoming {
        let row_key = key(&row);
        match stored.remove(&row_key) {
            None => {
                counts.inserted += 1;
                changes.push(change(&row_key, ChangeOp::Insert, Vec::new(), &row));
                upserts.push(row);
            }
            Some(old) if old == row => counts.unchanged += 1,
            Some(old) => {
                counts.updated += 1;
                changes.push(change(&row_key, ChangeOp::Update, changed_fields(&old, &row), &row));
                upserts.push(row);
            }
        }
    }
    counts.deleted = stored.len() as i64;
    changes.extend(stored.iter().map(|(gone, row)| change(gone, ChangeOp::Delete, Vec::new(), row)));
    let deletes: Vec<K> = stored.into_keys().collect();
    TableDiff { upserts, deletes, counts, changes, repeated }
}

/// The rows with only the first of each key kept, in their incoming order, and the keys that
/// were repeated.
fn first_row_per_key<R, K: Ord + Clone>(rows: Vec<R>, key: &impl Fn(&R) -> K) -> (Vec<R>, Vec<K>) {
    let mut seen = BTreeSet::new();
    let mut repeated = BTreeSet::new();
    let mut kept = Vec::with_capacity(rows.len());
    for row in rows {
        let row_key = key(&row);
        if seen.contains(&row_key) {
            repeated.insert(row_key);
        } else {
            seen.insert(row_key);
            kept.push(row);
        }
    }
    (kept, repeated.into_iter().collect())
}

impl<R, K: Display> TableDiff<R, K> {
    /// Drops the planned deletes `keep` wants kept (and their change-feed entries).
    pub fn keep_rows(&mut self, keep: impl Fn(&K) -> bool) {
        // A set, not a list: at the end of a 100× fan-out every one of 113,800 stored rows is a
        // planned delete that the policy keeps, and a list made this quadratic (minutes of CPU
        // on the thread that also sends the node's heartbeats).
        let mut kept = HashSet::new();
        self.deletes.retain(|key| {
            let keep = keep(key);
            if keep {
                kept.insert(key.to_string());
            }
            !keep
        });
        if kept.is_empty() {
            return;
        }
        self.changes.retain(|change| change.op != ChangeOp::Delete || !kept.contains(&change.key));
        self.counts.deleted -= kept.len() as i64;
        self.counts.unchanged += kept.len() as i64;
    }
}

/// Names of the fields whose values differ between two rows of the same type.
fn changed_fields<R: Serialize>(old: &R, new: &R) -> Vec<String> {
    match (serde_json::to_value(old), serde_json::to_value(new)) {
        (Ok(serde_json::Value::Object(old)), Ok(serde_json::Value::Object(new))) => {
            new.iter().filter(|(field, value)| old.get(*field) != Some(value)).map(|(field, _)| field.clone()).collect()
        }
        _ => Vec::new(),
    }
}

/// Change-feed rows per statement on SQLite (7 columns each).
const FEED_BATCH: usize = 2_000;

/// The change feed's insert on PostgreSQL: its varying columns bound as arrays, the run and the
/// time once, so a load's whole feed is one statement (see
/// [`unnest_upsert_sql`](super::table::unnest_upsert_sql)).
const FEED_UNNEST: &str = "INSERT INTO change_events (run_id, recorded_at, entity, entity_key, op, fields, label) \
    SELECT $1, $2, feed.entity, feed.entity_key, feed.op, feed.fields, feed.label \
    FROM UNNEST($3, $4, $5, $6, $7) AS feed(entity, entity_key, op, fields, label)";

/// The statements that close every load after its change feed, written once for both
/// backends: the source's new fingerprint and the messages announcing the changes, inside the
/// load's transaction so none can exist without the rows they describe — and a crash after the
/// commit cannot lose the announcement of what it committed. `$($await)*` is empty (sync
/// SQLite) or `.await` (PostgreSQL).
macro_rules! feed_statements {
    ($conn:ident, $fingerprint:ident, $outbox:ident, $($await:tt)*) => {{
        use diesel::upsert::excluded;
        use diesel::ExpressionMethods as _;
        if let Some((source, fingerprint)) = $fingerprint {
            let loaded_at = chrono::Utc::now().naive_utc();
            diesel::insert_into(source_fingerprints::table)
                .values((
                    source_fingerprints::source.eq(source),
                    source_fingerprints::fingerprint.eq(fingerprint),
                    source_fingerprints::loaded_at.eq(loaded_at),
                ))
                .on_conflict(source_fingerprints::source)
                .do_update()
                .set((
                    source_fingerprints::fingerprint.eq(excluded(source_fingerprints::fingerprint)),
                    source_fingerprints::loaded_at.eq(excluded(source_fingerprints::loaded_at)),
                ))
                .execute(&mut *$conn)$($await)*?;
        }
        for row in $outbox {
            diesel::insert_into(outbox::table).values(row).execute(&mut *$conn)$($await)*?;
        }
        Ok(())
    }};
}

/// Writes a load's change feed, the source's fingerprint (`(source, fingerprint)`; `None` for a
/// fan-out page, whose fingerprint is its task's) and its outbox rows.
pub fn record_feed_sqlite(
    conn: &mut diesel::SqliteConnection,
    run_id: i64,
    changes: &[Change],
    fingerprint: Option<(&str, &str)>,
    outbox: &[NewOutboxRow],
) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl as _;
    let feed: Vec<NewChange<'_>> = changes.iter().map(|change| NewChange::from_change(run_id, change)).collect();
    for chunk in feed.chunks(FEED_BATCH) {
        diesel::insert_into(change_events::table).values(chunk).execute(&mut *conn)?;
    }
    feed_statements!(conn, fingerprint, outbox,)
}

pub async fn record_feed_postgres(
    conn: &mut diesel_async::AsyncPgConnection,
    run_id: i64,
    changes: &[Change],
    fingerprint: Option<(&str, &str)>,
    outbox: &[NewOutboxRow],
) -> diesel::QueryResult<()> {
    use diesel::sql_types::{Array, BigInt, Text, Timestamp};
    use diesel_async::RunQueryDsl as _;
    let recorded_at = chrono::Utc::now().naive_utc();
    for chunk in changes.chunks(super::table::UNNEST_ROWS) {
        let column = |value: fn(&Change) -> &str| chunk.iter().map(value).collect::<Vec<&str>>();
        let fields: Vec<String> = chunk.iter().map(|change| change.fields.join(",")).collect();
        diesel::sql_query(FEED_UNNEST)
            .bind::<BigInt, _>(run_id)
            .bind::<Timestamp, _>(recorded_at)
            .bind::<Array<Text>, _>(column(|change| &change.entity))
            .bind::<Array<Text>, _>(column(|change| &change.key))
            .bind::<Array<Text>, _>(column(|change| change.op.as_str()))
            .bind::<Array<Text>, _>(fields)
            .bind::<Array<diesel::sql_types::Nullable<Text>>, _>(
                chunk.iter().map(|change| change.label.as_deref()).collect::<Vec<Option<&str>>>(),
            )
            .execute(&mut *conn)
            .await?;
    }
    feed_statements!(conn, fingerprint, outbox, .await)
}

/// The outbox rows announcing a load's changes, as `announcer` decides (none without one):
/// written by the load's transaction, beside the changes.
pub fn change_announcements(
    announcer: Option<&dyn Announcer>,
    run: &RunContext,
    counts: RunCounts,
    new_names: &[String],
) -> Vec<NewOutboxRow> {
    let Some(announcer) = announcer else { return Vec::new() };
    let now = chrono::Utc::now();
    let summary = ChangeSummary {
        pipeline: &run.pipeline,
        run_id: run.run_id,
        counts,
        new_names,
        elapsed_ms: (now - run.started_at).num_milliseconds(),
    };
    NewOutboxRow::all_due_now(announcer.on_changes(&summary), Some(run.run_id), now.naive_utc())
}

/// Refuses loads that would delete a large share of a table: a truncated or broken fetch must
/// never wipe the data. Configured under `[delete_guard]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeleteGuard {
    /// Largest share of a table one run may delete (0.2 = 20%)...
    pub max_share: f64,
    /// ...unless it deletes no more than this many rows.
    pub max_rows: i64,
}

impl DeleteGuard {
    /// A guard that allows every delete (the demo pipeline, whose rows are generated).
    pub const OFF: DeleteGuard = DeleteGuard { max_share: 1.0, max_rows: i64::MAX };
}

impl Default for DeleteGuard {
    fn default() -> Self {
        Self { max_share: 0.2, max_rows: 10 }
    }
}

impl DeleteGuard {
    /// An error when deleting `counts.deleted` of `counts.stored` rows of `table` is too much.
    pub fn check(&self, pipeline: &str, table: &str, counts: &TableCounts) -> Result<(), StageError> {
        if counts.deleted <= self.max_rows || counts.stored == 0 {
            return Ok(());
        }
        let share = counts.deleted as f64 / counts.stored as f64;
        if share <= self.max_share {
            return Ok(());
        }
        Err(StageError::Refused(format!(
            "this run would delete {} of {} rows of {table} ({:.0}%), more than the delete guard allows \
             ({:.0}% and {} rows); nothing was written. If upstream really lost them, run \
             `hayloft run {pipeline} --allow-mass-delete` once",
            counts.deleted,
            counts.stored,
            share * 100.0,
            self.max_share * 100.0,
            self.max_rows
        )))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize)]
    struct Row {
        id: i64,
        name: &'static str,
        price: i64,
    }

    fn row(id: i64, name: &'static str, price: i64) -> Row {
        Row { id, name, price }
    }

    // The diff writes only new and changed rows and names the changed fields.
    #[test]
    fn diff_writes_only_changes() {
        let diff = diff_rows(
            "item",
            vec![row(1, "a", 1), row(2, "b", 2), row(3, "c", 3)],
            vec![row(1, "a", 1), row(2, "b", 20), row(4, "d", 4)],
            |row| row.id,
            |row| Some(row.name.to_owned()),
        );
        assert_eq!(diff.upserts, vec![row(2, "b", 20), row(4, "d", 4)]);
        // Each entry carries its row's name, a deleted row's from what was stored.
        let labels: Vec<(ChangeOp, Option<&str>)> =
            diff.changes.iter().map(|change| (change.op, change.label.as_deref())).collect();
        assert_eq!(
            labels,
            [(ChangeOp::Update, Some("b")), (ChangeOp::Insert, Some("d")), (ChangeOp::Delete, Some("c"))]
        );
        assert_eq!(diff.deletes, vec![3]);
        assert_eq!(
            (diff.counts.inserted, diff.counts.updated, diff.counts.deleted, diff.counts.unchanged),
            (1, 1, 1, 1)
        );
        let update = diff.changes.iter().find(|change| change.op == ChangeOp::Update).unwrap();
        assert_eq!((update.key.as_str(), update.fields.clone()), ("2", vec!["price".to_owned()]));
    }

    // A key that comes in twice is written once, as its first row, counted once and reported.
    #[test]
    fn a_repeated_key_is_written_once_as_its_first_row() {
        let diff = diff_rows(
            "item",
            vec![row(1, "a", 1), row(2, "b", 2)],
            vec![row(4, "d", 4), row(1, "a", 10), row(4, "d", 40), row(2, "b", 2), row(1, "a", 1), row(4, "d", 41)],
            |row| row.id,
            |_| None,
        );
        assert_eq!(diff.upserts, vec![row(4, "d", 4), row(1, "a", 10)]);
        assert_eq!(diff.repeated, vec![1, 4]);
        assert_eq!(
            (diff.counts.inserted, diff.counts.updated, diff.counts.deleted, diff.counts.unchanged),
            (1, 1, 0, 1)
        );
        assert_eq!(diff.changes.len(), 2);
        let plain = diff_rows("item", vec![], vec![row(1, "a", 1)], |row| row.id, |_| None);
        assert!(plain.repeated.is_empty());
    }

    // Kept rows leave the deletes, their change-feed entries and the delete count.
    #[test]
    fn kept_rows_are_not_deleted() {
        let stored = (1..=6).map(|id| row(id, "x", id)).collect();
        let mut diff = diff_rows("item", stored, vec![row(1, "x", 1), row(7, "y", 7)], |row| row.id, |_| None);
        diff.keep_rows(|id| id % 2 == 0);
        assert_eq!(diff.deletes, vec![3, 5]);
        let deleted: Vec<&str> = diff
            .changes
            .iter()
            .filter(|change| change.op == ChangeOp::Delete)
            .map(|change| change.key.as_str())
            .collect();
        assert_eq!(deleted, ["3", "5"]);
        assert_eq!((diff.counts.inserted, diff.counts.deleted, diff.counts.unchanged), (1, 2, 4));
    }

    // The guard lets small or proportionate deletes through and refuses mass deletes.
    #[test]
    fn delete_guard_refuses_mass_deletes() {
        let guard = DeleteGuard::default();
        let counts = |deleted, stored| TableCounts { deleted, stored, ..TableCounts::default() };
        assert!(guard.check("items", "items", &counts(10, 20)).is_ok(), "10 rows is always fine");
        assert!(guard.check("items", "items", &counts(200, 1138)).is_ok(), "under 20%");
        let error = guard.check("items", "items", &counts(1100, 1138)).unwrap_err().to_string();
        assert!(error.contains("1100 of 1138 rows of items") && error.contains("--allow-mass-delete"), "{error}");
    }

    // A fingerprint changes with the body and with the transform version.
    #[test]
    fn fingerprints_track_body_and_version() {
        assert_eq!(fingerprint(b"abc", 1), fingerprint(b"abc", 1));
        assert_ne!(fingerprint(b"abc", 1), fingerprint(b"abd", 1));
        assert_ne!(fingerprint(b"abc", 1), fingerprint(b"abc", 2));
    }
}
