//! Small valid scenarios with `[[background]]` workloads, generated and
//! run (not only parsed): the simulation never panics, its report does
//! not depend on the thread count or on being run again, nor (against a
//! stateless service) on the mode that drives it, and each background
//! summary adds up. A few dozen cases of a few dozen calls,
//! so that `cargo test` stays fast.

use proptest::prelude::*;
use reflexio_sim::report::json;
use reflexio_sim::world::{run_many_on, run_policy_with, Mode};
use reflexio_sim::Scenario;

/// One background workload as generated: its table and what the
/// summary must say of it.
#[derive(Debug, Clone)]
struct Table {
    text: String,
    calls: u64,
    /// `max_attempts` of its policy; `None` without a policy.
    max_attempts: Option<u64>,
}

fn arrival() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("arrival = \"all_at_once\"\n".to_owned()),
        (1u32..500).prop_map(|r| format!("arrival = \"fixed_rate\"\nrate = {r}.0\n")),
        (1u32..500).prop_map(|r| format!("arrival = \"poisson\"\nrate = {r}.0\n")),
        (1u32..200, 1u32..300, 1u32..400).prop_map(|(a, ms, b)| format!(
            "arrival = \"poisson\"\nphases = [{{ rate = {a}.0, for = \"{ms}ms\" }}, {{ rate = {b}.0 }}]\n"
        )),
        (1u32..200, 1u32..300, 1u32..400).prop_map(|(a, ms, b)| format!(
            "arrival = \"fixed_rate\"\nphases = [{{ rate = {a}.0, for = \"{ms}ms\" }}, {{ rate = {b}.0 }}]\n"
        )),
    ]
}

fn background(index: usize) -> impl Strategy<Value = Table> {
    let names = ["batch", "同步", "a|b `c`"];
    let name = names[index % names.len()];
    (
        1u64..25,
        arrival(),
        prop::option::of((
            1u64..5,
            prop::sample::select(vec![
                "{ kind = \"constant\", base = \"0s\" }",
                "{ kind = \"full_jitter\", base = \"2ms\", max = \"40ms\" }",
                "{ kind = \"equal_jitter\", base = \"5ms\", max = \"1s\" }",
                "{ kind = \"decorrelated_jitter\", base = \"1ms\", max = \"20ms\" }",
            ]),
            prop::sample::select(vec!["\"off\"", "\"30ms\"", "\"5s\""]),
        )),
    )
        .prop_map(move |(calls, arrival, policy)| {
            let mut text = format!("[[background]]\nname = {name:?}\ncalls = {calls}\n{arrival}");
            if let Some((n, strategy, deadline)) = policy {
                text.push_str(&format!(
                    "[background.policy]\nmax_attempts = {n}\nstrategy = {strategy}\ndeadline = {deadline}\nallow = [\"lockstep\"]\n"
                ));
            }
            Table {
                text,
                calls,
                max_attempts: policy.map(|(n, _, _)| n),
            }
        })
}

/// A failure model, and whether it is stateless.
fn failure() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        (1u32..90).prop_map(|p| format!(
            "[[failures]]\nmodel = \"random\"\nprobability = 0.{p:02}\nclasses = {{ transient = 1.0, server_error = 1.0 }}\n"
        ))
        .prop_map(|f| (f, true)),
        (0u32..100, 1u32..200).prop_map(|(start, len)| format!(
            "[[failures]]\nmodel = \"outage\"\nstart = \"{start}ms\"\nend = \"{}ms\"\nclass = \"server_error\"\n",
            start + len
        ))
        .prop_map(|f| (f, true)),
        (1u32..200, 1u32..5).prop_map(|(rate, burst)| format!(
            "[[failures]]\nmodel = \"rate_limit\"\nrate = {rate}.0\nburst = {burst}\nhint = true\n"
        ))
        .prop_map(|f| (f, false)),
        (1u32..4)
            .prop_map(|rows| (format!("[[failures]]\nmodel = \"contention\"\nrows = {rows}\n"), false)),
        (1u32..8).prop_map(|capacity| format!(
            "[[failures]]\nmodel = \"overload\"\ncapacity = {capacity}\nlatency_growth = 1.0\nerror_rate = 0.01\nerror_growth = 0.2\ntimeout = \"40ms\"\nclass = \"server_error\"\n"
        ))
        .prop_map(|f| (f, false)),
    ]
}

