//! The clients' timers (`[client] oversleep`) and a rate limiter's
//! refusals, against cases worked out by hand, and the modes of driving a
//! run against each other with them.

mod common;

use reflexio_sim::{PolicyMetrics, Scenario};

fn scenario(source: &str) -> Scenario {
    common::scenario(source, "oversleep.toml")
}

fn one(source: &str) -> PolicyMetrics {
    common::run_first(source, "oversleep.toml").remove(0)
}

/// One call whose every attempt fails (10 ms each), and a client that
/// wakes `late` after every sleep of positive length.
fn failing_call(late: &str, policy: &str) -> String {
    format!(
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
[client]
oversleep = {{ distribution = "constant", value = "{late}" }}
[policies.p]
{policy}
"#
    )
}

#[test]
fn every_sleep_ends_late_by_the_oversleep() {
    let m = one(&failing_call(
        "3ms",
        "max_attempts = 3\nstrategy = { kind = \"constant\", base = \"100ms\" }",
    ));
    // Attempts at 0, 113 and 226 ms; each sleep lasts 103 ms.
    assert_eq!(m.attempts_total, 3);
    assert_eq!(m.latency_max_ms, 236.0);
    assert_eq!(m.sleep_total_ms, 206.0);
}

#[test]
fn a_zero_delay_does_not_sleep_so_it_does_not_oversleep() {
    let m = one(&failing_call(
        "3ms",
        "max_attempts = 3\nstrategy = { kind = \"constant\", base = \"0s\" }",
    ));
    // Attempts at 0, 10 and 20 ms.
    assert_eq!(m.latency_max_ms, 30.0);
    assert_eq!(m.sleep_total_ms, 0.0);
}

#[test]
fn a_wake_far_past_the_deadline_ends_the_call_when_it_wakes() {
    // The first attempt fails at 10 ms; the delay of 100 ms fits before
    // the 150 ms deadline, but the client wakes 60 ms late, at 170 ms:
    // more than the engine's wake-up tolerance (10 ms) past the deadline,
    // so the planned attempt is not made and the call ends then.
    let m = one(&failing_call(
        "60ms",
        "deadline = \"150ms\"\nmax_attempts = 10\nstrategy = { kind = \"constant\", base = \"100ms\" }",
    ));
    assert_eq!(m.attempts_total, 1);
    assert_eq!(m.failures.deadline_exceeded, 1);
    assert_eq!(m.latency_max_ms, 170.0);
    assert_eq!(m.sleep_total_ms, 160.0);
}

#[test]
fn a_wake_within_the_tolerance_goes_ahead() {
    // Attempt 1 fails at 10 ms, its client wakes at 115 ms; attempt 2
    // fails at 125 ms, and the delay is cut to the 25 ms left: the client
    // wakes at 155 ms, past the deadline but within the tolerance, and
    // attempt 3 is made. It fails at 165 ms, past the deadline: the end.
    let m = one(&failing_call(
        "5ms",
        "deadline = \"150ms\"\nmax_attempts = 10\nstrategy = { kind = \"constant\", base = \"100ms\" }",
    ));
    assert_eq!(m.attempts_total, 3);
    assert_eq!(m.failures.deadline_exceeded, 1);
    assert_eq!(m.latency_max_ms, 165.0);
}

