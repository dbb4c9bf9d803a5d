//! Two implementations, one answer: the simulator against things it did
//! not write.
//!
//! * A naive reference model of the optimistic-concurrency experiment (N
//!   clients updating one row, each cycle a read round trip and a write
//!   round trip, a backoff between cycles), written here as a plain event
//!   loop that shares no code with the simulator's world: its own random
//!   numbers, its own backoff formulas (from their documentation), its own
//!   version counter. Over many runs the two agree on the attempts made and
//!   on when the last client is done, within 3 standard errors, for five
//!   strategies at several N.
//! * Closed forms: independent failures, and a token bucket's long-run
//!   admitted rate.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use reflexio_sim::Scenario;

// ---------------------------------------------------------------------------
// The reference model

/// SplitMix64, the reference model's own generator.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi] milliseconds.
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + self.unit() * (hi - lo)
    }
}

#[derive(Clone, Copy, Debug)]
enum Backoff {
    None,
    Exponential,
    Full,
    Equal,
    Decorrelated,
}

const BASE_MS: f64 = 10.0;
const MAX_MS: f64 = 1000.0;
const HOP_MS: (f64, f64) = (5.0, 15.0);

impl Backoff {
    /// The delay after failed attempt `attempt` (1-based), in ms, as the
    /// strategies' documentation gives it; `previous` is the last delay.
    fn delay(self, attempt: u32, previous: &mut f64, dice: &mut Dice) -> f64 {
        let grown = |exp: u32| (BASE_MS * 2f64.powi(exp as i32)).min(MAX_MS);
        match self {
            Backoff::None => 0.0,
            Backoff::Exponential => grown(attempt - 1),
            Backoff::Full => dice.between(0.0, grown(attempt)),
            Backoff::Equal => {
                let cap = grown(attempt);
                dice.between(cap / 2.0, cap)
            }
            Backoff::Decorrelated => {
                let d = dice.between(BASE_MS, 3.0 * *previous).min(MAX_MS);
                *previous = d;
                d
            }
        }
    }

    fn toml(self) -> &'static str {
        match self {
            Backoff::None => "{ kind = \"constant\", base = \"0s\" }",
            Backoff::Exponential => "{ kind = \"exponential\", base = \"10ms\", max = \"1s\" }",
            Backoff::Full => "{ kind = \"full_jitter\", base = \"10ms\", max = \"1s\" }",
            Backoff::Equal => "{ kind = \"equal_jitter\", base = \"10ms\", max = \"1s\" }",
            Backoff::Decorrelated => {
                "{ kind = \"decorrelated_jitter\", base = \"10ms\", max = \"1s\" }"
            }
        }
    }
}

/// What happens next to a client, at a time in ms.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Step {
    /// The read request reaches the row.
    Read,
    /// The write request reaches the row.
    Write,
    /// The write's reply reaches the client.
    Learn,
}

/// One run of the experiment: N clients start a cycle at time 0; each
/// hop takes uniform 5..15 ms. Returns (attempts, time the last client
/// learned of its success, in ms).
fn reference_run(n: usize, backoff: Backoff, seed: u64) -> (u64, f64) {
    let mut dice = Dice(seed);
    let mut version = 0u64;
    // Per client: version read, attempt number, previous delay, won.
    let mut read = vec![0u64; n];
    let mut attempt = vec![1u32; n];
    let mut previous = vec![BASE_MS; n];
    let mut won = vec![false; n];
    // (time in ns, tie-breaker, step, client)
    let mut queue = BinaryHeap::new();
    let mut seq = 0u64;
    let mut at = |queue: &mut BinaryHeap<_>, t: f64, step: Step, c: usize| {
        seq += 1;
        queue.push(Reverse(((t * 1e6) as u64, seq, step, c)));
    };
    for c in 0..n {
        let t = dice.between(HOP_MS.0, HOP_MS.1);
        at(&mut queue, t, Step::Read, c);
    }
    let mut attempts = n as u64;
    let mut last = 0.0f64;
    while let Some(Reverse((t, _, step, c))) = queue.pop() {
        let now = t as f64 / 1e6;
        match step {
            Step::Read => {
                read[c] = version;
                // Read reply, then the write request.
                let hops = dice.between(HOP_MS.0, HOP_MS.1) + dice.between(HOP_MS.0, HOP_MS.1);
                at(&mut queue, now + hops, Step::Write, c);
            }
            Step::Write => {
                if read[c] == version {
                    version += 1;
                    won[c] = true;
                }
                let hop = dice.between(HOP_MS.0, HOP_MS.1);
                at(&mut queue, now + hop, Step::Learn, c);
            }
            Step::Learn => {
                if won[c] {
                    last = last.max(now);
                } else {
                    let delay = backoff.delay(attempt[c], &mut previous[c], &mut dice);
                    attempt[c] += 1;
                    attempts += 1;
                    let hop = dice.between(HOP_MS.0, HOP_MS.1);
                    at(&mut queue, now + delay + hop, Step::Read, c);
                }
            }
        }
    }
    (attempts, last)
}

