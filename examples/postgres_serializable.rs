//! Serialization failures on a hot row, retried against a real PostgreSQL.
//!
//! Eight tasks each increment one shared counter 25 times, every increment
//! a SERIALIZABLE transaction (read, then write). Concurrent transactions
//! conflict and PostgreSQL aborts them with SQLSTATE 40001; the default
//! classifier sorts `tokio_postgres::Error` by its SQLSTATE, so 40001 is
//! `concurrency`, retried with jitter. The run is repeated per strategy,
//! prints the attempts each transaction took, and exits non-zero unless
//! every counter ends at tasks × increments (no lost update, no
//! transaction given up) and conflicts were indeed retried.
//!
//! It needs a server: `DATABASE_URL` names it. `scripts/postgres.sh`
//! starts a throwaway one on 127.0.0.1:
//!
//! ```sh
//! scripts/postgres.sh run cargo run --example postgres_serializable --features postgres,tokio
//! ```

use std::error::Error;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reflexio::{Backoff, ErrorClass, Event, EventKind, RetryPolicy};
use tokio_postgres::{Client, NoTls};

const TASKS: usize = 8;
const INCREMENTS: usize = 25;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("postgres_serializable: ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("postgres_serializable: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("connection ended: {e}");
        }
    });
    Ok(client)
}

/// One increment of row `id`, as a SERIALIZABLE transaction.
async fn increment(client: &Client, table: &str, id: i32) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .await?;
    let work = async {
        let row = client
            .query_one(&format!("SELECT n FROM {table} WHERE id = $1"), &[&id])
            .await?;
        let n: i64 = row.get(0);
        client
            .execute(
                &format!("UPDATE {table} SET n = $1 WHERE id = $2"),
                &[&(n + 1), &id],
            )
            .await?;
        client.batch_execute("COMMIT").await
    };
    let result = work.await;
    if result.is_err() {
        // The transaction is aborted; end it so the connection is reusable.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    result
}

/// What one strategy's run saw.
#[derive(Default)]
struct Tally {
    /// Attempts of each successful transaction.
    attempts: Vec<u32>,
    /// Retries by class.
    retries: [u32; 8],
    /// Terminal failures (transactions given up).
    given_up: u32,
    /// The text of the first error seen, to show what was classified.
    first_error: Option<String>,
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn run() -> Result<(), Box<dyn Error>> {
    let url = std::env::var("DATABASE_URL").map_err(|_| {
        "DATABASE_URL is not set: this example needs a PostgreSQL server; run it as \
         `scripts/postgres.sh run cargo run --example postgres_serializable --features postgres,tokio`"
    })?;
    let admin = connect(&url)
        .await
        // Not the URL itself: it may hold a password.
        .map_err(|e| format!("cannot connect to the server DATABASE_URL names: {e}"))?;
    let table = format!("reflexio_counter_{}", std::process::id());
    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int PRIMARY KEY, n bigint NOT NULL)"
        ))
        .await?;

    let ms = Duration::from_millis;
    let strategies = [
        ("equal_jitter", Backoff::equal_jitter(ms(2), ms(100))),
        ("full_jitter", Backoff::full_jitter(ms(2), ms(100))),
        (
            "decorrelated_jitter",
            Backoff::decorrelated_jitter(ms(2), ms(100)),
        ),
    ];
    println!("{TASKS} tasks x {INCREMENTS} SERIALIZABLE increments of one row, per strategy\n");
    println!(
        "{:<20} {:>12} {:>9} {:>5} {:>5} {:>5} {:>12} {:>9} {:>8}",
        "strategy",
        "transactions",
        "attempts",
        "p50",
        "p90",
        "max",
        "40001 retries",
        "given up",
        "time"
    );
    let mut failures = Vec::new();
    let mut conflicts = 0;
    for (i, (name, backoff)) in strategies.into_iter().enumerate() {
        let id = i as i32;
        admin
            .execute(
                &format!("INSERT INTO {table} (id, n) VALUES ($1, 0)"),
                &[&id],
            )
            .await?;
        let tally = Arc::new(Mutex::new(Tally::default()));
        let sink = Arc::clone(&tally);
        let policy = RetryPolicy::builder()
            .class_strategy(ErrorClass::Concurrency, backoff)
            .strategy(Backoff::equal_jitter(ms(50), ms(500)))
            .max_attempts(200)
            .deadline(Duration::from_secs(60))
            .hook(move |e: &Event<'_>| {
                let mut t = sink.lock().unwrap_or_else(|p| p.into_inner());
                if t.first_error.is_none() {
                    t.first_error = e.error.map(|text| text.to_string());
                }
                match e.kind {
                    EventKind::Success => t.attempts.push(e.attempt),
                    EventKind::Retry => {
                        if let Some(class) = e.class {
                            t.retries[class.index()] += 1;
                        }
                    }
                    _ => t.given_up += 1,
                }
            })
            .build()?;

        let started = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..TASKS {
            let client = connect(&url).await?;
            let policy = policy.bind(name);
            let table = table.clone();
            workers.push(tokio::spawn(async move {
                for _ in 0..INCREMENTS {
                    policy
                        .call_async(|| increment(&client, &table, id))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok::<(), String>(())
            }));
        }
        for worker in workers {
            if let Err(e) = worker.await? {
                failures.push(format!("{name}: a transaction was given up: {e}"));
            }
        }
        let took = started.elapsed();
        let count: i64 = admin
            .query_one(&format!("SELECT n FROM {table} WHERE id = $1"), &[&id])
            .await?
            .get(0);

        let t = tally.lock().unwrap_or_else(|p| p.into_inner());
        let mut sorted = t.attempts.clone();
        sorted.sort_unstable();
        let total: u32 = sorted.iter().sum();
        let concurrency = t.retries[ErrorClass::Concurrency.index()];
        conflicts += concurrency;
        println!(
            "{:<20} {:>12} {:>9.2} {:>5} {:>5} {:>5} {:>12} {:>9} {:>6.2} s",
            name,
            sorted.len(),
            f64::from(total) / sorted.len().max(1) as f64,
            percentile(&sorted, 0.5),
            percentile(&sorted, 0.9),
            sorted.last().copied().unwrap_or(0),
            concurrency,
            t.given_up,
            took.as_secs_f64()
        );
        let expected = (TASKS * INCREMENTS) as i64;
        if count != expected {
            failures.push(format!(
                "{name}: the counter is {count}, expected {expected}"
            ));
        }
        let other: u32 = t.retries.iter().sum::<u32>() - concurrency;
        if other > 0 {
            failures.push(format!(
                "{name}: {other} retries of errors other than serialization failures (first error: {:?})",
                t.first_error
            ));
        }
        if let Some(text) = &t.first_error {
            println!("{:<20} first error: {text}", "");
        }
    }
    admin.batch_execute(&format!("DROP TABLE {table}")).await?;
    if conflicts == 0 {
        failures.push("no serialization failure happened, so nothing was retried".to_owned());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}
