//! Retry budgets: a limit on retries across all the calls of a policy.
//!
//! Per-call caps bound what one call can cost; they cannot stop a retry
//! storm, where every call of a service retries into a service that is
//! already overloaded. A budget can: it is owned by a policy, shared by
//! every call, clone and bound context of it, and consulted by the engine
//! before every retry. When it refuses, the call stops at once with
//! [`StopReason::BudgetExhausted`](crate::StopReason::BudgetExhausted) and a
//! `budget_exhausted` event. The first attempt of a call is never refused:
//! a budget limits the load retries add, never the calls themselves.
//!
//! Budgets are sans-IO like the engine: they never read a clock. The driver
//! hands them the time on the policy's clock (virtual time in the
//! simulator), so the same budget runs in production and in simulation.
//!
//! Two kinds are built in, both lock-free (a few atomic operations, no
//! locks, no allocation after construction):
//!
//! * [`TokenBucket`], the AWS SDKs' retry quota: a bucket of `capacity`
//!   tokens, `retry_cost` tokens per retry (`timeout_cost` after a
//!   transient failure, such as a timeout), refilled by `success_refund`
//!   tokens per call that succeeds at its first attempt; a call that
//!   succeeds after retrying gets its last retry's cost back. It has no
//!   notion of time. Defaults: 500, 5, 10, 1.
//! * [`RatioBudget`], Finagle's and tower's retry budget: over a sliding
//!   `window` (ten slots of a tenth of it), retries may be at most
//!   `percent` of the calls started plus a reserve of `min_per_sec`
//!   retries per second. Defaults: 10 s, 10 per second, 20%.
//!
//! Each documents an exact bound (see [`BudgetSpec`]), which the property
//! tests and the simulator's checker hold it to. Any type implementing
//! [`Budget`] can be given to
//! [`RetryPolicyBuilder::budget`](crate::RetryPolicyBuilder::budget), and
//! an `Arc` of a budget is a budget, so several policies can share one.
//!
//! ```
//! use std::time::Duration;
//! use reflexio::budget::RatioBudget;
//! use reflexio::{Backoff, ClassifiedError, ManualClock, RetryPolicy, StopReason};
//!
//! let policy = RetryPolicy::builder()
//!     .strategy(Backoff::constant(Duration::from_millis(10)))
//!     .budget(RatioBudget::new(Duration::from_secs(10), 0, 20.0)?)
//!     .clock(ManualClock::new())
//!     .build()?;
//! // Five calls buy one retry (20%); every attempt fails here.
//! let mut attempts = Vec::new();
//! for _ in 0..5 {
//!     let err = policy.call(|| Err::<(), _>(ClassifiedError::transient("timed out"))).unwrap_err();
//!     assert_eq!(err.reason(), StopReason::BudgetExhausted);
//!     attempts.push(err.attempts());
//! }
//! assert_eq!(attempts, [1, 1, 1, 1, 2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::class::ErrorClass;

/// A limit on retries shared by all the calls of a policy.
///
/// The engine calls [`try_retry`](Self::try_retry) before every retry; the
/// drivers call [`call_started`](Self::call_started) once per call and
/// [`call_succeeded`](Self::call_succeeded) when a call succeeds. Every
/// method is handed the time on the policy's clock (the simulator's
/// virtual clock in simulation); a budget must not read a clock of its own.
///
/// Implementations are shared between threads and must be cheap on
/// `call_started` and `call_succeeded`: they run on every call, most of
/// which succeed at once.
pub trait Budget: Send + Sync {
    /// May a retry after a failure of `class` go ahead at `now`? If so,
    /// the budget counts it as spent. Never asked for a call's first
    /// attempt.
    fn try_retry(&self, now: Duration, class: ErrorClass) -> bool;

    /// A call's first attempt starts at `now`. Default: nothing.
    fn call_started(&self, now: Duration) {
        let _ = now;
    }

