//! An async reqwest call retried through a flaky service, twice: with
//! `call_async` around the request, and with the `reqwest-middleware`
//! middleware.
//!
//! The service (axum, in process, on 127.0.0.1 with an ephemeral port)
//! answers `503` with `Retry-After: 1`, then `429` with a `Retry-After`
//! HTTP-date a second ahead, then drops the connection, then `200 hello`.
//! The example prints every event, and exits non-zero unless each client
//! succeeds on the fourth attempt after honouring both hints.
//!
//! ```sh
//! cargo run --example http_async --features reqwest-middleware
//! ```

#[path = "support/flaky.rs"]
mod flaky;

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use flaky::{FlakyServer, Step};
use reflexio::reqwest::check;
use reflexio::reqwest_middleware::RetryMiddleware;
use reflexio::{Backoff, Event, EventKind, RetryPolicy};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("http_async: ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("http_async: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn script() -> Vec<Step> {
    vec![
        Step::Status(503, Some("1")),
        Step::RateLimitedFor(1),
        Step::DropConnection,
        Step::Ok("hello"),
    ]
}

fn print_event(e: &Event<'_>) {
    match e.kind {
        EventKind::Retry => println!(
            "  [{}] {} #{}: {} ({}), retrying in {:.3} s",
            e.operation,
            e.kind,
            e.attempt,
            e.error.map(|t| t.to_string()).unwrap_or_default(),
            e.class.map_or("-", |c| c.name()),
            e.delay.unwrap_or_default().as_secs_f64()
        ),
        _ => println!(
            "  [{}] {} #{} after {:.3} s",
            e.operation,
            e.kind,
            e.attempt,
            e.elapsed.as_secs_f64()
        ),
    }
}

fn policy() -> Result<RetryPolicy, reflexio::BuildError> {
    RetryPolicy::builder()
        .strategy(Backoff::equal_jitter(
            Duration::from_millis(50),
            Duration::from_millis(500),
        ))
        .deadline(Duration::from_secs(20))
        .max_retry_after(Duration::from_secs(3))
        .hook(print_event)
        .build()
}

fn new_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0) // a new connection per attempt, so one can be dropped
        .timeout(Duration::from_secs(5))
        .build()
}

fn expect(what: &str, body: &str, seen: usize, took: Duration) -> Result<(), Box<dyn Error>> {
    println!(
        "{what}: body {body:?} after {seen} attempts in {:.3} s",
        took.as_secs_f64()
    );
    if body != "hello" {
        return Err(format!("{what}: expected body \"hello\", got {body:?}").into());
    }
    if seen != 4 {
        return Err(format!("{what}: expected 4 attempts, the service saw {seen}").into());
    }
    if took < Duration::from_secs(2) {
        return Err(format!("{what}: the hints were not honoured: done in {took:?}").into());
    }
    Ok(())
}

async fn run() -> Result<(), Box<dyn Error>> {
    // 1. call_async around the request.
    let server = FlakyServer::start(script()).await?;
    println!("flaky service on {}", server.addr);
    let client = new_client()?;
    let policy = policy()?;
    let url = server.url("/greeting");
    let started = Instant::now();
    let body = policy
        .call_async_named("call_async", || async {
            let response = check(client.get(&url).send().await?)?;
            Ok::<_, reflexio::reqwest::Error>(response.text().await?)
        })
        .await?;
    expect("call_async", &body, server.seen(), started.elapsed())?;
    server.stop().await;

    // 2. The same through the middleware: the client code is unchanged.
    let server = FlakyServer::start(script()).await?;
    let client = reqwest_middleware::ClientBuilder::new(new_client()?)
        .with(RetryMiddleware::new(policy).operation("middleware"))
        .build();
    let started = Instant::now();
    let response = client.get(server.url("/greeting")).send().await?;
    let status = response.status();
    let body = response.text().await?;
    if status != 200 {
        return Err(format!("middleware: expected 200, got {status}").into());
    }
    expect("middleware", &body, server.seen(), started.elapsed())?;
    server.stop().await;
    Ok(())
}
