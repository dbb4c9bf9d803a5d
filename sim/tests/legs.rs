//! The anatomy of an attempt (request, service and response legs, round
//! trips), workload phases and zero delays, against cases worked out by
//! hand, and the two ways of driving a run against each other.

mod common;

use reflexio_sim::{PolicyMetrics, Scenario};

fn scenario(source: &str) -> Scenario {
    common::scenario(source, "legs.toml")
}

fn one(source: &str) -> PolicyMetrics {
    common::run_first(source, "legs.toml").remove(0)
}

fn error(source: &str) -> String {
    Scenario::from_toml_str(source, "legs.toml")
        .expect_err("the scenario is refused")
        .to_string()
}

const LEGS: &str = r#"
[latency]
request = { distribution = "constant", value = "10ms" }
service = { distribution = "constant", value = "5ms" }
response = { distribution = "constant", value = "20ms" }
"#;

#[test]
fn the_client_learns_after_the_response_leg() {
    let m = one(&format!(
        r#"
[workload]
calls = 1
{LEGS}
[[failures]]
model = "scripted"
outcomes = ["transient", "transient"]
[policies.p]
strategy = {{ kind = "constant", base = "100ms" }}
"#
    ));
    // Each attempt: 10 + 5 + 20 = 35 ms from send to outcome; two sleeps
    // of 100 ms: 3 × 35 + 200 = 305 ms.
    assert_eq!(m.attempts_total, 3);
    assert_eq!(m.latency_max_ms, 305.0);
}

#[test]
fn outages_decide_by_the_arrival_at_the_service() {
    // The outage covers [0, 10 ms): the first request arrives at 10 ms,
    // after it, and succeeds.
    let m = one(&format!(
        r#"
[workload]
calls = 1
{LEGS}
[[failures]]
model = "outage"
start = "0s"
end = "10ms"
[policies.p]
"#
    ));
    assert_eq!(m.successes, 1);
    assert_eq!(m.attempts_total, 1);
    // One ns later, the arrival falls inside it.
    let m = one(&format!(
        r#"
[workload]
calls = 1
{LEGS}
[[failures]]
model = "outage"
start = "0s"
end = "10000001ns"
[policies.p]
strategy = {{ kind = "constant", base = "1ms" }}
"#
    ));
    assert_eq!(m.attempts_total, 2);
    assert_eq!(m.latency_max_ms, 71.0);
}

#[test]
fn the_client_timeout_runs_from_the_send() {
    // 10 + 5 + 20 = 35 ms to learn; a 30 ms timeout cuts it: the attempt
    // fails as transient 30 ms after the send, though the service's work
    // (its capacity is never exceeded) ended at 15 ms.
    let m = one(&format!(
        r#"
[workload]
calls = 1
{LEGS}
[[failures]]
model = "overload"
capacity = 10
timeout = "30ms"
[policies.p]
max_attempts = 2
strategy = {{ kind = "constant", base = "100ms" }}
"#
    ));
    assert_eq!(m.attempts_total, 2);
    assert_eq!(m.successes, 0);
    assert_eq!(m.latency_max_ms, 160.0);
}

#[test]
fn contention_reads_at_the_arrival_and_writes_at_the_end_of_the_work() {
    // Two calls at once on one row, the second one's request 1 ms slower.
    // Single round trip, request 10 ms, service 5 ms: call 0 reads at
    // 10 ms and writes at 15 ms; call 1 reads at 11 ms (version 0) and
    // writes at 16 ms: stale, so it retries. With a transaction the window
    // is the same idea over two round trips.
    let source = r#"
[workload]
calls = 2
[latency]
request = { distribution = "uniform", min = "10ms", max = "11ms" }
service = { distribution = "constant", value = "5ms" }
response = { distribution = "constant", value = "10ms" }
[[failures]]
model = "contention"
rows = 1
[policies.p]
max_attempts = 5
strategy = { kind = "constant", base = "0s" }
"#;
    let m = one(source);
    assert_eq!(m.successes, 2);
    assert_eq!(m.attempts_total, 3);
    assert_eq!(m.failures.total(), 0);
}

