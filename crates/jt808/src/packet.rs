//! Frames to packets and back: header, body and checksum over the framing layer.

use crate::error::{Error, Result};
use crate::framing::{checksum, escape_into, unescape_in_place};
use crate::header::{Header, MAX_BODY_LEN, Package, Version};
use crate::message::{Message, body_version};

/// What to do with a frame whose checksum is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumPolicy {
    /// Reject it (the default).
    #[default]
    Strict,
    /// Accept it and count it: some field devices compute the checksum wrongly.
    Lenient,
}

/// A frame split into header and (still undecoded) body, borrowed from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame<'a> {
    /// Header.
    pub header: Header,
    /// Body bytes.
    pub body: &'a [u8],
    /// Whether the checksum matched (always true in strict mode).
    pub checksum_ok: bool,
}

/// A decoded packet: header and typed body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Packet {
    /// Header.
    pub header: Header,
    /// Body.
    pub message: Message,
}

/// Splits unescaped frame content into header, body and checksum.
///
/// A declared body length that disagrees with the frame is an error: the length
/// field is the only redundancy besides the checksum.
#[inline]
pub fn parse_unescaped(content: &[u8], policy: ChecksumPolicy) -> Result<RawFrame<'_>> {
    let Some((&received, rest)) = content.split_last() else {
        return Err(Error::FrameTooShort { len: 0 });
    };
    let (header, header_len, declared) = Header::parse(rest)?;
    let body = rest.get(header_len..).unwrap_or(&[]);
    if body.len() != declared {
        return Err(Error::BodyLengthMismatch { declared, actual: body.len() });
    }
    let computed = checksum(rest);
    let checksum_ok = computed == received;
    if !checksum_ok && policy == ChecksumPolicy::Strict {
        return Err(Error::ChecksumMismatch { received, computed });
    }
    Ok(RawFrame { header, body, checksum_ok })
}

/// Unescapes a frame's content (delimiters stripped) in place and splits it.
/// Allocation-free.
#[inline]
pub fn parse_frame(frame: &mut [u8], policy: ChecksumPolicy) -> Result<RawFrame<'_>> {
    let n = unescape_in_place(frame)?;
    parse_unescaped(frame.get(..n).unwrap_or(&[]), policy)
}

/// Strips one pair of 0x7E delimiters if present.
pub fn strip_delimiters(frame: &mut [u8]) -> &mut [u8] {
    let start = usize::from(frame.first() == Some(&0x7e));
    let end = frame.len() - usize::from(frame.len() > start && frame.last() == Some(&0x7e));
    &mut frame[start..end]
}

impl RawFrame<'_> {
    /// Decodes the body. Encrypted bodies and unknown IDs become [`Message::Raw`].
    pub fn decode(&self) -> Result<Packet> {
        let mut header = self.header;
        if header.encryption != 0 {
            return Ok(Packet { header, message: Message::Raw { msg_id: header.msg_id, body: self.body.to_vec() } });
        }
        header.version = body_version(header.msg_id, header.version, self.body.len());
        // A packet that is one piece of a sub-packaged message carries a fragment.
        if header.package.is_some() {
            return Ok(Packet { header, message: Message::Raw { msg_id: header.msg_id, body: self.body.to_vec() } });
        }
        let message = Message::decode(header.msg_id, header.version, self.body)?;
        Ok(Packet { header, message })
    }
}

/// A per-connection decoder: holds the checksum policy and counts bad checksums.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    /// Checksum policy.
    pub policy: ChecksumPolicy,
    bad_checksums: u64,
}

impl Decoder {
    /// A decoder with the given policy.
    pub fn new(policy: ChecksumPolicy) -> Self {
        Self { policy, bad_checksums: 0 }
    }

    /// Frames accepted despite a wrong checksum (lenient mode).
    pub fn bad_checksums(&self) -> u64 {
        self.bad_checksums
    }

