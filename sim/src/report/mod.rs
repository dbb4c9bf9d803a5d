//! Reports: the results of every run and policy, and their renderings.
//!
//! * [`table`]: the aligned terminal table;
//! * [`json`] and [`csv`]: machine-readable, with stable field names;
//! * [`markdown`]: a summary for people, linking the plots;
//! * [`html`]: one self-contained page with the tables and the plots inline;
//! * [`plots`]: SVG (default) or PNG charts made with plotters;
//! * [`number`]: how numbers are written for people.
//!
//! Every rendering is a pure function of the [`Report`]: no clock, no
//! unordered map, so the same scenario and seed give the same bytes.

pub mod csv;
pub mod html;
pub mod json;
pub mod markdown;
pub mod marks;
pub mod number;
pub mod outline;
pub mod plots;
pub mod table;

use serde::Serialize;

use self::marks::Marks;
use crate::metrics::{spread, PolicyMetrics, BUDGET_SCALARS, SCALARS};
use crate::scenario::{Arrival, Scenario};

/// The results of one run: one [`PolicyMetrics`] per policy, in file order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// The run's 0-based index.
    pub run: u32,
    /// The run's seed.
    pub seed: u64,
    /// Metrics per policy.
    pub policies: Vec<PolicyMetrics>,
}

/// The results of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// Its description.
    pub description: String,
    /// The seed given (run 0's seed; later runs derive theirs from it).
    pub seed: u64,
    /// Calls per run and policy.
    pub calls: u64,
    /// The arrival process, in words.
    pub arrival: String,
    /// Width of the load-over-time buckets (ms).
    pub bucket_ms: f64,
    /// Policy names, in file order.
    pub policies: Vec<String>,
    /// Every run.
    pub runs: Vec<RunReport>,
    /// What the load plot marks (failure windows, limits); not part of
    /// the JSON report.
    #[serde(skip)]
    pub marks: Marks,
}

/// One metric over the runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stat {
    /// The metric's name.
    pub metric: &'static str,
    /// Mean over runs.
    pub mean: f64,
    /// Per-run standard deviation (0 for one run): how much one run
    /// varies, the figure published tables quote.
    pub std_dev: f64,
    /// Standard error of the mean (0 for one run): `std_dev / sqrt(runs)`,
    /// how precisely the mean is known.
    pub stderr: f64,
}

/// A policy's metrics over the runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicySummary {
    /// The policy.
    pub policy: String,
    /// Every scalar metric, in report order.
    pub metrics: Vec<Stat>,
}

impl PolicySummary {
    /// The stat named `metric`.
    pub fn get(&self, metric: &str) -> Stat {
        self.metrics
            .iter()
            .find(|s| s.metric == metric)
            .cloned()
            .unwrap_or(Stat {
                metric: "",
                mean: 0.0,
                std_dev: 0.0,
                stderr: 0.0,
            })
    }
}

/// What the background traffic table shows, in words.
pub(crate) const BACKGROUND_NOTE: &str = "Workloads that share the service with each policy's calls, the same under every policy; the tables above count only the policy's own calls. Violations are of the background workload's own policy (– when it has none: one attempt per call).";

/// Columns of the background traffic table.
pub(crate) const BACKGROUND_HEADERS: [&str; 10] = [
    "policy",
    "background",
    "calls",
    "succeeded",
    "failed",
    "success",
    "attempts",
    "latency p50",
    "latency p99",
    "violations",
];

/// One row per (policy, background workload), means over the runs.
pub(crate) fn background_rows(report: &Report) -> Vec<Vec<String>> {
    use self::number::{human_ms, percent, trim};
    let Some(first) = report.runs.first() else {
        return Vec::new();
    };
    let runs = report.runs.len() as f64;
    let mut rows = Vec::new();
    for (p, m) in first.policies.iter().enumerate() {
        for (k, b) in m.background.iter().enumerate() {
            let mean = |read: &dyn Fn(&crate::metrics::BackgroundMetrics) -> f64| {
                report
                    .runs
                    .iter()
                    .map(|r| read(&r.policies[p].background[k]))
                    .sum::<f64>()
                    / runs
            };
            let calls = mean(&|b| b.calls as f64);
            let succeeded = mean(&|b| b.succeeded as f64);
            rows.push(vec![
                m.policy.clone(),
                b.name.clone(),
                trim(calls),
                trim(succeeded),
                trim(mean(&|b| b.failed as f64)),
                percent(succeeded / calls.max(1.0)),
                trim(mean(&|b| b.attempts as f64)),
                human_ms(mean(&|b| b.latency_p50_ms)),
                human_ms(mean(&|b| b.latency_p99_ms)),
                match b.violations {
                    Some(_) => trim(mean(&|b| b.violations.unwrap_or(0) as f64)),
                    None => "–".to_owned(),
                },
            ]);
        }
    }
    rows
}

