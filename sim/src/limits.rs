//! The limits that keep every accepted scenario within bounded memory,
//! output and work, and the checks that enforce them up front.
//!
//! Each limit is documented in sim/README.md ("Limits"). A scenario that
//! would cross one is refused before anything runs, with an error naming
//! the field and the limit; what cannot be known up front (how long the
//! virtual timeline gets, how many attempts the policies make) is counted
//! while the simulation runs, and the run stops with an error naming the
//! knob as soon as a limit is crossed.

use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use crate::scenario::{Arrival, Workload};

/// The largest scenario file read, in bytes (16 MiB).
pub const MAX_SCENARIO_BYTES: u64 = 16 << 20;
/// The largest trace file read, in bytes (16 MiB).
pub const MAX_TRACE_BYTES: u64 = 16 << 20;
/// The most time buckets one load-over-time series may have.
pub const MAX_BUCKETS: u64 = 100_000;
/// The most shared rows a `contention` model may have.
pub const MAX_ROWS: u32 = 1_000_000;
/// The most policies one scenario may compare.
pub const MAX_POLICIES: usize = 50;
/// The most attempts one call may make under a policy: the attempts
/// histogram has one entry per attempt count.
pub const MAX_ATTEMPTS_PER_CALL: u32 = 100_000;
/// The most (run, policy) pairs one simulation may have: every pair is a
/// row of the CSV report and an entry of the JSON report.
pub const MAX_JOBS: u64 = 100_000;
/// The default budget of simulated attempts over all runs and policies
/// (`max_simulated_attempts`).
pub const DEFAULT_MAX_SIMULATED_ATTEMPTS: u64 = 1_000_000_000;

/// Reads the text file at `path`, refusing anything but a regular file
/// (a folder, a FIFO, a device such as `/dev/zero`), files larger than
/// `limit` bytes and text that is not UTF-8.
pub fn read_text(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_bytes(path, limit)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not valid UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// The bytes of the file at `path`, refused as [`read_text`] refuses.
pub fn read_bytes(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let refuse = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({what}); only regular files are read"),
        )
    };
    let kind = |meta: &fs::Metadata| -> Option<&'static str> {
        let t = meta.file_type();
        if t.is_file() {
            return None;
        }
        Some(if t.is_dir() {
            "a folder"
        } else {
            special_kind(&t)
        })
    };
    // Look before opening: opening a FIFO for reading blocks until a
    // writer comes.
    if let Some(what) = kind(&fs::metadata(path)?) {
        return Err(refuse(what));
    }
    let file = fs::File::open(path)?;
    if let Some(what) = kind(&file.metadata()?) {
        return Err(refuse(what));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "larger than the limit of {} ({limit} bytes)",
                human_bytes(limit)
            ),
        ));
    }
    Ok(bytes)
}

#[cfg(unix)]
fn special_kind(t: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &fs::FileType) -> &'static str {
    "a special file"
}

fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

/// A length of time in words: as a duration up to a few centuries, in
/// years beyond.
fn human_time(secs: f64) -> String {
    const YEAR: f64 = 365.25 * 86_400.0;
    if secs < 100.0 * YEAR {
        reflexio::config::format_duration(Duration::from_secs_f64(secs.max(1e-9)))
    } else if secs < 1e6 * YEAR {
        format!("{:.0} years", secs / YEAR)
    } else {
        format!("{:.3e} years", secs / YEAR)
    }
}

/// A refusal: the field's dotted path and what is wrong.
pub type Refusal = (String, String);

/// How long the calls of a phased workload take to arrive, on average.
fn phased_span(workload: &Workload) -> f64 {
    let mut left = workload.calls.saturating_sub(1) as f64;
    let mut span = 0.0;
    for p in &workload.phases {
        match p.length {
            Some(l) if left > p.rate * l.as_secs_f64() => {
                left -= p.rate * l.as_secs_f64();
                span += l.as_secs_f64();
            }
            _ => return span + left / p.rate,
        }
    }
    span
}

