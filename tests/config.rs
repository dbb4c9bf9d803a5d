//! Policies from TOML: every validation error (its path, its message and
//! where it points), warnings, "off" values, normalisation round trips and
//! `RetryPolicy::from_config`.
#![cfg(feature = "config")]

use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use reflexio::config::{format_duration, line_col, parse_duration, ConfigError};
use reflexio::{Backoff, BackoffKind, DelayContext, ErrorClass, RetryConfig, RetryPolicy};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Parses `source`, expects an error at `path` whose span starts on
/// `line` and whose message mentions every one of `mentions`.
#[track_caller]
fn expect_error(source: &str, path: &str, line: usize, mentions: &[&str]) -> ConfigError {
    let err = RetryConfig::from_toml_str(source).expect_err("the configuration must be refused");
    assert_eq!(err.path, path, "{err}");
    for word in mentions {
        assert!(
            err.message.contains(word),
            "message {:?} should mention {word:?}",
            err.message
        );
    }
    let span = err.span.clone().expect("the error points into the source");
    assert!(span.start <= span.end && span.end <= source.len());
    assert_eq!(
        line_col(source, span.start).0,
        line,
        "span {span:?} = {:?}",
        &source[span.clone()]
    );
    assert!(err.to_string().contains(&format!("`{path}`")), "{err}");
    err
}

/// Inputs of the wrong type, and what the message must say instead of
/// the Rust type behind the field (`struct StrategyConfig`, `u32`).
const WRONG_TYPES: &[(&str, &str, &str)] = &[
    ("strategy = 3\n", "strategy", "expected a table"),
    ("budget = \"ratio\"\n", "budget", "expected a table"),
    (
        "classes = { rate_limit = 3 }\n",
        "classes.rate_limit",
        "expected a table",
    ),
    ("seed = -1\n", "seed", "expected a whole number"),
    (
        "max_attempts = -1\n",
        "max_attempts",
        "expected a whole number",
    ),
    (
        "max_attempts = 18446744073709551616\n",
        "max_attempts",
        "expected a whole number",
    ),
    (
        "budget = { kind = \"token_bucket\", capacity = 4294967296 }\n",
        "budget.capacity",
        "expected a whole number",
    ),
];

/// Words of Rust's, not of a TOML document.
fn rust_words(message: &str) -> Option<&'static str> {
    ["struct ", "Config", "u32", "u64", "i128", "f64"]
        .into_iter()
        .find(|w| message.contains(w))
}

const UNITS_ALLOWED: &[&str] = &["ns", "us", "ms", "s", "m", "h", "\"250ms\""];

// ---------------------------------------------------------------------------
// Every configuration error

#[test]
fn unknown_top_level_field() {
    let src = "max_attempts = 4\nmax_attemps = 5\n";
    let err = expect_error(
        src,
        "max_attemps",
        2,
        &[
            "max_attemps",
            "deadline",
            "max_attempts",
            "max_unknown_attempts",
            "strategy",
            "classes",
        ],
    );
    assert_eq!(&src[err.span.unwrap()], "max_attemps");
}

#[test]
fn unknown_strategy_field() {
    let src = "seed = 1\n\n[strategy]\nkind = \"equal_jitter\"\nbse = \"1s\"\n";
    expect_error(src, "strategy.bse", 5, &["bse", "kind", "base", "max"]);
}

#[test]
fn unknown_field_in_a_class_strategy_table() {
    let src = "[classes.rate_limit]\nstrategy = { kind = \"constant\", delay = \"1s\" }\n";
    expect_error(
        src,
        "classes.rate_limit.strategy.delay",
        2,
        &["delay", "kind", "base", "max"],
    );
}

#[test]
fn unknown_class_table_field() {
    let src = "max_attempts = 4\n[classes.server_error]\nmax_attempts = 2\nretries = 3\n";
    expect_error(
        src,
        "classes.server_error.retries",
        4,
        &["retries", "max_attempts", "strategy"],
    );
}

#[test]
fn wrong_types() {
    expect_error(
        "seed = 3\nmax_attempts = \"six\"\n",
        "max_attempts",
        2,
        &["string", "whole number"],
    );
    // A duration must be a string with a unit, not a bare number.
    expect_error(
        "\ndeadline = 30\n",
        "deadline",
        2,
        &["integer", "\"250ms\"", "\"off\""],
    );
    expect_error(
        "[strategy]\nkind = 3\n",
        "strategy.kind",
        2,
        &["integer", "string"],
    );
    expect_error(
        "max_unknown_attempts = \"many\"\n",
        "max_unknown_attempts",
        1,
        &["many", "whole number", "\"off\""],
    );
    expect_error("seed = 1.5\n", "seed", 1, &["float", "whole number"]);
}

#[test]
fn zero_durations() {
    expect_error(
        "max_attempts = 3\ndeadline = \"0s\"\n",
        "deadline",
        2,
        &["zero", "greater than zero"],
    );
    expect_error(
        "max_retry_after = \"0ms\"\n",
        "max_retry_after",
        1,
        &["zero", "greater than zero"],
    );
    expect_error(
        "[strategy]\nkind = \"full_jitter\"\nbase = \"0ns\"\n",
        "strategy.base",
        3,
        &["zero"],
    );
    expect_error(
        "[classes.transient]\nstrategy = { kind = \"exponential\", max = \"0h\" }\n",
        "classes.transient.strategy.max",
        2,
        &["zero"],
    );
}

