//! What the simulator's integration tests share: reading a scenario,
//! running it, and the messages of bad scenario files. Not every test file
//! uses every helper.

use reflexio_sim::scenario::Policy;
use reflexio_sim::world::{run_policy_with, Mode};
use reflexio_sim::{PolicyMetrics, Scenario};

/// The message a scenario refused as `bad.toml` gets; panics if accepted.
#[allow(dead_code)]
pub fn error(source: &str) -> String {
    match Scenario::from_toml_str(source, "bad.toml") {
        Ok(_) => panic!("accepted:\n{source}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that `message` contains every one of `parts`.
#[allow(dead_code)]
pub fn assert_has(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}

/// `source` read as the scenario file `file`; panics with the message if
/// it is refused.
#[allow(dead_code)]
pub fn scenario(source: &str, file: &str) -> Scenario {
    Scenario::from_toml_str(source, file).unwrap_or_else(|e| panic!("{e}"))
}

/// Every policy's metrics of the first run of `source` (read as `file`),
/// which breaks no envelope.
#[allow(dead_code)]
pub fn run_first(source: &str, file: &str) -> Vec<PolicyMetrics> {
    let s = scenario(source, file);
    let report = reflexio_sim::run(&s, s.seed).unwrap();
    assert_eq!(report.violations(), 0);
    report.runs.into_iter().next().unwrap().policies
}

/// `policy` of `s` run with `seed` in every [`Mode`]: asserts that the
/// three give the same metrics (`case` names the case in a failure), and
/// returns them.
#[allow(dead_code)]
pub fn in_every_mode(s: &Scenario, policy: &Policy, seed: u64, case: &str) -> PolicyMetrics {
    let auto = run_policy_with(s, policy, seed, Mode::Auto, &mut |_| {}).unwrap();
    let queued = run_policy_with(s, policy, seed, Mode::Queued, &mut |_| {}).unwrap();
    let events = run_policy_with(s, policy, seed, Mode::Events, &mut |_| {}).unwrap();
    assert_eq!(
        auto, events,
        "{case}, policy {}: Auto against Events",
        policy.name
    );
    assert_eq!(
        queued, events,
        "{case}, policy {}: Queued against Events",
        policy.name
    );
    auto
}

/// `reflexio-sim ARGS`, run in process: its exit code, standard output and
/// standard error.
#[allow(dead_code)]
pub fn cli(args: &[&str]) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let args: Vec<std::ffi::OsString> = std::iter::once("reflexio-sim")
        .chain(args.iter().copied())
        .map(Into::into)
        .collect();
    let code = reflexio_sim::cli::main_with(args, &mut out, &mut err, false);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}
