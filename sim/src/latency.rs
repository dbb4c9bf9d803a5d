//! Attempt latency: distributions, and the anatomy of an attempt.
//!
//! An attempt crosses legs: a `request` from the client to the service, the
//! `service`'s own work, and a `response` back to the client; a transaction
//! of several round trips crosses them once per round trip ([`Anatomy`]).
//! Each leg is one [`Latency`] distribution, drawn from its own
//! `(call, attempt, leg)` draws ([`Draws::leg`]), so it is the same under
//! every policy. Samples are whole nanoseconds.
//!
//! Exponentials and sines come from the pure-Rust `libm`, and logarithms
//! from the crate's own `ln` (basic arithmetic and a table), not the platform's
//! math library, so that a seed gives the same samples on every platform
//! (only basic IEEE arithmetic, which is exact everywhere, is left to the
//! hardware).

use std::time::Duration;

use crate::draws::{Draws, LATENCY};

/// The most round trips one attempt may make.
pub const MAX_ROUND_TRIPS: u32 = 16;

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

/// `x` rounded to whole nanoseconds (as [`round_ns`]), between 0 and
/// [`MAX_LATENCY_NS`]; NaN to 0.
#[inline(always)]
fn to_ns(x: f64) -> u64 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= MAX_LATENCY_NS as f64 {
        MAX_LATENCY_NS
    } else {
        // 0 < x < 2^47: `round_ns`'s own path for such values, without
        // its checks.
        round_below_2_52(x)
    }
}

/// `x` rounded to the nearest whole number, halves up, for `0 <= x < 2^52`.
#[inline(always)]
fn round_below_2_52(x: f64) -> u64 {
    debug_assert!((0.0..4_503_599_627_370_496.0).contains(&x));
    // SAFETY: `x` is finite and in `[0, 2^52)`, so its whole part fits an
    // `i64`. One truncating conversion instruction, where `as` adds the
    // checks for NaN and out-of-range values that cannot occur here.
    let whole = unsafe { x.to_int_unchecked::<i64>() };
    // Exact: below 2^52 the fraction is representable. Branch-free, as
    // the fraction is as likely below one half as above.
    (whole + i64::from(x - whole as f64 >= 0.5)) as u64
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
        // Through i64 (exact below 2^52): one conversion instruction each
        // way instead of the unsigned sequences.
        round_below_2_52(x)
    }
}

/// Standard normal pair `k` (0..4) by Box–Muller from draws `2k`, `2k+1`.
fn normal_pair(d: &Draws, k: usize) -> (f64, f64) {
    // ln(u1) for u1 = 1 - d.unit(LATENCY + 2k), in (0, 1].
    let ln_u1 = crate::ln::ln_one_minus_unit(d.raw(LATENCY + 2 * k));
    let u2 = d.unit(LATENCY + 2 * k + 1);
    let r = (-2.0 * ln_u1).sqrt();
    let theta = std::f64::consts::TAU * u2;
    (r * libm::cos(theta), r * libm::sin(theta))
}

/// A distribution with its parameters in nanoseconds as `f64`, converted
/// once: sampling then does no `Duration` arithmetic. The arithmetic is
/// exactly [`Latency::sample`]'s, which it implements.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sampler {
    Constant(u64),
    Uniform {
        min: f64,
        span: f64,
    },
    /// [`Sampler::Uniform`] whose samples all lie far below
    /// [`MAX_LATENCY_NS`]: rounded without the checks of [`to_ns`].
    UniformWithin {
        min: f64,
        span: f64,
    },
    Normal {
        mean: f64,
        std_dev: f64,
    },
    Exponential {
        mean: f64,
    },
    /// [`Sampler::Exponential`] whose samples all lie far below
    /// [`MAX_LATENCY_NS`]: rounded without the checks of [`to_ns`].
    ExponentialWithin {
        mean: f64,
    },
    Lognormal {
        median: f64,
        sigma: f64,
    },
}

/// A bound on `-ln(1 - u)` for every draw `u`: the smallest `1 - u` is
/// `2^-53`, whose logarithm is about -36.7.
const MOST_UNIT_EXPONENTIALS: f64 = 40.0;