#[test]
fn negative_durations() {
    let mut mentions = vec!["negative"];
    mentions.extend_from_slice(UNITS_ALLOWED);
    expect_error("deadline = \"-1s\"\n", "deadline", 1, &mentions);
    expect_error(
        "[strategy]\nkind = \"constant\"\nbase = \"-250ms\"\n",
        "strategy.base",
        3,
        &mentions,
    );
}

#[test]
fn durations_without_a_unit() {
    let mut mentions = vec!["no unit"];
    mentions.extend_from_slice(UNITS_ALLOWED);
    expect_error("deadline = \"30\"\n", "deadline", 1, &mentions);
    expect_error(
        "\n\n[strategy]\nkind = \"equal_jitter\"\nmax = \"5\"\n",
        "strategy.max",
        5,
        &mentions,
    );
}

#[test]
fn durations_with_an_unknown_unit() {
    let mut mentions = vec!["unknown unit `d`"];
    mentions.extend_from_slice(UNITS_ALLOWED);
    expect_error("deadline = \"2d\"\n", "deadline", 1, &mentions);
    let mut mentions = vec!["unknown unit `sec`"];
    mentions.extend_from_slice(UNITS_ALLOWED);
    expect_error(
        "max_attempts = 2\nmax_retry_after = \"10sec\"\n",
        "max_retry_after",
        2,
        &mentions,
    );
    // "off" is only a value for the limits that can be turned off.
    expect_error(
        "max_retry_after = \"off\"\n",
        "max_retry_after",
        1,
        &["off"],
    );
}

#[test]
fn durations_in_scientific_notation_are_told_to_write_the_digits_out() {
    for text in ["1e400s", "1.5e3ms", "2E-3s", "1e+2ms"] {
        let mut mentions = vec!["has an exponent", "write the digits out"];
        mentions.extend_from_slice(UNITS_ALLOWED);
        expect_error(
            &format!("deadline = \"{text}\"\n"),
            "deadline",
            1,
            &mentions,
        );
    }
    // A unit that merely starts with an `e` is still an unknown unit.
    let mut mentions = vec!["unknown unit `eon`"];
    mentions.extend_from_slice(UNITS_ALLOWED);
    expect_error("deadline = \"1eon\"\n", "deadline", 1, &mentions);
}

#[test]
fn base_above_max() {
    let src = "[strategy]\nkind = \"equal_jitter\"\nbase = \"10s\"\nmax = \"1s\"\n";
    let err = expect_error(src, "strategy.base", 3, &["10s", "1s", "max"]);
    assert_eq!(&src[err.span.unwrap()], "\"10s\"");

    // Above the kind's default max, when no max is given.
    let src = "[classes.rate_limit]\nstrategy = { kind = \"token_backoff\", base = \"25s\" }\n";
    expect_error(
        src,
        "classes.rate_limit.strategy.base",
        2,
        &["25s", "20s", "default"],
    );
}

#[test]
fn unknown_class_name() {
    let src = "max_attempts = 3\n\n[classes.ratelimit]\nmax_attempts = 2\n";
    expect_error(
        src,
        "classes.ratelimit",
        3,
        &["ratelimit", "auth", "rate_limit", "server_error", "unknown"],
    );
    // Inline table form.
    let src = "classes = { timeout = { max_attempts = 2 } }\n";
    expect_error(src, "classes.timeout", 1, &["timeout", "transient"]);
}

#[test]
fn unknown_strategy_kind() {
    let src = "[strategy]\nkind = \"fibonacci\"\n";
    let err = expect_error(
        src,
        "strategy.kind",
        2,
        &[
            "fibonacci",
            "decorrelated_jitter",
            "equal_jitter",
            "token_backoff",
            "full_jitter",
            "exponential",
            "constant",
        ],
    );
    assert_eq!(&src[err.span.unwrap()], "\"fibonacci\"");
    expect_error(
        "[classes.concurrency]\nmax_attempts = 3\nstrategy = { kind = \"jitter\" }\n",
        "classes.concurrency.strategy.kind",
        3,
        &["jitter", "equal_jitter"],
    );
}

#[test]
fn zero_max_attempts() {
    expect_error(
        "seed = 1\nmax_attempts = 0\n",
        "max_attempts",
        2,
        &["at least 1"],
    );
}

#[test]
fn zero_max_unknown_attempts() {
    expect_error(
        "max_unknown_attempts = 0\n",
        "max_unknown_attempts",
        1,
        &["at least 1", "\"off\""],
    );
}

#[test]
fn negative_counts() {
    expect_error(
        "max_attempts = -1\n",
        "max_attempts",
        1,
        &["-1", "whole number"],
    );
    expect_error(
        "max_unknown_attempts = -2\n",
        "max_unknown_attempts",
        1,
        &["-2", "whole number"],
    );
}

#[test]
fn zero_class_max_attempts() {
    expect_error(
        "[classes.server_error]\nstrategy = { kind = \"constant\" }\n\n[classes.transient]\nmax_attempts = 0\n",
        "classes.transient.max_attempts",
        5,
        &["at least 1"],
    );
}

#[test]
fn unknown_class_cap_belongs_at_the_top_level() {
    expect_error(
        "[classes.unknown]\nmax_attempts = 1\n",
        "classes.unknown.max_attempts",
        2,
        &["max_unknown_attempts"],
    );
}

#[test]
fn max_on_a_constant_strategy() {
    expect_error(
        "[strategy]\nkind = \"constant\"\nbase = \"1s\"\nmax = \"2s\"\n",
        "strategy.max",
        4,
        &["constant", "base"],
    );
    expect_error(
        "[classes.server_error]\nstrategy = { kind = \"constant\", base = \"1s\", max = \"2s\" }\n",
        "classes.server_error.strategy.max",
        2,
        &["constant", "base"],
    );
}

