//! The default classifier's rules and their order, the code tables, and
//! closures as classifiers.

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

use reflexio::classify::type_name_class;
use reflexio::{
    default_classifier, http_status_class, io_kind_class, sqlstate_class, Classification,
    ClassifiedError, Classifier, DefaultClassifier, ErrorClass, HttpStatus,
};

// ---------------------------------------------------------------------------
// Error types for the tests

/// An error with an HTTP status.
#[derive(Debug)]
struct ApiError {
    status: Option<u16>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "api error {:?}", self.status)
    }
}

impl Error for ApiError {}

impl HttpStatus for ApiError {
    fn http_status(&self) -> Option<u16> {
        self.status
    }
}

/// An error wrapping another one as its source; its name says nothing.
#[derive(Debug)]
struct Wrapper(Box<dyn Error + Send + Sync>);

impl fmt::Display for Wrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wrapped: {}", self.0)
    }
}

impl Error for Wrapper {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.0)
    }
}

fn wrap(inner: impl Error + Send + Sync + 'static) -> Wrapper {
    Wrapper(Box::new(inner))
}

macro_rules! named_error {
    ($name:ident) => {
        #[derive(Debug)]
        struct $name;
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(stringify!($name))
            }
        }
        impl Error for $name {}
    };
}

named_error!(AuthFailure);
named_error!(UnauthorizedRequest);
named_error!(BadCredentials);
named_error!(ForbiddenError);
named_error!(PermissionDenied);
named_error!(RequestTimeout);
named_error!(ConnectionLost);
named_error!(Mystery);

fn class_of<E: Error + 'static>(error: &E) -> ErrorClass {
    default_classifier(error).class
}

fn with_status() -> DefaultClassifier {
    DefaultClassifier::new().with_http_status::<ApiError>()
}

// ---------------------------------------------------------------------------
// Rule 1: explicit classified errors

#[test]
fn classified_error_constructors_carry_their_class() {
    let cases = [
        (
            ClassifiedError::permanent("bad request"),
            ErrorClass::Permanent,
        ),
        (
            ClassifiedError::concurrency("conflict"),
            ErrorClass::Concurrency,
        ),
        (
            ClassifiedError::server_error("boom"),
            ErrorClass::ServerError,
        ),
        (ClassifiedError::transient("reset"), ErrorClass::Transient),
        (
            ClassifiedError::rate_limited(None, "slow"),
            ErrorClass::RateLimit,
        ),
        (
            ClassifiedError::new(ErrorClass::Auth, "who?"),
            ErrorClass::Auth,
        ),
    ];
    for (error, class) in cases {
        assert_eq!(default_classifier(&error), Classification::new(class));
        assert_eq!(error.classification().class, class);
    }
}

#[test]
fn classified_error_carries_a_retry_after_hint() {
    let error = ClassifiedError::rate_limited(Some(Duration::from_millis(1500)), "slow down");
    assert_eq!(
        default_classifier(&error),
        Classification::new(ErrorClass::RateLimit).with_retry_after(Duration::from_millis(1500))
    );
    // Found through a wrapper too, hint and all.
    assert_eq!(
        default_classifier(&wrap(error)).retry_after,
        Some(Duration::from_millis(1500))
    );
}

#[test]
fn classified_error_is_found_anywhere_in_the_source_chain() {
    let deep = wrap(wrap(wrap(ClassifiedError::concurrency("row changed"))));
    assert_eq!(class_of(&deep), ErrorClass::Concurrency);
}

#[test]
fn classified_error_beats_codes_and_names_wherever_it_is() {
    // An io error saying "transient" wrapped in a classified permanent error.
    let outer = ClassifiedError::permanent(io::Error::new(io::ErrorKind::TimedOut, "slow"));
    assert_eq!(class_of(&outer), ErrorClass::Permanent);

    // A classified error deeper in the chain than an HTTP status: the
    // classified error still wins, even though the status comes first.
    #[derive(Debug)]
    struct StatusOver {
        status: u16,
        source: ClassifiedError,
    }
    impl fmt::Display for StatusOver {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "status {}", self.status)
        }
    }
    impl Error for StatusOver {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.source)
        }
    }
    impl HttpStatus for StatusOver {
        fn http_status(&self) -> Option<u16> {
            Some(self.status)
        }
    }
    let classifier = DefaultClassifier::new().with_http_status::<StatusOver>();
    let error = StatusOver {
        status: 401,
        source: ClassifiedError::server_error("upstream"),
    };
    assert_eq!(classifier.classify(&error).class, ErrorClass::ServerError);
    // A classified error also beats a telling type name.
    #[derive(Debug)]
    struct ConnectionTimeoutError(ClassifiedError);
    impl fmt::Display for ConnectionTimeoutError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("timeout")
        }
    }
    impl Error for ConnectionTimeoutError {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }
    let named = ConnectionTimeoutError(ClassifiedError::permanent("bad"));
    assert_eq!(class_of(&named), ErrorClass::Permanent);
}