    /// A call succeeded at `now`; `last_retry` is the class of the failure
    /// before its last retry, `None` if it succeeded at its first attempt.
    /// Default: nothing.
    fn call_succeeded(&self, now: Duration, last_retry: Option<ErrorClass>) {
        let _ = (now, last_retry);
    }

    /// Whether the budget looks at the time it is handed. When `false` the
    /// drivers may skip reading the clock for it and pass zero. Read once,
    /// when the policy is built. Default `true`.
    fn uses_time(&self) -> bool {
        true
    }

    /// Whether [`call_succeeded`](Self::call_succeeded) does anything; when
    /// `false` the drivers skip it (and the clock read it may need). Read
    /// once, when the policy is built. Default `true`.
    fn counts_successes(&self) -> bool {
        true
    }

    /// The built-in kind and settings this budget follows, for reports and
    /// checkers; `None` for a budget of another kind. Default `None`.
    fn spec(&self) -> Option<BudgetSpec> {
        None
    }
}

impl<B: Budget + ?Sized> Budget for Arc<B> {
    fn try_retry(&self, now: Duration, class: ErrorClass) -> bool {
        (**self).try_retry(now, class)
    }

    fn call_started(&self, now: Duration) {
        (**self).call_started(now);
    }

    fn call_succeeded(&self, now: Duration, last_retry: Option<ErrorClass>) {
        (**self).call_succeeded(now, last_retry);
    }

    fn uses_time(&self) -> bool {
        (**self).uses_time()
    }

    fn counts_successes(&self) -> bool {
        (**self).counts_successes()
    }

    fn spec(&self) -> Option<BudgetSpec> {
        (**self).spec()
    }
}

/// Why a budget's settings were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetError {
    /// The setting, as named in the configuration (`capacity`, `window`, ...).
    pub field: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for BudgetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "budget `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for BudgetError {}

/// The whole numbers a token bucket's `capacity`, `retry_cost` and
/// `timeout_cost` take (a cost is also at most the capacity).
pub(crate) const TOKEN_COUNTS: std::ops::RangeInclusive<u32> = 1..=u32::MAX;

fn refuse(field: &'static str, message: impl Into<String>) -> BudgetError {
    BudgetError {
        field,
        message: message.into(),
    }
}

/// A built-in budget's kind and settings: what a `[budget]` table
/// describes, a fresh budget's blueprint, and its documented bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetSpec {
    /// A [`TokenBucket`].
    ///
    /// Bound: the bucket never holds fewer than zero nor more than
    /// `capacity` tokens, so over any stretch of time the costs of the
    /// retries admitted never exceed `capacity` plus the tokens refunded in
    /// that stretch.
    TokenBucket {
        /// Tokens in a full bucket (it starts full).
        capacity: u32,
        /// Tokens a retry costs.
        retry_cost: u32,
        /// Tokens a retry after a transient failure (a timeout, a reset
        /// connection) costs.
        timeout_cost: u32,
        /// Tokens given back by a call that succeeds at its first attempt.
        success_refund: u32,
    },
    /// A [`RatioBudget`].
    ///
    /// Time is cut into slots of `window / 10` from the clock's origin.
    /// Bound: whenever a retry is admitted in slot `k`, the retries
    /// admitted in slots `k-9..=k` (this one included) are at most
    /// `reserve + ⌊percent/100 × calls started in slots k-9..=k⌋`, where
    /// `reserve = ⌊min_per_sec × window⌋`.
    Ratio {
        /// The sliding window.
        window: Duration,
        /// Retries per second allowed whatever the traffic.
        min_per_sec: u32,
        /// Retries allowed per call started, in parts per million:
        /// `percent × 10_000` (200_000 is 20%).
        percent_ppm: u32,
    },
}