#[test]
fn syntax_errors_point_at_their_line() {
    let src = "max_attempts = 3\ndeadline = \"1s\n";
    let err = RetryConfig::from_toml_str(src).unwrap_err();
    let span = err.span.expect("a span");
    assert_eq!(line_col(src, span.start).0, 2);
}

#[test]
fn errors_can_be_nested_in_a_larger_document() {
    let err = RetryConfig::from_toml_str("[strategy]\nkind = \"nope\"\n").unwrap_err();
    let nested = err.nested_in("policies.fast");
    assert_eq!(nested.path, "policies.fast.strategy.kind");
    assert!(nested
        .to_string()
        .starts_with("`policies.fast.strategy.kind`: "));
}

#[test]
fn line_col_counts_lines_and_characters() {
    let src = "a = 1\nbé = \"x\"\n";
    assert_eq!(line_col(src, 0), (1, 1));
    assert_eq!(line_col(src, 6), (2, 1));
    // Column in characters, not bytes: "bé" is three bytes.
    assert_eq!(line_col(src, src.find("é =").unwrap() + "é".len()), (2, 3));
    assert_eq!(line_col(src, 10_000), (3, 1));
}

// ---------------------------------------------------------------------------
// Warnings and "off"

#[test]
fn unknown_cap_above_max_attempts_is_a_warning_not_an_error() {
    let config =
        RetryConfig::from_toml_str("max_attempts = 3\nmax_unknown_attempts = 5\n").unwrap();
    let warnings = config.validate().unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].path, "max_unknown_attempts");
    assert!(warnings[0].message.contains("max_attempts"));
    assert!(warnings[0].to_string().contains("`max_unknown_attempts`"));

    // Equal is fine, and so is the default max_attempts of 6.
    for src in [
        "max_attempts = 3\nmax_unknown_attempts = 3\n",
        "max_unknown_attempts = 6\n",
        "max_unknown_attempts = \"off\"\n",
    ] {
        let config = RetryConfig::from_toml_str(src).unwrap();
        assert!(config.validate().unwrap().is_empty(), "{src}");
    }
    let config = RetryConfig::from_toml_str("max_unknown_attempts = 7\n").unwrap();
    assert_eq!(config.validate().unwrap().len(), 1);
}

#[test]
fn strategy_for_a_never_retried_class_is_a_warning() {
    let config =
        RetryConfig::from_toml_str("[classes.auth]\nstrategy = { kind = \"constant\" }\n").unwrap();
    let warnings = config.validate().unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].path, "classes.auth.strategy");
}

#[test]
fn off_values_turn_limits_off() {
    for src in [
        "deadline = \"off\"\nmax_unknown_attempts = \"off\"\n",
        "deadline = false\nmax_unknown_attempts = false\n",
    ] {
        let config = RetryConfig::from_toml_str(src).unwrap();
        let env = config.envelope();
        assert_eq!(env.deadline, None, "{src}");
        assert_eq!(env.max_unknown_attempts, None, "{src}");
        assert_eq!(env.max_attempts, 6);
    }
    // `true` is not a way to say "on".
    assert!(RetryConfig::from_toml_str("deadline = true\n").is_err());
    assert!(RetryConfig::from_toml_str("max_unknown_attempts = true\n").is_err());
}

#[test]
fn empty_configuration_is_the_default_policy() {
    let config = RetryConfig::from_toml_str("").unwrap();
    assert_eq!(config, RetryConfig::default());
    assert_eq!(config.envelope(), reflexio::Envelope::default());
    assert_eq!(
        *RetryPolicy::from_config(&config).unwrap().envelope(),
        *RetryPolicy::default().envelope()
    );
    for class in ErrorClass::ALL {
        assert_eq!(
            config.backoff(class),
            Some(Backoff::decorrelated_jitter(ms(250), ms(5000)))
        );
    }
}

// ---------------------------------------------------------------------------
// Durations

