//! Any text through `parse_time` and `parse_duration`: no panic; a parsed
//! duration formats and parses back to itself; `parse_duration` accepts
//! exactly the non-zero durations `parse_time` accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reflexio::config::{format_duration, parse_duration, parse_time};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_time(text) {
        Ok(d) => {
            assert!(d.as_nanos() <= u128::from(u64::MAX), "{text:?}");
            assert_eq!(parse_time(&format_duration(d)), Ok(d), "{text:?}");
            assert_eq!(parse_duration(text).is_ok(), !d.is_zero(), "{text:?}");
        }
        Err(message) => {
            assert!(!message.is_empty());
            assert!(parse_duration(text).is_err(), "{text:?}");
        }
    }
});
