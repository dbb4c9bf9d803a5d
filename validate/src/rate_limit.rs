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

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use governor::clock::Clock as _;
use governor::{Quota, RateLimiter};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reflexio::RetryConfig;

use crate::load::{self, Load, Phase, PolicyRun};
use crate::measure::fit_lognormal;

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
}

pub fn lognormal(rng: &mut ChaCha8Rng, median: Duration, sigma: f64) -> Duration {
    // Box-Muller: one standard normal from two uniforms.
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    median.mul_f64((sigma * z).exp().min(1e3))
}

async fn handle(State(service): State<Arc<Service>>) -> Response {
    if let Err(refusal) = service.limiter.check() {
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

/// Runs every policy of the bundled scenario against its own fresh
/// service, one after the other.
pub async fn measure(setup: &Setup) -> Result<Vec<PolicyRun>, String> {
    load::each_policy(
        SCENARIO,
        "sim/scenarios/rate-limit.toml",
        async |name, config| measure_policy(setup, name, config).await,
    )
    .await
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
    });
    let app = Router::new().route("/", get(handle)).with_state(service);
    let (url, stop, server) = load::serve(app).await?;
    let load = Load {
        calls: setup.calls,
        phases: Phase::steady(setup.rate),
        seed: setup.seed,
        timeout: Duration::from_secs(30),
    };
    let run = load::drive(&url, name, config, &load, load::origin()).await;
    let _ = stop.send(());
    let _ = server.await;
    run
}

/// The scenario the simulator predicts from: the bundled one with the
/// calls of this run, the latency fitted from the admitted attempts
/// measured, and the clients' oversleep fitted from their retry sleeps.
pub fn equivalent_scenario(setup: &Setup, runs: &[PolicyRun]) -> Result<String, String> {
    let all: Vec<Duration> = runs
        .iter()
        .flat_map(|r| &r.attempts)
        .filter(|a| a.status.is_some_and(|s| s != 429))
        .map(|a| a.took)
        .collect();
    let (median, sigma) = fit_lognormal(&all).ok_or(
        "rate-limit: the limiter admitted no attempt, so there is no latency to fit the \
         simulator's service to (is the service answering?)",
    )?;
    let mut text = String::new();
    // Inside a table the equivalent scenario writes anew.
    let mut replaced = false;
    for line in SCENARIO.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            replaced = false;
            if trimmed.starts_with("[latency]") {
                replaced = true;
                text.push_str("[latency]\n");
                text.push_str("# fitted to the admitted attempts measured on loopback\n");
                text.push_str("distribution = \"lognormal\"\n");
                text.push_str(&format!("median = \"{}us\"\n", median.as_micros()));
                text.push_str(&format!("sigma = {sigma:.4}\n\n"));
                continue;
            }
            if trimmed.starts_with("[client]") {
                replaced = true;
                text.push_str(&crate::load::client_table(runs));
                continue;
            }
        }
        // Comments and blank lines stay: those at the end of a replaced
        // table introduce the next one.
        if replaced && !(trimmed.is_empty() || trimmed.starts_with('#')) {
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
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{tally, Attempt};

    fn run(oversleeps: Vec<Duration>) -> PolicyRun {
        let attempts = (1..=50)
            .map(|k| Attempt {
                sent: Duration::from_millis(k),
                took: Duration::from_millis(30 + k % 20),
                status: Some(200),
            })
            .collect();
        let mut run = tally("p", &[], attempts);
        run.oversleeps = oversleeps;
        run
    }

    fn client_of(text: &str) -> Option<reflexio_sim::latency::Latency> {
        reflexio_sim::Scenario::from_toml_str(text, "equivalent.toml")
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
            .client
            .oversleep
    }

    #[test]
    fn the_measured_oversleep_replaces_the_bundled_one() {
        let late = (1..=200)
            .map(|k| Duration::from_micros(500 + 5 * k))
            .collect();
        let text = equivalent_scenario(&Setup::smoke(), &[run(late)]).unwrap();
        assert!(text.contains("from their 200 retry sleeps"), "{text}");
        assert!(matches!(
            client_of(&text),
            Some(reflexio_sim::latency::Latency::Lognormal { .. })
        ));
        assert_eq!(
            text.lines().filter(|l| l.starts_with("[client]")).count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn no_latency_is_made_up_when_every_attempt_was_refused() {
        let mut refused = run(Vec::new());
        for a in &mut refused.attempts {
            a.status = Some(429);
        }
        for runs in [vec![], vec![refused]] {
            let e = equivalent_scenario(&Setup::smoke(), &runs).unwrap_err();
            assert!(e.contains("admitted no attempt"), "{e}");
        }
    }

    #[test]
    fn the_scenario_describes_the_service_and_load_that_were_measured() {
        use reflexio_sim::model::ModelKind;

        // The equivalent scenario keeps the bundled scenario's load and
        // limiter; the real service and load are built from `Setup`. If
        // the two drift apart, the prediction is of another system.
        for setup in [Setup::full(), Setup::smoke()] {
            let text = equivalent_scenario(&setup, &[run(Vec::new())]).unwrap();
            let scenario = reflexio_sim::Scenario::from_toml_str(&text, "equivalent.toml").unwrap();
            assert_eq!(scenario.workload.calls, setup.calls);
            assert!(scenario.workload.phases.is_empty());
            assert_eq!(
                scenario.workload.arrival,
                reflexio_sim::scenario::Arrival::Poisson { rate: setup.rate }
            );
            let kinds: Vec<&ModelKind> = scenario.failures.iter().map(|m| &m.kind).collect();
            assert!(
                matches!(
                    kinds[..],
                    [
                        ModelKind::RateLimit { interval, burst, hint: true },
                        ModelKind::Random { probability, .. },
                    ] if *interval == 1_000_000_000 / u64::from(setup.limit)
                        && *burst == setup.burst
                        && *probability == setup.failure_probability
                ),
                "{kinds:?}"
            );
        }
    }

    #[test]
    fn sleeps_that_all_ended_on_time_mean_exact_timers() {
        let text = equivalent_scenario(&Setup::smoke(), &[run(vec![Duration::ZERO; 3])]).unwrap();
        assert!(
            text.contains("none of the clients' 3 retry sleeps ended late"),
            "{text}"
        );
        assert_eq!(client_of(&text), None);
    }

    #[test]
    fn without_a_measured_sleep_the_clients_still_oversleep() {
        let text = equivalent_scenario(&Setup::smoke(), &[run(Vec::new())]).unwrap();
        assert!(text.contains("no retry sleep was measured"), "{text}");
        assert!(matches!(
            client_of(&text),
            Some(reflexio_sim::latency::Latency::Uniform { .. })
        ));
    }

    #[test]
    fn comments_that_introduce_a_table_are_kept() {
        let text = equivalent_scenario(&Setup::smoke(), &[run(Vec::new())]).unwrap();
        // The bundled file explains the failure models above them.
        let failures = SCENARIO.find("[[failures]]").unwrap();
        let before = SCENARIO[..failures]
            .lines()
            .rev()
            .find(|l| l.starts_with('#'));
        if let Some(comment) = before {
            assert!(text.contains(comment), "`{comment}` lost:\n{text}");
        }
    }
}
