//! The public API's promises to a newcomer: the builder starts from the
//! defaults, one clock setter fakes both drivers, derived policies draw
//! their own jitter, and a strategy can be written with reflexio alone.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reflexio::rand::{Rng, RngCore};
use reflexio::{
    Backoff, ClassifiedError, DelayContext, ErrorClass, Event, ManualClock, RetryPolicy, Strategy,
};

fn seeded(seed: u64, log: Arc<Mutex<Vec<Duration>>>) -> RetryPolicy {
    RetryPolicy::builder()
        .strategy(Backoff::full_jitter(
            Duration::from_millis(100),
            Duration::from_secs(10),
        ))
        .max_attempts(6)
        .no_deadline()
        .seed(seed)
        .clock(ManualClock::new())
        .hook(move |e: &Event<'_>| {
            if let Some(d) = e.delay {
                log.lock().unwrap().push(d);
            }
        })
        .build()
        .unwrap()
}

fn five_failures<C: reflexio::Classifier<ClassifiedError>>(policy: &RetryPolicy<C>) {
    let _ = policy.call(|| Err::<(), _>(ClassifiedError::transient("reset")));
}

#[test]
fn the_builder_starts_from_the_defaults() {
    let policy = RetryPolicy::builder().max_attempts(3).build().unwrap();
    let default = RetryPolicy::default();
    assert_eq!(policy.envelope().max_attempts, 3);
    assert_eq!(policy.envelope().deadline, default.envelope().deadline);
    assert_eq!(
        policy
            .engine()
            .strategy(ErrorClass::Transient)
            .bounds(1, None),
        default
            .engine()
            .strategy(ErrorClass::Transient)
            .bounds(1, None)
    );
}

#[test]
fn with_classifier_draws_a_stream_of_its_own() {
    let parent_log = Arc::new(Mutex::new(Vec::new()));
    let parent = seeded(42, Arc::clone(&parent_log));
    // Derived before any call: it once repeated the parent's first delays.
    let child = parent.with_classifier(reflexio::DefaultClassifier::new());
    let sibling = parent.with_classifier(reflexio::DefaultClassifier::new());
    five_failures(&parent);
    let parent_delays = std::mem::take(&mut *parent_log.lock().unwrap());
    five_failures(&child);
    let child_delays = std::mem::take(&mut *parent_log.lock().unwrap());
    five_failures(&sibling);
    let sibling_delays = std::mem::take(&mut *parent_log.lock().unwrap());
    assert_eq!(parent_delays.len(), 5);
    assert_eq!(child_delays.len(), 5);
    assert_ne!(parent_delays, child_delays);
    assert_ne!(child_delays, sibling_delays);

    // Still reproducible: the same program draws the same delays.
    let again_log = Arc::new(Mutex::new(Vec::new()));
    let again = seeded(42, Arc::clone(&again_log));
    let again_child = again.with_classifier(reflexio::DefaultClassifier::new());
    five_failures(&again_child);
    assert_eq!(*again_log.lock().unwrap(), child_delays);
}

/// A strategy written against the re-exported `rand` only.
struct Uniform(Duration);

impl Strategy for Uniform {
    fn delay(&self, _ctx: &DelayContext, rng: &mut dyn RngCore) -> Duration {
        Duration::from_nanos(rng.random_range(0..=self.0.as_nanos() as u64))
    }
}

#[test]
fn a_strategy_needs_no_rand_dependency_of_its_own() {
    let clock = ManualClock::new();
    let policy = RetryPolicy::builder()
        .strategy(Uniform(Duration::from_millis(50)))
        .clock(clock.clone())
        .seed(1)
        .build()
        .unwrap();
    let mut n = 0;
    let result = policy.call(|| {
        n += 1;
        if n < 3 {
            Err(ClassifiedError::new(ErrorClass::Transient, "reset"))
        } else {
            Ok(n)
        }
    });
    assert_eq!(result.unwrap(), 3);
    assert!(clock.slept() <= Duration::from_millis(100));
}

#[test]
fn a_manual_clock_needs_no_trait_to_sleep() {
    // Both traits in scope: the inherent methods make the calls unambiguous.
    #[allow(unused_imports)]
    use reflexio::{Clock, Sleeper};
    let clock = ManualClock::new();
    clock.sleep(Duration::from_millis(5));
    assert_eq!(clock.now(), Duration::from_millis(5));
}

#[test]
fn an_explicit_sleeper_wins_over_the_clocks_own() {
    let clock = ManualClock::new();
    let sleeper = ManualClock::new();
    let policy = RetryPolicy::builder()
        .sleeper(sleeper.clone())
        .clock(clock.clone())
        .strategy(Backoff::constant(Duration::from_millis(7)))
        .build()
        .unwrap();
    let mut n = 0;
    let call = policy.call_async(|| {
        n += 1;
        std::future::ready(if n < 2 {
            Err(ClassifiedError::transient("reset"))
        } else {
            Ok(n)
        })
    });
    let result = block_on_ready(call);
    assert_eq!(result.unwrap(), 2);
    assert_eq!(sleeper.sleeps(), 1);
    assert_eq!(clock.sleeps(), 0);
}

/// Polls a future whose sleeps complete at once (a `ManualClock`'s).
fn block_on_ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
