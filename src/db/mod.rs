//! The database: SQLite (bundled, the zero-setup default) or PostgreSQL (diesel-async's own
//! async connection, no libpq), behind one type so every query is written once.
//!
//! [`with_conn!`] expands the same diesel expression once per backend: it type-checks against
//! each backend with no generic bounds to spell out. SQLite gets one writer connection (SQLite
//! allows one writer at a time; queuing in our pool beats `SQLITE_BUSY` retries) and a few
//! readers; PostgreSQL one pool for both.

pub mod clock;
pub mod ledger;
pub mod nodes;
pub mod outbox;
pub mod queries;
pub mod schema;
pub mod statements;
pub mod tasks;

use std::path::PathBuf;
use std::time::Duration;

use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_async::pooled_connection::bb8::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use futures::FutureExt;

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend `$db` is.
/// `$pool` is `writer` or `readers` (PostgreSQL has one pool for both).
macro_rules! with_conn {
    ($db:expr, $pool:ident, |$conn:ident| $body:expr) => {
        // An async block so `?` inside `$body` (and on the pool) yields a `DbError` here rather
        // than returning from the caller.
        async {
            #[allow(unused_imports)]
            use diesel_async::RunQueryDsl as _;
            match $db {
                $crate::db::Database::Postgres(pool) => {
                    let mut pooled = pool.get().await.map_err($crate::db::DbError::pool)?;
                    let $conn = &mut *pooled;
                    $body
                }
                $crate::db::Database::Sqlite { $pool: pool, .. } => {
                    let mut pooled = pool.get().await.map_err($crate::db::DbError::pool)?;
                    let $conn = &mut *pooled;
                    $body
                }
            }
        }
        .await
    };
}
pub(crate) use with_conn;

/// Runs `$body` in a write transaction on the writer connection: `BEGIN IMMEDIATE` on SQLite, so
/// the write lock is taken (waiting on `busy_timeout`) before the first read — a deferred
/// transaction that reads, then writes, fails at once with "database is locked" when another
/// process wrote meanwhile. `$body` returns `Result<_, DbError>`; an error rolls back.
macro_rules! write_transaction {
    ($db:expr, |$conn:ident| $body:expr) => {
        async {
            #[allow(unused_imports)]
            use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
            match $db {
                $crate::db::Database::Postgres(pool) => {
                    let mut pooled = pool.get().await.map_err($crate::db::DbError::pool)?;
                    pooled.transaction(async |$conn| $body).await
                }
                $crate::db::Database::Sqlite { writer: pool, .. } => {
                    let mut pooled = pool.get().await.map_err($crate::db::DbError::pool)?;
                    pooled.immediate_transaction(async |$conn| $body).await
                }
            }
        }
        .await
    };
}
pub(crate) use write_transaction;

pub type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long a query waits for a free connection before failing. Long enough to ride out a
/// burst, short enough that a stuck pool shows up as an error rather than a hang.
const POOL_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);
/// SQLite: how long a statement waits for a lock held by another process (e.g. `hayloft run`
/// while `hayloft serve` writes) before giving up with "database is locked".
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;
const SQLITE_READERS: u32 = 4;
/// Arbitrary, fixed key of the PostgreSQL advisory lock held while migrating ("hayloft" in ASCII).
const POSTGRES_MIGRATION_LOCK: i64 = 0x0068_6179_6c6f_6674;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("no database connection available: {0}")]
    Pool(String),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(String),
    /// A write presented a claim the run no longer has: another node took the run over.
    #[error("run {run_id} is no longer held by node {node} (epoch {epoch}); nothing was written")]
    ClaimLost { run_id: i64, node: String, epoch: i64 },
    /// A page's write presented a task claim the task no longer has: its node was counted dead
    /// (or its lease ran out) and another node took the page.
    #[error("fan-out task {task_id} is no longer held by node {node} (attempt {attempt}); nothing was written")]
    TaskLost { task_id: i64, node: String, attempt: i32 },
}

impl DbError {
    pub fn pool(error: impl std::fmt::Display) -> Self {
        DbError::Pool(error.to_string())
    }
}

/// Carries a [`DbError`] out of a blocking SQLite closure through diesel's error type, whose
/// only free-form variant is a boxed "deserialization" error; [`unwrap_carried`] takes it out.
pub fn carry(error: DbError) -> diesel::result::Error {
    match error {
        DbError::Query(error) => error,
        other => diesel::result::Error::DeserializationError(Box::new(other)),
    }
}