impl BudgetSpec {
    /// The kind's name in the configuration: `token_bucket` or `ratio`.
    pub const fn kind_name(&self) -> &'static str {
        match self {
            BudgetSpec::TokenBucket { .. } => "token_bucket",
            BudgetSpec::Ratio { .. } => "ratio",
        }
    }

    /// A fresh budget with these settings (a full bucket, an empty window).
    /// It does not check the settings: [`validate`](Self::validate) does
    /// (the constructors and the configuration call it).
    pub fn build(&self) -> Arc<dyn Budget> {
        match *self {
            BudgetSpec::TokenBucket {
                capacity,
                retry_cost,
                timeout_cost,
                success_refund,
            } => Arc::new(TokenBucket {
                spec: TokenSpec {
                    capacity,
                    retry_cost,
                    timeout_cost,
                    success_refund,
                },
                tokens: Padded(AtomicU64::new(u64::from(capacity))),
            }),
            BudgetSpec::Ratio {
                window,
                min_per_sec,
                percent_ppm,
            } => Arc::new(RatioBudget::from_parts(window, min_per_sec, percent_ppm)),
        }
    }

    /// The most attempts per call, on average over a long steady stretch
    /// of traffic, that the budget lets through when every retry fails (a
    /// service in trouble): `1 + percent/100` for a ratio budget (plus its
    /// reserve of `min_per_sec` retries per second, which the traffic's
    /// rate divides), `1 + success_refund / min(retry_cost, timeout_cost)`
    /// for a token bucket.
    pub fn amplification_when_failing(&self) -> f64 {
        match *self {
            BudgetSpec::TokenBucket {
                retry_cost,
                timeout_cost,
                success_refund,
                ..
            } => {
                let cost = retry_cost.min(timeout_cost);
                if cost == 0 {
                    f64::INFINITY
                } else {
                    1.0 + f64::from(success_refund) / f64::from(cost)
                }
            }
            BudgetSpec::Ratio { percent_ppm, .. } => 1.0 + f64::from(percent_ppm) / 1e6,
        }
    }

    /// The most attempts per call, on average over a long steady stretch,
    /// whatever the retries' outcomes. For a ratio budget the same as
    /// [`amplification_when_failing`](Self::amplification_when_failing);
    /// a token bucket refunds a retry that succeeds, so calls that each
    /// succeed at their second attempt cost it nothing:
    /// `max(2, 1 + success_refund / min cost)`.
    pub fn amplification(&self) -> f64 {
        match self {
            BudgetSpec::TokenBucket { .. } => self.amplification_when_failing().max(2.0),
            BudgetSpec::Ratio { .. } => self.amplification_when_failing(),
        }
    }

    /// The ratio budget's reserve: retries allowed per window whatever the
    /// traffic, `⌊min_per_sec × window⌋`; zero for a token bucket.
    pub fn reserve(&self) -> u64 {
        match *self {
            BudgetSpec::Ratio {
                window,
                min_per_sec,
                ..
            } => reserve(window, min_per_sec),
            BudgetSpec::TokenBucket { .. } => 0,
        }
    }
}

impl fmt::Display for BudgetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BudgetSpec::TokenBucket {
                capacity,
                retry_cost,
                timeout_cost,
                success_refund,
            } => write!(
                f,
                "token_bucket (capacity {capacity}, retry cost {retry_cost}, timeout cost \
                 {timeout_cost}, success refund {success_refund})"
            ),
            BudgetSpec::Ratio {
                window,
                min_per_sec,
                percent_ppm,
            } => write!(
                f,
                "ratio ({}% of calls, {min_per_sec} retries/s reserve, window {:?})",
                format_ppm_percent(percent_ppm),
                window
            ),
        }
    }
}

