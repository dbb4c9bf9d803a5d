//! Misuse of `#[retry]` fails to compile with a message that says what to
//! do instead. One test function: each case is a separate crate to build.

#[test]
fn misuse_is_a_clear_compile_error() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
