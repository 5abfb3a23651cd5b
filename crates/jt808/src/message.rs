//! Typed message bodies, both directions (JT/T 808-2019 §8; 2013 and 2011 where
//! bodies differ). Every message decodes from and encodes to its body bytes given
//! the edition; an unknown ID decodes to [`Message::Raw`], never to an error.
//!
//! Optional trailing fields (a 0x0702 without card details, a 0x8800 without a
//! retransmission list) are read if present, so terminals that omit them still
//! decode and a decoded message re-encodes to the same value.

use crate::area::{CircleArea, PolygonArea, RectangleArea, Route, SetAreas, read_ids, write_ids};
use crate::error::{Error, Result};
use crate::header::Version;
use crate::location::{AlarmFlags, Location, LocationFix};
use crate::time::{UtcTime, fields};
use crate::wire::{Put, Reader, bcd_byte, count_u8, count_u16};

/// Message IDs (JT/T 808-2019 appendix B table B.1).
pub mod ids {
    #![allow(missing_docs)]
    pub const TERMINAL_RESPONSE: u16 = 0x0001;
    pub const PLATFORM_RESPONSE: u16 = 0x8001;
    pub const HEARTBEAT: u16 = 0x0002;
    pub const LOGOUT: u16 = 0x0003;
    pub const SERVER_TIME_REQUEST: u16 = 0x0004;
    pub const SERVER_TIME_RESPONSE: u16 = 0x8004;
    pub const RESEND_REQUEST: u16 = 0x8003;
    pub const REGISTER: u16 = 0x0100;
    pub const REGISTER_RESPONSE: u16 = 0x8100;
    pub const AUTHENTICATE: u16 = 0x0102;
    pub const SET_PARAMETERS: u16 = 0x8103;
    pub const QUERY_ALL_PARAMETERS: u16 = 0x8104;
    pub const PARAMETERS_RESPONSE: u16 = 0x0104;
    pub const TERMINAL_CONTROL: u16 = 0x8105;
    pub const QUERY_PARAMETERS: u16 = 0x8106;
    pub const QUERY_ATTRIBUTES: u16 = 0x8107;
    pub const ATTRIBUTES: u16 = 0x0107;
    pub const UPGRADE_RESULT: u16 = 0x0108;
    pub const LOCATION: u16 = 0x0200;
    pub const QUERY_LOCATION: u16 = 0x8201;
    pub const LOCATION_RESPONSE: u16 = 0x0201;
    pub const TEMPORARY_TRACKING: u16 = 0x8202;
    pub const CONFIRM_ALARM: u16 = 0x8203;
    pub const LINK_CHECK: u16 = 0x8204;
    pub const TEXT_MESSAGE: u16 = 0x8300;
    pub const CALL_BACK: u16 = 0x8400;
    pub const SET_PHONEBOOK: u16 = 0x8401;
    pub const SET_CIRCLE_AREAS: u16 = 0x8600;
    pub const DELETE_CIRCLE_AREAS: u16 = 0x8601;
    pub const SET_RECTANGLE_AREAS: u16 = 0x8602;
    pub const DELETE_RECTANGLE_AREAS: u16 = 0x8603;
    pub const SET_POLYGON_AREA: u16 = 0x8604;
    pub const DELETE_POLYGON_AREAS: u16 = 0x8605;
    pub const SET_ROUTE: u16 = 0x8606;
    pub const DELETE_ROUTES: u16 = 0x8607;
    pub const DRIVER_IDENTITY: u16 = 0x0702;
    pub const LOCATION_BATCH: u16 = 0x0704;
    pub const CAN_DATA: u16 = 0x0705;
    pub const MULTIMEDIA_EVENT: u16 = 0x0800;
    pub const MULTIMEDIA_UPLOAD: u16 = 0x0801;
    pub const MULTIMEDIA_UPLOAD_RESPONSE: u16 = 0x8800;
    pub const UPLINK_PASSTHROUGH: u16 = 0x0900;
    pub const DOWNLINK_PASSTHROUGH: u16 = 0x8900;

    /// Every ID with a typed body.
    pub const TYPED: &[u16] = &[
        TERMINAL_RESPONSE,
        PLATFORM_RESPONSE,
        HEARTBEAT,
        LOGOUT,
        SERVER_TIME_REQUEST,
        SERVER_TIME_RESPONSE,
        RESEND_REQUEST,
        REGISTER,
        REGISTER_RESPONSE,
        AUTHENTICATE,
        SET_PARAMETERS,
        QUERY_ALL_PARAMETERS,
        PARAMETERS_RESPONSE,
        TERMINAL_CONTROL,
        QUERY_PARAMETERS,
        QUERY_ATTRIBUTES,
        ATTRIBUTES,
        UPGRADE_RESULT,
        LOCATION,
        QUERY_LOCATION,
        LOCATION_RESPONSE,
        TEMPORARY_TRACKING,
        CONFIRM_ALARM,
        LINK_CHECK,
        TEXT_MESSAGE,
        CALL_BACK,
        SET_PHONEBOOK,
        SET_CIRCLE_AREAS,
        DELETE_CIRCLE_AREAS,
        SET_RECTANGLE_AREAS,
        DELETE_RECTANGLE_AREAS,
        SET_POLYGON_AREA,
        DELETE_POLYGON_AREAS,
        SET_ROUTE,
        DELETE_ROUTES,
        DRIVER_IDENTITY,
        LOCATION_BATCH,
        CAN_DATA,
        MULTIMEDIA_EVENT,
        MULTIMEDIA_UPLOAD,
        MULTIMEDIA_UPLOAD_RESPONSE,
        UPLINK_PASSTHROUGH,
        DOWNLINK_PASSTHROUGH,
    ];
}

