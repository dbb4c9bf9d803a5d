//! The blocking success path allocates nothing.
//!
//! A retry policy wraps every call a service makes, most of which succeed
//! at once; an allocation there would be paid on every one of them. A
//! counting global allocator proves that `RetryPolicy::call` on a call that
//! succeeds first time allocates nothing, for a policy without hooks (and,
//! as it happens, with one), and so does a request through the tower layer
//! (feature `tower`) that succeeds first time.
//!
//! Allocations are counted per thread, so the test harness's other threads
//! do not disturb the count. Each path is run once before counting, so that
//! one-time, per-thread initialisation (of the test harness, of `tracing`'s
//! call sites with the `tracing` feature, of the thread's RNG) is not
//! mistaken for a per-call cost.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reflexio::{Backoff, ClassifiedError, ErrorClass, Event, ManualClock, RetryPolicy};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: the slot may be gone while the thread is being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to the system allocator unchanged; the
// counter is a const-initialised thread local without a destructor, which
// never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many allocations this thread made while running `f`.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn succeed() -> Result<u64, ClassifiedError> {
    Ok(black_box(42))
}

#[test]
fn the_counter_sees_allocations() {
    // Guards against a counter that always reads zero.
    let n = allocations_in(|| {
        black_box(Box::new(black_box(1u64)));
    });
    assert_eq!(n, 1);
}

#[test]
fn blocking_success_without_hooks_allocates_nothing() {
    let policy = RetryPolicy::builder()
        .strategy(Backoff::decorrelated_jitter(
            Duration::from_millis(250),
            Duration::from_secs(5),
        ))
        .build()
        .unwrap();
    assert!(format!("{policy:?}").contains("hooks: 0"));
    black_box(policy.call(succeed).unwrap());
    let n = allocations_in(|| {
        for _ in 0..1000 {
            black_box(policy.call(succeed).unwrap());
        }
    });
    assert_eq!(n, 0, "1000 successful calls allocated {n} times");
}

#[test]
fn the_shared_default_policy_and_named_calls_allocate_nothing() {
    let policy = RetryPolicy::default();
    let bound = policy.bind("fetch_user");
    black_box(reflexio::retry(succeed).unwrap());
    black_box(policy.call_named("fetch_user", succeed).unwrap());
    black_box(bound.call(succeed).unwrap());
    let n = allocations_in(|| {
        for _ in 0..1000 {
            black_box(reflexio::retry(succeed).unwrap());
            black_box(policy.call_named("fetch_user", succeed).unwrap());
            black_box(bound.call(succeed).unwrap());
        }
    });
    assert_eq!(n, 0, "3000 successful calls allocated {n} times");
}

#[test]
fn blocking_success_with_a_hook_allocates_nothing() {
    let successes = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&successes);
    let policy = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::ZERO))
        .hook(move |_: &Event<'_>| {
            seen.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    black_box(policy.call(succeed).unwrap());
    let n = allocations_in(|| {
        for _ in 0..1000 {
            black_box(policy.call(succeed).unwrap());
        }
    });
    assert_eq!(n, 0, "1000 successful calls allocated {n} times");
    assert_eq!(successes.load(Ordering::Relaxed), 1001);
}

#[test]
fn a_retry_at_zero_delay_allocates_nothing() {
    // Not the success path, but a retry should not allocate either: the
    // jitter generator is a thread local, and a zero delay sleeps not at
    // all.
    let clock = ManualClock::new();
    let policy = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::ZERO))
        .classifier(|_: &&str| ErrorClass::Transient)
        .clock(clock.clone())
        .build()
        .unwrap();
    let fail_once = || {
        let mut first = true;
        move || {
            if std::mem::take(&mut first) {
                Err("reset")
            } else {
                Ok(black_box(1u64))
            }
        }
    };
    black_box(policy.call(fail_once()).unwrap());
    let n = allocations_in(|| {
        for _ in 0..1000 {
            black_box(policy.call(fail_once()).unwrap());
        }
    });
    assert_eq!(n, 0, "1000 calls with one retry allocated {n} times");
    assert_eq!(clock.sleeps(), 0, "a zero delay is not slept");
}

