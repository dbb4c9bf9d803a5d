//! Time for the drivers: reading it and waiting.
//!
//! The engine never reads a clock. The blocking driver asks a [`Clock`], the
//! async driver a [`Sleeper`]. [`SystemClock`] is real time;
//! [`ManualClock`] is a fake clock whose sleeps return at once and only move
//! its time forward, for tests that must not really sleep.
//!
//! A clock that can also sleep without blocking says so through
//! [`Clock::sleeper`]; then one
//! [`RetryPolicyBuilder::clock`](crate::RetryPolicyBuilder::clock) sets the
//! time of both drivers (`ManualClock` does this).
//!
//! Every `Duration` is accepted, up to `Duration::MAX`: a sleep too long to
//! express as a wake-up instant sleeps for as long as the platform can
//! (in effect forever); none panics.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A monotonic time source and a blocking sleep, for [`RetryPolicy::call`](crate::RetryPolicy::call).
pub trait Clock: Send + Sync {
    /// Time since an arbitrary, fixed origin. Must never go backwards.
    fn now(&self) -> Duration;
    /// Blocks the current thread for `duration`.
    fn sleep(&self, duration: Duration);

    /// The same time line as a [`Sleeper`], for the async driver, if this
    /// clock has one. A policy built with [`clock`](crate::RetryPolicyBuilder::clock)
    /// uses it for `call_async` too, unless a
    /// [`sleeper`](crate::RetryPolicyBuilder::sleeper) was set explicitly.
    /// The default is `None`: real clocks leave async sleeping to the
    /// runtime's timer.
    fn sleeper(&self) -> Option<Arc<dyn Sleeper>> {
        None
    }
}

/// A boxed future that completes after a sleep.
pub type SleepFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A monotonic time source and a non-blocking sleep, for
/// [`RetryPolicy::call_async`](crate::RetryPolicy::call_async).
///
/// This is what keeps the async driver runtime-agnostic: tokio's sleeper is
/// `TokioSleeper` (feature `tokio`), and any other runtime plugs in its
/// own timer by implementing this trait.
pub trait Sleeper: Send + Sync {
    /// Time since an arbitrary, fixed origin, as the runtime sees it (so a
    /// runtime with paused or virtual time is honoured).
    fn now(&self) -> Duration;
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> SleepFuture;
}

/// Real time: [`Instant`] and [`std::thread::sleep`].
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A runtime-agnostic [`Sleeper`] that needs no async runtime: each sleep
/// waits on a short-lived helper thread, then wakes the task.
///
/// It is the async default when the `tokio` feature is off. It costs a
/// thread per sleep, which is fine for retries (rare, and long compared to
/// starting a thread); with a runtime at hand prefer its own timer.
#[derive(Debug, Clone, Copy)]
pub struct ThreadSleeper {
    origin: Instant,
}

impl ThreadSleeper {
    /// A sleeper whose origin is now.
    pub fn new() -> Self {
        ThreadSleeper {
            origin: Instant::now(),
        }
    }
}

impl Default for ThreadSleeper {
    fn default() -> Self {
        Self::new()
    }
}

impl Sleeper for ThreadSleeper {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(ThreadSleep {
            // A wake-up instant past what `Instant` can hold (a sleep of
            // centuries) is never reached: the sleep then only ends when
            // its helper thread, sleeping the whole duration, says so.
            until: Instant::now().checked_add(duration),
            duration,
            shared: None,
        })
    }
}

struct ThreadSleep {
    until: Option<Instant>,
    duration: Duration,
    /// Set once the helper thread is started: whether it is done, and the
    /// waker of the latest poll.
    shared: Option<Arc<Mutex<(bool, Waker)>>>,
}

impl Future for ThreadSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let now = Instant::now();
        if self.until.is_some_and(|until| now >= until) {
            return Poll::Ready(());
        }
        if let Some(shared) = &self.shared {
            let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
            if state.0 {
                return Poll::Ready(());
            }
            state.1.clone_from(cx.waker());
            return Poll::Pending;
        }
        let shared = Arc::new(Mutex::new((false, cx.waker().clone())));
        let wait = match self.until {
            Some(until) => until - now,
            None => self.duration,
        };
        let thread_shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            // `thread::sleep` accepts any duration, sleeping in steps.
            std::thread::sleep(wait);
            let mut state = thread_shared.lock().unwrap_or_else(|e| e.into_inner());
            state.0 = true;
            state.1.wake_by_ref();
        });
        self.shared = Some(shared);
        Poll::Pending
    }
}

