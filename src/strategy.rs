//! Backoff strategies: how long to wait before the next attempt.
//!
//! A [`Strategy`] turns a [`DelayContext`] (which attempt failed, with which
//! class, and the strategy's previous delay in this call) and an RNG into a
//! delay. The built-in strategies are [`Backoff`] values; any
//! `Fn(&DelayContext, &mut dyn RngCore) -> Duration` is a strategy too
//! (wrap a closure in [`from_fn`] to have its argument types inferred).
//!
//! Built-ins compute in whole nanoseconds with saturating arithmetic: they
//! never overflow, never produce NaN, never panic and never round to whole
//! milliseconds, for every attempt number up to `u32::MAX`.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, RngCore};

use crate::class::ErrorClass;

/// What a strategy knows when it picks a delay.
///
/// `#[non_exhaustive]`: strategies may be told more in later versions.
/// The engine builds it; to call a strategy directly (in a test, say),
/// use [`DelayContext::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DelayContext {
    /// The 1-based number of the attempt that just failed.
    pub attempt: u32,
    /// The class of that failure.
    pub class: ErrorClass,
    /// The delay this strategy drew last time in this call for this class,
    /// before any hint or deadline adjustment; `None` on the first retry.
    pub previous: Option<Duration>,
}

impl DelayContext {
    /// The context of the failure of `attempt` with `class`, after the
    /// strategy's `previous` delay in this call (`None` on the first retry).
    pub const fn new(attempt: u32, class: ErrorClass, previous: Option<Duration>) -> Self {
        DelayContext {
            attempt,
            class,
            previous,
        }
    }
}

/// Computes the delay before the next attempt.
pub trait Strategy: Send + Sync {
    /// The delay to wait after the failure described by `ctx`.
    fn delay(&self, ctx: &DelayContext, rng: &mut dyn RngCore) -> Duration;

    /// The inclusive range [`delay`](Self::delay) promises to stay within
    /// for this attempt and previous delay, if the strategy documents one.
    /// Used by worst-case envelope analysis and by the simulator's
    /// violation checker. Closures document none.
    fn bounds(&self, attempt: u32, previous: Option<Duration>) -> Option<(Duration, Duration)> {
        let _ = (attempt, previous);
        None
    }

    /// The built-in [`Backoff`] this strategy is, if it is one, so that
    /// analyses such as the [`lint`](crate::lint) can reason about its
    /// formula. Closures and custom strategies are none.
    fn backoff(&self) -> Option<Backoff> {
        None
    }
}

impl<F> Strategy for F
where
    F: Fn(&DelayContext, &mut dyn RngCore) -> Duration + Send + Sync,
{
    fn delay(&self, ctx: &DelayContext, rng: &mut dyn RngCore) -> Duration {
        self(ctx, rng)
    }
}

/// A strategy as a policy holds it: the trait object, and the built-in
/// [`Backoff`] it is, when it is one, so that the engine can draw it
/// without a virtual call.
#[derive(Clone)]
pub(crate) struct ClassStrategy {
    /// The strategy.
    pub(crate) strategy: Arc<dyn Strategy>,
    /// The strategy itself when its type is [`Backoff`]; `None` for every
    /// other type (even one whose [`Strategy::backoff`] names a backoff).
    pub(crate) backoff: Option<Backoff>,
}

impl ClassStrategy {
    /// Holds `strategy`, noting whether it is a built-in backoff.
    pub(crate) fn new<S: Strategy + 'static>(strategy: S) -> ClassStrategy {
        let backoff = (&strategy as &dyn Any).downcast_ref::<Backoff>().copied();
        ClassStrategy {
            strategy: Arc::new(strategy),
            backoff,
        }
    }
}

/// Wraps a closure as a [`Strategy`], so that its argument types are
/// inferred.
///
/// ```
/// use std::time::Duration;
/// let linear = reflexio::strategy::from_fn(|ctx, _rng| Duration::from_millis(100) * ctx.attempt);
/// # let _ = linear;
/// ```
pub fn from_fn<F>(f: F) -> F
where
    F: Fn(&DelayContext, &mut dyn RngCore) -> Duration + Send + Sync,
{
    f
}

