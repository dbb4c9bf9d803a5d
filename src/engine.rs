//! The sans-IO decision engine.
//!
//! [`Engine`] holds a policy's envelope and strategies and decides, and does
//! nothing else: it never reads a clock, sleeps or draws randomness of its
//! own. A driver starts a call with [`Engine::start`], runs an attempt, and
//! reports its outcome with [`Engine::on_success`] or
//! [`Engine::on_failure`], handing in the elapsed time since the call
//! started and an RNG. The engine answers with a [`Decision`] and emits one
//! [`Event`] per decision through the `emit` callback. The blocking and
//! async drivers in this crate, and the simulator, are loops around it.
//!
//! # The order of the checks
//!
//! When attempt `n` fails with class `c` at elapsed time `t`:
//!
//! 1. `c` is auth, permission or permanent: stop, [`StopReason::Permanent`].
//! 2. `c` is unknown and this is the `max_unknown_attempts`-th unknown
//!    failure: stop, [`StopReason::MaxUnknownAttemptsExceeded`].
//! 3. this is the `cap`-th failure of class `c` and `c` has its own cap:
//!    stop, [`StopReason::ClassAttemptsExceeded`].
//! 4. `n == max_attempts`: stop, [`StopReason::MaxAttemptsExceeded`].
//! 5. `t` has reached the deadline: stop, [`StopReason::DeadlineExceeded`].
//! 6. Otherwise the class's strategy draws a delay `d`. If the error
//!    carried a server hint `h`, it is first limited to the policy's
//!    `max_retry_after` ceiling, `h' = min(h, max_retry_after)`; the delay
//!    is then `max(d, h')`: the hint is a lower bound, the strategy's jitter
//!    still applies above it. If `h'` does not fit in the time left before
//!    the deadline, the server will refuse any attempt that could still be
//!    made, so the engine stops at once ([`StopReason::DeadlineExceeded`])
//!    instead of sleeping first. Finally the delay is capped to the time left
//!    before the deadline, so the next attempt starts no later than the
//!    deadline.
//! 7. If the policy has a retry [budget](crate::budget), it is asked last,
//!    at the call's start time plus `t`: if it refuses, stop,
//!    [`StopReason::BudgetExhausted`]. So a budget is spent only on retries
//!    that would otherwise be made, and the first attempt is never refused.
//!
//! The first check that matches decides; so a call never sleeps when it
//! already knows it will give up.
//!
//! A real sleep can overshoot the delay it was given, so the drivers in
//! this crate call [`Engine::before_retry`] when they wake: if they woke
//! more than [`WAKE_TOLERANCE`] past the deadline (a suspended process, a
//! starved thread), the retry is not made and the call ends with
//! [`StopReason::DeadlineExceeded`] for the last attempt made. A timer's
//! ordinary lateness is tolerated: every delay cut to end at the deadline
//! would otherwise wake a little late and be refused after sleeping for
//! nothing. (The simulator's sleeps are exact unless a scenario gives its
//! clients an oversleep; then it calls it too, when a client wakes.)

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;

use crate::budget::Budget;
use crate::class::ErrorClass;
use crate::classify::Classification;
use crate::strategy::{Backoff, ClassStrategy, DelayContext, Strategy};

/// The limits every call runs within.
///
/// `#[non_exhaustive]`: new limits may be added. Start from
/// [`Envelope::default`] and set the fields that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Envelope {
    /// The whole call, attempts and sleeps, ends by this much after it
    /// started; `None` for no deadline. Default 60 s.
    pub deadline: Option<Duration>,
    /// Attempts per call, counting the first. Default 6.
    pub max_attempts: u32,
    /// Attempts that may end with an unknown error; `None` turns the
    /// separate cap off (the global cap still applies). Default 2.
    pub max_unknown_attempts: Option<u32>,
    /// Per-class caps on attempts ending with that class, by
    /// [`ErrorClass::index`].
    pub class_max_attempts: [Option<u32>; 8],
    /// The longest server delay hint honoured; longer hints are cut to
    /// this. Default 60 s.
    pub max_retry_after: Duration,
}

