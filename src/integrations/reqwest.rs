//! reqwest errors and responses (feature `reqwest`).
//!
//! * [`classify`] sorts a `reqwest::Error`: timeouts, connect errors and
//!   requests that failed in flight (a connection closed or reset before
//!   the response, a body cut short) are transient; errors that carry a
//!   status go through the HTTP table ([`http_status_class`]); builder,
//!   redirect-policy and decode errors are permanent (the same request
//!   fails the same way again), except a decode error caused by the
//!   transport (a `hyper::Error`): reqwest reports a body that could not be
//!   read to its end (`text`, `bytes`, `json` on a connection that broke
//!   or a stream that was reset) as a decode error, and that one is
//!   transient; anything else is unknown. The
//!   [`DefaultClassifier`](crate::DefaultClassifier) applies it to a
//!   `reqwest::Error` anywhere in a source chain.
//! * [`check`] (and [`check_blocking`]) turns an error response (4xx or
//!   5xx, as reqwest's `error_for_status` sees it) into an [`HttpError`]
//!   that keeps the status, the `Retry-After` hint (read at
//!   [`SystemTime::now`]) and the URL, and drops the body.
//! * [`Error`] is either of the two, so one `?` handles both in a retried
//!   closure.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use reflexio::{reqwest::check, RetryPolicy};
//!
//! let client = reqwest::Client::new();
//! let policy = RetryPolicy::default();
//! let body = policy
//!     .call_async(|| async {
//!         let response = check(client.get("http://127.0.0.1:8080/users/7").send().await?)?;
//!         Ok::<_, reflexio::reqwest::Error>(response.text().await?)
//!     })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! With the `reqwest-middleware` feature,
//! [`RetryMiddleware`](crate::reqwest_middleware::RetryMiddleware) retries
//! every request of a `reqwest_middleware::ClientWithMiddleware`.

use std::error::Error as StdError;
use std::fmt;
use std::time::SystemTime;

use crate::class::ErrorClass;
use crate::classify::{http_status_class, Classification};
use crate::http::HttpError;

/// Classifies a `reqwest::Error`; see the [module docs](self) for the rules.
/// (`reqwest::Error`s made by `error_for_status` carry a status but not
/// the response's headers, so no hint: use [`check`] to keep it.)
pub fn classify(error: &::reqwest::Error) -> Classification {
    let class = if let Some(status) = error.status() {
        http_status_class(status.as_u16())
    } else if error.is_timeout()
        || error.is_connect()
        || error.is_request()
        || error.is_body()
        || (error.is_decode() && cut_short(error))
    {
        ErrorClass::Transient
    } else if error.is_builder() || error.is_redirect() || error.is_decode() {
        ErrorClass::Permanent
    } else {
        ErrorClass::Unknown
    };
    Classification::new(class)
}

/// Whether a decode error is a body that could not be read to its end
/// (reqwest reports every failure to read a body as a decode error): the
/// transport's error, a `hyper::Error`, is among its causes, whatever the
/// protocol (a connection closed early in HTTP/1, a stream reset in
/// HTTP/2). A body that was read but does not decode (JSON that does not
/// parse, a corrupt gzip stream: the decoder's own I/O error) has none.
fn cut_short(error: &::reqwest::Error) -> bool {
    let mut cause = error.source();
    while let Some(e) = cause {
        if e.is::<::hyper::Error>() {
            return true;
        }
        if let Some(inner) = e.downcast_ref::<::reqwest::Error>() {
            if inner.is_body() || inner.is_request() || inner.is_timeout() {
                return true;
            }
        }
        cause = e.source();
    }
    false
}

/// The default classifier's rule for `reqwest::Error`.
pub(crate) fn probe(error: &(dyn StdError + 'static)) -> Option<Classification> {
    Some(classify(error.downcast_ref::<::reqwest::Error>()?))
}

/// An [`HttpError`] with its status, `Retry-After` hint (for a status that
/// may be retried, read now) and URL if the response's status is an error
/// (4xx or 5xx); the body is dropped. Any other response is handed back:
/// a 2xx, and a 1xx or 3xx too (a `304 Not Modified`, a redirect the
/// client did not follow), which no retry would change.
pub fn check(response: ::reqwest::Response) -> Result<::reqwest::Response, HttpError> {
    if !crate::http::is_failure(response.status()) {
        return Ok(response);
    }
    Err(
        HttpError::from_parts(response.status(), response.headers(), SystemTime::now())
            .with_url(response.url().as_str()),
    )
}

/// [`check`] for a blocking response.
pub fn check_blocking(
    response: ::reqwest::blocking::Response,
) -> Result<::reqwest::blocking::Response, HttpError> {
    if !crate::http::is_failure(response.status()) {
        return Ok(response);
    }
    Err(
        HttpError::from_parts(response.status(), response.headers(), SystemTime::now())
            .with_url(response.url().as_str()),
    )
}

/// A failed HTTP call: the request failed, or the response was an error
/// (4xx, 5xx). The [`DefaultClassifier`](crate::DefaultClassifier) classifies
/// both (its source is the `reqwest::Error` or the [`HttpError`]).
#[derive(Debug)]
pub enum Error {
    /// The request failed: connect, timeout, body, decode, ...
    Request(::reqwest::Error),
    /// The server answered with an error status (4xx, 5xx).
    Status(HttpError),
}

impl Error {
    /// The response status, if the server answered.
    pub fn status(&self) -> Option<::http::StatusCode> {
        match self {
            Error::Request(e) => e.status(),
            Error::Status(e) => Some(e.status()),
        }
    }
}

impl From<::reqwest::Error> for Error {
    fn from(e: ::reqwest::Error) -> Self {
        Error::Request(e)
    }
}

impl From<HttpError> for Error {
    fn from(e: HttpError) -> Self {
        Error::Status(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Request(e) => e.fmt(f),
            Error::Status(e) => e.fmt(f),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Request(e) => Some(e),
            Error::Status(e) => Some(e),
        }
    }
}