/// Body of the general responses 0x0001 (terminal) and 0x8001 (platform), §8.1/§8.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GeneralResponse {
    /// Serial number of the message answered.
    pub reply_serial: u16,
    /// ID of the message answered.
    pub reply_id: u16,
    /// 0 success, 1 failure, 2 malformed, 3 unsupported, 4 alarm confirmed (0x8001 only).
    pub result: u8,
}

/// Terminal registration 0x0100 (§8.5). Field widths differ per edition:
/// maker/model/terminal ID are `BYTE[5]`/`[8]`/`[7]` in 2011, `[5]`/`[20]`/`[7]` in 2013,
/// `[11]`/`[30]`/`[30]` in 2019.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Register {
    /// Province ID (GB/T 2260 first two digits).
    pub province: u16,
    /// City or county ID (GB/T 2260 last four digits).
    pub city: u16,
    /// Manufacturer ID.
    pub maker: String,
    /// Terminal model.
    pub model: String,
    /// Terminal ID.
    pub terminal_id: String,
    /// Plate colour (JT/T 697.7); 0 when the vehicle has no plate yet.
    pub plate_color: u8,
    /// Plate number (GBK, e.g. 津A12345) or VIN when `plate_color` is 0.
    pub plate: String,
}

/// Body length of a 2013 registration without plate: below it a non-2019 0x0100 is read
/// as 2011.
const REGISTER_2013_FIXED: usize = 2 + 2 + 5 + 20 + 7 + 1;

fn register_widths(v: Version) -> (usize, usize, usize) {
    match v {
        Version::V2011 => (5, 8, 7),
        Version::V2013 => (5, 20, 7),
        Version::V2019 => (11, 30, 30),
    }
}

/// Registration reply 0x8100 (§8.6).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RegisterResponse {
    /// Serial of the 0x0100 answered.
    pub reply_serial: u16,
    /// 0 success, 1 vehicle registered, 2 no such vehicle, 3 terminal registered, 4 no such terminal.
    pub result: u8,
    /// Authentication code, present on success (empty otherwise).
    pub auth_code: String,
}

/// Authentication 0x0102 (§8.8).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Authenticate {
    /// Authentication code.
    pub auth_code: String,
    /// 2019 only: IMEI (`BYTE[15]`) and software version (`BYTE[20]`).
    pub v2019: Option<AuthExtension>,
}

/// The fields 2019 added to 0x0102.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AuthExtension {
    /// Terminal IMEI.
    pub imei: String,
    /// Software version.
    pub software_version: String,
}

/// One terminal parameter (§8.10 table 11); the value is kept as sent, its type
/// depends on the ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Parameter {
    /// Parameter ID.
    pub id: u32,
    /// Raw value.
    pub value: Vec<u8>,
}

impl Parameter {
    /// The value as a DWORD, WORD or BYTE, if it has one of those widths.
    pub fn as_u32(&self) -> Option<u32> {
        match *self.value.as_slice() {
            [a, b, c, d] => Some(u32::from_be_bytes([a, b, c, d])),
            [a, b] => Some(u32::from(u16::from_be_bytes([a, b]))),
            [a] => Some(u32::from(a)),
            _ => None,
        }
    }

    /// The value as GBK text.
    pub fn as_text(&self) -> String {
        crate::wire::gbk_decode(&self.value)
    }

    /// A `STRING` parameter: `text` in GBK, at most 255 bytes (the length is a BYTE).
    pub fn text(id: u32, text: &str) -> Result<Self> {
        let bytes = crate::wire::gbk_encode(text, "parameters.value")?;
        count_u8(bytes.len(), "parameters.value")?;
        Ok(Self { id, value: bytes.into_owned() })
    }
}

fn read_params(r: &mut Reader<'_>) -> Result<Vec<Parameter>> {
    let n = r.u8("parameters.count")?;
    let mut out = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let id = r.u32("parameters.id")?;
        let len = r.u8("parameters.length")?;
        out.push(Parameter { id, value: r.bytes(usize::from(len), "parameters.value")?.to_vec() });
    }
    Ok(out)
}

fn write_params(params: &[Parameter], out: &mut Vec<u8>) -> Result<()> {
    out.put_u8(count_u8(params.len(), "parameters.count")?);
    for p in params {
        out.put_u32(p.id);
        out.put_u8(count_u8(p.value.len(), "parameters.value")?);
        out.put(&p.value);
    }
    Ok(())
}

/// Terminal attributes 0x0107 (§8.15).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Attributes {
    /// Terminal type bits.
    pub terminal_type: u16,
    /// Manufacturer ID (`BYTE[5]`; unlike 0x0100, 2019 keeps five bytes here).
    pub maker: String,
    /// Model (`BYTE[20]`, 2019 `BYTE[30]`).
    pub model: String,
    /// Terminal ID (`BYTE[7]`, 2019 `BYTE[30]`).
    pub terminal_id: String,
    /// SIM ICCID, 20 digits (`BCD[10]`).
    pub iccid: String,
    /// Hardware version.
    pub hardware_version: String,
    /// Firmware version.
    pub firmware_version: String,
    /// GNSS module bits (GPS, BeiDou, GLONASS, Galileo).
    pub gnss: u8,
    /// Communication module bits.
    pub comm: u8,
}

