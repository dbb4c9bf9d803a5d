//! The `http` feature: `Retry-After` in both forms and its edge cases, the
//! status table on `http::StatusCode`, and hints on retryable statuses
//! reaching the engine.
#![cfg(feature = "http")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use reflexio::http::{
    classify_response, classify_status, parse_http_date, parse_retry_after, retry_after,
    status_class, HttpError,
};
use reflexio::{
    default_classifier, Backoff, ClassifiedError, ErrorClass, Event, EventKind, ManualClock,
    RetryPolicy, StopReason,
};

/// Sun, 06 Nov 1994 08:49:37 GMT.
const DATE_SECS: u64 = 784_111_777;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn headers(retry_after: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(RETRY_AFTER, HeaderValue::from_str(retry_after).unwrap());
    h
}

#[test]
fn delta_seconds() {
    let now = at(DATE_SECS);
    for (value, secs) in [("0", 0), ("1", 1), ("120", 120), (" 7 ", 7), ("007", 7)] {
        assert_eq!(
            parse_retry_after(value, now),
            Some(Duration::from_secs(secs)),
            "{value:?}"
        );
    }
}

#[test]
fn http_date_in_all_three_forms_is_relative_to_now() {
    let now = at(DATE_SECS - 10);
    for value in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    ] {
        assert_eq!(
            parse_retry_after(value, now),
            Some(Duration::from_secs(10)),
            "{value:?}"
        );
    }
    // Sub-second "now": the hint is what is left to the whole second.
    let now = at(DATE_SECS - 2) + Duration::from_millis(250);
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
        Some(Duration::from_millis(1750))
    );
}

