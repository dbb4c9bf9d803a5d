//! Property tests: every strategy stays within its documented bounds for
//! any attempt, base, max and previous delay; every envelope invariant of
//! DESIGN.md holds on random failure scripts driven on a fake clock; and
//! configurations survive a trip through TOML.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use reflexio::{
    Backoff, BackoffKind, Classification, Clock, DelayContext, ErrorClass, Event, EventKind,
    ManualClock, RetryError, RetryPolicy, StopReason,
};

// ---------------------------------------------------------------------------
// Strategy bounds

/// Durations from zero through sub-millisecond to beyond what `u64`
/// nanoseconds can hold.
fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        (1u64..1_000_000).prop_map(Duration::from_nanos),
        (1u64..3_600_000).prop_map(Duration::from_millis),
        any::<u64>().prop_map(Duration::from_nanos),
        Just(Duration::from_nanos(u64::MAX)),
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        Just(Duration::MAX),
    ]
}

fn any_attempt() -> impl Strategy<Value = u32> {
    prop_oneof![
        prop::sample::select(vec![
            1,
            2,
            3,
            31,
            32,
            33,
            63,
            64,
            65,
            100,
            127,
            128,
            129,
            1_000,
            10_000,
            u32::MAX / 2,
            u32::MAX - 1,
            u32::MAX,
        ]),
        1u32..200,
        1u32..=u32::MAX,
    ]
}

fn any_kind() -> impl Strategy<Value = BackoffKind> {
    prop::sample::select(BackoffKind::ALL.to_vec())
}

/// Nanoseconds as the strategies see them: saturated to `u64`.
fn sat(d: Duration) -> u128 {
    d.as_nanos().min(u128::from(u64::MAX))
}

/// `min(max, base × 2^exponent)` computed exactly in 128 bits.
fn doubling(base: u128, max: u128, exponent: u32) -> u128 {
    if base == 0 {
        0
    } else if exponent >= 64 {
        max
    } else {
        (base << exponent).min(max)
    }
}

fn draw(
    backoff: &Backoff,
    attempt: u32,
    previous: Option<Duration>,
    rng: &mut ChaCha8Rng,
) -> Duration {
    let ctx = DelayContext::new(attempt, ErrorClass::Transient, previous);
    reflexio::Strategy::delay(backoff, &ctx, rng)
}

