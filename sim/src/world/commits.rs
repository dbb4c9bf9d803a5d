//! One contended row, played without an event queue.
//!
//! When the only model with state is contention on a single row (beside
//! any stateless ones: random, outage, scripted, trace), the calls of a run
//! touch each other in one way only: an attempt whose read and write
//! straddle another attempt's committed write fails with concurrency.
//! Everything else about an attempt (its legs, the stateless models'
//! verdicts, the engine's decisions, the checker's audit) is its call's
//! own. So the event loop's order matters only for which pending write
//! commits next, and that is the earliest write among the attempts that
//! read after the last commit. An attempt that read before the last commit
//! has lost already, whenever its write comes.
//!
//! [`play`] finds the commits that way. It keeps each call's pending
//! attempt as its read and its write. For each commit it walks the calls
//! in flight once: it fails the attempts that read before the last commit
//! (the client learns, and sends its next attempt or ends the call) and
//! picks the earliest write among the others. On one row a commit ends
//! every pending attempt it overlaps, so a walk costs about as much as the
//! attempts it ends, and no attempt is ever queued.
//!
//! The results are the event loop's exactly: the same attempts with the
//! same draws and decisions, per call, and records per call and per load
//! bucket that do not depend on the order in which calls are recorded.
//! Where the event loop would order two events of one nanosecond by their
//! sequence (a read at a commit's instant, two writes at once), or where
//! the run would end in an error or find a violation (whose list keeps the
//! event loop's order), [`play`] gives up and the event loop runs the job
//! from the start.

use super::{Arrivals, Next, Run, Slot};
use crate::model::ModelKind;
use crate::scenario::{Arrival, Scenario};

/// The most calls a run may have for [`play`]: a walk visits every call in
/// flight, so its cost grows with them, where the event queue's grows with
/// their logarithm.
pub(super) const MAX_CALLS: u64 = 1024;

/// Whether [`play`] can run `scenario`'s jobs: one contention model of one
/// row and otherwise only stateless models, no background workload, an
/// open workload of at most [`MAX_CALLS`] calls. A policy with a retry
/// budget is driven by events regardless (its calls share state).
pub(super) fn applies(scenario: &Scenario) -> bool {
    let mut rows = 0;
    for model in &scenario.failures {
        match model.kind {
            ModelKind::Contention { rows: 1 } => rows += 1,
            ModelKind::Random { .. }
            | ModelKind::Outage { .. }
            | ModelKind::Scripted { .. }
            | ModelKind::Trace { .. } => {}
            _ => return false,
        }
    }
    rows == 1
        && scenario.background.is_empty()
        && !matches!(scenario.workload.arrival, Arrival::ClosedLoop { .. })
        && (1..=MAX_CALLS).contains(&scenario.workload.calls)
}

/// Why [`play`] handed a job back to the event loop.
struct GiveUp;

/// An attempt waiting to write to the row: when it read and when it
/// writes (the service's end), and its call.
#[derive(Clone, Copy)]
struct Pending {
    read: u64,
    write: u64,
    call: u32,
}

/// The pending attempts, one per call in flight, in no order; each field
/// in a vector of its own, so that a walk reads only the times it compares.
struct Flight {
    reads: Vec<u64>,
    writes: Vec<u64>,
    calls: Vec<u32>,
}

impl Flight {
    fn with_capacity(n: usize) -> Flight {
        Flight {
            reads: Vec::with_capacity(n),
            writes: Vec::with_capacity(n),
            calls: Vec::with_capacity(n),
        }
    }

    fn len(&self) -> usize {
        self.reads.len()
    }

    fn get(&self, i: usize) -> Pending {
        Pending {
            read: self.reads[i],
            write: self.writes[i],
            call: self.calls[i],
        }
    }

    fn set(&mut self, i: usize, p: Pending) {
        self.reads[i] = p.read;
        self.writes[i] = p.write;
        self.calls[i] = p.call;
    }

    fn push(&mut self, p: Pending) {
        self.reads.push(p.read);
        self.writes.push(p.write);
        self.calls.push(p.call);
    }

    fn swap_remove(&mut self, i: usize) -> Pending {
        Pending {
            read: self.reads.swap_remove(i),
            write: self.writes.swap_remove(i),
            call: self.calls.swap_remove(i),
        }
    }
}

