//! What the plots mark on the load chart: the windows in which the
//! scenario's failure models act (outages, windowed models, the failing
//! stretches of a trace) and the service's limits (a rate limiter's rate,
//! an overloaded service's capacity), so the reader sees why a curve bends.

use crate::model::{ModelKind, Window};
use crate::scenario::Scenario;

/// A stretch of virtual time to shade.
#[derive(Debug, Clone, PartialEq)]
pub struct Shade {
    /// What happens then, for the legend (shades with the same label
    /// share one legend entry).
    pub label: String,
    /// Start (ms of virtual time).
    pub from_ms: f64,
    /// End (ms); `f64::INFINITY` when it lasts to the end of the run.
    pub until_ms: f64,
}

/// A horizontal line on the load chart, in attempts per second.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// What the line is, for the legend.
    pub label: String,
    /// Attempts per second.
    pub per_s: f64,
}

/// Everything the load chart marks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Marks {
    /// Windows to shade, in model order.
    pub shades: Vec<Shade>,
    /// Lines to draw, in model order.
    pub limits: Vec<Limit>,
}

fn ms(ns: u64) -> f64 {
    if ns == u64::MAX {
        f64::INFINITY
    } else {
        ns as f64 / 1e6
    }
}

/// `12 s`, `1.5 s`, `250 ms`: a point in time for a legend.
fn at(ms: f64) -> String {
    if ms.is_infinite() {
        "end".to_owned()
    } else if ms >= 1000.0 {
        format!("{} s", super::number::trim(ms / 1000.0))
    } else {
        format!("{} ms", super::number::trim(ms))
    }
}

fn span(from: f64, until: f64) -> String {
    if until.is_infinite() {
        format!("from {}", at(from))
    } else {
        format!("{}–{}", at(from), at(until))
    }
}

/// Three significant digits.
fn round3(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(2 - x.log10().floor() as i32);
    (x * scale).round() / scale
}

impl Marks {
    /// The marks of `scenario`'s failure models.
    pub fn of(scenario: &Scenario) -> Marks {
        let mut marks = Marks::default();
        for model in &scenario.failures {
            let w = model.window;
            let (from, until) = (ms(w.from), ms(w.until));
            let windowed = w != Window::ALWAYS;
            let mut shade = |what: &str| {
                if windowed {
                    marks.shades.push(Shade {
                        label: format!("{what} {}", span(from, until)),
                        from_ms: from,
                        until_ms: until,
                    });
                }
            };
            match &model.kind {
                ModelKind::Outage { class, .. } => shade(&format!("outage ({class})")),
                ModelKind::RateLimit { interval, .. } => {
                    shade("rate limit");
                    let per_s = round3(1e9 / *interval as f64);
                    marks.limits.push(Limit {
                        label: format!("rate limit {} tokens/s", super::number::si(per_s)),
                        per_s,
                    });
                }
                ModelKind::Overload { capacity, .. } => {
                    shade("overload model");
                    // The service holds an attempt in flight for its work (the service leg):
                    // a first attempt's; retries with legs of their own
                    // (`[latency.retry]`) may hold it longer or shorter.
                    let latency_s = scenario.latency.service.mean_ns() / 1e9;
                    if latency_s > 0.0 {
                        let per_s = round3(f64::from(*capacity) / latency_s);
                        marks.limits.push(Limit {
                            label: format!(
                                "capacity ≈ {} attempts/s ({capacity} in flight ÷ mean latency)",
                                super::number::si(per_s)
                            ),
                            per_s,
                        });
                    }
                }
                ModelKind::Trace { points } => {
                    // A point's outcome holds until the next point.
                    let mut k = 0;
                    while k < points.len() {
                        if points[k].1.is_none() {
                            k += 1;
                            continue;
                        }
                        let start = points[k].0;
                        while k < points.len() && points[k].1.is_some() {
                            k += 1;
                        }
                        let end = points.get(k).map_or(u64::MAX, |p| p.0);
                        let (f, u) = (ms(start), ms(end));
                        marks.shades.push(Shade {
                            label: "trace: failing stretch".to_owned(),
                            from_ms: f,
                            until_ms: u,
                        });
                    }
                }
                ModelKind::Random { probability, .. } => shade(&format!(
                    "random failures p={}",
                    super::number::trim(*probability)
                )),
                _ => shade("failure model"),
            }
        }
        marks
    }
}
