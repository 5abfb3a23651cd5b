//! JT/T 808 codec for vehicle terminals (the 2011, 2013 and 2019 editions): pure and
//! sans-IO, so the platform's network layer, simulator, fuzzers and tests all drive the
//! same code without a runtime.
//!
//! Layers, bottom up:
//! - [`framing`]: 0x7E delimiters, escaping, XOR checksum and a bounded stream splitter.
//! - [`header`]: message ID, body properties, 2013 (`BCD[6]`) and 2019 (version byte,
//!   `BCD[10]`) headers, sub-package counters. The edition is decided per frame.
//! - [`message`]: typed bodies for both directions; unknown IDs stay [`Message::Raw`].
//!   [`location`] holds the 0x0200 report and its allocation-free [`LocationView`].
//! - [`packet`]: header + body + checksum, with a strict or lenient checksum policy.
//! - [`reassembly`]: sub-package reassembly with bounded buffers and an injected clock.
//! - [`sample`]: a typical 0x0200 frame, shared by benches, tests and profiling.
//!
//! A bad frame is data, not a failure: every decoder returns a typed [`Error`] naming
//! the field, and no input makes the crate panic.
//!
//! ```
//! use jt808::{ChecksumPolicy, Decoder, Message};
//! // A heartbeat from terminal 012345678901, serial 0x0001.
//! let mut frame = *b"\x7e\x00\x02\x00\x00\x01\x23\x45\x67\x89\x01\x00\x01\x00\x7e";
//! frame[13] = jt808::framing::checksum(&frame[1..13]);
//! let packet = Decoder::new(ChecksumPolicy::Strict).packet(&mut frame).unwrap();
//! assert_eq!(packet.message, Message::Heartbeat);
//! assert_eq!(packet.header.phone.to_string(), "012345678901");
//! ```

#![warn(missing_docs)]

pub mod area;
mod error;
pub mod framing;
pub mod header;
pub mod location;
pub mod message;
pub mod packet;
pub mod reassembly;
pub mod sample;
pub mod time;
mod wire;

#[cfg(feature = "tokio-codec")]
pub mod tokio_codec;

pub use error::{Error, Result};
pub use header::{Header, Package, Phone, Version};
pub use location::{AdditionalItem, AlarmFlags, Location, LocationFix, LocationView, StatusFlags};
pub use message::Message;
pub use packet::{ChecksumPolicy, Decoder, Encoder, Packet, RawFrame, decode, encode};
pub use time::UtcTime;
