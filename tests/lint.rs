//! The policy doctor: every problem of a configuration at once, each with
//! its position; each warning rule on a minimal example; allow-listing; and
//! the lint of a built policy.
#![cfg(feature = "config")]

use std::time::Duration;

use reflexio::config::line_col;
use reflexio::lint::{self, lint_toml, Diagnostic, Diagnostics, Severity};
use reflexio::{Backoff, ErrorClass, RetryConfig, RetryPolicy};

/// `(path, code, line, column)` of every diagnostic.
fn found(source: &str) -> Vec<(String, &'static str, usize, usize)> {
    lint_toml(source)
        .diagnostics
        .into_iter()
        .map(|d| {
            let span = d
                .span
                .clone()
                .unwrap_or_else(|| panic!("no position for {d} in\n{source}"));
            let (line, col) = line_col(source, span.start);
            (d.path, d.code, line, col)
        })
        .collect()
}

fn codes(source: &str) -> Vec<(&'static str, String)> {
    lint_toml(source)
        .diagnostics
        .into_iter()
        .map(|d| (d.code, d.path))
        .collect()
}

#[test]
fn independent_problems_are_all_reported_with_positions() {
    // The two files of the report that only ever showed their first problem.
    let src = "deadline = \"0s\"\nmax_attempts = 0\nmax_unknown_attempts = -1\n";
    assert_eq!(
        found(src),
        [
            ("deadline".to_owned(), lint::INVALID, 1, 12),
            ("max_attempts".to_owned(), lint::REFUSED, 2, 16),
            ("max_unknown_attempts".to_owned(), lint::INVALID, 3, 24),
        ]
    );
    let src = "[classes.bogus]\nmax_attempts = 3\n\n[classes.transient]\nmax_attempts = 0\n";
    assert_eq!(
        found(src),
        [
            ("classes.bogus".to_owned(), lint::REFUSED, 1, 1),
            (
                "classes.transient.max_attempts".to_owned(),
                lint::REFUSED,
                5,
                16
            ),
        ]
    );

    // Everything at once: an unknown field, a wrong type, a bad duration
    // and an unknown strategy in one inline table, a zero class cap, a
    // constant with a max, an unknown class, an unknown allowed code.
    let src = r#"colour = "blue"
max_attempts = "six"
max_retry_after = "10 parsecs"
allow = ["lockstpe"]
strategy = { kind = "fibonacci", base = "1x" }

[classes.rate_limit]
max_attempts = 0
strategy = { kind = "constant", max = "1s" }

[classes.teapot]
max_attempts = 2
"#;
    let got = found(src);
    let paths: Vec<&str> = got.iter().map(|(p, ..)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "colour",
            "max_attempts",
            "max_retry_after",
            "allow",
            "strategy.kind",
            "strategy.base",
            "classes.rate_limit.max_attempts",
            "classes.rate_limit.strategy.max",
            "classes.teapot",
        ],
        "{got:?}"
    );
    let lines: Vec<usize> = got.iter().map(|(_, _, line, _)| *line).collect();
    assert_eq!(lines, [1, 2, 3, 4, 5, 5, 8, 9, 11]);
    let report = lint_toml(src);
    assert!(report.diagnostics.iter().all(Diagnostic::is_error));
    assert!(report.has_errors());
    // Each message says what is allowed.
    let messages: Vec<String> = report.diagnostics.iter().map(|d| d.to_string()).collect();
    assert!(messages[0].contains("expected one of"), "{messages:?}");
    assert!(
        messages[3].contains("allowed: cap_never_triggers"),
        "{messages:?}"
    );
    assert!(
        messages[4].contains("allowed: decorrelated_jitter"),
        "{messages:?}"
    );
    assert!(messages[8].contains("allowed: auth"), "{messages:?}");
}

#[test]
fn syntax_errors_do_not_hide_the_fields_around_them() {
    let src = "max_attempts = = 3\ndeadline = \"-1s\"\nmax_unknown_attempts = 0\n";
    let got = codes(src);
    assert!(got.iter().any(|(c, _)| *c == lint::SYNTAX), "{got:?}");
    assert!(
        got.contains(&(lint::INVALID, "deadline".to_owned())),
        "{got:?}"
    );
    assert!(
        got.contains(&(lint::REFUSED, "max_unknown_attempts".to_owned())),
        "{got:?}"
    );
    // The line that does not parse gives no made-up value.
    assert!(
        !got.contains(&(lint::REFUSED, "max_attempts".to_owned())),
        "{got:?}"
    );
}

#[test]
fn a_bad_base_does_not_cascade_into_base_above_max() {
    // With `base` unreadable, comparing the default base with `max` would
    // report a second, made-up problem.
    let src = "[strategy]\nkind = \"equal_jitter\"\nbase = \"1x\"\nmax = \"100ms\"\n";
    assert_eq!(codes(src), [(lint::INVALID, "strategy.base".to_owned())]);
}

