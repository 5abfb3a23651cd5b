//! Public test vectors, decoded and pinned as snapshots.
//!
//! Sources (facts and vectors only, no code):
//! - Traccar `Jt808ProtocolDecoderTest.java` (real devices, vendor items, one frame with a
//!   wrong checksum): `test_data/traccar_jt808.hex`.
//! - yezhihao/jt808-server `jtt808-protocol/src/test/resources/JT808.txt` (every ID in
//!   2013 and 2019 headers): `test_data/yezhihao_jt808.hex`.
//!
//! Refresh the snapshots with `UPDATE_EXPECT=1 cargo test -p jt808 --test vectors`
//! and review the diff.

mod common;

use common::{frames, hex};
use expect_test::expect_file;
use jt808::{AdditionalItem, ChecksumPolicy, Decoder, Error, Message, Version};
use std::fmt::Write;

/// Decodes every frame of a file strictly and leniently and re-encodes what decoded.
fn snapshot(name: &str) -> String {
    let mut out = String::new();
    for (line, h) in frames(name) {
        let bytes = hex(&h);
        let mut strict = Decoder::new(ChecksumPolicy::Strict);
        let mut lenient = Decoder::new(ChecksumPolicy::Lenient);
        let s = strict.packet(&mut bytes.clone());
        let l = lenient.packet(&mut bytes.clone());
        let _ = writeln!(out, "line {line}: {}", &h[..h.len().min(40)]);
        match (&s, &l) {
            (Ok(_), Ok(p)) => {
                let _ = writeln!(
                    out,
                    "  {:?} v={:?} phone={} serial={}",
                    p.header.msg_id, p.header.version, p.header.phone, p.header.serial
                );
                let _ = writeln!(out, "  {:?}", p.message);
                match jt808::encode(p) {
                    Ok(re) if re == bytes => {
                        let _ = writeln!(out, "  re-encode: identical");
                    }
                    Ok(re) => {
                        let back = jt808::decode(&re).map(|q| q == *p);
                        let _ = writeln!(out, "  re-encode: differs in bytes, decodes equal: {back:?}");
                    }
                    Err(e) => {
                        let _ = writeln!(out, "  re-encode: {e:?}");
                    }
                }
            }
            (Err(es), Ok(p)) => {
                let _ = writeln!(out, "  strict: {es:?}");
                let _ = writeln!(out, "  lenient: {:?}", p.message);
            }
            (Err(es), Err(el)) if es == el => {
                let _ = writeln!(out, "  error: {es:?}");
            }
            (s, l) => {
                let _ = writeln!(out, "  strict: {s:?}\n  lenient: {l:?}");
            }
        }
    }
    out
}

#[test]
fn traccar_frames_snapshot() {
    expect_file!["../test_data/traccar_jt808.snap"].assert_eq(&snapshot("traccar_jt808.hex"));
}

#[test]
fn yezhihao_frames_snapshot() {
    expect_file!["../test_data/yezhihao_jt808.snap"].assert_eq(&snapshot("yezhihao_jt808.hex"));
}

fn decode_lenient(h: &str) -> (Decoder, Result<jt808::Packet, Error>) {
    let mut d = Decoder::new(ChecksumPolicy::Lenient);
    let r = d.packet(&mut hex(h));
    (d, r)
}

/// Traccar: a C5L device frame whose checksum byte is 0xEF where the XOR gives 0x2D;
/// Traccar (which never checks) expects its step counter to decode.
#[test]
fn traccar_wrong_checksum_strict_rejects_lenient_counts() {
    let h = "7e020000760454600047450f2a0000000000000002030fed58006d0e02008f000000002606250712430104000004cc300110310100e4020163e50100e60100e7080000000600000000e10c010600030091c400ce542100ec23b286252f68fecdb286258f68fecdb286255f68fecce0d362e7acaec1e0d362b519ceb0f8024936f50101ef7e";
    let strict = jt808::decode(&hex(h));
    assert_eq!(strict, Err(Error::ChecksumMismatch { received: 0xef, computed: 0x2d }));
    let (d, p) = decode_lenient(h);
    assert_eq!(d.bad_checksums(), 1);
    let Ok(Message::Location(loc)) = p.map(|p| p.message) else { panic!("location expected") };
    // Vendor items stay raw: 0xE4 (battery) and the rest.
    assert!(loc.items().any(|i| matches!(i, Ok(AdditionalItem::Other { id: 0xe4, .. }))));
    assert!(loc.items().any(|i| i == Ok(AdditionalItem::Mileage(0x04cc))));
}

