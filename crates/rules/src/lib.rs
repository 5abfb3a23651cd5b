//! The platform's alarm engine (报警引擎): pure, stateful rules per vehicle or device, driven by
//! observations in device-time order and an injected clock. No IO, no clock reads, no
//! randomness: the same calls always give the same events, and the whole state can be
//! snapshotted with serde and restored after a restart.
//!
//! # Rule kinds and their sources
//! - **Overspeed (超速)** — [`AlarmKind::Overspeed`]: above the class limit (enterprise overrides
//!   it), an area's own limit (the lowest limit in force wins), or the terminal's own overspeed
//!   alarm bit (JT/T 808-2019 table 24, bit 1). Counted once it lasts the minimum duration
//!   (default 60 s); graded by the highest percentage over: <10 %, 10–20 %, 20–50 %, ≥50 %
//!   (grades 1–4, severity low → critical). Source: 道路运输车辆动态监督管理办法 (overspeed
//!   monitoring of key commercial vehicles), JT/T 808.
//! - **Night overspeed (夜间超速)** — [`AlarmKind::NightOverspeed`]: passenger vehicles (coach,
//!   tourist coach, school bus, city bus) between 22:00 and 06:00 local above 80 % of the daytime
//!   limit. Source: 道路旅客运输企业安全管理规范 (night speed of passenger vehicles not above 80 %
//!   of the daytime limit). At night this replaces the plain overspeed rule for those classes.
//! - **Fatigue driving (疲劳驾驶)** — [`AlarmKind::FatigueContinuous`], [`AlarmKind::FatigueDaily`],
//!   [`AlarmKind::FatigueWeekly`]: continuous driving over 4 h by day or over 2 h at night
//!   (22:00–06:00) without a rest of at least 20 min; a pre-warning (预警) before the limit
//!   (default 30 min) with a suggested driver message in Chinese; over 8 h driving in any 24 h;
//!   over 44 h in any 7 days. Source: 道路旅客运输企业安全管理规范 art. 38; JT/T 794-2019 defines
//!   driving and rest. Driving = ACC on and speed above a threshold (default 5 km/h); rest =
//!   stationary or ACC off. The limit in force is the one of the current local time: a driver
//!   with 3 h behind them at 22:00 is over the 2 h night limit from 22:00.
//! - **Coach curfew (凌晨2时至5时停止运行)** — [`AlarmKind::Curfew`]: a long-distance coach
//!   (class `coach`) driving between 02:00 and 05:00 local. Source: 道路旅客运输企业安全管理规范
//!   (接驳运输 aside, coaches stop running 02:00–05:00).
//! - **Offline (离线)** — [`AlarmKind::Offline`]: no report for N minutes (default 10) while last
//!   seen driving, raised by [`Engine::tick`]; [`AlarmKind::OfflineLong`]: no report for 24 h;
//!   [`AlarmKind::OfflineDriving`]: a dangerous-goods vehicle (危险货物运输车辆) whose position
//!   after a silence implies it drove. Source: 道路运输车辆动态监督管理办法 (vehicles must stay
//!   online while operating).
//! - **Geofence (电子围栏)** — [`AlarmKind::GeofenceEnter`], [`AlarmKind::GeofenceLeave`],
//!   [`AlarmKind::GeofenceDwell`] for circles, rectangles and polygons in WGS-84; **route
//!   deviation (偏离路线)** — [`AlarmKind::RouteDeviation`] beyond half the corridor width from
//!   the centre line; **segment travel time (路段行驶时间不足/过长)** — [`AlarmKind::SegmentTime`]:
//!   a segment with limits left for the next one sooner or later than them (judged on leaving, as
//!   a terminal does; the segment is the nearest one of the route while inside the corridor).
//!   Source: JT/T 808-2019 §8.29–8.34 (0x8600–0x8606 area and route settings), alarm bits 18 and
//!   20–23.
//! - **Position drift (漂移) and invalid data (无效数据)** — [`AlarmKind::PositionDrift`]: a fix
//!   implying more than 200 km/h from the previous one; [`AlarmKind::InvalidData`]: invalid fixes
//!   (invalid flag, out-of-range or 0/0 coordinates, non-finite speed) for 10 min. Device times
//!   out of range or more than 5 min ahead of the clock are invalid too. Counted per subject
//!   ([`Counters`]) for the data-qualified rate (数据合格率) of JT/T 1077.
//! - **Sensor thresholds (传感器越限)** — [`AlarmKind::Sensor`]: any metric (temperature,
//!   humidity, blood pressure, pollutant concentration, water level) above or below a threshold
//!   for a minimum duration, cleared only once back past the threshold ∓ hysteresis.
//!
//! # Time
//! Day, night and curfew are decided on the local time of the DEVICE time of each fix, in
//! Asia/Shanghai (UTC+8). China has had no daylight saving time since 1991, so a fixed +8 h
//! offset is exact ([`time`]). The engine's clock (the `now` of [`Engine::tick`]) only drives
//! time-outs and bounds future device times.
//!
//! # Ordering, duplicates and late fixes
//! Fixes are evaluated per subject in device-time order:
//! - A fix with the device time of the newest one (or of one kept in the checkpoint below) is a
//!   duplicate: ignored and counted.
//! - When a fix comes more than the gap time (default 2 min) after the newest one, the engine
//!   keeps a *checkpoint*: the subject's rule state from before the gap plus every fix received
//!   after it, bounded by age (24 h after the gap) and count (2048 fixes). Only one checkpoint is
//!   kept per subject; a later gap inside its lifetime is covered by it.
//! - A fix older than the newest that falls after the checkpoint's start (typically a JT/T 808
//!   0x0704 blind-area upload after signal loss) is inserted; the checkpoint's state is restored
//!   and all its fixes are replayed in device-time order. Only events not already emitted are
//!   returned (de-duplicated by kind, scope, start, phase and grade); an episode emitted earlier
//!   that the replay did not reproduce is closed with an `Ended` event whose details are
//!   [`Details::Superseded`]. [`Engine::observe_batch`] replays once per batch.
//! - Any other older fix is late: ignored and counted.
//!
//! # Gap policy
//! Between two fixes no more than the gap time apart, the state of the earlier fix holds
//! (driving or resting). Across a longer silence, the engine does not know what happened: it
//! assumes the vehicle drove the straight-line distance at a reference speed (default 60 km/h)
//! first and rested for the remainder. So a vehicle far away after the silence drove (and a
//! silence too short for the distance counts as driving throughout), while one that stayed put
//! rested, and a long enough remainder resets continuous driving. A blind-area upload later
//! replaces the estimate with the real fixes (above). Overspeed does not carry across a gap.
//!
//! # Memory
//! A subject keeps its last fix, a handful of open episodes, its area stays, and driving time in
//! 144 ten-minute buckets (24 h) and 168 hourly buckets (7 days) of `u16` seconds, allocated on
//! its first driving: about 1.6 KiB per vehicle (see the `memory` test), plus a checkpoint while
//! one is open.

