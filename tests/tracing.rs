//! The `tracing` feature: every event a hook sees is also a tracing event,
//! with the same fields.
#![cfg(feature = "tracing")]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reflexio::{Backoff, ClassifiedError, ManualClock, RetryPolicy};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One tracing event: its level, target and fields as text.
#[derive(Debug, Clone, PartialEq)]
struct Traced {
    level: Level,
    target: String,
    fields: BTreeMap<String, String>,
}

/// A subscriber that records every event and ignores spans.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Traced>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Traced {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

// Keep this the only test in this binary: tracing caches, per process,
// whether a call site is of interest, and a test running reflexio without
// a subscriber first could make it skip these events.
#[test]
fn every_event_is_also_a_tracing_event_with_the_same_fields() {
    let recorder = Recorder::default();
    let hooked = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&hooked);
    let clock = ManualClock::new();
    let policy = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::from_millis(250)))
        .clock(clock.clone())
        .hook(move |e: &reflexio::Event<'_>| sink.lock().unwrap().push(e.kind.name()))
        .build()
        .unwrap();

    tracing::subscriber::with_default(recorder.clone(), || {
        let mut failures_left = 1;
        let value = policy.call_named("fetch_user", || {
            if failures_left > 0 {
                failures_left -= 1;
                return Err(ClassifiedError::transient("reset"));
            }
            Ok(42)
        });
        assert_eq!(value.unwrap(), 42);
        let err = policy
            .call_named("save_user", || {
                Err::<(), _>(ClassifiedError::permanent("400"))
            })
            .unwrap_err();
        assert_eq!(err.attempts(), 1);
    });

    let traced = recorder.0.lock().unwrap().clone();
    let kinds: Vec<&str> = traced.iter().map(|t| t.fields["kind"].as_str()).collect();
    assert_eq!(kinds, *hooked.lock().unwrap());
    assert_eq!(kinds, ["retry", "success", "permanent_fail"]);
    assert!(traced.iter().all(|t| t.target == "reflexio"));

    let retry = &traced[0];
    assert_eq!(retry.level, Level::DEBUG);
    assert_eq!(retry.fields["operation"], "fetch_user");
    assert_eq!(retry.fields["attempt"], "1");
    assert_eq!(retry.fields["class"], "transient");
    assert_eq!(retry.fields["delay_ms"], "250.0");
    assert_eq!(retry.fields["elapsed_ms"], "0.0");
    assert!(retry.fields["error_type"].contains("ClassifiedError"));
    assert_eq!(retry.fields["message"], "retry");

    let success = &traced[1];
    assert_eq!(success.level, Level::TRACE);
    assert_eq!(success.fields["attempt"], "2");
    assert_eq!(success.fields["elapsed_ms"], "250.0");

    let failed = &traced[2];
    assert_eq!(failed.level, Level::WARN);
    assert_eq!(failed.fields["operation"], "save_user");
    assert_eq!(failed.fields["class"], "permanent");
}
