//! The overload experiment: a retry storm after a trigger, for real.
//!
//! The service: an axum server on 127.0.0.1 whose latency grows with the
//! requests it has in flight, exactly as the simulator's `overload` model
//! says: an arriving request counts itself in flight; its work is a
//! lognormal draw (median 40 ms, sigma 0.3) times `1 + growth × excess`,
//! `excess = max(0, in_flight / capacity − 1)`; it fails with probability
//! `error_rate + error_growth × excess`; and the service keeps working on
//! (and counting) a request whose client has given up. A dependency
//! outage makes every request fail (after its work) for five seconds.
//!
//! The load: Poisson calls at 40 % of capacity, a 500 ms client timeout
//! per attempt (a timed-out attempt is `transient`), through production
//! policies built from the tables of `sim/scenarios/overload.toml`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reflexio::RetryConfig;
use reflexio_sim::scenario::Scenario;

use crate::load::{self, Load, Phase, PolicyRun};
use crate::measure::{fit_lognormal, policies_toml};
use crate::rate_limit::lognormal;

/// The experiment's knobs.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Calls per policy.
    pub calls: u64,
    /// Arrival rate (calls/s).
    pub rate: f64,
    /// The service, with its dependency outage.
    pub model: ServiceModel,
    /// The client's timeout per attempt.
    pub timeout: Duration,
    /// Seed of the arrivals and the service's dice.
    pub seed: u64,
    /// Simulator runs averaged for the prediction.
    pub sim_runs: u32,
}

impl Setup {
    /// The full experiment: 30 s of traffic at 200 calls/s, outage at
    /// 10–15 s.
    pub fn full() -> Setup {
        Setup {
            calls: 6000,
            rate: 200.0,
            model: ServiceModel {
                capacity: 20,
                latency_growth: 1.0,
                error_rate: 0.001,
                error_growth: 0.2,
                work_median: Duration::from_millis(40),
                work_sigma: 0.3,
                outage: Some((Duration::from_secs(10), Duration::from_secs(15))),
            },
            timeout: Duration::from_millis(500),
            seed: 5,
            sim_runs: 10,
        }
    }

    /// The smoke run for CI: 3 s of traffic, outage at 1–2 s.
    pub fn smoke() -> Setup {
        let full = Setup::full();
        Setup {
            calls: 600,
            model: ServiceModel {
                outage: Some((Duration::from_secs(1), Duration::from_secs(2))),
                ..full.model
            },
            sim_runs: 4,
            ..full
        }
    }

    /// When the dependency outage starts and ends.
    pub fn outage(&self) -> (Duration, Duration) {
        self.model.outage.unwrap_or_default()
    }
}

/// The bundled scenario whose policies this experiment runs.
pub const SCENARIO: &str = include_str!("../../sim/scenarios/overload.toml");

/// The service's behaviour: what the simulator's `overload` model says,
/// and optionally a dependency outage.
#[derive(Debug, Clone)]
pub struct ServiceModel {
    /// Requests in flight served at nominal latency.
    pub capacity: u64,
    /// Latency factor per unit of excess.
    pub latency_growth: f64,
    /// Error rate at or below capacity.
    pub error_rate: f64,
    /// Added error rate per unit of excess.
    pub error_growth: f64,
    /// The nominal work's median.
    pub work_median: Duration,
    /// The nominal work's lognormal sigma.
    pub work_sigma: f64,
    /// A dependency outage: every request fails in `[start, end)`.
    pub outage: Option<(Duration, Duration)>,
}

impl ServiceModel {
    /// The service for a report's story: its capacity, work and errors.
    pub fn describe(&self) -> String {
        format!(
            "capacity {}: work = lognormal(median {} ms, sigma {}) × (1 + {} × excess), errors \
             {} + {} × excess, work goes on after the client gives up",
            self.capacity,
            self.work_median.as_millis(),
            self.work_sigma,
            self.latency_growth,
            self.error_rate,
            self.error_growth,
        )
    }

    /// The service in the scenario schema: a `[latency]` with the fitted
    /// nominal latency, the `overload` model with the client's `timeout`,
    /// and the outage (if any); ends with a blank line.
    pub fn service_toml(&self, median: Duration, sigma: f64, timeout: Duration) -> String {
        let mut toml = format!(
            r#"[latency]
distribution = "lognormal"
median = "{median}"
sigma = {sigma:.4}

[[failures]]
model = "overload"
capacity = {capacity}
latency_growth = {latency_growth:?}
error_rate = {error_rate:?}
error_growth = {error_growth:?}
timeout = "{timeout}"
class = "server_error"
"#,
            median = duration(median),
            capacity = self.capacity,
            latency_growth = self.latency_growth,
            error_rate = self.error_rate,
            error_growth = self.error_growth,
            timeout = duration(timeout),
        );
        if let Some((start, end)) = self.outage {
            toml.push_str(&format!(
                r#"
[[failures]]
model = "outage"
start = "{start}"
end = "{end}"
class = "server_error"
"#,
                start = duration(start),
                end = duration(end),
            ));
        }
        toml
    }
}

