//! The production API: [`RetryPolicy`], its builder, the blocking and async
//! drivers, bound contexts and [`RetryError`].

use std::any::type_name;
use std::borrow::Cow;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::budget::Budget;
use crate::class::ErrorClass;
use crate::classify::{Classifier, DefaultClassifier};
use crate::clock::{Clock, Sleeper, SystemClock};
use crate::engine::{CallState, Decision, Engine, Envelope, Event, Failure, StopReason};
use crate::jitter_rng::JitterRng;
use crate::observe::{dispatch, Hook, Hooks};
use crate::strategy::{ClassStrategy, Strategy};

/// A retry policy: classifier, strategies, envelope, hooks and time source.
///
/// Cloning is cheap (one reference count) and a policy is `Send + Sync`, so
/// one policy serves every thread and task of a service.
///
/// ```
/// use std::time::Duration;
/// use reflexio::{Backoff, ErrorClass, RetryPolicy};
///
/// let policy = RetryPolicy::builder()
///     .strategy(Backoff::decorrelated_jitter(Duration::from_millis(100), Duration::from_secs(5)))
///     .class_strategy(ErrorClass::RateLimit, Backoff::token_backoff(Duration::from_millis(500), Duration::from_secs(20)))
///     .deadline(Duration::from_secs(30))
///     .max_attempts(5)
///     .build()
///     .expect("a valid policy");
/// let value: Result<u32, _> = policy.call(|| Ok::<_, std::io::Error>(7));
/// assert_eq!(value.unwrap(), 7);
/// ```
pub struct RetryPolicy<C = DefaultClassifier> {
    inner: Arc<Inner<C>>,
}

struct Inner<C> {
    engine: Engine,
    classifier: C,
    hooks: Hooks,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    seed: Option<u64>,
    seeded_calls: SeededCalls,
    /// How many policies were derived from this one with a new classifier.
    derived: AtomicU64,
}

/// The seed of the `n`-th policy derived from a policy seeded with `seed`:
/// SplitMix64's finaliser over both, which never maps two `n` of one seed
/// to the same value (it is a bijection of its input).
fn derive_seed(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The count of seeded calls that needed an RNG, on a cache line of its
/// own: it is written only when a seeded call first fails, and must not
/// slow down the success path of other threads reading the policy.
#[repr(align(128))]
#[derive(Default)]
struct SeededCalls(AtomicU64);

impl<C> Clone for RetryPolicy<C> {
    fn clone(&self) -> Self {
        RetryPolicy {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C> fmt::Debug for RetryPolicy<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("envelope", self.inner.engine.envelope())
            .field("hooks", &self.inner.hooks.len())
            .field("seed", &self.inner.seed)
            .finish_non_exhaustive()
    }
}

fn default_sleeper() -> Arc<dyn Sleeper> {
    #[cfg(feature = "tokio")]
    return Arc::new(crate::clock::TokioSleeper::new());
    #[cfg(not(feature = "tokio"))]
    return Arc::new(crate::clock::ThreadSleeper::new());
}

impl Default for RetryPolicy {
    /// The reference defaults: the [`DefaultClassifier`], decorrelated
    /// jitter from 250 ms up to 5 s for every retryable class, a 60 s
    /// deadline, 6 attempts, 2 for unknown errors, hints honoured up to 60 s.
    fn default() -> Self {
        RetryPolicy::builder().assemble()
    }
}

impl RetryPolicy {
    /// A builder holding [`RetryPolicy::default`]'s settings: the default
    /// envelope, classifier and strategy
    /// ([`default_backoff`](crate::strategy::default_backoff)). Change only
    /// what differs:
    ///
    /// ```
    /// let policy = reflexio::RetryPolicy::builder().max_attempts(3).build()?;
    /// assert_eq!(policy.envelope().max_attempts, 3);
    /// # Ok::<(), reflexio::BuildError>(())
    /// ```
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            envelope: Envelope::default(),
            default_strategy: ClassStrategy::new(crate::strategy::default_backoff()),
            class_strategies: Default::default(),
            classifier: DefaultClassifier::new(),
            hooks: Hooks::new(),
            clock: None,
            sleeper: None,
            seed: None,
            budget: None,
        }
    }

    /// Builds the policy a [`RetryConfig`](crate::config::RetryConfig) describes, with
    /// the default classifier, no hooks and the system clock. To add any of
    /// those, start from [`RetryPolicyBuilder::from_config`] instead.
    #[cfg(feature = "config")]
    #[cfg_attr(docsrs, doc(cfg(feature = "config")))]
    pub fn from_config(
        config: &crate::config::RetryConfig,
    ) -> Result<RetryPolicy, crate::config::ConfigError> {
        Ok(RetryPolicyBuilder::from_config(config)?.assemble())
    }
}

