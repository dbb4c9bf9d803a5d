//! Optional integrations, each behind its own cargo feature.
//!
//! | feature | module | what it gives |
//! |---|---|---|
//! | `macros` | [`macros`] | the `#[retry]` attribute |
//! | `http` | [`http`] | `http::StatusCode` and response classification, `Retry-After` parsing, [`HttpError`](crate::http::HttpError) |
//! | `metrics` | [`metrics`] | a hook recording through the `metrics` facade |
//! | `reqwest` | [`reqwest`] | `reqwest::Error` classification, error responses (4xx, 5xx) as errors |
//! | `reqwest-middleware` | [`reqwest_middleware`] | a retrying `reqwest_middleware::Middleware` |
//! | `postgres` | [`postgres`] | `tokio_postgres::Error` classification by SQLSTATE |
//! | `tonic` | [`tonic`] | gRPC classification of `tonic::Status`, retry pushback |
//! | `tower` | [`tower`] | `RetryLayer`: retries in a tower service stack |
//!
//! The error types of the enabled integrations are known to the
//! [`DefaultClassifier`](crate::DefaultClassifier) without registration.

use crate::classify::Probe;

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
#[cfg(feature = "macros")]
#[cfg_attr(docsrs, doc(cfg(feature = "macros")))]
pub mod macros;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "reqwest-middleware")]
pub mod reqwest_middleware;
#[cfg(feature = "tonic")]
pub mod tonic;
#[cfg(feature = "tower")]
pub mod tower;

/// The code rules the enabled integrations add to every
/// [`DefaultClassifier`](crate::DefaultClassifier), tried before the ones
/// registered by hand.
pub(crate) const BUILTIN_PROBES: &[Probe] = &[
    #[cfg(feature = "http")]
    http::probe,
    #[cfg(feature = "reqwest")]
    reqwest::probe,
    #[cfg(feature = "postgres")]
    postgres::probe,
    #[cfg(feature = "tonic")]
    tonic::probe,
];
