//! The hot-row contention experiment, against a real PostgreSQL.
//!
//! N clients, each with its own connection, increment one row with an
//! optimistic read-then-write: `SELECT value, version`, then `UPDATE ...
//! WHERE version = $read`. An update that finds the version changed
//! touched no row: a write conflict, classified `concurrency` and retried
//! by the policy. Each client makes its calls back to back (a closed
//! loop). The final value must equal the number of successful calls (no
//! lost update), or the experiment fails.
//!
//! The simulator's `contention` model is the same thing in virtual time:
//! an attempt reads the row's version when it starts and writes when it
//! ends; a write after someone else's fails with `concurrency`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reflexio::{ErrorClass, RetryConfig, RetryPolicyBuilder};
use reflexio_sim::scenario::Scenario;

use crate::load::{self, Attempt, CallOutcome, PolicyRun};
use crate::measure::{fit_lognormal, policies_toml};

/// The experiment's knobs.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Concurrent clients, each with its own connection.
    pub clients: u64,
    /// Calls each client makes, back to back.
    pub calls_per_client: u64,
    /// Simulator runs averaged for the prediction.
    pub sim_runs: u32,
    /// Seed of the simulator's runs.
    pub seed: u64,
}

impl Setup {
    /// The full experiment at `clients` clients.
    pub fn full(clients: u64) -> Setup {
        Setup {
            clients,
            calls_per_client: 40,
            sim_runs: 20,
            seed: 7,
        }
    }

    /// The smoke run for CI at `clients` clients.
    pub fn smoke(clients: u64) -> Setup {
        Setup {
            calls_per_client: 8,
            sim_runs: 8,
            ..Setup::full(clients)
        }
    }
}

/// The policies compared: no backoff, and four strategies from 5 ms up
/// to 1 s; 50 attempts and a 60 s deadline each, so that contention
/// rather than the cap decides.
pub const POLICIES: &str = r#"
[policies.no-backoff]
max_attempts = 50
strategy = { kind = "constant", base = "1ns" }

[policies.exponential]
max_attempts = 50
strategy = { kind = "exponential", base = "5ms", max = "1s" }

[policies.full-jitter]
max_attempts = 50
strategy = { kind = "full_jitter", base = "5ms", max = "1s" }

[policies.equal-jitter]
max_attempts = 50
strategy = { kind = "equal_jitter", base = "5ms", max = "1s" }

[policies.decorrelated-jitter]
max_attempts = 50
strategy = { kind = "decorrelated_jitter", base = "5ms", max = "1s" }
"#;

fn policies() -> Result<Scenario, String> {
    let text = format!("name = \"contention-policies\"\n[workload]\ncalls = 1\n{POLICIES}");
    Scenario::from_toml_str(&text, "validate/src/contention.rs").map_err(|e| e.to_string())
}

