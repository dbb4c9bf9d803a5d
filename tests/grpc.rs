//! gRPC: the classification table, pushback, and the tower layer in real
//! stacks: a tonic client retrying a flaky tonic server, called from an
//! axum app, all in process on 127.0.0.1 with ephemeral ports.
#![cfg(all(feature = "tower", feature = "tonic"))]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut};
use reflexio::integrations::tonic::{grpc_code_class, GrpcClassifier, RETRY_PUSHBACK_KEY};
use reflexio::{Backoff, Classifier, ErrorClass, Event, ManualClock, RetryLayer, RetryPolicy};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};
use tower::{service_fn, ServiceBuilder, ServiceExt};

/// Every test here talks to real sockets: none may hang.
const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn every_grpc_code_has_the_documented_class() {
    use ErrorClass::*;
    let table = [
        (Code::Ok, Unknown),
        (Code::Cancelled, Unknown),
        (Code::Unknown, Unknown),
        (Code::InvalidArgument, Permanent),
        (Code::DeadlineExceeded, Transient),
        (Code::NotFound, Permanent),
        (Code::AlreadyExists, Permanent),
        (Code::PermissionDenied, Permission),
        (Code::ResourceExhausted, RateLimit),
        (Code::FailedPrecondition, Permanent),
        (Code::Aborted, Concurrency),
        (Code::OutOfRange, Permanent),
        (Code::Unimplemented, Permanent),
        (Code::Internal, ServerError),
        (Code::Unavailable, Transient),
        (Code::DataLoss, Unknown),
        (Code::Unauthenticated, Auth),
    ];
    // All 17 codes, each once.
    let codes: std::collections::HashSet<i32> = table.iter().map(|(c, _)| *c as i32).collect();
    assert_eq!(codes, (0..17).collect());
    for (code, class) in table {
        assert_eq!(grpc_code_class(code), class, "{code:?}");
        let classified = GrpcClassifier.classify(&Status::new(code, "test"));
        assert_eq!(classified.class, class, "{code:?}");
        assert_eq!(classified.retry_after, None);
    }
}

/// An error wrapping a Status, as a client library's own error might.
#[derive(Debug)]
struct CallFailed(Status);

impl std::fmt::Display for CallFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "call failed: {}", self.0.message())
    }
}

impl std::error::Error for CallFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn a_status_is_found_in_the_source_chain_and_others_fall_back() {
    let wrapped = CallFailed(Status::aborted("write conflict"));
    assert_eq!(
        GrpcClassifier.classify(&wrapped).class,
        ErrorClass::Concurrency
    );
    let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
    assert_eq!(GrpcClassifier.classify(&io).class, ErrorClass::Transient);
}

#[test]
fn the_default_classifier_knows_a_status_as_the_grpc_classifier_does() {
    use reflexio::default_classifier;
    for code in (0..17).map(Code::from) {
        let status = Status::new(code, "test");
        assert_eq!(
            default_classifier(&status),
            GrpcClassifier.classify(&status),
            "{code:?}"
        );
        let wrapped = CallFailed(Status::new(code, "test"));
        assert_eq!(
            default_classifier(&wrapped),
            GrpcClassifier.classify(&wrapped),
            "{code:?}"
        );
    }
    // So a policy that keeps the default classifier never retries a
    // refusal: one attempt.
    let policy = RetryPolicy::builder()
        .sleeper(ManualClock::new())
        .build()
        .unwrap();
    let err = policy
        .call(|| Err::<(), _>(Status::permission_denied("no")))
        .unwrap_err();
    assert_eq!(err.attempts(), 1);
}

#[test]
fn an_explicit_class_before_a_status_is_trusted() {
    let explicit = reflexio::ClassifiedError::permanent(Status::unavailable("do not retry"));
    assert_eq!(
        GrpcClassifier.classify(&explicit).class,
        ErrorClass::Permanent
    );
    assert_eq!(
        reflexio::default_classifier(&explicit).class,
        ErrorClass::Permanent
    );
    // Behind a Status too: tonic keeps the error a status was made from
    // as its source.
    let behind = Status::from_error(Box::new(reflexio::ClassifiedError::permanent(
        std::io::Error::other("do not retry"),
    )));
    assert_eq!(
        GrpcClassifier.classify(&behind).class,
        ErrorClass::Permanent
    );
    assert_eq!(
        reflexio::default_classifier(&behind).class,
        ErrorClass::Permanent
    );
}

// ---------------------------------------------------------------------------
// A gRPC service without code generation: UTF-8 text messages.