fn describe_arrival(a: &Arrival) -> String {
    match a {
        Arrival::AllAtOnce => "all at once".to_owned(),
        Arrival::FixedRate { rate } => format!("fixed rate, {rate} calls/s"),
        Arrival::Poisson { rate } => format!("Poisson, {rate} calls/s"),
        Arrival::ClosedLoop {
            clients,
            think_time,
        } => format!("closed loop, {clients} clients, think time {think_time:?}"),
    }
}

impl Report {
    /// A report of `runs` of `scenario`.
    pub fn new(scenario: &Scenario, seed: u64, runs: Vec<RunReport>) -> Report {
        Report {
            scenario: scenario.name.clone(),
            description: scenario.description.clone(),
            seed,
            calls: scenario.workload.calls,
            arrival: describe_arrival(&scenario.workload.arrival),
            bucket_ms: scenario.bucket.as_nanos() as f64 / 1e6,
            policies: scenario.policies.iter().map(|p| p.name.clone()).collect(),
            runs,
            marks: Marks::of(scenario),
        }
    }

    /// Violations over every run and policy, the background workloads'
    /// own policies' included.
    pub fn violations(&self) -> u64 {
        self.runs
            .iter()
            .flat_map(|r| &r.policies)
            .map(|m| {
                m.violations
                    + m.background
                        .iter()
                        .map(|b| b.violations.unwrap_or(0))
                        .sum::<u64>()
            })
            .sum()
    }

    /// Every violation listed, in report order: the run, the policy, the
    /// background workload whose own policy it concerns (if it is one's),
    /// and the violation. Each policy's own come before its background's.
    pub fn violation_entries(
        &self,
    ) -> impl Iterator<Item = (u32, &str, Option<&str>, &crate::check::Violation)> + '_ {
        self.runs.iter().flat_map(|run| {
            run.policies.iter().flat_map(move |m| {
                let own = m
                    .violation_list
                    .iter()
                    .map(move |v| (run.run, m.policy.as_str(), None, v));
                let background = m.background.iter().flat_map(move |b| {
                    b.violation_list
                        .iter()
                        .map(move |v| (run.run, m.policy.as_str(), Some(b.name.as_str()), v))
                });
                own.chain(background)
            })
        })
    }

    /// Whether some policy has a retry budget. Only then do the reports
    /// show the budgets' metrics.
    pub fn has_budgets(&self) -> bool {
        self.runs
            .iter()
            .flat_map(|r| &r.policies)
            .any(|m| m.budget.is_some())
    }

    /// The scalar metrics of this report, in report order: [`SCALARS`],
    /// then [`BUDGET_SCALARS`] if some policy has a budget.
    pub fn scalars(&self) -> Vec<crate::metrics::Scalar> {
        let mut all = SCALARS.to_vec();
        if self.has_budgets() {
            all.extend_from_slice(BUDGET_SCALARS);
        }
        all
    }

    /// Mean, per-run standard deviation and standard error of every scalar
    /// metric, per policy.
    pub fn summary(&self) -> Vec<PolicySummary> {
        let scalars = self.scalars();
        self.policies
            .iter()
            .enumerate()
            .map(|(p, name)| PolicySummary {
                policy: name.clone(),
                metrics: scalars
                    .iter()
                    .map(|(metric, read)| {
                        let values: Vec<f64> =
                            self.runs.iter().map(|r| read(&r.policies[p])).collect();
                        let s = spread(&values);
                        Stat {
                            metric,
                            mean: s.mean,
                            std_dev: s.std_dev,
                            stderr: s.stderr,
                        }
                    })
                    .collect(),
            })
            .collect()
    }
}

pub use number::human_ms;

/// The cells of the main table for one policy: plain values for one run,
/// `mean ±se` over several (see [`number`] for the precision rules).
pub fn main_row(s: &PolicySummary, runs: usize) -> Vec<String> {
    let count = |x: f64| {
        if x.fract() == 0.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    };
    let ratio = |x: f64| format!("{x:.2}");
    let plain = |m: &str, f: &dyn Fn(f64) -> String| {
        let st = s.get(m);
        if runs > 1 {
            number::mean_error(st.mean, st.stderr, f)
        } else {
            f(st.mean)
        }
    };
    let time = |m: &str| {
        let st = s.get(m);
        if runs > 1 {
            number::mean_error_ms(st.mean, st.stderr)
        } else {
            human_ms(st.mean)
        }
    };
    // The success rate from the counts, not the rounded rate: a single
    // failure among millions of calls must still show.
    let calls = s.get("calls").mean;
    let rate = if calls > 0.0 {
        s.get("successes").mean / calls
    } else {
        0.0
    };
    let success = if runs > 1 {
        number::mean_error_percent(rate, s.get("success_rate").stderr)
    } else {
        number::percent(rate)
    };
    vec![
        s.policy.clone(),
        success,
        plain("attempts_mean", &ratio),
        plain("attempts_p50", &count),
        plain("attempts_p99", &count),
        plain("attempts_max", &count),
        time("sleep_total_ms"),
        time("sleep_p99_ms"),
        time("latency_p50_ms"),
        time("latency_p99_ms"),
        time("latency_max_ms"),
        plain("peak_attempts_per_s", &count),
        time("finished_at_ms"),
        plain("violations", &count),
    ]
}

