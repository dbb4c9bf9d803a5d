//! Measures simulated attempts per second of wall time on one core.
//!
//! `cargo run --release -p reflexio-sim --example throughput [CALLS]`

use std::time::Instant;

fn main() {
    let calls: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let source = format!(
        r#"
[workload]
calls = {calls}
arrival = "poisson"
rate = 10000.0
[latency]
distribution = "lognormal"
median = "20ms"
sigma = 0.5
[[failures]]
model = "random"
probability = 0.3
classes = {{ transient = 1.0, server_error = 1.0 }}
[policies.p]
strategy = {{ kind = "equal_jitter", base = "10ms", max = "1s" }}
"#
    );
    let scenario = reflexio_sim::Scenario::from_toml_str(&source, "throughput.toml").unwrap();
    let policy = &scenario.policies[0];
    let start = Instant::now();
    let m = reflexio_sim::world::run_policy(&scenario, policy, 1, &mut |_| {}).unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{calls} calls, {} attempts in {secs:.3} s: {:.2} M attempts/s",
        m.attempts_total,
        m.attempts_total as f64 / secs / 1e6
    );
}
