//! The CSV report: one row per run and policy, the columns of
//! [`crate::metrics::SCALARS`] after `run,seed,policy` (and those of
//! [`crate::metrics::BUDGET_SCALARS`] when some policy has a retry budget).

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
            out.push_str(&format!("{},{},{}", run.run, run.seed, field(&m.policy)));
            for (_, read) in &scalars {
                out.push_str(&format!(",{}", read(m)));
            }
            out.push('\n');
        }
    }
    out
}
