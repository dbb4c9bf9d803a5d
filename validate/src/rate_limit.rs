//! The HTTP rate-limit experiment.
//!
//! The service: an axum server on 127.0.0.1 behind a real token-bucket
//! limiter (governor's GCRA, 100 requests/s, burst 20). A request the
//! limiter refuses is answered at once with 429, a `Retry-After` header
//! (whole seconds, as HTTP has it) and a `Retry-After-Ms` header with the
//! exact wait until the next token; an admitted request works for a
//! lognormal time (median 40 ms, sigma 0.4) and then fails with 2 %
//! probability, half 503 (server_error), half 408 (transient).
//!
//! The load: Poisson calls at 150/s, each a production `RetryPolicy` built
//! from the bundled rate-limit scenario's policy tables, classifying the
//! status with the library's HTTP table and taking the millisecond hint.
//!
//! The prediction: the simulator, on the same scenario with the latency
//! refitted from the attempts measured here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use governor::clock::Clock as _;
use governor::{Quota, RateLimiter};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reflexio::{http_status_class, Classification, RetryConfig, RetryPolicyBuilder, TokioSleeper};
use reflexio_sim::metrics::CallResults;
use reflexio_sim::report::Report;
use reflexio_sim::scenario::Scenario;

use crate::measure::{fit_lognormal, Measured};

/// The experiment's knobs: the full run and the CI smoke run differ only
/// in how long the load lasts.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Calls per policy.
    pub calls: u64,
    /// Arrival rate (calls/s).
    pub rate: f64,
    /// The limiter's refill rate (tokens/s) and burst.
    pub limit: u32,
    /// Tokens saved up.
    pub burst: u32,
    /// Median and sigma of the admitted requests' work.
    pub work_median: Duration,
    /// Lognormal sigma of the work.
    pub work_sigma: f64,
    /// Chance that an admitted request fails.
    pub failure_probability: f64,
    /// Seed of the arrivals and the service's dice.
    pub seed: u64,
    /// Simulator runs averaged for the prediction.
    pub sim_runs: u32,
}

impl Setup {
    /// The full experiment: 20 s of load per policy.
    pub fn full() -> Setup {
        Setup {
            calls: 3000,
            rate: 150.0,
            limit: 100,
            burst: 20,
            work_median: Duration::from_millis(40),
            work_sigma: 0.4,
            failure_probability: 0.02,
            seed: 20261129,
            sim_runs: 20,
        }
    }

    /// The smoke run for CI: 3 s of load per policy.
    pub fn smoke() -> Setup {
        Setup {
            calls: 450,
            sim_runs: 8,
            ..Setup::full()
        }
    }
}

/// The bundled scenario whose policies this experiment runs.
pub const SCENARIO: &str = include_str!("../../sim/scenarios/rate-limit.toml");

struct Service {
    limiter: governor::DefaultDirectRateLimiter,
    dice: Mutex<ChaCha8Rng>,
    work_median: Duration,
    work_sigma: f64,
    failure_probability: f64,
    admitted: AtomicU64,
    refused: AtomicU64,
}

fn lognormal(rng: &mut ChaCha8Rng, median: Duration, sigma: f64) -> Duration {
    // Box-Muller: one standard normal from two uniforms.
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    median.mul_f64((sigma * z).exp().min(1e3))
}

async fn handle(State(service): State<Arc<Service>>) -> Response {
    if let Err(refusal) = service.limiter.check() {
        service.refused.fetch_add(1, Ordering::Relaxed);
        let wait = refusal.wait_time_from(governor::clock::DefaultClock::default().now());
        let mut headers = HeaderMap::new();
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        headers.insert("retry-after", HeaderValue::from(secs));
        let ms = wait.as_secs_f64() * 1e3;
        if let Ok(v) = HeaderValue::from_str(&format!("{ms:.3}")) {
            headers.insert("retry-after-ms", v);
        }
        return (StatusCode::TOO_MANY_REQUESTS, headers).into_response();
    }
    service.admitted.fetch_add(1, Ordering::Relaxed);
    let (work, fails, which) = {
        let mut dice = service.dice.lock().unwrap_or_else(|e| e.into_inner());
        let work = lognormal(&mut dice, service.work_median, service.work_sigma);
        let fails = dice.random::<f64>() < service.failure_probability;
        (work, fails, dice.random::<bool>())
    };
    tokio::time::sleep(work).await;
    match (fails, which) {
        (false, _) => StatusCode::OK.into_response(),
        (true, true) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        (true, false) => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

/// A failed HTTP attempt as the client sees it.
#[derive(Debug)]
struct Failed {
    status: Option<u16>,
    hint: Option<Duration>,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "HTTP {s}"),
            None => f.write_str("no response"),
        }
    }
}

