//! `reflexio-sim check` / `doctor`: every diagnostic with its position,
//! exit codes, JSON, allow-listing, and the bundled scenarios' recommended
//! policies.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

mod common;

use common::cli as run;

/// A scratch folder of this test process.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("reflexio-sim-doctor-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file.to_string_lossy().into_owned()
}

fn json(args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let (code, out, err) = run(&all);
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    assert_eq!(doc["exit_code"], code);
    (code, doc)
}

#[test]
fn every_problem_of_a_policy_file_is_listed_with_its_position() {
    let dir = scratch("policy");
    let file = write(
        &dir,
        "policy.toml",
        "deadline = \"0s\"\nmax_attempts = 0\nmax_unknown_attempts = -1\n\n[classes.bogus]\nmax_attempts = 3\n[classes.transient]\nmax_attempts = 0\n",
    );
    let (code, out, err) = run(&["check", &file]);
    assert_eq!(code, 2, "{err}");
    for (at, path) in [
        (":1:12: error[invalid]:", "`deadline`"),
        (":2:16: error[refused]:", "`max_attempts`"),
        (":3:24: error[invalid]:", "`max_unknown_attempts`"),
        (":5:1: error[refused]:", "`classes.bogus`"),
        (":8:16: error[refused]:", "`classes.transient.max_attempts`"),
    ] {
        let line = format!("{file}{at} {path}");
        assert!(err.contains(&line), "{line} missing from:\n{err}");
    }
    assert!(err.contains("5 errors, 0 warnings"), "{err}");
    // Nothing is normalised from a broken policy.
    assert!(out.is_empty(), "{out}");

    let (code, doc) = json(&["doctor", &file]);
    assert_eq!(code, 2);
    assert_eq!(doc["errors"], 5);
    assert_eq!(doc["kind"], "policy");
    let d = &doc["diagnostics"][2];
    assert_eq!(d["path"], "max_unknown_attempts");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(3), Some(24))
    );
    assert_eq!(d["severity"], "error");
    assert!(doc["policies"].as_array().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn warnings_exit_zero_unless_denied_and_can_be_allowed() {
    let dir = scratch("warnings");
    let file = write(
        &dir,
        "constant.toml",
        "max_attempts = 4\nstrategy = { kind = \"constant\", base = \"100ms\" }\n",
    );
    let (code, out, err) = run(&["check", &file]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("{file}:2:12: warning[lockstep]: `strategy`")),
        "{err}"
    );
    // The normalised policy and its worst case follow.
    assert!(
        out.contains("kind = \"constant\"") && out.contains("# worst case"),
        "{out}"
    );

    let (code, _, _) = run(&["check", "--deny-warnings", &file]);
    assert_eq!(code, 1);
    let (code, _, err) = run(&["check", "--deny-warnings", "--allow", "lockstep", &file]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("lockstep"), "{err}");
    let (code, _, err) = run(&["check", "--allow", "lockstpe", &file]);
    assert_eq!(code, 2);
    assert!(err.contains("allowed: cap_never_triggers"), "{err}");

    // The same code allowed in the file.
    let allowed = write(
        &dir,
        "allowed.toml",
        "allow = [\"lockstep\"]\nmax_attempts = 4\nstrategy = { kind = \"constant\", base = \"100ms\" }\n",
    );
    let (code, _, err) = run(&["check", "--deny-warnings", &allowed]);
    assert_eq!(code, 0, "{err}");

    let (code, doc) = json(&["check", "--deny-warnings", &file]);
    assert_eq!(code, 1);
    assert_eq!(
        (doc["errors"].as_u64(), doc["warnings"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(doc["diagnostics"][0]["code"], "lockstep");
    let policy = &doc["policies"][0];
    assert_eq!(policy["worst_case"]["max_attempts"], 4);
    assert_eq!(policy["worst_case"]["max_total_sleep_ms"], 300.0);
    assert!(policy["normalized"]
        .as_str()
        .unwrap()
        .contains("max_attempts = 4"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_scenario_reports_every_policy_and_its_own_problem() {
    let dir = scratch("scenario");
    let file = write(
        &dir,
        "broken.toml",
        r#"[workload]
calls = 0

[policies.a]
max_attempts = 0

[policies.b]
deadline = "soon"
[policies.b.classes.auth]
strategy = { kind = "constant" }

[policies.c]
"#,
    );
    let (code, doc) = json(&["check", &file]);
    assert_eq!(code, 2);
    let at = |path: &str, line, code: &str| (path.to_owned(), line, code.to_owned());
    assert_eq!(
        found(&doc),
        [
            at("workload.calls", 2, "invalid"),
            at("policies.a.max_attempts", 5, "refused"),
            at("policies.b.deadline", 8, "invalid"),
            // The default policy's own warning, at its table.
            at("policies.c.strategy", 12, "decorrelated_saturation"),
        ],
        "{doc:#}"
    );
    assert_eq!(doc["kind"], "scenario");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A scenario whose one background workload has `policy` as its
/// `[background.policy]` table (line 12 on).
fn with_background_policy(policy: &str) -> String {
    format!(
        r#"name = "background"
[workload]
calls = 10
arrival = "all_at_once"
[latency]
distribution = "constant"
value = "1ms"
[[background]]
name = "batch"
calls = 5
arrival = "all_at_once"
[background.policy]
{policy}
[policies.p]
max_attempts = 2
"#
    )
}

/// `(path, line, code)` of each diagnostic of a `check --format json`
/// document.
fn found(doc: &Value) -> Vec<(String, u64, String)> {
    doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().to_owned(),
                d["line"].as_u64().unwrap(),
                d["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `(path, line, column)` of each error of a `check --format json`
/// document.
fn errors(doc: &Value) -> Vec<(String, u64, u64)> {
    doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .map(|d| {
            (
                d["path"].as_str().unwrap().to_owned(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_background_workloads_policy_is_linted_where_it_stands() {
    let dir = scratch("background-policy");
    // Warnings: a lockstep constant backoff, a hint ceiling past the
    // deadline; placed at the background's own table.
    let file = write(
        &dir,
        "warned.toml",
        &with_background_policy(
            "max_attempts = 3\ndeadline = \"10s\"\nstrategy = { kind = \"constant\", base = \"10ms\" }",
        ),
    );
    let (code, doc) = json(&["check", &file]);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(
        found(&doc),
        [
            (
                "background[0].policy.max_retry_after".to_owned(),
                12,
                "retry_after_beyond_deadline".to_owned()
            ),
            (
                "background[0].policy.strategy".to_owned(),
                15,
                "lockstep".to_owned()
            ),
        ],
        "{doc:#}"
    );
    let (code, _) = json(&["check", &file, "--deny-warnings"]);
    assert_eq!(code, 1);
    // The JSON has the scenario's tables as the text output prints them.
    let (_, text, _) = run(&["check", &file]);
    let tables = &doc["scenario"];
    assert_eq!(tables["background"][0]["name"], "batch");
    for part in [
        tables["workload"].as_str().unwrap(),
        tables["background"][0]["normalized"].as_str().unwrap(),
        tables["latency"].as_str().unwrap(),
    ] {
        assert!(text.contains(part), "{part}\nnot in\n{text}");
    }
    assert!(tables["background"][0]["normalized"]
        .as_str()
        .unwrap()
        .contains("[background.policy.strategy]\nkind = \"constant\""));
    // Its worst case, as a compared policy's: three attempts, two 10 ms
    // sleeps.
    let worst = &tables["background"][0]["worst_case"];
    assert_eq!(worst["max_attempts"], 3, "{doc:#}");
    assert_eq!(worst["max_total_sleep_ms"], 20.0, "{doc:#}");
    assert_eq!(worst["bounded"], true);
    let (code, doc) = json(&[
        "check",
        &file,
        "--allow",
        "lockstep",
        "--allow",
        "retry_after_beyond_deadline",
    ]);
    assert_eq!((code, doc["warnings"].as_u64()), (0, Some(0)), "{doc:#}");

    // Every error at once, each once, where it is (the scenario parser
    // would stop at the first).
    let file = write(
        &dir,
        "broken.toml",
        &with_background_policy("max_attempts = 0\ndeadline = \"soon\""),
    );
    let (code, doc) = json(&["check", &file]);
    assert_eq!(code, 2);
    assert!(doc.get("scenario").is_none(), "{doc:#}");
    assert_eq!(
        found(&doc),
        [
            (
                "background[0].policy.max_attempts".to_owned(),
                13,
                "refused".to_owned()
            ),
            (
                "background[0].policy.deadline".to_owned(),
                14,
                "invalid".to_owned()
            ),
        ],
        "{doc:#}"
    );

    // What the linter allows but a background policy may not have is
    // still refused, by the scenario parser.
    let file = write(
        &dir,
        "budget.toml",
        &with_background_policy("budget = { kind = \"ratio\", percent = 10 }"),
    );
    let (code, doc) = json(&["check", &file]);
    assert_eq!(code, 2);
    // (Beside the default strategy's own warning.)
    assert_eq!(doc["errors"], 1, "{doc:#}");
    let budget = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["severity"] == "error")
        .unwrap();
    assert_eq!(budget["path"], "background[0].policy.budget");
    assert_eq!(budget["line"], 13);
    assert!(budget["message"]
        .as_str()
        .unwrap()
        .contains("may not have a retry budget"));

    // A budget beside another error, and a misspelt field (placed at its
    // key, as in a compared policy): all at once.
    let file = write(
        &dir,
        "all.toml",
        &with_background_policy(
            "max_attempts = 0\nbudget = { kind = \"ratio\", percent = 10 }\nmax_attempt = 3",
        ),
    );
    let (code, doc) = json(&["check", &file]);
    assert_eq!(code, 2);
    assert_eq!(
        errors(&doc),
        [
            ("background[0].policy.max_attempts".to_owned(), 13, 16),
            ("background[0].policy.budget".to_owned(), 14, 10),
            ("background[0].policy.max_attempt".to_owned(), 15, 1),
        ],
        "{doc:#}"
    );

    // A second background workload, its policy an inline table.
    let source = with_background_policy("max_attempts = 2").replace(
        "[policies.p]",
        "[[background]]\nname = \"sync\"\ncalls = 5\npolicy = { max_attempts = 3, strategy = { kind = \"constant\", base = \"10ms\" } }\n[policies.p]",
    );
    let file = write(&dir, "second.toml", &source);
    let (code, doc) = json(&["check", &file]);
    assert_eq!(code, 0, "{doc:#}");
    let lockstep = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "lockstep")
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(lockstep["path"], "background[1].policy.strategy");
    assert_eq!(
        (&lockstep["line"], &lockstep["column"]),
        (&json!(17), &json!(41))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn too_many_policies_are_refused_and_only_as_many_as_allowed_are_linted() {
    let dir = scratch("many");
    let mut source = "[workload]\ncalls = 10\n".to_owned();
    for i in 0..60 {
        source.push_str(&format!(
            "[policies.p{i}]\nmax_attempts = 3\nstrategy = {{ kind = \"constant\", base = \"10ms\" }}\n"
        ));
    }
    let file = write(&dir, "many.toml", &source);
    let (code, doc) = json(&["check", &file]);
    assert_eq!(code, 2);
    let diagnostics = doc["diagnostics"].as_array().unwrap();
    let refused: Vec<&Value> = diagnostics
        .iter()
        .filter(|d| d["severity"] == "error")
        .collect();
    assert_eq!(refused.len(), 1, "{doc:#}");
    assert_eq!(refused[0]["path"], "policies");
    assert!(refused[0]["message"]
        .as_str()
        .unwrap()
        .contains("60 policies; at most 50"));
    // The first fifty, in file order, each with its lockstep warning.
    let linted: Vec<&str> = diagnostics
        .iter()
        .filter(|d| d["code"] == "lockstep")
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..50).map(|i| format!("policies.p{i}.strategy")).collect();
    assert_eq!(linted, expected);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn what_only_the_simulator_refuses_in_a_policy_is_listed_once() {
    let dir = scratch("simulator-only");
    let run_of = |name: &str, text: &str| {
        let file = write(&dir, name, text);
        let (code, doc) = json(&["check", &file]);
        assert_eq!(code, 2, "{doc:#}");
        errors(&doc)
            .into_iter()
            .map(|(path, line, _)| (path, line))
            .collect::<Vec<_>>()
    };
    let head = "[workload]\ncalls = 10\n";
    // The linter passes these; the simulator does not: more attempts per
    // call than it simulates, a blank name.
    let many = "max_attempts = 100001\nstrategy = { kind = \"equal_jitter\", base = \"1ms\", max = \"1ms\" }";
    assert_eq!(
        run_of("many.toml", &format!("{head}[policies.p]\n{many}\n")),
        [("policies.p.max_attempts".to_owned(), 4)]
    );
    assert_eq!(
        run_of(
            "blank.toml",
            &format!("{head}[policies.\" \"]\nmax_attempts = 2\n")
        ),
        [("policies.\" \"".to_owned(), 3)]
    );
    // A numeric name: the linter's error, not the parser's again.
    assert_eq!(
        run_of(
            "numeric.toml",
            &format!("{head}[policies.0]\nmax_attempts = 0\n")
        ),
        [("policies.0.max_attempts".to_owned(), 4)]
    );
    // A background policy with a budget and too many attempts: both.
    let file = with_background_policy(&format!(
        "{many}\nbudget = {{ kind = \"ratio\", percent = 10 }}"
    ));
    assert_eq!(
        run_of("both.toml", &file),
        [
            ("background[0].policy.max_attempts".to_owned(), 13),
            ("background[0].policy.budget".to_owned(), 15),
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_normalised_scenario_parses_back_to_the_same_names() {
    // A combining accent, quotes and a backslash in the operation and the
    // background's name, a dot and a space in a policy's: the tables
    // `check` prints are TOML that says the same.
    let dir = scratch("names");
    let operation = "cafe\u{301} \"hot\" C:\\row";
    let background_name = "nightly\u{301} batch";
    // The file spells the accent as TOML's escape, the quotes and the
    // backslash as theirs.
    let source = r#"name = "names"

[workload]
calls = 10
arrival = "all_at_once"
operation = "cafe\u0301 \"hot\" C:\\row"

[latency]
distribution = "constant"
value = "1ms"

[[background]]
name = "nightly\u0301 batch"
calls = 5
arrival = "poisson"
rate = 10.0

[policies."my policy.v2"]
max_attempts = 2
"#;
    let file = write(&dir, "names.toml", source);
    let (code, out, err) = run(&["check", &file]);
    assert_eq!(code, 0, "{err}");
    let printed: toml::Value =
        toml::from_str(&out).unwrap_or_else(|e| panic!("check printed invalid TOML: {e}\n{out}"));
    assert_eq!(printed["workload"]["operation"].as_str(), Some(operation));
    assert_eq!(
        printed["background"][0]["name"].as_str(),
        Some(background_name),
        "{out}"
    );
    assert_eq!(
        printed["policies"]["my policy.v2"]["max_attempts"].as_integer(),
        Some(2),
        "{out}"
    );
    // A background workload without a policy has no worst case to show.
    let (_, doc) = json(&["check", &file]);
    let background = &doc["scenario"]["background"][0];
    assert_eq!(background["name"], background_name);
    assert!(background.get("worst_case").is_none(), "{doc:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_help_has_the_exit_code_table_and_the_codes() {
    let (code, out, _) = run(&["check", "--help"]);
    assert_eq!(code, 0);
    for word in [
        "--deny-warnings",
        "--format",
        "--allow",
        "doctor",
        "0  no errors",
        "1  warnings, with --deny-warnings",
        "2  errors",
        "lockstep",
        "unbounded_unknown",
    ] {
        assert!(out.contains(word), "{word} missing from:\n{out}");
    }
    let (_, out, _) = run(&["--help"]);
    assert!(out.contains("Exit codes of `check`"), "{out}");
}

/// The policies each bundled scenario recommends pass the doctor without
/// a warning; the others are there to show what goes wrong, and the
/// doctor says so.
#[test]
fn the_bundled_recommended_policies_are_clean() {
    let scenarios = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let recommended = [
        ("rate-limit", "tuned"),
        ("outage", "patient"),
        ("contention", "tuned"),
        ("overload", "two-jittered"),
        ("flaky", "quick"),
    ];
    for (scenario, policy) in recommended {
        let file = scenarios.join(format!("{scenario}.toml"));
        let (code, doc) = json(&["check", "--deny-warnings", file.to_str().unwrap()]);
        assert_eq!(doc["errors"], 0, "{doc:#}");
        let prefix = format!("policies.{policy}");
        let own: Vec<&Value> = doc["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["path"].as_str().unwrap().starts_with(&prefix))
            .collect();
        assert!(own.is_empty(), "{scenario}/{policy}: {own:#?}");
        assert!(
            doc["policies"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == policy),
            "{doc:#}"
        );
        // The demonstration policies do draw warnings, so --deny-warnings
        // fails on these files.
        assert_eq!(code, 1, "{scenario}");
    }
    // The lockstep demonstrations are named for what the doctor finds.
    let (_, doc) = json(&["check", scenarios.join("contention.toml").to_str().unwrap()]);
    assert!(
        doc["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["path"] == "policies.lockstep.strategy" && d["code"] == "lockstep"),
        "{doc:#}"
    );
}

#[test]
fn a_file_that_cannot_be_read_still_gets_its_json_document() {
    let dir = scratch("unreadable");
    let missing = dir.join("missing.toml").to_string_lossy().into_owned();
    let folder = dir.to_string_lossy().into_owned();
    for file in [&missing, &folder] {
        let (code, doc) = json(&["check", file]);
        assert_eq!(code, 2);
        assert_eq!(doc["format"], "reflexio-sim-check/1");
        assert_eq!(doc["file"], file.as_str());
        assert_eq!(doc["kind"], "unreadable");
        assert_eq!(
            (doc["errors"].clone(), doc["warnings"].clone()),
            (json!(1), json!(0))
        );
        let diagnostics = doc["diagnostics"].as_array().unwrap();
        assert_eq!(diagnostics.len(), 1);
        let d = &diagnostics[0];
        assert_eq!(
            (&d["severity"], &d["code"], &d["path"]),
            (&json!("error"), &json!("unreadable"), &json!(""))
        );
        assert!(d["line"].is_null() && d["column"].is_null());
        assert!(
            d["message"].as_str().unwrap().starts_with("cannot read: "),
            "{d}"
        );
        assert_eq!(doc["policies"], json!([]));
        assert!(doc.get("scenario").is_none());
        // The text format says the same on standard error, and nothing on
        // standard output.
        let (code, out, err) = run(&["check", file]);
        assert_eq!((code, out.as_str()), (2, ""));
        assert!(
            err.starts_with(&format!("error: {file}: cannot read: ")),
            "{err}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}
