//! Every event path of a call, the tags on each event, the outcome the
//! caller gets back, hint handling and determinism, all on a fake clock.

use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reflexio::{
    Backoff, BuildError, Classification, ClassifiedError, ErrorClass, Event, EventKind,
    ManualClock, RetryError, RetryPolicy, StopReason,
};

// ---------------------------------------------------------------------------
// Test fixtures

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// An error that says which attempt raised it and how it wants to be
/// classified. Deliberately neither `Clone` nor `PartialEq`, so a test can
/// only get it back by the policy handing over the very value.
#[derive(Debug)]
struct TestError {
    attempt: u32,
    class: ErrorClass,
    hint: Option<Duration>,
    payload: String,
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt {} failed with {}", self.attempt, self.class)
    }
}

impl Error for TestError {}

fn classify(error: &TestError) -> Classification {
    Classification {
        class: error.class,
        retry_after: error.hint,
    }
}

type Classify = fn(&TestError) -> Classification;

/// One scripted attempt: how long it takes and how it ends.
#[derive(Debug, Clone, Copy)]
struct Step {
    latency: Duration,
    outcome: Option<(ErrorClass, Option<Duration>)>,
}

fn fail(class: ErrorClass) -> Step {
    Step {
        latency: Duration::ZERO,
        outcome: Some((class, None)),
    }
}

fn fail_hint(class: ErrorClass, hint: Duration) -> Step {
    Step {
        latency: Duration::ZERO,
        outcome: Some((class, Some(hint))),
    }
}

fn ok() -> Step {
    Step {
        latency: Duration::ZERO,
        outcome: None,
    }
}

impl Step {
    fn taking(mut self, latency: Duration) -> Step {
        self.latency = latency;
        self
    }
}

/// An operation that plays `steps` in order (and succeeds once they run
/// out), advancing `clock` by each step's latency. It returns the attempt
/// number on success.
fn scripted(
    clock: &ManualClock,
    steps: Vec<Step>,
    runs: Arc<Mutex<u32>>,
) -> impl FnMut() -> Result<u32, TestError> {
    let clock = clock.clone();
    move || {
        let mut count = runs.lock().unwrap();
        *count += 1;
        let attempt = *count;
        let step = steps.get(attempt as usize - 1).copied().unwrap_or(ok());
        clock.advance(step.latency);
        match step.outcome {
            None => Ok(attempt),
            Some((class, hint)) => Err(TestError {
                attempt,
                class,
                hint,
                payload: format!("payload of attempt {attempt}"),
            }),
        }
    }
}

/// An owned copy of an [`Event`], for comparing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    kind: EventKind,
    reason: Option<StopReason>,
    operation: String,
    attempt: u32,
    delay: Option<Duration>,
    class: Option<ErrorClass>,
    error_type: Option<String>,
    elapsed: Duration,
}

impl From<&Event<'_>> for Seen {
    fn from(e: &Event<'_>) -> Self {
        Seen {
            kind: e.kind,
            reason: e.reason,
            operation: e.operation.to_owned(),
            attempt: e.attempt,
            delay: e.delay,
            class: e.class,
            error_type: e.error_type.map(str::to_owned),
            elapsed: e.elapsed,
        }
    }
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Recorder {
    fn hook(&self) -> impl Fn(&Event<'_>) + Send + Sync + 'static {
        let seen = Arc::clone(&self.0);
        move |e: &Event<'_>| seen.lock().unwrap().push(Seen::from(e))
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn kinds(seen: &[Seen]) -> Vec<EventKind> {
    seen.iter().map(|s| s.kind).collect()
}

fn delays(seen: &[Seen]) -> Vec<Duration> {
    seen.iter().filter_map(|s| s.delay).collect()
}

const TEST_ERROR: &str = "events::TestError";

/// A policy on `clock` with a constant 100 ms strategy, the test
/// classifier and a recording hook; `tweak` adjusts the builder.
fn policy_with(
    clock: &ManualClock,
    recorder: &Recorder,
    tweak: impl FnOnce(reflexio::RetryPolicyBuilder<Classify>) -> reflexio::RetryPolicyBuilder<Classify>,
) -> RetryPolicy<Classify> {
    let builder = RetryPolicy::builder()
        .classifier(classify as Classify)
        .strategy(Backoff::constant(ms(100)))
        .clock(clock.clone())
        .sleeper(clock.clone())
        .hook(recorder.hook());
    tweak(builder).build().expect("a valid test policy")
}

fn run(
    policy: &RetryPolicy<Classify>,
    clock: &ManualClock,
    steps: Vec<Step>,
) -> (Result<u32, RetryError<TestError>>, u32) {
    let runs = Arc::new(Mutex::new(0));
    let result = policy.call(scripted(clock, steps, Arc::clone(&runs)));
    let ran = *runs.lock().unwrap();
    (result, ran)
}

// ---------------------------------------------------------------------------
// Event paths

#[test]
fn success_on_first_attempt_emits_one_success_event() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b);
    let (result, ran) = run(&policy, &clock, vec![ok().taking(ms(30))]);

    assert_eq!(result.unwrap(), 1);
    assert_eq!(ran, 1);
    assert_eq!(clock.sleeps(), 0);
    assert_eq!(
        rec.take(),
        [Seen {
            kind: EventKind::Success,
            reason: None,
            operation: String::new(),
            attempt: 1,
            delay: None,
            class: None,
            error_type: None,
            elapsed: ms(30),
        }]
    );
}

#[test]
fn retry_then_success_tags_every_event() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b);
    let steps = vec![
        fail(ErrorClass::Transient).taking(ms(10)),
        fail(ErrorClass::ServerError).taking(ms(20)),
        ok().taking(ms(5)),
    ];
    let (result, ran) = run(&policy, &clock, steps);

    assert_eq!(result.unwrap(), 3);
    assert_eq!(ran, 3);
    assert_eq!(clock.sleeps(), 2);
    assert_eq!(clock.slept(), ms(200));
    let seen = rec.take();
    let error_type = Some(std::any::type_name::<TestError>().to_owned());
    assert!(error_type.as_deref().unwrap().ends_with(TEST_ERROR));
    assert_eq!(
        seen,
        [
            Seen {
                kind: EventKind::Retry,
                reason: None,
                operation: String::new(),
                attempt: 1,
                delay: Some(ms(100)),
                class: Some(ErrorClass::Transient),
                error_type: error_type.clone(),
                elapsed: ms(10),
            },
            Seen {
                kind: EventKind::Retry,
                reason: None,
                operation: String::new(),
                attempt: 2,
                delay: Some(ms(100)),
                class: Some(ErrorClass::ServerError),
                error_type,
                elapsed: ms(130),
            },
            Seen {
                kind: EventKind::Success,
                reason: None,
                operation: String::new(),
                attempt: 3,
                delay: None,
                class: None,
                error_type: None,
                elapsed: ms(235),
            },
        ]
    );
}