/// `(path, (line, column))` of each diagnostic of the policy at `table`
/// of `src`.
fn placed(src: &str, table: &str) -> Vec<(String, (usize, usize))> {
    lint::lint_toml_table(src, table)
        .diagnostics
        .iter()
        .map(|d| (d.path.clone(), line_col(src, d.span.clone().unwrap().start)))
        .collect()
}

#[test]
fn a_policy_inside_a_larger_document_is_linted_in_place() {
    let src = "[workload]\ncalls = 1\n\n[policies.a]\nmax_attempts = 0\ndeadline = \"1\"\n";
    assert_eq!(
        placed(src, "policies.a"),
        [
            ("policies.a.max_attempts".to_owned(), (5, 16)),
            ("policies.a.deadline".to_owned(), (6, 12)),
        ]
    );
    let missing = lint::lint_toml_table(src, "policies.b");
    assert!(missing.has_errors() && missing.config.is_none());
}

#[test]
fn a_policy_in_an_array_of_tables_is_linted_in_place() {
    // A number in the path indexes the array: the second entry's policy,
    // a header table, then the third's, an inline table.
    let src = "[[background]]\nname = \"a\"\n[[background]]\nname = \"b\"\n[background.policy]\nmax_attempts = 0\nmax_attempt = 3\n[[background]]\npolicy = { deadline = \"1\" }\n";
    assert_eq!(
        placed(src, "background.1.policy"),
        [
            ("background.1.policy.max_attempts".to_owned(), (6, 16)),
            ("background.1.policy.max_attempt".to_owned(), (7, 1)),
        ]
    );
    assert_eq!(
        placed(src, "background.2.policy"),
        [("background.2.policy.deadline".to_owned(), (9, 23))]
    );
    // The first entry has no policy; there is no fourth entry.
    for absent in [
        "background.0.policy",
        "background.3.policy",
        "background.x.policy",
        "background.+1.policy",
    ] {
        let report = lint::lint_toml_table(src, absent);
        assert!(report.has_errors() && report.config.is_none(), "{absent}");
    }
}

#[test]
fn a_cap_of_billions_of_attempts_is_linted_at_once() {
    // The saturation warning's advice (base × 3^retries) saturates after a
    // few dozen steps; it used to multiply once per allowed retry.
    let src = "max_attempts = 4294967295\ndeadline = \"90s\"\nstrategy = { kind = \"decorrelated_jitter\", base = \"10ms\" }\n";
    let report = lint_toml(src);
    let saturation = report
        .diagnostics
        .iter()
        .find(|d| d.code == "decorrelated_saturation")
        .unwrap();
    assert!(
        saturation
            .message
            .contains("within the 4294967294 retries allowed"),
        "{saturation}"
    );
}

/// Each warning rule on a minimal example: exactly that warning, at that
/// field and line.
#[test]
fn each_warning_fires_on_a_minimal_example() {
    // A jittered strategy that never saturates, so that only the rule under
    // test speaks.
    const QUIET: &str = "strategy = { kind = \"equal_jitter\", base = \"100ms\", max = \"1s\" }\n";
    let cases: [(&str, &str, &str, usize); 10] = [
        (
            "max_attempts = 4\n[classes.server_error]\nmax_attempts = 4\n",
            "cap_never_triggers",
            "classes.server_error.max_attempts",
            3,
        ),
        (
            "max_attempts = 3\nmax_unknown_attempts = 5\n",
            "cap_never_triggers",
            "max_unknown_attempts",
            2,
        ),
        (
            "[classes.auth]\nmax_attempts = 3\n",
            "never_retried_class",
            "classes.auth.max_attempts",
            2,
        ),
        (
            "[classes.permanent]\nstrategy = { kind = \"full_jitter\" }\n",
            "never_retried_class",
            "classes.permanent.strategy",
            2,
        ),
        (
            "deadline = \"50ms\"\nmax_retry_after = \"50ms\"\n",
            "deadline_below_first_delay",
            "deadline",
            1,
        ),
        (
            "deadline = \"5s\"\nmax_retry_after = \"10s\"\n",
            "retry_after_beyond_deadline",
            "max_retry_after",
            2,
        ),
        (
            "deadline = \"1s\"\nmax_retry_after = \"1s\"\nmax_attempts = 6\n",
            "attempts_after_deadline",
            "max_attempts",
            3,
        ),
        (
            "max_attempts = 3\nstrategy = { kind = \"constant\", base = \"100ms\" }\n",
            "lockstep",
            "strategy",
            2,
        ),
        (
            "max_attempts = 4\nstrategy = { kind = \"decorrelated_jitter\", base = \"100ms\", max = \"1s\" }\n",
            "decorrelated_saturation",
            "strategy",
            2,
        ),
        (
            "deadline = \"off\"\nmax_unknown_attempts = \"off\"\n",
            "unbounded_unknown",
            "max_unknown_attempts",
            2,
        ),
    ];
    for (body, code, path, line) in cases {
        // The quiet strategy goes first unless the example sets its own.
        let own = body
            .lines()
            .take_while(|l| !l.starts_with('['))
            .any(|l| l.starts_with("strategy"));
        let (src, line) = if own {
            (body.to_owned(), line)
        } else {
            (format!("{QUIET}{body}"), line + 1)
        };
        let report = lint_toml(&src);
        let got: Vec<(&str, &str, usize)> = report
            .diagnostics
            .iter()
            .map(|d| {
                let at = d.span.clone().unwrap_or_else(|| panic!("{d} has no span"));
                (d.code, d.path.as_str(), line_col(&src, at.start).0)
            })
            .collect();
        assert_eq!(got, [(code, path, line)], "{src}");
        let d = &report.diagnostics[0];
        assert_eq!(d.severity, Severity::Warning);
        assert!(lint::is_warning_code(d.code));
        // The same through the API without text, and silenced by `allow`.
        let config = report.config.clone().unwrap();
        let api: Vec<&str> = config.lint().iter().map(|d| d.code).collect();
        assert_eq!(api, [code], "{src}");
        let allowed = format!("allow = [\"{code}\"]\n{src}");
        assert!(lint_toml(&allowed).diagnostics.is_empty(), "{allowed}");
        assert!(config.lint().allow(&[code]).is_empty());
    }
}