#[test]
fn past_and_present_dates_give_a_zero_hint() {
    let now = at(DATE_SECS);
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(
        parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(
        parse_retry_after(
            "Sat, 05 Nov 1994 08:49:37 GMT",
            at(DATE_SECS + 86_400 * 365)
        ),
        Some(Duration::ZERO)
    );
}

#[test]
fn garbage_negative_and_impossible_values_give_no_hint() {
    let now = at(DATE_SECS);
    for value in [
        "",
        "   ",
        "soon",
        "-5",
        "+5",
        "-0",
        "1.5",
        "1e3",
        "0x10",
        "5 s",
        "Sun, 06 Nov 1994 08:49:37",       // no GMT
        "Sun, 06 Nov 1994 08:49:37 UTC",   // not GMT
        "Sun, 31 Nov 1994 08:49:37 GMT",   // no 31 November
        "Mon, 29 Feb 2100 00:00:00 GMT",   // 2100 is not a leap year
        "Sun, 06 Nov 1994 24:00:00 GMT",   // no hour 24
        "Sun, 06 Nov 1994 08:60:00 GMT",   // no minute 60
        "Sun, 06 Nov 1994 8:49:37 GMT",    // one-digit hour
        "Sun, 6 Nov 1994 08:49:37 GMT",    // one-digit day in IMF-fixdate
        "Sun, 06 Foo 1994 08:49:37 GMT",   // no such month
        "Xyz, 06 Nov 1994 08:49:37 GMT",   // no such weekday
        "Sun, 06 Nov 94 08:49:37 GMT",     // two-digit year in IMF-fixdate
        "Sun, 06 Nov 1994 08:49:37 GMT x", // trailing junk
        "Sun, 01 Jan 1969 00:00:00 GMT",   // before the epoch
        "Sun,",
        ",",
        "Sun Nov  6 08:49:37",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "\u{1F600}",
        "Sun, 06 Nov 1994 08:49:37 GMT\u{e9}",
    ] {
        assert_eq!(parse_retry_after(value, now), None, "{value:?}");
    }
    assert_eq!(parse_http_date("120"), None);
}

#[test]
fn far_future_hints_saturate_and_are_cut_by_max_retry_after() {
    let now = at(DATE_SECS);
    let huge = "99999999999999999999999999999";
    assert_eq!(
        parse_retry_after(huge, now),
        Some(Duration::from_secs(u64::MAX))
    );
    assert_eq!(
        parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
        Some(at(253_402_300_799).duration_since(now).unwrap())
    );

    // The engine cuts either to the policy's max_retry_after.
    for value in [huge, "Fri, 31 Dec 9999 23:59:59 GMT"] {
        let clock = ManualClock::new();
        let policy = RetryPolicy::builder()
            .strategy(Backoff::constant(Duration::from_millis(1)))
            .max_retry_after(Duration::from_secs(3))
            .no_deadline()
            .max_attempts(2)
            .clock(clock.clone())
            .build()
            .unwrap();
        let mut attempts = 0;
        let result = policy.call(|| {
            attempts += 1;
            if attempts == 1 {
                Err(HttpError::from_parts(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &headers(value),
                    now,
                ))
            } else {
                Ok(())
            }
        });
        assert!(result.is_ok());
        assert_eq!(clock.now(), Duration::from_secs(3), "{value:?}");
    }
}

#[test]
fn dates_are_formatted_within_the_years_a_fixdate_can_write() {
    use reflexio::http::format_http_date;
    // The last second a four-digit year can write round-trips.
    let last = UNIX_EPOCH + Duration::from_secs(253_402_300_799);
    assert_eq!(format_http_date(last), "Fri, 31 Dec 9999 23:59:59 GMT");
    assert_eq!(parse_http_date(&format_http_date(last)), Some(last));
    // Later times, however far, are written as that second, at once.
    for secs in [253_402_300_800, u64::from(u32::MAX) << 16, i64::MAX as u64] {
        let far = UNIX_EPOCH.checked_add(Duration::from_secs(secs));
        if let Some(far) = far {
            assert_eq!(format_http_date(far), "Fri, 31 Dec 9999 23:59:59 GMT");
        }
    }
}

#[test]
fn header_map_lookup() {
    let now = at(DATE_SECS);
    assert_eq!(retry_after(&HeaderMap::new(), now), None);
    assert_eq!(
        retry_after(&headers("3"), now),
        Some(Duration::from_secs(3))
    );
    // A value that is not visible ASCII is no hint.
    let mut odd = HeaderMap::new();
    odd.insert(RETRY_AFTER, HeaderValue::from_bytes(b"\xff5").unwrap());
    assert_eq!(retry_after(&odd, now), None);
}

#[test]
fn status_table_on_status_codes() {
    let table = [
        (StatusCode::UNAUTHORIZED, ErrorClass::Auth),
        (StatusCode::FORBIDDEN, ErrorClass::Permission),
        (StatusCode::BAD_REQUEST, ErrorClass::Permanent),
        (StatusCode::NOT_FOUND, ErrorClass::Permanent),
        (StatusCode::UNPROCESSABLE_ENTITY, ErrorClass::Permanent),
        (StatusCode::REQUEST_TIMEOUT, ErrorClass::Transient),
        (StatusCode::CONFLICT, ErrorClass::Concurrency),
        (StatusCode::TOO_MANY_REQUESTS, ErrorClass::RateLimit),
        (StatusCode::INTERNAL_SERVER_ERROR, ErrorClass::ServerError),
        (StatusCode::BAD_GATEWAY, ErrorClass::ServerError),
        (StatusCode::SERVICE_UNAVAILABLE, ErrorClass::ServerError),
        (StatusCode::GATEWAY_TIMEOUT, ErrorClass::ServerError),
        (StatusCode::OK, ErrorClass::Unknown),
        (StatusCode::MOVED_PERMANENTLY, ErrorClass::Unknown),
        (StatusCode::IM_A_TEAPOT, ErrorClass::Unknown),
    ];
    for (status, class) in table {
        assert_eq!(status_class(status), class, "{status}");
    }
}

#[test]
fn hints_ride_on_retryable_statuses_only() {
    let now = at(DATE_SECS);
    let c = classify_status(StatusCode::SERVICE_UNAVAILABLE, &headers("1"), now);
    assert_eq!(c.class, ErrorClass::ServerError);
    assert_eq!(c.retry_after, Some(Duration::from_secs(1)));

    let c = classify_status(
        StatusCode::TOO_MANY_REQUESTS,
        &headers("Sun, 06 Nov 1994 08:49:39 GMT"),
        now,
    );
    assert_eq!(c.class, ErrorClass::RateLimit);
    assert_eq!(c.retry_after, Some(Duration::from_secs(2)));

    // A 404 is never retried: its Retry-After is no hint.
    let c = classify_status(StatusCode::NOT_FOUND, &headers("1"), now);
    assert_eq!((c.class, c.retry_after), (ErrorClass::Permanent, None));

    let response = Response::builder()
        .status(503)
        .header(RETRY_AFTER, "4")
        .body(())
        .unwrap();
    let c = classify_response(&response, now);
    assert_eq!(c.retry_after, Some(Duration::from_secs(4)));
    let err = HttpError::from_response(&response, now);
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(4)));
}

