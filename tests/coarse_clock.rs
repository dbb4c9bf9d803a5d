//! The envelope under a coarse clock.
//!
//! `CoarseClock` moves in steps of its resolution `r` (a scheduler tick).
//! Its documented promise: by an exact clock, no attempt starts more than
//! `r` after the deadline, no call gives up on the deadline more than `r`
//! before it, and nothing else about the envelope changes. These properties
//! drive random policies and failure scripts through a fake coarse clock
//! (the true time line is a `ManualClock`; the policy sees it floored to
//! steps of `r`, from a random phase, exactly as `CoarseClock` floors the
//! kernel's tick) with the blocking and the async driver, and check every
//! attempt and decision against the true time line.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use reflexio::clock::SleepFuture;
use reflexio::{Backoff, Clock, ErrorClass, Event, EventKind, ManualClock, RetryPolicy, Sleeper};

/// A coarse view of a fake true clock: time in steps of `step`, from a
/// phase, relative to the view's own origin (as `CoarseClock::new` takes
/// the tick it was made in as its origin).
#[derive(Clone)]
struct FakeCoarse {
    truth: ManualClock,
    step: Duration,
    phase: Duration,
    origin: Duration,
    log: Arc<Mutex<Vec<Entry>>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Entry {
    /// An attempt starts, at this true time.
    Start(Duration),
    /// A sleep ends, at this true time.
    Woke(Duration),
    /// An event, with the true time it was emitted at.
    Event {
        kind: EventKind,
        attempt: u32,
        class: Option<ErrorClass>,
        truth: Duration,
    },
}

impl FakeCoarse {
    fn new(step: Duration, phase: Duration) -> Self {
        let mut clock = FakeCoarse {
            truth: ManualClock::new(),
            step,
            phase,
            origin: Duration::ZERO,
            log: Arc::default(),
        };
        clock.origin = clock.ticks();
        clock
    }

    /// The true time floored to a whole step (shifted by the phase).
    fn ticks(&self) -> Duration {
        let t = self.truth.now() + self.phase;
        let step = self.step.as_nanos();
        Duration::from_nanos(u64::try_from(t.as_nanos() / step * step).unwrap())
    }

    fn sleep_for(&self, duration: Duration) {
        self.truth.advance(duration);
        self.log.lock().unwrap().push(Entry::Woke(self.truth.now()));
    }
}

impl Clock for FakeCoarse {
    fn now(&self) -> Duration {
        self.ticks() - self.origin
    }

    fn sleep(&self, duration: Duration) {
        self.sleep_for(duration);
    }
}

impl Sleeper for FakeCoarse {
    fn now(&self) -> Duration {
        self.ticks() - self.origin
    }

    fn sleep(&self, duration: Duration) -> SleepFuture {
        self.sleep_for(duration);
        Box::pin(std::future::ready(()))
    }
}

#[derive(Debug, Clone)]
struct Case {
    step: Duration,
    phase: Duration,
    deadline: Duration,
    max_attempts: u32,
    strategy: Backoff,
    /// Per attempt: its latency and its failure class (`None`: success).
    script: Vec<(Duration, Option<ErrorClass>)>,
    seed: u64,
}

fn any_case() -> impl Strategy<Value = Case> {
    let steps = prop::sample::select(vec![1u64, 4, 10]).prop_map(Duration::from_millis);
    let class = prop_oneof![
        4 => Just(Some(ErrorClass::Transient)),
        2 => Just(Some(ErrorClass::ServerError)),
        1 => Just(Some(ErrorClass::Unknown)),
        1 => Just(Some(ErrorClass::Permanent)),
        1 => Just(None),
    ];
    let attempt = ((0u64..40).prop_map(Duration::from_millis), class);
    (
        steps,
        0u64..10_000_000,
        (1u64..300).prop_map(Duration::from_millis),
        1u32..12,
        prop::sample::select(vec![0u8, 1, 2, 3]),
        (0u64..30, 1u64..200),
        prop::collection::vec(attempt, 1..14),
        any::<u64>(),
    )
        .prop_map(
            |(step, phase, deadline, max_attempts, kind, (base, max), script, seed)| {
                let (base, max) = (Duration::from_millis(base), Duration::from_millis(max));
                let max = max.max(base);
                let strategy = match kind {
                    0 => Backoff::constant(base),
                    1 => Backoff::full_jitter(base, max),
                    2 => Backoff::equal_jitter(base, max),
                    _ => Backoff::decorrelated_jitter(base.max(Duration::from_millis(1)), max),
                };
                Case {
                    step,
                    phase: Duration::from_nanos(phase),
                    deadline,
                    max_attempts,
                    strategy,
                    script,
                    seed,
                }
            },
        )
}

fn policy(case: &Case, clock: &FakeCoarse) -> RetryPolicy<fn(&Failed) -> ErrorClass> {
    let log = Arc::clone(&clock.log);
    let truth = clock.truth.clone();
    RetryPolicy::builder()
        .classifier((|e: &Failed| e.0) as fn(&Failed) -> ErrorClass)
        .strategy(case.strategy)
        .deadline(case.deadline)
        .max_attempts(case.max_attempts)
        .no_unknown_cap()
        .seed(case.seed)
        .clock(clock.clone())
        .sleeper(clock.clone())
        .hook(move |e: &Event<'_>| {
            log.lock().unwrap().push(Entry::Event {
                kind: e.kind,
                attempt: e.attempt,
                class: e.class,
                truth: truth.now(),
            })
        })
        .build()
        .expect("a valid policy")
}

