//! The cost of one engine decision, and of the pieces around it.
//!
//! * `decision/<kind>/{no_hook,hook}`: one failed attempt handed to
//!   [`Engine::on_failure`], exactly as the blocking driver does it:
//!   classify the error (the default classifier on a [`ClassifiedError`]),
//!   pick the class's strategy, draw the delay from a reused ChaCha8 RNG,
//!   check the envelope (default: 60 s deadline, 6 attempts) and emit the
//!   event, to no hook or to one hook that counts events. The call state is
//!   reset after the fifth retry, so the timings average attempts 1 to 5.
//! * `classify/*`: the default classifier on its main kinds of error.
//! * `call_rng/*`: making the RNG a call needs for its first retry.
//! * `call_state/start`: the per-call state a call builds at its first failure.
//!
//! Run with `cargo bench --bench decision`; see reports/BENCHMARKS.md.

use std::any::type_name;
use std::fmt;
use std::hint::black_box;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reflexio::engine::Failure;
use reflexio::{
    Backoff, BackoffKind, ClassifiedError, Classifier, DefaultClassifier, Engine, Event, Hooks,
    RetryPolicy,
};

fn engine(kind: BackoffKind) -> Engine {
    RetryPolicy::builder()
        .strategy(Backoff::with_defaults(kind))
        .build()
        .expect("a valid policy")
        .engine()
        .clone()
}

fn decision(c: &mut Criterion) {
    let mut g = c.benchmark_group("decision");
    let classifier = DefaultClassifier::new();
    let error = ClassifiedError::transient("connection reset");
    let elapsed = Duration::from_millis(3);
    let events = Arc::new(AtomicU64::new(0));
    let no_hooks = Hooks::new();
    let mut one_hook = Hooks::new();
    {
        let events = Arc::clone(&events);
        one_hook.push(move |_: &Event<'_>| {
            events.fetch_add(1, Ordering::Relaxed);
        });
    }
    for kind in BackoffKind::ALL {
        let engine = engine(kind);
        let fresh = engine.start();
        let max_attempts = engine.envelope().max_attempts;
        for (label, hooks) in [("no_hook", &no_hooks), ("hook", &one_hook)] {
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let mut state = fresh.clone();
            g.bench_function(BenchmarkId::new(kind.name(), label), |b| {
                b.iter(|| {
                    if state.attempt() >= max_attempts {
                        state.clone_from(&fresh);
                    }
                    let failure = Failure {
                        classification: classifier.classify(black_box(&error)),
                        error_type: type_name::<ClassifiedError>(),
                        error: None,
                    };
                    black_box(engine.on_failure(
                        &mut state,
                        "",
                        failure,
                        black_box(elapsed),
                        &mut rng,
                        &mut |e| hooks.emit(e),
                    ))
                })
            });
        }
    }
    g.finish();
    black_box(events.load(Ordering::Relaxed));
}

/// An error the default classifier knows only by its type name.
#[derive(Debug)]
struct UpstreamTimeout;

impl fmt::Display for UpstreamTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("upstream timed out")
    }
}

impl std::error::Error for UpstreamTimeout {}

fn classify(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify");
    let classifier = DefaultClassifier::new();
    let explicit = ClassifiedError::transient("connection reset");
    g.bench_function("classified_error", |b| {
        b.iter(|| black_box(classifier.classify(black_box(&explicit))))
    });
    let io_error = io::Error::from(io::ErrorKind::TimedOut);
    g.bench_function("io_error", |b| {
        b.iter(|| black_box(classifier.classify(black_box(&io_error))))
    });
    let by_name = UpstreamTimeout;
    g.bench_function("type_name", |b| {
        b.iter(|| black_box(classifier.classify(black_box(&by_name))))
    });
    g.finish();
}

fn call_rng(c: &mut Criterion) {
    let mut g = c.benchmark_group("call_rng");
    // What an unseeded policy does at each failure: fetch the thread's RNG.
    g.bench_function("thread_rng", |b| {
        b.iter(|| black_box(rand::rng().next_u64()))
    });
    // What a seeded policy does: one stream per call.
    let mut stream = 0u64;
    g.bench_function("seeded_stream", |b| {
        b.iter(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(black_box(7));
            stream += 1;
            rng.set_stream(stream);
            black_box(rng)
        })
    });
    g.finish();
}

fn call_state(c: &mut Criterion) {
    // Every call, the success path included, starts a call state.
    let engine = engine(BackoffKind::DecorrelatedJitter);
    c.bench_function("call_state/start", |b| {
        b.iter(|| black_box(black_box(&engine).start()))
    });
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
    targets = decision, classify, call_rng, call_state
}
criterion_main!(benches);