#[test]
fn never_retried_classes_fail_at_once_with_permanent_fail() {
    for class in [
        ErrorClass::Auth,
        ErrorClass::Permission,
        ErrorClass::Permanent,
    ] {
        let clock = ManualClock::new();
        let rec = Recorder::default();
        // Generous caps and a per-class strategy must not make them retryable.
        let policy = policy_with(&clock, &rec, |b| {
            b.max_attempts(10)
                .no_unknown_cap()
                .class_max_attempts(class, 5)
                .class_strategy(class, Backoff::constant(ms(1)))
        });
        let (result, ran) = run(&policy, &clock, vec![fail(class)]);

        let err = result.unwrap_err();
        assert_eq!(err.reason(), StopReason::Permanent, "{class}");
        assert_eq!(err.attempts(), 1);
        assert_eq!(err.error().class, class);
        assert_eq!(ran, 1);
        assert_eq!(clock.sleeps(), 0);
        let seen = rec.take();
        assert_eq!(kinds(&seen), [EventKind::PermanentFail], "{class}");
        assert_eq!(seen[0].class, Some(class));
        assert_eq!(seen[0].attempt, 1);
        assert_eq!(seen[0].delay, None);
        assert!(seen[0].error_type.as_deref().unwrap().ends_with(TEST_ERROR));
    }
}

#[test]
fn permanent_fail_after_retries_stops_without_sleeping() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b);
    let steps = vec![
        fail(ErrorClass::Transient),
        fail(ErrorClass::Concurrency),
        fail(ErrorClass::Auth),
    ];
    let (result, ran) = run(&policy, &clock, steps);

    let err = result.unwrap_err();
    assert_eq!(err.reason(), StopReason::Permanent);
    assert_eq!(err.attempts(), 3);
    assert_eq!(ran, 3);
    assert_eq!(clock.sleeps(), 2);
    let seen = rec.take();
    assert_eq!(
        kinds(&seen),
        [EventKind::Retry, EventKind::Retry, EventKind::PermanentFail]
    );
    assert_eq!(seen[2].attempt, 3);
    assert_eq!(seen[2].class, Some(ErrorClass::Auth));
}

#[test]
fn deadline_exceeded_when_an_attempt_ends_past_the_deadline() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b.deadline(ms(1000)).max_attempts(10));
    // Each attempt takes 400 ms; sleeps are 100 ms.
    let steps = vec![fail(ErrorClass::Transient).taking(ms(400)); 10];
    let (result, ran) = run(&policy, &clock, steps);

    let err = result.unwrap_err();
    assert_eq!(err.reason(), StopReason::DeadlineExceeded);
    // 0..400 fail, sleep to 500, 500..900 fail, sleep 100 (exactly what is
    // left) to 1000, 1000..1400 fail: past the deadline.
    assert_eq!(err.attempts(), 3);
    assert_eq!(ran, 3);
    let seen = rec.take();
    assert_eq!(
        kinds(&seen),
        [
            EventKind::Retry,
            EventKind::Retry,
            EventKind::DeadlineExceeded
        ]
    );
    assert_eq!(delays(&seen), [ms(100), ms(100)]);
    assert_eq!(seen[2].elapsed, ms(1400));
    assert_eq!(seen[2].attempt, 3);
    assert_eq!(seen[2].delay, None);
    assert_eq!(seen[2].class, Some(ErrorClass::Transient));
    assert_eq!(clock.sleeps(), 2);
}

#[test]
fn delay_is_capped_to_the_time_left_before_the_deadline() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| {
        b.deadline(ms(1000))
            .max_attempts(10)
            .strategy(Backoff::constant(ms(400)))
    });
    let (result, _) = run(&policy, &clock, vec![fail(ErrorClass::Transient); 10]);

    let err = result.unwrap_err();
    assert_eq!(err.reason(), StopReason::DeadlineExceeded);
    assert_eq!(err.attempts(), 4);
    let seen = rec.take();
    // 400 + 400 + 200: the last sleep ends exactly at the deadline, and the
    // attempt that starts there is the last.
    assert_eq!(delays(&seen), [ms(400), ms(400), ms(200)]);
    assert_eq!(clock.now(), ms(1000));
    assert_eq!(seen.last().unwrap().kind, EventKind::DeadlineExceeded);
}

#[test]
fn hint_reaching_past_the_deadline_stops_at_once_without_sleeping() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b.deadline(ms(10_000)));
    let steps = vec![
        fail(ErrorClass::Transient).taking(ms(1000)),
        fail_hint(ErrorClass::RateLimit, ms(20_000)),
    ];
    let (result, ran) = run(&policy, &clock, steps);

    let err = result.unwrap_err();
    assert_eq!(err.reason(), StopReason::DeadlineExceeded);
    assert_eq!(err.attempts(), 2);
    assert_eq!(ran, 2);
    assert_eq!(clock.sleeps(), 1, "no sleep before giving up");
    assert_eq!(clock.now(), ms(1100));
    let seen = rec.take();
    assert_eq!(
        kinds(&seen),
        [EventKind::Retry, EventKind::DeadlineExceeded]
    );
    assert_eq!(seen[1].class, Some(ErrorClass::RateLimit));
    assert_eq!(seen[1].delay, None);
    assert_eq!(seen[1].elapsed, ms(1100));
}

#[test]
fn hint_that_exactly_fits_before_the_deadline_is_honoured() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b.deadline(ms(5000)));
    let steps = vec![fail_hint(ErrorClass::RateLimit, ms(4000)).taking(ms(1000))];
    let (result, _) = run(&policy, &clock, steps);

    assert_eq!(result.unwrap(), 2);
    assert_eq!(delays(&rec.take()), [ms(4000)]);
    assert_eq!(clock.now(), ms(5000));
}

#[test]
fn global_attempt_cap_ends_with_max_attempts_exceeded() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b.max_attempts(3));
    let (result, ran) = run(&policy, &clock, vec![fail(ErrorClass::Transient); 10]);

    let err = result.unwrap_err();
    assert_eq!(err.reason(), StopReason::MaxAttemptsExceeded);
    assert_eq!(err.attempts(), 3);
    assert_eq!(ran, 3);
    assert_eq!(clock.sleeps(), 2);
    let seen = rec.take();
    assert_eq!(
        kinds(&seen),
        [
            EventKind::Retry,
            EventKind::Retry,
            EventKind::MaxAttemptsExceeded
        ]
    );
    assert_eq!(
        seen.iter().map(|s| s.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        seen.iter().map(|s| s.reason).collect::<Vec<_>>(),
        [None, None, Some(StopReason::MaxAttemptsExceeded)]
    );
}

#[test]
fn max_attempts_of_one_never_retries() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b.max_attempts(1));
    let (result, _) = run(&policy, &clock, vec![fail(ErrorClass::Transient)]);

    assert_eq!(
        result.unwrap_err().reason(),
        StopReason::MaxAttemptsExceeded
    );
    assert_eq!(kinds(&rec.take()), [EventKind::MaxAttemptsExceeded]);
    assert_eq!(clock.sleeps(), 0);
}

