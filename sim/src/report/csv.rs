//! The CSV reports.
//!
//! * `report.csv`: one row per run and policy, the columns of
//!   [`crate::metrics::SCALARS`] after `run,seed,policy` (and those of
//!   [`crate::metrics::BUDGET_SCALARS`] when some policy has a retry
//!   budget);
//! * `background.csv`, for a scenario with `[[background]]` workloads: one
//!   row per run, policy and background workload, the fields of
//!   [`crate::metrics::BackgroundMetrics`].

use std::fmt::Write as _;

use super::Report;

/// Quotes a field if it needs it.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The report as CSV with a header row.
pub fn render(report: &Report) -> String {
    let scalars = report.scalars();
    let mut out = String::from("run,seed,policy");
    for (name, _) in &scalars {
        out.push(',');
        out.push_str(name);
    }
    out.push('\n');
    for run in &report.runs {
        for m in &run.policies {
            // Writing into a String cannot fail.
            let _ = write!(out, "{},{},{}", run.run, run.seed, field(&m.policy));
            for (_, read) in &scalars {
                let _ = write!(out, ",{}", read(m));
            }
            out.push('\n');
        }
    }
    out
}

/// The background traffic as CSV with a header row: one row per run,
/// compared policy and background workload (in file order); `None` when
/// the scenario has no background workload. `violations` is empty for a
/// background workload without a policy.
pub fn render_background(report: &Report) -> Option<String> {
    let any = report
        .runs
        .iter()
        .any(|run| run.policies.iter().any(|m| !m.background.is_empty()));
    if !any {
        return None;
    }
    let mut out = String::from(
        "run,seed,policy,background,calls,succeeded,failed,attempts,latency_p50_ms,latency_p99_ms,violations\n",
    );
    for run in &report.runs {
        for m in &run.policies {
            for b in &m.background {
                // Writing into a String cannot fail.
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{}",
                    run.run,
                    run.seed,
                    field(&m.policy),
                    field(&b.name),
                    b.calls,
                    b.succeeded,
                    b.failed,
                    b.attempts,
                    b.latency_p50_ms,
                    b.latency_p99_ms,
                    b.violations.map_or(String::new(), |v| v.to_string()),
                );
            }
        }
    }
    Some(out)
}
