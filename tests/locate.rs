//! The one TOML locator of the project (`reflexio::config`), and the
//! positions of the parser's own errors: recursion limit, invalid UTF-8,
//! keys holding a dot, duplicate keys.
#![cfg(feature = "config")]

use reflexio::config::{
    display_path, join_key, line_col, locate, path_at, path_segment, split_path, RetryConfig,
};

const DOC: &str = "seed = 1\n[workload]\ncalls = 5\n[[failures]]\nmodel = \"random\"\n[[failures]]\nmodel = \"outage\"\nclass = \"x\"\n";

#[test]
fn locates_inside_arrays_of_tables() {
    let span = locate(DOC, "failures.1.class").unwrap();
    assert_eq!(&DOC[span.clone()], "\"x\"");
    assert_eq!(line_col(DOC, span.start), (8, 9));
    assert_eq!(
        path_at(DOC, span.start).as_deref(),
        Some("failures.1.class")
    );
    let calls = locate(DOC, "workload.calls").unwrap();
    assert_eq!(&DOC[calls], "5");
}

#[test]
fn displays_indices() {
    assert_eq!(display_path("failures.2.rate"), "failures[2].rate");
    assert_eq!(display_path("policies.a.deadline"), "policies.a.deadline");
    assert_eq!(
        display_path("policies.\"a.b\".deadline"),
        "policies.\"a.b\".deadline"
    );
}

#[test]
fn keys_holding_dots_or_quotes_stay_one_segment() {
    for key in [
        "a.b",
        "",
        "a b",
        "é",
        "q\"uote",
        "back\\slash",
        "tab\t",
        "rate_limit",
        "x-1",
    ] {
        let path = join_key("classes", key);
        assert_eq!(split_path(&path), ["classes", key], "{path}");
    }
    assert_eq!(path_segment("a.b"), "\"a.b\"");
    assert_eq!(split_path("a.'b.c'.d"), ["a", "b.c", "d"]);
    let source = "[classes.\"a.b\"]\nmax_attempts = 2\n";
    assert_eq!(
        &source[locate(source, "classes.\"a.b\".max_attempts").unwrap()],
        "2"
    );
    assert_eq!(
        path_at(source, source.find('2').unwrap()).as_deref(),
        Some("classes.\"a.b\".max_attempts")
    );
}

#[test]
fn a_quoted_class_name_with_a_dot_is_positioned() {
    let source = "seed = 1\n[classes.\"a.b\"]\nmax_attempts = 2\n";
    let err = RetryConfig::from_toml_str(source).unwrap_err();
    assert_eq!(err.path, "classes.\"a.b\"");
    assert_eq!(err.position, Some((2, 1)));
    assert!(err.message.contains("unknown error class `a.b`"), "{err}");
    assert!(
        err.to_string()
            .starts_with("line 2, column 1: `classes.\"a.b\"`"),
        "{err}"
    );
}

#[test]
fn duplicate_keys_are_named() {
    let cases = [
        (
            "max_attempts = 3\nmax_attempts = 4\n",
            "max_attempts",
            (2, 1),
        ),
        (
            "[strategy]\nkind = \"constant\"\nkind = \"constant\"\n",
            "strategy.kind",
            (3, 1),
        ),
        (
            "[strategy]\nkind = \"constant\"\n[strategy]\n",
            "strategy",
            (3, 2),
        ),
        (
            "[classes.transient]\nmax_attempts = 2\n[classes.transient]\n",
            "classes.transient",
            (3, 10),
        ),
        (
            "[classes]\ntransient.max_attempts = 2\ntransient.max_attempts = 3\n",
            "classes.transient.max_attempts",
            (3, 11),
        ),
    ];
    for (source, path, position) in cases {
        let err = RetryConfig::from_toml_str(source).unwrap_err();
        let key = split_path(path).pop().unwrap();
        assert_eq!(err.path, path, "{source}");
        assert_eq!(err.position, Some(position), "{source}");
        assert!(
            err.message.contains(&format!("duplicate key `{key}`")),
            "{err}"
        );
    }
}

#[test]
fn the_recursion_limit_points_at_the_deepest_key() {
    let headers = format!("seed = 1\n[{}]\nx = 1\n", vec!["a"; 200].join("."));
    let err = RetryConfig::from_toml_str(&headers).unwrap_err();
    assert!(err.message.contains("recursion"), "{err}");
    assert_eq!(err.position, Some((3, 1)));
    assert!(err.path.starts_with("a.a.a."), "{}", err.path);
    let dotted = format!("{} = 1\n", vec!["b"; 300].join("."));
    let err = RetryConfig::from_toml_str(&dotted).unwrap_err();
    assert_eq!(err.position, Some((1, 1)));
    assert!(err.path.starts_with("b.b.b."), "{}", err.path);
    let arrays = format!("deadline = {}1{}\n", "[".repeat(300), "]".repeat(300));
    let err = RetryConfig::from_toml_str(&arrays).unwrap_err();
    assert!(err.path.starts_with("deadline.0.0"), "{}", err.path);
    assert_eq!(err.position.map(|p| p.0), Some(1));
}

#[test]
fn a_very_deep_document_neither_overflows_the_stack_nor_hangs() {
    let headers = format!("[{}]\n", vec!["a"; 100_000].join("."));
    let err = RetryConfig::from_toml_str(&headers).unwrap_err();
    assert!(err.span.is_some());
    let arrays = format!("x = {}", "[".repeat(100_000));
    assert!(RetryConfig::from_toml_str(&arrays)
        .unwrap_err()
        .span
        .is_some());
}

#[test]
fn invalid_utf8_gives_its_byte_offset() {
    let err = RetryConfig::from_toml_bytes(b"seed = 1\ndeadline = \"30\xffs\"\n").unwrap_err();
    assert_eq!(err.span, Some(23..24));
    assert_eq!(err.position, Some((2, 15)));
    assert_eq!(err.path, "deadline");
    assert!(err.message.contains("at byte 23"), "{err}");
    let err = RetryConfig::from_toml_bytes(b"[strategy]\n\xc3").unwrap_err();
    assert_eq!(err.path, "strategy");
    assert_eq!(err.position, Some((2, 1)));
    assert_eq!(
        RetryConfig::from_toml_bytes(b"max_attempts = 3\n").unwrap(),
        RetryConfig::from_toml_str("max_attempts = 3\n").unwrap()
    );
}

#[test]
fn syntax_errors_belong_to_their_table() {
    let err = RetryConfig::from_toml_str("[strategy]\n@@\n").unwrap_err();
    assert_eq!(err.path, "strategy");
    assert_eq!(err.position.map(|p| p.0), Some(2));
}

#[test]
fn line_col_is_safe_inside_a_character() {
    let source = "é = 1\n";
    assert_eq!(line_col(source, 1), (1, 1));
    assert_eq!(line_col(source, 2), (1, 2));
    assert_eq!(line_col(source, 1000), (2, 1));
}