/// The first of `reads` from `from` on that is at or before `last`, or
/// `reads.len()`. Kept out of line so that its loop runs in registers.
#[inline(never)]
fn first_read_by(reads: &[u64], from: usize, last: u64) -> usize {
    reads[from..]
        .iter()
        .position(|&r| r <= last)
        .map_or(reads.len(), |k| from + k)
}

/// The earliest of `writes`: its index (`usize::MAX` if there is none) and
/// whether another write falls on the same instant.
#[inline(never)]
fn earliest(writes: &[u64]) -> (usize, bool) {
    let mut best = u64::MAX;
    let mut at = usize::MAX;
    for (i, &w) in writes.iter().enumerate() {
        if w < best {
            best = w;
            at = i;
        }
    }
    if writes.is_empty() {
        return (usize::MAX, false);
    }
    if at == usize::MAX {
        // Every write at the last instant there is: the first of them.
        at = 0;
    }
    let tie = writes.iter().filter(|&&w| w == best).count() > 1;
    (at, tie)
}

/// Plays every call of `run` (whose scenario [`applies`]) with `seed`'s
/// arrivals. Returns whether it did: on `false` the run is spent, and the
/// job must be run again by the event loop.
pub(super) fn play(run: &mut Run<'_>, seed: u64) -> bool {
    play_calls(run, seed).is_ok() && run.checker.count() == 0
}

fn play_calls(run: &mut Run<'_>, seed: u64) -> Result<(), GiveUp> {
    let scenario = run.scenario;
    let workload = &scenario.workload;
    let calls = workload.calls;
    let mut arrivals = Arrivals::new(seed, crate::draws::STREAM_ARRIVALS);
    let mut next_arrival = Some(arrivals.time_of_next(&workload.arrival, &workload.phases));
    let mut slots: Vec<Slot> = Vec::with_capacity(calls as usize);
    let mut flight = Flight::with_capacity(calls as usize);
    // The last commit's write.
    let mut last: Option<u64> = None;
    loop {
        // The attempts that read before the last commit have lost: their
        // clients learn it, and send their next attempts.
        if let Some(l) = last {
            let mut i = 0;
            loop {
                i = first_read_by(&flight.reads, i, l);
                if i == flight.len() {
                    break;
                }
                let p = flight.get(i);
                // A read at the commit's very instant is ordered by the
                // event loop's sequence numbers.
                if p.read == l || p.write < l {
                    return Err(GiveUp);
                }
                let s = &mut slots[p.call as usize];
                run.service.finish(&mut s.plan, (p.write, 0));
                match settle(run, s)? {
                    Some(next) => flight.set(i, next),
                    None => {
                        flight.swap_remove(i);
                    }
                }
            }
        }
        // The earliest write among the others commits next, unless a call
        // arriving before it writes earlier still.
        let (mut best_at, mut tie) = earliest(&flight.writes);
        let mut best = flight.writes.get(best_at).copied().unwrap_or(u64::MAX);
        while let Some(t) = next_arrival {
            // With nothing pending the next call starts, whenever it comes.
            if best_at != usize::MAX && t >= best {
                break;
            }
            let call = arrivals.next as u32;
            arrivals.next += 1;
            next_arrival = (arrivals.next < calls)
                .then(|| arrivals.time_of_next(&workload.arrival, &workload.phases));
            let row_draw = run.outcomes.at(call, 0).raw(0);
            slots.push(Slot::new(call, run.engine.start(), t, row_draw));
            let s = &mut slots[call as usize];
            if let Some(p) = attempts_from(run, s, t)? {
                // Calls arriving before the last commit started before it.
                if last.is_some_and(|l| p.read <= l) {
                    return Err(GiveUp);
                }
                if best_at == usize::MAX || p.write < best {
                    best = p.write;
                    best_at = flight.len();
                    tie = false;
                } else if p.write == best {
                    tie = true;
                }
                flight.push(p);
            }
        }
        if best_at == usize::MAX {
            return Ok(());
        }
        if tie {
            return Err(GiveUp);
        }
        let p = flight.swap_remove(best_at);
        let s = &mut slots[p.call as usize];
        run.service.finish(&mut s.plan, (p.write, 0));
        if let Some(next) = settle(run, s)? {
            flight.push(next);
        }
        last = Some(p.write);
    }
}