impl RetryPolicyBuilder {
    /// A builder holding what a [`RetryConfig`](crate::config::RetryConfig)
    /// describes (envelope, strategies, per-class caps, seed and a fresh
    /// budget), validated,
    /// so that hooks, a classifier, a clock or a sleeper can be added
    /// before [`build`](Self::build). The configuration's settings can
    /// still be overridden here; a policy built without overrides decides
    /// exactly as [`RetryPolicy::from_config`]'s does.
    ///
    /// ```
    /// use reflexio::{RetryConfig, RetryPolicyBuilder};
    ///
    /// let config = RetryConfig::from_toml_str("max_attempts = 3\n")?;
    /// let policy = RetryPolicyBuilder::from_config(&config)?
    ///     .hook(|event: &reflexio::Event<'_>| println!("{}", event.kind.name()))
    ///     .build()?;
    /// assert_eq!(policy.envelope().max_attempts, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "config")]
    #[cfg_attr(docsrs, doc(cfg(feature = "config")))]
    pub fn from_config(
        config: &crate::config::RetryConfig,
    ) -> Result<RetryPolicyBuilder, crate::config::ConfigError> {
        config.validate()?;
        let mut builder = RetryPolicy::builder();
        builder.envelope = config.envelope();
        // The configuration's own choice for every class (its table, else
        // `[strategy]`, else the default), as `RetryConfig::engine` makes it.
        builder.class_strategies =
            ErrorClass::ALL.map(|class| config.backoff(class).map(ClassStrategy::new));
        // Validated above: every strategy table converts.
        let default_strategy = match &config.strategy {
            Some(strategy) => strategy.backoff()?,
            None => crate::strategy::default_backoff(),
        };
        builder.default_strategy = ClassStrategy::new(default_strategy);
        builder.seed = config.seed;
        builder.budget = config.budget_spec()?.map(|spec| spec.build());
        Ok(builder)
    }
}

impl<C> RetryPolicy<C> {
    /// The decision engine (envelope and strategies).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The policy's warnings: see [`Engine::lint`] and the
    /// [`lint`](crate::lint) module.
    pub fn lint(&self) -> Vec<crate::lint::Diagnostic> {
        self.inner.engine.lint()
    }

    /// The envelope every call runs within.
    pub fn envelope(&self) -> &Envelope {
        self.inner.engine.envelope()
    }

    /// The classifier, for adapters that classify through
    /// [`run_async_with`](Self::run_async_with).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn classifier(&self) -> &C {
        &self.inner.classifier
    }

    /// The same policy with `classifier` instead (envelope, strategies,
    /// hooks, time and budget kept: the budget is shared with this policy).
    ///
    /// A seeded policy's derived policy gets a seed of its own, derived
    /// from the parent's seed and how many policies were derived from the
    /// parent before: its calls draw a jitter stream distinct from the
    /// parent's (and from its siblings'), so the two never retry in
    /// lockstep, and the same program still draws the same delays on
    /// every run.
    pub fn with_classifier<C2>(&self, classifier: C2) -> RetryPolicy<C2> {
        let inner = &self.inner;
        let seed = inner.seed.map(|seed| {
            let n = inner.derived.fetch_add(1, Ordering::Relaxed);
            derive_seed(seed, n)
        });
        RetryPolicy {
            inner: Arc::new(Inner {
                engine: inner.engine.clone(),
                classifier,
                hooks: inner.hooks.clone(),
                clock: Arc::clone(&inner.clock),
                sleeper: Arc::clone(&inner.sleeper),
                seed,
                seeded_calls: SeededCalls::default(),
                derived: AtomicU64::new(0),
            }),
        }
    }

    /// Binds an operation name (and, with [`BoundPolicy::hook`], extra
    /// hooks) once, for many calls.
    pub fn bind(&self, operation: impl Into<Cow<'static, str>>) -> BoundPolicy<C> {
        BoundPolicy {
            policy: self.clone(),
            operation: operation.into(),
            hooks: Hooks::new(),
        }
    }

    /// A seeded policy's RNG for one call's jitter: a ChaCha stream derived
    /// from the seed and the number of earlier seeded calls that needed one.
    fn seeded_rng(&self, seed: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(self.inner.seeded_calls.0.fetch_add(1, Ordering::Relaxed));
        rng
    }
}

