//! Attempt latency distributions.
//!
//! Each attempt's latency is drawn from its own `(call, attempt)` draws, so
//! it is the same under every policy. Samples are whole nanoseconds.
//!
//! Logarithms, exponentials and sines come from the pure-Rust `libm`, not
//! the platform's math library, so that a seed gives the same samples on
//! every platform (only basic IEEE arithmetic, which is exact everywhere,
//! is left to the hardware).

use std::time::Duration;

use crate::draws::{Draws, LATENCY};

/// The latency of one attempt, before any overload stretches it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Latency {
    /// Always this long.
    Constant(Duration),
    /// Uniform in `[min, max]`.
    Uniform {
        /// Shortest.
        min: Duration,
        /// Longest.
        max: Duration,
    },
    /// Normal, truncated at 0: negative samples are drawn again (up to
    /// eight candidates; if all eight are negative, 0).
    Normal {
        /// Mean.
        mean: Duration,
        /// Standard deviation.
        std_dev: Duration,
    },
    /// Exponential with this mean.
    Exponential {
        /// Mean.
        mean: Duration,
    },
    /// Lognormal: `median × e^(sigma × z)`, `z` standard normal.
    Lognormal {
        /// Median.
        median: Duration,
        /// Shape: the standard deviation of the logarithm.
        sigma: f64,
    },
}

/// Latencies are capped at a day, so that sums of virtual time never
/// overflow.
pub const MAX_LATENCY_NS: u64 = 86_400_000_000_000;

fn ns(d: Duration) -> f64 {
    d.as_nanos() as f64
}

fn to_ns(x: f64) -> u64 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= MAX_LATENCY_NS as f64 {
        MAX_LATENCY_NS
    } else {
        x.round() as u64
    }
}

/// Standard normal pair `k` (0..4) by Box–Muller from draws `2k`, `2k+1`.
fn normal_pair(d: &Draws, k: usize) -> (f64, f64) {
    let u1 = 1.0 - d.unit(LATENCY + 2 * k); // (0, 1]
    let u2 = d.unit(LATENCY + 2 * k + 1);
    let r = (-2.0 * libm::log(u1)).sqrt();
    let theta = std::f64::consts::TAU * u2;
    (r * libm::cos(theta), r * libm::sin(theta))
}

impl Latency {
    /// The latency in nanoseconds for these draws.
    pub fn sample(&self, d: &Draws) -> u64 {
        match *self {
            Latency::Constant(v) => to_ns(ns(v)),
            Latency::Uniform { min, max } => to_ns(ns(min) + d.unit(LATENCY) * (ns(max) - ns(min))),
            Latency::Normal { mean, std_dev } => {
                for k in 0..4 {
                    let (z0, z1) = normal_pair(d, k);
                    for z in [z0, z1] {
                        let x = ns(mean) + ns(std_dev) * z;
                        if x >= 0.0 {
                            return to_ns(x);
                        }
                    }
                }
                0
            }
            Latency::Exponential { mean } => to_ns(-ns(mean) * libm::log(1.0 - d.unit(LATENCY))),
            Latency::Lognormal { median, sigma } => {
                let (z, _) = normal_pair(d, 0);
                to_ns(ns(median) * libm::exp(sigma * z))
            }
        }
    }

    /// The mean latency in nanoseconds (of the untruncated distribution
    /// for the normal), for documentation and sanity checks.
    pub fn mean_ns(&self) -> f64 {
        match *self {
            Latency::Constant(v) => ns(v),
            Latency::Uniform { min, max } => (ns(min) + ns(max)) / 2.0,
            Latency::Normal { mean, .. } => ns(mean),
            Latency::Exponential { mean } => ns(mean),
            Latency::Lognormal { median, sigma } => ns(median) * (sigma * sigma / 2.0).exp(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draws::{stream, STREAM_OUTCOMES};

    fn mean_of(l: Latency) -> f64 {
        let mut rng = stream(3, STREAM_OUTCOMES);
        let n = 20_000;
        let sum: f64 = (0..n)
            .map(|i| l.sample(&Draws::at(&mut rng, i, 1)) as f64)
            .sum();
        sum / n as f64
    }

    #[test]
    fn sample_means_match() {
        let ms = Duration::from_millis;
        for l in [
            Latency::Uniform {
                min: ms(10),
                max: ms(30),
            },
            Latency::Exponential { mean: ms(20) },
            Latency::Normal {
                mean: ms(20),
                std_dev: ms(2),
            },
            Latency::Lognormal {
                median: ms(20),
                sigma: 0.25,
            },
        ] {
            let m = mean_of(l);
            let want = l.mean_ns();
            assert!((m - want).abs() / want < 0.03, "{l:?}: {m} vs {want}");
        }
    }

    #[test]
    fn truncated_normal_is_never_negative() {
        let l = Latency::Normal {
            mean: Duration::ZERO,
            std_dev: Duration::from_millis(5),
        };
        let mut rng = stream(3, STREAM_OUTCOMES);
        let positive = (0..1000)
            .filter(|i| l.sample(&Draws::at(&mut rng, *i, 1)) > 0)
            .count();
        assert!(positive > 990);
    }
}
