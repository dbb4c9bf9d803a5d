//! Per-policy metrics, computed from per-call results.
//!
//! Percentiles are nearest-rank: the `p`-th percentile of `n` sorted values
//! is the value at rank `ceil(p × n)`. Durations are reported in
//! milliseconds, exactly (a whole number of nanoseconds over 10^6, to the
//! nearest `f64`); no metric is rounded, so JSON keeps every significant
//! digit (the shortest text that reads back as the same `f64`).

use reflexio::engine::{EventKind, StopReason};
use serde::Serialize;

use crate::check::Violation;

/// Points kept of the completion-latency CDF, for plots.
pub const CDF_POINTS: usize = 200;

/// Per-call results of one policy run.
///
/// Only what the metrics read is kept: every call's latency (for the
/// percentiles and the CDF), the sleeps that are not zero (a zero sleep
/// only counts towards the rank of the sleep percentile), and counts of
/// attempts per call and of stop reasons. A call that is never recorded
/// counts as a success with latency, sleep and attempts zero.
#[derive(Debug, Clone)]
pub struct CallResults {
    calls: usize,
    latency: Vec<u64>,
    /// Sleeps of the calls that slept, in the order they ended.
    sleep: Vec<u64>,
    sleep_total: u64,
    /// `histogram[i]` calls made `i + 1` attempts.
    histogram: Vec<u64>,
    /// Calls by stop reason, indexed by [`end_code`].
    ends: [u64; END_CODES],
    /// Attempts made so far.
    pub attempts_total: u64,
    load: Vec<u64>,
    last_end: u64,
    /// Whether an attempt started past the last bucket the series may have
    /// ([`crate::limits::MAX_BUCKETS`]).
    pub timeline_full: bool,
}

const SUCCESS: u8 = 0;
const END_CODES: usize = 7;

fn end_code(reason: Option<StopReason>) -> u8 {
    match reason {
        None => SUCCESS,
        Some(StopReason::Permanent) => 1,
        Some(StopReason::DeadlineExceeded) => 2,
        Some(StopReason::MaxAttemptsExceeded) => 3,
        Some(StopReason::ClassAttemptsExceeded) => 4,
        Some(StopReason::MaxUnknownAttemptsExceeded) => 5,
        Some(StopReason::BudgetExhausted) => 6,
        // A reason added to the library later is counted under the event
        // it is reported as.
        Some(other) => match other.event_kind() {
            EventKind::PermanentFail => 1,
            EventKind::DeadlineExceeded => 2,
            EventKind::MaxUnknownAttemptsExceeded => 5,
            _ => 3,
        },
    }
}

impl CallResults {
    /// Room for `calls` calls.
    pub fn new(calls: usize) -> Self {
        CallResults {
            calls,
            latency: Vec::with_capacity(calls),
            sleep: Vec::new(),
            sleep_total: 0,
            histogram: Vec::new(),
            ends: [0; END_CODES],
            attempts_total: 0,
            load: Vec::new(),
            last_end: 0,
            timeline_full: false,
        }
    }

    /// An attempt started in time bucket `bucket`. A bucket past the
    /// series' limit is not counted and sets [`CallResults::timeline_full`].
    #[inline]
    pub fn attempt_at(&mut self, bucket: u64) {
        self.attempts_total += 1;
        // The series never holds more than the limit's buckets, so a
        // bucket it holds is within the limit.
        match usize::try_from(bucket)
            .ok()
            .and_then(|b| self.load.get_mut(b))
        {
            Some(n) => *n += 1,
            None => self.attempt_past_the_series(bucket),
        }
    }

    /// [`CallResults::attempt_at`] a bucket the series does not hold yet.
    #[cold]
    #[inline(never)]
    fn attempt_past_the_series(&mut self, bucket: u64) {
        if bucket >= crate::limits::MAX_BUCKETS {
            self.timeline_full = true;
            return;
        }
        let b = bucket as usize;
        self.load.resize(b + 1, 0);
        self.load[b] += 1;
    }

