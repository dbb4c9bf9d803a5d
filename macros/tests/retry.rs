//! `#[retry]` on sync and async functions, free functions and methods: the
//! body runs once per attempt with fresh arguments, through the policy's own
//! drivers (same events as `call_named`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use reflexio::{Backoff, ClassifiedError, ErrorClass, Event, ManualClock, RetryPolicy};

static CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);
static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A policy on a fake clock that records every event (tests in this file
/// filter the log by operation name, so they may run in parallel).
static POLICY: LazyLock<RetryPolicy> = LazyLock::new(|| {
    RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::from_millis(50)))
        .max_attempts(4)
        .clock(CLOCK.clone())
        .sleeper(CLOCK.clone())
        .hook(|e: &Event<'_>| {
            EVENTS.lock().unwrap().push(format!(
                "{} {} #{} {:?}",
                e.operation, e.kind, e.attempt, e.class
            ))
        })
        .build()
        .unwrap()
});

fn events_of(operation: &str) -> Vec<String> {
    let prefix = format!("{operation} ");
    let log = EVENTS.lock().unwrap();
    log.iter()
        .filter(|line| line.starts_with(&prefix))
        .cloned()
        .collect()
}

/// Counts its clones: each attempt must get its own.
#[derive(Debug)]
struct Request {
    id: u32,
    clones: Arc<AtomicU32>,
}

impl Clone for Request {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Request {
            id: self.id,
            clones: Arc::clone(&self.clones),
        }
    }
}

#[reflexio::retry(policy = POLICY, operation = "fetch_user")]
fn fetch_user(request: Request, failures: &AtomicU32) -> Result<String, ClassifiedError> {
    if failures.fetch_sub(1, Ordering::SeqCst) > 0 {
        // `?` and early `return` both end just this attempt.
        Err(ClassifiedError::transient("connection reset"))?;
    }
    let id = request.id; // moves out of this attempt's own copy
    drop(request);
    if id == 0 {
        return Err(ClassifiedError::permanent("no user 0"));
    }
    Ok(format!("user {id}"))
}

#[test]
fn a_sync_function_retries_with_fresh_arguments() {
    let clones = Arc::new(AtomicU32::new(0));
    let request = Request {
        id: 7,
        clones: Arc::clone(&clones),
    };
    let failures = AtomicU32::new(2);
    assert_eq!(fetch_user(request, &failures).unwrap(), "user 7");
    assert_eq!(clones.load(Ordering::SeqCst), 3);

    // The caller's own error comes back unchanged, after one attempt.
    let zero = Request {
        id: 0,
        clones: Arc::clone(&clones),
    };
    let err = fetch_user(zero, &AtomicU32::new(0)).unwrap_err();
    assert_eq!(err.classification().class, ErrorClass::Permanent);
    assert_eq!(
        events_of("fetch_user"),
        [
            "fetch_user retry #1 Some(Transient)",
            "fetch_user retry #2 Some(Transient)",
            "fetch_user success #3 None",
            "fetch_user permanent_fail #1 Some(Permanent)",
        ]
    );
}

#[reflexio::retry(policy = POLICY)]
async fn load(key: String, failures: Arc<AtomicU32>) -> Result<usize, ClassifiedError> {
    if failures.fetch_sub(1, Ordering::SeqCst) > 0 {
        Err(ClassifiedError::server_error("503"))?;
    }
    Ok(key.len())
}

#[test]
fn an_async_function_is_named_after_itself_by_default() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let n = rt
        .block_on(load("abc".to_owned(), Arc::new(AtomicU32::new(1))))
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(
        events_of("load"),
        ["load retry #1 Some(ServerError)", "load success #2 None"]
    );
}

struct Inventory {
    policy: RetryPolicy,
    stock: Mutex<Vec<u32>>,
    attempts: AtomicU32,
}

impl Inventory {
    #[reflexio::retry(policy = self.policy, operation = "reserve")]
    async fn reserve(&self, item: u32) -> Result<u32, ClassifiedError> {
        if self.attempts.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(ClassifiedError::concurrency("version conflict"));
        }
        self.stock.lock().unwrap().push(item);
        Ok(item)
    }

    #[reflexio::retry(policy = POLICY, operation = "restock")]
    fn restock(
        &mut self,
        (item, count): (u32, usize),
        log: &mut Vec<u32>,
    ) -> Result<usize, std::io::Error> {
        log.push(item);
        if log.len() < 2 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "slow disk",
            ));
        }
        let stock = self.stock.get_mut().unwrap();
        stock.extend(std::iter::repeat_n(item, count));
        Ok(stock.len())
    }
}