impl Default for Envelope {
    fn default() -> Self {
        Envelope {
            deadline: Some(Duration::from_secs(60)),
            max_attempts: 6,
            max_unknown_attempts: Some(2),
            class_max_attempts: [None; 8],
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl Envelope {
    /// The cap on attempts ending with `class`, if the policy sets one
    /// (the unknown cap for [`ErrorClass::Unknown`]).
    pub fn class_cap(&self, class: ErrorClass) -> Option<u32> {
        match class {
            ErrorClass::Unknown => self.max_unknown_attempts,
            other => self.class_max_attempts[other.index()],
        }
    }

    /// Whether a failure of `class` can ever be followed by another attempt.
    pub fn may_retry(&self, class: ErrorClass) -> bool {
        class.is_retryable() && self.max_attempts > 1 && self.class_cap(class).is_none_or(|c| c > 1)
    }
}

/// Why a call stopped retrying.
///
/// `#[non_exhaustive]`: new ways to stop may be added; match with a
/// wildcard arm, or on [`StopReason::event_kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The error's class is never retried (auth, permission, permanent).
    Permanent,
    /// The deadline was reached, or the server's delay hint reaches past it.
    DeadlineExceeded,
    /// The global attempt cap was reached.
    MaxAttemptsExceeded,
    /// The failing class's own attempt cap was reached (reported as a
    /// `max_attempts_exceeded` event whose [`Event::reason`] tells it from
    /// the global cap).
    ClassAttemptsExceeded,
    /// The cap on attempts ending with an unknown error was reached.
    MaxUnknownAttemptsExceeded,
    /// The policy's retry budget refused the retry.
    BudgetExhausted,
}

impl StopReason {
    /// The terminal event this reason is reported as.
    pub const fn event_kind(self) -> EventKind {
        match self {
            StopReason::Permanent => EventKind::PermanentFail,
            StopReason::DeadlineExceeded => EventKind::DeadlineExceeded,
            StopReason::MaxAttemptsExceeded | StopReason::ClassAttemptsExceeded => {
                EventKind::MaxAttemptsExceeded
            }
            StopReason::MaxUnknownAttemptsExceeded => EventKind::MaxUnknownAttemptsExceeded,
            StopReason::BudgetExhausted => EventKind::BudgetExhausted,
        }
    }

    /// A stable snake_case name (`class_attempts_exceeded` is the only one
    /// that differs from its event's name).
    pub const fn name(self) -> &'static str {
        match self {
            StopReason::ClassAttemptsExceeded => "class_attempts_exceeded",
            other => other.event_kind().name(),
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of an [`Event`].
///
/// `#[non_exhaustive]`: new events may be added; match with a wildcard arm
/// (or use [`EventKind::is_terminal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// An attempt succeeded. Terminal.
    Success,
    /// An attempt failed and another will follow after `delay`. (Only if a
    /// real sleep overran the deadline by more than [`WAKE_TOLERANCE`] is
    /// it followed instead by `deadline_exceeded` for the same attempt;
    /// see [`Engine::before_retry`].)
    Retry,
    /// The error's class is never retried. Terminal.
    PermanentFail,
    /// The deadline stopped the call. Terminal.
    DeadlineExceeded,
    /// The global or a class attempt cap stopped the call. Terminal.
    MaxAttemptsExceeded,
    /// The unknown-error cap stopped the call. Terminal.
    MaxUnknownAttemptsExceeded,
    /// The policy's retry budget refused the retry. Terminal.
    BudgetExhausted,
}

impl EventKind {
    /// The event's name: `success`, `retry`, `permanent_fail`,
    /// `deadline_exceeded`, `max_attempts_exceeded`,
    /// `max_unknown_attempts_exceeded` or `budget_exhausted`.
    pub const fn name(self) -> &'static str {
        match self {
            EventKind::Success => "success",
            EventKind::Retry => "retry",
            EventKind::PermanentFail => "permanent_fail",
            EventKind::DeadlineExceeded => "deadline_exceeded",
            EventKind::MaxAttemptsExceeded => "max_attempts_exceeded",
            EventKind::MaxUnknownAttemptsExceeded => "max_unknown_attempts_exceeded",
            EventKind::BudgetExhausted => "budget_exhausted",
        }
    }

    /// Whether the event ends its call.
    pub const fn is_terminal(self) -> bool {
        !matches!(self, EventKind::Retry)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One structured observation of a call, handed to hooks.
///
/// Only the engine creates events; the struct is `#[non_exhaustive]` so
/// that new tags can be added without breaking hooks that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event<'a> {
    /// What happened.
    pub kind: EventKind,
    /// Why the call stopped (terminal failure events only): tells a class
    /// cap ([`StopReason::ClassAttemptsExceeded`]) from the global cap
    /// ([`StopReason::MaxAttemptsExceeded`]), both reported as
    /// `max_attempts_exceeded`. `None` for `success` and `retry`.
    pub reason: Option<StopReason>,
    /// The operation's name (empty when the call was not named).
    pub operation: &'a str,
    /// The 1-based number of the attempt that just ended.
    pub attempt: u32,
    /// The delay before the next attempt (retry events only).
    pub delay: Option<Duration>,
    /// The failure's class (failure events only).
    pub class: Option<ErrorClass>,
    /// The failure's error type name (failure events only).
    pub error_type: Option<&'a str>,
    /// The failure's error as text, when the classifier can show it
    /// ([`Classifier::describe`](crate::Classifier::describe); the
    /// [`DefaultClassifier`](crate::DefaultClassifier) shows the error's
    /// `Display`). Borrowed: it is formatted only if a hook formats it.
    /// `None` for success events.
    pub error: Option<ErrorText<'a>>,
    /// Time since the call started: when the attempt ended (or, for a
    /// `deadline_exceeded` from [`Engine::before_retry`], when the sleep
    /// before the next attempt did).
    pub elapsed: Duration,
}

/// A failed attempt's error, borrowed for hooks and formatted only on
/// demand: `event.error.map(|e| e.to_string())`, or `{}` in a format string.
///
/// Made from an error with [`chain`](Self::chain), it shows the error and
/// its whole [`source`](std::error::Error::source) chain, joined by `: `
/// (`db error: ERROR: could not serialize access ...`), leaving out a
/// source whose text the text before it already ends with; made with
/// [`new`](Self::new), the value's own `Display`.
#[derive(Clone, Copy)]
pub struct ErrorText<'a>(TextOf<'a>);

#[derive(Clone, Copy)]
enum TextOf<'a> {
    Display(&'a (dyn fmt::Display + 'a)),
    Chain(&'a (dyn std::error::Error + 'a)),
}

