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
//! Both statements are prepared once per connection, so an attempt is
//! exactly two round trips: the read, then the write.
//!
//! The simulator's `contention` model is the same thing in virtual time,
//! with the attempt's anatomy: `round_trips = 2`, each crossing a request
//! leg, the service's work and a response leg; the version is read when
//! the read arrives at the service and written when the write's work
//! ends. The legs are fitted to round trips measured at an idle server
//! (one client) before the experiment: an empty statement's round trip
//! gives the two network legs, and the read's and the write's round
//! trips, less that, the service's work.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reflexio::{ErrorClass, RetryConfig, RetryPolicyBuilder};
use reflexio_sim::scenario::Scenario;

use crate::load::{self, Attempt, CallOutcome, PolicyRun};
use crate::measure::policies_toml;

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

/// A failed attempt: a write conflict, or the database refused or did
/// not answer in time.
#[derive(Debug)]
enum Failed {
    Conflict,
    Database(String),
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
        // for this experiment): not something to retry blindly, and not
        // a measurement either: the experiment stops with it.
        Failed::Database(_) => ErrorClass::Permanent,
    }
}

/// The longest the experiment waits for the server to accept a
/// connection, prepare a statement or answer one: an idle server on
/// loopback does each in about a millisecond, so a server that takes
/// this long has stopped answering, and the experiment stops rather
/// than wait for ever.
const PATIENCE: Duration = Duration::from_secs(10);

/// `error` and the errors under it, outermost first: tokio-postgres says
/// only "db error" and keeps the server's own message in its source.
fn explain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut under = error.source();
    while let Some(e) = under {
        text.push_str(&format!(": {e}"));
        under = e.source();
    }
    text
}

/// `work`, or an error saying that the server did not answer `what`
/// within `limit`.
async fn within<T, E: std::error::Error>(
    limit: Duration,
    what: &str,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, work).await {
        Ok(done) => done.map_err(|e| format!("{what}: {}", explain(&e))),
        Err(_) => Err(format!(
            "{what}: the server did not answer within {limit:?}"
        )),
    }
}

/// Whether every address `config` connects to is on this machine: a
/// loopback address, `localhost`, or a Unix socket. The experiment loads
/// the server for minutes, and the simulator's legs are fitted to
/// loopback round trips.
fn on_loopback(config: &tokio_postgres::Config) -> bool {
    use tokio_postgres::config::Host;

    // `hostaddr`, where given, is what the connection uses; `host` then
    // only names the server.
    let addrs = config.get_hostaddrs();
    if !addrs.is_empty() {
        return addrs.iter().all(|a| a.is_loopback());
    }
    let hosts = config.get_hosts();
    !hosts.is_empty()
        && hosts.iter().all(|h| match h {
            Host::Tcp(name) => {
                name == "localhost"
                    || name
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|a| a.is_loopback())
            }
            #[cfg(unix)]
            Host::Unix(_) => true,
        })
}

/// Connects to `url` (`DATABASE_URL`). An error does not quote the URL:
/// it may hold a password, and the message goes to logs.
async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    connect_within(url, PATIENCE).await
}

const CANNOT_CONNECT: &str = "cannot connect to the server DATABASE_URL names";

/// `url` (`DATABASE_URL`) read, and refused unless it names a server on
/// this machine. An error does not quote the URL.
fn parse_url(url: &str) -> Result<tokio_postgres::Config, String> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("{CANNOT_CONNECT}: {}", explain(&e)))?;
    if !on_loopback(&config) {
        return Err(format!(
            "{CANNOT_CONNECT}: it is not on this machine; the contention experiment loads its \
             server and fits the simulator to loopback round trips, so DATABASE_URL must name \
             127.0.0.1, ::1, localhost or a Unix socket"
        ));
    }
    Ok(config)
}

/// Whether `url` (`DATABASE_URL`) is one the experiment may use: it
/// parses and names a server on this machine.
pub fn check_url(url: &str) -> Result<(), String> {
    parse_url(url).map(|_| ())
}

