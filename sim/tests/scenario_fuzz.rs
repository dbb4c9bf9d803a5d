//! The scenario parser on a few thousand structured and mutated scenario
//! files (parsing and validation only, nothing is simulated): it never
//! panics, and every rejection names the file, its line and column, and
//! the field when there is one; a rejection of a field of a
//! `[[background]]` table points inside that table. `reflexio-sim check`
//! agrees with the parser on a few hundred of the structured files, and
//! places what it finds in a background workload's policy inside that
//! workload's table. The cargo-fuzz target `scenario_parser` (see
//! fuzz/README.md) runs the parser's checks for as long as one likes.

use proptest::prelude::*;
use reflexio_sim::{Scenario, ScenarioError};

fn pick(options: &[&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(options.to_vec()).prop_map(str::to_owned)
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        pick(&[
            "\"0s\"",
            "\"1ns\"",
            "\"10ms\"",
            "\"1s\"",
            "\"90s\"",
            "\"-1s\"",
            "\"1x\"",
            "\"340282366920938463463374607431768211.9us\"",
            "\"584y\"",
            "\"\""
        ]),
        "\"[0-9]{1,4}(ms|s|m)\"",
    ]
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        pick(&[
            "0",
            "1",
            "-1",
            "0.5",
            "1e-300",
            "1e300",
            "nan",
            "inf",
            "4294967295",
            "50.0",
            "\"x\""
        ]),
        (1u32..500).prop_map(|n| n.to_string()),
    ]
}

fn workload() -> impl Strategy<Value = String> {
    (
        number(),
        pick(&["\"poisson\"", "\"fixed\"", "\"burst\"", "\"nope\""]),
        number(),
    )
        .prop_map(|(calls, arrival, rate)| {
            format!("[workload]\ncalls = {calls}\narrival = {arrival}\nrate = {rate}\n")
        })
}

fn failure() -> impl Strategy<Value = String> {
    prop_oneof![
        (number(), pick(&["transient", "server_error", "rate_limit", "bogus"])).prop_map(
            |(p, class)| format!(
                "[[failures]]\nmodel = \"random\"\nprobability = {p}\nclasses = {{ {class} = 1.0 }}\n"
            )
        ),
        (duration(), duration()).prop_map(|(start, end)| format!(
            "[[failures]]\nmodel = \"outage\"\nstart = {start}\nend = {end}\nclass = \"server_error\"\n"
        )),
        (number(), duration()).prop_map(|(capacity, hint)| format!(
            "[[failures]]\nmodel = \"rate_limit\"\ncapacity = {capacity}\nretry_after = {hint}\n"
        )),
        number().prop_map(|rows| format!("[[failures]]\nmodel = \"contention\"\nrows = {rows}\n")),
        pick(&["[[failures]]\nmodel = \"trace\"\ndata = \"\"\"\ntime,class\n0,transient\n1,explode\n\"\"\"\n"]),
    ]
}

fn policy() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => any_policy(),
        // Policies the linter passes and the simulator refuses: more
        // attempts per call than it simulates, a blank name.
        1 => pick(&[
            "[policies.many]\nmax_attempts = 100001\nstrategy = { kind = \"equal_jitter\", base = \"1ms\", max = \"1ms\" }\n",
            "[policies.\" \"]\nmax_attempts = 2\n",
        ]),
    ]
}

fn any_policy() -> impl Strategy<Value = String> {
    (
        pick(&["p", "a.b", "\"a.b\"", "fast", "x y", "\"\"", "0"]),
        number(),
        duration(),
        pick(&["decorrelated_jitter", "constant", "equal_jitter", "nope"]),
        duration(),
    )
        .prop_map(|(name, attempts, deadline, kind, base)| {
            let name = if name.starts_with('"') || name.chars().all(|c| c.is_ascii_alphanumeric()) {
                name
            } else {
                format!("\"{name}\"")
            };
            format!(
                "[policies.{name}]\nmax_attempts = {attempts}\ndeadline = {deadline}\nstrategy = {{ kind = \"{kind}\", base = {base} }}\n"
            )
        })
}

/// One field of a `[[background]]` table: a valid form and a broken one.
type Field = BoxedStrategy<(String, String)>;

fn field(good: &[&'static str], bad: &[&'static str]) -> Field {
    (pick(good), pick(bad)).boxed()
}

