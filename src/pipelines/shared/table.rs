//! Loading any source's rows — diff against what is stored, guard deletes, write only the
//! changes plus the change feed and the fingerprint in one transaction — without writing that
//! code once per table. Every pipeline that loads upstream rows, items included, loads them here.
//!
//! A row type becomes loadable through [`stored_table!`], which generates its reads, batched
//! upserts and grouped deletes for both backends: multi-row `INSERT … VALUES` statements on
//! SQLite, one `INSERT … SELECT … FROM UNNEST(…)` per table on PostgreSQL (each column bound as
//! one array, see [`unnest_upsert_sql`]). A source hands the loader a
//! [`Dataset`]: its tables in write order (parents first), each with a [`DeletePolicy`]. A table
//! whose rows reference rows of the same table orders its own writes ([`StoredRow::write_order`]).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use diesel::SqliteConnection;
use diesel_async::AsyncPgConnection;
use futures::future::{BoxFuture, LocalBoxFuture};
use hayloft_actors::events::{Change, ChangeOp};
use hayloft_actors::ledger::{Claim, RunCounts};
use hayloft_actors::pipeline::{LoadReport, RunContext, StageError};
use hayloft_actors::storage::StorageFailure;
use serde::Serialize;

use super::common::{change_announcements, diff_rows, rows_counted, DeleteGuard, TableCounts};
use crate::db::ledger::{fence_postgres, fence_sqlite};
use crate::db::outbox::{Announcer, NewOutboxRow, NEW_NAMES};
use crate::db::tasks::{self, PageDone, TaskClaim};
use crate::db::{carry, unwrap_carried, Database, DbError};
use crate::failpoint;

/// Parameters one statement may bind: under SQLite's 32,766 and PostgreSQL's 65,535.
pub const MAX_PARAMETERS: usize = 30_000;

/// Rows per `UNNEST` upsert on PostgreSQL: every load of the real sources in one statement per
/// table, and a bounded statement for a load at many times that size.
pub const UNNEST_ROWS: usize = 10_000;

/// The PostgreSQL upsert of `table`'s `key` and `update` columns, every column bound as one
/// array: `INSERT INTO t (a, b) SELECT * FROM UNNEST($1, $2) ON CONFLICT (a) DO UPDATE SET b =
/// EXCLUDED.b`. A multi-row `VALUES` list binds each value on its own (58 per item), so it
/// needs a statement per few hundred rows and the server parses every parameter; arrays take a
/// table of any size in one statement of as many parameters as columns. With no `update`
/// columns a conflicting row is left as it is.
pub fn unnest_upsert_sql(table: &str, key: &[&str], update: &[&str]) -> String {
    let quoted = |columns: &[&str]| columns.iter().map(|column| format!("\"{column}\"")).collect::<Vec<_>>();
    let columns = [quoted(key), quoted(update)].concat();
    let parameters: Vec<String> = (1..=columns.len()).map(|index| format!("${index}")).collect();
    let conflict = if update.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        let set: Vec<String> = quoted(update).iter().map(|column| format!("{column} = EXCLUDED.{column}")).collect();
        format!("({}) DO UPDATE SET {}", quoted(key).join(", "), set.join(", "))
    };
    format!(
        "INSERT INTO \"{table}\" ({}) SELECT * FROM UNNEST({}) ON CONFLICT {conflict}",
        columns.join(", "),
        parameters.join(", ")
    )
}

/// A row type stored in one table, keyed by some of its columns. Implemented by
/// [`stored_table!`].
pub trait StoredRow: Clone + PartialEq + Serialize + Send + Sync + 'static {
    /// The table, as in the run report.
    const TABLE: &'static str;
    /// The entity name of its change-feed entries.
    const ENTITY: &'static str;
    /// Columns per row, to size batches.
    const COLUMNS: usize;

    /// The key columns, joined with `/`: the change feed's key.
    fn key(&self) -> String;

    /// What announcements call a new row (`Apple`); `None`: its entity and key (`tower_level 3`).
    fn label(&self) -> Option<String> {
        None
    }

    /// Takes over what an incoming row cannot know from the stored one (e.g. when a record was
    /// first seen). Called before diffing.
    fn merge_stored(&mut self, _stored: &Self) {}

    /// Fills the fields this row's page did not show this time (the tent's "Inv Full" where a
    /// price would be) from the stored row, so that unknown never overwrites a known value.
    /// Returns each such field that was empty, with whether a stored value was taken. Called
    /// before diffing, with the stored row of the same key if there is one.
    fn keep_unknown(&mut self, _stored: Option<&Self>) -> Vec<(&'static str, bool)> {
        Vec::new()
    }

    /// Orders the rows to write so that every row comes after the rows of its own table it
    /// references (self references are foreign keys, checked per statement). The default keeps
    /// the order given, for tables that reference no row of themselves.
    fn write_order(rows: Vec<Self>) -> WriteOrder<Self> {
        WriteOrder { rows, fixups: Vec::new() }
    }

    fn read_all(db: &Database) -> impl std::future::Future<Output = Result<Vec<Self>, DbError>>;
    fn upsert_sqlite(conn: &mut SqliteConnection, rows: &[Self]) -> diesel::QueryResult<()>;
    fn delete_sqlite(conn: &mut SqliteConnection, rows: &[Self]) -> diesel::QueryResult<()>;
    fn upsert_postgres<'a>(conn: &'a mut AsyncPgConnection, rows: &'a [Self])
        -> BoxFuture<'a, diesel::QueryResult<()>>;
    fn delete_postgres<'a>(conn: &'a mut AsyncPgConnection, rows: &'a [Self])
        -> BoxFuture<'a, diesel::QueryResult<()>>;

    fn batch_rows() -> usize {
        (MAX_PARAMETERS / Self::COLUMNS.max(1)).max(1)
    }
}

