//! The `postgres` feature against a real server: SQLSTATEs PostgreSQL
//! really sends classify as the table says.
//!
//! These tests need a server and are ignored by a plain `cargo test`;
//! `.ci/run` runs them against the server `scripts/postgres.sh` starts:
//!
//! ```sh
//! scripts/postgres.sh run cargo test --features postgres --test postgres -- --ignored
//! ```
//!
//! Without `DATABASE_URL` they fail, never pass by skipping.
#![cfg(feature = "postgres")]

use reflexio::{default_classifier, ErrorClass};
use tokio_postgres::{Client, NoTls};

async fn connect() -> Client {
    let url = std::env::var("DATABASE_URL").expect(
        "DATABASE_URL is not set: run these tests under scripts/postgres.sh run (see the file's docs)",
    );
    let (client, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the server DATABASE_URL names: {e}"));
    tokio::spawn(connection);
    client
}

async fn class_of(client: &Client, sql: &str) -> (ErrorClass, String) {
    let err = client.batch_execute(sql).await.unwrap_err();
    let code = err.code().map(|c| c.code().to_owned()).unwrap_or_default();
    (default_classifier(&err).class, code)
}

#[tokio::test]
#[ignore = "needs a PostgreSQL server: scripts/postgres.sh run cargo test --features postgres --test postgres -- --ignored"]
async fn server_errors_classify_by_sqlstate() {
    let client = connect().await;
    let table = format!("reflexio_classify_{}", std::process::id());
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int PRIMARY KEY, v int NOT NULL)"
        ))
        .await
        .unwrap();
    let cases = [
        ("SELEC 1", ErrorClass::Permanent, "42601"),
        (
            "SELECT * FROM reflexio_no_such_table",
            ErrorClass::Permanent,
            "42P01",
        ),
        (
            &format!("INSERT INTO {table} VALUES (1, 1); INSERT INTO {table} VALUES (1, 2)"),
            ErrorClass::Permanent,
            "23505",
        ),
        (
            &format!("INSERT INTO {table} VALUES (2, NULL)"),
            ErrorClass::Permanent,
            "23502",
        ),
    ];
    for (sql, class, code) in &cases {
        assert_eq!(
            class_of(&client, sql).await,
            (*class, (*code).to_owned()),
            "{sql}"
        );
    }
    // 42501: a role without privileges reads the table.
    let role = format!("reflexio_reader_{}", std::process::id());
    client
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} NOLOGIN"
        ))
        .await
        .unwrap();
    let denied = format!("SET ROLE {role}; SELECT * FROM {table}");
    assert_eq!(
        class_of(&client, &denied).await,
        (ErrorClass::Permission, "42501".to_owned())
    );
    client
        .batch_execute(&format!("RESET ROLE; DROP TABLE {table}; DROP ROLE {role}"))
        .await
        .unwrap();
}

/// Two SERIALIZABLE transactions that read and write the same row: the
/// second to commit gets 40001, which is `concurrency`.
#[tokio::test]
#[ignore = "needs a PostgreSQL server: scripts/postgres.sh run cargo test --features postgres --test postgres -- --ignored"]
async fn a_real_serialization_failure_is_concurrency() {
    let (a, b) = (connect().await, connect().await);
    let table = format!("reflexio_conflict_{}", std::process::id());
    a.batch_execute(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int PRIMARY KEY, n int); INSERT INTO {table} VALUES (1, 0)"
    ))
    .await
    .unwrap();
    for c in [&a, &b] {
        c.batch_execute(&format!(
            "BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT n FROM {table} WHERE id = 1"
        ))
        .await
        .unwrap();
    }
    a.batch_execute(&format!(
        "UPDATE {table} SET n = n + 1 WHERE id = 1; COMMIT"
    ))
    .await
    .unwrap();
    let err = b
        .batch_execute(&format!("UPDATE {table} SET n = n + 1 WHERE id = 1"))
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("40001"));
    assert_eq!(default_classifier(&err).class, ErrorClass::Concurrency);
    b.batch_execute("ROLLBACK").await.unwrap();
    a.batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

/// A row lock another transaction holds, asked for with `NOWAIT` (55P03,
/// lock not available), is `concurrency`: worth retrying once the holder
/// is done.
#[tokio::test]
#[ignore = "needs a PostgreSQL server: scripts/postgres.sh run cargo test --features postgres --test postgres -- --ignored"]
async fn a_lock_not_available_is_concurrency() {
    let holder = connect().await;
    let waiter = connect().await;
    let table = format!("reflexio_lock_{}", std::process::id());
    holder
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int PRIMARY KEY); INSERT INTO {table} VALUES (1)"
        ))
        .await
        .unwrap();
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT * FROM {table} WHERE id = 1 FOR UPDATE"
        ))
        .await
        .unwrap();
    let err = waiter
        .batch_execute(&format!(
            "SELECT * FROM {table} WHERE id = 1 FOR UPDATE NOWAIT"
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("55P03"), "{err}");
    assert_eq!(default_classifier(&err).class, ErrorClass::Concurrency);
    holder
        .batch_execute(&format!("ROLLBACK; DROP TABLE {table}"))
        .await
        .unwrap();
}

/// Too many connections (53300) is `rate_limit`; an admin shutdown of a
/// session (57P01) is `server_error`.
#[tokio::test]
#[ignore = "needs a PostgreSQL server: scripts/postgres.sh run cargo test --features postgres --test postgres -- --ignored"]
async fn connection_limits_and_terminated_sessions() {
    let admin = connect().await;
    let role = format!("reflexio_limited_{}", std::process::id());
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN CONNECTION LIMIT 0"
        ))
        .await
        .unwrap();
    let url = std::env::var("DATABASE_URL").unwrap();
    let limited = url.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    let Err(err) = tokio_postgres::connect(&limited, NoTls).await else {
        panic!("a role with CONNECTION LIMIT 0 could connect");
    };
    assert_eq!(err.code().map(|c| c.code()), Some("53300"), "{err}");
    assert_eq!(default_classifier(&err).class, ErrorClass::RateLimit);
    admin
        .batch_execute(&format!("DROP ROLE {role}"))
        .await
        .unwrap();

    // 57P01: terminate a session from another one.
    let victim = connect().await;
    let pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let err = victim.batch_execute("SELECT 1").await.unwrap_err();
    let class = default_classifier(&err).class;
    match err.code().map(|c| c.code()) {
        Some("57P01") => assert_eq!(class, ErrorClass::ServerError),
        // The notice can lose the race with the closed socket: then the
        // error is a closed connection, which is transient.
        _ => {
            assert!(err.is_closed(), "{err:?}");
            assert_eq!(class, ErrorClass::Transient);
        }
    }
}
