//! Classification: turning an error value into an [`ErrorClass`].
//!
//! A [`Classifier`] looks at a failed attempt's error and answers with a
//! [`Classification`]: the class and, optionally, a delay the server asked
//! for (a retry-after hint). Plain closures `Fn(&E) -> ErrorClass` (or
//! `-> Classification`) are classifiers too.
//!
//! [`DefaultClassifier`] (and the free function [`default_classifier`])
//! tries, in this order, first match wins:
//!
//! 1. a [`ClassifiedError`] anywhere in the error's [`source`] chain;
//! 2. codes anywhere in the chain: HTTP statuses (and their retry-after
//!    hints) of error types registered with
//!    [`DefaultClassifier::with_http_status`] (see [`HttpStatus`] and
//!    [`http_status_class`]), SQLSTATEs of error types registered with
//!    [`DefaultClassifier::with_sql_state`] (see [`SqlState`] and
//!    [`sqlstate_class`]), the error types of the enabled integrations
//!    (`http`: `HttpError`; `reqwest`: `reqwest::Error`; `postgres`:
//!    `tokio_postgres::Error`; `tonic`: `tonic::Status`, with its
//!    pushback), and [`std::io::Error`] kinds;
//! 3. heuristics on the outer error's type name: `auth`, `unauthoriz`,
//!    `credential` give [`Auth`](ErrorClass::Auth); `forbid`, `permission`
//!    give [`Permission`](ErrorClass::Permission); `timeout`, `connection`
//!    give [`Transient`](ErrorClass::Transient);
//! 4. otherwise [`Unknown`](ErrorClass::Unknown).
//!
//! [`source`]: std::error::Error::source

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

use crate::class::ErrorClass;
use crate::engine::ErrorText;

/// The verdict on one failed attempt: its class and an optional server
/// delay hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Classification {
    /// The class the error belongs to.
    pub class: ErrorClass,
    /// How long the server asked the caller to wait before trying again
    /// (an HTTP `Retry-After`, for example). See the crate docs for how a
    /// hint combines with the strategy's delay.
    pub retry_after: Option<Duration>,
}

impl Classification {
    /// A classification without a delay hint.
    pub const fn new(class: ErrorClass) -> Self {
        Classification {
            class,
            retry_after: None,
        }
    }

    /// The same classification carrying a server delay hint.
    pub const fn with_retry_after(mut self, hint: Duration) -> Self {
        self.retry_after = Some(hint);
        self
    }
}

impl From<ErrorClass> for Classification {
    fn from(class: ErrorClass) -> Self {
        Classification::new(class)
    }
}

/// Sorts an error of type `E` into a [`Classification`].
///
/// Implemented for every `Fn(&E) -> R` where `R: Into<Classification>`, so
/// `|e: &MyError| ErrorClass::Transient` is a classifier.
pub trait Classifier<E: ?Sized>: Send + Sync {
    /// Classifies one failed attempt's error.
    fn classify(&self, error: &E) -> Classification;

    /// The error as text for hooks ([`Event::error`](crate::Event::error)),
    /// borrowed: nothing is formatted unless a hook asks. `None` by default;
    /// [`DefaultClassifier`] gives the error and its source chain
    /// ([`ErrorText::chain`]), [`Displayed`] the error's `Display`.
    fn describe<'e>(&self, error: &'e E) -> Option<ErrorText<'e>> {
        let _ = error;
        None
    }
}

impl<E: ?Sized, F, R> Classifier<E> for F
where
    F: Fn(&E) -> R + Send + Sync,
    R: Into<Classification>,
{
    fn classify(&self, error: &E) -> Classification {
        self(error).into()
    }
}

/// A classifier closure whose errors also show their `Display` text to
/// hooks ([`Event::error`](crate::Event::error)); see [`Classifier::describe`].
///
/// ```
/// use reflexio::{classify::Displayed, ErrorClass, RetryPolicy};
///
/// let policy = RetryPolicy::default()
///     .with_classifier(Displayed(|_: &std::io::Error| ErrorClass::Permanent));
/// assert!(policy.call(|| Err::<(), _>(std::io::Error::other("gone"))).is_err());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Displayed<F>(pub F);

impl<E, F, R> Classifier<E> for Displayed<F>
where
    E: fmt::Display,
    F: Fn(&E) -> R + Send + Sync,
    R: Into<Classification>,
{
    fn classify(&self, error: &E) -> Classification {
        (self.0)(error).into()
    }

    fn describe<'e>(&self, error: &'e E) -> Option<ErrorText<'e>> {
        Some(ErrorText::new(error))
    }
}

