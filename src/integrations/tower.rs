//! Retries in a `tower` service stack (feature `tower`).
//!
//! [`RetryLayer`] wraps a service in [`Retry`], which runs every request
//! through a [`RetryPolicy`]'s async driver, the one behind
//! [`RetryPolicy::call_async`]: the same engine, envelope, hooks, operation
//! names, seeded jitter and [`Sleeper`](crate::Sleeper). A request through
//! the layer behaves exactly like
//! `policy.call_async_named(operation, || service.call(request.clone()))`.
//!
//! ```
//! use std::time::Duration;
//! use reflexio::{ClassifiedError, ManualClock, RetryLayer, RetryPolicy};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! let clock = ManualClock::new(); // a fake sleeper: this example does not wait
//! let policy = RetryPolicy::builder()
//!     .strategy(reflexio::Backoff::exponential(Duration::from_millis(100), Duration::from_secs(2)))
//!     .sleeper(clock.clone())
//!     .build()?;
//!
//! let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
//! let seen = calls.clone();
//! let flaky = service_fn(move |name: String| {
//!     let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
//!     async move {
//!         if n < 2 { Err(ClassifiedError::transient("connection reset")) } else { Ok(format!("hello {name}")) }
//!     }
//! });
//! let mut service = RetryLayer::new(policy).operation("greet").layer(flaky);
//!
//! let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! let reply = rt.block_on(service.oneshot("ada".to_owned()))?;
//! assert_eq!(reply, "hello ada");
//! assert_eq!(clock.sleeps(), 2); // two retries, 100 ms and 200 ms
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Requests are cloned
//!
//! Every attempt sends its own clone of the request, so the request type
//! must be `Clone`. `http::Request` is not (its body is a stream): put the
//! layer where requests are still values, e.g. around a
//! [`service_fn`](https://docs.rs/tower/latest/tower/fn.service_fn.html)
//! that builds the HTTP request, or the gRPC message, for each attempt.
//! The wrapped service must be `Clone` too: the first attempt uses the
//! service [`poll_ready`](Service::poll_ready) prepared, each retry a
//! clone made ready again.
//!
//! The layer retries every request it is given: one that failed in flight
//! may have taken effect at the server, and its retry does it again. Put
//! it in front of idempotent requests only (or ones with an idempotency
//! key the server honours).
//!
//! # What counts as a failure
//!
//! The service's errors are classified by the policy's classifier. A
//! response can count as a failure too: give the layer a
//! [`ResponseClassifier`] with [`RetryLayer::classify_responses`]. It
//! answers `None` for a response to hand back, or the [`Classification`]
//! of a failed one (an HTTP 503, its `Retry-After` as the hint; with the
//! `http` feature, [`HttpResponses`] does that for `http::Response`). The
//! caller gets the last response back when retrying stops on a response,
//! and the last error when it stops on an error: the layer's error type is
//! the service's own, unchanged, as with tower's own `Retry`. Why retrying
//! stopped and after how many attempts is in the events
//! ([hooks](RetryLayer::hook)).

use std::any::type_name;
use std::borrow::Cow;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::classify::{Classification, Classifier, DefaultClassifier};
use crate::engine::ErrorText;
use crate::observe::{Hook, Hooks};
use crate::policy::{CallStart, RetryPolicy};

/// Decides whether a response counts as a failed attempt.
///
/// Implemented for every `Fn(&Resp) -> Option<Classification>`.
pub trait ResponseClassifier<Resp>: Send + Sync {
    /// `None` if `response` is a success to hand back; otherwise the
    /// failure's classification (with a server hint, if the response
    /// carries one).
    fn classify_response(&self, response: &Resp) -> Option<Classification>;
}

impl<Resp, F> ResponseClassifier<Resp> for F
where
    F: Fn(&Resp) -> Option<Classification> + Send + Sync,
{
    fn classify_response(&self, response: &Resp) -> Option<Classification> {
        self(response)
    }
}

/// The default [`ResponseClassifier`]: every response is a success; only
/// the service's errors are retried.
#[derive(Debug, Clone, Copy, Default)]
pub struct EveryResponseSucceeds;

impl<Resp> ResponseClassifier<Resp> for EveryResponseSucceeds {
    fn classify_response(&self, _: &Resp) -> Option<Classification> {
        None
    }
}

/// A [`ResponseClassifier`] for `http` responses (features `tower` and
/// `http`): a response with a 4xx or 5xx status is a failed attempt,
/// classified by [`crate::http::classify_response`] (the status table of
/// [`http_status_class`](crate::http_status_class), and the
/// `Retry-After` header, either form, as the hint of a class that may be
/// retried). Any other status is a success.
///
/// ```
/// use reflexio::tower::{HttpResponses, ResponseClassifier};
/// use reflexio::ErrorClass;
///
/// let busy = http::Response::builder().status(503).header("retry-after", "2").body(()).unwrap();
/// let c = HttpResponses.classify_response(&busy).unwrap();
/// assert_eq!((c.class, c.retry_after), (ErrorClass::ServerError, Some(std::time::Duration::from_secs(2))));
/// assert!(HttpResponses.classify_response(&http::Response::new(())).is_none());
/// ```
#[cfg(feature = "http")]
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpResponses;