impl<C> RetryPolicy<C> {
    /// Runs `op` until it succeeds or the policy gives up, sleeping between
    /// attempts on the policy's [`Clock`].
    ///
    /// On failure the caller gets its own last error back in a
    /// [`RetryError`], with the reason and the number of attempts.
    pub fn call<T, E, F>(&self, op: F) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Result<T, E>,
        C: Classifier<E>,
    {
        self.run_blocking("", None, op)
    }

    /// [`call`](Self::call), tagging every event with `operation`.
    pub fn call_named<T, E, F>(&self, operation: &str, op: F) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Result<T, E>,
        C: Classifier<E>,
    {
        self.run_blocking(operation, None, op)
    }

    /// Runs the future `op` makes until one succeeds or the policy gives
    /// up, sleeping on the policy's [`Sleeper`]. Behaves exactly like
    /// [`call`](Self::call).
    pub async fn call_async<T, E, F, Fut>(&self, op: F) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Classifier<E>,
    {
        self.run_async("", None, op).await
    }

    /// [`call_async`](Self::call_async), tagging every event with `operation`.
    pub async fn call_async_named<T, E, F, Fut>(
        &self,
        operation: &str,
        op: F,
    ) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Classifier<E>,
    {
        self.run_async(operation, None, op).await
    }

    fn run_blocking<T, E, F>(
        &self,
        operation: &str,
        extra: Option<&Hooks>,
        mut op: F,
    ) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Result<T, E>,
        C: Classifier<E>,
    {
        let clock = &*self.inner.clock;
        let mut call = CallDriver::new(self, operation, extra, || clock.now());
        loop {
            match op() {
                Ok(value) => {
                    call.succeeded(|| clock.now());
                    return Ok(value);
                }
                Err(error) => {
                    let classifier = &self.inner.classifier;
                    let name = type_name::<E>();
                    let (delay, error) = call.failed(classifier, name, error, || clock.now())?;
                    // A zero delay sleeps not at all, so it cannot overrun
                    // the deadline: no wake-up check, no clock read.
                    if !delay.is_zero() {
                        clock.sleep(delay);
                        call.before_retry(classifier, name, error, || clock.now())?;
                    }
                }
            }
        }
    }

    async fn run_async<T, E, F, Fut>(
        &self,
        operation: &str,
        extra: Option<&Hooks>,
        op: F,
    ) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Classifier<E>,
    {
        let classifier = &self.inner.classifier;
        self.run_async_with(operation, extra, classifier, |_| type_name::<E>(), op)
            .await
    }

    /// The async driver, classifying failures with `classifier` instead of
    /// the policy's own, and naming their type with `error_type`: how an
    /// adapter classifies what the policy's classifier cannot see, such as
    /// a response that counts as a failure. Everything else (envelope,
    /// hooks, seed, sleeper) is the policy's.
    pub(crate) async fn run_async_with<T, E, F, Fut, K>(
        &self,
        operation: &str,
        extra: Option<&Hooks>,
        classifier: &K,
        error_type: impl Fn(&E) -> &'static str,
        op: F,
    ) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        K: Classifier<E>,
    {
        let start = self.start_call(extra);
        self.drive_async(start, operation, extra, classifier, error_type, None, op)
            .await
    }

    /// Starts a call whose first attempt an adapter runs itself (the tower
    /// layer, so that a request that succeeds at once needs no driver
    /// future): what the async driver does before that attempt.
    pub(crate) fn start_call(&self, extra: Option<&Hooks>) -> CallStart {
        let sleeper = &*self.inner.sleeper;
        CallStart {
            started: CallDriver::begin(self, extra, || sleeper.now()),
        }
    }

    /// The first attempt of a call begun with [`start_call`](Self::start_call)
    /// succeeded: reports it as the async driver would.
    #[cfg(feature = "tower")]
    pub(crate) fn first_attempt_succeeded(
        &self,
        start: CallStart,
        operation: &str,
        extra: Option<&Hooks>,
    ) {
        // Nothing to tell: the common case, decided without the driver.
        if !observed(self, extra) && !self.inner.engine.budget_counts_successes() {
            return;
        }
        let sleeper = &*self.inner.sleeper;
        CallDriver::resume(self, operation, extra, start.started).succeeded(|| sleeper.now());
    }

