//! Hooks can say what failed: `Event::error` shows the error's text when
//! the classifier can, borrowed, and is `None` on success.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reflexio::classify::Displayed;
use reflexio::{
    Backoff, ClassifiedError, ErrorClass, ErrorText, Event, EventKind, ManualClock, RetryPolicy,
};

type Log = Arc<Mutex<Vec<(EventKind, Option<String>)>>>;

fn recording() -> (Log, impl Fn(&Event<'_>) + Send + Sync + 'static) {
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    let hook = move |e: &Event<'_>| {
        sink.lock()
            .unwrap()
            .push((e.kind, e.error.map(|t| t.to_string())));
    };
    (log, hook)
}

fn builder() -> reflexio::RetryPolicyBuilder {
    RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::from_millis(5)))
        .clock(ManualClock::new())
        .max_attempts(3)
}

#[test]
fn the_default_classifier_shows_the_display_text() {
    let (log, hook) = recording();
    let policy = builder().hook(hook).build().unwrap();
    let mut n = 0;
    policy
        .call(|| {
            n += 1;
            if n == 1 {
                Err(ClassifiedError::server_error("HTTP 503"))
            } else {
                Ok(())
            }
        })
        .unwrap();
    let _ = policy.call(|| Err::<(), _>(std::io::Error::other("disk on fire")));
    assert_eq!(
        *log.lock().unwrap(),
        [
            (
                EventKind::Retry,
                Some("server_error error: HTTP 503".to_owned())
            ),
            (EventKind::Success, None),
            (EventKind::Retry, Some("disk on fire".to_owned())),
            (
                EventKind::MaxUnknownAttemptsExceeded,
                Some("disk on fire".to_owned())
            ),
        ]
    );
}

#[test]
fn closures_show_no_text_unless_displayed() {
    #[derive(Debug)]
    struct Status(u16);
    impl std::fmt::Display for Status {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "status {}", self.0)
        }
    }

    let (log, hook) = recording();
    let plain = builder()
        .hook(hook)
        .classifier(|_: &Status| ErrorClass::Permanent)
        .build()
        .unwrap();
    let _ = plain.call(|| Err::<(), _>(Status(404)));
    let shown = plain.with_classifier(Displayed(|_: &Status| ErrorClass::Permanent));
    let _ = shown.call(|| Err::<(), _>(Status(404)));
    assert_eq!(
        *log.lock().unwrap(),
        [
            (EventKind::PermanentFail, None),
            (EventKind::PermanentFail, Some("status 404".to_owned())),
        ]
    );
}

#[test]
fn error_text_formats_compares_and_debugs_as_its_text() {
    let a = std::io::Error::other("reset");
    let b = "reset";
    let (ta, tb) = (ErrorText::new(&a), ErrorText::new(&b));
    assert_eq!(ta, tb);
    assert_eq!(format!("{ta}"), "reset");
    assert_eq!(format!("{ta:?}"), "\"reset\"");
    assert_ne!(ta, ErrorText::new(&"other"));
}

#[test]
fn the_default_classifier_shows_the_source_chain_once() {
    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("loading orders")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    let (log, hook) = recording();
    let policy = builder().hook(hook).build().unwrap();
    let _ = policy.call(|| {
        Err::<(), _>(Outer(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        )))
    });
    // ClassifiedError shows its source in its own text: not repeated.
    let _ = policy.call(|| Err::<(), _>(ClassifiedError::permanent("bad id")));
    assert_eq!(
        *log.lock().unwrap(),
        [
            (
                EventKind::PermanentFail,
                Some("loading orders: no such file".to_owned())
            ),
            (
                EventKind::PermanentFail,
                Some("permanent error: bad id".to_owned())
            ),
        ]
    );
}