struct Service {
    origin: Instant,
    in_flight: Arc<AtomicU64>,
    dice: Mutex<ChaCha8Rng>,
    model: ServiceModel,
}

async fn handle(State(service): State<Arc<Service>>) -> StatusCode {
    let at = service.origin.elapsed();
    let s = &service.model;
    let in_flight = service.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let excess = (in_flight as f64 / s.capacity as f64 - 1.0).max(0.0);
    let (work, overloaded) = {
        let mut dice = service.dice.lock().unwrap_or_else(|e| e.into_inner());
        let work = lognormal(&mut dice, s.work_median, s.work_sigma)
            .mul_f64(1.0 + s.latency_growth * excess);
        let p = (s.error_rate + s.error_growth * excess).min(1.0);
        (work, dice.random::<f64>() < p)
    };
    let outage = s.outage.is_some_and(|(start, end)| at >= start && at < end);
    // The work goes on (and stays in flight) even when the client gives
    // up and this handler is dropped.
    let counter = Arc::clone(&service.in_flight);
    let work = tokio::spawn(async move {
        tokio::time::sleep(work).await;
        counter.fetch_sub(1, Ordering::SeqCst);
    });
    let _ = work.await;
    if overloaded || outage {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// Runs every policy of the bundled scenario against its own fresh
/// service, one after the other.
pub async fn measure(setup: &Setup) -> Result<Vec<PolicyRun>, String> {
    load::each_policy(
        SCENARIO,
        "sim/scenarios/overload.toml",
        async |name, config| measure_policy(setup, name, config).await,
    )
    .await
}

async fn measure_policy(
    setup: &Setup,
    name: &str,
    config: &RetryConfig,
) -> Result<PolicyRun, String> {
    let load = Load {
        calls: setup.calls,
        phases: Phase::steady(setup.rate),
        seed: setup.seed,
        timeout: setup.timeout,
    };
    drive_service(&setup.model, setup.seed, &load, name, config).await
}

/// Drives a fresh service of `model` (its dice seeded with `seed`) with
/// `load`, every call through the policy `config` describes.
pub async fn drive_service(
    model: &ServiceModel,
    seed: u64,
    load: &Load,
    name: &str,
    config: &RetryConfig,
) -> Result<PolicyRun, String> {
    // The service's clock starts at the load's origin, so that the outage
    // falls where the scenario says.
    let origin = load::origin();
    let service = Arc::new(Service {
        origin,
        in_flight: Arc::new(AtomicU64::new(0)),
        dice: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        model: model.clone(),
    });
    let app = Router::new().route("/", get(handle)).with_state(service);
    let (url, stop, server) = load::serve(app).await?;
    let run = load::drive(&url, name, config, load, origin).await;
    let _ = stop.send(());
    let _ = server.await;
    run
}

/// A duration in the scenario schema, in whole microseconds.
pub fn duration(d: Duration) -> String {
    format!("{}us", d.as_micros())
}

/// The scenario the simulator predicts from: this experiment's service and
/// load in the scenario schema, the nominal latency fitted to the
/// successful attempts sent before the outage, and the bundled scenario's
/// policies.
pub fn equivalent_scenario(setup: &Setup, runs: &[PolicyRun]) -> Result<String, String> {
    let quiet: Vec<Duration> = runs
        .iter()
        .flat_map(|r| &r.attempts)
        .filter(|a| a.status == Some(200) && a.sent < setup.outage().0)
        .map(|a| a.took)
        .collect();
    let (median, sigma) = fit_lognormal(&quiet).ok_or(
        "overload: no attempt succeeded before the outage, so there is no latency to fit the \
         simulator's service to (is the service answering?)",
    )?;
    let scenario = Scenario::from_toml_str(SCENARIO, "sim/scenarios/overload.toml")
        .map_err(|e| e.to_string())?;
    Ok(format!(
        r#"name = "validation-overload"
description = "The overload validation experiment's service and load, as a scenario."
seed = {seed}
bucket = "1s"

[workload]
calls = {calls}
arrival = "poisson"
rate = {rate:?}

# fitted to the successful attempts measured before the outage
{service}
{policies}"#,
        seed = setup.seed,
        calls = setup.calls,
        rate = setup.rate,
        service = setup.model.service_toml(median, sigma, setup.timeout),
        policies = policies_toml(&scenario),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_latency_is_made_up_when_nothing_succeeded_before_the_outage() {
        let failed = crate::load::tally(
            "p",
            &[],
            vec![load::Attempt {
                sent: Duration::from_millis(5),
                took: Duration::from_millis(500),
                status: None,
            }],
        );
        for runs in [vec![], vec![failed]] {
            let e = equivalent_scenario(&Setup::smoke(), &runs).unwrap_err();
            assert!(e.contains("no attempt succeeded before the outage"), "{e}");
        }
    }
}