#[test]
fn human_durations_parse_exactly() {
    let cases = [
        ("250ms", ms(250)),
        ("1.5s", ms(1500)),
        ("1m30s", Duration::from_secs(90)),
        ("2h", Duration::from_secs(7200)),
        ("100ns", Duration::from_nanos(100)),
        ("250us", Duration::from_micros(250)),
        ("250µs", Duration::from_micros(250)),
        ("0.5ms", Duration::from_micros(500)),
        (".5s", ms(500)),
        ("1h1m1s1ms1us1ns", Duration::new(3661, 1_001_001)),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_duration(text), Ok(expected), "{text}");
    }
    for bad in ["", "s", "1", "1x", "-1s", "0s", "1.2.3s", "off"] {
        assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn durations_format_in_the_largest_exact_unit() {
    assert_eq!(format_duration(ms(250)), "250ms");
    assert_eq!(format_duration(Duration::from_secs(60)), "1m");
    assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
    assert_eq!(format_duration(Duration::from_micros(1500)), "1500us");
    assert_eq!(format_duration(Duration::from_nanos(7)), "7ns");
    assert_eq!(format_duration(Duration::ZERO), "0s");
    for d in [
        ms(1),
        Duration::new(12_345, 678),
        Duration::from_secs(3600 * 24 * 365),
    ] {
        assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }
}

// ---------------------------------------------------------------------------
// Normalisation and round trips

const RICH: &str = r#"
deadline = "30s"
max_attempts = 8
max_unknown_attempts = 3
max_retry_after = "10s"
seed = 42

[strategy]
kind = "equal_jitter"
base = "100ms"
max = "5s"

[classes.rate_limit]
max_attempts = 4
strategy = { kind = "token_backoff", base = "500ms" }

[classes.server_error]
strategy = { kind = "constant", base = "1.5s" }

[classes.concurrency]
strategy = { kind = "full_jitter", base = "1500us", max = "2s" }
"#;

#[test]
fn normalized_round_trips_through_toml() {
    for src in [
        RICH,
        "",
        "deadline = \"off\"\nmax_unknown_attempts = \"off\"\n",
        "[strategy]\nkind = \"constant\"\n",
    ] {
        let config = RetryConfig::from_toml_str(src).unwrap();
        let normalized = config.normalized().unwrap();
        let text = normalized.to_toml_string();
        let back = RetryConfig::from_toml_str(&text)
            .unwrap_or_else(|e| panic!("{e}\n--- normalized:\n{text}"));
        assert_eq!(back, normalized, "{text}");
        assert_eq!(back.normalized().unwrap(), normalized, "idempotent");
        // Every default is written out.
        assert!(normalized.deadline.is_some());
        assert!(normalized.max_attempts.is_some());
        assert!(normalized.max_unknown_attempts.is_some());
        assert!(normalized.max_retry_after.is_some());
        assert!(normalized.strategy.is_some());
    }
}

#[test]
fn normalized_describes_the_same_strategies() {
    let config = RetryConfig::from_toml_str(RICH).unwrap();
    let normalized = config.normalized().unwrap();
    for class in ErrorClass::ALL {
        assert_eq!(normalized.backoff(class), config.backoff(class), "{class}");
    }
    assert_eq!(
        config.backoff(ErrorClass::RateLimit),
        Some(Backoff::token_backoff(ms(500), Duration::from_secs(20)))
    );
    assert_eq!(normalized.seed, Some(42), "the seed is part of the policy");
    let rate_limit = &normalized.classes["rate_limit"];
    assert_eq!(rate_limit.max_attempts, Some(4));
    let strategy = rate_limit.strategy.as_ref().unwrap();
    assert_eq!(strategy.kind, "token_backoff");
    assert_eq!(strategy.max.map(|d| d.0), Some(Duration::from_secs(20)));
}

#[test]
fn normalized_keeps_class_caps_without_a_strategy() {
    let config = RetryConfig::from_toml_str("[classes.rate_limit]\nmax_attempts = 4\n").unwrap();
    assert_eq!(
        config.envelope().class_max_attempts[ErrorClass::RateLimit.index()],
        Some(4)
    );
    let normalized = config.normalized().unwrap();
    assert_eq!(normalized.envelope(), config.envelope());
    let back = RetryConfig::from_toml_str(&normalized.to_toml_string()).unwrap();
    assert_eq!(back.envelope(), config.envelope());
}

#[test]
fn any_seed_round_trips_through_toml() {
    let config = RetryConfig {
        seed: Some(u64::MAX),
        ..RetryConfig::default()
    };
    let text = config.to_toml_string();
    let back = RetryConfig::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(back.seed, Some(u64::MAX));
}

// ---------------------------------------------------------------------------
// from_config

#[test]
fn from_config_honours_the_envelope() {
    let policy = RetryPolicy::from_config(&RetryConfig::from_toml_str(RICH).unwrap()).unwrap();
    let env = policy.envelope();
    assert_eq!(env.deadline, Some(Duration::from_secs(30)));
    assert_eq!(env.max_attempts, 8);
    assert_eq!(env.max_unknown_attempts, Some(3));
    assert_eq!(env.max_retry_after, Duration::from_secs(10));
    let mut caps = [None; 8];
    caps[ErrorClass::RateLimit.index()] = Some(4);
    assert_eq!(env.class_max_attempts, caps);
    assert_eq!(env.class_cap(ErrorClass::Unknown), Some(3));

    let off =
        RetryConfig::from_toml_str("deadline = \"off\"\nmax_unknown_attempts = \"off\"\n").unwrap();
    let policy = RetryPolicy::from_config(&off).unwrap();
    assert_eq!(policy.envelope().deadline, None);
    assert_eq!(policy.envelope().max_unknown_attempts, None);
}

#[test]
fn from_config_uses_each_class_strategy() {
    let config = RetryConfig::from_toml_str(RICH).unwrap();
    let policy = RetryPolicy::from_config(&config).unwrap();
    let expected = |class: ErrorClass| match class {
        ErrorClass::RateLimit => Backoff::token_backoff(ms(500), Duration::from_secs(20)),
        ErrorClass::ServerError => Backoff::constant(ms(1500)),
        ErrorClass::Concurrency => Backoff::full_jitter(Duration::from_micros(1500), ms(2000)),
        _ => Backoff::equal_jitter(ms(100), ms(5000)),
    };
    for class in ErrorClass::ALL {
        assert_eq!(config.backoff(class), Some(expected(class)));
        let mut engine_rng = ChaCha8Rng::seed_from_u64(class.index() as u64);
        let mut reference_rng = ChaCha8Rng::seed_from_u64(class.index() as u64);
        let mut previous = None;
        for attempt in 1..=12 {
            let ctx = DelayContext::new(attempt, class, previous);
            let got = policy.engine().strategy(class).delay(&ctx, &mut engine_rng);
            let want = reflexio::Strategy::delay(&expected(class), &ctx, &mut reference_rng);
            assert_eq!(got, want, "{class} attempt {attempt}");
            previous = Some(got);
        }
    }
}

#[test]
fn from_config_refuses_an_invalid_configuration() {
    let config = RetryConfig {
        max_attempts: Some(0),
        ..RetryConfig::default()
    };
    let err = RetryPolicy::from_config(&config).unwrap_err();
    assert_eq!(err.path, "max_attempts");
}

#[test]
fn from_config_keeps_the_seed() {
    let config = RetryConfig::from_toml_str("seed = 1234\n").unwrap();
    let policy = RetryPolicy::from_config(&config).unwrap();
    assert!(format!("{policy:?}").contains("seed: Some(1234)"));
}

#[test]
fn a_builder_from_config_takes_hooks_and_a_clock() {
    use std::sync::{Arc, Mutex};

    let config = RetryConfig::from_toml_str(RICH).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let clock = reflexio::ManualClock::new();
    let policy = reflexio::RetryPolicyBuilder::from_config(&config)
        .unwrap()
        .clock(clock.clone())
        .sleeper(clock.clone())
        .hook(move |event: &reflexio::Event<'_>| {
            seen.lock()
                .unwrap()
                .push((event.kind.name(), event.attempt, event.delay));
        })
        .build()
        .unwrap();
    assert_eq!(
        policy.envelope(),
        RetryPolicy::from_config(&config).unwrap().envelope()
    );
    let err = policy
        .call(|| Err::<(), _>(reflexio::ClassifiedError::server_error("503")))
        .unwrap_err();
    // server_error: constant 1.5 s from its class table, 8 attempts from
    // the configuration, every sleep on the manual clock.
    assert_eq!(err.attempts(), 8);
    assert_eq!(err.reason(), reflexio::StopReason::MaxAttemptsExceeded);
    assert_eq!(clock.slept(), ms(7 * 1500));
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 8);
    for (i, event) in events[..7].iter().enumerate() {
        assert_eq!(*event, ("retry", i as u32 + 1, Some(ms(1500))));
    }
    assert_eq!(events[7], ("max_attempts_exceeded", 8, None));
}

