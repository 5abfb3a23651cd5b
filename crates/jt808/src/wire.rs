//! Big-endian readers and writers, BCD and GBK helpers shared by every body.

use crate::error::{Error, Result};

/// A cursor over a body; every read names the field it is reading.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(Error::UnexpectedEnd { field });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, field)?);
        Ok(out)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// A GBK string of `n` bytes.
    pub(crate) fn gbk(&mut self, n: usize, field: &'static str) -> Result<String> {
        Ok(gbk_decode(self.bytes(n, field)?))
    }

    /// A GBK string preceded by a one-byte length.
    pub(crate) fn gbk_u8(&mut self, field: &'static str) -> Result<String> {
        let n = self.u8(field)?;
        self.gbk(usize::from(n), field)
    }

    /// A GBK string preceded by a two-byte length.
    pub(crate) fn gbk_u16(&mut self, field: &'static str) -> Result<String> {
        let n = self.u16(field)?;
        self.gbk(usize::from(n), field)
    }

    /// A fixed-width GBK field padded with 0x00: the padding is dropped.
    pub(crate) fn padded(&mut self, n: usize, field: &'static str) -> Result<String> {
        let raw = self.bytes(n, field)?;
        Ok(gbk_decode(trim_nul(raw)))
    }

    /// The rest of the body as GBK text, padding 0x00 dropped.
    pub(crate) fn gbk_rest_trimmed(&mut self) -> String {
        gbk_decode(trim_nul(self.rest()))
    }

    /// The rest of the body as GBK text.
    pub(crate) fn gbk_rest(&mut self) -> String {
        gbk_decode(self.rest())
    }
}

/// Drops leading and trailing 0x00: devices pad fixed-width fields on either side
/// (yezhihao/jt808-server pads at the front, most terminals at the back).
fn trim_nul(raw: &[u8]) -> &[u8] {
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
    let end = raw.iter().rposition(|&b| b != 0).map_or(start, |i| i + 1);
    raw.get(start..end).unwrap_or(&[])
}

pub(crate) fn gbk_decode(raw: &[u8]) -> String {
    let (text, _) = encoding_rs::GBK.decode_without_bom_handling(raw);
    text.into_owned()
}

pub(crate) fn gbk_encode<'s>(text: &'s str, field: &'static str) -> Result<std::borrow::Cow<'s, [u8]>> {
    let (bytes, _, had_errors) = encoding_rs::GBK.encode(text);
    if had_errors {
        return Err(Error::Unencodable { field });
    }
    Ok(bytes)
}

/// Writers for the big-endian primitives of JT/T 808 §4.2.
pub(crate) trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put(&mut self, v: &[u8]);
    /// GBK text, no length prefix.
    fn put_gbk(&mut self, text: &str, field: &'static str) -> Result<()>;
    /// GBK text after a one-byte length.
    fn put_gbk_u8(&mut self, text: &str, field: &'static str) -> Result<()>;
    /// GBK text after a two-byte length.
    fn put_gbk_u16(&mut self, text: &str, field: &'static str) -> Result<()>;
    /// GBK text right-padded with 0x00 to `width` bytes.
    fn put_padded(&mut self, text: &str, width: usize, field: &'static str) -> Result<()>;
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put(&mut self, v: &[u8]) {
        self.extend_from_slice(v);
    }
    fn put_gbk(&mut self, text: &str, field: &'static str) -> Result<()> {
        let bytes = gbk_encode(text, field)?;
        self.extend_from_slice(&bytes);
        Ok(())
    }
    fn put_gbk_u8(&mut self, text: &str, field: &'static str) -> Result<()> {
        let bytes = gbk_encode(text, field)?;
        let len = u8::try_from(bytes.len()).map_err(|_| Error::FieldTooLong {
            field,
            len: bytes.len(),
            max: usize::from(u8::MAX),
        })?;
        self.push(len);
        self.extend_from_slice(&bytes);
        Ok(())
    }
    fn put_gbk_u16(&mut self, text: &str, field: &'static str) -> Result<()> {
        let bytes = gbk_encode(text, field)?;
        let len = u16::try_from(bytes.len()).map_err(|_| Error::FieldTooLong {
            field,
            len: bytes.len(),
            max: usize::from(u16::MAX),
        })?;
        self.put_u16(len);
        self.extend_from_slice(&bytes);
        Ok(())
    }
    fn put_padded(&mut self, text: &str, width: usize, field: &'static str) -> Result<()> {
        let bytes = gbk_encode(text, field)?;
        if bytes.len() > width {
            return Err(Error::FieldTooLong { field, len: bytes.len(), max: width });
        }
        self.extend_from_slice(&bytes);
        self.resize(self.len() + (width - bytes.len()), 0);
        Ok(())
    }
}

/// Converts a count to the width of its length prefix, naming the field on overflow.
pub(crate) fn count_u8(n: usize, field: &'static str) -> Result<u8> {
    u8::try_from(n).map_err(|_| Error::FieldTooLong { field, len: n, max: usize::from(u8::MAX) })
}

/// Converts a count to a WORD, naming the field on overflow.
pub(crate) fn count_u16(n: usize, field: &'static str) -> Result<u16> {
    u16::try_from(n).map_err(|_| Error::FieldTooLong { field, len: n, max: usize::from(u16::MAX) })
}

/// Value of one BCD byte (two decimal digits).
pub(crate) fn bcd_byte(b: u8, field: &'static str) -> Result<u8> {
    let (hi, lo) = (b >> 4, b & 0x0f);
    if hi > 9 || lo > 9 {
        return Err(Error::InvalidBcd { field });
    }
    Ok(hi * 10 + lo)
}

/// One BCD byte from a value 0–99.
pub(crate) fn to_bcd(v: u8) -> u8 {
    ((v / 10 % 10) << 4) | (v % 10)
}
