//! Plots made with plotters: attempts per call (grouped bars), load over
//! time (with the scenario's failure windows shaded and its rate limit or
//! capacity drawn), the CDF of completion latency (log time axis when the
//! latencies spread over more than a decade and a half) and total sleep.
//!
//! Series are told apart by colour (the Okabe–Ito palette, readable with
//! the common colour-vision deficiencies), by dash pattern and by marker
//! shape, so one line hidden under another still shows its markers.
//!
//! SVG is the default; PNG is an option. Text is measured and drawn with
//! DejaVu Sans, embedded in the binary (the `dejavu` crate): in SVG every
//! label is drawn as glyph outlines (see [`outline`]), so
//! no font is needed to view it and it looks the same in every viewer.
//! Same scenario and seed, same bytes, on every machine. Plots show the
//! first run.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::ranged1d::Ranged;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::marks::Marks;
use super::outline::{self, OutlinedSvg, Texts};
use super::{number, Report};
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

/// The Okabe–Ito palette, yellow last (it is faint on white).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(230, 159, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Dash and gap lengths (pixels) of series `i`; `None` is a solid line.
fn dash(i: usize) -> Option<(u32, u32)> {
    [
        None,
        Some((10, 5)),
        Some((3, 4)),
        Some((18, 5)),
        Some((6, 3)),
    ][i % 5]
}

/// The marker of series `i`, as a polygon around (0, 0) in pixels:
/// circle, triangle, square, diamond, downward triangle, ...
fn marker(i: usize) -> Vec<(i32, i32)> {
    match i % 6 {
        0 => vec![
            (2, -5),
            (5, -2),
            (5, 2),
            (2, 5),
            (-2, 5),
            (-5, 2),
            (-5, -2),
            (-2, -5),
        ],
        1 => vec![(0, -6), (6, 5), (-6, 5)],
        2 => vec![(-4, -4), (4, -4), (4, 4), (-4, 4)],
        3 => vec![(0, -6), (6, 0), (0, 6), (-6, 0)],
        4 => vec![(0, 6), (6, -5), (-6, -5)],
        _ => vec![
            (-2, -6),
            (2, -6),
            (2, -2),
            (6, -2),
            (6, 2),
            (2, 2),
            (2, 6),
            (-2, 6),
            (-2, 2),
            (-6, 2),
            (-6, -2),
            (-2, -2),
        ],
    }
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

/// Spread (largest over smallest positive value) above which a time or
/// share axis is logarithmic.
pub const LOG_SPREAD: f64 = 30.0;

fn nice_max(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        1.0
    } else {
        x * 1.08
    }
}

/// Whether `x` is 1, 2 or 5 times a power of ten: the values labelled on
/// a log axis.
fn is_round(x: f64) -> bool {
    if x <= 0.0 || !x.is_finite() {
        return false;
    }
    let mantissa = x / 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|m| (mantissa - m).abs() < 1e-6)
}

/// A duration in ms as a tick label: `250 ms`, `1 s`, `1.5 min`, `2 h`.
fn time_tick(ms: f64) -> String {
    let (per, unit) = number::ms_unit(ms);
    format!("{} {unit}", number::trim(ms / per))
}

/// A share as a tick label: `25%`, `0.1%`.
fn share_tick(x: f64) -> String {
    format!("{}%", number::trim(x * 100.0))
}

/// A chart with the reports' margin and axis label areas; the y labels
/// get `y_label_area` pixels. The caption and the legend are drawn above
/// it by [`draw_one`], so the legend never hides data.
fn frame<'a, 'b, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    y_label_area: u32,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(12)
        .margin_top(4)
        .x_label_area_size(48)
        .y_label_area_size(y_label_area);
    builder
}

/// Tick labels and axis descriptions.
const TICKS: (&str, u32) = (FONT, 14);
const AXIS: (&str, u32) = (FONT, 15);

/// What a legend entry shows next to its label.
#[derive(Debug, Clone, Copy)]
enum Key {
    /// Series `i`'s line, dashes and marker.
    Series(usize),
    /// A filled box (bars, shaded windows).
    Fill(RGBAColor),
    /// A black dashed line (a limit).
    Limit,
}