impl Sampler {
    fn new(l: &Latency) -> Sampler {
        match *l {
            Latency::Constant(v) => Sampler::Constant(to_ns(ns(v))),
            Latency::Uniform { min, max } => {
                let (min, max) = (ns(min), ns(max));
                let span = max - min;
                // A sample lies between `min` and `max` (within a rounding
                // of either), both far below the cap, and is not negative.
                if min.max(max) < MAX_LATENCY_NS as f64 / 2.0 {
                    Sampler::UniformWithin { min, span }
                } else {
                    Sampler::Uniform { min, span }
                }
            }
            Latency::Normal { mean, std_dev } => Sampler::Normal {
                mean: ns(mean),
                std_dev: ns(std_dev),
            },
            Latency::Exponential { mean } => {
                let mean = ns(mean);
                // A sample is `mean` times at most 36.7, and not negative
                // (-0 rounds to 0 either way).
                if mean * MOST_UNIT_EXPONENTIALS < MAX_LATENCY_NS as f64 / 2.0 {
                    Sampler::ExponentialWithin { mean }
                } else {
                    Sampler::Exponential { mean }
                }
            }
            Latency::Lognormal { median, sigma } => Sampler::Lognormal {
                median: ns(median),
                sigma,
            },
        }
    }

    // The common distributions inlined into each leg of
    // [`Anatomy::sample`], so that the legs' independent dependency chains
    // (a hash, a conversion, a rounding) overlap instead of running one
    // call after another; the normal and the lognormal out of line, so
    // that their parameters and loops do not crowd the others' registers.
    #[inline(always)]
    fn sample(&self, d: &Draws) -> u64 {
        match *self {
            Sampler::Constant(v) => v,
            Sampler::UniformWithin { min, span } => round_below_2_52(min + d.unit(LATENCY) * span),
            Sampler::ExponentialWithin { mean } => {
                round_below_2_52(-mean * crate::ln::ln_one_minus_unit(d.raw(LATENCY)))
            }
            _ => self.sample_out_of_line(d),
        }
    }

    /// [`Sampler::sample`], out of line: the path of the normal, the
    /// lognormal, and latencies that may reach the cap.
    #[inline(never)]
    fn sample_out_of_line(&self, d: &Draws) -> u64 {
        match *self {
            Sampler::Constant(v) => v,
            Sampler::Uniform { min, span } | Sampler::UniformWithin { min, span } => {
                to_ns(min + d.unit(LATENCY) * span)
            }
            Sampler::Normal { mean, std_dev } => {
                for k in 0..4 {
                    let (z0, z1) = normal_pair(d, k);
                    for z in [z0, z1] {
                        let x = mean + std_dev * z;
                        if x >= 0.0 {
                            return to_ns(x);
                        }
                    }
                }
                0
            }
            Sampler::Exponential { mean } | Sampler::ExponentialWithin { mean } => {
                to_ns(-mean * crate::ln::ln_one_minus_unit(d.raw(LATENCY)))
            }
            Sampler::Lognormal { median, sigma } => {
                let (z, _) = normal_pair(d, 0);
                to_ns(median * libm::exp(sigma * z))
            }
        }
    }
}

impl Latency {
    /// The latency in nanoseconds for these draws.
    pub fn sample(&self, d: &Draws) -> u64 {
        Sampler::new(self).sample(d)
    }

    /// The distribution as an inline TOML table, every parameter written.
    pub fn to_toml(&self) -> String {
        use reflexio::config::format_duration as d;
        match *self {
            Latency::Constant(v) => {
                format!("{{ distribution = \"constant\", value = \"{}\" }}", d(v))
            }
            Latency::Uniform { min, max } => format!(
                "{{ distribution = \"uniform\", min = \"{}\", max = \"{}\" }}",
                d(min),
                d(max)
            ),
            Latency::Normal { mean, std_dev } => format!(
                "{{ distribution = \"normal\", mean = \"{}\", std_dev = \"{}\" }}",
                d(mean),
                d(std_dev)
            ),
            Latency::Exponential { mean } => {
                format!(
                    "{{ distribution = \"exponential\", mean = \"{}\" }}",
                    d(mean)
                )
            }
            Latency::Lognormal { median, sigma } => format!(
                "{{ distribution = \"lognormal\", median = \"{}\", sigma = {sigma:?} }}",
                d(median)
            ),
        }
    }

