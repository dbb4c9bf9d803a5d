//! Each failure model against a small case worked out by hand.
//!
//! Latencies are constant and backoffs constant, so every time below can be
//! followed on paper; the comments do so.

mod common;

use reflexio_sim::{PolicyMetrics, Scenario};

fn run(source: &str) -> Vec<PolicyMetrics> {
    common::run_first(source, "case.toml")
}

fn one(source: &str) -> PolicyMetrics {
    run(source).remove(0)
}

const CONSTANT_100MS: &str = r#"
[policies.p]
max_attempts = 10
deadline = "60s"
strategy = { kind = "constant", base = "100ms" }
"#;

#[test]
fn random_failures_every_time_exhaust_the_attempt_cap() {
    let m = one(r#"
[workload]
calls = 1
[latency]
distribution = "constant"
value = "10ms"
[[failures]]
model = "random"
probability = 1.0
classes = { transient = 1.0 }
[policies.p]
max_attempts = 3
strategy = { kind = "constant", base = "100ms" }
"#);
    // Attempts at 0, 110 and 220 ms, each 10 ms long; two sleeps of 100 ms.
    assert_eq!(m.attempts_total, 3);
    assert_eq!(m.failures.max_attempts_exceeded, 1);
    assert_eq!(m.latency_max_ms, 230.0);
    assert_eq!(m.sleep_total_ms, 200.0);
}

#[test]
fn random_failures_of_a_never_retried_class_stop_at_once() {
    let m = one(&format!(
        r#"
[workload]
calls = 50
[[failures]]
model = "random"
probability = 1.0
classes = {{ permanent = 1.0 }}
{CONSTANT_100MS}"#
    ));
    assert_eq!(m.failures.permanent_fail, 50);
    assert_eq!(m.attempts_total, 50);
    assert_eq!(m.sleep_total_ms, 0.0);
}

#[test]
fn random_failure_rate_and_class_mix_are_about_right() {
    let m = one(r#"
[workload]
calls = 4000
[[failures]]
model = "random"
probability = 0.5
classes = { transient = 3.0, permanent = 1.0 }
[policies.p]
max_attempts = 1
"#);
    // Half the calls fail; a quarter of the failures are permanent.
    let failed = m.calls - m.successes;
    assert!((1900..2100).contains(&failed), "{failed}");
    let permanent = m.failures.permanent_fail as f64 / failed as f64;
    assert!((0.22..0.28).contains(&permanent), "{permanent}");
}

#[test]
fn outage_window_fails_every_attempt_inside_it() {
    let m = one(&format!(
        r#"
[workload]
calls = 1
[latency]
distribution = "constant"
value = "10ms"
[[failures]]
model = "outage"
start = "0s"
end = "250ms"
class = "server_error"
{CONSTANT_100MS}"#
    ));
    // Attempts at 0, 110, 220 (inside the outage) and 330 ms (after it).
    assert_eq!(m.attempts_total, 4);
    assert_eq!(m.successes, 1);
    assert_eq!(m.latency_max_ms, 340.0);
    assert_eq!(m.sleep_total_ms, 300.0);
}

const RATE_LIMIT_CASE: &str = r#"
[workload]
calls = 4
[latency]
distribution = "constant"
value = "1ms"
[[failures]]
model = "rate_limit"
rate = 10.0
burst = 2
"#;

#[test]
fn rate_limiter_hints_the_time_until_a_token_frees() {
    let m = one(&format!(
        r#"{RATE_LIMIT_CASE}hint = true
[policies.p]
max_attempts = 10
strategy = {{ kind = "constant", base = "1ms" }}
"#
    ));
    // A token every 100 ms, two saved. At t=0 calls 0 and 1 take the two
    // tokens; calls 2 and 3 are refused at once (a refusal does no work:
    // with a plain latency it is instant) and told to come back in 100
    // ms. At 100 ms call 2 gets the token that frees then; call 3 is told
    // 100 ms more, and gets the token of 200 ms, done at 201 ms.
    assert_eq!(m.successes, 4);
    assert_eq!(m.attempts_total, 1 + 1 + 2 + 3);
    assert_eq!(m.attempts_histogram, vec![2, 1, 1]);
    assert_eq!(m.latency_max_ms, 201.0);
    assert_eq!(m.sleep_total_ms, 100.0 + 100.0 + 100.0);
}

#[test]
fn rate_limiter_without_hints_lets_eager_retries_burn_their_attempts() {
    let m = one(&format!(
        r#"{RATE_LIMIT_CASE}hint = false
[policies.p]
max_attempts = 10
strategy = {{ kind = "constant", base = "1ms" }}
"#
    ));
    // Calls 2 and 3 retry every 2 ms; the next token frees at 100 ms, long
    // after their ten attempts (the last starts at 18 ms).
    assert_eq!(m.successes, 2);
    assert_eq!(m.failures.max_attempts_exceeded, 2);
    assert_eq!(m.attempts_total, 2 + 20);
}

#[test]
fn contention_fails_the_stale_writer() {
    let m = one(r#"
[workload]
calls = 2
[latency]
distribution = "constant"
value = "10ms"
[[failures]]
model = "contention"
rows = 1
[policies.p]
strategy = { kind = "constant", base = "5ms" }
"#);
    // Both read version 0 at t=0. Call 0 writes at 10 ms; call 1's write at
    // 10 ms is stale and fails, it retries at 15 ms, reads version 1 and
    // writes at 25 ms.
    assert_eq!(m.successes, 2);
    assert_eq!(m.attempts_histogram, vec![1, 1]);
    assert_eq!(m.latency_p50_ms, 10.0);
    assert_eq!(m.latency_max_ms, 25.0);
}

#[test]
fn contention_on_separate_rows_rarely_conflicts() {
    let m = one(r#"
[workload]
calls = 20
[[failures]]
model = "contention"
rows = 1000000
[policies.p]
"#);
    assert_eq!(m.attempts_total, 20);
}

const OVERLOAD_CASE: &str = r#"
[workload]
calls = 2
[latency]
distribution = "constant"
value = "100ms"
[[failures]]
model = "overload"
capacity = 1
latency_growth = 1.0
"#;

#[test]
fn overload_stretches_latency_with_load() {
    let m = one(&format!(
        r#"{OVERLOAD_CASE}
[policies.p]
"#
    ));
    // Call 0 is alone: 100 ms. Call 1 makes two in flight for a capacity
    // of one: excess 1, latency × 2.
    assert_eq!(m.successes, 2);
    assert_eq!(m.latency_p50_ms, 100.0);
    assert_eq!(m.latency_max_ms, 200.0);
}

#[test]
fn overload_timeouts_are_transient_and_the_service_keeps_working() {
    let m = one(&format!(
        r#"{OVERLOAD_CASE}timeout = "150ms"
[policies.p]
max_attempts = 3
strategy = {{ kind = "constant", base = "10ms" }}
"#
    ));
    // Call 1: 200 ms > 150 ms, times out at 150 ms; retries at 160 ms while
    // the service still works on its first attempt (until 200 ms): two in
    // flight, 200 ms again, times out at 310 ms; retries at 320 ms while
    // the second attempt's work runs until 360 ms: times out at 470 ms.
    assert_eq!(m.successes, 1);
    assert_eq!(m.failures.max_attempts_exceeded, 1);
    assert_eq!(m.attempts_total, 4);
    assert_eq!(m.latency_max_ms, 470.0);
}

#[test]
fn overload_error_rate_fails_attempts_with_its_class() {
    let m = one(&format!(
        r#"{OVERLOAD_CASE}error_rate = 1.0
class = "permanent"
[policies.p]
"#
    ));
    assert_eq!(m.failures.permanent_fail, 2);
}

#[test]
fn scripted_outcomes_play_in_order_with_hints() {
    let m = one(&format!(
        r#"
[workload]
calls = 3
[latency]
distribution = "constant"
value = "10ms"
[[failures]]
model = "scripted"
outcomes = ["server_error", "rate_limit/300ms", "ok"]
{CONSTANT_100MS}"#
    ));
    // 0–10 ms server_error, sleep 100; 110–120 rate_limit with a 300 ms
    // hint, sleep max(100, 300); 420–430 ok.
    assert_eq!(m.attempts_histogram, vec![0, 0, 3]);
    assert_eq!(m.latency_max_ms, 430.0);
    assert_eq!(m.sleep_total_ms, 3.0 * 400.0);
}

#[test]
fn scripted_then_applies_past_the_script() {
    let m = one(r#"
[workload]
calls = 1
[[failures]]
model = "scripted"
outcomes = ["transient"]
then = "unknown"
[policies.p]
max_unknown_attempts = 2
"#);
    // transient, unknown, unknown: the second unknown hits the unknown cap.
    assert_eq!(m.attempts_total, 3);
    assert_eq!(m.failures.max_unknown_attempts_exceeded, 1);
}

#[test]
fn trace_replays_a_recorded_timeline() {
    let m = one(&format!(
        r#"
[workload]
calls = 1
[latency]
distribution = "constant"
value = "10ms"
[[failures]]
model = "trace"
data = """
time,class
0,server_error
0.2,ok
"""
{CONSTANT_100MS}"#
    ));
    // Attempts at 0 and 110 ms fail; at 220 ms the trace says ok.
    assert_eq!(m.attempts_total, 3);
    assert_eq!(m.latency_max_ms, 230.0);
}

#[test]
fn a_trace_saved_with_a_byte_order_mark_reads_as_without() {
    // Spreadsheet programs save "CSV UTF-8" with a byte order mark.
    let with = |bom: &str| {
        one(&format!(
            r#"
[workload]
calls = 1
[latency]
distribution = "constant"
value = "10ms"
[[failures]]
model = "trace"
data = "{bom}time,class\n0,server_error\n0.2,ok\n"
{CONSTANT_100MS}"#
        ))
    };
    let m = with("\\uFEFF");
    assert_eq!(m.attempts_total, 3);
    assert_eq!(m, with(""));
}

#[test]
fn models_apply_only_inside_their_window() {
    let m = one(&format!(
        r#"
[workload]
calls = 1
[latency]
distribution = "constant"
value = "10ms"
[[failures]]
model = "random"
probability = 1.0
classes = {{ transient = 1.0 }}
until = "150ms"
{CONSTANT_100MS}"#
    ));
    assert_eq!(m.attempts_total, 3);
}

#[test]
fn fixed_rate_and_closed_loop_arrivals() {
    let m = one(r#"
bucket = "100ms"
[workload]
calls = 4
arrival = "fixed_rate"
rate = 10.0
[policies.p]
"#);
    assert_eq!(m.load_per_bucket, vec![1, 1, 1, 1]);
    let m = one(r#"
bucket = "5ms"
[workload]
calls = 4
arrival = "closed_loop"
clients = 2
think_time = "5ms"
[latency]
distribution = "constant"
value = "10ms"
[policies.p]
"#);
    // Two clients start at 0 and again at 10 + 5 ms.
    assert_eq!(m.load_per_bucket, vec![2, 0, 0, 2]);
}

#[test]
fn identical_policies_face_identical_dice() {
    let ms = run(r#"
[workload]
calls = 500
arrival = "poisson"
rate = 200.0
[latency]
distribution = "lognormal"
median = "20ms"
sigma = 0.5
[[failures]]
model = "random"
probability = 0.3
classes = { server_error = 1.0, transient = 1.0 }
[policies.a]
[policies.b]
"#);
    let (mut a, b) = (ms[0].clone(), ms[1].clone());
    a.policy = b.policy.clone();
    assert_eq!(a, b);
}

#[test]
fn trace_files_are_read_next_to_the_scenario() {
    let dir = std::env::temp_dir().join(format!("reflexio-sim-trace-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("traces")).unwrap();
    std::fs::write(
        dir.join("traces/recorded.csv"),
        "# recorded on a bad day\ntime,class\n0s,rate_limit/150ms\n100ms,ok\n",
    )
    .unwrap();
    let scenario = dir.join("replay.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"
[workload]
calls = 1
[latency]
distribution = "constant"
value = "10ms"
[[failures]]
model = "trace"
file = "traces/recorded.csv"
{CONSTANT_100MS}"#
        ),
    )
    .unwrap();
    let scenario = Scenario::from_file(&scenario).unwrap_or_else(|e| panic!("{e}"));
    let report = reflexio_sim::run(&scenario, 1).unwrap();
    let m = &report.runs[0].policies[0];
    // 0–10 ms rate_limit with a 150 ms hint; sleep max(100, 150); ok at 160.
    assert_eq!(m.attempts_total, 2);
    assert_eq!(m.latency_max_ms, 170.0);
    let _ = std::fs::remove_dir_all(&dir);
}