/// An error type that carries an HTTP status code, and perhaps the delay
/// the server asked for (its `Retry-After`).
///
/// Implement it for your error type and register the type with
/// [`DefaultClassifier::with_http_status`]; the default classifier then
/// finds it anywhere in an error's source chain, maps the status with
/// [`http_status_class`] and, for a class that may be retried, attaches
/// [`retry_after`](Self::retry_after) as the hint.
pub trait HttpStatus {
    /// The HTTP status this error reports, if any.
    fn http_status(&self) -> Option<u16>;

    /// The delay the server asked for, if any. `None` by default.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// An error type that carries a SQLSTATE code (a database driver's error).
///
/// Implement it for your error type (or a newtype over a driver's error)
/// and register the type with [`DefaultClassifier::with_sql_state`]; the
/// default classifier then finds it anywhere in an error's source chain and
/// maps the code with [`sqlstate_class`]. With the `postgres` feature,
/// `tokio_postgres::Error` implements it and is registered by default.
///
/// For `sqlx`, wrap its error in a type of yours that keeps the SQLSTATE
/// of `sqlx::Error::as_database_error()`'s `code()`, implement this trait
/// for it and register it; `docs/classification.md` in the repository has
/// the whole recipe, compiled as a doctest.
pub trait SqlState {
    /// The five-character SQLSTATE this error reports, if any.
    fn sql_state(&self) -> Option<&str>;
}

/// A rule on one error of a source chain; see [`DefaultClassifier`].
pub(crate) type Probe = fn(&(dyn Error + 'static)) -> Option<Classification>;

/// The classification an [`HttpStatus`] reports: its status's class and,
/// for a class that may be retried, its hint.
pub(crate) fn status_classification(error: &dyn HttpStatus) -> Option<Classification> {
    let class = http_status_class(error.http_status()?);
    let mut c = Classification::new(class);
    if class.is_retryable() {
        c.retry_after = error.retry_after();
    }
    Some(c)
}

fn probe_status<T: HttpStatus + Error + 'static>(
    error: &(dyn Error + 'static),
) -> Option<Classification> {
    status_classification(error.downcast_ref::<T>()?)
}

fn probe_sql_state<T: SqlState + Error + 'static>(
    error: &(dyn Error + 'static),
) -> Option<Classification> {
    let code = error.downcast_ref::<T>()?.sql_state()?;
    Some(sqlstate_class(code).into())
}

/// The classifier used by default; see the [module docs](self) for its rules.
///
/// **Boxed errors.** std's `Box<T>` forwards `source()` to `T`'s own
/// source, so a boxed error's chain never shows `T` itself (the rules look
/// through `Box<ClassifiedError>` and `Box<std::io::Error>` explicitly), and
/// `Box<dyn Error + Send + Sync>` is not an `Error` at all. Classify
/// type-erased errors through [`classify_dyn`](Self::classify_dyn), which starts the
/// chain at the boxed value:
///
/// ```
/// use std::error::Error;
/// use reflexio::{ClassifiedError, DefaultClassifier, ErrorClass, RetryPolicy};
///
/// let rules = DefaultClassifier::new();
/// let policy = RetryPolicy::default()
///     .with_classifier(move |e: &Box<dyn Error + Send + Sync>| rules.classify_dyn(&**e, ""));
/// let err = policy
///     .call(|| Err::<(), Box<dyn Error + Send + Sync>>(ClassifiedError::permanent("bad id").into()))
///     .unwrap_err();
/// assert_eq!(err.attempts(), 1);
/// ```
#[derive(Clone, Default)]
pub struct DefaultClassifier {
    probes: Vec<Probe>,
}

impl fmt::Debug for DefaultClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultClassifier")
            .field("registered_types", &self.probes.len())
            .finish()
    }
}

impl DefaultClassifier {
    /// The default rules, with the enabled integrations' error types and no
    /// other HTTP status or SQLSTATE types registered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also recognise `T` (anywhere in a source chain) by its HTTP status
    /// and retry-after hint.
    pub fn with_http_status<T: HttpStatus + Error + 'static>(mut self) -> Self {
        self.probes.push(probe_status::<T>);
        self
    }