    /// The async driver's loop, from a call's start; `first_failure` is the
    /// error of a first attempt that already ran (the tower layer runs a
    /// call's first attempt itself, and hands the call over here when it
    /// fails).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn drive_async<T, E, F, Fut, K>(
        &self,
        start: CallStart,
        operation: &str,
        extra: Option<&Hooks>,
        classifier: &K,
        error_type: impl Fn(&E) -> &'static str,
        mut first_failure: Option<E>,
        mut op: F,
    ) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        K: Classifier<E>,
    {
        let sleeper = &*self.inner.sleeper;
        let mut call = CallDriver::resume(self, operation, extra, start.started);
        loop {
            let outcome = match first_failure.take() {
                Some(error) => Err(error),
                None => op().await,
            };
            match outcome {
                Ok(value) => {
                    call.succeeded(|| sleeper.now());
                    return Ok(value);
                }
                Err(error) => {
                    let name = error_type(&error);
                    let (delay, error) = call.failed(classifier, name, error, || sleeper.now())?;
                    if !delay.is_zero() {
                        sleeper.sleep(delay).await;
                        call.before_retry(classifier, name, error, || sleeper.now())?;
                    }
                }
            }
        }
    }
}

/// A call begun outside the async driver: when it started (zero when the
/// call reads no clock). See [`RetryPolicy::start_call`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallStart {
    started: Duration,
}

/// Whether anyone sees a call's events: `tracing`, the policy's hooks or
/// a bound context's.
fn observed<C>(policy: &RetryPolicy<C>, extra: Option<&Hooks>) -> bool {
    cfg!(feature = "tracing")
        || !policy.inner.hooks.is_empty()
        || extra.is_some_and(|h| !h.is_empty())
}

/// One call in progress: what both drivers share. It feeds the engine the
/// elapsed time and the call's RNG; it decides nothing itself.
struct CallDriver<'a, C> {
    policy: &'a RetryPolicy<C>,
    operation: &'a str,
    extra: Option<&'a Hooks>,
    /// Whether the call reads the clock: only a deadline or an observer
    /// needs the time. Without either, every elapsed time handed to the
    /// engine is zero, which it then never looks at.
    timed: bool,
    started: Duration,
    /// Created when first needed: a call that succeeds unobserved never
    /// pays for it.
    state: Option<CallState>,
    rng: Option<ChaCha8Rng>,
}

impl<'a, C> CallDriver<'a, C> {
    fn new(
        policy: &'a RetryPolicy<C>,
        operation: &'a str,
        extra: Option<&'a Hooks>,
        now: impl FnOnce() -> Duration,
    ) -> Self {
        let started = Self::begin(policy, extra, now);
        Self::resume(policy, operation, extra, started)
    }

    /// What a call does before its first attempt: reads the clock if it
    /// needs the time, tells the budget. Returns the call's start.
    fn begin(
        policy: &'a RetryPolicy<C>,
        extra: Option<&'a Hooks>,
        now: impl FnOnce() -> Duration,
    ) -> Duration {
        let engine = &policy.inner.engine;
        let started = if Self::needs_time(policy, extra) {
            now()
        } else {
            Duration::ZERO
        };
        if let Some(budget) = engine.budget() {
            budget.call_started(started);
        }
        started
    }

    /// The driver of a call that [`begin`](Self::begin) started at `started`.
    fn resume(
        policy: &'a RetryPolicy<C>,
        operation: &'a str,
        extra: Option<&'a Hooks>,
        started: Duration,
    ) -> Self {
        CallDriver {
            policy,
            operation,
            extra,
            timed: Self::needs_time(policy, extra),
            started,
            state: None,
            rng: None,
        }
    }

    /// Whether the call reads the clock: for a deadline, an observer or a
    /// budget that keeps time.
    fn needs_time(policy: &RetryPolicy<C>, extra: Option<&Hooks>) -> bool {
        let engine = &policy.inner.engine;
        engine.envelope().deadline.is_some() || observed(policy, extra) || engine.budget_uses_time()
    }

    /// The call's state, created at first need.
    fn state(&mut self) -> &mut CallState {
        let engine = &self.policy.inner.engine;
        let started = self.started;
        self.state.get_or_insert_with(|| engine.state_at(started))
    }