/// The [`DbError`] a blocking SQLite write carried out through diesel's error type.
pub fn unwrap_carried(error: diesel::result::Error) -> DbError {
    match error {
        diesel::result::Error::DeserializationError(inner) => match inner.downcast::<DbError>() {
            Ok(carried) => *carried,
            Err(other) => DbError::Query(diesel::result::Error::DeserializationError(other)),
        },
        other => DbError::Query(other),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// Where the data lives, parsed from `database_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    /// `postgres://…` / `postgresql://…` → PostgreSQL; `sqlite://path`, `sqlite:path` or a bare
    /// path → SQLite.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(text.to_owned()));
        }
        let path = text.strip_prefix("sqlite://").or_else(|| text.strip_prefix("sqlite:")).unwrap_or(text);
        if path.is_empty() {
            return Err("empty database URL (use a file path, sqlite://path or postgres://…)".to_owned());
        }
        if path == ":memory:" {
            return Err(
                "an in-memory SQLite database cannot be shared by a connection pool; use a file path".to_owned()
            );
        }
        if let Some((scheme, _)) = path.split_once("://") {
            return Err(format!(
                "unsupported database scheme {scheme:?} (use a file path, sqlite://path or postgres://…)"
            ));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    /// The URL node `node` connects with: on PostgreSQL its connections are named after it
    /// (`application_name`), so the other nodes see at once when its process is gone (see
    /// [`nodes`]).
    pub fn for_node(&self, node: &str) -> Self {
        match self {
            DatabaseUrl::Sqlite(_) => self.clone(),
            DatabaseUrl::Postgres(url) => {
                let separator = if url.contains('?') { '&' } else { '?' };
                DatabaseUrl::Postgres(format!("{url}{separator}application_name={}{node}", nodes::SESSION_PREFIX))
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL without any password, for logs.
    pub fn redacted(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(scheme_end), Some(at)) if at > scheme_end => {
                    let credentials = &url[scheme_end + 3..at];
                    let user = credentials.split(':').next().unwrap_or("");
                    format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
                }
                _ => url.clone(),
            },
        }
    }

    /// Runs pending migrations on a plain thread, outside any async runtime: diesel's migration
    /// harness blocks, which actix's current-thread runtime does not allow. Returns the versions
    /// applied.
    pub fn migrate(&self) -> Result<Vec<String>, DbError> {
        let url = self.clone();
        let worker = std::thread::Builder::new()
            .name("hayloft-migrate".to_owned())
            .spawn(move || url.migrate_with_retries())
            .map_err(|error| DbError::Migration(error.to_string()))?;
        worker.join().map_err(|_| DbError::Migration("the migration thread panicked".to_owned()))?
    }

    /// Two processes creating the same new SQLite file at the same instant can get
    /// "database is locked" without SQLite's busy handler being consulted (switching the journal
    /// mode); waiting a moment and trying again always resolves it.
    fn migrate_with_retries(&self) -> Result<Vec<String>, DbError> {
        let deadline = std::time::Instant::now() + Duration::from_millis(u64::from(SQLITE_BUSY_TIMEOUT_MS));
        loop {
            match self.migrate_blocking() {
                Err(DbError::Query(error))
                    if error.to_string().contains("database is locked") && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    fn migrate_blocking(&self) -> Result<Vec<String>, DbError> {
        let versions = match self {
            DatabaseUrl::Sqlite(path) => {
                let mut connection = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(|error| DbError::Connect(format!("{}: {error}", path.display())))?;
                diesel::connection::SimpleConnection::batch_execute(&mut connection, &sqlite_pragmas())
                    .map_err(DbError::Query)?;
                diesel::connection::SimpleConnection::batch_execute(&mut connection, SQLITE_ENABLE_WAL)
                    .map_err(DbError::Query)?;
                // IMMEDIATE takes the write lock up front: a second process starting at the same
                // moment waits here, then finds nothing pending (each migration nests as a savepoint).
                connection.immediate_transaction(|connection| {
                    connection
                        .run_pending_migrations(SQLITE_MIGRATIONS)
                        .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
                        .map_err(|error| DbError::Migration(error.to_string()))
                })?
            }
            DatabaseUrl::Postgres(url) => {
                use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
                let mut connection = <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(url)
                    .map_err(|error| DbError::Connect(with_os_reason(url, error.to_string())))?;
                // A session lock (released when this connection closes) serialises processes that
                // migrate the same database at once.
                diesel::connection::SimpleConnection::batch_execute(
                    &mut connection,
                    &format!("SELECT pg_advisory_lock({POSTGRES_MIGRATION_LOCK})"),
                )
                .map_err(DbError::Query)?;
                connection
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
                    .map_err(|error| DbError::Migration(error.to_string()))?
            }
        };
        Ok(versions)
    }
}

/// The PostgreSQL driver words a refused or unreachable server as "error connecting to server"
/// and the pool layers drop the cause that says why. When the message has no reason of its own,
/// one plain TCP connection to the server's address finds it again ("Connection refused", "No
/// route to host"), so the operator reads what the operating system said.
fn with_os_reason(url: &str, message: String) -> String {
    if !message.contains("error connecting to server") && !message.contains("timed out") {
        return message;
    }
    let Ok(parsed) = url::Url::parse(url) else { return message };
    let host = parsed.host_str().filter(|host| !host.is_empty()).unwrap_or("localhost").to_owned();
    let port = parsed.port().unwrap_or(5432);
    let address = format!("{host}:{port}");
    let reason = match std::net::ToSocketAddrs::to_socket_addrs(&address) {
        Err(error) => error.to_string(),
        Ok(mut addresses) => match addresses.next() {
            None => "the name resolves to no address".to_owned(),
            Some(socket) => match std::net::TcpStream::connect_timeout(&socket, Duration::from_secs(2)) {
                // The server answers TCP: the driver's own words are all there is.
                Ok(_) => return message,
                Err(error) => error.to_string(),
            },
        },
    };
    format!("{message} ({address}: {reason})")
}

/// [`with_os_reason`] off the async thread, which its probe may hold for up to two seconds.
async fn connect_error(url: &str, error: impl std::fmt::Display) -> DbError {
    let message = error.to_string();
    let (url, probed) = (url.to_owned(), message.clone());
    DbError::Connect(tokio::task::spawn_blocking(move || with_os_reason(&url, probed)).await.unwrap_or(message))
}

/// Per-connection settings. busy_timeout comes first so everything after it waits for a lock
/// held by another process instead of failing at once with "database is locked". NORMAL sync is
/// safe with WAL (a power cut may lose the last commits, never corrupt); foreign keys are off by
/// default in SQLite.
fn sqlite_pragmas() -> String {
    format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
}

/// WAL lets readers work while the writer writes. The mode is stored in the database file, so
/// it is set once, when migrating, rather than by every new connection (changing it takes a lock).
const SQLITE_ENABLE_WAL: &str = "PRAGMA journal_mode = WAL;";

/// A pool per backend. Cloning is cheap (pools are reference-counted).
#[derive(Clone)]
pub enum Database {
    Sqlite { writer: Pool<SqliteConn>, readers: Pool<SqliteConn> },
    Postgres(Pool<AsyncPgConnection>),
}

impl Database {
    /// Opens the pools. Does not run migrations (see [`DatabaseUrl::migrate`]).
    pub async fn connect(url: &DatabaseUrl, pool_size: u32) -> Result<Self, DbError> {
        statements::install();
        match url {
            DatabaseUrl::Sqlite(path) => {
                let path = path.to_string_lossy().into_owned();
                let writer = sqlite_pool(&path, 1).await?;
                let readers = sqlite_pool(&path, SQLITE_READERS).await?;
                Ok(Database::Sqlite { writer, readers })
            }
            DatabaseUrl::Postgres(url) => {
                let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url.as_str());
                let pool = match Pool::builder()
                    .max_size(pool_size.max(1))
                    .connection_timeout(POOL_CHECKOUT_TIMEOUT)
                    .build(manager)
                    .await
                {
                    Ok(pool) => pool,
                    Err(error) => return Err(connect_error(url, error).await),
                };
                // Fail now, with the server's own words, rather than on the first query.
                if let Err(error) = pool.get().await {
                    return Err(connect_error(url, error).await);
                }
                Ok(Database::Postgres(pool))
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite { .. } => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// Embedded migrations this database has not applied (empty when it is up to date).
    pub async fn missing_migrations(&self) -> Result<Vec<String>, DbError> {
        #[derive(diesel::QueryableByName)]
        struct Applied {
            #[diesel(sql_type = diesel::sql_types::Text)]
            version: String,
        }

        let applied: Vec<Applied> = with_conn!(self, readers, |conn| {
            let query = diesel::sql_query("SELECT version FROM __diesel_schema_migrations");
            diesel_async::RunQueryDsl::load::<Applied>(query, conn).await.map_err(DbError::Query)
        })?;
        let applied: std::collections::HashSet<String> = applied.into_iter().map(|row| row.version).collect();
        let embedded: Vec<String> = match self {
            Database::Sqlite { .. } => {
                diesel::migration::MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
                    .map_err(|error| DbError::Migration(error.to_string()))?
                    .iter()
                    .map(|migration| migration.name().version().to_string())
                    .collect()
            }
            Database::Postgres(_) => {
                diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&POSTGRES_MIGRATIONS)
                    .map_err(|error| DbError::Migration(error.to_string()))?
                    .iter()
                    .map(|migration| migration.name().version().to_string())
                    .collect()
            }
        };
        Ok(embedded.into_iter().filter(|version| !applied.contains(version)).collect())
    }

    /// Cheap liveness probe for `/readyz`-style checks.
    pub async fn ping(&self) -> Result<(), DbError> {
        with_conn!(self, readers, |conn| conn.batch_execute("SELECT 1").await.map_err(DbError::Query))
    }
}

async fn sqlite_pool(path: &str, size: u32) -> Result<Pool<SqliteConn>, DbError> {
    let mut config = ManagerConfig::<SqliteConn>::default();
    config.custom_setup = Box::new(|url: &str| {
        let url = url.to_owned();
        async move {
            let mut connection = SqliteConn::establish(&url).await?;
            connection
                .batch_execute(&sqlite_pragmas())
                .await
                .map_err(|error| diesel::ConnectionError::BadConnection(error.to_string()))?;
            Ok(connection)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<SqliteConn>::new_with_config(path, config);
    Pool::builder()
        .max_size(size)
        .connection_timeout(POOL_CHECKOUT_TIMEOUT)
        .build(manager)
        .await
        .map_err(|error| DbError::Connect(format!("{path}: {error}")))
}
