//! Helpers shared by the integration tests.
#![allow(dead_code)]

/// Hex to bytes; panics on bad hex (test data only).
pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex test data")).collect()
}

/// The hex frames of a `test_data` file, with their 1-based line numbers.
pub fn frames(name: &str) -> Vec<(usize, String)> {
    let path = format!("{}/test_data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("test data file");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i + 1, l.trim().to_owned()))
        .collect()
}
