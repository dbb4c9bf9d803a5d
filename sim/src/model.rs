//! Failure models of the simulated service.
//!
//! Every model acts on the service's timeline. An attempt's request
//! arrives at the service after its request leg; the scenario's models are
//! consulted then, in the order it lists them. Each model whose time window
//! holds the arrival time is asked in turn; the first that fails the
//! attempt decides its class (and any retry-after hint), and later models
//! do not see the attempt at all. So the rate limiter and overload see an
//! attempt when its request arrives, and outage, random, scripted and
//! trace decide by the arrival time. Two models decide later: contention
//! reads the row's version at the arrival and writes when the service's
//! work ends (for a transaction of several round trips: at the first
//! request's arrival and at the end of the last work), and overload's
//! client timeout, which runs from the client's send. Overload counts an
//! attempt in flight until its work ends (a transaction: its last work).
//!
//! Models that keep state (the rate limiter's bucket, the contended rows'
//! versions, the overloaded service's load) keep it per policy run: each
//! policy faces a fresh service.

use reflexio::{Classification, ErrorClass};

use crate::draws::{Draws, MODEL};
use crate::latency::Timeline;

/// An attempt's outcome: `None` for success, else the failure.
pub type Outcome = Option<Classification>;

/// When a model is active: `[from, until)` in virtual nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First active instant.
    pub from: u64,
    /// First instant no longer active.
    pub until: u64,
}

impl Window {
    /// Always active.
    pub const ALWAYS: Window = Window {
        from: 0,
        until: u64::MAX,
    };

    /// Whether `t` lies in the window.
    pub fn contains(&self, t: u64) -> bool {
        self.from <= t && t < self.until
    }
}

/// One failure model and its window.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// When the model applies (an outage's window is its `start`/`end`).
    pub window: Window,
    /// What it does.
    pub kind: ModelKind,
}

/// The failure models.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelKind {
    /// Each attempt fails with `probability`; the class is picked from the
    /// mix (cumulative thresholds, the last one 1.0).
    Random {
        /// Chance an attempt fails.
        probability: f64,
        /// `(class, cumulative share)`, in class-name order.
        classes: Vec<(ErrorClass, f64)>,
        /// Hint carried by each failure.
        retry_after: Option<std::time::Duration>,
    },
    /// Every attempt in the window fails with `class`.
    Outage {
        /// The failure's class.
        class: ErrorClass,
        /// Hint carried by each failure.
        retry_after: Option<std::time::Duration>,
    },
    /// A token bucket (as GCRA): a token every `interval` ns, at most
    /// `burst` saved. Attempts without a token fail with rate_limit,
    /// carrying (if `hint`) the time until a token frees up.
    RateLimit {
        /// Nanoseconds per token.
        interval: u64,
        /// Bucket size.
        burst: u32,
        /// Whether rejections carry a retry-after hint.
        hint: bool,
    },
    /// Optimistic concurrency: each call writes one of `rows` rows; an
    /// attempt reads the row's version when it starts and writes when it
    /// ends, failing with concurrency if another write came in between.
    Contention {
        /// Number of shared rows.
        rows: u32,
    },
    /// A service whose latency and error rate grow with the attempts in
    /// flight beyond `capacity`. An attempt is in flight from its
    /// request's arrival to the end of the service's work; a transaction
    /// of several round trips, from its first request's arrival to the
    /// end of its last work, and the whole span between (its work and the
    /// legs in between) stretches.
    Overload {
        /// Attempts in flight served at nominal latency.
        capacity: u32,
        /// Latency factor `1 + latency_growth × excess`, where
        /// `excess = max(0, in_flight / capacity − 1)`.
        latency_growth: f64,
        /// Error rate at or below capacity.
        error_rate: f64,
        /// Added error rate per unit of excess.
        error_growth: f64,
        /// Client timeout in ns: a slower attempt fails as transient when
        /// the timeout expires (the service keeps working on it).
        timeout: Option<u64>,
        /// Class of the overload's errors.
        class: ErrorClass,
    },
    /// Attempt `n` of every call gets `outcomes[n - 1]`, or `then` past
    /// the end.
    Scripted {
        /// Outcomes by attempt.
        outcomes: Vec<Outcome>,
        /// Outcome of later attempts.
        then: Outcome,
    },
    /// A recorded timeline: from each point's time on, attempts get its
    /// outcome, until the next point. Before the first point: success.
    Trace {
        /// `(time ns, outcome)`, in time order.
        points: Vec<(u64, Outcome)>,
    },
}

