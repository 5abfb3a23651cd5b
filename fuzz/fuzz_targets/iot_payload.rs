//! Sensor payloads: both built-in decoders over arbitrary bytes; whatever they accept keeps
//! every bound the ingest path relies on. The decoders are compiled from the iot crate's own
//! source file (they need only serde_json, time and thiserror), so fuzzing does not build the
//! whole platform.
#![no_main]

#[path = "../../crates/iot/src/payload.rs"]
#[allow(dead_code)]
mod payload;

use libfuzzer_sys::fuzz_target;
use payload::{DECODERS, MAX_SAMPLES, valid_metric};

const NOW: i64 = 1_764_489_600_000;

fuzz_target!(|data: &[u8]| {
    for d in DECODERS {
        if let Ok(samples) = d.decode(data, NOW) {
            assert!(!samples.is_empty() && samples.len() <= MAX_SAMPLES);
            for s in samples {
                assert!(valid_metric(&s.metric) && s.value.is_finite());
                assert!(s.device_ms <= NOW + 5 * 60_000);
            }
        }
    }
});
