//! The CSV report: one row per run and policy, the columns of
//! [`crate::metrics::SCALARS`] after `run,seed,policy` (and those of
//! [`crate::metrics::BUDGET_SCALARS`] when some policy has a retry budget).

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
