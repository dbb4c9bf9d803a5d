//! Error classes: the coarse categories every failure is sorted into.

use std::fmt;
use std::str::FromStr;

/// The coarse class of a failed attempt.
///
/// A class decides whether an error is retried at all, which backoff
/// strategy spaces the retries and which per-class attempt cap applies.
/// Every class has a stable snake_case name ([`ErrorClass::name`]) used in
/// events and configuration files.
///
/// Exhaustive on purpose, and a promise: these eight classes are the whole
/// vocabulary of the configuration schema, and per-class tables such as
/// [`Envelope::class_max_attempts`](crate::Envelope::class_max_attempts)
/// are indexed by [`ErrorClass::index`]. A ninth class would be a breaking
/// release, so a `match` on a class needs no wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorClass {
    /// The caller is not authenticated (HTTP 401). Never retried.
    Auth,
    /// The caller is authenticated but not allowed (HTTP 403). Never retried.
    Permission,
    /// The request itself is wrong and will fail again (HTTP 400, 404, 422).
    /// Never retried.
    Permanent,
    /// A conflicting concurrent write (HTTP 409, SQLSTATE 40001).
    Concurrency,
    /// The service asks the caller to slow down (HTTP 429).
    RateLimit,
    /// The service failed (HTTP 5xx).
    ServerError,
    /// A passing fault: a timeout, a reset connection.
    Transient,
    /// Nobody could classify the error. Retried under its own, lower cap.
    Unknown,
}

impl ErrorClass {
    /// Every class, in declaration order. `ErrorClass::ALL[c.index()] == c`.
    pub const ALL: [ErrorClass; 8] = [
        ErrorClass::Auth,
        ErrorClass::Permission,
        ErrorClass::Permanent,
        ErrorClass::Concurrency,
        ErrorClass::RateLimit,
        ErrorClass::ServerError,
        ErrorClass::Transient,
        ErrorClass::Unknown,
    ];

    /// The stable snake_case name, as used in events and configuration.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorClass::Auth => "auth",
            ErrorClass::Permission => "permission",
            ErrorClass::Permanent => "permanent",
            ErrorClass::Concurrency => "concurrency",
            ErrorClass::RateLimit => "rate_limit",
            ErrorClass::ServerError => "server_error",
            ErrorClass::Transient => "transient",
            ErrorClass::Unknown => "unknown",
        }
    }

    /// A dense index in `0..8`, for per-class tables.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether errors of this class may ever be retried.
    ///
    /// [`Auth`](ErrorClass::Auth), [`Permission`](ErrorClass::Permission) and
    /// [`Permanent`](ErrorClass::Permanent) never are, whatever the policy.
    pub const fn is_retryable(self) -> bool {
        !matches!(
            self,
            ErrorClass::Auth | ErrorClass::Permission | ErrorClass::Permanent
        )
    }

    /// The names of all classes, joined for error messages.
    pub(crate) fn allowed_names() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
        names.join(", ")
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error returned when a string names no [`ErrorClass`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownClassName(pub String);

impl fmt::Display for UnknownClassName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown error class `{}`; allowed: {}",
            self.0,
            ErrorClass::allowed_names()
        )
    }
}

impl std::error::Error for UnknownClassName {}

impl FromStr for ErrorClass {
    type Err = UnknownClassName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorClass::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| UnknownClassName(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_index_matches() {
        for (i, class) in ErrorClass::ALL.into_iter().enumerate() {
            assert_eq!(class.index(), i);
            assert_eq!(class.name().parse::<ErrorClass>(), Ok(class));
            assert_eq!(class.to_string(), class.name());
        }
        let err = "ratelimit".parse::<ErrorClass>().unwrap_err();
        assert!(err.to_string().contains("rate_limit"));
    }

    #[test]
    fn never_retried_classes() {
        let never: Vec<_> = ErrorClass::ALL
            .into_iter()
            .filter(|c| !c.is_retryable())
            .collect();
        assert_eq!(
            never,
            [
                ErrorClass::Auth,
                ErrorClass::Permission,
                ErrorClass::Permanent
            ]
        );
    }
}