const KEY_WIDTH: i32 = 30;
const ROW_HEIGHT: i32 = 22;

/// Lays legend entries out in rows across `width` pixels: their
/// positions `(x, y)` of each key's left middle, and the height needed.
fn legend_layout<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, Key)],
) -> (Vec<(i32, i32)>, u32) {
    let width = area.dim_in_pixel().0 as i32;
    let style = TextStyle::from((FONT, 15).into_font());
    let (mut x, mut y) = (70, ROW_HEIGHT / 2 + 2);
    let mut places = Vec::new();
    for (label, _) in entries {
        let text = area
            .estimate_text_size(label, &style)
            .map_or(8 * label.len() as i32, |(w, _)| w as i32);
        let needed = KEY_WIDTH + 8 + text + 26;
        if x + needed > width - 12 && x > 70 {
            x = 70;
            y += ROW_HEIGHT;
        }
        places.push((x, y));
        x += needed;
    }
    let height = if entries.is_empty() {
        0
    } else {
        (y + ROW_HEIGHT / 2 + 4) as u32
    };
    (places, height)
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, Key)],
    places: &[(i32, i32)],
) -> Fallible {
    let style = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for ((label, key), (x, y)) in entries.iter().zip(places) {
        let (x, y) = (*x, *y);
        match *key {
            Key::Series(i) => {
                let c = color(i);
                let (on, off) = dash(i).unwrap_or((KEY_WIDTH as u32, 1));
                area.draw(&DashedPathElement::new(
                    vec![(x, y), (x + KEY_WIDTH, y)],
                    on,
                    off,
                    c.stroke_width(2),
                ))
                .map_err(e)?;
                area.draw(&Polygon::new(
                    marker(i)
                        .into_iter()
                        .map(|(a, b)| (x + KEY_WIDTH / 2 + a, y + b))
                        .collect::<Vec<_>>(),
                    c.filled(),
                ))
                .map_err(e)?;
            }
            Key::Fill(fill) => {
                area.draw(&Rectangle::new(
                    [(x, y - 7), (x + KEY_WIDTH, y + 7)],
                    fill.filled(),
                ))
                .map_err(e)?;
            }
            Key::Limit => {
                area.draw(&PathElement::new(
                    vec![(x, y), (x + 12, y)],
                    BLACK.stroke_width(2),
                ))
                .map_err(e)?;
                area.draw(&PathElement::new(
                    vec![(x + 18, y), (x + KEY_WIDTH, y)],
                    BLACK.stroke_width(2),
                ))
                .map_err(e)?;
            }
        }
        area.draw(&Text::new(
            label.clone(),
            (x + KEY_WIDTH + 8, y),
            style.clone(),
        ))
        .map_err(e)?;
    }
    Ok(())
}

/// The legend entries of plot `which`.
fn legend_entries(which: usize, policies: &[PolicyMetrics], marks: &Marks) -> Vec<(String, Key)> {
    match which {
        0 => policies
            .iter()
            .enumerate()
            .map(|(i, m)| (m.policy.clone(), Key::Fill(color(i).to_rgba())))
            .collect(),
        1 => {
            let mut entries: Vec<(String, Key)> = Vec::new();
            for shade in &marks.shades {
                if !entries.iter().any(|(l, _)| *l == shade.label) {
                    let k = entries.len();
                    entries.push((shade.label.clone(), Key::Fill(SHADES[k % SHADES.len()])));
                }
            }
            for limit in &marks.limits {
                entries.push((limit.label.clone(), Key::Limit));
            }
            // With background workloads, each line is the service's whole
            // load beside the policy.
            let with = if has_background(policies) {
                " + background"
            } else {
                ""
            };
            entries.extend(
                policies
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (format!("{}{with}", m.policy), Key::Series(i))),
            );
            entries
        }
        2 => policies
            .iter()
            .enumerate()
            .map(|(i, m)| (m.policy.clone(), Key::Series(i)))
            .collect(),
        _ => Vec::new(),
    }
}

