//! The load generator: Poisson calls through a production `RetryPolicy`,
//! each attempt an HTTP request to a service on 127.0.0.1, every call and
//! attempt recorded in the simulator's own metric definitions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reflexio::{http_status_class, Classification, ErrorClass, RetryConfig, RetryPolicyBuilder};
use reflexio_sim::metrics::CallResults;

use crate::measure::Measured;

/// One phase of piecewise arrival rates, as the scenario's
/// `[workload] phases` has it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Calls per second during the phase.
    pub rate: f64,
    /// How long it lasts; `None` for the last phase, which lasts until
    /// every call has arrived.
    pub length: Option<Duration>,
}

impl Phase {
    /// One rate for the whole load.
    pub fn steady(rate: f64) -> Vec<Phase> {
        vec![Phase { rate, length: None }]
    }
}

/// The scenario's `phases = [...]` for `phases`.
pub fn phases_toml(phases: &[Phase]) -> String {
    let mut out = String::from("phases = [\n");
    for p in phases {
        match p.length {
            Some(l) => out.push_str(&format!(
                "  {{ rate = {:?}, for = \"{}\" }},\n",
                p.rate,
                reflexio::config::format_duration(l)
            )),
            None => out.push_str(&format!("  {{ rate = {:?} }},\n", p.rate)),
        }
    }
    out.push(']');
    out
}

/// How the calls arrive and how long the client waits for one attempt.
#[derive(Debug, Clone)]
pub struct Load {
    /// Calls per policy.
    pub calls: u64,
    /// Arrival rates over time (calls/s), Poisson within each phase.
    pub phases: Vec<Phase>,
    /// Seed of the arrival times.
    pub seed: u64,
    /// The client's timeout per attempt; an attempt that times out fails
    /// as `transient`.
    pub timeout: Duration,
}

/// A failed HTTP attempt as the client sees it.
#[derive(Debug)]
pub struct Failed {
    status: Option<u16>,
    hint: Option<Duration>,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "HTTP {s}"),
            None => f.write_str("no response in time"),
        }
    }
}

impl std::error::Error for Failed {}

/// The library's HTTP table for a status; a timeout or a refused
/// connection is transient. The hint is the `Retry-After-Ms` header.
fn classify(e: &Failed) -> Classification {
    let class = e.status.map_or(ErrorClass::Transient, http_status_class);
    let c = Classification::new(class);
    match e.hint {
        Some(h) => c.with_retry_after(h),
        None => c,
    }
}

/// What one attempt was, as the client saw it.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// When it was sent, from the load's origin.
    pub sent: Duration,
    /// Send to response (or to the timeout).
    pub took: Duration,
    /// The status, if a response came.
    pub status: Option<u16>,
}

/// One policy's run against a fresh service.
pub struct PolicyRun {
    /// The policy's name.
    pub policy: String,
    /// What was measured, in the simulator's own metric definitions.
    pub measured: Measured,
    /// Every attempt.
    pub attempts: Vec<Attempt>,
    /// How late the client woke from each of its retry sleeps (what the
    /// simulator's `[client] oversleep` stands for); empty where the
    /// driver does not measure it.
    pub oversleeps: Vec<Duration>,
}

/// How one call ended, as the client saw it.
pub struct CallOutcome {
    /// The call's number, as the simulator numbers its calls.
    pub call: usize,
    /// When it ended, from the load's origin.
    pub end: Duration,
    /// Its end-to-end latency.
    pub latency: Duration,
    /// The time it spent sleeping between attempts.
    pub sleep: Duration,
    /// Attempts made.
    pub attempts: u32,
    /// Why retrying stopped, if the call failed.
    pub reason: Option<reflexio::StopReason>,
}

/// The metrics of one policy's calls and attempts, counted by the
/// simulator's own `CallResults` in one-second buckets.
pub fn tally(name: &str, outcomes: &[CallOutcome], attempts: Vec<Attempt>) -> PolicyRun {
    let bucket = Duration::from_secs(1);
    let mut results = CallResults::new(outcomes.len());
    for a in &attempts {
        results.attempt_at((a.sent.as_nanos() / bucket.as_nanos()) as u64);
    }
    for o in outcomes {
        results.record(
            o.call,
            nanos(o.end),
            nanos(o.latency),
            nanos(o.sleep),
            o.attempts,
            o.reason,
        );
    }
    let metrics = results.into_metrics(name, nanos(bucket), Vec::new(), 0);
    PolicyRun {
        policy: name.to_owned(),
        measured: Measured::from(metrics),
        attempts,
        oversleeps: Vec::new(),
    }
}

