//! Turns criterion's results into the tables and plots of
//! reports/BENCHMARKS.md.
//!
//! Reads every `new/estimates.json` (and its `benchmark.json`) under
//! target/criterion, prints Markdown tables of medians and ratios, and
//! draws the scaling plots as SVG into reports/. It measures nothing
//! itself: run the benchmarks first.
//!
//! ```sh
//! cargo bench --bench overhead --bench decision
//! cargo bench -p reflexio-sim --bench simulator
//! cargo run --release -p reflexio-sim --example bench_report
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde_json::Value;

const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (900, 540);
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(127, 127, 127),
];

/// One benchmark's result.
#[derive(Debug, Clone, Copy)]
struct Bench {
    /// Median time per iteration, in nanoseconds.
    median_ns: f64,
    /// Elements per iteration, when the benchmark declared a throughput.
    elements: Option<u64>,
}

impl Bench {
    /// Elements per second at the median.
    fn per_second(&self) -> Option<f64> {
        self.elements.map(|n| n as f64 / (self.median_ns * 1e-9))
    }
}

type Results = BTreeMap<String, Bench>;

/// A plot: draws from the results into an SVG file.
type Plot = fn(&Results, &Path) -> Result<(), String>;

/// A reference curve: its label, its shape and its colour.
type Reference = (&'static str, fn(f64) -> f64, RGBColor);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("sim/ sits in the workspace")
        .to_path_buf()
}

fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Every benchmark under `dir`, by criterion's full id.
fn collect(dir: &Path, out: &mut Results) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            let (Some(bench), Some(estimates)) = (
                read_json(&path.join("benchmark.json")),
                read_json(&path.join("estimates.json")),
            ) else {
                continue;
            };
            let id = bench["full_id"].as_str().unwrap_or_default().to_owned();
            let median_ns = estimates["median"]["point_estimate"]
                .as_f64()
                .unwrap_or(f64::NAN);
            let elements = bench["throughput"]["Elements"].as_u64();
            out.insert(
                id,
                Bench {
                    median_ns,
                    elements,
                },
            );
        } else {
            collect(&path, out);
        }
    }
}

fn get(results: &Results, id: &str) -> Option<Bench> {
    results.get(id).copied()
}

/// A duration in ns, in a readable unit.
fn time(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.2} ns")
    }
}

fn cell(results: &Results, id: &str) -> String {
    get(results, id).map_or("–".into(), |b| time(b.median_ns))
}

/// `a / b` of two medians, as `1.23×`.
fn ratio(results: &Results, a: &str, b: &str) -> String {
    match (get(results, a), get(results, b)) {
        (Some(a), Some(b)) => format!("{:.2}×", a.median_ns / b.median_ns),
        _ => "–".into(),
    }
}

fn print_peer_table(results: &Results) {
    println!("| benchmark | bare | reflexio | backon | backoff | reflexio ÷ backon | reflexio ÷ backoff | reflexio − bare |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (group, bare) in [
        ("success_path", "bare"),
        ("one_retry", "bare_loop"),
        ("async_success", "bare"),
    ] {
        let id = |name: &str| format!("{group}/{name}");
        let overhead = match (get(results, &id("reflexio")), get(results, &id(bare))) {
            (Some(r), Some(b)) => time(r.median_ns - b.median_ns),
            _ => "–".into(),
        };
        println!(
            "| {group} | {} | {} | {} | {} | {} | {} | {overhead} |",
            cell(results, &id(bare)),
            cell(results, &id("reflexio")),
            cell(results, &id("backon")),
            cell(results, &id("backoff")),
            ratio(results, &id("reflexio"), &id("backon")),
            ratio(results, &id("reflexio"), &id("backoff")),
        );
    }
    println!();
    for id in [
        "success_path/clock_read",
        "success_path/reflexio_no_deadline",
        "one_retry/reflexio_seeded",
        "call_state/start",
    ] {
        if let Some(b) = get(results, id) {
            println!("- `{id}`: {}", time(b.median_ns));
        }
    }
    println!();
}

