//! What the engine emits: alarm events keyed by subject, kind, scope and start.

use serde::{Deserialize, Serialize};

/// Every kind of alarm the engine raises. See the crate documentation for the clause each encodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// Overspeed (超速) against the class, enterprise or area limit, or the terminal's bit.
    Overspeed,
    /// Night overspeed (夜间超速) of a passenger vehicle: above 80 % of the daytime limit.
    NightOverspeed,
    /// Continuous driving (连续驾驶) over the day or night limit.
    FatigueContinuous,
    /// Cumulative driving over the limit in any 24 h (日累计驾驶).
    FatigueDaily,
    /// Cumulative driving over the limit in any 7 days (周累计驾驶).
    FatigueWeekly,
    /// Long-distance coach moving during the 02:00–05:00 curfew (凌晨2时至5时停止运行).
    Curfew,
    /// No report for N minutes while last seen moving (离线).
    Offline,
    /// No report for 24 h (长时间离线).
    OfflineLong,
    /// Moved while offline: a position jump after silence implies it drove (离线行驶).
    OfflineDriving,
    /// Entered an area (进区域). Instant: no Ended follows.
    GeofenceEnter,
    /// Left an area (出区域). Instant: no Ended follows.
    GeofenceLeave,
    /// Stayed in an area longer than allowed (区域停留超时).
    GeofenceDwell,
    /// Outside the corridor of the assigned route (偏离路线).
    RouteDeviation,
    /// A route segment left too soon or too late (路段行驶时间不足/过长). Instant.
    SegmentTime,
    /// Implausible position jump (漂移). Instant.
    PositionDrift,
    /// Invalid fixes for a sustained period (数据无效).
    InvalidData,
    /// A sensor value beyond its threshold (传感器越限).
    Sensor,
}

/// Life-cycle phase of an alarm episode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Advance warning before a limit (预警); fatigue only.
    PreWarning,
    /// The episode started (or an instant alarm happened).
    Raised,
    /// The episode's grade or a material figure changed.
    Updated,
    /// The episode is over.
    Ended,
}

/// How serious an alarm is; grows with the amount over the limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Information, e.g. a pre-warning or data quality.
    Info,
    /// Minor.
    Low,
    /// Moderate.
    #[default]
    Medium,
    /// Serious.
    High,
    /// Critical.
    Critical,
}

/// Identity of one alarm episode: all events of an episode share it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlarmKey {
    /// Vehicle or device id.
    pub subject: String,
    /// Alarm kind.
    pub kind: AlarmKind,
    /// Area, route or sensor rule id for kinds that have one; empty otherwise.
    pub scope: String,
    /// Device time at which the episode began.
    pub started_ms: i64,
}

/// Where an overspeed limit came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "id")]
pub enum LimitSource {
    /// The class (or enterprise override) limit.
    Class,
    /// An area's own limit.
    Area(String),
    /// The terminal's own overspeed alarm bit (JT/T 808 alarm bit 1).
    Terminal,
}

/// Kind-specific figures of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Details {
    /// Overspeed and night overspeed.
    Speed {
        /// Highest speed of the episode so far, km/h.
        max_speed_kmh: f64,
        /// Limit in force, km/h.
        limit_kmh: f64,
        /// Highest percentage over the limit.
        percent_over: f64,
        /// Where the limit came from.
        source: LimitSource,
    },
    /// Continuous driving.
    Fatigue {
        /// Continuous driving so far, minutes.
        driving_min: i64,
        /// The limit in force, minutes.
        limit_min: i64,
        /// When the continuous driving began (after the last qualifying rest).
        driving_since_ms: i64,
        /// Whether the night limit applied.
        night: bool,
        /// Suggested message for the driver (TTS, JT/T 808 0x8300), Chinese.
        message: Option<String>,
    },
    /// Cumulative driving in a rolling window.
    Cumulative {
        /// Driving in the window, minutes.
        driving_min: i64,
        /// The limit, minutes.
        limit_min: i64,
        /// Window length, hours.
        window_h: i64,
    },
    /// Curfew.
    Curfew {
        /// Speed at the event, km/h.
        speed_kmh: f64,
    },
    /// Offline and offline driving.
    Offline {
        /// Device time of the last report before the silence.
        last_seen_ms: i64,
        /// Length of the silence, minutes.
        silent_min: i64,
        /// Straight-line distance covered during the silence, metres (offline driving only).
        distance_m: Option<f64>,
    },
    /// Geofence enter, leave and dwell.
    Area {
        /// Area id.
        area: String,
        /// Time inside so far, minutes.
        dwell_min: i64,
    },
    /// Route deviation.
    Route {
        /// Route id.
        route: String,
        /// Largest distance from the centre line during the episode, metres.
        distance_m: f64,
        /// Half the corridor width, metres.
        allowed_m: f64,
    },
    /// Segment travel time.
    SegmentTime {
        /// Route id.
        route: String,
        /// The segment's first point.
        segment: usize,
        /// Time from entering the segment to entering the next, seconds.
        seconds: i64,
        /// `too_short` or `too_long`.
        verdict: String,
        /// The limit crossed, seconds.
        limit_s: i64,
    },
    /// Position drift.
    Drift {
        /// Speed implied by the jump, km/h.
        implied_kmh: f64,
        /// Jump distance, metres.
        distance_m: f64,
    },
    /// Invalid data.
    Invalid {
        /// Invalid fixes in a row so far.
        count: u32,
    },
    /// Sensor threshold.
    Sensor {
        /// Metric name.
        metric: String,
        /// Value at the event.
        value: f64,
        /// Most extreme value of the episode.
        peak: f64,
        /// The threshold.
        threshold: f64,
    },
    /// An episode emitted before a late-data replay that the replay did not reproduce.
    Superseded,
}

/// A fix or reading that caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Evidence {
    /// A position fix.
    Fix {
        /// Device time.
        device_ms: i64,
        /// Latitude.
        lat: f64,
        /// Longitude.
        lon: f64,
        /// Speed, km/h.
        speed_kmh: f64,
    },
    /// A sensor reading.
    Reading {
        /// Device time.
        device_ms: i64,
        /// Value.
        value: f64,
    },
}

/// Most evidence items one event carries.
pub const MAX_EVIDENCE: usize = 4;

/// One alarm event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Episode identity.
    pub key: AlarmKey,
    /// Same as `key.kind`, for convenience.
    pub kind: AlarmKind,
    /// Life-cycle phase.
    pub phase: Phase,
    /// Severity at this event.
    pub severity: Severity,
    /// Kind-specific step that grows within an episode: the overspeed band (1: <10 %,
    /// 2: 10–20 %, 3: 20–50 %, 4: ≥50 %), half-hours beyond a fatigue limit; 0 otherwise.
    /// An `Updated` event is sent when it rises.
    pub grade: u8,
    /// Start of the episode (device time), same as `key.started_ms`.
    pub start_ms: i64,
    /// Device time (or clock time for tick-raised kinds) of this event.
    pub at_ms: i64,
    /// Version of the rule set that raised the episode.
    pub rule_version: u32,
    /// Kind-specific figures.
    pub details: Details,
    /// At most [`MAX_EVIDENCE`] observations that caused it.
    pub evidence: Vec<Evidence>,
}