/// `percent_ppm` (parts per million of a call) as a percent, without
/// trailing zeros: 200_000 is "20", 125_000 is "12.5".
pub fn format_ppm_percent(ppm: u32) -> String {
    let whole = ppm / 10_000;
    let fraction = ppm % 10_000;
    if fraction == 0 {
        whole.to_string()
    } else {
        let digits = format!("{fraction:04}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// A counter on a cache line of its own, so that the budget's traffic does
/// not slow down readers of the policy next to it.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Padded<T>(T);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TokenSpec {
    capacity: u32,
    retry_cost: u32,
    timeout_cost: u32,
    success_refund: u32,
}

/// The AWS SDKs' retry quota: a bucket of tokens that retries spend and
/// clean successes refill. Lock-free: one atomic counter.
///
/// * A retry costs `retry_cost` tokens, or `timeout_cost` after a
///   [transient](ErrorClass::Transient) failure; with fewer tokens left
///   the retry is refused.
/// * A call that succeeds at its first attempt puts back `success_refund`
///   tokens; one that succeeds after retrying puts back the cost of its
///   last retry. The bucket never holds more than `capacity` (it starts
///   full).
///
/// It needs no time: a bucket drained by failures refills only as calls
/// succeed again. See [`BudgetSpec::TokenBucket`] for its bound.
pub struct TokenBucket {
    spec: TokenSpec,
    tokens: Padded<AtomicU64>,
}

impl fmt::Debug for TokenBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBucket")
            .field("spec", &self.spec)
            .field("tokens", &self.tokens())
            .finish()
    }
}

impl TokenBucket {
    /// The AWS SDKs' standard quota: capacity 500, retry cost 5, timeout
    /// cost 10, success refund 1.
    pub fn aws() -> TokenBucket {
        TokenBucket {
            spec: TokenSpec {
                capacity: 500,
                retry_cost: 5,
                timeout_cost: 10,
                success_refund: 1,
            },
            tokens: Padded(AtomicU64::new(500)),
        }
    }

    /// A bucket with these settings. The capacity and both costs must be at
    /// least 1, and no cost above the capacity (such a retry could never be
    /// paid for); the refund may be zero.
    pub fn new(
        capacity: u32,
        retry_cost: u32,
        timeout_cost: u32,
        success_refund: u32,
    ) -> Result<TokenBucket, BudgetError> {
        let spec = BudgetSpec::TokenBucket {
            capacity,
            retry_cost,
            timeout_cost,
            success_refund,
        };
        spec.validate()?;
        Ok(TokenBucket {
            spec: TokenSpec {
                capacity,
                retry_cost,
                timeout_cost,
                success_refund,
            },
            tokens: Padded(AtomicU64::new(u64::from(capacity))),
        })
    }

    /// The tokens left.
    pub fn tokens(&self) -> u64 {
        self.tokens.0.load(Ordering::Relaxed)
    }

    fn cost(&self, class: ErrorClass) -> u64 {
        u64::from(if class == ErrorClass::Transient {
            self.spec.timeout_cost
        } else {
            self.spec.retry_cost
        })
    }

    fn refund(&self, tokens: u64) {
        let capacity = u64::from(self.spec.capacity);
        // A full bucket (the usual case on the success path) costs one load.
        let mut current = self.tokens.0.load(Ordering::Relaxed);
        while current < capacity && tokens > 0 {
            let next = current.saturating_add(tokens).min(capacity);
            match self.tokens.0.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }
}

impl Budget for TokenBucket {
    fn try_retry(&self, _now: Duration, class: ErrorClass) -> bool {
        let cost = self.cost(class);
        self.tokens
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |tokens| {
                tokens.checked_sub(cost)
            })
            .is_ok()
    }

    fn call_succeeded(&self, _now: Duration, last_retry: Option<ErrorClass>) {
        let refund = match last_retry {
            None => u64::from(self.spec.success_refund),
            Some(class) => self.cost(class),
        };
        self.refund(refund);
    }

    fn uses_time(&self) -> bool {
        false
    }

    fn spec(&self) -> Option<BudgetSpec> {
        let s = self.spec;
        Some(BudgetSpec::TokenBucket {
            capacity: s.capacity,
            retry_cost: s.retry_cost,
            timeout_cost: s.timeout_cost,
            success_refund: s.success_refund,
        })
    }
}

