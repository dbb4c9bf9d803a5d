//! A cheap, coarse time source for deadlines.
//!
//! A policy with a deadline reads the clock once per call, even when the
//! call succeeds at once. [`SystemClock`](crate::SystemClock) reads
//! [`std::time::Instant`], a `clock_gettime(CLOCK_MONOTONIC)`: tens of
//! nanoseconds on a virtual machine whose clock source is not the TSC, more
//! than everything else a successful call costs. Retry deadlines are
//! seconds long; they do not need nanoseconds.
//!
//! [`CoarseClock`] reads the kernel's coarse monotonic clock
//! (`CLOCK_MONOTONIC_COARSE` on Linux and Android): the time of the last
//! scheduler tick, copied out of a page the kernel shares with every
//! process, without reading any hardware counter. It costs a few
//! nanoseconds on every machine, and is precise to one tick
//! ([`CoarseClock::resolution`], typically 1 to 4 ms, at worst 10 ms).
//! Elsewhere it falls back to [`Instant`]: the same precision and cost as
//! [`SystemClock`](crate::SystemClock).

use std::time::{Duration, Instant};

use crate::clock::{Clock, SleepFuture, Sleeper};

/// A monotonic clock precise to the kernel's scheduler tick, cheaper to read
/// than [`SystemClock`](crate::SystemClock); chosen explicitly with
/// [`RetryPolicyBuilder::clock`](crate::RetryPolicyBuilder::clock).
///
/// # What a coarse clock means for the envelope
///
/// The engine sees time in steps of [`resolution`](CoarseClock::resolution)
/// `r`. The elapsed time it is handed is then off by less than `r` either
/// way, so, by an exact clock:
///
/// * an attempt may start up to `r` after the deadline (the engine cuts the
///   last sleep to the deadline *it* sees, which may be up to `r` late);
///   the wake-up check ([`WAKE_TOLERANCE`](crate::engine::WAKE_TOLERANCE),
///   10 ms) stays as it is on top of that;
/// * a call may give up with `deadline_exceeded` up to `r` before the
///   deadline;
/// * attempt caps, class caps, the unknown cap, never retrying permanent
///   errors and the strategies' bounds do not depend on the clock and do
///   not change.
///
/// With `r` of a few milliseconds against deadlines of seconds, this is
/// the precision a retry deadline needs. Where it is not (a deadline of a
/// few milliseconds), keep [`SystemClock`](crate::SystemClock).
///
/// Sleeping is [`std::thread::sleep`] for the blocking driver; as a
/// [`Sleeper`] it sleeps like [`ThreadSleeper`](crate::ThreadSleeper), on a
/// short-lived thread, so an async service should pair a runtime's sleeper
/// with it, or keep the runtime's own clock.
///
/// ```
/// use std::time::Duration;
/// use reflexio::{CoarseClock, RetryPolicy};
///
/// let policy = RetryPolicy::builder()
///     .strategy(reflexio::strategy::default_backoff())
///     .deadline(Duration::from_secs(10))
///     .clock(CoarseClock::new())
///     .build()?;
/// assert!(CoarseClock::new().resolution() <= Duration::from_millis(10));
/// assert_eq!(policy.call(|| Ok::<_, std::io::Error>(1)).unwrap(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CoarseClock {
    origin: Duration,
    fallback: Instant,
}

impl CoarseClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        let fallback = Instant::now();
        CoarseClock {
            origin: coarse_now(fallback),
            fallback,
        }
    }

    /// The step in which this clock's time moves: the coarse clock's
    /// resolution as the kernel reports it, or `1 ns` where the clock falls
    /// back to [`Instant`].
    pub fn resolution(&self) -> Duration {
        coarse_resolution()
    }
}

impl Default for CoarseClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for CoarseClock {
    #[inline]
    fn now(&self) -> Duration {
        coarse_now(self.fallback).saturating_sub(self.origin)
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

impl Sleeper for CoarseClock {
    #[inline]
    fn now(&self) -> Duration {
        Clock::now(self)
    }

    fn sleep(&self, duration: Duration) -> SleepFuture {
        crate::clock::ThreadSleeper::new().sleep(duration)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn coarse_now(_fallback: Instant) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the whole call, and
    // CLOCK_MONOTONIC_COARSE exists on every Linux since 2.6.32.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    // The kernel keeps both fields non-negative and tv_nsec below 10^9.
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn coarse_resolution() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: as in `coarse_now`.
    let rc = unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    if rc != 0 {
        // The Linux default tick, at its coarsest.
        return Duration::from_millis(10);
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[inline]
fn coarse_now(fallback: Instant) -> Duration {
    fallback.elapsed()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn coarse_resolution() -> Duration {
    Duration::from_nanos(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_backwards_nor_runs_ahead_of_real_time() {
        let clock = CoarseClock::new();
        let real = Instant::now();
        let r = clock.resolution();
        assert!(
            r > Duration::ZERO && r <= Duration::from_millis(10),
            "{r:?}"
        );
        let mut last = Clock::now(&clock);
        let mut moved = false;
        while real.elapsed() < Duration::from_millis(40) {
            let now = Clock::now(&clock);
            assert!(now >= last);
            moved |= now > last;
            last = now;
            std::thread::sleep(Duration::from_millis(1));
        }
        // The coarse origin may lag the true one by up to a tick, never
        // lead it; and 40 ms is several ticks, so it moved.
        assert!(last <= real.elapsed() + r, "{last:?} {r:?}");
        assert!(moved || r == Duration::from_nanos(1));
    }
}
