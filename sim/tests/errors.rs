//! Bad scenario files: every message names the file, line and column, the
//! field and what is allowed; the command exits with 2 and writes nothing.

mod common;

use common::{assert_has, error};
use std::path::PathBuf;

use reflexio_sim::Scenario;

const OK_TAIL: &str = "[policies.p]\n";

#[test]
fn unknown_field_names_its_position_and_the_allowed_fields() {
    let e = error(&format!("[workload]\ncalls = 10\ncalsl = 3\n{OK_TAIL}"));
    assert_has(
        &e,
        &[
            "bad.toml:3:1",
            "workload.calsl",
            "unknown field `calsl`",
            "`calls`",
        ],
    );
}

#[test]
fn an_integer_past_tomls_64_bits_names_the_field_and_tomls_range() {
    let e = error(&format!(
        "[workload]\ncalls = 10000000000000000000000000000000000000000\n{OK_TAIL}"
    ));
    assert_has(
        &e,
        &[
            "bad.toml:2:9",
            "workload.calls",
            "overflowed",
            "9223372036854775807",
        ],
    );
}

#[test]
fn wrong_type() {
    let e = error(&format!("[workload]\ncalls = \"many\"\n{OK_TAIL}"));
    assert_has(&e, &["bad.toml:2:9", "workload.calls", "whole number"]);
}

#[test]
fn unknown_arrival_lists_the_allowed_ones() {
    let e = error(&format!(
        "[workload]\ncalls = 1\narrival = \"burst\"\n{OK_TAIL}"
    ));
    assert_has(
        &e,
        &[
            "bad.toml:3:11",
            "workload.arrival",
            "poisson",
            "closed_loop",
        ],
    );
}

#[test]
fn negative_and_zero_durations() {
    let e = error(&format!(
        "[workload]\ncalls = 1\n[latency]\ndistribution = \"constant\"\nvalue = \"-5ms\"\n{OK_TAIL}"
    ));
    assert_has(&e, &["bad.toml:5:9", "latency.value", "negative"]);
    let e = error("[workload]\ncalls = 1\n[policies.p]\ndeadline = \"0s\"\n");
    assert_has(&e, &["bad.toml:4:12", "policies.p.deadline", "zero"]);
}

#[test]
fn probability_outside_zero_one() {
    let e = error(&format!(
        "[workload]\ncalls = 1\n[[failures]]\nmodel = \"random\"\nprobability = 1.5\nclasses = {{ transient = 1.0 }}\n{OK_TAIL}"
    ));
    assert_has(
        &e,
        &["bad.toml:5:15", "failures[0].probability", "[0, 1]", "1.5"],
    );
}

#[test]
fn unknown_class_lists_the_classes() {
    let e = error(&format!(
        "[workload]\ncalls = 1\n[[failures]]\nmodel = \"outage\"\nstart = \"1s\"\nend = \"2s\"\nclass = \"boom\"\n{OK_TAIL}"
    ));
    assert_has(
        &e,
        &[
            "bad.toml:7:9",
            "failures[0].class",
            "boom",
            "server_error",
            "rate_limit",
        ],
    );
}

#[test]
fn impossible_combinations() {
    let e = error(&format!("[workload]\ncalls = 1\nrate = 5.0\n{OK_TAIL}"));
    assert_has(&e, &["bad.toml:3:8", "workload.rate", "fixed_rate"]);
    let e = error(&format!(
        "[workload]\ncalls = 1\n[[failures]]\nmodel = \"outage\"\nstart = \"2s\"\nend = \"1s\"\n{OK_TAIL}"
    ));
    assert_has(&e, &["bad.toml:6:7", "failures[0].end", "after it starts"]);
    let e = error(&format!(
        "[workload]\ncalls = 1\n[[failures]]\nmodel = \"random\"\nprobability = 0.1\nclasses = {{ transient = 1.0 }}\nburst = 3\n{OK_TAIL}"
    ));
    assert_has(
        &e,
        &[
            "bad.toml:7:9",
            "failures[0].burst",
            "`random` model",
            "probability",
        ],
    );
    let e = error(&format!(
        "[workload]\ncalls = 3\narrival = \"closed_loop\"\nclients = 5\n{OK_TAIL}"
    ));
    assert_has(
        &e,
        &[
            "bad.toml:4:11",
            "workload.clients",
            "no more clients than calls",
        ],
    );
    let e = error(&format!(
        "[workload]\ncalls = 1\n[[failures]]\nmodel = \"rate_limit\"\nrate = 0.0\n{OK_TAIL}"
    ));
    assert_has(&e, &["bad.toml:5:8", "failures[0].rate", "greater than 0"]);
}