#[cfg(feature = "http")]
impl<B> ResponseClassifier<http::Response<B>> for HttpResponses {
    fn classify_response(&self, response: &http::Response<B>) -> Option<Classification> {
        crate::http::is_failure(response.status())
            .then(|| crate::http::classify_response(response, std::time::SystemTime::now()))
    }
}

/// What the layer and every service it makes share.
struct Shared<C, R> {
    policy: RetryPolicy<C>,
    operation: Cow<'static, str>,
    hooks: Hooks,
    responses: R,
}

/// A [`Layer`] that retries the requests of the service it wraps under a
/// [`RetryPolicy`]. See the [module docs](self).
pub struct RetryLayer<C = DefaultClassifier, R = EveryResponseSucceeds> {
    shared: Arc<Shared<C, R>>,
}

impl<C, R> Clone for RetryLayer<C, R> {
    fn clone(&self) -> Self {
        RetryLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C, R> fmt::Debug for RetryLayer<C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("operation", &self.shared.operation)
            .field("hooks", &self.shared.hooks.len())
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

impl<C> RetryLayer<C> {
    /// Retries under `policy`; only the service's errors are failures.
    pub fn new(policy: RetryPolicy<C>) -> Self {
        RetryLayer {
            shared: Arc::new(Shared {
                policy,
                operation: Cow::Borrowed(""),
                hooks: Hooks::new(),
                responses: EveryResponseSucceeds,
            }),
        }
    }
}

impl<C, R> RetryLayer<C, R> {
    /// Rebuilds the shared part (cheap: done while configuring the layer).
    fn map<R2>(self, f: impl FnOnce(Shared<C, R>) -> Shared<C, R2>) -> RetryLayer<C, R2>
    where
        R: Clone,
    {
        let shared = Arc::try_unwrap(self.shared).unwrap_or_else(|shared| Shared {
            policy: shared.policy.clone(),
            operation: shared.operation.clone(),
            hooks: shared.hooks.clone(),
            responses: shared.responses.clone(),
        });
        RetryLayer {
            shared: Arc::new(f(shared)),
        }
    }

    /// Tags every event of the requests through this layer with `operation`.
    pub fn operation(self, operation: impl Into<Cow<'static, str>>) -> Self
    where
        R: Clone,
    {
        let operation = operation.into();
        self.map(|s| Shared { operation, ..s })
    }

    /// Adds a hook that sees only the requests through this layer (after
    /// the policy's own hooks), like [`BoundPolicy::hook`](crate::BoundPolicy::hook).
    pub fn hook(self, hook: impl Hook + 'static) -> Self
    where
        R: Clone,
    {
        self.map(|mut s| {
            s.hooks.push(hook);
            s
        })
    }

    /// Classifies responses with `responses` too: a response it classifies
    /// is a failed attempt, retried like an error of that class.
    pub fn classify_responses<R2>(self, responses: R2) -> RetryLayer<C, R2>
    where
        R: Clone,
    {
        self.map(|s| Shared {
            policy: s.policy,
            operation: s.operation,
            hooks: s.hooks,
            responses,
        })
    }

    /// The policy requests are retried under.
    pub fn policy(&self) -> &RetryPolicy<C> {
        &self.shared.policy
    }
}

impl<S, C, R> Layer<S> for RetryLayer<C, R> {
    type Service = Retry<S, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// A service that retries the requests of `S`; made by [`RetryLayer`].
pub struct Retry<S, C = DefaultClassifier, R = EveryResponseSucceeds> {
    inner: S,
    shared: Arc<Shared<C, R>>,
}

impl<S: Clone, C, R> Clone for Retry<S, C, R> {
    fn clone(&self) -> Self {
        Retry {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, C, R> fmt::Debug for Retry<S, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("operation", &self.shared.operation)
            .finish_non_exhaustive()
    }
}

impl<S, C, R> Retry<S, C, R> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// One attempt's failure: an error, or a response classified as one.
enum Failed<Resp, E> {
    Error(E),
    Response(Resp, Classification),
}

/// Classifies an attempt's failure: an error by the policy's classifier
/// (its text too), a response by the class the response classifier gave.
struct AttemptClassifier<'a, C>(&'a C);

impl<Resp, E, C: Classifier<E>> Classifier<Failed<Resp, E>> for AttemptClassifier<'_, C> {
    fn classify(&self, failed: &Failed<Resp, E>) -> Classification {
        match failed {
            Failed::Error(error) => self.0.classify(error),
            Failed::Response(_, class) => *class,
        }
    }

    fn describe<'e>(&self, failed: &'e Failed<Resp, E>) -> Option<ErrorText<'e>> {
        match failed {
            Failed::Error(error) => self.0.describe(error),
            Failed::Response(..) => None,
        }
    }
}

/// The retries of a request whose first attempt failed: the policy's
/// async driver, boxed.
type Retries<Resp, E> = Pin<Box<dyn Future<Output = Result<Resp, E>> + Send>>;

/// What a request needs once its first attempt has failed.
struct Later<S, Req, C, R> {
    service: S,
    request: Req,
    shared: Arc<Shared<C, R>>,
    start: CallStart,
}

pin_project! {
    /// The future of a [`Retry`] service's response.
    ///
    /// The first attempt runs in place; only a request whose first attempt
    /// fails moves on to the policy's async driver (boxed), so a request
    /// that succeeds at once allocates nothing.
    pub struct ResponseFuture<S, Req, C, R>
    where
        S: Service<Req>,
    {
        #[pin]
        first: Option<S::Future>,
        later: Option<Later<S, Req, C, R>>,
        retries: Option<Retries<S::Response, S::Error>>,
    }
}

impl<S, Req, C, R> fmt::Debug for ResponseFuture<S, Req, C, R>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("first_attempt_in_flight", &self.first.is_some())
            .field("retrying", &self.retries.is_some())
            .finish_non_exhaustive()
    }
}