impl<'a> ErrorText<'a> {
    /// The text of any displayable value.
    pub fn new(value: &'a (dyn fmt::Display + 'a)) -> Self {
        ErrorText(TextOf::Display(value))
    }

    /// The text of an error followed by its sources'.
    pub fn chain(error: &'a (dyn std::error::Error + 'a)) -> Self {
        ErrorText(TextOf::Chain(error))
    }
}

impl fmt::Display for ErrorText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            TextOf::Display(value) => value.fmt(f),
            TextOf::Chain(error) => {
                // Many errors already show their source in their own text:
                // a cause whose text ends the text so far is not repeated.
                let mut text = error.to_string();
                let mut source = error.source();
                while let Some(cause) = source {
                    let more = cause.to_string();
                    if !text.ends_with(&more) {
                        text.push_str(": ");
                        text.push_str(&more);
                    }
                    source = cause.source();
                }
                f.write_str(&text)
            }
        }
    }
}

impl fmt::Debug for ErrorText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Compares the texts (formatting both).
impl PartialEq for ErrorText<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for ErrorText<'_> {}

/// The engine's answer to a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Sleep, then make another attempt.
    Retry(Retry),
    /// Give up now; the caller gets the last error back.
    Stop(StopReason),
}

/// The details of a retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// How long to sleep before the next attempt.
    pub delay: Duration,
    /// What the strategy drew, before the hint and the deadline adjusted it.
    pub strategy_delay: Duration,
    /// The 1-based number of the attempt that will follow.
    pub next_attempt: u32,
}

/// The tags a driver attaches to a failure's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure<'a> {
    /// The failure's classification.
    pub classification: Classification,
    /// The error's type name.
    pub error_type: &'a str,
    /// The error as text, if the driver can show it.
    pub error: Option<ErrorText<'a>>,
}

const NO_PREVIOUS: u64 = u64::MAX;

/// How late past the deadline a real sleep may wake and still start the
/// retry it was for; see [`Engine::before_retry`].
pub const WAKE_TOLERANCE: Duration = Duration::from_millis(10);

