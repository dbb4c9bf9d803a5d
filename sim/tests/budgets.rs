//! Retry budgets in the simulator: the `[budget]` table of a scenario's
//! policy, a budget shared by a policy's calls on virtual time, its
//! metrics, the checker's `budget_exceeded`, and a differential test
//! against the library's engine driven by an event loop of its own.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use reflexio::engine::{Decision, Failure, StopReason};
use reflexio::{Budget, BudgetSpec, Classification, ErrorClass, RatioBudget};
use reflexio_sim::check::ViolationKind;
use reflexio_sim::draws::{self, KeyedRng};
use reflexio_sim::world::{run_policy, run_policy_with_budget};
use reflexio_sim::{PolicyMetrics, Scenario};

fn scenario(source: &str) -> Scenario {
    Scenario::from_toml_str(source, "budget.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn error(source: &str) -> String {
    match Scenario::from_toml_str(source, "bad.toml") {
        Ok(_) => panic!("accepted:\n{source}"),
        Err(e) => e.to_string(),
    }
}

fn assert_has(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

const HEAD: &str = "[workload]\ncalls = 10\n[policies.p]\nmax_attempts = 3\n[policies.p.budget]\n";

// ---------------------------------------------------------------------------
// Parsing

#[test]
fn a_budget_table_is_parsed_with_its_defaults() {
    let s = scenario(&format!("{HEAD}kind = \"ratio\"\npercent = 10\n"));
    assert_eq!(
        s.policies[0].budget,
        Some(BudgetSpec::Ratio {
            window: Duration::from_secs(10),
            min_per_sec: 10,
            percent_ppm: 100_000,
        })
    );
    let s = scenario(&format!("{HEAD}kind = \"token_bucket\"\n"));
    assert_eq!(
        s.policies[0].budget,
        Some(BudgetSpec::TokenBucket {
            capacity: 500,
            retry_cost: 5,
            timeout_cost: 10,
            success_refund: 1,
        })
    );
    let s = scenario("[workload]\ncalls = 10\n[policies.p]\n");
    assert_eq!(s.policies[0].budget, None);
}

#[test]
fn bad_budget_tables_name_the_file_the_field_and_what_is_allowed() {
    // Line 6 is the first line of the budget table.
    let cases: &[(&str, &[&str])] = &[
        (
            "kind = \"leaky\"\n",
            &[
                "bad.toml:6:",
                "policies.p.budget.kind",
                "unknown budget kind `leaky`",
                "token_bucket, ratio",
            ],
        ),
        (
            "kind = \"ratio\"\ncapacity = 5\n",
            &[
                "bad.toml:7:",
                "policies.p.budget.capacity",
                "kind = \"token_bucket\"",
                "ratio takes window, min_per_sec and percent",
            ],
        ),
        (
            "kind = \"token_bucket\"\nwindow = \"1s\"\n",
            &[
                "bad.toml:7:",
                "policies.p.budget.window",
                "token_bucket takes capacity, retry_cost, timeout_cost and success_refund",
            ],
        ),
        (
            "kind = \"ratio\"\nwindow = \"100ms\"\n",
            &["bad.toml:7:", "policies.p.budget.window", "1s to 1h"],
        ),
        (
            "kind = \"ratio\"\npercent = 2000\n",
            &["bad.toml:7:", "policies.p.budget.percent", "0 to 1000"],
        ),
        (
            "kind = \"ratio\"\npercent = 12.00001\n",
            &[
                "bad.toml:7:",
                "policies.p.budget.percent",
                "ten-thousandth of a percent",
            ],
        ),
        (
            "kind = \"token_bucket\"\ncapacity = 0\n",
            &["bad.toml:7:", "policies.p.budget.capacity", "at least 1"],
        ),
        (
            "kind = \"token_bucket\"\ncapacity = 8\nretry_cost = 9\n",
            &[
                "bad.toml:",
                "policies.p.budget.retry_cost",
                "above the capacity (8)",
            ],
        ),
        (
            "kind = \"ratio\"\nprecent = 10\n",
            &["bad.toml:7:", "policies.p.budget.precent", "unknown field"],
        ),
        (
            "percent = 10\n",
            &["bad.toml:", "policies.p.budget", "kind"],
        ),
    ];
    for (table, parts) in cases {
        let e = error(&format!("{HEAD}{table}"));
        assert_has(&e, parts);
    }
}

// ---------------------------------------------------------------------------
// Simulated runs

/// Every attempt fails with a server error; 2,000 calls at 100/s.
fn storm(budget: &str) -> String {
    format!(
        "seed = 3
[workload]
calls = 2000
arrival = \"poisson\"
rate = 100.0
[[failures]]
model = \"random\"
probability = 1.0
classes = {{ server_error = 1.0 }}
[policies.plain]
max_attempts = 4
strategy = {{ kind = \"equal_jitter\", base = \"50ms\", max = \"1s\" }}
[policies.budgeted]
max_attempts = 4
strategy = {{ kind = \"equal_jitter\", base = \"50ms\", max = \"1s\" }}
[policies.budgeted.budget]
{budget}"
    )
}

fn run_both(source: &str) -> (PolicyMetrics, PolicyMetrics) {
    let s = scenario(source);
    let report = reflexio_sim::run(&s, s.seed).unwrap();
    let mut p = report.runs[0].policies.clone().into_iter();
    (p.next().unwrap(), p.next().unwrap())
}

#[test]
fn a_ratio_budget_refuses_retries_and_holds_its_share() {
    let (plain, budgeted) = run_both(&storm("kind = \"ratio\"\npercent = 10\nmin_per_sec = 0\n"));
    assert_eq!(plain.attempts_total, 8000);
    assert!(plain.budget.is_none());
    let b = budgeted.budget.as_ref().expect("the budget's account");
    assert!(b.retries_refused > 0);
    assert_eq!(b.retries_refused, budgeted.failures.budget_exhausted);
    assert_eq!(budgeted.attempts_total, 2000 + b.retries_admitted);
    // Summed over disjoint windows, retries are at most 10% of the calls
    // started (no reserve).
    assert!(b.retries_admitted <= 200, "{}", b.retries_admitted);
    assert!(b.retries_admitted >= 150, "{}", b.retries_admitted);
    assert_eq!(budgeted.violations, 0, "{:?}", budgeted.violation_list);
    assert_eq!(
        b.refused_share,
        b.retries_refused as f64 / (b.retries_admitted + b.retries_refused) as f64
    );
    assert_eq!(
        b.budget,
        "ratio (10% of calls, 0 retries/s reserve, window 10s)"
    );
}

#[test]
fn a_token_bucket_is_drained_then_refuses() {
    let (_, budgeted) = run_both(&storm(
        "kind = \"token_bucket\"\ncapacity = 100\nretry_cost = 5\n",
    ));
    let b = budgeted.budget.as_ref().unwrap();
    // Nothing succeeds, so nothing refills: 100 tokens buy 20 retries.
    assert_eq!(b.retries_admitted, 20);
    assert_eq!(
        b.retries_refused,
        2000 - budgeted.failures.max_attempts_exceeded
    );
    assert_eq!(budgeted.violations, 0);
}

#[test]
fn budgeted_runs_are_deterministic_and_do_not_depend_on_threads() {
    let s = scenario(&storm("kind = \"ratio\"\npercent = 20\n"));
    let one = reflexio_sim::world::run_many_on(&s, 9, 3, 1, &|_, _| {}).unwrap();
    let two = reflexio_sim::world::run_many_on(&s, 9, 3, 2, &|_, _| {}).unwrap();
    let again = reflexio_sim::world::run_many_on(&s, 9, 3, 2, &|_, _| {}).unwrap();
    let json = reflexio_sim::report::json::render;
    let csv = reflexio_sim::report::csv::render;
    assert_eq!(json(&one), json(&two));
    assert_eq!(json(&two), json(&again));
    assert_eq!(csv(&one), csv(&two));
    // Over several runs the budget table shows means ±standard error.
    let md = reflexio_sim::report::markdown::render(&one, None, &[]);
    let row = md
        .lines()
        .find(|l| l.starts_with("| budgeted | ratio"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(row.contains('±'), "{row}");
    // Each run starts with a fresh budget: the same seed gives the same
    // numbers in a run of its own.
    let alone = reflexio_sim::run(&s, one.runs[1].seed).unwrap();
    assert_eq!(
        alone.runs[0].policies[1].budget,
        one.runs[1].policies[1].budget
    );
}

#[test]
fn the_reports_show_the_budgets_only_when_there_are_some() {
    let s = scenario(&storm("kind = \"ratio\"\npercent = 10\nmin_per_sec = 0\n"));
    let report = reflexio_sim::run(&s, s.seed).unwrap();
    let csv = reflexio_sim::report::csv::render(&report);
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .ends_with(",violations,budget_exhausted,retries_admitted,retries_refused,refused_share"));
    let json = reflexio_sim::report::json::render(&report);
    assert!(json.contains("\"retries_refused\""));
    assert!(json.contains("\"budget_exhausted\""));
    let table = reflexio_sim::report::table::render(&report);
    assert!(table.contains("retry budgets"), "{table}");
    assert!(table.contains("budget_exhausted"), "{table}");
    let md = reflexio_sim::report::markdown::render(&report, None, &[]);
    assert!(md.contains("## Retry budgets"), "{md}");
    assert!(md.contains("| budgeted | ratio (10% of calls"), "{md}");

    let plain =
        Scenario::from_toml_str("[workload]\ncalls = 10\n[policies.p]\n", "plain.toml").unwrap();
    let report = reflexio_sim::run(&plain, 1).unwrap();
    let csv = reflexio_sim::report::csv::render(&report);
    assert!(csv.lines().next().unwrap().ends_with(",violations"));
    let json = reflexio_sim::report::json::render(&report);
    assert!(!json.contains("budget"), "{json}");
    let md = reflexio_sim::report::markdown::render(&report, None, &[]);
    assert!(!md.contains("budget"), "{md}");
}

// ---------------------------------------------------------------------------
// The checker

/// A budget that admits every retry while claiming to be a 10% ratio
/// budget without reserve.
struct Liar(AtomicU64);

impl Budget for Liar {
    fn try_retry(&self, _now: Duration, _class: ErrorClass) -> bool {
        self.0.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn spec(&self) -> Option<BudgetSpec> {
        Some(BudgetSpec::Ratio {
            window: Duration::from_secs(10),
            min_per_sec: 0,
            percent_ppm: 100_000,
        })
    }
}

/// A token bucket that forgets to charge one retry in three.
struct Leaky {
    tokens: AtomicU64,
    asked: AtomicU64,
}

impl Budget for Leaky {
    fn try_retry(&self, _now: Duration, _class: ErrorClass) -> bool {
        if self.asked.fetch_add(1, Ordering::Relaxed) % 3 == 2 {
            return true;
        }
        self.tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_sub(5))
            .is_ok()
    }

    fn spec(&self) -> Option<BudgetSpec> {
        Some(BudgetSpec::TokenBucket {
            capacity: 100,
            retry_cost: 5,
            timeout_cost: 5,
            success_refund: 1,
        })
    }
}

#[test]
fn the_checker_catches_a_budget_that_breaks_its_bound() {
    let s = scenario(&storm("kind = \"ratio\"\n"));
    let policy = &s.policies[0];

    let liar = Arc::new(Liar(AtomicU64::new(0)));
    let m = run_policy_with_budget(&s, policy, 3, liar.clone(), &mut |_| {}).unwrap();
    assert_eq!(liar.0.load(Ordering::Relaxed), 6000);
    assert!(m.violations > 0);
    assert!(m
        .violation_list
        .iter()
        .all(|v| v.kind == ViolationKind::BudgetExceeded));
    assert!(
        m.violation_list[0]
            .detail
            .contains("the bound is 0 + 10% of them"),
        "{}",
        m.violation_list[0]
    );

    let leaky = Arc::new(Leaky {
        tokens: AtomicU64::new(100),
        asked: AtomicU64::new(0),
    });
    let m = run_policy_with_budget(&s, policy, 3, leaky, &mut |_| {}).unwrap();
    assert!(m.violations > 0);
    assert_eq!(m.violation_list[0].kind, ViolationKind::BudgetExceeded);
    assert!(
        m.violation_list[0]
            .detail
            .contains("tokens more than successes refunded; the bound is the capacity, 100"),
        "{}",
        m.violation_list[0]
    );

    // The library's own budgets keep their bounds under the same storm.
    let honest = Arc::new(RatioBudget::new(Duration::from_secs(10), 0, 10.0).unwrap());
    let m = run_policy_with_budget(&s, policy, 3, honest, &mut |_| {}).unwrap();
    assert_eq!(m.violations, 0, "{:?}", m.violation_list);
    assert!(m.budget.unwrap().retries_refused > 0);
}

// ---------------------------------------------------------------------------
// The simulator against the engine, driven by an event loop of its own

/// Per call: attempts, stop reason (`None`: success), latency and sleep
/// in ns.
type Calls = Vec<(u32, Option<StopReason>, u64, u64)>;

/// The outcome of an attempt sent at `t` ns under a trace of `(from ns,
/// class)` rows (`None`: success); success before the first row.
fn traced(trace: &[(u64, Option<ErrorClass>)], t: u64) -> Option<ErrorClass> {
    trace
        .iter()
        .rev()
        .find(|(from, _)| *from <= t)
        .and_then(|(_, c)| *c)
}

/// Drives the library's engine (a fresh budget from `spec`) over `calls`
/// calls arriving every `gap` ns, each attempt taking `latency` ns, its
/// outcome read from `trace` at its send: one time-ordered event queue,
/// ties in scheduling order, the same seeded jitter per (call, attempt)
/// as the simulator's documented draws.
fn reference(
    policy: &reflexio_sim::scenario::Policy,
    spec: BudgetSpec,
    seed: u64,
    calls: u32,
    gap: u64,
    latency: u64,
    trace: &[(u64, Option<ErrorClass>)],
) -> Calls {
    let engine = policy.engine.clone().with_budget(Some(spec.build()));
    let mut jitter = draws::stream(seed, draws::STREAM_JITTER);
    // (time, sequence, call, is arrival)
    let mut queue = BinaryHeap::new();
    let mut seq = 0u64;
    for c in 0..calls {
        queue.push(Reverse((u64::from(c) * gap, seq, c, true)));
        seq += 1;
    }
    let mut states: Vec<Option<(reflexio::engine::CallState, u64, u64, u64)>> =
        vec![None; calls as usize];
    let mut out: Calls = vec![(0, None, 0, 0); calls as usize];
    while let Some(Reverse((now, _, c, arrival))) = queue.pop() {
        let i = c as usize;
        if arrival {
            let state = engine.start_at(Duration::from_nanos(now));
            // (state, start, send, sleep)
            states[i] = Some((state, now, now, 0));
            queue.push(Reverse((now + latency, seq, c, false)));
            seq += 1;
            continue;
        }
        let (state, start, send, sleep) = states[i].as_mut().unwrap();
        let elapsed = Duration::from_nanos(now - *start);
        let attempt = state.attempt();
        match traced(trace, *send) {
            None => {
                engine.on_success(state, "call", elapsed, &mut |_| {});
                out[i] = (attempt, None, now - *start, *sleep);
            }
            Some(class) => {
                let mut rng = KeyedRng::new(&mut jitter, u64::from(c), attempt);
                let failure = Failure {
                    classification: Classification::new(class),
                    error_type: class.name(),
                    error: None,
                };
                match engine.on_failure(state, "call", failure, elapsed, &mut rng, &mut |_| {}) {
                    Decision::Retry(r) => {
                        let delay = u64::try_from(r.delay.as_nanos()).unwrap();
                        *sleep += delay;
                        *send = now + delay;
                        queue.push(Reverse((*send + latency, seq, c, false)));
                        seq += 1;
                    }
                    Decision::Stop(reason) => {
                        out[i] = (attempt, Some(reason), now - *start, *sleep)
                    }
                }
            }
        }
    }
    out
}

fn class_name(c: Option<ErrorClass>) -> &'static str {
    c.map_or("ok", |c| c.name())
}

fn budget_spec() -> impl Strategy<Value = BudgetSpec> {
    prop_oneof![
        (1u64..=20, 0u32..=20, 0u32..=600_000).prop_map(|(w, m, p)| BudgetSpec::Ratio {
            window: Duration::from_millis(500 * w).max(Duration::from_secs(1)),
            min_per_sec: m,
            percent_ppm: p / 10_000 * 10_000,
        }),
        (1u32..=60, 1u32..=6, 1u32..=12, 0u32..=3).prop_map(|(cap, r, t, refund)| {
            BudgetSpec::TokenBucket {
                capacity: cap.max(r).max(t),
                retry_cost: r,
                timeout_cost: t,
                success_refund: refund,
            }
        }),
    ]
}

fn budget_table(spec: BudgetSpec) -> String {
    match spec {
        BudgetSpec::Ratio {
            window,
            min_per_sec,
            percent_ppm,
        } => format!(
            "kind = \"ratio\"\nwindow = \"{}ms\"\nmin_per_sec = {min_per_sec}\npercent = {}\n",
            window.as_millis(),
            percent_ppm / 10_000
        ),
        BudgetSpec::TokenBucket {
            capacity,
            retry_cost,
            timeout_cost,
            success_refund,
        } => format!(
            "kind = \"token_bucket\"\ncapacity = {capacity}\nretry_cost = {retry_cost}\ntimeout_cost = {timeout_cost}\nsuccess_refund = {success_refund}\n"
        ),
    }
}

/// Runs the differential comparison of one case; returns the simulator's
/// metrics.
fn differential(
    spec: BudgetSpec,
    seed: u64,
    max_attempts: u32,
    rows: &[(u64, Option<ErrorClass>)],
) -> Result<PolicyMetrics, TestCaseError> {
    let calls = 300u32;
    let gap = 20_000_000; // 50 calls/s: fixed_rate spaces them exactly
    let latency = 7_000_000;
    let mut t = 0;
    let trace: Vec<(u64, Option<ErrorClass>)> = rows
        .iter()
        .map(|(d, c)| {
            t += d;
            (t * 1_000_000, *c)
        })
        .collect();
    let csv: String = trace
        .iter()
        .map(|(t, c)| format!("{}ms,{}\n", t / 1_000_000, class_name(*c)))
        .collect();
    let source = format!(
        "[workload]\ncalls = {calls}\narrival = \"fixed_rate\"\nrate = 50.0\n\
         [latency]\ndistribution = \"constant\"\nvalue = \"7ms\"\n\
         [[failures]]\nmodel = \"trace\"\ndata = \"\"\"\n{csv}\"\"\"\n\
         [policies.p]\nmax_attempts = {max_attempts}\ndeadline = \"off\"\n\
         strategy = {{ kind = \"full_jitter\", base = \"30ms\", max = \"2s\" }}\n\
         [policies.p.budget]\n{}",
        budget_table(spec)
    );
    let s = Scenario::from_toml_str(&source, "diff.toml")
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(s.policies[0].budget, Some(spec));
    let sim = run_policy(&s, &s.policies[0], seed, &mut |_| {}).unwrap();
    let want = reference(&s.policies[0], spec, seed, calls, gap, latency, &trace);

    let mut histogram = vec![0u64; want.iter().map(|c| c.0).max().unwrap() as usize];
    let mut stopped = [0u64; 3];
    for (attempts, reason, _, _) in &want {
        histogram[*attempts as usize - 1] += 1;
        match reason {
            Some(StopReason::BudgetExhausted) => stopped[0] += 1,
            Some(StopReason::MaxAttemptsExceeded) => stopped[1] += 1,
            Some(_) => stopped[2] += 1,
            None => {}
        }
    }
    let sleep: u64 = want.iter().map(|c| c.3).sum();
    let latency_max = want.iter().map(|c| c.2).max().unwrap();
    prop_assert_eq!(&sim.attempts_histogram, &histogram);
    prop_assert_eq!(sim.failures.budget_exhausted, stopped[0]);
    prop_assert_eq!(sim.failures.max_attempts_exceeded, stopped[1]);
    prop_assert_eq!(sim.failures.total() - stopped[0] - stopped[1], stopped[2]);
    prop_assert_eq!(
        sim.successes,
        want.iter().filter(|c| c.1.is_none()).count() as u64
    );
    prop_assert_eq!(sim.sleep_total_ms, sleep as f64 / 1e6);
    prop_assert_eq!(sim.latency_max_ms, latency_max as f64 / 1e6);
    let b = sim.budget.as_ref().unwrap();
    prop_assert_eq!(b.retries_refused, stopped[0]);
    prop_assert_eq!(sim.violations, 0, "{:?}", sim.violation_list);
    Ok(sim)
}

#[test]
fn the_simulator_decides_as_the_engine_does_when_the_budget_refuses() {
    use ErrorClass::{ServerError, Transient};
    let rows = [
        (500, Some(ServerError)),
        (1_500, None),
        (400, Some(Transient)),
        (2_000, Some(ServerError)),
    ];
    for spec in [
        BudgetSpec::Ratio {
            window: Duration::from_secs(2),
            min_per_sec: 1,
            percent_ppm: 100_000,
        },
        BudgetSpec::TokenBucket {
            capacity: 40,
            retry_cost: 5,
            timeout_cost: 10,
            success_refund: 1,
        },
    ] {
        let sim = differential(spec, 11, 4, &rows).unwrap();
        let b = sim.budget.unwrap();
        assert!(b.retries_refused > 20 && b.retries_admitted >= 8, "{b:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// For the same seed and the same event times, the simulator's
    /// decisions with a budget are the engine's: every call's attempts,
    /// stop reason, latency and sleep agree with an event loop written
    /// here (through the report's histogram, counts by stop reason, total
    /// sleep and latency).
    #[test]
    fn the_simulator_decides_as_the_engine_does_with_a_budget(
        spec in budget_spec(),
        seed in any::<u64>(),
        max_attempts in 2u32..6,
        rows in prop::collection::vec(
            (1u64..3_000, prop::sample::select(vec![
                None,
                Some(ErrorClass::ServerError),
                Some(ErrorClass::Transient),
                Some(ErrorClass::RateLimit),
            ])),
            1..8,
        ),
    ) {
        differential(spec, seed, max_attempts, &rows)?;
    }
}

#[test]
fn check_prints_each_policy_budget_and_the_amplification_it_guarantees() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/overload.toml");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let args = ["reflexio-sim", "check", file].map(std::ffi::OsString::from);
    let code = reflexio_sim::cli::main_with(args.to_vec(), &mut out, &mut err, false);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    let s = Scenario::from_file(file.as_ref()).unwrap();
    let budgeted = s.policies.iter().filter(|p| p.budget.is_some()).count();
    assert_eq!(budgeted, 6);
    assert_eq!(out.matches("# budget: ").count(), budgeted, "{out}");
    assert!(out.contains(
        "[policies.aggressive-ratio10.budget]\nkind = \"ratio\"\nwindow = \"10s\"\nmin_per_sec = 10\npercent = 10\n"
    ), "{out}");
    assert!(out.contains(
        "# steady-state worst case: at most 1.1 attempts per call plus 10 retries/s whatever the traffic, against 10 per call without the budget"
    ), "{out}");
    assert!(out.contains(
        "# steady-state worst case: at most 1.2 attempts per call while retries fail, 2 whatever their outcome (a retry that succeeds is refunded), against 6 per call without the budget"
    ), "{out}");
}

#[test]
fn the_checker_holds_a_budget_to_its_documented_bound_exactly() {
    use reflexio::engine::{Envelope, Retry};
    use reflexio::strategy::Backoff;
    use reflexio_sim::check::Checker;

    let ms = Duration::from_millis;
    let retry = Decision::Retry(Retry {
        delay: ms(0),
        strategy_delay: ms(0),
        next_attempt: 2,
    });
    let refused = Decision::Stop(StopReason::BudgetExhausted);
    let checker = || Checker::new(Envelope::default(), [Backoff::constant(ms(0)); 8]);

    // Ratio: window 1 s (slots of 100 ms), reserve 2, 50%. Ten starts in
    // slot 0 allow 2 + 5 = 7 retries in slots 0..=9: the eighth is over.
    let mut c = checker().with_budget(Some(BudgetSpec::Ratio {
        window: Duration::from_secs(1),
        min_per_sec: 2,
        percent_ppm: 500_000,
    }));
    for _ in 0..10 {
        c.budget_call_started(ms(50));
    }
    for i in 0..7 {
        c.budget_decided(i, 1, ms(100 + 100 * i), ErrorClass::ServerError, &retry);
    }
    c.budget_decided(99, 1, ms(950), ErrorClass::ServerError, &refused);
    assert_eq!(c.count(), 0, "{:?}", c.violations());
    c.budget_decided(7, 1, ms(999), ErrorClass::ServerError, &retry);
    assert_eq!(c.count(), 1);
    assert_eq!(c.violations()[0].kind, ViolationKind::BudgetExceeded);
    // Slot 10 no longer holds slot 0's starts, nor its retry: 7 retries
    // in slots 1..=10 against a bound of 2.
    c.budget_decided(8, 1, ms(1_000), ErrorClass::ServerError, &retry);
    assert_eq!(c.count(), 2);
    let counts = c.budget_counts().unwrap();
    assert_eq!((counts.admitted, counts.refused), (9, 1));

    // Token bucket: capacity 20, cost 5 (10 for transient), refund 1.
    let mut c = checker().with_budget(Some(BudgetSpec::TokenBucket {
        capacity: 20,
        retry_cost: 5,
        timeout_cost: 10,
        success_refund: 1,
    }));
    c.budget_decided(0, 1, ms(0), ErrorClass::Transient, &retry);
    c.budget_decided(1, 1, ms(0), ErrorClass::ServerError, &retry);
    c.budget_decided(2, 1, ms(0), ErrorClass::ServerError, &retry);
    assert_eq!(c.count(), 0);
    // Refunds: the transient retry's 10 back, and 1 for a clean success.
    c.budget_call_succeeded(Some(ErrorClass::Transient));
    c.budget_call_succeeded(None);
    // 20 spent, 11 back: 9 ahead of the refunds; two more retries make 19
    // and fit, a third makes 24, over the capacity.
    for i in 0..2 {
        c.budget_decided(3 + i, 1, ms(0), ErrorClass::ServerError, &retry);
    }
    assert_eq!(c.count(), 0, "{:?}", c.violations());
    c.budget_decided(5, 1, ms(0), ErrorClass::ServerError, &retry);
    assert_eq!(c.count(), 1);
    assert!(
        c.violations()[0].detail.contains("24 tokens"),
        "{}",
        c.violations()[0]
    );
}

#[test]
fn check_as_json_gives_each_budget_and_its_amplification() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/spike.toml");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let args = ["reflexio-sim", "check", "--format", "json", file].map(std::ffi::OsString::from);
    let code = reflexio_sim::cli::main_with(args.to_vec(), &mut out, &mut err, false);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let policies = doc["policies"].as_array().unwrap();
    let budget = |name: &str| {
        policies
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))["budget"]
            .clone()
    };
    assert!(budget("no-retry").is_null());
    let ratio = budget("two-jittered-ratio10");
    assert_eq!(ratio["kind"], "ratio");
    assert_eq!(ratio["reserve"], 100);
    assert_eq!(ratio["amplification"], 1.1);
    let aws = budget("two-jittered-aws");
    assert_eq!(aws["kind"], "token_bucket");
    assert_eq!(aws["amplification_when_failing"], 1.2);
    assert_eq!(aws["amplification"], 2.0);
}