/// [`connect`], waiting at most `limit` for the server.
async fn connect_within(url: &str, limit: Duration) -> Result<tokio_postgres::Client, String> {
    let config = parse_url(url)?;
    let what = CANNOT_CONNECT;
    let (client, connection) = within(limit, what, config.connect(tokio_postgres::NoTls)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A client's connection with its statements prepared, so that each
/// statement is one round trip.
struct Session {
    db: tokio_postgres::Client,
    read: tokio_postgres::Statement,
    write: tokio_postgres::Statement,
    empty: tokio_postgres::Statement,
}

impl Session {
    async fn open(url: &str) -> Result<Session, String> {
        let db = connect(url).await?;
        let prepare = async |sql: &str| {
            within(
                PATIENCE,
                &format!("cannot prepare `{sql}`"),
                db.prepare(sql),
            )
            .await
        };
        let read = prepare("SELECT value, version FROM reflexio_hot_row WHERE id = 1").await?;
        let write = prepare(
            "UPDATE reflexio_hot_row SET value = $1, version = version + 1 WHERE id = 1 AND version = $2",
        )
        .await?;
        let empty = prepare("SELECT 1").await?;
        Ok(Session {
            db,
            read,
            write,
            empty,
        })
    }
}

/// An attempt's two round trips, as the client timed them.
#[derive(Debug, Clone, Copy)]
pub struct RoundTrips {
    /// The read's round trip.
    pub read: Duration,
    /// The write's round trip, if the read succeeded.
    pub write: Option<Duration>,
    /// Whether the attempt was its call's first.
    pub first: bool,
}

/// Round trips timed at the idle server, one client.
#[derive(Debug, Clone, Default)]
pub struct Calibration {
    /// Empty statements (`SELECT 1`): the two network legs and the least
    /// work a statement costs.
    pub empty: Vec<Duration>,
    /// Transactions.
    pub transactions: Vec<RoundTrips>,
}

/// Everything the contention experiment measured.
pub struct Measurement {
    /// One run per policy.
    pub runs: Vec<PolicyRun>,
    /// Each policy's attempts' round trips, in the order of `runs`.
    pub round_trips: Vec<Vec<RoundTrips>>,
    /// The idle server's round trips.
    pub idle: Calibration,
}

/// Times `n` empty statements and `n` transactions at the idle server,
/// after as many untimed ones (a fresh server process plans, caches and
/// allocates on its first statements).
async fn calibrate(url: &str, n: u64) -> Result<Calibration, String> {
    let session = Session::open(url).await?;
    for _ in 0..n {
        within(
            PATIENCE,
            "cannot run an empty statement",
            session.db.query_one(&session.empty, &[]),
        )
        .await?;
        increment(&session)
            .await
            .0
            .map_err(|e| format!("an idle transaction failed: {e}"))?;
    }
    let mut out = Calibration::default();
    for _ in 0..n {
        let sent = Instant::now();
        within(
            PATIENCE,
            "cannot time an empty statement",
            session.db.query_one(&session.empty, &[]),
        )
        .await?;
        out.empty.push(sent.elapsed());
        let (result, trips) = increment(&session).await;
        result.map_err(|e| format!("an idle transaction failed: {e}"))?;
        out.transactions.push(trips);
    }
    Ok(out)
}

const CREATE: &str = "DROP TABLE IF EXISTS reflexio_hot_row;
     CREATE TABLE reflexio_hot_row (id int PRIMARY KEY, value bigint NOT NULL, version bigint NOT NULL);
     INSERT INTO reflexio_hot_row VALUES (1, 0, 0);";

/// Times `n` empty statements and `n` transactions at the idle server, one
/// client, on a fresh table.
pub async fn measure_idle(url: &str, n: u64) -> Result<Calibration, String> {
    let admin = connect(url).await?;
    within(
        PATIENCE,
        "cannot create the hot row",
        admin.batch_execute(CREATE),
    )
    .await?;
    calibrate(url, n).await
}

/// Runs every policy against the table, fresh for each; `idle` is the
/// idle server's round trips, which the scenario's legs are fitted to.
pub async fn measure(url: &str, setup: &Setup, idle: Calibration) -> Result<Measurement, String> {
    let scenario = policies()?;
    let admin = connect(url).await?;
    let mut out = Vec::new();
    let mut round_trips = Vec::new();
    for policy in &scenario.policies {
        within(
            PATIENCE,
            "cannot create the hot row",
            admin.batch_execute(CREATE),
        )
        .await?;
        let (run, trips) = measure_policy(url, setup, &policy.name, &policy.config).await?;
        let row = within(
            PATIENCE,
            "cannot read the hot row",
            admin.query_one("SELECT value FROM reflexio_hot_row WHERE id = 1", &[]),
        )
        .await?;
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
        round_trips.push(trips);
    }
    within(
        PATIENCE,
        "cannot drop the hot row",
        admin.batch_execute("DROP TABLE IF EXISTS reflexio_hot_row"),
    )
    .await?;
    Ok(Measurement {
        runs: out,
        round_trips,
        idle,
    })
}

async fn measure_policy(
    url: &str,
    setup: &Setup,
    name: &str,
    config: &RetryConfig,
) -> Result<(PolicyRun, Vec<RoundTrips>), String> {
    let late = load::Oversleeps::default();
    let policy = RetryPolicyBuilder::from_config(config)
        .map_err(|e| format!("policy {name}: {e}"))?
        .classifier(classify)
        .sleeper(late.sleeper())
        .build()
        .map_err(|e| format!("policy {name}: {e}"))?;
    let mut clients = Vec::new();
    for _ in 0..setup.clients {
        clients.push(Arc::new(Session::open(url).await?));
    }
    let origin = Instant::now();
    let log: Arc<Mutex<Vec<(Attempt, RoundTrips)>>> = Arc::default();
    // The first error of the database itself: the experiment's failure,
    // not a call's, so every client stops and no metric is reported.
    let broken: Arc<Mutex<Option<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for (c, db) in clients.into_iter().enumerate() {
        let policy = policy.clone();
        let log = Arc::clone(&log);
        let broken = Arc::clone(&broken);
        let calls = setup.calls_per_client;
        let clients = setup.clients;
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for k in 0..calls {
                if lock(&broken).is_some() {
                    break;
                }
                // Client c makes calls c, c + clients, ... as the
                // simulator's closed loop numbers them.
                let call = (c as u64 + k * clients) as usize;
                let start = Instant::now();
                let mut attempts = 0u32;
                let busy = Arc::new(AtomicU64::new(0));
                let outcome = policy
                    .call_async(|| {
                        attempts += 1;
                        let first = attempts == 1;
                        let db = Arc::clone(&db);
                        let log = Arc::clone(&log);
                        let busy = Arc::clone(&busy);
                        let broken = Arc::clone(&broken);
                        async move {
                            let sent = Instant::now();
                            let (result, mut trips) = increment(&db).await;
                            trips.first = first;
                            let took = sent.elapsed();
                            busy.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
                            if let Ok(mut log) = log.lock() {
                                let attempt = Attempt {
                                    sent: sent.saturating_duration_since(origin),
                                    took,
                                    status: Some(if result.is_ok() { 200 } else { 409 }),
                                };
                                log.push((attempt, trips));
                            }
                            if let Err(Failed::Database(e)) = &result {
                                lock(&broken).get_or_insert_with(|| e.clone());
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
    if let Some(e) = lock(&broken).take() {
        return Err(format!("policy {name}: {e}"));
    }
    let log = std::mem::take(&mut *lock(&log));
    let (attempts, trips): (Vec<Attempt>, Vec<RoundTrips>) = log.into_iter().unzip();
    let mut run = load::tally(name, &outcomes, attempts);
    run.oversleeps = late.take();
    Ok((run, trips))
}

/// `mutex`'s value, even if a thread panicked holding it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One attempt: read the row's version, write if it has not changed; and
/// the two round trips it took.
async fn increment(session: &Session) -> (Result<(), Failed>, RoundTrips) {
    let sent = Instant::now();
    let read = within(
        PATIENCE,
        "cannot read the hot row",
        session.db.query_one(&session.read, &[]),
    )
    .await;
    let mut trips = RoundTrips {
        read: sent.elapsed(),
        write: None,
        first: true,
    };
    let row = match read {
        Ok(row) => row,
        Err(e) => return (Err(Failed::Database(e)), trips),
    };
    let value: i64 = row.get(0);
    let version: i64 = row.get(1);
    let sent = Instant::now();
    let written = within(
        PATIENCE,
        "cannot write the hot row",
        session
            .db
            .execute(&session.write, &[&(value + 1), &version]),
    )
    .await;
    trips.write = Some(sent.elapsed());
    let result = match written {
        Ok(1) => Ok(()),
        Ok(_) => Err(Failed::Conflict),
        Err(e) => Err(Failed::Database(e)),
    };
    (result, trips)
}

/// The legs of one round trip. Their sum is fitted to the round trips
/// measured in the experiment itself, from its calls' first attempts (so
/// that every policy weighs the same, however many retries it makes): the
/// median of the reads and writes together (the scenario draws every
/// round trip's legs from one distribution each), and a lognormal spread
/// from the 16th and 84th percentiles of each policy's, the median
/// policy's (a few round trips that the scheduler delayed by milliseconds
/// would otherwise dominate a fit of sub-millisecond times). The split into network and work comes from the
/// idle server: each network leg takes the share that half an empty
/// statement's round trip has of a read's or write's there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Legs {
    /// Each network leg's median.
    pub leg: Duration,
    /// The service's work: median.
    pub service: Duration,
    /// Every leg's lognormal sigma.
    pub sigma: f64,
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn pooled<'a>(trips: impl Iterator<Item = &'a RoundTrips>) -> Vec<Duration> {
    let mut v: Vec<Duration> = trips
        .flat_map(|t| std::iter::once(t.read).chain(t.write))
        .collect();
    v.sort();
    v
}

/// The share of a read's or write's round trip that each network leg
/// takes at `idle`: half an empty statement's round trip over the
/// median of the reads and writes (a half when nothing was timed).
fn network_share(idle: &Calibration) -> f64 {
    let mut empty = idle.empty.clone();
    empty.sort();
    let at_idle = pooled(idle.transactions.iter());
    let floor = quantile(&empty, 0.5).as_secs_f64();
    let idle_median = quantile(&at_idle, 0.5).as_secs_f64();
    if idle_median > 0.0 {
        (floor / 2.0 / idle_median).clamp(0.0, 0.5)
    } else {
        0.5
    }
}

/// The lognormal sigma of sorted round trips: half the log distance
/// between their 16th and 84th percentiles.
fn spread(trips: &[Duration]) -> f64 {
    let (lo, hi) = (quantile(trips, 0.1587), quantile(trips, 0.8413));
    if lo.is_zero() {
        0.0
    } else {
        ((hi.as_secs_f64() / lo.as_secs_f64()).ln() / 2.0).max(0.0)
    }
}

/// The middle of `values` (0 when empty), sorted in place.
fn middle(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Legs whose round trip has `median`, split by `share`, each with `sigma`.
fn split(median: Duration, share: f64, sigma: f64) -> Legs {
    let micro = Duration::from_micros(1);
    Legs {
        leg: median.mul_f64(share).max(micro),
        service: median.mul_f64(1.0 - 2.0 * share).max(micro),
        sigma,
    }
}

/// Fits [`Legs`] to the first attempts of `loaded` (every policy's round
/// trips), split as at `idle`.
pub fn fit_legs(idle: &Calibration, loaded: &[Vec<RoundTrips>]) -> Legs {
    let trips = pooled(loaded.iter().flatten().filter(|t| t.first));
    // The spread within a policy (the median policy's): pooled, the
    // policies' different loads would read as spread.
    let mut spreads: Vec<f64> = loaded
        .iter()
        .map(|p| spread(&pooled(p.iter().filter(|t| t.first))))
        .collect();
    split(
        quantile(&trips, 0.5),
        network_share(idle),
        middle(&mut spreads),
    )
}

/// Fits the legs of a retry (an attempt after a call's first) to the
/// retries of `loaded`, split as at `idle`; `None` if no policy retried.
/// The policies make very different numbers of retries (no backoff tens
/// of thousands, a backing-off policy a few hundred), so each policy
/// weighs the same: the median round trip is the median of the
/// policies' own medians, and the spread the median policy's.
pub fn fit_retry_legs(idle: &Calibration, loaded: &[Vec<RoundTrips>]) -> Option<Legs> {
    let retried: Vec<Vec<Duration>> = loaded
        .iter()
        .map(|p| pooled(p.iter().filter(|t| !t.first)))
        .filter(|trips| !trips.is_empty())
        .collect();
    if retried.is_empty() {
        return None;
    }
    let mut medians: Vec<f64> = retried
        .iter()
        .map(|t| quantile(t, 0.5).as_secs_f64())
        .collect();
    let mut spreads: Vec<f64> = retried.iter().map(|t| spread(t)).collect();
    Some(split(
        Duration::from_secs_f64(middle(&mut medians)),
        network_share(idle),
        middle(&mut spreads),
    ))
}

/// One kind of attempt (a call's first, or a retry) of one policy's run:
/// how many there were, how many met a write conflict, and the medians of
/// their round trips.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttemptKind {
    /// Attempts of this kind.
    pub count: usize,
    /// Those that met a write conflict.
    pub conflicts: usize,
    /// Median round trip of their reads, us.
    pub read_us: f64,
    /// Median round trip of their writes, us.
    pub write_us: f64,
}

impl AttemptKind {
    /// The share of these attempts that met a write conflict (0 when
    /// there were none).
    pub fn conflict_share(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.conflicts as f64 / self.count as f64
        }
    }
}

/// The calls' first attempts and their retries, told apart: `attempts`
/// and `trips` are one policy's run, attempt for attempt (a status of 409
/// is a write conflict).
pub fn first_and_retries(attempts: &[Attempt], trips: &[RoundTrips]) -> [AttemptKind; 2] {
    [true, false].map(|first| {
        let of_kind = || {
            attempts
                .iter()
                .zip(trips)
                .filter(move |(_, t)| t.first == first)
        };
        AttemptKind {
            count: of_kind().count(),
            conflicts: of_kind().filter(|(a, _)| a.status == Some(409)).count(),
            read_us: median_us(of_kind().map(|(_, t)| t.read)),
            write_us: median_us(of_kind().filter_map(|(_, t)| t.write)),
        }
    })
}

/// Median of `samples`, in microseconds (0 when empty).
pub fn median_us(samples: impl Iterator<Item = Duration>) -> f64 {
    let mut v: Vec<Duration> = samples.collect();
    v.sort();
    v.get(v.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// The scenario the simulator predicts from: a closed loop of the same
/// clients and calls, one contended row, each attempt two round trips
/// whose legs are fitted as [`Legs`] says, and the same policies.
pub fn equivalent_scenario(setup: &Setup, measured: &Measurement) -> Result<String, String> {
    // Legs fitted to nothing would be 1 us each: a prediction nobody
    // measured.
    if !measured.round_trips.iter().flatten().any(|t| t.first) {
        return Err(
            "contention: no first attempt was timed, so there are no round trips to fit the \
             simulator's legs to"
                .to_owned(),
        );
    }
    if measured.idle.empty.is_empty() || measured.idle.transactions.is_empty() {
        return Err(
            "contention: the idle server was not timed, so the round trips cannot be split into \
             network legs and the service's work"
                .to_owned(),
        );
    }
    let legs = fit_legs(&measured.idle, &measured.round_trips);
    let retry = match fit_retry_legs(&measured.idle, &measured.round_trips) {
        Some(r) => {
            let retries = measured.round_trips.iter().flatten().filter(|t| !t.first);
            format!(
                r#"
# A retry, after its sleep, takes longer than a first attempt: its legs
# are fitted the same way to the {n} retries of this experiment, each
# policy alike (the median of the policies' own median round trips), and
# split as the first attempt's.
[latency.retry]
request = {{ distribution = "lognormal", median = "{leg}us", sigma = {sigma:.4} }}
service = {{ distribution = "lognormal", median = "{service}us", sigma = {sigma:.4} }}
response = {{ distribution = "lognormal", median = "{leg}us", sigma = {sigma:.4} }}
"#,
                n = retries.count(),
                leg = r.leg.as_micros(),
                service = r.service.as_micros(),
                sigma = r.sigma,
            )
        }
        None => {
            "\n# No call was retried: a retry would draw the first attempt's legs.\n".to_owned()
        }
    };
    let firsts = || measured.round_trips.iter().flatten().filter(|t| t.first);
    let loaded_reads = median_us(firsts().map(|t| t.read));
    let loaded_writes = median_us(firsts().filter_map(|t| t.write));
    let reads = median_us(measured.idle.transactions.iter().map(|t| t.read));
    let writes = median_us(measured.idle.transactions.iter().filter_map(|t| t.write));
    let empty = median_us(measured.idle.empty.iter().copied());
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

# An attempt is a read then a write: two round trips. Their sum is fitted
# to the calls' first attempts in this experiment (every policy alike):
# medians {loaded_reads:.0} us for the read, {loaded_writes:.0} us for the write. The split into
# network legs and the service's work is the idle server's ({n} of each
# timed with one client: medians {empty:.0} us for an empty statement, {reads:.0} us
# for the read, {writes:.0} us for the write): each network leg takes the share
# half an empty statement's round trip has there. Every leg has the spread
# of a policy's first round trips (the median policy's).
[latency]
round_trips = 2
request = {{ distribution = "lognormal", median = "{leg}us", sigma = {sigma:.4} }}
service = {{ distribution = "lognormal", median = "{service}us", sigma = {sigma:.4} }}
response = {{ distribution = "lognormal", median = "{leg}us", sigma = {sigma:.4} }}
{retry}
[[failures]]
model = "contention"
rows = 1

{client}{policies}"#,
        clients = setup.clients,
        seed = setup.seed,
        calls = setup.clients * setup.calls_per_client,
        n = measured.idle.transactions.len(),
        leg = legs.leg.as_micros(),
        service = legs.service.as_micros(),
        sigma = legs.sigma,
        client = load::client_table(&measured.runs),
        policies = policies_toml(&policies()?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_connection_does_not_print_the_password() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Port 1 on loopback: refused at once, no server needed.
        for url in [
            "postgres://user:s3cret@127.0.0.1:1/db",
            "host=127.0.0.1 port=1 user=user password=s3cret dbname=db",
            "postgres://user:s3cret@[::1",
        ] {
            let Err(e) = runtime.block_on(connect(url)) else {
                panic!("connected to {url}");
            };
            assert!(!e.contains("s3cret"), "{e}");
            assert!(e.contains("DATABASE_URL"), "{e}");
        }
    }

    #[test]
    fn only_a_server_on_this_machine_is_loaded() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for url in [
            "postgres://user:s3cret@db.example.com:5432/db",
            "postgres://user@10.1.2.3/db",
            "host=127.0.0.1,db.example.com user=user",
            "host=localhost hostaddr=192.0.2.7 user=user",
        ] {
            let Err(e) = runtime.block_on(connect(url)) else {
                panic!("connected to {url}");
            };
            assert!(e.contains("127.0.0.1"), "{url}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
        for url in [
            "postgres://user@127.0.0.1:5432/db",
            "postgres://user@localhost/db",
            "postgres://user@[::1]:5432/db",
            "host=/tmp user=user",
        ] {
            let config: tokio_postgres::Config = url.parse().unwrap();
            assert!(on_loopback(&config), "{url}");
        }
    }

    #[test]
    fn a_server_that_never_answers_does_not_hang_the_experiment() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // Accepts connections and never says a word.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let silent = tokio::spawn(async move {
                let mut held = Vec::new();
                while let Ok((socket, _)) = listener.accept().await {
                    held.push(socket);
                }
            });
            let url = format!("postgres://user@127.0.0.1:{port}/db");
            let started = std::time::Instant::now();
            let waited = tokio::time::timeout(
                Duration::from_secs(30),
                connect_within(&url, Duration::from_millis(300)),
            )
            .await;
            let Ok(Err(e)) = waited else {
                panic!("still waiting for a silent server after 30 s");
            };
            assert!(e.contains("did not answer"), "{e}");
            assert!(started.elapsed() < Duration::from_secs(30));
            silent.abort();
        });
    }

    /// A stand-in for PostgreSQL on 127.0.0.1 that speaks just enough of
    /// the wire protocol for a `Session` to connect and prepare its
    /// statements, and then answers every statement with an error (the
    /// server shutting down). Returns its URL.
    fn failing_server() -> String {
        use std::io::{Read, Write};

        fn message(kind: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![kind];
            out.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
            out.extend_from_slice(body);
            out
        }
        fn column(name: &str, oid: i32) -> Vec<u8> {
            let mut out = name.as_bytes().to_vec();
            out.push(0);
            out.extend_from_slice(&0i32.to_be_bytes()); // table
            out.extend_from_slice(&0i16.to_be_bytes()); // attribute
            out.extend_from_slice(&oid.to_be_bytes());
            out.extend_from_slice(&8i16.to_be_bytes()); // length
            out.extend_from_slice(&(-1i32).to_be_bytes()); // modifier
            out.extend_from_slice(&0i16.to_be_bytes()); // text format
            out
        }
        const SHUTTING_DOWN: &[u8] = b"SFATAL\0VFATAL\0C57P01\0\
            Mterminating connection due to administrator command\0\0";
        fn serve(mut socket: std::net::TcpStream) -> std::io::Result<()> {
            let mut len = [0u8; 4];
            socket.read_exact(&mut len)?;
            let mut startup = vec![0u8; i32::from_be_bytes(len) as usize - 4];
            socket.read_exact(&mut startup)?;
            socket.write_all(&message(b'R', &0i32.to_be_bytes()))?;
            socket.write_all(&message(b'Z', b"I"))?;
            let mut last_query = String::new();
            loop {
                let mut head = [0u8; 5];
                socket.read_exact(&mut head)?;
                let mut body =
                    vec![
                        0u8;
                        i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize - 4
                    ];
                socket.read_exact(&mut body)?;
                let reply = match head[0] {
                    b'P' => {
                        let fields: Vec<&[u8]> = body.splitn(3, |b| *b == 0).collect();
                        last_query = String::from_utf8_lossy(fields[1]).into_owned();
                        message(b'1', &[])
                    }
                    b'D' => {
                        let (params, columns): (&[i32], Vec<Vec<u8>>) =
                            if last_query.starts_with("UPDATE") {
                                (&[20, 20], Vec::new())
                            } else if last_query.contains("value, version") {
                                (&[], vec![column("value", 20), column("version", 20)])
                            } else {
                                (&[], vec![column("?column?", 23)])
                            };
                        let mut t = (params.len() as i16).to_be_bytes().to_vec();
                        for oid in params {
                            t.extend_from_slice(&oid.to_be_bytes());
                        }
                        let mut out = message(b't', &t);
                        if columns.is_empty() {
                            out.extend(message(b'n', &[]));
                        } else {
                            let mut r = (columns.len() as i16).to_be_bytes().to_vec();
                            r.extend(columns.concat());
                            out.extend(message(b'T', &r));
                        }
                        out
                    }
                    // Every statement fails; what follows up to the Sync
                    // is ignored, as a server does after an error.
                    b'B' => message(b'E', SHUTTING_DOWN),
                    b'S' => message(b'Z', b"I"),
                    b'X' => return Ok(()),
                    _ => Vec::new(),
                };
                socket.write_all(&reply)?;
            }
        }

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for socket in listener.incoming().flatten() {
                std::thread::spawn(move || serve(socket));
            }
        });
        format!("postgres://user@127.0.0.1:{port}/db?sslmode=disable")
    }

    #[test]
    fn an_error_of_the_database_fails_the_experiment_not_the_calls() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = failing_server();
        let scenario = policies().unwrap();
        let policy = &scenario.policies[1];
        let setup = Setup::smoke(2);
        let result = runtime.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(30),
                measure_policy(&url, &setup, &policy.name, &policy.config),
            )
            .await
        });
        let Ok(result) = result else {
            panic!("still running after 30 s");
        };
        let Err(e) = result else {
            panic!("the failed statements were counted as failed calls");
        };
        assert!(e.contains("terminating connection"), "{e}");
        assert!(e.contains(&policy.name), "{e}");
    }

    #[test]
    fn no_legs_are_made_up_when_nothing_was_timed() {
        let us = Duration::from_micros;
        let trip = RoundTrips {
            read: us(100),
            write: Some(us(120)),
            first: true,
        };
        let idle = Calibration {
            empty: vec![us(50)],
            transactions: vec![trip],
        };
        let nothing = Measurement {
            runs: Vec::new(),
            round_trips: Vec::new(),
            idle: idle.clone(),
        };
        let e = equivalent_scenario(&Setup::smoke(10), &nothing).unwrap_err();
        assert!(e.contains("no first attempt"), "{e}");
        let no_idle = Measurement {
            runs: Vec::new(),
            round_trips: vec![vec![trip]],
            idle: Calibration::default(),
        };
        let e = equivalent_scenario(&Setup::smoke(10), &no_idle).unwrap_err();
        assert!(e.contains("idle server"), "{e}");
        let timed = Measurement {
            runs: Vec::new(),
            round_trips: vec![vec![trip]],
            idle,
        };
        let text = equivalent_scenario(&Setup::smoke(10), &timed).unwrap();
        assert!(text.contains("No call was retried"), "{text}");
        assert!(!text.contains("[latency.retry]"), "{text}");
        reflexio_sim::Scenario::from_toml_str(&text, "equivalent.toml").unwrap();
        // Retries timed too: the scenario gives them legs of their own,
        // which the simulator reads.
        let retry = RoundTrips {
            read: us(600),
            write: Some(us(700)),
            first: false,
        };
        let retried = Measurement {
            runs: Vec::new(),
            round_trips: vec![vec![trip, retry]],
            idle: timed.idle.clone(),
        };
        let text = equivalent_scenario(&Setup::smoke(10), &retried).unwrap();
        let scenario = reflexio_sim::Scenario::from_toml_str(&text, "equivalent.toml").unwrap();
        let l = &scenario.latency;
        let r = l.retry.expect("the scenario has retry legs");
        let first = l.request.mean_ns() + l.service.mean_ns() + l.response.mean_ns();
        let again = r.request.mean_ns() + r.service.mean_ns() + r.response.mean_ns();
        assert!(again > 5.0 * first, "{first} ns, then {again} ns");
    }

    #[test]
    fn legs_split_a_round_trip_into_network_and_work() {
        let us = Duration::from_micros;
        let trip = |read: u64, write: u64, first: bool| RoundTrips {
            read: us(read),
            write: Some(us(write)),
            first,
        };
        // At the idle server, an empty statement takes 100 us and a read
        // or write 200 (median): each network leg is a quarter of a trip.
        let idle = Calibration {
            empty: vec![us(100); 5],
            transactions: vec![trip(150, 250, true), trip(200, 200, true)],
        };
        // Under load, first attempts take 60, 80, 80, 100 us; a retry's
        // 1000 us is left out.
        let loaded = vec![
            vec![trip(60, 80, true), trip(1000, 1000, false)],
            vec![trip(80, 100, true)],
        ];
        let legs = fit_legs(&idle, &loaded);
        assert_eq!(legs.leg, us(20));
        assert_eq!(legs.service, us(40));
        // Spreads: 60..80 for one policy, 80..100 for the other (16th
        // and 84th percentiles of two); the median of the two is the
        // wider, 60..80.
        assert!((legs.sigma - (80.0f64 / 60.0).ln() / 2.0).abs() < 1e-9);
        assert_eq!(median_us(idle.empty.iter().copied()), 100.0);
        // Nothing measured: legs of 1 us, no spread.
        let none = fit_legs(&Calibration::default(), &[]);
        assert_eq!((none.leg, none.service, none.sigma), (us(1), us(1), 0.0));
    }

    #[test]
    fn first_attempts_and_retries_are_told_apart() {
        let us = Duration::from_micros;
        let attempt = |status: u16| Attempt {
            sent: Duration::ZERO,
            took: Duration::ZERO,
            status: Some(status),
        };
        let trip = |read: u64, write: Option<u64>, first: bool| RoundTrips {
            read: us(read),
            write: write.map(us),
            first,
        };
        // Three first attempts (one conflict) and two retries (both
        // conflicts); the second retry's read alone was timed.
        let attempts = [
            attempt(200),
            attempt(409),
            attempt(409),
            attempt(200),
            attempt(409),
        ];
        let trips = [
            trip(50, Some(60), true),
            trip(400, Some(500), false),
            trip(70, Some(80), true),
            trip(40, Some(70), true),
            trip(900, None, false),
        ];
        let [first, retry] = first_and_retries(&attempts, &trips);
        assert_eq!(
            first,
            AttemptKind {
                count: 3,
                conflicts: 1,
                read_us: 50.0,
                write_us: 70.0,
            }
        );
        assert_eq!(
            retry,
            AttemptKind {
                count: 2,
                conflicts: 2,
                read_us: 900.0,
                write_us: 500.0,
            }
        );
        assert!((first.conflict_share() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(retry.conflict_share(), 1.0);
        // No retries at all: nothing divided by zero.
        let [_, none] = first_and_retries(&attempts[..1], &trips[..1]);
        assert_eq!((none.count, none.conflict_share()), (0, 0.0));
    }

    #[test]
    fn retry_legs_weigh_each_policy_alike() {
        let us = Duration::from_micros;
        let trip = |both: u64, first: bool| RoundTrips {
            read: us(both),
            write: Some(us(both)),
            first,
        };
        // Idle: each network leg a quarter of a round trip.
        let idle = Calibration {
            empty: vec![us(100); 5],
            transactions: vec![trip(200, true); 3],
        };
        // One policy retried once (1000 us), one a hundred times (200
        // us), one three times (300 us), one never: the median policy's
        // median is 300 us, however many retries the second made.
        let mut many = vec![trip(50, true)];
        many.extend(std::iter::repeat_n(trip(200, false), 100));
        let loaded = vec![
            vec![trip(50, true), trip(1000, false)],
            many,
            vec![
                trip(50, true),
                trip(300, false),
                trip(300, false),
                trip(300, false),
            ],
            vec![trip(50, true)],
        ];
        let legs = fit_retry_legs(&idle, &loaded).unwrap();
        assert_eq!((legs.leg, legs.service), (us(75), us(150)));
        // Every policy's retries alike: no spread.
        assert_eq!(legs.sigma, 0.0);
        // The first attempts' legs are fitted to first attempts alone.
        assert_eq!(fit_legs(&idle, &loaded).leg, Duration::from_nanos(12_500));
        // No retry at all: no retry legs.
        assert_eq!(fit_retry_legs(&idle, &[vec![trip(50, true)]]), None);
    }
}