    fn observed(&self) -> bool {
        observed(self.policy, self.extra)
    }

    /// Reports success; reads the clock only when someone observes it (or
    /// the budget wants the time).
    fn succeeded(&mut self, now: impl FnOnce() -> Duration) {
        let inner = &self.policy.inner;
        if !self.observed() {
            let engine = &inner.engine;
            if engine.budget_counts_successes() {
                let at = if engine.budget_uses_time() {
                    now()
                } else {
                    Duration::ZERO
                };
                engine.budget_success(self.state.as_ref(), at);
            }
            return;
        }
        let elapsed = now().saturating_sub(self.started);
        let extra = self.extra;
        let operation = self.operation;
        let state = self.state();
        let mut emit = |event: &Event<'_>| dispatch(&inner.hooks, extra, event);
        inner
            .engine
            .on_success(state, operation, elapsed, &mut emit);
    }

    /// Reports a failure; returns the delay to sleep and, when the policy
    /// has a deadline, the error (kept until the retry starts, for
    /// [`before_retry`](Self::before_retry)); or the final error. Without a
    /// deadline the error is dropped before the sleep.
    fn failed<E, K: Classifier<E>>(
        &mut self,
        classifier: &K,
        error_type: &str,
        error: E,
        now: impl FnOnce() -> Duration,
    ) -> Result<(Duration, Option<E>), RetryError<E>> {
        let policy = self.policy;
        let inner = &policy.inner;
        let classification = classifier.classify(&error);
        let elapsed = if self.timed {
            now().saturating_sub(self.started)
        } else {
            Duration::ZERO
        };
        // Unseeded calls draw from the thread's jitter generator (a
        // zero-sized handle on a thread local: nothing to set up, and
        // nothing held across an await); seeded calls keep their own
        // stream for the whole call.
        let mut thread_rng = JitterRng;
        let rng: &mut dyn rand::RngCore = match inner.seed {
            Some(seed) => self.rng.get_or_insert_with(|| policy.seeded_rng(seed)),
            None => &mut thread_rng,
        };
        let extra = self.extra;
        let mut emit = |event: &Event<'_>| dispatch(&inner.hooks, extra, event);
        let started = self.started;
        let state = self
            .state
            .get_or_insert_with(|| inner.engine.state_at(started));
        let failure = Failure {
            classification,
            error_type,
            error: classifier.describe(&error),
        };
        match inner
            .engine
            .on_failure(state, self.operation, failure, elapsed, rng, &mut emit)
        {
            Decision::Retry(retry) => {
                let has_deadline = inner.engine.envelope().deadline.is_some();
                Ok((retry.delay, has_deadline.then_some(error)))
            }
            Decision::Stop(reason) => Err(RetryError {
                error,
                reason,
                attempts: state.attempt(),
            }),
        }
    }

    /// The sleep is over and the retry is about to start: gives up with
    /// `error`, the last one, if the sleep overran the deadline (see
    /// [`Engine::before_retry`]). `None` (no deadline): nothing to check.
    fn before_retry<E, K: Classifier<E>>(
        &mut self,
        classifier: &K,
        error_type: &str,
        error: Option<E>,
        now: impl FnOnce() -> Duration,
    ) -> Result<(), RetryError<E>> {
        let Some(error) = error else {
            return Ok(());
        };
        let inner = &self.policy.inner;
        let elapsed = now().saturating_sub(self.started);
        let extra = self.extra;
        let mut emit = |event: &Event<'_>| dispatch(&inner.hooks, extra, event);
        let Some(state) = self.state.as_mut() else {
            return Ok(());
        };
        match inner.engine.before_retry(
            state,
            self.operation,
            error_type,
            classifier.describe(&error),
            elapsed,
            &mut emit,
        ) {
            None => Ok(()),
            Some(reason) => Err(RetryError {
                error,
                reason,
                attempts: state.attempt(),
            }),
        }
    }
}

/// A policy with an operation name and extra hooks bound to it.
///
/// ```
/// use reflexio::RetryPolicy;
///
/// let users = RetryPolicy::default()
///     .bind("fetch_user")
///     .hook(|event: &reflexio::Event<'_>| assert_eq!(event.operation, "fetch_user"));
/// let name = users.call(|| Ok::<_, std::io::Error>("ada"));
/// assert_eq!(name.unwrap(), "ada");
/// ```
pub struct BoundPolicy<C = DefaultClassifier> {
    policy: RetryPolicy<C>,
    operation: Cow<'static, str>,
    hooks: Hooks,
}