    /// Call `call` ended at virtual time `end`. Each call is recorded once.
    pub fn record(
        &mut self,
        call: usize,
        end: u64,
        latency: u64,
        sleep: u64,
        attempts: u32,
        reason: Option<StopReason>,
    ) {
        debug_assert!(call < self.calls && self.latency.len() < self.calls);
        self.last_end = self.last_end.max(end);
        self.latency.push(latency);
        if sleep > 0 {
            self.sleep.push(sleep);
            // Saturating sums of non-negative terms do not depend on the
            // order of the terms.
            self.sleep_total = self.sleep_total.saturating_add(sleep);
        }
        if attempts > 0 {
            let i = attempts as usize - 1;
            if i >= self.histogram.len() {
                self.histogram.resize(i + 1, 0);
            }
            self.histogram[i] += 1;
        }
        self.ends[usize::from(end_code(reason))] += 1;
    }

    /// The metrics of the run.
    pub fn into_metrics(
        mut self,
        policy: &str,
        bucket_ns: u64,
        violation_list: Vec<Violation>,
        violations: u64,
    ) -> PolicyMetrics {
        let calls = self.calls as u64;
        // Calls never recorded count as successes with zero latency.
        let unrecorded = self.calls - self.latency.len().min(self.calls);
        self.latency.resize(self.latency.len() + unrecorded, 0);
        let [ok, permanent, deadline, max_attempts, class, unknown, budget] = self.ends;
        let successes = ok + unrecorded as u64;
        let failures = Failures {
            permanent_fail: permanent,
            deadline_exceeded: deadline,
            max_attempts_exceeded: max_attempts,
            class_attempts_exceeded: class,
            max_unknown_attempts_exceeded: unknown,
            budget_exhausted: budget,
        };
        let histogram = self.histogram;
        let max_attempts = histogram.len() as u32;
        let attempt_rank = |p: f64| -> u32 {
            let rank = rank(p, calls);
            let mut seen = 0;
            for (i, n) in histogram.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return i as u32 + 1;
                }
            }
            max_attempts
        };
        let sleep_p99 = nth_with_zeros(&mut self.sleep, self.calls, rank(0.99, calls));
        sort_u64(&mut self.latency);
        let pick = |v: &[u64], p: f64| v.get(rank(p, calls) as usize - 1).copied().unwrap_or(0);
        let peak = self.load.iter().copied().max().unwrap_or(0);
        let per_second = 1e9 / bucket_ns as f64;
        let cdf = cdf(&self.latency, calls);
        let sleep_total = self.sleep_total;
        PolicyMetrics {
            policy: policy.to_owned(),
            calls,
            successes,
            success_rate: successes as f64 / calls.max(1) as f64,
            failures,
            budget: None,
            attempts_total: self.attempts_total,
            attempts_mean: self.attempts_total as f64 / calls.max(1) as f64,
            attempts_p50: attempt_rank(0.5),
            attempts_p90: attempt_rank(0.9),
            attempts_p99: attempt_rank(0.99),
            attempts_max: max_attempts,
            attempts_histogram: histogram,
            sleep_total_ms: ms(sleep_total),
            sleep_mean_ms: sleep_total as f64 / 1e6 / calls.max(1) as f64,
            sleep_p99_ms: ms(sleep_p99),
            latency_p50_ms: ms(pick(&self.latency, 0.5)),
            latency_p99_ms: ms(pick(&self.latency, 0.99)),
            latency_max_ms: ms(self.latency.last().copied().unwrap_or(0)),
            load_amplification: self.attempts_total as f64 / calls.max(1) as f64,
            peak_attempts_per_s: peak as f64 * per_second,
            finished_at_ms: ms(self.last_end),
            violations,
            violation_list,
            background: Vec::new(),
            load_per_bucket: self.load,
            latency_cdf: cdf,
        }
    }
}

/// The value at 1-based `rank` among `n` values: `nonzero`, plus zeros for
/// the rest. The zeros come first in sorted order, so only a rank past
/// them looks into `nonzero` (reordering it); 0 for a rank out of range.
fn nth_with_zeros(nonzero: &mut [u64], n: usize, rank: u64) -> u64 {
    let zeros = n.saturating_sub(nonzero.len()) as u64;
    if rank <= zeros {
        return 0;
    }
    let i = (rank - zeros - 1) as usize;
    if i >= nonzero.len() {
        return 0;
    }
    *nonzero.select_nth_unstable(i).1
}

/// Below this length [`sort_u64`] uses the comparison sort.
const RADIX_MIN: usize = 1024;
/// Bits per digit of [`sort_u64`]'s radix sort.
const DIGIT_BITS: u32 = 11;
/// Digits of a `u64`, the last one shorter.
const DIGITS: usize = 64usize.div_ceil(DIGIT_BITS as usize);

