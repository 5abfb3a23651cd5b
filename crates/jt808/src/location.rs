//! Location report body 0x0200 (JT/T 808-2019 §8.18, tables 23–28), shared by 0x0201,
//! 0x0704 and 0x0801.
//!
//! [`LocationView`] borrows the additional items from the frame and decodes them
//! lazily: decoding a 0x0200 frame through it allocates nothing.

use crate::error::{Error, Result};
use crate::time::{UtcTime, fields};
use crate::wire::{Put, Reader};

bitflags::bitflags! {
    /// Alarm flags (2019 table 24; 2013 table 24 where bits agree). Unknown bits are kept.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct AlarmFlags: u32 {
        /// Bit 0: emergency (SOS) alarm.
        const EMERGENCY = 1 << 0;
        /// Bit 1: overspeed alarm.
        const OVERSPEED = 1 << 1;
        /// Bit 2: fatigue driving alarm.
        const FATIGUE = 1 << 2;
        /// Bit 3: dangerous driving (2019) / danger warning (2013).
        const DANGER_WARNING = 1 << 3;
        /// Bit 4: GNSS module fault.
        const GNSS_FAULT = 1 << 4;
        /// Bit 5: GNSS antenna cut or missing.
        const GNSS_ANTENNA_CUT = 1 << 5;
        /// Bit 6: GNSS antenna short circuit.
        const GNSS_ANTENNA_SHORT = 1 << 6;
        /// Bit 7: main power under-voltage.
        const POWER_UNDERVOLTAGE = 1 << 7;
        /// Bit 8: main power off.
        const POWER_OFF = 1 << 8;
        /// Bit 9: display fault.
        const DISPLAY_FAULT = 1 << 9;
        /// Bit 10: TTS module fault.
        const TTS_FAULT = 1 << 10;
        /// Bit 11: camera fault.
        const CAMERA_FAULT = 1 << 11;
        /// Bit 12: transport IC card module fault.
        const IC_CARD_FAULT = 1 << 12;
        /// Bit 13: overspeed warning.
        const OVERSPEED_WARNING = 1 << 13;
        /// Bit 14: fatigue driving warning.
        const FATIGUE_WARNING = 1 << 14;
        /// Bit 15: illegal driving (2019).
        const ILLEGAL_DRIVING = 1 << 15;
        /// Bit 16: tyre pressure warning (2019).
        const TIRE_PRESSURE_WARNING = 1 << 16;
        /// Bit 17: right-turn blind-spot alarm (2019).
        const BLIND_SPOT = 1 << 17;
        /// Bit 18: daily driving time exceeded.
        const DAILY_DRIVING_TIMEOUT = 1 << 18;
        /// Bit 19: parked too long.
        const PARKING_TIMEOUT = 1 << 19;
        /// Bit 20: entering or leaving an area.
        const AREA = 1 << 20;
        /// Bit 21: entering or leaving a route.
        const ROUTE = 1 << 21;
        /// Bit 22: route segment driving time too short or too long.
        const SEGMENT_TIME = 1 << 22;
        /// Bit 23: route deviation.
        const ROUTE_DEVIATION = 1 << 23;
        /// Bit 24: vehicle speed sensor fault.
        const VSS_FAULT = 1 << 24;
        /// Bit 25: abnormal fuel level.
        const FUEL_ABNORMAL = 1 << 25;
        /// Bit 26: vehicle stolen.
        const STOLEN = 1 << 26;
        /// Bit 27: illegal ignition.
        const ILLEGAL_IGNITION = 1 << 27;
        /// Bit 28: illegal displacement.
        const ILLEGAL_DISPLACEMENT = 1 << 28;
        /// Bit 29: collision (2019: collision or rollover alarm).
        const COLLISION = 1 << 29;
        /// Bit 30: rollover warning.
        const ROLLOVER = 1 << 30;
        /// Bit 31: illegal door opening.
        const ILLEGAL_DOOR_OPEN = 1 << 31;
        const _ = !0;
    }
}