/// Checks that the calls' arrivals fit in [`MAX_BUCKETS`] load buckets of
/// `bucket`. `bucket_set` says whether the scenario set `bucket` (the
/// error then names it; otherwise it names the workload field that
/// stretches the timeline).
///
/// Only the arrivals are known up front (for Poisson arrivals, their mean
/// span); the run itself stops when retries carry the timeline further.
pub fn check_timeline(
    workload: &Workload,
    bucket: Duration,
    bucket_set: bool,
) -> Result<(), Refusal> {
    let gaps = workload.calls.saturating_sub(1) as f64;
    let (span, field, what) = match &workload.arrival {
        Arrival::AllAtOnce => return Ok(()),
        Arrival::FixedRate { rate } => (
            gaps / rate,
            if workload.phases.is_empty() {
                "workload.rate"
            } else {
                "workload.phases"
            },
            "the calls arrive over",
        ),
        Arrival::Poisson { rate } => (
            gaps / rate,
            if workload.phases.is_empty() {
                "workload.rate"
            } else {
                "workload.phases"
            },
            "the calls arrive, on average, over",
        ),
        Arrival::ClosedLoop {
            clients,
            think_time,
        } => {
            let rounds = (workload.calls.saturating_sub(1) / u64::from(*clients)) as f64;
            (
                rounds * think_time.as_secs_f64(),
                "workload.think_time",
                "the clients' think times alone take",
            )
        }
    };
    // With phases, the calls arrive at each phase's rate in turn.
    let span = if workload.phases.is_empty() {
        span
    } else {
        phased_span(workload)
    };
    if !span.is_finite() {
        // No bucket is wide enough: the rate itself is the problem.
        return Err((
            field.to_owned(),
            format!(
                "{what} more time than can be counted ({} calls at this rate); raise the rate, or simulate fewer calls",
                workload.calls
            ),
        ));
    }
    let width = bucket.as_secs_f64();
    let buckets = span / width;
    if buckets < MAX_BUCKETS as f64 {
        return Ok(());
    }
    let field = if bucket_set { "bucket" } else { field };
    let wider = span / MAX_BUCKETS as f64;
    Err((
        field.to_owned(),
        format!(
            "{what} {}, which makes {buckets:.3e} load buckets of {}; the limit is {MAX_BUCKETS} buckets. Use a `bucket` of at least {}, or a shorter workload",
            human_time(span),
            human_time(width),
            human_time(wider),
        ),
    ))
}

/// Checks the (run, policy) pairs and the least work a simulation needs
/// (one attempt per call) against [`MAX_JOBS`] and `max_simulated_attempts`:
/// `calls` of the workload under test and `background` calls of its
/// `[[background]]` workloads in all, per run and policy.
pub fn check_work(
    calls: u64,
    background: u64,
    runs: u32,
    policies: usize,
    max_simulated_attempts: u64,
) -> Result<(), Refusal> {
    let jobs = u64::from(runs).saturating_mul(policies as u64);
    if jobs > MAX_JOBS {
        return Err((
            "runs".to_owned(),
            format!(
                "{runs} runs of {policies} policies make {jobs} (run, policy) pairs; the limit is {MAX_JOBS}. Use fewer runs or policies"
            ),
        ));
    }
    let all = calls.saturating_add(background);
    let least = jobs.saturating_mul(all);
    if least > max_simulated_attempts {
        let what = if background == 0 {
            format!("{calls} calls")
        } else {
            format!("{all} calls ({calls} of the workload, {background} of its background)")
        };
        return Err((
            "workload.calls".to_owned(),
            format!(
                "{what} × {runs} runs × {policies} policies need at least {least} simulated attempts, above `max_simulated_attempts` ({max_simulated_attempts}). Simulate fewer calls, runs or policies, or raise `max_simulated_attempts`"
            ),
        ));
    }
    Ok(())
}

/// Checks that a call under a policy whose worst case allows
/// `max_attempts` attempts (of which `before_deadline` can start before
/// its deadline) stays within [`MAX_ATTEMPTS_PER_CALL`].
pub fn check_attempts_per_call(max_attempts: u32, before_deadline: u32) -> Result<(), String> {
    let most = max_attempts.min(before_deadline);
    if most <= MAX_ATTEMPTS_PER_CALL {
        return Ok(());
    }
    Err(format!(
        "one call may make up to {most} attempts under this policy (its attempt caps and deadline allow that many); the simulator allows at most {MAX_ATTEMPTS_PER_CALL} per call. Lower `max_attempts`, or set a `deadline` with a longer minimum backoff"
    ))
}

/// Whether `c` is a control character (C0, DEL or C1) or a bidirectional
/// formatting character (an embedding, override or isolate, or an
/// implicit mark), which reorders the text printed after it.
fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Whether `text` holds a control character (C0, DEL or C1) or a
/// bidirectional formatting character.
pub fn has_control(text: &str) -> bool {
    text.chars().any(is_control)
}

/// `text` with every control or bidirectional formatting character
/// written as a `\u{..}` escape, so that printing it cannot move the
/// cursor, clear a terminal, end a line or reorder what follows.
pub fn escape_control(text: &str) -> String {
    if !has_control(text) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_control(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_control_character() {
        assert_eq!(escape_control("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape_control("x\u{7f}\u{85}\n"), "x\\u{7f}\\u{85}\\u{a}");
        assert_eq!(escape_control("plain-name_1"), "plain-name_1");
    }

    #[test]
    fn attempts_per_call_counts_the_deadline() {
        assert!(check_attempts_per_call(u32::MAX, 10).is_ok());
        assert!(check_attempts_per_call(MAX_ATTEMPTS_PER_CALL, u32::MAX).is_ok());
        assert!(check_attempts_per_call(MAX_ATTEMPTS_PER_CALL + 1, u32::MAX).is_err());
    }
}