/// A valid scenario of at most 30 calls under test, 1 to 3 background
/// workloads, up to two failure models and two policies; its tables, and
/// whether every failure model is stateless.
fn scenario() -> impl Strategy<Value = (String, Vec<Table>, bool)> {
    let backgrounds = (1usize..4).prop_flat_map(|n| (0..n).map(background).collect::<Vec<_>>());
    (
        0u64..1000,
        1u64..30,
        prop_oneof![
            arrival(),
            (1u32..4).prop_map(|c| format!("arrival = \"closed_loop\"\nclients = {c}\nthink_time = \"1ms\"\n")),
        ],
        prop::sample::select(vec![
            "",
            "[latency]\ndistribution = \"exponential\"\nmean = \"5ms\"\n",
            "[latency]\nrequest = { distribution = \"constant\", value = \"2ms\" }\nservice = { distribution = \"uniform\", min = \"1ms\", max = \"9ms\" }\nresponse = { distribution = \"constant\", value = \"2ms\" }\n",
        ]),
        backgrounds,
        prop::collection::vec(failure(), 0..3),
    )
        .prop_map(|(seed, calls, arrival, latency, tables, failures)| {
            // A closed loop needs at least as many calls as clients.
            let calls = calls.max(3);
            let text = format!(
                "seed = {seed}\nbucket = \"10ms\"\n[workload]\ncalls = {calls}\n{arrival}{}{latency}{}\
                 [policies.once]\nmax_attempts = 1\n\
                 [policies.retry]\nmax_attempts = 4\nstrategy = {{ kind = \"full_jitter\", base = \"1ms\", max = \"20ms\" }}\n",
                tables.iter().map(|t| t.text.as_str()).collect::<String>(),
                failures.iter().map(|(f, _)| f.as_str()).collect::<String>(),
            );
            let stateless = failures.iter().all(|(_, stateless)| *stateless);
            (text, tables, stateless)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn background_scenarios_run_deterministically_and_add_up((source, tables, stateless) in scenario()) {
        let s = Scenario::from_toml_str(&source, "background-fuzz.toml")
            .map_err(|e| TestCaseError::fail(format!("{e} in {source:?}")))?;
        prop_assert_eq!(s.background.len(), tables.len());
        let one = run_many_on(&s, s.seed, 2, 1, &|_, _| {})
            .map_err(|e| TestCaseError::fail(format!("{e} in {source:?}")))?;
        let two = run_many_on(&s, s.seed, 2, 2, &|_, _| {})
            .map_err(|e| TestCaseError::fail(format!("{e} in {source:?}")))?;
        prop_assert_eq!(json::render(&one), json::render(&two), "{}", source);
        for run in &one.runs {
            for m in &run.policies {
                prop_assert_eq!(m.calls, s.workload.calls);
                prop_assert_eq!(m.background.len(), tables.len());
                for (b, t) in m.background.iter().zip(&tables) {
                    let at = format!("`{}` under {} in run {}: {:?}\n{}", b.name, m.policy, run.run, b, source);
                    prop_assert_eq!(b.calls, t.calls, "{}", at);
                    prop_assert_eq!(b.succeeded + b.failed, b.calls, "{}", at);
                    prop_assert!(b.attempts >= b.calls, "{}", at);
                    prop_assert!(b.latency_p50_ms <= b.latency_p99_ms, "{}", at);
                    match t.max_attempts {
                        None => {
                            prop_assert_eq!(b.attempts, b.calls, "{}", at);
                            prop_assert_eq!(b.violations, None, "{}", at);
                        }
                        Some(n) => {
                            prop_assert!(b.attempts <= n * b.calls, "{}", at);
                            prop_assert_eq!(b.violations, Some(0), "{}", at);
                        }
                    }
                }
            }
        }
        // Against a stateless service the order of events cannot matter:
        // playing calls out whole gives what the event queue gives, for
        // the background's calls too.
        if stateless {
            for policy in &s.policies {
                let auto = run_policy_with(&s, policy, s.seed, Mode::Auto, &mut |_| {})
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let events = run_policy_with(&s, policy, s.seed, Mode::Events, &mut |_| {})
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&auto, &events, "{}", source);
                let queued = run_policy_with(&s, policy, s.seed, Mode::Queued, &mut |_| {})
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&queued, &events, "{}", source);
            }
        }
    }
}
