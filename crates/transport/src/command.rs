//! Downlink commands (下发指令) as the monitoring API takes them, checked and turned into JT/T 808
//! bodies before anything is sent: text (0x8300), position query (0x8201), temporary tracking
//! (0x8202), terminal parameters (0x8103 set, 0x8104/0x8106 query, answered by 0x0104) and areas
//! and routes (0x8600–0x8607).
//!
//! [`prepare`] is the one gate: a command that passes it encodes, in the 2013 and the 2019 layout,
//! to a body that fits one packet (1023 bytes), so a bad request is refused with a problem document
//! and never reaches a terminal. The connection then picks the layout of its terminal's edition
//! ([`Prepared::message`]).

use jt808::area::{CircleArea, Point, PolygonArea, RectangleArea, Route, RoutePoint, SetAreas, SpeedLimit, TimeWindow};
use jt808::header::MAX_BODY_LEN;
use jt808::message::{Parameter, TextMessage};
use jt808::time::BcdTime;
use jt808::{Message, UtcTime, Version};
use kernel::error::{ApiError, Code};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa::ToSchema;

/// A command for a terminal (下发指令).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// 0x8300 text (文本信息下发), shown on the terminal's display and, with `tts`, read aloud.
    Text {
        /// 1 to 200 printable characters.
        text: String,
        #[serde(default)]
        tts: bool,
        #[serde(default)]
        emergency: bool,
    },
    /// 0x8201 position query (位置信息查询): the terminal answers with its current position (0x0201).
    QueryLocation,
    /// 0x8202 temporary tracking (临时位置跟踪控制): report every `interval_s` for `validity_s`.
    Track { interval_s: u16, validity_s: u32 },
    /// 0x8103 set terminal parameters (设置终端参数), at most 100 in one command. Each value is
    /// encoded with the type JT/T 808-2019 table 12 gives its ID.
    SetParameters { parameters: Vec<ParameterSetting> },
    /// Query terminal parameters (查询终端参数): all of them (0x8104) when `ids` is absent or
    /// empty, else those (0x8106, at most 255). The terminal answers with 0x0104, returned in
    /// `Delivery.parameters`.
    QueryParameters {
        #[serde(default)]
        ids: Vec<u32>,
    },
    /// 0x8600 set circular areas (设置圆形区域), at most 32 in one command.
    SetCircleAreas {
        #[serde(default)]
        mode: AreaMode,
        areas: Vec<CircleAreaSpec>,
    },
    /// 0x8602 set rectangular areas (设置矩形区域), at most 32 in one command.
    SetRectangleAreas {
        #[serde(default)]
        mode: AreaMode,
        areas: Vec<RectangleAreaSpec>,
    },
    /// 0x8604 set one polygonal area (设置多边形区域).
    SetPolygonArea {
        /// Area ID (区域ID).
        id: u32,
        /// 3 to 120 vertices.
        vertices: Vec<LatLon>,
        /// Name (区域名称), up to 32 characters; sent to 2019 terminals only.
        #[serde(default)]
        name: Option<String>,
        /// Validity start (起始时间), RFC 3339; with `end` or not at all.
        #[serde(default)]
        start: Option<String>,
        /// Validity end (结束时间), RFC 3339, after `start`.
        #[serde(default)]
        end: Option<String>,
        #[serde(default)]
        speed_limit: Option<SpeedLimitSpec>,
        #[serde(default)]
        flags: Vec<AreaFlag>,
    },
    /// 0x8606 set one route (设置路线); point and segment IDs are the points' positions (1, 2, …).
    SetRoute {
        /// Route ID (路线ID).
        id: u32,
        /// 2 to 50 turning points.
        points: Vec<RoutePointSpec>,
        /// Name (路线名称), up to 32 characters; sent to 2019 terminals only.
        #[serde(default)]
        name: Option<String>,
        /// Validity start (起始时间), RFC 3339; with `end` or not at all.
        #[serde(default)]
        start: Option<String>,
        /// Validity end (结束时间), RFC 3339, after `start`.
        #[serde(default)]
        end: Option<String>,
        #[serde(default)]
        flags: Vec<RouteFlag>,
    },
    /// 0x8601, 0x8603 or 0x8605 delete areas of one shape (删除区域): the given `ids` (at most
    /// 125), or every area of that shape with `all`.
    DeleteAreas {
        shape: AreaShape,
        #[serde(default)]
        ids: Vec<u32>,
        #[serde(default)]
        all: bool,
    },
    /// 0x8607 delete routes (删除路线): the given `ids` (at most 125), or every route with `all`.
    DeleteRoutes {
        #[serde(default)]
        ids: Vec<u32>,
        #[serde(default)]
        all: bool,
    },
}

/// The wire type of a terminal parameter (JT/T 808-2019 §4.2 table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParameterType {
    /// DWORD, 0 to 4294967295.
    Dword,
    /// WORD, 0 to 65535.
    Word,
    /// BYTE, 0 to 255.
    Byte,
    /// STRING, GBK text of at most 255 bytes.
    String,
    /// BYTE[n], given as hexadecimal digits.
    Bytes,
}

impl ParameterType {
    fn name(self) -> &'static str {
        match self {
            Self::Dword => "DWORD",
            Self::Word => "WORD",
            Self::Byte => "BYTE",
            Self::String => "STRING",
            Self::Bytes => "BYTE[n]",
        }
    }
}

/// A parameter value: a number for DWORD, WORD and BYTE parameters, text for STRING ones,
/// hexadecimal digits for BYTE[n] ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ParameterValue {
    Number(u64),
    Text(String),
}

