//! The envelope-violation checker.
//!
//! The checker watches every attempt and every decision the engine makes,
//! and checks them against the policy's envelope and its strategies'
//! documented bounds, independently of the engine's own bookkeeping:
//!
//! * an attempt over the global cap, or a retry after a class's (or the
//!   unknown) cap was reached ([`ViolationKind::AttemptOverCap`]);
//! * an attempt starting after the deadline
//!   ([`ViolationKind::AttemptAfterDeadline`]); after a sleep that ended
//!   late (`[client] oversleep`), an attempt planned for no later than the
//!   deadline may start up to the engine's wake-up tolerance
//!   ([`reflexio::engine::WAKE_TOLERANCE`]) past it, as it does in
//!   production;
//! * a sleep ending past the deadline ([`ViolationKind::SleepPastDeadline`]);
//! * a strategy draw outside its documented bounds, or a delay outside the
//!   range the draw, the hint and the deadline allow
//!   ([`ViolationKind::DelayOutOfBounds`]);
//! * a retry of a class that is never retried
//!   ([`ViolationKind::RetryOfNeverRetryClass`]);
//! * a call that did not end with exactly one terminal event
//!   ([`ViolationKind::TerminalEvents`]);
//! * more retries admitted than the policy's retry budget's own documented
//!   bound allows ([`ViolationKind::BudgetExceeded`]; see
//!   [`Checker::with_budget`]).
//!
//! The checker makes no decision; it only audits them.

use std::fmt;
use std::time::Duration;

use reflexio::engine::{Decision, Envelope, Retry};
use reflexio::strategy::Backoff;
use reflexio::{Classification, ErrorClass};
use serde::Serialize;

/// How many violations are kept with their details; more are counted.
pub const KEPT: usize = 100;

/// The kinds of envelope violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// An attempt beyond `max_attempts`, or a retry after a class's cap.
    AttemptOverCap,
    /// An attempt started after the deadline.
    AttemptAfterDeadline,
    /// A sleep ends past the deadline.
    SleepPastDeadline,
    /// A delay outside its strategy's bounds.
    DelayOutOfBounds,
    /// A retry of auth, permission or permanent.
    RetryOfNeverRetryClass,
    /// A call ended with no terminal event, or with more than one.
    TerminalEvents,
    /// The retry budget admitted more retries than its documented bound
    /// allows.
    BudgetExceeded,
}

impl ViolationKind {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            ViolationKind::AttemptOverCap => "attempt_over_cap",
            ViolationKind::AttemptAfterDeadline => "attempt_after_deadline",
            ViolationKind::SleepPastDeadline => "sleep_past_deadline",
            ViolationKind::DelayOutOfBounds => "delay_out_of_bounds",
            ViolationKind::RetryOfNeverRetryClass => "retry_of_never_retry_class",
            ViolationKind::TerminalEvents => "terminal_events",
            ViolationKind::BudgetExceeded => "budget_exceeded",
        }
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One violation, with the call it happened in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The call's id (0-based, in arrival order).
    pub call: u64,
    /// The attempt concerned.
    pub attempt: u32,
    /// What was violated.
    pub kind: ViolationKind,
    /// The numbers involved.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "call {} attempt {}: {}: {}",
            self.call, self.attempt, self.kind, self.detail
        )
    }
}

const NONE: u64 = u64::MAX;

/// The checker's own per-call record.
#[derive(Debug, Clone)]
pub struct Audit {
    failures: [u32; 8],
    previous: [u64; 8],
    terminal: u32,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            failures: [0; 8],
            previous: [NONE; 8],
            terminal: 0,
        }
    }
}