/// Counts the values of `v` by each of their first `D` digits.
fn count_digits<const D: usize>(v: &[u64], counts: &mut [[usize; 1 << DIGIT_BITS]]) {
    const MASK: u64 = (1 << DIGIT_BITS) - 1;
    let counts = &mut counts[..D];
    for &x in v {
        for (digit, c) in counts.iter_mut().enumerate() {
            c[((x >> (DIGIT_BITS as usize * digit)) & MASK) as usize] += 1;
        }
    }
}

/// Sorts `v` ascending: a least-significant-digit radix sort on 11-bit
/// digits for long vectors (skipping every digit in which all values
/// agree, so latencies below 2^33 ns take at most three passes), the
/// standard unstable sort for short ones. Equal `u64`s cannot be told
/// apart, so the result is the one any sort gives.
fn sort_u64(v: &mut Vec<u64>) {
    const RADIX: usize = 1 << DIGIT_BITS;
    const MASK: u64 = RADIX as u64 - 1;
    let n = v.len();
    if n < RADIX_MIN {
        v.sort_unstable();
        return;
    }
    // Digits above the largest value's highest bit are 0 in every value:
    // not counted, and (as any digit all values agree in) not passed over.
    // Latencies below 2^33 ns, the common case, have three.
    let bits = 64 - v.iter().fold(0, |all, &x| all | x).leading_zeros();
    let mut counts = vec![[0usize; RADIX]; DIGITS];
    let digits = if bits <= 3 * DIGIT_BITS {
        count_digits::<3>(v, &mut counts);
        3
    } else {
        count_digits::<DIGITS>(v, &mut counts);
        DIGITS
    };
    counts.truncate(digits);
    let first = v[0];
    let mut from = std::mem::take(v);
    let mut to = vec![0u64; n];
    for (digit, c) in counts.iter_mut().enumerate() {
        let shift = DIGIT_BITS as usize * digit;
        if c[((first >> shift) & MASK) as usize] == n {
            // Every value has this digit: the pass would move nothing.
            continue;
        }
        let mut start = 0;
        for k in c.iter_mut() {
            let here = *k;
            *k = start;
            start += here;
        }
        for &x in &from {
            let d = ((x >> shift) & MASK) as usize;
            to[c[d]] = x;
            c[d] += 1;
        }
        std::mem::swap(&mut from, &mut to);
    }
    *v = from;
}

/// Nearest rank of percentile `p` among `n` values (1-based, at least 1).
fn rank(p: f64, n: u64) -> u64 {
    ceil_to_u64(p * n as f64).clamp(1, n.max(1))
}

/// `x.ceil() as u64`, without the call to `ceil` that the baseline x86-64
/// target makes for the ranks: the truncation of a non-negative number is
/// its floor, one more if it fell short of `x`.
fn ceil_to_u64(x: f64) -> u64 {
    // From 0 to 2^63 the conversions go through i64, one instruction each
    // way; anything else (never a rank) takes the long way.
    if !(0.0..9_223_372_036_854_775_808.0).contains(&x) {
        return x.ceil() as u64;
    }
    let floor = x as i64;
    (floor + i64::from((floor as f64) < x)) as u64
}

/// The fractions `i / 200` of the CDF's points, `i` = 1 to 200.
const CDF_FRACTIONS: [f64; CDF_POINTS] = {
    let mut p = [0.0; CDF_POINTS];
    let mut i = 0;
    while i < CDF_POINTS {
        p[i] = (i + 1) as f64 / CDF_POINTS as f64;
        i += 1;
    }
    p
};