/// Text message 0x8300 (§8.24); 2019 adds the text type byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TextMessage {
    /// Flag bits (emergency, display, TTS, …).
    pub flags: u8,
    /// 2019 only: 1 notice, 2 service.
    pub text_type: Option<u8>,
    /// GBK text.
    pub text: String,
}

/// One phone book entry of 0x8401 (§8.29).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Contact {
    /// 1 incoming, 2 outgoing, 3 both.
    pub flag: u8,
    /// Number.
    pub phone: String,
    /// Name.
    pub name: String,
}

/// Driver identity report 0x0702 (§8.47).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DriverIdentity {
    /// 1 card inserted, 2 card removed.
    pub status: u8,
    /// Time of insertion or removal.
    pub time: Option<UtcTime>,
    /// IC card read result (present with status 1): 0 success.
    pub read_result: Option<u8>,
    /// Card contents (present when the read succeeded).
    pub card: Option<DriverCard>,
}

/// Contents of a driver's IC card.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DriverCard {
    /// Driver name.
    pub name: String,
    /// Qualification certificate code (`BYTE[20]`).
    pub certificate: String,
    /// Issuing authority.
    pub issuer: String,
    /// Certificate validity, BCD YYYYMMDD digits.
    pub valid_until: [u8; 4],
    /// 2019: ID card number (`BYTE[20]`).
    pub id_card: Option<String>,
}

/// Batch of locations 0x0704 (§8.48).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct LocationBatch {
    /// 0 normal batch, 1 blind-area back-fill.
    pub kind: u8,
    /// Locations, each with its additional items.
    pub locations: Vec<Location>,
}

/// CAN bus data 0x0705 (§8.49).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CanData {
    /// Reception time of the first frame, BCD hh mm ss msms.
    pub receive_time: [u8; 5],
    /// CAN frames.
    pub frames: Vec<CanFrame>,
}

/// One CAN frame of 0x0705.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CanFrame {
    /// Bit 31 channel, 30 frame type, 29 collection mode, 0–28 CAN ID.
    pub id: u32,
    /// Data.
    pub data: [u8; 8],
}

/// Multimedia event 0x0800 (§8.50).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MultimediaEvent {
    /// Media ID.
    pub media_id: u32,
    /// 0 image, 1 audio, 2 video.
    pub media_type: u8,
    /// 0 JPEG, 1 TIF, 2 MP3, 3 WAV, 4 WMV.
    pub format: u8,
    /// Triggering event.
    pub event: u8,
    /// Channel ID.
    pub channel: u8,
}

/// Multimedia data upload 0x0801 (§8.51).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MultimediaUpload {
    /// Media description.
    pub event: MultimediaEvent,
    /// Basic location at capture time.
    pub fix: LocationFix,
    /// Media data packet.
    pub data: Vec<u8>,
}

