//! `[latency.retry]`: the legs of every attempt after a call's first,
//! against cases worked out by hand: the first attempt keeps `[latency]`'s
//! legs, retries draw theirs from the same `(call, attempt, leg)` keys, the
//! kept attempts of one scenario are not read for another, and the
//! refusals.

mod common;

use reflexio_sim::world::{run_policy_with, Mode};
use reflexio_sim::{PolicyMetrics, Scenario};

fn scenario(source: &str) -> Scenario {
    common::scenario(source, "retry.toml")
}

fn all(source: &str) -> Vec<PolicyMetrics> {
    common::run_first(source, "retry.toml")
}

fn error(source: &str) -> String {
    Scenario::from_toml_str(source, "retry.toml")
        .expect_err("the scenario is refused")
        .to_string()
}

const FIRST: &str = r#"
[latency]
request = { distribution = "constant", value = "10ms" }
service = { distribution = "constant", value = "5ms" }
response = { distribution = "constant", value = "20ms" }
"#;

const COLD: &str = r#"
[latency.retry]
request = { distribution = "constant", value = "40ms" }
service = { distribution = "constant", value = "15ms" }
response = { distribution = "constant", value = "60ms" }
"#;

/// One call whose first attempt fails and whose second succeeds, after a
/// constant sleep of 100 ms.
const FAIL_ONCE: &str = r#"
[workload]
calls = 1
[[failures]]
model = "scripted"
outcomes = ["transient"]
[policies.p]
strategy = { kind = "constant", base = "100ms" }
"#;

#[test]
fn a_retry_crosses_its_own_legs() {
    // First attempt 10 + 5 + 20 = 35 ms, sleep 100 ms, retry
    // 40 + 15 + 60 = 115 ms: 250 ms, in every mode.
    let s = scenario(&format!("{FIRST}{COLD}{FAIL_ONCE}"));
    let m = common::in_every_mode(&s, &s.policies[0], s.seed, "cold retry");
    assert_eq!(m.attempts_total, 2);
    assert_eq!(m.successes, 1);
    assert_eq!(m.latency_max_ms, 250.0);
    // Without `[latency.retry]`, the retry crosses the first's legs:
    // 35 + 100 + 35 = 170 ms.
    let s = scenario(&format!("{FIRST}{FAIL_ONCE}"));
    let m = common::in_every_mode(&s, &s.policies[0], s.seed, "same legs");
    assert_eq!(m.latency_max_ms, 170.0);
}

#[test]
fn a_plain_retry_over_round_trips() {
    // Two round trips of 1 + 2 + 3 ms: 12 ms. A plain retry of 30 ms per
    // round trip (the service's work, instant network legs): 60 ms.
    let source = format!(
        "[latency]\nround_trips = 2\nrequest = {{ distribution = \"constant\", value = \"1ms\" }}\nservice = {{ distribution = \"constant\", value = \"2ms\" }}\nresponse = {{ distribution = \"constant\", value = \"3ms\" }}\n[latency.retry]\ndistribution = \"constant\"\nvalue = \"30ms\"\n{FAIL_ONCE}"
    );
    let s = scenario(&source);
    let m = common::in_every_mode(&s, &s.policies[0], s.seed, "plain retry");
    assert_eq!(m.latency_max_ms, 12.0 + 100.0 + 60.0);
}

#[test]
fn the_first_attempt_is_unaffected() {
    // Random legs and failures; calls that never retry, and every call's
    // first attempt, see the same legs with or without `[latency.retry]`.
    let first = r#"
[latency]
request = { distribution = "exponential", mean = "3ms" }
service = { distribution = "uniform", min = "1ms", max = "9ms" }
response = { distribution = "lognormal", median = "4ms", sigma = 0.4 }
"#;
    let body = "[workload]\ncalls = 300\narrival = \"poisson\"\nrate = 200.0\n[[failures]]\nmodel = \"random\"\nprobability = 0.3\nclasses = { transient = 1.0 }\n[policies.one]\nmax_attempts = 1\n[policies.many]\nmax_attempts = 6\nstrategy = { kind = \"full_jitter\", base = \"5ms\", max = \"100ms\" }\n";
    let plain = all(&format!("{first}{body}"));
    let cold = all(&format!("{first}{COLD}{body}"));
    // A single attempt per call: nothing changes.
    assert_eq!(plain[0], cold[0]);
    // With retries the outcomes are the same (they are drawn per
    // `(call, attempt)`), only the retries take longer.
    assert_eq!(plain[1].attempts_total, cold[1].attempts_total);
    assert_eq!(plain[1].successes, cold[1].successes);
    assert!(cold[1].latency_p99_ms > plain[1].latency_p99_ms + 100.0);
}

