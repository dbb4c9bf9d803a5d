//! The discrete-event loop: virtual time, calls in flight, the engine.
//!
//! Events sit in a heap (see `queue.rs`) ordered by `(time, sequence
//! number)`, so simultaneous events run in the order they were
//! scheduled. Nothing reads
//! a clock. A call's state lives in a slab slot while it is in flight;
//! per-call results go to flat vectors indexed by call id.
//!
//! One attempt, on two timelines (see [`crate::latency::Anatomy`]):
//!
//! ```text
//! client:  send ──request──▶            ◀──response── learns (engine decides)
//! service:        arrival (models decide) ──work── end (contention writes)
//! ```
//!
//! * [`ARRIVAL`]: a call arrives at the client, which sends its first
//!   attempt;
//! * [`REACH`]: an attempt's request reaches the service, whose failure
//!   models decide (the rate limiter, overload's load, contention's read);
//! * [`SERVICE_END`]: the service's work ends (contention's write,
//!   overload's slot freed);
//! * [`LEARN`]: the client learns the outcome, after the response leg or at
//!   its timeout (which runs from the send), and asks the engine what next;
//! * [`WAKE`]: the client wakes from its backoff and sends the next attempt;
//! * [`SERVER_DONE`]: the service ends work on an attempt whose client has
//!   already timed out.
//!
//! The engine's decision depends on nothing shared between calls, so by
//! default ([`Mode::Auto`]) the client learns inside the service-end event,
//! with its own (later) time, and the next attempt is queued straight at
//! its arrival at the service: two queued events per attempt, as for an
//! attempt without legs. Policy state shared across calls that must see
//! decisions in client-time order would queue [`LEARN`] and [`WAKE`] as
//! [`Mode::Events`] does. When every failure model is stateless, each
//! call is played out whole when it arrives.
//!
//! Without a rate limiter or overload (whose state follows the order of
//! arrivals), an attempt's arrival at the service needs no event either:
//! it runs when the request is sent, and contention's read is stamped with
//! the place in the event order its event would have had, so the read sees
//! exactly the writes it would have seen (one queued event per attempt).
//! On a single contended row no attempt needs queueing at all: see
//! `world/commits.rs` for how the commits are found by walking the calls in
//! flight, and when that leaves a job to the event loop.
//!
//! Every policy runs alone against a fresh [`Service`], with the same
//! arrivals and the same `(call, attempt, leg)` draws (see
//! [`crate::draws`]).
//!
//! A policy with a retry budget shares state across its calls: its runs
//! are driven as [`Mode::Events`] (see [`crate::budget`]).
//!
//! Background workloads (`[[background]]`) share the run's service with
//! the workload under test: their calls take the ids after its calls, get
//! their own arrivals (each from its own stream) and their own
//! `(call, attempt)` draws, and run under their own fixed engine (one
//! attempt per call without a policy), the same under every compared
//! policy. They go through the same loop in every mode, so every failure
//! model sees their attempts; their results are kept apart (`Side`) and
//! summarised per policy.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use std::sync::Arc;

use reflexio::engine::{CallState, Decision, Engine, Failure};
use reflexio::Budget;

use crate::budget::RunBudget;
use crate::check::{Audit, Checker};
use crate::draws::{self, Draws, KeyMemo, KeyedRng, Memo, Outcomes};
use crate::latency::Timeline;
use crate::metrics::{BackgroundMetrics, CallResults, PolicyMetrics};
use crate::model::{ModelKind, Plan, Service, Stamp};
use crate::queue::Queue;
use crate::report::{Report, RunReport};
use crate::scenario::{Arrival, Background, Phase, Policy, Scenario};

mod commits;

