//! Background workloads (`[[background]]`): traffic that shares the
//! service with the workload under test, under its own fixed policy or
//! none.

mod common;

use common::{assert_has, error};
use reflexio_sim::metrics::{BackgroundMetrics, PolicyMetrics};
use reflexio_sim::world::{run_policy_with, Mode};
use reflexio_sim::Scenario;

fn scenario(source: &str) -> Scenario {
    common::scenario(source, "background.toml")
}

/// Every policy of `source` under `mode`, with seed 7.
fn all(source: &str, mode: Mode) -> Vec<PolicyMetrics> {
    let s = scenario(source);
    s.policies
        .iter()
        .map(|p| run_policy_with(&s, p, 7, mode, &mut |_| {}).unwrap())
        .collect()
}

fn find<'a>(m: &'a PolicyMetrics, name: &str) -> &'a BackgroundMetrics {
    m.background
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("no background `{name}` under {}", m.policy))
}

const POLICIES: &str = r#"
[policies.no-retry]
max_attempts = 1
[policies.quick]
max_attempts = 4
strategy = { kind = "full_jitter", base = "20ms", max = "500ms" }
[policies.aggressive]
max_attempts = 8
strategy = { kind = "constant", base = "5ms" }
allow = ["lockstep"]
"#;

const BACKGROUND: &str = r#"
[[background]]
name = "batch"
calls = 1500
arrival = "poisson"
rate = 300.0

[[background]]
name = "retrying"
calls = 800
arrival = "fixed_rate"
phases = [{ rate = 100.0, for = "2s" }, { rate = 400.0 }]
[background.policy]
max_attempts = 3
strategy = { kind = "equal_jitter", base = "10ms", max = "200ms" }
"#;

const STATELESS: &str = r#"
bucket = "100ms"
[workload]
calls = 2000
arrival = "poisson"
rate = 400.0
[latency]
distribution = "exponential"
mean = "15ms"
[[failures]]
model = "outage"
start = "1s"
end = "1.5s"
class = "server_error"
[[failures]]
model = "random"
probability = 0.2
classes = { server_error = 2.0, transient = 1.0, unknown = 0.5 }
"#;

#[test]
fn background_cannot_change_what_a_stateless_service_does_to_the_workload() {
    let alone = format!("{STATELESS}{POLICIES}");
    let shared = format!("{STATELESS}{BACKGROUND}{POLICIES}");
    for mode in [Mode::Auto, Mode::Queued, Mode::Events] {
        let a = all(&alone, mode);
        let b = all(&shared, mode);
        for (a, mut b) in a.into_iter().zip(b) {
            assert!(a.background.is_empty());
            assert_eq!(b.background.len(), 2);
            b.background.clear();
            assert_eq!(a, b, "policy {} in {mode:?}", a.policy);
        }
    }
}

#[test]
fn background_summaries_add_up() {
    let source = format!("{STATELESS}{BACKGROUND}{POLICIES}");
    for m in all(&source, Mode::Auto) {
        let batch = find(&m, "batch");
        assert_eq!(batch.calls, 1500);
        assert_eq!(batch.succeeded + batch.failed, batch.calls);
        // No policy: one attempt per call, and no checker.
        assert_eq!(batch.attempts, batch.calls);
        assert_eq!(batch.violations, None);
        assert!(batch.failed > 0 && batch.succeeded > 0, "{batch:?}");
        assert!(batch.latency_p50_ms <= batch.latency_p99_ms);
        let retrying = find(&m, "retrying");
        assert_eq!(retrying.calls, 800);
        assert_eq!(retrying.succeeded + retrying.failed, retrying.calls);
        assert!(retrying.attempts > retrying.calls, "{retrying:?}");
        assert!(retrying.attempts <= 3 * retrying.calls, "{retrying:?}");
        // Audited against its own policy.
        assert_eq!(retrying.violations, Some(0));
        // Its retries lift its success rate above the batch's single
        // attempts (both face a 20% random failure rate and the outage).
        assert!(
            retrying.succeeded as f64 / 800.0 > batch.succeeded as f64 / 1500.0 + 0.1,
            "{retrying:?} {batch:?}"
        );
        // Each load series counts its own attempts; the service's load
        // (the load plot's line) is their sum, bucket by bucket.
        for b in &m.background {
            assert_eq!(
                b.load_per_bucket.iter().sum::<u64>(),
                b.attempts,
                "{}",
                b.name
            );
        }
        let service = m.service_load_per_bucket();
        assert_eq!(
            service.iter().sum::<u64>(),
            m.attempts_total + batch.attempts + retrying.attempts
        );
        for (k, total) in service.iter().enumerate() {
            let at = |series: &[u64]| series.get(k).copied().unwrap_or(0);
            assert_eq!(
                *total,
                at(&m.load_per_bucket) + at(&batch.load_per_bucket) + at(&retrying.load_per_bucket),
                "bucket {k}"
            );
        }
    }
    // Without background, the service's load is the policy's own.
    for m in all(&format!("{STATELESS}{POLICIES}"), Mode::Auto) {
        assert_eq!(m.service_load_per_bucket(), m.load_per_bucket);
    }
}