/// The rows of one table in the order they are written, from [`StoredRow::write_order`].
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOrder<R> {
    /// Every row, in an order its references allow; rows that could not be ordered (they sit on
    /// a reference cycle) come last, without the references that could not be written yet.
    pub rows: Vec<R>,
    /// Those unordered rows again, whole: written after `rows`, once every row they reference
    /// exists.
    pub fixups: Vec<R>,
}

/// Implements [`StoredRow`] for a `Queryable + Selectable + Insertable` row struct whose field
/// names are its column names:
///
/// ```ignore
/// stored_table!(TowerLevel, tower_levels, "tower_level", key (level), update (silver, gold));
/// ```
///
/// With an empty `update ()` list a conflicting row is left as it is (link tables). A trailing
/// `label field` names new rows in announcements ([`StoredRow::label`]), `merge path::to::fn`
/// becomes [`StoredRow::merge_stored`], a trailing `order path::to::fn`
/// [`StoredRow::write_order`], and `unknown (field, …)` lists `Option` fields whose `None` means
/// "not shown this time" ([`StoredRow::keep_unknown`]).
///
/// Deletes are grouped: `DELETE … WHERE key IN (…)` for a one-column key, `WHERE a = ? AND b IN
/// (…)` per first column for a two-column key, one statement per row for longer keys.
macro_rules! stored_table {
    ($row:ty, $table:ident, $entity:literal, key ($($key:ident),+), update ($($update:ident),*)
        $(, label $label:ident)? $(, merge $merge:path)? $(, order $order:path)?
        $(, unknown ($($unknown:ident),+))?) => {
        impl $crate::pipelines::shared::table::StoredRow for $row {
            const TABLE: &'static str = stringify!($table);
            const ENTITY: &'static str = $entity;
            const COLUMNS: usize = [$(stringify!($key)),+ $(, stringify!($update))*].len();

            fn key(&self) -> String {
                [$(self.$key.to_string()),+].join("/")
            }

            $(fn label(&self) -> Option<String> {
                Some(self.$label.to_string())
            })?

            $(fn merge_stored(&mut self, stored: &Self) {
                $merge(self, stored)
            })?

            $(fn write_order(rows: Vec<Self>) -> $crate::pipelines::shared::table::WriteOrder<Self> {
                $order(rows)
            })?

            $(fn keep_unknown(&mut self, stored: Option<&Self>) -> Vec<(&'static str, bool)> {
                let mut empty = Vec::new();
                $(if self.$unknown.is_none() {
                    let known = stored.and_then(|stored| stored.$unknown.clone());
                    empty.push((stringify!($unknown), known.is_some()));
                    self.$unknown = known;
                })+
                empty
            })?

            async fn read_all(db: &$crate::db::Database) -> Result<Vec<Self>, $crate::db::DbError> {
                use diesel::{QueryDsl as _, SelectableHelper as _};
                $crate::db::with_conn!(db, readers, |conn| {
                    $crate::db::schema::$table::table
                        .select(<$row>::as_select())
                        .load(conn)
                        .await
                        .map_err($crate::db::DbError::Query)
                })
            }

            fn upsert_sqlite(conn: &mut diesel::SqliteConnection, rows: &[Self]) -> diesel::QueryResult<()> {
                use diesel::RunQueryDsl as _;
                for chunk in rows.chunks(Self::batch_rows()) {
                    stored_table!(@upsert $table, chunk, ($($key),+), ($($update),*)).execute(&mut *conn)?;
                }
                Ok(())
            }

            fn delete_sqlite(conn: &mut diesel::SqliteConnection, rows: &[Self]) -> diesel::QueryResult<()> {
                use diesel::RunQueryDsl as _;
                stored_table!(@delete $table, conn, rows, ($($key),+), )
            }

            fn upsert_postgres<'a>(
                conn: &'a mut diesel_async::AsyncPgConnection,
                rows: &'a [Self],
            ) -> futures::future::BoxFuture<'a, diesel::QueryResult<()>> {
                Box::pin(async move {
                    use diesel_async::RunQueryDsl as _;
                    if rows.is_empty() {
                        return Ok(());
                    }
                    let sql = $crate::pipelines::shared::table::unnest_upsert_sql(
                        stringify!($table),
                        &[$(stringify!($key)),+],
                        &[$(stringify!($update)),*],
                    );
                    for chunk in rows.chunks($crate::pipelines::shared::table::UNNEST_ROWS) {
                        let query = diesel::sql_query(sql.as_str()).into_boxed::<diesel::pg::Pg>();
                        $(let query = query.bind::<diesel::sql_types::Array<diesel::dsl::SqlTypeOf<$crate::db::schema::$table::$key>>, _>(
                            chunk.iter().map(|row| row.$key.clone()).collect::<Vec<_>>(),
                        );)+
                        $(let query = query.bind::<diesel::sql_types::Array<diesel::dsl::SqlTypeOf<$crate::db::schema::$table::$update>>, _>(
                            chunk.iter().map(|row| row.$update.clone()).collect::<Vec<_>>(),
                        );)*
                        query.execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            }

            fn delete_postgres<'a>(
                conn: &'a mut diesel_async::AsyncPgConnection,
                rows: &'a [Self],
            ) -> futures::future::BoxFuture<'a, diesel::QueryResult<()>> {
                Box::pin(async move {
                    use diesel_async::RunQueryDsl as _;
                    stored_table!(@delete $table, conn, rows, ($($key),+), .await)
                })
            }
        }
        stored_table!(@covers $row);
    };
    (@covers $row:ty) => {
        // The PostgreSQL upsert writes the key and update columns only: a field missing from
        // both lists would be stored as NULL there (and written on SQLite), so it does not build.
        const _: () = assert!(
            <$row as diesel::deserialize::StaticallySizedRow<
                diesel::dsl::SqlTypeOf<<$row as diesel::Selectable<diesel::pg::Pg>>::SelectExpression>,
                diesel::pg::Pg,
            >>::FIELD_COUNT
                == <$row as $crate::pipelines::shared::table::StoredRow>::COLUMNS,
            concat!("stored_table!(", stringify!($row), "): key and update must list every field")
        );
    };
    (@upsert $table:ident, $chunk:ident, ($($key:ident),+), ()) => {
        diesel::insert_into($crate::db::schema::$table::table).values($chunk).on_conflict_do_nothing()
    };
    (@upsert $table:ident, $chunk:ident, ($($key:ident),+), ($($update:ident),+)) => {{
        use diesel::ExpressionMethods as _;
        use diesel::upsert::excluded;
        diesel::insert_into($crate::db::schema::$table::table)
            .values($chunk)
            .on_conflict(($($crate::db::schema::$table::$key,)+))
            .do_update()
            .set(($($crate::db::schema::$table::$update.eq(excluded($crate::db::schema::$table::$update)),)+))
    }};
    // The delete statements, written once for both backends: `$($await)*` is empty (sync
    // SQLite) or `.await` (PostgreSQL).
    (@delete $table:ident, $conn:ident, $rows:ident, ($key:ident), $($await:tt)*) => {{
        use diesel::{ExpressionMethods as _, QueryDsl as _};
        for chunk in $rows.chunks($crate::pipelines::shared::table::MAX_PARAMETERS) {
            let keys = chunk.iter().map(|row| &row.$key);
            diesel::delete($crate::db::schema::$table::table.filter($crate::db::schema::$table::$key.eq_any(keys)))
                .execute(&mut *$conn)$($await)*?;
        }
        Ok(())
    }};
    (@delete $table:ident, $conn:ident, $rows:ident, ($first:ident, $second:ident), $($await:tt)*) => {{
        use diesel::{ExpressionMethods as _, QueryDsl as _};
        let mut by_first: std::collections::BTreeMap<_, Vec<_>> = std::collections::BTreeMap::new();
        for row in $rows {
            by_first.entry(&row.$first).or_default().push(&row.$second);
        }
        for (first, seconds) in by_first {
            // One parameter goes to the first column.
            for chunk in seconds.chunks($crate::pipelines::shared::table::MAX_PARAMETERS - 1) {
                diesel::delete(
                    $crate::db::schema::$table::table
                        .filter($crate::db::schema::$table::$first.eq(first))
                        .filter($crate::db::schema::$table::$second.eq_any(chunk.iter().copied())),
                )
                .execute(&mut *$conn)$($await)*?;
            }
        }
        Ok(())
    }};
    (@delete $table:ident, $conn:ident, $rows:ident, ($($key:ident),+), $($await:tt)*) => {{
        use diesel::{ExpressionMethods as _, QueryDsl as _};
        for row in $rows {
            diesel::delete($crate::db::schema::$table::table
                $(.filter($crate::db::schema::$table::$key.eq(&row.$key)))+)
                .execute(&mut *$conn)$($await)*?;
        }
        Ok(())
    }};
}
pub(crate) use stored_table;