proptest! {
    #[test]
    fn delay_lies_within_bounds_and_never_above_max(
        kind in any_kind(),
        a in any_duration(),
        b in any_duration(),
        attempt in any_attempt(),
        previous in prop::option::of(any_duration()),
        seed in any::<u64>(),
    ) {
        let (base, max) = if a <= b { (a, b) } else { (b, a) };
        let backoff = Backoff::new(kind, base, max);
        prop_assert_eq!(backoff.kind(), kind);
        prop_assert!(backoff.base() <= backoff.max());
        prop_assert!(backoff.max() <= max);
        prop_assert_eq!(sat(backoff.base()), sat(base));
        if kind != BackoffKind::Constant {
            prop_assert_eq!(sat(backoff.max()), sat(max));
        }

        let (lo, hi) = backoff.bounds(attempt, previous);
        prop_assert!(lo <= hi, "{:?} > {:?}", lo, hi);
        prop_assert!(hi <= backoff.max(), "{:?} above max {:?}", hi, backoff.max());
        prop_assert_eq!(
            reflexio::Strategy::bounds(&backoff, attempt, previous),
            Some((lo, hi))
        );

        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..4 {
            let d = draw(&backoff, attempt, previous, &mut rng);
            prop_assert!(lo <= d && d <= hi, "{:?} outside [{:?}, {:?}]", d, lo, hi);
        }
    }

    #[test]
    fn bounds_follow_each_documented_formula(
        kind in any_kind(),
        a in any_duration(),
        b in any_duration(),
        attempt in any_attempt(),
        previous in prop::option::of(any_duration()),
    ) {
        let (base, max) = if a <= b { (a, b) } else { (b, a) };
        let backoff = Backoff::new(kind, base, max);
        let (lo, hi) = backoff.bounds(attempt, previous);
        let (lo, hi) = (lo.as_nanos(), hi.as_nanos());
        let (base, max) = (sat(base), sat(max));
        match kind {
            BackoffKind::EqualJitter => {
                let cap = doubling(base, max, attempt);
                prop_assert_eq!((lo, hi), (cap / 2, cap));
            }
            BackoffKind::FullJitter => {
                prop_assert_eq!((lo, hi), (0, doubling(base, max, attempt)));
            }
            BackoffKind::Exponential => {
                let d = doubling(base, max, attempt - 1);
                prop_assert_eq!((lo, hi), (d, d));
            }
            BackoffKind::TokenBackoff => {
                prop_assert_eq!(lo, hi / 2);
                let grown = base as f64 * 1.5f64.powf(f64::from(attempt));
                if base == 0 {
                    prop_assert_eq!(hi, 0);
                } else if grown >= max as f64 {
                    // Within float rounding of the cap, the cap itself.
                    prop_assert!(hi == max || (max - hi) as f64 <= max as f64 * 1e-9 + 1.0);
                } else {
                    let diff = (hi as f64 - grown).abs();
                    prop_assert!(diff <= grown * 1e-9 + 1.0, "{} vs {}", hi, grown);
                }
            }
            BackoffKind::DecorrelatedJitter => {
                let previous = previous.map_or(base, sat);
                let top = (previous * 3).max(base).min(max);
                prop_assert_eq!((lo, hi), (base, top));
            }
            BackoffKind::Constant => {
                prop_assert_eq!((lo, hi), (base, base));
            }
            other => {
                return Err(TestCaseError::fail(format!(
                    "no reference formula for {other}"
                )))
            }
        }
    }

    #[test]
    fn growing_bounds_never_shrink_with_the_attempt(
        kind in prop::sample::select(vec![
            BackoffKind::EqualJitter,
            BackoffKind::TokenBackoff,
            BackoffKind::FullJitter,
            BackoffKind::Exponential,
            BackoffKind::Constant,
        ]),
        a in any_duration(),
        b in any_duration(),
        attempt in any_attempt(),
        step in prop_oneof![Just(1u32), 1u32..1000, any::<u32>()],
    ) {
        let (base, max) = if a <= b { (a, b) } else { (b, a) };
        let backoff = Backoff::new(kind, base, max);
        let later = attempt.saturating_add(step);
        let (lo1, hi1) = backoff.bounds(attempt, None);
        let (lo2, hi2) = backoff.bounds(later, None);
        prop_assert!(lo1 <= lo2 && hi1 <= hi2, "{:?} at {} then {:?} at {}", (lo1, hi1), attempt, (lo2, hi2), later);
        // These formulas ignore the previous delay.
        prop_assert_eq!(backoff.bounds(attempt, Some(Duration::MAX)), (lo1, hi1));
        // Once saturated, the cap stays at max (a zero base never grows).
        if backoff.base() > Duration::ZERO {
            prop_assert_eq!(backoff.bounds(u32::MAX, None).1, backoff.max());
        }
    }

    #[test]
    fn decorrelated_jitter_grows_with_the_previous_delay(
        a in any_duration(),
        b in any_duration(),
        p in any_duration(),
        q in any_duration(),
        attempt in any_attempt(),
        other_attempt in any_attempt(),
    ) {
        let (base, max) = if a <= b { (a, b) } else { (b, a) };
        let (p, q) = if p <= q { (p, q) } else { (q, p) };
        let backoff = Backoff::decorrelated_jitter(base, max);
        let (lo_p, hi_p) = backoff.bounds(attempt, Some(p));
        let (lo_q, hi_q) = backoff.bounds(attempt, Some(q));
        prop_assert_eq!(lo_p, lo_q);
        prop_assert!(hi_p <= hi_q);
        // The attempt number plays no part.
        prop_assert_eq!(backoff.bounds(other_attempt, Some(p)), (lo_p, hi_p));
    }
}

// ---------------------------------------------------------------------------
// Envelope invariants on random failure scripts

/// The error every scripted attempt returns: which attempt it was, so the
/// caller's value can be recognised.
#[derive(Debug)]
struct ScriptError {
    attempt: u32,
    class: ErrorClass,
    hint: Option<Duration>,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt {}: {}", self.attempt, self.class)
    }
}

