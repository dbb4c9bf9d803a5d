//! The extension trait runs the policy's own drivers: the same outcome, the
//! same events and the same seeded delays as `call_named` and
//! `call_async_named`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reflexio::{
    Backoff, ClassifiedError, ErrorClass, Event, ManualClock, RetryPolicy, Retryable, StopReason,
};

type Log = Arc<Mutex<Vec<String>>>;

/// A seeded policy on a fake clock that records every event, and its log.
fn recorded_policy(clock: &ManualClock) -> (RetryPolicy, Log) {
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    let policy = RetryPolicy::builder()
        .strategy(Backoff::full_jitter(
            Duration::from_millis(100),
            Duration::from_secs(2),
        ))
        .max_attempts(4)
        .deadline(Duration::from_secs(10))
        .seed(7)
        .clock(clock.clone())
        .sleeper(clock.clone())
        .hook(move |e: &Event<'_>| {
            sink.lock().unwrap().push(format!(
                "{} {} #{} {:?} {:?} {:?} {:?}",
                e.operation, e.kind, e.attempt, e.delay, e.class, e.error_type, e.elapsed
            ))
        })
        .build()
        .unwrap();
    (policy, log)
}

/// Fails with a transient error `failures` times, then succeeds.
fn flaky(failures: u32) -> impl FnMut() -> Result<u32, ClassifiedError> {
    let mut calls = 0;
    move || {
        calls += 1;
        if calls <= failures {
            Err(ClassifiedError::transient("connection reset"))
        } else {
            Ok(calls)
        }
    }
}

#[test]
fn blocking_extension_matches_call_named() {
    let (direct_clock, extension_clock) = (ManualClock::new(), ManualClock::new());
    let (direct, direct_log) = recorded_policy(&direct_clock);
    let (extension, extension_log) = recorded_policy(&extension_clock);

    for failures in [0, 2, 9] {
        let expected = direct.call_named("fetch", flaky(failures));
        let got = flaky(failures).retry(&extension).operation("fetch").call();
        match (expected, got) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => {
                assert_eq!(a.reason(), b.reason());
                assert_eq!(a.attempts(), b.attempts());
                assert_eq!(b.reason(), StopReason::MaxAttemptsExceeded);
            }
            (a, b) => panic!("outcomes differ: {a:?} vs {b:?}"),
        }
    }
    let log = extension_log.lock().unwrap().clone();
    assert_eq!(log, *direct_log.lock().unwrap());
    // 1 + 3 + 4 events, every one tagged with the operation.
    assert_eq!(log.len(), 8);
    assert!(log.iter().all(|line| line.starts_with("fetch ")), "{log:?}");
    assert_eq!(extension_clock.slept(), direct_clock.slept());
    assert_eq!(extension_clock.sleeps(), 5);
}

#[test]
fn async_extension_matches_call_async_named() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (direct_clock, extension_clock) = (ManualClock::new(), ManualClock::new());
    let (direct, direct_log) = recorded_policy(&direct_clock);
    let (extension, extension_log) = recorded_policy(&extension_clock);

    let attempt = |failures: u32| {
        let mut sync = flaky(failures);
        move || {
            let outcome = sync();
            async move { outcome }
        }
    };
    rt.block_on(async {
        let a = direct.call_async_named("load", attempt(2)).await.unwrap();
        // `.await` on the builder (boxed, Send) and `call_async` (unboxed).
        let b = attempt(2)
            .retry(&extension)
            .operation("load")
            .await
            .unwrap();
        assert_eq!((a, b), (3, 3));
        let a = direct
            .call_async_named("load", attempt(9))
            .await
            .unwrap_err();
        let b = attempt(9)
            .retry(&extension)
            .operation("load")
            .call_async()
            .await
            .unwrap_err();
        assert_eq!((a.reason(), a.attempts()), (b.reason(), b.attempts()));
    });
    assert_eq!(*extension_log.lock().unwrap(), *direct_log.lock().unwrap());
    assert_eq!(extension_clock.slept(), direct_clock.slept());
}

#[test]
fn unnamed_calls_and_the_callers_error() {
    let clock = ManualClock::new();
    let (policy, log) = recorded_policy(&clock);
    let err = (|| Err::<(), _>(ClassifiedError::permanent("no such user")))
        .retry(&policy)
        .call()
        .unwrap_err();
    assert_eq!(err.attempts(), 1);
    assert_eq!(
        err.into_inner().classification().class,
        ErrorClass::Permanent
    );
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1);
    assert!(log[0].starts_with(" permanent_fail #1"), "{log:?}");
}
