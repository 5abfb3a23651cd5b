//! Impossible values are typed errors naming the field; odd frames are data, not panics.

use jt808::packet::encode_raw;
use jt808::{ChecksumPolicy, Decoder, Error, Header, Message, Phone, Version};

fn frame(msg_id: u16, body: &[u8]) -> Vec<u8> {
    let h = Header::new(msg_id, Phone::from_digits("13800138000", 6).expect("phone"), 1);
    let mut out = Vec::new();
    encode_raw(&h, body, &mut out).expect("encodes");
    out
}

/// A 0x0200 body: 39.38° N 117.04° E, 2025-11-28 12:00:00 GMT+8, no items.
fn location_body() -> Vec<u8> {
    let mut b = vec![0u8; 8];
    b.extend_from_slice(&39_384_120u32.to_be_bytes());
    b.extend_from_slice(&117_037_950u32.to_be_bytes());
    b.extend_from_slice(&[0, 8, 0, 100, 0, 90]);
    b.extend_from_slice(&[0x25, 0x11, 0x28, 0x12, 0x00, 0x00]);
    b
}

fn decode(f: &[u8]) -> Result<Message, Error> {
    jt808::decode(f).map(|p| p.message)
}

#[test]
fn latitude_95_degrees() {
    let mut b = location_body();
    b[8..12].copy_from_slice(&95_000_000u32.to_be_bytes());
    assert_eq!(decode(&frame(0x0200, &b)), Err(Error::OutOfRange { field: "location.latitude", value: 95_000_000 }));
}

#[test]
fn month_13_and_bad_bcd() {
    let mut b = location_body();
    b[23] = 0x13;
    assert_eq!(decode(&frame(0x0200, &b)), Err(Error::OutOfRange { field: "location.time.month", value: 13 }));
    b[23] = 0x1a;
    assert_eq!(decode(&frame(0x0200, &b)), Err(Error::InvalidBcd { field: "location.time.month" }));
}

#[test]
fn heading_360_and_truncated_item() {
    let mut b = location_body();
    b[20..22].copy_from_slice(&360u16.to_be_bytes());
    assert_eq!(decode(&frame(0x0200, &b)), Err(Error::OutOfRange { field: "location.heading", value: 360 }));
    let mut b = location_body();
    b.extend_from_slice(&[0x01, 0x04, 0x00]);
    assert_eq!(decode(&frame(0x0200, &b)), Err(Error::UnexpectedEnd { field: "location.additional_item" }));
}

#[test]
fn all_zero_time_is_no_fix_time() {
    let mut b = location_body();
    b[22..28].fill(0);
    let Ok(Message::Location(l)) = decode(&frame(0x0200, &b)) else { panic!("decodes") };
    assert_eq!(l.fix.time, None);
}

#[test]
fn unknown_ids_and_encrypted_bodies_stay_raw() {
    assert_eq!(decode(&frame(0x0f01, &[1, 2, 3])), Ok(Message::Raw { msg_id: 0x0f01, body: vec![1, 2, 3] }));
    // Bit 10: RSA-encrypted body, which this layer cannot read.
    let mut f = frame(0x0200, &[9, 9]);
    f[3] |= 0x04;
    let n = f.len();
    f[n - 2] ^= 0x04;
    let p = jt808::decode(&f).expect("raw");
    assert_eq!(p.header.encryption, 1);
    assert_eq!(p.message, Message::Raw { msg_id: 0x0200, body: vec![9, 9] });
}

#[test]
fn checksum_escaped_as_7d_02() {
    // Find a serial whose checksum is 0x7E, so that the checksum itself is escaped.
    let phone = Phone::from_digits("13800138000", 6).expect("phone");
    let f = (0..=u16::MAX)
        .map(|s| {
            let mut out = Vec::new();
            encode_raw(&Header::new(0x0002, phone, s), &[], &mut out).expect("encodes");
            out
        })
        .find(|f| f.ends_with(&[0x7d, 0x02, 0x7e]))
        .expect("some serial gives 0x7e");
    assert_eq!(decode(&f), Ok(Message::Heartbeat));
}

#[test]
fn lenient_mode_counts_bad_checksums() {
    let mut f = frame(0x0002, &[]);
    let n = f.len();
    f[n - 2] ^= 0x55;
    assert!(matches!(jt808::decode(&f), Err(Error::ChecksumMismatch { .. })));
    let mut d = Decoder::new(ChecksumPolicy::Lenient);
    assert_eq!(d.packet(&mut f.clone()).map(|p| p.message), Ok(Message::Heartbeat));
    assert_eq!(d.packet(&mut f).map(|p| p.header.version), Ok(Version::V2013));
    assert_eq!(d.bad_checksums(), 2);
}

#[test]
fn declared_length_must_match() {
    let mut f = frame(0x0002, &[]);
    f[4] = 1;
    let n = f.len();
    f[n - 2] ^= 1;
    assert_eq!(jt808::decode(&f), Err(Error::BodyLengthMismatch { declared: 1, actual: 0 }));
}