#[test]
fn policy_errors_are_located_inside_the_policy_table() {
    let e = error(
        "[workload]\ncalls = 1\n[policies.fast]\nstrategy = { kind = \"equal_jitter\", base = \"2s\", max = \"1s\" }\n",
    );
    assert_has(
        &e,
        &[
            "bad.toml:4:",
            "policies.fast.strategy.base",
            "must not be above max",
        ],
    );
    let e = error("[workload]\ncalls = 1\n[policies.fast.strategy]\nkind = \"fibonacci\"\n");
    assert_has(
        &e,
        &[
            "bad.toml:4:8",
            "policies.fast.strategy.kind",
            "fibonacci",
            "equal_jitter",
        ],
    );
    let e = error("[workload]\ncalls = 1\n[policies.fast]\nretries = 3\n");
    assert_has(
        &e,
        &["bad.toml:4:1", "policies.fast.retries", "unknown field"],
    );
}

#[test]
fn missing_policies_and_workload() {
    assert_has(
        &error("[workload]\ncalls = 1\n"),
        &["policies", "[policies.<name>]"],
    );
    assert_has(&error(OK_TAIL), &["workload", "calls"]);
}

#[test]
fn too_large_workloads_are_refused_with_a_clear_message() {
    let e = error(&format!("[workload]\ncalls = 10000000000\n{OK_TAIL}"));
    assert_has(
        &e,
        &[
            "bad.toml:2:9",
            "workload.calls",
            "too large a workload",
            "50000000",
            "fewer calls",
        ],
    );
    let e = error(&format!("[workload]\ncalls = 20000000\n{OK_TAIL}"));
    assert_has(
        &e,
        &[
            "bad.toml:2:9",
            "workload.calls",
            "all at once",
            "GiB",
            "another arrival process",
        ],
    );
    // The same calls spread out over time are fine.
    Scenario::from_toml_str(
        &format!("[workload]\ncalls = 20000000\narrival = \"poisson\"\nrate = 1000.0\n{OK_TAIL}"),
        "ok.toml",
    )
    .unwrap();
}

#[test]
fn a_scenario_built_in_code_with_more_calls_than_call_ids_is_refused() {
    // A file is held to 50 M calls; a `Scenario` built in code is not, and
    // a run numbers its calls with 32 bits.
    let mut scenario = Scenario::from_toml_str(
        "[workload]\ncalls = 10\narrival = \"poisson\"\nrate = 10.0\n[policies.p]\n",
        "ok.toml",
    )
    .unwrap();
    scenario.workload.calls = u64::from(u32::MAX) + 1;
    let policy = &scenario.policies[0];
    let e = reflexio_sim::world::run_policy(&scenario, policy, 1, &mut |_| {}).unwrap_err();
    assert_eq!(e.field(), Some("workload.calls"));
    assert_has(&e.to_string(), &["4294967296 calls", "at most 4294967295"]);
}

