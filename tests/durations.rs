//! The duration parser against a straightforward reference: schoolbook
//! decimal arithmetic on digit strings, which cannot overflow, so every
//! value past `u64::MAX` nanoseconds is known exactly to be too large.
#![cfg(feature = "config")]

use std::time::Duration;

use proptest::prelude::*;
use reflexio::config::{parse_duration, parse_time, RetryConfig};

/// What the reference makes of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    Nanos(u64),
    /// Not of the form `<number><unit>...`.
    Syntax,
    /// A part is not a whole number of nanoseconds.
    Finer,
    /// The running total passes `u64::MAX` nanoseconds.
    TooLarge,
}

/// A natural number as decimal digits, most significant first, no leading
/// zeros (zero is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal(Vec<u8>);

impl Decimal {
    fn from_digits(text: &str) -> Decimal {
        let digits: Vec<u8> = text.bytes().map(|b| b - b'0').collect();
        let first = digits.iter().position(|d| *d != 0).unwrap_or(digits.len());
        Decimal(digits[first..].to_vec())
    }

    fn times(&self, factor: u64) -> Decimal {
        let mut out = Vec::new();
        let mut carry: u128 = 0;
        for d in self.0.iter().rev() {
            let v = u128::from(*d) * u128::from(factor) + carry;
            out.push((v % 10) as u8);
            carry = v / 10;
        }
        while carry > 0 {
            out.push((carry % 10) as u8);
            carry /= 10;
        }
        out.reverse();
        Decimal::from_digits_vec(out)
    }

    fn plus(&self, other: &Decimal) -> Decimal {
        let (a, b) = (&self.0, &other.0);
        let mut out = Vec::new();
        let mut carry = 0u8;
        for i in 0..a.len().max(b.len()) {
            let x = if i < a.len() { a[a.len() - 1 - i] } else { 0 };
            let y = if i < b.len() { b[b.len() - 1 - i] } else { 0 };
            let v = x + y + carry;
            out.push(v % 10);
            carry = v / 10;
        }
        if carry > 0 {
            out.push(carry);
        }
        out.reverse();
        Decimal::from_digits_vec(out)
    }

    /// `self / 10^k` if that is a whole number.
    fn divided_by_power_of_ten(&self, k: usize) -> Option<Decimal> {
        if k == 0 {
            return Some(self.clone());
        }
        if self.0.is_empty() {
            return Some(Decimal(Vec::new()));
        }
        if self.0.len() < k || self.0[self.0.len() - k..].iter().any(|d| *d != 0) {
            return None;
        }
        Some(Decimal::from_digits_vec(
            self.0[..self.0.len() - k].to_vec(),
        ))
    }

    fn from_digits_vec(digits: Vec<u8>) -> Decimal {
        let first = digits.iter().position(|d| *d != 0).unwrap_or(digits.len());
        Decimal(digits[first..].to_vec())
    }

    fn to_u64(&self) -> Option<u64> {
        if self.0.len() > 20 {
            return None;
        }
        let mut v: u64 = 0;
        for d in &self.0 {
            v = v.checked_mul(10)?.checked_add(u64::from(*d))?;
        }
        Some(v)
    }
}

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// The documented grammar, read character by character: parts of an
/// optional run of digits, an optional `.` and digits (at least one digit
/// in all), then a unit, with spaces allowed around the unit.
fn reference(text: &str) -> Expected {
    let chars: Vec<char> = text.trim().chars().collect();
    if chars.is_empty() {
        return Expected::Syntax;
    }
    // First the syntax of the whole text, then the values from left to right.
    let mut parts: Vec<(String, String, u64)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let mut whole = String::new();
        while i < chars.len() && chars[i].is_ascii_digit() {
            whole.push(chars[i]);
            i += 1;
        }
        let mut fraction = String::new();
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                fraction.push(chars[i]);
                i += 1;
            }
        }
        if whole.is_empty() && fraction.is_empty() {
            return Expected::Syntax;
        }
        let mut unit = String::new();
        while i < chars.len() && !(chars[i].is_ascii_digit() || chars[i] == '.') {
            unit.push(chars[i]);
            i += 1;
        }
        let Some(scale) = unit_nanos(unit.trim()) else {
            return Expected::Syntax;
        };
        parts.push((whole, fraction, scale));
    }
    let max = Decimal::from_digits(&u64::MAX.to_string());
    let mut total = Decimal(Vec::new());
    for (whole, fraction, scale) in parts {
        let all = Decimal::from_digits(&format!("{whole}{fraction}"));
        let Some(part) = all.times(scale).divided_by_power_of_ten(fraction.len()) else {
            return Expected::Finer;
        };
        total = total.plus(&part);
        if total.to_u64().is_none() || (total.0.len() == max.0.len() && total.0 > max.0) {
            return Expected::TooLarge;
        }
    }
    Expected::Nanos(total.to_u64().expect("checked above"))
}