/// The per-run standard deviation of each metric of [`main_row`] (the
/// policy name first), for reports over several runs.
pub fn spread_row(s: &PolicySummary) -> Vec<String> {
    let names = [
        "success_rate",
        "attempts_mean",
        "attempts_p50",
        "attempts_p99",
        "attempts_max",
        "sleep_total_ms",
        "sleep_p99_ms",
        "latency_p50_ms",
        "latency_p99_ms",
        "latency_max_ms",
        "peak_attempts_per_s",
        "finished_at_ms",
        "violations",
    ];
    let mut row = vec![s.policy.clone()];
    for (i, name) in names.iter().enumerate() {
        let sd = s.get(name).std_dev;
        row.push(match i {
            0 => format!("{:.1}%", sd * 100.0),
            1 => format!("{sd:.2}"),
            5..=9 | 11 => human_ms(sd),
            _ => format!("{sd:.1}"),
        });
    }
    row
}

/// Headers of [`main_row`].
pub const MAIN_HEADERS: [&str; 14] = [
    "policy",
    "success",
    "attempts/call",
    "p50",
    "p99",
    "max",
    "total sleep",
    "sleep p99",
    "latency p50",
    "latency p99",
    "latency max",
    "peak attempts/s",
    "all done at",
    "violations",
];

/// Headers of [`failure_row`].
pub const FAILURE_HEADERS: [&str; 6] = [
    "policy",
    "permanent_fail",
    "deadline_exceeded",
    "max_attempts_exceeded",
    "class_attempts_exceeded",
    "max_unknown_attempts_exceeded",
];

/// Headers of [`failure_row`] for `report`: [`FAILURE_HEADERS`], and
/// `budget_exhausted` if some policy has a retry budget.
pub fn failure_headers(report: &Report) -> Vec<&'static str> {
    let mut headers = FAILURE_HEADERS.to_vec();
    if report.has_budgets() {
        headers.push("budget_exhausted");
    }
    headers
}

/// Failed calls by stop reason, for one policy (with `budget_exhausted`
/// when the summary has it).
pub fn failure_row(s: &PolicySummary, runs: usize) -> Vec<String> {
    let mut row = vec![s.policy.clone()];
    let budgets = s.metrics.iter().any(|m| m.metric == "budget_exhausted");
    let extra: &[&str] = if budgets { &["budget_exhausted"] } else { &[] };
    for h in FAILURE_HEADERS[1..].iter().chain(extra) {
        let st = s.get(h);
        row.push(if runs > 1 {
            number::mean_error(st.mean, st.stderr, &|x| format!("{x:.0}"))
        } else {
            format!("{:.0}", st.mean)
        });
    }
    row
}

/// Headers of [`budget_rows`].
pub const BUDGET_HEADERS: [&str; 5] = [
    "policy",
    "budget",
    "retries admitted",
    "retries refused",
    "refused share",
];

/// One row per policy with a retry budget: the budget, the retries it
/// admitted and refused (each refusal stopped a call: the
/// `budget_exhausted` of the failure table) and the share refused (means
/// ±standard error over several runs). Empty without budgets.
pub fn budget_rows(report: &Report, summary: &[PolicySummary]) -> Vec<Vec<String>> {
    let runs = report.runs.len();
    let Some(first) = report.runs.first() else {
        return Vec::new();
    };
    let count = |s: &PolicySummary, m: &str| {
        let st = s.get(m);
        if runs > 1 {
            number::mean_error(st.mean, st.stderr, &|x| format!("{x:.0}"))
        } else {
            format!("{:.0}", st.mean)
        }
    };
    first
        .policies
        .iter()
        .zip(summary)
        .filter_map(|(m, s)| {
            let budget = m.budget.as_ref()?;
            let share = s.get("refused_share");
            Some(vec![
                s.policy.clone(),
                budget.budget.clone(),
                count(s, "retries_admitted"),
                count(s, "retries_refused"),
                if runs > 1 {
                    number::mean_error_percent(share.mean, share.stderr)
                } else {
                    number::percent(share.mean)
                },
            ])
        })
        .collect()
}