#[test]
fn class_cap_ends_with_max_attempts_exceeded_event_and_class_reason() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| {
        b.max_attempts(10)
            .class_max_attempts(ErrorClass::ServerError, 2)
    });
    // Only server errors count against the server-error cap.
    let steps = vec![
        fail(ErrorClass::ServerError),
        fail(ErrorClass::Transient),
        fail(ErrorClass::Transient),
        fail(ErrorClass::ServerError),
        fail(ErrorClass::Transient),
    ];
    let (result, ran) = run(&policy, &clock, steps);

    let err = result.unwrap_err();
    assert_eq!(err.reason(), StopReason::ClassAttemptsExceeded);
    assert_eq!(err.reason().name(), "class_attempts_exceeded");
    assert_eq!(err.attempts(), 4);
    assert_eq!(ran, 4);
    assert_eq!(clock.sleeps(), 3);
    let seen = rec.take();
    let last = seen.last().unwrap();
    assert_eq!(last.kind, EventKind::MaxAttemptsExceeded);
    assert_eq!(last.kind.name(), "max_attempts_exceeded");
    // The hook tells the class cap from the global cap by the reason.
    assert_eq!(last.reason, Some(StopReason::ClassAttemptsExceeded));
    assert_eq!(last.class, Some(ErrorClass::ServerError));
    assert_eq!(last.attempt, 4);
}

#[test]
fn unknown_cap_ends_with_max_unknown_attempts_exceeded() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    // Default unknown cap: 2.
    let policy = policy_with(&clock, &rec, |b| b);
    assert_eq!(policy.envelope().max_unknown_attempts, Some(2));
    let steps = vec![
        fail(ErrorClass::Unknown),
        fail(ErrorClass::Transient),
        fail(ErrorClass::Unknown),
    ];
    let (result, ran) = run(&policy, &clock, steps);

    let err = result.unwrap_err();
    assert_eq!(err.reason(), StopReason::MaxUnknownAttemptsExceeded);
    assert_eq!(err.attempts(), 3);
    assert_eq!(ran, 3);
    assert_eq!(clock.sleeps(), 2);
    let seen = rec.take();
    assert_eq!(
        kinds(&seen),
        [
            EventKind::Retry,
            EventKind::Retry,
            EventKind::MaxUnknownAttemptsExceeded
        ]
    );
    assert_eq!(seen[2].class, Some(ErrorClass::Unknown));
    assert_eq!(seen[2].kind.name(), "max_unknown_attempts_exceeded");
}

#[test]
fn unknown_cap_of_one_gives_up_on_the_first_unknown_error() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b.max_unknown_attempts(1));
    let (result, _) = run(&policy, &clock, vec![fail(ErrorClass::Unknown)]);

    assert_eq!(
        result.unwrap_err().reason(),
        StopReason::MaxUnknownAttemptsExceeded
    );
    assert_eq!(clock.sleeps(), 0);
}

#[test]
fn unknown_cap_turned_off_leaves_only_the_global_cap() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b.max_attempts(5).no_unknown_cap());
    assert_eq!(policy.envelope().max_unknown_attempts, None);
    let (result, ran) = run(&policy, &clock, vec![fail(ErrorClass::Unknown); 10]);

    let err = result.unwrap_err();
    assert_eq!(err.reason(), StopReason::MaxAttemptsExceeded);
    assert_eq!(err.attempts(), 5);
    assert_eq!(ran, 5);
    let seen = rec.take();
    assert_eq!(seen.len(), 5);
    assert!(seen[..4].iter().all(|s| s.kind == EventKind::Retry));
    assert_eq!(seen[4].kind, EventKind::MaxAttemptsExceeded);
}

#[test]
fn stop_reasons_map_to_their_events() {
    let expected = [
        (StopReason::Permanent, "permanent_fail"),
        (StopReason::DeadlineExceeded, "deadline_exceeded"),
        (StopReason::MaxAttemptsExceeded, "max_attempts_exceeded"),
        (StopReason::ClassAttemptsExceeded, "max_attempts_exceeded"),
        (
            StopReason::MaxUnknownAttemptsExceeded,
            "max_unknown_attempts_exceeded",
        ),
    ];
    for (reason, event) in expected {
        assert_eq!(reason.event_kind().name(), event);
        assert!(reason.event_kind().is_terminal());
    }
    assert!(!EventKind::Retry.is_terminal());
    assert_eq!(EventKind::Retry.name(), "retry");
    assert_eq!(EventKind::Success.name(), "success");
    assert!(EventKind::Success.is_terminal());
}

// ---------------------------------------------------------------------------
// Operation names, hooks and contexts

#[test]
fn operation_name_tags_every_event_of_named_and_bound_calls() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b);
    let steps = || vec![fail(ErrorClass::Transient), fail(ErrorClass::Transient)];

    let runs = Arc::new(Mutex::new(0));
    policy
        .call_named("fetch_user", scripted(&clock, steps(), runs))
        .unwrap();
    let named = rec.take();
    assert_eq!(named.len(), 3);
    assert!(named.iter().all(|s| s.operation == "fetch_user"));

    let bound = policy.bind("load_profile");
    assert_eq!(bound.operation(), "load_profile");
    let runs = Arc::new(Mutex::new(0));
    bound.call(scripted(&clock, steps(), runs)).unwrap();
    let seen = rec.take();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.operation == "load_profile"));

    let runs = Arc::new(Mutex::new(0));
    policy.call(scripted(&clock, steps(), runs)).unwrap();
    assert!(rec.take().iter().all(|s| s.operation.is_empty()));
}

#[test]
fn attempts_are_numbered_from_one_and_each_call_ends_with_one_terminal_event() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b.max_attempts(4));
    let scripts = vec![
        vec![ok()],
        vec![fail(ErrorClass::Transient), ok()],
        vec![fail(ErrorClass::Permanent)],
        vec![fail(ErrorClass::Transient); 9],
        vec![fail(ErrorClass::Unknown); 9],
        vec![fail(ErrorClass::RateLimit), fail(ErrorClass::Concurrency)],
    ];
    for script in scripts {
        let (result, ran) = run(&policy, &clock, script);
        let seen = rec.take();
        let terminal: Vec<_> = seen.iter().filter(|s| s.kind.is_terminal()).collect();
        assert_eq!(terminal.len(), 1, "{seen:?}");
        assert!(seen.last().unwrap().kind.is_terminal());
        let attempts: Vec<u32> = seen.iter().map(|s| s.attempt).collect();
        assert_eq!(attempts, (1..=ran).collect::<Vec<_>>());
        // A retry event, and only a retry event, carries a delay.
        assert!(seen
            .iter()
            .all(|s| (s.kind == EventKind::Retry) == s.delay.is_some()));
        match result {
            Ok(n) => assert_eq!(n, ran),
            Err(e) => {
                assert_eq!(e.attempts(), ran);
                assert_eq!(e.reason().event_kind(), terminal[0].kind);
            }
        }
    }
}