#[test]
fn bad_trace_rows_name_the_trace_line() {
    let e = error(&format!(
        "[workload]\ncalls = 1\n[[failures]]\nmodel = \"trace\"\ndata = \"\"\"\ntime,class\n0,transient\n1,explode\n\"\"\"\n{OK_TAIL}"
    ));
    assert_has(&e, &["failures[0].data", "line 3", "explode", "transient"]);
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reflexio-sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_command_exits_with_2_and_writes_nothing() {
    let dir = temp_dir("bad-input");
    let file = dir.join("broken.toml");
    std::fs::write(&file, "[workload]\ncalls = 10\n[[failures]]\nmodel = \"random\"\nprobability = -0.1\nclasses = { transient = 1.0 }\n[policies.p]\n").unwrap();
    let out_dir = dir.join("out");
    let args = [
        "reflexio-sim",
        "--scenario",
        file.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = reflexio_sim::cli::main_with(args.map(Into::into), &mut out, &mut err, false);
    let err = String::from_utf8(err).unwrap();
    assert_eq!(code, 2, "{err}");
    assert_has(
        &err,
        &["broken.toml:5:15", "failures[0].probability", "[0, 1]"],
    );
    assert!(out.is_empty());
    assert!(!out_dir.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_with_2() {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let args = ["reflexio-sim", "--scenario", "x.toml", "--format", "yaml"];
    let code = reflexio_sim::cli::main_with(args.map(Into::into), &mut out, &mut err, false);
    assert_eq!(code, 2);
    assert_has(
        &String::from_utf8(err).unwrap(),
        &["yaml", "table", "json", "csv", "md"],
    );
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = reflexio_sim::cli::main_with(
        ["reflexio-sim", "--scenario", "/nonexistent/x.toml"].map(Into::into),
        &mut out,
        &mut err,
        false,
    );
    assert_eq!(code, 2);
    assert_has(
        &String::from_utf8(err).unwrap(),
        &["/nonexistent/x.toml", "cannot read"],
    );
}

#[test]
fn a_table_of_the_wrong_type_is_called_a_table() {
    for (source, path) in [
        (
            "latency = 3\n[workload]\ncalls = 1\n[policies.p]\n",
            "`latency`",
        ),
        (
            "latency = []\n[workload]\ncalls = 1\n[policies.p]\n",
            "`latency`",
        ),
        ("workload = 3\n[policies.p]\n", "`workload`"),
        (
            "client = \"x\"\n[workload]\ncalls = 1\n[policies.p]\n",
            "`client`",
        ),
        (
            "[workload]\ncalls = 1\n[client]\noversleep = \"1ms\"\n[policies.p]\n",
            "`client.oversleep`",
        ),
        ("[workload]\ncalls = 1\n[policies]\np = 3\n", "`policies.p`"),
        (
            "[workload]\ncalls = 1\n[policies.p]\nstrategy = 3\n",
            "`policies.p.strategy`",
        ),
    ] {
        let e = error(source);
        assert_has(&e, &[path, "expected a table"]);
        assert!(!e.contains("struct"), "{e}");
        assert!(!e.contains("Raw"), "{e}");
    }
}

#[test]
fn a_model_or_distribution_that_is_not_a_string_gets_the_allowed_names() {
    for (source, path, allowed) in [
        (
            "[workload]\ncalls = 1\n[[failures]]\nmodel = 3\n[policies.p]\n",
            "`failures[0].model`",
            &["\"random\"", "\"rate_limit\"", "\"trace\""][..],
        ),
        (
            "[workload]\ncalls = 1\n[latency]\ndistribution = 3\n[policies.p]\n",
            "`latency.distribution`",
            &["\"constant\"", "\"lognormal\""][..],
        ),
        (
            "[workload]\ncalls = 1\n[latency]\nrequest = { distribution = true }\n[policies.p]\n",
            "`latency.request.distribution`",
            &["\"uniform\"", "\"exponential\""][..],
        ),
    ] {
        let e = error(source);
        assert_has(&e, &[path]);
        assert_has(&e, allowed);
        assert!(!e.contains("wanted string or table"), "{e}");
    }
}

#[test]
fn a_trace_time_past_what_a_duration_holds_is_refused_as_too_large() {
    for time in ["1e400", "1e300", "18446744074"] {
        let e = error(&format!(
            "[workload]\ncalls = 1\n[[failures]]\nmodel = \"trace\"\ndata = \"0,ok\\n{time},server_error\\n\"\n{OK_TAIL}"
        ));
        assert_has(
            &e,
            &["failures[0].data", "line 2", time, "too large", "584 years"],
        );
        assert!(!e.contains("0 or more"), "{e}");
    }
    // The largest time that fits is read.
    let source = format!(
        "[workload]\ncalls = 1\n[[failures]]\nmodel = \"trace\"\ndata = \"0,ok\\n18446744073,server_error\\n\"\n{OK_TAIL}"
    );
    Scenario::from_toml_str(&source, "ok.toml").unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_rate_too_low_to_count_the_arrivals_says_so() {
    for arrival in ["poisson", "fixed_rate"] {
        let e = error(&format!(
            "[workload]\ncalls = 100\narrival = \"{arrival}\"\nrate = 5e-324\n{OK_TAIL}"
        ));
        assert_has(&e, &["bad.toml:4:8", "workload.rate", "raise the rate"]);
        assert!(!e.contains("inf"), "{e}");
    }
}

#[test]
fn a_name_starting_with_a_dot_is_told_why_it_is_refused() {
    for name in [".", "..", ".hidden"] {
        let e = error(&format!(
            "name = \"{name}\"\n[workload]\ncalls = 1\n{OK_TAIL}"
        ));
        assert_has(&e, &["bad.toml:1:8", "`name`", "not starting with `.`"]);
    }
}

#[test]
fn a_missing_model_or_distribution_lists_the_names() {
    for (source, path, names) in [
        (
            "[workload]\ncalls = 1\n[[failures]]\nprobability = 1.0\n[policies.p]\n",
            "`failures[0]`",
            &["\"random\"", "\"trace\""][..],
        ),
        (
            "[workload]\ncalls = 1\n[client]\noversleep = {}\n[policies.p]\n",
            "`client.oversleep`",
            &["\"constant\"", "\"lognormal\""][..],
        ),
        (
            "[workload]\ncalls = 1\n[latency]\nrequest = { value = \"1ms\" }\n[policies.p]\n",
            "`latency.request`",
            &["\"uniform\""][..],
        ),
    ] {
        let e = error(source);
        assert_has(&e, &[path]);
        assert_has(&e, names);
    }
}

/// A count of the wrong type, or past what its field's type holds, is told
/// the field's own range (the one the check after parsing enforces), not
/// the range of the Rust type behind it.
#[test]
fn a_count_that_does_not_parse_is_told_the_fields_own_range() {
    let legs = "request = { distribution = \"constant\", value = \"1ms\" }\n";
    for (source, at, range) in [
        (
            format!("[workload]\ncalls = 1\n{OK_TAIL}max_attempts = -1\n"),
            "policies.p.max_attempts",
            "a whole number from 1 to 4294967295",
        ),
        (
            format!("[workload]\ncalls = 1\n[latency]\n{legs}round_trips = -1\n{OK_TAIL}"),
            "latency.round_trips",
            "a whole number from 1 to 16",
        ),
        (
            format!("[workload]\ncalls = 1\n[latency]\n{legs}round_trips = 1.0\n{OK_TAIL}"),
            "latency.round_trips",
            "a whole number from 1 to 16",
        ),
        (
            format!("[workload]\ncalls = 1\n[[failures]]\nmodel = \"rate_limit\"\nrate = 1.0\nburst = -1\n{OK_TAIL}"),
            "failures[0].burst",
            "a whole number from 1 to 4294967295",
        ),
        (
            format!("[workload]\ncalls = 1\n[[failures]]\nmodel = \"overload\"\ncapacity = 1.5\n{OK_TAIL}"),
            "failures[0].capacity",
            "a whole number from 1 to 4294967295",
        ),
        (
            format!("[workload]\ncalls = 1\n[[failures]]\nmodel = \"contention\"\nrows = 4294967296\n{OK_TAIL}"),
            "failures[0].rows",
            "a whole number from 1 to 1000000",
        ),
        (
            format!("runs = 4294967296\n[workload]\ncalls = 1\n{OK_TAIL}"),
            "runs",
            "a whole number from 1 to 10000",
        ),
        (
            format!("[workload]\ncalls = -1\n{OK_TAIL}"),
            "workload.calls",
            "a whole number from 1 to 50000000",
        ),
        (
            format!("[workload]\ncalls = 2\narrival = \"closed_loop\"\nclients = -1\n{OK_TAIL}"),
            "workload.clients",
            "a whole number from 1 to 4294967295",
        ),
        (
            format!("max_simulated_attempts = -1\n[workload]\ncalls = 1\n{OK_TAIL}"),
            "max_simulated_attempts",
            "a whole number from 1 to 18446744073709551615",
        ),
    ] {
        let e = error(&source);
        assert_has(&e, &[&format!("`{at}`"), range]);
        assert!(!e.contains("from 0"), "{e}");
    }
    // Inside the type, outside the range: the check after parsing says
    // the same bounds.
    let e = error(&format!(
        "[workload]\ncalls = 1\n[latency]\n{legs}round_trips = 17\n{OK_TAIL}"
    ));
    assert_has(&e, &["`latency.round_trips`", "from 1 to 16"]);
}