/// Which stored rows missing from this load may be deleted.
pub enum DeletePolicy<R> {
    /// The load is the whole table: missing rows are deleted (within the delete guard).
    Replace,
    /// The load adds to a history (a log, offers seen over time): nothing is deleted.
    KeepAll,
    /// Missing rows are deleted except those `keep` holds on to — e.g. the rows of a page that
    /// failed to load this time.
    KeepWhere(Box<dyn Fn(&R) -> bool + Send + Sync>),
}

impl<R> DeletePolicy<R> {
    pub fn keep_where(keep: impl Fn(&R) -> bool + Send + Sync + 'static) -> Self {
        DeletePolicy::KeepWhere(Box::new(keep))
    }
}

/// One table of a load, type-erased so a dataset can hold tables of different row types.
#[async_trait(?Send)]
trait TableSync: Send + Sync {
    fn table(&self) -> &'static str;
    fn incoming(&self) -> usize;
    /// The incoming rows as JSON, for tests and debugging.
    fn incoming_json(&self) -> Vec<serde_json::Value>;
    /// Reads the stored rows and decides the writes.
    async fn plan(&mut self, db: &Database) -> Result<TableCounts, DbError>;
    fn guarded(&self) -> bool;
    /// The run-report notes on the planned writes: a write that needs a second step (a
    /// reference cycle), keys the incoming rows repeated.
    fn plan_notes(&self) -> Vec<String>;
    fn take_changes(&mut self) -> Vec<Change>;
    /// The first few rows this load inserts, by [`StoredRow::label`] (planned loads only).
    fn new_names(&self) -> Vec<String>;
    fn as_any(&self) -> &dyn std::any::Any;
    /// Keys of `stored`'s incoming rows (a table of the same type) this load would delete.
    fn would_delete(&self, stored: &dyn TableSync) -> Vec<String>;
    fn upsert_sqlite(&self, conn: &mut SqliteConnection) -> diesel::QueryResult<()>;
    fn delete_sqlite(&self, conn: &mut SqliteConnection) -> diesel::QueryResult<()>;
    fn upsert_postgres<'a>(&'a self, conn: &'a mut AsyncPgConnection) -> BoxFuture<'a, diesel::QueryResult<()>>;
    fn delete_postgres<'a>(&'a self, conn: &'a mut AsyncPgConnection) -> BoxFuture<'a, diesel::QueryResult<()>>;
}