// ---------------------------------------------------------------------------
// Rule 2: codes

#[test]
fn http_status_is_used_only_for_registered_types() {
    let error = ApiError { status: Some(429) };
    assert_eq!(with_status().classify(&error).class, ErrorClass::RateLimit);
    // Not registered: the default classifier cannot see the status.
    assert_eq!(class_of(&error), ErrorClass::Unknown);
    assert_eq!(
        DefaultClassifier::new().classify(&error).class,
        ErrorClass::Unknown
    );
}

#[test]
fn http_status_is_found_in_the_source_chain() {
    let classifier = with_status();
    for (status, class) in [
        (401, ErrorClass::Auth),
        (403, ErrorClass::Permission),
        (400, ErrorClass::Permanent),
        (404, ErrorClass::Permanent),
        (422, ErrorClass::Permanent),
        (408, ErrorClass::Transient),
        (409, ErrorClass::Concurrency),
        (429, ErrorClass::RateLimit),
        (500, ErrorClass::ServerError),
        (503, ErrorClass::ServerError),
    ] {
        let error = wrap(wrap(ApiError {
            status: Some(status),
        }));
        assert_eq!(classifier.classify(&error).class, class, "{status}");
        assert_eq!(classifier.classify(&error).retry_after, None);
    }
}

#[test]
fn unknown_http_status_falls_through_to_later_rules() {
    let classifier = with_status();
    // 418 and a missing status map to nothing; an io error further down decides.
    for status in [Some(418), Some(302), None] {
        #[derive(Debug)]
        struct StatusThenIo {
            status: Option<u16>,
            io: io::Error,
        }
        impl fmt::Display for StatusThenIo {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("status then io")
            }
        }
        impl Error for StatusThenIo {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.io)
            }
        }
        impl HttpStatus for StatusThenIo {
            fn http_status(&self) -> Option<u16> {
                self.status
            }
        }
        let classifier = classifier.clone().with_http_status::<StatusThenIo>();
        let error = StatusThenIo {
            status,
            io: io::Error::new(io::ErrorKind::ConnectionReset, "reset"),
        };
        assert_eq!(
            classifier.classify(&error).class,
            ErrorClass::Transient,
            "{status:?}"
        );
    }
    // With nothing else to go on, an unmapped status is unknown.
    assert_eq!(
        classifier.classify(&ApiError { status: Some(418) }).class,
        ErrorClass::Unknown
    );
}

#[test]
fn io_error_kinds_map_to_classes() {
    use io::ErrorKind as K;
    let cases = [
        (K::TimedOut, ErrorClass::Transient),
        (K::ConnectionReset, ErrorClass::Transient),
        (K::ConnectionRefused, ErrorClass::Transient),
        (K::ConnectionAborted, ErrorClass::Transient),
        (K::NotConnected, ErrorClass::Transient),
        (K::BrokenPipe, ErrorClass::Transient),
        (K::Interrupted, ErrorClass::Transient),
        (K::WouldBlock, ErrorClass::Transient),
        (K::PermissionDenied, ErrorClass::Permission),
        (K::NotFound, ErrorClass::Permanent),
        (K::InvalidInput, ErrorClass::Permanent),
        (K::InvalidData, ErrorClass::Permanent),
        (K::Other, ErrorClass::Unknown),
        (K::UnexpectedEof, ErrorClass::Unknown),
        (K::AlreadyExists, ErrorClass::Unknown),
    ];
    for (kind, class) in cases {
        assert_eq!(io_kind_class(kind), class, "{kind:?}");
        let error = io::Error::new(kind, "io");
        assert_eq!(class_of(&error), class, "{kind:?}");
        // And from inside a chain.
        assert_eq!(
            class_of(&wrap(io::Error::new(kind, "io"))),
            class,
            "{kind:?}"
        );
    }
}

