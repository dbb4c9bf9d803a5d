//! "Did you mean" hints, end to end through the scenario parser and the
//! command line.

use reflexio_sim::Scenario;

fn error(source: &str) -> String {
    Scenario::from_toml_str(source, "s.toml")
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

#[test]
fn a_misspelt_model_field_names_the_field_and_only_that_models_fields() {
    let e = error(
        "[workload]\ncalls = 10\n[[failures]]\nmodel = \"outage\"\nstrat = \"1s\"\nend = \"2s\"\n[policies.a]\n",
    );
    assert!(e.contains("did you mean `start`?"), "{e}");
    assert!(
        e.contains("the `outage` model takes: model, start, end, class, retry_after"),
        "{e}"
    );
    assert!(!e.contains("probability"), "{e}");
}

#[test]
fn values_classes_and_strategy_kinds_get_suggestions() {
    let e = error("[workload]\ncalls = 10\narrival = \"poison\"\nrate = 5.0\n[policies.a]\n");
    assert!(e.contains("did you mean `poisson`?"), "{e}");
    let e = error("[workload]\ncalls = 10\n[policies.a.classes.rate_limt]\nmax_attempts = 3\n");
    assert!(e.contains("did you mean `rate_limit`?"), "{e}");
    let e = error("[workload]\ncalls = 10\n[policies.a.strategy]\nkind = \"ful_jitter\"\n");
    assert!(e.contains("did you mean `full_jitter`?"), "{e}");
}

#[test]
fn integer_durations_and_off() {
    let e = error(
        "[workload]\ncalls = 10\n[[failures]]\nmodel = \"outage\"\nstart = 60\nend = \"2m\"\n[policies.a]\n",
    );
    assert!(e.contains("write `start = \"60s\"`"), "{e}");
    let e = error("[workload]\ncalls = 10\n[policies.a]\ndeadline = \"of\"\n");
    assert!(e.contains("did you mean \"off\"?"), "{e}");
}

#[test]
fn a_policy_file_given_as_scenario_points_to_check() {
    let dir = std::env::temp_dir().join(format!("reflexio-sim-suggest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, "deadline = \"10s\"\nmax_attempts = 4\n").unwrap();
    let args = ["reflexio-sim", "--scenario", policy.to_str().unwrap()];
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = reflexio_sim::cli::main_with(args.map(Into::into), &mut out, &mut err, false);
    let err = String::from_utf8_lossy(&err);
    assert_eq!(code, 2);
    assert!(err.contains("this is a policy file"), "{err}");
    assert!(err.contains("reflexio-sim check"), "{err}");
    // The key that makes it a policy file is the error's field.
    assert!(err.contains("policy.toml:1:12: `deadline`: "), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Found by sim/tests/scenario_fuzz.rs: a scenario whose `[[failures]]`
/// header is commented out leaves `classes` at the top level, which makes
/// it a policy file; the error still names that field, with its position.
#[test]
fn a_scenario_that_reads_as_a_policy_file_is_refused_with_a_position() {
    let source = "bucket = \"584y\"\n#[[failures]]\nmodel = \"random\"\nprobability = 0.5\nclasses = [\"transient\"]\n";
    let err = reflexio_sim::scenario::Scenario::from_toml_str(source, "fuzz.toml").unwrap_err();
    assert_eq!(err.path, "classes");
    assert_eq!(err.position, Some((5, 11)));
    assert!(
        err.message.contains("this is a policy file"),
        "{}",
        err.message
    );
}

#[test]
fn an_unknown_field_of_a_distribution_lists_only_that_distributions_fields() {
    for (table, at, takes, not) in [
        (
            "[latency]\nrequest = { distribution = \"constant\", value = \"1ms\", bogus = \"1ms\" }\n",
            "latency.request.bogus",
            "the `constant` distribution takes: distribution, value",
            "median",
        ),
        (
            "[latency]\nrequest = { distribution = \"constant\", value = \"1ms\" }\nservice = { distribution = \"lognormal\", median = \"1ms\", sigam = 0.5 }\n",
            "latency.service.sigam",
            "did you mean `sigma`? (the `lognormal` distribution takes: distribution, median, sigma)",
            "value",
        ),
        (
            "[latency]\ndistribution = \"uniform\"\nmin = \"1ms\"\nmax = \"2ms\"\nbogus = 1\n",
            "latency.bogus",
            "the `uniform` distribution takes: distribution, min, max",
            "median",
        ),
        (
            "[client]\noversleep = { distribution = \"exponential\", mean = \"1ms\", bogus = 1 }\n",
            "client.oversleep.bogus",
            "the `exponential` distribution takes: distribution, mean",
            "median",
        ),
    ] {
        let e = error(&format!("[workload]\ncalls = 1\n{table}[policies.p]\n"));
        assert!(e.contains(&format!("`{at}`")), "{e}");
        assert!(e.contains(takes), "{e}");
        assert!(!e.contains(not), "{e}");
    }
    // A field of another distribution keeps its own message.
    let e = error("[workload]\ncalls = 1\n[latency]\nrequest = { distribution = \"constant\", value = \"1ms\", mean = \"1ms\" }\n[policies.p]\n");
    assert!(
        e.contains("`mean` is not a parameter of the `constant` distribution; it takes: value"),
        "{e}"
    );
}
