//! A typical location report, shared by the benches, the allocation test and the docs.

use crate::header::{Header, Phone};
use crate::location::{AdditionalItem, DeciKmh, Heading, Location, LocationFix, MicroDegrees, StatusFlags};
use crate::message::Message;
use crate::packet::Encoder;
use crate::time::UtcTime;

/// The escaped frame of a 0x0200 report from terminal 013800138000 near Wuqing, Tianjin,
/// with six additional items (mileage, fuel, recorder speed, extended signals, signal
/// strength, satellites), as terminals on the road send every 10–30 s.
///
/// The serial number 0x7D7E and the longitude 0x06F9DB7E put three escapes in the
/// frame: the unescaping slow path runs. [`location_frame_plain`] is the same report
/// without escapes, as most frames are (a 66-byte frame avoids 0x7D and 0x7E with
/// probability (254/256)^66 ≈ 60 %).
pub fn location_frame() -> crate::Result<Vec<u8>> {
    build(0x7d7e, 117_037_950)
}

/// [`location_frame`] with serial 0x0101 and a longitude 1e-6° further east: no escapes.
pub fn location_frame_plain() -> crate::Result<Vec<u8>> {
    build(0x0101, 117_037_951)
}

fn build(serial: u16, lon: i32) -> crate::Result<Vec<u8>> {
    let fix = LocationFix {
        alarm: crate::AlarmFlags::empty(),
        status: StatusFlags::ACC_ON | StatusFlags::POSITIONED | StatusFlags::GPS | StatusFlags::BEIDOU,
        latitude: MicroDegrees(39_384_120),
        longitude: MicroDegrees(lon),
        altitude_m: 8,
        speed: DeciKmh(625),
        heading: Heading(271),
        time: Some(UtcTime(1_764_300_000)),
    };
    let mut loc = Location::new(fix);
    for item in [
        AdditionalItem::Mileage(1_234_567),
        AdditionalItem::Fuel(452),
        AdditionalItem::RecorderSpeed(620),
        AdditionalItem::ExtendedSignals(0x0000_0003),
        AdditionalItem::SignalStrength(27),
        AdditionalItem::Satellites(14),
    ] {
        loc.push_item(&item)?;
    }
    let phone = Phone::from_digits("13800138000", 6)?;
    let mut out = Vec::new();
    Encoder::default().encode(&Header::new(0x0200, phone, serial), &Message::Location(loc), &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_has_no_escape_and_escaped_has_three() {
        let count = |f: &[u8]| f.iter().filter(|&&b| b == 0x7d).count();
        assert_eq!(super::location_frame_plain().map(|f| count(&f)), Ok(0));
        assert_eq!(super::location_frame().map(|f| count(&f)), Ok(3));
    }
}
