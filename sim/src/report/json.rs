//! The JSON report. Its shape (documented in sim/README.md):
//!
//! ```text
//! { "format": "reflexio-sim/1", "scenario", "description", "seed",
//!   "calls", "arrival", "bucket_ms", "policies": [names],
//!   "runs": [ { "run", "seed", "policies": [metrics...] } ],
//!   "summary": [ { "policy", "metrics": [ { "metric", "mean", "std_dev", "stderr" } ] } ] }
//! ```

use serde::Serialize;

use super::{PolicySummary, Report};

#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    #[serde(flatten)]
    report: &'a Report,
    summary: Vec<PolicySummary>,
}

/// The report as pretty-printed JSON, ending with a newline.
pub fn render(report: &Report) -> String {
    let doc = Document {
        format: "reflexio-sim/1",
        report,
        summary: report.summary(),
    };
    // Plain structs, strings and finite numbers: serialising cannot fail.
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}