/// `(latency ms, p)` at the [`CDF_POINTS`] fractions `p = i / 200`, from
/// the `n` latencies `sorted` ascending. Fractions that fall on the same
/// rank (more points than calls) share its value.
fn cdf(sorted: &[u64], n: u64) -> Vec<(f64, f64)> {
    let mut points = Vec::with_capacity(CDF_POINTS);
    let mut last = (0, 0.0);
    for p in CDF_FRACTIONS {
        let r = rank(p, n);
        if r != last.0 {
            last = (r, ms(sorted.get(r as usize - 1).copied().unwrap_or(0)));
        }
        points.push((last.1, p));
    }
    points
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Failed calls by the reason they stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Failures {
    /// Stopped on a class that is never retried.
    pub permanent_fail: u64,
    /// Stopped by the deadline (or a hint reaching past it).
    pub deadline_exceeded: u64,
    /// Stopped by `max_attempts`.
    pub max_attempts_exceeded: u64,
    /// Stopped by a class's own cap.
    pub class_attempts_exceeded: u64,
    /// Stopped by `max_unknown_attempts`.
    pub max_unknown_attempts_exceeded: u64,
    /// Stopped by the policy's retry budget.
    #[serde(skip_serializing_if = "is_zero")]
    pub budget_exhausted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Failures {
    /// `(name, count)` in a stable order.
    pub fn entries(&self) -> [(&'static str, u64); 5] {
        [
            ("permanent_fail", self.permanent_fail),
            ("deadline_exceeded", self.deadline_exceeded),
            ("max_attempts_exceeded", self.max_attempts_exceeded),
            ("class_attempts_exceeded", self.class_attempts_exceeded),
            (
                "max_unknown_attempts_exceeded",
                self.max_unknown_attempts_exceeded,
            ),
        ]
    }

    /// All failed calls.
    pub fn total(&self) -> u64 {
        self.entries().iter().map(|(_, n)| n).sum::<u64>() + self.budget_exhausted
    }
}

/// The metrics of one policy in one run. Field names are stable: they are
/// the JSON keys and CSV columns documented in sim/README.md.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyMetrics {
    /// The policy's name.
    pub policy: String,
    /// Calls made.
    pub calls: u64,
    /// Calls that succeeded.
    pub successes: u64,
    /// `successes / calls`.
    pub success_rate: f64,
    /// Failed calls by stop reason.
    pub failures: Failures,
    /// The retry budget's account, for a policy with a budget only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetMetrics>,
    /// Attempts made, over all calls.
    pub attempts_total: u64,
    /// Attempts per call: mean.
    pub attempts_mean: f64,
    /// Attempts per call: median.
    pub attempts_p50: u32,
    /// Attempts per call: 90th percentile.
    pub attempts_p90: u32,
    /// Attempts per call: 99th percentile.
    pub attempts_p99: u32,
    /// Attempts per call: maximum.
    pub attempts_max: u32,
    /// `attempts_histogram[i]` calls made `i + 1` attempts.
    pub attempts_histogram: Vec<u64>,
    /// Time spent sleeping between attempts, over all calls (ms).
    pub sleep_total_ms: f64,
    /// Sleep per call: mean (ms).
    pub sleep_mean_ms: f64,
    /// Sleep per call: 99th percentile (ms).
    pub sleep_p99_ms: f64,
    /// End-to-end call latency, attempts and sleeps: median (ms).
    pub latency_p50_ms: f64,
    /// End-to-end latency: 99th percentile (ms).
    pub latency_p99_ms: f64,
    /// End-to-end latency: maximum (ms).
    pub latency_max_ms: f64,
    /// Attempts per call: the load the policy puts on the service,
    /// relative to one attempt per call.
    pub load_amplification: f64,
    /// The most attempts started in one time bucket, per second.
    pub peak_attempts_per_s: f64,
    /// Virtual time when the last call ended (ms): how long the whole
    /// workload took.
    pub finished_at_ms: f64,
    /// Envelope violations found (there should be none).
    pub violations: u64,
    /// The first violations, with their calls.
    pub violation_list: Vec<Violation>,
    /// What each background workload (`[[background]]`) went through
    /// beside this policy's calls; empty, and left out of the JSON, when
    /// the scenario has none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub background: Vec<BackgroundMetrics>,
    /// Attempts started in each time bucket.
    pub load_per_bucket: Vec<u64>,
    /// `(latency ms, fraction of calls done)` at 200 evenly spaced
    /// fractions.
    pub latency_cdf: Vec<(f64, f64)>,
}

/// What one background workload went through in one run, beside the
/// calls of the policy under test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackgroundMetrics {
    /// The background workload's name.
    pub name: String,
    /// Its calls.
    pub calls: u64,
    /// Calls that succeeded.
    pub succeeded: u64,
    /// Calls that failed: `calls - succeeded`.
    pub failed: u64,
    /// Attempts its calls made (`calls` when it has no policy).
    pub attempts: u64,
    /// End-to-end call latency, attempts and sleeps: median (ms).
    pub latency_p50_ms: f64,
    /// End-to-end latency: 99th percentile (ms).
    pub latency_p99_ms: f64,
    /// Violations of its own policy's envelope; absent when it has no
    /// policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violations: Option<u64>,
    /// The first of those violations, with their calls.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violation_list: Vec<Violation>,
    /// Attempts its calls started in each time bucket, as the policy's own
    /// `load_per_bucket`.
    pub load_per_bucket: Vec<u64>,
}

impl PolicyMetrics {
    /// The attempts reaching the service in each time bucket: this
    /// policy's calls' and every background workload's beside them.
    pub fn service_load_per_bucket(&self) -> Vec<u64> {
        let mut load = self.load_per_bucket.clone();
        for b in &self.background {
            if load.len() < b.load_per_bucket.len() {
                load.resize(b.load_per_bucket.len(), 0);
            }
            for (total, n) in load.iter_mut().zip(&b.load_per_bucket) {
                *total += n;
            }
        }
        load
    }
}

impl BackgroundMetrics {
    /// The summary of background workload `name` from its calls' metrics
    /// (`checked`: whether a checker audited them against a policy).
    pub fn of(name: &str, m: PolicyMetrics, checked: bool) -> Self {
        BackgroundMetrics {
            name: name.to_owned(),
            calls: m.calls,
            succeeded: m.successes,
            failed: m.calls - m.successes,
            attempts: m.attempts_total,
            latency_p50_ms: m.latency_p50_ms,
            latency_p99_ms: m.latency_p99_ms,
            violations: checked.then_some(m.violations),
            violation_list: m.violation_list,
            load_per_bucket: m.load_per_bucket,
        }
    }
}

/// What a policy's retry budget did in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetMetrics {
    /// The budget's kind and settings, as `reflexio-sim check` prints them.
    pub budget: String,
    /// Retries the budget admitted (each made one more attempt).
    pub retries_admitted: u64,
    /// Retries the budget refused. Each refusal ends its call, so this is
    /// also the number of calls stopped by the budget
    /// (`failures.budget_exhausted`).
    pub retries_refused: u64,
    /// `retries_refused / (retries_admitted + retries_refused)`: the share
    /// of the retries the engine would have made that the budget refused
    /// (0 when none was asked for).
    pub refused_share: f64,
}

