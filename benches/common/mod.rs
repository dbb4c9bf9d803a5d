//! What the library's benchmarks share: the error their operations fail
//! with and the classifier that calls it transient.

use std::fmt;

use reflexio::ErrorClass;

/// The error every benchmarked closure may fail with: zero-sized, so that
/// making one costs nothing and the libraries' own work is what is timed.
#[derive(Debug, Clone, Copy)]
pub struct Fail;

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("failed")
    }
}

impl std::error::Error for Fail {}

/// The classifier of every retrying policy here: all failures are transient.
pub fn transient(_: &Fail) -> ErrorClass {
    ErrorClass::Transient
}
