//! # reflexio
//!
//! Retry policies with error classification, per-class backoff strategies,
//! strict retry envelopes and structured observability, for blocking and
//! async code, built on one sans-IO decision engine that the `reflexio-sim`
//! simulator drives too.
//!
//! * Errors are sorted into coarse [classes](ErrorClass) by a
//!   [`Classifier`]: the [`DefaultClassifier`] understands
//!   [`ClassifiedError`] (which may carry a retry-after hint), HTTP
//!   statuses and their hints ([`HttpStatus`]), SQLSTATEs ([`SqlState`]),
//!   [`std::io::Error`] kinds and error type names.
//! * Each class may have its own [`Strategy`] (the built-ins are
//!   [`Backoff`] values: decorrelated jitter, equal jitter, token backoff,
//!   full jitter, exponential, constant) and its own attempt cap.
//! * Every call runs inside an [`Envelope`]: a deadline covering attempts
//!   and sleeps, a global attempt cap and a separate cap for unknown errors.
//!   Auth, permission and permanent errors are never retried.
//! * [Hooks](Hook) receive one [`Event`] per decision: `success`, `retry`,
//!   `permanent_fail`, `deadline_exceeded`, `max_attempts_exceeded`,
//!   `max_unknown_attempts_exceeded`, `budget_exhausted`, tagged with the
//!   operation, attempt, delay, class, error type and the error's text.
//! * A retry [budget](mod@budget) ([`TokenBucket`], [`RatioBudget`] or your own
//!   [`Budget`]) limits retries across all the calls of a policy, so that
//!   retries cannot turn an overloaded service's trouble into a storm.
//!
//! ```
//! use std::time::Duration;
//! use reflexio::{Backoff, ClassifiedError, ErrorClass, RetryPolicy, ManualClock};
//!
//! let clock = ManualClock::new(); // a fake clock: no real sleeping in this example
//! let policy = RetryPolicy::builder()
//!     .strategy(Backoff::equal_jitter(Duration::from_millis(100), Duration::from_secs(2)))
//!     .max_attempts(4)
//!     .clock(clock.clone())
//!     .build()?;
//!
//! let mut calls = 0;
//! let result = policy.call(|| {
//!     calls += 1;
//!     if calls < 3 { Err(ClassifiedError::transient("connection reset")) } else { Ok(calls) }
//! });
//! assert_eq!(result.unwrap(), 3);
//! assert_eq!(clock.sleeps(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How a server delay hint combines with the strategy
//!
//! A [`Classification`] may carry a `retry_after` hint. The hint is first
//! cut to the policy's `max_retry_after` ceiling; the delay is then the
//! larger of the strategy's draw and the (cut) hint, so the server's wish is
//! a lower bound and jitter above it still spreads clients out. If the hint
//! reaches past the deadline, the call stops at once with
//! `deadline_exceeded` rather than sleeping first; otherwise the delay is
//! capped to the time left before the deadline. The [`engine`] module docs
//! give the full order of the checks.
//!
//! # The guide
//!
//! The repository's `docs/` folder is a guide in six pages: usage,
//! classification (HTTP, `Retry-After`, SQLSTATEs, reqwest, tokio-postgres,
//! sqlx), strategies and envelopes, observability (hooks, `tracing`,
//! Prometheus), recipes, and simulation. `examples/` holds programs that
//! run against services they start on 127.0.0.1.
//!
//! # Features
//!
//! * `config` (default): `RetryConfig`, policies from TOML.
//! * `tokio`: `TokioSleeper`, the async default sleeper.
//! * `tracing`: every event is also a `tracing` event.
//! * `http`: [`http`] classifies `http::StatusCode`s and responses and
//!   parses `Retry-After` (both forms).
//! * `metrics`: [`metrics::MetricsHook`] records every call through the
//!   `metrics` facade.
//! * `reqwest`: [`reqwest`] classifies `reqwest::Error`s and turns
//!   error responses (4xx, 5xx) into errors that keep their status and hint.
//! * `reqwest-middleware`: [`reqwest_middleware::RetryMiddleware`].
//! * `postgres`: `tokio_postgres::Error` classified by its SQLSTATE
//!   ([`postgres`]).
//! * `tower`: [`tower::RetryLayer`] retries in a tower service stack
//!   (axum, tonic, hyper).
//! * `tonic`: gRPC statuses classified by their code and pushback, by the
//!   default classifier and by [`tonic::GrpcClassifier`].
//! * `macros`: the [`#[retry]`](macro@retry) attribute retries a
//!   function's body (from the `reflexio-macros` crate).
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(rust_2018_idioms)]