    /// The mean of the samples in nanoseconds: [`Latency::mean_ns`],
    /// except that a normal's negative draws are drawn again, so its
    /// samples follow the normal truncated at 0 (the mass of eight
    /// negative candidates in a row, sampled as 0, is left out).
    pub fn mean_sampled_ns(&self) -> f64 {
        match *self {
            Latency::Normal { mean, std_dev } if !std_dev.is_zero() => {
                let (m, s) = (ns(mean), ns(std_dev));
                let a = -m / s;
                let density = (-a * a / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
                let above = libm::erfc(a / std::f64::consts::SQRT_2) / 2.0;
                m + s * density / above
            }
            _ => self.mean_ns(),
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

/// The legs of one attempt.
///
/// Round trip `r` (0-based) crosses `request`, `service` and `response`,
/// drawn from legs `3r + 1`, `3r` and `3r + 2` of the attempt's draws; leg
/// 0 is the attempt's own draws, so a plain `[latency]` (a `service` leg
/// alone) samples exactly what it always did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anatomy {
    /// Client to service.
    pub request: Latency,
    /// The service's work.
    pub service: Latency,
    /// Service to client.
    pub response: Latency,
    /// Round trips per attempt (a read-then-write transaction makes 2).
    pub round_trips: u32,
    /// Whether the scenario gave one `distribution` for the whole attempt
    /// (the service's work, with instant network legs).
    pub plain: bool,
    /// `request`, `service` and `response`, ready to sample.
    samplers: [Sampler; 3],
    /// The legs of every attempt after a call's first (`[latency.retry]`);
    /// `None`: retries cross the same legs as first attempts.
    pub retry: Option<RetryLegs>,
    /// When every attempt makes one round trip whose request and response
    /// are constant (a plain `[latency]`, for one), those two constants:
    /// an attempt then samples its service leg alone.
    constant_ends: Option<[u64; 2]>,
}

/// The legs of a retry: every attempt after a call's first
/// (`[latency.retry]`). It makes the first attempt's round trips
/// ([`Anatomy::round_trips`]), each crossing these legs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryLegs {
    /// Client to service.
    pub request: Latency,
    /// The service's work.
    pub service: Latency,
    /// Service to client.
    pub response: Latency,
    /// Whether the scenario gave one `distribution` for the whole retry
    /// (the service's work, with instant network legs).
    pub plain: bool,
    /// `request`, `service` and `response`, ready to sample.
    samplers: [Sampler; 3],
}

impl RetryLegs {
    /// The legs of `legs`, read as `[latency]` is read (its round trips
    /// are the first attempt's, not its own).
    pub fn of(legs: &Anatomy) -> RetryLegs {
        RetryLegs {
            request: legs.request,
            service: legs.service,
            response: legs.response,
            plain: legs.plain,
            samplers: legs.samplers,
        }
    }
}

/// One attempt's timeline, from its legs: what the service and the client
/// each see of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeline {
    /// From the send to the first request's arrival at the service (ns).
    pub request: u64,
    /// From the first request's arrival to the end of the service's last
    /// work (ns): for several round trips, every leg in between.
    pub service: u64,
    /// From the end of the service's last work to the client (ns).
    pub response: u64,
}

impl Timeline {
    /// From the send to the client learning the outcome, when nothing
    /// stretches the service's work.
    pub fn total(&self) -> u64 {
        self.request
            .saturating_add(self.service)
            .saturating_add(self.response)
    }
}

const ZERO: Latency = Latency::Constant(Duration::ZERO);

impl Anatomy {
    /// A plain latency: the whole attempt is the service's work.
    pub fn plain(service: Latency) -> Anatomy {
        Anatomy {
            request: ZERO,
            service,
            response: ZERO,
            round_trips: 1,
            plain: true,
            samplers: [
                Sampler::new(&ZERO),
                Sampler::new(&service),
                Sampler::new(&ZERO),
            ],
            retry: None,
            constant_ends: None,
        }
        .with_constant_ends()
    }

    /// Legs, instant where `None`, over `round_trips` round trips.
    pub fn legs(
        request: Option<Latency>,
        service: Option<Latency>,
        response: Option<Latency>,
        round_trips: u32,
    ) -> Anatomy {
        let (request, service, response) = (
            request.unwrap_or(ZERO),
            service.unwrap_or(ZERO),
            response.unwrap_or(ZERO),
        );
        Anatomy {
            request,
            service,
            response,
            round_trips: round_trips.clamp(1, MAX_ROUND_TRIPS),
            plain: false,
            samplers: [
                Sampler::new(&request),
                Sampler::new(&service),
                Sampler::new(&response),
            ],
            retry: None,
            constant_ends: None,
        }
        .with_constant_ends()
    }

    /// The same legs, [`Anatomy::constant_ends`] worked out.
    fn with_constant_ends(self) -> Anatomy {
        let constant_ends = match self.samplers {
            [Sampler::Constant(request), _, Sampler::Constant(response)]
                if self.round_trips == 1 && self.retry.is_none() =>
            {
                Some([request, response])
            }
            _ => None,
        };
        Anatomy {
            constant_ends,
            ..self
        }
    }

