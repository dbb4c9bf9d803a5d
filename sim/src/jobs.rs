//! Where the (run, policy) jobs of a simulation run: on the calling thread
//! when one thread is all they get, on scoped threads otherwise.
//!
//! A thread of its own costs a small run more than the run itself: the
//! stack, a fresh allocator arena whose pages the kernel must zero, and
//! the signal stack. One job, or one core (a process pinned with
//! `taskset`, a container with one CPU), needs none of them. Which thread
//! runs a job never changes its result.

use std::thread::Scope;

/// Threads worth asking for `jobs` jobs: the cores this process may use,
/// found only when there is more than one job to share among them (the
/// lookup reads the cgroup files under /proc and /sys).
pub fn parallelism(jobs: usize) -> usize {
    if jobs <= 1 {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `work` in `scope`: on the calling thread, now, when `threads` is
/// 1 (the only worker); on a thread of its own otherwise.
pub fn spawn_or_run<'scope, F>(scope: &'scope Scope<'scope, '_>, threads: usize, work: F)
where
    F: FnOnce() + Send + 'scope,
{
    if threads <= 1 {
        work();
    } else {
        scope.spawn(work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_worker_runs_on_the_calling_thread() {
        let caller = std::thread::current().id();
        let ran = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            spawn_or_run(scope, 1, || {
                assert_eq!(std::thread::current().id(), caller);
                ran.fetch_add(1, Ordering::Relaxed);
            });
            // The work is done before the call returns.
            assert_eq!(ran.load(Ordering::Relaxed), 1);
        });
    }

    #[test]
    fn several_workers_get_threads_of_their_own() {
        let caller = std::thread::current().id();
        let elsewhere = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..3 {
                spawn_or_run(scope, 3, || {
                    if std::thread::current().id() != caller {
                        elsewhere.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(elsewhere.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn one_job_needs_one_thread() {
        assert_eq!(parallelism(0), 1);
        assert_eq!(parallelism(1), 1);
        assert_eq!(
            parallelism(1000),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
    }
}
