//! An axum proxy that retries a flaky downstream with reflexio and exports
//! Prometheus metrics through the `metrics` facade.
//!
//! Two services start on 127.0.0.1 (ephemeral ports): a downstream that
//! fails its first requests (503, 502, 429 with `Retry-After: 0`, a dropped
//! connection) and then answers `200`, and the proxy, whose `GET
//! /item/{id}` calls the downstream through a policy carrying
//! `reflexio::metrics::MetricsHook`, and whose `GET /metrics` renders the
//! Prometheus exposition (`metrics-exporter-prometheus`). The example sends
//! requests through the proxy, scrapes its own `/metrics`, prints the
//! reflexio series, and exits non-zero unless every request succeeded and
//! the counters match what the downstream saw.
//!
//! ```sh
//! cargo run --example proxy --features reqwest,metrics
//! ```

#[path = "support/flaky.rs"]
mod flaky;

use std::collections::BTreeMap;
use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use flaky::{FlakyServer, Step};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use reflexio::metrics::MetricsHook;
use reflexio::reqwest::check;
use reflexio::{Backoff, BoundPolicy, RetryPolicy};

const REQUESTS: usize = 12;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("proxy: ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("proxy: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Proxy {
    client: reqwest::Client,
    downstream: String,
    policy: BoundPolicy,
    metrics: PrometheusHandle,
}

async fn item(State(proxy): State<Arc<Proxy>>, Path(id): Path<u32>) -> (StatusCode, String) {
    let url = format!("{}/item/{id}", proxy.downstream);
    let result = proxy
        .policy
        .call_async(|| async {
            let response = check(proxy.client.get(&url).send().await?)?;
            Ok::<_, reflexio::reqwest::Error>(response.text().await?)
        })
        .await;
    match result {
        Ok(body) => (StatusCode::OK, body),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

async fn metrics(State(proxy): State<Arc<Proxy>>) -> String {
    proxy.metrics.render()
}

/// One sample line of the exposition: name, labels, value.
fn parse_sample(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (series, ""),
    };
    let labels = labels
        .split(',')
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.to_owned(), v.trim_matches('"').to_owned()))
        })
        .collect();
    Some((name.to_owned(), labels, value))
}

async fn run() -> Result<(), Box<dyn Error>> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    MetricsHook::describe();

    let downstream = FlakyServer::start(vec![
        Step::Status(503, None),
        Step::Status(502, None),
        Step::Status(429, Some("0")),
        Step::DropConnection,
    ])
    .await?;
    let policy = RetryPolicy::builder()
        .strategy(Backoff::equal_jitter(
            Duration::from_millis(10),
            Duration::from_millis(100),
        ))
        .max_retry_after(Duration::from_secs(1))
        .deadline(Duration::from_secs(10))
        .hook(MetricsHook::new())
        .build()?;
    let proxy = Arc::new(Proxy {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(0) // a new connection per attempt, so one can be dropped
            .timeout(Duration::from_secs(5))
            .build()?,
        downstream: format!("http://{}", downstream.addr),
        policy: policy.bind("downstream"),
        metrics: handle,
    });
    let app = Router::new()
        .route("/item/{id}", get(item))
        .route("/metrics", get(metrics))
        .with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    println!("downstream on {}, proxy on {addr}", downstream.addr);

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let mut failures = Vec::new();
    for id in 0..REQUESTS {
        let response = client
            .get(format!("http://{addr}/item/{id}"))
            .send()
            .await?;
        if response.status() != StatusCode::OK {
            failures.push(format!(
                "GET /item/{id}: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            ));
        }
    }

    let exposition = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let samples: Vec<_> = exposition.lines().filter_map(parse_sample).collect();
    println!("\nscraped from /metrics:");
    for line in exposition.lines() {
        if line.starts_with("reflexio_") && !line.contains("quantile") {
            println!("  {line}");
        }
    }
    let value = |name: &str, label: &str, want: &str| -> f64 {
        samples
            .iter()
            .filter(|(n, labels, _)| {
                n == name
                    && labels.get("operation").map(String::as_str) == Some("downstream")
                    && labels.get(label).map(String::as_str) == Some(want)
            })
            .map(|(_, _, v)| v)
            .sum()
    };
    let sum_of = |name: &str| -> f64 {
        samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| v)
            .sum()
    };

    let mut expect = |what: &str, got: f64, want: f64| {
        if got != want {
            failures.push(format!("{what}: {got}, expected {want}"));
        }
    };
    expect(
        "successful calls",
        value("reflexio_calls_total", "outcome", "success"),
        REQUESTS as f64,
    );
    expect("all calls", sum_of("reflexio_calls_total"), REQUESTS as f64);
    expect(
        "server_error retries",
        value("reflexio_retries_total", "class", "server_error"),
        2.0,
    );
    expect(
        "rate_limit retries",
        value("reflexio_retries_total", "class", "rate_limit"),
        1.0,
    );
    expect(
        "transient retries",
        value("reflexio_retries_total", "class", "transient"),
        1.0,
    );
    expect(
        "retry delays recorded",
        sum_of("reflexio_retry_delay_seconds_count"),
        4.0,
    );
    // Every attempt reached the downstream: the calls plus the retries.
    let attempts = sum_of("reflexio_calls_total") + sum_of("reflexio_retries_total");
    expect(
        "attempts seen by the downstream",
        downstream.seen() as f64,
        attempts,
    );

    let _ = stop.send(());
    server.await??;
    downstream.stop().await;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}