#[test]
fn a_rate_limit_refusal_skips_the_service_leg() {
    // One token a second, one saved. Call 0's request arrives at 10 ms
    // and takes the token: done at 10 + 5 + 20 = 35 ms. Call 1's arrives
    // at 10 ms too and is refused at the door: no work, the refusal
    // crosses the response leg and the client learns at 30 ms. It sleeps
    // 1 s; its second request arrives at 1,040 ms, after the token of
    // 1,010 ms, and is done at 1,065 ms.
    let m = one(r#"
[workload]
calls = 2
[latency]
request = { distribution = "constant", value = "10ms" }
service = { distribution = "constant", value = "5ms" }
response = { distribution = "constant", value = "20ms" }
[[failures]]
model = "rate_limit"
rate = 1.0
hint = false
[policies.p]
max_attempts = 2
strategy = { kind = "constant", base = "1s" }
"#);
    assert_eq!(m.successes, 2);
    assert_eq!(m.attempts_total, 3);
    assert_eq!(m.latency_max_ms, 1065.0);
    assert_eq!(m.sleep_total_ms, 1000.0);
}

#[test]
fn oversleep_breaks_the_lockstep_of_exact_delays_with_a_token_lattice() {
    // A saturated limiter frees a token every 10 ms; a policy that sleeps
    // exactly 10 ms after a refusal comes back at the same point of the
    // token's cycle every time, and a call that lost once loses again
    // (refusals are instant). A client that wakes a little late, as real
    // timers do, competes afresh on every retry: fewer first attempts
    // win, and a success takes more attempts.
    let base = r#"
seed = 3
[workload]
calls = 2000
arrival = "poisson"
rate = 150.0
[latency]
distribution = "lognormal"
median = "40ms"
sigma = 0.4
[[failures]]
model = "rate_limit"
rate = 100.0
burst = 20
[policies.p]
max_attempts = 6
strategy = { kind = "constant", base = "10ms" }
"#;
    let exact = one(base);
    let late = one(&format!(
        "{base}\n[client]\noversleep = {{ distribution = \"uniform\", min = \"0ms\", max = \"2ms\" }}\n"
    ));
    let first_try = |m: &PolicyMetrics| m.attempts_histogram[0] as f64 / m.calls as f64;
    assert!(
        first_try(&exact) > first_try(&late) + 0.1,
        "first attempts that succeed: {} exact, {} late",
        first_try(&exact),
        first_try(&late)
    );
    assert!(late.attempts_total as f64 > 1.1 * exact.attempts_total as f64);
}

#[test]
fn the_modes_agree_with_an_oversleep() {
    let legs = r#"
[latency]
request = { distribution = "exponential", mean = "3ms" }
service = { distribution = "uniform", min = "1ms", max = "9ms" }
response = { distribution = "lognormal", median = "4ms", sigma = 0.4 }
[client]
oversleep = { distribution = "exponential", mean = "2ms" }
"#;
    for failures in [
        "[[failures]]\nmodel = \"contention\"\nrows = 3\n",
        "[[failures]]\nmodel = \"rate_limit\"\nrate = 150.0\nburst = 3\n",
        "[[failures]]\nmodel = \"random\"\nprobability = 0.4\nclasses = { transient = 1.0 }\n",
    ] {
        let source = format!(
            "[workload]\ncalls = 300\narrival = \"poisson\"\nrate = 200.0\n{legs}{failures}\n[policies.p]\ndeadline = \"40ms\"\nmax_attempts = 8\nstrategy = {{ kind = \"decorrelated_jitter\", base = \"2ms\", max = \"100ms\" }}\n"
        );
        let s = scenario(&source);
        let auto = common::in_every_mode(&s, &s.policies[0], 5, failures);
        assert_eq!(auto.violations, 0, "{failures}");
        assert!(auto.attempts_total > auto.calls, "{failures}: some retries");
    }
}

#[test]
fn a_bad_oversleep_is_refused_with_its_position() {
    let cases = [
        (
            "[workload]\ncalls = 1\n[client]\noversleep = { distribution = \"uniform\", min = \"2ms\", max = \"1ms\" }\n[policies.p]\n",
            "`client.oversleep",
        ),
        (
            "[workload]\ncalls = 1\n[client]\nwake = \"1ms\"\n[policies.p]\n",
            "oversleep.toml:4:1",
        ),
        (
            "[workload]\ncalls = 1\n[client]\noversleep = { distribution = \"exponential\", mean = \"0s\" }\n[policies.p]\n",
            "`client.oversleep.mean`: must be greater than zero",
        ),
        (
            "[workload]\ncalls = 1\n[[client]]\noversleep = { distribution = \"constant\", value = \"1ms\" }\n[policies.p]\n",
            "`client` is one table: write `[client]`, not `[[client]]`",
        ),
        (
            "[[workload]]\ncalls = 1\n[policies.p]\n",
            "`workload` is one table: write `[workload]`, not `[[workload]]`",
        ),
    ];
    for (source, want) in cases {
        let e = Scenario::from_toml_str(source, "oversleep.toml")
            .expect_err("the scenario is refused")
            .to_string();
        assert!(e.contains(want), "want `{want}`, got `{e}`");
    }
}

#[test]
fn scenarios_run_one_after_another_on_a_thread_keep_their_own_latencies() {
    // Same seed, same calls, another latency: nothing kept for the first
    // may be read for the second (jobs run on the calling thread here).
    let with = |median: &str| {
        scenario(&format!(
            "seed = 4\n[workload]\ncalls = 50\n[latency]\ndistribution = \"lognormal\"\nmedian = \"{median}\"\nsigma = 0.2\n[[failures]]\nmodel = \"random\"\nprobability = 0.5\nclasses = {{ transient = 1.0 }}\n[policies.p]\nstrategy = {{ kind = \"constant\", base = \"1ms\" }}\n[policies.q]\nstrategy = {{ kind = \"constant\", base = \"2ms\" }}\n"
        ))
    };
    let run = |s: &Scenario| {
        reflexio_sim::world::run_many_on(s, s.seed, 1, 1, &|_, _| {})
            .unwrap()
            .runs
            .remove(0)
            .policies
    };
    let (fast, slow) = (with("10ms"), with("50ms"));
    let after_fast = {
        run(&fast);
        run(&slow)
    };
    // The same scenario on a fresh thread, where nothing was kept.
    let alone = std::thread::spawn(move || run(&slow)).join().unwrap();
    assert_eq!(after_fast, alone);
    assert!(
        alone[0].latency_p50_ms > 40.0,
        "{}",
        alone[0].latency_p50_ms
    );
}
