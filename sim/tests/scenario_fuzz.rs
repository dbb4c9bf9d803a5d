//! The scenario parser on a few thousand structured and mutated scenario
//! files (parsing and validation only, nothing is simulated): it never
//! panics, and every rejection names the file, its line and column, and
//! the field when there is one. The cargo-fuzz target `scenario_parser`
//! (see fuzz/README.md) runs the same checks for as long as one likes.

use proptest::prelude::*;
use reflexio_sim::Scenario;

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

fn background() -> impl Strategy<Value = String> {
    (
        pick(&["\"batch\"", "\"\"", "\"batch\"", "\"\\u00e9\\u30d0\"", "1"]),
        number(),
        pick(&[
            "\"poisson\"",
            "\"fixed_rate\"",
            "\"all_at_once\"",
            "\"closed_loop\"",
            "\"nope\"",
        ]),
        number(),
        prop::option::of((number(), duration())),
    )
        .prop_map(|(name, calls, arrival, rate, policy)| {
            let policy = policy
                .map(|(attempts, deadline)| {
                    format!(
                        "[background.policy]\nmax_attempts = {attempts}\ndeadline = {deadline}\n"
                    )
                })
                .unwrap_or_default();
            format!(
                "[[background]]\nname = {name}\ncalls = {calls}\narrival = {arrival}\nrate = {rate}\n{policy}"
            )
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
    (
        pick(&["p", "a.b", "\"a.b\"", "fast", "x y", "\"\""]),
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

fn structured() -> impl Strategy<Value = String> {
    (
        prop::option::of(number().prop_map(|s| format!("seed = {s}\n"))),
        prop::option::of(duration().prop_map(|b| format!("bucket = {b}\n"))),
        prop::option::of(workload()),
        prop::collection::vec(background(), 0..3),
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
        })
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
        "[workload]\n", "[[failures]]\n", "[policies.p]\n", "[[background]]\n", "[background.policy]\n",
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

fn check(source: &str) -> Result<(), TestCaseError> {
    let Err(e) = Scenario::from_toml_str(source, "fuzz.toml") else {
        return Ok(());
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
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn structured_scenarios_are_accepted_or_refused_with_a_position(source in structured()) {
        check(&source)?;
    }

    #[test]
    fn mutated_scenarios_are_accepted_or_refused_with_a_position(source in mutated()) {
        check(&source)?;
    }
}