impl<'de> Deserialize<'de> for ParameterValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ParameterValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number of at least 0 or a string")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ParameterValue, E> {
                Ok(ParameterValue::Number(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ParameterValue, E> {
                u64::try_from(v)
                    .map(ParameterValue::Number)
                    .map_err(|_| E::custom(format!("invalid value: {v}, parameter values are not negative")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ParameterValue, E> {
                Err(E::custom(format!("invalid value: {v}, parameter values are whole numbers")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ParameterValue, E> {
                Ok(ParameterValue::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// One parameter to set.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParameterSetting {
    /// Parameter ID (JT/T 808-2019 table 12), e.g. 1 (0x0001) heartbeat interval in s, 41
    /// (0x0029) default report interval in s, 85 (0x0055) highest speed in km/h, 19 (0x0013)
    /// main server address.
    pub id: u32,
    pub value: ParameterValue,
    /// The wire type. Needed for a number whose ID is not in table 12 (0xF000–0xFFFF are the
    /// maker's own); for an ID in the table it must agree with it.
    #[serde(default, rename = "type")]
    pub kind: Option<ParameterType>,
}

/// A parameter as the terminal reported it (0x0104). Read back (from another node's answer)
/// its name comes from the table again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ParameterReading {
    pub id: u32,
    /// The parameter's name, for IDs of JT/T 808-2019 table 12.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
    /// The type the value was read as: an ID outside the table, or a value of a width the table
    /// does not give it, reads as `bytes`.
    #[serde(rename = "type")]
    pub kind: ParameterType,
    pub value: ParameterValue,
}

impl<'de> Deserialize<'de> for ParameterReading {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            id: u32,
            #[serde(rename = "type")]
            kind: ParameterType,
            value: ParameterValue,
        }
        let w = Wire::deserialize(d)?;
        Ok(ParameterReading { id: w.id, name: spec(w.id).map(|k| k.name), kind: w.kind, value: w.value })
    }
}

/// 0x8600/0x8602 setting mode (设置属性).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AreaMode {
    /// 0 update (更新区域): the terminal's areas of this shape are replaced by these.
    Replace,
    /// 1 append (追加区域).
    #[default]
    Append,
    /// 2 modify (修改区域): areas of the same ID are changed.
    Modify,
}

/// The shape of the areas to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AreaShape {
    Circle,
    Rectangle,
    Polygon,
}

/// A point in WGS-84 decimal degrees.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LatLon {
    /// Latitude, −90 to 90.
    pub lat: f64,
    /// Longitude, −180 to 180.
    pub lon: f64,
}

/// A speed limit (限速).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpeedLimitSpec {
    /// Highest speed (最高速度), km/h, at least 1.
    pub max_kmh: u16,
    /// Time over the limit before an alarm (超速持续时间), s.
    pub overspeed_duration_s: u8,
    /// Night-time highest speed (夜间最高速度), km/h; sent to 2019 terminals only.
    #[serde(default)]
    pub night_max_kmh: Option<u16>,
}

/// What an area does (区域属性, JT/T 808-2019 table 61).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AreaFlag {
    /// Bit 2: entering alarms the driver (进区域报警给驾驶员).
    EnterAlarmToDriver,
    /// Bit 3: entering alarms the platform (进区域报警给平台).
    EnterAlarmToPlatform,
    /// Bit 4: leaving alarms the driver (出区域报警给驾驶员).
    ExitAlarmToDriver,
    /// Bit 5: leaving alarms the platform (出区域报警给平台).
    ExitAlarmToPlatform,
    /// Bit 8: doors may not open inside (禁止开门).
    NoDoorOpening,
    /// Bit 14: the communication module is off inside (进区域关闭通信模块).
    CommsOffInside,
    /// Bit 15: detailed GNSS data is collected inside (进区域采集GNSS详细定位数据).
    CollectGnssInside,
}

impl AreaFlag {
    fn bit(self) -> u16 {
        match self {
            Self::EnterAlarmToDriver => 1 << 2,
            Self::EnterAlarmToPlatform => 1 << 3,
            Self::ExitAlarmToDriver => 1 << 4,
            Self::ExitAlarmToPlatform => 1 << 5,
            Self::NoDoorOpening => 1 << 8,
            Self::CommsOffInside => 1 << 14,
            Self::CollectGnssInside => 1 << 15,
        }
    }
}

/// What a route does (路线属性, JT/T 808-2019 table 69).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RouteFlag {
    /// Bit 2: entering the route alarms the driver (进路线报警给驾驶员).
    EnterAlarmToDriver,
    /// Bit 3: entering the route alarms the platform (进路线报警给平台).
    EnterAlarmToPlatform,
    /// Bit 4: leaving the route alarms the driver (出路线报警给驾驶员).
    ExitAlarmToDriver,
    /// Bit 5: leaving the route alarms the platform (出路线报警给平台).
    ExitAlarmToPlatform,
}

impl RouteFlag {
    fn bit(self) -> u16 {
        match self {
            Self::EnterAlarmToDriver => 1 << 2,
            Self::EnterAlarmToPlatform => 1 << 3,
            Self::ExitAlarmToDriver => 1 << 4,
            Self::ExitAlarmToPlatform => 1 << 5,
        }
    }
}

/// A circular area (圆形区域).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CircleAreaSpec {
    /// Area ID (区域ID), the terminal's key for it.
    pub id: u32,
    pub center: LatLon,
    /// Radius, m, at least 1.
    pub radius_m: u32,
    /// Name (区域名称), up to 32 characters; sent to 2019 terminals only.
    #[serde(default)]
    pub name: Option<String>,
    /// Validity start (起始时间), RFC 3339; with `end` or not at all.
    #[serde(default)]
    pub start: Option<String>,
    /// Validity end (结束时间), RFC 3339, after `start`.
    #[serde(default)]
    pub end: Option<String>,
    #[serde(default)]
    pub speed_limit: Option<SpeedLimitSpec>,
    #[serde(default)]
    pub flags: Vec<AreaFlag>,
}

/// A rectangular area (矩形区域), north-up.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RectangleAreaSpec {
    /// Area ID (区域ID).
    pub id: u32,
    /// The north-west corner (左上点).
    pub top_left: LatLon,
    /// The south-east corner (右下点).
    pub bottom_right: LatLon,
    /// Name, up to 32 characters; sent to 2019 terminals only.
    #[serde(default)]
    pub name: Option<String>,
    /// Validity start, RFC 3339; with `end` or not at all.
    #[serde(default)]
    pub start: Option<String>,
    /// Validity end, RFC 3339.
    #[serde(default)]
    pub end: Option<String>,
    #[serde(default)]
    pub speed_limit: Option<SpeedLimitSpec>,
    #[serde(default)]
    pub flags: Vec<AreaFlag>,
}

/// The fields of [`Command::SetPolygonArea`].
struct PolygonAreaSpec {
    id: u32,
    vertices: Vec<LatLon>,
    name: Option<String>,
    start: Option<String>,
    end: Option<String>,
    speed_limit: Option<SpeedLimitSpec>,
    flags: Vec<AreaFlag>,
}

/// The fields of [`Command::SetRoute`].
struct RouteSpec {
    id: u32,
    points: Vec<RoutePointSpec>,
    name: Option<String>,
    start: Option<String>,
    end: Option<String>,
    flags: Vec<RouteFlag>,
}

/// A turning point (拐点) and the segment (路段) from it to the next.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutePointSpec {
    /// Latitude, −90 to 90.
    pub lat: f64,
    /// Longitude, −180 to 180.
    pub lon: f64,
    /// Segment width (路段宽度), m, at least 1.
    pub width_m: u8,
    #[serde(default)]
    pub drive_time: Option<DriveTimeSpec>,
    #[serde(default)]
    pub speed_limit: Option<SpeedLimitSpec>,
}

/// Segment driving time thresholds (路段行驶过长/不足阈值).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DriveTimeSpec {
    /// Longer than this on the segment is too long, s.
    pub too_long_s: u16,
    /// Shorter than this is too short, s; at most `too_long_s`.
    pub too_short_s: u16,
}

/// What the terminal answers a command with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 0x0001.
    General,
    /// 0x0201 (or 0x0001 refusing).
    Location,
    /// 0x0104 (or 0x0001 refusing).
    Parameters,
}

