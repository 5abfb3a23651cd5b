//! Criterion benches for the hot paths named in issue 3: 0x0200 decode (unescape and
//! checksum included), 0x8001 encode, reassembly of a 3-packet message.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use jt808::message::{GeneralResponse, Message};
use jt808::reassembly::{Reassembler, ReassemblyConfig};
use jt808::{ChecksumPolicy, Decoder, Encoder, Header, LocationView, Phone};

/// Unescape, checksum, header, 28-byte fix and the six items, from a copy of the frame
/// into a stack buffer (as the splitter hands out its own buffer).
fn decode_view(decoder: &mut Decoder, buf: &mut [u8], frame: &[u8]) -> u32 {
    let buf = &mut buf[..frame.len()];
    buf.copy_from_slice(black_box(frame));
    let raw = decoder.frame(buf).expect("frame");
    let view = LocationView::parse(raw.body).expect("location");
    let mut acc = u32::from(view.fix.speed.0);
    for item in view.items() {
        acc = acc.wrapping_add(u32::from(item.expect("item").id()));
    }
    acc
}

fn decode_0200(c: &mut Criterion) {
    let escaped = jt808::sample::location_frame().expect("sample");
    let plain = jt808::sample::location_frame_plain().expect("sample");
    let mut g = c.benchmark_group("decode_0x0200_6_items");
    let mut decoder = Decoder::new(ChecksumPolicy::Strict);
    let mut buf = [0u8; 2048];
    g.bench_function("view_zero_alloc/no_escape", |b| {
        b.iter(|| black_box(decode_view(&mut decoder, &mut buf, &plain)))
    });
    g.bench_function("view_zero_alloc/3_escapes", |b| {
        b.iter(|| black_box(decode_view(&mut decoder, &mut buf, &escaped)))
    });
    g.bench_function("owned_message/3_escapes", |b| {
        b.iter(|| {
            let buf = &mut buf[..escaped.len()];
            buf.copy_from_slice(black_box(&escaped));
            black_box(decoder.packet(buf).expect("packet"))
        })
    });
    g.finish();
}

fn encode_8001(c: &mut Criterion) {
    let header = Header::new(0x8001, Phone::from_digits("13800138000", 6).expect("phone"), 42);
    let msg = Message::PlatformResponse(GeneralResponse { reply_serial: 0x7d7e, reply_id: 0x0200, result: 0 });
    let mut enc = Encoder::default();
    let mut out = Vec::with_capacity(64);
    c.bench_function("encode_0x8001", |b| {
        b.iter(|| {
            out.clear();
            enc.encode(black_box(&header), black_box(&msg), &mut out).expect("encode");
            black_box(out.len())
        })
    });
}

fn reassemble_3(c: &mut Criterion) {
    let msg = Message::UplinkPassthrough { kind: 0x41, data: (0..2500u32).map(|i| i as u8).collect() };
    let mut frames = Vec::new();
    Encoder::default()
        .encode_split(&Header::new(0, Phone::from_digits("13800138000", 6).expect("phone"), 1), &msg, 1000, &mut frames)
        .expect("split");
    assert_eq!(frames.len(), 3);
    let mut d = Decoder::default();
    let parts: Vec<(Header, Vec<u8>)> = frames
        .iter()
        .map(|f| {
            let mut f = f.clone();
            let raw = d.frame(&mut f).expect("frame");
            (raw.header, raw.body.to_vec())
        })
        .collect();
    let mut r = Reassembler::new(ReassemblyConfig::default());
    c.bench_function("reassemble_3_packets", |b| {
        b.iter(|| {
            let mut done = None;
            for (h, body) in &parts {
                if let jt808::reassembly::Outcome::Complete(m) = r.push(h, body, Duration::ZERO).expect("push") {
                    done = Some(m);
                }
            }
            black_box(done.map(|m| m.body.len()))
        })
    });
}

criterion_group!(benches, decode_0200, encode_8001, reassemble_3);

/// Where the 0x0200 time goes.
fn parts(c: &mut Criterion) {
    let frame = jt808::sample::location_frame().expect("sample");
    let mut g = c.benchmark_group("decode_0x0200_parts");
    let mut buf = [0u8; 2048];
    g.bench_function("copy_unescape", |b| {
        b.iter(|| {
            let buf = &mut buf[..frame.len() - 2];
            buf.copy_from_slice(black_box(&frame[1..frame.len() - 1]));
            black_box(jt808::framing::unescape_in_place(buf).expect("unescape"))
        })
    });
    let mut content = frame[1..frame.len() - 1].to_vec();
    let n = jt808::framing::unescape_in_place(&mut content).expect("unescape");
    content.truncate(n);
    g.bench_function("checksum", |b| b.iter(|| black_box(jt808::framing::checksum(black_box(&content)))));
    g.bench_function("header", |b| b.iter(|| black_box(Header::parse(black_box(&content)).expect("header"))));
    let body = &content[12..content.len() - 1];
    g.bench_function("location_view_and_items", |b| {
        b.iter(|| {
            let view = LocationView::parse(black_box(body)).expect("location");
            let mut acc = 0u32;
            for item in view.items() {
                acc = acc.wrapping_add(u32::from(item.expect("item").id()));
            }
            black_box(acc)
        })
    });
    g.finish();
}

criterion_group!(breakdown, parts);
criterion_main!(benches, breakdown);
