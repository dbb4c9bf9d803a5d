//! What the integrations add on top of the policy they drive, in one run:
//!
//! * `tower_success`, `tower_one_retry`: a trivial inner service (a ready
//!   future of `Ok`; for the retry, `Err` on every other call), called bare,
//!   through tower's own `retry::Retry` with a minimal policy (retry any
//!   error, no delay, clone the request), and through reflexio's
//!   `RetryLayer` (a policy with no deadline and a zero constant backoff,
//!   the zero sleep through `ThreadSleeper`, which returns at once).
//!   Every call is `ready().await` then `call(..).await` on a tokio
//!   current-thread runtime.
//! * `sugar_success`, `sugar_one_retry`: the same operation through
//!   `policy.call_named`, the `Retryable` extension trait and a
//!   `#[retry]` function, blocking; `sugar_async_success` the same for
//!   async calls (`call_async_named`, the extension trait's boxed
//!   `.await` and unboxed `call_async`, an async `#[retry]` function).
//!
//! Every sample is timed in CPU time of the benchmarking thread
//! (`CLOCK_THREAD_CPUTIME_ID` on Linux, wall time elsewhere), not wall time:
//! these differences are a few nanoseconds, and on a shared machine a
//! preempted sample would add microseconds of someone else's work. Each
//! call runs on the benchmarking thread (a current-thread tokio runtime),
//! so its CPU time is all of the call's cost.
//!
//! Run with `cargo bench --bench adapters --features tower,macros,tokio`;
//! see reports/BENCHMARKS.md.

mod common;

use common::{transient, Fail};

use std::fmt;
use std::future::{ready, Ready};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use reflexio::{Backoff, ErrorClass, RetryLayer, RetryPolicy, Retryable, ThreadSleeper};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceExt};

/// The CPU time the calling thread has used so far.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the call's duration.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "CLOCK_THREAD_CPUTIME_ID is readable");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Wall time since the first reading, where there is no thread CPU clock.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn thread_cpu_time() -> Duration {
    static START: LazyLock<std::time::Instant> = LazyLock::new(std::time::Instant::now);
    START.elapsed()
}

/// Criterion measurement in CPU time of the benchmarking thread.
struct ThreadCpuTime;

/// Formats nanoseconds of CPU time like criterion formats wall time.
struct CpuTimeFormatter;

impl ValueFormatter for CpuTimeFormatter {
    fn scale_values(&self, typical_ns: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical_ns < 1e3 {
            (1.0, "ns")
        } else if typical_ns < 1e6 {
            (1e-3, "µs")
        } else if typical_ns < 1e9 {
            (1e-6, "ms")
        } else {
            (1e-9, "s")
        };
        for value in values {
            *value *= factor;
        }
        unit
    }

    fn scale_throughputs(
        &self,
        _typical_ns: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let (per_iteration, unit) = match *throughput {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (n as f64, "B/s"),
            Throughput::Bits(n) => (n as f64, "bit/s"),
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => {
                (n as f64, "elem/s")
            }
        };
        for value in values {
            *value = per_iteration * 1e9 / *value;
        }
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_time()
    }

    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time().saturating_sub(start)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuTimeFormatter
    }
}

type Policy = RetryPolicy<fn(&Fail) -> ErrorClass>;

/// No deadline and a zero delay: what is timed is the retry machinery.
static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::ZERO))
        .no_deadline()
        .sleeper(ThreadSleeper::new())
        .classifier(transient as fn(&Fail) -> ErrorClass)
        .build()
        .expect("a valid policy")
});

/// A trivial service: answers its request at once; with `flaky`, every
/// other call fails.
#[derive(Clone)]
struct Echo {
    calls: Arc<AtomicU64>,
    flaky: bool,
}

impl Echo {
    fn new(flaky: bool) -> Self {
        Echo {
            calls: Arc::default(),
            flaky,
        }
    }
}

impl Service<u64> for Echo {
    type Response = u64;
    type Error = Fail;
    type Future = Ready<Result<u64, Fail>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Fail>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: u64) -> Self::Future {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        ready(if self.flaky && n % 2 == 0 {
            Err(Fail)
        } else {
            Ok(black_box(request))
        })
    }
}

/// tower's retry with the least a policy can do: retry every error at
/// once, a copy of the request per attempt, at most one retry.
#[derive(Clone)]
struct RetryOnce {
    left: u32,
}

impl tower::retry::Policy<u64, u64, Fail> for RetryOnce {
    type Future = Ready<()>;