#[derive(Debug, Clone)]
enum Body {
    /// 0x8300: its flag bits differ between editions.
    Text { text: String, tts: bool, emergency: bool },
    /// Every other body: the codec writes the edition's layout.
    Message(Message),
}

/// A command that passed [`prepare`]: it encodes in either edition within one packet.
#[derive(Debug, Clone)]
pub struct Prepared {
    body: Body,
    answer: Answer,
    summary: serde_json::Value,
    /// The command as given, for a node that sends it on to the gateway holding the terminal
    /// (which checks it again).
    source: Command,
}

impl Prepared {
    /// The body for a terminal of edition `v`.
    pub fn message(&self, v: Version) -> Message {
        match &self.body {
            Body::Text { text, tts, emergency } => {
                let v2019 = v == Version::V2019;
                // JT/T 808 table 37/38: bit 2 display, bit 3 TTS; emergency is bit 0 (2013) or the
                // type bits 0-1 = 10 (2019).
                let mut flags = 0x04 | if *tts { 0x08 } else { 0 };
                if *emergency {
                    flags |= if v2019 { 0x02 } else { 0x01 };
                }
                Message::TextMessage(TextMessage { flags, text_type: v2019.then_some(1), text: text.clone() })
            }
            Body::Message(m) => m.clone(),
        }
    }

    /// What the terminal answers with.
    pub fn answer(&self) -> Answer {
        self.answer
    }

    /// What the audit log records of the command (secrets left out).
    pub fn summary(&self) -> &serde_json::Value {
        &self.summary
    }

    /// The command as given.
    pub fn source(&self) -> &Command {
        &self.source
    }
}

const MAX_PARAMETERS: usize = 100;
const MAX_QUERY_IDS: usize = 255;
const MAX_AREAS: usize = 32;
const MAX_VERTICES: usize = 120;
const MAX_ROUTE_POINTS: usize = 50;
/// JT/T 808-2019 §8.37: at most 125 IDs per delete message.
const MAX_DELETE_IDS: usize = 125;
const MAX_NAME_CHARS: usize = 32;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::field(Code::InvalidField, field, message)
}

impl Command {
    /// Whether the command changes the terminal's configuration (parameters, areas, routes) rather
    /// than speaking to the driver or asking for a position: only the owning enterprise may.
    pub fn configures(&self) -> bool {
        !matches!(
            self,
            Command::Text { .. } | Command::QueryLocation | Command::Track { .. } | Command::QueryParameters { .. }
        )
    }
}

/// Checks `cmd` and converts it to codec terms; every refusal is a 422 naming the field.
pub fn prepare(cmd: Command) -> Result<Prepared, ApiError> {
    let source = cmd.clone();
    let (body, answer, summary) = match cmd {
        Command::Text { text, tts, emergency } => {
            if text.trim().is_empty() || text.chars().count() > 200 || text.chars().any(char::is_control) {
                return Err(invalid("text", "1 to 200 printable characters"));
            }
            let what = if tts { "text (TTS)" } else { "text" };
            let summary = serde_json::json!({"command": what, "text": text});
            (Body::Text { text, tts, emergency }, Answer::General, summary)
        }
        Command::QueryLocation => {
            (Body::Message(Message::QueryLocation), Answer::Location, serde_json::json!({"command": "query location"}))
        }
        Command::Track { interval_s, validity_s } => {
            if interval_s == 0 {
                return Err(invalid("interval_s", "at least 1 second"));
            }
            let m = Message::TemporaryTracking { interval_s, validity_s };
            let summary = serde_json::json!({
                "command": "temporary tracking", "interval_s": interval_s, "validity_s": validity_s,
            });
            (Body::Message(m), Answer::General, summary)
        }
        Command::SetParameters { parameters } => {
            if parameters.is_empty() || parameters.len() > MAX_PARAMETERS {
                return Err(invalid("parameters", format!("1 to {MAX_PARAMETERS} parameters")));
            }
            let mut seen = HashSet::new();
            let mut out = Vec::with_capacity(parameters.len());
            let mut audited = serde_json::Map::new();
            for (i, p) in parameters.iter().enumerate() {
                if !seen.insert(p.id) {
                    return Err(invalid(format!("parameters[{i}].id"), format!("{} is given twice", hex_id(p.id))));
                }
                out.push(encode_parameter(p).map_err(|m| invalid(format!("parameters[{i}].value"), m))?);
                let shown = match spec(p.id) {
                    Some(s) if s.secret => serde_json::json!("***"),
                    _ => serde_json::to_value(&p.value).unwrap_or_default(),
                };
                audited.insert(hex_id(p.id), shown);
            }
            let summary = serde_json::json!({"command": "set parameters", "parameters": audited});
            (Body::Message(Message::SetParameters(out)), Answer::General, summary)
        }
        Command::QueryParameters { ids } => {
            if ids.len() > MAX_QUERY_IDS {
                return Err(invalid("ids", format!("at most {MAX_QUERY_IDS} ids")));
            }
            unique("ids", &ids)?;
            let shown: Vec<String> = ids.iter().map(|&i| hex_id(i)).collect();
            let summary = serde_json::json!({"command": "query parameters", "ids": shown});
            let m = if ids.is_empty() { Message::QueryAllParameters } else { Message::QueryParameters(ids) };
            (Body::Message(m), Answer::Parameters, summary)
        }
        Command::SetCircleAreas { mode, areas } => {
            area_count(&areas)?;
            unique("areas", &areas.iter().map(|a| a.id).collect::<Vec<_>>())?;
            let areas =
                areas.iter().enumerate().map(|(i, a)| circle(&format!("areas[{i}]"), a)).collect::<Result<_, _>>()?;
            let set = SetAreas { mode: mode_byte(mode), areas };
            let ids: Vec<u32> = set.areas.iter().map(|a| a.id).collect();
            let summary = serde_json::json!({"command": "set circle areas", "mode": set.mode, "ids": ids});
            (Body::Message(Message::SetCircleAreas(set)), Answer::General, summary)
        }
        Command::SetRectangleAreas { mode, areas } => {
            area_count(&areas)?;
            unique("areas", &areas.iter().map(|a| a.id).collect::<Vec<_>>())?;
            let areas = areas
                .iter()
                .enumerate()
                .map(|(i, a)| rectangle(&format!("areas[{i}]"), a))
                .collect::<Result<_, _>>()?;
            let set = SetAreas { mode: mode_byte(mode), areas };
            let ids: Vec<u32> = set.areas.iter().map(|a| a.id).collect();
            let summary = serde_json::json!({"command": "set rectangle areas", "mode": set.mode, "ids": ids});
            (Body::Message(Message::SetRectangleAreas(set)), Answer::General, summary)
        }
        Command::SetPolygonArea { id, vertices, name, start, end, speed_limit, flags } => {
            let p = polygon(&PolygonAreaSpec { id, vertices, name, start, end, speed_limit, flags })?;
            let summary = serde_json::json!({"command": "set polygon area", "id": p.id, "vertices": p.vertices.len()});
            (Body::Message(Message::SetPolygonArea(p)), Answer::General, summary)
        }
        Command::SetRoute { id, points, name, start, end, flags } => {
            let r = route(&RouteSpec { id, points, name, start, end, flags })?;
            let summary = serde_json::json!({"command": "set route", "id": r.id, "points": r.points.len()});
            (Body::Message(Message::SetRoute(r)), Answer::General, summary)
        }
        Command::DeleteAreas { shape, ids, all } => {
            let ids = delete_ids(ids, all)?;
            let (m, what) = match shape {
                AreaShape::Circle => (Message::DeleteCircleAreas(ids.clone()), "delete circle areas"),
                AreaShape::Rectangle => (Message::DeleteRectangleAreas(ids.clone()), "delete rectangle areas"),
                AreaShape::Polygon => (Message::DeletePolygonAreas(ids.clone()), "delete polygon areas"),
            };
            (Body::Message(m), Answer::General, serde_json::json!({"command": what, "ids": ids, "all": all}))
        }
        Command::DeleteRoutes { ids, all } => {
            let ids = delete_ids(ids, all)?;
            let summary = serde_json::json!({"command": "delete routes", "ids": ids.clone(), "all": all});
            (Body::Message(Message::DeleteRoutes(ids)), Answer::General, summary)
        }
    };
    let p = Prepared { body, answer, summary, source };
    // The one check that covers every limit at once: the body fits one packet in both layouts.
    for v in [Version::V2013, Version::V2019] {
        let mut buf = Vec::new();
        if let Err(e) = p.message(v).encode(v, &mut buf) {
            return Err(ApiError::new(Code::InvalidField, format!("the command cannot be encoded: {e}")));
        }
        if buf.len() > MAX_BODY_LEN {
            let year = if v == Version::V2019 { 2019 } else { 2013 };
            return Err(ApiError::new(
                Code::InvalidField,
                format!(
                    "the command takes {} bytes in the {year} layout, more than the {MAX_BODY_LEN} one JT/T 808 \
                     packet carries: send fewer items or shorter names",
                    buf.len()
                ),
            ));
        }
    }
    Ok(p)
}