/// How a row brought in from elsewhere meets the stored row of its key: it changes the incoming
/// row in place (see [`keep_stored`]).
pub type OverStored<R> = fn(&mut R, &R);

/// The stored row wins: what a live source loaded is fresher than any old record of it.
pub fn keep_stored<R: Clone>(incoming: &mut R, stored: &R) {
    incoming.clone_from(stored);
}

/// Reads the stored rows one fan-out page is the authority for (an item page: the rows of its
/// item), instead of the whole table.
pub type ScopeRead<R> = Box<dyn FnOnce(Database) -> LocalBoxFuture<'static, Result<Vec<R>, DbError>> + Send + Sync>;

struct TableLoad<R: StoredRow> {
    incoming: Vec<R>,
    policy: DeletePolicy<R>,
    /// Set for one page's rows: only these stored rows are compared (and may be deleted).
    scope: Option<ScopeRead<R>>,
    /// Set for history brought in from elsewhere ([`Dataset::history_table`]): what an incoming
    /// row keeps of the stored row of its key, before diffing.
    over_stored: Option<OverStored<R>>,
    /// New and changed rows, in [`StoredRow::write_order`].
    upserts: Vec<R>,
    /// Rows written again after `upserts`, whole (see [`WriteOrder::fixups`]).
    fixups: Vec<R>,
    deletes: Vec<R>,
    changes: Vec<Change>,
    /// Keys the incoming rows carried more than once (see [`TableDiff::repeated`]).
    repeated: Vec<String>,
    /// Per field not shown this time ([`StoredRow::keep_unknown`]): the keys whose stored value
    /// was kept, and those with none stored yet.
    unknown: std::collections::BTreeMap<&'static str, (Vec<String>, Vec<String>)>,
}

impl<R: StoredRow> TableLoad<R> {
    fn new(incoming: Vec<R>, policy: DeletePolicy<R>, scope: Option<ScopeRead<R>>) -> Self {
        Self {
            incoming,
            policy,
            scope,
            over_stored: None,
            upserts: Vec::new(),
            fixups: Vec::new(),
            deletes: Vec::new(),
            changes: Vec::new(),
            repeated: Vec::new(),
            unknown: std::collections::BTreeMap::new(),
        }
    }
}

/// How many repeated keys a run report names.
const REPEATED_SHOWN: usize = 5;

