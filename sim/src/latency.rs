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

/// A duration in nanoseconds, as `f64`: through `u64` when it fits (the
/// same value, cheaper than through `u128`), else through `u128`.
fn ns(d: Duration) -> f64 {
    match u64::try_from(d.as_nanos()) {
        Ok(n) => n as f64,
        Err(_) => d.as_nanos() as f64,
    }
}

fn to_ns(x: f64) -> u64 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= MAX_LATENCY_NS as f64 {
        MAX_LATENCY_NS
    } else {
        round_ns(x)
    }
}

/// `x.round() as u64`, exactly (halves away from zero, negatives and NaN
/// to 0, saturating), with integer arithmetic: `f64::round` is a library
/// call on x86-64 without SSE4.1, and showed in the simulator's profile.
#[inline]
pub fn round_ns(x: f64) -> u64 {
    if x.is_nan() || x < 0.5 {
        0
    } else if x >= 4_503_599_627_370_496.0 {
        // 2^52 and above: already a whole number (or saturates).
        x as u64
    } else {
        let whole = x as u64;
        // Exact: below 2^52 the fraction is representable. Branch-free,
        // as the fraction is as likely below one half as above.
        whole + u64::from(x - whole as f64 >= 0.5)
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
    use crate::draws::Outcomes;

    fn mean_of(l: Latency) -> f64 {
        let outcomes = Outcomes::new(3);
        let n = 20_000;
        let sum: f64 = (0..n).map(|i| l.sample(&outcomes.at(i, 1)) as f64).sum();
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
    fn round_ns_matches_round() {
        let cases = [
            0.0,
            -0.0,
            -0.7,
            0.49999999999999994,
            0.5,
            1.5,
            2.5,
            2.4999999999999996,
            1e15 + 0.5,
            4_503_599_627_370_495.5,
            4_503_599_627_370_497.0,
            1e300,
            f64::INFINITY,
            f64::NAN,
        ];
        for x in cases {
            assert_eq!(round_ns(x), x.round() as u64, "{x}");
        }
        let outcomes = Outcomes::new(5);
        for i in 0..10_000 {
            let x = outcomes.at(i, 1).unit(0) * 1e12;
            assert_eq!(round_ns(x), x.round() as u64, "{x}");
        }
    }

    #[test]
    fn truncated_normal_is_never_negative() {
        let l = Latency::Normal {
            mean: Duration::ZERO,
            std_dev: Duration::from_millis(5),
        };
        let outcomes = Outcomes::new(3);
        let positive = (0..1000)
            .filter(|i| l.sample(&outcomes.at(*i, 1)) > 0)
            .count();
        assert!(positive > 990);
    }
}