impl<C> Clone for BoundPolicy<C> {
    fn clone(&self) -> Self {
        BoundPolicy {
            policy: self.policy.clone(),
            operation: self.operation.clone(),
            hooks: self.hooks.clone(),
        }
    }
}

impl<C> fmt::Debug for BoundPolicy<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundPolicy")
            .field("operation", &self.operation)
            .field("hooks", &self.hooks.len())
            .field("policy", &self.policy)
            .finish()
    }
}

impl<C> BoundPolicy<C> {
    /// Adds a hook that sees only this context's calls (after the policy's
    /// own hooks).
    pub fn hook(mut self, hook: impl Hook + 'static) -> Self {
        self.hooks.push(hook);
        self
    }

    /// The bound operation name.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The underlying policy.
    pub fn policy(&self) -> &RetryPolicy<C> {
        &self.policy
    }

    /// [`RetryPolicy::call`] with this context.
    pub fn call<T, E, F>(&self, op: F) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Result<T, E>,
        C: Classifier<E>,
    {
        self.policy
            .run_blocking(&self.operation, Some(&self.hooks), op)
    }

    /// [`RetryPolicy::call_async`] with this context.
    pub async fn call_async<T, E, F, Fut>(&self, op: F) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        C: Classifier<E>,
    {
        self.policy
            .run_async(&self.operation, Some(&self.hooks), op)
            .await
    }
}

/// Why a policy could not be built.
///
/// Every builder starts with a strategy for every class (see
/// [`RetryPolicy::builder`]), so only the envelope's limits can be wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// `max_attempts` is zero; it counts the first attempt, so at least 1.
    ZeroMaxAttempts,
    /// A class cap (or the unknown cap) is zero.
    ZeroClassCap(ErrorClass),
    /// The deadline is zero: no attempt could ever run.
    ZeroDeadline,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroMaxAttempts => {
                f.write_str("max_attempts must be at least 1 (it counts the first attempt)")
            }
            BuildError::ZeroClassCap(class) => {
                write!(f, "the attempt cap of {class} errors must be at least 1")
            }
            BuildError::ZeroDeadline => f.write_str(
                "the deadline must be greater than zero (or removed with `.no_deadline()`)",
            ),
        }
    }
}

impl Error for BuildError {}

/// Builds a [`RetryPolicy`]; see [`RetryPolicy::builder`].
pub struct RetryPolicyBuilder<C = DefaultClassifier> {
    envelope: Envelope,
    default_strategy: ClassStrategy,
    class_strategies: [Option<ClassStrategy>; 8],
    classifier: C,
    hooks: Hooks,
    clock: Option<Arc<dyn Clock>>,
    sleeper: Option<Arc<dyn Sleeper>>,
    seed: Option<u64>,
    budget: Option<Arc<dyn Budget>>,
}