/// One policy's series: a line in its colour and dash pattern, with its
/// marker at every `every`-th point (shifted by the series index so that
/// markers of overlapping series do not sit on each other).
fn policy_series<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    i: usize,
    points: Vec<(f64, f64)>,
    every: usize,
) -> Fallible
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let c = color(i);
    let style = c.stroke_width(2);
    match dash(i) {
        None => {
            chart
                .draw_series(LineSeries::new(points.clone(), style))
                .map_err(e)?;
        }
        Some((on, off)) => {
            chart
                .draw_series(DashedLineSeries::new(points.clone(), on, off, style))
                .map_err(e)?;
        }
    }
    let every = every.max(1);
    let shape = marker(i);
    let marks = points
        .iter()
        .skip((i * every / 3) % every)
        .step_by(every)
        .map(|p| EmptyElement::at(*p) + Polygon::new(shape.clone(), c.filled()))
        .collect::<Vec<_>>();
    chart.draw_series(marks).map_err(e)?;
    Ok(())
}

fn draw_attempts<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    policies: &[PolicyMetrics],
) -> Fallible {
    let max = policies
        .iter()
        .map(|m| m.attempts_histogram.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let shares: Vec<Vec<f64>> = policies
        .iter()
        .map(|m| {
            m.attempts_histogram
                .iter()
                .map(|n| *n as f64 / m.calls.max(1) as f64)
                .collect()
        })
        .collect();
    let top = shares.iter().flatten().copied().fold(0.0, f64::max);
    let low = shares
        .iter()
        .flatten()
        .copied()
        .filter(|x| *x > 0.0)
        .fold(f64::INFINITY, f64::min);
    let x_range = 0.5f64..max as f64 + 0.5;
    let n = policies.len().max(1) as f64;
    let bars = |i: usize, a: usize, share: f64, floor: f64| {
        let width = 0.84 / n;
        let x0 = a as f64 + 1.0 - 0.42 + i as f64 * width;
        Rectangle::new(
            [(x0 + width * 0.06, floor), (x0 + width * 0.94, share)],
            color(i).filled(),
        )
    };
    let labels = max.min(20);
    if low.is_finite() && top / low > LOG_SPREAD {
        let floor = 10f64.powf(low.log10().floor());
        let mut chart = frame(root, 64)
            .build_cartesian_2d(x_range, (floor..1.0).log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .label_style(TICKS)
            .axis_desc_style(AXIS)
            .label_style(TICKS)
            .axis_desc_style(AXIS)
            .disable_x_mesh()
            .x_desc("attempts made by a call")
            .y_desc("share of calls (log scale)")
            .x_labels(labels)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| {
                if is_round(*y) {
                    share_tick(*y)
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(e)?;
        for (i, policy) in shares.iter().enumerate() {
            chart
                .draw_series(
                    policy
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| **s > 0.0)
                        .map(|(a, s)| bars(i, a, *s, floor)),
                )
                .map_err(e)?;
        }
        Ok(())
    } else {
        let mut chart = frame(root, 64)
            .build_cartesian_2d(x_range, 0f64..nice_max(top))
            .map_err(e)?;
        chart
            .configure_mesh()
            .label_style(TICKS)
            .axis_desc_style(AXIS)
            .label_style(TICKS)
            .axis_desc_style(AXIS)
            .disable_x_mesh()
            .x_desc("attempts made by a call")
            .y_desc("share of calls")
            .x_labels(labels)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| share_tick(*y))
            .draw()
            .map_err(e)?;
        for (i, policy) in shares.iter().enumerate() {
            chart
                .draw_series(
                    policy
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| **s > 0.0)
                        .map(|(a, s)| bars(i, a, *s, 0.0)),
                )
                .map_err(e)?;
        }
        Ok(())
    }
}

/// Fills of shaded windows, one per distinct label.
const SHADES: [RGBAColor; 3] = [
    RGBAColor(0, 0, 0, 0.10),
    RGBAColor(230, 159, 0, 0.20),
    RGBAColor(86, 180, 233, 0.20),
];

/// Whether the run had background workloads beside its policies.
fn has_background(policies: &[PolicyMetrics]) -> bool {
    policies.iter().any(|m| !m.background.is_empty())
}

/// The load plot: per policy, the attempts reaching the service per
/// second: its calls' and, with background workloads, theirs beside it
/// (the load the service's capacity and rate limits are drawn against).
fn draw_load<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    policies: &[PolicyMetrics],
    bucket_ms: f64,
    marks: &Marks,
) -> Fallible {
    let bucket_s = bucket_ms / 1000.0;
    let background = has_background(policies);
    let loads: Vec<Vec<u64>> = policies
        .iter()
        .map(PolicyMetrics::service_load_per_bucket)
        .collect();
    let len = loads.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let top = loads.iter().flatten().copied().max().unwrap_or(0) as f64 / bucket_s;
    let end_s = len as f64 * bucket_s;
    let limit_top = marks.limits.iter().map(|l| l.per_s).fold(0.0, f64::max);
    let y_top = nice_max(top.max(limit_top));
    let mut chart = frame(root, 72)
        .build_cartesian_2d(0f64..end_s, 0f64..y_top)
        .map_err(e)?;
    chart
        .configure_mesh()
        .label_style(TICKS)
        .axis_desc_style(AXIS)
        .x_desc("virtual time (s)")
        .y_desc(if background {
            "attempts started per second, background included"
        } else {
            "attempts started per second"
        })
        .x_label_formatter(&|x| number::si(*x))
        .y_label_formatter(&|y| number::si(*y))
        .draw()
        .map_err(e)?;
    // Failure windows under the series, one fill per kind.
    let mut kinds: Vec<&str> = Vec::new();
    for shade in &marks.shades {
        let k = match kinds.iter().position(|k| *k == shade.label) {
            Some(k) => k,
            None => {
                kinds.push(&shade.label);
                kinds.len() - 1
            }
        };
        let from = (shade.from_ms / 1000.0).clamp(0.0, end_s);
        let until = (shade.until_ms / 1000.0).clamp(0.0, end_s);
        if until <= from {
            continue;
        }
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(from, 0.0), (until, y_top)],
                SHADES[k % SHADES.len()].filled(),
            )))
            .map_err(e)?;
    }
    for limit in &marks.limits {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, limit.per_s), (end_s, limit.per_s)],
                12,
                6,
                BLACK.stroke_width(2),
            ))
            .map_err(e)?;
    }
    for (i, load) in loads.iter().enumerate() {
        // A step line: each bucket's rate holds over the bucket.
        let mut points = Vec::with_capacity(load.len() * 2);
        for (b, n) in load.iter().enumerate() {
            let rate = *n as f64 / bucket_s;
            points.push((b as f64 * bucket_s, rate));
            points.push(((b + 1) as f64 * bucket_s, rate));
        }
        // Markers mid-bucket, about a dozen along the line.
        let every = (len / 12).max(1) * 2;
        policy_series(&mut chart, i, points, every)?;
    }
    Ok(())
}