/// The number of slots a [`RatioBudget`]'s window is cut into.
pub const RATIO_SLOTS: u64 = 10;

/// The shortest window a [`RatioBudget`] accepts.
pub const MIN_WINDOW: Duration = Duration::from_secs(1);
/// The longest window a [`RatioBudget`] accepts.
pub const MAX_WINDOW: Duration = Duration::from_secs(3600);
/// The largest percent a [`RatioBudget`] accepts (ten retries per call).
pub const MAX_PERCENT: f64 = 1000.0;

fn reserve(window: Duration, min_per_sec: u32) -> u64 {
    let r = u128::from(min_per_sec) * window.as_nanos() / 1_000_000_000;
    u64::try_from(r).unwrap_or(u64::MAX)
}

// A slot word: the slot's epoch (its number, modulo 2^32) in the high 32
// bits, a "sealed" bit, and a 31-bit count.
const SEALED: u64 = 1 << 31;
const COUNT: u64 = SEALED - 1;

fn pack(epoch: u64, count: u64) -> u64 {
    ((epoch & 0xFFFF_FFFF) << 32) | count.min(COUNT)
}

/// How many slots older than `epoch` the word's epoch is: 0 for the same
/// slot, `Some(n)` for older, `None` for a newer one.
fn age(word: u64, epoch: u64) -> Option<u64> {
    let stored = (word >> 32) as u32;
    let distance = (epoch as u32).wrapping_sub(stored);
    (distance < 1 << 31).then_some(u64::from(distance))
}

/// Finagle's and tower's retry budget: over a sliding window, retries may
/// be at most a percentage of the calls started, plus a small reserve per
/// second so that a quiet service can still retry.
///
/// The window is ten slots of `window / 10`, counted from the clock's
/// origin. Each call's start is counted in the slot of its start time;
/// each retry in the slot of the time it is asked for (or the newest slot
/// any retry has used, if a thread's clock reading lags another's). A
/// retry is admitted only if the retries already admitted in the ten
/// newest slots, plus this one, stay within `reserve +
/// ⌊percent/100 × calls started in them⌋`. See [`BudgetSpec::Ratio`].
///
/// Lock-free: a call start is one compare-and-swap on its slot; a retry
/// seals the older slots of the window (so that no late writer can change
/// them), sums them, and claims its place in the newest slot with a
/// compare-and-swap, so the bound holds exactly under any number of
/// threads.
pub struct RatioBudget {
    window: Duration,
    min_per_sec: u32,
    percent_ppm: u32,
    slot_nanos: u64,
    reserve: u64,
    starts: Padded<[AtomicU64; RATIO_SLOTS as usize]>,
    retries: Padded<[AtomicU64; RATIO_SLOTS as usize]>,
    /// The newest slot a retry has used.
    newest: Padded<AtomicU64>,
}

impl fmt::Debug for RatioBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RatioBudget")
            .field("window", &self.window)
            .field("min_per_sec", &self.min_per_sec)
            .field("percent_ppm", &self.percent_ppm)
            .finish_non_exhaustive()
    }
}

impl RatioBudget {
    /// Finagle's defaults: a 10 s window, 10 retries per second, 20% of
    /// calls.
    pub fn finagle() -> RatioBudget {
        RatioBudget::from_parts(Duration::from_secs(10), 10, 200_000)
    }

    /// A budget over `window` (1 s to 1 h), with a reserve of `min_per_sec`
    /// retries per second and `percent` retries per hundred calls (0 to
    /// 1000, to a ten-thousandth of a percent).
    pub fn new(
        window: Duration,
        min_per_sec: u32,
        percent: f64,
    ) -> Result<RatioBudget, BudgetError> {
        let percent_ppm = percent_to_ppm(percent)?;
        let spec = BudgetSpec::Ratio {
            window,
            min_per_sec,
            percent_ppm,
        };
        spec.validate()?;
        Ok(RatioBudget::from_parts(window, min_per_sec, percent_ppm))
    }