/// A run that could not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    /// Too many calls were in flight at once for the memory available.
    TooManyInFlight {
        /// The policy.
        policy: String,
        /// The limit reached.
        limit: u64,
    },
    /// A policy made far more attempts than the workload can justify: the
    /// runaway stop ([`runaway_limit`]).
    Runaway {
        /// The policy.
        policy: String,
        /// Attempts made when the run was stopped.
        attempts: u64,
        /// Calls in the run: the workload's and its background's.
        calls: u64,
        /// The background workload that made most of the attempts, if
        /// one made more than the policy's calls did.
        background: Option<String>,
    },
    /// The virtual timeline went past the load series' last bucket.
    Timeline {
        /// The policy.
        policy: String,
        /// The bucket width.
        bucket: Duration,
    },
    /// More attempts were simulated, over all runs and policies, than
    /// `max_simulated_attempts` allows.
    AttemptBudget {
        /// The budget.
        limit: u64,
    },
    /// The simulation was refused before it started: a limit of
    /// [`crate::limits`] would be crossed.
    Refused {
        /// The scenario field (dotted path) or command-line option.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

impl SimError {
    /// The scenario field whose value or limit stopped the simulation, for
    /// an error message that points at it.
    pub fn field(&self) -> Option<&str> {
        match self {
            SimError::Timeline { .. } => Some("bucket"),
            SimError::AttemptBudget { .. } => Some("max_simulated_attempts"),
            SimError::Refused { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::TooManyInFlight { policy, limit } => write!(
                f,
                "policy `{policy}` had {limit} calls in flight at once, the most memory allows; the simulation was stopped. Lower the arrival rate or the number of calls"
            ),
            SimError::Runaway {
                policy,
                attempts,
                calls,
                background,
            } => write!(
                f,
                "runaway: {} made more than {attempts} attempts for {calls} call{} (the limit is {RUNAWAY_ATTEMPTS_PER_CALL} attempts per call on average, and at least {RUNAWAY_FLOOR} in all); the simulation was stopped. A policy that retries without pause or cap against a service that keeps failing never ends: give it a deadline, a lower max_attempts or a longer delay",
                match background {
                    Some(name) => format!("background workload `{name}`, beside policy `{policy}`,"),
                    None => format!("policy `{policy}`"),
                },
                if *calls == 1 { "" } else { "s" }
            ),
            SimError::Timeline { policy, bucket } => {
                let limit = crate::limits::MAX_BUCKETS;
                let span = bucket.as_secs_f64() * limit as f64;
                write!(
                    f,
                    "under policy `{policy}` the run went on past {span} s of virtual time, {limit} load buckets of {bucket:?}, the most the load series may have; the simulation was stopped. Use a wider `bucket`, or give the policy a deadline"
                )
            }
            SimError::AttemptBudget { limit } => write!(
                f,
                "more than {limit} attempts were simulated over all runs and policies, the budget `max_simulated_attempts` allows; the simulation was stopped. Simulate fewer calls, runs or policies, cap the policies' attempts, or raise the budget (`max_simulated_attempts` in the scenario, or --max-simulated-attempts)"
            ),
            SimError::Refused { message, .. } => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for SimError {}

/// At most this many attempts per call on average before a run is
/// stopped as a runaway.
pub const RUNAWAY_ATTEMPTS_PER_CALL: u64 = 10_000;

/// A run may always make this many attempts, however few its calls.
pub const RUNAWAY_FLOOR: u64 = 1_000_000;

/// The most attempts a run of `calls` calls may make before it is stopped
/// as a runaway: [`RUNAWAY_ATTEMPTS_PER_CALL`] per call, and at least
/// [`RUNAWAY_FLOOR`].
pub fn runaway_limit(calls: u64) -> u64 {
    calls
        .saturating_mul(RUNAWAY_ATTEMPTS_PER_CALL)
        .max(RUNAWAY_FLOOR)
}

/// A call arrives at the client (target: the call id).
pub const ARRIVAL: u8 = 0;
/// The service's work on an attempt ends (target: the slot).
pub const SERVICE_END: u8 = 1;
/// The client wakes from a backoff and sends (target: the slot).
pub const WAKE: u8 = 2;
/// The service ends work on a timed-out attempt (target: the model).
pub const SERVER_DONE: u8 = 3;
/// An attempt's request reaches the service (target: the slot).
pub const REACH: u8 = 4;
/// The client learns an attempt's outcome (target: the slot).
pub const LEARN: u8 = 5;

/// A call in flight.
struct Slot {
    call: u32,
    state: CallState,
    /// When the call arrived at the client.
    start: u64,
    /// When the client sent the current attempt.
    send: u64,
    /// When its request reached the service.
    reach: u64,
    sleep: u64,
    /// How much later than asked the client woke from the sleep before
    /// the current attempt (`[client] oversleep`; 0 for a first attempt).
    late: u64,
    row_draw: u64,
    draws: Draws,
    timeline: Timeline,
    plan: Plan,
    audit: Audit,
}

impl Slot {
    /// A slot for call `call`, arrived at `now`.
    fn new(call: u32, state: CallState, now: u64, row_draw: u64) -> Slot {
        Slot {
            call,
            state,
            start: now,
            send: now,
            reach: now,
            sleep: 0,
            late: 0,
            row_draw,
            draws: Draws::default(),
            timeline: Timeline::default(),
            plan: Plan::default(),
            audit: Audit::default(),
        }
    }

    /// Begins call `call`, arrived at `now`, in this slot, as
    /// [`Slot::new`] would, field by field: a whole new `Slot` built on
    /// the stack and copied in was read back before its stores had landed.
    fn begin(&mut self, call: u32, state: CallState, now: u64, row_draw: u64) {
        self.call = call;
        self.state = state;
        self.start = now;
        self.send = now;
        self.reach = now;
        self.sleep = 0;
        self.late = 0;
        self.row_draw = row_draw;
        self.audit = Audit::default();
        // `draws`, `timeline` and `plan` are the current attempt's: set
        // when it is sent and when it reaches the service.
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The arrival times of open-loop workloads, generated lazily in call
/// order from the arrivals stream.
struct Arrivals {
    next: u64,
    time: u64,
    rng: rand_chacha::ChaCha8Rng,
    /// With phases: the current phase, when it began, and the first call
    /// that arrived in it.
    phase: usize,
    phase_start: u64,
    phase_first: u64,
}

impl Arrivals {
    /// The arrivals of stream `stream` of `seed`, none generated yet.
    fn new(seed: u64, stream: u64) -> Arrivals {
        Arrivals {
            next: 0,
            time: 0,
            rng: draws::stream(seed, stream),
            phase: 0,
            phase_start: 0,
            phase_first: 0,
        }
    }

    /// The time of the next arrival. Inlined into the event loop: the
    /// Poisson gap's chain (a ChaCha word, the logarithm, a division) then
    /// overlaps with the loop's other work (about 5% off the queued
    /// workload's CPU time, 19.42 → 18.40 ms: reports/BENCHMARKS.md).
    #[inline(always)]
    fn time_of_next(&mut self, arrival: &Arrival, phases: &[Phase]) -> u64 {
        use rand::RngCore;
        let k = self.next;
        if !phases.is_empty() {
            return self.phased(matches!(arrival, Arrival::Poisson { .. }), phases);
        }
        match arrival {
            Arrival::AllAtOnce | Arrival::ClosedLoop { .. } => 0,
            Arrival::FixedRate { rate } => crate::latency::round_ns(k as f64 * 1e9 / rate),
            Arrival::Poisson { rate } => {
                if k > 0 {
                    let gap = -crate::ln::ln_one_minus_unit(self.rng.next_u64()) / rate * 1e9;
                    self.time = self.time.saturating_add(crate::latency::round_ns(gap));
                }
                self.time
            }
        }
    }

    /// The next arrival under piecewise rates. Fixed rate: call `k` of a
    /// phase arrives `k / rate` after the phase began (its first call at
    /// its start). Poisson: one unit-exponential draw per gap, spent at
    /// each phase's rate in turn (a non-homogeneous Poisson process).
    fn phased(&mut self, poisson: bool, phases: &[Phase]) -> u64 {
        use rand::RngCore;
        let k = self.next;
        if poisson {
            if k == 0 {
                return 0;
            }
            let mut work = -crate::ln::ln_one_minus_unit(self.rng.next_u64());
            loop {
                let phase = &phases[self.phase];
                let need = work / phase.rate * 1e9;
                match phase.end {
                    Some(end) if (self.time as f64 + need) >= end as f64 => {
                        work -= (end - self.time) as f64 * phase.rate / 1e9;
                        self.time = end;
                        self.phase += 1;
                    }
                    _ => {
                        self.time = self.time.saturating_add(crate::latency::round_ns(need));
                        return self.time;
                    }
                }
            }
        }
        loop {
            let phase = &phases[self.phase];
            let t = self.phase_start.saturating_add(crate::latency::round_ns(
                (k - self.phase_first) as f64 * 1e9 / phase.rate,
            ));
            match phase.end {
                Some(end) if t >= end => {
                    self.phase += 1;
                    self.phase_start = end;
                    self.phase_first = k;
                }
                _ => return t,
            }
        }
    }
}

/// How a run is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every step of every attempt is an event in the queue: the send, the
    /// request's arrival, the end of the service's work and the client
    /// learning the outcome.
    Events,
    /// Every attempt is queued, but only the steps where the service acts
    /// (its request's arrival, the end of the work) are events; the client
    /// learns and sends inside them (see the module docs). What stateful
    /// models (rate limiter, contention, overload) use.
    Queued,
    /// [`Mode::Queued`], except that when every failure model is stateless
    /// (random, outage, scripted, trace) an attempt's outcome depends only
    /// on its own draws and arrival time, so each call is played out whole
    /// when it arrives, without queueing its attempts; and when the only
    /// stateful model is contention, an attempt's arrival is not queued,
    /// only the end of its work (see the module docs). The results of all
    /// three modes are the same (tested, wherever no two events fall on
    /// the same nanosecond); only the speed differs.
    Auto,
}

/// What follows an attempt's end.
enum Next {
    /// Sleep this many ns (the delay and any oversleep), then the next
    /// attempt.
    Wake(u64),
    /// The call ended at this virtual time: when the client learned the
    /// outcome, or (a sleep that woke too far past the deadline) when it
    /// woke.
    Done(u64),
}

/// The state of one policy run.
struct Run<'a> {
    scenario: &'a Scenario,
    policy: &'a Policy,
    /// The policy's engine, or its budgeted twin for this run.
    engine: &'a Engine,
    /// Whether the policy has a retry budget.
    budgeted: bool,
    checker: Checker,
    service: Service<'a>,
    outcomes: Outcomes,
    /// The draws and legs of every `(call, attempt)` sent, for the run's
    /// other policies.
    attempts: KeyMemo<(Draws, Timeline)>,
    jitter_rng: draws::Jitter,
    /// The clients' oversleep (`[client]`), if any.
    oversleep: Option<crate::latency::Latency>,
    results: CallResults,
    queue: Queue,
    bucket: u64,
    /// Attempts simulated by every job of the simulation, as far as they
    /// have told.
    spent: &'a AtomicU64,
    /// This job's attempts already added to `spent`.
    told: u64,
    /// The runaway stop, in attempts ([`runaway_limit`]).
    runaway: u64,
    /// Calls of the workload under test: call ids from here on belong to
    /// the background workloads.
    calls: u64,
    /// The background workloads, in file order.
    sides: Vec<Side<'a>>,
    /// Attempts made by background calls.
    side_attempts: u64,
    /// Whether a background attempt started past the load series' last
    /// bucket.
    side_timeline_full: bool,
}

/// A background workload in one run.
struct Side<'a> {
    spec: &'a Background,
    /// Its first call id.
    first: u32,
    /// Its own policy's checker, if it has a policy.
    checker: Option<Checker>,
    /// Its calls' results, by call id less `first`.
    results: CallResults,
    arrivals: Arrivals,
}

thread_local! {
    /// The attempts' draws and legs kept by the last job on this thread.
    static KEPT_ATTEMPTS: std::cell::Cell<Option<Memo<(Draws, Timeline)>>> =
        const { std::cell::Cell::new(None) };
}

/// Attempts a job makes between two looks at the shared budget.
const BUDGET_CHUNK: u64 = 4096;

impl Run<'_> {
    /// Checks the limits counted while running: the load series' length and
    /// the shared budget of simulated attempts. `all` adds every attempt
    /// made so far to the budget; otherwise only whole chunks are added.
    fn bounds(&mut self, all: bool) -> Result<(), SimError> {
        if self.results.timeline_full || self.side_timeline_full {
            return Err(SimError::Timeline {
                policy: self.policy.name.clone(),
                bucket: Duration::from_nanos(self.bucket),
            });
        }
        let made = self.results.attempts_total + self.side_attempts;
        let untold = made - self.told;
        if untold >= BUDGET_CHUNK || (all && untold > 0) {
            self.told = made;
            let spent = self.spent.fetch_add(untold, Ordering::Relaxed) + untold;
            if spent > self.scenario.max_simulated_attempts {
                return Err(SimError::AttemptBudget {
                    limit: self.scenario.max_simulated_attempts,
                });
            }
        }
        Ok(())
    }

    /// Stops a runaway policy, then checks the limits counted while
    /// running ([`Run::bounds`]): after every attempt.
    fn attempted(&mut self) -> Result<(), SimError> {
        if self.results.attempts_total + self.side_attempts > self.runaway {
            let calls = self.calls
                + self
                    .sides
                    .iter()
                    .map(|b| b.spec.workload.calls)
                    .sum::<u64>();
            let background = self
                .sides
                .iter()
                .filter(|b| b.results.attempts_total > self.results.attempts_total)
                .max_by_key(|b| b.results.attempts_total)
                .map(|b| b.spec.name.clone());
            return Err(SimError::Runaway {
                policy: self.policy.name.clone(),
                attempts: self.runaway,
                calls,
                background,
            });
        }
        self.bounds(false)
    }

    /// The client sends the current attempt of `s` at `now`; returns when
    /// its request reaches the service.
    fn send(&mut self, s: &mut Slot, now: u64) -> u64 {
        s.send = now;
        let attempt = s.state.attempt();
        let entry = self.attempts.entry(u64::from(s.call), attempt);
        let (draws, timeline) = match entry.and_then(|e| self.attempts.get(e)) {
            Some(kept) => *kept,
            None => {
                let draws = self.outcomes.at(s.call, attempt);
                let timeline = self.scenario.latency.sample(&draws, attempt);
                if let Some(e) = entry {
                    self.attempts.set(e, (draws, timeline));
                }
                (draws, timeline)
            }
        };
        s.draws = draws;
        s.timeline = timeline;
        now.saturating_add(timeline.request)
    }

    /// The current attempt of `s` reaches the service at `now`, in the
    /// event loop's place `seq`: the models decide. Returns when the
    /// service's work ends and when the client learns the outcome.
    fn reach(&mut self, s: &mut Slot, now: u64, seq: u64) -> (u64, u64) {
        let attempt = s.state.attempt();
        if u64::from(s.call) < self.calls {
            self.checker.attempt_started_after_sleep_ns(
                u64::from(s.call),
                attempt,
                s.send - s.start,
                s.late,
            );
            self.results.attempt_at(s.send / self.bucket);
        } else {
            self.side_reached(s, attempt, Duration::from_nanos(s.send - s.start));
        }
        s.reach = now;
        self.service.start(
            &mut s.plan,
            now,
            seq,
            attempt,
            &s.timeline,
            &s.draws,
            s.row_draw,
        );
        // A client whose timeout expired before its request even arrived
        // learns of it now, when the models have decided: the service's
        // timeline cannot run backwards.
        (
            now.saturating_add(s.plan.service),
            s.send.saturating_add(s.plan.client).max(now),
        )
    }

    /// The service's work on the current attempt of `s` ends at `at`:
    /// frees its overload slot and writes its contended row: the outcome
    /// in its plan becomes final.
    fn service_end(&mut self, s: &mut Slot, at: Stamp) {
        if let Some(k) = s.plan.load {
            self.service.release(k);
        }
        self.service.finish(&mut s.plan, at);
    }

    /// The client learns the outcome of the current attempt of `s` at
    /// `now`: asks the engine what next.
    fn learn(&mut self, s: &mut Slot, now: u64) -> Next {
        if let Some(k) = s.plan.load {
            // Timed out: the service works on after the client gave up.
            let end = s.reach.saturating_add(s.plan.service);
            if end > now {
                self.queue.push(end, SERVER_DONE, u32::from(k));
            }
        }
        let elapsed = Duration::from_nanos(now - s.start);
        let call = u64::from(s.call);
        let attempt = s.state.attempt();
        // The workload under test's engine, checker and results, or a
        // background workload's (its call numbered from its first). One
        // call site each, whichever it is, so that the engine's decision
        // is inlined as it was before background workloads.
        let (engine, operation, mut checker, results, local, budgeted) = if call < self.calls {
            (
                self.engine,
                self.scenario.workload.operation.as_str(),
                Some(&mut self.checker),
                &mut self.results,
                call,
                self.budgeted,
            )
        } else {
            let side = side_of(&mut self.sides, s.call);
            let spec: &Background = side.spec;
            (
                &spec.engine,
                spec.workload.operation.as_str(),
                side.checker.as_mut(),
                &mut side.results,
                call - u64::from(side.first),
                false,
            )
        };
        let audit = &mut s.audit;
        let next = match s.plan.outcome {
            None => {
                engine.on_success(&mut s.state, operation, elapsed, &mut |e| {
                    audit.event(e.kind.is_terminal())
                });
                if budgeted {
                    if let Some(c) = checker.as_mut() {
                        c.budget_call_succeeded(s.state.last_retry());
                    }
                }
                Err((None, now))
            }
            Some(classification) => {
                let mut rng = KeyedRng::new(&mut self.jitter_rng, call, attempt);
                let decision = engine.on_failure(
                    &mut s.state,
                    operation,
                    Failure {
                        classification,
                        error_type: classification.class.name(),
                        error: None,
                    },
                    elapsed,
                    &mut rng,
                    &mut |e| audit.event(e.kind.is_terminal()),
                );
                if let Some(c) = checker.as_mut() {
                    c.decided(audit, local, attempt, classification, elapsed, &decision);
                    if budgeted {
                        let at = Duration::from_nanos(now);
                        let class = classification.class;
                        c.budget_decided(local, attempt, at, class, &decision);
                    }
                }
                match decision {
                    Decision::Retry(retry) => {
                        let delay = ns(retry.delay);
                        // A sleep of positive length ends late by the
                        // client's oversleep, if the scenario gives one.
                        let late = match &self.oversleep {
                            Some(l) if delay > 0 => l.sample(&s.draws.leg(draws::OVERSLEEP_LEG)),
                            _ => 0,
                        };
                        let wake = delay.saturating_add(late);
                        s.sleep = s.sleep.saturating_add(wake);
                        s.late = late;
                        // As the library's drivers do when a sleep ends
                        // (a zero delay sleeps not at all): the engine's
                        // last look at the deadline.
                        let stopped = if delay > 0 {
                            let woke = now.saturating_add(wake);
                            engine.before_retry(
                                &mut s.state,
                                operation,
                                classification.class.name(),
                                None,
                                Duration::from_nanos(woke - s.start),
                                &mut |e| audit.event(e.kind.is_terminal()),
                            )
                        } else {
                            None
                        };
                        match stopped {
                            None => Ok(wake),
                            Some(reason) => Err((Some(reason), now.saturating_add(wake))),
                        }
                    }
                    Decision::Stop(reason) => Err((Some(reason), now)),
                }
            }
        };
        match next {
            Ok(wake) => Next::Wake(wake),
            Err((reason, end)) => {
                if let Some(c) = checker {
                    c.finished(&s.audit, local, attempt);
                }
                results.record(local as usize, end, end - s.start, s.sleep, attempt, reason);
                Next::Done(end)
            }
        }
    }

    /// The current attempt of background call `s` starts: its own
    /// checker and results count it. Kept out of line, so that the
    /// workload's own attempts pay for a comparison only.
    #[cold]
    #[inline(never)]
    fn side_reached(&mut self, s: &Slot, attempt: u32, elapsed: Duration) {
        let side = side_of(&mut self.sides, s.call);
        let local = u64::from(s.call - side.first);
        if let Some(checker) = &mut side.checker {
            checker.attempt_started_after_sleep(local, attempt, elapsed, s.late);
        }
        side.results.attempt_at(s.send / self.bucket);
        self.side_timeline_full |= side.results.timeline_full;
        self.side_attempts += 1;
    }

    /// Plays the current attempt of `s` out whole from its send at `now`
    /// (stateless models only); returns when the client learns its outcome.
    fn whole_attempt(&mut self, s: &mut Slot, now: u64) -> u64 {
        let reach = self.send(s, now);
        // Stateless models: the stamps order nothing.
        let (_, learn) = self.reach(s, reach, 0);
        self.service.finish(&mut s.plan, (learn, 0));
        learn
    }
}

impl<'a> Run<'a> {
    /// A fresh run of `policy` (or of its budgeted twin in `budget`) with
    /// `seed`, counting its attempts into `spent`.
    fn new(
        scenario: &'a Scenario,
        policy: &'a Policy,
        budget: Option<&'a RunBudget>,
        seed: u64,
        spent: &'a AtomicU64,
    ) -> Run<'a> {
        let calls = scenario.workload.calls;
        let all_calls = all_calls(scenario);
        let mut run = Run {
            scenario,
            policy,
            engine: budget.map_or(&policy.engine, |b| &b.engine),
            budgeted: budget.is_some(),
            checker: match budget {
                Some(b) => b.checker(Checker::new(policy.envelope, policy.backoffs)),
                None => Checker::new(policy.envelope, policy.backoffs),
            },
            service: Service::new(&scenario.failures),
            outcomes: Outcomes::new(seed),
            attempts: KeyMemo::new(
                &KEPT_ATTEMPTS,
                seed,
                all_calls,
                scenario.latency.fingerprint(),
            ),
            jitter_rng: draws::Jitter::new(seed, all_calls),
            oversleep: scenario.client.oversleep,
            results: CallResults::new(calls as usize),
            queue: Queue::new(),
            bucket: ns(scenario.bucket).max(1),
            spent,
            told: 0,
            runaway: runaway_limit(all_calls),
            calls,
            sides: Vec::with_capacity(scenario.background.len()),
            side_attempts: 0,
            side_timeline_full: false,
        };
        let mut first = calls;
        for (k, spec) in scenario.background.iter().enumerate() {
            run.sides.push(Side {
                spec,
                first: first as u32,
                checker: spec
                    .policy
                    .as_ref()
                    .map(|p| Checker::new(p.envelope, p.backoffs)),
                results: CallResults::new(spec.workload.calls as usize),
                arrivals: Arrivals::new(seed, draws::STREAM_BACKGROUND + k as u64),
            });
            first += spec.workload.calls;
        }
        run
    }

    /// The run's metrics, once every call has ended.
    fn into_metrics(self, budget: Option<&RunBudget>) -> PolicyMetrics {
        let counts = self.checker.budget_counts();
        let (violations, violation_count) = self.checker.into_parts();
        let mut metrics =
            self.results
                .into_metrics(&self.policy.name, self.bucket, violations, violation_count);
        let bucket = self.bucket;
        metrics.background = self
            .sides
            .into_iter()
            .map(|side| {
                let checked = side.checker.is_some();
                let (list, count) = side.checker.map_or((Vec::new(), 0), Checker::into_parts);
                let m = side
                    .results
                    .into_metrics(&side.spec.name, bucket, list, count);
                BackgroundMetrics::of(&side.spec.name, m, checked)
            })
            .collect();
        if let Some(b) = budget {
            crate::budget::account(&mut metrics, b.spec, counts);
        }
        metrics
    }
}

/// Every call of a run of `scenario`: the workload under test's, then each
/// background workload's (saturated).
fn all_calls(scenario: &Scenario) -> u64 {
    scenario
        .background
        .iter()
        .fold(scenario.workload.calls, |n, b| {
            n.saturating_add(b.workload.calls)
        })
}

/// The background workload that call `call` (past the workload under
/// test's calls) belongs to.
fn side_of<'s, 'a>(sides: &'s mut [Side<'a>], call: u32) -> &'s mut Side<'a> {
    let k = sides.iter().rposition(|b| b.first <= call).unwrap_or(0);
    &mut sides[k]
}

/// Runs one policy of `scenario` with `seed`; `progress` is told how many
/// calls have finished, now and then.
pub fn run_policy(
    scenario: &Scenario,
    policy: &Policy,
    seed: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<PolicyMetrics, SimError> {
    run_policy_with(scenario, policy, seed, Mode::Auto, progress)
}

/// [`run_policy`], driven as `mode` says (a policy with a retry budget is
/// always driven as [`Mode::Events`]: see [`crate::budget`]).
pub fn run_policy_with(
    scenario: &Scenario,
    policy: &Policy,
    seed: u64,
    mode: Mode,
    progress: &mut dyn FnMut(u64),
) -> Result<PolicyMetrics, SimError> {
    run_job(
        scenario,
        policy,
        seed,
        mode,
        progress,
        &AtomicU64::new(0),
        None,
    )
}

/// [`run_policy`] with `budget` in place of the policy's own retry budget
/// (if any): a budget of any kind, shared by every call of the run and
/// handed the virtual time. The checker holds it to the bound its
/// [`Budget::spec`] documents, if it has one.
pub fn run_policy_with_budget(
    scenario: &Scenario,
    policy: &Policy,
    seed: u64,
    budget: Arc<dyn Budget>,
    progress: &mut dyn FnMut(u64),
) -> Result<PolicyMetrics, SimError> {
    let spent = AtomicU64::new(0);
    run_job(
        scenario,
        policy,
        seed,
        Mode::Events,
        progress,
        &spent,
        Some(budget),
    )
}

/// One (run, policy) job; `spent` counts the attempts of every job of the
/// simulation against the scenario's budget.
fn run_job(
    scenario: &Scenario,
    policy: &Policy,
    seed: u64,
    mode: Mode,
    progress: &mut dyn FnMut(u64),
    spent: &AtomicU64,
    custom: Option<Arc<dyn Budget>>,
) -> Result<PolicyMetrics, SimError> {
    let jobs = Jobs { spent, play: true };
    run_job_as(scenario, policy, seed, mode, progress, jobs, custom)
}

/// How a job is run beside the simulation's other jobs.
struct Jobs<'a> {
    /// The attempts of every job, against the scenario's budget.
    spent: &'a AtomicU64,
    /// Whether a job [`commits::applies`] to is played without the event
    /// queue (always, but where a test compares the two).
    play: bool,
}

/// [`run_job`], as `jobs` says.
fn run_job_as(
    scenario: &Scenario,
    policy: &Policy,
    seed: u64,
    mode: Mode,
    progress: &mut dyn FnMut(u64),
    jobs: Jobs<'_>,
    custom: Option<Arc<dyn Budget>>,
) -> Result<PolicyMetrics, SimError> {
    let spent = jobs.spent;
    let budget = RunBudget::of(policy, custom);
    // A budget is shared by the calls: its decisions come in time order.
    let mode = if budget.is_some() { Mode::Events } else { mode };
    let calls = scenario.workload.calls;
    let all_calls = all_calls(scenario);
    // Call ids are u32 (a file is held to far fewer calls; a scenario
    // built in code is not).
    if all_calls > u64::from(u32::MAX) {
        return Err(SimError::Refused {
            field: "workload.calls".to_owned(),
            message: format!(
                "the workload and its background make {all_calls} calls; one run may make at most {} calls in all",
                u32::MAX
            ),
        });
    }
    let arrival = &scenario.workload.arrival;
    let phases = scenario.workload.phases.as_slice();
    let needs_row = scenario
        .failures
        .iter()
        .any(|m| matches!(m.kind, ModelKind::Contention { .. }));
    let whole_calls = mode == Mode::Auto
        && scenario.failures.iter().all(|m| {
            matches!(
                m.kind,
                ModelKind::Random { .. }
                    | ModelKind::Outage { .. }
                    | ModelKind::Scripted { .. }
                    | ModelKind::Trace { .. }
            )
        });
    let every_step = mode == Mode::Events;
    // Without a rate limiter or overload, whose state follows the order in
    // which requests arrive, no model acts at an arrival but contention's
    // read, and that only needs the read's place in the event order: the
    // arrival is run when the request is sent, stamped with the sequence
    // its event would have had. One queued event per attempt.
    let stamp_reach = mode == Mode::Auto
        && !whole_calls
        && scenario.failures.iter().all(|m| {
            !matches!(
                m.kind,
                ModelKind::RateLimit { .. } | ModelKind::Overload { .. }
            )
        });
    if jobs.play && mode == Mode::Auto && budget.is_none() && commits::applies(scenario) {
        let mut run = Run::new(scenario, policy, None, seed, spent);
        if commits::play(&mut run, seed) {
            progress(calls);
            run.bounds(true)?;
            return Ok(run.into_metrics(None));
        }
    }
    let mut run = Run::new(scenario, policy, budget.as_ref(), seed, spent);
    let mut slots: Vec<Slot> = Vec::new();
    let mut free: Vec<u32> = Vec::new();
    let mut arrivals = Arrivals::new(seed, draws::STREAM_ARRIVALS);
    match arrival {
        Arrival::ClosedLoop { clients, .. } => {
            for c in 0..*clients {
                run.queue.push(0, ARRIVAL, c);
            }
        }
        _ => {
            let t = arrivals.time_of_next(arrival, phases);
            run.queue.push_next(t, ARRIVAL, 0);
        }
    }
    for side in &mut run.sides {
        let w = &side.spec.workload;
        let t = side.arrivals.time_of_next(&w.arrival, &w.phases);
        run.queue.push(t, ARRIVAL, side.first);
    }
    let mut done = 0u64;
    let drive = Drive {
        every_step,
        stamp_reach,
    };

    while let Some(ev) = run.queue.pop() {
        let now = ev.time;
        // The slot whose call just ended, if one did, and when.
        let mut ended: Option<(u32, u64)> = None;
        match ev.kind {
            ARRIVAL => {
                let call = ev.target;
                let tested = u64::from(call) < calls;
                if !tested {
                    let side = side_of(&mut run.sides, call);
                    let w = &side.spec.workload;
                    side.arrivals.next += 1;
                    if side.arrivals.next < w.calls {
                        let t = side.arrivals.time_of_next(&w.arrival, &w.phases);
                        let next = side.first + side.arrivals.next as u32;
                        run.queue.push(t, ARRIVAL, next);
                    }
                } else if !matches!(arrival, Arrival::ClosedLoop { .. }) {
                    arrivals.next += 1;
                    if arrivals.next < calls {
                        let t = arrivals.time_of_next(arrival, phases);
                        run.queue.push_next(t, ARRIVAL, arrivals.next as u32);
                    }
                }
                let row_draw = if needs_row {
                    run.outcomes.at(call, 0).raw(0)
                } else {
                    0
                };
                let state = if !tested {
                    side_of(&mut run.sides, call).spec.engine.start()
                } else if run.budgeted {
                    crate::budget::start(run.engine, &mut run.checker, now)
                } else {
                    policy.engine.start()
                };
                let index = match free.pop() {
                    Some(i) => {
                        slots[i as usize].begin(call, state, now, row_draw);
                        i
                    }
                    None => {
                        if slots.len() as u64 >= crate::scenario::MAX_IN_FLIGHT {
                            return Err(SimError::TooManyInFlight {
                                policy: policy.name.clone(),
                                limit: crate::scenario::MAX_IN_FLIGHT,
                            });
                        }
                        slots.push(Slot::new(call, state, now, row_draw));
                        (slots.len() - 1) as u32
                    }
                };
                let s = &mut slots[index as usize];
                if whole_calls {
                    // Play the whole call out now.
                    let mut t = now;
                    loop {
                        t = run.whole_attempt(s, t);
                        match run.learn(s, t) {
                            Next::Wake(delay) => t = t.saturating_add(delay),
                            Next::Done(end) => {
                                t = end;
                                break;
                            }
                        }
                        run.attempted()?;
                    }
                    ended = Some((index, t));
                } else {
                    let reach = run.send(s, now);
                    if reach == now && !every_step {
                        step_reach(&mut run, s, index, now, ev.seq);
                    } else if stamp_reach {
                        let seq = run.queue.reserve();
                        step_reach(&mut run, s, index, reach, seq);
                    } else {
                        run.queue.push(reach, REACH, index);
                    }
                    run.bounds(false)?;
                }
            }
            WAKE => {
                let index = ev.target;
                let reach = run.send(&mut slots[index as usize], now);
                run.queue.push(reach, REACH, index);
            }
            REACH => {
                let index = ev.target;
                step_reach(&mut run, &mut slots[index as usize], index, now, ev.seq);
                run.attempted()?;
            }
            SERVICE_END => {
                let index = ev.target;
                let s = &mut slots[index as usize];
                run.service_end(s, (now, ev.seq));
                let learn = s.send.saturating_add(s.plan.client);
                if every_step && learn > now {
                    run.queue.push(learn, LEARN, index);
                } else if let Some(end) = client_learns(&mut run, s, index, learn, &drive)? {
                    ended = Some((index, end));
                }
            }
            SERVER_DONE => run.service.release(ev.target as u8),
            _ => {
                let index = ev.target;
                let s = &mut slots[index as usize];
                if let Some(end) = client_learns(&mut run, s, index, now, &drive)? {
                    ended = Some((index, end));
                }
            }
        }
        if let Some((index, end)) = ended {
            free.push(index);
            done += 1;
            if done & 0xFFF == 0 {
                progress(done);
            }
            if let Arrival::ClosedLoop {
                clients,
                think_time,
            } = arrival
            {
                // Background calls' ids lie past `calls`: only the
                // workload under test's clients come back.
                let next = u64::from(slots[index as usize].call) + u64::from(*clients);
                if next < calls {
                    run.queue
                        .push(end.saturating_add(ns(*think_time)), ARRIVAL, next as u32);
                }
            }
        }
    }
    progress(done);
    run.bounds(true)?;
    Ok(run.into_metrics(budget.as_ref()))
}

/// How a job's loop drives its attempts.
struct Drive {
    /// Every step of an attempt is an event ([`Mode::Events`]).
    every_step: bool,
    /// Arrivals run when the request is sent, stamped (see `run_job`).
    stamp_reach: bool,
}

/// The client of the call in slot `index` learns its attempt's outcome at
/// `at` and acts on the engine's decision: sends the next attempt (or
/// queues its wake) or ends the call. Returns when the call ended, if it
/// did.
fn client_learns(
    run: &mut Run<'_>,
    s: &mut Slot,
    index: u32,
    at: u64,
    drive: &Drive,
) -> Result<Option<u64>, SimError> {
    match run.learn(s, at) {
        Next::Wake(delay) => {
            let send = at.saturating_add(delay);
            if drive.every_step {
                run.queue.push(send, WAKE, index);
            } else {
                // Nothing happens at the send itself: queue the next
                // attempt straight at its arrival.
                let reach = run.send(s, send);
                if drive.stamp_reach {
                    let seq = run.queue.reserve();
                    step_reach(run, s, index, reach, seq);
                    run.attempted()?;
                } else {
                    run.queue.push(reach, REACH, index);
                }
            }
            Ok(None)
        }
        Next::Done(end) => Ok(Some(end)),
    }
}

/// The current attempt of the call in slot `index` reaches the service at
/// `now`, in the event loop's place `seq`. Queues the end of the service's
/// work or, if the client's timeout comes first, the client learning of it.
fn step_reach(run: &mut Run<'_>, s: &mut Slot, index: u32, now: u64, seq: u64) {
    let (end, learn) = run.reach(s, now, seq);
    if learn < end {
        // The client times out before the service is done.
        run.queue.push(learn, LEARN, index);
    } else {
        run.queue.push(end, SERVICE_END, index);
    }
}

/// Runs every policy of `scenario` once with `seed`.
pub fn run(scenario: &Scenario, seed: u64) -> Result<Report, SimError> {
    run_many(scenario, seed, 1, &|_, _| {})
}

/// Runs every policy of `scenario` `runs` times, run `i` with seed
/// [`draws::run_seed`]`(seed, i)`. Independent (run, policy) jobs are
/// spread over the machine's cores; the result does not depend on how.
/// `progress(done, total)` counts finished calls over all jobs.
pub fn run_many(
    scenario: &Scenario,
    seed: u64,
    runs: u32,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Report, SimError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    run_many_on(scenario, seed, runs, threads, progress)
}

/// How far [`run_many_observed`] has got, over all its jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Calls finished.
    pub calls: u64,
    /// Calls to simulate in all.
    pub total: u64,
    /// Attempts made so far (counted in chunks, as the attempt budget
    /// counts them).
    pub attempts: u64,
}

