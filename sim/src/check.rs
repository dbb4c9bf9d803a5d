//! The envelope-violation checker.
//!
//! The checker watches every attempt and every decision the engine makes,
//! and checks them against the policy's envelope and its strategies'
//! documented bounds, independently of the engine's own bookkeeping:
//!
//! * an attempt over the global cap, or a retry after a class's (or the
//!   unknown) cap was reached ([`ViolationKind::AttemptOverCap`]);
//! * an attempt starting after the deadline
//!   ([`ViolationKind::AttemptAfterDeadline`]);
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

use reflexio::engine::{Decision, Envelope};
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
    pub fn event(&mut self, terminal: bool) {
        if terminal {
            self.terminal += 1;
        }
    }
}

/// Checks one policy's decisions.
#[derive(Debug, Clone)]
pub struct Checker {
    envelope: Envelope,
    backoffs: [Backoff; 8],
    kept: Vec<Violation>,
    count: u64,
    budget: Option<BudgetAudit>,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Checker {
    /// A checker for a policy with this envelope and these strategies.
    pub fn new(envelope: Envelope, backoffs: [Backoff; 8]) -> Self {
        Checker {
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
    pub fn attempt_started(&mut self, call: u64, attempt: u32, elapsed: Duration) {
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
    pub fn decided(
        &mut self,
        audit: &mut Audit,
        call: u64,
        attempt: u32,
        failure: Classification,
        elapsed: Duration,
        decision: &Decision,
    ) {
        let class = failure.class;
        let slot = class.index();
        audit.failures[slot] += 1;
        let Decision::Retry(retry) = decision else {
            return;
        };
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
        let previous =
            (audit.previous[slot] != NONE).then(|| Duration::from_nanos(audit.previous[slot]));
        let (lo, hi) = backoff.bounds(attempt, previous);
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

    /// `call` ended; it must have had exactly one terminal event.
    pub fn finished(&mut self, audit: &Audit, call: u64, attempt: u32) {
        if audit.terminal != 1 {
            self.report(
                call,
                attempt,
                ViolationKind::TerminalEvents,
                format!("{} terminal events, expected exactly 1", audit.terminal),
            );
        }
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