/// How late a policy's sleeps ended: the time from when each was due to
/// when its task ran again, recorded by the sleepers it hands out.
#[derive(Clone, Default)]
pub struct Oversleeps(Arc<Mutex<Vec<Duration>>>);

impl Oversleeps {
    /// tokio's sleeper, recording here how late each of its sleeps ends.
    pub fn sleeper(&self) -> TimedSleeper {
        TimedSleeper {
            inner: reflexio::TokioSleeper::new(),
            late: self.clone(),
        }
    }

    /// What was recorded so far, leaving none.
    pub fn take(&self) -> Vec<Duration> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// tokio's sleeper, timing how late each sleep ends ([`Oversleeps`]).
pub struct TimedSleeper {
    inner: reflexio::TokioSleeper,
    late: Oversleeps,
}

/// `[client] oversleep` fitted (lognormal) to how late the sleeps of
/// `runs` ended, as a scenario table. If none slept, tokio's timer as
/// sim/README.md describes it (0 to 2 ms late): the prediction must not
/// fall back to exact timers, whose lockstep with a server's own clock
/// no real client shows.
pub fn client_table(runs: &[PolicyRun]) -> String {
    let late: Vec<Duration> = runs.iter().flat_map(|r| &r.oversleeps).copied().collect();
    if late.is_empty() {
        return "[client]\n# no retry sleep was measured: tokio's timer, 0 to 2 ms late\noversleep = { distribution = \"uniform\", min = \"0ms\", max = \"2ms\" }\n\n".to_owned();
    }
    let Some((median, sigma)) = crate::measure::fit_lognormal(&late) else {
        // Every sleep ended when it was due: exact timers, the default.
        return format!(
            "[client]\n# none of the clients' {} retry sleeps ended late: exact timers\n\n",
            late.len()
        );
    };
    format!(
        "[client]\n# fitted to how late the clients woke from their {} retry sleeps\noversleep = {{ distribution = \"lognormal\", median = \"{}us\", sigma = {sigma:.4} }}\n\n",
        late.len(),
        median.as_micros().max(1)
    )
}

impl reflexio::Sleeper for TimedSleeper {
    fn now(&self) -> Duration {
        reflexio::Sleeper::now(&self.inner)
    }