#[test]
fn background_is_the_same_under_every_policy_of_a_stateless_service() {
    let source = format!("{STATELESS}{BACKGROUND}{POLICIES}");
    let runs = all(&source, Mode::Auto);
    for m in &runs[1..] {
        assert_eq!(m.background, runs[0].background, "policy {}", m.policy);
    }
}

/// A token bucket of 100 tokens/s (burst 5) in front of the service; the
/// workload under test asks for 50 calls/s (Poisson) for about 40 s.
fn limited(background: &str) -> String {
    format!(
        r#"
[workload]
calls = 2000
arrival = "poisson"
rate = 50.0
[latency]
distribution = "uniform"
min = "5ms"
max = "15ms"
[[failures]]
model = "rate_limit"
rate = 100.0
burst = 5
hint = false
{background}
[policies.no-retry]
max_attempts = 1
"#
    )
}

#[test]
fn a_rate_limiter_admits_its_refill_rate_across_every_workload() {
    let alone = &all(&limited(""), Mode::Auto)[0];
    // Demand is half the refill rate: nearly every call gets a token.
    assert!(alone.success_rate > 0.99, "{}", alone.success_rate);
    // 6000 background calls at 149/s over 40.26 s: demand is about twice
    // the refill rate (149/s rather than 150/s, so that the two
    // workloads' arrivals do not fall on the same instants).
    let shared = &all(
        &limited(
            r#"
[[background]]
name = "bulk"
calls = 6000
arrival = "fixed_rate"
rate = 149.0
"#,
        ),
        Mode::Auto,
    )[0];
    let bulk = find(shared, "bulk");
    // Every attempt reaches the limiter at its call's arrival (instant
    // requests): the background's last at 5999 / 149 s, the workload's
    // before its last call ends. Closed form: a bucket of rate r and
    // burst b admits at most r × t + b in t seconds, and with demand
    // above r (the background's alone) it admits r × t in the long run.
    let span: f64 = 5999.0 / 149.0;
    let last = span.max(shared.finished_at_ms / 1000.0);
    let admitted = (shared.successes + bulk.succeeded) as f64;
    assert!(admitted <= 100.0 * last + 5.0, "{admitted} in {last} s");
    assert!(admitted >= 0.98 * 100.0 * span, "{admitted} in {span} s");
    // So the workload under test loses calls it did not lose alone.
    assert!(
        shared.success_rate < alone.success_rate - 0.2,
        "{} against {}",
        shared.success_rate,
        alone.success_rate
    );
    // No retries on either side: one attempt per call.
    assert_eq!(shared.attempts_total, 2000);
    assert_eq!(bulk.attempts, 6000);
}

const OVERLOAD: &str = r#"
bucket = "500ms"
[workload]
calls = 4000
arrival = "poisson"
rate = 200.0
[latency]
distribution = "lognormal"
median = "40ms"
sigma = 0.3
[[failures]]
model = "overload"
capacity = 20
latency_growth = 1.0
error_rate = 0.01
error_growth = 0.5
timeout = "300ms"
class = "server_error"
[[failures]]
model = "outage"
start = "5s"
end = "7s"
class = "server_error"
[[background]]
name = "batch"
calls = 4000
arrival = "poisson"
rate = 200.0
"#;

#[test]
fn a_client_that_retries_hard_hurts_the_background_on_a_shared_service() {
    let m = all(&format!("{OVERLOAD}{POLICIES}"), Mode::Auto);
    let quiet = find(&m[0], "batch");
    let storm = find(&m[2], "batch");
    assert_eq!(m[2].policy, "aggressive");
    assert!(
        (storm.succeeded as f64) < quiet.succeeded as f64 * 0.9,
        "batch succeeded {} beside aggressive, {} beside no-retry",
        storm.succeeded,
        quiet.succeeded
    );
    assert!(storm.latency_p50_ms > quiet.latency_p50_ms);
}