/// A failed attempt: a write conflict, or the database refused.
#[derive(Debug)]
enum Failed {
    Conflict,
    Database(tokio_postgres::Error),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Conflict => f.write_str("the row's version changed since it was read"),
            Failed::Database(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Failed {}

fn classify(e: &Failed) -> ErrorClass {
    match e {
        Failed::Conflict => ErrorClass::Concurrency,
        // An error of the database itself (it is on loopback and idle but
        // for this experiment): not something to retry blindly.
        Failed::Database(_) => ErrorClass::Permanent,
    }
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Runs every policy against the table, fresh for each.
pub async fn measure(url: &str, setup: &Setup) -> Result<Vec<PolicyRun>, String> {
    let scenario = policies()?;
    let admin = connect(url).await?;
    let mut out = Vec::new();
    for policy in &scenario.policies {
        admin
            .batch_execute(
                "DROP TABLE IF EXISTS reflexio_hot_row;
                 CREATE TABLE reflexio_hot_row (id int PRIMARY KEY, value bigint NOT NULL, version bigint NOT NULL);
                 INSERT INTO reflexio_hot_row VALUES (1, 0, 0);",
            )
            .await
            .map_err(|e| format!("cannot create the hot row: {e}"))?;
        let run = measure_policy(url, setup, &policy.name, &policy.config).await?;
        let row = admin
            .query_one("SELECT value FROM reflexio_hot_row WHERE id = 1", &[])
            .await
            .map_err(|e| format!("cannot read the hot row: {e}"))?;
        let value: i64 = row.get(0);
        let successes = (run.measured.success_rate
            * (setup.clients * setup.calls_per_client) as f64)
            .round() as i64;
        if value != successes {
            return Err(format!(
                "policy {}: the row holds {value} increments but {successes} calls succeeded: a lost or phantom update",
                policy.name
            ));
        }
        out.push(run);
    }
    admin
        .batch_execute("DROP TABLE IF EXISTS reflexio_hot_row")
        .await
        .map_err(|e| format!("cannot drop the hot row: {e}"))?;
    Ok(out)
}

async fn measure_policy(
    url: &str,
    setup: &Setup,
    name: &str,
    config: &RetryConfig,
) -> Result<PolicyRun, String> {
    let policy = RetryPolicyBuilder::from_config(config)
        .map_err(|e| format!("policy {name}: {e}"))?
        .classifier(classify)
        .sleeper(reflexio::TokioSleeper::new())
        .build()
        .map_err(|e| format!("policy {name}: {e}"))?;
    let mut clients = Vec::new();
    for _ in 0..setup.clients {
        clients.push(Arc::new(connect(url).await?));
    }
    let origin = Instant::now();
    let log: Arc<Mutex<Vec<Attempt>>> = Arc::default();
    let mut tasks = Vec::new();
    for (c, db) in clients.into_iter().enumerate() {
        let policy = policy.clone();
        let log = Arc::clone(&log);
        let calls = setup.calls_per_client;
        let clients = setup.clients;
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for k in 0..calls {
                // Client c makes calls c, c + clients, ... as the
                // simulator's closed loop numbers them.
                let call = (c as u64 + k * clients) as usize;
                let start = Instant::now();
                let mut attempts = 0u32;
                let busy = Arc::new(AtomicU64::new(0));
                let outcome = policy
                    .call_async(|| {
                        attempts += 1;
                        let db = Arc::clone(&db);
                        let log = Arc::clone(&log);
                        let busy = Arc::clone(&busy);
                        async move {
                            let sent = Instant::now();
                            let result = increment(&db).await;
                            let took = sent.elapsed();
                            busy.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
                            if let Ok(mut log) = log.lock() {
                                log.push(Attempt {
                                    sent: sent.saturating_duration_since(origin),
                                    took,
                                    status: Some(if result.is_ok() { 200 } else { 409 }),
                                });
                            }
                            result
                        }
                    })
                    .await;
                let latency = start.elapsed();
                outcomes.push(CallOutcome {
                    call,
                    end: start.saturating_duration_since(origin) + latency,
                    latency,
                    sleep: latency
                        .saturating_sub(Duration::from_nanos(busy.load(Ordering::Relaxed))),
                    attempts,
                    reason: outcome.as_ref().err().map(|e| e.reason()),
                });
            }
            outcomes
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.extend(t.await.map_err(|e| format!("a client task failed: {e}"))?);
    }
    let attempts = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(load::tally(name, &outcomes, attempts))
}

/// One attempt: read the row's version, write if it has not changed.
async fn increment(db: &tokio_postgres::Client) -> Result<(), Failed> {
    let row = db
        .query_one(
            "SELECT value, version FROM reflexio_hot_row WHERE id = 1",
            &[],
        )
        .await
        .map_err(Failed::Database)?;
    let value: i64 = row.get(0);
    let version: i64 = row.get(1);
    let written = db
        .execute(
            "UPDATE reflexio_hot_row SET value = $1, version = version + 1 WHERE id = 1 AND version = $2",
            &[&(value + 1), &version],
        )
        .await
        .map_err(Failed::Database)?;
    if written == 1 {
        Ok(())
    } else {
        Err(Failed::Conflict)
    }
}

/// The scenario the simulator predicts from: a closed loop of the same
/// clients and calls, one contended row, the latency of an attempt fitted
/// to the attempts measured (both round trips), and the same policies.
pub fn equivalent_scenario(setup: &Setup, runs: &[PolicyRun]) -> Result<String, String> {
    let all: Vec<Duration> = runs
        .iter()
        .flat_map(|r| &r.attempts)
        .map(|a| a.took)
        .collect();
    let (median, sigma) = fit_lognormal(&all);
    Ok(format!(
        r#"name = "validation-contention-{clients}"
description = "The contention validation experiment at {clients} clients, as a scenario."
seed = {seed}
bucket = "1s"

[workload]
calls = {calls}
arrival = "closed_loop"
clients = {clients}
think_time = "0s"

# fitted to the attempts measured (a read and a write round trip)
[latency]
distribution = "lognormal"
median = "{median}us"
sigma = {sigma:.4}

[[failures]]
model = "contention"
rows = 1

{policies}"#,
        clients = setup.clients,
        seed = setup.seed,
        calls = setup.clients * setup.calls_per_client,
        median = median.as_micros().max(1),
        policies = policies_toml(&policies()?),
    ))
}