/// [`run_many`] on at most `threads` threads (at least one); the
/// result does not depend on how many.
pub fn run_many_on(
    scenario: &Scenario,
    seed: u64,
    runs: u32,
    threads: usize,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Report, SimError> {
    run_many_observed_on(scenario, seed, runs, threads, &|p| {
        progress(p.calls, p.total)
    })
}

/// [`run_many`], reporting [`Progress`] with the attempts made as well.
pub fn run_many_observed(
    scenario: &Scenario,
    seed: u64,
    runs: u32,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Report, SimError> {
    let threads = crate::jobs::parallelism(runs as usize * scenario.policies.len());
    run_many_observed_on(scenario, seed, runs, threads, progress)
}

/// [`run_many_observed`] on at most `threads` threads (at least one).
fn run_many_observed_on(
    scenario: &Scenario,
    seed: u64,
    runs: u32,
    threads: usize,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Report, SimError> {
    let runs = runs.max(1);
    let policies = scenario.policies.len();
    if runs > crate::scenario::MAX_RUNS {
        return Err(SimError::Refused {
            field: "runs".to_owned(),
            message: format!("{runs} runs; allowed: 1 to {}", crate::scenario::MAX_RUNS),
        });
    }
    let all_calls = all_calls(scenario);
    crate::limits::check_work(
        scenario.workload.calls,
        all_calls - scenario.workload.calls,
        runs,
        policies,
        scenario.max_simulated_attempts,
    )
    .map_err(|(field, message)| SimError::Refused { field, message })?;
    let jobs = runs as usize * policies;
    // Progress counts background calls too.
    let total = all_calls * jobs as u64;
    let next = AtomicUsize::new(0);
    let finished = AtomicU64::new(0);
    let spent = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<PolicyMetrics, SimError>>>> =
        Mutex::new((0..jobs).map(|_| None).collect());
    let threads = threads.min(jobs).max(1);
    // Where there are runs enough to keep every thread busy, a thread
    // takes a whole run's jobs at once: its later policies read the draws,
    // legs and jitter words the first one kept (`draws::KeyMemo`, one per
    // thread), which a job on another thread would compute again.
    let chunk = if runs as usize >= 4 * threads {
        policies
    } else {
        1
    };
    std::thread::scope(|scope| {
        for _ in 0..threads {
            crate::jobs::spawn_or_run(scope, threads, || loop {
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let first = next.fetch_add(chunk, Ordering::Relaxed);
                if first >= jobs {
                    break;
                }
                // A chunk runs to its end, as a job does: every job before
                // a failed one has run.
                for job in first..(first + chunk).min(jobs) {
                    let run = (job / policies) as u32;
                    let policy = &scenario.policies[job % policies];
                    let mut reported = 0u64;
                    let mut outcome = run_job(
                        scenario,
                        policy,
                        draws::run_seed(seed, run),
                        Mode::Auto,
                        &mut |d| {
                            let all =
                                finished.fetch_add(d - reported, Ordering::Relaxed) + d - reported;
                            reported = d;
                            progress(Progress {
                                calls: all,
                                total,
                                attempts: spent.load(Ordering::Relaxed),
                            });
                        },
                        &spent,
                        None,
                    );
                    match &mut outcome {
                        // Plots show the first run: later runs keep only their
                        // scalar metrics, so the report's size does not grow
                        // with the series' lengths times the runs.
                        Ok(m) if run > 0 => {
                            m.load_per_bucket = Vec::new();
                            m.attempts_histogram = Vec::new();
                            m.latency_cdf = Vec::new();
                        }
                        Ok(_) => {}
                        Err(_) => failed.store(true, Ordering::Relaxed),
                    }
                    if let Ok(mut slots) = results.lock() {
                        slots[job] = Some(outcome);
                    }
                }
            });
        }
    });
    let mut slots = results.into_inner().unwrap_or_else(|e| e.into_inner());
    // After a failure later jobs may not have run: report the first error
    // in job order (every job before it ran to its end).
    if let Some(e) = slots.iter_mut().find_map(|s| match s {
        Some(Err(e)) => Some(e.clone()),
        _ => None,
    }) {
        return Err(e);
    }
    let mut reports = Vec::with_capacity(runs as usize);
    for run in 0..runs {
        let mut metrics = Vec::with_capacity(policies);
        for p in 0..policies {
            let outcome = slots[run as usize * policies + p]
                .take()
                .expect("every job ran");
            metrics.push(outcome?);
        }
        reports.push(RunReport {
            run,
            seed: draws::run_seed(seed, run),
            policies: metrics,
        });
    }
    Ok(Report::new(scenario, seed, reports))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small scenario of `runs` runs whose attempts make the budget
    /// `budget`.
    fn small(runs: u32, budget: u64) -> Scenario {
        let source = format!(
            r#"
runs = {runs}
max_simulated_attempts = {budget}
[workload]
calls = 30
arrival = "all_at_once"
[latency]
request = {{ distribution = "uniform", min = "1ms", max = "4ms" }}
service = {{ distribution = "uniform", min = "2ms", max = "6ms" }}
[[failures]]
model = "contention"
rows = 1
[policies.none]
strategy = {{ kind = "constant", base = "0s" }}
[policies.full]
strategy = {{ kind = "full_jitter", base = "2ms", max = "50ms" }}
[policies.equal]
strategy = {{ kind = "equal_jitter", base = "2ms", max = "50ms" }}
"#
        );
        Scenario::from_toml_str(&source, "small.toml").unwrap()
    }

    #[test]
    fn whole_runs_handed_to_threads_give_the_same_report() {
        // 12 runs: one and two threads take whole runs, three take jobs.
        let s = small(12, 10_000_000);
        let one = run_many_on(&s, 4, 12, 1, &|_, _| {}).unwrap();
        for threads in [2, 3, 5] {
            let many = run_many_on(&s, 4, 12, threads, &|_, _| {}).unwrap();
            assert_eq!(one, many, "{threads} threads");
        }
    }

    #[test]
    fn a_budget_crossed_by_whole_runs_stops_every_thread_count_alike() {
        let s = small(12, 2_000);
        let errors: Vec<_> = [1, 2, 3]
            .iter()
            .map(|&t| run_many_on(&s, 4, 12, t, &|_, _| {}).unwrap_err())
            .collect();
        assert_eq!(errors[0], SimError::AttemptBudget { limit: 2_000 });
        assert!(errors.iter().all(|e| *e == errors[0]), "{errors:?}");
    }

    #[test]
    fn in_flight_state_fits_the_documented_budget() {
        let per_call = std::mem::size_of::<Slot>() + std::mem::size_of::<crate::queue::Event>() * 2;
        assert!(
            per_call as u64 <= crate::scenario::BYTES_IN_FLIGHT && per_call > 0,
            "{per_call} bytes per call in flight"
        );
        assert_eq!(std::mem::size_of::<crate::queue::Event>(), 24);
    }
}
