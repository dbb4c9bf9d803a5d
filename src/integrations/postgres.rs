//! `tokio_postgres::Error` classification (feature `postgres`).
//!
//! `tokio_postgres::Error` implements [`SqlState`], and the
//! [`DefaultClassifier`](crate::DefaultClassifier) knows it anywhere in a
//! source chain without registration:
//!
//! * an error from the server is classified by its SQLSTATE with
//!   [`sqlstate_class`] (40001 serialization failure, 40P01 deadlock and
//!   55P03 lock not available concurrency; 08xxx transient; 53300 too many
//!   connections rate_limit; 57P01 and 57P03 (shut down, starting up)
//!   server_error; 28xxx auth; 42501 permission; other 42xxx and 23xxx
//!   permanent);
//! * an error without a SQLSTATE is transient when the connection is
//!   closed, and is otherwise left to the later rules (an I/O error in its
//!   chain is classified by its kind).
//!
//! ```
//! use reflexio::{sqlstate_class, ErrorClass};
//!
//! let serialization_failure = tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE;
//! assert_eq!(sqlstate_class(serialization_failure.code()), ErrorClass::Concurrency);
//! ```

use std::error::Error;

use crate::class::ErrorClass;
use crate::classify::{sqlstate_class, Classification, SqlState};

impl SqlState for ::tokio_postgres::Error {
    fn sql_state(&self) -> Option<&str> {
        self.code().map(|code| code.code())
    }
}

/// Classifies a `tokio_postgres::Error`; see the [module docs](self).
pub fn classify(error: &::tokio_postgres::Error) -> Classification {
    let class = match error.sql_state() {
        Some(code) => sqlstate_class(code),
        None if error.is_closed() => ErrorClass::Transient,
        None => ErrorClass::Unknown,
    };
    Classification::new(class)
}

/// The default classifier's rule for `tokio_postgres::Error`.
pub(crate) fn probe(error: &(dyn Error + 'static)) -> Option<Classification> {
    Some(classify(error.downcast_ref::<::tokio_postgres::Error>()?))
}
