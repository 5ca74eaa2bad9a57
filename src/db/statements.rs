//! A process-wide count of SQL statements started, on both backends (diesel's default
//! instrumentation, which diesel-async's PostgreSQL connection honours too), leaving out the
//! pool's `SELECT 1` liveness check. The GraphQL API
//! reports how many statements a request issued when asked (`Hayloft-Statements: on`), which
//! is how tests and benchmarks prove nested queries are batched rather than N+1.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use diesel::connection::{Instrumentation, InstrumentationEvent};

static STATEMENTS: AtomicU64 = AtomicU64::new(0);

/// The pool's liveness check on checkout (`SELECT 1` with the 1 bound), not a statement anyone
/// asked for.
fn is_pool_ping(sql: &str) -> bool {
    let statement = sql.split(" -- binds").next().unwrap_or(sql).trim();
    matches!(statement, "SELECT ?" | "SELECT $1" | "SELECT 1")
}

fn counter() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(|event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            if !is_pool_ping(&query.to_string()) {
                STATEMENTS.fetch_add(1, Ordering::Relaxed);
            }
        }
    }))
}

/// Counts the statements of every connection opened from now on.
pub fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        if let Err(error) = diesel::connection::set_default_instrumentation(counter) {
            tracing::warn!(%error, "statement counting is unavailable");
        }
    });
}

/// Statements started by this process so far.
pub fn started() -> u64 {
    STATEMENTS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    // Only the pool's ping is left out.
    #[test]
    fn the_pool_ping_is_recognised() {
        assert!(super::is_pool_ping("SELECT ? -- binds: [1]"));
        assert!(super::is_pool_ping("SELECT $1 -- binds: [1]"));
        assert!(!super::is_pool_ping("SELECT `items`.`id` FROM `items` -- binds: []"));
    }
}
