//! Observability: hooks that receive every [`Event`].
//!
//! A hook is any `Fn(&Event) + Send + Sync`. Hooks run synchronously, in
//! the order they were added, right after the engine decides. A hook that
//! panics is contained: the panic is caught, the remaining hooks still run,
//! and the call's outcome does not change. With the `tracing` feature,
//! every event is also emitted as a `tracing` event (target `reflexio`):
//! retries at DEBUG, success at TRACE, every other terminal event at WARN.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::engine::Event;

/// Receives the events of the calls it observes.
pub trait Hook: Send + Sync {
    /// Called once per event.
    fn on_event(&self, event: &Event<'_>);
}

impl<F> Hook for F
where
    F: Fn(&Event<'_>) + Send + Sync,
{
    fn on_event(&self, event: &Event<'_>) {
        self(event)
    }
}

/// An ordered list of hooks, cheap to clone.
#[derive(Clone, Default)]
pub struct Hooks {
    hooks: Vec<Arc<dyn Hook>>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("len", &self.hooks.len())
            .finish()
    }
}

impl Hooks {
    /// No hooks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a hook at the end.
    pub fn push(&mut self, hook: impl Hook + 'static) {
        self.hooks.push(Arc::new(hook));
    }

    /// Whether there are no hooks.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// How many hooks there are.
    pub fn len(&self) -> usize {
        self.hooks.len()
    }

    /// Hands `event` to every hook, containing panics.
    pub fn emit(&self, event: &Event<'_>) {
        for hook in &self.hooks {
            // A panicking hook must not change the outcome of the call it
            // observes; its panic is dropped here.
            let _ = catch_unwind(AssertUnwindSafe(|| hook.on_event(event)));
        }
    }
}

/// Emits `event` to `policy_hooks`, then `extra` (a bound context's hooks),
/// then to `tracing` when that feature is on.
pub(crate) fn dispatch(policy_hooks: &Hooks, extra: Option<&Hooks>, event: &Event<'_>) {
    policy_hooks.emit(event);
    if let Some(extra) = extra {
        extra.emit(event);
    }
    #[cfg(feature = "tracing")]
    trace_event(event);
}

#[cfg(feature = "tracing")]
fn trace_event(event: &Event<'_>) {
    use crate::engine::EventKind;
    macro_rules! emit_at {
        ($level:expr) => {
            tracing::event!(
                target: "reflexio",
                $level,
                kind = event.kind.name(),
                reason = event.reason.map(|r| r.name()),
                operation = event.operation,
                attempt = event.attempt,
                delay_ms = event.delay.map(|d| d.as_secs_f64() * 1e3),
                class = event.class.map(|c| c.name()),
                error_type = event.error_type,
                error = event.error.map(tracing::field::display),
                elapsed_ms = event.elapsed.as_secs_f64() * 1e3,
                "{}",
                event.kind.name()
            )
        };
    }
    match event.kind {
        EventKind::Success => emit_at!(tracing::Level::TRACE),
        EventKind::Retry => emit_at!(tracing::Level::DEBUG),
        _ => emit_at!(tracing::Level::WARN),
    }
}