/// The per-call state: attempts made and per-class counts.
#[derive(Debug, Clone)]
pub struct CallState {
    attempt: u32,
    failures: [u32; 8],
    /// The last strategy draw per class, in nanoseconds; `NO_PREVIOUS`
    /// before the first (kept compact: the simulator holds one per call
    /// in flight).
    previous: [u64; 8],
    /// The class of the last failure (its index).
    last_class: u8,
    finished: bool,
    /// When the call started on the policy's clock, in nanoseconds: the
    /// budget's time is this plus the elapsed time.
    origin: u64,
}

impl CallState {
    /// The 1-based number of the attempt in progress (or the last one, once
    /// the call has ended).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How many attempts ended with `class` so far.
    pub fn failures(&self, class: ErrorClass) -> u32 {
        self.failures[class.index()]
    }

    /// Whether the call has ended (a terminal event was emitted).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The class of the failure before the last retry, if the call retried.
    pub fn last_retry(&self) -> Option<ErrorClass> {
        (self.attempt > 1).then(|| ErrorClass::ALL[usize::from(self.last_class)])
    }

    /// The time on the policy's clock `elapsed` after the call started.
    fn at(&self, elapsed: Duration) -> Duration {
        Duration::from_nanos(self.origin).saturating_add(elapsed)
    }
}

/// A policy's decision engine: its envelope, a strategy per class and,
/// optionally, a retry budget shared by all its calls (and its clones).
#[derive(Clone)]
pub struct Engine {
    envelope: Envelope,
    strategies: [Arc<dyn Strategy>; 8],
    /// Per class, the built-in backoff its strategy is, when the policy
    /// knew it (see [`ClassStrategy`]): drawn directly, without a virtual
    /// call. `None` for every strategy handed in as a trait object.
    backoffs: [Option<Backoff>; 8],
    budget: Option<Arc<dyn Budget>>,
    /// The budget's [`Budget::uses_time`] and
    /// [`Budget::counts_successes`], read once.
    budget_uses_time: bool,
    budget_counts_successes: bool,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("envelope", &self.envelope)
            .field("budget", &self.budget.as_ref().map(|b| b.spec()))
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `envelope` with `strategies[class.index()]` for each
    /// class. Strategies of classes that are never retried are never asked.
    pub fn new(envelope: Envelope, strategies: [Arc<dyn Strategy>; 8]) -> Engine {
        Engine {
            envelope,
            strategies,
            backoffs: [None; 8],
            budget: None,
            budget_uses_time: false,
            budget_counts_successes: false,
        }
    }

    /// An engine over `envelope` with `strategies[class.index()]` for each
    /// class: the same engine as [`new`](Self::new) with their trait
    /// objects, except that built-in backoffs are drawn without a virtual
    /// call.
    pub(crate) fn with_strategies(envelope: Envelope, strategies: [ClassStrategy; 8]) -> Engine {
        Engine {
            backoffs: strategies.each_ref().map(|s| s.backoff),
            ..Engine::new(envelope, strategies.map(|s| s.strategy))
        }
    }

    /// The same engine with `budget` (or none) consulted before every
    /// retry. Clones of the engine share it.
    pub fn with_budget(mut self, budget: Option<Arc<dyn Budget>>) -> Engine {
        self.budget_uses_time = budget.as_ref().is_some_and(|b| b.uses_time());
        self.budget_counts_successes = budget.as_ref().is_some_and(|b| b.counts_successes());
        self.budget = budget;
        self
    }

    /// Whether the policy has a budget that looks at the time.
    pub(crate) fn budget_uses_time(&self) -> bool {
        self.budget_uses_time
    }

    /// Whether the policy has a budget that counts successes.
    pub(crate) fn budget_counts_successes(&self) -> bool {
        self.budget_counts_successes
    }

    /// The retry budget, if the policy has one.
    pub fn budget(&self) -> Option<&Arc<dyn Budget>> {
        self.budget.as_ref()
    }

    /// The envelope.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The strategy used for `class`.
    pub fn strategy(&self, class: ErrorClass) -> &Arc<dyn Strategy> {
        &self.strategies[class.index()]
    }

    /// Begins a call: its first attempt is about to start. The call's
    /// start is taken as time zero on the budget's clock and the budget is
    /// not told about it; a driver of a policy with a budget uses
    /// [`start_at`](Self::start_at).
    pub fn start(&self) -> CallState {
        self.state_at(Duration::ZERO)
    }