bitflags::bitflags! {
    /// Status flags (2019 table 25). Bits 8–9 are the load state, see [`StatusFlags::load`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct StatusFlags: u32 {
        /// Bit 0: ACC on.
        const ACC_ON = 1 << 0;
        /// Bit 1: positioned (fix valid).
        const POSITIONED = 1 << 1;
        /// Bit 2: south latitude.
        const SOUTH = 1 << 2;
        /// Bit 3: west longitude.
        const WEST = 1 << 3;
        /// Bit 4: out of operation.
        const OUT_OF_SERVICE = 1 << 4;
        /// Bit 5: coordinates encrypted by a confidentiality plug-in.
        const COORDINATES_ENCRYPTED = 1 << 5;
        /// Bit 6: forward collision warning from the braking system (2019).
        const FORWARD_COLLISION_WARNING = 1 << 6;
        /// Bit 7: lane departure warning (2019).
        const LANE_DEPARTURE_WARNING = 1 << 7;
        /// Bit 8: low bit of the load state.
        const LOAD_LOW = 1 << 8;
        /// Bit 9: high bit of the load state.
        const LOAD_HIGH = 1 << 9;
        /// Bit 10: fuel circuit cut.
        const FUEL_CUT = 1 << 10;
        /// Bit 11: electric circuit cut.
        const CIRCUIT_CUT = 1 << 11;
        /// Bit 12: doors locked.
        const DOOR_LOCKED = 1 << 12;
        /// Bit 13: door 1 (front) open.
        const DOOR1_OPEN = 1 << 13;
        /// Bit 14: door 2 (middle) open.
        const DOOR2_OPEN = 1 << 14;
        /// Bit 15: door 3 (rear) open.
        const DOOR3_OPEN = 1 << 15;
        /// Bit 16: door 4 (driver) open.
        const DOOR4_OPEN = 1 << 16;
        /// Bit 17: door 5 open.
        const DOOR5_OPEN = 1 << 17;
        /// Bit 18: GPS used.
        const GPS = 1 << 18;
        /// Bit 19: BeiDou used.
        const BEIDOU = 1 << 19;
        /// Bit 20: GLONASS used.
        const GLONASS = 1 << 20;
        /// Bit 21: Galileo used.
        const GALILEO = 1 << 21;
        /// Bit 22: vehicle moving (2019).
        const MOVING = 1 << 22;
        const _ = !0;
    }
}

/// Load state, status bits 8–9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// 00: empty.
    Empty,
    /// 01: half load.
    Half,
    /// 10: reserved.
    Reserved,
    /// 11: full.
    Full,
}

impl StatusFlags {
    /// The load state in bits 8–9.
    pub fn load(self) -> Load {
        match (self.bits() >> 8) & 3 {
            0 => Load::Empty,
            1 => Load::Half,
            2 => Load::Reserved,
            _ => Load::Full,
        }
    }
}

/// Latitude or longitude in millionths of a degree, negative south or west.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MicroDegrees(pub i32);

impl MicroDegrees {
    /// Degrees as a float.
    pub fn degrees(self) -> f64 {
        f64::from(self.0) / 1e6
    }
}

/// Speed in tenths of a km/h.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DeciKmh(pub u16);

/// Heading in degrees clockwise from north, 0–359.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Heading(pub u16);

/// The 28-byte basic information of a location report (2019 table 23).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LocationFix {
    /// Alarm flags.
    pub alarm: AlarmFlags,
    /// Status flags. On encode the SOUTH and WEST bits follow the signs of the
    /// coordinates (and are left as they are for a coordinate of exactly 0).
    pub status: StatusFlags,
    /// Latitude, negative in the south; |lat| ≤ 90°.
    pub latitude: MicroDegrees,
    /// Longitude, negative in the west; |lon| ≤ 180°.
    pub longitude: MicroDegrees,
    /// Altitude in metres.
    pub altitude_m: u16,
    /// Speed.
    pub speed: DeciKmh,
    /// Heading.
    pub heading: Heading,
    /// Fix time; `None` when the terminal sends all zeros.
    pub time: Option<UtcTime>,
}

/// Encoded length of [`LocationFix`].
pub const FIX_LEN: usize = 28;