impl<C> fmt::Debug for RetryPolicyBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicyBuilder")
            .field("envelope", &self.envelope)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl<C> RetryPolicyBuilder<C> {
    /// The deadline of the whole call, attempts and sleeps included.
    /// Default 60 s.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.envelope.deadline = Some(deadline);
        self
    }

    /// No deadline: only the attempt caps bound a call. A policy with no
    /// deadline and no hooks never reads its clock, so its calls skip even
    /// that cost (unless the `tracing` feature observes every call).
    pub fn no_deadline(mut self) -> Self {
        self.envelope.deadline = None;
        self
    }

    /// Attempts per call, counting the first. Default 6.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.envelope.max_attempts = attempts;
        self
    }

    /// Attempts that may end with an unknown error. Default 2.
    pub fn max_unknown_attempts(mut self, attempts: u32) -> Self {
        self.envelope.max_unknown_attempts = Some(attempts);
        self
    }

    /// Turns the separate unknown-error cap off (the global cap still applies).
    pub fn no_unknown_cap(mut self) -> Self {
        self.envelope.max_unknown_attempts = None;
        self
    }

    /// Caps the attempts that may end with `class`. For
    /// [`ErrorClass::Unknown`] this sets the unknown cap.
    pub fn class_max_attempts(mut self, class: ErrorClass, attempts: u32) -> Self {
        match class {
            ErrorClass::Unknown => self.envelope.max_unknown_attempts = Some(attempts),
            other => self.envelope.class_max_attempts[other.index()] = Some(attempts),
        }
        self
    }

    /// The longest server delay hint honoured; longer ones are cut to this.
    /// Default 60 s.
    pub fn max_retry_after(mut self, ceiling: Duration) -> Self {
        self.envelope.max_retry_after = ceiling;
        self
    }

    /// The strategy for every class that has none of its own. Default
    /// [`default_backoff`](crate::strategy::default_backoff).
    pub fn strategy(mut self, strategy: impl Strategy + 'static) -> Self {
        self.default_strategy = ClassStrategy::new(strategy);
        self
    }

    /// The strategy for `class`, instead of the default one.
    pub fn class_strategy(mut self, class: ErrorClass, strategy: impl Strategy + 'static) -> Self {
        self.class_strategies[class.index()] = Some(ClassStrategy::new(strategy));
        self
    }

    /// Adds a hook that receives every event of every call.
    pub fn hook(mut self, hook: impl Hook + 'static) -> Self {
        self.hooks.push(hook);
        self
    }

    /// Makes jitter reproducible: the same sequence of calls sees the same
    /// delays on every platform.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The time of blocking calls, and of async calls too when the clock
    /// has a [`Clock::sleeper`] (as [`ManualClock`](crate::ManualClock)
    /// does): one setter fakes the time of both drivers. Default
    /// [`SystemClock`].
    ///
    /// Which wins for `call_async`: a [`sleeper`](Self::sleeper) set
    /// explicitly, in whatever order; else the clock's own sleeper; else
    /// the default sleeper.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The sleeper of async calls; it wins over the clock's own
    /// [`Clock::sleeper`] whatever the order of the two setters. Default:
    /// the clock's sleeper if it has one, else `TokioSleeper` with the
    /// `tokio` feature, else [`ThreadSleeper`](crate::ThreadSleeper).
    pub fn sleeper(mut self, sleeper: impl Sleeper + 'static) -> Self {
        self.sleeper = Some(Arc::new(sleeper));
        self
    }

    /// A retry budget, consulted before every retry of every call of the
    /// policy, its clones and bound contexts: see [`crate::budget`]. Give
    /// several policies clones of one `Arc` to share a budget between
    /// them. Default: none.
    ///
    /// The budget is handed the time of the policy's [`Clock`] in blocking
    /// calls and of its [`Sleeper`] in async ones; a policy used both ways
    /// with a budget that uses time should have the two agree (the
    /// defaults do, to within their creation instants).
    pub fn budget(mut self, budget: impl Budget + 'static) -> Self {
        self.budget = Some(Arc::new(budget));
        self
    }

    /// No retry budget (the default), removing one set before.
    pub fn no_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// Replaces the classifier.
    pub fn classifier<C2>(self, classifier: C2) -> RetryPolicyBuilder<C2> {
        RetryPolicyBuilder {
            envelope: self.envelope,
            default_strategy: self.default_strategy,
            class_strategies: self.class_strategies,
            classifier,
            hooks: self.hooks,
            clock: self.clock,
            sleeper: self.sleeper,
            seed: self.seed,
            budget: self.budget,
        }
    }

    /// Checks the policy and builds it.
    pub fn build(self) -> Result<RetryPolicy<C>, BuildError> {
        let env = &self.envelope;
        if env.max_attempts == 0 {
            return Err(BuildError::ZeroMaxAttempts);
        }
        if env.deadline == Some(Duration::ZERO) {
            return Err(BuildError::ZeroDeadline);
        }
        for class in ErrorClass::ALL {
            if env.class_cap(class) == Some(0) {
                return Err(BuildError::ZeroClassCap(class));
            }
        }
        Ok(self.assemble())
    }

    /// Builds without checks: each class gets its own strategy, else the
    /// default one.
    fn assemble(self) -> RetryPolicy<C> {
        let fallback = &self.default_strategy;
        let strategies = self
            .class_strategies
            .clone()
            .map(|own| own.unwrap_or_else(|| fallback.clone()));
        let engine =
            Engine::with_strategies(self.envelope, strategies).with_budget(self.budget.clone());
        self.assemble_with(engine)
    }

    fn assemble_with(self, engine: Engine) -> RetryPolicy<C> {
        let sleeper = self
            .sleeper
            .or_else(|| self.clock.as_ref().and_then(|c| c.sleeper()))
            .unwrap_or_else(default_sleeper);
        RetryPolicy {
            inner: Arc::new(Inner {
                engine,
                classifier: self.classifier,
                hooks: self.hooks,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock::new())),
                sleeper,
                seed: self.seed,
                seeded_calls: SeededCalls::default(),
                derived: AtomicU64::new(0),
            }),
        }
    }
}