/// The default strategy of [`RetryPolicy::default`](crate::RetryPolicy) and
/// of a configuration that names none: decorrelated jitter from 250 ms up to
/// 5 s, as in the reference `@retry` defaults.
pub fn default_backoff() -> Backoff {
    Backoff::decorrelated_jitter(Duration::from_millis(250), Duration::from_secs(5))
}

/// The built-in backoff formulas. See [`Backoff`] for each one's bounds.
///
/// `#[non_exhaustive]`: new formulas may be added; [`BackoffKind::ALL`]
/// lists every one this version has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackoffKind {
    /// Uniform in `[base, 3 × previous]` (previous starts at base), capped at max.
    DecorrelatedJitter,
    /// `cap = min(max, base × 2^attempt)`, uniform in `[cap/2, cap]`.
    EqualJitter,
    /// `cap = min(max, base × 1.5^attempt)`, uniform in `[cap/2, cap]`.
    TokenBackoff,
    /// Uniform in `[0, min(max, base × 2^attempt)]`.
    FullJitter,
    /// Exactly `min(max, base × 2^(attempt − 1))`: base, 2 × base, 4 × base, ...
    Exponential,
    /// Exactly `base` every time.
    Constant,
}

impl BackoffKind {
    /// Every kind.
    pub const ALL: [BackoffKind; 6] = [
        BackoffKind::DecorrelatedJitter,
        BackoffKind::EqualJitter,
        BackoffKind::TokenBackoff,
        BackoffKind::FullJitter,
        BackoffKind::Exponential,
        BackoffKind::Constant,
    ];

    /// The snake_case name used in configuration files.
    pub const fn name(self) -> &'static str {
        match self {
            BackoffKind::DecorrelatedJitter => "decorrelated_jitter",
            BackoffKind::EqualJitter => "equal_jitter",
            BackoffKind::TokenBackoff => "token_backoff",
            BackoffKind::FullJitter => "full_jitter",
            BackoffKind::Exponential => "exponential",
            BackoffKind::Constant => "constant",
        }
    }

    /// The kind with this configuration name.
    pub fn from_name(name: &str) -> Option<BackoffKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The default `(base, max)` of this kind.
    pub const fn defaults(self) -> (Duration, Duration) {
        let base = Duration::from_millis(250);
        match self {
            BackoffKind::TokenBackoff => (base, Duration::from_secs(20)),
            BackoffKind::Constant => (base, base),
            _ => (base, Duration::from_secs(30)),
        }
    }
}

impl fmt::Display for BackoffKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A built-in backoff strategy: a [`BackoffKind`] with a base and a max.
///
/// Every delay lies within [`Backoff::bounds`] for the same attempt and
/// previous delay, and never above `max`.
///
/// **Decorrelated jitter's known weakness.** Once `3 × previous` exceeds
/// `max` the draw is capped, and since the next `previous` is then `max`,
/// the range becomes `[base, 3 × max]` capped at `max`: about two thirds of
/// all draws land exactly on `max`. A saturated decorrelated jitter stops
/// spreading clients out. Prefer equal jitter or token backoff where many
/// clients retry against the same service for long.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    kind: BackoffKind,
    /// The base delay in nanoseconds (a `Duration` of at most `u64::MAX`
    /// nanoseconds, kept as its count: delays are drawn in nanoseconds).
    base: u64,
    /// The largest delay in nanoseconds, never below `base`.
    max: u64,
}

/// Shown as the `Duration`s it holds.
impl fmt::Debug for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backoff")
            .field("kind", &self.kind)
            .field("base", &self.base())
            .field("max", &self.max())
            .finish()
    }
}

/// Hashes the kind and the `Duration`s it holds.
impl std::hash::Hash for Backoff {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.base().hash(state);
        self.max().hash(state);
    }
}

const MAX_NANOS: u64 = u64::MAX;

