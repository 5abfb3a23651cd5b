//! The message header (JT/T 808-2019 §4.5.2 tables 2–3, 2013 §4.4.3).

use crate::error::{Error, Result};

/// Which edition of the standard a frame follows.
///
/// The header says 2019 through bit 14 of the body properties; 2011 and 2013 share
/// a header and differ only in some bodies (0x0100 is told apart by its length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Version {
    /// JT/T 808-2011.
    V2011,
    /// JT/T 808-2013 (the header of 2011 too).
    #[default]
    V2013,
    /// JT/T 808-2019: version flag, protocol version byte, `BCD[10]` phone.
    V2019,
}

/// Largest body one packet may carry: ten bits of length.
pub const MAX_BODY_LEN: usize = 0x3ff;

const LEN_MASK: u16 = 0x03ff;
const ENCRYPTION_SHIFT: u16 = 10;
const SUBPACKAGE_BIT: u16 = 1 << 13;
const VERSION_BIT: u16 = 1 << 14;

/// The terminal's phone number (SIM number), kept as its BCD digits.
///
/// 2013 headers carry `BCD[6]` (12 digits), 2019 headers `BCD[10]` (20 digits). Nibbles
/// above 9 are accepted and shown as hex digits: many devices put a hexadecimal
/// device ID there (e.g. `4eb6fb4ad628` in Traccar's test frames), and rejecting them
/// would cut those terminals off.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone {
    bcd: [u8; 10],
    len: u8,
}

impl Phone {
    /// From the raw BCD bytes of a header (6 or 10 bytes; longer input is cut at 10).
    pub fn from_bcd(bcd: &[u8]) -> Self {
        let mut out = [0u8; 10];
        // Fixed-size copies for the two header widths: no call into memcpy.
        let len = match bcd {
            [a, b, c, d, e, f] => {
                out[..6].copy_from_slice(&[*a, *b, *c, *d, *e, *f]);
                6
            }
            _ if bcd.len() >= 10 => {
                let mut ten = [0u8; 10];
                ten.copy_from_slice(&bcd[..10]);
                out = ten;
                10
            }
            _ => {
                for (o, b) in out.iter_mut().zip(bcd) {
                    *o = *b;
                }
                bcd.len()
            }
        };
        Self { bcd: out, len: len as u8 }
    }

    /// From decimal (or hex) digits, left-padded with zeros to `width_bytes * 2` digits.
    pub fn from_digits(digits: &str, width_bytes: usize) -> Result<Self> {
        let width = width_bytes.min(10);
        let d = digits.as_bytes();
        if d.len() > width * 2 {
            return Err(Error::FieldTooLong { field: "header.phone", len: d.len(), max: width * 2 });
        }
        let mut nibbles = [0u8; 20];
        let pad = width * 2 - d.len();
        for (i, c) in d.iter().enumerate() {
            nibbles[pad + i] = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => {
                    return Err(Error::InvalidBcd { field: "header.phone" });
                }
            };
        }
        let mut bcd = [0u8; 10];
        for (i, b) in bcd.iter_mut().take(width).enumerate() {
            *b = (nibbles[2 * i] << 4) | nibbles[2 * i + 1];
        }
        Ok(Self { bcd, len: width as u8 })
    }

    /// The BCD bytes as on the wire.
    pub fn as_bcd(&self) -> &[u8] {
        &self.bcd[..usize::from(self.len)]
    }

    /// The same number in the width another header version needs (leading zeros
    /// added or dropped).
    pub fn with_width(&self, width_bytes: usize) -> Result<Self> {
        let digits = self.to_string();
        let trimmed = digits.trim_start_matches('0');
        Self::from_digits(trimmed, width_bytes)
    }
}

impl core::fmt::Display for Phone {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.as_bcd() {
            write!(f, "{:x}{:x}", b >> 4, b & 0x0f)?;
        }
        Ok(())
    }
}

impl core::fmt::Debug for Phone {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Phone({self})")
    }
}

/// Sub-package counters (present when bit 13 is set), both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Package {
    /// Number of packets in the message.
    pub total: u16,
    /// This packet's index, 1..=total.
    pub index: u16,
}

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Message ID.
    pub msg_id: u16,
    /// Edition decided from this frame (and, for 0x0100, its body).
    pub version: Version,
    /// Protocol version byte of 2019 headers (1 for the first 2019 edition); 0 otherwise.
    pub protocol_version: u8,
    /// Encryption bits 10–12 (bit 10 set: RSA). Bodies of encrypted frames stay raw.
    pub encryption: u8,
    /// Terminal phone number.
    pub phone: Phone,
    /// Message serial number.
    pub serial: u16,
    /// Sub-package counters, if sub-packaged.
    pub package: Option<Package>,
    /// Reserved bit 15 of the body properties, kept for a faithful re-encode.
    pub reserved_bit: bool,
}

