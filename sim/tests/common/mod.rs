//! What the tests of bad scenario files share.

use reflexio_sim::Scenario;

/// The message a scenario refused as `bad.toml` gets; panics if accepted.
pub fn error(source: &str) -> String {
    match Scenario::from_toml_str(source, "bad.toml") {
        Ok(_) => panic!("accepted:\n{source}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that `message` contains every one of `parts`.
pub fn assert_has(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
}
