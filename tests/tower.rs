//! The tower layer: a stack retrying a flaky inner service on a fake
//! sleeper, behaving exactly like `call_async_named`.
#![cfg(feature = "tower")]

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reflexio::integrations::tower::EveryResponseSucceeds;
use reflexio::{
    Backoff, Classification, ClassifiedError, ErrorClass, Event, ManualClock, RetryLayer,
    RetryPolicy, StopReason,
};
use tower::{service_fn, Layer, Service, ServiceBuilder, ServiceExt};

type Log = Arc<Mutex<Vec<String>>>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn record(log: &Log) -> impl Fn(&Event<'_>) + Send + Sync + 'static {
    let sink = Arc::clone(log);
    move |e: &Event<'_>| {
        sink.lock().unwrap().push(format!(
            "{} {} #{} {:?} {:?} {:?} {:?}",
            e.operation, e.kind, e.attempt, e.delay, e.class, e.error_type, e.elapsed
        ))
    }
}

/// A seeded policy with a deadline, on its own fake clock, recording events.
fn policy(clock: &ManualClock, log: &Log) -> RetryPolicy {
    RetryPolicy::builder()
        .strategy(Backoff::equal_jitter(ms(100), Duration::from_secs(5)))
        .max_attempts(5)
        .deadline(Duration::from_secs(20))
        .seed(42)
        .sleeper(clock.clone())
        .hook(record(log))
        .build()
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// What the flaky service answers to its `n`-th request (0-based): the
/// first `failures` fail with a transient error taking 30 ms of fake time.
fn answer(
    clock: &ManualClock,
    n: u32,
    failures: u32,
    request: &str,
) -> Result<String, ClassifiedError> {
    clock.advance(ms(30));
    if n < failures {
        Err(ClassifiedError::transient(format!("reset on {request}")))
    } else {
        Ok(format!("{request}: ok after {n}"))
    }
}

#[test]
fn a_stack_retries_a_flaky_service_exactly_like_call_async() {
    let rt = runtime();
    for failures in [0, 1, 3, 7] {
        let (layer_clock, direct_clock) = (ManualClock::new(), ManualClock::new());
        let (layer_log, direct_log) = (Log::default(), Log::default());

        // Through a tower stack.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicU32::new(0));
        let inner = {
            let (clock, seen, count) = (layer_clock.clone(), seen.clone(), count.clone());
            service_fn(move |request: String| {
                seen.lock().unwrap().push(request.clone());
                let n = count.fetch_add(1, Ordering::SeqCst);
                let reply = answer(&clock, n, failures, &request);
                async move { reply }
            })
        };
        let stack = ServiceBuilder::new()
            .layer(RetryLayer::new(policy(&layer_clock, &layer_log)).operation("lookup"))
            .service(inner);
        let through_layer = rt.block_on(stack.oneshot("user 7".to_owned()));

        // Through call_async_named, with the same service behaviour.
        let direct_policy = policy(&direct_clock, &direct_log);
        let mut n = 0;
        let direct = rt.block_on(direct_policy.call_async_named("lookup", || {
            let reply = answer(&direct_clock, n, failures, "user 7");
            n += 1;
            async move { reply }
        }));

        match (&through_layer, &direct) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => {
                // The layer hands back the service's own error, unchanged.
                assert_eq!(a.to_string(), b.error().to_string());
                assert_eq!(b.reason(), StopReason::MaxAttemptsExceeded);
            }
            other => panic!("outcomes differ: {other:?}"),
        }
        assert_eq!(*layer_log.lock().unwrap(), *direct_log.lock().unwrap());
        assert_eq!(layer_clock.slept(), direct_clock.slept());
        assert_eq!(layer_clock.now(), direct_clock.now());
        // Each attempt got its own clone of the same request.
        let attempts = failures.min(4) as usize + 1;
        assert_eq!(*seen.lock().unwrap(), vec!["user 7".to_owned(); attempts]);
        assert_eq!(layer_log.lock().unwrap().len(), attempts);
        assert_eq!(layer_clock.sleeps(), attempts as u64 - 1);
    }
}

