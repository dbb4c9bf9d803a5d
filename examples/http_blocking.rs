//! A blocking reqwest call retried through a flaky service.
//!
//! The service (axum, in process, on 127.0.0.1 with an ephemeral port)
//! answers `503` with `Retry-After: 1`, then `429` with a `Retry-After`
//! HTTP-date a second ahead, then drops the connection, then `200 hello`.
//! The example prints every event, and exits non-zero unless the call
//! succeeds on the fourth attempt after honouring both hints.
//!
//! ```sh
//! cargo run --example http_blocking --features reqwest
//! ```

#[path = "support/flaky.rs"]
mod flaky;

use std::error::Error;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use flaky::{FlakyServer, Step};
use reflexio::reqwest::check_blocking;
use reflexio::{Backoff, Event, EventKind, RetryPolicy};

fn main() -> ExitCode {
    match run() {
        Ok(()) => {
            println!("http_blocking: ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("http_blocking: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_event(e: &Event<'_>) {
    match e.kind {
        EventKind::Retry => println!(
            "  {} #{}: {} ({}), retrying in {:.3} s",
            e.kind,
            e.attempt,
            e.error.map(|t| t.to_string()).unwrap_or_default(),
            e.class.map_or("-", |c| c.name()),
            e.delay.unwrap_or_default().as_secs_f64()
        ),
        _ => println!(
            "  {} #{} after {:.3} s",
            e.kind,
            e.attempt,
            e.elapsed.as_secs_f64()
        ),
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    // The service runs on a small runtime of its own; the client blocks.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let server = runtime.block_on(FlakyServer::start(vec![
        Step::Status(503, Some("1")),
        Step::RateLimitedFor(1),
        Step::DropConnection,
        Step::Ok("hello"),
    ]))?;
    let url = server.url("/greeting");
    println!("flaky service on {}", server.addr);

    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0) // a new connection per attempt, so one can be dropped
        .timeout(Duration::from_secs(5))
        .build()?;
    let policy = RetryPolicy::builder()
        .strategy(Backoff::equal_jitter(
            Duration::from_millis(50),
            Duration::from_millis(500),
        ))
        .deadline(Duration::from_secs(20))
        .max_retry_after(Duration::from_secs(3))
        .hook(print_event)
        .build()?;

    let started = Instant::now();
    let body = policy.call_named("greeting", || {
        let response = check_blocking(client.get(&url).send()?)?;
        Ok::<_, reflexio::reqwest::Error>(response.text()?)
    })?;
    let took = started.elapsed();
    println!(
        "body {body:?} after {} attempts in {:.3} s",
        server.seen(),
        took.as_secs_f64()
    );

    if body != "hello" {
        return Err(format!("expected body \"hello\", got {body:?}").into());
    }
    if server.seen() != 4 {
        return Err(format!("expected 4 attempts, the service saw {}", server.seen()).into());
    }
    // Two hints of at least one second each were honoured.
    if took < Duration::from_secs(2) {
        return Err(format!("the hints were not honoured: done in {took:?}").into());
    }
    drop(server);
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
