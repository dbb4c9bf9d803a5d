//! Simulator throughput: simulated attempts per second of wall time on one
//! core, and how the time of a run grows with the number of calls.
//!
//! * `sim_flaky`: sim/scenarios/flaky.toml as shipped (5,000 calls, four
//!   policies), every policy run in turn on this thread.
//! * `sim_scaling/<mode>/<calls>`: the flaky workload (its latency and
//!   failure model, its `library-default` policy) with 10^3 to 10^6 calls:
//!   - `poisson`: flaky's Poisson arrivals at 100 calls/s, in the default
//!     mode, which plays each call out whole when it arrives (stateless
//!     failure models allow it), so few calls are ever in flight;
//!   - `poisson_events`: the same, with every attempt queued
//!     ([`Mode::Queued`]: its arrival at the service and the end of the
//!     service's work are events, as for stateful failure models);
//!   - `all_at_once_events`: every call arrives at time zero and all are
//!     in flight at once, so the event queue holds one event per call.
//! * `sim_small_runs`: sim/benches/hot-row.toml end to end on one thread:
//!   parse the file, run its 100 runs of 100 calls at once on one
//!   contended row (read-then-write transactions with network legs) under
//!   five policies, summarise. Small runs are what seed sweeps are made
//!   of, so per-run fixed costs count here.
//!
//! Criterion's throughput is simulated attempts (counted by a first run,
//! which the measured runs repeat exactly: same scenario, same seed).
//!
//! Run with `cargo bench -p reflexio-sim --bench simulator`; see
//! reports/BENCHMARKS.md.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use reflexio_sim::world::{run_many_on, run_policy_with, Mode};
use reflexio_sim::Scenario;

const FLAKY: &str = include_str!("../scenarios/flaky.toml");

/// Runs every policy of `scenario` in turn on this thread; returns the
/// attempts simulated.
fn run_all(scenario: &Scenario, mode: Mode) -> u64 {
    scenario
        .policies
        .iter()
        .map(|policy| {
            run_policy_with(scenario, policy, scenario.seed, mode, &mut |_| {})
                .expect("the run finishes")
                .attempts_total
        })
        .sum()
}

/// The flaky workload with `calls` calls, `all_at_once` arrivals or
/// flaky's own, and only its `library-default` policy.
fn flaky_with(calls: u64, all_at_once: bool) -> Scenario {
    let mut source = FLAKY.replace("calls = 5000", &format!("calls = {calls}"));
    if all_at_once {
        source = source.replace(
            "arrival = \"poisson\"\nrate = 100.0",
            "arrival = \"all_at_once\"",
        );
    }
    let mut scenario = Scenario::from_toml_str(&source, "flaky.toml").expect("a valid scenario");
    assert_eq!(scenario.workload.calls, calls);
    scenario.policies.retain(|p| p.name == "library-default");
    assert_eq!(scenario.policies.len(), 1);
    scenario
}

fn sim_flaky(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/flaky.toml");
    let scenario = Scenario::from_file(&path).expect("flaky.toml loads");
    let attempts = run_all(&scenario, Mode::Auto);
    let mut g = c.benchmark_group("sim_flaky");
    g.throughput(Throughput::Elements(attempts));
    g.bench_function("auto", |b| {
        b.iter(|| black_box(run_all(&scenario, Mode::Auto)))
    });
    g.bench_function("events", |b| {
        b.iter(|| black_box(run_all(&scenario, Mode::Queued)))
    });
    g.finish();
}

fn sim_scaling(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim_scaling");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    let variants = [
        ("poisson", false, Mode::Auto),
        ("poisson_events", false, Mode::Queued),
        ("all_at_once_events", true, Mode::Queued),
    ];
    for (name, all_at_once, mode) in variants {
        for calls in [1_000u64, 10_000, 100_000, 1_000_000] {
            let scenario = flaky_with(calls, all_at_once);
            let attempts = run_all(&scenario, mode);
            g.throughput(Throughput::Elements(attempts));
            g.bench_with_input(BenchmarkId::new(name, calls), &scenario, |b, s| {
                b.iter(|| black_box(run_all(s, mode)))
            });
        }
    }
    g.finish();
}

const HOT_ROW: &str = include_str!("hot-row.toml");

/// Parses hot-row.toml, runs it on this thread and summarises; returns
/// the attempts simulated.
fn small_runs() -> u64 {
    let scenario = Scenario::from_toml_str(HOT_ROW, "hot-row.toml").expect("a valid scenario");
    let report = run_many_on(&scenario, scenario.seed, scenario.runs, 1, &|_, _| {})
        .expect("the runs finish");
    black_box(report.summary());
    report
        .runs
        .iter()
        .flat_map(|r| &r.policies)
        .map(|m| m.attempts_total)
        .sum()
}

fn sim_small_runs(c: &mut Criterion) {
    let attempts = small_runs();
    let mut g = c.benchmark_group("sim_small_runs");
    g.sample_size(10);
    g.throughput(Throughput::Elements(attempts));
    g.bench_function("hot_row", |b| b.iter(small_runs));
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = sim_flaky, sim_scaling, sim_small_runs
}
criterion_main!(benches);