fn modes_agree(source: &str) {
    let s = scenario(source);
    for policy in &s.policies {
        let metrics = common::in_every_mode(&s, policy, 3, "background");
        assert!(!metrics.background.is_empty());
    }
}

#[test]
fn modes_agree_with_background_on_overload() {
    modes_agree(&format!(
        "{OVERLOAD}{}{POLICIES}[policies.budgeted]\nmax_attempts = 8\nbudget = {{ kind = \"ratio\", percent = 10 }}\n",
        BACKGROUND.replace("\"batch\"", "\"bulk\"")
    ));
}

#[test]
fn modes_agree_with_background_on_a_rate_limiter_and_contention() {
    modes_agree(&format!(
        r#"
bucket = "100ms"
[workload]
calls = 1500
arrival = "poisson"
rate = 300.0
[latency]
request = {{ distribution = "exponential", mean = "2ms" }}
service = {{ distribution = "exponential", mean = "10ms" }}
response = {{ distribution = "exponential", mean = "2ms" }}
[[failures]]
model = "rate_limit"
rate = 400.0
burst = 20
[[failures]]
model = "contention"
rows = 30
{BACKGROUND}{POLICIES}"#
    ));
    // Contention alone: arrivals are stamped rather than queued in auto
    // mode.
    modes_agree(&format!(
        r#"
bucket = "100ms"
[workload]
calls = 1000
arrival = "poisson"
rate = 300.0
[latency]
distribution = "exponential"
mean = "10ms"
[[failures]]
model = "contention"
rows = 20
{BACKGROUND}{POLICIES}"#
    ));
}

#[test]
fn background_works_beside_a_closed_loop_and_all_at_once() {
    let source = format!(
        r#"
[workload]
calls = 300
arrival = "closed_loop"
clients = 5
think_time = "2ms"
[latency]
distribution = "exponential"
mean = "10ms"
[[failures]]
model = "overload"
capacity = 4
[[background]]
name = "burst"
calls = 50
arrival = "all_at_once"
{POLICIES}"#
    );
    modes_agree(&source);
    for m in all(&source, Mode::Auto) {
        assert_eq!(m.calls, 300);
        let burst = find(&m, "burst");
        assert_eq!((burst.calls, burst.attempts), (50, 50));
    }
}

#[test]
fn background_counts_toward_the_limits() {
    let s = scenario(&format!(
        "max_simulated_attempts = 100000\n{STATELESS}{BACKGROUND}{POLICIES}"
    ));
    // 2000 calls of the workload alone fit 3 policies × 16 runs (96,000
    // attempts at least); with its 2300 background calls they do not.
    let e = reflexio_sim::world::run_many(&s, 1, 16, &|_, _| {}).unwrap_err();
    assert!(
        e.to_string()
            .contains("4300 calls (2000 of the workload, 2300 of its background)"),
        "{e}"
    );
}

/// A service that fails every attempt, and one policy that never retries:
/// the end of a scenario whose background does the retrying.
const ALWAYS_FAILING: &str = r#"[[failures]]
model = "random"
probability = 1.0
classes = { server_error = 1.0 }
[policies.no-retry]
max_attempts = 1
"#;

/// How the run of `source`'s first policy stops, in every mode.
fn stopped_in_every_mode(source: &str) -> Vec<(Mode, reflexio_sim::world::SimError)> {
    let s = scenario(source);
    [Mode::Auto, Mode::Queued, Mode::Events]
        .into_iter()
        .map(|mode| {
            let e = run_policy_with(&s, &s.policies[0], 7, mode, &mut |_| {}).unwrap_err();
            (mode, e)
        })
        .collect()
}