impl LocationFix {
    /// Decodes the 28 bytes of basic information, checking every range.
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        let raw: [u8; FIX_LEN] = r.array("location")?;
        Self::from_bytes(&raw)
    }

    /// Decodes from exactly 28 bytes.
    #[inline]
    pub fn from_bytes(raw: &[u8; FIX_LEN]) -> Result<Self> {
        let word = |i: usize| u16::from_be_bytes([raw[i], raw[i + 1]]);
        let dword = |i: usize| u32::from_be_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        let alarm = AlarmFlags::from_bits_retain(dword(0));
        let status = StatusFlags::from_bits_retain(dword(4));
        let lat = dword(8);
        let lon = dword(12);
        if lat > 90_000_000 {
            return Err(Error::OutOfRange { field: "location.latitude", value: i64::from(lat) });
        }
        if lon > 180_000_000 {
            return Err(Error::OutOfRange { field: "location.longitude", value: i64::from(lon) });
        }
        let heading = word(20);
        if heading > 359 {
            return Err(Error::OutOfRange { field: "location.heading", value: i64::from(heading) });
        }
        let mut t = [0u8; 6];
        t.copy_from_slice(&raw[22..28]);
        let time = UtcTime::from_bcd_gmt8(t, fields!("location.time"))?;
        // Both fit in i32 after the range checks above.
        let sign = |neg: bool, v: u32| if neg { -(v as i32) } else { v as i32 };
        Ok(Self {
            alarm,
            status,
            latitude: MicroDegrees(sign(status.contains(StatusFlags::SOUTH), lat)),
            longitude: MicroDegrees(sign(status.contains(StatusFlags::WEST), lon)),
            altitude_m: word(16),
            speed: DeciKmh(word(18)),
            heading: Heading(heading),
            time,
        })
    }

    /// Appends the 28 bytes.
    pub(crate) fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        let lat = self.latitude.0.unsigned_abs();
        let lon = self.longitude.0.unsigned_abs();
        if lat > 90_000_000 {
            return Err(Error::OutOfRange { field: "location.latitude", value: i64::from(self.latitude.0) });
        }
        if lon > 180_000_000 {
            return Err(Error::OutOfRange { field: "location.longitude", value: i64::from(self.longitude.0) });
        }
        if self.heading.0 > 359 {
            return Err(Error::OutOfRange { field: "location.heading", value: i64::from(self.heading.0) });
        }
        let mut status = self.status;
        if self.latitude.0 != 0 {
            status.set(StatusFlags::SOUTH, self.latitude.0 < 0);
        }
        if self.longitude.0 != 0 {
            status.set(StatusFlags::WEST, self.longitude.0 < 0);
        }
        out.put_u32(self.alarm.bits());
        out.put_u32(status.bits());
        out.put_u32(lat);
        out.put_u32(lon);
        out.put_u16(self.altitude_m);
        out.put_u16(self.speed.0);
        out.put_u16(self.heading.0);
        out.put(&UtcTime::to_bcd_gmt8(self.time, fields!("location.time"))?);
        Ok(())
    }
}

/// One additional item of a location report (2019 table 27, 2013 table 27).
///
/// A standard ID whose length differs from the table, every reserved ID (0x07–0x10
/// are reserved in 2019 table 27, so 0x07 has no typed form) and every vendor ID is
/// kept as [`AdditionalItem::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdditionalItem<'a> {
    /// 0x01: odometer, 0.1 km.
    Mileage(u32),
    /// 0x02: fuel, 0.1 L.
    Fuel(u16),
    /// 0x03: speed from the tachograph, 0.1 km/h.
    RecorderSpeed(u16),
    /// 0x04: ID of an alarm event that needs manual confirmation.
    AlarmEventId(u16),
    /// 0x05: tyre pressures, Pa, 0xFF for none (2019, `BYTE[30]`).
    TirePressure([u8; 30]),
    /// 0x06: carriage temperature, °C (2019).
    CarriageTemperature(i16),
    /// 0x11: overspeed alarm details; `area_id` is absent when the location type is 0.
    Overspeed {
        /// 0 none, 1 circle, 2 rectangle, 3 polygon, 4 route segment.
        location_type: u8,
        /// Area or segment ID.
        area_id: Option<u32>,
    },
    /// 0x12: entering or leaving an area or route.
    AreaEntryExit {
        /// 1 circle, 2 rectangle, 3 polygon, 4 route.
        location_type: u8,
        /// Area or route ID.
        area_id: u32,
        /// 0 in, 1 out.
        direction: u8,
    },
    /// 0x13: route segment driving time too short or too long.
    SegmentDriveTime {
        /// Segment ID.
        segment_id: u32,
        /// Driving time, s.
        drive_time_s: u16,
        /// 0 too short, 1 too long.
        result: u8,
    },
    /// 0x25: extended vehicle signal bits.
    ExtendedSignals(u32),
    /// 0x2A: IO status bits.
    IoStatus(u16),
    /// 0x2B: analogue inputs, bits 0–15 AD0, 16–31 AD1.
    Analog(u32),
    /// 0x30: wireless signal strength.
    SignalStrength(u8),
    /// 0x31: GNSS satellites in view.
    Satellites(u8),
    /// Any other ID, value as received.
    Other {
        /// Item ID.
        id: u8,
        /// Raw value.
        value: &'a [u8],
    },
}