#[test]
fn panicking_hook_changes_nothing_and_later_hooks_still_run() {
    let steps = vec![
        fail(ErrorClass::Transient),
        fail(ErrorClass::Transient),
        fail(ErrorClass::ServerError),
    ];

    // The reference: no panicking hook.
    let clock = ManualClock::new();
    let quiet = Recorder::default();
    let policy = policy_with(&clock, &quiet, |b| b.max_attempts(3).seed(5));
    let (reference, _) = run(&policy, &clock, steps.clone());
    let reference = reference.unwrap_err();
    let reference_events = quiet.take();

    let clock = ManualClock::new();
    let first = Recorder::default();
    let after = Recorder::default();
    let bound_after = Recorder::default();
    let policy = policy_with(&clock, &first, |b| {
        b.max_attempts(3)
            .seed(5)
            .hook(|e: &Event<'_>| panic!("hook failed on {}", e.kind))
            .hook(after.hook())
    });
    let bound = policy
        .bind("")
        .hook(|_: &Event<'_>| panic!("bound hook failed"))
        .hook(bound_after.hook());
    let runs = Arc::new(Mutex::new(0));
    let err = bound
        .call(scripted(&clock, steps, Arc::clone(&runs)))
        .unwrap_err();

    assert_eq!(err.reason(), reference.reason());
    assert_eq!(err.attempts(), reference.attempts());
    assert_eq!(err.error().attempt, reference.error().attempt);
    assert_eq!(*runs.lock().unwrap(), 3);
    assert_eq!(first.take(), reference_events);
    assert_eq!(after.take(), reference_events);
    assert_eq!(bound_after.take(), reference_events);
}

#[test]
fn panicking_hook_does_not_turn_a_success_into_a_failure() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| {
        b.hook(|_: &Event<'_>| panic!("observer is broken"))
    });
    let (result, _) = run(&policy, &clock, vec![fail(ErrorClass::Transient), ok()]);
    assert_eq!(result.unwrap(), 2);
    assert_eq!(kinds(&rec.take()), [EventKind::Retry, EventKind::Success]);
}

#[test]
fn bound_hooks_see_only_their_own_calls_after_the_policy_hooks() {
    let clock = ManualClock::new();
    let order = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = |tag: &'static str| {
        let order = Arc::clone(&order);
        move |e: &Event<'_>| {
            order
                .lock()
                .unwrap()
                .push(format!("{tag}:{}:{}", e.operation, e.kind))
        }
    };
    let policy = RetryPolicy::builder()
        .classifier(classify as Classify)
        .strategy(Backoff::constant(ms(1)))
        .clock(clock.clone())
        .hook(log("policy"))
        .build()
        .unwrap();
    let a = policy.bind("a").hook(log("a"));
    let b = policy.bind("b").hook(log("b"));

    let runs = Arc::new(Mutex::new(0));
    a.call(scripted(&clock, vec![fail(ErrorClass::Transient)], runs))
        .unwrap();
    let runs = Arc::new(Mutex::new(0));
    b.call(scripted(&clock, vec![], runs)).unwrap();
    let runs = Arc::new(Mutex::new(0));
    policy
        .call_named("plain", scripted(&clock, vec![], runs))
        .unwrap();
    // A clone of a bound context keeps its hooks.
    let runs = Arc::new(Mutex::new(0));
    a.clone().call(scripted(&clock, vec![], runs)).unwrap();

    assert_eq!(
        *order.lock().unwrap(),
        [
            "policy:a:retry",
            "a:a:retry",
            "policy:a:success",
            "a:a:success",
            "policy:b:success",
            "b:b:success",
            "policy:plain:success",
            "policy:a:success",
            "a:a:success",
        ]
    );
}

// ---------------------------------------------------------------------------
// The caller's outcome

#[test]
fn retry_error_returns_the_last_error_value_unchanged() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b.max_attempts(3));
    let mut payload_ptr = std::ptr::null::<u8>();
    let mut attempt = 0;
    let result: Result<(), _> = policy.call(|| {
        attempt += 1;
        let error = TestError {
            attempt,
            class: ErrorClass::Transient,
            hint: None,
            payload: format!("payload of attempt {attempt}"),
        };
        payload_ptr = error.payload.as_ptr();
        Err(error)
    });

    let err = result.unwrap_err();
    assert_eq!(err.reason(), StopReason::MaxAttemptsExceeded);
    assert_eq!(err.attempts(), 3);
    assert_eq!(err.error().attempt, 3);
    assert_eq!(
        err.to_string(),
        "gave up after 3 attempts (max_attempts_exceeded): attempt 3 failed with transient"
    );
    let source = err.source().expect("the caller's error is the source");
    assert_eq!(source.to_string(), "attempt 3 failed with transient");
    assert!(source.downcast_ref::<TestError>().is_some());

    let inner = err.into_inner();
    assert_eq!(inner.attempt, 3);
    assert_eq!(inner.payload, "payload of attempt 3");
    // The very value the operation returned, not a copy of it.
    assert_eq!(inner.payload.as_ptr(), payload_ptr);
}

#[test]
fn retry_error_works_with_the_question_mark_operator() {
    fn load(policy: &RetryPolicy<Classify>, clock: &ManualClock) -> Result<u32, Box<dyn Error>> {
        let runs = Arc::new(Mutex::new(0));
        Ok(policy.call(scripted(clock, vec![fail(ErrorClass::Permanent)], runs))?)
    }
    fn load_inner(policy: &RetryPolicy<Classify>, clock: &ManualClock) -> Result<u32, TestError> {
        let runs = Arc::new(Mutex::new(0));
        policy
            .call(scripted(clock, vec![fail(ErrorClass::Auth)], runs))
            .map_err(RetryError::into_inner)
    }

    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b);
    let err = load(&policy, &clock).unwrap_err();
    assert_eq!(
        err.to_string(),
        "gave up after 1 attempt (permanent_fail): attempt 1 failed with permanent"
    );
    assert_eq!(
        load_inner(&policy, &clock).unwrap_err().class,
        ErrorClass::Auth
    );
}

// ---------------------------------------------------------------------------
// Server delay hints

fn first_delay(
    tweak_deadline: Option<Duration>,
    max_retry_after: Duration,
    hint: Duration,
) -> Option<Duration> {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| {
        let b = b.max_retry_after(max_retry_after);
        match tweak_deadline {
            Some(d) => b.deadline(d),
            None => b.no_deadline(),
        }
    });
    let _ = run(
        &policy,
        &clock,
        vec![fail_hint(ErrorClass::RateLimit, hint)],
    );
    rec.take().first().and_then(|s| s.delay)
}

#[test]
fn hint_is_a_lower_bound_on_the_strategy_delay() {
    // Strategy: constant 100 ms.
    assert_eq!(first_delay(None, ms(60_000), ms(300)), Some(ms(300)));
    assert_eq!(first_delay(None, ms(60_000), ms(50)), Some(ms(100)));
    assert_eq!(first_delay(None, ms(60_000), ms(100)), Some(ms(100)));
    assert_eq!(first_delay(None, ms(60_000), Duration::ZERO), Some(ms(100)));
}

