//! The `metrics` feature: `MetricsHook` records calls, retries and delays
//! with the documented names and labels.
#![cfg(feature = "metrics")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use reflexio::metrics::{MetricsHook, CALLS_TOTAL, RETRIES_TOTAL, RETRY_DELAY_SECONDS};
use reflexio::{Backoff, ClassifiedError, ErrorClass, ManualClock, RetryPolicy};

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

/// A recorder keeping every counter and histogram by its name and sorted
/// labels, e.g. `reflexio_calls_total{operation=a,outcome=success}`.
#[derive(Default)]
struct TestRecorder {
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<BTreeMap<String, Arc<Samples>>>,
    described: Mutex<Vec<(String, Option<Unit>)>>,
}

fn render(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl TestRecorder {
    fn counter(&self, key: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .get(key)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn samples(&self, key: &str) -> Vec<f64> {
        self.histograms
            .lock()
            .unwrap()
            .get(key)
            .map_or_else(Vec::new, |h| h.0.lock().unwrap().clone())
    }

    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.counters.lock().unwrap().keys().cloned().collect();
        keys.extend(self.histograms.lock().unwrap().keys().cloned());
        keys
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.described
            .lock()
            .unwrap()
            .push((key.as_str().to_owned(), unit));
    }
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.described
            .lock()
            .unwrap()
            .push((key.as_str().to_owned(), unit));
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let c = Arc::clone(
            self.counters
                .lock()
                .unwrap()
                .entry(render(key))
                .or_default(),
        );
        Counter::from_arc(c)
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let h = Arc::clone(
            self.histograms
                .lock()
                .unwrap()
                .entry(render(key))
                .or_default(),
        );
        Histogram::from_arc(h)
    }
}

#[test]
fn calls_retries_and_delays_are_recorded_with_their_labels() {
    let recorder = TestRecorder::default();
    let policy = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::from_millis(250)))
        .class_strategy(
            ErrorClass::Concurrency,
            Backoff::constant(Duration::from_millis(20)),
        )
        .max_attempts(3)
        .clock(ManualClock::new())
        .hook(MetricsHook::new())
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        MetricsHook::describe();
        let orders = policy.bind("load_orders");
        // success after one transient and one concurrency failure
        let mut n = 0;
        orders
            .call(|| {
                n += 1;
                match n {
                    1 => Err(ClassifiedError::transient("reset")),
                    2 => Err(ClassifiedError::concurrency("conflict")),
                    _ => Ok(()),
                }
            })
            .unwrap();
        // a permanent failure
        let _ = orders.call(|| Err::<(), _>(ClassifiedError::permanent("bad id")));
        // two server errors, then the attempt cap
        let _ = policy.call_named("ping", || {
            Err::<(), _>(ClassifiedError::server_error("503"))
        });
    });

    let calls = |labels: &str| recorder.counter(&format!("{CALLS_TOTAL}{{{labels}}}"));
    let retries = |labels: &str| recorder.counter(&format!("{RETRIES_TOTAL}{{{labels}}}"));
    let delays = |labels: &str| recorder.samples(&format!("{RETRY_DELAY_SECONDS}{{{labels}}}"));
    assert_eq!(calls("operation=load_orders,outcome=success"), 1);
    assert_eq!(calls("operation=load_orders,outcome=permanent_fail"), 1);
    assert_eq!(calls("operation=ping,outcome=max_attempts_exceeded"), 1);
    assert_eq!(retries("class=transient,operation=load_orders"), 1);
    assert_eq!(retries("class=concurrency,operation=load_orders"), 1);
    assert_eq!(retries("class=server_error,operation=ping"), 2);
    assert_eq!(delays("class=transient,operation=load_orders"), [0.25]);
    assert_eq!(delays("class=concurrency,operation=load_orders"), [0.02]);
    assert_eq!(delays("class=server_error,operation=ping"), [0.25, 0.25]);
    // Nothing else was recorded.
    assert_eq!(recorder.keys().len(), 9, "{:?}", recorder.keys());
    assert_eq!(
        *recorder.described.lock().unwrap(),
        [
            (CALLS_TOTAL.to_owned(), Some(Unit::Count)),
            (RETRIES_TOTAL.to_owned(), Some(Unit::Count)),
            (RETRY_DELAY_SECONDS.to_owned(), Some(Unit::Seconds)),
        ]
    );
}