impl<'a> AdditionalItem<'a> {
    /// Item ID on the wire.
    pub fn id(&self) -> u8 {
        match self {
            Self::Mileage(_) => 0x01,
            Self::Fuel(_) => 0x02,
            Self::RecorderSpeed(_) => 0x03,
            Self::AlarmEventId(_) => 0x04,
            Self::TirePressure(_) => 0x05,
            Self::CarriageTemperature(_) => 0x06,
            Self::Overspeed { .. } => 0x11,
            Self::AreaEntryExit { .. } => 0x12,
            Self::SegmentDriveTime { .. } => 0x13,
            Self::ExtendedSignals(_) => 0x25,
            Self::IoStatus(_) => 0x2a,
            Self::Analog(_) => 0x2b,
            Self::SignalStrength(_) => 0x30,
            Self::Satellites(_) => 0x31,
            Self::Other { id, .. } => *id,
        }
    }

    /// Decodes one item from its ID and value.
    #[inline]
    pub fn parse(id: u8, v: &'a [u8]) -> Self {
        let w = |i: usize| u16::from_be_bytes([v[i], v[i + 1]]);
        let d = |i: usize| u32::from_be_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]]);
        match (id, v.len()) {
            (0x01, 4) => Self::Mileage(d(0)),
            (0x02, 2) => Self::Fuel(w(0)),
            (0x03, 2) => Self::RecorderSpeed(w(0)),
            (0x04, 2) => Self::AlarmEventId(w(0)),
            (0x05, 30) => {
                let mut a = [0u8; 30];
                a.copy_from_slice(v);
                Self::TirePressure(a)
            }
            (0x06, 2) => Self::CarriageTemperature(w(0) as i16),
            (0x11, 1) if v[0] == 0 => Self::Overspeed { location_type: 0, area_id: None },
            (0x11, 5) if v[0] != 0 => Self::Overspeed { location_type: v[0], area_id: Some(d(1)) },
            (0x12, 6) => Self::AreaEntryExit { location_type: v[0], area_id: d(1), direction: v[5] },
            (0x13, 7) => Self::SegmentDriveTime { segment_id: d(0), drive_time_s: w(4), result: v[6] },
            (0x25, 4) => Self::ExtendedSignals(d(0)),
            (0x2a, 2) => Self::IoStatus(w(0)),
            (0x2b, 4) => Self::Analog(d(0)),
            (0x30, 1) => Self::SignalStrength(v[0]),
            (0x31, 1) => Self::Satellites(v[0]),
            _ => Self::Other { id, value: v },
        }
    }

    /// Appends ID, length and value.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        out.put_u8(self.id());
        let start = out.len();
        out.put_u8(0);
        match *self {
            Self::Mileage(x) | Self::ExtendedSignals(x) | Self::Analog(x) => out.put_u32(x),
            Self::Fuel(x) | Self::RecorderSpeed(x) | Self::AlarmEventId(x) | Self::IoStatus(x) => out.put_u16(x),
            Self::TirePressure(a) => out.put(&a),
            Self::CarriageTemperature(t) => out.put_u16(t as u16),
            Self::Overspeed { location_type, area_id } => {
                out.put_u8(location_type);
                if let Some(a) = area_id {
                    out.put_u32(a);
                }
            }
            Self::AreaEntryExit { location_type, area_id, direction } => {
                out.put_u8(location_type);
                out.put_u32(area_id);
                out.put_u8(direction);
            }
            Self::SegmentDriveTime { segment_id, drive_time_s, result } => {
                out.put_u32(segment_id);
                out.put_u16(drive_time_s);
                out.put_u8(result);
            }
            Self::SignalStrength(x) | Self::Satellites(x) => out.put_u8(x),
            Self::Other { value, .. } => out.put(value),
        }
        let len = out.len() - start - 1;
        out[start] =
            u8::try_from(len).map_err(|_| Error::FieldTooLong { field: "location.additional_item", len, max: 255 })?;
        Ok(())
    }
}