#[test]
fn retry_legs_equal_to_the_first_change_nothing() {
    // Retries draw from the same `(call, attempt, leg)` keys as before:
    // a `[latency.retry]` that repeats `[latency]` samples exactly what no
    // `[latency.retry]` does, in both forms.
    let legs = "request = { distribution = \"exponential\", mean = \"3ms\" }\nservice = { distribution = \"uniform\", min = \"1ms\", max = \"9ms\" }\nresponse = { distribution = \"normal\", mean = \"4ms\", std_dev = \"2ms\" }\n";
    let plain = "distribution = \"lognormal\"\nmedian = \"6ms\"\nsigma = 0.5\n";
    let body = "[workload]\ncalls = 300\narrival = \"poisson\"\nrate = 300.0\n[[failures]]\nmodel = \"contention\"\nrows = 3\n[policies.p]\nmax_attempts = 8\nstrategy = { kind = \"decorrelated_jitter\", base = \"2ms\", max = \"100ms\" }\n";
    for table in [legs, plain] {
        let without = all(&format!("[latency]\n{table}{body}"));
        let same = all(&format!("[latency]\n{table}[latency.retry]\n{table}{body}"));
        assert_eq!(without, same, "{table}");
        assert!(without[0].attempts_total > without[0].calls, "some retries");
    }
}

#[test]
fn policies_see_the_same_retry_legs() {
    // Common random numbers: the retry of call 0 crosses the same random
    // legs under either policy, so the latencies differ by exactly the
    // difference of the sleeps (100 ms).
    let source = format!(
        "{FIRST}[latency.retry]\nrequest = {{ distribution = \"exponential\", mean = \"30ms\" }}\nservice = {{ distribution = \"uniform\", min = \"10ms\", max = \"90ms\" }}\nresponse = {{ distribution = \"lognormal\", median = \"40ms\", sigma = 0.7 }}\n[workload]\ncalls = 1\n[[failures]]\nmodel = \"scripted\"\noutcomes = [\"transient\"]\n[policies.p]\nstrategy = {{ kind = \"constant\", base = \"100ms\" }}\n[policies.q]\nstrategy = {{ kind = \"constant\", base = \"200ms\" }}\n"
    );
    let m = all(&source);
    let retry = m[0].latency_max_ms - 35.0 - 100.0;
    assert!(retry > 0.0 && retry != 115.0, "a random retry: {retry} ms");
    assert!(
        (m[1].latency_max_ms - m[0].latency_max_ms - 100.0).abs() < 1e-6,
        "{} vs {}",
        m[0].latency_max_ms,
        m[1].latency_max_ms
    );
}

#[test]
fn a_refusal_at_the_door_takes_the_retry_legs() {
    // One token every 100 ms, burst 1; two calls at once. Call 0 takes the
    // token and learns at 10 + 5 + 20 = 35 ms. Call 1 is refused at the
    // door when its request arrives (10 ms) and learns it 20 ms later
    // (30 ms); it sleeps 200 ms; its retry's request arrives 40 ms later
    // (270 ms), finds a token, and the client learns 15 + 60 ms later:
    // 345 ms.
    let source = format!(
        "{FIRST}{COLD}[workload]\ncalls = 2\n[[failures]]\nmodel = \"rate_limit\"\nrate = 10.0\nburst = 1\n[policies.p]\nstrategy = {{ kind = \"constant\", base = \"200ms\" }}\n"
    );
    let s = scenario(&source);
    let m = common::in_every_mode(&s, &s.policies[0], s.seed, "rate limit");
    assert_eq!(m.attempts_total, 3);
    assert_eq!(m.successes, 2);
    assert_eq!(m.latency_max_ms, 345.0);
}

