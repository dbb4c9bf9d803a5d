//! The command line: `reflexio-sim --scenario FILE` and `reflexio-sim check FILE`.
//!
//! Exit codes of a run: 0 success; 1 the run found envelope violations; 2
//! bad input (usage, an invalid scenario or policy file, an output that
//! cannot be written) or a run that had to be stopped. Exit codes of
//! `check` (alias `doctor`): 0 no errors, 1 warnings under
//! `--deny-warnings`, 2 errors; see [`crate::doctor`].

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};
use reflexio::config::{format_duration, RetryConfig};
use reflexio::Engine;

use crate::output::{FileWriter, ReportSet};
use crate::report::plots::{self, PlotFormat};
use crate::report::{csv, html, json, markdown, table, Report};
use crate::scenario::{Scenario, ScenarioError, RUNS};

/// Exit code: envelope violations found.
pub const EXIT_VIOLATIONS: i32 = 1;
/// Exit code: bad input.
pub const EXIT_BAD_INPUT: i32 = 2;

/// Simulates retry policies against synthetic failure streams on a virtual
/// clock, and compares them.
///
/// Every policy in a scenario faces the same arrivals and the same random
/// draws for each (call, attempt); every decision comes from the reflexio
/// engine that production code runs. Reports go to reports/NAME/ (NAME the scenario's name):
/// report.json, report.csv, report.md, report.html and plots (and background.csv for a
/// scenario with background workloads). The same scenario and seed
/// give byte-identical reports.
#[derive(Debug, Parser)]
#[command(
    name = "reflexio-sim",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  reflexio-sim --scenario sim/scenarios/rate-limit.toml\n  reflexio-sim --scenario sim/scenarios/overload.toml --runs 20 --format md\n  reflexio-sim check sim/scenarios/rate-limit.toml\n\nExit codes of a run: 0 ok, 1 envelope violations found, 2 bad input or output error, 130 or 143 interrupted by SIGINT or SIGTERM while writing the report (the previous report is left as it was).\nExit codes of `check` (alias `doctor`): 0 no errors (warnings allowed), 1 warnings with --deny-warnings, 2 errors."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// The scenario file (TOML; see sim/README.md for the schema).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,

    /// Seed of every random draw; overrides the scenario's `seed`.
    #[arg(long)]
    seed: Option<u64>,

    /// Repeat the scenario over N derived seeds and report the mean and
    /// standard error of every metric; overrides the scenario's `runs`.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32)
            .range(i64::from(*RUNS.start())..=i64::from(*RUNS.end()))
    )]
    runs: Option<u32>,

    /// Stop with an error once more than N attempts have been simulated
    /// over all runs and policies; overrides the scenario's
    /// `max_simulated_attempts` [default: 1000000000].
    #[arg(long, value_name = "N")]
    max_simulated_attempts: Option<u64>,

    /// Output folder [default: reports/NAME, NAME the scenario's name].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// What to print on standard output. JSON, CSV and Markdown are written
    /// to the output folder whatever this says.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Do not draw plots.
    #[arg(long)]
    no_plots: bool,

    /// Image format of the plots.
    #[arg(long, value_enum, default_value_t = ImageFormat::Svg, value_name = "FORMAT")]
    plot_format: ImageFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lint a scenario or policy file (alias: doctor): print every error
    /// and warning with its file:line:col, then each policy normalised
    /// (every default written out) and its worst-case envelope.
    #[command(
        visible_alias = "doctor",
        after_help = "Warning codes (silence one with --allow CODE or `allow = [\"CODE\"]` in the policy):\n  cap_never_triggers, never_retried_class, deadline_below_first_delay,\n  retry_after_beyond_deadline, attempts_after_deadline, lockstep,\n  decorrelated_saturation, unbounded_unknown\n\nExit codes:\n  0  no errors (warnings allowed)\n  1  warnings, with --deny-warnings\n  2  errors, or the file cannot be read"
    )]
    Check {
        /// A scenario file, or a policy file in the RetryConfig schema.
        file: PathBuf,
        /// `text`: diagnostics on standard error, policies on standard
        /// output; `json`: one JSON document on standard output.
        #[arg(long, value_enum, default_value_t = CheckFormatArg::Text)]
        format: CheckFormatArg,
        /// Exit with code 1 when there are warnings (for CI).
        #[arg(long)]
        deny_warnings: bool,
        /// Silence a warning code (repeatable).
        #[arg(long, value_name = "CODE")]
        allow: Vec<String>,
    },
}

/// Output formats of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CheckFormatArg {
    /// Human-readable.
    Text,
    /// JSON, for tooling.
    Json,
}

