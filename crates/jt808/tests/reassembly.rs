//! Sub-packaging: split on encode, reassemble on decode, bounded, with an injected clock.

use std::time::Duration;

use jt808::message::Message;
use jt808::reassembly::{Outcome, Reassembler, ReassemblyConfig};
use jt808::{ChecksumPolicy, Decoder, Encoder, Header, Package, Phone};

fn phone(n: &str) -> Phone {
    Phone::from_digits(n, 6).expect("digits")
}

fn big_message() -> Message {
    Message::UplinkPassthrough { kind: 0x41, data: (0..2500u32).map(|i| (i % 251) as u8).collect() }
}

fn split(msg: &Message, serial: u16) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    Encoder::default()
        .encode_split(&Header::new(0, phone("13800138000"), serial), msg, 1000, &mut frames)
        .expect("splits");
    frames
}

#[test]
fn split_then_reassemble_out_of_order() {
    let msg = big_message();
    let frames = split(&msg, 0xfffe);
    assert_eq!(frames.len(), 3);
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut d = Decoder::new(ChecksumPolicy::Strict);
    let mut done = None;
    for i in [2usize, 0, 1] {
        let mut f = frames[i].clone();
        let raw = d.frame(&mut f).expect("frame");
        let p = raw.header.package.expect("sub-packaged");
        assert_eq!(p.total, 3);
        // Serials wrap: 0xfffe, 0xffff, 0x0000.
        assert_eq!(raw.header.serial, 0xfffeu16.wrapping_add(i as u16));
        if let Outcome::Complete(m) = r.push(&raw.header, raw.body, Duration::from_secs(i as u64)).expect("push") {
            done = Some(m);
        }
    }
    let done = done.expect("complete");
    assert_eq!(done.header.serial, 0xfffe);
    assert_eq!(done.decode().map(|p| p.message), Ok(msg));
    assert_eq!(r.buffered_bytes(), 0);
}

#[test]
fn missing_packets_become_a_resend_request_then_expire() {
    let frames = split(&big_message(), 100);
    let mut r = Reassembler::new(ReassemblyConfig { timeout: Duration::from_secs(30), ..Default::default() });
    let mut d = Decoder::default();
    let mut f = frames[1].clone();
    let raw = d.frame(&mut f).expect("frame");
    assert_eq!(r.push(&raw.header, raw.body, Duration::from_secs(10)), Ok(Outcome::Pending { missing: 2 }));
    assert!(r.missing(Duration::from_secs(12), Duration::from_secs(5)).is_empty());
    let waiting = r.missing(Duration::from_secs(20), Duration::from_secs(5));
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].resend_request(), Message::ResendRequest { first_serial: 100, packet_ids: vec![1, 3] });
    assert!(r.expire(Duration::from_secs(39)).is_empty());
    let gone = r.expire(Duration::from_secs(40));
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].missing, vec![1, 3]);
    assert_eq!(r.buffered_bytes(), 0);
    assert_eq!(r.stats().expired, 1);
}

#[test]
fn bounds_evict_the_oldest_message_of_a_terminal() {
    let cfg = ReassemblyConfig { max_bytes_per_terminal: 100, max_pending_per_terminal: 2, ..Default::default() };
    let mut r = Reassembler::new(cfg);
    let mut h = Header::new(0x0900, phone("1"), 0);
    for serial in 0..5u16 {
        h.serial = serial * 10;
        h.package = Some(Package { total: 2, index: 1 });
        let out = r.push(&h, &[0; 40], Duration::from_secs(u64::from(serial)));
        assert_eq!(out, Ok(Outcome::Pending { missing: 1 }));
        assert!(r.buffered_bytes() <= 100);
    }
    assert_eq!(r.stats().evicted, 3);
    // Another terminal has its own budget.
    h.phone = phone("2");
    assert_eq!(r.push(&h, &[0; 60], Duration::ZERO), Ok(Outcome::Pending { missing: 1 }));
    assert_eq!(r.buffered_bytes(), 140);
}

#[test]
fn bad_counters_and_duplicates() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut h = Header::new(0x0900, phone("1"), 7);
    h.package = Some(Package { total: 2, index: 3 });
    assert!(r.push(&h, &[1], Duration::ZERO).is_err());
    h.package = Some(Package { total: 0, index: 0 });
    assert!(r.push(&h, &[1], Duration::ZERO).is_err());
    h.package = Some(Package { total: 2, index: 1 });
    assert_eq!(r.push(&h, &[1], Duration::ZERO), Ok(Outcome::Pending { missing: 1 }));
    assert_eq!(r.push(&h, &[1], Duration::ZERO), Ok(Outcome::Duplicate));
    assert_eq!(r.stats().duplicates, 1);
    assert_eq!(r.stats().refused, 2);
}

/// Review of issue 3's reassembler: making room for a packet of a message that is not the
/// oldest used an index that eviction had invalidated (out-of-bounds panic).
#[test]
fn issue3_eviction_for_a_younger_message_does_not_panic() {
    let cfg = ReassemblyConfig { max_bytes_per_terminal: 100, max_pending_per_terminal: 8, ..Default::default() };
    let mut r = Reassembler::new(cfg);
    let mut h = Header::new(0x0900, phone("1"), 0);
    for (i, serial) in [0u16, 10, 20].into_iter().enumerate() {
        h.serial = serial;
        h.package = Some(Package { total: 2, index: 1 });
        let out = r.push(&h, &[0; 30], Duration::from_secs(i as u64));
        assert_eq!(out, Ok(Outcome::Pending { missing: 1 }));
    }
    h.serial = 21;
    h.package = Some(Package { total: 2, index: 2 });
    assert_eq!(r.push(&h, &[0; 80], Duration::from_secs(5)), Ok(Outcome::Pending { missing: 1 }));
    assert_eq!(r.buffered_bytes(), 80);
    assert_eq!(r.stats().evicted, 3);
}