fn hex_id(id: u32) -> String {
    format!("0x{id:04X}")
}

fn unique(field: &str, ids: &[u32]) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    for (i, id) in ids.iter().enumerate() {
        if !seen.insert(*id) {
            return Err(invalid(format!("{field}[{i}]"), format!("id {id} is given twice")));
        }
    }
    Ok(())
}

fn area_count<T>(areas: &[T]) -> Result<(), ApiError> {
    if areas.is_empty() || areas.len() > MAX_AREAS {
        return Err(invalid("areas", format!("1 to {MAX_AREAS} areas")));
    }
    Ok(())
}

fn delete_ids(ids: Vec<u32>, all: bool) -> Result<Vec<u32>, ApiError> {
    match (ids.is_empty(), all) {
        // 0 IDs on the wire means all (JT/T 808-2019 §8.37).
        (true, true) => Ok(ids),
        (true, false) => Err(invalid("ids", "name the ids to delete, or set all to delete every one")),
        (false, true) => Err(invalid("all", "either ids or all, not both")),
        (false, false) if ids.len() > MAX_DELETE_IDS => {
            Err(invalid("ids", format!("at most {MAX_DELETE_IDS} ids in one command")))
        }
        (false, false) => {
            unique("ids", &ids)?;
            Ok(ids)
        }
    }
}

fn mode_byte(m: AreaMode) -> u8 {
    match m {
        AreaMode::Replace => 0,
        AreaMode::Append => 1,
        AreaMode::Modify => 2,
    }
}

// ------------------------------------------------------------------ terminal parameters

/// One row of JT/T 808-2019 table 12 (终端参数项定义及说明).
#[derive(Debug, Clone, Copy)]
struct Spec {
    id: u32,
    name: &'static str,
    ty: ParameterType,
    /// BYTE[n]: n.
    len: usize,
    /// Values the standard allows, where it narrows the type's range.
    range: Option<(u32, u32)>,
    /// Never written to the audit log.
    secret: bool,
}

const fn p(id: u32, name: &'static str, ty: ParameterType) -> Spec {
    Spec { id, name, ty, len: 0, range: None, secret: false }
}
const fn ranged(id: u32, name: &'static str, ty: ParameterType, lo: u32, hi: u32) -> Spec {
    Spec { id, name, ty, len: 0, range: Some((lo, hi)), secret: false }
}
const fn secret(id: u32, name: &'static str) -> Spec {
    Spec { id, name, ty: ParameterType::String, len: 0, range: None, secret: true }
}

use ParameterType::{Byte, Dword, String as Str, Word};