/// Traccar expects 14 satellites (item 0x31 = 0x0E) in this 0x0704 batch frame.
#[test]
fn traccar_batch_satellites() {
    let h = "7e070400510144503762020002000101004c00040100000800030202301006f893e8001d00000095260817221812140400000000170200000104000036c9030200002504000000002a02000030011f31010eea04020c8300ef0400000000037e";
    let p = jt808::decode(&hex(h));
    let Ok(Message::LocationBatch(b)) = p.map(|p| p.message) else { panic!("batch expected") };
    assert_eq!(b.locations.len(), 1);
    assert!(b.locations[0].items().any(|i| i == Ok(AdditionalItem::Satellites(14))));
}

/// Traccar: an escaped byte 0x7D inside the body (`7d 02`) and a 2013 header.
#[test]
fn traccar_escaped_body_and_old_registration() {
    let h = "7E01000021013345678906000F002C012F373031313142534A2D4D3742203030303030303001D4C1423838383838B47E";
    let p = jt808::decode(&hex(h));
    let Ok(p) = p else { panic!("{p:?}") };
    // 33-byte body: the 2011 layout (BYTE[8] model).
    assert_eq!(p.header.version, Version::V2011);
    let Message::Register(r) = p.message else { panic!("register expected") };
    assert_eq!(r.plate, "粤B88888");
    assert_eq!(r.model, "BSJ-M7B ");
}

/// yezhihao's 0x0200 fixture swaps latitude and longitude: 116.3° north is impossible.
#[test]
fn yezhihao_swapped_latitude_is_a_named_error() {
    let h = "7e0200007c0123456789017fff000004000000080006eeb6ad02633df701380003006320070719235901040000000b02020016030200210402002c051e3737370000000000000000000000000000000000000000000000000000001105420000004212064d0000004d4d1307000000580058582504000000632a02000a2b040000001430011e3101286b7e";
    assert_eq!(jt808::decode(&hex(h)), Err(Error::OutOfRange { field: "location.latitude", value: 116_307_629 }));
}

/// yezhihao 0x0800 in a 2019 header: the checksum 0x7D travels escaped as `7d 01`.
#[test]
fn yezhihao_escaped_checksum_2019_header() {
    let h = "7e080040080100000000017299841738ffff0000007b000007017d017e";
    let Ok(p) = jt808::decode(&hex(h)) else { panic!("decodes") };
    assert_eq!(p.header.version, Version::V2019);
    assert_eq!(p.header.phone.to_string(), "00000000017299841738");
    assert_eq!(jt808::encode(&p).as_deref(), Ok(hex(h).as_slice()));
}

#[test]
fn smallchi_frames_snapshot() {
    expect_file!["../test_data/smallchi_jt808.snap"].assert_eq(&snapshot("smallchi_jt808.hex"));
}

/// SmallChi/JT808 `JT808_0x0200Test.Demo1`/`Demo2`: the values, and our encoder producing
/// the same bytes (serial 0x007E and fuel 0x7D escaped).
#[test]
fn smallchi_demo_location_decodes_and_encodes_identically() {
    use jt808::location::{DeciKmh, Heading, MicroDegrees};
    let h = "7e02000026123456789012007d02000000010000000200ba7f0e07e4f11c0028003c00001810151010100104000000640202007d01137e";
    let Ok(p) = jt808::decode(&hex(h)) else { panic!("decodes") };
    assert_eq!(p.header.serial, 126);
    assert_eq!(p.header.phone.to_string(), "123456789012");
    let Message::Location(ref l) = p.message else { panic!("location") };
    assert_eq!(l.fix.alarm.bits(), 1);
    assert_eq!(l.fix.status.bits(), 2);
    assert_eq!(l.fix.latitude, MicroDegrees(12_222_222));
    assert_eq!(l.fix.longitude, MicroDegrees(132_444_444));
    assert_eq!(l.fix.altitude_m, 40);
    assert_eq!(l.fix.speed, DeciKmh(60));
    assert_eq!(l.fix.heading, Heading(0));
    // 2018-10-15 10:10:10 in GMT+8.
    assert_eq!(l.fix.time.map(|t| t.to_string()).as_deref(), Some("2018-10-15T02:10:10Z"));
    let items: Vec<_> = l.items().collect();
    assert_eq!(items, vec![Ok(AdditionalItem::Mileage(100)), Ok(AdditionalItem::Fuel(125))]);
    assert_eq!(jt808::encode(&p).as_deref(), Ok(hex(h).as_slice()));
}