/// The caller's own last error, with why retrying stopped and how many
/// attempts were made.
///
/// It implements [`std::error::Error`] when `E` does (its
/// [`source`](Error::source) is the caller's error), so `?` into
/// `Box<dyn Error>` works; [`into_inner`](Self::into_inner) gives the error
/// back unchanged: `policy.call(..).map_err(RetryError::into_inner)?`.
#[derive(Debug)]
pub struct RetryError<E> {
    error: E,
    reason: StopReason,
    attempts: u32,
}

impl<E> RetryError<E> {
    /// The last attempt's error.
    pub fn error(&self) -> &E {
        &self.error
    }

    /// The last attempt's error, unchanged.
    pub fn into_inner(self) -> E {
        self.error
    }

    /// Why retrying stopped.
    pub fn reason(&self) -> StopReason {
        self.reason
    }

    /// How many attempts were made, the first included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "gave up after {} attempt{plural} ({}): {}",
            self.attempts, self.reason, self.error
        )
    }
}

impl<E: Error + 'static> Error for RetryError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.error)
    }
}

pub(crate) fn shared_default() -> &'static RetryPolicy {
    static DEFAULT: OnceLock<RetryPolicy> = OnceLock::new();
    DEFAULT.get_or_init(RetryPolicy::default)
}

/// Retries `op` with [`RetryPolicy::default`] (one shared instance).
///
/// ```
/// let answer = reflexio::retry(|| Ok::<_, std::io::Error>(42));
/// assert_eq!(answer.unwrap(), 42);
/// ```
pub fn retry<T, E, F>(op: F) -> Result<T, RetryError<E>>
where
    F: FnMut() -> Result<T, E>,
    E: Error + 'static,
{
    shared_default().call(op)
}

/// Retries the futures `op` makes with [`RetryPolicy::default`].
pub async fn retry_async<T, E, F, Fut>(op: F) -> Result<T, RetryError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Error + 'static,
{
    shared_default().call_async(op).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::ClassifiedError;
    use crate::strategy::Backoff;

    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn policies_and_their_futures_cross_threads() {
        let policy = RetryPolicy::default();
        assert_send_sync(&policy);
        assert_send_sync(&policy.bind("op"));
        let future = policy.call_async(|| async { Ok::<_, ClassifiedError>(1) });
        assert_send(&future);
    }

    #[test]
    fn the_builder_starts_from_the_default_strategy() {
        let policy = RetryPolicy::builder().max_attempts(3).build().unwrap();
        assert_eq!(policy.envelope().max_attempts, 3);
        let default = crate::strategy::default_backoff();
        for class in ErrorClass::ALL {
            assert_eq!(
                policy.engine().strategy(class).bounds(1, None),
                Some(default.bounds(1, None)),
                "{class}"
            );
        }
        // With the only retryable classes capped at one attempt, it still builds.
        let mut builder = RetryPolicy::builder().max_unknown_attempts(1);
        for class in ErrorClass::ALL.into_iter().filter(|c| c.is_retryable()) {
            builder = builder.class_max_attempts(class, 1);
        }
        assert!(builder.build().is_ok());
    }

    #[test]
    fn derived_seeds_differ_from_the_parent_and_each_other() {
        let seeds: Vec<u64> = (0..1000).map(|n| derive_seed(7, n)).collect();
        let mut unique = seeds.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seeds.len());
        assert!(!seeds.contains(&7));
    }

    #[test]
    fn build_refuses_zero_limits() {
        let strategy = || Backoff::constant(Duration::ZERO);
        let zero = |b: RetryPolicyBuilder| b.strategy(strategy()).build().unwrap_err();
        assert_eq!(
            zero(RetryPolicy::builder().max_attempts(0)),
            BuildError::ZeroMaxAttempts
        );
        assert_eq!(
            zero(RetryPolicy::builder().deadline(Duration::ZERO)),
            BuildError::ZeroDeadline
        );
        assert_eq!(
            zero(RetryPolicy::builder().max_unknown_attempts(0)),
            BuildError::ZeroClassCap(ErrorClass::Unknown)
        );
    }
}