impl BudgetMetrics {
    /// The account of a budget described as `budget` that admitted and
    /// refused these retries.
    pub fn new(budget: String, admitted: u64, refused: u64) -> Self {
        let asked = admitted + refused;
        BudgetMetrics {
            budget,
            retries_admitted: admitted,
            retries_refused: refused,
            refused_share: if asked == 0 {
                0.0
            } else {
                refused as f64 / asked as f64
            },
        }
    }
}

/// A scalar metric: its stable name and how to read it.
pub type Scalar = (&'static str, fn(&PolicyMetrics) -> f64);

/// The scalar metrics, in report order: CSV columns and the `--runs`
/// summary.
pub const SCALARS: &[Scalar] = &[
    ("calls", |m| m.calls as f64),
    ("successes", |m| m.successes as f64),
    ("success_rate", |m| m.success_rate),
    ("permanent_fail", |m| m.failures.permanent_fail as f64),
    ("deadline_exceeded", |m| m.failures.deadline_exceeded as f64),
    ("max_attempts_exceeded", |m| {
        m.failures.max_attempts_exceeded as f64
    }),
    ("class_attempts_exceeded", |m| {
        m.failures.class_attempts_exceeded as f64
    }),
    ("max_unknown_attempts_exceeded", |m| {
        m.failures.max_unknown_attempts_exceeded as f64
    }),
    ("attempts_total", |m| m.attempts_total as f64),
    ("attempts_mean", |m| m.attempts_mean),
    ("attempts_p50", |m| f64::from(m.attempts_p50)),
    ("attempts_p90", |m| f64::from(m.attempts_p90)),
    ("attempts_p99", |m| f64::from(m.attempts_p99)),
    ("attempts_max", |m| f64::from(m.attempts_max)),
    ("sleep_total_ms", |m| m.sleep_total_ms),
    ("sleep_mean_ms", |m| m.sleep_mean_ms),
    ("sleep_p99_ms", |m| m.sleep_p99_ms),
    ("latency_p50_ms", |m| m.latency_p50_ms),
    ("latency_p99_ms", |m| m.latency_p99_ms),
    ("latency_max_ms", |m| m.latency_max_ms),
    ("load_amplification", |m| m.load_amplification),
    ("peak_attempts_per_s", |m| m.peak_attempts_per_s),
    ("finished_at_ms", |m| m.finished_at_ms),
    ("violations", |m| m.violations as f64),
];

/// The scalar metrics of retry budgets, after [`SCALARS`] in a report
/// where some policy has a budget (zero for a policy without one), and
/// left out otherwise, so that reports without budgets keep their shape.
pub const BUDGET_SCALARS: &[Scalar] = &[
    ("budget_exhausted", |m| m.failures.budget_exhausted as f64),
    ("retries_admitted", |m| {
        m.budget.as_ref().map_or(0.0, |b| b.retries_admitted as f64)
    }),
    ("retries_refused", |m| {
        m.budget.as_ref().map_or(0.0, |b| b.retries_refused as f64)
    }),
    ("refused_share", |m| {
        m.budget.as_ref().map_or(0.0, |b| b.refused_share)
    }),
];

/// A metric over runs: its mean, the per-run standard deviation and the
/// standard error of the mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Mean over runs.
    pub mean: f64,
    /// Per-run (sample) standard deviation, with `n − 1` in the
    /// denominator; 0 for a single run.
    pub std_dev: f64,
    /// Standard error of the mean: `std_dev / sqrt(n)`; 0 for a single run.
    pub stderr: f64,
}

