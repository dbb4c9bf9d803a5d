//! Any bytes through `RetryConfig::from_toml_bytes`: no panic; a rejection
//! is positioned; an accepted configuration builds a policy, and its
//! normalised form reads back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reflexio::config::{line_col, RetryConfig};
use reflexio::RetryPolicy;

fuzz_target!(|data: &[u8]| {
    match RetryConfig::from_toml_bytes(data) {
        Ok(config) => {
            RetryPolicy::from_config(&config).expect("an accepted configuration builds a policy");
            let normalized = config.normalized().expect("an accepted configuration normalises");
            let text = normalized.to_toml_string();
            let again = RetryConfig::from_toml_str(&text).expect("a normalised configuration reads back");
            assert_eq!(again.normalized().expect("valid"), normalized, "{text}");
        }
        Err(e) => {
            let span = e.span.clone().expect("every rejection has a span");
            assert!(span.start <= data.len(), "{e:?}");
            assert!(e.position.is_some(), "{e:?}");
            if let Ok(text) = std::str::from_utf8(data) {
                assert_eq!(e.position, Some(line_col(text, span.start)), "{e:?}");
            }
        }
    }
});