    fn retry(&mut self, _: &mut u64, result: &mut Result<u64, Fail>) -> Option<Self::Future> {
        match result {
            Err(_) if self.left > 0 => {
                self.left -= 1;
                Some(ready(()))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, request: &u64) -> Option<u64> {
        Some(*request)
    }
}

async fn through<S>(service: &mut S, request: u64) -> Result<u64, S::Error>
where
    S: Service<u64, Response = u64>,
{
    service.ready().await?.call(request).await
}

/// Times `iters` calls through `service`, each `ready().await` then
/// `call(..).await`, inside one future on the runtime.
fn bench_service<S>(g: &mut BenchmarkGroup<'_, ThreadCpuTime>, rt: &Runtime, name: &str, service: S)
where
    S: Service<u64, Response = u64> + Clone,
    S::Error: fmt::Debug,
{
    g.bench_function(name, |b| {
        b.to_async(rt).iter_custom(|iters| {
            let mut service = service.clone();
            async move {
                let start = thread_cpu_time();
                for _ in 0..iters {
                    let answer = through(&mut service, 42).await.expect("an answer");
                    black_box(answer);
                }
                thread_cpu_time().saturating_sub(start)
            }
        })
    });
}

fn tower_group(c: &mut Criterion<ThreadCpuTime>, group: &str, flaky: bool) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let mut g = c.benchmark_group(group);
    if !flaky {
        bench_service(&mut g, &rt, "bare", Echo::new(false));
    }
    let theirs = tower::retry::RetryLayer::new(RetryOnce { left: 1 }).layer(Echo::new(flaky));
    bench_service(&mut g, &rt, "tower_retry", theirs);
    let ours = RetryLayer::new(POLICY.clone()).layer(Echo::new(flaky));
    bench_service(&mut g, &rt, "reflexio_layer", ours);
    g.finish();
}

fn tower_success(c: &mut Criterion<ThreadCpuTime>) {
    tower_group(c, "tower_success", false);
}

fn tower_one_retry(c: &mut Criterion<ThreadCpuTime>) {
    tower_group(c, "tower_one_retry", true);
}

#[inline(never)]
fn work() -> Result<u64, Fail> {
    Ok(black_box(42))
}

#[reflexio::retry(policy = POLICY, operation = "work")]
fn work_macro() -> Result<u64, Fail> {
    work()
}

static FLIP: AtomicU64 = AtomicU64::new(0);

/// Fails on every other call, process-wide (so the macro function can
/// share it with the closures).
fn every_other() -> Result<u64, Fail> {
    if FLIP.fetch_add(1, Ordering::Relaxed) % 2 == 0 {
        Err(Fail)
    } else {
        Ok(black_box(42))
    }
}

#[reflexio::retry(policy = POLICY, operation = "work")]
fn every_other_macro() -> Result<u64, Fail> {
    every_other()
}

async fn work_async() -> Result<u64, Fail> {
    work()
}

#[reflexio::retry(policy = POLICY, operation = "work")]
async fn work_async_macro() -> Result<u64, Fail> {
    work()
}

fn sugar(c: &mut Criterion<ThreadCpuTime>) {
    let policy = &*POLICY;
    let mut g = c.benchmark_group("sugar_success");
    g.bench_function("policy_call", |b| {
        b.iter(|| black_box(policy.call_named("work", work)))
    });
    g.bench_function("extension_trait", |b| {
        b.iter(|| black_box(work.retry(policy).operation("work").call()))
    });
    g.bench_function("macro", |b| b.iter(|| black_box(work_macro())));
    g.finish();

    let mut g = c.benchmark_group("sugar_one_retry");
    g.bench_function("policy_call", |b| {
        b.iter(|| black_box(policy.call_named("work", every_other)))
    });
    g.bench_function("extension_trait", |b| {
        b.iter(|| black_box(every_other.retry(policy).operation("work").call()))
    });
    g.bench_function("macro", |b| b.iter(|| black_box(every_other_macro())));
    g.finish();

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let mut g = c.benchmark_group("sugar_async_success");
    g.bench_function("policy_call", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(policy.call_async_named("work", work_async).await) })
    });
    g.bench_function("extension_trait_await", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(work_async.retry(policy).operation("work").await) })
    });
    g.bench_function("extension_trait_call_async", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                work_async
                    .retry(policy)
                    .operation("work")
                    .call_async()
                    .await,
            )
        })
    });
    g.bench_function("macro", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(work_async_macro().await) })
    });
    g.finish();
}

fn config() -> Criterion<ThreadCpuTime> {
    Criterion::default()
        .with_measurement(ThreadCpuTime)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = tower_success, tower_one_retry, sugar
}
criterion_main!(benches);
