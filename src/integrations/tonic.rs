//! gRPC classification of [`tonic::Status`] (feature `tonic`).
//!
//! With this feature on, the [`DefaultClassifier`] (and so every policy
//! that keeps it) finds a `tonic::Status` in an error (the error itself or
//! anywhere in its [`source`](std::error::Error::source) chain) and
//! classifies it by its code, with this table ([`grpc_code_class`]); so
//! does [`GrpcClassifier`], which names the rule. As everywhere, a
//! [`ClassifiedError`](crate::ClassifiedError) before it in the chain
//! comes first.
//!
//! | gRPC code | class |
//! | --- | --- |
//! | `UNAVAILABLE` | `transient` |
//! | `DEADLINE_EXCEEDED` | `transient` |
//! | `RESOURCE_EXHAUSTED` | `rate_limit` |
//! | `ABORTED` | `concurrency` |
//! | `INTERNAL` | `server_error` |
//! | `UNAUTHENTICATED` | `auth` |
//! | `PERMISSION_DENIED` | `permission` |
//! | `INVALID_ARGUMENT`, `NOT_FOUND`, `ALREADY_EXISTS`, `FAILED_PRECONDITION`, `OUT_OF_RANGE`, `UNIMPLEMENTED` | `permanent` |
//! | `UNKNOWN` | `unknown` |
//! | `CANCELLED`, `DATA_LOSS`, `OK` (not a failure) | `unknown` |
//!
//! Codes the table does not name are `unknown`: retried, but under the
//! policy's separate, lower cap for unknown errors.
//!
//! # Server pushback
//!
//! The status's metadata (a trailers-only response's headers, or the
//! trailers) may carry `grpc-retry-pushback-ms`, the server's wish on when
//! to retry ([`retry_pushback`]):
//!
//! * a non-negative integer `n` is a hint of `n` milliseconds: the delay is
//!   at least `n` ms (cut to the policy's `max_retry_after`), and a hint
//!   reaching past the deadline ends the call at once;
//! * a negative integer means "do not retry": the status is classified
//!   `permanent`, and the call ends with `permanent_fail`;
//! * a value that is not an integer is treated as "do not retry" too, as
//!   gRPC's retry design (gRFC A6) asks of a malformed pushback.
//!
//! ```
//! use std::time::Duration;
//! use reflexio::integrations::tonic::GrpcClassifier;
//! use reflexio::{Classifier, ErrorClass};
//! use tonic::{Code, Status};
//!
//! let mut status = Status::new(Code::ResourceExhausted, "quota");
//! status.metadata_mut().insert("grpc-retry-pushback-ms", "1500".parse().unwrap());
//! let c = GrpcClassifier.classify(&status);
//! assert_eq!(c.class, ErrorClass::RateLimit);
//! assert_eq!(c.retry_after, Some(Duration::from_millis(1500)));
//!
//! // Use it as a policy's classifier for calls that fail with a Status.
//! let policy = reflexio::RetryPolicy::default().with_classifier(GrpcClassifier);
//! let err = policy.call(|| Err::<(), _>(Status::not_found("no such user"))).unwrap_err();
//! assert_eq!(err.attempts(), 1);
//! ```

use std::error::Error;
use std::time::Duration;

use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use crate::class::ErrorClass;
use crate::classify::{Classification, Classifier, DefaultClassifier};

/// The metadata key of a server's retry pushback, in milliseconds.
pub const RETRY_PUSHBACK_KEY: &str = "grpc-retry-pushback-ms";

/// The class of a gRPC status code; see the [module docs](self) for the
/// table.
pub const fn grpc_code_class(code: Code) -> ErrorClass {
    match code {
        Code::Unavailable | Code::DeadlineExceeded => ErrorClass::Transient,
        Code::ResourceExhausted => ErrorClass::RateLimit,
        Code::Aborted => ErrorClass::Concurrency,
        Code::Internal => ErrorClass::ServerError,
        Code::Unauthenticated => ErrorClass::Auth,
        Code::PermissionDenied => ErrorClass::Permission,
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented => ErrorClass::Permanent,
        Code::Unknown | Code::Cancelled | Code::DataLoss | Code::Ok => ErrorClass::Unknown,
    }
}

/// What a server's `grpc-retry-pushback-ms` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushback {
    /// Retry no sooner than this.
    After(Duration),
    /// Do not retry (a negative or malformed value).
    DoNotRetry,
}

/// The pushback in `metadata`, if it carries one; see the
/// [module docs](self).
pub fn retry_pushback(metadata: &MetadataMap) -> Option<Pushback> {
    let value = metadata.get(RETRY_PUSHBACK_KEY)?;
    let parsed = value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok());
    Some(match parsed {
        Some(ms) if ms >= 0 => Pushback::After(Duration::from_millis(ms.unsigned_abs())),
        _ => Pushback::DoNotRetry,
    })
}

/// Classifies a status: its code by the table, its pushback as the hint
/// (or, when the server says not to retry, as `permanent`).
pub fn classify_status(status: &Status) -> Classification {
    let class = grpc_code_class(status.code());
    match retry_pushback(status.metadata()) {
        None => Classification::new(class),
        Some(Pushback::After(delay)) => Classification::new(class).with_retry_after(delay),
        Some(Pushback::DoNotRetry) => Classification::new(ErrorClass::Permanent),
    }
}

/// A [`Classifier`] for gRPC calls: a [`ClassifiedError`](crate::ClassifiedError)
/// anywhere in the error's source chain is trusted first, as by the
/// [`DefaultClassifier`]; otherwise the first [`tonic::Status`] in the
/// chain (boxed or not) is classified with [`classify_status`]; any other
/// error by the [`DefaultClassifier`]'s rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcClassifier;

impl<E: Error + 'static> Classifier<E> for GrpcClassifier {
    fn classify(&self, error: &E) -> Classification {
        use crate::classify::{as_a, chain};
        let error: &(dyn Error + 'static) = error;
        if let Some(explicit) = chain(error).find_map(as_a::<crate::ClassifiedError>) {
            return explicit.classification();
        }
        if let Some(status) = chain(error).find_map(as_a::<Status>) {
            return classify_status(status);
        }
        DefaultClassifier::new().classify_dyn(error, std::any::type_name::<E>())
    }
}

/// The default classifier's rule for `tonic::Status`.
pub(crate) fn probe(error: &(dyn Error + 'static)) -> Option<Classification> {
    Some(classify_status(error.downcast_ref::<Status>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_pushback(code: Code, value: &str) -> Status {
        let mut status = Status::new(code, "test");
        status
            .metadata_mut()
            .insert(RETRY_PUSHBACK_KEY, value.parse().unwrap());
        status
    }

    #[test]
    fn pushback_values() {
        let c = classify_status(&with_pushback(Code::Unavailable, "250"));
        assert_eq!(c.class, ErrorClass::Transient);
        assert_eq!(c.retry_after, Some(Duration::from_millis(250)));
        let c = classify_status(&with_pushback(Code::Unavailable, "0"));
        assert_eq!(c.retry_after, Some(Duration::ZERO));
        for refused in ["-1", "-9223372036854775808", "soon", "1.5", ""] {
            let c = classify_status(&with_pushback(Code::ResourceExhausted, refused));
            assert_eq!(c, Classification::new(ErrorClass::Permanent), "{refused:?}");
        }
        let c = classify_status(&Status::unavailable("no pushback"));
        assert_eq!(c, Classification::new(ErrorClass::Transient));
    }
}