#[test]
fn hint_is_cut_to_the_max_retry_after_ceiling() {
    assert_eq!(first_delay(None, ms(2000), ms(10_000)), Some(ms(2000)));
    // The ceiling never lowers the strategy's own delay.
    assert_eq!(first_delay(None, ms(50), ms(10_000)), Some(ms(100)));
    // The ceiling applies before the deadline check: a 30 s hint cut to 2 s
    // fits in a 5 s deadline, so the call retries.
    assert_eq!(
        first_delay(Some(ms(5000)), ms(2000), ms(30_000)),
        Some(ms(2000))
    );
    // Uncut, it does not fit: the call stops without a retry.
    assert_eq!(first_delay(Some(ms(5000)), ms(60_000), ms(30_000)), None);
}

#[test]
fn hint_with_default_ceiling_of_sixty_seconds() {
    assert_eq!(
        RetryPolicy::default().envelope().max_retry_after,
        Duration::from_secs(60)
    );
    assert_eq!(
        first_delay(None, Duration::from_secs(60), Duration::from_secs(600)),
        Some(Duration::from_secs(60))
    );
}

#[test]
fn strategy_delay_above_the_hint_is_still_capped_to_the_deadline() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| {
        b.deadline(ms(1000)).strategy(Backoff::constant(ms(5000)))
    });
    let steps = vec![fail_hint(ErrorClass::RateLimit, ms(200)).taking(ms(300))];
    let (result, _) = run(&policy, &clock, steps);
    assert_eq!(result.unwrap(), 2);
    assert_eq!(delays(&rec.take()), [ms(700)]);
}

#[test]
fn classified_error_hints_reach_the_engine_through_the_default_classifier() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = RetryPolicy::builder()
        .strategy(Backoff::constant(ms(10)))
        .clock(clock.clone())
        .hook(rec.hook())
        .build()
        .unwrap();
    let mut calls = 0;
    let result = policy.call(|| {
        calls += 1;
        if calls == 1 {
            Err(ClassifiedError::rate_limited(Some(ms(1500)), "slow down"))
        } else {
            Ok(calls)
        }
    });
    assert_eq!(result.unwrap(), 2);
    let seen = rec.take();
    assert_eq!(seen[0].delay, Some(ms(1500)));
    assert_eq!(seen[0].class, Some(ErrorClass::RateLimit));
    assert_eq!(
        seen[0].error_type.as_deref(),
        Some(std::any::type_name::<ClassifiedError>())
    );
}

// ---------------------------------------------------------------------------
// Determinism

fn jittery(clock: &ManualClock, rec: &Recorder, seed: Option<u64>) -> RetryPolicy<Classify> {
    policy_with(clock, rec, |b| {
        let b = b
            .no_deadline()
            .max_attempts(8)
            .no_unknown_cap()
            .strategy(Backoff::equal_jitter(ms(100), ms(10_000)))
            .class_strategy(
                ErrorClass::RateLimit,
                Backoff::decorrelated_jitter(ms(50), ms(3000)),
            );
        match seed {
            Some(seed) => b.seed(seed),
            None => b,
        }
    })
}

fn jittery_script() -> Vec<Step> {
    vec![
        fail(ErrorClass::Transient).taking(ms(7)),
        fail(ErrorClass::RateLimit),
        fail(ErrorClass::Unknown).taking(ms(3)),
        fail(ErrorClass::RateLimit),
        fail(ErrorClass::ServerError),
        ok(),
    ]
}

fn seeded_delays(seed: Option<u64>) -> Vec<Vec<Duration>> {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = jittery(&clock, &rec, seed);
    // Several calls in a row: each seeded call gets its own stream.
    (0..4)
        .map(|_| {
            let (result, _) = run(&policy, &clock, jittery_script());
            assert_eq!(result.unwrap(), 6);
            delays(&rec.take())
        })
        .collect()
}

#[test]
fn identically_seeded_policies_draw_identical_delays() {
    let a = seeded_delays(Some(42));
    let b = seeded_delays(Some(42));
    assert_eq!(a, b);
    assert_ne!(a, seeded_delays(Some(43)), "another seed, other delays");
    // Successive calls of one policy do not repeat each other.
    assert_ne!(a[0], a[1]);
    // Equal jitter for the first transient failure: [100 ms, 200 ms].
    for call in &a {
        assert!((ms(100)..=ms(200)).contains(&call[0]), "{call:?}");
        assert!((ms(50)..=ms(150)).contains(&call[1]), "{call:?}");
    }
}

#[test]
fn unseeded_policies_still_stay_within_bounds() {
    for call in seeded_delays(None) {
        assert_eq!(call.len(), 5);
        assert!((ms(100)..=ms(200)).contains(&call[0]));
        assert!((ms(50)..=ms(150)).contains(&call[1]));
        assert!((ms(400)..=ms(800)).contains(&call[2]));
    }
}

/// Polls a future to completion on this thread. Every future in these
/// tests is ready as soon as it is polled (the fake clock's sleeps return
/// at once), so no runtime is needed.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..1000 {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("future did not complete on a fake clock");
}

fn async_run(
    policy: &RetryPolicy<Classify>,
    clock: &ManualClock,
    steps: Vec<Step>,
) -> Result<u32, RetryError<TestError>> {
    let mut op = scripted(clock, steps, Arc::new(Mutex::new(0)));
    block_on(policy.call_async(|| std::future::ready(op())))
}

#[test]
fn async_and_blocking_calls_emit_identical_events_on_a_fake_clock() {
    let scripts = vec![
        jittery_script(),
        vec![fail(ErrorClass::Transient).taking(ms(20)); 20],
        vec![
            fail_hint(ErrorClass::RateLimit, ms(900)),
            fail(ErrorClass::Concurrency).taking(ms(1)),
            fail(ErrorClass::Permission),
        ],
        vec![fail(ErrorClass::Unknown), fail(ErrorClass::Unknown), ok()],
    ];

    let sync_clock = ManualClock::new();
    let sync_rec = Recorder::default();
    let sync_policy = jittery(&sync_clock, &sync_rec, Some(9));
    let async_clock = ManualClock::new();
    let async_rec = Recorder::default();
    let async_policy = jittery(&async_clock, &async_rec, Some(9));

    for script in scripts {
        let (s, _) = run(&sync_policy, &sync_clock, script.clone());
        let a = async_run(&async_policy, &async_clock, script);
        let sync_events = sync_rec.take();
        assert!(!sync_events.is_empty());
        assert_eq!(sync_events, async_rec.take());
        match (s, a) {
            (Ok(x), Ok(y)) => assert_eq!(x, y),
            (Err(x), Err(y)) => {
                assert_eq!(x.reason(), y.reason());
                assert_eq!(x.attempts(), y.attempts());
                assert_eq!(x.error().attempt, y.error().attempt);
            }
            (s, a) => panic!("outcomes differ: {s:?} vs {a:?}"),
        }
        assert_eq!(sync_clock.now(), async_clock.now());
        assert_eq!(sync_clock.sleeps(), async_clock.sleeps());
    }
}