/// A status and an optional Retry-After, as an HTTP-like response.
#[derive(Debug, Clone, PartialEq)]
struct Reply {
    status: u16,
    retry_after_secs: Option<u64>,
}

fn classify_reply(reply: &Reply) -> Option<Classification> {
    let class = reflexio::http_status_class(reply.status);
    if reply.status < 400 {
        return None;
    }
    let classification = Classification::new(class);
    Some(match reply.retry_after_secs {
        Some(secs) => classification.with_retry_after(Duration::from_secs(secs)),
        None => classification,
    })
}

fn scripted(
    replies: Vec<Reply>,
) -> impl Service<
    (),
    Response = Reply,
    Error = Infallible,
    Future = std::future::Ready<Result<Reply, Infallible>>,
> + Clone {
    let replies = Arc::new(Mutex::new(replies.into_iter()));
    service_fn(move |()| {
        let next = replies.lock().unwrap().next().expect("a scripted reply");
        std::future::ready(Ok::<_, Infallible>(next))
    })
}

#[test]
fn responses_classified_as_failures_are_retried_with_their_hint() {
    let rt = runtime();
    let clock = ManualClock::new();
    let log = Log::default();
    let layer = RetryLayer::new(policy(&clock, &log)).classify_responses(classify_reply);
    let unavailable = Reply {
        status: 503,
        retry_after_secs: Some(3),
    };
    let ok = Reply {
        status: 200,
        retry_after_secs: None,
    };
    let service = layer.layer(scripted(vec![unavailable.clone(), ok.clone()]));
    assert_eq!(rt.block_on(service.oneshot(())).unwrap(), ok);
    // The 3 s hint is a lower bound on the only sleep (equal jitter's first
    // draw is at most 200 ms).
    assert_eq!(clock.sleeps(), 1);
    assert_eq!(clock.slept(), Duration::from_secs(3));
    let log = log.lock().unwrap();
    assert!(
        log[0].starts_with(" retry #1 Some(3s) Some(ServerError) Some(\"tower::Reply\")"),
        "{log:?}"
    );
    assert!(log[1].starts_with(" success #2"), "{log:?}");
}

#[test]
fn the_last_response_comes_back_when_retrying_stops_on_one() {
    let rt = runtime();
    let clock = ManualClock::new();
    let log = Log::default();
    let layer = RetryLayer::new(policy(&clock, &log)).classify_responses(classify_reply);

    // A 404 is permanent: one attempt, and the caller gets the 404.
    let not_found = Reply {
        status: 404,
        retry_after_secs: None,
    };
    let service = layer.layer(scripted(vec![not_found.clone()]));
    assert_eq!(rt.block_on(service.oneshot(())).unwrap(), not_found);

    // A hint past the 20 s deadline ends the call at once, without sleeping.
    let far = Reply {
        status: 429,
        retry_after_secs: Some(30),
    };
    let service = layer.layer(scripted(vec![far.clone()]));
    assert_eq!(rt.block_on(service.oneshot(())).unwrap(), far);
    assert_eq!(clock.sleeps(), 0);

    // Five 503s: the attempt cap.
    let busy = Reply {
        status: 503,
        retry_after_secs: None,
    };
    let service = layer.layer(scripted(vec![busy.clone(); 5]));
    assert_eq!(rt.block_on(service.oneshot(())).unwrap(), busy);

    let kinds: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|line| !line.contains(" retry "))
        .map(|line| line.split(' ').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "permanent_fail",
            "deadline_exceeded",
            "max_attempts_exceeded"
        ]
    );
}