impl std::error::Error for Failed {}

fn classify(e: &Failed) -> Classification {
    let class = e
        .status
        .map_or(reflexio::ErrorClass::Transient, http_status_class);
    let c = Classification::new(class);
    match e.hint {
        Some(h) => c.with_retry_after(h),
        None => c,
    }
}

/// One policy's run against a fresh service.
pub struct PolicyRun {
    /// The policy's name.
    pub policy: String,
    /// What was measured, in the simulator's own metric definitions.
    pub measured: Measured,
    /// Every admitted attempt's client-side latency (send to response).
    pub admitted_latencies: Vec<Duration>,
}

/// Runs every policy of the bundled scenario against its own fresh
/// service, one after the other.
pub async fn measure(setup: &Setup) -> Result<Vec<PolicyRun>, String> {
    let scenario = Scenario::from_toml_str(SCENARIO, "sim/scenarios/rate-limit.toml")
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for policy in &scenario.policies {
        out.push(measure_policy(setup, &policy.name, &policy.config).await?);
    }
    Ok(out)
}

async fn measure_policy(
    setup: &Setup,
    name: &str,
    config: &RetryConfig,
) -> Result<PolicyRun, String> {
    let quota = Quota::per_second(std::num::NonZeroU32::new(setup.limit).ok_or("limit 0")?)
        .allow_burst(std::num::NonZeroU32::new(setup.burst).ok_or("burst 0")?);
    let service = Arc::new(Service {
        limiter: RateLimiter::direct(quota),
        dice: Mutex::new(ChaCha8Rng::seed_from_u64(setup.seed)),
        work_median: setup.work_median,
        work_sigma: setup.work_sigma,
        failure_probability: setup.failure_probability,
        admitted: AtomicU64::new(0),
        refused: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/", get(handle))
        .with_state(Arc::clone(&service));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot bind 127.0.0.1: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    let policy = RetryPolicyBuilder::from_config(config)
        .map_err(|e| format!("policy {name}: {e}"))?
        .classifier(classify)
        .sleeper(TokioSleeper::new())
        .build()
        .map_err(|e| format!("policy {name}: {e}"))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(512)
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("http://{addr}/");

    // Poisson arrivals, from the experiment's seed.
    let mut arrivals_rng = ChaCha8Rng::seed_from_u64(setup.seed ^ 0x5eed);
    let mut at = 0.0f64;
    let mut offsets = Vec::with_capacity(setup.calls as usize);
    for _ in 0..setup.calls {
        let u: f64 = arrivals_rng.random::<f64>().max(f64::MIN_POSITIVE);
        at += -u.ln() / setup.rate;
        offsets.push(Duration::from_secs_f64(at));
    }

    let origin = Instant::now() + Duration::from_millis(50);
    let attempts_log: Arc<Mutex<Vec<(Duration, Duration, bool)>>> = Arc::default();
    let mut tasks = Vec::with_capacity(offsets.len());
    for (call, offset) in offsets.into_iter().enumerate() {
        let policy = policy.clone();
        let client = client.clone();
        let url = url.clone();
        let log = Arc::clone(&attempts_log);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until((origin + offset).into()).await;
            let start = Instant::now();
            let mut attempts = 0u32;
            let busy = Arc::new(AtomicU64::new(0));
            let outcome = policy
                .call_async(|| {
                    attempts += 1;
                    let client = client.clone();
                    let url = url.clone();
                    let log = Arc::clone(&log);
                    let sent = Instant::now();
                    let busy = Arc::clone(&busy);
                    async move {
                        let result = client.get(&url).send().await;
                        let took = sent.elapsed();
                        busy.fetch_add(nanos(took), Ordering::Relaxed);
                        let failure = match result {
                            Ok(r) if r.status().is_success() => None,
                            Ok(r) => {
                                let hint = r
                                    .headers()
                                    .get("retry-after-ms")
                                    .and_then(|v| v.to_str().ok())
                                    .and_then(|v| v.parse::<f64>().ok())
                                    .filter(|ms| ms.is_finite() && *ms >= 0.0)
                                    .map(|ms| Duration::from_secs_f64(ms / 1e3));
                                Some(Failed {
                                    status: Some(r.status().as_u16()),
                                    hint,
                                })
                            }
                            Err(_) => Some(Failed {
                                status: None,
                                hint: None,
                            }),
                        };
                        let admitted = failure.as_ref().is_none_or(|f| f.status != Some(429));
                        if let Ok(mut log) = log.lock() {
                            log.push((sent.saturating_duration_since(origin), took, admitted));
                        }
                        match failure {
                            None => Ok(()),
                            Some(f) => Err(f),
                        }
                    }
                })
                .await;
            let latency = start.elapsed();
            let end = start.saturating_duration_since(origin) + latency;
            let reason = outcome.as_ref().err().map(|e| e.reason());
            CallOutcome {
                call,
                end,
                latency,
                sleep: latency.saturating_sub(Duration::from_nanos(busy.load(Ordering::Relaxed))),
                attempts,
                reason,
            }
        }));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for t in tasks {
        outcomes.push(t.await.map_err(|e| format!("a call task failed: {e}"))?);
    }
    let _ = stop.send(());
    let _ = server.await;

    let bucket = Duration::from_secs(1);
    let mut results = CallResults::new(outcomes.len());
    let log = std::mem::take(&mut *attempts_log.lock().unwrap_or_else(|e| e.into_inner()));
    let mut admitted_latencies = Vec::new();
    for (sent, took, admitted) in &log {
        results.attempt_at((sent.as_nanos() / bucket.as_nanos()) as u64);
        if *admitted {
            admitted_latencies.push(*took);
        }
    }
    for o in &outcomes {
        results.record(
            o.call,
            nanos(o.end),
            nanos(o.latency),
            nanos(o.sleep),
            o.attempts,
            o.reason,
        );
    }
    let metrics = results.into_metrics(name, nanos(bucket), Vec::new(), 0);
    Ok(PolicyRun {
        policy: name.to_owned(),
        measured: Measured::from(metrics),
        admitted_latencies,
    })
}