/// `d` in whole nanoseconds, saturated at `u64::MAX`.
#[inline]
fn nanos(d: Duration) -> u64 {
    // Exact without 128-bit arithmetic: a `Duration` holds whole seconds
    // and fewer than 10^9 nanoseconds.
    d.as_secs()
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(u64::from(d.subsec_nanos())))
        .unwrap_or(MAX_NANOS)
}

impl Backoff {
    /// A strategy of `kind` with `base` and `max`.
    ///
    /// Durations longer than `u64::MAX` nanoseconds (about 584 years) are
    /// saturated to that, and a `base` above `max` is lowered to `max` (a
    /// configuration file refuses it instead). For
    /// [`BackoffKind::Constant`], `max` is ignored and set to `base`.
    pub fn new(kind: BackoffKind, base: Duration, max: Duration) -> Backoff {
        let base = nanos(base);
        let max = match kind {
            BackoffKind::Constant => base,
            _ => nanos(max),
        };
        Backoff {
            kind,
            base: base.min(max),
            max,
        }
    }

    /// Decorrelated jitter: uniform in `[base, 3 × previous]`, capped at `max`.
    /// See the type docs for its weakness once saturated.
    pub fn decorrelated_jitter(base: Duration, max: Duration) -> Backoff {
        Self::new(BackoffKind::DecorrelatedJitter, base, max)
    }

    /// Equal jitter: `cap = min(max, base × 2^attempt)`, uniform in `[cap/2, cap]`.
    pub fn equal_jitter(base: Duration, max: Duration) -> Backoff {
        Self::new(BackoffKind::EqualJitter, base, max)
    }

    /// Token backoff, gentler than doubling: `cap = min(max, base × 1.5^attempt)`,
    /// uniform in `[cap/2, cap]`.
    pub fn token_backoff(base: Duration, max: Duration) -> Backoff {
        Self::new(BackoffKind::TokenBackoff, base, max)
    }

    /// Full jitter: uniform in `[0, min(max, base × 2^attempt)]`.
    pub fn full_jitter(base: Duration, max: Duration) -> Backoff {
        Self::new(BackoffKind::FullJitter, base, max)
    }

    /// Plain exponential backoff: `min(max, base × 2^(attempt − 1))`, no jitter.
    pub fn exponential(base: Duration, max: Duration) -> Backoff {
        Self::new(BackoffKind::Exponential, base, max)
    }

    /// The same `delay` every time.
    pub fn constant(delay: Duration) -> Backoff {
        Self::new(BackoffKind::Constant, delay, delay)
    }

    /// A strategy of `kind` with that kind's default base and max
    /// (250 ms and 30 s; 250 ms and 20 s for token backoff; 250 ms for constant).
    pub fn with_defaults(kind: BackoffKind) -> Backoff {
        let (base, max) = kind.defaults();
        Self::new(kind, base, max)
    }

    /// The formula.
    pub fn kind(&self) -> BackoffKind {
        self.kind
    }

    /// The base delay.
    pub fn base(&self) -> Duration {
        Duration::from_nanos(self.base)
    }

