//! Hints for mistakes in scenario and policy files: "did you mean" for a
//! misspelt field, value, class or strategy kind (by edit distance); the
//! fields of the failure model in use rather than of every model; a
//! duration written as a bare number (`start = 60`: write `"60s"`); a
//! near miss of `"off"`; and a policy file given where a scenario was
//! expected.
//!
//! [`improve`] takes an error message as the parser or the validator wrote
//! it and returns it with the hint added; a message it does not recognise
//! comes back unchanged.

/// Top-level keys of a policy file (the `RetryConfig` schema).
const POLICY_KEYS: [&str; 6] = [
    "deadline",
    "max_attempts",
    "max_unknown_attempts",
    "max_retry_after",
    "strategy",
    "classes",
];

/// Top-level keys only a scenario has.
const SCENARIO_KEYS: [&str; 3] = ["workload", "policies", "failures"];

/// Fields that hold a duration or a point in time.
const DURATION_FIELDS: [&str; 19] = [
    "deadline",
    "max_retry_after",
    "base",
    "max",
    "delay",
    "from",
    "until",
    "start",
    "end",
    "retry_after",
    "timeout",
    "think_time",
    "bucket",
    "value",
    "min",
    "mean",
    "std_dev",
    "median",
    "window",
];

/// Fields that may be turned off with `"off"`.
const OFF_FIELDS: [&str; 2] = ["deadline", "max_unknown_attempts"];

/// Words people write for "off".
const OFF_WORDS: [&str; 8] = [
    "none",
    "no",
    "false",
    "disabled",
    "disable",
    "never",
    "unlimited",
    "infinite",
];

/// The candidate closest to `word`, if it is close enough to be a
/// misspelling: at most one edit for short words, at most a third of the
/// word's length for longer ones. Ties go to the first candidate.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    let lower = word.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        if *c == word {
            return None;
        }
        let d = strsim::damerau_levenshtein(&lower, &c.to_lowercase());
        if d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// The first `` `quoted` `` word in `text`.
fn first_quoted(text: &str) -> Option<&str> {
    let start = text.find('`')? + 1;
    let len = text[start..].find('`')?;
    Some(&text[start..start + len])
}