#[derive(Debug, Clone, Copy, Default)]
struct TextCodec;

#[derive(Debug)]
struct TextEncoder;

#[derive(Debug)]
struct TextDecoder;

impl Codec for TextCodec {
    type Encode = String;
    type Decode = String;
    type Encoder = TextEncoder;
    type Decoder = TextDecoder;

    fn encoder(&mut self) -> TextEncoder {
        TextEncoder
    }

    fn decoder(&mut self) -> TextDecoder {
        TextDecoder
    }
}

impl Encoder for TextEncoder {
    type Item = String;
    type Error = Status;

    fn encode(&mut self, item: String, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(item.as_bytes());
        Ok(())
    }
}

impl Decoder for TextDecoder {
    type Item = String;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<String>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("not UTF-8: {e}")))
    }
}

const GREET: &str = "/reflexio.test.Greeter/Greet";

/// A name, and the statuses to answer it with before greeting it.
type Scripted = (String, Vec<Status>);

/// What the server answers: a script of failures per name, then a greeting.
#[derive(Clone, Default)]
struct Greeter {
    /// name -> statuses still to answer before greeting.
    script: Arc<Mutex<Vec<Scripted>>>,
    requests: Arc<AtomicU32>,
}

impl Greeter {
    fn fail(&self, name: &str, statuses: Vec<Status>) {
        self.script
            .lock()
            .unwrap()
            .push((name.to_owned(), statuses));
    }

    fn answer(&self, name: String) -> Result<tonic::Response<String>, Status> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut script = self.script.lock().unwrap();
        if let Some((_, statuses)) = script.iter_mut().find(|(n, s)| *n == name && !s.is_empty()) {
            return Err(statuses.remove(0));
        }
        Ok(tonic::Response::new(format!("hello {name}")))
    }
}

impl tonic::server::NamedService for Greeter {
    const NAME: &'static str = "reflexio.test.Greeter";
}

impl tower::Service<http::Request<tonic::body::Body>> for Greeter {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let greeter = self.clone();
        Box::pin(async move {
            if request.uri().path() != GREET {
                return Ok(Status::unimplemented(request.uri().path().to_owned()).into_http());
            }
            let handler = service_fn(move |r: tonic::Request<String>| {
                let reply = greeter.answer(r.into_inner());
                async move { reply }
            });
            let mut grpc = tonic::server::Grpc::new(TextCodec);
            Ok(grpc.unary(handler, request).await)
        })
    }
}

fn with_pushback(mut status: Status, value: &str) -> Status {
    status
        .metadata_mut()
        .insert(RETRY_PUSHBACK_KEY, value.parse().unwrap());
    status
}

async fn start_grpc_server(greeter: Greeter) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(greeter, incoming));
    addr
}

type Log = Arc<Mutex<Vec<String>>>;

/// A tonic client behind the retry layer: a name in, a greeting out.
async fn greeter_client(
    addr: SocketAddr,
    clock: &ManualClock,
    log: &Log,
) -> reflexio::integrations::tower::Retry<
    impl tower::Service<
            String,
            Response = String,
            Error = Status,
            Future = impl std::future::Future<Output = Result<String, Status>> + Send,
        > + Clone
        + Send
        + Sync
        + 'static,
    GrpcClassifier,
> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("the in-process gRPC server accepts connections");
    // The request is the message (a String, so Clone); each attempt builds
    // its own tonic::Request from it.
    let call = service_fn(move |name: String| {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        async move {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
            let path = http::uri::PathAndQuery::from_static(GREET);
            let reply = grpc
                .unary(tonic::Request::new(name), path, TextCodec)
                .await?;
            Ok(reply.into_inner())
        }
    });
    let sink = Arc::clone(log);
    let policy = RetryPolicy::builder()
        .strategy(Backoff::exponential(
            Duration::from_millis(10),
            Duration::from_millis(100),
        ))
        .max_attempts(4)
        .sleeper(clock.clone())
        .hook(move |e: &Event<'_>| {
            sink.lock().unwrap().push(format!(
                "{} {} #{} {:?} {:?}",
                e.operation, e.kind, e.attempt, e.delay, e.class
            ))
        })
        .classifier(GrpcClassifier)
        .build()
        .unwrap();
    ServiceBuilder::new()
        .layer(RetryLayer::new(policy).operation("greet"))
        .service(call)
}