impl Audit {
    /// Counts an event the engine emitted.
    #[inline]
    pub fn event(&mut self, terminal: bool) {
        if terminal {
            self.terminal += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reflexio::strategy::BackoffKind;

    /// The strategy's own bounds, in nanoseconds, for `attempt` after the
    /// previous delay as the audit keeps it.
    fn direct(backoff: Backoff, attempt: u32, previous: u64) -> (u64, u64) {
        let previous = (previous != NONE).then(|| Duration::from_nanos(previous));
        let (lo, hi) = backoff.bounds(attempt, previous);
        (ns(lo), ns(hi))
    }

    #[test]
    fn kept_bounds_are_the_strategys_own() {
        // Every formula, with bases and maxima from zero to the largest,
        // attempts below and past the kept ones in an order that fills the
        // memo out of step, and every previous delay the audit can hold.
        let ms = Duration::from_millis;
        let limits = [
            (ms(3), ms(900)),
            (Duration::ZERO, ms(5)),
            (Duration::ZERO, Duration::ZERO),
            (ms(7), ms(7)),
            (Duration::from_nanos(1), Duration::MAX),
            (Duration::MAX, Duration::MAX),
        ];
        let attempts = [5, 0, 1, 70, 2, 63, 64, 9, u32::MAX, 40, 65, 200];
        let previous = [NONE, 0, 1, 50_000_000, u64::MAX / 3, u64::MAX / 3 + 1];
        for kind in BackoffKind::ALL {
            for (base, max) in limits {
                let backoff = Backoff::new(kind, base, max);
                let mut checker = Checker::new(Envelope::default(), [backoff; 8]);
                for attempt in attempts {
                    for previous in previous {
                        assert_eq!(
                            checker.bounds(2, attempt, previous),
                            direct(backoff, attempt, previous),
                            "{backoff:?} attempt {attempt} previous {previous}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn nanoseconds_saturate_as_the_wide_conversion_does() {
        let wide = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let edge = u64::MAX / 1_000_000_000;
        for d in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(u64::MAX),
            Duration::from_nanos(u64::MAX - 1),
            Duration::new(edge, 999_999_999),
            Duration::new(edge + 1, 0),
            Duration::new(u64::MAX, 999_999_999),
            Duration::from_millis(1500),
        ] {
            assert_eq!(ns(d), wide(d), "{d:?}");
        }
    }

    #[test]
    fn a_start_in_nanoseconds_is_audited_as_one_in_a_duration() {
        let ms = Duration::from_millis;
        let limit = Duration::from_nanos(u64::MAX);
        for deadline in [None, Some(ms(1000)), Some(limit), Some(Duration::MAX)] {
            let mut envelope = Envelope::default();
            envelope.deadline = deadline;
            envelope.max_attempts = 3;
            let backoffs = [Backoff::new(
                reflexio::strategy::BackoffKind::Exponential,
                ms(10),
                ms(100),
            ); 8];
            let mut by_ns = Checker::new(envelope, backoffs);
            let mut by_duration = by_ns.clone();
            let mut call = 0;
            for attempt in [1, 3, 4, u32::MAX] {
                for elapsed in [0, 999_999_999, 1_000_000_000, 1_000_000_001, u64::MAX] {
                    for late in [0, 1, 20_000_000] {
                        call += 1;
                        by_ns.attempt_started_after_sleep_ns(call, attempt, elapsed, late);
                        by_duration.attempt_started_after_sleep(
                            call,
                            attempt,
                            Duration::from_nanos(elapsed),
                            late,
                        );
                    }
                }
            }
            assert!(by_ns.count() > 0, "{deadline:?}");
            assert_eq!(by_ns.count(), by_duration.count(), "{deadline:?}");
            assert_eq!(by_ns.violations(), by_duration.violations(), "{deadline:?}");
        }
    }

    #[test]
    fn class_rules_follow_the_class_order() {
        for (i, class) in ErrorClass::ALL.into_iter().enumerate() {
            assert_eq!(class.index(), i, "{class}");
        }
    }

    /// A small deterministic generator for the test's inputs.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }

        fn pick<T: Copy>(&mut self, from: &[T]) -> T {
            from[self.below(from.len() as u64) as usize]
        }
    }

    #[test]
    fn the_quick_pass_reports_what_the_full_audit_reports() {
        // Two checkers see the same decisions: one through `decided`,
        // whose well-behaved retries skip the full audit, the other
        // through the full audit every time. Delays are drawn at, just
        // inside and just outside each bound, and past what nanoseconds
        // hold; envelopes with and without deadline, caps and hints.
        let ms = Duration::from_millis;
        let mut rng = Lcg(9);
        let (mut clean, mut broken) = (0, 0);
        let mut seen = std::collections::BTreeSet::new();
        for round in 0..400 {
            let mut envelope = Envelope::default();
            envelope.deadline = rng.pick(&[None, Some(ms(1000)), Some(Duration::MAX)]);
            envelope.max_attempts = rng.pick(&[1, 3, 6, 100, 100]);
            envelope.max_unknown_attempts = rng.pick(&[None, Some(1), Some(2)]);
            envelope.class_max_attempts[ErrorClass::RateLimit.index()] = rng.pick(&[None, Some(2)]);
            envelope.max_retry_after = rng.pick(&[ms(0), ms(500), Duration::MAX]);
            let kind = BackoffKind::ALL[round % BackoffKind::ALL.len()];
            let (base, max) = rng.pick(&[
                (ms(10), ms(400)),
                (Duration::ZERO, ms(40)),
                (ms(1), Duration::MAX),
                (Duration::MAX, Duration::MAX),
            ]);
            let backoffs = std::array::from_fn(|_| Backoff::new(kind, base, max));
            let mut quick = Checker::new(envelope, backoffs);
            let mut full = quick.clone();
            for call in 0..20 {
                let (mut a, mut b) = (Audit::default(), Audit::default());
                for attempt in 1..=rng.below(8) as u32 + 1 {
                    let class = if rng.below(2) == 0 {
                        rng.pick(&ErrorClass::ALL)
                    } else {
                        rng.pick(&[ErrorClass::Concurrency, ErrorClass::Transient])
                    };
                    let (lo, hi) = full.bounds(class.index(), attempt, b.previous[class.index()]);
                    let near = |v: u64| [v, v.saturating_sub(1), v.saturating_add(1)];
                    let mut choices = vec![0, u64::MAX];
                    choices.extend(near(lo));
                    choices.extend(near(hi));
                    choices.extend(near(lo / 2 + hi / 2));
                    let drawn = Duration::from_nanos(rng.pick(&choices));
                    let other = Duration::from_nanos(rng.pick(&choices));
                    let delay = rng.pick(&[drawn, drawn, other, Duration::MAX, ms(2000)]);
                    let strategy_delay = rng.pick(&[drawn, drawn, Duration::MAX]);
                    let failure = Classification {
                        class,
                        retry_after: rng.pick(&[None, None, Some(ms(300)), Some(Duration::MAX)]),
                    };
                    let elapsed = ms(rng.pick(&[0, 0, 0, 600, 999, 1000, 1001, 5000]));
                    let decision = if rng.below(6) == 0 {
                        Decision::Stop(reflexio::engine::StopReason::MaxAttemptsExceeded)
                    } else {
                        Decision::Retry(Retry {
                            delay,
                            strategy_delay,
                            next_attempt: attempt + rng.pick(&[1, 1, 1, 0, 7]),
                        })
                    };
                    quick.attempt_started(call, attempt, elapsed);
                    full.started_in_full(call, attempt, elapsed);
                    quick.decided(&mut a, call, attempt, failure, elapsed, &decision);
                    b.failures[class.index()] += 1;
                    if let Decision::Retry(retry) = &decision {
                        let before = full.count();
                        full.retry_in_full(&mut b, call, attempt, failure, elapsed, retry);
                        if full.count() == before {
                            clean += 1;
                        } else {
                            broken += 1;
                        }
                    }
                    assert_eq!((a.failures, a.previous), (b.failures, b.previous));
                }
                let terminal = rng.pick(&[0, 1, 1, 1, 2]);
                for _ in 0..terminal {
                    a.event(true);
                    b.event(true);
                }
                a.event(false);
                b.event(false);
                quick.finished(&a, call, 9);
                if b.terminal != 1 {
                    full.terminal_events(b.terminal, call, 9);
                }
            }
            assert_eq!(quick.count(), full.count(), "round {round}");
            assert_eq!(quick.violations(), full.violations(), "round {round}");
            seen.extend(full.violations().iter().map(|v| v.kind));
        }
        // Retries that keep the rules and retries that break them were
        // both seen, many times, and every kind a decision can break.
        assert!(
            clean > 1000 && broken > 1000,
            "{clean} clean, {broken} broken"
        );
        use ViolationKind as V;
        let every = [
            V::AttemptOverCap,
            V::AttemptAfterDeadline,
            V::SleepPastDeadline,
            V::DelayOutOfBounds,
            V::RetryOfNeverRetryClass,
            V::TerminalEvents,
        ];
        assert_eq!(seen, every.into_iter().collect());
    }
}

/// Checks one policy's decisions.
#[derive(Debug, Clone)]
pub struct Checker {
    /// Per class, what a retry is held to, worked out once.
    classes: [ClassRule; 8],
    envelope: Envelope,
    backoffs: [Backoff; 8],
    kept: Vec<Violation>,
    count: u64,
    budget: Option<BudgetAudit>,
}

/// What the checker holds a retry of one class to, worked out once from
/// the envelope and the class's strategy.
#[derive(Debug, Clone)]
struct ClassRule {
    /// Retries are allowed while the call's failures of the class stay
    /// below this: 0 for a class that is never retried, else its cap, or
    /// `u32::MAX` without one (that many failures get the full audit).
    retry_below: u32,
    /// How the strategy's bounds are found.
    shape: Shape,
    /// For [`Shape::ByAttempt`], the strategy's bounds in nanoseconds for
    /// attempts `0..len`, computed by the strategy on first need, up to
    /// [`MEMO_ATTEMPTS`].
    memo: Vec<(u64, u64)>,
}

/// How a strategy's bounds depend on the attempt and the previous delay.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// The same bounds always (constant).
    Fixed(u64, u64),
    /// Bounds that depend on the attempt alone: kept per attempt.
    ByAttempt,
    /// Decorrelated jitter: `[min(base, max), min(max, max(base, 3 ×
    /// previous))]`, with `previous = base` before the first retry.
    Decorrelated { base: u64, lo: u64, max: u64 },
    /// Any formula added later: the strategy's own, every time.
    Direct,
}

impl ClassRule {
    fn new(envelope: &Envelope, class: ErrorClass, backoff: Backoff) -> Self {
        use reflexio::strategy::BackoffKind as K;
        let retry_below = if class.is_retryable() {
            envelope.class_cap(class).unwrap_or(u32::MAX)
        } else {
            0
        };
        let shape = match backoff.kind() {
            K::Constant => {
                let (lo, hi) = backoff.bounds(1, None);
                Shape::Fixed(ns(lo), ns(hi))
            }
            K::Exponential | K::FullJitter | K::EqualJitter | K::TokenBackoff => Shape::ByAttempt,
            K::DecorrelatedJitter => {
                let (base, max) = (ns(backoff.base()), ns(backoff.max()));
                Shape::Decorrelated {
                    base,
                    lo: base.min(max),
                    max,
                }
            }
            _ => Shape::Direct,
        };
        ClassRule {
            retry_below,
            shape,
            memo: Vec::new(),
        }
    }
}

/// Whole nanoseconds, saturated at `u64::MAX`, without 128-bit arithmetic.
#[inline]
fn ns(d: Duration) -> u64 {
    d.as_secs()
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(u64::from(d.subsec_nanos())))
        .unwrap_or(u64::MAX)
}

/// Attempts whose strategy bounds the checker keeps, per class.
pub const MEMO_ATTEMPTS: u32 = 64;

impl Checker {
    /// A checker for a policy with this envelope and these strategies.
    pub fn new(envelope: Envelope, backoffs: [Backoff; 8]) -> Self {
        Checker {
            classes: std::array::from_fn(|i| {
                ClassRule::new(&envelope, ErrorClass::ALL[i], backoffs[i])
            }),
            envelope,
            backoffs,
            kept: Vec::new(),
            count: 0,
            budget: None,
        }
    }

    fn report(&mut self, call: u64, attempt: u32, kind: ViolationKind, detail: String) {
        self.count += 1;
        if self.kept.len() < KEPT {
            self.kept.push(Violation {
                call,
                attempt,
                kind,
                detail,
            });
        }
    }

    /// Attempt `attempt` of `call` starts `elapsed` after the call started.
    #[inline]
    pub fn attempt_started(&mut self, call: u64, attempt: u32, elapsed: Duration) {
        let late = self.envelope.deadline.is_some_and(|d| elapsed > d);
        if attempt > self.envelope.max_attempts || late {
            self.started_in_full(call, attempt, elapsed);
        }
    }

    /// Attempt `attempt` of `call` starts `elapsed` after the call started,
    /// its client having woken `late` ns after the end of the sleep the
    /// engine asked for (`[client] oversleep`; 0 for an exact wake-up or a
    /// first attempt): [`Checker::attempt_started`] when on time.
    #[inline]
    pub fn attempt_started_after_sleep(
        &mut self,
        call: u64,
        attempt: u32,
        elapsed: Duration,
        late: u64,
    ) {
        if late == 0 {
            self.attempt_started(call, attempt, elapsed);
        } else {
            self.started_late(call, attempt, elapsed, Duration::from_nanos(late));
        }
    }

    /// [`Checker::attempt_started_after_sleep`] with the elapsed time in
    /// whole nanoseconds, as the event loop keeps it: an attempt within
    /// the caps and the deadline, on time, is told apart by integer
    /// comparisons, without making a `Duration` of the elapsed time.
    #[inline]
    pub fn attempt_started_after_sleep_ns(
        &mut self,
        call: u64,
        attempt: u32,
        elapsed_ns: u64,
        late: u64,
    ) {
        // The deadline in nanoseconds, saturated: no elapsed time in
        // nanoseconds exceeds a deadline past what they hold.
        let deadline_ns = self.envelope.deadline.map_or(u64::MAX, ns);
        // Non-short-circuit: one branch for the lot.
        let quiet =
            (attempt <= self.envelope.max_attempts) & (elapsed_ns <= deadline_ns) & (late == 0);
        if !quiet {
            self.started_with_care(call, attempt, elapsed_ns, late);
        }
    }

    /// [`Checker::attempt_started_after_sleep_ns`] for an attempt over a
    /// cap, past the deadline or after a late wake-up.
    #[cold]
    #[inline(never)]
    fn started_with_care(&mut self, call: u64, attempt: u32, elapsed_ns: u64, late: u64) {
        self.attempt_started_after_sleep(call, attempt, Duration::from_nanos(elapsed_ns), late);
    }

    /// A start after a late wake-up. The engine's plan is held to the
    /// deadline as on an exact clock (the attempt was due at
    /// `elapsed - late`); the late wake-up to the driver's last look
    /// ([`reflexio::engine::Engine::before_retry`]), which lets an attempt
    /// go ahead at most [`WAKE_TOLERANCE`](reflexio::engine::WAKE_TOLERANCE)
    /// past the deadline.
    #[cold]
    #[inline(never)]
    fn started_late(&mut self, call: u64, attempt: u32, elapsed: Duration, late: Duration) {
        self.attempt_started(call, attempt, elapsed.saturating_sub(late));
        if let Some(deadline) = self.envelope.deadline {
            let latest = deadline.saturating_add(reflexio::engine::WAKE_TOLERANCE);
            if elapsed > latest {
                self.report(
                    call,
                    attempt,
                    ViolationKind::AttemptAfterDeadline,
                    format!(
                        "started at {elapsed:?}, {late:?} after its sleep was due to end: past the deadline {deadline:?} and the wake-up tolerance"
                    ),
                );
            }
        }
    }

    /// The full audit of an attempt's start.
    #[cold]
    #[inline(never)]
    fn started_in_full(&mut self, call: u64, attempt: u32, elapsed: Duration) {
        if attempt > self.envelope.max_attempts {
            let cap = self.envelope.max_attempts;
            self.report(
                call,
                attempt,
                ViolationKind::AttemptOverCap,
                format!("attempt {attempt} exceeds max_attempts = {cap}"),
            );
        }
        if let Some(deadline) = self.envelope.deadline {
            if elapsed > deadline {
                self.report(
                    call,
                    attempt,
                    ViolationKind::AttemptAfterDeadline,
                    format!("started at {elapsed:?}, deadline {deadline:?}"),
                );
            }
        }
    }

    /// Attempt `attempt` of `call` failed with `failure` at `elapsed`, and
    /// the engine decided `decision`.
    ///
    /// A retry that keeps every rule, as most do, is told apart by one
    /// pass over the numbers; any other gets the full audit, which reports
    /// what it breaks.
    #[inline]
    pub fn decided(
        &mut self,
        audit: &mut Audit,
        call: u64,
        attempt: u32,
        failure: Classification,
        elapsed: Duration,
        decision: &Decision,
    ) {
        let slot = failure.class.index();
        audit.failures[slot] += 1;
        let Decision::Retry(retry) = decision else {
            return;
        };
        let (lo, hi) = self.bounds(slot, attempt, audit.previous[slot]);
        let env = &self.envelope;
        let drawn = ns(retry.strategy_delay);
        let delay = ns(retry.delay);
        let hint = failure
            .retry_after
            .map_or(0, |h| ns(h.min(env.max_retry_after)));
        let (late, bottom) = match env.deadline {
            None => (false, lo),
            Some(deadline) => (
                elapsed.saturating_add(retry.delay) > deadline,
                lo.min(ns(deadline.saturating_sub(elapsed))),
            ),
        };
        // Non-short-circuit: one branch for the lot. A delay of u64::MAX
        // nanoseconds may stand for a longer one: the full audit decides.
        let kept = (audit.failures[slot] < self.classes[slot].retry_below)
            & (attempt < env.max_attempts)
            & (retry.next_attempt <= env.max_attempts)
            & !late
            & (lo <= drawn)
            & (drawn <= hi)
            & (bottom <= delay)
            & (delay <= hi.max(hint))
            & (drawn != u64::MAX)
            & (delay != u64::MAX);
        if kept {
            audit.previous[slot] = drawn;
        } else {
            self.retry_in_full(audit, call, attempt, failure, elapsed, retry);
        }
    }

    /// The full audit of a retry; the class's failure is already counted.
    #[cold]
    #[inline(never)]
    fn retry_in_full(
        &mut self,
        audit: &mut Audit,
        call: u64,
        attempt: u32,
        failure: Classification,
        elapsed: Duration,
        retry: &Retry,
    ) {
        let class = failure.class;
        let slot = class.index();
        let env = self.envelope;
        if !class.is_retryable() {
            self.report(
                call,
                attempt,
                ViolationKind::RetryOfNeverRetryClass,
                format!("{class} errors are never retried"),
            );
        }
        if let Some(cap) = env.class_cap(class) {
            if audit.failures[slot] >= cap {
                let field = if class == ErrorClass::Unknown {
                    "max_unknown_attempts".to_owned()
                } else {
                    format!("classes.{class}.max_attempts")
                };
                self.report(
                    call,
                    attempt,
                    ViolationKind::AttemptOverCap,
                    format!(
                        "retried after {} {class} failures; {field} = {cap}",
                        audit.failures[slot]
                    ),
                );
            }
        }
        if attempt >= env.max_attempts || retry.next_attempt > env.max_attempts {
            self.report(
                call,
                attempt,
                ViolationKind::AttemptOverCap,
                format!(
                    "retry to attempt {} beyond max_attempts = {}",
                    retry.next_attempt, env.max_attempts
                ),
            );
        }
        let remaining = env.deadline.map(|d| d.saturating_sub(elapsed));
        if let Some(deadline) = env.deadline {
            let wake = elapsed.saturating_add(retry.delay);
            if wake > deadline {
                self.report(
                    call,
                    attempt,
                    ViolationKind::SleepPastDeadline,
                    format!(
                        "sleep of {:?} at {elapsed:?} ends at {wake:?}, deadline {deadline:?}",
                        retry.delay
                    ),
                );
            }
        }
        let backoff = self.backoffs[slot];
        let (lo, hi) = self.bounds(slot, attempt, audit.previous[slot]);
        let (lo, hi) = (Duration::from_nanos(lo), Duration::from_nanos(hi));
        audit.previous[slot] = ns(retry.strategy_delay);
        if retry.strategy_delay < lo || retry.strategy_delay > hi {
            self.report(
                call,
                attempt,
                ViolationKind::DelayOutOfBounds,
                format!(
                    "{backoff} drew {:?} for attempt {attempt}, outside [{lo:?}, {hi:?}]",
                    retry.strategy_delay
                ),
            );
        }
        // The delay lies between the strategy's range (raised by the hint)
        // and the time left.
        let hint = failure
            .retry_after
            .map_or(Duration::ZERO, |h| h.min(env.max_retry_after));
        let top = hi.max(hint);
        let bottom = remaining.map_or(lo, |left| lo.min(left));
        if retry.delay > top || retry.delay < bottom {
            self.report(
                call,
                attempt,
                ViolationKind::DelayOutOfBounds,
                format!(
                    "delay {:?} outside [{bottom:?}, {top:?}] (strategy bounds, hint {hint:?}, deadline)",
                    retry.delay
                ),
            );
        }
    }

    /// The bounds, in nanoseconds, of class `slot`'s strategy for
    /// `attempt` after the `previous` delay (as the audit keeps it): the
    /// strategy's own, worked out once where they do not depend on the
    /// previous delay, and by decorrelated jitter's formula where they do.
    #[inline]
    fn bounds(&mut self, slot: usize, attempt: u32, previous: u64) -> (u64, u64) {
        let class = &self.classes[slot];
        match class.shape {
            Shape::Fixed(lo, hi) => (lo, hi),
            Shape::Decorrelated { base, lo, max } => {
                let previous = if previous == NONE { base } else { previous };
                (lo, previous.saturating_mul(3).max(base).min(max))
            }
            Shape::ByAttempt => match class.memo.get(attempt as usize) {
                Some(&kept) => kept,
                None => self.bounds_by_attempt(slot, attempt),
            },
            Shape::Direct => {
                let previous = (previous != NONE).then(|| Duration::from_nanos(previous));
                let (lo, hi) = self.backoffs[slot].bounds(attempt, previous);
                (ns(lo), ns(hi))
            }
        }
    }

    /// The bounds of a strategy that depends on the attempt alone, kept
    /// for attempts below [`MEMO_ATTEMPTS`].
    #[inline(never)]
    fn bounds_by_attempt(&mut self, slot: usize, attempt: u32) -> (u64, u64) {
        let backoff = self.backoffs[slot];
        let direct = |attempt| {
            let (lo, hi) = backoff.bounds(attempt, None);
            (ns(lo), ns(hi))
        };
        if attempt >= MEMO_ATTEMPTS {
            return direct(attempt);
        }
        let memo = &mut self.classes[slot].memo;
        if memo.capacity() == 0 {
            // One allocation per class and run, not one per doubling.
            memo.reserve_exact(MEMO_ATTEMPTS as usize);
        }
        while memo.len() <= attempt as usize {
            memo.push(direct(memo.len() as u32));
        }
        memo[attempt as usize]
    }

    /// `call` ended; it must have had exactly one terminal event.
    #[inline]
    pub fn finished(&mut self, audit: &Audit, call: u64, attempt: u32) {
        if audit.terminal != 1 {
            self.terminal_events(audit.terminal, call, attempt);
        }
    }

    #[cold]
    #[inline(never)]
    fn terminal_events(&mut self, terminal: u32, call: u64, attempt: u32) {
        self.report(
            call,
            attempt,
            ViolationKind::TerminalEvents,
            format!("{terminal} terminal events, expected exactly 1"),
        );
    }

    /// How many violations were found.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The first [`KEPT`] violations.
    pub fn violations(&self) -> &[Violation] {
        &self.kept
    }

    /// The violations found, and their total count.
    pub fn into_parts(self) -> (Vec<Violation>, u64) {
        (self.kept, self.count)
    }
}

// The budget's account.

use std::collections::VecDeque;

use reflexio::engine::StopReason;
use reflexio::BudgetSpec;

/// Retries a policy's budget admitted and refused, as the checker counted
/// them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetCounts {
    /// Retries the budget admitted.
    pub admitted: u64,
    /// Retries the budget refused (each ended its call).
    pub refused: u64,
}

/// The checker's own account of a retry budget: the retries it admitted
/// and refused, and its documented bound (see [`BudgetSpec`]), kept from
/// the events alone, without the budget's code.
#[derive(Debug, Clone)]
struct BudgetAudit {
    spec: Option<BudgetSpec>,
    counts: BudgetCounts,
    /// Ratio: `(slot, calls started, retries admitted)` for the slots of
    /// the newest window, oldest first.
    slots: VecDeque<(u64, u64, u64)>,
    /// Token bucket: the largest amount by which the retries' costs have
    /// run ahead of the refunds, over any stretch ending now.
    deficit: u64,
}

/// Slots in a ratio budget's window.
const WINDOW_SLOTS: u64 = 10;

impl BudgetAudit {
    fn slot_ns(window: Duration) -> u64 {
        (ns(window) / WINDOW_SLOTS).max(1)
    }

    /// The entry of slot `slot`, created if need be; slots that left the
    /// window ending at it are dropped.
    fn entry(&mut self, slot: u64) -> &mut (u64, u64, u64) {
        while self
            .slots
            .front()
            .is_some_and(|e| e.0 + WINDOW_SLOTS <= slot)
        {
            self.slots.pop_front();
        }
        let at = match self.slots.iter().position(|e| e.0 >= slot) {
            Some(i) if self.slots[i].0 == slot => i,
            Some(i) => {
                self.slots.insert(i, (slot, 0, 0));
                i
            }
            None => {
                self.slots.push_back((slot, 0, 0));
                self.slots.len() - 1
            }
        };
        &mut self.slots[at]
    }
}

impl Checker {
    /// Also checks the policy's retry budget, if it has one: `spec` is the
    /// bound the budget documents (`None` for a budget of another kind:
    /// its retries are then counted, not checked). Without this call the
    /// checker knows of no budget.
    pub fn with_budget(mut self, spec: Option<BudgetSpec>) -> Self {
        self.budget = Some(BudgetAudit {
            spec,
            counts: BudgetCounts::default(),
            slots: VecDeque::new(),
            deficit: 0,
        });
        self
    }

    /// A call of a budgeted policy started at `now` (virtual time).
    pub fn budget_call_started(&mut self, now: Duration) {
        let Some(audit) = &mut self.budget else {
            return;
        };
        if let Some(BudgetSpec::Ratio { window, .. }) = audit.spec {
            let slot = ns(now) / BudgetAudit::slot_ns(window);
            audit.entry(slot).1 += 1;
        }
    }

    /// Attempt `attempt` of `call` failed with `class` at `now` (virtual
    /// time) and the engine decided `decision`: counts a retry the budget
    /// admitted or refused, and checks the budget's bound.
    pub fn budget_decided(
        &mut self,
        call: u64,
        attempt: u32,
        now: Duration,
        class: ErrorClass,
        decision: &Decision,
    ) {
        let Some(audit) = &mut self.budget else {
            return;
        };
        match decision {
            Decision::Stop(StopReason::BudgetExhausted) => {
                audit.counts.refused += 1;
                return;
            }
            Decision::Stop(_) => return,
            Decision::Retry(_) => audit.counts.admitted += 1,
        }
        let problem = match audit.spec {
            None => None,
            Some(BudgetSpec::Ratio {
                window,
                min_per_sec,
                percent_ppm,
            }) => {
                let slot = ns(now) / BudgetAudit::slot_ns(window);
                audit.entry(slot).2 += 1;
                let (mut starts, mut retries) = (0u64, 0u64);
                for e in audit.slots.iter().filter(|e| e.0 + WINDOW_SLOTS > slot) {
                    starts += e.1;
                    retries += e.2;
                }
                let reserve = u128::from(min_per_sec) * window.as_nanos() / 1_000_000_000;
                let share = u128::from(starts) * u128::from(percent_ppm) / 1_000_000;
                let bound = reserve + share;
                (u128::from(retries) > bound).then(|| {
                    format!(
                        "{retries} retries admitted in the {window:?} window ending in slot {slot}, \
                         for {starts} calls started in it; the bound is {reserve} + {}% of them = {bound}",
                        reflexio::budget::format_ppm_percent(percent_ppm)
                    )
                })
            }
            Some(BudgetSpec::TokenBucket {
                capacity,
                retry_cost,
                timeout_cost,
                ..
            }) => {
                let cost = if class == ErrorClass::Transient {
                    timeout_cost
                } else {
                    retry_cost
                };
                audit.deficit = audit.deficit.saturating_add(u64::from(cost));
                (audit.deficit > u64::from(capacity)).then(|| {
                    format!(
                        "retries have spent {} tokens more than successes refunded; the bound is the capacity, {capacity}",
                        audit.deficit
                    )
                })
            }
        };
        if let Some(detail) = problem {
            self.report(call, attempt, ViolationKind::BudgetExceeded, detail);
        }
    }

    /// A call of a budgeted policy succeeded; `last_retry` is the class of
    /// the failure before its last retry (`None` if it made one attempt).
    pub fn budget_call_succeeded(&mut self, last_retry: Option<ErrorClass>) {
        let Some(audit) = &mut self.budget else {
            return;
        };
        if let Some(BudgetSpec::TokenBucket {
            retry_cost,
            timeout_cost,
            success_refund,
            ..
        }) = audit.spec
        {
            let refund = match last_retry {
                None => success_refund,
                Some(ErrorClass::Transient) => timeout_cost,
                Some(_) => retry_cost,
            };
            audit.deficit = audit.deficit.saturating_sub(u64::from(refund));
        }
    }

    /// The retries the budget admitted and refused; `None` without a
    /// budget.
    pub fn budget_counts(&self) -> Option<BudgetCounts> {
        self.budget.as_ref().map(|a| a.counts)
    }
}