    /// Begins a call whose first attempt starts at `now` on the policy's
    /// clock (the simulator's virtual clock), and tells the budget, if any.
    /// The budget is then asked at `now` plus the elapsed times handed to
    /// [`on_failure`](Self::on_failure).
    pub fn start_at(&self, now: Duration) -> CallState {
        if let Some(budget) = &self.budget {
            budget.call_started(now);
        }
        self.state_at(now)
    }

    /// A call state starting at `origin`, the budget not told.
    pub(crate) fn state_at(&self, origin: Duration) -> CallState {
        CallState {
            attempt: 1,
            failures: [0; 8],
            previous: [NO_PREVIOUS; 8],
            last_class: 0,
            finished: false,
            origin: u64::try_from(origin.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// Tells the budget, if any, that a call succeeded at `now` on the
    /// policy's clock, after the retries `state` made (none without a
    /// state). [`on_success`](Self::on_success) does this itself.
    pub(crate) fn budget_success(&self, state: Option<&CallState>, now: Duration) {
        if let Some(budget) = self
            .budget
            .as_ref()
            .filter(|_| self.budget_counts_successes)
        {
            budget.call_succeeded(now, state.and_then(CallState::last_retry));
        }
    }

    /// The current attempt succeeded at `elapsed`. Tells the budget, if
    /// any, and emits the `success` event.
    #[inline]
    pub fn on_success(
        &self,
        state: &mut CallState,
        operation: &str,
        elapsed: Duration,
        emit: &mut dyn FnMut(&Event<'_>),
    ) {
        if self.budget_counts_successes {
            self.budget_success(Some(state), state.at(elapsed));
        }
        state.finished = true;
        emit(&Event {
            kind: EventKind::Success,
            reason: None,
            operation,
            attempt: state.attempt,
            delay: None,
            class: None,
            error_type: None,
            error: None,
            elapsed,
        });
    }

    /// The retry the engine asked for is about to start at `elapsed`: a
    /// last check against the deadline. The engine caps every delay to the
    /// time left, so on an exact clock no retry starts after the deadline;
    /// a real sleep can wake late, so a driver on a real clock calls this
    /// after each sleep.
    ///
    /// A wake-up up to [`WAKE_TOLERANCE`] past the deadline goes ahead: that
    /// much is a timer's ordinary lateness (tokio rounds sleeps up to the
    /// millisecond), and refusing it would make every delay cut to end at
    /// the deadline sleep for nothing. Later than that (a suspended
    /// process, a starved thread), the call is over: the planned attempt is
    /// not made, `state` goes back to the last attempt made, and a
    /// `deadline_exceeded` event is emitted for it, at `elapsed`, with its
    /// class, `error_type` (the type of the error it failed with) and
    /// `error` (its text, if the driver has it).
    ///
    /// Returns `None` to go ahead. Calls without a deadline, first attempts
    /// and finished calls always go ahead.
    pub fn before_retry(
        &self,
        state: &mut CallState,
        operation: &str,
        error_type: &str,
        error: Option<ErrorText<'_>>,
        elapsed: Duration,
        emit: &mut dyn FnMut(&Event<'_>),
    ) -> Option<StopReason> {
        let deadline = self.envelope.deadline?;
        let latest = deadline.saturating_add(WAKE_TOLERANCE);
        if state.finished || state.attempt <= 1 || elapsed <= latest {
            return None;
        }
        state.attempt -= 1;
        state.finished = true;
        emit(&Event {
            kind: EventKind::DeadlineExceeded,
            reason: Some(StopReason::DeadlineExceeded),
            operation,
            attempt: state.attempt,
            delay: None,
            class: Some(ErrorClass::ALL[usize::from(state.last_class)]),
            error_type: Some(error_type),
            error,
            elapsed,
        });
        Some(StopReason::DeadlineExceeded)
    }

    /// The current attempt failed at `elapsed` (time since the call
    /// started). Decides whether and when to retry, and emits the event.
    pub fn on_failure(
        &self,
        state: &mut CallState,
        operation: &str,
        failure: Failure<'_>,
        elapsed: Duration,
        rng: &mut dyn RngCore,
        emit: &mut dyn FnMut(&Event<'_>),
    ) -> Decision {
        let class = failure.classification.class;
        let attempt = state.attempt;
        let decision = self.decide(state, failure.classification, elapsed, rng);
        let (kind, reason, delay) = match decision {
            Decision::Retry(retry) => {
                state.attempt = retry.next_attempt;
                (EventKind::Retry, None, Some(retry.delay))
            }
            Decision::Stop(reason) => {
                state.finished = true;
                (reason.event_kind(), Some(reason), None)
            }
        };
        emit(&Event {
            kind,
            reason,
            operation,
            attempt,
            delay,
            class: Some(class),
            error_type: Some(failure.error_type),
            error: failure.error,
            elapsed,
        });
        decision
    }

    fn decide(
        &self,
        state: &mut CallState,
        classification: Classification,
        elapsed: Duration,
        rng: &mut dyn RngCore,
    ) -> Decision {
        let env = &self.envelope;
        let class = classification.class;
        let slot = class.index();
        state.failures[slot] = state.failures[slot].saturating_add(1);
        state.last_class = slot as u8;

        if !class.is_retryable() {
            return Decision::Stop(StopReason::Permanent);
        }
        if let Some(cap) = env.class_cap(class) {
            if state.failures[slot] >= cap {
                return Decision::Stop(if class == ErrorClass::Unknown {
                    StopReason::MaxUnknownAttemptsExceeded
                } else {
                    StopReason::ClassAttemptsExceeded
                });
            }
        }
        if state.attempt >= env.max_attempts {
            return Decision::Stop(StopReason::MaxAttemptsExceeded);
        }
        let remaining = match env.deadline {
            Some(deadline) if elapsed >= deadline => {
                return Decision::Stop(StopReason::DeadlineExceeded)
            }
            Some(deadline) => Some(deadline - elapsed),
            None => None,
        };

        let previous = state.previous[slot];
        let previous = (previous != NO_PREVIOUS).then_some(previous);
        let (drawn, drawn_nanos) = match &self.backoffs[slot] {
            Some(backoff) => {
                let nanos = backoff.delay_nanos(state.attempt, previous, rng);
                (Duration::from_nanos(nanos), nanos)
            }
            None => {
                let ctx = DelayContext {
                    attempt: state.attempt,
                    class,
                    previous: previous.map(Duration::from_nanos),
                };
                let drawn = self.strategies[slot].delay(&ctx, rng);
                (drawn, u64::try_from(drawn.as_nanos()).unwrap_or(u64::MAX))
            }
        };
        state.previous[slot] = drawn_nanos.min(u64::MAX - 1);

        let mut delay = drawn;
        if let Some(hint) = classification.retry_after {
            let hint = hint.min(env.max_retry_after);
            if remaining.is_some_and(|left| hint > left) {
                return Decision::Stop(StopReason::DeadlineExceeded);
            }
            delay = delay.max(hint);
        }
        if let Some(left) = remaining {
            delay = delay.min(left);
        }
        if let Some(budget) = &self.budget {
            if !budget.try_retry(state.at(elapsed), class) {
                return Decision::Stop(StopReason::BudgetExhausted);
            }
        }
        Decision::Retry(Retry {
            delay,
            strategy_delay: drawn,
            next_attempt: state.attempt + 1,
        })
    }
}

/// The most a policy can ever spend on one call, derived from its envelope
/// and its strategies' documented bounds; see [`Engine::worst_case`].
/// Only the engine creates it (`#[non_exhaustive]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorstCase {
    /// The most attempts any failure sequence can reach (attempt caps only).
    pub max_attempts: u32,
    /// The most attempts that can start no later than the deadline when
    /// every attempt takes no time and every delay is its strategy's
    /// minimum (the last one cut to end at the deadline).
    pub max_attempts_before_deadline: u32,
    /// The longest total sleep of one call without server hints: the sum of
    /// the largest delays, capped by the deadline.
    pub max_total_sleep: Duration,
    /// The same with every failure carrying a hint at `max_retry_after`.
    pub max_total_sleep_with_hints: Duration,
    /// Whether every strategy that can be asked documents its bounds; when
    /// not, the sleep figures assume the deadline (or are unbounded,
    /// `Duration::MAX`, without one).
    pub bounded: bool,
}

impl Engine {
    /// The worst case of one call, over every class that can be retried and
    /// every mix of classes.
    ///
    /// At retry `n`, the largest delay is the largest upper bound any
    /// retryable class's strategy documents for attempt `n` (decorrelated
    /// jitter fed its own largest previous delay), and the smallest delay
    /// is the smallest lower bound. Classes capped at one attempt, and
    /// classes that are never retried, take no part.
    pub fn worst_case(&self) -> WorstCase {
        let env = &self.envelope;
        let retryable: Vec<ErrorClass> = ErrorClass::ALL
            .into_iter()
            .filter(|c| env.may_retry(*c))
            .collect();
        let max_attempts = if retryable.is_empty() {
            1
        } else {
            env.max_attempts
        };
        let deadline = env.deadline.unwrap_or(Duration::MAX);
        let mut previous: [Option<Duration>; 8] = [None; 8];
        let mut bounded = true;
        let (mut sleep, mut sleep_hinted, mut fastest) =
            (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let mut before_deadline = 1u32;
        // The sums are capped by the deadline long before this for any real
        // policy; beyond it the figures fall back to the deadline.
        let retries = max_attempts.saturating_sub(1).min(10_000);
        for attempt in 1..=retries {
            let mut hi = Duration::ZERO;
            let mut lo = Duration::MAX;
            for class in &retryable {
                match self.strategies[class.index()].bounds(attempt, previous[class.index()]) {
                    Some((l, h)) => {
                        lo = lo.min(l);
                        hi = hi.max(h);
                        previous[class.index()] = Some(h);
                    }
                    None => {
                        bounded = false;
                        lo = Duration::ZERO;
                        hi = Duration::MAX;
                    }
                }
            }
            sleep = sleep.saturating_add(hi);
            sleep_hinted = sleep_hinted.saturating_add(hi.max(env.max_retry_after));
            // A failure before the deadline is followed by another attempt,
            // its delay capped so that it starts no later than the deadline.
            if fastest < deadline {
                before_deadline += 1;
                fastest = fastest.saturating_add(lo).min(deadline);
            }
        }
        if retries < max_attempts.saturating_sub(1) {
            // Not every retry was summed: past this point only the deadline
            // (if any) bounds the sleep, and more attempts may still fit.
            sleep = Duration::MAX;
            sleep_hinted = Duration::MAX;
            if fastest < deadline {
                before_deadline = max_attempts;
            }
        }
        WorstCase {
            max_attempts,
            max_attempts_before_deadline: before_deadline,
            max_total_sleep: sleep.min(deadline),
            max_total_sleep_with_hints: sleep_hinted.min(deadline),
            bounded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Backoff;

    fn engine(envelope: Envelope, backoff: Backoff) -> Engine {
        Engine::new(
            envelope,
            ErrorClass::ALL.map(|_| Arc::new(backoff) as Arc<dyn Strategy>),
        )
    }

    /// What an event says, owned.
    type Seen = (
        EventKind,
        Option<StopReason>,
        u32,
        Option<Duration>,
        Option<ErrorClass>,
        Duration,
    );

    fn seen(e: &Event<'_>) -> Seen {
        (e.kind, e.reason, e.attempt, e.delay, e.class, e.elapsed)
    }

    #[test]
    fn built_in_backoffs_decide_as_their_trait_objects() {
        use crate::strategy::{BackoffKind, ClassStrategy};
        use rand::{Rng, SeedableRng};
        use rand_chacha::ChaCha8Rng;

        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let durations = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(10),
            Duration::from_secs(1),
            Duration::from_nanos(u64::MAX),
            Duration::MAX,
        ];
        let mut retries = 0;
        for case in 0..1000u64 {
            let pick = |rng: &mut ChaCha8Rng| {
                if rng.random_bool(0.5) {
                    durations[rng.random_range(0..durations.len())]
                } else {
                    Duration::from_nanos(rng.random_range(0..5_000_000_000))
                }
            };
            let backoffs: [Backoff; 8] = std::array::from_fn(|_| {
                let kind = BackoffKind::ALL[rng.random_range(0..BackoffKind::ALL.len())];
                Backoff::new(kind, pick(&mut rng), pick(&mut rng))
            });
            let mut envelope = Envelope {
                deadline: rng.random_bool(0.7).then(|| pick(&mut rng)),
                max_attempts: rng.random_range(1..40),
                max_unknown_attempts: rng.random_bool(0.5).then(|| rng.random_range(1..10)),
                max_retry_after: pick(&mut rng),
                ..Envelope::default()
            };
            for cap in &mut envelope.class_max_attempts {
                *cap = rng.random_bool(0.1).then(|| rng.random_range(1..20));
            }
            let known = Engine::with_strategies(envelope, backoffs.map(ClassStrategy::new));
            let dynamic = Engine::new(envelope, backoffs.map(|b| Arc::new(b) as Arc<dyn Strategy>));
            let (mut a, mut b) = (known.start(), dynamic.start());
            let (mut rng_a, mut rng_b) = (
                ChaCha8Rng::seed_from_u64(case),
                ChaCha8Rng::seed_from_u64(case),
            );
            let mut elapsed = Duration::ZERO;
            while !a.is_finished() {
                // Mostly classes that may be retried, so that calls go on.
                let class = loop {
                    let class = ErrorClass::ALL[rng.random_range(0..ErrorClass::ALL.len())];
                    if class.is_retryable() || rng.random_bool(0.1) {
                        break class;
                    }
                };
                let classification = Classification {
                    class,
                    retry_after: rng.random_bool(0.1).then(|| pick(&mut rng)),
                };
                let failure = Failure {
                    classification,
                    error_type: class.name(),
                    error: None,
                };
                let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
                let da = known.on_failure(&mut a, "op", failure, elapsed, &mut rng_a, &mut |e| {
                    seen_a.push(seen(e))
                });
                let db = dynamic.on_failure(&mut b, "op", failure, elapsed, &mut rng_b, &mut |e| {
                    seen_b.push(seen(e))
                });
                assert_eq!(da, db, "case {case}");
                assert_eq!(seen_a, seen_b, "case {case}");
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "case {case}");
                if let Decision::Retry(retry) = da {
                    retries += 1;
                    elapsed = elapsed
                        .saturating_add(retry.delay)
                        .saturating_add(pick(&mut rng));
                }
            }
            assert!(b.is_finished());
        }
        // Most cases retry several times before they stop.
        assert!(retries > 3000, "{retries} retries");
    }

    #[test]
    fn only_the_backoff_type_itself_is_drawn_directly() {
        use crate::strategy::ClassStrategy;

        /// A strategy that names a backoff for analyses but draws its own way.
        struct Doubled(Backoff);
        impl Strategy for Doubled {
            fn delay(&self, ctx: &DelayContext, rng: &mut dyn RngCore) -> Duration {
                self.0.delay(ctx, rng) * 2
            }
            fn backoff(&self) -> Option<Backoff> {
                Some(self.0)
            }
        }
        let backoff = Backoff::constant(Duration::from_millis(10));
        assert_eq!(ClassStrategy::new(backoff).backoff, Some(backoff));
        assert_eq!(ClassStrategy::new(Doubled(backoff)).backoff, None);
        let engine = Engine::with_strategies(
            Envelope::default(),
            ErrorClass::ALL.map(|_| ClassStrategy::new(Doubled(backoff))),
        );
        let mut state = engine.start();
        let failure = Failure {
            classification: Classification::new(ErrorClass::Transient),
            error_type: "",
            error: None,
        };
        let decision = engine.on_failure(
            &mut state,
            "",
            failure,
            Duration::ZERO,
            &mut rand::rng(),
            &mut |_| {},
        );
        let Decision::Retry(retry) = decision else {
            panic!("a transient failure is retried: {decision:?}");
        };
        assert_eq!(retry.delay, Duration::from_millis(20));
    }

    #[test]
    fn worst_case_of_exponential_backoff() {
        let ms = Duration::from_millis;
        let env = Envelope {
            deadline: Some(Duration::from_secs(60)),
            max_attempts: 5,
            ..Envelope::default()
        };
        let wc = engine(env, Backoff::exponential(ms(100), ms(1000))).worst_case();
        assert_eq!(wc.max_attempts, 5);
        assert_eq!(wc.max_attempts_before_deadline, 5);
        // 100 + 200 + 400 + 800
        assert_eq!(wc.max_total_sleep, ms(1500));
        assert_eq!(wc.max_total_sleep_with_hints, Duration::from_secs(60));
        assert!(wc.bounded);
    }

    #[test]
    fn worst_case_respects_the_deadline() {
        let env = Envelope {
            deadline: Some(Duration::from_secs(1)),
            max_attempts: 100,
            ..Envelope::default()
        };
        let wc = engine(env, Backoff::constant(Duration::from_millis(300))).worst_case();
        // Attempts start at 0, 300, 600, 900 and (the last delay cut to
        // fit) 1000 ms.
        assert_eq!(wc.max_attempts_before_deadline, 5);
        assert_eq!(wc.max_total_sleep, Duration::from_secs(1));
    }
}
