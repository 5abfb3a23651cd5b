//! The tiered-care rules over arbitrary input: the prescription knowledge base's reader (text of
//! its own, or the starter file with the input spliced in) and the checks it runs on any
//! prescription and patient; the result-recognition list's reader; the booking clock and slot
//! cutting. Whatever is accepted keeps the bounds the server relies on: a parsed knowledge base
//! checks without panicking and names only its own drugs, cut slots never overlap and stay in
//! their session. The modules are compiled from the health crate's own source files.
#![no_main]

#[path = "../../crates/health/src/rx.rs"]
#[allow(dead_code)]
mod rx;
#[path = "../../crates/health/src/recognition.rs"]
#[allow(dead_code)]
mod recognition;
#[path = "../../crates/health/src/appointment.rs"]
#[allow(dead_code)]
mod appointment;

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn starter() -> &'static rx::KnowledgeBase {
    static KB: OnceLock<rx::KnowledgeBase> = OnceLock::new();
    KB.get_or_init(rx::KnowledgeBase::starter)
}

/// Runs the checks of `kb` on an order and a patient made of `bytes`.
fn check_with(kb: &rx::KnowledgeBase, bytes: &[u8], text: &str) {
    let n = kb.drugs.len();
    if n == 0 {
        return;
    }
    let ordered: Vec<(usize, Option<f64>)> = bytes
        .chunks(3)
        .take(8)
        .map(|c| {
            let d = usize::from(c[0]) % n;
            let dose = c.get(1).map(|&x| f64::from(x) * f64::from(*c.get(2).unwrap_or(&1)));
            (d, dose)
        })
        .collect();
    let words: Vec<String> = text.split_whitespace().take(8).map(str::to_string).collect();
    let ctx = rx::Context {
        age_years: bytes.first().map(|&b| u32::from(b)),
        pregnant: bytes.get(1).is_some_and(|b| b % 2 == 0),
        conditions: words.clone(),
        allergies: words,
        current: bytes.iter().skip(3).take(6).map(|&b| usize::from(b) % n).collect(),
    };
    for f in kb.check(&ordered, &ctx) {
        assert!(kb.drug(&f.drug).is_some(), "a finding names a drug of the knowledge base");
    }
    let concept = serde_json::json!({ "text": text, "coding": [{ "system": "http://www.whocc.no/atc", "code": text }] });
    if let Some(d) = kb.resolve(&concept) {
        assert!(d < n);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    match which % 5 {
        0 => {
            if let Ok(kb) = rx::KnowledgeBase::parse(&text) {
                check_with(&kb, rest, &text);
            }
        }
        1 => {
            // The starter with the input spliced in at a point it chooses: deep in the format.
            let at = rest.first().map_or(0, |&b| usize::from(b) * rx::STARTER.len() / 256);
            let at = (0..=at).rev().find(|&i| rx::STARTER.is_char_boundary(i)).unwrap_or(0);
            let spliced = format!("{}{}{}", &rx::STARTER[..at], text, &rx::STARTER[at..]);
            if let Ok(kb) = rx::KnowledgeBase::parse(&spliced) {
                check_with(&kb, rest, &text);
            }
        }
        2 => check_with(starter(), rest, &text),
        3 => {
            if let Ok(l) = recognition::List::parse(&text) {
                for it in &l.items {
                    assert!((1..=365).contains(&it.window_days) && !it.codes.is_empty());
                }
                let _ = l.find(&text);
            }
            let _ = recognition::List::parse(&format!("{}{}", recognition::STARTER, text));
        }
        _ => {
            let _ = appointment::parse_clock(&text);
            if rest.len() >= 4 {
                let start = i64::from(u16::from_le_bytes([rest[0], rest[1]]) % 1440);
                let len = i64::from(rest[2]) * 6;
                let minutes = i64::from(rest[3] % 240) + 1;
                let s = appointment::Session { start_min: start, end_min: (start + len).min(1440), minutes };
                let days = i64::from(rest.get(4).copied().unwrap_or(1) % 8);
                let slots = appointment::cut(0, days, s);
                for w in slots.windows(2) {
                    assert!(w[0].1 <= w[1].0, "slots never overlap");
                }
                for (a, b) in &slots {
                    assert_eq!(b - a, minutes * appointment::MINUTE_MS);
                }
            }
        }
    }
});
