//! Every public entry point accepts every `Duration`: sleepers, the
//! builder, strategies, server hints, `worst_case` and `ManualClock`, in
//! blocking and async calls. Nothing here really sleeps long: fake clocks,
//! tokio's paused time, or a single poll of a sleep that would last
//! centuries.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use reflexio::strategy::from_fn;
use reflexio::{
    Backoff, BackoffKind, Classification, Clock, Engine, Envelope, ErrorClass, Event, ManualClock,
    RetryPolicy, Sleeper, StopReason, Strategy, SystemClock, ThreadSleeper,
};

const HUGE_HINT: Duration = Duration::from_secs(u64::MAX);
const SATURATED: Duration = Duration::from_nanos(u64::MAX);

#[derive(Debug)]
struct Hinted(Duration);

fn hinted(e: &Hinted) -> Classification {
    Classification::new(ErrorClass::RateLimit).with_retry_after(e.0)
}

/// Fails `failures` times with `hint`, then succeeds.
fn flaky(failures: u32, hint: Duration) -> impl FnMut() -> Result<u32, Hinted> {
    let mut n = 0;
    move || {
        n += 1;
        if n <= failures {
            Err(Hinted(hint))
        } else {
            Ok(n)
        }
    }
}

fn delays() -> (Arc<Mutex<Vec<Duration>>>, impl Fn(&Event<'_>) + Send + Sync) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    (seen, move |e: &Event<'_>| {
        if let Some(d) = e.delay {
            log.lock().unwrap().push(d);
        }
    })
}

#[test]
fn a_hint_of_u64_max_seconds_without_deadline_is_slept_on_a_fake_clock() {
    let clock = ManualClock::new();
    let (seen, hook) = delays();
    let policy = RetryPolicy::builder()
        .classifier(hinted as fn(&Hinted) -> Classification)
        .no_deadline()
        .max_retry_after(Duration::MAX)
        .clock(clock.clone())
        .hook(hook)
        .build()
        .unwrap();
    assert_eq!(policy.call(flaky(2, HUGE_HINT)).unwrap(), 3);
    assert_eq!(*seen.lock().unwrap(), [HUGE_HINT, HUGE_HINT]);
    // The fake time saturates at u64::MAX nanoseconds instead of wrapping.
    assert_eq!(clock.now(), SATURATED);
    assert_eq!(clock.slept(), SATURATED);
    assert_eq!(clock.sleeps(), 2);
}

#[test]
fn a_huge_hint_with_a_deadline_stops_at_once() {
    let clock = ManualClock::new();
    let policy = RetryPolicy::builder()
        .classifier(hinted as fn(&Hinted) -> Classification)
        .deadline(Duration::from_secs(1))
        .max_retry_after(Duration::MAX)
        .clock(clock.clone())
        .build()
        .unwrap();
    let err = policy.call(flaky(5, Duration::MAX)).unwrap_err();
    assert_eq!(err.reason(), StopReason::DeadlineExceeded);
    assert_eq!(err.attempts(), 1);
    assert_eq!(clock.sleeps(), 0);
}

#[test]
fn the_builder_and_the_engine_take_duration_max_everywhere() {
    let max = Duration::MAX;
    let always_max = from_fn(|_, _| Duration::MAX);
    for deadline in [Some(max), None, Some(Duration::from_millis(1))] {
        for kind in BackoffKind::ALL {
            let clock = ManualClock::new();
            let mut builder = RetryPolicy::builder()
                .classifier(hinted as fn(&Hinted) -> Classification)
                .strategy(Backoff::new(kind, max, max))
                .class_strategy(ErrorClass::Transient, always_max)
                .max_retry_after(max)
                .max_attempts(u32::MAX)
                .class_max_attempts(ErrorClass::RateLimit, 4)
                .clock(clock.clone());
            builder = match deadline {
                Some(d) => builder.deadline(d),
                None => builder.no_deadline(),
            };
            let policy = builder.build().unwrap();
            let wc = policy.engine().worst_case();
            assert!(wc.max_total_sleep <= max);
            let result = policy.call(flaky(3, max));
            match deadline {
                // A hint of Duration::MAX never fits in the time left
                // (after the first sleep, on the saturated fake clock).
                Some(_) => {
                    assert_eq!(result.unwrap_err().reason(), StopReason::DeadlineExceeded)
                }
                None => assert_eq!(result.unwrap(), 4, "{kind}"),
            }
            assert!(clock.now() <= SATURATED);
        }
    }
}

#[test]
fn a_strategy_returning_duration_max_is_capped_by_the_deadline() {
    let clock = ManualClock::new();
    let (seen, hook) = delays();
    let policy = RetryPolicy::builder()
        .strategy(from_fn(|_, _| Duration::MAX))
        .deadline(Duration::from_secs(2))
        .clock(clock.clone())
        .hook(hook)
        .build()
        .unwrap();
    let err = policy
        .call(|| Err::<(), _>(reflexio::ClassifiedError::transient("down")))
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::DeadlineExceeded);
    assert_eq!(*seen.lock().unwrap(), [Duration::from_secs(2)]);
    assert_eq!(clock.now(), Duration::from_secs(2));
}

/// A strategy that documents absurd bounds, for `worst_case`.
struct Extreme;

impl Strategy for Extreme {
    fn delay(&self, _: &reflexio::DelayContext, _: &mut dyn reflexio::rand::RngCore) -> Duration {
        Duration::MAX
    }

