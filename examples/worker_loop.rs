//! A tokio worker pool draining a job queue, retrying each job with a
//! context bound to its type, and shutting down cleanly.
//!
//! Three workers take jobs of two types from one queue. Each type has its
//! own bound context (operation name and a hook counting its events) over
//! one shared policy. The jobs' work is simulated and fails on purpose: some
//! emails hit a transient fault twice, some invoices a write conflict once,
//! and one email has an address that can never work (permanent: it goes to
//! the dead letters without a retry). When the producer is done it closes
//! the queue; the workers finish their current job, drain the rest and
//! exit. The example exits non-zero unless every job ended exactly once,
//! as expected.
//!
//! ```sh
//! cargo run --example worker_loop --features tokio
//! ```

use std::collections::BTreeMap;
use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reflexio::{Backoff, BoundPolicy, ClassifiedError, ErrorClass, Event, EventKind, RetryPolicy};
use tokio::sync::mpsc;

const JOBS: u32 = 30;
const WORKERS: usize = 3;
/// The email whose address can never work.
const BAD_ADDRESS: u32 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Email,
    Invoice,
}

#[derive(Debug, Clone, Copy)]
struct Job {
    id: u32,
    kind: Kind,
}

/// Attempts per job so far: the simulated services fail by attempt number.
#[derive(Default)]
struct Attempts(Mutex<BTreeMap<u32, u32>>);

impl Attempts {
    fn next(&self, id: u32) -> u32 {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(id).or_default();
        *n += 1;
        *n
    }
}

async fn send_email(job: Job, attempts: &Attempts) -> Result<(), ClassifiedError> {
    let attempt = attempts.next(job.id);
    tokio::time::sleep(Duration::from_millis(2)).await; // the "work"
    if job.id == BAD_ADDRESS {
        return Err(ClassifiedError::permanent(format!(
            "job {}: no such mailbox",
            job.id
        )));
    }
    if job.id % 3 == 0 && attempt <= 2 {
        return Err(ClassifiedError::transient(format!(
            "job {}: SMTP connection reset",
            job.id
        )));
    }
    Ok(())
}

async fn render_invoice(job: Job, attempts: &Attempts) -> Result<(), ClassifiedError> {
    let attempt = attempts.next(job.id);
    tokio::time::sleep(Duration::from_millis(2)).await;
    if job.id % 4 == 1 && attempt == 1 {
        return Err(ClassifiedError::concurrency(format!(
            "job {}: invoice row changed",
            job.id
        )));
    }
    Ok(())
}

/// How a job ended: its id, and the error text if it was given up.
type Outcome = (u32, Result<(), String>);