impl<S, Req, C, R> Service<Req> for Retry<S, C, R>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Clone + Send + 'static,
    C: Classifier<S::Error> + 'static,
    R: ResponseClassifier<S::Response> + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S, Req, C, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let start = self.shared.policy.start_call(Some(&self.shared.hooks));
        // The first attempt's call starts right away, on the service
        // `poll_ready` prepared, as tower expects; a retry sends through a
        // fresh clone, made ready again.
        let first = self.inner.call(request.clone());
        ResponseFuture {
            first: Some(first),
            later: Some(Later {
                service: self.inner.clone(),
                request,
                shared: Arc::clone(&self.shared),
                start,
            }),
            retries: None,
        }
    }
}

impl<S, Req, C, R> Future for ResponseFuture<S, Req, C, R>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Clone + Send + 'static,
    C: Classifier<S::Error> + 'static,
    R: ResponseClassifier<S::Response> + 'static,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Some(retries) = this.retries.as_mut() {
            return retries.as_mut().poll(cx);
        }
        let first = this
            .first
            .as_mut()
            .as_pin_mut()
            .expect("a ResponseFuture polled after it completed");
        let Poll::Ready(outcome) = first.poll(cx) else {
            return Poll::Pending;
        };
        this.first.set(None);
        let later = this
            .later
            .take()
            .expect("a request's first attempt ends once");
        let failed = match outcome {
            Ok(response) => match later.shared.responses.classify_response(&response) {
                None => {
                    let shared = &later.shared;
                    shared.policy.first_attempt_succeeded(
                        later.start,
                        &shared.operation,
                        Some(&shared.hooks),
                    );
                    return Poll::Ready(Ok(response));
                }
                Some(class) => Failed::Response(response, class),
            },
            Err(error) => Failed::Error(error),
        };
        let mut retries = retry_after_first(later, failed);
        let poll = retries.as_mut().poll(cx);
        *this.retries = Some(retries);
        poll
    }
}

/// The rest of a request whose first attempt failed with `failed`: the
/// policy's async driver from that failure on.
fn retry_after_first<S, Req, C, R>(
    later: Later<S, Req, C, R>,
    failed: Failed<S::Response, S::Error>,
) -> Retries<S::Response, S::Error>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Clone + Send + 'static,
    C: Classifier<S::Error> + 'static,
    R: ResponseClassifier<S::Response> + 'static,
{
    let Later {
        service,
        request,
        shared,
        start,
    } = later;
    Box::pin(async move {
        let responses = &shared.responses;
        let attempt = move || {
            let mut service = service.clone();
            let request = request.clone();
            async move {
                let outcome = match poll_fn(|cx| service.poll_ready(cx)).await {
                    Ok(()) => service.call(request).await,
                    Err(error) => Err(error),
                };
                match outcome {
                    Ok(response) => match responses.classify_response(&response) {
                        None => Ok(response),
                        Some(class) => Err(Failed::Response(response, class)),
                    },
                    Err(error) => Err(Failed::Error(error)),
                }
            }
        };
        let classifier = AttemptClassifier(shared.policy.classifier());
        let error_type = |failed: &Failed<S::Response, S::Error>| match failed {
            Failed::Error(_) => type_name::<S::Error>(),
            Failed::Response(..) => type_name::<S::Response>(),
        };
        let outcome = shared
            .policy
            .drive_async(
                start,
                &shared.operation,
                Some(&shared.hooks),
                &classifier,
                error_type,
                Some(failed),
                attempt,
            )
            .await;
        match outcome {
            Ok(response) => Ok(response),
            Err(stopped) => match stopped.into_inner() {
                Failed::Error(error) => Err(error),
                Failed::Response(response, _) => Ok(response),
            },
        }
    })
}