    /// The largest delay this strategy ever returns.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max)
    }

    /// `min(max, base × factor^exponent)` in nanoseconds, without overflow.
    #[inline]
    fn capped_growth(&self, factor: f64, exponent: u32) -> u64 {
        let (base, max) = (self.base, self.max);
        if base == 0 {
            return 0;
        }
        if factor == 2.0 {
            // Exact integer arithmetic for doubling: base × 2^exponent stays
            // within max exactly when base ≤ ⌊max / 2^exponent⌋, and a base
            // of at least 1 doubled 64 times is past every u64.
            return if exponent >= u64::BITS || base > max >> exponent {
                max
            } else {
                base << exponent
            };
        }
        let exponent = i32::try_from(exponent).unwrap_or(i32::MAX);
        let grown = base as f64 * factor.powi(exponent);
        if grown.is_nan() || grown >= max as f64 {
            max
        } else {
            // grown < max <= u64::MAX, so the cast is exact enough and in range.
            (grown as u64).min(max)
        }
    }

    /// [`bounds`](Self::bounds) in nanoseconds, the previous delay too.
    #[inline]
    fn bounds_nanos(&self, attempt: u32, previous: Option<u64>) -> (u64, u64) {
        let max = self.max;
        match self.kind {
            BackoffKind::DecorrelatedJitter => {
                let base = self.base;
                let prev = previous.unwrap_or(base);
                let hi = prev.saturating_mul(3).max(base);
                (base.min(max), hi.min(max))
            }
            BackoffKind::EqualJitter => {
                let cap = self.capped_growth(2.0, attempt);
                (cap / 2, cap)
            }
            BackoffKind::TokenBackoff => {
                let cap = self.capped_growth(1.5, attempt);
                (cap / 2, cap)
            }
            BackoffKind::FullJitter => (0, self.capped_growth(2.0, attempt)),
            BackoffKind::Exponential => {
                let d = self.capped_growth(2.0, attempt.saturating_sub(1));
                (d, d)
            }
            BackoffKind::Constant => (max, max),
        }
    }

    /// The inclusive range every delay for this attempt and previous delay
    /// lies in.
    #[inline]
    pub fn bounds(&self, attempt: u32, previous: Option<Duration>) -> (Duration, Duration) {
        let (lo, hi) = self.bounds_nanos(attempt, previous.map(nanos));
        (Duration::from_nanos(lo), Duration::from_nanos(hi))
    }

    /// [`Strategy::delay`] in nanoseconds: the delay after the failure of
    /// `attempt`, after this strategy's `previous` delay in the call.
    #[inline]
    pub(crate) fn delay_nanos(
        &self,
        attempt: u32,
        previous: Option<u64>,
        rng: &mut dyn RngCore,
    ) -> u64 {
        if self.kind == BackoffKind::DecorrelatedJitter {
            // Draw over the whole uncapped range, then cap: the documented
            // formula, saturation included.
            let base = self.base;
            let prev = previous.unwrap_or(base);
            let hi = prev.saturating_mul(3).max(base);
            let draw = if base >= hi {
                hi
            } else {
                rng.random_range(base..=hi)
            };
            return draw.min(self.max);
        }
        let (lo, hi) = self.bounds_nanos(attempt, previous);
        if lo >= hi {
            return hi;
        }
        rng.random_range(lo..=hi)
    }
}

impl Strategy for Backoff {
    #[inline]
    fn delay(&self, ctx: &DelayContext, rng: &mut dyn RngCore) -> Duration {
        Duration::from_nanos(self.delay_nanos(ctx.attempt, ctx.previous.map(nanos), rng))
    }

    #[inline]
    fn bounds(&self, attempt: u32, previous: Option<Duration>) -> Option<(Duration, Duration)> {
        Some(Backoff::bounds(self, attempt, previous))
    }

    fn backoff(&self) -> Option<Backoff> {
        Some(*self)
    }
}

