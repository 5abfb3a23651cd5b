//! One error type for every layer: a bad frame is data, not a failure.

/// Why a frame, a header or a body could not be decoded or encoded.
///
/// Every variant that concerns a value names the field (`"location.latitude"`,
/// `"time.month"`), so a log line says what the terminal got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The frame held fewer bytes than a header and checksum need.
    #[error("frame too short: {len} bytes")]
    FrameTooShort {
        /// Unescaped length of the frame.
        len: usize,
    },
    /// A 0x7D was followed by something other than 0x01 or 0x02 (JT/T 808-2019 §4.4.2).
    #[error("invalid escape 0x7d 0x{byte:02x} at offset {offset}")]
    InvalidEscape {
        /// Offset of the 0x7D in the escaped frame.
        offset: usize,
        /// The byte after it.
        byte: u8,
    },
    /// The frame ended with a lone 0x7D.
    #[error("frame ends inside an escape sequence")]
    TrailingEscape,
    /// A raw 0x7E inside a frame (the splitter should have cut there).
    #[error("unescaped 0x7e inside frame at offset {offset}")]
    StrayDelimiter {
        /// Offset of the 0x7E.
        offset: usize,
    },
    /// The XOR checksum did not match (strict mode only).
    #[error("checksum mismatch: frame says 0x{received:02x}, computed 0x{computed:02x}")]
    ChecksumMismatch {
        /// Checksum byte carried by the frame.
        received: u8,
        /// XOR of the header and body.
        computed: u8,
    },
    /// The body length in the properties word disagrees with the frame.
    #[error("body length mismatch: header says {declared}, frame carries {actual}")]
    BodyLengthMismatch {
        /// Bits 0–9 of the body properties.
        declared: usize,
        /// Bytes actually present.
        actual: usize,
    },
    /// A frame grew past the configured maximum without a closing 0x7E.
    #[error("frame longer than {max} bytes")]
    FrameTooLong {
        /// The configured maximum.
        max: usize,
    },
    /// The input ended inside a field.
    #[error("unexpected end of input in {field}")]
    UnexpectedEnd {
        /// Field being read.
        field: &'static str,
    },
    /// A BCD field held a nibble above 9.
    #[error("invalid BCD in {field}")]
    InvalidBcd {
        /// Field being read.
        field: &'static str,
    },
    /// A value lies outside the range the standard allows.
    #[error("{field} out of range: {value}")]
    OutOfRange {
        /// Field being read or written.
        field: &'static str,
        /// The offending value.
        value: i64,
    },
    /// A value does not fit the width the standard gives the field.
    #[error("{field} too long: {len} bytes, at most {max}")]
    FieldTooLong {
        /// Field being written.
        field: &'static str,
        /// Encoded length.
        len: usize,
        /// Largest allowed length.
        max: usize,
    },
    /// Text that GBK cannot represent.
    #[error("{field} cannot be encoded in GBK")]
    Unencodable {
        /// Field being written.
        field: &'static str,
    },
    /// Sub-package counters that cannot be right (total 0, index 0 or past the total).
    #[error("invalid sub-package {index} of {total}")]
    InvalidPackage {
        /// Total packet count.
        total: u16,
        /// Packet index, 1-based.
        index: u16,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
