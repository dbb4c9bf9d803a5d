//! Any text through the simulator's scenario parser (parsing and
//! validation only, no simulation): no panic, and a rejection names the
//! file and its position.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reflexio_sim::Scenario;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Scenario::from_toml_str(text, "fuzz.toml") {
        assert_eq!(e.file, "fuzz.toml");
        assert!(e.position.is_some() || !e.path.is_empty(), "{e:?}");
    }
});
