//! Decodes the sample 0x0200 frame in a loop: a target for `valgrind --tool=callgrind`
//! or `perf` when profiling the hot path:
//! `cargo run --release --example decode_loop -- [count] [plain]`.

use jt808::{ChecksumPolicy, Decoder, LocationView};

fn main() -> Result<(), jt808::Error> {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let plain = std::env::args().nth(2).as_deref() == Some("plain");
    let frame = if plain { jt808::sample::location_frame_plain()? } else { jt808::sample::location_frame()? };
    let mut decoder = Decoder::new(ChecksumPolicy::Strict);
    let mut buf = [0u8; 2048];
    let mut acc = 0u64;
    let start = std::time::Instant::now();
    for _ in 0..n {
        let buf = &mut buf[..frame.len()];
        buf.copy_from_slice(std::hint::black_box(&frame));
        let raw = decoder.frame(buf)?;
        let view = LocationView::parse(raw.body)?;
        for item in view.items() {
            acc += u64::from(item?.id());
        }
    }
    let per = start.elapsed().as_nanos() as f64 / f64::from(n.max(1));
    println!("{n} frames, {per:.1} ns/frame (checksum {acc})");
    Ok(())
}