/// Its name: plain, unicode, blank, bidirectional text; or empty, with a
/// control character (escaped or raw), of the wrong type, missing. The
/// few plain names repeat, so duplicates come up.
fn background_name() -> Field {
    field(
        &[
            "name = \"batch\"\n",
            "name = \"sync\"\n",
            "name = \"批处理\"\n",
            "name = \"\\u00e9\\u30d0\"\n",
            "name = \"café-𝄞\"\n",
            "name = \"a|b`c *d* <i>\"\n",
            "name = \" \"\n",
            "name = \"\\u202Eevil\"\n",
        ],
        &[
            "name = \"\"\n",
            "name = \"bell\\u0007\"\n",
            "name = \"line\\nbreak\"\n",
            "name = \"tab\\there\"\n",
            "name = \"del\\u007F\"\n",
            "name = \"esc\\u001B[2J\"\n",
            "name = \"nul\\u0000\"\n",
            "name = 'raw\ttab'\n",
            "name = 7\n",
            "name = [\"batch\"]\n",
            "",
        ],
    )
}

fn background_calls() -> Field {
    (
        prop_oneof![(1u32..60).prop_map(|c| c.to_string()), pick(&["1", "2"])],
        prop_oneof![
            pick(&[
                "0",
                "50000000",
                "50000001",
                "49999990",
                "18446744073709551615",
                "18446744073709551616",
                "-5",
                "missing",
            ]),
            number(),
        ],
    )
        .prop_map(|(good, bad)| {
            let bad = if bad == "missing" {
                String::new()
            } else {
                format!("calls = {bad}\n")
            };
            (format!("calls = {good}\n"), bad)
        })
        .boxed()
}

/// How its calls arrive: `arrival` with `rate` or `phases`.
fn background_arrival() -> Field {
    let long_phases = (60usize..70).prop_map(|n| {
        let mut list = vec!["{ rate = 5.0, for = \"10ms\" }"; n];
        list.push("{ rate = 5.0 }");
        format!("arrival = \"poisson\"\nphases = [{}]\n", list.join(", "))
    });
    let bad = prop_oneof![
        3 => pick(&[
            "arrival = \"closed_loop\"\n",
            "arrival = \"closed_loop\"\nrate = 5.0\n",
            "arrival = \"nope\"\n",
            "arrival = 1\n",
            "arrival = \"poisson\"\n",
            "rate = 5.0\n",
            "arrival = \"all_at_once\"\nphases = [{ rate = 1.0 }]\n",
            "arrival = \"fixed_rate\"\nrate = 5.0\nphases = [{ rate = 1.0 }]\n",
            "arrival = \"poisson\"\nrate = 0\n",
            "arrival = \"poisson\"\nrate = -1\n",
            "arrival = \"poisson\"\nrate = nan\n",
            "arrival = \"poisson\"\nrate = inf\n",
            "arrival = \"poisson\"\nrate = \"x\"\n",
            "arrival = \"fixed_rate\"\nrate = 1e-300\n",
            "arrival = \"poisson\"\nphases = []\n",
            "arrival = \"poisson\"\nphases = [{ rate = 0 }]\n",
            "arrival = \"poisson\"\nphases = [{ for = \"1s\" }]\n",
            "arrival = \"poisson\"\nphases = [{ rate = 1.0, for = \"0s\" }, { rate = 2.0 }]\n",
            "arrival = \"poisson\"\nphases = [{ rate = 1.0 }, { rate = 2.0 }]\n",
            "arrival = \"poisson\"\nphases = [{ rate = 1.0, at = \"1s\" }]\n",
            "arrival = \"poisson\"\nphases = [{ rate = nan }]\n",
            "arrival = \"fixed_rate\"\nphases = [{ rate = -inf, for = \"1s\" }, { rate = 1.0 }]\n",
            "arrival = \"fixed_rate\"\nphases = [{ rate = 1.0, for = \"584y\" }, { rate = 1.0 }]\n",
            "arrival = \"fixed_rate\"\nphases = [{ rate = 1.0, for = \"500y\" }, { rate = 1e-300 }]\n",
            "arrival = \"poisson\"\nphases = { rate = 1.0 }\n",
        ]),
        1 => (number(), duration(), number()).prop_map(|(a, d, b)| format!(
            "arrival = \"fixed_rate\"\nphases = [{{ rate = {a}, for = {d} }}, {{ rate = {b} }}]\n"
        )),
        1 => long_phases,
    ];
    let good = pick(&[
        "",
        "arrival = \"all_at_once\"\n",
        "arrival = \"fixed_rate\"\nrate = 50.0\n",
        "arrival = \"poisson\"\nrate = 200.0\n",
        "arrival = \"poisson\"\nrate = 1\n",
        "arrival = \"fixed_rate\"\nrate = 1e9\n",
        "arrival = \"poisson\"\nphases = [{ rate = 40.0, for = \"1s\" }, { rate = 80.0 }]\n",
        "arrival = \"fixed_rate\"\nphases = [{ rate = 40.0, for = \"200ms\" }, { rate = 400.0, for = \"1s\" }, { rate = 40.0 }]\n",
        "arrival = \"poisson\"\nphases = [{ rate = 5.0 }]\n",
        "arrival = \"fixed_rate\"\nphases = [{ rate = 1e9, for = \"1ns\" }, { rate = 10.0 }]\n",
    ]);
    (good, bad).boxed()
}

