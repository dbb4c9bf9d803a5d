//! Many seeded random policies against a hostile service: the checker must
//! find no envelope violation in any of them.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reflexio_sim::Scenario;

const KINDS: [&str; 6] = [
    "decorrelated_jitter",
    "equal_jitter",
    "token_backoff",
    "full_jitter",
    "exponential",
    "constant",
];
const CLASSES: [&str; 8] = [
    "auth",
    "permission",
    "permanent",
    "concurrency",
    "rate_limit",
    "server_error",
    "transient",
    "unknown",
];

fn strategy(rng: &mut ChaCha8Rng) -> String {
    let kind = KINDS[rng.random_range(0..KINDS.len())];
    let base = rng.random_range(1..400u64);
    if kind == "constant" {
        format!("{{ kind = \"{kind}\", base = \"{base}ms\" }}")
    } else {
        let max = base + rng.random_range(0..5000u64);
        format!("{{ kind = \"{kind}\", base = \"{base}ms\", max = \"{max}ms\" }}")
    }
}

fn policy(rng: &mut ChaCha8Rng, name: usize) -> String {
    let mut p = format!("[policies.p{name}]\n");
    if rng.random_bool(0.8) {
        p += &format!("deadline = \"{}ms\"\n", rng.random_range(1..20_000u64));
    } else {
        p += "deadline = \"off\"\n";
    }
    p += &format!("max_attempts = {}\n", rng.random_range(1..12u32));
    if rng.random_bool(0.3) {
        p += "max_unknown_attempts = \"off\"\n";
    } else {
        p += &format!("max_unknown_attempts = {}\n", rng.random_range(1..5u32));
    }
    p += &format!("max_retry_after = \"{}ms\"\n", rng.random_range(1..3000u64));
    p += &format!("strategy = {}\n", strategy(rng));
    for class in CLASSES {
        if class != "unknown" && rng.random_bool(0.25) {
            p += &format!(
                "[policies.p{name}.classes.{class}]\nmax_attempts = {}\nstrategy = {}\n",
                rng.random_range(1..8u32),
                strategy(rng)
            );
        }
    }
    p
}

#[test]
fn random_policies_never_break_their_envelope() {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let service = r#"
bucket = "100ms"
[workload]
calls = 150
arrival = "poisson"
rate = 300.0
[latency]
distribution = "lognormal"
median = "30ms"
sigma = 1.0
[[failures]]
model = "rate_limit"
rate = 150.0
burst = 5
[[failures]]
model = "overload"
capacity = 10
error_growth = 0.3
timeout = "400ms"
[[failures]]
model = "contention"
rows = 5
[[failures]]
model = "random"
probability = 0.5
classes = { auth = 0.02, permission = 0.02, permanent = 0.05, concurrency = 1.0, rate_limit = 1.0, server_error = 1.0, transient = 1.0, unknown = 1.0 }
retry_after = "150ms"
"#;
    let mut checked = 0;
    for round in 0..12 {
        let mut source = service.to_owned();
        for p in 0..10 {
            source += &policy(&mut rng, p);
        }
        let scenario = Scenario::from_toml_str(&source, "random.toml")
            .unwrap_or_else(|e| panic!("{e}\n{source}"));
        let report = reflexio_sim::run(&scenario, round).unwrap();
        for m in &report.runs[0].policies {
            assert_eq!(
                m.violations, 0,
                "{}: {:?}\n{source}",
                m.policy, m.violation_list
            );
            checked += m.attempts_total;
        }
    }
    assert!(checked > 10_000, "{checked}");
}