/// Formats printed on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned table.
    Table,
    /// The JSON report.
    Json,
    /// The CSV report.
    Csv,
    /// The Markdown summary.
    Md,
}

/// Image formats of the plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImageFormat {
    /// SVG.
    Svg,
    /// PNG.
    Png,
}

/// Runs the command line with `args` (program name first), printing to
/// `out` and `err`; returns the exit code. `progress` enables the progress
/// bar on `err`.
pub fn main_with(
    args: impl IntoIterator<Item = OsString>,
    out: &mut dyn Write,
    err: &mut (dyn Write + Send),
    progress: bool,
) -> i32 {
    let mut writer = crate::output::write_file;
    main_with_writer(args, out, err, progress, &mut writer)
}

/// [`main_with`], writing every report file through `writer` (a seam for
/// tests that make writing fail as a full disk does).
pub fn main_with_writer(
    args: impl IntoIterator<Item = OsString>,
    out: &mut dyn Write,
    err: &mut (dyn Write + Send),
    progress: bool,
    writer: &mut FileWriter,
) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                let _ = write!(err, "{text}");
                return EXIT_BAD_INPUT;
            }
            let _ = write!(out, "{text}");
            return 0;
        }
    };
    let result = match &cli.command {
        Some(Command::Check {
            file,
            format,
            deny_warnings,
            allow,
        }) => crate::doctor::check(
            &crate::doctor::CheckOptions {
                file,
                format: match format {
                    CheckFormatArg::Text => crate::doctor::CheckFormat::Text,
                    CheckFormatArg::Json => crate::doctor::CheckFormat::Json,
                },
                deny_warnings: *deny_warnings,
                allow,
            },
            out,
            err,
        ),
        None => simulate(&cli, out, err, progress, writer),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(err, "error: {}", crate::limits::escape_control(&message));
            EXIT_BAD_INPUT
        }
    }
}

/// The binary's entry point: real arguments and streams; returns the exit
/// code.
pub fn main() -> i32 {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    let progress = std::io::stderr().is_terminal();
    main_with(std::env::args_os(), &mut out, &mut err, progress)
}

fn simulate(
    cli: &Cli,
    out: &mut dyn Write,
    err: &mut (dyn Write + Send),
    progress: bool,
    writer: &mut FileWriter,
) -> Result<i32, String> {
    let Some(path) = &cli.scenario else {
        return Err(
            "no scenario given: use `--scenario FILE` (for example sim/scenarios/rate-limit.toml), or `check FILE`; see --help"
                .to_owned(),
        );
    };
    let (mut scenario, source) =
        Scenario::from_file_with_source(path).map_err(|e| e.to_string())?;
    // The report's notes come from the text read here: the file is not
    // read again after the run.
    let notes = html::leading_comments(&source);
    drop(source);
    for w in &scenario.warnings {
        let _ = writeln!(
            err,
            "warning: {}: {}",
            path.display(),
            crate::limits::escape_control(w)
        );
    }
    let seed = cli.seed.unwrap_or(scenario.seed);
    let runs = cli.runs.unwrap_or(scenario.runs);
    if !RUNS.contains(&runs) {
        return Err(format!(
            "--runs must be between {} and {}",
            RUNS.start(),
            RUNS.end()
        ));
    }
    if let Some(n) = cli.max_simulated_attempts {
        if n == 0 {
            return Err("--max-simulated-attempts must be at least 1".to_owned());
        }
        scenario.max_simulated_attempts = n;
    }
    let dir = cli
        .out
        .clone()
        .unwrap_or_else(|| Path::new("reports").join(&scenario.name));
    // A folder the report cannot replace is known now: say so before the
    // simulation, which may take minutes.
    ReportSet::check(&dir)?;
    let bar = progress_bar(
        progress,
        scenario.workload.calls * u64::from(runs) * scenario.policies.len() as u64,
    );
    let report = crate::world::run_many_observed(&scenario, seed, runs, &|p| {
        let Some(bar) = &bar else { return };
        bar.set_position(p.calls);
        let secs = bar.elapsed().as_secs_f64();
        if secs > 0.0 {
            bar.set_message(format!(
                "{} attempts/s",
                HumanCount((p.attempts as f64 / secs) as u64)
            ));
        }
    })
    .map_err(|e| sim_error(path, cli, &e));
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = report?;

    // The whole set is written into a staging folder and swapped in; an
    // interrupt from here on is noted, and acted on between files.
    crate::output::catch_interrupts()?;
    let interrupted = |err: &mut (dyn Write + Send)| {
        crate::output::interrupted().map(|signal| {
            let _ = writeln!(
                err,
                "error: interrupted by signal {signal}; {} was left as it was",
                dir.display()
            );
            128 + signal
        })
    };
    let mut set = ReportSet::begin(&dir, writer)?;
    let mut plot_files = Vec::new();
    // Each plot is drawn once: the SVG file (when plots are SVG) and the
    // HTML page, which shows the plots inline, share the text.
    let mut svgs = Vec::new();
    if !cli.no_plots {
        for (which, (stem, _)) in plots::PLOTS.iter().enumerate() {
            if let Some(code) = interrupted(err) {
                return Ok(code);
            }
            let svg = plots::svg(&report, which)?;
            if cli.plot_format == ImageFormat::Svg {
                let name = format!("{stem}.{}", PlotFormat::Svg.extension());
                set.write(&name, svg.as_bytes())?;
                plot_files.push(name);
            }
            svgs.push(svg);
        }
        if cli.plot_format == ImageFormat::Png {
            plot_files = plots::write_all(&report, set.staging(), PlotFormat::Png)?;
        }
    }
    let scenario_path = path.to_string_lossy().replace('\\', "/");
    let mut outputs = render_all(&report, Some(&scenario_path), &plot_files);
    outputs.push((
        "report.html".to_owned(),
        html::render_with_plots(&report, Some(&scenario_path), &notes, &svgs),
    ));
    for (name, text) in &outputs {
        if let Some(code) = interrupted(err) {
            return Ok(code);
        }
        set.write(name, text.as_bytes())?;
    }
    if let Some(code) = interrupted(err) {
        return Ok(code);
    }
    set.commit()?;
    if let Some(signal) = crate::output::interrupted() {
        let _ = writeln!(
            err,
            "error: interrupted by signal {signal} after {} was written",
            dir.display()
        );
        return Ok(128 + signal);
    }
    let shown = match cli.format {
        Format::Table => table::render(&report),
        Format::Json => outputs[0].1.clone(),
        Format::Csv => outputs[1].1.clone(),
        Format::Md => outputs[2].1.clone(),
    };
    let printed = print(out, &shown);
    let mut written: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
    written.extend(plot_files.iter().map(String::as_str));
    // One write: standard error is unbuffered, and each piece of a
    // formatted line would be a system call of its own.
    // The folder as given, one slash after it (`--out out/` too).
    let folder = dir.display().to_string();
    let line = format!(
        "wrote {}/ ({})\n",
        folder.trim_end_matches('/'),
        written.join(", ")
    );
    let _ = err.write_all(line.as_bytes());
    printed?;
    if report.violations() > 0 {
        let _ = writeln!(
            err,
            "error: {} envelope violations (listed in the report)",
            report.violations()
        );
        return Ok(EXIT_VIOLATIONS);
    }
    Ok(0)
}