/// JT/T 808-2019 table 12 (0x0018/0x0019 as in 2013; 2019 reserves them).
const TABLE: &[Spec] = &[
    p(0x0001, "heartbeat_interval_s", Dword),
    p(0x0002, "tcp_reply_timeout_s", Dword),
    p(0x0003, "tcp_retransmissions", Dword),
    p(0x0004, "udp_reply_timeout_s", Dword),
    p(0x0005, "udp_retransmissions", Dword),
    p(0x0006, "sms_reply_timeout_s", Dword),
    p(0x0007, "sms_retransmissions", Dword),
    p(0x0010, "main_server_apn", Str),
    p(0x0011, "main_server_dial_user", Str),
    secret(0x0012, "main_server_dial_password"),
    p(0x0013, "main_server_address", Str),
    p(0x0014, "backup_server_apn", Str),
    p(0x0015, "backup_server_dial_user", Str),
    secret(0x0016, "backup_server_dial_password"),
    p(0x0017, "backup_server_address", Str),
    p(0x0018, "server_tcp_port", Dword),
    p(0x0019, "server_udp_port", Dword),
    p(0x001A, "ic_auth_main_server_address", Str),
    p(0x001B, "ic_auth_server_tcp_port", Dword),
    p(0x001C, "ic_auth_server_udp_port", Dword),
    p(0x001D, "ic_auth_backup_server_address", Str),
    ranged(0x0020, "report_strategy", Dword, 0, 2),
    ranged(0x0021, "report_scheme", Dword, 0, 1),
    p(0x0022, "no_driver_report_interval_s", Dword),
    p(0x0023, "secondary_server_apn", Str),
    p(0x0024, "secondary_server_dial_user", Str),
    secret(0x0025, "secondary_server_dial_password"),
    p(0x0026, "secondary_server_backup_address", Str),
    p(0x0027, "sleep_report_interval_s", Dword),
    p(0x0028, "emergency_report_interval_s", Dword),
    p(0x0029, "default_report_interval_s", Dword),
    p(0x002C, "default_report_distance_m", Dword),
    p(0x002D, "no_driver_report_distance_m", Dword),
    p(0x002E, "sleep_report_distance_m", Dword),
    p(0x002F, "emergency_report_distance_m", Dword),
    ranged(0x0030, "corner_resend_angle_deg", Dword, 0, 179),
    p(0x0031, "fence_radius_m", Word),
    Spec { id: 0x0032, name: "restricted_driving_hours", ty: ParameterType::Bytes, len: 4, range: None, secret: false },
    p(0x0040, "platform_phone", Str),
    p(0x0041, "reset_phone", Str),
    p(0x0042, "factory_reset_phone", Str),
    p(0x0043, "platform_sms_phone", Str),
    p(0x0044, "alarm_sms_phone", Str),
    ranged(0x0045, "answer_policy", Dword, 0, 1),
    p(0x0046, "max_call_s", Dword),
    p(0x0047, "max_call_per_month_s", Dword),
    p(0x0048, "monitor_phone", Str),
    p(0x0049, "privileged_sms_phone", Str),
    p(0x0050, "alarm_mask", Dword),
    p(0x0051, "alarm_sms_switch", Dword),
    p(0x0052, "alarm_photo_switch", Dword),
    p(0x0053, "alarm_photo_store", Dword),
    p(0x0054, "key_alarms", Dword),
    p(0x0055, "max_speed_kmh", Dword),
    p(0x0056, "overspeed_duration_s", Dword),
    p(0x0057, "continuous_driving_limit_s", Dword),
    p(0x0058, "daily_driving_limit_s", Dword),
    p(0x0059, "min_rest_s", Dword),
    p(0x005A, "max_parking_s", Dword),
    p(0x005B, "overspeed_warning_margin_dkmh", Word),
    p(0x005C, "fatigue_warning_margin_s", Word),
    p(0x005D, "collision_alarm", Word),
    p(0x005E, "rollover_alarm_angle_deg", Word),
    p(0x0064, "timed_photo", Dword),
    p(0x0065, "distance_photo", Dword),
    ranged(0x0070, "image_quality", Dword, 1, 10),
    ranged(0x0071, "brightness", Dword, 0, 255),
    ranged(0x0072, "contrast", Dword, 0, 127),
    ranged(0x0073, "saturation", Dword, 0, 127),
    ranged(0x0074, "chroma", Dword, 0, 255),
    p(0x0080, "odometer_dkm", Dword),
    p(0x0081, "province_id", Word),
    p(0x0082, "city_id", Word),
    p(0x0083, "plate", Str),
    p(0x0084, "plate_colour", Byte),
    p(0x0090, "gnss_mode", Byte),
    ranged(0x0091, "gnss_baud_rate", Byte, 0, 5),
    ranged(0x0092, "gnss_output_rate", Byte, 0, 4),
    p(0x0093, "gnss_collect_interval_s", Dword),
    p(0x0094, "gnss_upload_mode", Byte),
    p(0x0095, "gnss_upload_setting", Dword),
    p(0x0100, "can1_collect_interval_ms", Dword),
    p(0x0101, "can1_upload_interval_s", Word),
    p(0x0102, "can2_collect_interval_ms", Dword),
    p(0x0103, "can2_upload_interval_s", Word),
];

/// CAN ID collection settings (CAN总线ID单独采集设置), 0x0110–0x01FF, each BYTE[8].
const CAN_ID: Spec =
    Spec { id: 0x0110, name: "can_id_collection", ty: ParameterType::Bytes, len: 8, range: None, secret: false };

fn spec(id: u32) -> Option<Spec> {
    if (0x0110..=0x01FF).contains(&id) {
        return Some(Spec { id, ..CAN_ID });
    }
    TABLE.iter().find(|s| s.id == id).copied()
}

/// Encodes one setting by the type table 12 gives its ID; the error says what is wrong.
pub(crate) fn encode_parameter(s: &ParameterSetting) -> Result<Parameter, String> {
    let id = s.id;
    let known = spec(id);
    let about = match known {
        Some(k) => format!("{} ({})", hex_id(id), k.name),
        None => hex_id(id),
    };
    let ty = match (known, s.kind) {
        (Some(k), None) => k.ty,
        (Some(k), Some(t)) if t == k.ty => t,
        (Some(k), Some(t)) => {
            return Err(format!("{about} is a {} in JT/T 808-2019 table 12, not a {}", k.ty.name(), t.name()));
        }
        (None, Some(t)) => t,
        (None, None) => match s.value {
            ParameterValue::Text(_) => ParameterType::String,
            ParameterValue::Number(_) => {
                return Err(format!(
                    "{about} is not in JT/T 808-2019 table 12: give its type (dword, word, byte, string or \
                     bytes) so that its width is not guessed"
                ));
            }
        },
    };
    let number = |max: u64| -> Result<u32, String> {
        let ParameterValue::Number(n) = s.value else {
            return Err(format!("{about} is a {}: a number, not text", ty.name()));
        };
        if n > max {
            return Err(format!("{about} is a {}: 0 to {max}, not {n}", ty.name()));
        }
        let n = u32::try_from(n).map_err(|_| format!("{about}: 0 to {max}, not {n}"))?;
        if let Some((lo, hi)) = known.and_then(|k| k.range) {
            if !(lo..=hi).contains(&n) {
                return Err(format!("{about}: {lo} to {hi}, not {n}"));
            }
        }
        Ok(n)
    };
    let value = match ty {
        ParameterType::Dword => number(u64::from(u32::MAX))?.to_be_bytes().to_vec(),
        ParameterType::Word => u16::try_from(number(u64::from(u16::MAX))?)
            .map_err(|_| format!("{about} is a WORD"))?
            .to_be_bytes()
            .to_vec(),
        ParameterType::Byte => {
            vec![u8::try_from(number(u64::from(u8::MAX))?).map_err(|_| format!("{about} is a BYTE"))?]
        }
        ParameterType::String => {
            let ParameterValue::Text(t) = &s.value else {
                return Err(format!("{about} is a STRING: give text"));
            };
            if t.chars().any(char::is_control) {
                return Err(format!("{about}: printable text, without control characters"));
            }
            return Parameter::text(id, t).map_err(|e| match e {
                jt808::Error::Unencodable { .. } => format!("{about}: text that GBK can represent"),
                _ => format!("{about}: at most 255 bytes in GBK (a Chinese character takes 2)"),
            });
        }
        ParameterType::Bytes => {
            let ParameterValue::Text(t) = &s.value else {
                return Err(format!("{about} is a BYTE[n]: give hexadecimal digits, e.g. \"0a1b2c3d\""));
            };
            let bytes = from_hex(t).ok_or_else(|| format!("{about}: an even number of hexadecimal digits"))?;
            let want = known.map(|k| k.len).filter(|n| *n > 0);
            match want {
                Some(n) if bytes.len() != n => {
                    return Err(format!("{about} is a BYTE[{n}]: {} hexadecimal digits", 2 * n));
                }
                _ if bytes.len() > 255 => return Err(format!("{about}: at most 255 bytes")),
                _ => bytes,
            }
        }
    };
    Ok(Parameter { id, value })
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if s.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok());
    s.chunks(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A parameter of a 0x0104, read by the type table 12 gives its ID.
pub fn read_parameter(p: &Parameter) -> ParameterReading {
    let known = spec(p.id);
    let name = known.map(|k| k.name);
    let raw = || ParameterReading {
        id: p.id,
        name,
        kind: ParameterType::Bytes,
        value: ParameterValue::Text(to_hex(&p.value)),
    };
    let Some(k) = known else { return raw() };
    let width = match k.ty {
        ParameterType::Dword => 4,
        ParameterType::Word => 2,
        ParameterType::Byte => 1,
        ParameterType::String => {
            let text = p.as_text();
            let value = ParameterValue::Text(text.trim_end_matches('\0').to_string());
            return ParameterReading { id: p.id, name, kind: k.ty, value };
        }
        ParameterType::Bytes => return raw(),
    };
    match p.as_u32() {
        Some(n) if p.value.len() == width => {
            ParameterReading { id: p.id, name, kind: k.ty, value: ParameterValue::Number(u64::from(n)) }
        }
        _ => raw(),
    }
}

// ------------------------------------------------------------------ areas and routes

/// Degrees as the codec's unsigned millionths, with the hemisphere: (point, south, west).
fn point(field: &str, lat: f64, lon: f64) -> Result<(Point, bool, bool), ApiError> {
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return Err(invalid(format!("{field}.lat"), "a latitude from -90 to 90 degrees (WGS-84)"));
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        return Err(invalid(format!("{field}.lon"), "a longitude from -180 to 180 degrees (WGS-84)"));
    }
    // At most 180e6 after the range check: fits a u32 (and `as` from f64 saturates anyway).
    let micro = |d: f64| (d.abs() * 1e6).round() as u32;
    let p = Point { lat: micro(lat), lon: micro(lon) };
    Ok((p, lat < 0.0 && p.lat != 0, lon < 0.0 && p.lon != 0))
}