#[test]
fn a_jittered_retry_with_a_deadline_allocates_nothing() {
    // A real sleep (on the fake clock: a counter), a jittered draw from
    // the thread's generator, and the wake-up check against the deadline.
    let clock = ManualClock::new();
    let policy = RetryPolicy::builder()
        .strategy(Backoff::full_jitter(
            Duration::from_millis(1),
            Duration::from_millis(50),
        ))
        .deadline(Duration::from_secs(3600))
        .classifier(|_: &&str| ErrorClass::Transient)
        .clock(clock.clone())
        .build()
        .unwrap();
    let fail_once = || {
        let mut first = true;
        move || {
            if std::mem::take(&mut first) {
                Err("reset")
            } else {
                Ok(black_box(1u64))
            }
        }
    };
    black_box(policy.call(fail_once()).unwrap());
    let n = allocations_in(|| {
        for _ in 0..1000 {
            black_box(policy.call(fail_once()).unwrap());
        }
    });
    assert_eq!(
        n, 0,
        "1000 calls with one jittered retry allocated {n} times"
    );
    assert_eq!(clock.sleeps(), 1001);
}

#[test]
fn budgeted_calls_allocate_nothing() {
    // Both built-in budgets, on the success path and with a retry: their
    // state is a few atomics made when the policy is built.
    fn transient(_: &&str) -> ErrorClass {
        ErrorClass::Transient
    }
    let clock = ManualClock::new();
    let policies = [
        RetryPolicy::builder()
            .strategy(Backoff::constant(Duration::ZERO))
            .classifier(transient as fn(&&str) -> ErrorClass)
            .budget(reflexio::TokenBucket::aws())
            .clock(clock.clone())
            .build()
            .unwrap(),
        RetryPolicy::builder()
            .strategy(Backoff::constant(Duration::ZERO))
            .classifier(transient as fn(&&str) -> ErrorClass)
            .budget(reflexio::RatioBudget::finagle())
            .no_deadline()
            .clock(clock.clone())
            .build()
            .unwrap(),
    ];
    let fail_once = || {
        let mut first = true;
        move || {
            if std::mem::take(&mut first) {
                Err("reset")
            } else {
                Ok(black_box(1u64))
            }
        }
    };
    for policy in &policies {
        black_box(policy.call(|| Ok::<_, &str>(black_box(42u64))).unwrap());
        black_box(policy.call(fail_once()).unwrap());
        let n = allocations_in(|| {
            for _ in 0..1000 {
                black_box(policy.call(|| Ok::<_, &str>(black_box(42u64))).unwrap());
            }
        });
        assert_eq!(n, 0, "1000 successful calls allocated {n} times");
        let n = allocations_in(|| {
            for _ in 0..100 {
                black_box(policy.call(fail_once()).unwrap());
            }
        });
        assert_eq!(n, 0, "100 calls with one retry allocated {n} times");
    }
}

/// A request through the tower layer whose first attempt succeeds runs in
/// the layer's own future: no boxed driver, no allocation.
#[cfg(feature = "tower")]
#[test]
fn a_tower_request_that_succeeds_at_once_allocates_nothing() {
    use std::future::{ready, Future};
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    use tower::{Layer, Service};

    let policy = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::from_millis(10)))
        .build()
        .unwrap();
    let echo = tower::service_fn(|n: u64| ready(Ok::<u64, std::io::Error>(black_box(n))));
    let mut service = reflexio::RetryLayer::new(policy)
        .operation("echo")
        .layer(echo);
    let mut cx = Context::from_waker(Waker::noop());
    let mut request = |n: u64| {
        assert!(service.poll_ready(&mut cx).is_ready());
        let mut response = pin!(service.call(n));
        match response.as_mut().poll(&mut cx) {
            Poll::Ready(answer) => answer.unwrap(),
            Poll::Pending => panic!("a ready service answered later"),
        }
    };
    assert_eq!(request(7), 7);
    let n = allocations_in(|| {
        for i in 0..1000 {
            assert_eq!(black_box(request(i)), i);
        }
    });
    assert_eq!(n, 0, "1000 successful requests allocated {n} times");
}