#[test]
fn a_tonic_client_retries_through_the_layer_honouring_pushback() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(LIMIT, async {
            let greeter = Greeter::default();
            greeter.fail(
                "ada",
                vec![
                    with_pushback(Status::unavailable("draining"), "700"),
                    Status::unavailable("draining"),
                ],
            );
            greeter.fail("bob", vec![Status::permission_denied("not bob")]);
            greeter.fail(
                "cyd",
                vec![with_pushback(Status::resource_exhausted("quota"), "-1")],
            );
            greeter.fail("dee", vec![Status::internal("bug"); 9]);
            let addr = start_grpc_server(greeter.clone()).await;
            let clock = ManualClock::new();
            let log = Log::default();
            let client = greeter_client(addr, &clock, &log).await;

            let reply = client.clone().oneshot("ada".to_owned()).await.unwrap();
            assert_eq!(reply, "hello ada");
            assert_eq!(greeter.requests.load(Ordering::SeqCst), 3);

            let denied = client.clone().oneshot("bob".to_owned()).await.unwrap_err();
            assert_eq!(denied.code(), Code::PermissionDenied);
            let pushed_back = client.clone().oneshot("cyd".to_owned()).await.unwrap_err();
            assert_eq!(pushed_back.code(), Code::ResourceExhausted);
            let broken = client.clone().oneshot("dee".to_owned()).await.unwrap_err();
            assert_eq!(broken.message(), "bug");
            assert_eq!(greeter.requests.load(Ordering::SeqCst), 3 + 1 + 1 + 4);

            assert_eq!(
                *log.lock().unwrap(),
                [
                    // The 700 ms pushback outweighs the 10 ms backoff.
                    "greet retry #1 Some(700ms) Some(Transient)",
                    "greet retry #2 Some(20ms) Some(Transient)",
                    "greet success #3 None None",
                    "greet permanent_fail #1 None Some(Permission)",
                    // A negative pushback: the server says not to retry.
                    "greet permanent_fail #1 None Some(Permanent)",
                    "greet retry #1 Some(10ms) Some(ServerError)",
                    "greet retry #2 Some(20ms) Some(ServerError)",
                    "greet retry #3 Some(40ms) Some(ServerError)",
                    "greet max_attempts_exceeded #4 None Some(ServerError)",
                ]
            );
            assert_eq!(
                clock.slept(),
                Duration::from_millis(700 + 20 + 10 + 20 + 40)
            );
        })
        .await
        .expect("the gRPC exchange finishes within the limit");
    });
}

#[test]
fn an_axum_app_calls_a_grpc_backend_through_the_layer() {
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(LIMIT, async {
            let greeter = Greeter::default();
            greeter.fail("ada", vec![Status::unavailable("restarting")]);
            greeter.fail("eve", vec![Status::not_found("no eve")]);
            let grpc_addr = start_grpc_server(greeter.clone()).await;
            let clock = ManualClock::new();
            let log = Log::default();
            let client = greeter_client(grpc_addr, &clock, &log).await;

            // The app: GET /greet/{name} asks the gRPC backend, retrying.
            let app = axum::Router::new()
                .route(
                    "/greet/{name}",
                    axum::routing::get(
                        |State(client): State<_>, Path(name): Path<String>| async move {
                            let client: reflexio::integrations::tower::Retry<_, _> = client;
                            let reply: Result<String, Status> = client.oneshot(name).await;
                            match reply {
                                Ok(greeting) => (StatusCode::OK, greeting),
                                Err(status) => {
                                    (StatusCode::BAD_GATEWAY, status.message().to_owned())
                                }
                            }
                        },
                    ),
                )
                .with_state(client);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let app_addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });

            let get = |path: &'static str| async move {
                let mut socket = tokio::net::TcpStream::connect(app_addr).await.unwrap();
                let request =
                    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
                socket.write_all(request.as_bytes()).await.unwrap();
                let mut response = String::new();
                socket.read_to_string(&mut response).await.unwrap();
                response
            };
            let ok = get("/greet/ada").await;
            assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
            assert!(ok.ends_with("hello ada"), "{ok}");
            let missing = get("/greet/eve").await;
            assert!(missing.starts_with("HTTP/1.1 502"), "{missing}");
            assert!(missing.ends_with("no eve"), "{missing}");
            assert_eq!(greeter.requests.load(Ordering::SeqCst), 3);
            assert_eq!(
                *log.lock().unwrap(),
                [
                    "greet retry #1 Some(10ms) Some(Transient)",
                    "greet success #2 None None",
                    "greet permanent_fail #1 None Some(Permanent)",
                ]
            );
        })
        .await
        .expect("the HTTP and gRPC exchanges finish within the limit");
    });
}
