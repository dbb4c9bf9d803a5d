//! The `reqwest` and `reqwest-middleware` features against an in-process
//! axum service on 127.0.0.1 (an ephemeral port): how `reqwest::Error`s
//! classify, responses turned into errors, and the middleware.
#![cfg(all(feature = "reqwest", feature = "reqwest-middleware"))]

#[path = "../examples/support/flaky.rs"]
mod flaky;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flaky::{FlakyServer, Step};
use reflexio::reqwest::{check, classify};
use reflexio::reqwest_middleware::RetryMiddleware;
use reflexio::{
    default_classifier, Backoff, ErrorClass, Event, EventKind, ManualClock, RetryPolicy,
};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        // a fresh connection per request, so the service can drop one
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[tokio::test]
async fn connect_errors_are_transient() {
    // A port nobody listens on: bind, learn the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = client()
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(classify(&err).class, ErrorClass::Transient);
    assert_eq!(default_classifier(&err).class, ErrorClass::Transient);
}

#[tokio::test]
async fn timeouts_are_transient() {
    let server = FlakyServer::start(vec![Step::Slow(Duration::from_secs(2))])
        .await
        .unwrap();
    let err = client()
        .get(server.url("/"))
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(classify(&err).class, ErrorClass::Transient);
}

#[tokio::test]
async fn dropped_connections_are_transient() {
    let server = FlakyServer::start(vec![Step::DropConnection])
        .await
        .unwrap();
    let err = client().get(server.url("/")).send().await.unwrap_err();
    assert_eq!(classify(&err).class, ErrorClass::Transient, "{err:?}");
    let wrapped = reflexio::reqwest::Error::from(err);
    assert_eq!(default_classifier(&wrapped).class, ErrorClass::Transient);
    assert_eq!(server.seen(), 1);
}

#[tokio::test]
async fn a_body_cut_short_is_transient() {
    // reqwest reports every failure to read a body as a decode error; one
    // whose cause is the connection, not the bytes, is worth retrying.
    let server = FlakyServer::start(vec![Step::CutShort("{\"id\": 7, \"na")])
        .await
        .unwrap();
    let response = client().get(server.url("/")).send().await.unwrap();
    let err = response.text().await.unwrap_err();
    assert_eq!(classify(&err).class, ErrorClass::Transient, "{err:?}");
    let wrapped = reflexio::reqwest::Error::from(err);
    assert_eq!(default_classifier(&wrapped).class, ErrorClass::Transient);
}

#[tokio::test]
async fn a_body_cut_short_is_read_again() {
    let server = FlakyServer::start(vec![Step::CutShort("par"), Step::Ok("whole")])
        .await
        .unwrap();
    let policy = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::ZERO))
        .sleeper(ManualClock::new())
        .build()
        .unwrap();
    let client = client();
    let body = policy
        .call_async(|| async {
            let response = check(client.get(server.url("/")).send().await?)?;
            Ok::<_, reflexio::reqwest::Error>(response.text().await?)
        })
        .await
        .unwrap();
    assert_eq!(body, "whole");
    assert_eq!(server.seen(), 2);
}

#[tokio::test]
async fn a_body_that_does_not_decompress_is_permanent() {
    // The decoder's own I/O error, not the transport's: the same bytes
    // come back on every retry.
    let server = FlakyServer::start(vec![Step::CorruptGzip]).await.unwrap();
    let response = client().get(server.url("/")).send().await.unwrap();
    let err = response.text().await.unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    assert_eq!(classify(&err).class, ErrorClass::Permanent, "{err:?}");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_permanent() {
    // A decode error of the bytes themselves: the same body fails again.
    let server = FlakyServer::start(vec![Step::Ok("not json")])
        .await
        .unwrap();
    let response = client().get(server.url("/")).send().await.unwrap();
    let err = response.json::<Vec<u32>>().await.unwrap_err();
    assert!(err.is_decode(), "{err:?}");
    assert_eq!(classify(&err).class, ErrorClass::Permanent, "{err:?}");
}

#[tokio::test]
async fn status_errors_go_through_the_http_table() {
    let server = FlakyServer::start(vec![
        Step::Status(503, Some("1")),
        Step::Status(404, None),
        Step::Status(429, None),
    ])
    .await
    .unwrap();
    for class in [
        ErrorClass::ServerError,
        ErrorClass::Permanent,
        ErrorClass::RateLimit,
    ] {
        let err = client()
            .get(server.url("/"))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap_err();
        assert_eq!(classify(&err).class, class);
        // error_for_status keeps no headers: no hint.
        assert_eq!(classify(&err).retry_after, None);
    }
}

#[tokio::test]
async fn builder_errors_are_permanent() {
    let err = client().get("not a url").send().await.unwrap_err();
    assert!(err.is_builder(), "{err:?}");
    assert_eq!(classify(&err).class, ErrorClass::Permanent);
}

#[tokio::test]
async fn check_keeps_status_hint_and_url() {
    let server = FlakyServer::start(vec![Step::Status(503, Some("1")), Step::RateLimitedFor(3)])
        .await
        .unwrap();
    let url = server.url("/users/7");
    let err = check(client().get(&url).send().await.unwrap()).unwrap_err();
    assert_eq!(err.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(err.url(), Some(url.as_str()));
    let c = default_classifier(&reflexio::reqwest::Error::from(err));
    assert_eq!(c.class, ErrorClass::ServerError);
    assert_eq!(c.retry_after, Some(Duration::from_secs(1)));

    // An HTTP-date three seconds ahead (rounded up to the whole second).
    let err = check(client().get(&url).send().await.unwrap()).unwrap_err();
    let hint = err.retry_after().unwrap();
    assert!(
        hint > Duration::from_secs(2) && hint <= Duration::from_secs(4),
        "{hint:?}"
    );

    let ok = check(client().get(&url).send().await.unwrap()).unwrap();
    assert_eq!(ok.text().await.unwrap(), "ok");
}

type Log = Arc<Mutex<Vec<(EventKind, Option<Duration>, Option<String>)>>>;

fn middleware_client(max_attempts: u32) -> (reqwest_middleware::ClientWithMiddleware, Log) {
    let log: Log = Arc::default();
    let sink = Arc::clone(&log);
    let policy = RetryPolicy::builder()
        .strategy(Backoff::constant(Duration::from_millis(10)))
        .max_attempts(max_attempts)
        .sleeper(ManualClock::new()) // hints are honoured on a fake clock: no waiting
        .hook(move |e: &Event<'_>| {
            sink.lock()
                .unwrap()
                .push((e.kind, e.delay, e.error.map(|t| t.to_string())));
        })
        .build()
        .unwrap();
    let client = reqwest_middleware::ClientBuilder::new(client())
        .with(RetryMiddleware::new(policy).operation("users"))
        .build();
    (client, log)
}

#[tokio::test]
async fn the_middleware_retries_statuses_and_dropped_connections() {
    let server = FlakyServer::start(vec![
        Step::Status(503, Some("1")),
        Step::DropConnection,
        Step::Status(429, Some("2")),
    ])
    .await
    .unwrap();
    let (client, log) = middleware_client(6);
    let response = client.get(server.url("/users/7")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.seen(), 4);
    let log = log.lock().unwrap();
    let kinds: Vec<_> = log.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Retry, Some(Duration::from_secs(1))),
            (EventKind::Retry, Some(Duration::from_millis(10))),
            (EventKind::Retry, Some(Duration::from_secs(2))),
            (EventKind::Success, None),
        ]
    );
    let first = log[0].2.as_deref().unwrap();
    assert!(
        first.starts_with("HTTP 503 Service Unavailable from GET http://"),
        "{first}"
    );
}

