//! A `tokio_util::codec` adapter over the sans-IO core (feature `tokio-codec`).
//!
//! A bad frame is yielded as `Some(Err(..))` rather than as the codec's error, so a
//! `FramedRead` keeps reading the connection after it: `tokio_util` ends a stream at
//! the first codec error.

use bytes::{Buf, BytesMut};

use crate::error::Error;
use crate::framing::DELIMITER;
use crate::packet::{ChecksumPolicy, Decoder, Encoder, Packet};

/// Frames JT/T 808 packets on a byte stream.
#[derive(Debug, Clone)]
pub struct Jt808Codec {
    decoder: Decoder,
    encoder: Encoder,
    max_frame: usize,
}

impl Jt808Codec {
    /// A codec with the given checksum policy and maximum escaped frame length.
    pub fn new(policy: ChecksumPolicy, max_frame: usize) -> Self {
        Self { decoder: Decoder::new(policy), encoder: Encoder::default(), max_frame }
    }

    /// Frames accepted with a wrong checksum so far (lenient policy).
    pub fn bad_checksums(&self) -> u64 {
        self.decoder.bad_checksums()
    }
}

impl Default for Jt808Codec {
    fn default() -> Self {
        Self::new(ChecksumPolicy::Strict, 4096)
    }
}

impl tokio_util::codec::Decoder for Jt808Codec {
    type Item = Result<Packet, Error>;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        loop {
            let Some(start) = src.iter().position(|&b| b == DELIMITER) else {
                src.clear();
                return Ok(None);
            };
            src.advance(start);
            match src.get(1..).and_then(|rest| rest.iter().position(|&b| b == DELIMITER)) {
                Some(0) => src.advance(1),
                Some(end) if end > self.max_frame => {
                    src.advance(end + 1);
                    return Ok(Some(Err(Error::FrameTooLong { max: self.max_frame })));
                }
                Some(end) => {
                    let mut frame = src.split_to(end + 2);
                    return Ok(Some(self.decoder.packet(&mut frame)));
                }
                None if src.len() > self.max_frame + 1 => {
                    src.clear();
                    return Ok(Some(Err(Error::FrameTooLong { max: self.max_frame })));
                }
                None => return Ok(None),
            }
        }
    }
}

impl tokio_util::codec::Encoder<&Packet> for Jt808Codec {
    type Error = std::io::Error;

    fn encode(&mut self, item: &Packet, dst: &mut BytesMut) -> Result<(), Self::Error> {
        let mut out = Vec::new();
        self.encoder
            .encode(&item.header, &item.message, &mut out)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        dst.extend_from_slice(&out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::codec::{Decoder as _, Encoder as _};

    #[test]
    fn bad_frame_then_good_frame() {
        let mut codec = Jt808Codec::default();
        let good = crate::sample::location_frame().expect("sample");
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0x7e, 1, 2, 3, 0x7e]);
        buf.extend_from_slice(&good[..10]);
        assert!(matches!(codec.decode(&mut buf), Ok(Some(Err(_)))));
        assert!(matches!(codec.decode(&mut buf), Ok(None)));
        buf.extend_from_slice(&good[10..]);
        let Ok(Some(Ok(p))) = codec.decode(&mut buf) else { panic!("packet expected") };
        let mut out = BytesMut::new();
        assert!(codec.encode(&p, &mut out).is_ok());
        assert_eq!(&out[..], &good[..]);
    }
}