    fn from_parts(window: Duration, min_per_sec: u32, percent_ppm: u32) -> RatioBudget {
        let window_nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        RatioBudget {
            window,
            min_per_sec,
            percent_ppm,
            slot_nanos: (window_nanos / RATIO_SLOTS).max(1),
            reserve: reserve(window, min_per_sec),
            starts: Padded(Default::default()),
            retries: Padded(Default::default()),
            newest: Padded(AtomicU64::new(0)),
        }
    }

    /// The slot `now` falls in.
    pub fn slot_of(&self, now: Duration) -> u64 {
        // 64-bit nanoseconds (584 years) keep this a cheap division.
        let nanos = now
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(now.subsec_nanos()));
        nanos / self.slot_nanos
    }

    /// The retries the window ending at `newest` allows for `starts` call
    /// starts in it.
    fn allowance(&self, starts: u64) -> u64 {
        let share = u128::from(starts) * u128::from(self.percent_ppm) / 1_000_000;
        self.reserve
            .saturating_add(u64::try_from(share).unwrap_or(u64::MAX))
    }

    /// Makes the word of slot `epoch` in `slots` current (resetting an
    /// expired one) and returns it; `None` if it already belongs to a newer
    /// slot.
    fn current(slot: &AtomicU64, epoch: u64) -> Option<u64> {
        let mut word = slot.load(Ordering::Acquire);
        loop {
            match age(word, epoch) {
                Some(0) => return Some(word),
                Some(_) => {
                    let fresh = pack(epoch, 0);
                    match slot.compare_exchange_weak(
                        word,
                        fresh,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return Some(fresh),
                        Err(seen) => word = seen,
                    }
                }
                None => return None,
            }
        }
    }

    /// One pass of [`try_retry`](Budget::try_retry): `Some(admitted)`, or
    /// `None` when another thread moved the window on and the pass must be
    /// made again.
    fn try_retry_in(&self, epoch: u64) -> Option<bool> {
        let index = |e: u64| (e % RATIO_SLOTS) as usize;
        // Seal the older slots of the window and count their retries.
        let mut spent = 0u64;
        for back in 1..RATIO_SLOTS.min(epoch + 1) {
            let e = epoch - back;
            let slot = &self.retries.0[index(e)];
            let mut word = slot.load(Ordering::Acquire);
            loop {
                match age(word, e) {
                    // Left over from an older slot: no retries in this one;
                    // seal it empty, so that a late writer cannot add any.
                    Some(n) if n > 0 => match slot.compare_exchange_weak(
                        word,
                        pack(e, 0) | SEALED,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => break,
                        Err(seen) => word = seen,
                    },
                    Some(_) if word & SEALED != 0 => {
                        spent += word & COUNT;
                        break;
                    }
                    Some(_) => match slot.compare_exchange_weak(
                        word,
                        word | SEALED,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => {
                            spent += word & COUNT;
                            break;
                        }
                        Err(seen) => word = seen,
                    },
                    // The slot was reused for a newer one: the window moved.
                    None => return None,
                }
            }
        }
        // Count the calls started in the window.
        let mut starts = 0u64;
        for back in 0..RATIO_SLOTS.min(epoch + 1) {
            let e = epoch - back;
            let word = self.starts.0[index(e)].load(Ordering::Acquire);
            if age(word, e) == Some(0) {
                starts += word & 0xFFFF_FFFF;
            }
        }
        let allowance = self.allowance(starts);
        // Claim a place in the newest slot.
        let slot = &self.retries.0[index(epoch)];
        let mut word = Self::current(slot, epoch)?;
        loop {
            if word & SEALED != 0 || age(word, epoch) != Some(0) {
                return None;
            }
            let count = word & COUNT;
            if spent.saturating_add(count).saturating_add(1) > allowance || count == COUNT {
                return Some(false);
            }
            match slot.compare_exchange_weak(word, word + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(true),
                Err(seen) => word = seen,
            }
        }
    }
}