#[test]
fn first_code_in_the_chain_wins() {
    // A registered status above an io error: the status (outer) decides.
    #[derive(Debug)]
    struct Outer {
        io: io::Error,
    }
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.io)
        }
    }
    impl HttpStatus for Outer {
        fn http_status(&self) -> Option<u16> {
            Some(409)
        }
    }
    let classifier = DefaultClassifier::new().with_http_status::<Outer>();
    let error = Outer {
        io: io::Error::new(io::ErrorKind::PermissionDenied, "denied"),
    };
    assert_eq!(classifier.classify(&error).class, ErrorClass::Concurrency);
}

#[test]
fn codes_beat_type_name_heuristics() {
    // The outer type's name says "timeout" (transient), but the io error
    // in its chain says "not found" (permanent): codes come first.
    #[derive(Debug)]
    struct TimeoutWrapper(io::Error);
    impl fmt::Display for TimeoutWrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("timeout wrapper")
        }
    }
    impl Error for TimeoutWrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }
    let error = TimeoutWrapper(io::Error::new(io::ErrorKind::NotFound, "gone"));
    assert_eq!(class_of(&error), ErrorClass::Permanent);
    // An unmapped io kind leaves the name to decide.
    let error = TimeoutWrapper(io::Error::other("?"));
    assert_eq!(class_of(&error), ErrorClass::Transient);
}

// ---------------------------------------------------------------------------
// Rule 3: type-name heuristics, rule 4: unknown

#[test]
fn type_name_heuristics() {
    assert_eq!(class_of(&AuthFailure), ErrorClass::Auth);
    assert_eq!(class_of(&UnauthorizedRequest), ErrorClass::Auth);
    assert_eq!(class_of(&BadCredentials), ErrorClass::Auth);
    assert_eq!(class_of(&ForbiddenError), ErrorClass::Permission);
    assert_eq!(class_of(&PermissionDenied), ErrorClass::Permission);
    assert_eq!(class_of(&RequestTimeout), ErrorClass::Transient);
    assert_eq!(class_of(&ConnectionLost), ErrorClass::Transient);
    assert_eq!(class_of(&Mystery), ErrorClass::Unknown);
}

#[test]
fn type_name_heuristics_look_at_the_last_segment_without_generics() {
    assert_eq!(
        type_name_class("my_crate::auth::Mystery"),
        ErrorClass::Unknown
    );
    assert_eq!(
        type_name_class("my_crate::errors::AuthError"),
        ErrorClass::Auth
    );
    assert_eq!(
        type_name_class("my_crate::TimeoutError<my_crate::auth::Token>"),
        ErrorClass::Transient
    );
    assert_eq!(
        type_name_class("my_crate::Wrapper<my_crate::TimeoutError>"),
        ErrorClass::Unknown
    );
    assert_eq!(type_name_class("FORBIDDEN"), ErrorClass::Permission);
    // Auth words are tried before permission and transient words.
    assert_eq!(type_name_class("AuthConnectionTimeout"), ErrorClass::Auth);
    assert_eq!(type_name_class("PermissionTimeout"), ErrorClass::Permission);
}

#[test]
fn type_name_heuristics_apply_to_the_outer_error_only() {
    // A telling name inside the chain does not count; the outer name does.
    assert_eq!(class_of(&wrap(RequestTimeout)), ErrorClass::Unknown);
    assert_eq!(class_of(&wrap(AuthFailure)), ErrorClass::Unknown);
}

#[test]
fn everything_else_is_unknown() {
    assert_eq!(class_of(&Mystery), ErrorClass::Unknown);
    assert_eq!(class_of(&fmt::Error), ErrorClass::Unknown);
    assert_eq!(default_classifier(&Mystery).retry_after, None);
}

// ---------------------------------------------------------------------------
// Code tables

#[test]
fn http_status_table() {
    let table = [
        (401, ErrorClass::Auth),
        (403, ErrorClass::Permission),
        (400, ErrorClass::Permanent),
        (404, ErrorClass::Permanent),
        (422, ErrorClass::Permanent),
        (408, ErrorClass::Transient),
        (409, ErrorClass::Concurrency),
        (429, ErrorClass::RateLimit),
        (500, ErrorClass::ServerError),
        (502, ErrorClass::ServerError),
        (599, ErrorClass::ServerError),
    ];
    for (status, class) in table {
        assert_eq!(http_status_class(status), class, "{status}");
    }
    for status in [
        0,
        100,
        200,
        204,
        301,
        402,
        405,
        410,
        418,
        499,
        600,
        999,
        u16::MAX,
    ] {
        assert_eq!(http_status_class(status), ErrorClass::Unknown, "{status}");
    }
}

