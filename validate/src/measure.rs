//! What a validation run measures, in the simulator's own definitions.
//!
//! Measured calls go through the simulator's `CallResults`, so a measured
//! p50 and a predicted p50 are the same statistic (nearest rank), peaks
//! are counted in the same one-second buckets, and so on.

use std::time::Duration;

use reflexio::RetryConfig;
use reflexio_sim::metrics::PolicyMetrics;
use reflexio_sim::report::Report;
use reflexio_sim::scenario::Scenario;
use serde::Serialize;

/// The metrics compared, for one policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    /// Calls that succeeded, as a fraction.
    pub success_rate: f64,
    /// Attempts per call.
    pub attempts_mean: f64,
    /// End-to-end latency, median (ms).
    pub latency_p50_ms: f64,
    /// End-to-end latency, 99th percentile (ms).
    pub latency_p99_ms: f64,
    /// The busiest second's attempts.
    pub peak_attempts_per_s: f64,
    /// When the last call ended, from the first arrival's origin (ms).
    pub finished_at_ms: f64,
}

impl From<PolicyMetrics> for Measured {
    fn from(m: PolicyMetrics) -> Self {
        Measured {
            success_rate: m.success_rate,
            attempts_mean: m.attempts_mean,
            latency_p50_ms: m.latency_p50_ms,
            latency_p99_ms: m.latency_p99_ms,
            peak_attempts_per_s: m.peak_attempts_per_s,
            finished_at_ms: m.finished_at_ms,
        }
    }
}

/// The metrics by name, in report order.
pub const METRICS: [&str; 6] = [
    "success_rate",
    "attempts_mean",
    "latency_p50_ms",
    "latency_p99_ms",
    "peak_attempts_per_s",
    "finished_at_ms",
];

impl Measured {
    /// The metric named `name` (one of [`METRICS`]).
    pub fn get(&self, name: &str) -> f64 {
        match name {
            "success_rate" => self.success_rate,
            "attempts_mean" => self.attempts_mean,
            "latency_p50_ms" => self.latency_p50_ms,
            "latency_p99_ms" => self.latency_p99_ms,
            "peak_attempts_per_s" => self.peak_attempts_per_s,
            "finished_at_ms" => self.finished_at_ms,
            _ => f64::NAN,
        }
    }
}

/// Median and sigma of the lognormal that fits `samples` (maximum
/// likelihood: the mean and standard deviation of their logarithms);
/// `None` when no sample is above zero, rather than a latency nobody
/// measured.
pub fn fit_lognormal(samples: &[Duration]) -> Option<(Duration, f64)> {
    let logs: Vec<f64> = samples
        .iter()
        .map(|d| d.as_secs_f64())
        .filter(|s| *s > 0.0)
        .map(f64::ln)
        .collect();
    if logs.is_empty() {
        return None;
    }
    let n = logs.len() as f64;
    let mean = logs.iter().sum::<f64>() / n;
    let var = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / n;
    Some((Duration::from_secs_f64(mean.exp()), var.sqrt()))
}

/// The `[policies.*]` tables of `scenario`, written out in the scenario
/// schema (each policy's own configuration, as the library serialises it).
pub fn policies_toml(scenario: &Scenario) -> String {
    let named: Vec<(String, RetryConfig)> = scenario
        .policies
        .iter()
        .map(|p| (p.name.clone(), p.config.clone()))
        .collect();
    named_policies_toml(&named)
}

/// Policies given as `(name, configuration)`, read from their own
/// configuration text (the `RetryConfig` schema); errors name the policy
/// and `file`.
pub fn named_policies(
    list: &[(&str, &str)],
    file: &str,
) -> Result<Vec<(String, RetryConfig)>, String> {
    list.iter()
        .map(|(name, text)| {
            RetryConfig::from_toml_str(text)
                .map(|c| ((*name).to_owned(), c))
                .map_err(|e| format!("{file}: policy {name}: {e}"))
        })
        .collect()
}

/// The `[policies.*]` tables of `policies`, in the scenario schema.
pub fn named_policies_toml(policies: &[(String, RetryConfig)]) -> String {
    let mut out = String::new();
    for (name, config) in policies {
        out.push_str(&format!("[policies.{name}]\n"));
        for line in config.to_toml_string().lines() {
            if let Some(table) = line.strip_prefix('[') {
                out.push_str(&format!("[policies.{name}.{table}\n"));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
    }
    out
}

/// Runs the simulator on `scenario` (`runs` seeds) and returns its report.
pub fn predict(scenario: &str, file: &str, seed: u64, runs: u32) -> Result<Report, String> {
    let scenario = Scenario::from_toml_str(scenario, file).map_err(|e| e.to_string())?;
    reflexio_sim::world::run_many(&scenario, seed, runs, &|_, _| {}).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_a_known_lognormal() {
        // e^(ln 40ms ± 0.5): median 40 ms, sigma 0.5.
        let m = 0.040f64.ln();
        let samples: Vec<Duration> = [-0.5, 0.5, -0.5, 0.5]
            .iter()
            .map(|z| Duration::from_secs_f64((m + z).exp()))
            .collect();
        let (median, sigma) = fit_lognormal(&samples).unwrap();
        assert!((median.as_secs_f64() - 0.040).abs() < 1e-9);
        // Durations hold whole nanoseconds: equal to within that rounding.
        assert!((sigma - 0.5).abs() < 1e-6, "{sigma}");
        assert_eq!(fit_lognormal(&[]), None);
        assert_eq!(fit_lognormal(&[Duration::ZERO]), None);
    }
}
