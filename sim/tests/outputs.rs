//! The documented shape of the JSON and CSV reports, and `--runs`.

use reflexio_sim::report::{csv, json};
use reflexio_sim::Scenario;

const SCENARIO: &str = r#"
name = "shape"
seed = 3
[workload]
calls = 200
arrival = "fixed_rate"
rate = 100.0
[[failures]]
model = "random"
probability = 0.3
classes = { transient = 1.0 }
[policies.one]
max_attempts = 1
[policies.many]
"#;

#[test]
fn json_has_the_documented_fields() {
    let scenario = Scenario::from_toml_str(SCENARIO, "shape.toml").unwrap();
    let report = reflexio_sim::run(&scenario, 3).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json::render(&report)).unwrap();
    assert_eq!(doc["format"], "reflexio-sim/1");
    assert_eq!(doc["scenario"], "shape");
    assert_eq!(doc["policies"], serde_json::json!(["one", "many"]));
    let metrics = &doc["runs"][0]["policies"][1];
    for key in [
        "policy",
        "calls",
        "successes",
        "success_rate",
        "failures",
        "attempts_total",
        "attempts_mean",
        "attempts_p50",
        "attempts_p90",
        "attempts_p99",
        "attempts_max",
        "attempts_histogram",
        "sleep_total_ms",
        "sleep_mean_ms",
        "sleep_p99_ms",
        "latency_p50_ms",
        "latency_p99_ms",
        "latency_max_ms",
        "load_amplification",
        "peak_attempts_per_s",
        "finished_at_ms",
        "violations",
        "violation_list",
        "load_per_bucket",
        "latency_cdf",
    ] {
        assert!(!metrics[key].is_null(), "missing {key}");
    }
    assert_eq!(metrics["failures"].as_object().unwrap().len(), 5);
    // Fixed rate 100/s: 200 calls over two seconds, one bucket each.
    assert_eq!(
        doc["runs"][0]["policies"][0]["load_per_bucket"],
        serde_json::json!([100, 100])
    );
    assert_eq!(doc["summary"][0]["metrics"][0]["metric"], "calls");
}

#[test]
fn csv_has_one_row_per_run_and_policy() {
    let scenario = Scenario::from_toml_str(SCENARIO, "shape.toml").unwrap();
    let report = reflexio_sim::run_many(&scenario, 3, 3, &|_, _| {}).unwrap();
    let text = csv::render(&report);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 3 * 2);
    assert!(lines[0].starts_with("run,seed,policy,calls,successes,success_rate,"));
    assert!(lines[1].starts_with("0,3,one,200,"));
    assert!(lines[6].starts_with("2,"));
    // Every row has as many fields as the header.
    let width = lines[0].split(',').count();
    assert!(lines.iter().all(|l| l.split(',').count() == width));
}

#[test]
fn runs_report_mean_and_standard_error() {
    let scenario = Scenario::from_toml_str(SCENARIO, "shape.toml").unwrap();
    let report = reflexio_sim::run_many(&scenario, 3, 4, &|_, _| {}).unwrap();
    assert_eq!(report.runs.len(), 4);
    // Run 0 is the plain run with the seed itself.
    let single = reflexio_sim::run(&scenario, 3).unwrap();
    assert_eq!(report.runs[0], single.runs[0]);
    assert_ne!(report.runs[1].seed, report.runs[0].seed);
    let summary = report.summary();
    let successes = summary[0].get("successes");
    let values: Vec<f64> = report
        .runs
        .iter()
        .map(|r| r.policies[0].successes as f64)
        .collect();
    let mean = values.iter().sum::<f64>() / 4.0;
    assert!((successes.mean - mean).abs() < 1e-9);
    assert!(successes.stderr > 0.0);
    // Calls never vary.
    assert_eq!(summary[0].get("calls").stderr, 0.0);
    let table = reflexio_sim::report::table::render(&report);
    assert!(table.contains("4 runs") && table.contains('±'), "{table}");
}
