//! HTTP classification and `Retry-After` parsing (feature `http`, on the
//! `http` 1.x crate's types).
//!
//! * [`status_class`] maps a [`StatusCode`] with the table of
//!   [`http_status_class`]: 401 auth; 403 permission; 400, 404, 422
//!   permanent; 408 transient; 409 concurrency; 429 rate_limit; 5xx
//!   server_error; anything else unknown.
//! * [`classify_status`] and [`classify_response`] add the `Retry-After`
//!   hint to a class that may be retried (429 and 503 are the usual ones,
//!   but any retryable status carries its hint).
//! * [`HttpError`] is a non-success response as an error value: status,
//!   hint and a body-less context (method and URL). The
//!   [`DefaultClassifier`](crate::DefaultClassifier) knows it anywhere in a
//!   source chain without registration.
//!
//! # `Retry-After`
//!
//! RFC 9110 allows two forms, and [`parse_retry_after`] reads both:
//!
//! * delta-seconds, `Retry-After: 120`: a run of ASCII digits. Values too
//!   large for a `u64` saturate to `u64::MAX` seconds; the policy's
//!   `max_retry_after` ceiling then cuts the hint (see the crate docs).
//! * an HTTP-date, `Retry-After: Sun, 06 Nov 1994 08:49:37 GMT` (and the
//!   obsolete RFC 850 and asctime forms, which RFC 9110 requires recipients
//!   to accept): the hint is the time from `now` until that date, where
//!   `now` is the wall-clock time the caller hands in. The `*_now`
//!   conveniences use [`SystemTime::now`]; tests pass a fixed time.
//!
//! What is not a valid value never panics and gives **no hint** (`None`):
//! garbage, an empty value, a negative or signed number (`-5`, `+5`), a
//! fraction (`1.5`), a date with an impossible day or time. A date in the
//! past (or `now` itself) gives a hint of **zero**: the server asks for no
//! wait, and the strategy's own delay applies.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use reflexio::http::{classify_status, parse_retry_after};
//! use reflexio::ErrorClass;
//!
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_767); // 06 Nov 1994 08:49:27 GMT
//! assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
//! assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(Duration::from_secs(10)));
//! assert_eq!(parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now), Some(Duration::ZERO));
//! assert_eq!(parse_retry_after("soon", now), None);
//! assert_eq!(parse_retry_after("-5", now), None);
//!
//! let mut headers = http::HeaderMap::new();
//! headers.insert(http::header::RETRY_AFTER, "1".parse().unwrap());
//! let c = classify_status(http::StatusCode::SERVICE_UNAVAILABLE, &headers, now);
//! assert_eq!((c.class, c.retry_after), (ErrorClass::ServerError, Some(Duration::from_secs(1))));
//! ```

use std::error::Error;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::RETRY_AFTER;
use http::{HeaderMap, Method, Response, StatusCode};

use crate::class::ErrorClass;
use crate::classify::{http_status_class, status_classification, Classification, HttpStatus};

/// The class of an HTTP status; the table is [`http_status_class`]'s.
pub fn status_class(status: StatusCode) -> ErrorClass {
    http_status_class(status.as_u16())
}

/// Classifies a response by its status and, for a class that may be
/// retried, its `Retry-After` header read at `now` (see the
/// [module docs](self) for the forms and the edge cases).
pub fn classify_status(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Classification {
    let class = status_class(status);
    let mut c = Classification::new(class);
    if class.is_retryable() {
        c.retry_after = retry_after(headers, now);
    }
    c
}

/// Whether a response with `status` failed: a client or server error
/// (4xx, 5xx), as reqwest's `error_for_status` sees it. A 1xx, 2xx or 3xx
/// (a `304 Not Modified`, a redirect not followed) is handed back: no
/// retry would change it. The rule of every integration that turns
/// responses into failed attempts (`check`, `RetryMiddleware`,
/// `HttpResponses`).
///
/// ```
/// use http::StatusCode;
/// use reflexio::http::is_failure;
///
/// assert!(is_failure(StatusCode::SERVICE_UNAVAILABLE));
/// assert!(!is_failure(StatusCode::NOT_MODIFIED));
/// ```
pub fn is_failure(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error()
}

/// [`classify_status`] on a response's status and headers.
pub fn classify_response<B>(response: &Response<B>, now: SystemTime) -> Classification {
    classify_status(response.status(), response.headers(), now)
}

/// The hint of the first `Retry-After` header, read at `now`; `None` when
/// there is none or it is not valid (see the [module docs](self)).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, now)
}

