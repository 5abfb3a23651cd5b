//! Zero heap allocations on the 0x0200 hot path, counted by a wrapping global
//! allocator (`stats_alloc`, so this crate needs no `unsafe`). The counter is global, so this
//! binary runs without libtest (`harness = false`): libtest's own thread allocates while a test
//! runs, which made the count flaky under load.

use std::alloc::System;

use jt808::{ChecksumPolicy, Decoder, LocationView};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    let escaped = jt808::sample::location_frame().expect("sample encodes");
    let plain = jt808::sample::location_frame_plain().expect("sample encodes");
    let mut decoder = Decoder::new(ChecksumPolicy::Strict);
    let mut buf = [0u8; 2048];
    // Warm up first, so that anything initialised once per process is not counted.
    for frame in [&escaped, &plain] {
        let buf = &mut buf[..frame.len()];
        buf.copy_from_slice(frame);
        let raw = decoder.frame(buf).expect("frame");
        let view = LocationView::parse(raw.body).expect("location");
        assert_eq!(view.items().count(), 6);
    }
    let region = Region::new(GLOBAL);
    let mut sum = 0u64;
    for i in 0..1000 {
        let frame = if i % 2 == 0 { &escaped } else { &plain };
        // Copy into a stack buffer: the splitter hands out its own buffer the same way.
        let buf = &mut buf[..frame.len()];
        buf.copy_from_slice(frame);
        let raw = decoder.frame(buf).expect("frame");
        let view = LocationView::parse(raw.body).expect("location");
        for item in view.items() {
            sum += u64::from(item.expect("item").id());
        }
        sum += u64::from(view.fix.speed.0);
    }
    let stats = region.change();
    assert_eq!(sum, 1000 * (1 + 2 + 3 + 0x25 + 0x30 + 0x31 + 625));
    assert_eq!((stats.allocations, stats.reallocations, stats.bytes_allocated), (0, 0, 0), "{stats:?}");
    // The closing line the CI reads, as libtest would print it.
    println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}