impl std::error::Error for ScriptError {}

type Classify = fn(&ScriptError) -> Classification;

fn classify(e: &ScriptError) -> Classification {
    Classification {
        class: e.class,
        retry_after: e.hint,
    }
}

#[derive(Debug, Clone, Copy)]
struct Step {
    latency: Duration,
    /// `None`: the attempt succeeds.
    failure: Option<(ErrorClass, Option<Duration>)>,
}

#[derive(Debug, Clone)]
struct Case {
    deadline: Option<Duration>,
    max_attempts: u32,
    max_unknown_attempts: Option<u32>,
    class_caps: [Option<u32>; 8],
    max_retry_after: Duration,
    default_strategy: Backoff,
    class_strategies: [Option<Backoff>; 8],
    seed: u64,
    script: Vec<Step>,
    /// A retry budget's answers, in order (past the end it admits), or no
    /// budget.
    budget: Option<Vec<bool>>,
}

/// A budget that answers from a script and counts the questions.
struct ScriptedBudget {
    answers: Vec<bool>,
    asked: std::sync::atomic::AtomicUsize,
}

impl reflexio::Budget for ScriptedBudget {
    fn try_retry(&self, _now: Duration, _class: ErrorClass) -> bool {
        let n = self
            .asked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.answers.get(n).copied().unwrap_or(true)
    }
}

fn ms_range(lo: u64, hi: u64) -> impl Strategy<Value = Duration> {
    (lo * 1_000_000..hi * 1_000_000).prop_map(Duration::from_nanos)
}

fn small_backoff() -> impl Strategy<Value = Backoff> {
    (any_kind(), ms_range(0, 1000), ms_range(0, 10_000))
        .prop_map(|(kind, base, extra)| Backoff::new(kind, base, base + extra))
}

fn step() -> impl Strategy<Value = Step> {
    let latency = prop_oneof![
        3 => Just(Duration::ZERO),
        3 => ms_range(0, 500),
        1 => ms_range(0, 8000),
    ];
    let hint = prop::option::weighted(
        0.3,
        prop_oneof![
            ms_range(0, 100),
            ms_range(0, 25_000),
            Just(Duration::from_secs(3600))
        ],
    );
    // Never-retried classes end a call at once; keep them rarer so that
    // calls run long enough to meet the caps and the deadline.
    let class = prop_oneof![
        1 => prop::sample::select(vec![ErrorClass::Auth, ErrorClass::Permission, ErrorClass::Permanent]),
        12 => prop::sample::select(vec![
            ErrorClass::Concurrency,
            ErrorClass::RateLimit,
            ErrorClass::ServerError,
            ErrorClass::Transient,
            ErrorClass::Unknown,
        ]),
    ];
    let failure = prop::option::weighted(0.9, (class, hint));
    (latency, failure).prop_map(|(latency, failure)| Step { latency, failure })
}

fn case() -> impl Strategy<Value = Case> {
    let caps = prop::array::uniform8(prop::option::weighted(0.3, 1u32..6));
    let strategies = prop::array::uniform8(prop::option::weighted(0.3, small_backoff()));
    (
        prop::option::weighted(0.8, ms_range(1, 20_000)),
        prop_oneof![1u32..12, Just(1u32), Just(40u32)],
        prop::option::weighted(0.8, 1u32..6),
        caps,
        prop_oneof![
            Just(Duration::ZERO),
            ms_range(0, 30_000),
            Just(Duration::from_secs(60))
        ],
        small_backoff(),
        strategies,
        any::<u64>(),
        prop::collection::vec(step(), 1..16),
        prop::option::weighted(0.3, prop::collection::vec(prop::bool::weighted(0.7), 0..8)),
    )
        .prop_map(
            |(
                deadline,
                max_attempts,
                max_unknown_attempts,
                mut class_caps,
                max_retry_after,
                default_strategy,
                class_strategies,
                seed,
                script,
                budget,
            )| {
                class_caps[ErrorClass::Unknown.index()] = None;
                Case {
                    deadline,
                    max_attempts,
                    max_unknown_attempts,
                    class_caps,
                    max_retry_after,
                    default_strategy,
                    class_strategies,
                    seed,
                    script,
                    budget,
                }
            },
        )
}

