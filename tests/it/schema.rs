//! Both migration folders declare the same schema (the one `src/db/schema.rs` describes).
//! `schema.rs` itself is checked against the SQLite migrations by `diesel print-schema` in CI.

use std::collections::BTreeMap;

use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, QueryableByName, SqliteConnection};
use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::helpers::{postgres_server, PgDatabase, TestEnv};

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    r#type: String,
    #[diesel(sql_type = BigInt)]
    notnull: i64,
    #[diesel(sql_type = BigInt)]
    pk: i64,
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    data_type: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

type Columns = BTreeMap<(String, String), (String, bool)>;

fn sqlite_columns(path: &str) -> Columns {
    let mut connection = SqliteConnection::establish(path).unwrap();
    let rows: Vec<SqliteColumn> = diesel::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT m.name AS table_name, p.name AS name, p.type AS type, p.\"notnull\" AS \"notnull\", p.pk AS pk \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name != '__diesel_schema_migrations'",
        ),
        &mut connection,
    )
    .unwrap();
    rows.into_iter()
        .map(|column| {
            // `INTEGER PRIMARY KEY` is SQLite's 64-bit rowid: the same as PostgreSQL's BIGINT identity.
            let kind = match (column.r#type.to_ascii_uppercase().as_str(), column.pk) {
                ("INTEGER", 1) | ("BIGINT", _) => "bigint",
                ("INTEGER", _) => "integer",
                ("TEXT", _) => "text",
                ("BOOLEAN", _) => "boolean",
                ("TIMESTAMP", _) => "timestamp",
                ("DOUBLE", _) => "double precision",
                (other, _) => panic!("unexpected SQLite type {other}"),
            };
            ((column.table_name, column.name), (kind.to_owned(), column.notnull == 1 || column.pk == 1))
        })
        .collect()
}

fn pg_columns(url: &str) -> Columns {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let rows: Vec<PgColumn> = runtime.block_on(async {
        use diesel_async::RunQueryDsl;
        let mut connection = AsyncPgConnection::establish(url).await.unwrap();
        diesel::sql_query(
            "SELECT table_name::text AS table_name, column_name::text AS column_name, data_type::text AS data_type, \
             is_nullable::text AS is_nullable FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name != '__diesel_schema_migrations'",
        )
        .load(&mut connection)
        .await
        .unwrap()
    });
    rows.into_iter()
        .map(|column| {
            let kind = match column.data_type.as_str() {
                "timestamp without time zone" => "timestamp",
                other => other,
            };
            ((column.table_name, column.column_name), (kind.to_owned(), column.is_nullable == "NO"))
        })
        .collect()
}

// Every table and column has the same type class and nullability on both backends.
#[test]
fn postgres_and_sqlite_migrations_declare_the_same_schema() {
    let server = postgres_server().unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_owned());
    let Some(postgres) = PgDatabase::create(&server) else { return };
    let Some(env) = TestEnv::new() else { return };
    let sqlite_path = env.dir.path().join("schema.db").to_string_lossy().into_owned();
    for url in [sqlite_path.clone(), postgres.url()] {
        let output = env.command().env("HAYLOFT_DATABASE_URL", &url).arg("migrate").output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let sqlite = sqlite_columns(&sqlite_path);
    let postgres = pg_columns(&postgres.url());
    assert!(sqlite.len() > 50, "the introspection found too few columns to compare: {sqlite:?}");
    assert_eq!(sqlite, postgres);
}
