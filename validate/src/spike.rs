//! The spike experiment: a traffic spike, and the retry storm it can
//! leave behind, for real.
//!
//! The service: the overload experiment's axum server on 127.0.0.1 (its
//! latency grows with the requests in flight exactly as the simulator's
//! `overload` model says, and it keeps working on a request whose client
//! has given up), with no outage: the trigger is traffic alone.
//!
//! The load: Poisson calls whose rate doubles for five seconds and falls
//! back, phase by phase as the scenario's `[workload] phases` draws them,
//! with a 500 ms client timeout per attempt (a timed-out attempt is
//! `transient`). The policies: the five of `sim/scenarios/spike.toml`
//! that have no budget, and two of them again with a retry budget (the
//! library's `[budget]` table): immediate retries under a ratio budget,
//! and the library's defaults under a token bucket.

use std::time::Duration;

use reflexio::RetryConfig;

use crate::load::{phases_toml, Load, Phase, PolicyRun};
use crate::measure::{fit_lognormal, named_policies, named_policies_toml};
use crate::overload::{drive_service, ServiceModel};

/// The experiment's knobs.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Calls per policy.
    pub calls: u64,
    /// The arrival rates over time: steady, the spike, steady again.
    pub phases: Vec<Phase>,
    /// The service.
    pub model: ServiceModel,
    /// The client's timeout per attempt.
    pub timeout: Duration,
    /// Seed of the arrivals and the service's dice.
    pub seed: u64,
    /// Simulator runs averaged for the prediction.
    pub sim_runs: u32,
}

impl Setup {
    /// The full experiment: 120 calls/s for 8 s, 240 calls/s for 5 s,
    /// 120 calls/s for 12 s more (25 s, 3600 calls per policy). The
    /// service serves 20 requests at a time at its nominal ~100 ms (about
    /// 190 requests/s): the steady traffic is 63 % of its capacity, the
    /// spike 125 %.
    pub fn full() -> Setup {
        Setup {
            calls: 3600,
            phases: vec![
                Phase {
                    rate: 120.0,
                    length: Some(Duration::from_secs(8)),
                },
                Phase {
                    rate: 240.0,
                    length: Some(Duration::from_secs(5)),
                },
                Phase {
                    rate: 120.0,
                    length: None,
                },
            ],
            model: ServiceModel {
                capacity: 20,
                latency_growth: 1.0,
                error_rate: 0.01,
                error_growth: 0.0,
                work_median: Duration::from_millis(100),
                work_sigma: 0.3,
                outage: None,
            },
            timeout: Duration::from_millis(500),
            seed: 21,
            sim_runs: 10,
        }
    }

    /// The smoke run for CI: 120 calls/s for 1 s, a spike of 240 calls/s
    /// for 2 s, then 120 calls/s for 2 s (840 calls per policy).
    pub fn smoke() -> Setup {
        Setup {
            calls: 840,
            phases: vec![
                Phase {
                    rate: 120.0,
                    length: Some(Duration::from_secs(1)),
                },
                Phase {
                    rate: 240.0,
                    length: Some(Duration::from_secs(2)),
                },
                Phase {
                    rate: 120.0,
                    length: None,
                },
            ],
            sim_runs: 4,
            ..Setup::full()
        }
    }

    /// When the spike starts and ends, from the load's origin.
    pub fn spike(&self) -> (Duration, Duration) {
        let start = self
            .phases
            .first()
            .and_then(|p| p.length)
            .unwrap_or_default();
        let length = self
            .phases
            .get(1)
            .and_then(|p| p.length)
            .unwrap_or_default();
        (start, start + length)
    }
}

/// The policies compared: the five of `sim/scenarios/spike.toml` without
/// a budget, written out here so that this experiment does not change
/// when that file does, and two with a retry budget.
pub const POLICIES: [(&str, &str); 7] = [
    ("no-retry", "max_attempts = 1\n"),
    (
        "retry-immediately",
        "max_attempts = 5\nstrategy = { kind = \"constant\", base = \"0s\" }\n",
    ),
    ("library-default", ""),
    (
        "two-jittered",
        "max_attempts = 2\nstrategy = { kind = \"equal_jitter\", base = \"200ms\", max = \"5s\" }\n",
    ),
    (
        "no-timeout-retries",
        "max_attempts = 3\nstrategy = { kind = \"equal_jitter\", base = \"200ms\", max = \"5s\" }\n\
         [classes.transient]\nmax_attempts = 1\n",
    ),
    // Immediate retries, at most 20 % of the calls started in the last
    // 10 s plus 10 per second: steady-state amplification 1.28 at most,
    // below the service's headroom of 1.6.
    (
        "retry-immediately-ratio-budget",
        "max_attempts = 5\nstrategy = { kind = \"constant\", base = \"0s\" }\n\
         [budget]\nkind = \"ratio\"\nwindow = \"10s\"\nmin_per_sec = 10\npercent = 20\n",
    ),
    // The defaults with the AWS SDKs' retry quota: 500 tokens, 5 per
    // retry, 10 per retry of a timeout, 1 back per first-attempt success.
    (
        "library-default-token-budget",
        "[budget]\nkind = \"token_bucket\"\ncapacity = 500\nretry_cost = 5\ntimeout_cost = 10\n\
         success_refund = 1\n",
    ),
];

