//! Optional integrations, each behind its own cargo feature.
//!
//! | feature | module | what it gives |
//! |---|---|---|
//! | `http` | [`http`] | `http::StatusCode` and response classification, `Retry-After` parsing, [`HttpError`](crate::http::HttpError) |
//! | `metrics` | [`metrics`] | a hook recording through the `metrics` facade |
//!
//! The error types of the enabled integrations are known to the
//! [`DefaultClassifier`](crate::DefaultClassifier) without registration.

use crate::classify::Probe;

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;

/// The code rules the enabled integrations add to every
/// [`DefaultClassifier`](crate::DefaultClassifier), tried before the ones
/// registered by hand.
pub(crate) const BUILTIN_PROBES: &[Probe] = &[
    #[cfg(feature = "http")]
    http::probe,
];