/// Events per (operation, kind), filled by the contexts' hooks.
type Tally = Arc<Mutex<BTreeMap<(String, &'static str), u32>>>;

fn context(policy: &RetryPolicy, operation: &'static str, tally: &Tally) -> BoundPolicy {
    let tally = Arc::clone(tally);
    policy.bind(operation).hook(move |e: &Event<'_>| {
        let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
        *t.entry((e.operation.to_owned(), e.kind.name()))
            .or_default() += 1;
        if e.kind != EventKind::Success && e.kind != EventKind::Retry {
            println!(
                "  {} gave up on attempt {}: {}",
                e.operation,
                e.attempt,
                e.error.map(|t| t.to_string()).unwrap_or_default()
            );
        }
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    match tokio::time::timeout(Duration::from_secs(30), run()).await {
        Ok(Ok(())) => {
            println!("worker_loop: ok");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("worker_loop: FAILED: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("worker_loop: FAILED: did not finish within 30 s");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let policy = RetryPolicy::builder()
        .strategy(Backoff::equal_jitter(
            Duration::from_millis(5),
            Duration::from_millis(50),
        ))
        .class_strategy(
            ErrorClass::Concurrency,
            Backoff::full_jitter(Duration::from_millis(1), Duration::from_millis(10)),
        )
        .max_attempts(4)
        .deadline(Duration::from_secs(5))
        .seed(20261129)
        .build()?;
    let tally: Tally = Arc::default();
    let emails = context(&policy, "send_email", &tally);
    let invoices = context(&policy, "render_invoice", &tally);
    let attempts = Arc::new(Attempts::default());
    let done: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let in_flight = Arc::new(AtomicU32::new(0));

    let (queue, jobs) = mpsc::channel::<Job>(8);
    let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let (jobs, emails, invoices) = (Arc::clone(&jobs), emails.clone(), invoices.clone());
        let (attempts, done, in_flight) = (
            Arc::clone(&attempts),
            Arc::clone(&done),
            Arc::clone(&in_flight),
        );
        workers.push(tokio::spawn(async move {
            let mut handled = 0u32;
            loop {
                // The queue's lock is held only while waiting for a job.
                let Some(job) = jobs.lock().await.recv().await else {
                    break; // closed and drained: shut down
                };
                in_flight.fetch_add(1, Ordering::SeqCst);
                let result = match job.kind {
                    Kind::Email => emails.call_async(|| send_email(job, &attempts)).await,
                    Kind::Invoice => invoices.call_async(|| render_invoice(job, &attempts)).await,
                };
                in_flight.fetch_sub(1, Ordering::SeqCst);
                done.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((job.id, result.map_err(|e| e.to_string())));
                handled += 1;
            }
            println!("  worker {worker} stopped after {handled} jobs");
            handled
        }));
    }

    for id in 0..JOBS {
        let kind = if id % 2 == 0 {
            Kind::Email
        } else {
            Kind::Invoice
        };
        queue.send(Job { id, kind }).await?;
    }
    drop(queue); // no more jobs: the workers drain the queue and stop
    let mut handled = 0;
    for worker in workers {
        handled += worker.await?;
    }

    let done = done.lock().unwrap_or_else(|p| p.into_inner());
    let tally = tally.lock().unwrap_or_else(|p| p.into_inner());
    println!("\nevents per context:");
    for ((operation, kind), n) in tally.iter() {
        println!("  {operation:<15} {kind:<15} {n}");
    }

    let mut failures = Vec::new();
    let mut ids: Vec<u32> = done.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    if ids != (0..JOBS).collect::<Vec<_>>() || handled != JOBS {
        failures.push(format!("not every job ended exactly once: {ids:?}"));
    }
    let dead: Vec<u32> = done
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(id, _)| *id)
        .collect();
    if dead != [BAD_ADDRESS] {
        failures.push(format!("dead letters {dead:?}, expected [{BAD_ADDRESS}]"));
    }
    if in_flight.load(Ordering::SeqCst) != 0 {
        failures.push("a job was still in flight after shutdown".to_owned());
    }
    // Emails (even ids) that are multiples of 3 fail twice; invoices (odd
    // ids) of the form 4n + 1 conflict once.
    let expected_email_retries = (0..JOBS).filter(|i| i % 2 == 0 && i % 3 == 0).count() as u32 * 2;
    let expected_invoice_retries = (0..JOBS).filter(|i| i % 4 == 1).count() as u32;
    let count =
        |op: &str, kind: &'static str| tally.get(&(op.to_owned(), kind)).copied().unwrap_or(0);
    let checks = [
        (
            "send_email retries",
            count("send_email", "retry"),
            expected_email_retries,
        ),
        (
            "render_invoice retries",
            count("render_invoice", "retry"),
            expected_invoice_retries,
        ),
        (
            "send_email successes",
            count("send_email", "success"),
            JOBS / 2 - 1,
        ),
        (
            "render_invoice successes",
            count("render_invoice", "success"),
            JOBS / 2,
        ),
        (
            "send_email permanent failures",
            count("send_email", "permanent_fail"),
            1,
        ),
    ];
    for (what, got, want) in checks {
        if got != want {
            failures.push(format!("{what}: {got}, expected {want}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}