#[test]
fn jittered_strategies_and_two_attempt_policies_are_not_lockstep() {
    for src in [
        "max_attempts = 2\nstrategy = { kind = \"constant\", base = \"100ms\" }\n",
        "max_attempts = 5\nstrategy = { kind = \"full_jitter\", base = \"100ms\", max = \"1s\" }\n",
        // Only one class may make a third attempt, and it has its own
        // jittered strategy.
        "max_attempts = 6\nstrategy = { kind = \"exponential\", base = \"100ms\", max = \"1s\" }\n\
         [classes.concurrency]\nstrategy = { kind = \"equal_jitter\", base = \"10ms\", max = \"1s\" }\n\
         [classes.rate_limit]\nmax_attempts = 2\n[classes.server_error]\nmax_attempts = 2\n\
         [classes.transient]\nmax_attempts = 2\n",
    ] {
        let got = codes(src);
        assert!(!got.iter().any(|(c, _)| *c == "lockstep"), "{src}: {got:?}");
    }
    // A class strategy is named by its own path.
    let src = "max_attempts = 4\nstrategy = { kind = \"full_jitter\" }\n[classes.rate_limit]\nstrategy = { kind = \"exponential\", base = \"1s\", max = \"2s\" }\n";
    assert_eq!(
        codes(src),
        [("lockstep", "classes.rate_limit.strategy".to_owned())]
    );
}

#[test]
fn decorrelated_jitter_that_cannot_reach_max_is_quiet() {
    // 3 retries: the largest draws are 300 ms, 900 ms, 2.7 s: below 3 s.
    let src = "max_attempts = 4\nstrategy = { kind = \"decorrelated_jitter\", base = \"100ms\", max = \"3s\" }\n";
    assert!(codes(src).is_empty(), "{:?}", codes(src));
    // One more retry reaches it, and the message names the max that would do.
    let src = src.replace("max_attempts = 4", "max_attempts = 5");
    let report = lint_toml(&src);
    assert_eq!(report.diagnostics.len(), 1);
    assert!(
        report.diagnostics[0].message.contains("8100ms"),
        "{}",
        report.diagnostics[0]
    );
}

#[test]
fn the_default_policy_warns_only_of_decorrelated_saturation() {
    let got: Vec<&str> = RetryConfig::default()
        .lint()
        .iter()
        .map(|d| d.code)
        .collect();
    assert_eq!(got, ["decorrelated_saturation"]);
    let got: Vec<&str> = RetryPolicy::default()
        .lint()
        .iter()
        .map(|d| d.code)
        .collect();
    assert_eq!(got, ["decorrelated_saturation"]);
}