#[test]
fn a_read_then_write_transaction_spans_two_round_trips() {
    // Two round trips of 10 ms hops and no service time: the client learns
    // 40 ms after the send; the conflict window runs from the read's
    // arrival (10 ms) to the write's arrival (30 ms). Two calls at once
    // conflict: one wins at 30 ms, the other learns at 40 ms and retries
    // at once (constant 0s): its read arrives at 50 ms, after the winner's
    // write, so it succeeds at 80 ms.
    let m = one(r#"
[workload]
calls = 2
[latency]
round_trips = 2
request = { distribution = "constant", value = "10ms" }
response = { distribution = "constant", value = "10ms" }
[[failures]]
model = "contention"
rows = 1
[policies.p]
max_attempts = 5
strategy = { kind = "constant", base = "0s" }
"#);
    assert_eq!(m.attempts_total, 3);
    assert_eq!(m.successes, 2);
    assert_eq!(m.latency_p50_ms, 40.0);
    assert_eq!(m.latency_max_ms, 80.0);
}

#[test]
fn overload_counts_a_transaction_until_its_last_work() {
    // Two round trips of 10 ms legs and 5 ms of work: the service span
    // from the first request's arrival to the end of the last work is
    // 5 + 10 + 10 + 5 = 30 ms, and an idle attempt takes 50 ms. With a
    // capacity of 1, each transaction already in flight adds one span.
    let source = |arrival: &str| {
        format!(
            r#"
[workload]
calls = 3
{arrival}
[latency]
round_trips = 2
request = {{ distribution = "constant", value = "10ms" }}
service = {{ distribution = "constant", value = "5ms" }}
response = {{ distribution = "constant", value = "10ms" }}
[[failures]]
model = "overload"
capacity = 1
[policies.p]
"#
        )
    };
    // Three at once: the reads arrive together at 10 ms, with 1, 2 and 3
    // in flight: spans of 30, 60 and 90 ms.
    let m = one(&source("arrival = \"all_at_once\""));
    assert_eq!(m.successes, 3);
    assert_eq!((m.latency_p50_ms, m.latency_max_ms), (80.0, 110.0));
    // One every 20 ms: call 1's read arrives at 30 ms, between call 0's
    // works (at 10 to 15 and 35 to 40 ms), and finds it in flight; call 2
    // (read at 50 ms) finds call 1 (until 90 ms) but not call 0.
    let m = one(&source("arrival = \"fixed_rate\"\nrate = 50.0"));
    assert_eq!((m.latency_p50_ms, m.latency_max_ms), (80.0, 80.0));
}

#[test]
fn a_plain_latency_is_the_service_leg_alone() {
    let plain = r#"
[latency]
distribution = "lognormal"
median = "20ms"
sigma = 0.5
"#;
    let service = r#"
[latency]
service = { distribution = "lognormal", median = "20ms", sigma = 0.5 }
"#;
    for failures in [
        "[[failures]]\nmodel = \"contention\"\nrows = 3\n",
        "[[failures]]\nmodel = \"rate_limit\"\nrate = 200.0\nburst = 5\n",
        "[[failures]]\nmodel = \"overload\"\ncapacity = 5\ntimeout = \"60ms\"\nerror_growth = 0.1\n",
        "[[failures]]\nmodel = \"random\"\nprobability = 0.3\nclasses = { transient = 1.0 }\n",
    ] {
        let body = format!(
            "[workload]\ncalls = 400\narrival = \"poisson\"\nrate = 300.0\n{failures}\n[policies.p]\nstrategy = {{ kind = \"full_jitter\", base = \"5ms\", max = \"200ms\" }}\n"
        );
        let a = one(&format!("{plain}{body}"));
        let b = one(&format!("{service}{body}"));
        assert_eq!(a, b, "{failures}");
    }
}

#[test]
fn queueing_every_step_gives_the_same_results() {
    // Continuous legs, so that no two events share a nanosecond and the
    // order of simultaneous events cannot differ between the two modes.
    let legs = r#"
[latency]
request = { distribution = "exponential", mean = "3ms" }
service = { distribution = "uniform", min = "1ms", max = "9ms" }
response = { distribution = "lognormal", median = "4ms", sigma = 0.4 }
"#;
    for (failures, round_trips) in [
        ("[[failures]]\nmodel = \"contention\"\nrows = 2\n", 2),
        ("[[failures]]\nmodel = \"contention\"\nrows = 4\n", 1),
        (
            "[[failures]]\nmodel = \"random\"\nprobability = 0.2\nclasses = { transient = 1.0 }\n[[failures]]\nmodel = \"contention\"\nrows = 2\n",
            2,
        ),
        (
            "[[failures]]\nmodel = \"rate_limit\"\nrate = 150.0\nburst = 3\n",
            1,
        ),
        (
            "[[failures]]\nmodel = \"overload\"\ncapacity = 2\ntimeout = \"20ms\"\nerror_growth = 0.2\n",
            1,
        ),
        (
            "[[failures]]\nmodel = \"random\"\nprobability = 0.4\nclasses = { transient = 1.0 }\n",
            3,
        ),
        (
            "[[failures]]\nmodel = \"overload\"\ncapacity = 2\ntimeout = \"40ms\"\n[[failures]]\nmodel = \"contention\"\nrows = 2\n",
            2,
        ),
    ] {
        let source = format!(
            "[workload]\ncalls = 300\narrival = \"poisson\"\nrate = 200.0\n{legs}round_trips = {round_trips}\n{failures}\n[policies.p]\nmax_attempts = 8\nstrategy = {{ kind = \"decorrelated_jitter\", base = \"2ms\", max = \"100ms\" }}\n[policies.q]\nmax_attempts = 4\nstrategy = {{ kind = \"equal_jitter\", base = \"3ms\", max = \"50ms\" }}\n"
        );
        let s = scenario(&source);
        for policy in &s.policies {
            let auto = common::in_every_mode(&s, policy, 5, failures);
            assert!(auto.attempts_total > auto.calls, "{failures}: some retries");
        }
    }
}

#[test]
fn fixed_rate_phases_change_the_spacing() {
    // 10 calls/s for 1 s (calls 0..9 at 0, 100, ..., 900 ms), then
    // 100 calls/s: call 10 at 1 s, call 19 at 1.09 s; each takes 10 ms.
    let m = one(r#"
[workload]
calls = 20
arrival = "fixed_rate"
phases = [{ rate = 10.0, for = "1s" }, { rate = 100.0 }]
[policies.p]
"#);
    assert_eq!(m.finished_at_ms, 1100.0);
    assert_eq!(m.load_per_bucket, vec![10, 10]);
}

#[test]
fn poisson_phases_follow_their_rates() {
    // 100/s for 10 s, 1000/s for 1 s, then 100/s: about 1,000, then
    // 1,000 in one second, then the rest.
    let m = one(r#"
[workload]
calls = 4000
arrival = "poisson"
phases = [{ rate = 100.0, for = "10s" }, { rate = 1000.0, for = "1s" }, { rate = 100.0 }]
[policies.p]
"#);
    let before: u64 = m.load_per_bucket[..10].iter().sum();
    let spike = m.load_per_bucket[10];
    assert!((900..1100).contains(&before), "{before}");
    assert!((900..1100).contains(&spike), "{spike}");
    assert!(m.load_per_bucket[12] < 140, "{:?}", m.load_per_bucket);
}

#[test]
fn retrying_immediately_is_a_zero_constant() {
    let m = one(r#"
[workload]
calls = 1
[[failures]]
model = "scripted"
outcomes = ["transient", "transient"]
[policies.p]
strategy = { kind = "constant", base = "0s" }
"#);
    assert_eq!(m.attempts_total, 3);
    assert_eq!(m.sleep_total_ms, 0.0);
    assert_eq!(m.latency_max_ms, 30.0);
}

#[test]
fn a_runaway_is_stopped_with_a_clear_message() {
    let s = scenario(
        r#"
[workload]
calls = 101
[latency]
distribution = "constant"
value = "0s"
[[failures]]
model = "random"
probability = 1.0
classes = { transient = 1.0 }
[policies.forever]
deadline = "off"
max_attempts = 100000
strategy = { kind = "constant", base = "0s" }
"#,
    );
    // 101 calls may make 1,010,000 attempts; each would make 100,000.
    let e = reflexio_sim::run(&s, 1).unwrap_err().to_string();
    for needle in [
        "runaway",
        "forever",
        "1010000 attempts for 101 calls",
        "per call",
        "deadline",
    ] {
        assert!(e.contains(needle), "{needle}: {e}");
    }
}

#[test]
fn nonsense_is_refused_with_its_position() {
    let cases = [
        (
            "[workload]\ncalls = 1\n[latency]\ndistribution = \"constant\"\nvalue = \"1ms\"\nrequest = { distribution = \"constant\", value = \"1ms\" }\n[policies.p]\n",
            "legs.toml:6:11: `latency.request`: give either one `distribution`",
        ),
        (
            "[workload]\ncalls = 1\n[latency]\ndistribution = \"constant\"\nvalue = \"1ms\"\nround_trips = 2\n[policies.p]\n",
            "legs.toml:6:15: `latency.round_trips`: round trips cross the network",
        ),
        (
            "[workload]\ncalls = 1\n[latency]\nround_trips = 2\nrequest = { distribution = \"constant\", value = \"1ms\" }\n[[failures]]\nmodel = \"rate_limit\"\nrate = 3.0\n[policies.p]\n",
            "legs.toml:7:9: `failures[0].model`: the `rate_limit` model counts one request per attempt",
        ),
        (
            "[workload]\ncalls = 1\n[latency]\nround_trips = 0\nservice = { distribution = \"constant\", value = \"1ms\" }\n[policies.p]\n",
            "`latency.round_trips`: must be from 1 to 16",
        ),
        (
            "[workload]\ncalls = 1\n[latency]\nservice = { distribution = \"exponential\", mean = \"0s\" }\n[policies.p]\n",
            "legs.toml:4:50: `latency.service.mean`: must be greater than zero",
        ),
        (
            "[workload]\ncalls = 1\n[latency]\nmean = \"1ms\"\n[policies.p]\n",
            "`latency.mean`: `[latency]` needs either `distribution`",
        ),
        (
            "[workload]\ncalls = 5\narrival = \"poisson\"\nphases = [{ rate = 1.0, for = \"1s\" }, { rate = 2.0, for = \"1s\" }]\n[policies.p]\n",
            "`workload.phases[1].for`: the last phase lasts until every call has arrived",
        ),
        (
            "[workload]\ncalls = 5\narrival = \"poisson\"\nrate = 3.0\nphases = [{ rate = 1.0 }]\n[policies.p]\n",
            "`workload.rate`: give either one `rate` or `phases`",
        ),
        (
            "[workload]\ncalls = 5\narrival = \"fixed_rate\"\nphases = [{ rate = 1.0, for = \"1s\" }, { rate = 0.0 }]\n[policies.p]\n",
            "`workload.phases[1].rate`: the rate (calls per second) must be a finite number greater than 0",
        ),
        (
            "[workload]\ncalls = 5\narrival = \"all_at_once\"\nphases = [{ rate = 1.0 }]\n[policies.p]\n",
            "`workload.phases`: `phases` applies only to",
        ),
        (
            "[workload]\ncalls = 5\n[policies.p]\nstrategy = { kind = \"full_jitter\", base = \"0s\" }\n",
            "`policies.p.strategy.base`: must be greater than zero for `full_jitter`",
        ),
    ];
    for (source, want) in cases {
        let e = error(source);
        assert!(e.contains(want), "want `{want}`, got `{e}`");
    }
}
