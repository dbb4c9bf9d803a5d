//! Playing stateless calls out whole gives exactly what the event queue
//! gives.

use reflexio_sim::world::{run_policy_with, Mode};
use reflexio_sim::Scenario;

fn both(source: &str) {
    let scenario = Scenario::from_toml_str(source, "modes.toml").unwrap();
    for policy in &scenario.policies {
        let fast = run_policy_with(&scenario, policy, 3, Mode::Auto, &mut |_| {}).unwrap();
        let events = run_policy_with(&scenario, policy, 3, Mode::Events, &mut |_| {}).unwrap();
        assert_eq!(fast, events, "policy {}", policy.name);
        let queued = run_policy_with(&scenario, policy, 3, Mode::Queued, &mut |_| {}).unwrap();
        assert_eq!(queued, events, "policy {}", policy.name);
    }
}

const POLICIES: &str = r#"
[policies.default]
[policies.quick]
max_attempts = 4
strategy = { kind = "full_jitter", base = "20ms", max = "500ms" }
[policies.capped]
deadline = "400ms"
max_attempts = 20
strategy = { kind = "decorrelated_jitter", base = "5ms", max = "100ms" }
[policies.capped.classes.server_error]
max_attempts = 3
"#;

#[test]
fn random_outage_scripted_and_trace_open_loop() {
    both(&format!(
        r#"
bucket = "50ms"
[workload]
calls = 2000
arrival = "poisson"
rate = 500.0
[latency]
distribution = "exponential"
mean = "15ms"
[[failures]]
model = "outage"
start = "1s"
end = "1.5s"
class = "server_error"
[[failures]]
model = "scripted"
outcomes = ["ok", "rate_limit/30ms"]
from = "2s"
until = "2.5s"
[[failures]]
model = "trace"
data = "0,ok\n3s,unknown\n3.2s,ok\n"
[[failures]]
model = "random"
probability = 0.2
classes = {{ server_error = 2.0, transient = 1.0, unknown = 0.5, permanent = 0.1 }}
{POLICIES}"#
    ));
}

#[test]
fn closed_loop_and_all_at_once() {
    both(&format!(
        r#"
bucket = "10ms"
[workload]
calls = 600
arrival = "closed_loop"
clients = 7
think_time = "3ms"
[latency]
distribution = "normal"
mean = "10ms"
std_dev = "4ms"
[[failures]]
model = "random"
probability = 0.4
classes = {{ transient = 1.0 }}
{POLICIES}"#
    ));
    both(&format!(
        r#"
[workload]
calls = 500
[[failures]]
model = "random"
probability = 0.5
classes = {{ server_error = 1.0 }}
retry_after = "20ms"
{POLICIES}"#
    ));
}