    /// Also recognise `T` (anywhere in a source chain) by its SQLSTATE.
    pub fn with_sql_state<T: SqlState + Error + 'static>(mut self) -> Self {
        self.probes.push(probe_sql_state::<T>);
        self
    }

    /// Classifies a type-erased error by the explicit-type and code rules,
    /// and by heuristics on `type_name` (the outer error's type name).
    pub fn classify_dyn(&self, error: &(dyn Error + 'static), type_name: &str) -> Classification {
        if let Some(found) = chain(error).find_map(as_a::<ClassifiedError>) {
            return found.classification();
        }
        let by_code = chain(error).find_map(|e| {
            let found = crate::integrations::BUILTIN_PROBES
                .iter()
                .chain(&self.probes)
                .find_map(|probe| probe(e))
                .or_else(|| as_a::<io::Error>(e).map(|io| io_kind_class(io.kind()).into()))?;
            (found.class != ErrorClass::Unknown).then_some(found)
        });
        if let Some(found) = by_code {
            return found;
        }
        type_name_class(type_name).into()
    }
}

impl<E: Error + 'static> Classifier<E> for DefaultClassifier {
    fn classify(&self, error: &E) -> Classification {
        self.classify_dyn(error, std::any::type_name::<E>())
    }

    fn describe<'e>(&self, error: &'e E) -> Option<ErrorText<'e>> {
        Some(ErrorText::chain(error))
    }
}

/// Classifies `error` with the default rules (no HTTP status types
/// registered). See the [module docs](self).
pub fn default_classifier<E: Error + 'static>(error: &E) -> Classification {
    DefaultClassifier::new().classify(error)
}

/// `error` as a `T`, or as a `Box<T>`: std's `Box<T>` forwards `source()`
/// past `T`, so a boxed `T` is only seen here.
pub(crate) fn as_a<'a, T: Error + 'static>(error: &'a (dyn Error + 'static)) -> Option<&'a T> {
    error
        .downcast_ref::<T>()
        .or_else(|| error.downcast_ref::<Box<T>>().map(|b| &**b))
}

pub(crate) fn chain<'a>(
    error: &'a (dyn Error + 'static),
) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |e: &&'a (dyn Error + 'static)| (*e).source())
}

/// Maps an HTTP status code to a class.
///
/// 401 auth; 403 permission; 400, 404, 422 permanent; 408 transient;
/// 409 concurrency; 429 rate_limit; 500–599 server_error; anything else
/// unknown.
pub const fn http_status_class(status: u16) -> ErrorClass {
    match status {
        401 => ErrorClass::Auth,
        403 => ErrorClass::Permission,
        400 | 404 | 422 => ErrorClass::Permanent,
        408 => ErrorClass::Transient,
        409 => ErrorClass::Concurrency,
        429 => ErrorClass::RateLimit,
        500..=599 => ErrorClass::ServerError,
        _ => ErrorClass::Unknown,
    }
}

/// Maps a SQLSTATE code to a class (case-insensitively, surrounding
/// blanks ignored).
///
/// | SQLSTATE | meaning | class |
/// |---|---|---|
/// | 40001, 40P01 | serialization failure, deadlock | concurrency |
/// | 55P03 | lock not available (`NOWAIT`, `lock_timeout`) | concurrency |
/// | 08xxx | connection exceptions | transient |
/// | HYT00, HYT01 | timeouts (ODBC) | transient |
/// | 53300 | too many connections | rate_limit |
/// | 57P01, 57P03 | admin shutdown, cannot connect now (starting up or shutting down) | server_error |
/// | 28xxx | invalid authorization | auth |
/// | 42501 | insufficient privilege | permission |
/// | other 42xxx | syntax errors, undefined objects | permanent |
/// | 23xxx | integrity constraint violations | permanent |
/// | anything else | | unknown |
pub fn sqlstate_class(sqlstate: &str) -> ErrorClass {
    let code = sqlstate.trim().as_bytes();
    if code.len() != 5 || !code.iter().all(u8::is_ascii_alphanumeric) {
        return ErrorClass::Unknown;
    }
    let mut upper = [0u8; 5];
    for (u, c) in upper.iter_mut().zip(code) {
        *u = c.to_ascii_uppercase();
    }
    match &upper {
        b"40001" | b"40P01" | b"55P03" => ErrorClass::Concurrency,
        b"HYT00" | b"HYT01" => ErrorClass::Transient,
        b"53300" => ErrorClass::RateLimit,
        b"57P01" | b"57P03" => ErrorClass::ServerError,
        b"42501" => ErrorClass::Permission,
        [b'0', b'8', ..] => ErrorClass::Transient,
        [b'2', b'8', ..] => ErrorClass::Auth,
        [b'4', b'2', ..] | [b'2', b'3', ..] => ErrorClass::Permanent,
        _ => ErrorClass::Unknown,
    }
}