// ---------------------------------------------------------------------------
// Statistics

/// Mean and standard error of the mean.
fn mean_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

fn agree(what: &str, sim: &[f64], reference: &[f64]) {
    let (a, sa) = mean_se(sim);
    let (b, sb) = mean_se(reference);
    let se = (sa * sa + sb * sb).sqrt();
    eprintln!("{what}: {:+.2} se", (a - b) / se);
    assert!(
        (a - b).abs() <= 3.0 * se,
        "{what}: simulator {a:.3} ±{sa:.3}, reference {b:.3} ±{sb:.3}: {:.1} standard errors apart",
        (a - b).abs() / se
    );
}

#[test]
fn the_simulator_agrees_with_a_naive_reference_model_of_read_then_write() {
    const STRATEGIES: [(Backoff, &str); 5] = [
        (Backoff::None, "none"),
        (Backoff::Exponential, "exponential"),
        (Backoff::Full, "full"),
        (Backoff::Equal, "equal"),
        (Backoff::Decorrelated, "decorrelated"),
    ];
    let mut policies = String::new();
    for (b, name) in STRATEGIES {
        policies.push_str(&format!(
            "[policies.{name}]\ndeadline = \"off\"\nmax_attempts = 100000\nstrategy = {}\n",
            b.toml()
        ));
    }
    // Enough runs for the means to be known well: the simulator's five
    // policies share their runs' network draws (common random numbers), so
    // an unlucky set of seeds moves all five the same way. Cheap small N
    // get more runs. Each comparison prints its distance in standard
    // errors (`-- --nocapture`).
    for (n, runs) in [(3usize, 1500u32), (10, 300), (30, 120)] {
        let source = format!(
            r#"
[workload]
calls = {n}
arrival = "all_at_once"
[latency]
round_trips = 2
request = {{ distribution = "uniform", min = "5ms", max = "15ms" }}
response = {{ distribution = "uniform", min = "5ms", max = "15ms" }}
[[failures]]
model = "contention"
rows = 1
{policies}"#
        );
        let scenario = Scenario::from_toml_str(&source, "occ-reference.toml").unwrap();
        let report = reflexio_sim::run_many(&scenario, 17, runs, &|_, _| {}).unwrap();
        assert_eq!(report.violations(), 0);
        for (p, (backoff, name)) in STRATEGIES.into_iter().enumerate() {
            let sim_attempts: Vec<f64> = report
                .runs
                .iter()
                .map(|r| r.policies[p].attempts_total as f64)
                .collect();
            let sim_done: Vec<f64> = report
                .runs
                .iter()
                .map(|r| r.policies[p].finished_at_ms)
                .collect();
            let (mut ref_attempts, mut ref_done) = (Vec::new(), Vec::new());
            for run in 0..runs {
                let seed = 0xC0FFEE ^ (u64::from(run) << 20) ^ (n as u64) << 8 ^ p as u64;
                let (a, t) = reference_run(n, backoff, seed);
                ref_attempts.push(a as f64);
                ref_done.push(t);
            }
            agree(
                &format!("N = {n}, {name}: attempts"),
                &sim_attempts,
                &ref_attempts,
            );
            agree(
                &format!("N = {n}, {name}: completion"),
                &sim_done,
                &ref_done,
            );
        }
    }
}

