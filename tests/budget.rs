//! Retry budgets: their documented bounds, checked against naive reference
//! models and against the bounds themselves, on one thread and on many;
//! the budget's place in the engine's order of checks; and identical
//! decisions from the blocking, async and simulated (engine on virtual
//! time) drivers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use reflexio::budget::{RatioBudget, TokenBucket, RATIO_SLOTS};
use reflexio::engine::{Decision, Failure};
use reflexio::{
    Backoff, Budget, BudgetSpec, Classification, ClassifiedError, ErrorClass, Event, EventKind,
    ManualClock, RetryPolicy, StopReason,
};

const RETRYABLE: [ErrorClass; 5] = [
    ErrorClass::Concurrency,
    ErrorClass::RateLimit,
    ErrorClass::ServerError,
    ErrorClass::Transient,
    ErrorClass::Unknown,
];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------
// Reference models: the documented rules, written the naive way.

/// A ratio budget as its documentation states it: lists of slots.
struct RatioModel {
    slot: u64,
    reserve: u64,
    ppm: u64,
    starts: Vec<u64>,
    retries: Vec<u64>,
}

impl RatioModel {
    fn new(spec: BudgetSpec) -> Self {
        let BudgetSpec::Ratio {
            window,
            percent_ppm,
            ..
        } = spec
        else {
            unreachable!()
        };
        RatioModel {
            slot: window.as_nanos() as u64 / RATIO_SLOTS,
            reserve: spec.reserve(),
            ppm: u64::from(percent_ppm),
            starts: Vec::new(),
            retries: Vec::new(),
        }
    }

    fn slot_of(&self, t: Duration) -> u64 {
        t.as_nanos() as u64 / self.slot
    }

    fn in_window(k: u64, list: &[u64]) -> u64 {
        list.iter()
            .filter(|&&s| s <= k && s + RATIO_SLOTS > k)
            .count() as u64
    }

    fn allowance(&self, k: u64) -> u64 {
        self.reserve + self.ppm * Self::in_window(k, &self.starts) / 1_000_000
    }

    fn start(&mut self, t: Duration) {
        let k = self.slot_of(t);
        self.starts.push(k);
    }

    fn try_retry(&mut self, t: Duration) -> bool {
        let k = self.slot_of(t);
        if Self::in_window(k, &self.retries) < self.allowance(k) {
            self.retries.push(k);
            true
        } else {
            false
        }
    }
}

/// The documented bound of a ratio budget, checked on what it admitted:
/// for every slot `k` with an admitted retry, the retries admitted in
/// slots `k-9..=k` are at most the allowance of the calls started there.
fn check_ratio_bound(
    spec: BudgetSpec,
    starts: &[Duration],
    admitted: &[Duration],
) -> Result<(), String> {
    let mut model = RatioModel::new(spec);
    for t in starts {
        model.start(*t);
    }
    let slots: Vec<u64> = admitted.iter().map(|t| model.slot_of(*t)).collect();
    for &k in &slots {
        let spent = RatioModel::in_window(k, &slots);
        let allowed = model.allowance(k);
        if spent > allowed {
            return Err(format!(
                "{spent} retries admitted in the window ending at slot {k}, bound {allowed}"
            ));
        }
    }
    Ok(())
}

/// A token bucket as documented: a balance clamped to `[0, capacity]`.
struct BucketModel {
    capacity: i64,
    retry_cost: i64,
    timeout_cost: i64,
    refund: i64,
    tokens: i64,
}

impl BucketModel {
    fn new(spec: BudgetSpec) -> Self {
        let BudgetSpec::TokenBucket {
            capacity,
            retry_cost,
            timeout_cost,
            success_refund,
        } = spec
        else {
            unreachable!()
        };
        BucketModel {
            capacity: capacity.into(),
            retry_cost: retry_cost.into(),
            timeout_cost: timeout_cost.into(),
            refund: success_refund.into(),
            tokens: capacity.into(),
        }
    }