const SOUTH: u16 = 1 << 6;
const WEST: u16 = 1 << 7;

/// Converts points that share one area attribute, so one hemisphere (JT/T 808-2019 table 61
/// bits 6 and 7); a point on the equator or the prime meridian belongs to either.
fn area_points(field: &str, pts: &[(String, f64, f64)]) -> Result<(Vec<Point>, u16), ApiError> {
    let mut out = Vec::with_capacity(pts.len());
    let (mut south, mut north, mut west, mut east) = (false, false, false, false);
    for (f, lat, lon) in pts {
        let (p, s, w) = point(f, *lat, *lon)?;
        south |= s;
        north |= !s && p.lat != 0;
        west |= w;
        east |= !w && p.lon != 0;
        out.push(p);
    }
    if (south && north) || (west && east) {
        return Err(invalid(
            field,
            "an area must lie in one hemisphere: the standard gives it one north/south and one east/west flag",
        ));
    }
    Ok((out, if south { SOUTH } else { 0 } | if west { WEST } else { 0 }))
}

fn name(field: &str, n: &Option<String>) -> Result<Option<String>, ApiError> {
    match n {
        None => Ok(None),
        Some(n) if n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control) => {
            Err(invalid(format!("{field}.name"), format!("up to {MAX_NAME_CHARS} printable characters")))
        }
        Some(n) => Ok(Some(n.clone())),
    }
}

/// An RFC 3339 instant as the `BCD[6]` GMT+8 time of area bodies (JT/T 808-2019 §4.2 table 2).
fn bcd_time(field: &str, s: &str) -> Result<(i64, BcdTime), ApiError> {
    let bad =
        || invalid(field.to_string(), "an RFC 3339 time from 2000 to 2099 China time, e.g. 2026-11-28T08:00:00+08:00");
    let ms = kernel::store::rfc3339_to_ms(s).ok_or_else(bad)?;
    let secs = ms.div_euclid(1000);
    // 2000-01-01T00:00:00+08:00 up to, not including, 2100-01-01T00:00:00+08:00.
    if !(946_656_000..4_102_416_000).contains(&secs) {
        return Err(bad());
    }
    let c = UtcTime(secs).to_china_civil();
    let yy = u8::try_from(c.year.saturating_sub(2000)).map_err(|_| bad())?;
    let bcd = |v: u8| (v / 10) << 4 | (v % 10);
    Ok((secs, BcdTime([bcd(yy), bcd(c.month), bcd(c.day), bcd(c.hour), bcd(c.minute), bcd(c.second)])))
}

fn window(field: &str, start: &Option<String>, end: &Option<String>) -> Result<Option<TimeWindow>, ApiError> {
    match (start, end) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(invalid(format!("{field}.end"), "give end with start")),
        (None, Some(_)) => Err(invalid(format!("{field}.start"), "give start with end")),
        (Some(s), Some(e)) => {
            let (a, start) = bcd_time(&format!("{field}.start"), s)?;
            let (b, end) = bcd_time(&format!("{field}.end"), e)?;
            if b <= a {
                return Err(invalid(format!("{field}.end"), "end must be after start"));
            }
            Ok(Some(TimeWindow { start, end }))
        }
    }
}

fn speed(field: &str, s: &Option<SpeedLimitSpec>) -> Result<Option<SpeedLimit>, ApiError> {
    let Some(s) = s else { return Ok(None) };
    if s.max_kmh == 0 {
        return Err(invalid(format!("{field}.speed_limit.max_kmh"), "at least 1 km/h"));
    }
    if s.night_max_kmh == Some(0) {
        return Err(invalid(format!("{field}.speed_limit.night_max_kmh"), "at least 1 km/h"));
    }
    Ok(Some(SpeedLimit { max_kmh: s.max_kmh, duration_s: s.overspeed_duration_s, night_max_kmh: s.night_max_kmh }))
}

fn area_flags(flags: &[AreaFlag]) -> u16 {
    flags.iter().fold(0, |a, f| a | f.bit())
}

fn circle(field: &str, a: &CircleAreaSpec) -> Result<CircleArea, ApiError> {
    let (pts, hemi) = area_points(field, &[(format!("{field}.center"), a.center.lat, a.center.lon)])?;
    if a.radius_m == 0 {
        return Err(invalid(format!("{field}.radius_m"), "at least 1 m"));
    }
    Ok(CircleArea {
        id: a.id,
        attributes: area_flags(&a.flags) | hemi,
        center: pts.first().copied().unwrap_or_default(),
        radius_m: a.radius_m,
        window: window(field, &a.start, &a.end)?,
        speed: speed(field, &a.speed_limit)?,
        name: name(field, &a.name)?,
    })
}

fn rectangle(field: &str, a: &RectangleAreaSpec) -> Result<RectangleArea, ApiError> {
    let (tl, br) = (a.top_left, a.bottom_right);
    let (pts, hemi) = area_points(
        field,
        &[(format!("{field}.top_left"), tl.lat, tl.lon), (format!("{field}.bottom_right"), br.lat, br.lon)],
    )?;
    if tl.lat <= br.lat {
        return Err(invalid(format!("{field}.top_left.lat"), "the top-left corner must lie north of the bottom-right"));
    }
    if tl.lon >= br.lon {
        return Err(invalid(format!("{field}.top_left.lon"), "the top-left corner must lie west of the bottom-right"));
    }
    Ok(RectangleArea {
        id: a.id,
        attributes: area_flags(&a.flags) | hemi,
        top_left: pts.first().copied().unwrap_or_default(),
        bottom_right: pts.get(1).copied().unwrap_or_default(),
        window: window(field, &a.start, &a.end)?,
        speed: speed(field, &a.speed_limit)?,
        name: name(field, &a.name)?,
    })
}

