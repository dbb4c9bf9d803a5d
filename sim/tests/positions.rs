//! The TOML parser's own errors in scenario files are positioned like
//! every other: the recursion limit, invalid UTF-8, keys holding a dot and
//! duplicate keys each give file:line:col and the field.

use reflexio_sim::Scenario;

fn error(source: &str) -> reflexio_sim::scenario::ScenarioError {
    match Scenario::from_toml_str(source, "bad.toml") {
        Ok(_) => panic!("accepted:\n{source}"),
        Err(e) => e,
    }
}

#[test]
fn a_table_nested_past_the_recursion_limit_points_at_its_deepest_key() {
    let source = format!("[{}]\nx = 1\n", vec!["a"; 200].join("."));
    let e = error(&source);
    assert_eq!(e.position, Some((2, 1)), "{e}");
    assert!(e.path.starts_with("a.a.a."), "{e}");
    assert!(e.message.contains("recursion"), "{e}");
}

#[test]
fn a_duplicate_key_is_named_with_its_table() {
    let e = error("[workload]\ncalls = 1\ncalls = 2\n[policies.p]\n");
    assert_eq!(e.position, Some((3, 1)), "{e}");
    assert_eq!(e.path, "workload.calls");
    assert!(e.message.contains("duplicate key `calls`"), "{e}");
    let e = error("[workload]\ncalls = 1\n[policies.p]\n[policies.p]\n");
    assert_eq!(e.position, Some((4, 11)), "{e}");
    assert_eq!(e.path, "policies.p");
    assert!(e
        .to_string()
        .starts_with("bad.toml:4:11: `policies.p`: duplicate key `p`"));
}

#[test]
fn a_policy_name_holding_a_dot_is_one_quoted_segment() {
    let e = error("[workload]\ncalls = 1\n[policies.\"a.b\"]\nmax_attempts = 0\n");
    assert_eq!(e.path, "policies.\"a.b\".max_attempts");
    assert_eq!(e.position, Some((4, 16)), "{e}");
}

#[test]
fn invalid_utf8_gives_its_byte_line_and_column() {
    let dir = std::env::temp_dir().join(format!("reflexio-sim-utf8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("latin1.toml");
    std::fs::write(
        &file,
        b"[workload]\ncalls = 1\noperation = \"caf\xe9\"\n[policies.p]\n",
    )
    .unwrap();
    let e = Scenario::from_file(&file).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(e.position, Some((3, 17)), "{e}");
    assert_eq!(e.path, "workload.operation");
    assert!(e.message.contains("at byte 37"), "{e}");
}
