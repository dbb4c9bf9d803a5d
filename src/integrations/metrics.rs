//! A hook that records every call through the `metrics`
//! facade (feature `metrics`).
//!
//! [`MetricsHook`] records into whatever recorder the application installed
//! (`metrics-exporter-prometheus`, a statsd exporter, ...):
//!
//! | name | kind | labels | recorded |
//! |---|---|---|---|
//! | `reflexio_calls_total` | counter | `operation`, `outcome` | once per call, on its terminal event; `outcome` is the event's name: `success`, `permanent_fail`, `deadline_exceeded`, `max_attempts_exceeded`, `max_unknown_attempts_exceeded` or `budget_exhausted` |
//! | `reflexio_retries_total` | counter | `operation`, `class` | once per retry; `class` is the failure's [class name](crate::ErrorClass::name) |
//! | `reflexio_retry_delay_seconds` | histogram | `operation`, `class` | once per retry: the delay slept before it, in seconds |
//!
//! `operation` is the call's operation name (empty for unnamed calls).
//! Attempts per call are `reflexio_retries_total` summed over classes plus
//! `reflexio_calls_total`, per operation, with one exception: a retry is
//! announced before its sleep, and a sleep that wakes more than
//! [`WAKE_TOLERANCE`](crate::engine::WAKE_TOLERANCE) past the deadline
//! (a suspended process, a starved thread) ends the call with
//! `deadline_exceeded` instead of the attempt it announced, so that retry
//! is counted but never made. [`MetricsHook::describe`]
//! registers the descriptions and units with the recorder.
//!
//! ```
//! use reflexio::metrics::MetricsHook;
//! use reflexio::RetryPolicy;
//!
//! MetricsHook::describe();
//! let policy = RetryPolicy::builder()
//!     .strategy(reflexio::strategy::default_backoff())
//!     .hook(MetricsHook::new())
//!     .build()?;
//! let users = policy.bind("fetch_user");
//! assert_eq!(users.call(|| Ok::<_, std::io::Error>(7))?, 7);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::engine::{Event, EventKind};
use crate::observe::Hook;

/// The counter of finished calls, by `operation` and `outcome`.
pub const CALLS_TOTAL: &str = "reflexio_calls_total";
/// The counter of retries, by `operation` and `class`.
pub const RETRIES_TOTAL: &str = "reflexio_retries_total";
/// The histogram of retry delays in seconds, by `operation` and `class`.
pub const RETRY_DELAY_SECONDS: &str = "reflexio_retry_delay_seconds";

/// Records every event into the `metrics` facade; see the
/// [module docs](self) for the names and labels.
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsHook {
    _private: (),
}

impl MetricsHook {
    /// A hook recording into the globally installed recorder.
    pub fn new() -> Self {
        MetricsHook { _private: () }
    }

    /// Registers the three metrics' descriptions and units with the
    /// installed recorder (call it once, after installing the recorder).
    pub fn describe() {
        ::metrics::describe_counter!(
            CALLS_TOTAL,
            ::metrics::Unit::Count,
            "Calls made through a reflexio retry policy, by operation and terminal outcome."
        );
        ::metrics::describe_counter!(
            RETRIES_TOTAL,
            ::metrics::Unit::Count,
            "Retries made by reflexio, by operation and error class."
        );
        ::metrics::describe_histogram!(
            RETRY_DELAY_SECONDS,
            ::metrics::Unit::Seconds,
            "Delay slept before each reflexio retry, by operation and error class."
        );
    }
}

impl Hook for MetricsHook {
    fn on_event(&self, event: &Event<'_>) {
        let operation = event.operation.to_owned();
        match event.kind {
            EventKind::Retry => {
                let class = event.class.map_or("unknown", |c| c.name());
                ::metrics::counter!(RETRIES_TOTAL, "operation" => operation.clone(), "class" => class)
                    .increment(1);
                let delay = event.delay.unwrap_or_default().as_secs_f64();
                ::metrics::histogram!(RETRY_DELAY_SECONDS, "operation" => operation, "class" => class)
                    .record(delay);
            }
            kind => {
                ::metrics::counter!(CALLS_TOTAL, "operation" => operation, "outcome" => kind.name())
                    .increment(1);
            }
        }
    }
}