impl Header {
    /// A header for `phone`: 2019 (protocol version 1) for a `BCD[10]` number, 2013 for `BCD[6]`.
    pub fn new(msg_id: u16, phone: Phone, serial: u16) -> Self {
        Self {
            msg_id,
            version: if phone.len == 10 { Version::V2019 } else { Version::V2013 },
            protocol_version: u8::from(phone.len == 10),
            encryption: 0,
            phone,
            serial,
            package: None,
            reserved_bit: false,
        }
    }

    /// Header length on the wire.
    pub fn encoded_len(&self) -> usize {
        let base = if self.version == Version::V2019 { 2 + 2 + 1 + 10 + 2 } else { 2 + 2 + 6 + 2 };
        base + if self.package.is_some() { 4 } else { 0 }
    }

    /// Parses a header from unescaped content; returns it, its length and the declared
    /// body length.
    #[inline]
    pub fn parse(content: &[u8]) -> Result<(Self, usize, usize)> {
        let short = |field| Error::UnexpectedEnd { field };
        let [m0, m1, p0, p1, ..] = *content else { return Err(short("header.properties")) };
        let msg_id = u16::from_be_bytes([m0, m1]);
        let props = u16::from_be_bytes([p0, p1]);
        let body_len = usize::from(props & LEN_MASK);
        let encryption = ((props >> ENCRYPTION_SHIFT) & 0x7) as u8;
        // Fixed part: phone BCD[6] (2013) or version byte + BCD[10] (2019), then serial.
        let (version, protocol_version, phone, at) = if props & VERSION_BIT != 0 {
            let f = content.get(4..17).ok_or(short("header.serial"))?;
            (Version::V2019, f[0], Phone::from_bcd(&f[1..11]), 15)
        } else {
            let f = content.get(4..12).ok_or(short("header.serial"))?;
            (Version::V2013, 0, Phone::from_bcd(&f[..6]), 10)
        };
        let serial = u16::from_be_bytes([content[at], content[at + 1]]);
        let (package, header_len) = if props & SUBPACKAGE_BIT != 0 {
            let p = content.get(at + 2..at + 6).ok_or(short("header.package"))?;
            let total = u16::from_be_bytes([p[0], p[1]]);
            let index = u16::from_be_bytes([p[2], p[3]]);
            (Some(Package { total, index }), at + 6)
        } else {
            (None, at + 2)
        };
        let header = Self {
            msg_id,
            version,
            protocol_version,
            encryption,
            phone,
            serial,
            package,
            reserved_bit: props & 0x8000 != 0,
        };
        Ok((header, header_len, body_len))
    }

    /// Appends the header for a body of `body_len` bytes.
    pub fn write(&self, body_len: usize, out: &mut Vec<u8>) -> Result<()> {
        if body_len > MAX_BODY_LEN {
            return Err(Error::FieldTooLong { field: "body", len: body_len, max: MAX_BODY_LEN });
        }
        let mut props = body_len as u16 | (u16::from(self.encryption & 0x7) << ENCRYPTION_SHIFT);
        if self.package.is_some() {
            props |= SUBPACKAGE_BIT;
        }
        if self.reserved_bit {
            props |= 0x8000;
        }
        let v2019 = self.version == Version::V2019;
        if v2019 {
            props |= VERSION_BIT;
        }
        out.extend_from_slice(&self.msg_id.to_be_bytes());
        out.extend_from_slice(&props.to_be_bytes());
        let want = if v2019 { 10 } else { 6 };
        if v2019 {
            out.push(self.protocol_version);
        }
        let phone = if usize::from(self.phone.len) == want { self.phone } else { self.phone.with_width(want)? };
        out.extend_from_slice(phone.as_bcd());
        out.extend_from_slice(&self.serial.to_be_bytes());
        if let Some(p) = self.package {
            out.extend_from_slice(&p.total.to_be_bytes());
            out.extend_from_slice(&p.index.to_be_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_widths() {
        let p = Phone::from_digits("13800138000", 6);
        assert_eq!(p.map(|p| p.to_string()), Ok("013800138000".to_owned()));
        let p = Phone::from_digits("13800138000", 6).and_then(|p| p.with_width(10));
        assert_eq!(p.map(|p| p.to_string()), Ok("00000000013800138000".to_owned()));
        assert_eq!(Phone::from_bcd(&[0x4e, 0xb6, 0xfb, 0x4a, 0xd6, 0x28]).to_string(), "4eb6fb4ad628");
        assert!(Phone::from_digits("12x", 6).is_err());
    }
}