/// Mutable state of one model during one policy run.
#[derive(Debug, Clone)]
enum State {
    Stateless,
    /// Theoretical arrival time of the next conforming attempt.
    Bucket {
        tat: u64,
    },
    /// Per row, the [`Stamp`] of its last write.
    Rows {
        written: Vec<Stamp>,
    },
    /// Attempts in flight at the service.
    Load {
        in_flight: u64,
    },
}

/// A point of the service's timeline: `(time ns, sequence)`, the
/// sequence ordering simultaneous events as the event loop runs them. A
/// contended row's reader sees exactly the writes stamped before its read.
pub type Stamp = (u64, u64);

/// What the service does with one attempt, decided when its request
/// arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Plan {
    /// From the request's arrival to the end of the service's work (ns),
    /// after any overload stretched it.
    pub service: u64,
    /// From the client's send to the client learning the outcome (ns): the
    /// request, the service's work and the response; or the client's
    /// timeout, if that came first.
    pub client: u64,
    /// The outcome, unless contention decides it at the end.
    pub outcome: Outcome,
    /// The contention model, the row and when it was read:
    /// `(model, row, read)`.
    pub write: Option<(u8, u32, Stamp)>,
    /// The overload model holding a slot until the service's work ends.
    pub load: Option<u8>,
}

/// The row of `rows` that a call with `row_draw` reads and writes.
#[inline(always)]
fn contended_row(row_draw: u64, rows: u32) -> u32 {
    ((u128::from(row_draw) * u128::from(rows)) >> 64) as u32
}

/// The chain of models with their state for one policy run.
#[derive(Debug, Clone)]
pub struct Service<'a> {
    /// Each model with its state, in the chain's order.
    chain: Vec<(&'a Model, State)>,
    /// When the chain is one contention model: its window and rows.
    contention_alone: Option<(Window, u32)>,
}

impl<'a> Service<'a> {
    /// A fresh service over `models`.
    pub fn new(models: &'a [Model]) -> Self {
        let chain = models
            .iter()
            .map(|m| {
                let state = match &m.kind {
                    ModelKind::RateLimit { .. } => State::Bucket { tat: 0 },
                    ModelKind::Contention { rows } => State::Rows {
                        written: vec![(0, 0); *rows as usize],
                    },
                    ModelKind::Overload { .. } => State::Load { in_flight: 0 },
                    _ => State::Stateless,
                };
                (m, state)
            })
            .collect();
        let contention_alone = match models {
            [Model {
                window,
                kind: ModelKind::Contention { rows },
            }] => Some((*window, *rows)),
            _ => None,
        };
        Service {
            chain,
            contention_alone,
        }
    }