#[tokio::test(start_paused = true)]
async fn async_call_on_paused_tokio_with_a_fake_sleeper() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b.max_attempts(4));
    let bound = policy.bind("async_op");
    let mut op = scripted(
        &clock,
        vec![fail(ErrorClass::Transient), fail(ErrorClass::ServerError)],
        Arc::new(Mutex::new(0)),
    );
    let value = bound
        .call_async(|| {
            let result = op();
            async move {
                tokio::task::yield_now().await;
                result
            }
        })
        .await
        .unwrap();
    assert_eq!(value, 3);
    let seen = rec.take();
    assert_eq!(
        kinds(&seen),
        [EventKind::Retry, EventKind::Retry, EventKind::Success]
    );
    assert!(seen.iter().all(|s| s.operation == "async_op"));
    assert_eq!(clock.slept(), ms(200));
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn tokio_sleeper_matches_the_blocking_driver_on_paused_time() {
    use reflexio::TokioSleeper;

    let scripts = vec![
        jittery_script(),
        vec![fail(ErrorClass::Transient); 20],
        vec![
            fail_hint(ErrorClass::RateLimit, ms(900)),
            fail(ErrorClass::Auth),
        ],
    ];
    let sync_clock = ManualClock::new();
    let sync_rec = Recorder::default();
    let sync_policy = jittery(&sync_clock, &sync_rec, Some(77));

    let async_rec = Recorder::default();
    let async_policy = RetryPolicy::builder()
        .classifier(classify as Classify)
        .no_deadline()
        .max_attempts(8)
        .no_unknown_cap()
        .strategy(Backoff::equal_jitter(ms(100), ms(10_000)))
        .class_strategy(
            ErrorClass::RateLimit,
            Backoff::decorrelated_jitter(ms(50), ms(3000)),
        )
        .seed(77)
        .sleeper(TokioSleeper::new())
        .hook(async_rec.hook())
        .build()
        .unwrap();

    for script in scripts {
        let (s, _) = run(&sync_policy, &sync_clock, script.clone());
        let started = tokio::time::Instant::now();
        let mut attempt = 0usize;
        let a = async_policy
            .call_async(|| {
                attempt += 1;
                let step = script.get(attempt - 1).copied().unwrap_or(ok());
                let n = attempt as u32;
                async move {
                    tokio::time::sleep(step.latency).await;
                    match step.outcome {
                        None => Ok(n),
                        Some((class, hint)) => Err(TestError {
                            attempt: n,
                            class,
                            hint,
                            payload: String::new(),
                        }),
                    }
                }
            })
            .await;
        let virtual_time = started.elapsed();
        let sync_events = sync_rec.take();
        let async_events = async_rec.take();
        // Everything but the elapsed time (tokio's timer has millisecond
        // granularity) is identical.
        let strip = |events: Vec<Seen>| -> Vec<Seen> {
            events
                .into_iter()
                .map(|mut s| {
                    s.elapsed = Duration::ZERO;
                    s
                })
                .collect()
        };
        let total_delay: Duration = delays(&sync_events).into_iter().sum();
        assert_eq!(strip(sync_events), strip(async_events));
        assert!(
            virtual_time >= total_delay,
            "{virtual_time:?} < {total_delay:?}"
        );
        assert_eq!(s.is_ok(), a.is_ok());
        if let (Err(x), Err(y)) = (s, a) {
            assert_eq!(x.reason(), y.reason());
            assert_eq!(x.attempts(), y.attempts());
        }
    }
}

// ---------------------------------------------------------------------------
// Top-level conveniences and building

#[test]
fn top_level_retry_uses_the_defaults() {
    let value = reflexio::retry(|| Ok::<_, std::io::Error>(42));
    assert_eq!(value.unwrap(), 42);
    // A permanent error returns at once, without sleeping on the real clock.
    let err = reflexio::retry(|| {
        Err::<(), _>(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such user",
        ))
    })
    .unwrap_err();
    assert_eq!(err.reason(), StopReason::Permanent);
    assert_eq!(err.attempts(), 1);
    assert_eq!(err.into_inner().kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn top_level_retry_async_uses_the_defaults() {
    let value = block_on(reflexio::retry_async(|| async {
        Ok::<_, std::io::Error>(7)
    }));
    assert_eq!(value.unwrap(), 7);
}

#[test]
fn default_policy_mirrors_the_reference_defaults() {
    let policy = RetryPolicy::default();
    let env = policy.envelope();
    assert_eq!(env.deadline, Some(Duration::from_secs(60)));
    assert_eq!(env.max_attempts, 6);
    assert_eq!(env.max_unknown_attempts, Some(2));
    assert_eq!(env.class_max_attempts, [None; 8]);
    // Decorrelated jitter from 250 ms up to 5 s for every retryable class.
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for class in ErrorClass::ALL.into_iter().filter(|c| c.is_retryable()) {
        let strategy = policy.engine().strategy(class);
        for attempt in 1..50 {
            let ctx = reflexio::DelayContext::new(attempt, class, Some(Duration::from_secs(100)));
            let d = strategy.delay(&ctx, &mut rng);
            assert!((ms(250)..=ms(5000)).contains(&d), "{d:?}");
        }
    }
}

#[test]
fn policies_are_send_sync_and_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<RetryPolicy>();
    assert_send_sync::<RetryPolicy<Classify>>();
    assert_send_sync::<reflexio::BoundPolicy>();

    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = policy_with(&clock, &rec, |b| b.max_attempts(2));
    std::thread::scope(|s| {
        for _ in 0..4 {
            let policy = policy.clone();
            let clock = clock.clone();
            s.spawn(move || {
                let (result, _) = run(&policy, &clock, vec![fail(ErrorClass::Transient)]);
                assert_eq!(result.unwrap(), 2);
            });
        }
    });
    let seen = rec.take();
    assert_eq!(seen.len(), 8);
    assert_eq!(seen.iter().filter(|s| s.kind.is_terminal()).count(), 4);
}

#[test]
fn builder_refuses_invalid_policies() {
    // The builder starts from the default strategy: nothing is missing.
    assert!(RetryPolicy::builder().build().is_ok());
    assert!(RetryPolicy::builder().max_attempts(3).build().is_ok());
    let mut builder = RetryPolicy::builder();
    for class in ErrorClass::ALL {
        if class != ErrorClass::Concurrency {
            builder = builder.class_strategy(class, Backoff::constant(ms(1)));
        }
    }
    assert!(builder.build().is_ok());
    assert!(RetryPolicy::builder().max_attempts(1).build().is_ok());

    let strategy = || Backoff::constant(ms(1));
    assert_eq!(
        RetryPolicy::builder()
            .strategy(strategy())
            .max_attempts(0)
            .build()
            .unwrap_err(),
        BuildError::ZeroMaxAttempts
    );
    assert_eq!(
        RetryPolicy::builder()
            .strategy(strategy())
            .deadline(Duration::ZERO)
            .build()
            .unwrap_err(),
        BuildError::ZeroDeadline
    );
    assert_eq!(
        RetryPolicy::builder()
            .strategy(strategy())
            .class_max_attempts(ErrorClass::RateLimit, 0)
            .build()
            .unwrap_err(),
        BuildError::ZeroClassCap(ErrorClass::RateLimit)
    );
    assert_eq!(
        RetryPolicy::builder()
            .strategy(strategy())
            .max_unknown_attempts(0)
            .build()
            .unwrap_err(),
        BuildError::ZeroClassCap(ErrorClass::Unknown)
    );
}