/// Every `` `quoted` `` word in `text`.
fn all_quoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// A comma-separated list after `marker` (up to a `;` or the end).
fn list_after<'a>(text: &'a str, marker: &str) -> Option<Vec<&'a str>> {
    let at = text.find(marker)? + marker.len();
    let rest = &text[at..];
    let rest = rest.split(';').next().unwrap_or(rest);
    Some(
        rest.split(',')
            .map(|s| s.trim().trim_matches('`').trim_end_matches('.'))
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

/// The failure model in use at `path` (`failures.N...`) in `source`.
fn model_at(path: &str, source: &str) -> Option<String> {
    let mut parts = path.split('.');
    if parts.next()? != "failures" {
        return None;
    }
    let index: usize = parts.next()?.parse().ok()?;
    let doc: toml::Table = toml::from_str(source).ok()?;
    let model = doc.get("failures")?.as_array()?.get(index)?.get("model")?;
    model.as_str().map(str::to_owned)
}

/// The distribution named in the table holding the field at `path`
/// (`latency.bogus`, `latency.request.bogus`, `latency.retry.bogus`,
/// `client.oversleep.bogus`),
/// when that table is one of the scenario's distribution tables.
fn distribution_at(path: &str, source: &str) -> Option<String> {
    let (table, _) = path.rsplit_once('.')?;
    if !matches!(
        table,
        "latency"
            | "latency.request"
            | "latency.service"
            | "latency.response"
            | "latency.retry"
            | "latency.retry.request"
            | "latency.retry.service"
            | "latency.retry.response"
            | "client.oversleep"
    ) {
        return None;
    }
    let doc: toml::Table = toml::from_str(source).ok()?;
    let mut value = doc.get(table.split('.').next()?)?;
    for key in table.split('.').skip(1) {
        value = value.get(key)?;
    }
    value.get("distribution")?.as_str().map(str::to_owned)
}

fn last_segment(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// `message` (about the field at dotted `path` of `source`) with a hint
/// added where one helps.
pub fn improve(message: &str, path: &str, source: &str) -> String {
    if let Some(instead) = shape_error(message, path) {
        return instead;
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return unknown_field(message, rest, path, source);
    }
    if message.starts_with("unknown variant ") {
        let word = first_quoted(message).unwrap_or_default();
        let expected = message.split_once("expected").map_or("", |(_, e)| e);
        if let Some(m) = did_you_mean(word, &all_quoted(expected)) {
            return format!("{message}; did you mean `{m}`?");
        }
        return message.to_owned();
    }
    for marker in ["; allowed: ", "; it takes: "] {
        if let (Some(word), Some(list)) = (first_quoted(message), list_after(message, marker)) {
            if let Some(m) = did_you_mean(word, &list) {
                return format!("{message}; did you mean `{m}`?");
            }
        }
    }
    let field = last_segment(path);
    if let Some(hint) = duration_hint(message, field) {
        return format!("{message}; {hint}");
    }
    if let Some(hint) = off_hint(message, field) {
        return format!("{message}; {hint}");
    }
    message.to_owned()
}

/// What to say instead of the parser's words, where they describe the
/// symptom rather than the mistake: a table written as an array of tables
/// (`[[policies.p]]`, `[[workload]]`), one written without the array it belongs to (a
/// `[background.policy]` before any `[[background]]`), or an `arrival`,
/// a `model` or a `distribution` that is not a string or is missing.
fn shape_error(message: &str, path: &str) -> Option<String> {
    let index = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let map = message.starts_with("invalid type: map");
    match path.split('.').collect::<Vec<_>>().as_slice() {
        [table @ ("workload" | "latency" | "client"), i, ..] if index(i) => Some(format!(
            "`{table}` is one table: write `[{table}]`, not `[[{table}]]`"
        )),
        ["background", i, "policy", j] if map && index(i) && index(j) => Some(
            "a background workload's policy is one table: write `[background.policy]`, not `[[background.policy]]`"
                .to_owned(),
        ),
        ["policies", name, j] if map && index(j) => Some(format!(
            "a policy is one table: write `[policies.{name}]`, not `[[policies.{name}]]`"
        )),
        ["background", ..] if message.ends_with("expected a sequence") => Some(
            "`background` is an array of tables: each background workload begins with a `[[background]]` line (its name, calls and arrival), and its `[background.policy]` table follows it"
                .to_owned(),
        ),
        [.., field @ ("arrival" | "model" | "distribution")]
            if message == "wanted string or table" =>
        {
            Some(format!("expected one of {} (a string)", one_of(field)))
        }
        _ if message == "missing field `model`" => Some(format!(
            "{message}: the failure model, one of {}",
            one_of("model")
        )),
        _ if message == "missing field `distribution`" => Some(format!(
            "{message}: one of {}",
            one_of("distribution")
        )),
        _ => None,
    }
}

/// The values `field` (`arrival`, `model` or `distribution`) takes, quoted.
fn one_of(field: &str) -> String {
    let allowed: &[&str] = match field {
        "arrival" => &crate::scenario::ARRIVALS,
        "model" => &crate::scenario::MODELS,
        _ => &crate::scenario::DISTRIBUTIONS,
    };
    allowed
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_field(message: &str, rest: &str, path: &str, source: &str) -> String {
    let word = first_quoted(rest).unwrap_or_default();
    let expected = rest.split_once("expected").map_or("", |(_, e)| e);
    let mut candidates = all_quoted(expected);
    let mut allowed_text = None;
    if let Some(model) = model_at(path, source) {
        if let Some(fields) = crate::scenario::model_fields(&model) {
            candidates = std::iter::once("model")
                .chain(fields.iter().copied())
                .collect();
            allowed_text = Some(format!(
                "the `{model}` model takes: {}",
                candidates.join(", ")
            ));
        }
    }
    if let Some(dist) = distribution_at(path, source) {
        if let Some(params) = crate::scenario::distribution_fields(&dist) {
            candidates = std::iter::once("distribution")
                .chain(params.iter().copied())
                .collect();
            allowed_text = Some(format!(
                "the `{dist}` distribution takes: {}",
                candidates.join(", ")
            ));
        }
    }
    let allowed = allowed_text.unwrap_or_else(|| format!("allowed: {}", candidates.join(", ")));
    if candidates.is_empty() {
        return message.to_owned();
    }
    match did_you_mean(word, &candidates) {
        Some(m) => format!("unknown field `{word}`; did you mean `{m}`? ({allowed})"),
        None => format!("unknown field `{word}`; {allowed}"),
    }
}

/// A bare number where a duration string belongs: `60` -> `"60s"`.
fn duration_hint(message: &str, field: &str) -> Option<String> {
    if !DURATION_FIELDS.contains(&field) {
        return None;
    }
    let rest = message.strip_prefix("invalid type: ")?;
    let number = if rest.starts_with("integer ") || rest.starts_with("floating point ") {
        first_quoted(rest)?
    } else {
        return None;
    };
    Some(format!(
        "durations are strings with a unit: write `{field} = \"{number}s\"` (or \"{number}ms\", \"{number}m\")"
    ))
}

/// A near miss of `"off"` on a field that can be turned off.
fn off_hint(message: &str, field: &str) -> Option<String> {
    if !OFF_FIELDS.contains(&field) {
        return None;
    }
    // `string "of"` (serde) or `` `of` has ... `` (duration parser).
    let value = match message.split_once("string \"") {
        Some((_, rest)) => rest.split('"').next()?,
        None => first_quoted(message)?,
    };
    let lower = value.trim().to_lowercase();
    let near =
        strsim::damerau_levenshtein(&lower, "off") <= 1 || OFF_WORDS.contains(&lower.as_str());
    near.then(|| format!("did you mean \"off\"? (`{field} = \"off\"` turns it off)"))
}

/// If `source` is a policy file (the `RetryConfig` schema) rather than a
/// scenario, says so and what to run instead; with the top-level key that
/// marks it as one (the first in the schema's order), for the error's
/// field and position.
pub fn policy_file_hint(source: &str, file: &str) -> Option<(&'static str, String)> {
    let doc: toml::Table = toml::from_str(source).ok()?;
    if SCENARIO_KEYS.iter().any(|k| doc.contains_key(*k)) {
        return None;
    }
    let key = POLICY_KEYS.into_iter().find(|k| doc.contains_key(*k))?;
    Some((
        key,
        format!(
            "this is a policy file (the RetryConfig schema), not a scenario. Check it with `reflexio-sim check {file}`; to simulate it, copy it under a `[policies.NAME]` table of a scenario (see sim/scenarios/)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scenario_arrivals_are_the_ones_it_reads() {
        for arrival in crate::scenario::ARRIVALS {
            let source = format!(
                "[workload]\ncalls = 1\narrival = \"{arrival}\"\nrate = 1.0\nclients = 1\n[policies.p]\n"
            );
            let outcome = crate::Scenario::from_toml_str(&source, "a.toml");
            // Each is a known arrival: refused, if at all, for its fields.
            if let Err(e) = outcome {
                assert!(!e.message.contains("unknown variant"), "{arrival}: {e}");
            }
        }
        let e = crate::Scenario::from_toml_str(
            "[workload]\ncalls = 1\narrival = \"nope\"\n[policies.p]\n",
            "a.toml",
        )
        .unwrap_err();
        for arrival in crate::scenario::ARRIVALS {
            assert!(e.message.contains(arrival), "{arrival} missing from: {e}");
        }
    }

    #[test]
    fn the_models_and_distributions_listed_are_the_ones_it_reads() {
        for (source, names) in [
            (
                "[workload]\ncalls = 1\n[[failures]]\nmodel = \"nope\"\n[policies.p]\n",
                &crate::scenario::MODELS[..],
            ),
            (
                "[workload]\ncalls = 1\n[latency]\ndistribution = \"nope\"\n[policies.p]\n",
                &crate::scenario::DISTRIBUTIONS[..],
            ),
        ] {
            let e = crate::Scenario::from_toml_str(source, "a.toml").unwrap_err();
            let expected: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            assert!(
                e.message.ends_with(&expected.join(", ")),
                "{names:?} do not end: {e}"
            );
        }
    }

    #[test]
    fn shape_mistakes_say_what_to_write() {
        let read = |source: &str| {
            crate::Scenario::from_toml_str(source, "s.toml")
                .unwrap_err()
                .to_string()
        };
        let e = read("[workload]\ncalls = 1\narrival = 1\n[policies.p]\n");
        assert!(e.starts_with("s.toml:3:11: `workload.arrival`: expected one of \"all_at_once\", \"fixed_rate\", \"poisson\", \"closed_loop\""), "{e}");
        let e = read("[workload]\ncalls = 1\n[[policies.p]]\nmax_attempts = 2\n");
        assert!(
            e.contains("write `[policies.p]`, not `[[policies.p]]`"),
            "{e}"
        );
        let e = read("[workload]\ncalls = 1\n[[background]]\nname = \"b\"\ncalls = 1\n[[background.policy]]\nmax_attempts = 2\n[policies.p]\n");
        assert!(
            e.contains("write `[background.policy]`, not `[[background.policy]]`"),
            "{e}"
        );
        let e =
            read("[workload]\ncalls = 1\n[background.policy]\nmax_attempts = 2\n[policies.p]\n");
        assert!(e.contains("begins with a `[[background]]` line"), "{e}");
        assert!(e.starts_with("s.toml:3:"), "{e}");
    }

    #[test]
    fn suggests_the_closest_name() {
        let fields = ["probability", "classes", "retry_after", "from", "until"];
        assert_eq!(did_you_mean("probabilty", &fields), Some("probability"));
        assert_eq!(did_you_mean("clases", &fields), Some("classes"));
        assert_eq!(did_you_mean("retry-after", &fields), Some("retry_after"));
        assert_eq!(did_you_mean("colour", &fields), None);
        assert_eq!(did_you_mean("from", &fields), None);
    }

    #[test]
    fn unknown_field_lists_only_the_model_in_use() {
        let source = "[workload]\ncalls = 1\n[[failures]]\nmodel = \"random\"\nprobabilty = 0.3\n";
        let message = "unknown field `probabilty`, expected one of `model`, `from`, `until`, `probability`, `classes`, `retry_after`, `start`, `end`, `capacity`";
        let improved = improve(message, "failures.0.probabilty", source);
        assert_eq!(
            improved,
            "unknown field `probabilty`; did you mean `probability`? (the `random` model takes: model, probability, classes, retry_after, from, until)"
        );
    }

    #[test]
    fn unknown_values_classes_and_strategies() {
        let m = improve(
            "unknown variant `poison`, expected one of `all_at_once`, `fixed_rate`, `poisson`, `closed_loop`",
            "workload.arrival",
            "",
        );
        assert!(m.ends_with("did you mean `poisson`?"), "{m}");
        let m = improve(
            "unknown strategy `exponentail`; allowed: decorrelated_jitter, equal_jitter, exponential, constant",
            "policies.a.strategy.kind",
            "",
        );
        assert!(m.ends_with("did you mean `exponential`?"), "{m}");
        let m = improve(
            "unknown error class `transiet`; allowed: auth, permission, transient, unknown",
            "policies.a.classes.transiet",
            "",
        );
        assert!(m.ends_with("did you mean `transient`?"), "{m}");
    }

    #[test]
    fn bare_numbers_for_durations_get_a_unit() {
        let m = improve(
            "invalid type: integer `60`, expected a string",
            "failures.0.start",
            "",
        );
        assert!(m.contains("write `start = \"60s\"`"), "{m}");
        // Not a duration field: no hint.
        let m = improve("invalid type: integer `60`, expected a string", "name", "");
        assert_eq!(m, "invalid type: integer `60`, expected a string");
    }

    #[test]
    fn near_misses_of_off() {
        let m = improve(
            "`of` has an unknown unit `of`; expected a number and a unit",
            "policies.a.deadline",
            "",
        );
        assert!(
            m.ends_with("did you mean \"off\"? (`deadline = \"off\"` turns it off)"),
            "{m}"
        );
        let m = improve(
            "invalid value: string \"none\", expected a whole number from 1 to 4294967295, or \"off\"",
            "policies.a.max_unknown_attempts",
            "",
        );
        assert!(m.contains("did you mean \"off\"?"), "{m}");
        let m = improve("`5x` has an unknown unit `x`", "policies.a.deadline", "");
        assert!(!m.contains("off"), "{m}");
    }

    #[test]
    fn policy_files_are_recognised() {
        let (key, hint) =
            policy_file_hint("max_attempts = 4\ndeadline = \"10s\"\n", "p.toml").unwrap();
        assert_eq!(key, "deadline");
        assert!(hint.contains("reflexio-sim check p.toml"), "{hint}");
        assert!(policy_file_hint("[workload]\ncalls = 3\n", "s.toml").is_none());
        assert!(policy_file_hint("name = \"x\"\n", "s.toml").is_none());
    }
}
