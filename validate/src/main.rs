//! `reflexio-validate`: does the simulator tell the truth?
//!
//! Each experiment starts a real service on 127.0.0.1, drives it with the
//! production `RetryPolicy`, records every call and attempt, writes the
//! equivalent scenario (latency fitted from what was measured, the same
//! policy tables), runs the simulator on it, and reports predicted against
//! measured for every policy, with tolerances and plots.
//!
//! ```text
//! reflexio-validate [--smoke] [--experiment all|rate-limit|overload|spike|contention] [--out DIR]
//! ```
//!
//! Exit codes: 0 every target met; 1 a target missed (the report says
//! which and by how much); 2 the harness itself failed.

mod compare;
mod contention;
mod load;
mod measure;
mod overload;
mod rate_limit;
mod spike;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use serde::Serialize;

use compare::Row;
use load::PolicyRun;
use measure::METRICS;
use reflexio_sim::cli::print;
use reflexio_sim::output::{write_file, FileWriter, ReportSet};

/// Holds reflexio-sim's predictions against measurements of real services
/// on loopback.
#[derive(Debug, Parser)]
#[command(name = "reflexio-validate", version)]
struct Cli {
    /// A short run (a few seconds of load per policy) with loose
    /// tolerances (three times the targets; timings reported, not judged),
    /// so that the harness cannot rot; the full run is the default.
    #[arg(long)]
    smoke: bool,
    /// Which experiment to run.
    #[arg(long, value_enum, default_value_t = Which::All)]
    experiment: Which,
    /// Output folder; each experiment's report goes to `DIR/<experiment>/`.
    #[arg(long, default_value = "reports/validation")]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    /// Every experiment, one after the other.
    All,
    /// An HTTP service behind a token-bucket rate limiter.
    RateLimit,
    /// A service whose latency grows with load, and a dependency outage.
    Overload,
    /// The same service under a traffic spike, policies with and without
    /// a retry budget.
    Spike,
    /// One hot row in a real PostgreSQL on this machine (`DATABASE_URL`),
    /// 10 and 50 clients.
    Contention,
}

#[derive(Serialize)]
struct Document<'a> {
    experiment: &'a str,
    command: String,
    smoke: bool,
    calls_per_policy: u64,
    simulator_runs: u32,
    scenario: &'a str,
    rows: &'a [Row],
}

/// What an experiment measured and what the simulator predicted.
struct Outcome {
    name: String,
    /// A paragraph saying what the service and the load were.
    story: String,
    calls: u64,
    sim_runs: u32,
    scenario: String,
    rows: Vec<Row>,
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

/// The folders, under `--out`, of the experiments `which` runs.
fn folders(which: Which) -> &'static [&'static str] {
    match which {
        Which::All => &[
            "rate-limit",
            "overload",
            "spike",
            "contention-10",
            "contention-50",
        ],
        Which::RateLimit => &["rate-limit"],
        Which::Overload => &["overload"],
        Which::Spike => &["spike"],
        Which::Contention => &["contention-10", "contention-50"],
    }
}

/// Whether a file named `name` is one an experiment's report writes.
fn is_report_file(name: &str) -> bool {
    matches!(name, "report.json" | "report.md" | "scenario.toml")
        || METRICS.iter().any(|m| name.strip_prefix(m) == Some(".svg"))
}

/// Whether every experiment's report folder can be written, before the
/// experiments load the machine for minutes.
fn check_out(cli: &Cli) -> Result<(), String> {
    for folder in folders(cli.experiment) {
        // Stage a report and drop it, uncommitted: a folder that cannot
        // be created or written (a read-only file system, no permission)
        // fails here rather than after the measurements. Dropped, the
        // staging folder goes, and any existing report stays as it was.
        let mut write = |_: &Path, _: &[u8]| Ok(());
        ReportSet::begin_with(&cli.out.join(folder), &mut write, is_report_file)?;
    }
    Ok(())
}

