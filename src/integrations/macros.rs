//! The `#[retry]` attribute (feature `macros`), from the `reflexio-macros`
//! crate; see [`retry`](macro@retry).

/// Retries a function's body under a policy.
///
/// ```
/// use reflexio::ClassifiedError;
///
/// #[reflexio::retry]
/// fn fetch_user(id: u32) -> Result<String, ClassifiedError> {
///     Ok(format!("user {id}"))
/// }
/// assert_eq!(fetch_user(7)?, "user 7");
/// # Ok::<(), ClassifiedError>(())
/// ```
///
/// The body runs once per attempt, through the policy's own drivers:
/// [`call_named`](crate::RetryPolicy::call_named) for a plain function,
/// [`call_async_named`](crate::RetryPolicy::call_async_named) for an
/// `async fn`, so the events, deadline checks and seeded jitter are the
/// same as a direct call's. The function keeps its signature and returns
/// its own last error, unchanged, when retrying stops (why it stopped and
/// after how many attempts are in the events a [hook](crate::Hook) sees).
///
/// * `#[retry]`: the default policy ([`RetryPolicy::default`](crate::RetryPolicy::default),
///   one shared instance, as [`retry`](fn@crate::retry) uses).
/// * `#[retry(policy = EXPR)]`: the policy `EXPR` names, evaluated on every
///   call and borrowed: typically a `static` (a `LazyLock<RetryPolicy>`),
///   or a field, `policy = self.policy` (in a `&mut self` method, the call
///   holds a clone of it, which shares its hooks, budget and seed, so that
///   each attempt may borrow `self` mutably).
/// * `#[retry(operation = "name")]`: the operation name on every event;
///   by default the function's own name.
///
/// Both keys may be combined: `#[retry(policy = POLICY, operation = "fetch")]`.
///
/// # Arguments are re-passed to every attempt
///
/// Each attempt gets its own copy of every argument: a clone of an
/// argument taken by value (so it must be `Clone`), the same shared
/// reference, or, on a function that is not `async`, the `&mut` reference
/// reborrowed. Methods take `&self` (or `&mut self` when not `async`).
/// Inside the body, `?` and `return` end the current attempt.
///
/// # What does not compile
///
/// Each with an error that says what to do instead: a function that does
/// not return a `Result` (the return type's last path segment must end in
/// `Result`, so `io::Result<T>` works too); an `impl Trait` argument (use a
/// generic parameter with a `Clone` bound) or an `impl Trait` in the
/// return type (return a concrete type); `self` by value; `&mut`
/// arguments or `&mut self` on an `async fn` (each attempt's future would
/// need its own mutable borrow); an unknown or repeated key.
///
/// The error type must be one the policy's classifier takes. The default
/// policy's classifier takes any `std::error::Error + 'static`; so
/// `anyhow::Result<T>` and `Box<dyn Error + Send + Sync>` errors, which
/// are not `std::error::Error` themselves, need a policy with a classifier
/// for them (for `anyhow::Error`, a closure
/// `|e: &anyhow::Error| DefaultClassifier::new().classify_dyn(e.as_ref(), "")`
/// given to [`RetryPolicyBuilder::classifier`](crate::RetryPolicyBuilder::classifier)).
///
/// ```
/// use std::sync::LazyLock;
/// use std::time::Duration;
/// use reflexio::{Backoff, ClassifiedError, ManualClock, RetryPolicy};
///
/// static POLICY: LazyLock<RetryPolicy> = LazyLock::new(|| {
///     RetryPolicy::builder()
///         .strategy(Backoff::constant(Duration::from_millis(100)))
///         .sleeper(ManualClock::new()) // a fake clock: this example does not wait
///         .build()
///         .expect("a valid policy")
/// });
///
/// struct Orders { flaky: std::sync::atomic::AtomicBool }
///
/// impl Orders {
///     #[reflexio::retry(policy = POLICY, operation = "load_orders")]
///     async fn load(&self, customer: String) -> Result<Vec<String>, ClassifiedError> {
///         if self.flaky.swap(false, std::sync::atomic::Ordering::SeqCst) {
///             return Err(ClassifiedError::transient("connection reset"));
///         }
///         Ok(vec![format!("{customer}: order 1")])
///     }
/// }
///
/// let orders = Orders { flaky: true.into() };
/// let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// assert_eq!(rt.block_on(orders.load("ada".into()))?, ["ada: order 1"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use reflexio_macros::retry;

/// The default policy of `#[retry]` without `policy = ..`. Not public API:
/// the attribute's expansion calls it.
#[doc(hidden)]
pub fn default_policy() -> &'static crate::RetryPolicy {
    crate::policy::shared_default()
}

/// A clone of `policy` (a shared handle: the same hooks, budget and seed)
/// for a `&mut self` method whose policy is read from `self`: the call
/// holds the clone, so `self` is free for each attempt. Not public API:
/// the attribute's expansion calls it.
#[doc(hidden)]
pub fn held_policy<C>(policy: &crate::RetryPolicy<C>) -> crate::RetryPolicy<C> {
    policy.clone()
}
