//! Framing (JT/T 808-2019 §4.4): 0x7E delimiters, escaping and the XOR checksum.
//!
//! This layer knows nothing of headers or bodies. It turns a byte stream into
//! frames ([`FrameSplitter`]), a frame into its unescaped content ([`unescape_in_place`]),
//! and back ([`escape_into`]).

use crate::error::{Error, Result};

/// Frame delimiter.
pub const DELIMITER: u8 = 0x7e;
/// Escape byte.
pub const ESCAPE: u8 = 0x7d;

/// XOR of every byte: the JT/T 808 check code (§4.4.3), computed from the message
/// ID to the end of the body.
#[inline]
pub fn checksum(bytes: &[u8]) -> u8 {
    // Folding eight bytes at a time lets the compiler use wide XORs on the hot path.
    let mut chunks = bytes.chunks_exact(8);
    let mut wide = 0u64;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        wide ^= u64::from_ne_bytes(w);
    }
    let folded = wide.to_ne_bytes().iter().fold(0u8, |a, b| a ^ b);
    chunks.remainder().iter().fold(folded, |a, b| a ^ b)
}

/// Appends `content` (header, body and checksum) to `out`, escaped and between
/// delimiters: 0x7E → 0x7D 0x02, 0x7D → 0x7D 0x01 (§4.4.2).
pub fn escape_into(content: &[u8], out: &mut Vec<u8>) {
    out.reserve(content.len() + 2 + content.len() / 16);
    out.push(DELIMITER);
    let mut rest = content;
    while let Some(i) = find_special(rest) {
        let (run, tail) = rest.split_at(i);
        out.extend_from_slice(run);
        let Some((&special, tail)) = tail.split_first() else { break };
        out.extend_from_slice(&[ESCAPE, if special == DELIMITER { 0x02 } else { 0x01 }]);
        rest = tail;
    }
    out.extend_from_slice(rest);
    out.push(DELIMITER);
}