#[test]
fn sqlstate_table() {
    let table = [
        ("40001", ErrorClass::Concurrency), // serialization_failure
        ("40P01", ErrorClass::Concurrency), // deadlock_detected
        ("40p01", ErrorClass::Concurrency),
        ("08000", ErrorClass::Transient), // connection_exception
        ("08003", ErrorClass::Transient), // connection_does_not_exist
        ("08006", ErrorClass::Transient), // connection_failure
        ("08S01", ErrorClass::Transient),
        ("HYT00", ErrorClass::Transient),
        ("HYT01", ErrorClass::Transient),
        ("hyt00", ErrorClass::Transient),
        ("53300", ErrorClass::RateLimit),   // too_many_connections
        ("57P01", ErrorClass::ServerError), // admin_shutdown
        ("57p01", ErrorClass::ServerError),
        ("57P03", ErrorClass::ServerError), // cannot_connect_now
        ("55P03", ErrorClass::Concurrency), // lock_not_available
        ("28000", ErrorClass::Auth),        // invalid_authorization_specification
        ("28P01", ErrorClass::Auth),        // invalid_password
        ("42501", ErrorClass::Permission),  // insufficient_privilege
        ("42000", ErrorClass::Permanent),   // syntax_error_or_access_rule_violation
        ("42601", ErrorClass::Permanent),   // syntax_error
        ("42P01", ErrorClass::Permanent),   // undefined_table
        ("42703", ErrorClass::Permanent),   // undefined_column
        ("23000", ErrorClass::Permanent),   // integrity_constraint_violation
        ("23502", ErrorClass::Permanent),   // not_null_violation
        ("23503", ErrorClass::Permanent),   // foreign_key_violation
        ("23505", ErrorClass::Permanent),   // unique_violation
        ("23514", ErrorClass::Permanent),   // check_violation
        (" 40001 ", ErrorClass::Concurrency),
    ];
    for (code, class) in table {
        assert_eq!(sqlstate_class(code), class, "{code:?}");
    }
    for code in [
        "",
        "00000",
        "40002",
        "53000",
        "53200",
        "57P02",
        "57014",
        "08",
        "0800",
        "280000",
        "HYT02",
        "XX000",
        "4200!",
        "42\u{e9}0",
        "\u{1F600}",
    ] {
        assert_eq!(sqlstate_class(code), ErrorClass::Unknown, "{code:?}");
    }
}

/// A database error carrying a SQLSTATE, like a driver's.
#[derive(Debug)]
struct DbError {
    code: &'static str,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "database error {}", self.code)
    }
}

impl Error for DbError {}

impl reflexio::SqlState for DbError {
    fn sql_state(&self) -> Option<&str> {
        Some(self.code)
    }
}

#[test]
fn sql_state_types_are_consulted_once_registered() {
    let serialization = DbError { code: "40001" };
    // Unregistered: the type name says nothing.
    assert_eq!(
        default_classifier(&serialization).class,
        ErrorClass::Unknown
    );
    let rules = DefaultClassifier::new().with_sql_state::<DbError>();
    assert_eq!(
        rules.classify(&serialization).class,
        ErrorClass::Concurrency
    );
    // Anywhere in the chain.
    assert_eq!(
        rules.classify(&wrap(DbError { code: "23505" })).class,
        ErrorClass::Permanent
    );
    // An unknown code falls through to the later rules.
    assert_eq!(
        rules.classify(&DbError { code: "XX000" }).class,
        ErrorClass::Unknown
    );
}

#[test]
fn http_status_types_may_carry_a_hint() {
    #[derive(Debug)]
    struct Throttled(u16);
    impl fmt::Display for Throttled {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "status {}", self.0)
        }
    }
    impl Error for Throttled {}
    impl HttpStatus for Throttled {
        fn http_status(&self) -> Option<u16> {
            Some(self.0)
        }
        fn retry_after(&self) -> Option<Duration> {
            Some(Duration::from_secs(3))
        }
    }
    let rules = DefaultClassifier::new().with_http_status::<Throttled>();
    let c = rules.classify(&Throttled(503));
    assert_eq!(
        (c.class, c.retry_after),
        (ErrorClass::ServerError, Some(Duration::from_secs(3)))
    );
    // Never retried: no hint.
    let c = rules.classify(&Throttled(401));
    assert_eq!((c.class, c.retry_after), (ErrorClass::Auth, None));
}