/// Parses a `Retry-After` value, delta-seconds or HTTP-date, into the
/// delay it asks for, counted from `now`. Never panics; see the
/// [module docs](self) for what gives `None` and what gives zero.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // Only digits: the parse fails on overflow alone.
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// [`parse_retry_after`] at [`SystemTime::now`].
pub fn parse_retry_after_now(value: &str) -> Option<Duration> {
    parse_retry_after(value, SystemTime::now())
}

/// Parses an HTTP-date in any of the three forms RFC 9110 asks recipients
/// to accept: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`; a two-digit year below 70 is read as
/// 20xx) and asctime (`Sun Nov  6 08:49:37 1994`). The weekday's name is
/// checked to be one, not checked against the date. `None` for anything
/// else, or for dates before 1970.
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    let (day, month, year, time) = if let Some((weekday, rest)) = value.split_once(',') {
        let rest = rest.strip_prefix(' ')?;
        let mut parts = rest.split(' ');
        let date = parts.next()?;
        if date.contains('-') {
            // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
            long_weekday(weekday)?;
            let time = parts.next()?;
            if parts.next()? != "GMT" || parts.next().is_some() {
                return None;
            }
            let mut fields = date.split('-');
            let day = two_digits(fields.next()?)?;
            let month = month(fields.next()?)?;
            let yy = two_digits(fields.next()?)?;
            if fields.next().is_some() {
                return None;
            }
            let year = if yy < 70 { 2000 + yy } else { 1900 + yy };
            (day, month, year, time)
        } else {
            // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
            short_weekday(weekday)?;
            let day = two_digits(date)?;
            let month = month(parts.next()?)?;
            let year = four_digits(parts.next()?)?;
            let time = parts.next()?;
            if parts.next()? != "GMT" || parts.next().is_some() {
                return None;
            }
            (day, month, year, time)
        }
    } else {
        // asctime: Sun Nov  6 08:49:37 1994 (the day padded with a space)
        let mut parts = value.split_ascii_whitespace();
        short_weekday(parts.next()?)?;
        let month = month(parts.next()?)?;
        let day = parts.next()?;
        let day = match day.len() {
            1 => u32::from(digit(day.as_bytes()[0])?),
            _ => two_digits(day)?,
        };
        let time = parts.next()?;
        let year = four_digits(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        (day, month, year, time)
    };
    let seconds_of_day = time_of_day(time)?;
    let days = days_since_epoch(year, month, day)?;
    let seconds = days.checked_mul(86_400)?.checked_add(seconds_of_day)?;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// Formats `at` as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the
/// form a server sends in `Retry-After`; sub-second parts are dropped.
/// Times before 1970 are formatted as the epoch, and times after the last
/// second an IMF-fixdate can write (9999-12-31 23:59:59) as that second.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use reflexio::http::{format_http_date, parse_http_date};
///
/// let at = UNIX_EPOCH + Duration::from_secs(784_111_777);
/// assert_eq!(format_http_date(at), "Sun, 06 Nov 1994 08:49:37 GMT");
/// assert_eq!(parse_http_date(&format_http_date(at)), Some(at));
/// ```
pub fn format_http_date(at: SystemTime) -> String {
    /// 9999-12-31 23:59:59 UTC, in seconds since the epoch.
    const LAST: u64 = 253_402_300_799;
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .min(LAST);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // 1970-01-01 was a Thursday (index 3 from Monday).
    let weekday = SHORT_DAYS[((days + 3) % 7) as usize];
    let (mut year, mut days_left) = (1970u64, days);
    loop {
        let len = if is_leap(year as u32) { 366 } else { 365 };
        if days_left < len {
            break;
        }
        days_left -= len;
        year += 1;
    }
    let mut month = 0usize;
    loop {
        let len = u64::from(month_len(year as u32, month as u32 + 1));
        if days_left < len {
            break;
        }
        days_left -= len;
        month += 1;
    }
    format!(
        "{weekday}, {:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        days_left + 1,
        MONTHS[month],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn month_len(year: u32, month: u32) -> u32 {
    const DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    DAYS[(month - 1) as usize] + u32::from(month == 2 && is_leap(year))
}

fn digit(b: u8) -> Option<u8> {
    b.is_ascii_digit().then(|| b - b'0')
}

fn two_digits(s: &str) -> Option<u32> {
    match s.as_bytes() {
        [a, b] => Some(u32::from(digit(*a)?) * 10 + u32::from(digit(*b)?)),
        _ => None,
    }
}

fn four_digits(s: &str) -> Option<u32> {
    match s.as_bytes() {
        [a, b, c, d] => Some(
            [a, b, c, d]
                .into_iter()
                .try_fold(0u32, |acc, x| Some(acc * 10 + u32::from(digit(*x)?)))?,
        ),
        _ => None,
    }
}

const SHORT_DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn short_weekday(s: &str) -> Option<()> {
    SHORT_DAYS.contains(&s).then_some(())
}

fn long_weekday(s: &str) -> Option<()> {
    LONG_DAYS.contains(&s).then_some(())
}

fn month(s: &str) -> Option<u32> {
    let i = MONTHS.iter().position(|m| *m == s)?;
    Some(i as u32 + 1)
}

/// `HH:MM:SS` as seconds since midnight (a leap second, :60, is allowed).
fn time_of_day(s: &str) -> Option<u64> {
    let mut fields = s.split(':');
    let h = two_digits(fields.next()?)?;
    let m = two_digits(fields.next()?)?;
    let sec = two_digits(fields.next()?)?;
    if fields.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(u64::from(h * 3600 + m * 60 + sec))
}

fn is_leap(year: u32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days from 1970-01-01 to the given date; `None` for an impossible day or
/// a date before 1970.
fn days_since_epoch(year: u32, month: u32, day: u32) -> Option<u64> {
    if year < 1970 || day == 0 || day > month_len(year, month) {
        return None;
    }
    let whole_years: u64 = (1970..year)
        .map(|y| if is_leap(y) { 366 } else { 365 })
        .sum();
    let whole_months: u32 = (1..month).map(|m| month_len(year, m)).sum();
    Some(whole_years + u64::from(whole_months) + u64::from(day - 1))
}

/// A non-success HTTP response as an error: its status, the hint its
/// `Retry-After` gave (read when the error was made), and a body-less
/// context, the request's method and URL when known.
///
/// The [`DefaultClassifier`](crate::DefaultClassifier) finds it anywhere in
/// a source chain and classifies it by [`status_class`], with the hint for
/// a class that may be retried.
///
/// ```
/// use std::time::Duration;
/// use reflexio::http::HttpError;
/// use reflexio::{default_classifier, ErrorClass};
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert(http::header::RETRY_AFTER, "2".parse().unwrap());
/// let err = HttpError::from_parts_now(http::StatusCode::TOO_MANY_REQUESTS, &headers)
///     .with_request(http::Method::GET, "http://127.0.0.1:8080/users/7");
/// assert_eq!(err.to_string(), "HTTP 429 Too Many Requests from GET http://127.0.0.1:8080/users/7 (retry after 2s)");
/// let c = default_classifier(&err);
/// assert_eq!((c.class, c.retry_after), (ErrorClass::RateLimit, Some(Duration::from_secs(2))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    status: StatusCode,
    retry_after: Option<Duration>,
    method: Option<Method>,
    url: Option<String>,
}

impl HttpError {
    /// An error for `status` with no hint and no context.
    pub fn new(status: StatusCode) -> Self {
        HttpError {
            status,
            retry_after: None,
            method: None,
            url: None,
        }
    }

    /// An error for `status`, with the `Retry-After` of `headers` read at
    /// `now` (for a status whose class may be retried).
    pub fn from_parts(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Self {
        let mut err = HttpError::new(status);
        err.retry_after = classify_status(status, headers, now).retry_after;
        err
    }

    /// [`from_parts`](Self::from_parts) at [`SystemTime::now`].
    pub fn from_parts_now(status: StatusCode, headers: &HeaderMap) -> Self {
        Self::from_parts(status, headers, SystemTime::now())
    }

    /// An error for a response's status and `Retry-After` (read at `now`).
    /// The body is not kept.
    pub fn from_response<B>(response: &Response<B>, now: SystemTime) -> Self {
        Self::from_parts(response.status(), response.headers(), now)
    }

    /// The same error with the request's method and URL as context.
    pub fn with_request(mut self, method: Method, url: impl Into<String>) -> Self {
        self.method = Some(method);
        self.url = Some(url.into());
        self
    }

    /// The same error with the request's URL as context (method unknown).
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The same error with an explicit hint (`None` removes it).
    pub fn with_retry_after(mut self, hint: Option<Duration>) -> Self {
        self.retry_after = hint;
        self
    }

    /// The response's status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The delay the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The request's method, when known.
    pub fn method(&self) -> Option<&Method> {
        self.method.as_ref()
    }

    /// The request's URL, when known.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The class of the status.
    pub fn class(&self) -> ErrorClass {
        status_class(self.status)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status.as_u16())?;
        if let Some(reason) = self.status.canonical_reason() {
            write!(f, " {reason}")?;
        }
        match (&self.method, &self.url) {
            (Some(method), Some(url)) => write!(f, " from {method} {url}")?,
            (None, Some(url)) => write!(f, " from {url}")?,
            _ => {}
        }
        if let Some(hint) = self.retry_after {
            // Whole milliseconds are precision enough for a reader.
            let ms = u64::try_from(hint.as_millis()).unwrap_or(u64::MAX);
            write!(f, " (retry after {:?})", Duration::from_millis(ms))?;
        }
        Ok(())
    }
}

impl Error for HttpError {}

impl HttpStatus for HttpError {
    fn http_status(&self) -> Option<u16> {
        Some(self.status.as_u16())
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// The default classifier's rule for [`HttpError`].
pub(crate) fn probe(error: &(dyn Error + 'static)) -> Option<Classification> {
    status_classification(error.downcast_ref::<HttpError>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_arithmetic_matches_known_dates() {
        let at = |s| {
            parse_http_date(s)
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        assert_eq!(at("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
        assert_eq!(at("Sun, 06 Nov 1994 08:49:37 GMT"), 784_111_777);
        assert_eq!(at("Sunday, 06-Nov-94 08:49:37 GMT"), 784_111_777);
        assert_eq!(at("Sun Nov  6 08:49:37 1994"), 784_111_777);
        assert_eq!(at("Tue, 29 Feb 2000 00:00:00 GMT"), 951_782_400);
        assert_eq!(at("Sat, 01 Jan 2000 00:00:00 GMT"), 946_684_800);
        assert_eq!(at("Sun, 29 Nov 2026 12:00:00 GMT"), 1_795_953_600);
    }

    #[test]
    fn formatting_round_trips() {
        for secs in [0, 784_111_777, 951_782_400, 1_795_953_600, 253_402_300_799] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(parse_http_date(&format_http_date(t)), Some(t), "{secs}");
        }
    }
}