/// tokio's timer: `tokio::time::sleep` and `tokio::time::Instant`, so
/// paused test time is honoured.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
#[derive(Debug, Clone, Copy)]
pub struct TokioSleeper {
    origin: tokio::time::Instant,
}

#[cfg(feature = "tokio")]
impl TokioSleeper {
    /// A sleeper whose origin is now. Call it where tokio's time is
    /// available (inside a runtime for paused time).
    pub fn new() -> Self {
        TokioSleeper {
            origin: tokio::time::Instant::now(),
        }
    }
}

#[cfg(feature = "tokio")]
impl Default for TokioSleeper {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "tokio")]
impl Sleeper for TokioSleeper {
    fn now(&self) -> Duration {
        tokio::time::Instant::now().saturating_duration_since(self.origin)
    }

    fn sleep(&self, duration: Duration) -> SleepFuture {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A fake clock for tests: sleeping returns at once and moves the time
/// forward; [`advance`](ManualClock::advance) models time an attempt takes.
///
/// Clones share one time line. It is both a [`Clock`] and a [`Sleeper`],
/// and as a clock it hands itself out as its [`Clock::sleeper`], so
/// `.clock(ManualClock::new())` fakes the time of blocking and async
/// calls alike. Its own [`sleep`](ManualClock::sleep) and
/// [`now`](ManualClock::now) are inherent methods: they take precedence,
/// so calling them is never ambiguous, whichever traits are in scope.
///
/// ```
/// use std::time::Duration;
/// use reflexio::{Clock, ManualClock, Sleeper};
///
/// let clock = ManualClock::new();
/// clock.sleep(Duration::from_millis(250));
/// clock.advance(Duration::from_millis(50));
/// assert_eq!(clock.now(), Duration::from_millis(300));
/// assert_eq!(clock.slept(), Duration::from_millis(250));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug, Default)]
struct ManualInner {
    now_nanos: AtomicU64,
    slept_nanos: AtomicU64,
    sleeps: AtomicU64,
}

fn to_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves time forward by `duration` without counting it as sleep.
    pub fn advance(&self, duration: Duration) {
        let n = to_nanos(duration);
        let _ = self
            .inner
            .now_nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(n))
            });
    }

    /// The current fake time.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.inner.now_nanos.load(Ordering::SeqCst))
    }

    /// Sleeps `duration` on the fake time line: returns at once, moves the
    /// time forward and counts the sleep. Durations past `u64::MAX`
    /// nanoseconds saturate there (about 584 years).
    pub fn sleep(&self, duration: Duration) {
        self.record_sleep(duration);
    }

    /// Total time slept so far.
    pub fn slept(&self) -> Duration {
        Duration::from_nanos(self.inner.slept_nanos.load(Ordering::SeqCst))
    }

    /// How many sleeps were made so far.
    pub fn sleeps(&self) -> u64 {
        self.inner.sleeps.load(Ordering::SeqCst)
    }

    fn record_sleep(&self, duration: Duration) {
        let n = to_nanos(duration);
        self.advance(duration);
        let _ = self
            .inner
            .slept_nanos
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(n))
            });
        self.inner.sleeps.fetch_add(1, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        ManualClock::now(self)
    }

    fn sleep(&self, duration: Duration) {
        self.record_sleep(duration);
    }

    fn sleeper(&self) -> Option<Arc<dyn Sleeper>> {
        Some(Arc::new(self.clone()))
    }
}

impl Sleeper for ManualClock {
    fn now(&self) -> Duration {
        ManualClock::now(self)
    }

    fn sleep(&self, duration: Duration) -> SleepFuture {
        self.record_sleep(duration);
        Box::pin(std::future::ready(()))
    }
}
