//! Plots made with plotters: attempts per call, load over time, the CDF of
//! completion latency and total sleep, one series or bar per policy.
//!
//! SVG is the default; PNG is an option. Text is laid out with DejaVu Sans,
//! embedded in the binary (the `dejavu` crate), so plots look the same and
//! are byte-identical on every machine, with no system fonts needed.
//! Plots show the first run.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::Report;
use crate::metrics::PolicyMetrics;
use crate::output::{write_atomic, write_atomic_with};

/// Image formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotFormat {
    /// Scalable vector graphics (default).
    Svg,
    /// Portable network graphics.
    Png,
}

impl PlotFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            PlotFormat::Svg => "svg",
            PlotFormat::Png => "png",
        }
    }
}

const SIZE: (u32, u32) = (900, 540);
const FONT: &str = "sans-serif";

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn register_font() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // The embedded font is a valid TrueType file.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

type Fallible = Result<(), String>;

fn e<T: std::fmt::Debug>(err: T) -> String {
    format!("{err:?}")
}

/// The plots: `(file stem, title)`.
pub const PLOTS: [(&str, &str); 4] = [
    ("attempts", "attempts per call"),
    ("load", "load reaching the service"),
    ("latency-cdf", "completion latency CDF"),
    ("sleep", "total sleep"),
];

fn nice_max(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        1.0
    } else {
        x * 1.05
    }
}

/// A chart with the reports' caption, margin and axis label areas; the
/// y labels get `y_label_area` pixels.
fn frame<'a, 'b, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    y_label_area: u32,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(y_label_area);
    builder
}