/// A field the table does not take, or none.
fn background_stray() -> Field {
    field(
        &[""],
        &[
            "clients = 4\n",
            "think_time = \"1s\"\n",
            "operation = \"op\"\n",
            "nmae = \"x\"\n",
            "budget = { kind = \"ratio\" }\n",
        ],
    )
}

/// Its policy: none, or a `[background.policy]` table (or an inline
/// `policy = ...`) with the fields of a `[policies.NAME]` table; broken,
/// one of those fields is wrong, or it has a retry budget, which a
/// background policy may not have. It comes last: its sub-table ends the
/// array entry's own keys.
fn background_policy() -> Field {
    let good = prop_oneof![
        2 => Just(String::new()),
        1 => (1u32..5).prop_map(|n| format!("policy = {{ max_attempts = {n} }}\n")),
        1 => Just("[background.policy]\n".to_owned()),
        3 => (
            1u32..5,
            pick(&["\"1s\"", "\"off\"", "\"90s\""]),
            pick(&["decorrelated_jitter", "full_jitter", "equal_jitter"]),
            pick(&["\"1ms\"", "\"20ms\""]),
            pick(&["", ", max = \"1s\"", ", max = \"50ms\""]),
            pick(&["", "allow = [\"lockstep\"]\n", "max_retry_after = \"1s\"\n"]),
        )
            .prop_map(|(n, deadline, kind, base, max, extra)| format!(
                "[background.policy]\nmax_attempts = {n}\ndeadline = {deadline}\nstrategy = {{ kind = \"{kind}\", base = {base}{max} }}\n{extra}"
            )),
        1 => pick(&[
            "[background.policy]\nmax_attempts = 3\nstrategy = { kind = \"constant\", base = \"0s\" }\nallow = [\"lockstep\"]\n",
        ]),
    ];
    let bad = pick(&[
        "policy = \"fast\"\n",
        "policy = { max_attempts = 0 }\n",
        "[background.policy]\nmax_attempts = -1\n",
        "[background.policy]\nmax_attempts = 0.5\n",
        "[background.policy]\nmax_attempts = 4294967295\n",
        "[background.policy]\nmax_attempts = 20000\nstrategy = { kind = \"constant\", base = \"0s\" }\n",
        "[background.policy]\ndeadline = \"0s\"\n",
        "[background.policy]\ndeadline = \"-1s\"\n",
        "[background.policy]\ndeadline = \"1x\"\n",
        "[background.policy]\ndeadline = 5\n",
        "[background.policy]\nstrategy = { kind = \"nope\", base = \"1ms\" }\n",
        "[background.policy]\nstrategy = { kind = \"decorrelated_jitter\", base = \"0s\" }\n",
        "[background.policy]\nstrategy = { kind = \"full_jitter\", base = \"1s\", max = \"1ms\" }\n",
        "[background.policy]\nstrategy = { kind = \"constant\", base = \"1ms\", cap = \"1s\" }\n",
        "[background.policy]\nbudget = { kind = \"ratio\", percent = 10 }\n",
        "[background.policy]\nbudget = { kind = \"token_bucket\", capacity = 5 }\n",
        "[background.policy]\nbudget = { kind = \"nope\" }\n",
        "[background.policy]\nmax_attempts = 2\n[background.policy.budget]\nkind = \"ratio\"\npercent = 500\n",
        "[background.policy]\nclasses = { transient = { max_attempts = 0 } }\n",
        "[background.policy]\nclasses = { nope = { max_attempts = 2 } }\n",
        "[background.policy]\nallow = [\"nope\"]\n",
        "[background.policy]\nmax_attempts_per_call = 3\n",
        "[background.policy]\nseed = -1\n",
        "[[background.policy]]\nmax_attempts = 2\n",
    ]);
    (good, bad).boxed()
}