    /// These legs for a call's first attempt, and `retry`'s for every
    /// attempt after it.
    pub fn with_retry(self, retry: RetryLegs) -> Anatomy {
        Anatomy {
            retry: Some(retry),
            ..self
        }
        .with_constant_ends()
    }

    /// The `[latency]` table, normalised: every leg and parameter written,
    /// followed by the mean timeline as comments; then `[latency.retry]`,
    /// if any, likewise.
    pub fn to_toml(&self) -> String {
        let mut text = String::from("[latency]\n");
        let legs = [self.request, self.service, self.response];
        if self.plain {
            push_fields(&mut text, &self.service);
            text.push_str(
                "# the whole attempt is the service's work; its request and response are instant\n",
            );
        } else {
            text.push_str(&format!("round_trips = {}\n", self.round_trips));
            push_legs(&mut text, &legs);
        }
        let timeline = self.mean_timeline(&legs);
        if self.retry.is_some() {
            text.push_str("# a call's first attempt: ");
            text.push_str(&timeline);
        } else {
            text.push_str("# ");
            text.push_str(&timeline);
        }
        if let Some(retry) = &self.retry {
            text.push_str("\n[latency.retry]\n");
            let legs = [retry.request, retry.service, retry.response];
            if retry.plain {
                push_fields(&mut text, &retry.service);
                text.push_str(
                    "# the whole of each retry is the service's work; its request and response are instant\n",
                );
            } else {
                push_legs(&mut text, &legs);
            }
            text.push_str(&format!(
                "# every attempt after a call's first, over the first attempt's round trips ({}): ",
                self.round_trips
            ));
            text.push_str(&self.mean_timeline(&legs));
        }
        text
    }

    /// The mean timeline of an attempt crossing `legs` over this anatomy's
    /// round trips, as a comment's text (without its `# `).
    fn mean_timeline(&self, legs: &[Latency; 3]) -> String {
        let n = f64::from(self.round_trips);
        let (req, svc, resp) = (legs[0].mean_ns(), legs[1].mean_ns(), legs[2].mean_ns());
        // Milliseconds to the nanosecond, without trailing zeros.
        let ms = |x: f64| format!("{} ms", (x).round() / 1e6);
        format!(
            "mean timeline: the request arrives {} after the send; the service works from then until {} (contention reads and writes at those two instants); the client learns the outcome {} after the send\n",
            ms(req),
            ms(req + n * svc + (n - 1.0) * (resp + req)),
            ms(n * (req + svc + resp)),
        )
    }

