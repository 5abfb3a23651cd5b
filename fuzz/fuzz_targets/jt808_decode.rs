//! Stream → splitter → frame → packet, with the round trip checked on whatever decodes.
#![no_main]

use jt808::framing::{FrameSplitter, Split};
use jt808::{ChecksumPolicy, Decoder, LocationView};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut splitter = FrameSplitter::new(4096);
    let mut decoder = Decoder::new(ChecksumPolicy::Lenient);
    for piece in data.chunks(chunk) {
        splitter.extend(piece);
        while let Some(split) = splitter.next_frame() {
            let Split::Frame(frame) = split else { continue };
            let Ok(raw) = decoder.frame(frame) else {
                continue;
            };
            if raw.header.msg_id == 0x0200 {
                if let Ok(view) = LocationView::parse(raw.body) {
                    for item in view.items() {
                        let _ = item;
                    }
                }
            }
            let Ok(packet) = raw.decode() else { continue };
            if raw.header.package.is_some() || raw.header.encryption != 0 {
                continue;
            }
            // Whatever decodes must re-encode to something that decodes to the same value.
            if let Ok(bytes) = jt808::encode(&packet) {
                assert_eq!(jt808::decode(&bytes), Ok(packet));
            }
        }
    }
});