#[test]
fn kept_attempts_of_one_scenario_are_not_read_for_another() {
    // Two scenarios differing only in their retry legs, run one after the
    // other on one thread with one seed: the second must not read the
    // first's kept retries.
    let fast = scenario(&format!(
        "{FIRST}[latency.retry]\ndistribution = \"constant\"\nvalue = \"1ms\"\n{FAIL_ONCE}"
    ));
    let slow = scenario(&format!(
        "{FIRST}[latency.retry]\ndistribution = \"constant\"\nvalue = \"50ms\"\n{FAIL_ONCE}"
    ));
    for mode in [Mode::Auto, Mode::Queued, Mode::Events] {
        let a = run_policy_with(&fast, &fast.policies[0], 7, mode, &mut |_| {}).unwrap();
        let b = run_policy_with(&slow, &slow.policies[0], 7, mode, &mut |_| {}).unwrap();
        assert_eq!(a.latency_max_ms, 35.0 + 100.0 + 1.0, "{mode:?}");
        assert_eq!(b.latency_max_ms, 35.0 + 100.0 + 50.0, "{mode:?}");
    }
}

#[test]
fn retry_tables_that_make_no_sense_are_refused() {
    let head = "[workload]\ncalls = 1\n[latency]\ndistribution = \"constant\"\nvalue = \"1ms\"\n[latency.retry]\n";
    let cases = [
        (
            "round_trips = 2\nservice = { distribution = \"constant\", value = \"1ms\" }\n",
            "retry.toml:7:15: `latency.retry.round_trips`: the round trips are the attempt's, set in `[latency]`",
        ),
        (
            "",
            "retry.toml:6:1: `latency.retry`: `[latency.retry]` needs either `distribution`",
        ),
        (
            "value = \"1ms\"\n",
            "retry.toml:7:9: `latency.retry.value`: `[latency.retry]` needs either `distribution`",
        ),
        (
            "distribution = \"constant\"\nvalue = \"1ms\"\nservice = { distribution = \"constant\", value = \"1ms\" }\n",
            "retry.toml:9:11: `latency.retry.service`: give either one `distribution` for the whole attempt or legs",
        ),
        (
            "service = { distribution = \"constant\", value = \"1ms\" }\nmean = \"2ms\"\n",
            "`latency.retry.mean`: with legs, `mean` belongs inside a leg's table",
        ),
        (
            "request = { distribution = \"exponential\", mean = \"0s\" }\n",
            "`latency.retry.request.mean`: must be greater than zero",
        ),
        (
            "distribution = \"uniform\"\nmin = \"2ms\"\nmax = \"1ms\"\n",
            "`latency.retry.min`: `min` must not be above `max`",
        ),
        (
            "servic = { distribution = \"constant\", value = \"1ms\" }\n",
            "`latency.retry.servic`: unknown field `servic`; did you mean `service`?",
        ),
        (
            "service = { distribution = \"constant\", valu = \"1ms\" }\n",
            "did you mean `value`?",
        ),
        ("retry = 1\n", "`latency.retry.retry`: unknown field `retry`"),
    ];
    for (body, want) in cases {
        let source = format!("{head}{body}[policies.p]\n");
        let e = error(&source);
        assert!(e.contains(want), "want `{want}`, got `{e}`");
    }
    // Round trips set where they belong are fine.
    scenario("[workload]\ncalls = 1\n[latency]\nround_trips = 2\nservice = { distribution = \"constant\", value = \"1ms\" }\n[latency.retry]\nservice = { distribution = \"constant\", value = \"3ms\" }\n[policies.p]\n");
}