#[test]
fn http_error_keeps_its_context_and_is_found_in_a_chain() {
    let now = at(DATE_SECS);
    let err = HttpError::from_parts(StatusCode::SERVICE_UNAVAILABLE, &headers("1"), now)
        .with_request(Method::POST, "http://127.0.0.1:1/orders");
    assert_eq!(err.method(), Some(&Method::POST));
    assert_eq!(err.url(), Some("http://127.0.0.1:1/orders"));
    assert_eq!(
        err.to_string(),
        "HTTP 503 Service Unavailable from POST http://127.0.0.1:1/orders (retry after 1s)"
    );
    let c = default_classifier(&err);
    assert_eq!(c.class, ErrorClass::ServerError);
    assert_eq!(c.retry_after, Some(Duration::from_secs(1)));

    // Wrapped in something the classifier does not know: still found.
    let wrapped = Wrapper(err.clone());
    let c = default_classifier(&wrapped);
    assert_eq!(c.class, ErrorClass::ServerError);
    assert_eq!(c.retry_after, Some(Duration::from_secs(1)));

    // A ClassifiedError in the chain still comes first.
    let explicit = ClassifiedError::transient(err);
    assert_eq!(default_classifier(&explicit).class, ErrorClass::Transient);
}

/// An error whose source is an [`HttpError`]; its name says nothing.
#[derive(Debug)]
struct Wrapper(HttpError);

impl std::fmt::Display for Wrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "loading orders: {}", self.0)
    }
}

impl std::error::Error for Wrapper {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A 503 with `Retry-After: 1` twice, then success: the policy sleeps at
/// least the hint each time, and hooks see the status in the error text.
#[test]
fn a_503_hint_reaches_the_engine_and_the_hooks() {
    let clock = ManualClock::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let policy = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::from_millis(10)))
        .clock(clock.clone())
        .hook(move |e: &Event<'_>| {
            log.lock()
                .unwrap()
                .push((e.kind, e.delay, e.error.map(|t| t.to_string())));
        })
        .build()
        .unwrap();
    let mut attempts = 0;
    let value = policy
        .call(|| {
            attempts += 1;
            if attempts <= 2 {
                Err(HttpError::from_parts_now(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &headers("1"),
                ))
            } else {
                Ok(attempts)
            }
        })
        .unwrap();
    assert_eq!(value, 3);
    assert_eq!(clock.now(), Duration::from_secs(2));
    let text = "HTTP 503 Service Unavailable (retry after 1s)".to_owned();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (
                EventKind::Retry,
                Some(Duration::from_secs(1)),
                Some(text.clone())
            ),
            (EventKind::Retry, Some(Duration::from_secs(1)), Some(text)),
            (EventKind::Success, None, None),
        ]
    );
}

/// A hint past the deadline stops the call at once, without sleeping.
#[test]
fn a_hint_past_the_deadline_stops_at_once() {
    let clock = ManualClock::new();
    let policy = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::from_millis(10)))
        .deadline(Duration::from_secs(5))
        .clock(clock.clone())
        .build()
        .unwrap();
    let err = policy
        .call(|| {
            Err::<(), _>(HttpError::from_parts_now(
                StatusCode::TOO_MANY_REQUESTS,
                &headers("30"),
            ))
        })
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::DeadlineExceeded);
    assert_eq!(err.attempts(), 1);
    assert_eq!(clock.now(), Duration::ZERO);
}