#[derive(Debug)]
struct Failed(ErrorClass);

fn operation(case: &Case, clock: &FakeCoarse) -> impl FnMut() -> Result<u32, Failed> {
    let script = case.script.clone();
    let clock = clock.clone();
    let mut n = 0usize;
    move || {
        clock
            .log
            .lock()
            .unwrap()
            .push(Entry::Start(clock.truth.now()));
        let (latency, failure) = script.get(n).copied().unwrap_or((Duration::ZERO, None));
        n += 1;
        clock.truth.advance(latency);
        match failure {
            Some(class) => Err(Failed(class)),
            None => Ok(n as u32),
        }
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// Every documented promise of a coarse clock, on one call's log.
fn check(case: &Case, log: &[Entry]) -> Result<(), TestCaseError> {
    let r = case.step;
    let deadline = case.deadline;
    let starts: Vec<Duration> = log
        .iter()
        .filter_map(|e| match e {
            Entry::Start(t) => Some(*t),
            _ => None,
        })
        .collect();
    let events: Vec<&Entry> = log
        .iter()
        .filter(|e| matches!(e, Entry::Event { .. }))
        .collect();
    // The first attempt always starts; no retry starts more than a step
    // after the deadline, by the true clock.
    prop_assert!(!starts.is_empty());
    for (i, &t) in starts.iter().enumerate().skip(1) {
        prop_assert!(t <= deadline + r, "attempt {} starts at {:?}", i + 1, t);
    }
    // No sleep ends more than a step after the deadline.
    for e in log {
        if let Entry::Woke(t) = e {
            prop_assert!(*t <= deadline + r, "a sleep ends at {:?}", t);
        }
    }
    // Caps do not depend on the clock.
    prop_assert!(starts.len() as u32 <= case.max_attempts);
    // One event per attempt, the last one terminal, the others retries.
    prop_assert_eq!(events.len(), starts.len());
    for (i, e) in events.iter().enumerate() {
        let Entry::Event {
            kind,
            attempt,
            class,
            truth,
        } = e
        else {
            unreachable!()
        };
        prop_assert_eq!(*attempt as usize, i + 1);
        let last = i + 1 == events.len();
        prop_assert_eq!(*kind == EventKind::Retry, !last, "{:?}", log);
        // Permanent errors are never retried.
        if *class == Some(ErrorClass::Permanent) {
            prop_assert_eq!(*kind, EventKind::PermanentFail);
        }
        // Giving up on the deadline happens at most a step early.
        if *kind == EventKind::DeadlineExceeded {
            prop_assert!(*truth + r > deadline, "gave up at {:?}", truth);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_envelope_holds_to_within_a_step_of_a_coarse_clock(case in any_case()) {
        let clock = FakeCoarse::new(case.step, case.phase);
        let outcome = policy(&case, &clock).call(operation(&case, &clock));
        let blocking = clock.log.lock().unwrap().clone();
        check(&case, &blocking)?;

        let clock = FakeCoarse::new(case.step, case.phase);
        let p = policy(&case, &clock);
        let mut op = operation(&case, &clock);
        let async_outcome = block_on(p.call_async(|| std::future::ready(op())));
        let asynchronous = clock.log.lock().unwrap().clone();
        // The two drivers make the same decisions at the same times.
        prop_assert_eq!(&blocking, &asynchronous);
        prop_assert_eq!(
            outcome.map_err(|e| (e.reason(), e.attempts())),
            async_outcome.map_err(|e| (e.reason(), e.attempts()))
        );
    }
}

#[test]
fn an_exact_clock_is_the_limit_of_a_fine_step() {
    // With a 1 ns step the fake is exact: the strict envelope holds
    // (nothing starts after the deadline at all).
    let case = Case {
        step: Duration::from_nanos(1),
        phase: Duration::ZERO,
        deadline: Duration::from_millis(100),
        max_attempts: 50,
        strategy: Backoff::constant(Duration::from_millis(7)),
        script: vec![(Duration::from_millis(3), Some(ErrorClass::Transient)); 60],
        seed: 1,
    };
    let clock = FakeCoarse::new(case.step, case.phase);
    let err = policy(&case, &clock)
        .call(operation(&case, &clock))
        .unwrap_err();
    assert_eq!(err.reason(), reflexio::StopReason::DeadlineExceeded);
    let log = clock.log.lock().unwrap().clone();
    for e in &log {
        if let Entry::Start(t) = e {
            assert!(*t <= case.deadline, "{t:?}");
        }
    }
}