/// One `[[background]]` table: every field valid, or all but one, which
/// is broken (about one table in three), so that every check of a table
/// is reached, not only the first field's.
fn background() -> impl Strategy<Value = String> {
    let fields = vec![
        background_name(),
        background_calls(),
        background_arrival(),
        background_stray(),
        background_policy(),
    ];
    let n = fields.len();
    (
        fields,
        prop_oneof![2 => Just(None), 1 => (0..n).prop_map(Some)],
    )
        .prop_map(|(fields, broken)| {
            let mut text = "[[background]]\n".to_owned();
            for (i, (good, bad)) in fields.into_iter().enumerate() {
                text.push_str(if broken == Some(i) { &bad } else { &good });
            }
            text
        })
}

fn structured() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop::option::of(number().prop_map(|s| format!("seed = {s}\n"))),
            prop::option::of(duration().prop_map(|b| format!("bucket = {b}\n"))),
            prop::option::of(workload()),
            prop::collection::vec(background(), 0..4),
            prop::collection::vec(failure(), 0..3),
            prop::collection::vec(policy(), 0..3),
        )
            .prop_map(|(seed, bucket, workload, background, failures, policies)| {
                format!(
                    "{}{}{}{}{}{}",
                    seed.unwrap_or_default(),
                    bucket.unwrap_or_default(),
                    workload.unwrap_or_default(),
                    background.concat(),
                    failures.concat(),
                    policies.concat()
                )
            }),
        // The background tables are validated after the rest of the
        // file: beside an otherwise valid scenario, every one of their
        // checks is reached.
        prop::collection::vec(background(), 1..4).prop_map(|background| format!(
            "[workload]\ncalls = 20\narrival = \"poisson\"\nrate = 50.0\n{}[policies.p]\nmax_attempts = 2\n",
            background.concat()
        )),
        // Likewise the compared policies: beside an otherwise valid
        // scenario, each of their problems is the first.
        prop::collection::vec(policy(), 1..4).prop_map(|policies| format!(
            "[workload]\ncalls = 20\narrival = \"poisson\"\nrate = 50.0\n{}",
            policies.concat()
        )),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Insert(prop::sample::Index, &'static str),
    Delete(prop::sample::Index, usize),
    Char(prop::sample::Index, char),
}

fn mutated() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "[", "]", "[[", "]]", "{", "}", "=", "\"", "'", ".", ",", "\n", "#", "\\", "\"\"\"",
        "[workload]\n", "[[failures]]\n", "[policies.p]\n", "[[background]]\n",
        "[background.policy]\n", "name = \"batch\"\n", "phases = [", "{ rate = 1.0 }",
        "[a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a]\n",
    ]);
    let edit = prop_oneof![
        (any::<prop::sample::Index>(), token).prop_map(|(i, t)| Edit::Insert(i, t)),
        (any::<prop::sample::Index>(), 1usize..8).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<prop::sample::Index>(), any::<char>()).prop_map(|(i, c)| Edit::Char(i, c)),
    ];
    (structured(), prop::collection::vec(edit, 1..4)).prop_map(|(doc, edits)| {
        let mut chars: Vec<char> = doc.chars().collect();
        for e in edits {
            match e {
                Edit::Insert(at, token) => {
                    let at = at.index(chars.len() + 1);
                    chars.splice(at..at, token.chars());
                }
                Edit::Delete(at, n) if !chars.is_empty() => {
                    let at = at.index(chars.len());
                    let end = (at + n).min(chars.len());
                    chars.drain(at..end);
                }
                Edit::Char(at, c) if !chars.is_empty() => {
                    let at = at.index(chars.len());
                    chars[at] = c;
                }
                _ => {}
            }
        }
        chars.into_iter().collect()
    })
}

fn check(source: &str) -> Result<Option<ScenarioError>, TestCaseError> {
    let Err(e) = Scenario::from_toml_str(source, "fuzz.toml") else {
        return Ok(None);
    };
    prop_assert_eq!(&e.file, "fuzz.toml");
    prop_assert!(!e.message.is_empty());
    // A field absent from the file (a missing table) has a path but no
    // position; everything else has both, but for a syntax error at the
    // top of the document, which has a position and no field.
    prop_assert!(
        e.position.is_some() || !e.path.is_empty(),
        "neither position nor path: {:?} for {:?}",
        e,
        source
    );
    Ok(Some(e))
}