/// Background attempts count toward `max_simulated_attempts` while the
/// run goes, in every mode: 10 calls of the workload under test fit the
/// budget, the 5000 attempts of its background's retrying calls do not.
#[test]
fn background_attempts_count_toward_the_attempt_budget_while_running() {
    let source = r#"
max_simulated_attempts = 3000
[workload]
calls = 10
arrival = "poisson"
rate = 100.0
[[background]]
name = "stubborn"
calls = 1000
arrival = "poisson"
rate = 500.0
[background.policy]
max_attempts = 5
strategy = { kind = "constant", base = "1ms" }
"#;
    for (mode, e) in stopped_in_every_mode(&format!("{source}{ALWAYS_FAILING}")) {
        assert_eq!(
            e,
            reflexio_sim::world::SimError::AttemptBudget { limit: 3000 },
            "{mode:?}"
        );
    }
    // Without the budget, the same run makes those 5010 attempts.
    let s =
        scenario(&format!("{source}{ALWAYS_FAILING}").replace("max_simulated_attempts = 3000", ""));
    let m = run_policy_with(&s, &s.policies[0], 7, Mode::Auto, &mut |_| {}).unwrap();
    assert_eq!(m.attempts_total, 10);
    assert_eq!(find(&m, "stubborn").attempts, 5000);
}

/// Each background workload draws its arrivals from its own stream: with
/// one stream for two workloads of the same Poisson process, every arrival
/// of one would meet one of the other at the same nanosecond, and a rate
/// limiter without burst would turn one of the two away each time. Drawn
/// apart, arrivals 1 µs apart or closer are rare.
#[test]
fn each_workload_draws_its_own_arrivals() {
    let source = r#"
[workload]
calls = 1000
arrival = "poisson"
rate = 100.0
[[background]]
name = "twin"
calls = 1000
arrival = "poisson"
rate = 100.0
[[background]]
name = "triplet"
calls = 1000
arrival = "poisson"
rate = 100.0
[latency]
distribution = "constant"
value = "1ms"
[[failures]]
model = "rate_limit"
rate = 1000000.0
burst = 1
[policies.no-retry]
max_attempts = 1
"#;
    let s = scenario(source);
    let m = run_policy_with(&s, &s.policies[0], 7, Mode::Auto, &mut |_| {}).unwrap();
    assert!(m.successes >= 990, "workload: {} of 1000", m.successes);
    for name in ["twin", "triplet"] {
        let b = find(&m, name);
        assert!(b.succeeded >= 990, "{name}: {} of 1000", b.succeeded);
    }
}

/// A background attempt past the load series' last bucket stops the run
/// as the workload's own would: 100,000 buckets of 1 ms end at 100 s, and
/// the background retries after 200 s.
#[test]
fn background_attempts_count_toward_the_timeline() {
    let source = r#"
bucket = "1ms"
[workload]
calls = 10
arrival = "poisson"
rate = 100.0
[[background]]
name = "patient"
calls = 10
arrival = "poisson"
rate = 100.0
[background.policy]
max_attempts = 2
deadline = "1h"
strategy = { kind = "constant", base = "200s" }
"#;
    for (mode, e) in stopped_in_every_mode(&format!("{source}{ALWAYS_FAILING}")) {
        assert!(
            matches!(e, reflexio_sim::world::SimError::Timeline { .. }),
            "{mode:?}: {e}"
        );
    }
}

/// Progress counts background calls: it ends at its total, the calls of
/// every workload times runs and policies, and never passes it.
#[test]
fn progress_counts_background_calls() {
    let s = scenario(&format!("{STATELESS}{BACKGROUND}{POLICIES}"));
    let seen = std::sync::Mutex::new(Vec::new());
    reflexio_sim::world::run_many_observed(&s, 3, 2, &|p| {
        seen.lock().unwrap().push((p.calls, p.total));
    })
    .unwrap();
    let seen = seen.into_inner().unwrap();
    // (2000 + 1500 + 800) calls × 2 runs × 3 policies.
    let total = 4300 * 2 * 3;
    assert!(
        seen.iter().all(|&(calls, t)| t == total && calls <= t),
        "{seen:?}"
    );
    assert_eq!(seen.iter().map(|&(calls, _)| calls).max(), Some(total));
}

/// The runaway stop counts background attempts: 21 calls in all may make
/// 1,000,000 attempts; 20 background calls retrying 100,000 times each
/// without pause go past it while the workload makes one attempt.
#[test]
fn background_attempts_count_toward_the_runaway_stop() {
    let source = r#"
[workload]
calls = 1
[[background]]
name = "storm"
calls = 20
[background.policy]
max_attempts = 100000
deadline = "1h"
strategy = { kind = "constant", base = "0s" }
[latency]
distribution = "constant"
value = "1us"
"#;
    let s = scenario(&format!("{source}{ALWAYS_FAILING}"));
    let e = run_policy_with(&s, &s.policies[0], 7, Mode::Auto, &mut |_| {}).unwrap_err();
    assert_eq!(
        e,
        reflexio_sim::world::SimError::Runaway {
            policy: "no-retry".to_owned(),
            attempts: 1_000_000,
            calls: 21,
            background: Some("storm".to_owned()),
        }
    );
    // The message blames the background workload, not the policy.
    let text = e.to_string();
    assert!(
        text.contains("background workload `storm`") && !text.contains("policy `no-retry` made"),
        "{text}"
    );
}