pub mod budget;
pub mod class;
pub mod classify;
pub mod clock;
mod coarse_clock;
#[cfg(feature = "config")]
#[cfg_attr(docsrs, doc(cfg(feature = "config")))]
pub mod config;
pub mod engine;
pub mod integrations;
mod jitter_rng;
pub mod lint;
pub mod observe;
mod policy;
pub mod retryable;
pub mod strategy;

pub use budget::{Budget, BudgetSpec, RatioBudget, TokenBucket};
pub use class::ErrorClass;
pub use classify::{
    default_classifier, http_status_class, io_kind_class, sqlstate_class, Classification,
    ClassifiedError, Classifier, DefaultClassifier, HttpStatus, SqlState,
};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use clock::TokioSleeper;
pub use clock::{Clock, ManualClock, Sleeper, SystemClock, ThreadSleeper};
pub use coarse_clock::CoarseClock;
#[cfg(feature = "config")]
#[cfg_attr(docsrs, doc(cfg(feature = "config")))]
pub use config::RetryConfig;
pub use engine::{Decision, Engine, Envelope, ErrorText, Event, EventKind, StopReason};
#[cfg(feature = "tonic")]
pub use integrations::tonic;
#[cfg(feature = "tower")]
pub use integrations::tower;
#[cfg(feature = "tower")]
pub use integrations::tower::RetryLayer;
pub use observe::{Hook, Hooks};
pub use policy::{
    retry, retry_async, BoundPolicy, BuildError, RetryError, RetryPolicy, RetryPolicyBuilder,
};
pub use retryable::{Retryable, Retrying};
pub use strategy::{Backoff, BackoffKind, DelayContext, Strategy};

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use integrations::http;
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub use integrations::macros::retry;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub use integrations::metrics;
#[cfg(feature = "postgres")]
pub use integrations::postgres;
#[cfg(feature = "reqwest")]
pub use integrations::reqwest;
#[cfg(feature = "reqwest-middleware")]
pub use integrations::reqwest_middleware;

/// The `rand` crate (0.9) this version of reflexio is built on. A
/// [`Strategy`] draws from a `&mut dyn` [`rand::RngCore`]; write your own
/// with `reflexio::rand::{Rng, RngCore}`, without depending on `rand`
/// yourself and without risk of a version mismatch.
pub use rand;

/// The README's examples, compiled and run as doctests (they load a
/// configuration, call reqwest and show the attribute and the tower layer,
/// so they need the `config`, `reqwest`, `macros`, `tower` and `http`
/// features: `cargo test --all-features`).
#[cfg(all(
    doctest,
    feature = "config",
    feature = "reqwest",
    feature = "macros",
    feature = "tower",
    feature = "http"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The migration guide's examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "config"))]
#[doc = include_str!("../docs/migration.md")]
pub struct MigrationDoctests;

/// The guide's pages (`docs/`), compiled and run as doctests.
#[cfg(all(
    doctest,
    feature = "config",
    feature = "tokio",
    feature = "http",
    feature = "metrics",
    feature = "reqwest",
    feature = "reqwest-middleware",
    feature = "postgres"
))]
pub mod guide {
    #[doc = include_str!("../docs/README.md")]
    pub struct Index;
    #[doc = include_str!("../docs/usage.md")]
    pub struct Usage;
    #[doc = include_str!("../docs/classification.md")]
    pub struct Classification;
    #[doc = include_str!("../docs/strategies.md")]
    pub struct Strategies;
    #[doc = include_str!("../docs/observability.md")]
    pub struct Observability;
    #[doc = include_str!("../docs/recipes.md")]
    pub struct Recipes;
    #[doc = include_str!("../docs/simulation.md")]
    pub struct Simulation;
}