/// What happened during one call, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Start(Duration),
    End(Duration),
    Event {
        kind: EventKind,
        attempt: u32,
        delay: Option<Duration>,
        class: Option<ErrorClass>,
        elapsed: Duration,
    },
    Sleep {
        start: Duration,
        length: Duration,
    },
}

type Log = Arc<Mutex<Vec<Entry>>>;

/// The fake clock, recording every sleep into the log.
#[derive(Clone)]
struct LoggingClock {
    clock: ManualClock,
    log: Log,
}

impl Clock for LoggingClock {
    fn now(&self) -> Duration {
        self.clock.now()
    }

    fn sleep(&self, duration: Duration) {
        self.log.lock().unwrap().push(Entry::Sleep {
            start: self.clock.now(),
            length: duration,
        });
        Clock::sleep(&self.clock, duration);
    }
}

impl reflexio::Sleeper for LoggingClock {
    fn now(&self) -> Duration {
        self.clock.now()
    }

    fn sleep(&self, duration: Duration) -> reflexio::clock::SleepFuture {
        Clock::sleep(self, duration);
        Box::pin(std::future::ready(()))
    }
}

fn build(case: &Case, clock: &LoggingClock) -> RetryPolicy<Classify> {
    let log = Arc::clone(&clock.log);
    let mut builder = RetryPolicy::builder()
        .classifier(classify as Classify)
        .max_attempts(case.max_attempts)
        .max_retry_after(case.max_retry_after)
        .strategy(case.default_strategy)
        .seed(case.seed)
        .clock(clock.clone())
        .sleeper(clock.clone())
        .hook(move |e: &Event<'_>| {
            log.lock().unwrap().push(Entry::Event {
                kind: e.kind,
                attempt: e.attempt,
                delay: e.delay,
                class: e.class,
                elapsed: e.elapsed,
            })
        });
    builder = match case.deadline {
        Some(d) => builder.deadline(d),
        None => builder.no_deadline(),
    };
    builder = match case.max_unknown_attempts {
        Some(n) => builder.max_unknown_attempts(n),
        None => builder.no_unknown_cap(),
    };
    for class in ErrorClass::ALL {
        if let Some(cap) = case.class_caps[class.index()] {
            builder = builder.class_max_attempts(class, cap);
        }
        if let Some(strategy) = case.class_strategies[class.index()] {
            builder = builder.class_strategy(class, strategy);
        }
    }
    if let Some(answers) = &case.budget {
        builder = builder.budget(ScriptedBudget {
            answers: answers.clone(),
            asked: Default::default(),
        });
    }
    builder.build().expect("generated policies are valid")
}

fn scripted(case: &Case, clock: &LoggingClock) -> impl FnMut() -> Result<u32, ScriptError> {
    let script = case.script.clone();
    let clock = clock.clone();
    let mut attempt = 0u32;
    move || {
        attempt += 1;
        clock
            .log
            .lock()
            .unwrap()
            .push(Entry::Start(clock.clock.now()));
        // Once the script runs out, attempts succeed at once.
        let step = script.get(attempt as usize - 1).copied().unwrap_or(Step {
            latency: Duration::ZERO,
            failure: None,
        });
        clock.clock.advance(step.latency);
        clock
            .log
            .lock()
            .unwrap()
            .push(Entry::End(clock.clock.now()));
        match step.failure {
            None => Ok(attempt),
            Some((class, hint)) => Err(ScriptError {
                attempt,
                class,
                hint,
            }),
        }
    }
}

type Outcome = Result<u32, RetryError<ScriptError>>;