/// A JT/T 808 message body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// 0x0001 terminal general response.
    TerminalResponse(GeneralResponse),
    /// 0x8001 platform general response.
    PlatformResponse(GeneralResponse),
    /// 0x0002 heartbeat.
    Heartbeat,
    /// 0x0003 logout.
    Logout,
    /// 0x0004 server time request (2019).
    ServerTimeRequest,
    /// 0x8004 server time reply (2019), `BCD[6]` in UTC.
    ServerTimeResponse {
        /// Server time.
        time: Option<UtcTime>,
    },
    /// 0x8003 request to resend sub-packages.
    ResendRequest {
        /// Serial of the first packet of the original message.
        first_serial: u16,
        /// Indices (1-based) of the packets to resend; the count is a BYTE in 2013, a WORD in 2019.
        packet_ids: Vec<u16>,
    },
    /// 0x0100 registration.
    Register(Register),
    /// 0x8100 registration reply.
    RegisterResponse(RegisterResponse),
    /// 0x0102 authentication.
    Authenticate(Authenticate),
    /// 0x8103 set terminal parameters.
    SetParameters(Vec<Parameter>),
    /// 0x8104 query all parameters.
    QueryAllParameters,
    /// 0x0104 parameters reply.
    ParametersResponse {
        /// Serial of the query answered.
        reply_serial: u16,
        /// Parameters.
        parameters: Vec<Parameter>,
    },
    /// 0x8105 terminal control.
    TerminalControl {
        /// Command word.
        command: u8,
        /// Command parameters, `;`-separated GBK text.
        parameters: String,
    },
    /// 0x8106 query given parameters.
    QueryParameters(Vec<u32>),
    /// 0x8107 query terminal attributes.
    QueryAttributes,
    /// 0x0107 terminal attributes.
    Attributes(Attributes),
    /// 0x0108 upgrade result.
    UpgradeResult {
        /// 0 terminal, 12 IC card reader, 52 BeiDou module.
        kind: u8,
        /// 0 success, 1 failure, 2 cancelled.
        result: u8,
    },
    /// 0x0200 location report.
    Location(Location),
    /// 0x8201 location query.
    QueryLocation,
    /// 0x0201 location query reply.
    LocationResponse {
        /// Serial of the 0x8201 answered.
        reply_serial: u16,
        /// Location.
        location: Location,
    },
    /// 0x8202 temporary tracking.
    TemporaryTracking {
        /// Report interval, s (0 stops tracking).
        interval_s: u16,
        /// Validity, s.
        validity_s: u32,
    },
    /// 0x8203 manual alarm confirmation.
    ConfirmAlarm {
        /// Serial of the alarm report (0 for all).
        alarm_serial: u16,
        /// Alarms confirmed.
        alarms: AlarmFlags,
    },
    /// 0x8204 link check (2019).
    LinkCheck,
    /// 0x8300 text message.
    TextMessage(TextMessage),
    /// 0x8400 call back. Trailing 0x00 padding of the number is dropped.
    CallBack {
        /// 0 normal call, 1 monitoring.
        monitor: u8,
        /// Number to call.
        phone: String,
    },
    /// 0x8401 set phone book.
    SetPhonebook {
        /// 0 delete all, 1 replace, 2 append, 3 modify.
        kind: u8,
        /// Entries.
        contacts: Vec<Contact>,
    },
    /// 0x8600 set circular areas.
    SetCircleAreas(SetAreas<CircleArea>),
    /// 0x8601 delete circular areas (empty: all).
    DeleteCircleAreas(Vec<u32>),
    /// 0x8602 set rectangular areas.
    SetRectangleAreas(SetAreas<RectangleArea>),
    /// 0x8603 delete rectangular areas.
    DeleteRectangleAreas(Vec<u32>),
    /// 0x8604 set a polygonal area.
    SetPolygonArea(PolygonArea),
    /// 0x8605 delete polygonal areas.
    DeletePolygonAreas(Vec<u32>),
    /// 0x8606 set a route.
    SetRoute(Route),
    /// 0x8607 delete routes.
    DeleteRoutes(Vec<u32>),
    /// 0x0702 driver identity.
    DriverIdentity(DriverIdentity),
    /// 0x0704 batch of locations.
    LocationBatch(LocationBatch),
    /// 0x0705 CAN data.
    CanData(CanData),
    /// 0x0800 multimedia event.
    MultimediaEvent(MultimediaEvent),
    /// 0x0801 multimedia upload.
    MultimediaUpload(MultimediaUpload),
    /// 0x8800 multimedia upload reply.
    MultimediaUploadResponse {
        /// Media ID.
        media_id: u32,
        /// Packet IDs to retransmit (empty: all received).
        retransmit: Vec<u16>,
    },
    /// 0x0900 uplink pass-through.
    UplinkPassthrough {
        /// Pass-through type.
        kind: u8,
        /// Content.
        data: Vec<u8>,
    },
    /// 0x8900 downlink pass-through.
    DownlinkPassthrough {
        /// Pass-through type.
        kind: u8,
        /// Content.
        data: Vec<u8>,
    },
    /// Any other ID, or an encrypted body: kept as received.
    Raw {
        /// Message ID.
        msg_id: u16,
        /// Body bytes.
        body: Vec<u8>,
    },
}

/// The edition a body follows: the header's, except that a short non-2019 0x0100 is 2011.
pub fn body_version(msg_id: u16, header_version: Version, body_len: usize) -> Version {
    match header_version {
        Version::V2019 => Version::V2019,
        _ if msg_id == ids::REGISTER && body_len < REGISTER_2013_FIXED => Version::V2011,
        Version::V2011 if msg_id == ids::REGISTER => Version::V2011,
        _ => Version::V2013,
    }
}

fn read_bcd_time(r: &mut Reader<'_>, f: &crate::time::Fields, field: &'static str) -> Result<Option<UtcTime>> {
    UtcTime::from_bcd_gmt8(r.array(field)?, f)
}

fn read_bcd_digits<const N: usize>(r: &mut Reader<'_>, field: &'static str) -> Result<[u8; N]> {
    let raw: [u8; N] = r.array(field)?;
    for b in raw {
        bcd_byte(b, field)?;
    }
    Ok(raw)
}

fn write_bcd_digits(raw: &[u8], field: &'static str, out: &mut Vec<u8>) -> Result<()> {
    for &b in raw {
        bcd_byte(b, field)?;
    }
    out.put(raw);
    Ok(())
}

fn iccid_from_bcd(raw: [u8; 10]) -> String {
    raw.iter().map(|b| format!("{:x}{:x}", b >> 4, b & 0xf)).collect()
}

fn iccid_to_bcd(s: &str) -> Result<[u8; 10]> {
    let d = s.as_bytes();
    if d.len() > 20 {
        return Err(Error::FieldTooLong { field: "attributes.iccid", len: d.len(), max: 20 });
    }
    if !d.iter().all(u8::is_ascii_digit) {
        return Err(Error::InvalidBcd { field: "attributes.iccid" });
    }
    let mut nib = [0u8; 20];
    for (i, c) in d.iter().enumerate() {
        nib[20 - d.len() + i] = c - b'0';
    }
    let mut out = [0u8; 10];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nib[2 * i] << 4) | nib[2 * i + 1];
    }
    Ok(out)
}