    /// A fingerprint of every leg and parameter: two anatomies that sample
    /// differently have different fingerprints (but for a 64-bit
    /// collision), so values kept from one are not read for the other.
    pub fn fingerprint(&self) -> u64 {
        let mut h = 0x243F_6A88_85A3_08D3u64;
        let mut add = |x: u64| {
            h = (h ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        };
        add(u64::from(self.round_trips));
        add(u64::from(self.plain));
        let mut legs = vec![self.request, self.service, self.response];
        if let Some(r) = &self.retry {
            // Only a scenario with retry legs adds these words, so that the
            // fingerprints of the others stay as they were.
            add(6);
            add(u64::from(r.plain));
            legs.extend([r.request, r.service, r.response]);
        }
        for leg in &legs {
            let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
            match *leg {
                Latency::Constant(v) => {
                    add(1);
                    add(ns(v));
                }
                Latency::Uniform { min, max } => {
                    add(2);
                    add(ns(min));
                    add(ns(max));
                }
                Latency::Normal { mean, std_dev } => {
                    add(3);
                    add(ns(mean));
                    add(ns(std_dev));
                }
                Latency::Exponential { mean } => {
                    add(4);
                    add(ns(mean));
                }
                Latency::Lognormal { median, sigma } => {
                    add(5);
                    add(ns(median));
                    add(sigma.to_bits());
                }
            }
        }
        h
    }

    /// Whether the request leg of every attempt, first or retry, is always
    /// zero (no draw needed to know).
    pub fn instant_request(&self) -> bool {
        self.request == ZERO && self.retry.is_none_or(|r| r.request == ZERO)
    }

    /// The timeline of attempt `attempt` (1 for a call's first) whose draws
    /// are `d`: from `[latency.retry]`'s legs from the second attempt on,
    /// if the scenario has them.
    #[inline]
    pub fn sample(&self, d: &Draws, attempt: u32) -> Timeline {
        if let Some([request, response]) = self.constant_ends {
            // Leg 0 is the attempt's own draws.
            return Timeline {
                request,
                service: self.samplers[1].sample(d),
                response,
            };
        }
        let samplers = match &self.retry {
            Some(r) if attempt >= 2 => &r.samplers,
            _ => &self.samplers,
        };
        let [request, service, response] = samplers;
        let leg = |l: &Sampler, k: u32| -> u64 {
            match l {
                Sampler::Constant(v) => *v,
                _ => l.sample(&d.leg(k)),
            }
        };
        let mut t = Timeline {
            request: leg(request, 1),
            service: leg(service, 0),
            response: leg(response, 2),
        };
        for r in 1..self.round_trips {
            // The previous response and this request and work all fall
            // between the first arrival and the last work's end.
            let k = 3 * r;
            t.service = t
                .service
                .saturating_add(t.response)
                .saturating_add(leg(request, k + 1))
                .saturating_add(leg(service, k));
            t.response = leg(response, k + 2);
        }
        t
    }
}

/// The fields of `l`'s inline table, one a line, without its braces.
fn push_fields(text: &mut String, l: &Latency) {
    let inline = l.to_toml();
    let body = inline.trim_start_matches("{ ").trim_end_matches(" }");
    for field in body.split(", ") {
        text.push_str(field);
        text.push('\n');
    }
}

/// `request`, `service` and `response`, one a line.
fn push_legs(text: &mut String, legs: &[Latency; 3]) {
    for (name, l) in ["request", "service", "response"].iter().zip(legs) {
        text.push_str(&format!("{name} = {}\n", l.to_toml()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draws::Outcomes;

    #[test]
    fn unchecked_rounding_gives_the_checked_samples() {
        // Uniform and exponential latencies far below the cap skip the
        // cap's checks; the checked path gives the same nanoseconds, and
        // so does every latency near the cap, which keeps the checks.
        let ms = Duration::from_millis;
        let day = Duration::from_nanos(MAX_LATENCY_NS);
        let outcomes = Outcomes::new(11);
        for l in [
            Latency::Uniform {
                min: ms(5),
                max: ms(15),
            },
            Latency::Uniform {
                min: Duration::ZERO,
                max: Duration::from_nanos(3),
            },
            Latency::Uniform {
                min: ms(15),
                max: ms(5),
            },
            Latency::Uniform {
                min: Duration::ZERO,
                max: day / 3,
            },
            Latency::Uniform {
                min: Duration::ZERO,
                max: day * 2,
            },
            Latency::Exponential { mean: ms(25) },
            Latency::Exponential {
                mean: Duration::from_nanos(1),
            },
            Latency::Exponential { mean: day / 100 },
            Latency::Exponential { mean: day / 10 },
        ] {
            let sampler = Sampler::new(&l);
            let near_cap = matches!(
                sampler,
                Sampler::Uniform { .. } | Sampler::Exponential { .. }
            );
            assert_eq!(
                near_cap,
                matches!(l, Latency::Uniform { max, .. } if max >= day / 2)
                    || matches!(l, Latency::Exponential { mean } if mean >= day / 80),
                "{l:?}"
            );
            for i in 0..20_000 {
                let d = outcomes.at(i, 1);
                assert_eq!(sampler.sample(&d), sampler.sample_out_of_line(&d), "{l:?}");
            }
        }
    }

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
    fn a_truncated_normal_samples_its_truncated_mean() {
        let ms = Duration::from_millis;
        for (mean, std_dev) in [(1, 3), (0, 2), (20, 2), (5, 5)] {
            let l = Latency::Normal {
                mean: ms(mean),
                std_dev: ms(std_dev),
            };
            let m = mean_of(l);
            let want = l.mean_sampled_ns();
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
    fn to_ns_rounds_as_round_ns_and_clamps() {
        let outcomes = Outcomes::new(11);
        for i in 0..10_000 {
            let x = outcomes.at(i, 1).unit(0) * 1e10;
            assert_eq!(to_ns(x), round_ns(x), "{x}");
        }
        for x in [0.49999999999999994, 0.5, 1.5, 2.5, 1e9 + 0.5] {
            assert_eq!(to_ns(x), round_ns(x), "{x}");
        }
        assert_eq!(to_ns(f64::NAN), 0);
        assert_eq!(to_ns(-3.0), 0);
        assert_eq!(to_ns(0.0), 0);
        assert_eq!(to_ns(1e300), MAX_LATENCY_NS);
        assert_eq!(to_ns(MAX_LATENCY_NS as f64 - 0.5), MAX_LATENCY_NS);
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