    fn sleep(&self, duration: Duration) -> reflexio::clock::SleepFuture {
        let due = Instant::now() + duration;
        let sleep = self.inner.sleep(duration);
        let late = self.late.clone();
        Box::pin(async move {
            sleep.await;
            let woke = Instant::now().saturating_duration_since(due);
            late.0.lock().unwrap_or_else(|e| e.into_inner()).push(woke);
        })
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Poisson arrival offsets under piecewise rates, as the simulator draws
/// them (a non-homogeneous Poisson process): one unit-exponential draw
/// per gap, spent at each phase's rate in turn. With one phase, the gaps
/// are exponential with mean `1 / rate`.
pub fn arrivals(load: &Load) -> Vec<Duration> {
    let mut rng = ChaCha8Rng::seed_from_u64(load.seed ^ 0x5eed);
    let mut at = 0.0f64;
    let mut phase = 0usize;
    let phase_end = |i: usize| -> Option<f64> {
        let mut end = 0.0;
        for p in load.phases.get(..=i)? {
            end += p.length?.as_secs_f64();
        }
        Some(end)
    };
    (0..load.calls)
        .map(|_| {
            let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            let mut work = -u.ln();
            while let Some(p) = load.phases.get(phase) {
                let rate = p.rate.max(f64::MIN_POSITIVE);
                match phase_end(phase) {
                    Some(end) if at + work / rate >= end => {
                        work -= (end - at) * rate;
                        at = end;
                        phase += 1;
                    }
                    _ => {
                        at += work / rate;
                        break;
                    }
                }
            }
            Duration::from_secs_f64(at)
        })
        .collect()
}

/// A load's origin: 50 ms from now, time enough to start a service and
/// spawn the clients before the first call is due.
pub fn origin() -> Instant {
    Instant::now() + Duration::from_millis(50)
}

/// Drives `url` with `load`, every call through the policy `config`
/// describes (the policy named `name`), and records what happened. Calls
/// arrive at `origin` (see [`origin`]) plus their offsets, and every time
/// recorded is from `origin`: a service that keeps a clock of its own
/// starts it at the same instant. Every call is bounded by the policy's
/// envelope and every attempt by the timeout, so the run ends by itself.
pub async fn drive(
    url: &str,
    name: &str,
    config: &RetryConfig,
    load: &Load,
    origin: Instant,
) -> Result<PolicyRun, String> {
    let late = Oversleeps::default();
    let policy = RetryPolicyBuilder::from_config(config)
        .map_err(|e| format!("policy {name}: {e}"))?
        .classifier(classify)
        .sleeper(late.sleeper())
        .build()
        .map_err(|e| format!("policy {name}: {e}"))?;
    let client = reqwest::Client::builder()
        .timeout(load.timeout)
        .pool_max_idle_per_host(1024)
        .build()
        .map_err(|e| e.to_string())?;

    let log: Arc<Mutex<Vec<Attempt>>> = Arc::default();
    let mut tasks = Vec::with_capacity(load.calls as usize);
    for (call, offset) in arrivals(load).into_iter().enumerate() {
        let policy = policy.clone();
        let client = client.clone();
        let url = url.to_owned();
        let log = Arc::clone(&log);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until((origin + offset).into()).await;
            let start = Instant::now();
            let mut attempts = 0u32;
            let busy = Arc::new(AtomicU64::new(0));
            let outcome = policy
                .call_async(|| {
                    attempts += 1;
                    let request = client.get(&url);
                    let log = Arc::clone(&log);
                    let busy = Arc::clone(&busy);
                    async move {
                        let sent = Instant::now();
                        let result = request.send().await;
                        let took = sent.elapsed();
                        busy.fetch_add(nanos(took), Ordering::Relaxed);
                        let (status, failure) = match result {
                            Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
                            Ok(r) => {
                                let hint = r
                                    .headers()
                                    .get("retry-after-ms")
                                    .and_then(|v| v.to_str().ok())
                                    .and_then(|v| v.parse::<f64>().ok())
                                    .filter(|ms| ms.is_finite() && *ms >= 0.0)
                                    .map(|ms| Duration::from_secs_f64(ms / 1e3));
                                let status = r.status().as_u16();
                                (
                                    Some(status),
                                    Some(Failed {
                                        status: Some(status),
                                        hint,
                                    }),
                                )
                            }
                            Err(_) => (
                                None,
                                Some(Failed {
                                    status: None,
                                    hint: None,
                                }),
                            ),
                        };
                        if let Ok(mut log) = log.lock() {
                            log.push(Attempt {
                                sent: sent.saturating_duration_since(origin),
                                took,
                                status,
                            });
                        }
                        match failure {
                            None => Ok(()),
                            Some(f) => Err(f),
                        }
                    }
                })
                .await;
            let latency = start.elapsed();
            CallOutcome {
                call,
                end: start.saturating_duration_since(origin) + latency,
                latency,
                sleep: latency.saturating_sub(Duration::from_nanos(busy.load(Ordering::Relaxed))),
                attempts,
                reason: outcome.as_ref().err().map(|e| e.reason()),
            }
        }));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for t in tasks {
        outcomes.push(t.await.map_err(|e| format!("a call task failed: {e}"))?);
    }

    let attempts = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));
    let mut run = tally(name, &outcomes, attempts);
    run.oversleeps = late.take();
    Ok(run)
}

/// Runs `measure` for every policy of the bundled scenario `text` (the
/// file `file`), one after the other, each against its own fresh service.
pub async fn each_policy(
    text: &str,
    file: &str,
    mut measure: impl AsyncFnMut(&str, &RetryConfig) -> Result<PolicyRun, String>,
) -> Result<Vec<PolicyRun>, String> {
    let scenario =
        reflexio_sim::scenario::Scenario::from_toml_str(text, file).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for policy in &scenario.policies {
        out.push(measure(&policy.name, &policy.config).await?);
    }
    Ok(out)
}

/// Serves `app` on 127.0.0.1 (an ephemeral port) until the returned
/// sender is used or dropped; returns the base URL.
pub async fn serve(
    app: axum::Router,
) -> Result<
    (
        String,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ),
    String,
> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot bind 127.0.0.1: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok((format!("http://{addr}/"), stop, server))
}