/// The client of `s` learns its attempt's outcome (settled in its plan)
/// and goes on: the call's next attempt that waits on the row, if the
/// call does not end first.
fn settle(run: &mut Run<'_>, s: &mut Slot) -> Result<Option<Pending>, GiveUp> {
    match next_send(run, s) {
        Some(at) => attempts_from(run, s, at),
        None => Ok(None),
    }
}

/// The client of `s` learns its attempt's outcome: when it sends the next
/// attempt, or `None` if the call ended.
fn next_send(run: &mut Run<'_>, s: &mut Slot) -> Option<u64> {
    let learn = s.send.saturating_add(s.plan.client);
    match run.learn(s, learn) {
        Next::Wake(delay) => Some(learn.saturating_add(delay)),
        Next::Done(_) => None,
    }
}

/// The call of `s` sends attempts from `at` on, settling at once those
/// whose outcome is its own (a stateless model's failure, or no write to
/// the row), until one waits on the row or the call ends.
fn attempts_from(run: &mut Run<'_>, s: &mut Slot, mut at: u64) -> Result<Option<Pending>, GiveUp> {
    loop {
        let reach = run.send(s, at);
        let (write, _) = run.reach(s, reach, 0);
        if run.results.attempts_total > run.runaway || run.results.timeline_full {
            return Err(GiveUp);
        }
        if s.plan.outcome.is_none() && s.plan.write.is_some() {
            return Ok(Some(Pending {
                read: reach,
                write,
                call: s.call,
            }));
        }
        run.service.finish(&mut s.plan, (write, 0));
        match next_send(run, s) {
            Some(next) => at = next,
            None => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::PolicyMetrics;
    use crate::world::{run_job_as, run_policy_with, Jobs, Mode};
    use proptest::prelude::*;
    use std::sync::atomic::AtomicU64;

    /// The job played by [`play`], or `None` where it gave up.
    fn played(scenario: &Scenario, policy: usize, seed: u64) -> Option<PolicyMetrics> {
        assert!(applies(scenario));
        let spent = AtomicU64::new(0);
        let mut run = Run::new(scenario, &scenario.policies[policy], None, seed, &spent);
        if !play(&mut run, seed) {
            return None;
        }
        run.bounds(true).unwrap();
        Some(run.into_metrics(None))
    }

    /// Every policy of `source` with `seed`: the default mode's event loop
    /// gives what the default mode gives (which plays the jobs), and what
    /// [`play`] gives where it does not give up. Returns how many policies
    /// it played.
    fn compare(source: &str, seed: u64) -> usize {
        let scenario = Scenario::from_toml_str(source, "commits.toml").unwrap();
        let mut kept = 0;
        for (k, policy) in scenario.policies.iter().enumerate() {
            let spent = AtomicU64::new(0);
            let jobs = Jobs {
                spent: &spent,
                play: false,
            };
            let events = run_job_as(&scenario, policy, seed, Mode::Auto, &mut |_| {}, jobs, None);
            let auto = run_policy_with(&scenario, policy, seed, Mode::Auto, &mut |_| {});
            assert_eq!(auto, events, "policy {} in\n{source}", policy.name);
            if let Some(m) = played(&scenario, k, seed) {
                assert_eq!(Ok(m), events, "policy {} in\n{source}", policy.name);
                kept += 1;
            }
        }
        kept
    }

    const POLICIES: &str = r#"
[policies.none]
deadline = "off"
max_attempts = 200
strategy = { kind = "constant", base = "0s" }
[policies.exponential]
deadline = "off"
max_attempts = 200
strategy = { kind = "exponential", base = "2ms", max = "200ms" }
[policies.full]
max_attempts = 6
strategy = { kind = "full_jitter", base = "3ms", max = "100ms" }
[policies.decorrelated]
deadline = "300ms"
max_attempts = 50
strategy = { kind = "decorrelated_jitter", base = "1ms", max = "50ms" }
"#;

    #[test]
    fn the_hot_row_and_occ_are_played_and_agree_with_the_event_loop() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/");
        for file in ["benches/hot-row.toml", "scenarios/occ.toml"] {
            let source = std::fs::read_to_string(format!("{root}{file}")).unwrap();
            let scenario = Scenario::from_toml_str(&source, file).unwrap();
            for seed in [1, 2] {
                let kept = compare(&source, seed);
                assert_eq!(kept, scenario.policies.len(), "{file}, seed {seed}");
            }
        }
    }

    #[test]
    fn a_read_at_a_commits_instant_is_left_to_the_event_loop() {
        // Constant hops: every call of the first wave reads at 5 ms and
        // writes at 15 ms, so their writes fall on one instant.
        let source = format!(
            r#"
[workload]
calls = 20
arrival = "all_at_once"
[latency]
request = {{ distribution = "constant", value = "5ms" }}
service = {{ distribution = "constant", value = "10ms" }}
[[failures]]
model = "contention"
rows = 1
{POLICIES}"#
        );
        assert_eq!(compare(&source, 3), 0);
    }

    #[test]
    fn the_earliest_write_is_found_at_any_instant() {
        assert_eq!(earliest(&[]), (usize::MAX, false));
        // The last instant there is still counts as a write.
        assert_eq!(earliest(&[u64::MAX]), (0, false));
        assert_eq!(earliest(&[u64::MAX, u64::MAX]), (0, true));
        assert_eq!(earliest(&[9, 4, 7, 4]), (1, true));
        assert_eq!(earliest(&[9, 4, 7, 5]), (1, false));
        assert_eq!(earliest(&[0]), (0, false));
    }

    #[test]
    fn scenarios_the_play_does_not_apply_to() {
        let base = |failures: &str, workload: &str| {
            Scenario::from_toml_str(
                &format!("[workload]\n{workload}\n{failures}\n{POLICIES}"),
                "x.toml",
            )
            .unwrap()
        };
        let row = "[[failures]]\nmodel = \"contention\"\nrows = 1\n";
        assert!(applies(&base(row, "calls = 10")));
        let rows = "[[failures]]\nmodel = \"contention\"\nrows = 2\n";
        assert!(!applies(&base(rows, "calls = 10")));
        let limiter =
            format!("{row}[[failures]]\nmodel = \"rate_limit\"\nrate = 10.0\nburst = 1\n");
        assert!(!applies(&base(&limiter, "calls = 10")));
        assert!(!applies(&base(&format!("{row}{row}"), "calls = 10")));
        assert!(!applies(&base(
            row,
            "calls = 10\narrival = \"closed_loop\"\nclients = 2"
        )));
        assert!(!applies(&base(row, &format!("calls = {}", MAX_CALLS + 1))));
        assert!(!applies(&base("", "calls = 10")));
    }

    fn latency() -> impl Strategy<Value = String> {
        let leg = prop_oneof![
            (1u32..20, 1u32..20).prop_map(|(a, b)| format!(
                "{{ distribution = \"uniform\", min = \"{}us\", max = \"{}us\" }}",
                a * 100,
                a * 100 + b * 300
            )),
            (1u32..30).prop_map(|m| format!(
                "{{ distribution = \"exponential\", mean = \"{}us\" }}",
                m * 200
            )),
            (0u32..3).prop_map(|v| format!("{{ distribution = \"constant\", value = \"{v}ms\" }}")),
        ];
        prop_oneof![
            (1u32..30).prop_map(|m| format!(
                "[latency]\ndistribution = \"exponential\"\nmean = \"{m}ms\"\n"
            )),
            (
                1u32..=2,
                leg.clone(),
                prop::option::of(leg.clone()),
                leg.clone(),
                prop::option::of(leg),
            )
                .prop_map(|(trips, request, service, response, retry)| {
                    let service = service.map_or(String::new(), |s| format!("service = {s}\n"));
                    // Retries on legs of their own: another request leg.
                    let retry =
                        retry.map_or(String::new(), |r| format!("[latency.retry]\nrequest = {r}\n"));
                    format!(
                        "[latency]\nround_trips = {trips}\nrequest = {request}\n{service}response = {response}\n{retry}"
                    )
                }),
        ]
    }

    fn arrival() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("arrival = \"all_at_once\"\n".to_owned()),
            (10u32..3000).prop_map(|r| format!("arrival = \"fixed_rate\"\nrate = {r}.0\n")),
            (10u32..3000).prop_map(|r| format!("arrival = \"poisson\"\nrate = {r}.0\n")),
            (10u32..500, 1u32..50, 10u32..3000).prop_map(|(a, ms, b)| format!(
                "arrival = \"poisson\"\nphases = [{{ rate = {a}.0, for = \"{ms}ms\" }}, {{ rate = {b}.0 }}]\n"
            )),
        ]
    }

    fn failures() -> impl Strategy<Value = String> {
        let row = prop_oneof![
            Just("[[failures]]\nmodel = \"contention\"\nrows = 1\n".to_owned()),
            (0u32..40, 1u32..80).prop_map(|(from, span)| format!(
                "[[failures]]\nmodel = \"contention\"\nrows = 1\nfrom = \"{from}ms\"\nuntil = \"{}ms\"\n",
                from + span
            )),
        ];
        let random = (1u32..40).prop_map(|p| {
            format!(
                "[[failures]]\nmodel = \"random\"\nprobability = 0.{p:02}\nclasses = {{ transient = 2.0, unknown = 1.0, permanent = 0.2 }}\n"
            )
        });
        let outage = (0u32..50, 1u32..30).prop_map(|(start, span)| {
            format!(
                "[[failures]]\nmodel = \"outage\"\nstart = \"{start}ms\"\nend = \"{}ms\"\nclass = \"server_error\"\n",
                start + span
            )
        });
        let scripted = prop_oneof![
            Just(String::new()),
            Just(
                "[[failures]]\nmodel = \"scripted\"\noutcomes = [\"transient\", \"ok\", \"rate_limit/2ms\"]\nthen = \"ok\"\nfrom = \"5ms\"\nuntil = \"40ms\"\n"
                    .to_owned()
            ),
            Just(
                "[[failures]]\nmodel = \"trace\"\ndata = \"0,ok\\n0.01,server_error\\n0.014,ok\\n\"\n"
                    .to_owned()
            ),
        ];
        (
            row,
            prop::option::of(random),
            prop::option::of(outage),
            scripted,
            any::<bool>(),
        )
            .prop_map(|(row, random, outage, scripted, row_first)| {
                let others = random.unwrap_or_default() + &outage.unwrap_or_default() + &scripted;
                if row_first {
                    row + &others
                } else {
                    others + &row
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Small runs on one row, with legs or without (and retries on
        /// legs of their own), arrivals of every kind, other models before
        /// or after the row and an oversleep:
        /// wherever the play does not give up, it gives the event loop's
        /// metrics exactly.
        #[test]
        fn the_play_agrees_with_the_event_loop(
            calls in 1u64..60,
            arrival in arrival(),
            latency in latency(),
            failures in failures(),
            oversleep in any::<bool>(),
            seed in 0u64..1000,
        ) {
            let client = if oversleep {
                "[client]\noversleep = { distribution = \"exponential\", mean = \"300us\" }\n"
            } else {
                ""
            };
            let source = format!(
                "bucket = \"5ms\"\n[workload]\ncalls = {calls}\n{arrival}{latency}{failures}{client}{POLICIES}"
            );
            compare(&source, seed);
        }
    }

    #[test]
    fn most_generated_runs_are_played() {
        // The same kind of runs as the property above, with continuous
        // legs: the play gives up only on a tie, which these rarely make.
        let mut kept = 0;
        let mut all = 0;
        for (k, arrival) in [
            "arrival = \"all_at_once\"\n",
            "arrival = \"poisson\"\nrate = 800.0\n",
            "arrival = \"fixed_rate\"\nrate = 300.0\n",
        ]
        .iter()
        .enumerate()
        {
            let source = format!(
                "[workload]\ncalls = 40\n{arrival}[latency]\nround_trips = 2\nrequest = {{ distribution = \"uniform\", min = \"1ms\", max = \"3ms\" }}\nresponse = {{ distribution = \"exponential\", mean = \"1ms\" }}\n[[failures]]\nmodel = \"random\"\nprobability = 0.1\nclasses = {{ transient = 1.0 }}\n[[failures]]\nmodel = \"contention\"\nrows = 1\n{POLICIES}"
            );
            for seed in 0..3 {
                kept += compare(&source, seed + 10 * k as u64);
                all += 4;
            }
        }
        assert_eq!(kept, all);
    }
}