/// Mean, per-run standard deviation and standard error of `values`.
pub fn spread(values: &[f64]) -> Spread {
    let n = values.len() as f64;
    if values.is_empty() {
        return Spread {
            mean: 0.0,
            std_dev: 0.0,
            stderr: 0.0,
        };
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return Spread {
            mean,
            std_dev: 0.0,
            stderr: 0.0,
        };
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let std_dev = var.sqrt();
    Spread {
        mean,
        std_dev,
        stderr: std_dev / n.sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut r = CallResults::new(10);
        for i in 0..10 {
            r.record(
                i,
                0,
                (i as u64 + 1) * 1_000_000,
                0,
                (i as u32 % 3) + 1,
                None,
            );
        }
        let m = r.into_metrics("p", 1_000_000_000, Vec::new(), 0);
        assert_eq!(m.latency_p50_ms, 5.0);
        assert_eq!(m.latency_p99_ms, 10.0);
        assert_eq!(m.attempts_histogram, vec![4, 3, 3]);
        assert_eq!(m.attempts_p50, 2);
        assert_eq!(m.attempts_max, 3);
    }

    #[test]
    fn standard_deviation_and_error() {
        let s = spread(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.mean, 2.5);
        // Variance (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3.
        assert!((s.std_dev - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert!((s.stderr - s.std_dev / 2.0).abs() < 1e-15);
        assert!((s.stderr - 0.645497).abs() < 1e-6);
        let one = spread(&[7.0]);
        assert_eq!((one.mean, one.std_dev, one.stderr), (7.0, 0.0, 0.0));
    }

    #[test]
    fn metrics_keep_their_significant_digits() {
        let mut r = CallResults::new(3);
        r.record(0, 1_234_567, 1_234_567, 7, 1, None);
        r.record(1, 1, 1, 0, 2, None);
        r.record(2, 1, 1, 0, 1, Some(StopReason::Permanent));
        r.attempts_total = 4;
        let m = r.into_metrics("p", 1_000_000_000, Vec::new(), 0);
        assert_eq!(m.latency_max_ms, 1.234567);
        assert_eq!(m.latency_p50_ms, 0.000001);
        assert_eq!(m.attempts_mean, 4.0 / 3.0);
        assert_eq!(m.success_rate, 2.0 / 3.0);
        assert_eq!(m.sleep_mean_ms, 7e-6 / 3.0);
        let json = serde_json::to_string(&m).unwrap();
        assert!(
            json.contains("\"attempts_mean\":1.3333333333333333"),
            "{json}"
        );
        assert!(json.contains("\"latency_max_ms\":1.234567"), "{json}");
    }

    use rand::{Rng, SeedableRng};

    #[test]
    fn ceiling_without_libm_agrees_with_ceil() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let mut xs = vec![
            0.0,
            0.5,
            1.0,
            1.0 + f64::EPSILON,
            2f64.powi(52) + 0.5,
            2f64.powi(53),
            2f64.powi(63),
            2f64.powi(64),
        ];
        xs.extend((0..10_000).map(|_| rng.random::<f64>() * 1e6));
        xs.extend((0..10_000).map(|_| f64::from_bits(rng.random_range(0..0x43F0_0000_0000_0000))));
        xs.extend([
            f64::NAN,
            -0.0,
            -0.5,
            -3.0,
            2f64.powi(63) - 1024.0,
            2f64.powi(63) + 2048.0,
        ]);
        for x in xs {
            assert_eq!(ceil_to_u64(x), x.ceil() as u64, "{x:e}");
        }
        for (i, p) in CDF_FRACTIONS.iter().enumerate() {
            assert_eq!(*p, (i + 1) as f64 / CDF_POINTS as f64);
        }
        // Every rank the metrics take, as the plain formula gives it.
        for n in (0..2000).chain([99_999, 100_000, 1_000_000, u64::from(u32::MAX)]) {
            for i in 1..=CDF_POINTS {
                let p = i as f64 / CDF_POINTS as f64;
                assert_eq!(rank(p, n), plain_rank(p, n), "p = {p}, n = {n}");
            }
            for p in [0.5, 0.9, 0.99] {
                assert_eq!(rank(p, n), plain_rank(p, n), "p = {p}, n = {n}");
            }
        }
    }

    /// Values of the kinds the metrics see: small and large, many equal,
    /// zeros, and the extremes of `u64`.
    fn values(rng: &mut rand_chacha::ChaCha8Rng, n: usize) -> Vec<u64> {
        let kind = rng.random_range(0..6);
        (0..n)
            .map(|_| match kind {
                0 => rng.random::<u64>(),
                1 => rng.random_range(0..1u64 << 34),
                // Three digits, the last one full.
                5 => rng.random_range(0..1u64 << 33),
                2 => rng.random_range(0..4) * 1_000_000,
                3 => {
                    if rng.random_bool(0.9) {
                        0
                    } else {
                        rng.random_range(1..1u64 << 20)
                    }
                }
                _ => [0, 1, u64::MAX, u64::MAX - 1, 1 << 63][rng.random_range(0..5)],
            })
            .collect()
    }

    #[test]
    fn radix_sort_agrees_with_the_comparison_sort() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut lengths = vec![0, 1, 2, RADIX_MIN - 1, RADIX_MIN, RADIX_MIN + 1, 5000];
        lengths.extend((0..40).map(|_| rng.random_range(0..3 * RADIX_MIN)));
        for n in lengths {
            let mut v = values(&mut rng, n);
            let mut expected = v.clone();
            expected.sort_unstable();
            sort_u64(&mut v);
            assert_eq!(v, expected, "n = {n}");
        }
    }

    #[test]
    fn percentile_past_the_zeros_agrees_with_the_sorted_vector() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        for _ in 0..300 {
            let n = rng.random_range(0..300);
            let all = values(&mut rng, n);
            let mut sorted = all.clone();
            sorted.sort_unstable();
            let mut nonzero: Vec<u64> = all.iter().copied().filter(|&x| x > 0).collect();
            for rank in 0..=n as u64 + 1 {
                let expected = match rank {
                    0 => 0,
                    r => sorted.get(r as usize - 1).copied().unwrap_or(0),
                };
                assert_eq!(nth_with_zeros(&mut nonzero, n, rank), expected);
            }
        }
    }

    /// Nearest rank as the module documentation defines it.
    fn plain_rank(p: f64, n: u64) -> u64 {
        ((p * n as f64).ceil() as u64).clamp(1, n.max(1))
    }

    /// The metrics as defined: every per-call value kept by call, sorted
    /// whole, counted in one pass each.
    fn by_definition(calls: &[(u64, u64, u64, u32, u8)], policy_calls: usize) -> PolicyMetrics {
        let n = policy_calls as u64;
        let mut latency = vec![0u64; policy_calls];
        let mut sleep = vec![0u64; policy_calls];
        let mut attempts = vec![0u32; policy_calls];
        let mut end = vec![SUCCESS; policy_calls];
        let mut last_end = 0;
        for (i, &(e, l, s, a, code)) in calls.iter().enumerate() {
            last_end = last_end.max(e);
            latency[i] = l;
            sleep[i] = s;
            attempts[i] = a;
            end[i] = code;
        }
        let count = |c: u8| end.iter().filter(|&&e| e == c).count() as u64;
        let max_attempts = attempts.iter().copied().max().unwrap_or(0);
        let mut histogram = vec![0u64; max_attempts as usize];
        for &a in attempts.iter().filter(|&&a| a > 0) {
            histogram[a as usize - 1] += 1;
        }
        let attempt_rank = |p: f64| {
            let mut sorted = attempts.clone();
            sorted.sort_unstable();
            let r = plain_rank(p, n) as usize;
            // Calls without attempts are not in the histogram: a rank
            // among them reads the attempts of the calls after them.
            let zero = sorted.iter().filter(|&&a| a == 0).count();
            sorted[zero..]
                .iter()
                .scan(0, |seen, &a| {
                    *seen += 1;
                    Some((*seen, a))
                })
                .find(|&(seen, _)| seen >= r)
                .map_or(max_attempts, |(_, a)| a)
        };
        let sleep_total = sleep.iter().fold(0u64, |a, b| a.saturating_add(*b));
        latency.sort_unstable();
        sleep.sort_unstable();
        let pick = |v: &[u64], p: f64| v.get(plain_rank(p, n) as usize - 1).copied().unwrap_or(0);
        PolicyMetrics {
            policy: "p".to_owned(),
            calls: n,
            successes: count(SUCCESS),
            success_rate: count(SUCCESS) as f64 / n.max(1) as f64,
            failures: Failures {
                permanent_fail: count(1),
                deadline_exceeded: count(2),
                max_attempts_exceeded: count(3),
                class_attempts_exceeded: count(4),
                max_unknown_attempts_exceeded: count(5),
                budget_exhausted: count(6),
            },
            budget: None,
            attempts_total: 0,
            attempts_mean: 0.0,
            attempts_p50: attempt_rank(0.5),
            attempts_p90: attempt_rank(0.9),
            attempts_p99: attempt_rank(0.99),
            attempts_max: max_attempts,
            attempts_histogram: histogram,
            sleep_total_ms: ms(sleep_total),
            sleep_mean_ms: sleep_total as f64 / 1e6 / n.max(1) as f64,
            sleep_p99_ms: ms(pick(&sleep, 0.99)),
            latency_p50_ms: ms(pick(&latency, 0.5)),
            latency_p99_ms: ms(pick(&latency, 0.99)),
            latency_max_ms: ms(latency.last().copied().unwrap_or(0)),
            load_amplification: 0.0,
            peak_attempts_per_s: 0.0,
            finished_at_ms: ms(last_end),
            violations: 0,
            violation_list: Vec::new(),
            background: Vec::new(),
            load_per_bucket: Vec::new(),
            latency_cdf: (1..=CDF_POINTS)
                .map(|i| {
                    let p = i as f64 / CDF_POINTS as f64;
                    (ms(pick(&latency, p)), p)
                })
                .collect(),
        }
    }

    #[test]
    fn metrics_agree_with_their_definition_on_random_runs() {
        let reasons = [
            None,
            Some(StopReason::Permanent),
            Some(StopReason::DeadlineExceeded),
            Some(StopReason::MaxAttemptsExceeded),
            Some(StopReason::ClassAttemptsExceeded),
            Some(StopReason::MaxUnknownAttemptsExceeded),
            Some(StopReason::BudgetExhausted),
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for round in 0..200 {
            let n = if round % 10 == 0 {
                rng.random_range(RADIX_MIN..3 * RADIX_MIN)
            } else {
                rng.random_range(0..200)
            };
            // Now and then a call is left unrecorded (it counts as a
            // success with zeros).
            let recorded = if round % 7 == 0 {
                rng.random_range(0..=n)
            } else {
                n
            };
            let latency = values(&mut rng, recorded);
            let sleep = values(&mut rng, recorded);
            let calls: Vec<(u64, u64, u64, u32, u8)> = (0..recorded)
                .map(|i| {
                    let attempts = if rng.random_bool(0.05) {
                        0
                    } else {
                        rng.random_range(1..12)
                    };
                    let code = rng.random_range(0..reasons.len());
                    (rng.random(), latency[i], sleep[i], attempts, code as u8)
                })
                .collect();
            let mut r = CallResults::new(n);
            // Calls end in any order.
            let mut order: Vec<usize> = (0..recorded).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            for &i in &order {
                let (e, l, s, a, code) = calls[i];
                r.record(i, e, l, s, a, reasons[code as usize]);
            }
            let m = r.into_metrics("p", 1_000_000_000, Vec::new(), 0);
            assert_eq!(m, by_definition(&calls, n), "round {round}");
        }
    }
}