/// `a, b, c and 2 more`: the first few keys named, the rest counted.
fn shown_keys(keys: &[String]) -> String {
    let shown: Vec<&str> = keys.iter().take(REPEATED_SHOWN).map(String::as_str).collect();
    match keys.len().saturating_sub(shown.len()) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

#[async_trait(?Send)]
impl<R: StoredRow> TableSync for TableLoad<R> {
    fn table(&self) -> &'static str {
        R::TABLE
    }

    fn incoming(&self) -> usize {
        self.incoming.len()
    }

    fn incoming_json(&self) -> Vec<serde_json::Value> {
        self.incoming.iter().filter_map(|row| serde_json::to_value(row).ok()).collect()
    }

    async fn plan(&mut self, db: &Database) -> Result<TableCounts, DbError> {
        let stored = match self.scope.take() {
            Some(read) => read(db.clone()).await?,
            None => R::read_all(db).await?,
        };
        let mut incoming = std::mem::take(&mut self.incoming);
        // Only stored rows missing from this load may be deleted: those alone are kept aside
        // (for the delete policy and the delete statements), not a copy of the whole table.
        let mut missing: HashMap<String, R> = {
            let by_key: HashMap<String, &R> = stored.iter().map(|row| (row.key(), row)).collect();
            let mut present = HashSet::with_capacity(incoming.len());
            for row in &mut incoming {
                let key = row.key();
                let old = by_key.get(&key).copied();
                if let Some(old) = old {
                    match self.over_stored {
                        Some(over_stored) => over_stored(row, old),
                        None => row.merge_stored(old),
                    }
                }
                for (field, kept) in row.keep_unknown(old) {
                    let (kept_keys, unknown_keys) = self.unknown.entry(field).or_default();
                    if kept { kept_keys } else { unknown_keys }.push(key.clone());
                }
                present.insert(key);
            }
            by_key.into_iter().filter(|(key, _)| !present.contains(key)).map(|(key, row)| (key, row.clone())).collect()
        };
        let mut diff = diff_rows(R::ENTITY, stored, incoming, StoredRow::key, StoredRow::label);
        match &self.policy {
            DeletePolicy::Replace => {}
            DeletePolicy::KeepAll => diff.keep_rows(|_| true),
            DeletePolicy::KeepWhere(keep) => diff.keep_rows(|key| missing.get(key).is_some_and(keep)),
        }
        self.deletes = diff.deletes.iter().filter_map(|key| missing.remove(key)).collect();
        let WriteOrder { rows, fixups } = R::write_order(diff.upserts);
        self.upserts = rows;
        self.fixups = fixups;
        self.changes = diff.changes;
        self.repeated = diff.repeated;
        Ok(diff.counts)
    }

    fn guarded(&self) -> bool {
        // One page's rows are few, and the page is their authority: the guard watches whole
        // tables (the end of a fan-out run decides the deletes of pages no longer asked for).
        !matches!(self.policy, DeletePolicy::KeepAll) && self.scope.is_none()
    }

    fn plan_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.fixups.is_empty() {
            let rows = self.fixups.len();
            notes.push(format!("{}: {rows} rows reference each other in a cycle; written in two steps", R::TABLE));
        }
        if !self.repeated.is_empty() {
            notes.push(format!(
                "{}: {} keys came in more than once ({}); the first row of each was kept",
                R::TABLE,
                self.repeated.len(),
                shown_keys(&self.repeated)
            ));
        }
        for (field, (kept, unknown)) in &self.unknown {
            let mut parts = Vec::new();
            if !kept.is_empty() {
                parts.push(format!("the last known value was kept for {} ({})", kept.len(), shown_keys(kept)));
            }
            if !unknown.is_empty() {
                parts.push(format!("none is known yet for {} ({})", unknown.len(), shown_keys(unknown)));
            }
            notes.push(format!(
                "{}: {field} not shown this time for {}; {}",
                R::TABLE,
                rows_counted(kept.len() + unknown.len()),
                parts.join(", ")
            ));
        }
        notes
    }

    fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    fn new_names(&self) -> Vec<String> {
        let inserted = self.changes.iter().filter(|change| change.op == ChangeOp::Insert).take(NEW_NAMES);
        inserted
            .map(|change| {
                let row = self.upserts.iter().find(|row| row.key() == change.key);
                row.and_then(StoredRow::label).unwrap_or_else(|| format!("{} {}", R::ENTITY, change.key))
            })
            .collect()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn would_delete(&self, stored: &dyn TableSync) -> Vec<String> {
        let Some(stored) = stored.as_any().downcast_ref::<TableLoad<R>>() else { return Vec::new() };
        let present: std::collections::BTreeSet<String> = self.incoming.iter().map(StoredRow::key).collect();
        stored
            .incoming
            .iter()
            .filter(|row| !present.contains(&row.key()))
            .filter(|row| match &self.policy {
                DeletePolicy::Replace => true,
                DeletePolicy::KeepAll => false,
                DeletePolicy::KeepWhere(keep) => !keep(row),
            })
            .map(StoredRow::key)
            .collect()
    }

    fn upsert_sqlite(&self, conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
        R::upsert_sqlite(conn, &self.upserts)?;
        R::upsert_sqlite(conn, &self.fixups)
    }

    fn delete_sqlite(&self, conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
        R::delete_sqlite(conn, &self.deletes)
    }

    fn upsert_postgres<'a>(&'a self, conn: &'a mut AsyncPgConnection) -> BoxFuture<'a, diesel::QueryResult<()>> {
        Box::pin(async move {
            R::upsert_postgres(conn, &self.upserts).await?;
            R::upsert_postgres(conn, &self.fixups).await
        })
    }

    fn delete_postgres<'a>(&'a self, conn: &'a mut AsyncPgConnection) -> BoxFuture<'a, diesel::QueryResult<()>> {
        R::delete_postgres(conn, &self.deletes)
    }
}