struct CallOutcome {
    call: usize,
    end: Duration,
    latency: Duration,
    sleep: Duration,
    attempts: u32,
    reason: Option<reflexio::StopReason>,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The scenario the simulator predicts from: the bundled one with the
/// calls of this run and the latency fitted from the admitted attempts
/// measured.
pub fn equivalent_scenario(setup: &Setup, runs: &[PolicyRun]) -> String {
    let all: Vec<Duration> = runs
        .iter()
        .flat_map(|r| r.admitted_latencies.iter().copied())
        .collect();
    let (median, sigma) = fit_lognormal(&all);
    let mut text = String::new();
    let mut in_latency = false;
    for line in SCENARIO.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            in_latency = trimmed.starts_with("[latency]");
            if in_latency {
                text.push_str("[latency]\n");
                text.push_str("# fitted to the admitted attempts measured on loopback\n");
                text.push_str("distribution = \"lognormal\"\n");
                text.push_str(&format!("median = \"{}us\"\n", median.as_micros()));
                text.push_str(&format!("sigma = {sigma:.4}\n\n"));
                continue;
            }
        }
        if in_latency {
            continue;
        }
        if trimmed.starts_with("calls =") {
            text.push_str(&format!("calls = {}\n", setup.calls));
            continue;
        }
        if trimmed.starts_with("name =") {
            text.push_str("name = \"validation-rate-limit\"\n");
            continue;
        }
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// Runs the simulator on `scenario` (`runs` seeds) and returns its report.
pub fn predict(scenario: &str, seed: u64, runs: u32) -> Result<Report, String> {
    let scenario = Scenario::from_toml_str(scenario, "validation-rate-limit.toml")
        .map_err(|e| e.to_string())?;
    reflexio_sim::world::run_many(&scenario, seed, runs, &|_, _| {}).map_err(|e| e.to_string())
}