#[test]
fn a_builder_from_config_decides_as_from_config_does() {
    // Configurations that exercise each way a class gets its strategy: its
    // own table, the top-level table, the default; a cap without a
    // strategy; the unknown class with its own; limits turned off.
    let sources = [
        RICH,
        "",
        "[classes.rate_limit]\nmax_attempts = 3\n",
        "[classes.unknown]\nstrategy = { kind = \"constant\", base = \"2s\" }\n",
        "deadline = \"off\"\nmax_unknown_attempts = \"off\"\n\
         [strategy]\nkind = \"full_jitter\"\n\
         [classes.transient]\nmax_attempts = 2\n",
    ];
    for src in sources {
        let config = RetryConfig::from_toml_str(src).unwrap();
        let built = reflexio::RetryPolicyBuilder::from_config(&config)
            .unwrap()
            .build()
            .unwrap();
        let loaded = RetryPolicy::from_config(&config).unwrap();
        let engine = config.engine().unwrap();
        assert_eq!(built.envelope(), loaded.envelope(), "{src}");
        assert_eq!(built.envelope(), engine.envelope(), "{src}");
        for class in ErrorClass::ALL {
            let mut a = ChaCha8Rng::seed_from_u64(7);
            let mut b = ChaCha8Rng::seed_from_u64(7);
            let mut c = ChaCha8Rng::seed_from_u64(7);
            let mut previous = None;
            for attempt in 1..=10 {
                let ctx = DelayContext::new(attempt, class, previous);
                let got = built.engine().strategy(class).delay(&ctx, &mut a);
                let want = loaded.engine().strategy(class).delay(&ctx, &mut b);
                assert_eq!(got, want, "{src:?} {class} attempt {attempt}");
                assert_eq!(got, engine.strategy(class).delay(&ctx, &mut c));
                previous = Some(got);
            }
        }
    }
    let bad = RetryConfig {
        max_attempts: Some(0),
        ..RetryConfig::default()
    };
    let err = reflexio::RetryPolicyBuilder::from_config(&bad).unwrap_err();
    assert_eq!(err.path, "max_attempts");
}

#[test]
fn durations_past_the_schema_built_in_code_are_refused_like_parsed_ones() {
    use reflexio::config::{ClassConfig, HumanDuration, StrategyConfig};

    // One nanosecond past the longest duration the schema writes and reads.
    let long = Duration::from_nanos(u64::MAX) + Duration::from_nanos(1);
    let strategy = |base, max| StrategyConfig {
        kind: "full_jitter".into(),
        base,
        max,
    };
    let mut classes = std::collections::BTreeMap::new();
    classes.insert(
        "rate_limit".to_owned(),
        ClassConfig {
            max_attempts: None,
            strategy: Some(strategy(None, Some(HumanDuration(Duration::MAX)))),
        },
    );
    let cases = [
        (
            RetryConfig {
                deadline: Some(Some(long)),
                ..RetryConfig::default()
            },
            "deadline",
        ),
        (
            RetryConfig {
                max_retry_after: Some(HumanDuration(Duration::MAX)),
                ..RetryConfig::default()
            },
            "max_retry_after",
        ),
        (
            RetryConfig {
                strategy: Some(strategy(
                    Some(HumanDuration(long)),
                    Some(HumanDuration(long)),
                )),
                ..RetryConfig::default()
            },
            "strategy.base",
        ),
        (
            RetryConfig {
                classes,
                ..RetryConfig::default()
            },
            "classes.rate_limit.strategy.max",
        ),
    ];
    for (config, path) in cases {
        let err = config.validate().unwrap_err();
        assert_eq!(err.path, path);
        assert!(err.message.contains("584 years"), "{}", err.message);
        assert_eq!(RetryPolicy::from_config(&config).unwrap_err().path, path);
    }
    // The longest that is allowed writes TOML that reads back.
    let longest = RetryConfig {
        deadline: Some(Some(Duration::from_nanos(u64::MAX))),
        max_retry_after: Some(HumanDuration(Duration::from_nanos(u64::MAX))),
        ..RetryConfig::default()
    };
    longest.validate().unwrap();
    let text = longest.normalized().unwrap().to_toml_string();
    RetryConfig::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
}