impl fmt::Display for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            BackoffKind::Constant => write!(f, "constant({:?})", self.base),
            kind => write!(f, "{kind}(base {:?}, max {:?})", self.base, self.max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn equal_jitter_first_attempts() {
        let b = Backoff::equal_jitter(ms(250), ms(30_000));
        assert_eq!(b.bounds(1, None), (ms(250), ms(500)));
        assert_eq!(b.bounds(3, None), (ms(1000), ms(2000)));
        assert_eq!(b.bounds(u32::MAX, None), (ms(15_000), ms(30_000)));
    }

    #[test]
    fn token_backoff_grows_by_one_and_a_half() {
        let b = Backoff::token_backoff(ms(250), ms(20_000));
        assert_eq!(
            b.bounds(2, None),
            (
                Duration::from_micros(281_250),
                ms(562) + Duration::from_micros(500)
            )
        );
        assert_eq!(b.bounds(u32::MAX, None).1, ms(20_000));
    }

    #[test]
    fn exponential_starts_at_base() {
        let b = Backoff::exponential(ms(100), ms(1000));
        let delays: Vec<_> = (1..=6).map(|a| b.bounds(a, None).0).collect();
        assert_eq!(
            delays,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
    }

    #[test]
    fn decorrelated_jitter_range_follows_previous() {
        let b = Backoff::decorrelated_jitter(ms(250), ms(5000));
        assert_eq!(b.bounds(1, None), (ms(250), ms(750)));
        assert_eq!(b.bounds(2, Some(ms(1000))), (ms(250), ms(3000)));
        assert_eq!(b.bounds(9, Some(ms(5000))), (ms(250), ms(5000)));
    }

    #[test]
    fn sub_millisecond_delays_are_not_truncated() {
        let b = Backoff::full_jitter(Duration::from_micros(3), ms(1));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let ctx = DelayContext {
            attempt: 1,
            class: ErrorClass::Transient,
            previous: None,
        };
        let draws: Vec<_> = (0..50).map(|_| b.delay(&ctx, &mut rng)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_micros(6)));
        assert!(draws.iter().any(|d| d.subsec_nanos() % 1000 != 0));
    }

    /// The doubling formula as it was first written, in 128-bit arithmetic.
    fn doubled_wide(base: u64, max: u64, exponent: u32) -> u64 {
        if base == 0 {
            return 0;
        }
        match 1u128.checked_shl(exponent) {
            Some(scale) if exponent < 128 => {
                (u128::from(base).saturating_mul(scale)).min(u128::from(max)) as u64
            }
            _ => max,
        }
    }

    #[test]
    fn doubling_is_exact_at_every_edge() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let edges = [
            0,
            1,
            2,
            3,
            1_000_000_000,
            u64::MAX / 3,
            u64::MAX - 1,
            u64::MAX,
        ];
        let mut pairs: Vec<(u64, u64)> = edges
            .iter()
            .flat_map(|&b| edges.iter().map(move |&m| (b, m)))
            .collect();
        for _ in 0..2000 {
            let (a, b) = (rng.next_u64() >> (rng.next_u32() % 64), rng.next_u64());
            pairs.push((a, b));
        }
        for (base, max) in pairs {
            let backoff =
                Backoff::equal_jitter(Duration::from_nanos(base), Duration::from_nanos(max));
            let (base, max) = (backoff.base, backoff.max);
            for exponent in (0..=130).chain([u32::MAX - 1, u32::MAX]) {
                assert_eq!(
                    backoff.capped_growth(2.0, exponent),
                    doubled_wide(base, max, exponent),
                    "base {base} max {max} exponent {exponent}"
                );
            }
        }
    }

    #[test]
    fn nanoseconds_saturate_as_the_wide_count_does() {
        let durations = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::new(1, 999_999_999),
            Duration::from_nanos(u64::MAX),
            Duration::from_nanos(u64::MAX) + Duration::from_nanos(1),
            Duration::new(u64::MAX / 1_000_000_000, 999_999_999),
            Duration::new(u64::MAX / 1_000_000_000 + 1, 0),
            Duration::MAX,
        ];
        for d in durations {
            let wide = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
            assert_eq!(nanos(d), wide, "{d:?}");
        }
    }

    #[test]
    fn debug_and_hash_show_the_durations() {
        use std::hash::{BuildHasher, RandomState};
        let b = Backoff::equal_jitter(ms(250), Duration::new(30, 5));
        assert_eq!(
            format!("{b:?}"),
            "Backoff { kind: EqualJitter, base: 250ms, max: 30.000000005s }"
        );
        let hasher = RandomState::new();
        assert_eq!(
            hasher.hash_one(b),
            hasher.hash_one((BackoffKind::EqualJitter, ms(250), Duration::new(30, 5)))
        );
    }

    #[test]
    fn huge_durations_saturate() {
        let b = Backoff::equal_jitter(Duration::MAX, Duration::MAX);
        let (lo, hi) = b.bounds(u32::MAX, Some(Duration::MAX));
        assert_eq!(hi, Duration::from_nanos(u64::MAX));
        assert!(lo <= hi);
    }
}