    /// Decides attempt `attempt` of a call, whose request arrives at the
    /// service at `now` (as the event of sequence `seq`), with its legs'
    /// `timeline`, its `(call, attempt)` draws and the call's row draw,
    /// into `plan` (the slot's own, written in place rather than returned:
    /// the event loop reads its fields at once, and a returned copy cost a
    /// stalled reload of each).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        plan: &mut Plan,
        now: u64,
        seq: u64,
        attempt: u32,
        timeline: &Timeline,
        draws: &Draws,
        row_draw: u64,
    ) {
        *plan = Plan {
            service: timeline.service,
            client: timeline.total(),
            outcome: None,
            write: None,
            load: None,
        };
        if let Some((window, rows)) = self.contention_alone {
            // A contended row and no other model: its read
            // stamped as in the chain below, without the chain's loop.
            if window.contains(now) {
                plan.write = Some((0, contended_row(row_draw, rows), (now, seq)));
            }
            return;
        }
        for (k, (model, state)) in self.chain.iter_mut().enumerate() {
            if !model.window.contains(now) {
                continue;
            }
            // Model k's two dice, read only by the models that roll them.
            let u0 = || draws.unit(MODEL + 2 * k);
            let failed: Outcome = match (&model.kind, state) {
                (
                    ModelKind::Random {
                        probability,
                        classes,
                        retry_after,
                    },
                    _,
                ) => {
                    if u0() < *probability {
                        let u1 = draws.unit(MODEL + 2 * k + 1);
                        let class = classes
                            .iter()
                            .find(|(_, upto)| u1 < *upto)
                            .or(classes.last())
                            .map_or(ErrorClass::Unknown, |(c, _)| *c);
                        Some(Classification {
                            class,
                            retry_after: *retry_after,
                        })
                    } else {
                        None
                    }
                }
                (ModelKind::Outage { class, retry_after }, _) => Some(Classification {
                    class: *class,
                    retry_after: *retry_after,
                }),
                (
                    ModelKind::RateLimit {
                        interval,
                        burst,
                        hint,
                    },
                    State::Bucket { tat },
                ) => {
                    let tau = interval.saturating_mul(u64::from(*burst) - 1);
                    let t = (*tat).max(now);
                    if t - now > tau {
                        let wait = t - tau - now;
                        let mut c = Classification::new(ErrorClass::RateLimit);
                        if *hint {
                            c = c.with_retry_after(std::time::Duration::from_nanos(wait));
                        }
                        // Refused at the door: the service does no work,
                        // and the refusal crosses the response leg alone.
                        plan.service = 0;
                        plan.client = timeline.request.saturating_add(timeline.response);
                        Some(c)
                    } else {
                        *tat = t.saturating_add(*interval);
                        None
                    }
                }
                (ModelKind::Contention { rows }, _) => {
                    // The read is only stamped: whether a write came in
                    // between is known when this attempt writes.
                    plan.write = Some((k as u8, contended_row(row_draw, *rows), (now, seq)));
                    None
                }
                (
                    ModelKind::Overload {
                        capacity,
                        latency_growth,
                        error_rate,
                        error_growth,
                        timeout,
                        class,
                    },
                    State::Load { in_flight },
                ) => {
                    *in_flight += 1;
                    plan.load = Some(k as u8);
                    // Within capacity there is no excess: the work is only
                    // capped, and fails at the base rate (a probability,
                    // checked when the scenario was read), skipping the
                    // float arithmetic.
                    let (served, p) = if *in_flight <= u64::from(*capacity) {
                        (
                            plan.service.min(crate::latency::MAX_LATENCY_NS),
                            *error_rate,
                        )
                    } else {
                        let excess = *in_flight as f64 / f64::from(*capacity) - 1.0;
                        let stretched = (plan.service as f64 * (1.0 + latency_growth * excess))
                            .min(crate::latency::MAX_LATENCY_NS as f64);
                        (
                            crate::latency::round_ns(stretched),
                            (error_rate + error_growth * excess).min(1.0),
                        )
                    };
                    if served != plan.service {
                        plan.service = served;
                        plan.client = timeline
                            .request
                            .saturating_add(served)
                            .saturating_add(timeline.response);
                    }
                    // A draw in [0, 1) is never below a zero rate.
                    let mut outcome = (p > 0.0 && u0() < p).then_some(Classification::new(*class));
                    if let Some(limit) = timeout {
                        // The client's timeout runs from its send.
                        if plan.client > *limit {
                            plan.client = *limit;
                            outcome = Some(Classification::new(ErrorClass::Transient));
                        }
                    }
                    outcome
                }
                (ModelKind::Scripted { outcomes, then }, _) => {
                    outcomes.get(attempt as usize - 1).copied().unwrap_or(*then)
                }
                (ModelKind::Trace { points }, _) => {
                    let i = points.partition_point(|(t, _)| *t <= now);
                    if i == 0 {
                        None
                    } else {
                        points[i - 1].1
                    }
                }
                _ => None,
            };
            if failed.is_some() {
                plan.outcome = failed;
                // A failure means no write happens.
                plan.write = None;
                break;
            }
        }
    }

    /// The attempt planned by `plan` ends, writing at `at` (after every
    /// write stamped earlier); its outcome becomes final: a write fails
    /// with concurrency if the row was written after this attempt read it.
    /// The plan is changed in place, and only then: the event loop reads
    /// the outcome back at once, and a copy written just before would
    /// stall that read.
    pub fn finish(&mut self, plan: &mut Plan, at: Stamp) {
        if plan.outcome.is_some() {
            return;
        }
        if let Some((k, row, read)) = plan.write {
            if let State::Rows { written } = &mut self.chain[k as usize].1 {
                let last = &mut written[row as usize];
                if *last > read {
                    plan.outcome = Some(Classification::new(ErrorClass::Concurrency));
                    return;
                }
                *last = at;
            }
        }
    }

    /// The service finished working on an attempt of overload model `k`.
    pub fn release(&mut self, k: u8) {
        if let Some(State::Load { in_flight }) = self.chain.get_mut(k as usize).map(|m| &mut m.1) {
            *in_flight = in_flight.saturating_sub(1);
        }
    }

    /// Attempts in flight at overload model `k`.
    pub fn in_flight(&self, k: usize) -> u64 {
        match self.chain.get(k).map(|m| &m.1) {
            Some(State::Load { in_flight }) => *in_flight,
            _ => 0,
        }
    }
}