const OK_TAIL: &str = "[policies.p]\n";

fn with_background(body: &str) -> String {
    format!(
        "[workload]\ncalls = 10\n[[background]]\nname = \"a\"\ncalls = 5\n[[background]]\n{body}\n{OK_TAIL}"
    )
}

#[test]
fn bad_background_tables_name_the_field_and_what_is_allowed() {
    let e = error(&with_background(
        "name = \"b\"\ncalls = 10\narrival = \"poisson\"\nrate = -1.0",
    ));
    assert_has(
        &e,
        &["bad.toml:10:8", "background[1].rate", "greater than 0"],
    );
    let e = error(&format!(
        "max_simulated_attempts = 100\n{}",
        with_background("name = \"b\"\ncalls = 100")
    ));
    assert_has(
        &e,
        &[
            "workload.calls",
            "115 calls (10 of the workload, 105 of its background)",
            "max_simulated_attempts",
        ],
    );
    let e = error(&with_background("calls = 10"));
    assert_has(&e, &["bad.toml:6:1", "`background[1]`", "needs a `name`"]);
    let e = error(&with_background("name = \"a\"\ncalls = 10"));
    assert_has(&e, &["background[1].name", "unique"]);
    let e = error(&with_background("name = \"\"\ncalls = 10"));
    assert_has(&e, &["background[1].name", "must not be blank"]);
    let e = error(&with_background("name = \"b\""));
    assert_has(&e, &["`background[1]`", "missing `calls`"]);
    let e = error(&with_background("name = \"b\"\ncalls = 0"));
    assert_has(&e, &["background[1].calls", "at least 1"]);
    let e = error(&with_background(
        "name = \"b\"\ncalls = 10\narrival = \"closed_loop\"",
    ));
    assert_has(&e, &["background[1].arrival", "`fixed_rate` or `poisson`"]);
    let e = error(&with_background("name = \"b\"\ncalls = 10\ncolour = 3"));
    assert_has(
        &e,
        &[
            "background[1].colour",
            "unknown field",
            "name, calls, arrival",
        ],
    );
    let e = error(&with_background(
        "name = \"b\"\ncalls = 10\n[background.policy]\nbudget = { kind = \"ratio\", percent = 10 }",
    ));
    assert_has(&e, &["background[1].policy.budget", "retry budget"]);
    let e = error(&with_background(
        "name = \"b\"\ncalls = 10\n[background.policy]\nmax_attempts = 0",
    ));
    assert_has(&e, &["background[1].policy.max_attempts", "at least 1"]);
    let e = error(&with_background(
        "name = \"b\"\ncalls = 10\narrival = \"poisson\"\nphases = [{ rate = 1.0, for = \"0s\" }, { rate = 2.0 }]",
    ));
    assert_has(&e, &["background[1].phases[0].for", "longer than zero"]);
    let e = error(&with_background(
        "name = \"b\"\ncalls = 49999995\narrival = \"fixed_rate\"\nrate = 1000000.0",
    ));
    assert_has(&e, &["background[1].calls", "50000000 calls in all"]);
}

