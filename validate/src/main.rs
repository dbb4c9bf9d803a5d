//! `reflexio-validate`: does the simulator tell the truth?
//!
//! Each experiment starts a real service on 127.0.0.1, drives it with the
//! production `RetryPolicy`, records every call and attempt, writes the
//! equivalent scenario (latency fitted from what was measured, the same
//! policy tables), runs the simulator on it, and reports predicted against
//! measured for every policy, with tolerances and plots.
//!
//! ```text
//! reflexio-validate [--smoke] [--out DIR]
//! ```
//!
//! Exit codes: 0 every target met; 1 a target missed (the report says
//! which and by how much); 2 the harness itself failed.

mod compare;
mod measure;
mod rate_limit;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use serde::Serialize;

use compare::Row;
use measure::METRICS;

/// Holds reflexio-sim's predictions against measurements of real services
/// on loopback.
#[derive(Debug, Parser)]
#[command(name = "reflexio-validate", version)]
struct Cli {
    /// A short run (3 s of load per policy) with loose tolerances (three
    /// times the targets; the median latency reported, not judged), so
    /// that the harness cannot rot; the full run is the default.
    #[arg(long)]
    smoke: bool,
    /// Output folder; the experiment's report goes to DIR/<experiment>/.
    #[arg(long, default_value = "reports/validation")]
    out: PathBuf,
}

#[derive(Serialize)]
struct Document<'a> {
    experiment: &'a str,
    command: &'a str,
    smoke: bool,
    calls_per_policy: u64,
    simulator_runs: u32,
    scenario: &'a str,
    rows: &'a [Row],
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<bool, String> {
    let setup = if cli.smoke {
        rate_limit::Setup::smoke()
    } else {
        rate_limit::Setup::full()
    };
    let loosen = if cli.smoke { 3.0 } else { 1.0 };
    let started = Instant::now();
    eprintln!(
        "rate-limit: {} calls per policy at {}/s against 127.0.0.1 ...",
        setup.calls, setup.rate
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    let measured = runtime.block_on(rate_limit::measure(&setup))?;
    drop(runtime);
    eprintln!(
        "rate-limit: measured in {:.1} s; simulating ...",
        started.elapsed().as_secs_f64()
    );
    let scenario = rate_limit::equivalent_scenario(&setup, &measured);
    let report = rate_limit::predict(&scenario, setup.seed, setup.sim_runs)?;
    let summary = report.summary();

    let mut rows = Vec::new();
    for run in &measured {
        let Some(predicted) = summary.iter().find(|s| s.policy == run.policy) else {
            return Err(format!(
                "the simulator did not report policy {}",
                run.policy
            ));
        };
        let lookup = |metric: &str| {
            let s = predicted.get(metric);
            (s.mean, s.stderr)
        };
        rows.extend(compare::rows(&run.policy, &lookup, &run.measured, loosen));
    }

    let command = if cli.smoke {
        "cargo run --release -p reflexio-validate -- --smoke"
    } else {
        "cargo run --release -p reflexio-validate"
    };
    write_report(
        &cli.out.join("rate-limit"),
        command,
        &setup,
        &scenario,
        &rows,
        cli.smoke,
    )?;
    let table = compare::markdown(&rows);
    println!("{table}");
    let missed = rows.iter().filter(|r| r.pass == Some(false)).count();
    eprintln!(
        "rate-limit: {missed} of {} targets missed; report in {}",
        rows.iter().filter(|r| r.pass.is_some()).count(),
        cli.out.join("rate-limit").display()
    );
    Ok(missed == 0)
}

fn write_report(
    dir: &Path,
    command: &str,
    setup: &rate_limit::Setup,
    scenario: &str,
    rows: &[Row],
    smoke: bool,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    let doc = Document {
        experiment: "rate-limit",
        command,
        smoke,
        calls_per_policy: setup.calls,
        simulator_runs: setup.sim_runs,
        scenario,
        rows,
    };
    let json = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    write("report.json", &(json + "\n"))?;
    write("scenario.toml", scenario)?;
    let mut md = String::new();
    md.push_str("# Validation: HTTP rate limit\n\n");
    md.push_str(&format!(
        "An axum service on 127.0.0.1 behind governor's token bucket ({} requests/s, burst {}), \
         answering 429 with `Retry-After` and `Retry-After-Ms`; admitted requests work for a \
         lognormal time (median {} ms, sigma {}) and fail with probability {} (503 or 408). \
         {} Poisson calls per policy at {}/s, through the production `RetryPolicy` built from \
         the policy tables of `sim/scenarios/rate-limit.toml`. The prediction is the mean of {} \
         simulator runs of [`scenario.toml`](scenario.toml): the same file with the latency \
         fitted to the admitted attempts measured.\n\n",
        setup.limit,
        setup.burst,
        setup.work_median.as_millis(),
        setup.work_sigma,
        setup.failure_probability,
        setup.calls,
        setup.rate,
        setup.sim_runs,
    ));
    md.push_str(&format!("Produced by `{command}`.\n\n"));
    md.push_str("Measured (predicted):\n\n");
    md.push_str(&compare::headline(rows));
    md.push_str("\nEvery metric, with the simulator's standard error and the tolerance:\n\n");
    md.push_str(&compare::markdown(rows));
    md.push('\n');
    for metric in METRICS {
        let file = format!("{metric}.svg");
        compare::plot(rows, metric, &dir.join(&file))?;
        md.push_str(&format!("![{metric}]({file})\n"));
    }
    write("report.md", &md)
}