fn print_decision_table(results: &Results) {
    println!("| strategy | no hook | one hook | hook cost |");
    println!("| --- | ---: | ---: | ---: |");
    for kind in [
        "decorrelated_jitter",
        "equal_jitter",
        "token_backoff",
        "full_jitter",
        "exponential",
        "constant",
    ] {
        let a = format!("decision/{kind}/no_hook");
        let b = format!("decision/{kind}/hook");
        let cost = match (get(results, &a), get(results, &b)) {
            (Some(a), Some(b)) => time(b.median_ns - a.median_ns),
            _ => "–".into(),
        };
        println!(
            "| {kind} | {} | {} | {cost} |",
            cell(results, &a),
            cell(results, &b)
        );
    }
    println!();
    println!("| piece | median |");
    println!("| --- | ---: |");
    for id in [
        "classify/classified_error",
        "classify/io_error",
        "classify/type_name",
        "call_rng/thread_rng",
        "call_rng/seeded_stream",
    ] {
        println!("| {id} | {} |", cell(results, id));
    }
    println!();
}

fn print_contention_table(results: &Results) {
    println!("| path | 1 thread, calls/s | 2 threads, calls/s | 2 threads ÷ 1 thread |");
    println!("| --- | ---: | ---: | ---: |");
    for name in [
        "bare",
        "clock_read",
        "success",
        "one_retry",
        "one_retry_seeded",
    ] {
        let one = get(results, &format!("contention/{name}/1")).and_then(|b| b.per_second());
        let two = get(results, &format!("contention/{name}/2")).and_then(|b| b.per_second());
        let fmt = |x: Option<f64>| x.map_or("–".into(), |x| format!("{:.1} M", x / 1e6));
        let speedup = match (one, two) {
            (Some(a), Some(b)) => format!("{:.2}×", b / a),
            _ => "–".into(),
        };
        println!("| {name} | {} | {} | {speedup} |", fmt(one), fmt(two));
    }
    println!();
    println!("| success calls on one thread, another thread retrying | median per call |");
    println!("| --- | ---: |");
    for label in ["unseeded", "seeded"] {
        let id = format!("contention/success_beside_retries/{label}");
        println!("| {label} policy | {} |", cell(results, &id));
    }
    println!();
}

const SIZES: [u64; 4] = [1_000, 10_000, 100_000, 1_000_000];
const MODES: [&str; 3] = ["poisson", "poisson_events", "all_at_once_events"];

fn print_sim_tables(results: &Results) {
    println!("| workload | attempts | median | M attempts/s |");
    println!("| --- | ---: | ---: | ---: |");
    for mode in ["auto", "events"] {
        let id = format!("sim_flaky/{mode}");
        if let Some(b) = get(results, &id) {
            println!(
                "| {id} | {} | {} | {:.2} |",
                b.elements.unwrap_or(0),
                time(b.median_ns),
                b.per_second().unwrap_or(f64::NAN) / 1e6
            );
        }
    }
    println!();
    println!(
        "| mode | calls | attempts | median | M attempts/s | time ÷ previous | n log n predicts |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for mode in MODES {
        let mut previous: Option<(u64, f64)> = None;
        for calls in SIZES {
            let Some(b) = get(results, &format!("sim_scaling/{mode}/{calls}")) else {
                continue;
            };
            let (grow, predicted) = match previous {
                Some((n0, t0)) => {
                    let (n0f, n1f) = (n0 as f64, calls as f64);
                    (
                        format!("{:.2}×", b.median_ns / t0),
                        format!("{:.2}×", n1f * n1f.ln() / (n0f * n0f.ln())),
                    )
                }
                None => ("".into(), "".into()),
            };
            println!(
                "| {mode} | {calls} | {} | {} | {:.2} | {grow} | {predicted} |",
                b.elements.unwrap_or(0),
                time(b.median_ns),
                b.per_second().unwrap_or(f64::NAN) / 1e6
            );
            previous = Some((calls, b.median_ns));
        }
    }
    println!();
}

fn e<T: std::fmt::Debug>(err: T) -> String {
    format!("{err:?}")
}

/// One line with point markers per named series, in palette order.
fn draw_series_lines<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (i, (name, points)) in series.iter().enumerate() {
        let c = PALETTE[i];
        chart
            .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))
            .map_err(e)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], c.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(e)?;
    }
    Ok(())
}

/// The legend box, at `position`.
fn legend<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 15))
        .draw()
        .map_err(e)
}