#[test]
fn closures_are_strategies_and_see_the_attempt_class_and_previous_delay() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let contexts = Arc::new(Mutex::new(Vec::new()));
    let seen_ctx = Arc::clone(&contexts);
    let linear = reflexio::strategy::from_fn(move |ctx, _rng| {
        seen_ctx.lock().unwrap().push(*ctx);
        ms(10) * ctx.attempt
    });
    let policy = policy_with(&clock, &rec, |b| b.strategy(linear));
    let steps = vec![
        fail(ErrorClass::Transient),
        fail(ErrorClass::RateLimit),
        fail(ErrorClass::Transient),
    ];
    let (result, _) = run(&policy, &clock, steps);
    assert_eq!(result.unwrap(), 4);
    assert_eq!(delays(&rec.take()), [ms(10), ms(20), ms(30)]);
    let contexts = contexts.lock().unwrap();
    let summary: Vec<_> = contexts
        .iter()
        .map(|c| (c.attempt, c.class, c.previous))
        .collect();
    // `previous` is per class: the rate-limit failure has none yet.
    assert_eq!(
        summary,
        [
            (1, ErrorClass::Transient, None),
            (2, ErrorClass::RateLimit, None),
            (3, ErrorClass::Transient, Some(ms(10))),
        ]
    );
}

/// A seed written in a report must reproduce the same delays anywhere and
/// with any later build: these values were drawn once and are pinned.
#[test]
fn seeded_delays_are_pinned() {
    let clock = ManualClock::new();
    let rec = Recorder::default();
    let policy = RetryPolicy::builder()
        .strategy(Backoff::equal_jitter(ms(100), ms(10_000)))
        .class_strategy(
            ErrorClass::RateLimit,
            Backoff::decorrelated_jitter(ms(100), ms(10_000)),
        )
        .no_deadline()
        .max_attempts(6)
        .seed(42)
        .clock(clock.clone())
        .hook(rec.hook())
        .build()
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let mut n = 0;
        let err = policy
            .call(|| {
                n += 1;
                Err::<(), _>(if n % 2 == 0 {
                    ClassifiedError::rate_limited(None, "slow down")
                } else {
                    ClassifiedError::transient("reset")
                })
            })
            .unwrap_err();
        assert_eq!(err.attempts(), 6);
        seen.extend(delays(&rec.take()).into_iter().map(|d| d.as_nanos()));
    }
    assert_eq!(
        seen,
        [
            168_189_619,
            290_055_082,
            571_006_561,
            583_171_270,
            2_061_750_206,
            171_679_165,
            133_382_068,
            592_965_969,
            354_003_586,
            1_706_488_584,
        ]
    );
}

/// A manual clock for the tests below, as a blocking clock and as an async
/// sleeper: it counts how often it is read, can make every sleep overshoot
/// by a fixed amount (as a real timer can wake late), and can log sleeps.
#[derive(Clone, Default)]
struct TestClock {
    clock: reflexio::ManualClock,
    reads: Arc<std::sync::atomic::AtomicU64>,
    overshoot: Duration,
    log: Option<Arc<Mutex<Vec<&'static str>>>>,
}

impl TestClock {
    fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl reflexio::Clock for TestClock {
    fn now(&self) -> Duration {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.clock.now()
    }

    fn sleep(&self, duration: Duration) {
        if let Some(log) = &self.log {
            log.lock().unwrap().push("slept");
        }
        reflexio::Clock::sleep(&self.clock, duration + self.overshoot);
    }
}

impl reflexio::Sleeper for TestClock {
    fn now(&self) -> Duration {
        reflexio::Clock::now(self)
    }

