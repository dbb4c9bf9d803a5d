//! A `reqwest-middleware` middleware that retries with a policy (feature
//! `reqwest-middleware`).
//!
//! [`RetryMiddleware`] runs every request of a
//! `reqwest_middleware::ClientWithMiddleware` through a [`RetryPolicy`]:
//! the same engine, envelope, hooks and sleeper as
//! [`call_async`](RetryPolicy::call_async).
//!
//! * A request that fails (connect, timeout, connection closed) is retried
//!   as its `reqwest::Error` classifies (see [`crate::reqwest`]).
//! * A response whose status class may be retried (408, 409, 429, 5xx) is a
//!   failed attempt too, with its `Retry-After` as the hint. When the policy
//!   gives up, the caller gets that **last response** back (`Ok`), as from
//!   a plain client; hooks have seen the terminal event.
//! * A response the table marks as never retried (400, 401, 403, 404,
//!   422) is returned as is after one attempt; it ends the call with
//!   `permanent_fail`, so hooks and metrics count it as the failure it is.
//! * Any other status is a success, as for [`crate::tower::HttpResponses`]:
//!   a 2xx, and a 1xx or 3xx (a `304 Not Modified`, a redirect the client
//!   does not follow), which no retry would change. Another 4xx, one the
//!   table does not list (405, 410, ...), is a failed attempt of class
//!   `unknown`, retried under the policy's cap for unknown errors.
//! * **Requests whose body cannot be cloned** (a streaming body:
//!   `reqwest::Body::wrap_stream`) are sent **once, without retry**, and
//!   without events: there is no second copy of the body to send.
//! * Each attempt gets a copy of the request's extensions; the successful
//!   attempt's copy replaces the caller's.
//! * **Every method is retried**, `POST` and `PATCH` included: a request
//!   that timed out or lost its connection may have reached the server
//!   and taken effect, and its retry does it again. Give the middleware
//!   only to a client whose requests are idempotent (or carry an
//!   idempotency key the server honours), or build a second client
//!   without it for the others.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use reflexio::reqwest_middleware::RetryMiddleware;
//! use reflexio::RetryPolicy;
//!
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(RetryMiddleware::new(RetryPolicy::default()).operation("users"))
//!     .build();
//! let response = client.get("http://127.0.0.1:8080/users/7").send().await?;
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use ::http::Extensions;
use ::reqwest::{Request, Response};
use ::reqwest_middleware::{Middleware, Next};

use crate::classify::{Classifier, DefaultClassifier};
use crate::http::HttpError;
use crate::policy::RetryPolicy;

/// Retries a `ClientWithMiddleware`'s requests with a [`RetryPolicy`]; see
/// the [module docs](self).
pub struct RetryMiddleware<C = DefaultClassifier> {
    policy: RetryPolicy<C>,
    operation: Cow<'static, str>,
}

impl<C> fmt::Debug for RetryMiddleware<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryMiddleware")
            .field("operation", &self.operation)
            .field("policy", &self.policy)
            .finish()
    }
}

impl<C> RetryMiddleware<C> {
    /// A middleware retrying with `policy`; its classifier sees each failed
    /// attempt as an [`AttemptError`].
    pub fn new(policy: RetryPolicy<C>) -> Self {
        RetryMiddleware {
            policy,
            operation: Cow::Borrowed(""),
        }
    }

    /// Tags every event with `operation`.
    pub fn operation(mut self, operation: impl Into<Cow<'static, str>>) -> Self {
        self.operation = operation.into();
        self
    }
}

/// One failed attempt, as the middleware's policy classifies it: a response
/// whose status may be retried, or a failed request. Its source is the
/// [`HttpError`] or the `reqwest::Error`, so the
/// [`DefaultClassifier`] classifies it.
#[derive(Debug)]
pub enum AttemptError {
    /// The server answered with a status that may be retried.
    Status {
        /// The status, hint and URL.
        error: HttpError,
        /// The response itself, returned to the caller if it is the last.
        response: Response,
    },
    /// The request failed (or an inner middleware failed).
    Request(::reqwest_middleware::Error),
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptError::Status { error, .. } => error.fmt(f),
            AttemptError::Request(e) => e.fmt(f),
        }
    }
}

impl StdError for AttemptError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            AttemptError::Status { error, .. } => Some(error),
            AttemptError::Request(::reqwest_middleware::Error::Reqwest(e)) => Some(e),
            AttemptError::Request(::reqwest_middleware::Error::Middleware(e)) => Some(e.as_ref()),
        }
    }
}

/// The body of a request that could be cloned once but not again (it
/// cannot happen with reqwest's own bodies; reported, never a panic).
#[derive(Debug)]
struct BodyNotCloneable;

impl fmt::Display for BodyNotCloneable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request body cannot be cloned for another attempt")
    }
}

impl StdError for BodyNotCloneable {}

impl<C> Middleware for RetryMiddleware<C>
where
    C: Classifier<AttemptError> + 'static,
{
    fn handle<'a, 'b, 'c, 'f>(
        &'a self,
        req: Request,
        extensions: &'b mut Extensions,
        next: Next<'c>,
    ) -> Pin<Box<dyn Future<Output = ::reqwest_middleware::Result<Response>> + Send + 'f>>
    where
        'a: 'f,
        'b: 'f,
        'c: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            if req.try_clone().is_none() {
                // A streaming body: one attempt, no retry.
                return next.run(req, extensions).await;
            }
            let shared: &Extensions = extensions;
            let method = req.method().clone();
            let outcome = self
                .policy
                .call_async_named(&self.operation, || {
                    let attempt = req.try_clone();
                    let next = next.clone();
                    let mut own = shared.clone();
                    let method = method.clone();
                    async move {
                        let Some(attempt) = attempt else {
                            return Err(AttemptError::Request(
                                ::reqwest_middleware::Error::middleware(BodyNotCloneable),
                            ));
                        };
                        let response = next
                            .run(attempt, &mut own)
                            .await
                            .map_err(AttemptError::Request)?;
                        let status = response.status();
                        // Every error status goes to the engine, which decides
                        // (and reports `permanent_fail` for a 404); the caller
                        // gets the last response back either way.
                        if !crate::http::is_failure(status) {
                            return Ok((response, own));
                        }
                        let error = HttpError::from_parts(
                            response.status(),
                            response.headers(),
                            SystemTime::now(),
                        )
                        .with_request(method, response.url().as_str());
                        Err(AttemptError::Status { error, response })
                    }
                })
                .await;
            match outcome {
                Ok((response, own)) => {
                    *extensions = own;
                    Ok(response)
                }
                Err(gave_up) => match gave_up.into_inner() {
                    AttemptError::Status { response, .. } => Ok(response),
                    AttemptError::Request(e) => Err(e),
                },
            }
        })
    }
}