    fn bounds(&self, _: u32, _: Option<Duration>) -> Option<(Duration, Duration)> {
        Some((Duration::MAX, Duration::MAX))
    }
}

#[test]
fn worst_case_takes_extreme_envelopes_and_bounds() {
    for max_attempts in [0, 1, 2, 10_000, u32::MAX] {
        for deadline in [None, Some(Duration::MAX), Some(Duration::from_nanos(1))] {
            let mut envelope = Envelope::default();
            envelope.deadline = deadline;
            envelope.max_attempts = max_attempts;
            envelope.max_retry_after = Duration::MAX;
            envelope.max_unknown_attempts = None;
            let strategies: [Arc<dyn Strategy>; 8] =
                ErrorClass::ALL.map(|_| Arc::new(Extreme) as Arc<dyn Strategy>);
            let wc = Engine::new(envelope, strategies).worst_case();
            assert!(wc.max_attempts <= max_attempts.max(1));
            assert!(wc.max_attempts_before_deadline <= wc.max_attempts.max(1));
            assert!(wc.max_total_sleep <= wc.max_total_sleep_with_hints);
            let closure: [Arc<dyn Strategy>; 8] = ErrorClass::ALL
                .map(|_| Arc::new(from_fn(|_, _| Duration::MAX)) as Arc<dyn Strategy>);
            let wc = Engine::new(envelope, closure).worst_case();
            assert!(!wc.bounded || max_attempts <= 1);
        }
    }
}

#[test]
fn manual_clock_saturates() {
    let clock = ManualClock::new();
    clock.advance(Duration::MAX);
    clock.advance(Duration::MAX);
    clock.sleep(Duration::MAX);
    Clock::sleep(&clock, Duration::MAX);
    drop(Sleeper::sleep(&clock, Duration::MAX));
    assert_eq!(clock.now(), SATURATED);
    assert_eq!(Clock::now(&clock), SATURATED);
    assert_eq!(Sleeper::now(&clock), SATURATED);
    assert_eq!(clock.slept(), SATURATED);
    assert_eq!(clock.sleeps(), 3);
}

fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn thread_sleeper_takes_a_sleep_of_centuries() {
    let sleeper = ThreadSleeper::new();
    // Once a panic computing the wake-up instant; now a sleep that lasts.
    assert!(poll_once(sleeper.sleep(Duration::MAX)).is_pending());
    assert!(poll_once(sleeper.sleep(HUGE_HINT)).is_pending());
    assert!(poll_once(sleeper.sleep(Duration::ZERO)).is_ready());

    // The async driver with this sleeper and a hint of u64::MAX seconds.
    let policy = RetryPolicy::builder()
        .classifier(hinted as fn(&Hinted) -> Classification)
        .no_deadline()
        .max_retry_after(Duration::MAX)
        .sleeper(sleeper)
        .build()
        .unwrap();
    let mut op = flaky(1, HUGE_HINT);
    let call = policy.call_async(move || std::future::ready(op()));
    assert!(poll_once(call).is_pending());
}

#[test]
fn a_short_thread_sleep_still_ends() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let sleeper = ThreadSleeper::new();
    let start = sleeper.now();
    runtime.block_on(sleeper.sleep(Duration::from_millis(5)));
    assert!(sleeper.now() - start >= Duration::from_millis(5));
}

#[test]
fn system_clock_takes_a_sleep_of_centuries() {
    let sleeping = std::thread::spawn(|| SystemClock::new().sleep(Duration::MAX));
    std::thread::sleep(Duration::from_millis(20));
    // Still asleep: it neither panicked nor returned.
    assert!(!sleeping.is_finished());
}

#[cfg(feature = "tokio")]
mod tokio_time {
    use super::*;
    use reflexio::TokioSleeper;

    #[tokio::test(start_paused = true)]
    async fn tokio_sleeper_takes_duration_max() {
        let sleeper = TokioSleeper::new();
        let waited =
            tokio::time::timeout(Duration::from_secs(3600), sleeper.sleep(Duration::MAX)).await;
        assert!(waited.is_err(), "a sleep of Duration::MAX outlasts an hour");
        assert!(sleeper.now() >= Duration::from_secs(3600));
    }

    #[tokio::test(start_paused = true)]
    async fn async_calls_take_hints_of_u64_max_seconds() {
        let policy = RetryPolicy::builder()
            .classifier(hinted as fn(&Hinted) -> Classification)
            .no_deadline()
            .max_retry_after(Duration::MAX)
            .sleeper(TokioSleeper::new())
            .build()
            .unwrap();
        let mut op = flaky(1, HUGE_HINT);
        let call = policy.call_async(move || std::future::ready(op()));
        let waited = tokio::time::timeout(Duration::from_secs(86_400), call).await;
        assert!(waited.is_err(), "the call sleeps for the hint");
    }

    #[tokio::test]
    async fn async_calls_on_a_manual_clock_given_as_the_clock_only() {
        // `.clock(ManualClock)` alone fakes the async driver's time too.
        let clock = ManualClock::new();
        let policy = RetryPolicy::builder()
            .classifier(hinted as fn(&Hinted) -> Classification)
            .no_deadline()
            .max_retry_after(Duration::MAX)
            .clock(clock.clone())
            .build()
            .unwrap();
        let mut op = flaky(2, HUGE_HINT);
        let n = policy
            .call_async(move || std::future::ready(op()))
            .await
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(clock.sleeps(), 2);
        assert_eq!(clock.now(), SATURATED);
    }
}