fn policies() -> Result<Vec<(String, RetryConfig)>, String> {
    named_policies(&POLICIES, "validate/src/spike.rs")
}

/// Runs every policy against its own fresh service, one after the other.
pub async fn measure(setup: &Setup) -> Result<Vec<PolicyRun>, String> {
    let load = Load {
        calls: setup.calls,
        phases: setup.phases.clone(),
        seed: setup.seed,
        timeout: setup.timeout,
    };
    let mut out = Vec::new();
    for (name, config) in policies()? {
        out.push(drive_service(&setup.model, setup.seed, &load, &name, &config).await?);
    }
    Ok(out)
}

/// The scenario the simulator predicts from: the same phases, the service
/// as an `overload` model, the nominal latency fitted to the successful
/// attempts sent before the spike, and the same policies.
pub fn equivalent_scenario(setup: &Setup, runs: &[PolicyRun]) -> Result<String, String> {
    let (spike_start, _) = setup.spike();
    let quiet: Vec<Duration> = runs
        .iter()
        .flat_map(|r| &r.attempts)
        .filter(|a| a.status == Some(200) && a.sent < spike_start)
        .map(|a| a.took)
        .collect();
    let (median, sigma) = fit_lognormal(&quiet).ok_or(
        "spike: no attempt succeeded before the spike, so there is no latency to fit the \
         simulator's service to (is the service answering?)",
    )?;
    Ok(format!(
        r#"name = "validation-spike"
description = "The spike validation experiment's service and load, as a scenario."
seed = {seed}
bucket = "1s"

[workload]
calls = {calls}
arrival = "poisson"
{phases}

# fitted to the successful attempts measured before the spike
{service}
{policies}"#,
        seed = setup.seed,
        calls = setup.calls,
        phases = phases_toml(&setup.phases),
        service = setup.model.service_toml(median, sigma, setup.timeout),
        policies = named_policies_toml(&policies()?),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::arrivals;

    #[test]
    fn the_policies_parse_and_the_budgets_are_where_they_are_named() {
        let policies = policies().unwrap();
        assert_eq!(policies.len(), POLICIES.len());
        for (name, config) in &policies {
            assert_eq!(config.budget.is_some(), name.ends_with("-budget"), "{name}");
        }
    }

    #[test]
    fn the_load_follows_the_phases() {
        let setup = Setup::full();
        let load = Load {
            calls: setup.calls,
            phases: setup.phases.clone(),
            seed: setup.seed,
            timeout: setup.timeout,
        };
        let at = arrivals(&load);
        assert_eq!(at.len() as u64, setup.calls);
        assert!(at.windows(2).all(|w| w[0] <= w[1]));
        let count = |from: u64, to: u64| {
            at.iter()
                .filter(|t| **t >= Duration::from_secs(from) && **t < Duration::from_secs(to))
                .count() as f64
        };
        // 960 expected before the spike, 1200 in it: within 5 standard
        // deviations of a Poisson count.
        assert!(
            (count(0, 8) - 960.0).abs() < 5.0 * 960f64.sqrt(),
            "{}",
            count(0, 8)
        );
        assert!(
            (count(8, 13) - 1200.0).abs() < 5.0 * 1200f64.sqrt(),
            "{}",
            count(8, 13)
        );
        // The last phase goes on at 120/s until every call has arrived.
        let last = at.last().unwrap().as_secs_f64();
        assert!((last - 25.0).abs() < 2.0, "{last}");
        assert_eq!(
            setup.spike(),
            (Duration::from_secs(8), Duration::from_secs(13))
        );
    }

    /// One run whose every attempt succeeded in 90 to 110 ms, one every
    /// 10 ms from the start.
    fn quiet_run() -> PolicyRun {
        let attempts = (0..100)
            .map(|k| crate::load::Attempt {
                sent: Duration::from_millis(10 * k),
                took: Duration::from_millis(90 + k % 21),
                status: Some(200),
            })
            .collect();
        crate::load::tally("p", &[], attempts)
    }

    #[test]
    fn no_latency_is_made_up_when_nothing_succeeded_before_the_spike() {
        // Every attempt before the spike failed (or none was made): there
        // is nothing to fit the service's latency to.
        let mut failed = quiet_run();
        for a in &mut failed.attempts {
            a.status = Some(503);
        }
        for runs in [vec![], vec![failed]] {
            let e = equivalent_scenario(&Setup::smoke(), &runs).unwrap_err();
            assert!(e.contains("no attempt succeeded before the spike"), "{e}");
        }
    }

    #[test]
    fn the_equivalent_scenario_writes_the_phases() {
        let text = equivalent_scenario(&Setup::smoke(), &[quiet_run()]).unwrap();
        assert!(text.contains("{ rate = 240.0, for = \"2s\" }"), "{text}");
        assert!(text.contains("{ rate = 120.0 },"), "{text}");
        assert!(
            text.contains("[policies.library-default-token-budget.budget]"),
            "{text}"
        );
    }
}