#[test]
fn layer_hooks_and_names_see_only_their_own_requests() {
    let rt = runtime();
    let clock = ManualClock::new();
    let (policy_log, layer_log) = (Log::default(), Log::default());
    let policy = policy(&clock, &policy_log);
    let layer = RetryLayer::new(policy.clone())
        .operation("users")
        .hook(record(&layer_log));
    let plain = RetryLayer::new(policy);

    let ok = || service_fn(|()| async { Ok::<_, ClassifiedError>(1) });
    rt.block_on(layer.layer(ok()).oneshot(())).unwrap();
    rt.block_on(plain.layer(ok()).oneshot(())).unwrap();

    let policy_log = policy_log.lock().unwrap();
    assert_eq!(policy_log.len(), 2);
    assert!(policy_log[0].starts_with("users success #1"));
    assert!(policy_log[1].starts_with(" success #1"));
    assert_eq!(*layer_log.lock().unwrap(), policy_log[..1]);
}

#[test]
fn an_auth_error_is_not_retried_and_comes_back_unchanged() {
    let rt = runtime();
    let clock = ManualClock::new();
    let log = Log::default();
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let inner = service_fn(move |()| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Err::<(), _>(ClassifiedError::new(ErrorClass::Auth, "token expired")) }
    });
    let layer = RetryLayer::new(policy(&clock, &log)).classify_responses(EveryResponseSucceeds);
    let err = rt.block_on(layer.layer(inner).oneshot(())).unwrap_err();
    assert_eq!(err.classification().class, ErrorClass::Auth);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(clock.sleeps(), 0);
}

#[test]
fn a_cloned_stack_serves_requests_concurrently() {
    let rt = runtime();
    let clock = ManualClock::new();
    let log = Log::default();
    let count = Arc::new(AtomicU32::new(0));
    let inner = {
        let count = count.clone();
        service_fn(move |n: u32| {
            // Every even-numbered arrival fails once.
            let arrival = count.fetch_add(1, Ordering::SeqCst);
            async move {
                if arrival % 2 == 0 {
                    Err(ClassifiedError::transient("busy"))
                } else {
                    Ok(n * 10)
                }
            }
        })
    };
    let stack = RetryLayer::new(policy(&clock, &log)).layer(inner);
    let replies = rt.block_on(async {
        let calls = (0..8).map(|n| stack.clone().oneshot(n));
        let mut replies = Vec::new();
        for call in calls {
            replies.push(call.await.unwrap());
        }
        replies
    });
    assert_eq!(replies, (0..8).map(|n| n * 10).collect::<Vec<_>>());
}

/// An axum router as the inner service, answering 503 with `Retry-After`
/// twice: the layer retries it through `HttpResponses`, honouring the hint.
/// The request is a path (`Clone`); each attempt builds its own
/// `http::Request` from it.
#[cfg(feature = "http")]
#[test]
fn an_axum_router_answering_503_with_retry_after_is_retried() {
    use axum::response::IntoResponse;
    use reflexio::tower::HttpResponses;

    let rt = runtime();
    let clock = ManualClock::new();
    let log = Log::default();
    let hits = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&hits);
    let app = axum::Router::new().route(
        "/stock",
        axum::routing::get(move || {
            let hit = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if hit < 2 {
                    let busy = http::StatusCode::SERVICE_UNAVAILABLE;
                    (busy, [("retry-after", "2")], "busy").into_response()
                } else {
                    "12 in stock".into_response()
                }
            }
        }),
    );
    let inner = app.map_request(|path: &'static str| {
        http::Request::get(path)
            .body(axum::body::Body::empty())
            .expect("a valid request")
    });
    let service = RetryLayer::new(policy(&clock, &log))
        .operation("stock")
        .classify_responses(HttpResponses)
        .layer(inner);

    let response = rt.block_on(service.oneshot("/stock")).unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    let body = rt
        .block_on(axum::body::to_bytes(response.into_body(), 1024))
        .unwrap();
    assert_eq!(&body[..], b"12 in stock");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    // Both sleeps are the 2 s hint (the strategy's draws are shorter).
    assert_eq!(clock.slept(), Duration::from_secs(4));
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3);
    assert!(
        log[0].starts_with("stock retry #1 Some(2s) Some(ServerError)"),
        "{log:?}"
    );
    assert!(log[2].starts_with("stock success #3"), "{log:?}");
}
