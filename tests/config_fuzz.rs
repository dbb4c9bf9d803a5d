//! The configuration parser on a few thousand structured and mutated
//! documents: it never panics, and every rejection is positioned (a byte
//! span, a line and column) and names the field it concerns. The
//! cargo-fuzz target `config_parser` (see fuzz/README.md) runs the same
//! checks for as long as one likes.
#![cfg(feature = "config")]

use proptest::prelude::*;
use reflexio::config::{line_col, RetryConfig};

const KEYS: [&str; 8] = [
    "deadline",
    "max_attempts",
    "max_unknown_attempts",
    "max_retry_after",
    "seed",
    "kind",
    "base",
    "max",
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "\"250ms\"",
            "\"1.5s\"",
            "\"0s\"",
            "\"off\"",
            "\"-1s\"",
            "\"1x\"",
            "\"18446744073709551616ns\"",
            "\"340282366920938463463374607431768211.9us\"",
            "0",
            "1",
            "6",
            "-3",
            "4294967296",
            "true",
            "false",
            "1.5",
            "\"decorrelated_jitter\"",
            "\"equal_jitter\"",
            "\"constant\"",
            "\"nope\"",
            "[]",
            "{}",
            "{ kind = \"constant\" }",
            "\"\"",
        ])
        .prop_map(str::to_owned),
        any::<u64>().prop_map(|n| n.to_string()),
        "\"[0-9]{1,6}(\\.[0-9]{1,4})?(ns|us|ms|s|m|h)\"",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned),
        1 => Just("strategy".to_owned()),
        1 => Just("\"a.b\"".to_owned()),
        1 => "[a-z_]{1,8}",
    ]
}

fn class() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(vec![
            "auth", "permission", "permanent", "concurrency", "rate_limit", "server_error",
            "transient", "unknown",
        ])
        .prop_map(str::to_owned),
        1 => Just("\"a.b\"".to_owned()),
        1 => Just("\"rate_limit\"".to_owned()),
        1 => "[a-z]{1,6}",
    ]
}

/// A document of top-level keys, a `[strategy]` table and class tables,
/// in any order, duplicates allowed.
fn structured() -> impl Strategy<Value = String> {
    let line = || (key(), value()).prop_map(|(k, v)| format!("{k} = {v}\n"));
    let table = prop_oneof![
        Just("[strategy]\n".to_owned()),
        class().prop_map(|c| format!("[classes.{c}]\n")),
        class().prop_map(|c| format!("[classes.{c}.strategy]\n")),
    ];
    let section = (table, prop::collection::vec(line(), 0..4))
        .prop_map(|(header, lines)| format!("{header}{}", lines.concat()));
    (
        prop::collection::vec(line(), 0..5),
        prop::collection::vec(section, 0..4),
    )
        .prop_map(|(top, sections)| format!("{}{}", top.concat(), sections.concat()))
}

/// Edits that break documents the way people and attackers do.
#[derive(Debug, Clone)]
enum Edit {
    Insert(prop::sample::Index, &'static str),
    Delete(prop::sample::Index, usize),
    Byte(prop::sample::Index, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    let token = prop::sample::select(vec![
        "[", "]", "[[", "]]", "{", "}", "=", "\"", "'", ".", ",", "\n", "#", "\\", "\"\"\"",
        "[a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a]\n",
        "x = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
    ]);
    prop_oneof![
        (any::<prop::sample::Index>(), token).prop_map(|(i, t)| Edit::Insert(i, t)),
        (any::<prop::sample::Index>(), 1usize..8).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Byte(i, b)),
    ]
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (structured(), prop::collection::vec(edit(), 1..4)).prop_map(|(doc, edits)| {
        let mut bytes = doc.into_bytes();
        for e in edits {
            match e {
                Edit::Insert(at, token) => {
                    let at = at.index(bytes.len() + 1);
                    bytes.splice(at..at, token.bytes());
                }
                Edit::Delete(at, n) if !bytes.is_empty() => {
                    let at = at.index(bytes.len());
                    let end = (at + n).min(bytes.len());
                    bytes.drain(at..end);
                }
                Edit::Delete(..) => {}
                Edit::Byte(at, b) if !bytes.is_empty() => {
                    let at = at.index(bytes.len());
                    bytes[at] = b;
                }
                Edit::Byte(..) => {}
            }
        }
        bytes
    })
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Err(e) = RetryConfig::from_toml_bytes(bytes) else {
        return Ok(());
    };
    let shown = String::from_utf8_lossy(bytes);
    prop_assert!(!e.message.is_empty());
    let span = e.span.clone();
    prop_assert!(span.is_some(), "no span: {:?} for {:?}", e, shown);
    prop_assert!(e.position.is_some(), "no position: {:?} for {:?}", e, shown);
    if let (Ok(text), Some(span)) = (std::str::from_utf8(bytes), span) {
        prop_assert!(span.start <= text.len(), "{:?}", e);
        prop_assert_eq!(e.position, Some(line_col(text, span.start)));
    }
    // A document that is valid TOML is refused for one of its fields,
    // which the error names. (A TOML syntax error may lie outside every
    // key, in a broken header say, and then names the table it is in,
    // which is empty at the top of the document.)
    if let Ok(text) = std::str::from_utf8(bytes) {
        if text.parse::<toml::Table>().is_ok() {
            prop_assert!(!e.path.is_empty(), "no path: {:?} for {:?}", e, shown);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn structured_configurations_are_accepted_or_refused_with_a_position(doc in structured()) {
        check(doc.as_bytes())?;
    }

    #[test]
    fn mutated_configurations_are_accepted_or_refused_with_a_position(bytes in mutated()) {
        check(&bytes)?;
    }
}

#[test]
fn the_issues_reproductions_are_positioned() {
    let deep = format!("[{}]\nx = 1\n", vec!["a"; 200].join("."));
    for source in [
        deep.as_bytes(),
        b"[classes.\"a.b\"]\nmax_attempts = 2\n",
        b"max_attempts = 3\nmax_attempts = 4\n",
        b"deadline = \"30\xffs\"\n",
        b"deadline = \"340282366920938463463374607431768211.9us\"\n",
    ] {
        check(source).unwrap();
        let e = RetryConfig::from_toml_bytes(source).unwrap_err();
        assert!(!e.path.is_empty(), "{e}");
    }
}