#[test]
fn zero_durations_built_in_code_are_refused_like_parsed_ones() {
    use reflexio::config::{HumanDuration, StrategyConfig};

    let zero = HumanDuration(Duration::ZERO);
    let strategy = |base, max| StrategyConfig {
        kind: "equal_jitter".into(),
        base,
        max,
    };
    let cases = [
        (
            RetryConfig {
                deadline: Some(Some(Duration::ZERO)),
                ..RetryConfig::default()
            },
            "deadline",
        ),
        (
            RetryConfig {
                max_retry_after: Some(zero),
                ..RetryConfig::default()
            },
            "max_retry_after",
        ),
        (
            RetryConfig {
                strategy: Some(strategy(Some(zero), None)),
                ..RetryConfig::default()
            },
            "strategy.base",
        ),
        (
            RetryConfig {
                strategy: Some(strategy(None, Some(zero))),
                ..RetryConfig::default()
            },
            "strategy.max",
        ),
    ];
    for (config, path) in cases {
        let err = config.validate().unwrap_err();
        assert_eq!(err.path, path);
        assert!(err.message.contains("greater than zero"), "{}", err.message);
        assert_eq!(RetryPolicy::from_config(&config).unwrap_err().path, path);
        assert_eq!(
            reflexio::RetryPolicyBuilder::from_config(&config)
                .unwrap_err()
                .path,
            path
        );
    }
}

/// The times at which each attempt of one always-failing call starts, on
/// tokio's paused clock.
#[cfg(feature = "tokio")]
async fn attempt_times(policy: &RetryPolicy) -> Vec<Duration> {
    let origin = tokio::time::Instant::now();
    let mut times = Vec::new();
    let err = policy
        .call_async(|| {
            times.push(origin.elapsed());
            async { Err::<(), _>(reflexio::ClassifiedError::transient("reset")) }
        })
        .await
        .unwrap_err();
    assert_eq!(err.attempts() as usize, times.len());
    times
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn from_config_seed_reproduces_delays() {
    let src = |seed: u64| {
        format!(
            "seed = {seed}\nmax_attempts = 5\ndeadline = \"off\"\n\
             [strategy]\nkind = \"equal_jitter\"\nbase = \"100ms\"\nmax = \"10s\"\n"
        )
    };
    let policy = |seed| RetryPolicy::from_config(&RetryConfig::from_toml_str(&src(seed)).unwrap());
    let a = attempt_times(&policy(7).unwrap()).await;
    let b = attempt_times(&policy(7).unwrap()).await;
    let c = attempt_times(&policy(8).unwrap()).await;
    assert_eq!(a.len(), 5, "max_attempts from the configuration");
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Equal jitter, attempt 1: [100 ms, 200 ms] (tokio rounds up to 1 ms).
    assert!(a[1] >= ms(100) && a[1] <= ms(201), "{a:?}");
}

#[test]
fn backoff_kind_names_match_the_configuration_schema() {
    for kind in BackoffKind::ALL {
        assert_eq!(BackoffKind::from_name(kind.name()), Some(kind));
        let src = format!("[strategy]\nkind = \"{}\"\n", kind.name());
        let config = RetryConfig::from_toml_str(&src).unwrap();
        assert_eq!(
            config.backoff(ErrorClass::Transient),
            Some(Backoff::with_defaults(kind))
        );
    }
}

#[test]
fn errors_point_at_the_right_line_however_the_table_is_written() {
    // Dotted keys.
    expect_error(
        "seed = 1\n\nclasses.rate_limit.max_attempts = 0\n",
        "classes.rate_limit.max_attempts",
        3,
        &["at least 1"],
    );
    // An inline table under a [classes] header.
    expect_error(
        "seed = 1\n[classes]\nrate_limit = { max_attempts = 0 }\n",
        "classes.rate_limit.max_attempts",
        3,
        &["at least 1"],
    );
    // A sub-table header for a class strategy, after the class's own table.
    expect_error(
        "seed = 1\n[classes.transient]\nmax_attempts = 2\n[classes.transient.strategy]\n\
         kind = \"equal_jitter\"\nbase = \"9s\"\nmax = \"1s\"\n",
        "classes.transient.strategy.base",
        6,
        &["9s", "1s"],
    );
    expect_error(
        "seed = 1\nstrategy.kind = \"nope\"\n",
        "strategy.kind",
        2,
        &["nope", "equal_jitter"],
    );
    expect_error(
        "seed = 1\n[classes]\nbogus = {}\n",
        "classes.bogus",
        3,
        &["bogus", "rate_limit"],
    );
}

#[test]
fn durations_finer_than_a_nanosecond_or_past_584_years_are_refused() {
    let fine = parse_duration("0.5ns").unwrap_err();
    assert!(fine.contains("finer than one nanosecond"), "{fine}");
    assert_eq!(
        parse_duration("1.50ns").unwrap_err(),
        fine.replace("0.5ns", "1.50ns")
    );
    assert_eq!(parse_duration("1.0ns").unwrap(), Duration::from_nanos(1));
    assert_eq!(
        parse_duration("0.000000001s").unwrap(),
        Duration::from_nanos(1)
    );
    // Fractions of units that are not powers of ten are exact too.
    assert_eq!(
        parse_duration("0.000000000005h").unwrap(),
        Duration::from_nanos(18)
    );
    assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("0.25m").unwrap(), Duration::from_secs(15));
    assert_eq!(
        parse_duration("0.25ms").unwrap(),
        Duration::from_micros(250)
    );
    assert_eq!(
        parse_duration("1.500s").unwrap(),
        Duration::from_millis(1500)
    );
    let h = parse_duration("0.000000000001h").unwrap_err();
    assert!(h.contains("finer than one nanosecond"), "{h}");
    assert!(parse_duration("1.2.3s")
        .unwrap_err()
        .contains("not a number"));
    let huge = parse_duration("999999999999999999999999999999999999999h").unwrap_err();
    assert!(huge.contains("584 years"), "{huge}");

    assert_eq!(
        parse_duration("18446744073709551615ns").unwrap(),
        Duration::from_nanos(u64::MAX)
    );
    let long = parse_duration("18446744073709551616ns").unwrap_err();
    assert!(
        long.contains("too large") && long.contains("584 years"),
        "{long}"
    );
    let err =
        RetryConfig::from_toml_str("[strategy]\nkind = \"equal_jitter\"\nmax = \"99999999999h\"\n")
            .unwrap_err();
    assert_eq!(err.path, "strategy.max");
    assert!(err.message.contains("584 years"), "{}", err.message);
}