#[test]
fn any_classified_error_may_carry_a_hint() {
    let hint = Duration::from_millis(1500);
    for err in [
        ClassifiedError::server_error("503").with_retry_after(hint),
        ClassifiedError::transient("reset").with_retry_after(hint),
        ClassifiedError::concurrency("conflict").with_retry_after(hint),
        ClassifiedError::rate_limited(None, "429").with_retry_after(hint),
    ] {
        assert_eq!(default_classifier(&err).retry_after, Some(hint), "{err}");
    }
}

// ---------------------------------------------------------------------------
// Closures and the trait

#[test]
fn closures_returning_a_class_are_classifiers() {
    let by_status = |e: &ApiError| match e.status {
        Some(s) => http_status_class(s),
        None => ErrorClass::Transient,
    };
    assert_eq!(
        by_status.classify(&ApiError { status: Some(503) }),
        Classification::new(ErrorClass::ServerError)
    );
    assert_eq!(
        by_status.classify(&ApiError { status: None }),
        Classification::new(ErrorClass::Transient)
    );
}

#[test]
fn closures_returning_a_classification_can_carry_a_hint() {
    let with_hint = |e: &ApiError| {
        Classification::new(http_status_class(e.status.unwrap_or(0)))
            .with_retry_after(Duration::from_secs(3))
    };
    let c = with_hint.classify(&ApiError { status: Some(429) });
    assert_eq!(c.class, ErrorClass::RateLimit);
    assert_eq!(c.retry_after, Some(Duration::from_secs(3)));
}

#[test]
fn closures_classify_errors_of_any_type_in_a_policy() {
    use reflexio::{ManualClock, RetryPolicy, StopReason};
    let clock = ManualClock::new();
    // A plain string error: the default classifier cannot handle it, a
    // closure can.
    let policy = RetryPolicy::builder()
        .strategy(reflexio::Backoff::constant(Duration::from_millis(1)))
        .classifier(|e: &&str| {
            if e.starts_with("retry") {
                ErrorClass::Transient
            } else {
                ErrorClass::Permanent
            }
        })
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut calls = 0;
    let err = policy
        .call(|| {
            calls += 1;
            Err::<(), _>(if calls < 3 { "retry me" } else { "give up" })
        })
        .unwrap_err();
    assert_eq!(err.reason(), StopReason::Permanent);
    assert_eq!(err.attempts(), 3);
    assert_eq!(*err.error(), "give up");
    assert_eq!(clock.sleeps(), 2);
}

#[test]
fn policy_with_classifier_keeps_the_rest() {
    use reflexio::{ManualClock, RetryPolicy};
    let clock = ManualClock::new();
    let policy = RetryPolicy::builder()
        .strategy(reflexio::Backoff::constant(Duration::from_millis(1)))
        .max_attempts(3)
        .clock(clock.clone())
        .build()
        .unwrap();
    let always_transient = policy.with_classifier(|_: &Mystery| ErrorClass::Transient);
    assert_eq!(always_transient.envelope(), policy.envelope());
    let err = always_transient.call(|| Err::<(), _>(Mystery)).unwrap_err();
    assert_eq!(err.attempts(), 3);
    assert_eq!(clock.sleeps(), 2);
}

#[test]
fn error_class_names_are_stable_snake_case() {
    let names: Vec<_> = ErrorClass::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "auth",
            "permission",
            "permanent",
            "concurrency",
            "rate_limit",
            "server_error",
            "transient",
            "unknown"
        ]
    );
    for class in ErrorClass::ALL {
        assert_eq!(class.name().parse::<ErrorClass>(), Ok(class));
    }
    let err = "RateLimit".parse::<ErrorClass>().unwrap_err();
    assert!(err.to_string().contains("allowed: auth"), "{err}");
}

/// Boxing an error is how most applications carry it; it should not change
/// its class. std's `Box<T>` forwards `source()` to `T`'s own source, so
/// the boxed value itself never appears in the chain the classifier walks.
#[test]
fn boxed_errors_keep_their_class() {
    let boxed = Box::new(ClassifiedError::permanent("bad request"));
    assert_eq!(class_of(&boxed), ErrorClass::Permanent);
    let boxed = Box::new(io::Error::new(io::ErrorKind::PermissionDenied, "denied"));
    assert_eq!(class_of(&boxed), ErrorClass::Permission);
}