fn draw_attempts<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    policies: &[PolicyMetrics],
) -> Fallible {
    let max = policies
        .iter()
        .map(|m| m.attempts_histogram.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let top = policies
        .iter()
        .flat_map(|m| {
            m.attempts_histogram
                .iter()
                .map(move |n| *n as f64 / m.calls.max(1) as f64)
        })
        .fold(0.0, f64::max);
    let mut chart = frame(root, title, 64)
        .build_cartesian_2d(0.5f64..max as f64 + 0.5, 0f64..nice_max(top))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("attempts made by a call")
        .y_desc("share of calls")
        .x_labels(max.min(20))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(e)?;
    for (i, m) in policies.iter().enumerate() {
        let c = color(i);
        let points: Vec<(f64, f64)> = m
            .attempts_histogram
            .iter()
            .enumerate()
            .map(|(a, n)| (a as f64 + 1.0, *n as f64 / m.calls.max(1) as f64))
            .collect();
        policy_line(&mut chart, &m.policy, c, points.clone())?;
        chart
            .draw_series(points.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            .map_err(e)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// One policy's line, in its colour, with its name in the legend.
fn policy_line<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    policy: &str,
    c: RGBColor,
    points: Vec<(f64, f64)>,
) -> Fallible {
    chart
        .draw_series(LineSeries::new(points, c.stroke_width(2)))
        .map_err(e)?
        .label(policy)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    Ok(())
}

fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Fallible {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 14))
        .draw()
        .map_err(e)
}

fn draw_load<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    policies: &[PolicyMetrics],
    bucket_ms: f64,
) -> Fallible {
    let bucket_s = bucket_ms / 1000.0;
    let len = policies
        .iter()
        .map(|m| m.load_per_bucket.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let top = policies
        .iter()
        .flat_map(|m| m.load_per_bucket.iter())
        .copied()
        .max()
        .unwrap_or(0) as f64
        / bucket_s;
    let mut chart = frame(root, title, 72)
        .build_cartesian_2d(0f64..len as f64 * bucket_s, 0f64..nice_max(top))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("virtual time (s)")
        .y_desc("attempts started per second")
        .draw()
        .map_err(e)?;
    for (i, m) in policies.iter().enumerate() {
        let c = color(i);
        // A step line: each bucket's rate holds over the bucket.
        let mut points = Vec::with_capacity(m.load_per_bucket.len() * 2);
        for (b, n) in m.load_per_bucket.iter().enumerate() {
            let rate = *n as f64 / bucket_s;
            points.push((b as f64 * bucket_s, rate));
            points.push(((b + 1) as f64 * bucket_s, rate));
        }
        policy_line(&mut chart, &m.policy, c, points)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

fn draw_cdf<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    policies: &[PolicyMetrics],
) -> Fallible {
    let top = policies
        .iter()
        .flat_map(|m| m.latency_cdf.iter().map(|(x, _)| *x))
        .fold(0.0, f64::max);
    let mut chart = frame(root, title, 64)
        .build_cartesian_2d(0f64..nice_max(top), 0f64..1.0)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("time until a call ends, succeeded or failed (ms)")
        .y_desc("share of calls done")
        .draw()
        .map_err(e)?;
    for (i, m) in policies.iter().enumerate() {
        let c = color(i);
        let mut points = vec![(0.0, 0.0)];
        points.extend(m.latency_cdf.iter().copied());
        policy_line(&mut chart, &m.policy, c, points)?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn draw_sleep<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    policies: &[PolicyMetrics],
) -> Fallible {
    let n = policies.len();
    let top = policies
        .iter()
        .map(|m| m.sleep_total_ms / 1000.0)
        .fold(0.0, f64::max);
    let names: Vec<String> = policies.iter().map(|m| m.policy.clone()).collect();
    let mut chart = frame(root, title, 72)
        .build_cartesian_2d(
            (0..n.saturating_sub(1)).into_segmented(),
            0f64..nice_max(top),
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("policy")
        .y_desc("total sleep over all calls (s)")
        .x_labels(n.max(1))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                names.get(*i).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .draw()
        .map_err(e)?;
    for (i, m) in policies.iter().enumerate() {
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(color(i).filled())
                    .margin(24)
                    .data(std::iter::once((i, m.sleep_total_ms / 1000.0))),
            )
            .map_err(e)?;
    }
    Ok(())
}

fn draw_one<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    which: usize,
    report: &Report,
) -> Fallible {
    root.fill(&WHITE).map_err(e)?;
    // XML allows no control character, not even escaped: write them out.
    let policies: Vec<PolicyMetrics> = report.runs[0]
        .policies
        .iter()
        .map(|m| PolicyMetrics {
            policy: crate::limits::escape_control(&m.policy),
            ..m.clone()
        })
        .collect();
    let policies = &policies;
    let title = format!(
        "{}: {}",
        crate::limits::escape_control(&report.scenario),
        PLOTS[which].1
    );
    match which {
        0 => draw_attempts(&root, &title, policies)?,
        1 => draw_load(&root, &title, policies, report.bucket_ms)?,
        2 => draw_cdf(&root, &title, policies)?,
        _ => draw_sleep(&root, &title, policies)?,
    }
    root.present().map_err(e)
}

/// Renders plot `which` (an index into [`PLOTS`]) as SVG text.
pub fn svg(report: &Report, which: usize) -> Result<String, String> {
    register_font();
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        draw_one(root, which, report)?;
    }
    Ok(text)
}

/// Writes every plot into `dir`; returns the file names written.
pub fn write_all(report: &Report, dir: &Path, format: PlotFormat) -> Result<Vec<String>, String> {
    register_font();
    let mut names = Vec::new();
    for (which, (stem, _)) in PLOTS.iter().enumerate() {
        let name = format!("{stem}.{}", format.extension());
        let path = dir.join(&name);
        match format {
            PlotFormat::Svg => {
                let text = svg(report, which)?;
                write_atomic(&path, text.as_bytes())
                    .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
            }
            PlotFormat::Png => {
                write_atomic_with(&path, |tmp| {
                    // The temporary name ends in `.tmp`; the encoder picks
                    // the format from the extension, so give it `.png`.
                    let png = tmp.with_extension("tmp.png");
                    let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
                    draw_one(root, which, report)?;
                    std::fs::rename(&png, tmp).map_err(|err| err.to_string())
                })
                .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
            }
        }
        names.push(name);
    }
    Ok(names)
}