/// Writes `text` to standard output. A write that fails (a full disk) is
/// an error: what was asked for is lost. A reader that stopped reading
/// (`| head`) is not one.
pub fn print(out: &mut dyn Write, text: &str) -> Result<(), String> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write to standard output: {e}"))
        }
        _ => Ok(()),
    }
}

/// A simulation error as a message that names the scenario file and, when
/// the error is about one field, that field and where the file sets it (or
/// the command-line option that overrode it).
fn sim_error(path: &Path, cli: &Cli, e: &crate::world::SimError) -> String {
    let Some(field) = e.field() else {
        return format!("{}: {e}", path.display());
    };
    let option = match field {
        "runs" if cli.runs.is_some() => Some("--runs"),
        "max_simulated_attempts" if cli.max_simulated_attempts.is_some() => {
            Some("--max-simulated-attempts")
        }
        _ => None,
    };
    if let Some(option) = option {
        return format!("{}: `{option}`: {e}", path.display());
    }
    let position = crate::limits::read_text(path, crate::limits::MAX_SCENARIO_BYTES)
        .ok()
        .and_then(|source| {
            reflexio::config::locate(&source, field)
                .map(|span| reflexio::config::line_col(&source, span.start))
        });
    ScenarioError {
        file: path.display().to_string(),
        position,
        path: field.to_owned(),
        message: e.to_string(),
    }
    .to_string()
}

/// The report files: `(name, text)` for JSON, CSV and Markdown, and the
/// background traffic's CSV when the scenario has background workloads.
pub fn render_all(
    report: &Report,
    scenario_path: Option<&str>,
    plots: &[String],
) -> Vec<(String, String)> {
    let mut files = vec![
        ("report.json".to_owned(), json::render(report)),
        ("report.csv".to_owned(), csv::render(report)),
        (
            "report.md".to_owned(),
            markdown::render(report, scenario_path, plots),
        ),
    ];
    if let Some(background) = csv::render_background(report) {
        files.push(("background.csv".to_owned(), background));
    }
    files
}