/// What a source's transformer hands its loader: tables in write order (a table's parents
/// before it; deletes run in the reverse order), plus the notes for the run report.
#[derive(Default)]
pub struct Dataset {
    tables: Vec<Box<dyn TableSync>>,
    pub notes: Vec<String>,
    /// Rows the transformer left out (unreadable, unusable), counted by the stage counters.
    pub dropped: u64,
    /// What the run already wrote before this load (a fan-out run's pages): reported and
    /// announced together with this load's own counts.
    pub prior: Option<RunCounts>,
}

impl Dataset {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a table: `rows` is everything upstream has for it now (within `policy`).
    pub fn table<R: StoredRow>(mut self, rows: Vec<R>, policy: DeletePolicy<R>) -> Self {
        self.tables.push(Box::new(TableLoad::new(rows, policy, None)));
        self
    }

    /// Adds history brought in from elsewhere (an import): nothing stored is deleted, and each
    /// incoming row meets the stored row of its key through `over_stored` ([`keep_stored`]: the
    /// stored row stays as it is) instead of [`StoredRow::merge_stored`].
    pub fn history_table<R: StoredRow>(mut self, rows: Vec<R>, over_stored: OverStored<R>) -> Self {
        let mut table = TableLoad::new(rows, DeletePolicy::KeepAll, None);
        table.over_stored = Some(over_stored);
        self.tables.push(Box::new(table));
        self
    }

    /// Adds one fan-out page's rows of a table: compared only with the stored rows `stored`
    /// reads (the rows this page is the authority for), whose rows missing from `rows` are
    /// deleted.
    pub fn page_table<R: StoredRow>(
        mut self,
        rows: Vec<R>,
        stored: impl FnOnce(Database) -> LocalBoxFuture<'static, Result<Vec<R>, DbError>> + Send + Sync + 'static,
    ) -> Self {
        self.tables.push(Box::new(TableLoad::new(rows, DeletePolicy::Replace, Some(Box::new(stored)))));
        self
    }

    /// Counts the run wrote before this load, added to its report.
    pub fn with_prior(mut self, counts: RunCounts) -> Self {
        self.prior = Some(counts);
        self
    }

    pub fn with_notes(mut self, notes: impl IntoIterator<Item = String>) -> Self {
        self.notes.extend(notes);
        self
    }

    pub fn with_dropped(mut self, dropped: u64) -> Self {
        self.dropped += dropped;
        self
    }

    pub fn rows(&self) -> usize {
        self.tables.iter().map(|table| table.incoming()).sum()
    }

    /// The incoming rows of `table` as JSON (empty for an unknown table).
    pub fn rows_of(&self, table: &str) -> Vec<serde_json::Value> {
        self.tables.iter().filter(|t| t.table() == table).flat_map(|t| t.incoming_json()).collect()
    }

    /// What loading this dataset over the rows of `stored` (as if `stored` had been loaded
    /// before) would delete, as `(table, key)`: checks a parser's output against the
    /// delete rules without a database.
    pub fn would_delete(&self, stored: &Dataset) -> Vec<(&'static str, String)> {
        let mut deleted = Vec::new();
        for table in &self.tables {
            for earlier in stored.tables.iter().filter(|earlier| earlier.table() == table.table()) {
                deleted.extend(table.would_delete(earlier.as_ref()).into_iter().map(|key| (table.table(), key)));
            }
        }
        deleted
    }

    /// Incoming rows per table, for tests and the run report.
    pub fn table_rows(&self) -> Vec<(&'static str, usize)> {
        self.tables.iter().map(|table| (table.table(), table.incoming())).collect()
    }
}

/// The source's fingerprint row and the announcement of the changes, written with its rows.
struct Fingerprint {
    source: String,
    value: String,
    outbox: Vec<NewOutboxRow>,
}

/// The failpoint between the first table's upserts and the rest, inside the transaction: crash
/// tests kill the process there, in the middle of a write.
fn during_write(source: &str) {
    failpoint::pause(&format!("{source}.during-write"));
}