/// Maps a [`std::io::ErrorKind`] to a class.
///
/// Timeouts, reset, refused or aborted connections, a socket not
/// connected, broken pipes, interruptions and would-block are transient;
/// permission denied is permission; not found, invalid input and invalid
/// data are permanent; anything else unknown.
pub fn io_kind_class(kind: io::ErrorKind) -> ErrorClass {
    use io::ErrorKind as K;
    match kind {
        K::TimedOut
        | K::ConnectionReset
        | K::ConnectionRefused
        | K::ConnectionAborted
        | K::NotConnected
        | K::BrokenPipe
        | K::Interrupted
        | K::WouldBlock => ErrorClass::Transient,
        K::PermissionDenied => ErrorClass::Permission,
        K::NotFound | K::InvalidInput | K::InvalidData => ErrorClass::Permanent,
        _ => ErrorClass::Unknown,
    }
}

/// Classifies by heuristics on a type name (its last path segment, without
/// generic arguments, compared case-insensitively).
pub fn type_name_class(type_name: &str) -> ErrorClass {
    let without_generics = type_name.split('<').next().unwrap_or(type_name);
    let last = without_generics
        .rsplit("::")
        .next()
        .unwrap_or(without_generics);
    let has = |words: &[&str]| words.iter().any(|w| contains_ignore_ascii_case(last, w));
    if has(&["auth", "unauthoriz", "credential"]) {
        ErrorClass::Auth
    } else if has(&["forbid", "permission"]) {
        ErrorClass::Permission
    } else if has(&["timeout", "connection"]) {
        ErrorClass::Transient
    } else {
        ErrorClass::Unknown
    }
}

/// Whether `haystack` contains the lowercase ASCII `needle`, ignoring ASCII
/// case, without allocating.
fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// reflexio's own explicit error type: an error whose class the code that
/// raised it already knows.
///
/// The default classifier finds a `ClassifiedError` anywhere in a source
/// chain and trusts it before any other rule.
///
/// ```
/// use std::time::Duration;
/// use reflexio::{default_classifier, ClassifiedError, ErrorClass};
///
/// let err = ClassifiedError::rate_limited(Some(Duration::from_secs(2)), "slow down");
/// let c = default_classifier(&err);
/// assert_eq!(c.class, ErrorClass::RateLimit);
/// assert_eq!(c.retry_after, Some(Duration::from_secs(2)));
/// ```
#[derive(Debug)]
pub struct ClassifiedError {
    classification: Classification,
    source: Box<dyn Error + Send + Sync + 'static>,
}

impl ClassifiedError {
    /// An error of an explicit `class`, wrapping `source` (an error value
    /// or a message).
    pub fn new(class: ErrorClass, source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        ClassifiedError {
            classification: Classification::new(class),
            source: source.into(),
        }
    }

    /// A permanent error: retrying cannot help.
    pub fn permanent(source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self::new(ErrorClass::Permanent, source)
    }

    /// A rate-limit rejection, optionally with the delay the server asked for.
    pub fn rate_limited(
        retry_after: Option<Duration>,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        let mut err = Self::new(ErrorClass::RateLimit, source);
        err.classification.retry_after = retry_after;
        err
    }

    /// A conflicting concurrent write.
    pub fn concurrency(source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self::new(ErrorClass::Concurrency, source)
    }

    /// A failure of the service itself.
    pub fn server_error(source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self::new(ErrorClass::ServerError, source)
    }

    /// A passing fault.
    pub fn transient(source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self::new(ErrorClass::Transient, source)
    }

    /// The same error carrying the delay the server asked for (any class
    /// that may be retried can carry one: a 503's `Retry-After`, say). The
    /// hint combines with the strategy as the crate docs describe; on a
    /// class that is never retried it has no effect.
    ///
    /// ```
    /// use std::time::Duration;
    /// use reflexio::{default_classifier, ClassifiedError, ErrorClass};
    ///
    /// let err = ClassifiedError::server_error("HTTP 503").with_retry_after(Duration::from_secs(1));
    /// let c = default_classifier(&err);
    /// assert_eq!((c.class, c.retry_after), (ErrorClass::ServerError, Some(Duration::from_secs(1))));
    /// ```
    pub fn with_retry_after(mut self, hint: Duration) -> Self {
        self.classification.retry_after = Some(hint);
        self
    }

    /// The class and hint this error carries.
    pub fn classification(&self) -> Classification {
        self.classification
    }
}

impl fmt::Display for ClassifiedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error: {}", self.classification.class, self.source)
    }
}

impl Error for ClassifiedError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}