/// Iterator over the additional items of a location report; yields an error (once)
/// for an item that runs past the body.
#[derive(Debug, Clone)]
pub struct Items<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<AdditionalItem<'a>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match *self.rest {
            [] => None,
            [id, len, ref tail @ ..] if tail.len() >= usize::from(len) => {
                let (v, rest) = tail.split_at(usize::from(len));
                self.rest = rest;
                Some(Ok(AdditionalItem::parse(id, v)))
            }
            _ => {
                self.rest = &[];
                Some(Err(Error::UnexpectedEnd { field: "location.additional_item" }))
            }
        }
    }
}

/// Checks that `extras` is a well-formed sequence of items.
#[inline]
fn check_items(extras: &[u8]) -> Result<()> {
    let mut rest = extras;
    while let [_, len, tail @ ..] = rest {
        rest = tail.get(usize::from(*len)..).ok_or(Error::UnexpectedEnd { field: "location.additional_item" })?;
    }
    if rest.is_empty() { Ok(()) } else { Err(Error::UnexpectedEnd { field: "location.additional_item" }) }
}

/// Lists the decoded items in `Debug` output instead of raw bytes.
struct DebugItems<'a>(&'a [u8]);

impl core::fmt::Debug for DebugItems<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(Items { rest: self.0 }).finish()
    }
}

/// A borrowed, allocation-free view of a 0x0200 body.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LocationView<'a> {
    /// Basic information.
    pub fix: LocationFix,
    extras: &'a [u8],
}

impl<'a> LocationView<'a> {
    /// Decodes a 0x0200 body; the item framing is checked, the items are decoded by
    /// [`LocationView::items`].
    #[inline]
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let (fix, extras) = body.split_first_chunk::<FIX_LEN>().ok_or(Error::UnexpectedEnd { field: "location" })?;
        let fix = LocationFix::from_bytes(fix)?;
        check_items(extras)?;
        Ok(Self { fix, extras })
    }

    /// The additional items, in wire order.
    pub fn items(&self) -> Items<'a> {
        Items { rest: self.extras }
    }

    /// The raw additional-item bytes.
    pub fn extras(&self) -> &'a [u8] {
        self.extras
    }

    /// An owned copy.
    pub fn to_owned(&self) -> Location {
        Location { fix: self.fix, extras: self.extras.to_vec() }
    }
}

impl core::fmt::Debug for LocationView<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocationView").field("fix", &self.fix).field("items", &DebugItems(self.extras)).finish()
    }
}

impl core::fmt::Debug for Location {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Location").field("fix", &self.fix).field("items", &DebugItems(&self.extras)).finish()
    }
}

/// An owned location report: basic information plus the encoded additional items.
///
/// Items are held in wire form so that vendor items survive a round trip byte for
/// byte; read them with [`Location::items`], add them with [`Location::push_item`].
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Location {
    /// Basic information.
    pub fix: LocationFix,
    extras: Vec<u8>,
}

impl Location {
    /// A report without additional items.
    pub fn new(fix: LocationFix) -> Self {
        Self { fix, extras: Vec::new() }
    }

    /// Appends an item.
    pub fn push_item(&mut self, item: &AdditionalItem<'_>) -> Result<()> {
        item.write(&mut self.extras)
    }

    /// The additional items, in wire order.
    pub fn items(&self) -> Items<'_> {
        Items { rest: &self.extras }
    }

    /// Borrowed view.
    pub fn view(&self) -> LocationView<'_> {
        LocationView { fix: self.fix, extras: &self.extras }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(LocationView::parse(r.rest())?.to_owned())
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        self.fix.write(out)?;
        out.put(&self.extras);
        Ok(())
    }
}