/// Undoes the escaping of a frame's content (without its delimiters) in place and
/// returns the unescaped length. No allocation: unescaping only shrinks.
#[inline]
pub fn unescape_in_place(frame: &mut [u8]) -> Result<usize> {
    // Most frames hold no escape at all and the rest only a few: find them eight bytes
    // at a time and move the runs between them with one `copy_within` each.
    let Some(first) = find_special(frame) else {
        return Ok(frame.len());
    };
    let mut w = first;
    let mut r = first;
    loop {
        // `r` sits on a special byte, or at the end.
        match frame.get(r).copied() {
            None => return Ok(w),
            Some(DELIMITER) => return Err(Error::StrayDelimiter { offset: r }),
            Some(_) => {
                let next = *frame.get(r + 1).ok_or(Error::TrailingEscape)?;
                frame[w] = match next {
                    0x01 => ESCAPE,
                    0x02 => DELIMITER,
                    byte => return Err(Error::InvalidEscape { offset: r, byte }),
                };
                w += 1;
                r += 2;
            }
        }
        let run = frame.get(r..).map_or(0, |rest| find_special(rest).unwrap_or(rest.len()));
        frame.copy_within(r..r + run, w);
        w += run;
        r += run;
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `x` (little-endian) that is 0x7D or 0x7E; the lowest
/// mark is exact, marks above it may be spurious.
#[inline]
fn specials(x: u64) -> u64 {
    let zero_bytes = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    zero_bytes(x ^ (ONES * u64::from(ESCAPE))) | zero_bytes(x ^ (ONES * u64::from(DELIMITER)))
}

/// Position of the first 0x7D or 0x7E. Frames are short (tens of bytes), so a word-at-a-time
/// scan beats a call into a SIMD search.
#[inline]
fn find_special(s: &[u8]) -> Option<usize> {
    let mut chunks = s.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let hits = specials(u64::from_le_bytes(w));
        if hits != 0 {
            return Some(base + (hits.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks.remainder().iter().position(|&b| b == ESCAPE || b == DELIMITER).map(|p| base + p)
}

/// Unescapes `frame` (content without delimiters) into `out`, replacing its contents.
pub fn unescape_into(frame: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    out.extend_from_slice(frame);
    let n = unescape_in_place(out)?;
    out.truncate(n);
    Ok(())
}

/// What the splitter found in the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Split<'a> {
    /// A frame's escaped content, delimiters stripped. Mutable so that it can be
    /// unescaped in place.
    Frame(&'a mut [u8]),
    /// Bytes dropped: garbage before a delimiter, or a frame longer than the maximum.
    Dropped(Error),
}

/// Cuts a byte stream into frames, holding at most `max_frame` bytes of a partial frame.
///
/// Feed it with [`FrameSplitter::extend`], then call [`FrameSplitter::next_frame`] until it
/// returns `None`. Back-to-back delimiters (`7E 7E`, which some terminals send between
/// frames) yield nothing.
#[derive(Debug, Clone)]
pub struct FrameSplitter {
    buf: Vec<u8>,
    /// Start of unconsumed data in `buf`.
    pos: usize,
    max_frame: usize,
    dropped_bytes: u64,
}

impl FrameSplitter {
    /// A splitter refusing frames longer than `max_frame` escaped bytes. A 1023-byte body
    /// with a 2019 header escapes to at most about 2 × 1046 bytes.
    pub fn new(max_frame: usize) -> Self {
        Self { buf: Vec::new(), pos: 0, max_frame: max_frame.max(16), dropped_bytes: 0 }
    }

    /// Appends bytes read from the connection.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes dropped so far (garbage and oversize frames).
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped_bytes
    }

    /// Bytes buffered but not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next complete frame, or `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Option<Split<'_>> {
        loop {
            let data = self.buf.get(self.pos..)?;
            // Resynchronise on the first delimiter.
            let Some(start) = data.iter().position(|&b| b == DELIMITER) else {
                let n = data.len();
                if n == 0 {
                    return None;
                }
                self.pos += n;
                self.dropped_bytes += n as u64;
                return Some(Split::Dropped(Error::FrameTooShort { len: n }));
            };
            if start > 0 {
                self.pos += start;
                self.dropped_bytes += start as u64;
                return Some(Split::Dropped(Error::FrameTooShort { len: start }));
            }
            let body = data.get(1..).unwrap_or(&[]);
            match body.iter().position(|&b| b == DELIMITER) {
                Some(0) => {
                    // `7E 7E`: the first is a closing delimiter we never saw open.
                    self.pos += 1;
                }
                Some(end) if end > self.max_frame => {
                    self.pos += 1 + end;
                    self.dropped_bytes += (1 + end) as u64;
                    return Some(Split::Dropped(Error::FrameTooLong { max: self.max_frame }));
                }
                Some(end) => {
                    let s = self.pos + 1;
                    // Leave the closing delimiter consumed.
                    self.pos = s + end + 1;
                    return self.buf.get_mut(s..s + end).map(Split::Frame);
                }
                None if body.len() > self.max_frame => {
                    let n = data.len();
                    self.pos += n;
                    self.dropped_bytes += n as u64;
                    return Some(Split::Dropped(Error::FrameTooLong { max: self.max_frame }));
                }
                None => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_both_special_bytes() {
        let mut out = Vec::new();
        escape_into(&[0x30, 0x7e, 0x08, 0x7d, 0x55], &mut out);
        assert_eq!(out, [0x7e, 0x30, 0x7d, 0x02, 0x08, 0x7d, 0x01, 0x55, 0x7e]);
        let mut content = out[1..out.len() - 1].to_vec();
        let n = unescape_in_place(&mut content);
        assert_eq!(n, Ok(5));
        assert_eq!(&content[..5], &[0x30, 0x7e, 0x08, 0x7d, 0x55]);
    }

    #[test]
    fn unescape_matches_a_bytewise_reference_at_every_offset() {
        for len in 0..48 {
            for at in 0..len {
                let content: Vec<u8> =
                    (0..len).map(|i| if i % 5 == at % 5 { 0x7e } else { 0x7d ^ (i as u8) }).collect();
                let mut framed = Vec::new();
                escape_into(&content, &mut framed);
                let mut inner = framed[1..framed.len() - 1].to_vec();
                let n = unescape_in_place(&mut inner);
                assert_eq!(n, Ok(len), "{content:02x?}");
                assert_eq!(&inner[..len], &content[..], "{content:02x?}");
            }
        }
    }

    #[test]
    fn word_scan_finds_the_first_special_byte() {
        for len in 0..40 {
            for at in 0..len {
                for special in [ESCAPE, DELIMITER] {
                    let mut v = vec![0x7cu8; len];
                    v[at] = special;
                    if at + 1 < len {
                        v[at + 1] = 0x7f;
                    }
                    assert_eq!(find_special(&v), Some(at));
                }
            }
            assert_eq!(find_special(&vec![0x7fu8; len]), None);
        }
    }

    #[test]
    fn bad_escapes_are_errors() {
        assert_eq!(unescape_in_place(&mut [1, 0x7d]), Err(Error::TrailingEscape));
        assert_eq!(unescape_in_place(&mut [0x7d, 0x03]), Err(Error::InvalidEscape { offset: 0, byte: 3 }));
    }

    #[test]
    fn splitter_cuts_and_resynchronises() {
        let mut s = FrameSplitter::new(64);
        s.extend(&[0xff, 0x7e, 1, 2, 0x7e, 0x7e, 3]);
        assert!(matches!(s.next_frame(), Some(Split::Dropped(_))));
        assert_eq!(s.next_frame(), Some(Split::Frame(&mut [1, 2])));
        assert_eq!(s.next_frame(), None);
        s.extend(&[4, 0x7e]);
        assert_eq!(s.next_frame(), Some(Split::Frame(&mut [3, 4])));
        assert_eq!(s.next_frame(), None);
        assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn splitter_bounds_a_frame_that_never_ends() {
        let mut s = FrameSplitter::new(16);
        s.extend(&[0x7e; 1]);
        s.extend(&[0u8; 40]);
        assert_eq!(s.next_frame(), Some(Split::Dropped(Error::FrameTooLong { max: 16 })));
        assert_eq!(s.buffered(), 0);
    }
}