#[test]
fn reports_with_background_do_not_depend_on_the_threads() {
    let s = scenario(
        &format!("{OVERLOAD}{BACKGROUND}{POLICIES}")
            .replace("\"batch\"\ncalls = 4000", "\"bulk\"\ncalls = 4000"),
    );
    let one = reflexio_sim::world::run_many_on(&s, 5, 3, 1, &|_, _| {}).unwrap();
    let three = reflexio_sim::world::run_many_on(&s, 5, 3, 3, &|_, _| {}).unwrap();
    assert_eq!(one, three);
    let a = reflexio_sim::cli::render_all(&one, Some("background.toml"), &[]);
    let b = reflexio_sim::cli::render_all(&three, Some("background.toml"), &[]);
    assert_eq!(a, b);
    let markdown = &a.iter().find(|(name, _)| name.ends_with(".md")).unwrap().1;
    assert!(markdown.contains("## Background traffic"), "{markdown}");
    assert!(markdown.contains("mean over runs"), "{markdown}");
    let json = &a
        .iter()
        .find(|(name, _)| name.ends_with(".json"))
        .unwrap()
        .1;
    assert!(json.contains("\"background\": ["), "{json}");
    // background.csv: a row per run, policy and background workload, as
    // the JSON has them; no violations column for the one without policy.
    let csv = &a
        .iter()
        .find(|(name, _)| name == "background.csv")
        .unwrap()
        .1;
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "run,seed,policy,background,calls,succeeded,failed,attempts,latency_p50_ms,latency_p99_ms,violations"
    );
    // Each row says what the report's metrics say, in the same order.
    let entries: Vec<_> = one
        .runs
        .iter()
        .flat_map(|run| {
            run.policies
                .iter()
                .flat_map(move |m| m.background.iter().map(move |b| (run, &m.policy, b)))
        })
        .collect();
    assert_eq!(entries.len(), 3 * s.policies.len() * s.background.len());
    assert_eq!(rows.len(), 1 + entries.len());
    for (row, (run, policy, b)) in rows[1..].iter().zip(entries) {
        let cell: Vec<&str> = row.split(',').collect();
        let number = |k: usize| cell[k].parse::<f64>().unwrap();
        assert_eq!(cell[0].parse::<u32>().unwrap(), run.run);
        assert_eq!(cell[1].parse::<u64>().unwrap(), run.seed);
        assert_eq!((cell[2], cell[3]), (policy.as_str(), b.name.as_str()));
        let counts = [b.calls, b.succeeded, b.failed, b.attempts];
        assert_eq!(
            [number(4), number(5), number(6), number(7)],
            counts.map(|n| n as f64)
        );
        assert_eq!((number(8), number(9)), (b.latency_p50_ms, b.latency_p99_ms));
        assert_eq!(cell[10].parse::<u64>().ok(), b.violations, "{row}");
    }
    assert!(
        rows[1].contains(",bulk,4000,") && rows[1].ends_with(','),
        "{csv}"
    );
    assert!(
        rows[3].contains(",retrying,800,") && rows[3].ends_with(",0"),
        "{csv}"
    );
    // Without background, none of it appears.
    let plain = Scenario::from_toml_str(&format!("{STATELESS}{POLICIES}"), "plain.toml").unwrap();
    let report = reflexio_sim::run(&plain, 5).unwrap();
    for (name, text) in reflexio_sim::cli::render_all(&report, None, &[]) {
        assert_ne!(name, "background.csv");
        assert!(!text.to_lowercase().contains("background"), "{text}");
    }
}

#[test]
fn every_report_lists_a_background_violation_after_its_policys_own() {
    use reflexio_sim::check::{Violation, ViolationKind};
    use reflexio_sim::report::{html, markdown, table};
    let source = format!("{STATELESS}{BACKGROUND}{POLICIES}");
    let s = scenario(&source);
    let mut report = reflexio_sim::run(&s, 7).unwrap();
    let violation = |call| Violation {
        call,
        attempt: 2,
        kind: ViolationKind::AttemptOverCap,
        detail: "made up".to_owned(),
    };
    let m = &mut report.runs[0].policies[0];
    // The counts say how many there are, the lists what they were; the
    // second background workload has a policy of its own to violate.
    m.violations += 1;
    m.violation_list.push(violation(1));
    m.background[1].violations = Some(1);
    m.background[1].violation_list.push(violation(2));
    let (policy, background) = (m.policy.clone(), m.background[1].name.clone());
    let entries: Vec<_> = report.violation_entries().collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!((entries[0].1, entries[0].2), (policy.as_str(), None));
    assert_eq!(
        (entries[1].1, entries[1].2),
        (policy.as_str(), Some(background.as_str()))
    );
    let own = format!("run 0 policy {policy}: call 1 attempt 2");
    let theirs = format!("run 0 policy {policy}, background {background}: call 2 attempt 2");
    for text in [table::render(&report), markdown::render(&report, None, &[])] {
        let (a, b) = (text.find(&own), text.find(&theirs));
        assert!(a.is_some() && b.is_some() && a < b, "{text}");
    }
    let page = html::render(&report, None, "", false).unwrap();
    assert!(
        page.contains(&format!(
            "policy <code>{policy}</code>, background <code>{background}</code>: call 2"
        )),
        "{page}"
    );
}