impl Message {
    /// The message ID this body goes with.
    pub fn msg_id(&self) -> u16 {
        use ids::*;
        match self {
            Self::TerminalResponse(_) => TERMINAL_RESPONSE,
            Self::PlatformResponse(_) => PLATFORM_RESPONSE,
            Self::Heartbeat => HEARTBEAT,
            Self::Logout => LOGOUT,
            Self::ServerTimeRequest => SERVER_TIME_REQUEST,
            Self::ServerTimeResponse { .. } => SERVER_TIME_RESPONSE,
            Self::ResendRequest { .. } => RESEND_REQUEST,
            Self::Register(_) => REGISTER,
            Self::RegisterResponse(_) => REGISTER_RESPONSE,
            Self::Authenticate(_) => AUTHENTICATE,
            Self::SetParameters(_) => SET_PARAMETERS,
            Self::QueryAllParameters => QUERY_ALL_PARAMETERS,
            Self::ParametersResponse { .. } => PARAMETERS_RESPONSE,
            Self::TerminalControl { .. } => TERMINAL_CONTROL,
            Self::QueryParameters(_) => QUERY_PARAMETERS,
            Self::QueryAttributes => QUERY_ATTRIBUTES,
            Self::Attributes(_) => ATTRIBUTES,
            Self::UpgradeResult { .. } => UPGRADE_RESULT,
            Self::Location(_) => LOCATION,
            Self::QueryLocation => QUERY_LOCATION,
            Self::LocationResponse { .. } => LOCATION_RESPONSE,
            Self::TemporaryTracking { .. } => TEMPORARY_TRACKING,
            Self::ConfirmAlarm { .. } => CONFIRM_ALARM,
            Self::LinkCheck => LINK_CHECK,
            Self::TextMessage(_) => TEXT_MESSAGE,
            Self::CallBack { .. } => CALL_BACK,
            Self::SetPhonebook { .. } => SET_PHONEBOOK,
            Self::SetCircleAreas(_) => SET_CIRCLE_AREAS,
            Self::DeleteCircleAreas(_) => DELETE_CIRCLE_AREAS,
            Self::SetRectangleAreas(_) => SET_RECTANGLE_AREAS,
            Self::DeleteRectangleAreas(_) => DELETE_RECTANGLE_AREAS,
            Self::SetPolygonArea(_) => SET_POLYGON_AREA,
            Self::DeletePolygonAreas(_) => DELETE_POLYGON_AREAS,
            Self::SetRoute(_) => SET_ROUTE,
            Self::DeleteRoutes(_) => DELETE_ROUTES,
            Self::DriverIdentity(_) => DRIVER_IDENTITY,
            Self::LocationBatch(_) => LOCATION_BATCH,
            Self::CanData(_) => CAN_DATA,
            Self::MultimediaEvent(_) => MULTIMEDIA_EVENT,
            Self::MultimediaUpload(_) => MULTIMEDIA_UPLOAD,
            Self::MultimediaUploadResponse { .. } => MULTIMEDIA_UPLOAD_RESPONSE,
            Self::UplinkPassthrough { .. } => UPLINK_PASSTHROUGH,
            Self::DownlinkPassthrough { .. } => DOWNLINK_PASSTHROUGH,
            Self::Raw { msg_id, .. } => *msg_id,
        }
    }