/// The database the contention experiment uses, if `which` runs it:
/// `url` (`DATABASE_URL`), checked before any experiment loads the
/// machine, so that `--experiment all` does not fail at its last
/// experiment, minutes in, for want of a setting.
fn database_url(which: Which, url: Option<String>) -> Result<Option<String>, String> {
    if !matches!(which, Which::All | Which::Contention) {
        return Ok(None);
    }
    let url = url.ok_or(
        "the contention experiment needs a PostgreSQL server: set DATABASE_URL, or run it \
         through `scripts/postgres.sh run cargo run --release -p reflexio-validate`, which \
         starts a throwaway one (or choose another --experiment)",
    )?;
    contention::check_url(&url)?;
    Ok(Some(url))
}

fn run(cli: &Cli) -> Result<bool, String> {
    let database = database_url(cli.experiment, std::env::var("DATABASE_URL").ok())?;
    check_out(cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    let loosen = if cli.smoke { 3.0 } else { 1.0 };
    let mut all_met = true;
    if matches!(cli.experiment, Which::All | Which::RateLimit) {
        let outcome = rate_limit_experiment(&runtime, cli.smoke, loosen)?;
        all_met &= finish(cli, &outcome)?;
    }
    if matches!(cli.experiment, Which::All | Which::Overload) {
        let outcome = overload_experiment(&runtime, cli.smoke, loosen)?;
        all_met &= finish(cli, &outcome)?;
    }
    if matches!(cli.experiment, Which::All | Which::Spike) {
        let outcome = spike_experiment(&runtime, cli.smoke, loosen)?;
        all_met &= finish(cli, &outcome)?;
    }
    if let Some(url) = database {
        // One look at the idle server (one client) for both experiments:
        // the scenarios' legs are fitted to it.
        let calibration = if cli.smoke { 200 } else { 1000 };
        let idle = runtime.block_on(contention::measure_idle(&url, calibration))?;
        for clients in [10, 50] {
            let outcome = contention_experiment(&runtime, &url, clients, &idle, cli.smoke, loosen)?;
            all_met &= finish(cli, &outcome)?;
        }
    }
    Ok(all_met)
}

fn compare_all(
    runs: &[PolicyRun],
    report: &reflexio_sim::report::Report,
    loosen: f64,
    sim_runs: u32,
) -> Result<Vec<Row>, String> {
    let summary = report.summary();
    let mut rows = Vec::new();
    for run in runs {
        let Some(predicted) = summary.iter().find(|s| s.policy == run.policy) else {
            return Err(format!(
                "the simulator did not report policy {}",
                run.policy
            ));
        };
        // `PolicySummary::get` answers 0 for a metric it does not have,
        // which a measurement of 0 would then meet: every metric compared
        // must be one the simulator reported.
        for metric in METRICS {
            predicted_stat(predicted, metric)?;
        }
        let lookup = |metric: &str| {
            predicted_stat(predicted, metric).map_or((f64::NAN, f64::NAN), |s| (s.mean, s.stderr))
        };
        rows.extend(compare::rows(
            &run.policy,
            &lookup,
            &run.measured,
            loosen,
            sim_runs,
        ));
    }
    Ok(rows)
}

/// The simulator's figure for `metric` in `summary`, or an error if it
/// reported none.
fn predicted_stat(
    summary: &reflexio_sim::report::PolicySummary,
    metric: &str,
) -> Result<reflexio_sim::report::Stat, String> {
    summary
        .metrics
        .iter()
        .find(|s| s.metric == metric)
        .cloned()
        .ok_or_else(|| {
            format!(
                "the simulator reported no {metric} for policy {}",
                summary.policy
            )
        })
}

fn rate_limit_experiment(
    runtime: &tokio::runtime::Runtime,
    smoke: bool,
    loosen: f64,
) -> Result<Outcome, String> {
    let setup = if smoke {
        rate_limit::Setup::smoke()
    } else {
        rate_limit::Setup::full()
    };
    let started = Instant::now();
    eprintln!(
        "rate-limit: {} calls per policy at {}/s against 127.0.0.1 ...",
        setup.calls, setup.rate
    );
    let runs = runtime.block_on(rate_limit::measure(&setup))?;
    eprintln!(
        "rate-limit: measured in {:.1} s; simulating ...",
        started.elapsed().as_secs_f64()
    );
    let scenario = rate_limit::equivalent_scenario(&setup, &runs)?;
    let report = measure::predict(
        &scenario,
        "rate-limit/scenario.toml",
        setup.seed,
        setup.sim_runs,
    )?;
    let story = format!(
        "An axum service on 127.0.0.1 behind governor's token bucket ({} requests/s, burst {}), \
         answering 429 with `Retry-After` and `Retry-After-Ms`; admitted requests work for a \
         lognormal time (median {} ms, sigma {}) and fail with probability {} (503 or 408). \
         {} Poisson calls per policy at {}/s, through the production `RetryPolicy` built from \
         the policy tables of `sim/scenarios/rate-limit.toml`. The prediction is the mean of {} \
         simulator runs of [`scenario.toml`](scenario.toml): the same file with the latency \
         fitted to the admitted attempts measured, and the clients' `oversleep` (`[client]`) \
         to how late their retry sleeps ended.",
        setup.limit,
        setup.burst,
        setup.work_median.as_millis(),
        setup.work_sigma,
        setup.failure_probability,
        setup.calls,
        setup.rate,
        setup.sim_runs,
    );
    Ok(Outcome {
        name: "rate-limit".to_owned(),
        story,
        calls: setup.calls,
        sim_runs: setup.sim_runs,
        rows: compare_all(&runs, &report, loosen, setup.sim_runs)?,
        scenario,
    })
}

fn overload_experiment(
    runtime: &tokio::runtime::Runtime,
    smoke: bool,
    loosen: f64,
) -> Result<Outcome, String> {
    let setup = if smoke {
        overload::Setup::smoke()
    } else {
        overload::Setup::full()
    };
    let started = Instant::now();
    eprintln!(
        "overload: {} calls per policy at {}/s against 127.0.0.1 ...",
        setup.calls, setup.rate
    );
    let runs = runtime.block_on(overload::measure(&setup))?;
    eprintln!(
        "overload: measured in {:.1} s; simulating ...",
        started.elapsed().as_secs_f64()
    );
    let scenario = overload::equivalent_scenario(&setup, &runs)?;
    let report = measure::predict(
        &scenario,
        "overload/scenario.toml",
        setup.seed,
        setup.sim_runs,
    )?;
    let story = format!(
        "An axum service on 127.0.0.1 whose latency grows with the requests in flight ({}) \
         and a dependency outage from {:?} to {:?} (every request fails). {} Poisson calls per policy at {}/s, a {:?} client timeout \
         per attempt, through the production `RetryPolicy` built from the policy tables of \
         `sim/scenarios/overload.toml`. The prediction is the mean of {} simulator runs of \
         [`scenario.toml`](scenario.toml), with the nominal latency fitted to the successful \
         attempts measured before the outage.",
        setup.model.describe(),
        setup.outage().0,
        setup.outage().1,
        setup.calls,
        setup.rate,
        setup.timeout,
        setup.sim_runs,
    );
    Ok(Outcome {
        name: "overload".to_owned(),
        story,
        calls: setup.calls,
        sim_runs: setup.sim_runs,
        rows: compare_all(&runs, &report, loosen, setup.sim_runs)?,
        scenario,
    })
}

fn spike_experiment(
    runtime: &tokio::runtime::Runtime,
    smoke: bool,
    loosen: f64,
) -> Result<Outcome, String> {
    let setup = if smoke {
        spike::Setup::smoke()
    } else {
        spike::Setup::full()
    };
    let rates: Vec<String> = setup.phases.iter().map(|p| format!("{}", p.rate)).collect();
    let started = Instant::now();
    eprintln!(
        "spike: {} calls per policy at {} calls/s against 127.0.0.1 ...",
        setup.calls,
        rates.join(" → ")
    );
    let runs = runtime.block_on(spike::measure(&setup))?;
    eprintln!(
        "spike: measured in {:.1} s; simulating ...",
        started.elapsed().as_secs_f64()
    );
    let scenario = spike::equivalent_scenario(&setup, &runs)?;
    let report = measure::predict(&scenario, "spike/scenario.toml", setup.seed, setup.sim_runs)?;
    let (from, to) = setup.spike();
    let phases: Vec<String> = setup
        .phases
        .iter()
        .map(|p| match p.length {
            Some(l) => format!("{}/s for {l:?}", p.rate),
            None => format!("{}/s until every call has arrived", p.rate),
        })
        .collect();
    let story = format!(
        "The overload experiment's axum service on 127.0.0.1 ({}), with no outage: the trigger is traffic alone. {} \
         Poisson calls per policy, the rate in phases ({}), so the spike lasts from {from:?} to \
         {to:?}; a {:?} client timeout per attempt. The policies: the five of \
         `sim/scenarios/spike.toml`, and two with a retry budget (the library's `[budget]`: \
         immediate retries under a ratio budget, the defaults under a token bucket), each built \
         with the production `RetryPolicyBuilder::from_config`. The prediction is the mean of {} \
         simulator runs of [`scenario.toml`](scenario.toml): the same phases, the service as an \
         `overload` model, the nominal latency fitted to the successful attempts measured before \
         the spike.",
        setup.model.describe(),
        setup.calls,
        phases.join(", then "),
        setup.timeout,
        setup.sim_runs,
    );
    Ok(Outcome {
        name: "spike".to_owned(),
        story,
        calls: setup.calls,
        sim_runs: setup.sim_runs,
        rows: compare_all(&runs, &report, loosen, setup.sim_runs)?,
        scenario,
    })
}

fn contention_experiment(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    clients: u64,
    idle: &contention::Calibration,
    smoke: bool,
    loosen: f64,
) -> Result<Outcome, String> {
    let setup = if smoke {
        contention::Setup::smoke(clients)
    } else {
        contention::Setup::full(clients)
    };
    let name = format!("contention-{clients}");
    let started = Instant::now();
    eprintln!(
        "{name}: {clients} clients × {} calls per policy on one PostgreSQL row ...",
        setup.calls_per_client
    );
    let measured = runtime.block_on(contention::measure(url, &setup, idle.clone()))?;
    eprintln!(
        "{name}: measured in {:.1} s; simulating ...",
        started.elapsed().as_secs_f64()
    );
    let scenario = contention::equivalent_scenario(&setup, &measured)?;
    let report = measure::predict(
        &scenario,
        &format!("{name}/scenario.toml"),
        setup.seed,
        setup.sim_runs,
    )?;
    let idle = &measured.idle;
    let mut loaded = String::new();
    for (run, trips) in measured.runs.iter().zip(&measured.round_trips) {
        let [first, retry] = contention::first_and_retries(&run.attempts, trips);
        loaded.push_str(&format!(
            "\n| {} | {:.0} | {:.0} | {:.1}% | {} | {:.0} | {:.0} | {:.1}% |",
            run.policy,
            first.read_us,
            first.write_us,
            first.conflict_share() * 100.0,
            retry.count,
            retry.read_us,
            retry.write_us,
            retry.conflict_share() * 100.0,
        ));
    }
    let story = format!(
        "{clients} clients, each with its own connection to a real PostgreSQL on 127.0.0.1, \
         increment one row {} times each, back to back, with an optimistic read-then-write \
         (`SELECT value, version`, then `UPDATE ... WHERE version = $read`, both prepared, so an \
         attempt is two round trips); an update that finds the version changed is a write \
         conflict (`concurrency`), retried by the policy. The final value is checked against \
         the successful calls (no lost update). The prediction is the mean of {} simulator runs \
         of [`scenario.toml`](scenario.toml): a closed loop on the `contention` model with \
         `round_trips = 2` (the version read when the read arrives at the service, written when \
         the write's work ends). The legs' sum is fitted to the round trips of the calls' first \
         attempts below (every policy alike), and a retry's legs (`[latency.retry]`) to the \
         retries' (the median of each policy's median); the split into network legs and the \
         service's work is the idle server's: one client timed {} transactions and {} empty statements \
         (medians: read {:.0} us, write {:.0} us, empty statement {:.0} us). The clients' \
         `oversleep` (`[client]`) is fitted to how late their retry sleeps ended.\n\nThe round \
         trips under this experiment's load (medians, us), of the calls' first attempts and of \
         their retries apart, with the share of each that met a write conflict:\n\n\
         | policy | first: read | first: write | first: conflicts | retries | retry: read | \
         retry: write | retry: conflicts |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |{loaded}",
        setup.calls_per_client,
        setup.sim_runs,
        idle.transactions.len(),
        idle.empty.len(),
        contention::median_us(idle.transactions.iter().map(|t| t.read)),
        contention::median_us(idle.transactions.iter().filter_map(|t| t.write)),
        contention::median_us(idle.empty.iter().copied()),
    );
    Ok(Outcome {
        name,
        story,
        calls: setup.clients * setup.calls_per_client,
        sim_runs: setup.sim_runs,
        rows: compare_all(&measured.runs, &report, loosen, setup.sim_runs)?,
        scenario,
    })
}

/// The command that reproduces the report of the experiment `name`. Both
/// contention reports (`contention-10`, `contention-50`) come from
/// `--experiment contention`, which needs a PostgreSQL server.
fn reproduce_command(smoke: bool, name: &str) -> String {
    let (prefix, experiment) = if name.starts_with("contention-") {
        ("scripts/postgres.sh run ", "contention")
    } else {
        ("", name)
    };
    let smoke = if smoke { " --smoke" } else { "" };
    format!("{prefix}cargo run --release -p reflexio-validate --{smoke} --experiment {experiment}")
}

/// Prints the table, writes the report; returns whether every target was
/// met.
fn finish(cli: &Cli, outcome: &Outcome) -> Result<bool, String> {
    let command = reproduce_command(cli.smoke, &outcome.name);
    let dir = cli.out.join(&outcome.name);
    write_report(&dir, &command, cli.smoke, outcome)?;
    print(
        &mut std::io::stdout(),
        &format!("{}\n\n", compare::markdown(&outcome.rows)),
    )?;
    let missed = outcome
        .rows
        .iter()
        .filter(|r| r.pass == Some(false))
        .count();
    eprintln!(
        "{}: {missed} of {} targets missed; report in {}",
        outcome.name,
        outcome.rows.iter().filter(|r| r.pass.is_some()).count(),
        dir.display()
    );
    Ok(missed == 0)
}

fn write_report(dir: &Path, command: &str, smoke: bool, outcome: &Outcome) -> Result<(), String> {
    write_report_with(dir, command, smoke, outcome, &mut write_file)
}

/// Writes the report into a staging folder that then takes `dir`'s place
/// whole (see `reflexio_sim::output`): a failure leaves the previous
/// report as it was, and a folder holding other files is refused.
fn write_report_with(
    dir: &Path,
    command: &str,
    smoke: bool,
    outcome: &Outcome,
    writer: &mut FileWriter,
) -> Result<(), String> {
    let mut set = ReportSet::begin_with(dir, writer, is_report_file)?;
    let mut write = |name: &str, text: &str| set.write(name, text.as_bytes());
    let doc = Document {
        experiment: &outcome.name,
        command: command.to_owned(),
        smoke,
        calls_per_policy: outcome.calls,
        simulator_runs: outcome.sim_runs,
        scenario: &outcome.scenario,
        rows: &outcome.rows,
    };
    let json = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    write("report.json", &(json + "\n"))?;
    write("scenario.toml", &outcome.scenario)?;
    let mut md = format!("# Validation: {}\n\n{}\n\n", outcome.name, outcome.story);
    md.push_str(&format!("Produced by `{command}`.\n\n"));
    md.push_str("Measured (predicted):\n\n");
    md.push_str(&compare::headline(&outcome.rows));
    // A smoke run loosens the reach as it loosens the tolerances.
    let reach = outcome
        .rows
        .first()
        .map_or(compare::UNSTABLE_REACH, |r| r.unstable_reach);
    md.push_str(&format!(
        "\nEvery metric, with the simulator's standard error and the tolerance. A metric is \
         `unstable` where the simulator's own runs spread wider than its tolerance (their \
         standard deviation, shown, exceeds it): one measurement cannot confirm the prediction \
         to within the tolerance, so it is judged against that spread instead, a miss only \
         beyond {reach} standard deviations of the prediction.\n\n"
    ));
    md.push_str(&compare::markdown(&outcome.rows));
    md.push('\n');
    for metric in METRICS {
        let file = format!("{metric}.svg");
        compare::plot(&outcome.rows, metric, &set.staging().join(&file))?;
        md.push_str(&format!("![{metric}]({file})\n"));
    }
    set.write("report.md", md.as_bytes())?;
    set.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(scenario: &str) -> Outcome {
        Outcome {
            name: "rate-limit".to_owned(),
            story: "A story.".to_owned(),
            calls: 1,
            sim_runs: 1,
            scenario: scenario.to_owned(),
            rows: Vec::new(),
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut all: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        all.sort();
        all
    }

    #[test]
    fn a_report_is_written_whole_or_not_at_all() {
        let root = std::env::temp_dir().join(format!("reflexio-validate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("rate-limit");
        let written = |dir: &Path, scenario: &str, writer: &mut FileWriter| {
            write_report_with(dir, "cmd", true, &outcome(scenario), writer)
        };
        written(&dir, "old", &mut write_file).unwrap();
        let old = std::fs::read_to_string(dir.join("scenario.toml")).unwrap();
        assert_eq!(old, "old");
        // A full disk at the second file: the old report stays whole.
        let mut calls = 0;
        let mut full_disk = move |path: &Path, bytes: &[u8]| {
            calls += 1;
            if calls > 1 {
                return Err(std::io::Error::from_raw_os_error(28));
            }
            write_file(path, bytes)
        };
        assert!(written(&dir, "new", &mut full_disk).is_err());
        assert_eq!(
            std::fs::read_to_string(dir.join("scenario.toml")).unwrap(),
            "old"
        );
        assert_eq!(names(&root), ["rate-limit"], "leftovers");
        // A folder holding a file of the user's is not replaced.
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        let e = written(&dir, "new", &mut write_file).unwrap_err();
        assert!(e.contains("notes.txt"), "{e}");
        assert_eq!(
            std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
            "mine"
        );
        std::fs::remove_file(dir.join("notes.txt")).unwrap();
        written(&dir, "new", &mut write_file).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("scenario.toml")).unwrap(),
            "new"
        );
        assert_eq!(names(&root), ["rate-limit"], "leftovers");
        let _ = std::fs::remove_dir_all(&root);
    }

    /// Standard output whose every write fails as `error` does.
    struct Failing(std::io::ErrorKind);

    impl std::io::Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(self.0))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn standard_output_that_cannot_be_written_is_an_error_not_a_panic() {
        let e = print(&mut Failing(std::io::ErrorKind::StorageFull), "table").unwrap_err();
        assert!(e.contains("cannot write to standard output"), "{e}");
        print(&mut Failing(std::io::ErrorKind::BrokenPipe), "table").unwrap();
        let mut out = Vec::new();
        print(&mut out, "table").unwrap();
        assert_eq!(out, b"table");
    }

    #[test]
    fn a_bad_out_is_refused_before_any_experiment() {
        let root =
            std::env::temp_dir().join(format!("reflexio-validate-out-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let file = root.join("a-file");
        std::fs::write(&file, "").unwrap();
        for (out, which) in [(file.clone(), Which::All), (root.clone(), Which::Spike)] {
            if out == root {
                std::fs::create_dir_all(root.join("spike")).unwrap();
                std::fs::write(root.join("spike/notes.txt"), "mine").unwrap();
            }
            let cli = Cli {
                smoke: true,
                experiment: which,
                out,
            };
            let e = check_out(&cli).unwrap_err();
            assert!(e.contains("a-file") || e.contains("notes.txt"), "{e}");
        }
        let cli = Cli {
            smoke: true,
            experiment: Which::Overload,
            out: root.clone(),
        };
        check_out(&cli).unwrap();
        let _ = std::fs::remove_dir_all(&root);
        // The committed reports are what a run replaces.
        let committed = Cli {
            smoke: false,
            experiment: Which::All,
            out: Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/validation"),
        };
        check_out(&committed).unwrap();
    }

    #[test]
    fn a_metric_the_simulator_did_not_report_is_an_error_not_a_zero() {
        use reflexio_sim::report::{PolicySummary, Stat};

        let summary = PolicySummary {
            policy: "p".to_owned(),
            metrics: vec![Stat {
                metric: "success_rate",
                mean: 0.5,
                std_dev: 0.1,
                stderr: 0.05,
            }],
        };
        assert_eq!(predicted_stat(&summary, "success_rate").unwrap().mean, 0.5);
        let e = predicted_stat(&summary, "finished_at_ms").unwrap_err();
        assert!(
            e.contains("finished_at_ms") && e.contains("policy p"),
            "{e}"
        );
    }

    #[test]
    fn an_out_that_cannot_be_written_is_refused_before_any_experiment() {
        // /proc takes no new folder, not even from root.
        let cli = Cli {
            smoke: true,
            experiment: Which::Spike,
            out: PathBuf::from("/proc/reflexio-validate-out"),
        };
        let e = check_out(&cli).unwrap_err();
        assert!(e.contains("/proc/reflexio-validate-out"), "{e}");
        // A writable one is left as it was: nothing staged stays behind.
        let root =
            std::env::temp_dir().join(format!("reflexio-validate-probe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let cli = Cli {
            smoke: true,
            experiment: Which::All,
            out: root.clone(),
        };
        check_out(&cli).unwrap();
        assert!(names(&root).is_empty(), "{:?}", names(&root));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn the_database_is_checked_before_any_experiment() {
        let local = Some("postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        for which in [Which::RateLimit, Which::Overload, Which::Spike] {
            assert_eq!(database_url(which, None), Ok(None));
        }
        for which in [Which::All, Which::Contention] {
            let e = database_url(which, None).unwrap_err();
            assert!(e.contains("DATABASE_URL"), "{e}");
            let e = database_url(
                which,
                Some("postgres://u:s3cret@db.example.com/x".to_owned()),
            )
            .unwrap_err();
            assert!(
                e.contains("not on this machine") && !e.contains("s3cret"),
                "{e}"
            );
            assert_eq!(database_url(which, local.clone()), Ok(local.clone()));
        }
    }

    #[test]
    fn every_report_names_a_command_that_parses() {
        use clap::Parser;

        for name in [
            "rate-limit",
            "overload",
            "spike",
            "contention-10",
            "contention-50",
        ] {
            for smoke in [false, true] {
                let command = reproduce_command(smoke, name);
                let (_, args) = command.split_once(" -- ").expect("arguments after `--`");
                let argv = std::iter::once("reflexio-validate").chain(args.split(' '));
                let cli = Cli::try_parse_from(argv)
                    .unwrap_or_else(|e| panic!("`{command}` does not parse: {e}"));
                assert_eq!(cli.smoke, smoke);
            }
        }
        assert_eq!(
            reproduce_command(false, "contention-50"),
            "scripts/postgres.sh run cargo run --release -p reflexio-validate -- --experiment contention"
        );
        assert_eq!(
            reproduce_command(true, "spike"),
            "cargo run --release -p reflexio-validate -- --smoke --experiment spike"
        );
    }
}