    fn cost(&self, class: ErrorClass) -> i64 {
        if class == ErrorClass::Transient {
            self.timeout_cost
        } else {
            self.retry_cost
        }
    }

    fn try_retry(&mut self, class: ErrorClass) -> bool {
        let cost = self.cost(class);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    fn succeeded(&mut self, last_retry: Option<ErrorClass>) {
        let back = last_retry.map_or(self.refund, |c| self.cost(c));
        self.tokens = (self.tokens + back).min(self.capacity);
    }
}

/// The token bucket's documented bound, checked on a ledger of what it
/// admitted and refunded (in order): over every stretch, the costs of the
/// admitted retries are at most the capacity plus the refunds credited.
fn check_bucket_bound(capacity: i64, ledger: &[i64]) -> Result<(), String> {
    // `ledger`: +refund or -cost. The worst stretch is the largest drop of
    // the running sum below an earlier peak.
    let (mut sum, mut peak) = (0i64, 0i64);
    for (i, entry) in ledger.iter().enumerate() {
        sum += entry;
        peak = peak.max(sum);
        if peak - sum > capacity {
            return Err(format!(
                "at entry {i}, retries spent {} tokens more than was refunded since, capacity {capacity}",
                peak - sum
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Random budgets and interleavings

fn ratio_spec() -> impl Strategy<Value = BudgetSpec> {
    (
        prop_oneof![Just(1_000u64), Just(10_000), 1_000u64..60_000],
        0u32..5,
        prop_oneof![Just(0u32), Just(100_000), Just(200_000), 0u32..2_000_000],
    )
        .prop_map(|(window_ms, min_per_sec, percent_ppm)| BudgetSpec::Ratio {
            window: ms(window_ms),
            min_per_sec,
            percent_ppm,
        })
}

fn bucket_spec() -> impl Strategy<Value = BudgetSpec> {
    (1u32..60, 1u32..8, 1u32..12, 0u32..4).prop_map(|(capacity, retry, timeout, refund)| {
        let capacity = capacity.max(retry).max(timeout);
        BudgetSpec::TokenBucket {
            capacity,
            retry_cost: retry,
            timeout_cost: timeout,
            success_refund: refund,
        }
    })
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Start,
    Retry(ErrorClass),
    Success(Option<ErrorClass>),
}

fn op() -> impl Strategy<Value = Op> {
    let class = prop::sample::select(RETRYABLE.to_vec());
    prop_oneof![
        3 => Just(Op::Start),
        4 => class.clone().prop_map(Op::Retry),
        2 => prop::option::of(class).prop_map(Op::Success),
    ]
}

/// Operations at non-decreasing times (gaps from none to several windows).
fn interleaving() -> impl Strategy<Value = Vec<(Duration, Op)>> {
    let gap = prop_oneof![
        4 => Just(0u64),
        4 => 0u64..200,
        1 => 0u64..30_000,
    ];
    prop::collection::vec((gap, op()), 1..300).prop_map(|steps| {
        let mut t = 0;
        steps
            .into_iter()
            .map(|(gap, op)| {
                t += gap;
                (ms(t), op)
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// The lock-free ratio budget decides exactly as its documented rule,
    /// and what it admits keeps the documented window bound.
    #[test]
    fn ratio_budget_follows_its_rule_and_bound(spec in ratio_spec(), ops in interleaving()) {
        let budget = spec.build();
        let mut model = RatioModel::new(spec);
        let (mut starts, mut admitted) = (Vec::new(), Vec::new());
        for (t, op) in ops {
            match op {
                Op::Start => {
                    budget.call_started(t);
                    model.start(t);
                    starts.push(t);
                }
                Op::Retry(class) => {
                    let got = budget.try_retry(t, class);
                    prop_assert_eq!(got, model.try_retry(t), "retry at {:?}", t);
                    if got {
                        admitted.push(t);
                    }
                }
                Op::Success(last) => budget.call_succeeded(t, last),
            }
        }
        check_ratio_bound(spec, &starts, &admitted).map_err(TestCaseError::fail)?;
    }

    /// The lock-free token bucket decides exactly as its documented rule,
    /// and never spends more than its capacity plus its refunds.
    #[test]
    fn token_bucket_follows_its_rule_and_bound(spec in bucket_spec(), ops in interleaving()) {
        let budget = spec.build();
        let mut model = BucketModel::new(spec);
        let mut ledger = Vec::new();
        for (t, op) in ops {
            match op {
                Op::Start => budget.call_started(t),
                Op::Retry(class) => {
                    let got = budget.try_retry(t, class);
                    prop_assert_eq!(got, model.try_retry(class));
                    if got {
                        ledger.push(-model.cost(class));
                    }
                }
                Op::Success(last) => {
                    let before = model.tokens;
                    model.succeeded(last);
                    budget.call_succeeded(t, last);
                    ledger.push(model.tokens - before);
                }
            }
        }
        let BudgetSpec::TokenBucket { capacity, .. } = spec else { unreachable!() };
        check_bucket_bound(i64::from(capacity), &ledger).map_err(TestCaseError::fail)?;
    }
}

// ---------------------------------------------------------------------------
// Many calls interleaved through the engine, on virtual time

/// One call in flight in [`simulate`].
struct InFlight {
    state: reflexio::engine::CallState,
    started: Duration,
    rng: Option<ChaCha8Rng>,
    script: Vec<Option<ErrorClass>>,
}

/// What a simulated run decided, in order: `(call, attempt, event kind,
/// delay)`.
type Decisions = Vec<(usize, u32, EventKind, Option<Duration>)>;

/// Drives `calls` through `engine` the way the simulator does: one event
/// queue on virtual time, calls overlapping, the budget handed virtual
/// time. Each call `i` starts at `arrivals[i]`, each attempt takes
/// `latency`, and its outcomes follow its script (`None` succeeds; past the
/// end, success). A call's RNG is the seeded policy's next stream, taken at
/// its first failure, as a seeded policy takes it.
fn simulate(
    engine: &reflexio::Engine,
    seed: u64,
    arrivals: &[Duration],
    scripts: &[Vec<Option<ErrorClass>>],
    latency: Duration,
) -> (Decisions, Vec<(Duration, EventKind)>) {
    // (time, sequence, call): attempt ends, in time order.
    let mut queue: BTreeMap<(Duration, u64), usize> = BTreeMap::new();
    let mut seq = 0u64;
    let mut calls: Vec<Option<InFlight>> = Vec::new();
    let mut pending_starts: Vec<(Duration, usize)> = arrivals
        .iter()
        .copied()
        .enumerate()
        .map(|(i, t)| (t, i))
        .collect();
    pending_starts.sort();
    for &(t, i) in &pending_starts {
        queue.insert((t, seq), usize::MAX - i);
        seq += 1;
    }
    calls.resize_with(arrivals.len(), || None);
    let mut decisions = Vec::new();
    let mut timeline = Vec::new();
    let mut streams = 0u64;
    while let Some(((now, _), target)) = queue.pop_first() {
        if target > usize::MAX / 2 {
            // A call starts; its first attempt ends after `latency`.
            let i = usize::MAX - target;
            calls[i] = Some(InFlight {
                state: engine.start_at(now),
                started: now,
                rng: None,
                script: scripts[i].clone(),
            });
            queue.insert((now + latency, seq), i);
            seq += 1;
            continue;
        }
        let call = calls[target].as_mut().expect("a call in flight");
        let attempt = call.state.attempt();
        let elapsed = now - call.started;
        let mut emitted = Vec::new();
        let mut emit = |e: &Event<'_>| emitted.push((e.kind, e.delay));
        match call.script.get(attempt as usize - 1).copied().flatten() {
            None => engine.on_success(&mut call.state, "", elapsed, &mut emit),
            Some(class) => {
                let failure = Failure {
                    classification: Classification::new(class),
                    error_type: "",
                    error: None,
                };
                let rng = call.rng.get_or_insert_with(|| {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    rng.set_stream(streams);
                    streams += 1;
                    rng
                });
                let decision =
                    engine.on_failure(&mut call.state, "", failure, elapsed, rng, &mut emit);
                if let Decision::Retry(retry) = decision {
                    queue.insert((now + retry.delay + latency, seq), target);
                    seq += 1;
                }
            }
        }
        for (kind, delay) in emitted {
            decisions.push((target, attempt, kind, delay));
            timeline.push((now, kind));
        }
    }
    (decisions, timeline)
}

fn engine_with(spec: BudgetSpec, max_attempts: u32, backoff: Backoff) -> reflexio::Engine {
    let strategies = ErrorClass::ALL.map(|_| Arc::new(backoff) as Arc<dyn reflexio::Strategy>);
    let mut envelope = reflexio::Envelope::default();
    envelope.max_attempts = max_attempts;
    envelope.deadline = None;
    envelope.max_unknown_attempts = None;
    reflexio::Engine::new(envelope, strategies).with_budget(Some(spec.build()))
}

fn script() -> impl Strategy<Value = Vec<Option<ErrorClass>>> {
    prop::collection::vec(
        prop::option::weighted(0.8, prop::sample::select(RETRYABLE.to_vec())),
        0..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Many overlapping calls through one engine: its budget's bound holds
    /// in every window, every call ends with exactly one terminal event,
    /// the attempt cap holds, and the budget refuses only retries (never a
    /// first attempt).
    #[test]
    fn interleaved_calls_keep_the_budget_bound_and_the_envelope(
        spec in prop_oneof![ratio_spec(), bucket_spec()],
        max_attempts in 1u32..6,
        gaps in prop::collection::vec(0u64..400, 1..120),
        scripts in prop::collection::vec(script(), 120),
        latency in 0u64..50,
        seed in any::<u64>(),
    ) {
        let engine = engine_with(spec, max_attempts, Backoff::full_jitter(ms(10), ms(2_000)));
        let mut t = 0;
        let arrivals: Vec<Duration> = gaps.iter().map(|g| { t += g; ms(t) }).collect();
        let scripts = &scripts[..arrivals.len()];
        let (decisions, timeline) = simulate(&engine, seed, &arrivals, scripts, ms(latency));

        let mut terminal = vec![0u32; arrivals.len()];
        for &(call, attempt, kind, _) in &decisions {
            prop_assert!(attempt >= 1 && attempt <= max_attempts);
            if kind.is_terminal() {
                terminal[call] += 1;
            }
        }
        prop_assert!(terminal.iter().all(|&n| n == 1), "terminal events per call: {:?}", terminal);

        match spec {
            BudgetSpec::Ratio { .. } => {
                let admitted: Vec<Duration> = timeline
                    .iter()
                    .filter(|(_, k)| *k == EventKind::Retry)
                    .map(|(t, _)| *t)
                    .collect();
                check_ratio_bound(spec, &arrivals, &admitted).map_err(TestCaseError::fail)?;
            }
            BudgetSpec::TokenBucket { capacity, .. } => {
                // Replay the ledger from the decisions, in time order.
                let model = BucketModel::new(spec);
                let mut last_retry: Vec<Option<ErrorClass>> = vec![None; arrivals.len()];
                let mut ledger = Vec::new();
                for &(call, attempt, kind, _) in &decisions {
                    let class = scripts[call].get(attempt as usize - 1).copied().flatten();
                    match kind {
                        EventKind::Retry => {
                            let class = class.expect("a retry follows a failure");
                            ledger.push(-model.cost(class));
                            last_retry[call] = Some(class);
                        }
                        EventKind::Success => {
                            let back = last_retry[call].map_or(model.refund, |c| model.cost(c));
                            ledger.push(back);
                        }
                        _ => {}
                    }
                }
                check_bucket_bound(i64::from(capacity), &ledger).map_err(TestCaseError::fail)?;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Blocking, async and simulated runs decide alike

/// Runs calls one after another through `policy` (blocking or async), each
/// following its script, each attempt taking `latency` on the fake clock.
fn run_policy(
    asynchronous: bool,
    spec: BudgetSpec,
    seed: u64,
    arrivals: &[Duration],
    scripts: &[Vec<Option<ErrorClass>>],
    latency: Duration,
) -> Decisions {
    let clock = ManualClock::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let policy = RetryPolicy::builder()
        .strategy(Backoff::full_jitter(ms(10), ms(2_000)))
        .max_attempts(5)
        .no_deadline()
        .no_unknown_cap()
        .seed(seed)
        .budget(spec.build())
        .clock(clock.clone())
        .sleeper(clock.clone())
        .hook(move |e: &Event<'_>| sink.lock().unwrap().push((e.kind, e.attempt, e.delay)))
        .build()
        .unwrap();
    let mut decisions = Vec::new();
    for (i, (start, script)) in arrivals.iter().zip(scripts).enumerate() {
        let now = clock.now();
        if *start > now {
            clock.advance(*start - now);
        }
        let mut attempt = 0usize;
        let mut op = || {
            attempt += 1;
            clock.advance(latency);
            match script.get(attempt - 1).copied().flatten() {
                None => Ok(attempt),
                Some(class) => Err(ClassifiedError::new(class, "scripted")),
            }
        };
        if asynchronous {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let _ = rt.block_on(policy.call_async(|| std::future::ready(op())));
        } else {
            let _ = policy.call(&mut op);
        }
        for (kind, attempt, delay) in log.lock().unwrap().drain(..) {
            decisions.push((i, attempt, kind, delay));
        }
    }
    decisions
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Calls that do not overlap, at the same times with the same seed:
    /// the blocking driver, the async driver and the engine on virtual
    /// time make the same decisions, budget refusals included.
    #[test]
    fn blocking_async_and_simulated_runs_decide_alike(
        spec in prop_oneof![ratio_spec(), bucket_spec()],
        scripts in prop::collection::vec(script(), 1..40),
        seed in any::<u64>(),
    ) {
        let latency = ms(5);
        // Calls far enough apart not to overlap: each ends within
        // 5 attempts × (5 ms + 2 s).
        let arrivals: Vec<Duration> = (0..scripts.len() as u64).map(|i| ms(i * 11_000)).collect();
        let engine = engine_with(spec, 5, Backoff::full_jitter(ms(10), ms(2_000)));
        let (simulated, _) = simulate(&engine, seed, &arrivals, &scripts, latency);
        let blocking = run_policy(false, spec, seed, &arrivals, &scripts, latency);
        let asynchronous = run_policy(true, spec, seed, &arrivals, &scripts, latency);
        prop_assert_eq!(&blocking, &simulated);
        prop_assert_eq!(&asynchronous, &simulated);
    }
}

// ---------------------------------------------------------------------------
// One policy, many threads

const THREADS: usize = 4;
const CALLS_PER_THREAD: usize = 2_000;

/// Counts the events a policy emits, from every thread.
#[derive(Default)]
struct Counts {
    retries: AtomicU64,
    refused: AtomicU64,
    clean: AtomicU64,
    retried_successes: AtomicU64,
}

fn hammer(policy: &RetryPolicy, fail: impl Fn(usize, usize) -> bool + Sync) {
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let policy = policy.clone();
            let fail = &fail;
            scope.spawn(move || {
                // Half the threads go through a bound context: it shares
                // the budget too.
                let bound = policy.bind("hammer");
                for call in 0..CALLS_PER_THREAD {
                    let mut attempt = 0;
                    let mut op = || {
                        attempt += 1;
                        if attempt == 1 && fail(thread, call) || attempt > 1 && call % 3 == 0 {
                            Err(ClassifiedError::server_error("busy"))
                        } else {
                            Ok(())
                        }
                    };
                    let _ = if thread % 2 == 0 {
                        policy.call(&mut op)
                    } else {
                        bound.call(&mut op)
                    };
                }
            });
        }
    });
}

fn counting_policy(budget: impl Budget + 'static, counts: &Arc<Counts>) -> RetryPolicy {
    let c = Arc::clone(counts);
    RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::ZERO))
        .max_attempts(5)
        .budget(budget)
        // A clock that does not move: every call falls in one slot, so the
        // bound is one global figure.
        .clock(ManualClock::new())
        .hook(move |e: &Event<'_>| {
            let n = match e.kind {
                EventKind::Retry => &c.retries,
                EventKind::BudgetExhausted => &c.refused,
                EventKind::Success if e.attempt == 1 => &c.clean,
                EventKind::Success => &c.retried_successes,
                _ => return,
            };
            n.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap()
}

#[test]
fn a_ratio_budget_holds_its_bound_across_threads() {
    let counts = Arc::new(Counts::default());
    let budget = Arc::new(RatioBudget::new(Duration::from_secs(10), 1, 20.0).unwrap());
    let policy = counting_policy(Arc::clone(&budget), &counts);
    // Every first attempt fails.
    hammer(&policy, |_, _| true);
    let calls = (THREADS * CALLS_PER_THREAD) as u64;
    let bound = 10 + calls / 5;
    let retries = counts.retries.load(Ordering::Relaxed);
    assert!(
        retries <= bound,
        "{retries} retries admitted, bound {bound}"
    );
    // The budget was the limit, not the traffic: it ran dry and refused.
    assert!(counts.refused.load(Ordering::Relaxed) > 0);
    assert!(
        retries >= bound - 4 * THREADS as u64,
        "{retries} retries, bound {bound}"
    );
}

#[test]
fn a_token_bucket_holds_its_bound_across_threads() {
    let counts = Arc::new(Counts::default());
    let bucket = Arc::new(TokenBucket::new(500, 5, 10, 1).unwrap());
    let policy = counting_policy(Arc::clone(&bucket), &counts);
    // One first attempt in two fails.
    hammer(&policy, |thread, call| (thread + call) % 2 == 0);
    let retries = counts.retries.load(Ordering::Relaxed);
    let clean = counts.clean.load(Ordering::Relaxed);
    let retried = counts.retried_successes.load(Ordering::Relaxed);
    // Every retry costs 5 (server errors); refunds: 1 per clean success, 5
    // per success after a retry. The bucket caps at 500, so at most:
    let bound = (500 + clean + 5 * retried) / 5;
    assert!(
        retries <= bound,
        "{retries} retries admitted, bound {bound}"
    );
    assert!(counts.refused.load(Ordering::Relaxed) > 0);
    assert!(bucket.tokens() <= 500);
}

#[test]
fn clones_and_bound_contexts_share_one_budget() {
    let counts = Arc::new(Counts::default());
    let policy = counting_policy(
        RatioBudget::new(Duration::from_secs(1), 0, 50.0).unwrap(),
        &counts,
    );
    let clone = policy.clone();
    let bound = policy.bind("op");
    let failing = || Err::<(), _>(ClassifiedError::transient("reset"));
    // Two calls through different handles buy one retry between them.
    let _ = clone.call(failing);
    let _ = bound.call(failing);
    assert_eq!(counts.retries.load(Ordering::Relaxed), 1);
    assert_eq!(counts.refused.load(Ordering::Relaxed), 2);
}

// ---------------------------------------------------------------------------
// The budget in the engine's order of checks

/// A budget that records what it was told and admits by script.
#[derive(Default)]
struct Recorder {
    admit: Mutex<Vec<bool>>,
    asked: Mutex<Vec<(Duration, ErrorClass)>>,
    started: Mutex<Vec<Duration>>,
    succeeded: Mutex<Vec<(Duration, Option<ErrorClass>)>>,
}

impl Budget for Recorder {
    fn try_retry(&self, now: Duration, class: ErrorClass) -> bool {
        self.asked.lock().unwrap().push((now, class));
        let mut admit = self.admit.lock().unwrap();
        if admit.is_empty() {
            true
        } else {
            admit.remove(0)
        }
    }

    fn call_started(&self, now: Duration) {
        self.started.lock().unwrap().push(now);
    }

    fn call_succeeded(&self, now: Duration, last_retry: Option<ErrorClass>) {
        self.succeeded.lock().unwrap().push((now, last_retry));
    }
}

#[test]
fn a_user_budget_is_asked_last_with_the_clock_time() {
    let clock = ManualClock::new();
    clock.advance(Duration::from_secs(100));
    let recorder = Arc::new(Recorder::default());
    recorder.admit.lock().unwrap().extend([true, false]);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let policy = RetryPolicy::builder()
        .strategy(Backoff::constant(ms(50)))
        .max_attempts(4)
        .max_unknown_attempts(4)
        .budget(Arc::clone(&recorder))
        .clock(clock.clone())
        .hook(move |e: &Event<'_>| sink.lock().unwrap().push(e.kind))
        .build()
        .unwrap();

    // Permanent errors and the attempt cap stop the call before the budget
    // is asked.
    let err = policy
        .call(|| Err::<(), _>(ClassifiedError::permanent("no")))
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::Permanent);
    assert!(recorder.asked.lock().unwrap().is_empty());

    // Admitted, then refused: the call ends with budget_exhausted after
    // two attempts, without sleeping after the refusal.
    let mut attempts = 0;
    let err = policy
        .call(|| {
            attempts += 1;
            clock.advance(ms(10));
            Err::<(), _>(ClassifiedError::transient("reset"))
        })
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::BudgetExhausted);
    assert_eq!(err.attempts(), 2);
    assert_eq!(
        err.to_string(),
        "gave up after 2 attempts (budget_exhausted): transient error: reset"
    );
    // Asked at the clock's time: 100 s, plus the first attempt's 10 ms,
    // then plus the 50 ms sleep and the second attempt's 10 ms.
    let asked = recorder.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        [
            (Duration::from_secs(100) + ms(10), ErrorClass::Transient),
            (Duration::from_secs(100) + ms(70), ErrorClass::Transient),
        ]
    );
    assert_eq!(clock.sleeps(), 1);
    // Each call's start was told, at the clock's time.
    assert_eq!(
        *recorder.started.lock().unwrap(),
        [Duration::from_secs(100), Duration::from_secs(100)]
    );

    // A success after a retry tells the budget the retried class.
    let mut first = true;
    let value = policy.call(|| {
        if std::mem::take(&mut first) {
            Err(ClassifiedError::server_error("503"))
        } else {
            Ok(7)
        }
    });
    assert_eq!(value.unwrap(), 7);
    assert_eq!(recorder.started.lock().unwrap().len(), 3);
    let succeeded = recorder.succeeded.lock().unwrap().clone();
    assert_eq!(succeeded.len(), 1);
    assert_eq!(succeeded[0].1, Some(ErrorClass::ServerError));
    assert_eq!(
        *events.lock().unwrap(),
        [
            EventKind::PermanentFail,
            EventKind::Retry,
            EventKind::BudgetExhausted,
            EventKind::Retry,
            EventKind::Success,
        ]
    );
    assert_eq!(EventKind::BudgetExhausted.name(), "budget_exhausted");
    assert!(EventKind::BudgetExhausted.is_terminal());
}

#[test]
fn an_unobserved_policy_without_a_deadline_still_feeds_its_budget() {
    // No hooks, no deadline: the driver reads the clock only for the
    // ratio budget, which needs the time.
    let clock = ManualClock::new();
    let policy = RetryPolicy::builder()
        .strategy(Backoff::constant(ms(1)))
        .no_deadline()
        .budget(RatioBudget::new(Duration::from_secs(10), 0, 10.0).unwrap())
        .clock(clock.clone())
        .build()
        .unwrap();
    for _ in 0..100 {
        assert!(policy.call(|| Ok::<_, ClassifiedError>(())).is_ok());
    }
    // A hundred calls (and this one) started: ten retries in the window.
    let mut attempts = 0;
    let err = policy
        .call(|| {
            attempts += 1;
            Err::<(), _>(ClassifiedError::transient("reset"))
        })
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::MaxAttemptsExceeded);
    assert_eq!(err.attempts(), 6);
    assert_eq!(attempts, 6);
    let err = policy
        .call(|| Err::<(), _>(ClassifiedError::transient("reset")))
        .unwrap_err();
    assert_eq!(
        err.reason(),
        StopReason::MaxAttemptsExceeded,
        "5 + 5 of the 10 retries"
    );
    let err = policy
        .call(|| Err::<(), _>(ClassifiedError::transient("reset")))
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::BudgetExhausted);
    assert_eq!(
        err.attempts(),
        1,
        "the budget is spent; the first attempt still runs"
    );
    // Eleven seconds later the window has moved past those calls: one call
    // in it buys a tenth of a retry, ten more buy one.
    clock.advance(Duration::from_secs(11));
    let err = policy
        .call(|| Err::<(), _>(ClassifiedError::transient("reset")))
        .unwrap_err();
    assert_eq!(err.attempts(), 1);
    for _ in 0..9 {
        assert!(policy.call(|| Ok::<_, ClassifiedError>(())).is_ok());
    }
    let err = policy
        .call(|| Err::<(), _>(ClassifiedError::transient("reset")))
        .unwrap_err();
    assert_eq!(err.attempts(), 2);
    assert_eq!(err.reason(), StopReason::BudgetExhausted);
}

#[test]
fn settings_are_checked() {
    assert_eq!(TokenBucket::new(0, 5, 10, 1).unwrap_err().field, "capacity");
    assert_eq!(
        TokenBucket::new(10, 0, 10, 1).unwrap_err().field,
        "retry_cost"
    );
    let err = TokenBucket::new(8, 5, 10, 1).unwrap_err();
    assert_eq!(err.field, "timeout_cost");
    assert!(err.to_string().contains("above the capacity"), "{err}");
    assert_eq!(
        RatioBudget::new(ms(999), 1, 20.0).unwrap_err().field,
        "window"
    );
    assert_eq!(
        RatioBudget::new(Duration::from_secs(3601), 1, 20.0)
            .unwrap_err()
            .field,
        "window"
    );
    for percent in [-1.0, 1000.5, f64::NAN, 0.00001] {
        assert_eq!(
            RatioBudget::new(Duration::from_secs(10), 1, percent)
                .unwrap_err()
                .field,
            "percent"
        );
    }
    let spec = RatioBudget::new(Duration::from_secs(10), 10, 12.5)
        .unwrap()
        .spec()
        .unwrap();
    assert_eq!(
        spec.to_string(),
        "ratio (12.5% of calls, 10 retries/s reserve, window 10s)"
    );
    assert_eq!(spec.reserve(), 100);
    assert!((spec.amplification() - 1.125).abs() < 1e-12);
    let aws = TokenBucket::aws().spec().unwrap();
    assert!((aws.amplification_when_failing() - 1.2).abs() < 1e-12);
    assert!((aws.amplification() - 2.0).abs() < 1e-12);
}
