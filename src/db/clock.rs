//! The database's clock. Every node of a cluster reads time from the one database it shares,
//! never from its own clock: heartbeats, leases and "dead after" all compare instants written
//! and read by the same clock, so skewed node clocks cannot make a live node look dead or a
//! dead one alive.

use chrono::NaiveDateTime;
use diesel::sql_types::Timestamp;
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::SqliteConn;

#[derive(QueryableByName)]
struct DbNow {
    #[diesel(sql_type = Timestamp)]
    now: NaiveDateTime,
}

/// `clock_timestamp()`, not `now()`: the latter is the start of the transaction.
const POSTGRES_NOW: &str = "SELECT CAST(clock_timestamp() AT TIME ZONE 'UTC' AS TIMESTAMP) AS now";
/// Milliseconds: `CURRENT_TIMESTAMP` has whole seconds only.
const SQLITE_NOW: &str = "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now') AS now";

/// Reads the current UTC time off the database server.
pub(crate) trait DbClock {
    async fn db_now(&mut self) -> diesel::QueryResult<NaiveDateTime>;
}

impl DbClock for AsyncPgConnection {
    async fn db_now(&mut self) -> diesel::QueryResult<NaiveDateTime> {
        Ok(diesel::sql_query(POSTGRES_NOW).get_result::<DbNow>(self).await?.now)
    }
}

impl DbClock for SqliteConn {
    async fn db_now(&mut self) -> diesel::QueryResult<NaiveDateTime> {
        Ok(diesel::sql_query(SQLITE_NOW).get_result::<DbNow>(self).await?.now)
    }
}

/// `at + duration`, saturating (a lease of a year is as good as forever).
pub fn plus(at: NaiveDateTime, duration: std::time::Duration) -> NaiveDateTime {
    at + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::days(365))
}

/// `at - duration`, saturating.
pub fn minus(at: NaiveDateTime, duration: std::time::Duration) -> NaiveDateTime {
    at - chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::days(365))
}