#[test]
fn allow_lists_only_warning_codes() {
    let err = RetryConfig::from_toml_str("allow = [\"lockstpe\"]\n").unwrap_err();
    assert_eq!(err.path, "allow");
    assert!(err.message.contains("lockstep"), "{}", err.message);
    let config = RetryConfig::from_toml_str(
        "allow = [\"lockstep\"]\nstrategy = { kind = \"constant\", base = \"1s\" }\n",
    )
    .unwrap();
    assert!(config.lint().is_empty(), "{:?}", config.lint());
    // It survives normalisation.
    assert_eq!(config.normalized().unwrap().allow, ["lockstep"]);
    // Errors cannot be allowed.
    let bad = RetryConfig {
        max_attempts: Some(0),
        allow: vec!["lockstep".into()],
        ..RetryConfig::default()
    };
    let diagnostics = bad.lint().allow(&["refused", "lockstep"]);
    assert_eq!(diagnostics.errors(), 1);
    assert_eq!(diagnostics.warnings(), 0);
}

#[test]
fn validate_still_returns_the_first_error() {
    let config = RetryConfig {
        max_attempts: Some(0),
        max_unknown_attempts: Some(Some(0)),
        ..RetryConfig::default()
    };
    assert_eq!(config.validate().unwrap_err().path, "max_attempts");
    let paths: Vec<String> = config.lint().into_iter().map(|d| d.path).collect();
    assert_eq!(paths, ["max_attempts", "max_unknown_attempts"]);
}

#[test]
fn a_built_policy_is_linted_too() {
    let policy = RetryPolicy::builder()
        .strategy(Backoff::exponential(
            Duration::from_millis(100),
            Duration::from_secs(2),
        ))
        .class_strategy(
            ErrorClass::RateLimit,
            Backoff::equal_jitter(Duration::from_millis(100), Duration::from_secs(2)),
        )
        .class_max_attempts(ErrorClass::Auth, 2)
        .class_max_attempts(ErrorClass::Transient, 9)
        .max_attempts(5)
        .no_deadline()
        .no_unknown_cap()
        .build()
        .unwrap();
    let got: Vec<(&str, String)> = policy
        .lint()
        .into_iter()
        .map(|d| (d.code, d.path))
        .collect();
    assert_eq!(
        got,
        [
            (
                "never_retried_class",
                "classes.auth.max_attempts".to_owned()
            ),
            (
                "cap_never_triggers",
                "classes.transient.max_attempts".to_owned()
            ),
            ("lockstep", "strategy".to_owned()),
            ("unbounded_unknown", "max_unknown_attempts".to_owned()),
        ]
    );
    // A closure documents no bounds: no rule guesses about it.
    let custom = RetryPolicy::builder()
        .strategy(reflexio::strategy::from_fn(|_, _| Duration::from_millis(5)))
        .build()
        .unwrap();
    assert!(custom.lint().is_empty(), "{:?}", custom.lint());
}

#[test]
fn diagnostics_display_severity_code_path_and_advice() {
    let report = lint_toml("max_attempts = 3\nmax_unknown_attempts = 3\n");
    let text = report.diagnostics[0].to_string();
    assert!(
        text.starts_with(
            "warning[cap_never_triggers]: `max_unknown_attempts`: 3 is not below max_attempts (3)"
        ),
        "{text}"
    );
    assert!(text.contains("Lower it below 3"), "{text}");
}

#[test]
fn a_wrong_type_is_linted_in_the_words_of_toml() {
    for source in [
        "strategy = 3\n",
        "classes = { rate_limit = 3 }\n",
        "budget = 3\n",
        "seed = -1\n",
        "max_attempts = 18446744073709551616\n",
    ] {
        let report = lint_toml(source);
        assert!(report.has_errors(), "{source}");
        for d in &report.diagnostics {
            for word in ["struct ", "Config", "u32", "u64", "i128"] {
                assert!(!d.message.contains(word), "{source}: {}", d.message);
            }
            assert!(
                d.message.contains("expected a table")
                    || d.message.contains("expected a whole number"),
                "{source}: {}",
                d.message
            );
        }
    }
}

#[test]
fn tables_linted_from_one_parse_are_linted_as_one_by_one() {
    let src = "max_attempts = 3\n[policies.a]\nmax_attempts = 0\ndeadline = \"0s\"\n\
               [policies.b]\nstrategy = { kind = \"constant\", base = \"10ms\" }\n\
               [[background]]\n[background.policy]\nmax_attempts = -1\n";
    let tables = [
        "policies.a",
        "policies.b",
        "background.0.policy",
        "policies.none",
        "",
    ];
    let together = lint::lint_toml_tables(src, &tables);
    assert_eq!(together.len(), tables.len());
    for (table, report) in tables.iter().zip(&together) {
        let alone = lint::lint_toml_table(src, table);
        assert_eq!(
            format!("{:?}", report.diagnostics),
            format!("{:?}", alone.diagnostics),
            "{table}"
        );
        assert_eq!(
            report.config.as_ref().map(RetryConfig::to_toml_string),
            alone.config.as_ref().map(RetryConfig::to_toml_string),
            "{table}"
        );
    }
    assert!(together[0].has_errors() && together[2].has_errors());
}
