//! A scripted flaky HTTP service on 127.0.0.1 (an ephemeral port), shared
//! by the examples and the tests: each request (or connection) takes the
//! next step of the script, and once the script is done every request gets
//! `200 ok`.
#![allow(dead_code)] // each example uses part of it

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What the service does with one request.
#[derive(Debug, Clone)]
pub enum Step {
    /// Answer with this status and, if given, this `Retry-After` value.
    Status(u16, Option<&'static str>),
    /// Answer 429 with a `Retry-After` HTTP-date this many seconds ahead.
    RateLimitedFor(u64),
    /// Accept the connection and close it without reading the request.
    DropConnection,
    /// Answer 200 with this body.
    Ok(&'static str),
    /// Wait this long, then answer 200 (for client timeouts).
    Slow(Duration),
    /// Answer 200, send this much of the body, then break the connection
    /// (a body cut short).
    CutShort(&'static str),
    /// Answer 200 with a body marked `Content-Encoding: gzip` that is not
    /// gzip (a body that arrives whole but cannot be decoded).
    CorruptGzip,
}

#[derive(Default)]
struct Script {
    steps: Mutex<VecDeque<Step>>,
    /// Requests and dropped connections so far: the attempts the service saw.
    seen: AtomicUsize,
}

impl Script {
    fn next_unless_drop(&self) -> Option<Step> {
        let mut steps = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        match steps.front() {
            Some(Step::DropConnection) => None,
            _ => steps.pop_front(),
        }
    }

    /// Pops a leading `DropConnection`, if that is the next step.
    fn take_drop(&self) -> bool {
        let mut steps = self.steps.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(steps.front(), Some(Step::DropConnection)) {
            steps.pop_front();
            true
        } else {
            false
        }
    }
}

/// A running flaky service; it stops when dropped.
pub struct FlakyServer {
    /// Where it listens.
    pub addr: SocketAddr,
    script: Arc<Script>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FlakyServer {
    /// Starts a service that plays `steps` (on the current tokio runtime).
    pub async fn start(steps: Vec<Step>) -> std::io::Result<FlakyServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let script = Arc::new(Script {
            steps: Mutex::new(steps.into()),
            seen: AtomicUsize::new(0),
        });
        let app = Router::new()
            .fallback(any(answer))
            .with_state(Arc::clone(&script));
        let dropping = DroppingListener {
            inner: listener,
            script: Arc::clone(&script),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(dropping, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(FlakyServer {
            addr,
            script,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The URL of `path` on this service.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests (and dropped connections) the service has seen.
    pub fn seen(&self) -> usize {
        self.script.seen.load(Ordering::SeqCst)
    }

    /// Steps not played yet.
    pub fn remaining(&self) -> usize {
        self.script
            .steps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Stops the service and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FlakyServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn answer(State(script): State<Arc<Script>>) -> Response {
    script.seen.fetch_add(1, Ordering::SeqCst);
    match script.next_unless_drop() {
        None | Some(Step::DropConnection) => (StatusCode::OK, "ok").into_response(),
        Some(Step::Ok(body)) => (StatusCode::OK, body).into_response(),
        Some(Step::Slow(wait)) => {
            tokio::time::sleep(wait).await;
            (StatusCode::OK, "slow ok").into_response()
        }
        Some(Step::CorruptGzip) => (
            StatusCode::OK,
            [(header::CONTENT_ENCODING, "gzip")],
            "this is not gzip",
        )
            .into_response(),
        Some(Step::CutShort(part)) => {
            // A streamed body that fails a moment after its first part
            // has gone out: the server abandons the response mid-body.
            let body = axum::body::Body::from_stream(CutShortBody {
                part: Some(part.as_bytes().to_vec()),
                pause: Box::pin(tokio::time::sleep(Duration::from_millis(50))),
            });
            (StatusCode::OK, body).into_response()
        }
        Some(Step::Status(code, retry_after)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            match retry_after {
                Some(value) => (status, [(header::RETRY_AFTER, value)], "failing").into_response(),
                None => (status, "failing").into_response(),
            }
        }
        Some(Step::RateLimitedFor(secs)) => {
            // HTTP-dates have whole seconds: round up so the wait is at
            // least `secs` from now.
            let at = SystemTime::now() + Duration::from_secs(secs) + Duration::from_millis(999);
            let date = reflexio::http::format_http_date(at);
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, date)],
                "slow down",
            )
                .into_response()
        }
    }
}

/// A listener that closes the connection instead of serving it when the
/// script's next step is `DropConnection`.
struct DroppingListener {
    inner: TcpListener,
    script: Arc<Script>,
}

impl axum::serve::Listener for DroppingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let (io, addr) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(_) => {
                    // Out of file descriptors, say: back off briefly.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            if self.script.take_drop() {
                self.script.seen.fetch_add(1, Ordering::SeqCst);
                drop(io);
                continue;
            }
            return (io, addr);
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A body that sends `part`, waits for `pause`, then fails.
struct CutShortBody {
    part: Option<Vec<u8>>,
    pause: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl futures_core::Stream for CutShortBody {
    type Item = std::io::Result<Vec<u8>>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        if let Some(part) = self.part.take() {
            return std::task::Poll::Ready(Some(Ok(part)));
        }
        match self.pause.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => {
                std::task::Poll::Ready(Some(Err(std::io::Error::other("cut short"))))
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}
