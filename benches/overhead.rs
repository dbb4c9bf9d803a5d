//! What retrying costs a caller, against a bare call and against the retry
//! crates a Rust service would otherwise pick (backon, backoff).
//!
//! * `success_path`: the same closure returning `Ok`, run bare and through
//!   each library's blocking retry; reflexio also with each built-in retry
//!   budget (`*_token_bucket`, `*_ratio`), with and without a deadline.
//! * `one_retry`: the closure fails once, then succeeds; every library
//!   waits zero time between the attempts.
//! * `async_success`: the success path of an async call on a tokio
//!   current-thread runtime, reflexio against backon.
//! * `contention`: one policy shared by two threads against one thread
//!   alone; criterion reports calls per second (one element per call).
//!   `success_beside_retries` times successful calls on one thread while
//!   a second thread retries through the same policy.
//!
//! Run with `cargo bench --bench overhead`; see reports/BENCHMARKS.md.

mod common;

use common::{transient, Fail};

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use backon::{BlockingRetryable, ConstantBuilder, ExponentialBuilder, Retryable};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use reflexio::{Backoff, Clock, CoarseClock, RatioBudget, RetryPolicy, ThreadSleeper, TokenBucket};

/// The operation of the success path.
#[inline(never)]
fn work() -> Result<u64, Fail> {
    Ok(black_box(42))
}

/// A fresh operation that fails its first attempt and succeeds its second.
fn fail_once() -> impl FnMut() -> Result<u64, Fail> {
    let mut attempts = 0u64;
    move || {
        attempts += 1;
        if black_box(attempts) == 1 {
            Err(Fail)
        } else {
            Ok(black_box(attempts))
        }
    }
}

/// The policy of the success path: the library's reference strategy and
/// envelope, no hooks, the system clock.
fn success_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .strategy(reflexio::strategy::default_backoff())
        .sleeper(ThreadSleeper::new())
        .build()
        .expect("a valid policy")
}

fn success_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("success_path");
    g.bench_function("bare", |b| b.iter(|| black_box(work())));
    // The one clock read reflexio makes per call, alone.
    g.bench_function("clock_read", |b| b.iter(|| black_box(Instant::now())));

    let policy = success_policy();
    g.bench_function("reflexio", |b| b.iter(|| black_box(policy.call(work))));
    // The same policy on the cheap coarse clock, and that clock's read alone.
    let coarse = CoarseClock::new();
    g.bench_function("clock_read_coarse", |b| {
        b.iter(|| black_box(Clock::now(&coarse)))
    });
    let coarse_policy = RetryPolicy::builder()
        .strategy(reflexio::strategy::default_backoff())
        .clock(CoarseClock::new())
        .build()
        .expect("a valid policy");
    g.bench_function("reflexio_coarse_clock", |b| {
        b.iter(|| black_box(coarse_policy.call(work)))
    });
    // The same policy without a deadline: with nothing to time, no clock read.
    let untimed = RetryPolicy::builder()
        .strategy(reflexio::strategy::default_backoff())
        .no_deadline()
        .build()
        .expect("a valid policy");
    g.bench_function("reflexio_no_deadline", |b| {
        b.iter(|| black_box(untimed.call(work)))
    });

    // The same policies with a retry budget. A token bucket needs no time:
    // a clean success refunds a full bucket, which costs one load. A ratio
    // budget counts the call's start in its window: one compare-and-swap,
    // and, without a deadline, the clock read it needs for that.
    let budgeted = |deadline: bool, ratio: bool| {
        let builder = RetryPolicy::builder()
            .strategy(reflexio::strategy::default_backoff())
            .sleeper(ThreadSleeper::new());
        let builder = if deadline {
            builder
        } else {
            builder.no_deadline()
        };
        let builder = if ratio {
            builder.budget(RatioBudget::finagle())
        } else {
            builder.budget(TokenBucket::aws())
        };
        builder.build().expect("a valid policy")
    };
    for (name, deadline, ratio) in [
        ("reflexio_token_bucket", true, false),
        ("reflexio_ratio", true, true),
        ("reflexio_no_deadline_token_bucket", false, false),
        ("reflexio_no_deadline_ratio", false, true),
    ] {
        let policy = budgeted(deadline, ratio);
        g.bench_function(name, |b| b.iter(|| black_box(policy.call(work))));
    }

    // backon builds its backoff (and seeds its RNG) on every call.
    g.bench_function("backon", |b| {
        b.iter(|| black_box(work.retry(ExponentialBuilder::default()).call()))
    });

    // backoff's operation returns its own error type; its exponential
    // backoff reads the clock when it is made and when it is reset.
    g.bench_function("backoff", |b| {
        b.iter(|| {
            black_box(backoff::retry(
                backoff::ExponentialBackoff::default(),
                || work().map_err(backoff::Error::transient),
            ))
        })
    });
    g.finish();
}