#[test]
fn methods_take_self_by_reference() {
    let mut inventory = Inventory {
        policy: RetryPolicy::builder()
            .strategy(Backoff::constant(Duration::ZERO))
            .sleeper(ManualClock::new())
            .build()
            .unwrap(),
        stock: Mutex::new(Vec::new()),
        attempts: AtomicU32::new(0),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(inventory.reserve(5)).unwrap(), 5);
    assert_eq!(inventory.attempts.load(Ordering::SeqCst), 2);

    let mut log = Vec::new();
    assert_eq!(inventory.restock((9, 2), &mut log).unwrap(), 3);
    assert_eq!(log, [9, 9]);
    assert_eq!(*inventory.stock.lock().unwrap(), [5, 9, 9]);
    assert_eq!(
        events_of("restock"),
        [
            "restock retry #1 Some(Transient)",
            "restock success #2 None"
        ]
    );
}

static PARSES: AtomicU32 = AtomicU32::new(0);

#[reflexio::retry]
fn with_the_default_policy(value: &str) -> Result<u32, std::num::ParseIntError> {
    PARSES.fetch_add(1, Ordering::SeqCst);
    value.parse()
}

#[test]
fn the_default_policy_does_not_retry_what_it_cannot_classify_twice() {
    assert_eq!(with_the_default_policy("12").unwrap(), 12);
    assert_eq!(PARSES.swap(0, Ordering::SeqCst), 1);
    // ParseIntError is unknown to the default classifier: the default
    // policy's cap on unknown errors (2 attempts) stops the call.
    let max_unknown = reflexio::RetryPolicy::default()
        .envelope()
        .max_unknown_attempts;
    let max_unknown = max_unknown.expect("the default policy caps unknown errors");
    assert_eq!(max_unknown, 2);
    let err = with_the_default_policy("x").unwrap_err();
    assert_eq!(*err.kind(), std::num::IntErrorKind::InvalidDigit);
    assert_eq!(PARSES.load(Ordering::SeqCst), max_unknown);
}

/// A counter whose policy is one of its own fields.
struct Counter {
    policy: RetryPolicy,
    count: u32,
}

impl Counter {
    fn bump(&mut self) -> u32 {
        self.count += 1;
        self.count
    }

    #[reflexio::retry(policy = self.policy, operation = "tick")]
    fn tick(&mut self) -> Result<u32, ClassifiedError> {
        // The whole of `self`, mutably, while the policy came from it.
        if self.bump() < 3 {
            return Err(ClassifiedError::transient("not yet"));
        }
        Ok(self.count)
    }
}

#[test]
fn a_mut_self_method_may_read_its_policy_from_self() {
    let mut counter = Counter {
        policy: POLICY.clone(),
        count: 0,
    };
    assert_eq!(counter.tick().unwrap(), 3);
    // The policy's hooks are the field's: the events were recorded.
    assert_eq!(
        events_of("tick"),
        [
            "tick retry #1 Some(Transient)",
            "tick retry #2 Some(Transient)",
            "tick success #3 None"
        ]
    );
}

// Receivers written out with their type, as some code bases do.
#[allow(clippy::needless_arbitrary_self_type)]
impl Counter {
    #[reflexio::retry(policy = self.policy, operation = "tock")]
    fn tock(self: &mut Self) -> Result<u32, ClassifiedError> {
        if self.bump() < 2 {
            return Err(ClassifiedError::transient("not yet"));
        }
        Ok(self.count)
    }

    #[reflexio::retry(policy = POLICY, operation = "peek")]
    async fn peek(self: &Self) -> Result<u32, ClassifiedError> {
        Ok(self.count)
    }
}

#[test]
fn a_receiver_may_be_written_with_its_type() {
    let mut counter = Counter {
        policy: POLICY.clone(),
        count: 0,
    };
    assert_eq!(counter.tock().unwrap(), 2);
    assert_eq!(
        events_of("tock"),
        ["tock retry #1 Some(Transient)", "tock success #2 None"]
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(counter.peek()).unwrap(), 2);
}

#[reflexio::retry(policy = POLICY)]
fn r#type(code: u32) -> Result<u32, ClassifiedError> {
    Ok(code)
}

#[test]
fn a_raw_identifier_names_its_operation_without_its_prefix() {
    assert_eq!(r#type(4).unwrap(), 4);
    assert_eq!(events_of("type"), ["type success #1 None"]);
}