/// Diffs `dataset` against the database and writes the changes, the change feed, the
/// fingerprint of `source` and the announcement of the changes (when `announcer` wants one) in
/// one transaction.
pub async fn load_dataset(
    db: &Database,
    mut dataset: Dataset,
    fingerprint: String,
    run: &RunContext,
    guard: &DeleteGuard,
    source: &str,
    announcer: Option<&dyn Announcer>,
) -> Result<LoadReport, StageError> {
    // Reads happen before the write transaction so the writer is held only for the writes;
    // safe because the ledger runs one load of a pipeline at a time and only it writes its
    // tables.
    let planned = plan(db, &mut dataset).await?;
    if !run.options.allow_mass_delete {
        for (table, counts, guarded) in &planned.tables {
            if *guarded {
                guard.check(&run.pipeline, table, counts)?;
            }
        }
    }
    let mut total = planned.total;
    if let Some(prior) = dataset.prior {
        total.inserted += prior.inserted;
        total.updated += prior.updated;
        total.deleted += prior.deleted;
        // The rows this load keeps are the ones the pages already counted.
        total.unchanged = prior.unchanged;
    }
    let mut notes = planned.notes;
    // Naming new rows searches the planned writes: only worth it when someone listens.
    let outbox = match announcer {
        Some(_) if total.inserted > 0 => {
            let names: Vec<String> =
                dataset.tables.iter().flat_map(|table| table.new_names()).take(NEW_NAMES).collect();
            change_announcements(announcer, run, total, &names)
        }
        _ => change_announcements(announcer, run, total, &[]),
    };
    let changes: Vec<Change> = dataset.tables.iter_mut().flat_map(|table| table.take_changes()).collect();
    let commit = Commit::Run {
        claim: run.claim.clone(),
        fingerprint: Fingerprint { source: source.to_owned(), value: fingerprint, outbox },
    };
    failpoint::pause(&format!("{source}.before-write"));
    let changes = match apply(db, dataset.tables, changes, commit).await {
        Ok(changes) => changes,
        Err(lost @ DbError::ClaimLost { .. }) => {
            tracing::error!(pipeline = %run.pipeline, run_id = run.run_id, error = %lost, "claim lost: another node took the run over, nothing committed");
            return Err(StageError::ClaimLost(lost.to_string()));
        }
        Err(error) => return Err(stage_error(error)),
    };
    // Committed, and the run not finished yet: a crash here must not lose the announcement.
    failpoint::pause(&format!("{source}.after-write"));
    notes.splice(0..0, std::mem::take(&mut dataset.notes));
    Ok(LoadReport { counts: total, changes, notes })
}

/// A database failure as a stage reports it: a lost claim (of a run or of a fan-out page) is
/// its own kind, so the run says why it wrote nothing.
pub(crate) fn stage_error(error: DbError) -> StageError {
    match error {
        lost @ (DbError::ClaimLost { .. } | DbError::TaskLost { .. }) => StageError::ClaimLost(lost.to_string()),
        other => StageError::Database(StorageFailure::new(other)),
    }
}

