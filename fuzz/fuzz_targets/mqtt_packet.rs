//! MQTT 3.1.1 packets as the platform's device endpoint reads them (rumqttc's codec with the
//! endpoint's size bound): a stream cut at arbitrary points never panics, and every read either
//! consumes bytes, waits for more, or fails.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rumqttc::mqttbytes::{self, v4};

/// `iot::endpoint::MAX_PACKET`.
const MAX_PACKET: usize = 64 * 1024 + 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            match v4::read(&mut buf, MAX_PACKET) {
                Ok(_) => assert!(buf.len() < before),
                Err(mqttbytes::Error::InsufficientBytes(_)) => break,
                Err(_) => return,
            }
        }
    }
});