fn run_blocking(case: &Case) -> (Outcome, Vec<Entry>) {
    let clock = LoggingClock {
        clock: ManualClock::new(),
        log: Log::default(),
    };
    let policy = build(case, &clock);
    let outcome = policy.call(scripted(case, &clock));
    let log = clock.log.lock().unwrap().clone();
    (outcome, log)
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..10_000 {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("a future on the fake clock did not complete");
}

fn run_async(case: &Case) -> (Outcome, Vec<Entry>) {
    let clock = LoggingClock {
        clock: ManualClock::new(),
        log: Log::default(),
    };
    let policy = build(case, &clock);
    let mut op = scripted(case, &clock);
    let outcome = block_on(policy.call_async(|| std::future::ready(op())));
    let log = clock.log.lock().unwrap().clone();
    (outcome, log)
}

/// The strategy the policy uses for `class`.
fn strategy_of(case: &Case, class: ErrorClass) -> Backoff {
    case.class_strategies[class.index()].unwrap_or(case.default_strategy)
}

/// Checks every envelope invariant on one call's log, with a model of the
/// engine's documented order of checks as the oracle for each decision.
fn check_invariants(case: &Case, outcome: &Outcome, log: &[Entry]) -> Result<(), TestCaseError> {
    let deadline = case.deadline;
    let mut attempts = 0u32;
    let mut failures = [0u32; 8];
    let mut terminal = 0;
    let mut i = 0;
    let mut last_class = None;
    let mut budget_asked = 0usize;
    while i < log.len() {
        // Each attempt: start, end, one event.
        let Entry::Start(start) = log[i] else {
            return Err(TestCaseError::fail(format!(
                "expected an attempt start at {i}: {log:?}"
            )));
        };
        let Some(Entry::End(end)) = log.get(i + 1).cloned() else {
            return Err(TestCaseError::fail(format!(
                "attempt without an end: {log:?}"
            )));
        };
        let Some(Entry::Event {
            kind,
            attempt,
            delay,
            class,
            elapsed,
        }) = log.get(i + 2).cloned()
        else {
            return Err(TestCaseError::fail(format!(
                "attempt without an event: {log:?}"
            )));
        };
        attempts += 1;
        i += 3;

        // No attempt starts after the deadline.
        if let Some(d) = deadline {
            prop_assert!(
                start <= d,
                "attempt {} started at {:?}, deadline {:?}",
                attempts,
                start,
                d
            );
        }
        prop_assert_eq!(attempt, attempts, "attempts are numbered from 1");
        prop_assert_eq!(elapsed, end);
        prop_assert_eq!(delay.is_some(), kind == EventKind::Retry);

        let step = case.script.get(attempts as usize - 1).copied();
        let failure = step.and_then(|s| s.failure);
        match failure {
            None => {
                prop_assert_eq!(kind, EventKind::Success);
                prop_assert_eq!(class, None);
            }
            Some((c, hint)) => {
                prop_assert_eq!(class, Some(c));
                last_class = Some(c);
                failures[c.index()] += 1;
                // The model of the engine's decision.
                let cap = match c {
                    ErrorClass::Unknown => case.max_unknown_attempts,
                    other => case.class_caps[other.index()],
                };
                let left = deadline.map(|d| d.saturating_sub(end));
                let hint = hint.map(|h| h.min(case.max_retry_after));
                let expected = if !c.is_retryable() {
                    EventKind::PermanentFail
                } else if cap.is_some_and(|cap| failures[c.index()] >= cap) {
                    if c == ErrorClass::Unknown {
                        EventKind::MaxUnknownAttemptsExceeded
                    } else {
                        EventKind::MaxAttemptsExceeded
                    }
                } else if attempts >= case.max_attempts {
                    EventKind::MaxAttemptsExceeded
                } else if deadline.is_some_and(|d| end >= d) {
                    EventKind::DeadlineExceeded
                } else if let (Some(h), Some(left)) = (hint, left) {
                    if h > left {
                        EventKind::DeadlineExceeded
                    } else {
                        EventKind::Retry
                    }
                } else {
                    EventKind::Retry
                };
                // The budget is asked last, only for a retry that would
                // otherwise be made.
                let expected = match (&case.budget, expected) {
                    (Some(answers), EventKind::Retry) => {
                        budget_asked += 1;
                        if answers.get(budget_asked - 1).copied().unwrap_or(true) {
                            EventKind::Retry
                        } else {
                            EventKind::BudgetExhausted
                        }
                    }
                    _ => expected,
                };
                prop_assert_eq!(
                    kind,
                    expected,
                    "attempt {} failed with {} at {:?}",
                    attempts,
                    c,
                    end
                );

                if let Some(delay) = delay {
                    let backoff = strategy_of(case, c);
                    let (lo, _) = backoff.bounds(attempt, None);
                    let floor = hint.map_or(lo, |h| lo.max(h));
                    let ceiling = hint.map_or(backoff.max(), |h| backoff.max().max(h));
                    let (floor, ceiling) = match left {
                        Some(left) => (floor.min(left), ceiling.min(left)),
                        None => (floor, ceiling),
                    };
                    prop_assert!(
                        floor <= delay && delay <= ceiling,
                        "delay {:?} outside [{:?}, {:?}]",
                        delay,
                        floor,
                        ceiling
                    );
                }
            }
        }

        if kind.is_terminal() {
            terminal += 1;
            // The terminal event is the last thing that happens: no sleep
            // after giving up.
            prop_assert_eq!(i, log.len(), "entries after the terminal event: {:?}", log);
        } else {
            let Some(Entry::Sleep {
                start: slept_at,
                length,
            }) = log.get(i).cloned()
            else {
                return Err(TestCaseError::fail(format!(
                    "retry without a sleep: {log:?}"
                )));
            };
            i += 1;
            prop_assert_eq!(slept_at, end);
            prop_assert_eq!(Some(length), delay);
            // No sleep ends past the deadline.
            if let Some(d) = deadline {
                prop_assert!(
                    slept_at + length <= d,
                    "sleep ends at {:?}, deadline {:?}",
                    slept_at + length,
                    d
                );
            }
        }
    }

    prop_assert_eq!(terminal, 1, "exactly one terminal event");
    prop_assert!(attempts <= case.max_attempts);
    for class in ErrorClass::ALL {
        let cap = match class {
            ErrorClass::Unknown => case.max_unknown_attempts,
            other => case.class_caps[other.index()],
        };
        if let Some(cap) = cap {
            prop_assert!(
                failures[class.index()] <= cap,
                "{} failed {} times, cap {}",
                class,
                failures[class.index()],
                cap
            );
        }
        if !class.is_retryable() {
            prop_assert!(failures[class.index()] <= 1, "{} retried", class);
        }
    }

    match outcome {
        Ok(value) => prop_assert_eq!(*value, attempts),
        Err(err) => {
            prop_assert_eq!(err.attempts(), attempts, "attempts() counts every run");
            prop_assert_eq!(err.error().attempt, attempts, "the last error, unchanged");
            prop_assert_eq!(Some(err.error().class), last_class);
            let Some(Entry::Event { kind, .. }) =
                log.iter().rev().find(|e| matches!(e, Entry::Event { .. }))
            else {
                unreachable!()
            };
            prop_assert_eq!(err.reason().event_kind(), *kind);
            if err.reason() == StopReason::ClassAttemptsExceeded {
                prop_assert!(last_class.is_some_and(|c| c != ErrorClass::Unknown));
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn envelope_invariants_hold_on_random_scripts(case in case()) {
        let (outcome, log) = run_blocking(&case);
        check_invariants(&case, &outcome, &log)?;
    }

    #[test]
    fn async_calls_keep_the_same_invariants_and_decisions(case in case()) {
        let (sync_outcome, sync_log) = run_blocking(&case);
        let (async_outcome, async_log) = run_async(&case);
        check_invariants(&case, &async_outcome, &async_log)?;
        prop_assert_eq!(&sync_log, &async_log);
        match (sync_outcome, async_outcome) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(a), Err(b)) => {
                prop_assert_eq!(a.reason(), b.reason());
                prop_assert_eq!(a.attempts(), b.attempts());
            }
            (a, b) => prop_assert!(false, "outcomes differ: {:?} vs {:?}", a, b),
        }
    }

    #[test]
    fn identically_seeded_runs_are_identical(case in case()) {
        let (first, first_log) = run_blocking(&case);
        let (second, second_log) = run_blocking(&case);
        prop_assert_eq!(first_log, second_log);
        prop_assert_eq!(first.is_ok(), second.is_ok());
    }

    #[test]
    fn calls_stay_within_the_engine_worst_case(case in case()) {
        let clock = LoggingClock { clock: ManualClock::new(), log: Log::default() };
        let policy = build(&case, &clock);
        let worst = policy.engine().worst_case();
        prop_assert!(worst.bounded);
        let (outcome, log) = run_blocking(&case);
        let attempts = match &outcome {
            Ok(n) => *n,
            Err(e) => e.attempts(),
        };
        prop_assert!(attempts <= worst.max_attempts, "{} attempts, worst case {:?}", attempts, worst);
        let slept: Duration = log
            .iter()
            .filter_map(|e| match e {
                Entry::Sleep { length, .. } => Some(*length),
                _ => None,
            })
            .sum();
        prop_assert!(slept <= worst.max_total_sleep_with_hints, "slept {:?}, worst case {:?}", slept, worst);
        let hinted = case.script.iter().any(|s| matches!(s.failure, Some((_, Some(_)))));
        if !hinted {
            prop_assert!(slept <= worst.max_total_sleep, "slept {:?}, worst case {:?}", slept, worst);
        }
    }
}

proptest! {
    /// Attempts that take time and delays above the minimum only start
    /// later, so no call makes more attempts than the worst case allows.
    #[test]
    fn calls_start_no_more_attempts_than_the_worst_case_before_the_deadline(case in case()) {
        let clock = LoggingClock { clock: ManualClock::new(), log: Log::default() };
        let worst = build(&case, &clock).engine().worst_case();
        let (outcome, _) = run_blocking(&case);
        let attempts = match &outcome {
            Ok(n) => *n,
            Err(e) => e.attempts(),
        };
        prop_assert!(
            attempts <= worst.max_attempts_before_deadline,
            "{} attempts, worst case {:?}",
            attempts,
            worst
        );
    }
}

// ---------------------------------------------------------------------------
// Configurations through TOML

#[cfg(feature = "config")]
mod config_round_trip {
    use super::*;
    use reflexio::config::{BudgetConfig, ClassConfig, HumanDuration, Percent, StrategyConfig};
    use reflexio::RetryConfig;
    use std::collections::BTreeMap;

    fn any_class() -> impl Strategy<Value = ErrorClass> {
        prop::sample::select(ErrorClass::ALL.to_vec())
    }

    fn config_duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (1u64..1000).prop_map(Duration::from_nanos),
            (1u64..100_000).prop_map(Duration::from_micros),
            (1u64..100_000).prop_map(Duration::from_millis),
            (1u64..10_000).prop_map(|m| Duration::from_secs(60 * m)),
            (1u64..1_000_000, 1u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        ]
    }

    fn strategy_config() -> impl Strategy<Value = StrategyConfig> {
        (
            any_kind(),
            prop::option::of(config_duration()),
            prop::option::of(config_duration()),
        )
            .prop_map(|(kind, base, max)| {
                let (default_base, default_max) = kind.defaults();
                let (base, max) = match kind {
                    BackoffKind::Constant => (base, None),
                    _ => {
                        let b = base.unwrap_or(default_base);
                        let m = max.unwrap_or(default_max);
                        if b <= m {
                            (base, max)
                        } else {
                            // Keep it valid: make max explicit and large enough.
                            (base, Some(b))
                        }
                    }
                };
                StrategyConfig {
                    kind: kind.name().to_owned(),
                    base: base.map(HumanDuration),
                    max: max.map(HumanDuration),
                }
            })
    }

    fn budget_config() -> impl Strategy<Value = BudgetConfig> {
        let empty = |kind: &str| BudgetConfig {
            kind: kind.to_owned(),
            capacity: None,
            retry_cost: None,
            timeout_cost: None,
            success_refund: None,
            window: None,
            min_per_sec: None,
            percent: None,
        };
        let token = (
            prop::option::of(10u32..1000),
            prop::option::of(1u32..10),
            prop::option::of(1u32..10),
            prop::option::of(0u32..10),
        )
            .prop_map(
                move |(capacity, retry_cost, timeout_cost, success_refund)| BudgetConfig {
                    capacity,
                    retry_cost,
                    timeout_cost,
                    success_refund,
                    ..empty("token_bucket")
                },
            );
        let ratio = (
            prop::option::of((1_000u64..3_600_000).prop_map(Duration::from_millis)),
            prop::option::of(0u32..100),
            prop::option::of(0u32..=10_000_000),
        )
            .prop_map(move |(window, min_per_sec, percent)| BudgetConfig {
                window: window.map(HumanDuration),
                min_per_sec,
                percent: percent.map(Percent),
                ..empty("ratio")
            });
        prop_oneof![token, ratio]
    }

    fn retry_config() -> impl Strategy<Value = RetryConfig> {
        let class = (
            prop::option::of(1u32..10),
            prop::option::of(strategy_config()),
        )
            .prop_map(|(max_attempts, strategy)| ClassConfig {
                max_attempts,
                strategy,
            });
        (
            prop::option::of(prop::option::of(config_duration())),
            prop::option::of(1u32..20),
            prop::option::of(prop::option::of(1u32..20)),
            prop::option::of(config_duration()),
            prop::option::of(any::<u64>()),
            prop::option::of(strategy_config()),
            prop::collection::btree_map(any_class(), class, 0..5),
            prop::option::of(budget_config()),
        )
            .prop_map(
                |(
                    deadline,
                    max_attempts,
                    max_unknown_attempts,
                    max_retry_after,
                    seed,
                    strategy,
                    classes,
                    budget,
                )| {
                    let classes: BTreeMap<String, ClassConfig> = classes
                        .into_iter()
                        .map(|(class, mut c)| {
                            if class == ErrorClass::Unknown {
                                c.max_attempts = None;
                            }
                            (class.name().to_owned(), c)
                        })
                        .collect();
                    RetryConfig {
                        deadline,
                        max_attempts,
                        max_unknown_attempts,
                        max_retry_after: max_retry_after.map(HumanDuration),
                        seed,
                        allow: Vec::new(),
                        strategy,
                        classes,
                        budget,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn configurations_round_trip_through_toml(config in retry_config()) {
            prop_assert!(config.validate().is_ok(), "{:?}", config.validate());
            let text = config.to_toml_string();
            let back = RetryConfig::from_toml_str(&text)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(&back, &config, "{}", text);

            let normalized = config.normalized().unwrap();
            let text = normalized.to_toml_string();
            let back = RetryConfig::from_toml_str(&text)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(&back, &normalized, "{}", text);
            for class in ErrorClass::ALL {
                prop_assert_eq!(normalized.backoff(class), config.backoff(class));
            }
            let (a, b) = (normalized.envelope(), config.envelope());
            prop_assert_eq!(a.deadline, b.deadline);
            prop_assert_eq!(a.max_attempts, b.max_attempts);
            prop_assert_eq!(a.max_unknown_attempts, b.max_unknown_attempts);
            prop_assert_eq!(a.max_retry_after, b.max_retry_after);
            prop_assert_eq!(normalized.budget_spec().unwrap(), config.budget_spec().unwrap());
        }
    }
}

#[test]
fn worst_case_counts_the_attempt_started_at_the_deadline() {
    // Deadline 1 s, constant 400 ms, attempts that take no time: the engine
    // sleeps 400, 400 and then the 200 ms left, so attempts start at 0, 400,
    // 800 and 1000 ms. Four attempts, none after the deadline.
    let case = Case {
        deadline: Some(Duration::from_secs(1)),
        max_attempts: 10,
        max_unknown_attempts: None,
        class_caps: [None; 8],
        max_retry_after: Duration::ZERO,
        default_strategy: Backoff::constant(Duration::from_millis(400)),
        class_strategies: [None; 8],
        seed: 0,
        script: vec![
            Step {
                latency: Duration::ZERO,
                failure: Some((ErrorClass::Transient, None)),
            };
            10
        ],
        budget: None,
    };
    let (outcome, log) = run_blocking(&case);
    check_invariants(&case, &outcome, &log).unwrap();
    assert_eq!(outcome.unwrap_err().attempts(), 4);
    let clock = LoggingClock {
        clock: ManualClock::new(),
        log: Log::default(),
    };
    let worst = build(&case, &clock).engine().worst_case();
    assert!(
        worst.max_attempts_before_deadline >= 4,
        "worst case {worst:?} undercounts the attempts a call makes"
    );
}