/// A dataset's planned writes: counts per table, their sum and the report's notes on them.
struct Planned {
    tables: Vec<(&'static str, TableCounts, bool)>,
    total: RunCounts,
    notes: Vec<String>,
}

async fn plan(db: &Database, dataset: &mut Dataset) -> Result<Planned, StageError> {
    let mut tables = Vec::new();
    for table in &mut dataset.tables {
        let counts = table.plan(db).await.map_err(stage_error)?;
        tables.push((table.table(), counts, table.guarded()));
    }
    let mut total = RunCounts::default();
    let mut notes = Vec::new();
    for (table, counts, _) in &tables {
        total.inserted += counts.inserted;
        total.updated += counts.updated;
        total.deleted += counts.deleted;
        total.unchanged += counts.unchanged;
        if counts.inserted + counts.updated + counts.deleted > 0 {
            notes.push(format!(
                "{table}: +{} inserted, ~{} updated, -{} deleted, ={} unchanged",
                counts.inserted, counts.updated, counts.deleted, counts.unchanged
            ));
        }
    }
    notes.extend(dataset.tables.iter().flat_map(|table| table.plan_notes()));
    Ok(Planned { tables, total, notes })
}

/// Writes one fan-out page's rows (a dataset of [`Dataset::page_table`]s), their change feed,
/// the page's fingerprint and its task's result in one transaction, only while `task` still
/// holds the task. Returns the page's counts.
pub async fn load_page(
    db: &Database,
    mut dataset: Dataset,
    task: &TaskClaim,
    pipeline: &str,
    request: &str,
    fingerprint: String,
) -> Result<(RunCounts, Vec<Change>), StageError> {
    let planned = plan(db, &mut dataset).await?;
    let changes: Vec<Change> = dataset.tables.iter_mut().flat_map(|table| table.take_changes()).collect();
    // The parser's notes go on the task for the run's report; the per-table counts do not (the
    // report sums them).
    let notes = (!dataset.notes.is_empty()).then(|| dataset.notes.join("\n"));
    let done = PageDone {
        pipeline: pipeline.to_owned(),
        request: request.to_owned(),
        fingerprint,
        counts: planned.total,
        notes,
    };
    let changes = apply(db, dataset.tables, changes, Commit::Page { task: task.clone(), done }).await;
    changes.map(|changes| (planned.total, changes)).map_err(stage_error)
}

/// What a load's transaction checks first and records last.
enum Commit {
    /// A run's load: the run's claim, the source's fingerprint and the announcement.
    Run { claim: Claim, fingerprint: Fingerprint },
    /// One fan-out page: its task's claim, and the page's result and fingerprint.
    Page { task: TaskClaim, done: PageDone },
}

impl Commit {
    fn source(&self) -> &str {
        match self {
            Commit::Run { fingerprint, .. } => &fingerprint.source,
            Commit::Page { done, .. } => &done.pipeline,
        }
    }
}

fn write_sqlite(
    conn: &mut SqliteConnection,
    tables: &[Box<dyn TableSync>],
    changes: &[Change],
    commit: &Commit,
) -> Result<(), DbError> {
    // First, so a node that lost its claim writes nothing at all.
    let run_id = match commit {
        Commit::Run { claim, .. } => {
            fence_sqlite(conn, claim)?;
            claim.run_id
        }
        Commit::Page { task, done } => tasks::complete_sqlite(conn, task, done)?,
    };
    for (index, table) in tables.iter().enumerate() {
        table.upsert_sqlite(conn)?;
        if index == 0 {
            during_write(commit.source());
        }
    }
    for table in tables.iter().rev() {
        table.delete_sqlite(conn)?;
    }
    let (source, outbox) = match commit {
        Commit::Run { fingerprint, .. } => {
            (Some((fingerprint.source.as_str(), fingerprint.value.as_str())), &fingerprint.outbox[..])
        }
        Commit::Page { .. } => (None, &[][..]),
    };
    super::common::record_feed_sqlite(conn, run_id, changes, source, outbox)?;
    Ok(())
}

async fn write_postgres(
    conn: &mut AsyncPgConnection,
    tables: &[Box<dyn TableSync>],
    changes: &[Change],
    commit: &Commit,
) -> Result<(), DbError> {
    // First: it also locks the run's (or task's) row, so a takeover waits for this commit or
    // rollback.
    let run_id = match commit {
        Commit::Run { claim, .. } => {
            fence_postgres(conn, claim).await?;
            claim.run_id
        }
        Commit::Page { task, done } => tasks::complete_postgres(conn, task, done).await?,
    };
    for (index, table) in tables.iter().enumerate() {
        table.upsert_postgres(conn).await?;
        if index == 0 {
            during_write(commit.source());
        }
    }
    for table in tables.iter().rev() {
        table.delete_postgres(conn).await?;
    }
    let (source, outbox) = match commit {
        Commit::Run { fingerprint, .. } => {
            (Some((fingerprint.source.as_str(), fingerprint.value.as_str())), &fingerprint.outbox[..])
        }
        Commit::Page { .. } => (None, &[][..]),
    };
    super::common::record_feed_postgres(conn, run_id, changes, source, outbox).await?;
    Ok(())
}

/// Runs the writes in one transaction; on SQLite through sync diesel on a blocking thread in a
/// `BEGIN IMMEDIATE` (diesel-async cannot build multi-row inserts for SQLite).
async fn apply(
    db: &Database,
    tables: Vec<Box<dyn TableSync>>,
    changes: Vec<Change>,
    commit: Commit,
) -> Result<Vec<Change>, DbError> {
    match db {
        Database::Postgres(pool) => {
            use diesel_async::AsyncConnection as _;
            let mut conn = pool.get().await.map_err(DbError::pool)?;
            conn.transaction(async |conn| {
                write_postgres(conn, &tables, &changes, &commit).await?;
                Ok::<_, DbError>(())
            })
            .await?;
            Ok(changes)
        }
        Database::Sqlite { writer, .. } => {
            let mut conn = writer.get().await.map_err(DbError::pool)?;
            conn.spawn_blocking(move |conn| {
                conn.immediate_transaction(|conn| write_sqlite(conn, &tables, &changes, &commit))
                    .map(|()| changes)
                    .map_err(carry)
            })
            .await
            .map_err(unwrap_carried)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::unnest_upsert_sql;

    #[test]
    fn the_unnest_upsert_binds_one_array_per_column() {
        assert_eq!(
            unnest_upsert_sql("tower_rewards", &["level", "slot"], &["item_id", "quantity"]),
            "INSERT INTO \"tower_rewards\" (\"level\", \"slot\", \"item_id\", \"quantity\") \
             SELECT * FROM UNNEST($1, $2, $3, $4) \
             ON CONFLICT (\"level\", \"slot\") DO UPDATE SET \"item_id\" = EXCLUDED.\"item_id\", \
             \"quantity\" = EXCLUDED.\"quantity\""
        );
        assert_eq!(
            unnest_upsert_sql("seed_crops", &["seed_id", "crop_id"], &[]),
            "INSERT INTO \"seed_crops\" (\"seed_id\", \"crop_id\") SELECT * FROM UNNEST($1, $2) ON CONFLICT DO NOTHING"
        );
    }
}
