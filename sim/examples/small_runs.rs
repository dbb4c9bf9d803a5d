//! Small runs end to end on one thread: parses sim/benches/hot-row.toml
//! (or the scenario named), runs it `runs` times over derived seeds (the
//! scenario's `runs`), summarises, and repeats that `REPEAT` times (default
//! 20). Prints simulated attempts per second of wall time. On a shared
//! machine, run it under `perf stat -e task-clock` for CPU time instead.
//!
//! `cargo run --release -p reflexio-sim --example small_runs [SCENARIO] [REPEAT]`

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/benches/hot-row.toml").to_owned());
    let repeat: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let source = std::fs::read_to_string(&path).expect("the scenario file reads");
    let start = Instant::now();
    let mut attempts = 0u64;
    let mut runs = 0u32;
    for _ in 0..repeat {
        let scenario =
            reflexio_sim::Scenario::from_toml_str(&source, &path).expect("a valid scenario");
        runs = scenario.runs;
        let report = reflexio_sim::world::run_many_on(
            &scenario,
            scenario.seed,
            scenario.runs,
            1,
            &|_, _| {},
        )
        .expect("the runs finish");
        let summary = report.summary();
        attempts += report
            .runs
            .iter()
            .flat_map(|r| &r.policies)
            .map(|m| m.attempts_total)
            .sum::<u64>();
        std::hint::black_box(summary);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{repeat} × ({runs} runs): {attempts} attempts in {secs:.3} s wall: {:.2} M attempts/s",
        attempts as f64 / secs / 1e6
    );
}