#[test]
fn zero_means_retry_immediately_for_constant_only() {
    let config = RetryConfig::from_toml_str("strategy = { kind = \"constant\", base = \"0s\" }\n")
        .expect("a zero constant delay is allowed");
    let backoff = config.strategy.as_ref().unwrap().backoff().unwrap();
    assert_eq!(
        backoff,
        reflexio::strategy::Backoff::constant(Duration::ZERO)
    );
    // It survives normalisation and a round trip through TOML.
    let text = config.normalized().unwrap().to_toml_string();
    assert!(text.contains("base = \"0s\""), "{text}");
    RetryConfig::from_toml_str(&text).expect("the normalised text loads again");
    // A policy built from it retries without sleeping.
    let policy = reflexio::RetryPolicy::from_config(&config).unwrap();
    let mut calls = 0;
    let started = std::time::Instant::now();
    let result = policy.call(|| {
        calls += 1;
        if calls < 3 {
            Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "boom"))
        } else {
            Ok(())
        }
    });
    assert!(result.is_ok());
    assert_eq!(calls, 3);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Zero stays refused where it means nothing.
    for (source, path) in [
        (
            "strategy = { kind = \"exponential\", base = \"0s\" }\n",
            "strategy.base",
        ),
        (
            "strategy = { kind = \"decorrelated_jitter\", base = \"0ns\", max = \"1s\" }\n",
            "strategy.base",
        ),
        (
            "strategy = { kind = \"equal_jitter\", max = \"0s\" }\n",
            "strategy.max",
        ),
    ] {
        let e = RetryConfig::from_toml_str(source).unwrap_err();
        assert_eq!(e.path, path, "{source}");
        assert!(e.message.contains("zero"), "{}", e.message);
    }
}

#[test]
fn budget_tables_load_with_their_kinds_defaults() {
    use reflexio::BudgetSpec;
    let config =
        RetryConfig::from_toml_str("[budget]\nkind = \"ratio\"\npercent = 12.5\n").unwrap();
    assert_eq!(
        config.budget_spec().unwrap(),
        Some(BudgetSpec::Ratio {
            window: Duration::from_secs(10),
            min_per_sec: 10,
            percent_ppm: 125_000,
        })
    );
    let config = RetryConfig::from_toml_str("[budget]\nkind = \"token_bucket\"\n").unwrap();
    assert_eq!(
        config.budget_spec().unwrap(),
        Some(BudgetSpec::TokenBucket {
            capacity: 500,
            retry_cost: 5,
            timeout_cost: 10,
            success_refund: 1,
        })
    );
    // The policy gets it, fresh, and the normalized form writes it out.
    let policy = RetryPolicy::from_config(&config).unwrap();
    assert_eq!(
        policy.engine().budget().and_then(|b| b.spec()),
        config.budget_spec().unwrap()
    );
    let text = config.normalized().unwrap().to_toml_string();
    assert!(
        text.contains("[budget]") && text.contains("capacity = 500"),
        "{text}"
    );
    assert_eq!(
        RetryConfig::from_toml_str("")
            .unwrap()
            .budget_spec()
            .unwrap(),
        None
    );
}

