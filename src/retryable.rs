//! The extension-trait API: `(|| fetch()).retry(&policy).call()`.
//!
//! [`Retryable`] is implemented for every closure. `.retry(&policy)` gives a
//! [`Retrying`] builder; name the operation with
//! [`operation`](Retrying::operation), then run it:
//!
//! * a closure returning a `Result` runs with [`call`](Retrying::call),
//!   exactly like [`RetryPolicy::call`];
//! * a closure returning a future of a `Result` is awaited directly (the
//!   builder is [`IntoFuture`]) or through
//!   [`call_async`](Retrying::call_async), exactly like
//!   [`RetryPolicy::call_async`].
//!
//! Both go through the policy's own drivers: the same engine, the same
//! events, the same seeded jitter and deadline checks.
//!
//! ```
//! use reflexio::{ClassifiedError, ManualClock, RetryPolicy, Retryable};
//!
//! let policy = RetryPolicy::builder()
//!     .strategy(reflexio::strategy::default_backoff())
//!     .clock(ManualClock::new()) // no real sleeping in this example
//!     .build()?;
//!
//! let mut calls = 0;
//! let fetch = || {
//!     calls += 1;
//!     if calls < 2 { Err(ClassifiedError::transient("reset")) } else { Ok(calls) }
//! };
//! let value = fetch.retry(&policy).operation("fetch").call()?;
//! assert_eq!(value, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::future::{Future, IntoFuture};
use std::pin::Pin;

use crate::classify::{Classifier, DefaultClassifier};
use crate::policy::{RetryError, RetryPolicy};

/// Retrying as a method of the operation: `op.retry(&policy)`.
///
/// Implemented for every `FnMut() -> R`; what [`Retrying`] can do depends on
/// `R` (a `Result` for [`call`](Retrying::call), a future of one for
/// `.await`). See the [module docs](self).
pub trait Retryable<R>: FnMut() -> R + Sized {
    /// Retries this operation under `policy`.
    fn retry<C>(self, policy: &RetryPolicy<C>) -> Retrying<'_, Self, C> {
        Retrying {
            op: self,
            policy,
            operation: Cow::Borrowed(""),
        }
    }
}

impl<F, R> Retryable<R> for F where F: FnMut() -> R {}

/// An operation bound to a policy, ready to run; made by
/// [`Retryable::retry`].
#[must_use = "nothing runs until `.call()` or `.await`"]
pub struct Retrying<'p, F, C = DefaultClassifier> {
    op: F,
    policy: &'p RetryPolicy<C>,
    operation: Cow<'static, str>,
}

impl<F, C> std::fmt::Debug for Retrying<'_, F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retrying")
            .field("operation", &self.operation)
            .field("policy", self.policy)
            .finish_non_exhaustive()
    }
}

impl<'p, F, C> Retrying<'p, F, C> {
    /// Tags every event of this call with `operation`.
    pub fn operation(mut self, operation: impl Into<Cow<'static, str>>) -> Self {
        self.operation = operation.into();
        self
    }

    /// Runs the operation until it succeeds or the policy gives up:
    /// [`RetryPolicy::call_named`].
    pub fn call<T, E>(self) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Result<T, E>,
        C: Classifier<E>,
    {
        self.policy.call_named(&self.operation, self.op)
    }

    /// Runs the futures the operation makes until one succeeds or the
    /// policy gives up: [`RetryPolicy::call_async_named`]. Unlike `.await`
    /// on the builder, the future is not boxed and need not be `Send`.
    pub async fn call_async<T, E, Fut>(self) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Classifier<E>,
    {
        self.policy.call_async_named(&self.operation, self.op).await
    }
}

/// `.await` on the builder runs [`call_async`](Retrying::call_async) in a
/// boxed, `Send` future (so the operation, its futures, `T` and `E` must be
/// `Send`); use `call_async` for operations that are not.
impl<'p, F, C, Fut, T, E> IntoFuture for Retrying<'p, F, C>
where
    F: FnMut() -> Fut + Send + 'p,
    Fut: Future<Output = Result<T, E>> + Send + 'p,
    C: Classifier<E> + 'p,
    T: Send + 'p,
    E: Send + 'p,
{
    type Output = Result<T, RetryError<E>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'p>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.call_async())
    }
}
