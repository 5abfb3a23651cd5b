//! Random packet sequences against the reassembler: bounds hold, nothing panics.
#![no_main]

use std::time::Duration;

use jt808::reassembly::{Outcome, Reassembler, ReassemblyConfig};
use jt808::{Header, Package, Phone};
use libfuzzer_sys::fuzz_target;

const MAX_BYTES: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let config = ReassemblyConfig {
        max_bytes_per_terminal: MAX_BYTES,
        max_pending_per_terminal: 4,
        max_terminals: 8,
        timeout: Duration::from_secs(30),
    };
    let mut r = Reassembler::new(config);
    let mut now = Duration::ZERO;
    let mut ops = data;
    // Each op: phone, msg id low byte, serial (2), total, index, body length, time step.
    while let [phone, id, s0, s1, total, index, len, step, rest @ ..] = ops {
        ops = rest;
        now += Duration::from_millis(u64::from(*step) * 250);
        if *step == 255 {
            let _ = r.expire(now);
            continue;
        }
        let phone = Phone::from_bcd(&[0, 0, 0, 0, 0, phone % 16]);
        let mut h = Header::new(0x0800 | u16::from(id % 4), phone, u16::from_be_bytes([*s0, *s1]));
        h.package = Some(Package { total: u16::from(*total % 8), index: u16::from(*index % 9) });
        let body = vec![*len; usize::from(*len) * 8];
        match r.push(&h, &body, now) {
            Ok(Outcome::Complete(m)) => assert!(m.body.len() <= MAX_BYTES),
            Ok(_) | Err(_) => {}
        }
        assert!(r.buffered_bytes() <= MAX_BYTES * 8);
        for inc in r.missing(now, Duration::ZERO) {
            assert!(!inc.missing.is_empty());
        }
    }
});