/// A progress bar on standard error, only when `enabled` (standard error
/// is a terminal): calls done, elapsed time, attempts per second and the
/// time left. Wall-clock time shows here only, never in a report; without
/// a bar the clock is never read.
fn progress_bar(enabled: bool, total: u64) -> Option<ProgressBar> {
    if !enabled {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {percent:>3}% {human_pos}/{human_len} calls · {msg} · ETA {eta}",
    )
    .map(|s| s.progress_chars("#>-"))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message("0 attempts/s");
    Some(bar)
}

/// A worst-case total sleep: `at most <duration>`, or `unbounded`.
fn show(d: std::time::Duration) -> String {
    if d >= std::time::Duration::from_nanos(u64::MAX) {
        "unbounded".to_owned()
    } else {
        format!("at most {}", format_duration(d))
    }
}

/// A policy normalised as TOML under `table` (or at top level), followed
/// by its worst case as comments.
pub fn describe_policy(
    table: &str,
    config: &RetryConfig,
    engine: &Engine,
) -> Result<String, String> {
    let mut normalized = config.normalized().map_err(|e| e.to_string())?;
    // `RetryConfig::normalized` drops class tables that set only
    // `max_attempts`; put those caps back so the output is the whole policy.
    for (name, class) in &config.classes {
        if let Some(cap) = class.max_attempts {
            normalized
                .classes
                .entry(name.clone())
                .or_default()
                .max_attempts = Some(cap);
        }
    }
    let plain = normalized.to_toml_string();
    let body = if table.is_empty() {
        plain
    } else {
        // Nest the document under `[table]`: its own sub-table headers
        // (`[strategy]`, `[classes.x]`) get the same prefix.
        let mut nested = format!("[{table}]\n");
        for line in plain.lines() {
            match line.strip_prefix('[') {
                Some(rest) => nested.push_str(&format!("\n[{table}.{rest}\n")),
                None => {
                    nested.push_str(line);
                    nested.push('\n');
                }
            }
        }
        nested.replace("\n\n\n", "\n\n")
    };
    let wc = engine.worst_case();
    let mut text = body;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "# worst case: at most {} attempt{} per call; {} can start before the deadline\n",
        wc.max_attempts,
        if wc.max_attempts == 1 { "" } else { "s" },
        wc.max_attempts_before_deadline
    ));
    text.push_str(&format!(
        "# worst case: sleep per call {} without server hints, {} with hints at max_retry_after{}\n",
        show(wc.max_total_sleep),
        show(wc.max_total_sleep_with_hints),
        if wc.bounded { "" } else { " (some strategy documents no bounds)" }
    ));
    if let Some(spec) = config.budget_spec().map_err(|e| e.to_string())? {
        text.push_str(&describe_budget(spec, wc.max_attempts));
    }
    Ok(text)
}

/// A number of attempts per call, without needless decimals.
fn per_call(x: f64) -> String {
    let text = format!("{x:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A budget's bound and the steady-state load amplification it guarantees,
/// as comments, beside the per-call worst case of `per_call_max` attempts.
fn describe_budget(spec: reflexio::BudgetSpec, per_call_max: u32) -> String {
    let cap = f64::from(per_call_max);
    let mut text = format!(
        "# budget: {spec}
"
    );
    match spec {
        reflexio::BudgetSpec::Ratio {
            window,
            min_per_sec,
            percent_ppm,
        } => {
            let percent = reflexio::budget::format_ppm_percent(percent_ppm);
            text.push_str(&format!(
                "# budget bound: in any {} window (ten slots of {}), at most {} retries plus {percent}% of the calls started in it
",
                format_duration(window),
                format_duration(window / 10),
                spec.reserve(),
            ));
            text.push_str(&format!(
                "# steady-state worst case: at most {} attempts per call{}, against {} per call without the budget
",
                per_call(spec.amplification().min(cap)),
                if min_per_sec > 0 {
                    format!(" plus {min_per_sec} retries/s whatever the traffic")
                } else {
                    String::new()
                },
                per_call_max,
            ));
        }
        reflexio::BudgetSpec::TokenBucket {
            capacity,
            retry_cost,
            timeout_cost,
            ..
        } => {
            text.push_str(&format!(
                "# budget bound: over any stretch of time, retries (cost {retry_cost}, {timeout_cost} after a transient failure) spend at most {capacity} tokens more than successes refund
",
            ));
            text.push_str(&format!(
                "# steady-state worst case: at most {} attempts per call while retries fail, {} whatever their outcome (a retry that succeeds is refunded), against {} per call without the budget
",
                per_call(spec.amplification_when_failing().min(cap)),
                per_call(spec.amplification().min(cap)),
                per_call_max,
            ));
        }
    }
    text
}