#[test]
fn the_reference_model_itself_shows_the_known_shape() {
    // Guards the guard: with no backoff, attempts grow about as N^2/4
    // (between N^2/8 and N^2/2 for N = 30), and full jitter makes fewer.
    let avg = |b: Backoff| {
        (0..100)
            .map(|s| reference_run(30, b, s).0 as f64)
            .sum::<f64>()
            / 100.0
    };
    let none = avg(Backoff::None);
    assert!((900.0 / 8.0..900.0 / 2.0).contains(&none), "{none}");
    assert!(avg(Backoff::Full) < none);
}

// ---------------------------------------------------------------------------
// Closed forms

#[test]
fn independent_failures_match_their_closed_form() {
    // Each attempt fails with p, at most n attempts: attempts per call
    // K has P(K = k) = p^(k-1) (1 - p) for k < n, P(K = n) = p^(n-1);
    // E[K] = sum of p^i for i < n; success = 1 - p^n.
    let calls = 20_000u64;
    for (p, n) in [(0.1f64, 3u32), (0.3, 4), (0.5, 6), (0.9, 2)] {
        let source = format!(
            r#"
[workload]
calls = {calls}
arrival = "poisson"
rate = 1000.0
[[failures]]
model = "random"
probability = {p}
classes = {{ transient = 1.0 }}
[policies.p]
deadline = "off"
max_attempts = {n}
strategy = {{ kind = "constant", base = "1ms" }}
"#
        );
        let scenario = Scenario::from_toml_str(&source, "closed-form.toml").unwrap();
        let m = reflexio_sim::run(&scenario, 99).unwrap().runs[0].policies[0].clone();
        let load: f64 = (0..n).map(|i| p.powi(i as i32)).sum();
        let second: f64 = (1..=n)
            .map(|k| {
                let pk = if k < n {
                    p.powi(k as i32 - 1) * (1.0 - p)
                } else {
                    p.powi(n as i32 - 1)
                };
                f64::from(k * k) * pk
            })
            .sum();
        let se_load = ((second - load * load) / calls as f64).sqrt();
        let mean = m.attempts_total as f64 / calls as f64;
        assert!(
            (mean - load).abs() <= 3.0 * se_load,
            "p = {p}, n = {n}: {mean} attempts per call, closed form {load} ±{se_load}"
        );
        let success = 1.0 - p.powi(n as i32);
        let se_success = (success * (1.0 - success) / calls as f64).sqrt();
        assert!(
            (m.success_rate - success).abs() <= 3.0 * se_success.max(1e-12),
            "p = {p}, n = {n}: success {}, closed form {success} ±{se_success}",
            m.success_rate
        );
    }
}

#[test]
fn a_token_bucket_admits_its_refill_rate_in_the_long_run() {
    // 500 calls/s offered for 60 s to a bucket of 100 tokens/s and burst
    // 20, without retries: over T seconds a token bucket admits between
    // rate × T and rate × T + burst.
    // (A bucket of one token loses the time between a token's refill and
    // the next arrival, so the closed form needs room for two.)
    for (rate, burst) in [(100.0f64, 20u32), (37.5, 2), (250.0, 5)] {
        let source = format!(
            r#"
[workload]
calls = 30000
arrival = "fixed_rate"
rate = 500.0
[[failures]]
model = "rate_limit"
rate = {rate}
burst = {burst}
[policies.once]
max_attempts = 1
"#
        );
        let scenario = Scenario::from_toml_str(&source, "bucket.toml").unwrap();
        let m = reflexio_sim::run(&scenario, 1).unwrap().runs[0].policies[0].clone();
        let seconds = 60.0;
        let admitted = m.successes as f64;
        assert!(
            admitted >= rate * seconds - 1.0 && admitted <= rate * seconds + f64::from(burst) + 1.0,
            "rate {rate}, burst {burst}: {admitted} admitted in {seconds} s"
        );
    }
}