#[test]
fn budget_errors_name_the_field_and_point_at_it() {
    let src = "max_attempts = 4\n[budget]\nkind = \"leaky\"\n";
    expect_error(src, "budget.kind", 3, &["leaky", "token_bucket, ratio"]);
    let src = "[budget]\nkind = \"ratio\"\nwindow = \"500ms\"\n";
    expect_error(src, "budget.window", 3, &["1s to 1h"]);
    let src = "[budget]\nkind = \"ratio\"\npercent = 1001\n";
    expect_error(src, "budget.percent", 3, &["0 to 1000"]);
    let src = "[budget]\nkind = \"ratio\"\npercent = -5\n";
    expect_error(src, "budget.percent", 3, &["0 to 1000"]);
    let src = "[budget]\nkind = \"ratio\"\n\ncapacity = 10\n";
    expect_error(
        src,
        "budget.capacity",
        4,
        &["token_bucket", "window, min_per_sec and percent"],
    );
    let src = "[budget]\nkind = \"token_bucket\"\nmin_per_sec = 3\n";
    expect_error(src, "budget.min_per_sec", 3, &["ratio", "capacity"]);
    let src = "[budget]\nkind = \"token_bucket\"\ncapacity = 8\ntimeout_cost = 10\n";
    expect_error(src, "budget.timeout_cost", 4, &["above the capacity"]);
    let src = "[budget]\nkind = \"token_bucket\"\nretry_cost = 0\n";
    expect_error(src, "budget.retry_cost", 3, &["at least 1"]);
    let src = "[budget]\nkind = \"ratio\"\nburst = 3\n";
    expect_error(src, "budget.burst", 3, &["unknown field"]);
    let src = "[budget]\nwindow = \"10s\"\n";
    expect_error(src, "budget", 1, &["kind"]);
}

#[test]
fn a_wrong_type_is_told_in_the_words_of_toml() {
    for (source, path, expected) in WRONG_TYPES {
        let err = expect_error(source, path, 1, &[expected]);
        assert_eq!(rust_words(&err.message), None, "{err}");
    }
    // The document's own words, quoted back, are left as written.
    let err = expect_error(
        "max_attempts = \"struct Foo as i128\"\n",
        "max_attempts",
        1,
        &["\"struct Foo as i128\"", "expected a whole number"],
    );
    assert!(!err.message.contains("a table"), "{err}");
}

#[test]
fn a_missing_kind_lists_the_kinds() {
    for (source, path, kinds) in [
        (
            "strategy = {}\n",
            "strategy",
            &["equal_jitter", "constant"][..],
        ),
        (
            "[classes.rate_limit.strategy]\nbase = \"1s\"\n",
            "classes.rate_limit.strategy",
            &["token_backoff", "full_jitter"][..],
        ),
        ("budget = {}\n", "budget", &["token_bucket", "ratio"][..]),
    ] {
        let err = RetryConfig::from_toml_str(source).unwrap_err();
        assert_eq!(err.path, path, "{err}");
        assert!(err.message.contains("missing field `kind`"), "{err}");
        for kind in kinds {
            assert!(err.message.contains(kind), "{err}");
        }
        let lint = reflexio::lint::lint_toml(source);
        assert!(
            lint.diagnostics
                .iter()
                .any(|d| kinds.iter().all(|k| d.message.contains(k))),
            "{:?}",
            lint.diagnostics
        );
    }
}

/// A count of the wrong type, or past what its type holds, is told the
/// field's own range, not the type's: attempts and token costs start at 1.
#[test]
fn a_count_that_does_not_parse_is_told_the_fields_own_range() {
    let from_one = "a whole number from 1 to 4294967295";
    for (source, path, line) in [
        ("max_attempts = -1\n", "max_attempts", 1),
        ("max_attempts = 4294967296\n", "max_attempts", 1),
        ("max_attempts = 18446744073709551616\n", "max_attempts", 1),
        ("max_attempts = 2.0\n", "max_attempts", 1),
        ("max_attempts = \"3\"\n", "max_attempts", 1),
        ("max_attempts = true\n", "max_attempts", 1),
        (
            "[classes.transient]\nmax_attempts = -1\n",
            "classes.transient.max_attempts",
            2,
        ),
        (
            "[budget]\nkind = \"token_bucket\"\ncapacity = -1\n",
            "budget.capacity",
            3,
        ),
        (
            "[budget]\nkind = \"token_bucket\"\nretry_cost = 1.5\n",
            "budget.retry_cost",
            3,
        ),
        (
            "[budget]\nkind = \"token_bucket\"\ntimeout_cost = \"2\"\n",
            "budget.timeout_cost",
            3,
        ),
    ] {
        let e = expect_error(source, path, line, &[from_one]);
        assert!(!e.message.contains("from 0"), "{e}");
    }
    // A string or a boolean is the wrong type there, not a wrong value.
    for source in ["max_attempts = \"3\"\n", "max_attempts = true\n"] {
        let e = RetryConfig::from_toml_str(source).unwrap_err();
        assert!(e.message.starts_with("invalid type"), "{e}");
    }
    let e = expect_error(
        "max_unknown_attempts = -1\n",
        "max_unknown_attempts",
        1,
        &[from_one, "\"off\""],
    );
    assert!(!e.message.contains("from 0"), "{e}");
    // Fields that take 0 keep saying so.
    expect_error(
        "[budget]\nkind = \"token_bucket\"\nsuccess_refund = -1\n",
        "budget.success_refund",
        3,
        &["from 0 to 4294967295"],
    );
    // Inside the type but outside the range: the field's own check, with
    // its reason, and the same bound.
    expect_error(
        "max_attempts = 0\n",
        "max_attempts",
        1,
        &["at least 1", "first attempt"],
    );
    expect_error(
        "[budget]\nkind = \"token_bucket\"\ncapacity = 0\n",
        "budget.capacity",
        3,
        &["at least 1"],
    );
}

#[test]
fn an_integer_past_tomls_64_bits_says_what_toml_allows() {
    expect_error(
        "deadline = \"1s\"\nmax_attempts = 100000000000000000000000000000000000000000\n",
        "max_attempts",
        2,
        &["overflowed", "-9223372036854775808", "9223372036854775807"],
    );
}