fn polygon(a: &PolygonAreaSpec) -> Result<PolygonArea, ApiError> {
    if a.vertices.len() < 3 || a.vertices.len() > MAX_VERTICES {
        return Err(invalid("vertices", format!("3 to {MAX_VERTICES} vertices")));
    }
    let pts: Vec<(String, f64, f64)> =
        a.vertices.iter().enumerate().map(|(i, v)| (format!("vertices[{i}]"), v.lat, v.lon)).collect();
    let (vertices, hemi) = area_points("vertices", &pts)?;
    Ok(PolygonArea {
        id: a.id,
        attributes: area_flags(&a.flags) | hemi,
        window: window("polygon", &a.start, &a.end).map_err(strip_prefix("polygon."))?,
        speed: speed("polygon", &a.speed_limit).map_err(strip_prefix("polygon."))?,
        vertices,
        name: name("polygon", &a.name).map_err(strip_prefix("polygon."))?,
    })
}

/// Top-level fields of a single-area command carry no prefix.
fn strip_prefix(prefix: &'static str) -> impl Fn(ApiError) -> ApiError {
    move |mut e| {
        if let Some(f) = &e.field {
            e.field = Some(f.strip_prefix(prefix).unwrap_or(f).to_string());
        }
        e
    }
}

fn route(r: &RouteSpec) -> Result<Route, ApiError> {
    if r.points.len() < 2 || r.points.len() > MAX_ROUTE_POINTS {
        return Err(invalid("points", format!("2 to {MAX_ROUTE_POINTS} turning points")));
    }
    let mut points = Vec::with_capacity(r.points.len());
    for (i, rp) in r.points.iter().enumerate() {
        let field = format!("points[{i}]");
        let (pt, south, west) = point(&field, rp.lat, rp.lon)?;
        if rp.width_m == 0 {
            return Err(invalid(format!("{field}.width_m"), "at least 1 m"));
        }
        if let Some(d) = rp.drive_time {
            if d.too_short_s > d.too_long_s {
                return Err(invalid(format!("{field}.drive_time.too_short_s"), "at most too_long_s"));
            }
        }
        // JT/T 808-2019 table 70: bits 2 and 3 of the segment attribute are its hemisphere.
        let attributes = if south { 1 << 2 } else { 0 } | if west { 1 << 3 } else { 0 };
        let n = u32::try_from(i + 1).map_err(|_| invalid("points", "too many points"))?;
        points.push(RoutePoint {
            point_id: n,
            segment_id: n,
            point: pt,
            width_m: rp.width_m,
            attributes,
            drive_time: rp.drive_time.map(|d| (d.too_long_s, d.too_short_s)),
            speed: speed(&field, &rp.speed_limit)?,
        });
    }
    Ok(Route {
        id: r.id,
        attributes: r.flags.iter().fold(0, |a, f| a | f.bit()),
        window: window("route", &r.start, &r.end).map_err(strip_prefix("route."))?,
        points,
        name: name("route", &r.name).map_err(strip_prefix("route."))?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn set(id: u32, value: ParameterValue, kind: Option<ParameterType>) -> Result<Parameter, String> {
        encode_parameter(&ParameterSetting { id, value, kind })
    }
    use ParameterValue::{Number as N, Text as T};

    #[test]
    fn parameter_values_take_the_width_of_table_12() {
        assert_eq!(set(0x0001, N(30), None).unwrap().value, vec![0, 0, 0, 30]);
        assert_eq!(set(0x0029, N(0x0102_0304), None).unwrap().value, vec![1, 2, 3, 4]);
        assert_eq!(set(0x0031, N(500), None).unwrap().value, vec![0x01, 0xf4]);
        assert_eq!(set(0x0084, N(2), None).unwrap().value, vec![2]);
        assert_eq!(set(0x0013, T("jt808.example.cn:6808".into()), None).unwrap().value, b"jt808.example.cn:6808");
        assert_eq!(
            set(0x0083, T("津A12345".into()), None).unwrap().value,
            vec![0xbd, 0xf2, b'A', b'1', b'2', b'3', b'4', b'5']
        );
        assert_eq!(set(0x0110, T("0102030405060708".into()), None).unwrap().value, (1..=8).collect::<Vec<u8>>());
        // Outside the table: an explicit type decides the width; text is a STRING.
        assert_eq!(set(0xF001, N(7), Some(ParameterType::Word)).unwrap().value, vec![0, 7]);
        assert_eq!(set(0xF002, T("x".into()), None).unwrap().value, b"x");
        assert_eq!(set(0xF003, T("ff00".into()), Some(ParameterType::Bytes)).unwrap().value, vec![0xff, 0]);
    }

    #[test]
    fn parameter_values_out_of_range_or_of_the_wrong_kind_are_refused() {
        let err = |r: Result<Parameter, String>| r.unwrap_err();
        assert!(err(set(0x0031, N(70_000), None)).contains("WORD: 0 to 65535, not 70000"));
        assert!(err(set(0x0084, N(256), None)).contains("BYTE: 0 to 255"));
        assert!(err(set(0x0001, N(u64::from(u32::MAX) + 1), None)).contains("DWORD: 0 to 4294967295"));
        assert!(err(set(0x0070, N(11), None)).contains("1 to 10, not 11"));
        assert!(err(set(0x0030, N(180), None)).contains("0 to 179"));
        assert!(err(set(0x0001, T("30".into()), None)).contains("a number, not text"));
        assert!(err(set(0x0013, N(1), None)).contains("STRING"));
        assert!(err(set(0xF001, N(7), None)).contains("give its type"), "never guess a width");
        assert!(err(set(0x0055, N(80), Some(ParameterType::Word))).contains("is a DWORD in JT/T 808-2019 table 12"));
        assert!(err(set(0x0013, T("x".repeat(256)), None)).contains("255 bytes"));
        assert!(err(set(0x0013, T("a\u{0}b".into()), None)).contains("control"));
        assert!(err(set(0x0013, T("\u{1F600}".into()), None)).contains("GBK"));
        assert!(err(set(0x0032, T("0800".into()), None)).contains("BYTE[4]"));
        assert!(err(set(0x0110, T("zz".into()), None)).contains("hexadecimal"));
    }

    #[test]
    fn parameter_values_deserialize_with_clear_errors() {
        let v: ParameterSetting = serde_json::from_str(r#"{"id": 1, "value": 30}"#).unwrap();
        assert_eq!(v.value, N(30));
        let e = serde_json::from_str::<ParameterSetting>(r#"{"id": 1, "value": -1}"#).unwrap_err();
        assert!(e.to_string().contains("not negative"), "{e}");
        let e = serde_json::from_str::<ParameterSetting>(r#"{"id": 1, "value": 1.5}"#).unwrap_err();
        assert!(e.to_string().contains("whole numbers"), "{e}");
        assert!(serde_json::from_str::<ParameterSetting>(r#"{"id": 1, "value": [1]}"#).is_err());
    }

    #[test]
    fn a_reported_parameter_reads_by_its_type() {
        let r = read_parameter(&Parameter { id: 0x0001, value: vec![0, 0, 0, 60] });
        assert_eq!((r.name, r.kind, r.value), (Some("heartbeat_interval_s"), ParameterType::Dword, N(60)));
        let r = read_parameter(&Parameter::text(0x0083, "津A12345").unwrap());
        assert_eq!(r.value, T("津A12345".into()));
        // A width the table does not give the ID, or an unknown ID: bytes.
        let r = read_parameter(&Parameter { id: 0x0001, value: vec![60] });
        assert_eq!((r.kind, r.value), (ParameterType::Bytes, T("3c".into())));
        let r = read_parameter(&Parameter { id: 0xF000, value: vec![1, 2] });
        assert_eq!((r.name, r.kind, r.value), (None, ParameterType::Bytes, T("0102".into())));
    }

    fn cmd(json: serde_json::Value) -> Result<Prepared, ApiError> {
        prepare(serde_json::from_value(json).unwrap())
    }

    #[test]
    fn areas_convert_degrees_hemispheres_and_times() {
        let p = cmd(serde_json::json!({"kind": "set_circle_areas", "areas": [{
            "id": 7, "center": {"lat": -33.5, "lon": -70.25}, "radius_m": 500,
            "start": "2026-11-28T08:00:00+08:00", "end": "2026-11-28T10:00:00Z",
            "flags": ["enter_alarm_to_platform"]}]}))
        .unwrap();
        let Message::SetCircleAreas(s) = p.message(Version::V2019) else { panic!() };
        let a = &s.areas[0];
        assert_eq!((s.mode, a.center.lat, a.center.lon, a.radius_m), (1, 33_500_000, 70_250_000, 500));
        assert_eq!(a.attributes, (1 << 3) | SOUTH | WEST);
        let w = a.window.unwrap();
        assert_eq!((w.start.0, w.end.0), ([0x26, 0x11, 0x28, 0x08, 0, 0], [0x26, 0x11, 0x28, 0x18, 0, 0]));
    }

    #[test]
    fn bad_areas_are_refused_with_the_field_named() {
        let field = |j: serde_json::Value| cmd(j).err().and_then(|e| e.field).unwrap_or_default();
        let circle = |c: serde_json::Value| serde_json::json!({"kind": "set_circle_areas", "areas": [c]});
        assert_eq!(
            field(circle(serde_json::json!({"id": 1, "center": {"lat": 91.0, "lon": 0.0}, "radius_m": 5}))),
            "areas[0].center.lat"
        );
        assert_eq!(
            field(circle(serde_json::json!({"id": 1, "center": {"lat": 9.0, "lon": 180.5}, "radius_m": 5}))),
            "areas[0].center.lon"
        );
        assert_eq!(
            field(circle(serde_json::json!({"id": 1, "center": {"lat": 9.0, "lon": 1.0}, "radius_m": 0}))),
            "areas[0].radius_m"
        );
        assert_eq!(
            field(circle(serde_json::json!({"id": 1, "center": {"lat": 9.0, "lon": 1.0}, "radius_m": 5,
                    "start": "2026-01-01T00:00:00Z"}))),
            "areas[0].end"
        );
        assert_eq!(
            field(circle(serde_json::json!({"id": 1, "center": {"lat": 9.0, "lon": 1.0}, "radius_m": 5,
                "start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}))),
            "areas[0].end"
        );
        assert_eq!(
            field(circle(serde_json::json!({"id": 1, "center": {"lat": 9.0, "lon": 1.0}, "radius_m": 5,
                "start": "1999-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}))),
            "areas[0].start"
        );
        assert_eq!(field(serde_json::json!({"kind": "set_circle_areas", "areas": []})), "areas");
        let rect = serde_json::json!({"kind": "set_rectangle_areas", "areas": [{"id": 1,
            "top_left": {"lat": 1.0, "lon": -1.0}, "bottom_right": {"lat": -1.0, "lon": 1.0}}]});
        assert_eq!(field(rect), "areas[0]", "straddles the equator");
        let poly = serde_json::json!({"kind": "set_polygon_area", "id": 1,
            "vertices": [{"lat": 1.0, "lon": 1.0}, {"lat": 2.0, "lon": 1.0}]});
        assert_eq!(field(poly), "vertices");
        let route =
            serde_json::json!({"kind": "set_route", "id": 1, "points": [{"lat": 1.0, "lon": 1.0, "width_m": 20}]});
        assert_eq!(field(route), "points");
        assert_eq!(field(serde_json::json!({"kind": "delete_routes"})), "ids");
        assert_eq!(
            field(serde_json::json!({"kind": "delete_areas", "shape": "circle", "ids": [1], "all": true})),
            "all"
        );
        assert_eq!(field(serde_json::json!({"kind": "query_parameters", "ids": [1, 1]})), "ids[1]");
    }

    #[test]
    fn a_command_too_large_for_one_packet_is_refused() {
        // 32 circles of 2019 layout with long Chinese names: far over 1023 bytes.
        let areas: Vec<_> = (0..32)
            .map(|i| serde_json::json!({"id": i, "center": {"lat": 39.4, "lon": 117.0}, "radius_m": 100,
                "name": "武清区杨村街道一号停车场东门外侧临时停车区域范围", "speed_limit": {"max_kmh": 30, "overspeed_duration_s": 5}}))
            .collect();
        let e = cmd(serde_json::json!({"kind": "set_circle_areas", "areas": areas})).err().unwrap();
        assert!(e.message.contains("more than the 1023"), "{}", e.message);
        // A route at the limit of points still fits.
        let points: Vec<_> = (0..50)
            .map(|i| serde_json::json!({"lat": 39.0 + f64::from(i) * 1e-3, "lon": 117.0, "width_m": 30}))
            .collect();
        assert!(cmd(serde_json::json!({"kind": "set_route", "id": 1, "points": points})).is_ok());
    }

    #[test]
    fn text_flags_follow_the_edition() {
        let p = cmd(serde_json::json!({"kind": "text", "text": "请减速", "tts": true, "emergency": true})).unwrap();
        let Message::TextMessage(t13) = p.message(Version::V2013) else { panic!() };
        let Message::TextMessage(t19) = p.message(Version::V2019) else { panic!() };
        assert_eq!((t13.flags, t13.text_type), (0x0d, None));
        assert_eq!((t19.flags, t19.text_type), (0x0e, Some(1)));
    }
}
