//! FHIR NDJSON (the Bulk Data format: one resource per line) read line by line, each line
//! parsed and validated on its own, so that one bad line is reported with its number and the
//! rest still count. Lines longer than [`MAX_LINE`] are refused without being held in memory.

use super::validate::{self, Issue};
use serde_json::Value;
use std::io::BufRead;

/// The longest line taken (a resource with an embedded attachment can be large; a line without
/// end is an attack or a broken file).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// One line's outcome.
#[derive(Debug)]
pub enum Line {
    /// A resource that validates, with its type.
    Valid { resource_type: String, resource: Value },
    /// A line that is not a valid resource: why.
    Invalid { issues: Vec<Issue> },
}

/// Reads `input` as NDJSON; calls `each(line number from 1, outcome)` for every non-empty line.
/// Fails only when the input itself cannot be read.
pub fn read(input: impl BufRead, mut each: impl FnMut(usize, Line)) -> std::io::Result<()> {
    let mut input = input;
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        buf.clear();
        n += 1;
        let (read, too_long) = read_line(&mut input, &mut buf)?;
        if read == 0 {
            return Ok(());
        }
        if too_long {
            let issue = Issue {
                code: "too-long",
                path: String::new(),
                diagnostics: format!("the line is longer than {MAX_LINE} bytes"),
            };
            each(n, Line::Invalid { issues: vec![issue] });
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let outcome = match serde_json::from_str::<Value>(text) {
            Err(e) => Line::Invalid {
                issues: vec![Issue { code: "structure", path: String::new(), diagnostics: format!("not JSON: {e}") }],
            },
            Ok(v) => {
                let issues = validate::validate(&v, None);
                if issues.is_empty() {
                    let resource_type = v["resourceType"].as_str().unwrap_or_default().to_string();
                    Line::Valid { resource_type, resource: v }
                } else {
                    Line::Invalid { issues }
                }
            }
        };
        each(n, outcome);
    }
}

/// Reads up to the next newline into `buf`, keeping at most [`MAX_LINE`] bytes; returns the bytes
/// consumed and whether the line was cut.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut too_long = false;
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok((consumed, too_long));
        }
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if buf.len() + take > MAX_LINE {
            too_long = true;
        } else {
            buf.extend_from_slice(&chunk[..take]);
        }
        input.consume(take);
        consumed += take;
        if done {
            return Ok((consumed, too_long));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(text: &[u8]) -> Vec<(usize, bool)> {
        let mut v = vec![];
        read(text, |n, l| v.push((n, matches!(l, Line::Valid { .. })))).unwrap();
        v
    }

    #[test]
    fn each_line_is_judged_alone_with_its_number() {
        let text = b"{\"resourceType\":\"Patient\",\"gender\":\"female\"}\n\nnot json\n{\"resourceType\":\"Patient\",\"gender\":\"f\"}\r\n{\"resourceType\":\"Organization\",\"name\":\"x\"}";
        assert_eq!(outcomes(text), vec![(1, true), (3, false), (4, false), (5, true)]);
    }

    #[test]
    fn a_line_without_end_is_refused_without_being_held() {
        let mut text = vec![b'x'; MAX_LINE + 10];
        text.extend_from_slice(b"\n{\"resourceType\":\"Patient\"}\n");
        let mut got = vec![];
        read(text.as_slice(), |n, l| {
            got.push((
                n,
                match l {
                    Line::Valid { .. } => "valid".to_string(),
                    Line::Invalid { issues } => issues[0].code.to_string(),
                },
            ))
        })
        .unwrap();
        assert_eq!(got, vec![(1, "too-long".to_string()), (2, "valid".to_string())]);
    }
}