#[test]
fn check_prints_the_retry_legs_normalised() {
    let s = scenario(&format!(
        "{FIRST}round_trips = 2\n[latency.retry]\nrequest = {{ distribution = \"constant\", value = \"40ms\" }}\nresponse = {{ distribution = \"uniform\", min = \"10ms\", max = \"30ms\" }}\n[workload]\ncalls = 1\n[policies.p]\n"
    ));
    assert_eq!(
        s.latency.to_toml(),
        "[latency]
round_trips = 2
request = { distribution = \"constant\", value = \"10ms\" }
service = { distribution = \"constant\", value = \"5ms\" }
response = { distribution = \"constant\", value = \"20ms\" }
# a call's first attempt: mean timeline: the request arrives 10 ms after the send; the service works from then until 50 ms (contention reads and writes at those two instants); the client learns the outcome 70 ms after the send

[latency.retry]
request = { distribution = \"constant\", value = \"40ms\" }
service = { distribution = \"constant\", value = \"0s\" }
response = { distribution = \"uniform\", min = \"10ms\", max = \"30ms\" }
# every attempt after a call's first, over the first attempt's round trips (2): mean timeline: the request arrives 40 ms after the send; the service works from then until 100 ms (contention reads and writes at those two instants); the client learns the outcome 120 ms after the send
"
    );
    let s = scenario(&format!(
        "{FIRST}[latency.retry]\ndistribution = \"exponential\"\nmean = \"7ms\"\n[workload]\ncalls = 1\n[policies.p]\n"
    ));
    let text = s.latency.to_toml();
    assert!(
        text.ends_with("[latency.retry]\ndistribution = \"exponential\"\nmean = \"7ms\"\n# the whole of each retry is the service's work; its request and response are instant\n# every attempt after a call's first, over the first attempt's round trips (1): mean timeline: the request arrives 0 ms after the send; the service works from then until 7 ms (contention reads and writes at those two instants); the client learns the outcome 7 ms after the send\n"),
        "{text}"
    );
    // Without retry legs, `[latency]` prints as it always did.
    let s = scenario(&format!("{FIRST}[workload]\ncalls = 1\n[policies.p]\n"));
    assert!(s
        .latency
        .to_toml()
        .contains("\n# mean timeline: the request arrives 10 ms"));
    assert!(!s.latency.to_toml().contains("retry"));
}

#[test]
fn check_prints_the_retry_table_in_text_and_json() {
    let dir = std::env::temp_dir().join(format!("reflexio-sim-retry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hot-row.toml");
    std::fs::write(
        &file,
        r#"
[workload]
calls = 10
[latency]
round_trips = 2
request = { distribution = "constant", value = "20us" }
service = { distribution = "constant", value = "10us" }
response = { distribution = "constant", value = "20us" }
[latency.retry]
request = { distribution = "constant", value = "60us" }
service = { distribution = "constant", value = "30us" }
response = { distribution = "constant", value = "60us" }
[[failures]]
model = "contention"
rows = 1
[policies.p]
strategy = { kind = "equal_jitter", base = "1ms", max = "100ms" }
"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, text, err) = common::cli(&["check", path]);
    assert_eq!(code, 0, "{err}");
    for want in [
        "[latency]\nround_trips = 2\n",
        "# a call's first attempt: mean timeline: the request arrives 0.02 ms after the send; the service works from then until 0.08 ms",
        "the client learns the outcome 0.1 ms after the send\n\n[latency.retry]\nrequest = { distribution = \"constant\", value = \"60us\" }\n",
        "# every attempt after a call's first, over the first attempt's round trips (2): mean timeline: the request arrives 0.06 ms after the send; the service works from then until 0.24 ms (contention reads and writes at those two instants); the client learns the outcome 0.3 ms after the send\n",
    ] {
        assert!(text.contains(want), "`{want}` missing:\n{text}");
    }
    let (code, json, err) = common::cli(&["check", "--format", "json", path]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let latency = doc["scenario"]["latency"].as_str().unwrap();
    assert!(latency.contains("\n[latency.retry]\n"), "{latency}");
    assert!(text.contains(latency), "{latency}\nnot in\n{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