#[tokio::test]
async fn the_middleware_returns_the_last_response_when_it_gives_up() {
    let server = FlakyServer::start(vec![
        Step::Status(503, None),
        Step::Status(503, None),
        Step::Status(503, None),
    ])
    .await
    .unwrap();
    let (client, log) = middleware_client(2);
    let response = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(server.seen(), 2);
    let kinds: Vec<_> = log.lock().unwrap().iter().map(|e| e.0).collect();
    assert_eq!(kinds, [EventKind::Retry, EventKind::MaxAttemptsExceeded]);
}

#[tokio::test]
async fn the_middleware_returns_a_permanent_status_at_once_and_reports_it() {
    let server = FlakyServer::start(vec![Step::Status(404, Some("1"))])
        .await
        .unwrap();
    let (client, log) = middleware_client(6);
    let response = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(server.seen(), 1);
    let kinds: Vec<_> = log.lock().unwrap().iter().map(|e| e.0).collect();
    assert_eq!(kinds, [EventKind::PermanentFail]);
}

#[tokio::test]
async fn the_middleware_hands_back_a_304_at_once_as_a_success() {
    // A conditional GET answered from the cache: nothing failed, and a
    // retry would get the same answer.
    let server = FlakyServer::start(vec![Step::Status(304, None)])
        .await
        .unwrap();
    let (client, log) = middleware_client(6);
    let response = client
        .get(server.url("/"))
        .header("if-none-match", "\"v1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);
    assert_eq!(server.seen(), 1);
    let kinds: Vec<_> = log.lock().unwrap().iter().map(|e| e.0).collect();
    assert_eq!(kinds, [EventKind::Success]);
}

#[tokio::test]
async fn check_hands_back_redirects_and_not_modified() {
    let server = FlakyServer::start(vec![
        Step::Status(304, None),
        Step::Status(302, None),
        Step::Status(410, None),
    ])
    .await
    .unwrap();
    // Redirects not followed, so the 302 reaches `check`.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for status in [304, 302] {
        let response = check(client.get(server.url("/")).send().await.unwrap()).unwrap();
        assert_eq!(response.status(), status);
    }
    let error = check(client.get(server.url("/")).send().await.unwrap()).unwrap_err();
    assert_eq!(error.status(), 410);
}

#[tokio::test]
async fn a_streaming_body_is_sent_once_without_retry() {
    let server = FlakyServer::start(vec![Step::Status(503, None)])
        .await
        .unwrap();
    let (client, log) = middleware_client(6);
    let chunks: Vec<Result<&'static str, std::io::Error>> = vec![Ok("a"), Ok("b")];
    let body = reqwest::Body::wrap_stream(futures_stream(chunks));
    let response = client
        .post(server.url("/upload"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(server.seen(), 1);
    assert!(log.lock().unwrap().is_empty());
}

/// A stream over `items`, without a futures dependency.
fn futures_stream<T: Send + 'static>(
    items: Vec<T>,
) -> impl futures_core::Stream<Item = T> + Send + 'static {
    struct Iter<T>(std::vec::IntoIter<T>);
    impl<T> Unpin for Iter<T> {}
    impl<T> futures_core::Stream for Iter<T> {
        type Item = T;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<T>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Iter(items.into_iter())
}