/// [`check`], and for a structured file, that an error in its `i`-th
/// `[[background]]` table points inside that table: at or after its
/// header, before the next top-level table.
fn check_structured(source: &str) -> Result<(), TestCaseError> {
    let Some(e) = check(source)? else {
        return Ok(());
    };
    let Some(index) = e
        .path
        .strip_prefix("background[")
        .and_then(|rest| rest.split(']').next())
        .and_then(|i| i.parse::<usize>().ok())
    else {
        return Ok(());
    };
    let Some(lines) = background_lines(source, index) else {
        return Err(TestCaseError::fail(format!(
            "{e} names background table {index}, which the file does not have: {source:?}"
        )));
    };
    let Some((line, _)) = e.position else {
        return Err(TestCaseError::fail(format!(
            "{e}: no position for a field of a table the file has: {source:?}"
        )));
    };
    prop_assert!(
        lines.contains(&line),
        "{} points at line {}, outside background table {} (lines {:?}): {:?}",
        e,
        line,
        index,
        lines,
        source
    );
    Ok(())
}

/// The lines of the `[[background]]` table `index` of `source`: from its
/// header to the next top-level table.
fn background_lines(source: &str, index: usize) -> Option<std::ops::Range<usize>> {
    let headers: Vec<(usize, &str)> = source
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            l.starts_with('[') && !l.starts_with("[background.") && !l.starts_with("[[background.")
        })
        .map(|(n, l)| (n + 1, l))
        .collect();
    let start = headers
        .iter()
        .filter(|(_, l)| *l == "[[background]]")
        .nth(index)
        .map(|(n, _)| *n)?;
    let end = headers
        .iter()
        .map(|(n, _)| *n)
        .find(|n| *n > start)
        .unwrap_or(usize::MAX);
    Some(start..end)
}

/// `reflexio-sim check --format json` on `source`, a scenario: it never
/// panics; it finds errors exactly when the parser refuses the file; a finding in a
/// background workload's policy has a position inside that workload's
/// table.
fn doctor_agrees(source: &str, file: &std::path::Path) -> Result<(), TestCaseError> {
    // A file with neither `[workload]` nor `[policies...]` is a policy
    // file to `check`.
    let scenario = source
        .lines()
        .any(|l| l.starts_with("[workload]") || l.starts_with("[policies"));
    if !scenario {
        return Ok(());
    }
    std::fs::write(file, source).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let args: Vec<std::ffi::OsString> = [
        "reflexio-sim",
        "check",
        file.to_str().unwrap(),
        "--format",
        "json",
    ]
    .iter()
    .map(Into::into)
    .collect();
    let code = reflexio_sim::cli::main_with(args, &mut out, &mut err, false);
    let doc: serde_json::Value = serde_json::from_slice(&out)
        .map_err(|e| TestCaseError::fail(format!("{e}: {:?} for {source:?}", err)))?;
    let parsed = Scenario::from_toml_str(source, "fuzz.toml");
    let errors = doc["errors"].as_u64().unwrap();
    prop_assert_eq!(
        parsed.is_err(),
        errors > 0,
        "parser: {:?}; check: {}; for {:?}",
        parsed.err().map(|e| e.to_string()),
        doc,
        source
    );
    prop_assert_eq!(code == 2, errors > 0);
    for d in doc["diagnostics"].as_array().unwrap() {
        let path = d["path"].as_str().unwrap();
        let Some(index) = path
            .strip_prefix("background[")
            .and_then(|rest| rest.split_once("].policy"))
            .and_then(|(i, _)| i.parse::<usize>().ok())
        else {
            continue;
        };
        let lines = background_lines(source, index);
        let line = d["line"].as_u64().map(|l| l as usize);
        prop_assert!(
            matches!((&lines, line), (Some(r), Some(l)) if r.contains(&l)),
            "{} at line {:?}, outside background table {} ({:?}): {:?}",
            d,
            line,
            index,
            lines,
            source
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn check_agrees_with_the_parser_and_places_background_findings(source in structured()) {
        let dir = std::env::temp_dir().join(format!("reflexio-sim-doctor-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let result = doctor_agrees(&source, &dir.join("fuzz.toml"));
        let _ = std::fs::remove_dir_all(&dir);
        result?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn structured_scenarios_are_accepted_or_refused_with_a_position(source in structured()) {
        check_structured(&source)?;
    }

    #[test]
    fn mutated_scenarios_are_accepted_or_refused_with_a_position(source in mutated()) {
        check(&source)?;
    }
}
