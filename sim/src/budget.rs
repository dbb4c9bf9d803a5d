//! Retry budgets in the simulator.
//!
//! A policy with a `[budget]` table gets a fresh budget for each run: the
//! engine of that (policy, run) is the policy's engine with a budget built
//! from the table, shared by every call of the run, and handed the virtual
//! time (each call starts with [`Engine::start_at`] at its arrival; the
//! engine asks the budget at the call's start plus the elapsed time). The
//! budget's state is shared across calls, so its decisions must come in
//! virtual-time order: a budgeted run is driven as
//! [`Mode::Events`](crate::world::Mode::Events), where the client learns
//! each outcome at its own event, in time order. Runs without a budget
//! are driven exactly as before.
//!
//! The checker keeps its own account of the budget's documented bound
//! ([`Checker::with_budget`](crate::check::Checker::with_budget)) and
//! reports any excess as `budget_exceeded`.

use std::sync::Arc;
use std::time::Duration;

use reflexio::engine::{CallState, Engine};
use reflexio::{Budget, BudgetSpec};

use crate::check::{BudgetCounts, Checker};
use crate::metrics::{BudgetMetrics, PolicyMetrics};
use crate::scenario::Policy;

/// The budget of one (policy, run): the engine that consults it, and what
/// its bound is.
pub(crate) struct RunBudget {
    /// The policy's engine with the run's own budget.
    pub engine: Engine,
    /// The bound the budget documents, if it is of a built-in kind.
    pub spec: Option<BudgetSpec>,
}

impl RunBudget {
    /// The budget of a run of `policy`: `custom` if given (a budget of any
    /// kind, tried in place of the policy's own), else a fresh one built
    /// from the policy's `[budget]` table; `None` for a policy without one.
    pub fn of(policy: &Policy, custom: Option<Arc<dyn Budget>>) -> Option<RunBudget> {
        let budget = match custom {
            Some(b) => b,
            None => policy.budget?.build(),
        };
        let spec = budget.spec();
        Some(RunBudget {
            engine: policy.engine.clone().with_budget(Some(budget)),
            spec,
        })
    }

    /// A checker for the run, keeping the budget's account.
    pub fn checker(&self, checker: Checker) -> Checker {
        checker.with_budget(self.spec)
    }
}

/// A call of a budgeted policy arrives at `now` (virtual ns): the budget
/// and the checker are told, and the call's state anchored at `now`.
pub(crate) fn start(engine: &Engine, checker: &mut Checker, now: u64) -> CallState {
    let at = Duration::from_nanos(now);
    checker.budget_call_started(at);
    engine.start_at(at)
}

/// The budget's account in `metrics`, from what the checker counted.
pub(crate) fn account(
    metrics: &mut PolicyMetrics,
    spec: Option<BudgetSpec>,
    counts: Option<BudgetCounts>,
) {
    if let Some(counts) = counts {
        let name = spec.map_or_else(|| "a budget of its own kind".to_owned(), |s| s.to_string());
        metrics.budget = Some(BudgetMetrics::new(name, counts.admitted, counts.refused));
    }
}