/// The simulator's run time against the number of calls, log-log, with
/// `n` and `n log n` references through the smallest event-mode point.
fn plot_sim_scaling(results: &Results, path: &Path) -> Result<(), String> {
    let series: Vec<(&str, Vec<(f64, f64)>)> = MODES
        .iter()
        .map(|mode| {
            let points = SIZES
                .iter()
                .filter_map(|&n| {
                    get(results, &format!("sim_scaling/{mode}/{n}"))
                        .map(|b| (n as f64, b.median_ns * 1e-9))
                })
                .collect();
            (*mode, points)
        })
        .collect();
    let all: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, t)| t))
        .collect();
    if all.is_empty() {
        return Err("no sim_scaling results: run the simulator benchmark first".into());
    }
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min) / 2.0;
    let hi = all.iter().copied().fold(0.0, f64::max) * 2.0;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "simulator run time against calls (flaky workload, one policy)",
            (FONT, 20),
        )
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d((5e2f64..2e6f64).log_scale(), (lo..hi).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("calls")
        .y_desc("wall time per run (s)")
        .x_label_formatter(&|x| format!("{x:.0e}"))
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .draw()
        .map_err(e)?;
    draw_series_lines(&mut chart, &series)?;
    // References anchored at the first point of the all-at-once series.
    if let Some(&(n0, t0)) = series.last().and_then(|(_, p)| p.first()) {
        let refs: [Reference; 2] = [
            ("∝ n", |n| n, PALETTE[5]),
            ("∝ n log n", |n| n * n.ln(), PALETTE[4]),
        ];
        for (name, f, c) in refs {
            let line: Vec<(f64, f64)> = SIZES
                .iter()
                .map(|&n| (n as f64, t0 * f(n as f64) / f(n0)))
                .collect();
            chart
                .draw_series(DashedLineSeries::new(line, 6, 4, c.stroke_width(1)))
                .map_err(e)?
                .label(name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], c));
        }
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(e)
}

/// Simulated attempts per second against calls, with the 10 M/s target.
fn plot_sim_throughput(results: &Results, path: &Path) -> Result<(), String> {
    let series: Vec<(&str, Vec<(f64, f64)>)> = MODES
        .iter()
        .map(|mode| {
            let points = SIZES
                .iter()
                .filter_map(|&n| {
                    get(results, &format!("sim_scaling/{mode}/{n}"))
                        .and_then(|b| b.per_second())
                        .map(|r| (n as f64, r / 1e6))
                })
                .collect();
            (*mode, points)
        })
        .collect();
    let top = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, r)| r))
        .fold(10.0, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "simulated attempts per second on one core (flaky workload)",
            (FONT, 20),
        )
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d((5e2f64..2e6f64).log_scale(), 0f64..top)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("calls")
        .y_desc("million attempts per second")
        .x_label_formatter(&|x| format!("{x:.0e}"))
        .draw()
        .map_err(e)?;
    draw_series_lines(&mut chart, &series)?;
    let target = PALETTE[3];
    chart
        .draw_series(DashedLineSeries::new(
            [(5e2, 10.0), (2e6, 10.0)],
            6,
            4,
            target.stroke_width(1),
        ))
        .map_err(e)?
        .label("target: 10 M/s")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], target));
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(e)
}

/// Calls per second of one shared policy on 1 and 2 threads.
fn plot_contention(results: &Results, path: &Path) -> Result<(), String> {
    let names = ["success", "one_retry", "one_retry_seeded", "clock_read"];
    let series: Vec<(&str, Vec<(f64, f64)>)> = names
        .iter()
        .map(|name| {
            let points = [1u32, 2]
                .iter()
                .filter_map(|&t| {
                    get(results, &format!("contention/{name}/{t}"))
                        .and_then(|b| b.per_second())
                        .map(|r| (f64::from(t), r / 1e6))
                })
                .collect();
            (*name, points)
        })
        .collect();
    let top = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, r)| r))
        .fold(1.0, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("one shared policy: calls per second by threads", (FONT, 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0.8f64..2.2f64, 0f64..top)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("threads")
        .y_desc("million calls per second, all threads")
        .x_labels(2)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(e)?;
    draw_series_lines(&mut chart, &series)?;
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(e)
}

fn main() {
    // The embedded font is a valid TrueType file.
    let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let mut results = Results::new();
    collect(&target.join("criterion"), &mut results);
    if results.is_empty() {
        eprintln!(
            "no criterion results under {}: run the benchmarks first",
            target.display()
        );
        std::process::exit(1);
    }
    print_peer_table(&results);
    print_decision_table(&results);
    print_contention_table(&results);
    print_sim_tables(&results);
    let reports = workspace().join("reports");
    let plots: [(&str, Plot); 3] = [
        ("bench-sim-scaling.svg", plot_sim_scaling),
        ("bench-sim-throughput.svg", plot_sim_throughput),
        ("bench-contention.svg", plot_contention),
    ];
    for (file, draw) in plots {
        let path = reports.join(file);
        match draw(&results, &path) {
            Ok(()) => eprintln!("wrote {}", path.display()),
            Err(err) => eprintln!("{file}: {err}"),
        }
    }
}