#![warn(missing_docs)]

pub mod clinical;
pub mod config;
mod engine;
pub mod event;
pub mod geo;
mod state;
pub mod time;

use serde::{Deserialize, Serialize};

pub use config::{
    Area, ConfigError, Direction, EngineSettings, Limits, Profile, Route, RuleSet, SegmentLimit, SensorRule,
};
pub use engine::{Counters, Engine, EngineSnapshot, MemoryUse};
pub use event::{AlarmKey, AlarmKind, Details, Event, Evidence, LimitSource, Phase, Severity};
pub use geo::Shape;

/// A position fix (定位数据), as a JT/T 808 0x0200 or 0x0704 report carries it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    /// Device time, Unix milliseconds (UTC).
    pub device_ms: i64,
    /// WGS-84 latitude, degrees.
    pub lat: f64,
    /// WGS-84 longitude, degrees.
    pub lon: f64,
    /// Speed, km/h.
    pub speed_kmh: f64,
    /// Heading, degrees from north.
    pub heading: u16,
    /// ACC (ignition) on: JT/T 808 status bit 0.
    pub acc_on: bool,
    /// The terminal's own fix-valid flag: JT/T 808 status bit 1.
    pub valid: bool,
    /// JT/T 808 alarm flags (table 24).
    pub alarm_bits: u32,
}

/// A sensor reading (传感器读数).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Device time, Unix milliseconds (UTC).
    pub device_ms: i64,
    /// Metric name, matched against [`SensorRule::metric`].
    pub metric: String,
    /// Value.
    pub value: f64,
}