    /// Decodes a body of message `msg_id` in edition `v` (see [`body_version`]).
    pub fn decode(msg_id: u16, v: Version, body: &[u8]) -> Result<Self> {
        use ids::*;
        let mut r = Reader::new(body);
        let r = &mut r;
        let v19 = v == Version::V2019;
        let general = |r: &mut Reader<'_>| -> Result<GeneralResponse> {
            Ok(GeneralResponse {
                reply_serial: r.u16("response.reply_serial")?,
                reply_id: r.u16("response.reply_id")?,
                result: r.u8("response.result")?,
            })
        };
        let msg = match msg_id {
            TERMINAL_RESPONSE => Self::TerminalResponse(general(r)?),
            PLATFORM_RESPONSE => Self::PlatformResponse(general(r)?),
            HEARTBEAT => Self::Heartbeat,
            LOGOUT => Self::Logout,
            SERVER_TIME_REQUEST => Self::ServerTimeRequest,
            SERVER_TIME_RESPONSE => Self::ServerTimeResponse {
                time: UtcTime::from_bcd_utc(r.array("server_time")?, fields!("server_time"))?,
            },
            RESEND_REQUEST => {
                let first_serial = r.u16("resend.first_serial")?;
                let n = if v19 { r.u16("resend.count")? } else { u16::from(r.u8("resend.count")?) };
                let mut packet_ids = Vec::with_capacity(usize::from(n).min(r.remaining() / 2));
                for _ in 0..n {
                    packet_ids.push(r.u16("resend.packet_ids")?);
                }
                Self::ResendRequest { first_serial, packet_ids }
            }
            REGISTER => {
                let (wm, wmo, wid) = register_widths(v);
                Self::Register(Register {
                    province: r.u16("register.province")?,
                    city: r.u16("register.city")?,
                    maker: r.padded(wm, "register.maker")?,
                    model: r.padded(wmo, "register.model")?,
                    terminal_id: r.padded(wid, "register.terminal_id")?,
                    plate_color: r.u8("register.plate_color")?,
                    plate: r.gbk_rest(),
                })
            }
            REGISTER_RESPONSE => Self::RegisterResponse(RegisterResponse {
                reply_serial: r.u16("register_response.reply_serial")?,
                result: r.u8("register_response.result")?,
                auth_code: r.gbk_rest(),
            }),
            AUTHENTICATE if v19 => Self::Authenticate(Authenticate {
                auth_code: r.gbk_u8("authenticate.auth_code")?,
                v2019: Some(AuthExtension {
                    imei: r.padded(15, "authenticate.imei")?,
                    software_version: r.padded(20, "authenticate.software_version")?,
                }),
            }),
            AUTHENTICATE => Self::Authenticate(Authenticate { auth_code: r.gbk_rest(), v2019: None }),
            SET_PARAMETERS => Self::SetParameters(read_params(r)?),
            QUERY_ALL_PARAMETERS => Self::QueryAllParameters,
            PARAMETERS_RESPONSE => Self::ParametersResponse {
                reply_serial: r.u16("parameters_response.reply_serial")?,
                parameters: read_params(r)?,
            },
            TERMINAL_CONTROL => {
                Self::TerminalControl { command: r.u8("terminal_control.command")?, parameters: r.gbk_rest() }
            }
            QUERY_PARAMETERS => {
                let n = r.u8("query_parameters.count")?;
                let mut list = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    list.push(r.u32("query_parameters.id")?);
                }
                Self::QueryParameters(list)
            }
            QUERY_ATTRIBUTES => Self::QueryAttributes,
            ATTRIBUTES => {
                let (wm, wmo, wid) = if v19 { (5, 30, 30) } else { (5, 20, 7) };
                Self::Attributes(Attributes {
                    terminal_type: r.u16("attributes.terminal_type")?,
                    maker: r.padded(wm, "attributes.maker")?,
                    model: r.padded(wmo, "attributes.model")?,
                    terminal_id: r.padded(wid, "attributes.terminal_id")?,
                    iccid: iccid_from_bcd(read_bcd_digits::<10>(r, "attributes.iccid")?),
                    hardware_version: r.gbk_u8("attributes.hardware_version")?,
                    firmware_version: r.gbk_u8("attributes.firmware_version")?,
                    gnss: r.u8("attributes.gnss")?,
                    comm: r.u8("attributes.comm")?,
                })
            }
            UPGRADE_RESULT => Self::UpgradeResult { kind: r.u8("upgrade.kind")?, result: r.u8("upgrade.result")? },
            LOCATION => Self::Location(Location::read(r)?),
            QUERY_LOCATION => Self::QueryLocation,
            LOCATION_RESPONSE => Self::LocationResponse {
                reply_serial: r.u16("location_response.reply_serial")?,
                location: Location::read(r)?,
            },
            TEMPORARY_TRACKING => Self::TemporaryTracking {
                interval_s: r.u16("tracking.interval")?,
                validity_s: r.u32("tracking.validity")?,
            },
            CONFIRM_ALARM => Self::ConfirmAlarm {
                alarm_serial: r.u16("confirm_alarm.serial")?,
                alarms: AlarmFlags::from_bits_retain(r.u32("confirm_alarm.alarms")?),
            },
            LINK_CHECK => Self::LinkCheck,
            TEXT_MESSAGE => Self::TextMessage(TextMessage {
                flags: r.u8("text.flags")?,
                text_type: if v19 { Some(r.u8("text.type")?) } else { None },
                text: r.gbk_rest(),
            }),
            CALL_BACK => Self::CallBack { monitor: r.u8("call_back.flag")?, phone: r.gbk_rest_trimmed() },
            SET_PHONEBOOK => {
                let kind = r.u8("phonebook.kind")?;
                let n = r.u8("phonebook.count")?;
                let mut contacts = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    contacts.push(Contact {
                        flag: r.u8("phonebook.flag")?,
                        phone: r.gbk_u8("phonebook.phone")?,
                        name: r.gbk_u8("phonebook.name")?,
                    });
                }
                Self::SetPhonebook { kind, contacts }
            }
            SET_CIRCLE_AREAS => Self::SetCircleAreas(SetAreas::read(r, v)?),
            DELETE_CIRCLE_AREAS => Self::DeleteCircleAreas(read_ids(r)?),
            SET_RECTANGLE_AREAS => Self::SetRectangleAreas(SetAreas::read(r, v)?),
            DELETE_RECTANGLE_AREAS => Self::DeleteRectangleAreas(read_ids(r)?),
            SET_POLYGON_AREA => Self::SetPolygonArea(PolygonArea::read(r, v)?),
            DELETE_POLYGON_AREAS => Self::DeletePolygonAreas(read_ids(r)?),
            SET_ROUTE => Self::SetRoute(Route::read(r, v)?),
            DELETE_ROUTES => Self::DeleteRoutes(read_ids(r)?),
            DRIVER_IDENTITY => {
                let status = r.u8("driver.status")?;
                let time = read_bcd_time(r, fields!("driver.time"), "driver.time")?;
                let read_result = if r.is_empty() { None } else { Some(r.u8("driver.read_result")?) };
                let card = if read_result == Some(0) && !r.is_empty() {
                    Some(DriverCard {
                        name: r.gbk_u8("driver.name")?,
                        certificate: r.padded(20, "driver.certificate")?,
                        issuer: r.gbk_u8("driver.issuer")?,
                        valid_until: read_bcd_digits::<4>(r, "driver.valid_until")?,
                        id_card: if v19 && r.remaining() >= 20 { Some(r.padded(20, "driver.id_card")?) } else { None },
                    })
                } else {
                    None
                };
                Self::DriverIdentity(DriverIdentity { status, time, read_result, card })
            }
            LOCATION_BATCH => {
                let n = r.u16("location_batch.count")?;
                let kind = r.u8("location_batch.kind")?;
                let mut locations = Vec::with_capacity(usize::from(n).min(r.remaining() / 30));
                for _ in 0..n {
                    let len = r.u16("location_batch.length")?;
                    let item = r.bytes(usize::from(len), "location_batch.location")?;
                    locations.push(Location::read(&mut Reader::new(item))?);
                }
                Self::LocationBatch(LocationBatch { kind, locations })
            }
            CAN_DATA => {
                let n = r.u16("can.count")?;
                let receive_time = read_bcd_digits::<5>(r, "can.receive_time")?;
                let mut frames = Vec::with_capacity(usize::from(n).min(r.remaining() / 12));
                for _ in 0..n {
                    frames.push(CanFrame { id: r.u32("can.id")?, data: r.array("can.data")? });
                }
                Self::CanData(CanData { receive_time, frames })
            }
            MULTIMEDIA_EVENT => Self::MultimediaEvent(read_media(r)?),
            MULTIMEDIA_UPLOAD => Self::MultimediaUpload(MultimediaUpload {
                event: read_media(r)?,
                fix: LocationFix::read(r)?,
                data: r.rest().to_vec(),
            }),
            MULTIMEDIA_UPLOAD_RESPONSE => {
                let media_id = r.u32("multimedia_response.media_id")?;
                let mut retransmit = Vec::new();
                if !r.is_empty() {
                    let n = r.u8("multimedia_response.count")?;
                    for _ in 0..n {
                        retransmit.push(r.u16("multimedia_response.ids")?);
                    }
                }
                Self::MultimediaUploadResponse { media_id, retransmit }
            }
            UPLINK_PASSTHROUGH => Self::UplinkPassthrough { kind: r.u8("passthrough.kind")?, data: r.rest().to_vec() },
            DOWNLINK_PASSTHROUGH => {
                Self::DownlinkPassthrough { kind: r.u8("passthrough.kind")?, data: r.rest().to_vec() }
            }
            _ => Self::Raw { msg_id, body: body.to_vec() },
        };
        Ok(msg)
    }

    /// Appends the body in edition `v`.
    pub fn encode(&self, v: Version, out: &mut Vec<u8>) -> Result<()> {
        let v19 = v == Version::V2019;
        match self {
            Self::TerminalResponse(g) | Self::PlatformResponse(g) => {
                out.put_u16(g.reply_serial);
                out.put_u16(g.reply_id);
                out.put_u8(g.result);
            }
            Self::Heartbeat
            | Self::Logout
            | Self::ServerTimeRequest
            | Self::QueryAllParameters
            | Self::QueryAttributes
            | Self::QueryLocation
            | Self::LinkCheck => {}
            Self::ServerTimeResponse { time } => out.put(&UtcTime::to_bcd_utc(*time, fields!("server_time"))?),
            Self::ResendRequest { first_serial, packet_ids } => {
                out.put_u16(*first_serial);
                if v19 {
                    out.put_u16(count_u16(packet_ids.len(), "resend.count")?);
                } else {
                    out.put_u8(count_u8(packet_ids.len(), "resend.count")?);
                }
                for id in packet_ids {
                    out.put_u16(*id);
                }
            }
            Self::Register(m) => {
                let (wm, wmo, wid) = register_widths(v);
                out.put_u16(m.province);
                out.put_u16(m.city);
                out.put_padded(&m.maker, wm, "register.maker")?;
                out.put_padded(&m.model, wmo, "register.model")?;
                out.put_padded(&m.terminal_id, wid, "register.terminal_id")?;
                out.put_u8(m.plate_color);
                out.put_gbk(&m.plate, "register.plate")?;
            }
            Self::RegisterResponse(m) => {
                out.put_u16(m.reply_serial);
                out.put_u8(m.result);
                out.put_gbk(&m.auth_code, "register_response.auth_code")?;
            }
            Self::Authenticate(m) => match (&m.v2019, v19) {
                (ext, true) => {
                    out.put_gbk_u8(&m.auth_code, "authenticate.auth_code")?;
                    let ext = ext.clone().unwrap_or_default();
                    out.put_padded(&ext.imei, 15, "authenticate.imei")?;
                    out.put_padded(&ext.software_version, 20, "authenticate.software_version")?;
                }
                (_, false) => out.put_gbk(&m.auth_code, "authenticate.auth_code")?,
            },
            Self::SetParameters(p) => write_params(p, out)?,
            Self::ParametersResponse { reply_serial, parameters } => {
                out.put_u16(*reply_serial);
                write_params(parameters, out)?;
            }
            Self::TerminalControl { command, parameters } => {
                out.put_u8(*command);
                out.put_gbk(parameters, "terminal_control.parameters")?;
            }
            Self::QueryParameters(list) => {
                out.put_u8(count_u8(list.len(), "query_parameters.count")?);
                for id in list {
                    out.put_u32(*id);
                }
            }
            Self::Attributes(a) => {
                let (wm, wmo, wid) = if v19 { (5, 30, 30) } else { (5, 20, 7) };
                out.put_u16(a.terminal_type);
                out.put_padded(&a.maker, wm, "attributes.maker")?;
                out.put_padded(&a.model, wmo, "attributes.model")?;
                out.put_padded(&a.terminal_id, wid, "attributes.terminal_id")?;
                out.put(&iccid_to_bcd(&a.iccid)?);
                out.put_gbk_u8(&a.hardware_version, "attributes.hardware_version")?;
                out.put_gbk_u8(&a.firmware_version, "attributes.firmware_version")?;
                out.put_u8(a.gnss);
                out.put_u8(a.comm);
            }
            Self::UpgradeResult { kind, result } => {
                out.put_u8(*kind);
                out.put_u8(*result);
            }
            Self::Location(l) => l.write(out)?,
            Self::LocationResponse { reply_serial, location } => {
                out.put_u16(*reply_serial);
                location.write(out)?;
            }
            Self::TemporaryTracking { interval_s, validity_s } => {
                out.put_u16(*interval_s);
                out.put_u32(*validity_s);
            }
            Self::ConfirmAlarm { alarm_serial, alarms } => {
                out.put_u16(*alarm_serial);
                out.put_u32(alarms.bits());
            }
            Self::TextMessage(t) => {
                out.put_u8(t.flags);
                if v19 {
                    out.put_u8(t.text_type.unwrap_or(1));
                }
                out.put_gbk(&t.text, "text.text")?;
            }
            Self::CallBack { monitor, phone } => {
                out.put_u8(*monitor);
                out.put_gbk(phone, "call_back.phone")?;
            }
            Self::SetPhonebook { kind, contacts } => {
                out.put_u8(*kind);
                out.put_u8(count_u8(contacts.len(), "phonebook.count")?);
                for c in contacts {
                    out.put_u8(c.flag);
                    out.put_gbk_u8(&c.phone, "phonebook.phone")?;
                    out.put_gbk_u8(&c.name, "phonebook.name")?;
                }
            }
            Self::SetCircleAreas(a) => a.write(v, out)?,
            Self::SetRectangleAreas(a) => a.write(v, out)?,
            Self::SetPolygonArea(a) => a.write(v, out)?,
            Self::SetRoute(a) => a.write(v, out)?,
            Self::DeleteCircleAreas(ids)
            | Self::DeleteRectangleAreas(ids)
            | Self::DeletePolygonAreas(ids)
            | Self::DeleteRoutes(ids) => write_ids(ids, out)?,
            Self::DriverIdentity(d) => {
                out.put_u8(d.status);
                out.put(&UtcTime::to_bcd_gmt8(d.time, fields!("driver.time"))?);
                if let Some(res) = d.read_result {
                    out.put_u8(res);
                    if let (0, Some(c)) = (res, &d.card) {
                        out.put_gbk_u8(&c.name, "driver.name")?;
                        out.put_padded(&c.certificate, 20, "driver.certificate")?;
                        out.put_gbk_u8(&c.issuer, "driver.issuer")?;
                        write_bcd_digits(&c.valid_until, "driver.valid_until", out)?;
                        if let (true, Some(id)) = (v19, &c.id_card) {
                            out.put_padded(id, 20, "driver.id_card")?;
                        }
                    }
                }
            }
            Self::LocationBatch(b) => {
                out.put_u16(count_u16(b.locations.len(), "location_batch.count")?);
                out.put_u8(b.kind);
                for l in &b.locations {
                    let at = out.len();
                    out.put_u16(0);
                    l.write(out)?;
                    let len = count_u16(out.len() - at - 2, "location_batch.length")?;
                    out[at..at + 2].copy_from_slice(&len.to_be_bytes());
                }
            }
            Self::CanData(c) => {
                out.put_u16(count_u16(c.frames.len(), "can.count")?);
                write_bcd_digits(&c.receive_time, "can.receive_time", out)?;
                for f in &c.frames {
                    out.put_u32(f.id);
                    out.put(&f.data);
                }
            }
            Self::MultimediaEvent(e) => write_media(e, out),
            Self::MultimediaUpload(m) => {
                write_media(&m.event, out);
                m.fix.write(out)?;
                out.put(&m.data);
            }
            Self::MultimediaUploadResponse { media_id, retransmit } => {
                out.put_u32(*media_id);
                if !retransmit.is_empty() {
                    out.put_u8(count_u8(retransmit.len(), "multimedia_response.count")?);
                    for id in retransmit {
                        out.put_u16(*id);
                    }
                }
            }
            Self::UplinkPassthrough { kind, data } | Self::DownlinkPassthrough { kind, data } => {
                out.put_u8(*kind);
                out.put(data);
            }
            Self::Raw { body, .. } => out.put(body),
        }
        Ok(())
    }
}

fn read_media(r: &mut Reader<'_>) -> Result<MultimediaEvent> {
    Ok(MultimediaEvent {
        media_id: r.u32("multimedia.media_id")?,
        media_type: r.u8("multimedia.type")?,
        format: r.u8("multimedia.format")?,
        event: r.u8("multimedia.event")?,
        channel: r.u8("multimedia.channel")?,
    })
}

fn write_media(e: &MultimediaEvent, out: &mut Vec<u8>) {
    out.put_u32(e.media_id);
    out.put_u8(e.media_type);
    out.put_u8(e.format);
    out.put_u8(e.event);
    out.put_u8(e.channel);
}