/// The parser's answer in the reference's terms.
fn actual(text: &str) -> Expected {
    match parse_time(text) {
        Ok(d) => Expected::Nanos(u64::try_from(d.as_nanos()).expect("at most u64::MAX ns")),
        Err(e) if e.contains("too large") => Expected::TooLarge,
        Err(e) if e.contains("finer than one nanosecond") => Expected::Finer,
        Err(_) => Expected::Syntax,
    }
}

fn check(text: &str) -> Result<(), TestCaseError> {
    let want = reference(text);
    let got = actual(text);
    match want {
        // A text that breaks the grammar must be refused; which problem
        // is named first may differ (the parser reads part by part).
        Expected::Syntax => prop_assert!(parse_time(text).is_err(), "text {:?}: {:?}", text, got),
        _ => prop_assert_eq!(&got, &want, "text {:?}", text),
    }
    if let Expected::Nanos(n) = want {
        prop_assert_eq!(parse_duration(text).is_ok(), n > 0, "text {:?}", text);
    } else {
        prop_assert!(parse_duration(text).is_err(), "text {:?}", text);
    }
    Ok(())
}

fn digits(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(0u8..10, 0..=max)
            .prop_map(|d| d.into_iter().map(|d| char::from(b'0' + d)).collect()),
        // Near the edges: u64::MAX and u128::MAX, give or take.
        Just("18446744073709551615".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("340282366920938463463374607431768211".to_owned()),
        Just("340282366920938463463374607431768211455".to_owned()),
        Just("5124095".to_owned()),
        Just("5124096".to_owned()),
        Just("0000000000000000000000000000000000000000001".to_owned()),
    ]
}

fn unit() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec!["ns", "us", "µs", "ms", "s", "m", "h"]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["", " s", "s ", "x", "sec", "M", "-", " "]).prop_map(str::to_owned),
    ]
}

/// One `<number><unit>` part, mostly well formed.
fn part() -> impl Strategy<Value = String> {
    (digits(24), prop::option::weighted(0.5, digits(30)), unit()).prop_map(
        |(whole, fraction, unit)| match fraction {
            Some(f) => format!("{whole}.{f}{unit}"),
            None => format!("{whole}{unit}"),
        },
    )
}

fn structured() -> impl Strategy<Value = String> {
    proptest::collection::vec(part(), 1..5).prop_map(|parts| parts.concat())
}

fn mutated() -> impl Strategy<Value = String> {
    (
        structured(),
        any::<prop::sample::Index>(),
        "[0-9.a-zµ +-]{0,3}",
    )
        .prop_map(|(text, at, insert)| {
            let cuts: Vec<usize> = text
                .char_indices()
                .map(|(i, _)| i)
                .chain([text.len()])
                .collect();
            let at = cuts[at.index(cuts.len())];
            format!("{}{insert}{}", &text[..at], &text[at..])
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn structured_durations_agree_with_the_reference(text in structured()) {
        check(&text)?;
    }

    #[test]
    fn mutated_durations_agree_with_the_reference(text in mutated()) {
        check(&text)?;
    }

    #[test]
    fn arbitrary_text_agrees_with_the_reference(text in "[0-9.nsuµmh x-]{0,24}") {
        check(&text)?;
    }
}

#[test]
fn the_reference_agrees_on_the_edges() {
    let cases = [
        ("18446744073709551615ns", Expected::Nanos(u64::MAX)),
        ("18446744073709551616ns", Expected::TooLarge),
        ("18446744073709551614ns1ns", Expected::Nanos(u64::MAX)),
        ("18446744073709551615ns1ns", Expected::TooLarge),
        (
            "340282366920938463463374607431768211.9us",
            Expected::TooLarge,
        ),
        (
            "340282366920938463463374607431768211455ns",
            Expected::TooLarge,
        ),
        (
            "999999999999999999999999999999999999999999999h",
            Expected::TooLarge,
        ),
        ("0.000000000005h", Expected::Nanos(18)),
        ("0.5ns", Expected::Finer),
        ("1.2.3s", Expected::Syntax),
        (
            "00000000000000000000000000000000000000000001s",
            Expected::Nanos(1_000_000_000),
        ),
        ("5124095h", Expected::Nanos(5_124_095 * 3_600_000_000_000)),
        ("5124096h", Expected::TooLarge),
    ];
    for (text, want) in cases {
        assert_eq!(reference(text), want, "reference on {text}");
        assert_eq!(actual(text), want, "parser on {text}");
    }
}

#[test]
fn an_overflowing_duration_names_its_field() {
    // Once a panic in checked builds, and a silent wrap to 543 ns in release.
    let source = "deadline = \"340282366920938463463374607431768211.9us\"\n";
    let err = RetryConfig::from_toml_str(source).unwrap_err();
    assert_eq!(err.path, "deadline");
    assert!(err.message.contains("too large"), "{}", err.message);
    let nested = "[classes.rate_limit.strategy]\nkind = \"exponential\"\nmax = \"18446744073709551615ns1ns\"\n";
    let err = RetryConfig::from_toml_str(nested).unwrap_err();
    assert_eq!(err.path, "classes.rate_limit.strategy.max");
    assert_eq!(
        parse_time("18446744073709551615ns"),
        Ok(Duration::from_nanos(u64::MAX))
    );
}