fn draw_cdf<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    policies: &[PolicyMetrics],
) -> Fallible {
    let xs = || {
        policies
            .iter()
            .flat_map(|m| m.latency_cdf.iter().map(|(x, _)| *x))
    };
    let top = xs().fold(0.0, f64::max);
    let low = xs().filter(|x| *x > 0.0).fold(f64::INFINITY, f64::min);
    let series = |floor: f64| -> Vec<Vec<(f64, f64)>> {
        policies
            .iter()
            .map(|m| {
                let mut points = vec![(floor, 0.0)];
                points.extend(m.latency_cdf.iter().map(|(x, p)| (x.max(floor), *p)));
                points
            })
            .collect()
    };
    if low.is_finite() && top / low > LOG_SPREAD {
        let floor = 10f64.powf(low.log10().floor());
        let ceiling = top * 1.15;
        let mut chart = frame(root, 64)
            .build_cartesian_2d((floor..ceiling).log_scale(), 0f64..1.0)
            .map_err(e)?;
        chart
            .configure_mesh()
            .label_style(TICKS)
            .axis_desc_style(AXIS)
            .label_style(TICKS)
            .axis_desc_style(AXIS)
            .x_desc("time until a call ends, succeeded or failed (log scale)")
            .y_desc("share of calls done")
            .x_label_formatter(&|x| {
                if is_round(*x) {
                    time_tick(*x)
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| share_tick(*y))
            .draw()
            .map_err(e)?;
        for (i, points) in series(floor).into_iter().enumerate() {
            policy_series(&mut chart, i, points, 20)?;
        }
        Ok(())
    } else {
        let mut chart = frame(root, 64)
            .build_cartesian_2d(0f64..nice_max(top), 0f64..1.0)
            .map_err(e)?;
        chart
            .configure_mesh()
            .label_style(TICKS)
            .axis_desc_style(AXIS)
            .label_style(TICKS)
            .axis_desc_style(AXIS)
            .x_desc("time until a call ends, succeeded or failed")
            .y_desc("share of calls done")
            .x_label_formatter(&|x| time_tick(*x))
            .y_label_formatter(&|y| share_tick(*y))
            .draw()
            .map_err(e)?;
        for (i, points) in series(0.0).into_iter().enumerate() {
            policy_series(&mut chart, i, points, 20)?;
        }
        Ok(())
    }
}

fn draw_sleep<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    policies: &[PolicyMetrics],
) -> Fallible {
    let n = policies.len();
    let top_ms = policies
        .iter()
        .map(|m| m.sleep_total_ms)
        .fold(0.0, f64::max);
    let (per, unit) = number::ms_unit(top_ms);
    let names: Vec<String> = policies.iter().map(|m| m.policy.clone()).collect();
    let mut chart = frame(root, 72)
        .build_cartesian_2d(
            (0..n.saturating_sub(1)).into_segmented(),
            0f64..nice_max(top_ms / per),
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .label_style(TICKS)
        .axis_desc_style(AXIS)
        .disable_x_mesh()
        .x_desc("policy")
        .y_desc(format!("total sleep over all calls ({unit})"))
        .x_labels(n.max(1))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                names.get(*i).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .y_label_formatter(&|y| number::si(*y))
        .draw()
        .map_err(e)?;
    for (i, m) in policies.iter().enumerate() {
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(color(i).filled())
                    .margin(24)
                    .data(std::iter::once((i, m.sleep_total_ms / per))),
            )
            .map_err(e)?;
    }
    // Each bar's value above it.
    let style = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    chart
        .draw_series(policies.iter().enumerate().map(|(i, m)| {
            Text::new(
                number::human_ms(m.sleep_total_ms),
                (SegmentValue::CenterOf(i), m.sleep_total_ms / per),
                style.clone(),
            )
        }))
        .map_err(e)?;
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
    let area = root
        .margin(10, 0, 0, 0)
        .titled(&title, (FONT, 22))
        .map_err(e)?;
    let entries = legend_entries(which, policies, &report.marks);
    let (places, height) = legend_layout(&area, &entries);
    let (strip, area) = area.split_vertically(height);
    draw_legend(&strip, &entries, &places)?;
    match which {
        0 => draw_attempts(&area, policies)?,
        1 => draw_load(&area, policies, report.bucket_ms, &report.marks)?,
        2 => draw_cdf(&area, policies)?,
        _ => draw_sleep(&area, policies)?,
    }
    root.present().map_err(e)
}

/// Renders plot `which` (an index into [`PLOTS`]) as SVG text, its text
/// drawn as glyph outlines whose ids start with the plot's file stem.
pub fn svg(report: &Report, which: usize) -> Result<String, String> {
    register_font();
    let mut text = String::new();
    let texts = Texts::default();
    {
        let root = OutlinedSvg::new(&mut text, SIZE, &texts).into_drawing_area();
        draw_one(root, which, report)?;
    }
    Ok(outline::finish(&text, &texts, PLOTS[which].0))
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