fn one_retry(c: &mut Criterion) {
    let mut g = c.benchmark_group("one_retry");

    // A hand-written loop: the floor.
    g.bench_function("bare_loop", |b| {
        b.iter(|| {
            let mut op = fail_once();
            loop {
                if let Ok(v) = op() {
                    break black_box(v);
                }
            }
        })
    });

    let policy = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::ZERO))
        .classifier(transient)
        .build()
        .expect("a valid policy");
    g.bench_function("reflexio", |b| {
        b.iter(|| black_box(policy.call(fail_once())))
    });
    let coarse = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::ZERO))
        .classifier(transient)
        .clock(CoarseClock::new())
        .build()
        .expect("a valid policy");
    g.bench_function("reflexio_coarse_clock", |b| {
        b.iter(|| black_box(coarse.call(fail_once())))
    });

    // With a budget that never runs dry: the bucket gets each retry's cost
    // back when the call succeeds; the ratio budget allows one retry per
    // call (100%).
    let with_bucket = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::ZERO))
        .classifier(transient)
        .budget(TokenBucket::aws())
        .build()
        .expect("a valid policy");
    g.bench_function("reflexio_token_bucket", |b| {
        b.iter(|| black_box(with_bucket.call(fail_once())))
    });
    let with_ratio = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::ZERO))
        .classifier(transient)
        .budget(RatioBudget::new(Duration::from_secs(10), 10, 100.0).expect("valid settings"))
        .build()
        .expect("a valid policy");
    g.bench_function("reflexio_ratio", |b| {
        b.iter(|| black_box(with_ratio.call(fail_once())))
    });

    let seeded = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::ZERO))
        .classifier(transient)
        .seed(7)
        .build()
        .expect("a valid policy");
    g.bench_function("reflexio_seeded", |b| {
        b.iter(|| black_box(seeded.call(fail_once())))
    });

    let constant = ConstantBuilder::default()
        .with_delay(Duration::ZERO)
        .with_max_times(5);
    g.bench_function("backon", |b| {
        b.iter(|| black_box(fail_once().retry(constant).call()))
    });

    g.bench_function("backoff", |b| {
        b.iter(|| {
            let mut op = fail_once();
            black_box(backoff::retry(
                backoff::backoff::Constant::new(Duration::ZERO),
                || op().map_err(backoff::Error::transient),
            ))
        })
    });
    g.finish();
}

async fn work_async() -> Result<u64, Fail> {
    work()
}

fn async_success(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let mut g = c.benchmark_group("async_success");
    g.bench_function("bare", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(work_async().await) })
    });

    // No sleep happens on the success path, so the sleeper only supplies
    // the one clock read at the start of the call.
    let policy = success_policy();
    g.bench_function("reflexio", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(policy.call_async(work_async).await) })
    });
    let coarse = RetryPolicy::builder()
        .strategy(reflexio::strategy::default_backoff())
        .sleeper(CoarseClock::new())
        .build()
        .expect("a valid policy");
    g.bench_function("reflexio_coarse_clock", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(coarse.call_async(work_async).await) })
    });

    g.bench_function("backon", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(work_async.retry(ExponentialBuilder::default()).await) })
    });
    g.finish();
}

/// Runs `iters` calls on each of `threads` threads sharing `policy`, and
/// returns the wall time of the whole.
fn shared_calls<F>(threads: u64, iters: u64, call: &F) -> Duration
where
    F: Fn() + Sync,
{
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..iters {
                    call();
                }
            });
        }
    });
    start.elapsed()
}

fn contention(c: &mut Criterion) {
    let mut g = c.benchmark_group("contention");
    let policy = success_policy();
    let retrying = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::ZERO))
        .classifier(transient)
        .build()
        .expect("a valid policy");
    let seeded = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::ZERO))
        .classifier(transient)
        .seed(7)
        .build()
        .expect("a valid policy");
    for threads in [1u64, 2] {
        // One element per call: criterion's throughput is calls per second
        // over all threads.
        g.throughput(Throughput::Elements(threads));
        // The control: the same closure without a policy, and a clock read
        // alone, show how the machine itself scales.
        g.bench_with_input(
            BenchmarkId::new("bare", threads),
            &threads,
            |b, &threads| {
                let call = || {
                    black_box(work()).ok();
                };
                b.iter_custom(|iters| shared_calls(threads, iters, &call))
            },
        );
        g.bench_with_input(
            BenchmarkId::new("clock_read", threads),
            &threads,
            |b, &threads| {
                let call = || {
                    black_box(Instant::now());
                };
                b.iter_custom(|iters| shared_calls(threads, iters, &call))
            },
        );
        g.bench_with_input(
            BenchmarkId::new("success", threads),
            &threads,
            |b, &threads| {
                let call = || {
                    black_box(policy.call(work)).ok();
                };
                b.iter_custom(|iters| shared_calls(threads, iters, &call))
            },
        );
        g.bench_with_input(
            BenchmarkId::new("one_retry", threads),
            &threads,
            |b, &threads| {
                let call = || {
                    black_box(retrying.call(fail_once())).ok();
                };
                b.iter_custom(|iters| shared_calls(threads, iters, &call))
            },
        );
        g.bench_with_input(
            BenchmarkId::new("one_retry_seeded", threads),
            &threads,
            |b, &threads| {
                let call = || {
                    black_box(seeded.call(fail_once())).ok();
                };
                b.iter_custom(|iters| shared_calls(threads, iters, &call))
            },
        );
    }
    // Success calls on this thread while another thread keeps retrying
    // through the same policy: the success path writes nothing shared, so
    // it should not notice the other thread.
    g.throughput(Throughput::Elements(1));
    for (label, policy) in [("unseeded", &retrying), ("seeded", &seeded)] {
        g.bench_function(BenchmarkId::new("success_beside_retries", label), |b| {
            b.iter_custom(|iters| beside_retries(policy, iters))
        });
    }
    g.finish();
}

/// Times `iters` successful calls on this thread while a second thread
/// makes calls with one retry through the same `policy`.
fn beside_retries<C>(policy: &RetryPolicy<C>, iters: u64) -> Duration
where
    C: reflexio::Classifier<Fail>,
{
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                black_box(policy.call(fail_once())).ok();
            }
        });
        let start = Instant::now();
        for _ in 0..iters {
            black_box(policy.call(work)).ok();
        }
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        elapsed
    })
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = success_path, one_retry, async_success, contention
}
criterion_main!(benches);