    /// Unescapes `frame` in place (delimiters stripped or not) and splits it. Allocation-free.
    #[inline]
    pub fn frame<'a>(&mut self, frame: &'a mut [u8]) -> Result<RawFrame<'a>> {
        let raw = parse_frame(strip_delimiters(frame), self.policy)?;
        if !raw.checksum_ok {
            self.bad_checksums += 1;
        }
        Ok(raw)
    }

    /// Unescapes, splits and decodes the body.
    pub fn packet(&mut self, frame: &mut [u8]) -> Result<Packet> {
        self.frame(frame)?.decode()
    }
}

/// Appends the escaped, delimited frame for `header` and `body` to `out`.
/// The body length in the header is taken from `body`.
pub fn encode_raw(header: &Header, body: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let mut content = Vec::with_capacity(header.encoded_len() + body.len() + 1);
    header.write(body.len(), &mut content)?;
    content.extend_from_slice(body);
    content.push(checksum(&content));
    escape_into(&content, out);
    Ok(())
}

/// Scratch space for encoding without allocating once warmed up.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    body: Vec<u8>,
    content: Vec<u8>,
}

impl Encoder {
    /// Appends the frame for `header` and `message` to `out`. The header's message ID
    /// is taken from the message. Fails if the body exceeds 1023 bytes: use
    /// [`Encoder::encode_split`] for those.
    pub fn encode(&mut self, header: &Header, message: &Message, out: &mut Vec<u8>) -> Result<()> {
        self.body.clear();
        message.encode(header.version, &mut self.body)?;
        let mut h = *header;
        h.msg_id = message.msg_id();
        self.content.clear();
        h.write(self.body.len(), &mut self.content)?;
        self.content.extend_from_slice(&self.body);
        self.content.push(checksum(&self.content));
        escape_into(&self.content, out);
        Ok(())
    }

    /// Encodes `message`, splitting its body into packets of at most `max_body` bytes
    /// (capped at 1023) when it does not fit one. Packets take consecutive serials
    /// from `header.serial`; each frame is pushed to `out`.
    pub fn encode_split(
        &mut self,
        header: &Header,
        message: &Message,
        max_body: usize,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<()> {
        let max_body = max_body.clamp(1, MAX_BODY_LEN);
        self.body.clear();
        message.encode(header.version, &mut self.body)?;
        let mut h = *header;
        h.msg_id = message.msg_id();
        if self.body.len() <= max_body {
            h.package = None;
            let mut frame = Vec::new();
            encode_raw(&h, &self.body, &mut frame)?;
            out.push(frame);
            return Ok(());
        }
        let chunks = self.body.chunks(max_body);
        let total = u16::try_from(chunks.len()).map_err(|_| Error::FieldTooLong {
            field: "body",
            len: self.body.len(),
            max: max_body * usize::from(u16::MAX),
        })?;
        for (i, chunk) in chunks.enumerate() {
            let index = i as u16 + 1;
            h.serial = header.serial.wrapping_add(i as u16);
            h.package = Some(Package { total, index });
            let mut frame = Vec::new();
            encode_raw(&h, chunk, &mut frame)?;
            out.push(frame);
        }
        Ok(())
    }
}

/// Encodes one packet into a new frame.
pub fn encode(packet: &Packet) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    Encoder::default().encode(&packet.header, &packet.message, &mut out)?;
    Ok(out)
}

/// Decodes one delimited frame (strict checksum).
pub fn decode(frame: &[u8]) -> Result<Packet> {
    let mut buf = frame.to_vec();
    Decoder::new(ChecksumPolicy::Strict).packet(&mut buf)
}

/// The edition of a header, for callers building one.
pub fn header_for(version: Version, msg_id: u16, phone: crate::header::Phone, serial: u16) -> Header {
    let mut h = Header::new(msg_id, phone, serial);
    h.version = version;
    h.protocol_version = u8::from(version == Version::V2019);
    h
}