fn percent_to_ppm(percent: f64) -> Result<u32, BudgetError> {
    if !percent.is_finite() || !(0.0..=MAX_PERCENT).contains(&percent) {
        return Err(refuse(
            "percent",
            format!("must be a number from 0 to {MAX_PERCENT}, got {percent}"),
        ));
    }
    let ppm = (percent * 10_000.0).round();
    if (ppm - percent * 10_000.0).abs() > 1e-6 {
        return Err(refuse(
            "percent",
            format!("{percent} is finer than a ten-thousandth of a percent"),
        ));
    }
    // At most 1000 × 10_000: fits.
    Ok(ppm as u32)
}

/// Converts a percent (0 to 1000, to a ten-thousandth) to parts per
/// million of a call, as [`BudgetSpec::Ratio`] stores it.
pub fn percent_ppm(percent: f64) -> Result<u32, BudgetError> {
    percent_to_ppm(percent)
}

impl BudgetSpec {
    /// Checks the settings; the error names the setting and what is
    /// allowed.
    pub fn validate(&self) -> Result<(), BudgetError> {
        match *self {
            BudgetSpec::TokenBucket {
                capacity,
                retry_cost,
                timeout_cost,
                ..
            } => {
                let at_least = || format!("must be at least {}", TOKEN_COUNTS.start());
                if !TOKEN_COUNTS.contains(&capacity) {
                    return Err(refuse("capacity", at_least()));
                }
                for (field, cost) in [("retry_cost", retry_cost), ("timeout_cost", timeout_cost)] {
                    if !TOKEN_COUNTS.contains(&cost) {
                        return Err(refuse(field, at_least()));
                    }
                    if cost > capacity {
                        return Err(refuse(
                            field,
                            format!(
                                "{cost} is above the capacity ({capacity}): no retry could \
                                 ever be paid for"
                            ),
                        ));
                    }
                }
                Ok(())
            }
            BudgetSpec::Ratio {
                window,
                percent_ppm,
                ..
            } => {
                if window < MIN_WINDOW || window > MAX_WINDOW {
                    return Err(refuse(
                        "window",
                        format!("must be from 1s to 1h, got {window:?}"),
                    ));
                }
                if f64::from(percent_ppm) > MAX_PERCENT * 10_000.0 {
                    return Err(refuse(
                        "percent",
                        format!("must be from 0 to {MAX_PERCENT}"),
                    ));
                }
                Ok(())
            }
        }
    }
}

impl Budget for RatioBudget {
    fn try_retry(&self, now: Duration, _class: ErrorClass) -> bool {
        let own = self.slot_of(now);
        loop {
            let epoch = self.newest.0.fetch_max(own, Ordering::AcqRel).max(own);
            if let Some(admitted) = self.try_retry_in(epoch) {
                return admitted;
            }
        }
    }

    fn call_started(&self, now: Duration) {
        let epoch = self.slot_of(now);
        let slot = &self.starts.0[(epoch % RATIO_SLOTS) as usize];
        let mut word = slot.load(Ordering::Relaxed);
        loop {
            let next = match age(word, epoch) {
                Some(0) if word & 0xFFFF_FFFF == 0xFFFF_FFFF => return,
                Some(0) => word + 1,
                Some(_) => pack(epoch, 1),
                // The slot already serves a newer one: this start is too
                // old to matter (counting it would only loosen the bound).
                None => return,
            };
            match slot.compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => word = seen,
            }
        }
    }

    fn counts_successes(&self) -> bool {
        false
    }

    fn spec(&self) -> Option<BudgetSpec> {
        Some(BudgetSpec::Ratio {
            window: self.window,
            min_per_sec: self.min_per_sec,
            percent_ppm: self.percent_ppm,
        })
    }
}