    fn sleep(&self, duration: Duration) -> reflexio::clock::SleepFuture {
        reflexio::Clock::sleep(self, duration);
        Box::pin(std::future::ready(()))
    }
}

/// Fails twice with a transient error, then returns 7.
fn transient_twice() -> impl FnMut() -> Result<u32, reflexio::ClassifiedError> {
    let mut left = 2;
    move || {
        if left == 0 {
            return Ok(7);
        }
        left -= 1;
        Err(reflexio::ClassifiedError::transient("reset"))
    }
}

fn counted_policy(clock: &TestClock) -> reflexio::RetryPolicyBuilder {
    RetryPolicy::builder()
        .strategy(Backoff::constant(ms(10)))
        .clock(clock.clone())
        .sleeper(clock.clone())
}

/// With the `tracing` feature every call is observed, so it is timed.
const TRACED: bool = cfg!(feature = "tracing");

#[test]
fn the_clock_is_read_only_for_a_deadline_or_an_observer() {
    // No deadline, no hook: never read (unless traced), and the call still
    // retries and sleeps as its strategy says.
    let clock = TestClock::default();
    let policy = counted_policy(&clock).no_deadline().build().unwrap();
    assert_eq!(policy.call(transient_twice()).unwrap(), 7);
    assert_eq!(policy.call(|| Ok::<_, std::io::Error>(1)).unwrap(), 1);
    // Traced: start, two failures and the success; then start and success.
    assert_eq!(clock.reads(), if TRACED { 6 } else { 0 });
    assert_eq!(clock.clock.slept(), ms(20));

    // A deadline: read at the start, at each failure and after each sleep
    // (a retry must not start past the deadline); at the success only
    // when traced.
    let clock = TestClock::default();
    let policy = counted_policy(&clock).build().unwrap();
    assert_eq!(policy.call(transient_twice()).unwrap(), 7);
    assert_eq!(clock.reads(), if TRACED { 6 } else { 5 });

    // A hook and no deadline: read, and events carry the elapsed time.
    let clock = TestClock::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let policy = counted_policy(&clock)
        .no_deadline()
        .hook(move |e: &reflexio::Event<'_>| sink.lock().unwrap().push(e.elapsed))
        .build()
        .unwrap();
    assert_eq!(policy.call(transient_twice()).unwrap(), 7);
    assert_eq!(clock.reads(), 4);
    assert_eq!(*seen.lock().unwrap(), vec![ms(0), ms(10), ms(20)]);
}

#[test]
fn a_bound_hook_makes_an_untimed_policy_read_the_clock() {
    let clock = TestClock::default();
    let policy = counted_policy(&clock).no_deadline().build().unwrap();

    let quiet = policy.bind("quiet");
    assert_eq!(quiet.call(transient_twice()).unwrap(), 7);
    assert_eq!(clock.reads(), if TRACED { 4 } else { 0 });

    let before = clock.reads();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let observed = policy
        .bind("observed")
        .hook(move |e: &reflexio::Event<'_>| sink.lock().unwrap().push(e.elapsed));
    assert_eq!(observed.call(transient_twice()).unwrap(), 7);
    assert_eq!(clock.reads() - before, 4);
    // Elapsed counts from this call's own start, although the manual clock
    // had already moved on by the first call's 20 ms of sleep.
    assert_eq!(*seen.lock().unwrap(), vec![ms(0), ms(10), ms(20)]);
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn async_calls_read_the_clock_exactly_as_blocking_ones() {
    let clock = TestClock::default();
    let untimed = counted_policy(&clock).no_deadline().build().unwrap();
    let mut op = transient_twice();
    let value = untimed.call_async(|| std::future::ready(op())).await;
    assert_eq!(value.unwrap(), 7);
    assert_eq!(clock.reads(), if TRACED { 4 } else { 0 });
    assert_eq!(clock.clock.slept(), ms(20));

    let clock = TestClock::default();
    let timed = counted_policy(&clock).build().unwrap();
    let mut op = transient_twice();
    let value = timed.call_async(|| std::future::ready(op())).await;
    assert_eq!(value.unwrap(), 7);
    assert_eq!(clock.reads(), if TRACED { 6 } else { 5 });
}

/// Runs one always-failing call (each attempt takes 1 ms) under a 100 ms
/// deadline and a 40 ms constant strategy, blocking or async; returns the
/// attempt start times, the events and the error.
fn overshooting_call(
    overshoot: Duration,
    run_async: bool,
) -> (
    Vec<Duration>,
    Vec<Seen>,
    RetryError<reflexio::ClassifiedError>,
) {
    let clock = TestClock {
        overshoot,
        ..TestClock::default()
    };
    let recorder = Recorder::default();
    let policy = RetryPolicy::builder()
        .strategy(Backoff::constant(ms(40)))
        .deadline(ms(100))
        .max_attempts(20)
        .clock(clock.clone())
        .sleeper(clock.clone())
        .hook(recorder.hook())
        .build()
        .unwrap();
    let mut starts = Vec::new();
    let mut attempt = || {
        starts.push(clock.clock.now());
        clock.clock.advance(ms(1));
        Err::<(), _>(reflexio::ClassifiedError::transient("reset"))
    };
    let err = if run_async {
        let future = policy.call_async(|| std::future::ready(attempt()));
        block_on_ready(future)
    } else {
        policy.call(attempt)
    }
    .unwrap_err();
    (starts, recorder.take(), err)
}

/// Polls a future that never waits (every sleep here is ready at once).
fn block_on_ready<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
    }
}

#[test]
fn a_sleep_that_wakes_well_past_the_deadline_starts_no_retry() {
    use reflexio::engine::WAKE_TOLERANCE;
    assert_eq!(WAKE_TOLERANCE, ms(10));
    for run_async in [false, true] {
        // Exact sleeps: attempts at 0, 41, 82; the third fails at 83 and
        // the delay is cut to the 17 ms left, so the fourth starts exactly
        // at the deadline, fails, and the call ends there.
        let (starts, seen, err) = overshooting_call(Duration::ZERO, run_async);
        assert_eq!(starts, vec![ms(0), ms(41), ms(82), ms(100)]);
        assert_eq!(err.reason(), StopReason::DeadlineExceeded);
        assert_eq!(err.attempts(), 4);
        assert_eq!(delays(&seen), vec![ms(40), ms(40), ms(17)]);

        // Sleeps 3 ms late, a timer's ordinary lateness: the cut delay
        // wakes at 103, within the tolerance, and the last retry is made
        // rather than slept for in vain.
        let (starts, _, err) = overshooting_call(ms(3), run_async);
        assert_eq!(starts, vec![ms(0), ms(44), ms(88), ms(103)]);
        assert_eq!(err.attempts(), 4);

        // Sleeps 15 ms late: attempts at 0 and 56; the second fails at 57
        // and its 40 ms sleep wakes at 112, past the deadline and the
        // tolerance: the retry is not made and the call ends after two
        // attempts, with the second attempt's error.
        let (starts, seen, err) = overshooting_call(ms(15), run_async);
        assert_eq!(starts, vec![ms(0), ms(56)]);
        assert_eq!(err.reason(), StopReason::DeadlineExceeded);
        assert_eq!(err.attempts(), 2);
        assert_eq!(err.error().to_string(), "transient error: reset");
        assert_eq!(
            kinds(&seen),
            vec![
                EventKind::Retry,
                EventKind::Retry,
                EventKind::DeadlineExceeded
            ]
        );
        let last = seen.last().unwrap();
        assert_eq!(last.attempt, 2);
        assert_eq!(last.class, Some(ErrorClass::Transient));
        assert!(last
            .error_type
            .as_deref()
            .unwrap()
            .contains("ClassifiedError"));
        assert_eq!(last.elapsed, ms(112));

        // Whatever the lateness, no attempt starts more than the tolerance
        // after the deadline, and the call ends with exactly one terminal
        // event, its last event.
        for overshoot in [1, 7, 9, 10, 11, 16, 17, 18, 59, 60, 61, 150].map(ms) {
            let (starts, seen, err) = overshooting_call(overshoot, run_async);
            assert!(
                starts.iter().all(|t| *t <= ms(100) + WAKE_TOLERANCE),
                "{overshoot:?}: {starts:?}"
            );
            assert_eq!(err.attempts() as usize, starts.len());
            let terminal = seen.iter().filter(|s| s.kind.is_terminal()).count();
            assert_eq!(terminal, 1, "{overshoot:?}");
            assert!(seen.last().unwrap().kind.is_terminal());
        }
    }
}

/// An error that logs when it is dropped.
#[derive(Debug)]
struct Logged(Arc<Mutex<Vec<&'static str>>>);

impl fmt::Display for Logged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("logged")
    }
}

impl Error for Logged {}

impl Drop for Logged {
    fn drop(&mut self) {
        self.0.lock().unwrap().push("error dropped");
    }
}

#[test]
fn a_failed_attempt_s_error_is_dropped_before_the_sleep_unless_a_deadline_needs_it() {
    for (deadline, expected) in [
        (false, ["error dropped", "slept"]),
        (true, ["slept", "error dropped"]),
    ] {
        let log = Arc::new(Mutex::new(Vec::new()));
        let clock = TestClock {
            log: Some(Arc::clone(&log)),
            ..TestClock::default()
        };
        let mut builder = RetryPolicy::builder()
            .strategy(Backoff::constant(ms(10)))
            .classifier(|_: &Logged| ErrorClass::Transient)
            .clock(clock);
        if !deadline {
            builder = builder.no_deadline();
        }
        let policy = builder.build().unwrap();
        let mut first = true;
        let value = policy.call(|| {
            if std::mem::take(&mut first) {
                Err(Logged(Arc::clone(&log)))
            } else {
                Ok(1)
            }
        });
        assert_eq!(value.unwrap(), 1);
        assert_eq!(*log.lock().unwrap(), expected, "deadline: {deadline}");
    }
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn async_calls_with_send_errors_can_be_spawned() {
    // A call's future holds its operation's futures and, with a deadline,
    // the last error across the sleep: with Send ones it is Send.
    let policy = RetryPolicy::default();
    let task = tokio::spawn(async move {
        let mut failures_left = 2;
        policy
            .call_async(|| {
                let fail = failures_left > 0;
                failures_left -= 1;
                async move {
                    if fail {
                        Err(reflexio::ClassifiedError::transient("reset"))
                    } else {
                        Ok(5)
                    }
                }
            })
            .await
    });
    assert_eq!(task.await.unwrap().unwrap(), 5);
}
