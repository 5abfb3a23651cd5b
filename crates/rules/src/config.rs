//! The rule set: versioned configuration, loaded with serde (`deny_unknown_fields`) from TOML or
//! JSON, validated by [`RuleSet::check`], and resolved per subject profile.
//!
//! Resolution, per field: enterprise override → class table → `defaults` → the built-in value
//! of [`Limits`]'s documentation. Speed limits are then lowered by the limit of any area the fix
//! lies in (the lowest limit in force wins).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::event::Severity;
use crate::geo::Shape;
use crate::time::{MINUTE_MS, SHANGHAI_OFFSET_MS};

/// A subject's profile: its vehicle class, owning enterprise and (optionally) assigned route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// snake_case class code: `dangerous_goods`, `coach`, `tourist_coach`, `school_bus`,
    /// `city_bus`, `taxi`, `heavy_goods` (as the transport crate's `VehicleClass`).
    pub class: String,
    /// Enterprise id, matched against [`RuleSet::by_enterprise`] and area filters.
    pub enterprise: String,
    /// Id of the route (线路) whose corridor this vehicle must keep to, if any.
    #[serde(default)]
    pub route: Option<String>,
}

impl Profile {
    /// A profile without a route.
    pub fn new(class: &str, enterprise: &str) -> Self {
        Profile { class: class.to_owned(), enterprise: enterprise.to_owned(), route: None }
    }

    /// The same profile bound to a route.
    pub fn with_route(mut self, route: &str) -> Self {
        self.route = Some(route.to_owned());
        self
    }
}

/// Per-class or per-enterprise limits; every field optional so that an override names only what
/// it changes. The built-in value (used when no level sets a field) is in each field's doc.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Speed limit, km/h. Built-in: 120 (expressway maximum, Road Traffic Safety Law
    /// Implementing Regulations art. 78).
    pub speed_limit_kmh: Option<f64>,
    /// Overspeed must last this long to count, seconds. Built-in: 60.
    pub overspeed_min_duration_s: Option<i64>,
    /// Also count the terminal's own overspeed alarm bit (JT/T 808 table 24, bit 1). Built-in: true.
    pub terminal_overspeed_bit: Option<bool>,
    /// Apply the night speed rule (22:00–06:00). Built-in: false; true for passenger classes.
    pub night_speed: Option<bool>,
    /// Night limit as a percentage of the daytime limit. Built-in: 80.
    pub night_speed_percent: Option<f64>,
    /// Above this speed with ACC on the vehicle is driving (JT/T 794-2019), km/h. Built-in: 5.
    pub driving_speed_kmh: Option<f64>,
    /// Evaluate fatigue rules. Built-in: true.
    pub fatigue: Option<bool>,
    /// Longest continuous driving by day, minutes. Built-in: 240.
    pub fatigue_day_limit_min: Option<i64>,
    /// Longest continuous driving at night, minutes. Built-in: 120.
    pub fatigue_night_limit_min: Option<i64>,
    /// A stop at least this long resets continuous driving, minutes. Built-in: 20.
    pub fatigue_rest_min: Option<i64>,
    /// Pre-warning this long before the continuous limit, minutes (0: none). Built-in: 30.
    pub fatigue_prewarn_min: Option<i64>,
    /// Most driving in any 24 h, minutes. Built-in: 480.
    pub daily_driving_limit_min: Option<i64>,
    /// Most driving in any 7 days, minutes. Built-in: 2640 (44 h).
    pub weekly_driving_limit_min: Option<i64>,
    /// Apply the 02:00–05:00 curfew. Built-in: false; true for `coach`.
    pub curfew: Option<bool>,
    /// Curfew start, local minute of day. Built-in: 120 (02:00).
    pub curfew_start_min: Option<i64>,
    /// Curfew end, local minute of day. Built-in: 300 (05:00).
    pub curfew_end_min: Option<i64>,
    /// Silence while last seen moving before `Offline`, minutes. Built-in: 10.
    pub offline_min: Option<i64>,
    /// Silence before `OfflineLong`, minutes. Built-in: 1440.
    pub offline_long_min: Option<i64>,
    /// Raise `OfflineDriving` when a jump after silence implies driving. Built-in: false;
    /// true for `dangerous_goods`.
    pub offline_driving: Option<bool>,
}

/// Engine-wide settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// Night start, local minute of day (22:00).
    pub night_start_min: i64,
    /// Night end, local minute of day (06:00).
    pub night_end_min: i64,
    /// A silence longer than this between two fixes is a gap: the gap policy applies and a
    /// replay checkpoint is taken, seconds. Default 120.
    pub gap_s: i64,
    /// Speed assumed for the driving part of a gap (distance / this speed), km/h. Default 60.
    pub gap_reference_speed_kmh: f64,
    /// Longest time a replay checkpoint is kept after its gap, seconds. Default 86 400.
    pub checkpoint_max_age_s: i64,
    /// Most fixes a replay checkpoint keeps. Default 2048.
    pub checkpoint_max_fixes: usize,
    /// Fixes implying more than this speed from the previous one are drift, km/h. Default 200.
    pub drift_speed_kmh: f64,
    /// Jumps shorter than this are never drift (GNSS noise on short intervals), metres. Default 100.
    pub drift_min_distance_m: f64,
    /// Device times further ahead of the engine clock (last `tick`) are invalid, seconds. Default 300.
    pub future_tolerance_s: i64,
    /// Invalid fixes for this long raise `InvalidData`, seconds. Default 600.
    pub invalid_min_duration_s: i64,
    /// Offline driving needs at least this jump, metres. Default 1000.
    pub offline_driving_min_distance_m: f64,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            night_start_min: 22 * 60,
            night_end_min: 6 * 60,
            gap_s: 120,
            gap_reference_speed_kmh: 60.0,
            checkpoint_max_age_s: 86_400,
            checkpoint_max_fixes: 2048,
            drift_speed_kmh: 200.0,
            drift_min_distance_m: 100.0,
            future_tolerance_s: 300,
            invalid_min_duration_s: 600,
            offline_driving_min_distance_m: 1000.0,
        }
    }
}

fn yes() -> bool {
    true
}

/// A configured area: a geofence, an area speed limit, or both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    /// Unique id.
    pub id: String,
    /// Outline.
    pub shape: Shape,
    /// Speed limit inside, km/h.
    #[serde(default)]
    pub speed_limit_kmh: Option<f64>,
    /// Raise `GeofenceEnter` on entering.
    #[serde(default = "yes")]
    pub alarm_enter: bool,
    /// Raise `GeofenceLeave` on leaving.
    #[serde(default = "yes")]
    pub alarm_leave: bool,
    /// Raise `GeofenceDwell` after this long inside, minutes.
    #[serde(default)]
    pub dwell_max_min: Option<i64>,
    /// Classes it applies to; empty: all.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Enterprises it applies to; empty: all.
    #[serde(default)]
    pub enterprises: Vec<String>,
}

/// A route corridor: the centre line and its full width (JT/T 808 0x8606 gives a road width per
/// segment; a vehicle deviates when it is farther than half the width from the centre line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Unique id, referred to by [`Profile::route`].
    pub id: String,
    /// Centre line, `[lat, lon]`, at least two points.
    pub points: Vec<[f64; 2]>,
    /// Full corridor width, metres.
    pub width_m: f64,
    /// Travel-time limits of chosen segments (路段行驶时间), as JT/T 808 0x8606 sets them per
    /// segment.
    #[serde(default)]
    pub segments: Vec<SegmentLimit>,
}

/// Travel-time limits of one segment of a route: from `points[index]` to `points[index + 1]`.
/// Judged when the vehicle leaves the segment for the next one, as a terminal does (JT/T
/// 808-2019 table 24, bit 18 路段行驶时间不足/过长).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentLimit {
    /// The segment's first point.
    pub index: usize,
    /// Leaving sooner than this is too short (driven too fast), seconds.
    #[serde(default)]
    pub too_short_s: Option<i64>,
    /// Leaving later than this is too long, seconds.
    #[serde(default)]
    pub too_long_s: Option<i64>,
}

/// Which side of a threshold is the alarm side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Alarm when the value is above the threshold.
    Above,
    /// Alarm when the value is below the threshold.
    Below,
}

/// A generic sensor threshold with hysteresis and minimum duration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorRule {
    /// Unique id.
    pub id: String,
    /// Metric name matched against [`crate::Reading::metric`].
    pub metric: String,
    /// Alarm side.
    pub direction: Direction,
    /// Threshold.
    pub threshold: f64,
    /// The alarm clears only once the value is back past `threshold ∓ hysteresis`.
    #[serde(default)]
    pub hysteresis: f64,
    /// The value must stay beyond the threshold this long before the alarm, seconds.
    #[serde(default)]
    pub min_duration_s: i64,
    /// Severity of the alarm.
    #[serde(default)]
    pub severity: Severity,
    /// Classes it applies to; empty: all.
    #[serde(default)]
    pub classes: Vec<String>,
}

/// A versioned rule set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Version; every alarm carries the version that raised it.
    pub version: u32,
    /// Engine-wide settings.
    #[serde(default)]
    pub engine: EngineSettings,
    /// Defaults for every class.
    #[serde(default)]
    pub defaults: Limits,
    /// Per-class limits. When absent from a file, the built-in table of
    /// [`RuleSet::builtin_classes`] applies; when present, it replaces that table.
    #[serde(default = "RuleSet::builtin_classes")]
    pub by_class: BTreeMap<String, Limits>,
    /// Per-enterprise overrides (over the class).
    #[serde(default)]
    pub by_enterprise: BTreeMap<String, Limits>,
    /// Areas (geofences and area speed limits).
    #[serde(default)]
    pub areas: Vec<Area>,
    /// Route corridors.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Sensor thresholds.
    #[serde(default)]
    pub sensors: Vec<SensorRule>,
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet {
            version: 1,
            engine: EngineSettings::default(),
            defaults: Limits::default(),
            by_class: Self::builtin_classes(),
            by_enterprise: BTreeMap::new(),
            areas: Vec::new(),
            routes: Vec::new(),
            sensors: Vec::new(),
        }
    }
}

/// A configuration error naming the offending field.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    /// A duration or distance below zero.
    #[error("{field}: must not be negative")]
    Negative {
        /// Path of the field, e.g. `by_class.coach.fatigue_rest_min`.
        field: String,
    },
    /// A value that is out of its range or not finite.
    #[error("{field}: {reason}")]
    OutOfRange {
        /// Path of the field.
        field: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A shape or route without enough points.
    #[error("{field}: too few points")]
    TooFewPoints {
        /// Path of the field.
        field: String,
    },
    /// Two areas, routes or sensor rules with the same id.
    #[error("{field}: duplicate id {id}")]
    DuplicateId {
        /// The list.
        field: String,
        /// The id.
        id: String,
    },
}

fn nonneg_i(field: impl FnOnce() -> String, v: Option<i64>) -> Result<(), ConfigError> {
    match v {
        Some(v) if v < 0 => Err(ConfigError::Negative { field: field() }),
        _ => Ok(()),
    }
}

fn positive_f(field: impl FnOnce() -> String, v: Option<f64>) -> Result<(), ConfigError> {
    match v {
        Some(v) if !v.is_finite() => Err(ConfigError::OutOfRange { field: field(), reason: "must be finite" }),
        Some(v) if v < 0.0 => Err(ConfigError::Negative { field: field() }),
        _ => Ok(()),
    }
}

fn minute_of_day(field: impl FnOnce() -> String, v: Option<i64>) -> Result<(), ConfigError> {
    match v {
        Some(v) if !(0..1440).contains(&v) => {
            Err(ConfigError::OutOfRange { field: field(), reason: "must be a minute of the day, 0..1440" })
        }
        _ => Ok(()),
    }
}

fn lat_lon(field: impl Fn() -> String, lat: f64, lon: f64) -> Result<(), ConfigError> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(ConfigError::OutOfRange { field: field(), reason: "latitude or longitude out of range" });
    }
    Ok(())
}

impl Limits {
    fn check(&self, at: &str) -> Result<(), ConfigError> {
        let f = |name: &str| format!("{at}.{name}");
        positive_f(|| f("speed_limit_kmh"), self.speed_limit_kmh)?;
        if self.speed_limit_kmh == Some(0.0) {
            return Err(ConfigError::OutOfRange { field: f("speed_limit_kmh"), reason: "must be above zero" });
        }
        nonneg_i(|| f("overspeed_min_duration_s"), self.overspeed_min_duration_s)?;
        positive_f(|| f("night_speed_percent"), self.night_speed_percent)?;
        if self.night_speed_percent.is_some_and(|p| p == 0.0 || p > 100.0) {
            return Err(ConfigError::OutOfRange { field: f("night_speed_percent"), reason: "must be in (0, 100]" });
        }
        positive_f(|| f("driving_speed_kmh"), self.driving_speed_kmh)?;
        nonneg_i(|| f("fatigue_day_limit_min"), self.fatigue_day_limit_min)?;
        nonneg_i(|| f("fatigue_night_limit_min"), self.fatigue_night_limit_min)?;
        nonneg_i(|| f("fatigue_rest_min"), self.fatigue_rest_min)?;
        nonneg_i(|| f("fatigue_prewarn_min"), self.fatigue_prewarn_min)?;
        nonneg_i(|| f("daily_driving_limit_min"), self.daily_driving_limit_min)?;
        nonneg_i(|| f("weekly_driving_limit_min"), self.weekly_driving_limit_min)?;
        minute_of_day(|| f("curfew_start_min"), self.curfew_start_min)?;
        minute_of_day(|| f("curfew_end_min"), self.curfew_end_min)?;
        nonneg_i(|| f("offline_min"), self.offline_min)?;
        nonneg_i(|| f("offline_long_min"), self.offline_long_min)?;
        Ok(())
    }
}

impl RuleSet {
    /// Built-in rule set (version 1) with the class table of [`RuleSet::builtin_classes`].
    pub fn builtin(version: u32) -> Self {
        RuleSet { version, ..RuleSet::default() }
    }

    /// Built-in per-class defaults. Speed limits are configurable defaults, not law for every
    /// road: coach, tourist coach and heavy goods 100 km/h (large passenger and goods vehicles on
    /// expressways, Implementing Regulations art. 78); dangerous goods 80 km/h (the usual
    /// expressway cap for dangerous-goods vehicles); school bus 60 km/h (校车安全管理条例 art. 35,
    /// roads other than expressways); city bus 60 km/h and taxi 80 km/h (urban roads).
    /// Passenger classes get the night speed rule, `coach` the 02:00–05:00 curfew, and
    /// `dangerous_goods` the offline-driving alarm.
    pub fn builtin_classes() -> BTreeMap<String, Limits> {
        let class = |speed: f64, night: bool, curfew: bool, offline_driving: bool| Limits {
            speed_limit_kmh: Some(speed),
            night_speed: night.then_some(true),
            curfew: curfew.then_some(true),
            offline_driving: offline_driving.then_some(true),
            ..Limits::default()
        };
        [
            ("dangerous_goods", class(80.0, false, false, true)),
            ("coach", class(100.0, true, true, false)),
            ("tourist_coach", class(100.0, true, false, false)),
            ("school_bus", class(60.0, true, false, false)),
            ("city_bus", class(60.0, true, false, false)),
            ("taxi", class(80.0, false, false, false)),
            ("heavy_goods", class(100.0, false, false, false)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Validates every field; the error names the first bad one.
    pub fn check(&self) -> Result<(), ConfigError> {
        let e = &self.engine;
        minute_of_day(|| "engine.night_start_min".into(), Some(e.night_start_min))?;
        minute_of_day(|| "engine.night_end_min".into(), Some(e.night_end_min))?;
        nonneg_i(|| "engine.gap_s".into(), Some(e.gap_s))?;
        positive_f(|| "engine.gap_reference_speed_kmh".into(), Some(e.gap_reference_speed_kmh))?;
        if e.gap_reference_speed_kmh == 0.0 {
            return Err(ConfigError::OutOfRange {
                field: "engine.gap_reference_speed_kmh".into(),
                reason: "must be above zero",
            });
        }
        nonneg_i(|| "engine.checkpoint_max_age_s".into(), Some(e.checkpoint_max_age_s))?;
        positive_f(|| "engine.drift_speed_kmh".into(), Some(e.drift_speed_kmh))?;
        positive_f(|| "engine.drift_min_distance_m".into(), Some(e.drift_min_distance_m))?;
        nonneg_i(|| "engine.future_tolerance_s".into(), Some(e.future_tolerance_s))?;
        nonneg_i(|| "engine.invalid_min_duration_s".into(), Some(e.invalid_min_duration_s))?;
        positive_f(|| "engine.offline_driving_min_distance_m".into(), Some(e.offline_driving_min_distance_m))?;
        self.defaults.check("defaults")?;
        for (k, l) in &self.by_class {
            l.check(&format!("by_class.{k}"))?;
        }
        for (k, l) in &self.by_enterprise {
            l.check(&format!("by_enterprise.{k}"))?;
        }
        if self.areas.len() > usize::from(u16::MAX) || self.sensors.len() > usize::from(u16::MAX) {
            return Err(ConfigError::OutOfRange { field: "areas".into(), reason: "too many entries" });
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, a) in self.areas.iter().enumerate() {
            let at = format!("areas[{i}]");
            if !seen.insert(a.id.as_str()) {
                return Err(ConfigError::DuplicateId { field: "areas".into(), id: a.id.clone() });
            }
            positive_f(|| format!("{at}.speed_limit_kmh"), a.speed_limit_kmh)?;
            nonneg_i(|| format!("{at}.dwell_max_min"), a.dwell_max_min)?;
            match &a.shape {
                Shape::Circle { lat, lon, radius_m } => {
                    lat_lon(|| format!("{at}.shape"), *lat, *lon)?;
                    positive_f(|| format!("{at}.shape.radius_m"), Some(*radius_m))?;
                }
                Shape::Rectangle { north, south, east, west } => {
                    lat_lon(|| format!("{at}.shape"), *north, *east)?;
                    lat_lon(|| format!("{at}.shape"), *south, *west)?;
                    if north < south || east < west {
                        return Err(ConfigError::OutOfRange {
                            field: format!("{at}.shape"),
                            reason: "north must not be below south, nor east below west",
                        });
                    }
                }
                Shape::Polygon { points } => {
                    if points.len() < 3 {
                        return Err(ConfigError::TooFewPoints { field: format!("{at}.shape.points") });
                    }
                    for (j, p) in points.iter().enumerate() {
                        lat_lon(|| format!("{at}.shape.points[{j}]"), p[0], p[1])?;
                    }
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, r) in self.routes.iter().enumerate() {
            if !seen.insert(r.id.as_str()) {
                return Err(ConfigError::DuplicateId { field: "routes".into(), id: r.id.clone() });
            }
            if r.points.len() < 2 {
                return Err(ConfigError::TooFewPoints { field: format!("routes[{i}].points") });
            }
            for (j, p) in r.points.iter().enumerate() {
                lat_lon(|| format!("routes[{i}].points[{j}]"), p[0], p[1])?;
            }
            positive_f(|| format!("routes[{i}].width_m"), Some(r.width_m))?;
            for (j, sl) in r.segments.iter().enumerate() {
                if sl.index + 1 >= r.points.len() {
                    return Err(ConfigError::OutOfRange {
                        field: format!("routes[{i}].segments[{j}].index"),
                        reason: "must name a segment: below the number of points minus one",
                    });
                }
                nonneg_i(|| format!("routes[{i}].segments[{j}].too_short_s"), sl.too_short_s)?;
                nonneg_i(|| format!("routes[{i}].segments[{j}].too_long_s"), sl.too_long_s)?;
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, s) in self.sensors.iter().enumerate() {
            if !seen.insert(s.id.as_str()) {
                return Err(ConfigError::DuplicateId { field: "sensors".into(), id: s.id.clone() });
            }
            if !s.threshold.is_finite() {
                return Err(ConfigError::OutOfRange {
                    field: format!("sensors[{i}].threshold"),
                    reason: "must be finite",
                });
            }
            positive_f(|| format!("sensors[{i}].hysteresis"), Some(s.hysteresis))?;
            nonneg_i(|| format!("sensors[{i}].min_duration_s"), Some(s.min_duration_s))?;
        }
        Ok(())
    }

    /// Resolves the limits for one profile.
    pub(crate) fn resolve(&self, profile: &Profile) -> Params {
        let levels =
            [self.by_enterprise.get(&profile.enterprise), self.by_class.get(&profile.class), Some(&self.defaults)];
        macro_rules! pick {
            ($field:ident, $builtin:expr) => {
                levels.iter().flatten().find_map(|l| l.$field).unwrap_or($builtin)
            };
        }
        let min = |m: i64| m.saturating_mul(MINUTE_MS);
        let applies = |classes: &[String], enterprises: &[String]| {
            (classes.is_empty() || classes.contains(&profile.class))
                && (enterprises.is_empty() || enterprises.contains(&profile.enterprise))
        };
        let e = &self.engine;
        Params {
            speed_limit_kmh: pick!(speed_limit_kmh, 120.0),
            overspeed_min_ms: pick!(overspeed_min_duration_s, 60).saturating_mul(1000),
            terminal_bit: pick!(terminal_overspeed_bit, true),
            night_speed: pick!(night_speed, false),
            night_factor: pick!(night_speed_percent, 80.0) / 100.0,
            driving_kmh: pick!(driving_speed_kmh, 5.0),
            fatigue: pick!(fatigue, true),
            day_limit_ms: min(pick!(fatigue_day_limit_min, 240)),
            night_limit_ms: min(pick!(fatigue_night_limit_min, 120)),
            rest_ms: min(pick!(fatigue_rest_min, 20)),
            prewarn_ms: min(pick!(fatigue_prewarn_min, 30)),
            daily_ms: min(pick!(daily_driving_limit_min, 480)),
            weekly_ms: min(pick!(weekly_driving_limit_min, 2640)),
            curfew: pick!(curfew, false).then(|| (pick!(curfew_start_min, 120), pick!(curfew_end_min, 300))),
            offline_ms: min(pick!(offline_min, 10)),
            offline_long_ms: min(pick!(offline_long_min, 1440)),
            offline_driving: pick!(offline_driving, false),
            night: (e.night_start_min, e.night_end_min),
            gap_ms: e.gap_s.saturating_mul(1000),
            gap_speed_mps: e.gap_reference_speed_kmh / 3.6,
            drift_kmh: e.drift_speed_kmh,
            drift_min_m: e.drift_min_distance_m,
            invalid_min_ms: e.invalid_min_duration_s.saturating_mul(1000),
            offline_driving_min_m: e.offline_driving_min_distance_m,
            areas: (0..self.areas.len())
                .filter(|&i| applies(&self.areas[i].classes, &self.areas[i].enterprises))
                .filter_map(|i| u16::try_from(i).ok())
                .collect(),
            route: profile
                .route
                .as_ref()
                .and_then(|r| self.routes.iter().position(|x| &x.id == r))
                .and_then(|i| u16::try_from(i).ok()),
            sensors: (0..self.sensors.len())
                .filter(|&i| applies(&self.sensors[i].classes, &[]))
                .filter_map(|i| u16::try_from(i).ok())
                .collect(),
        }
    }
}

/// Limits resolved for one profile, in milliseconds where they are durations.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    pub speed_limit_kmh: f64,
    pub overspeed_min_ms: i64,
    pub terminal_bit: bool,
    pub night_speed: bool,
    pub night_factor: f64,
    pub driving_kmh: f64,
    pub fatigue: bool,
    pub day_limit_ms: i64,
    pub night_limit_ms: i64,
    pub rest_ms: i64,
    pub prewarn_ms: i64,
    pub daily_ms: i64,
    pub weekly_ms: i64,
    pub curfew: Option<(i64, i64)>,
    pub offline_ms: i64,
    pub offline_long_ms: i64,
    pub offline_driving: bool,
    pub night: (i64, i64),
    pub gap_ms: i64,
    pub gap_speed_mps: f64,
    pub drift_kmh: f64,
    pub drift_min_m: f64,
    pub invalid_min_ms: i64,
    pub offline_driving_min_m: f64,
    pub areas: Vec<u16>,
    pub route: Option<u16>,
    pub sensors: Vec<u16>,
}

impl Params {
    pub(crate) fn is_night(&self, unix_ms: i64) -> bool {
        crate::time::in_window(crate::time::local_minute_of_day(unix_ms), self.night.0, self.night.1)
    }
}

// Keeps the offset constant referenced from the config docs honest.
const _: () = assert!(SHANGHAI_OFFSET_MS == 8 * 3_600_000);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rule_set_checks() {
        assert_eq!(RuleSet::default().check(), Ok(()));
    }

    #[test]
    fn negative_duration_is_named() {
        let mut r = RuleSet::default();
        r.by_class.entry("coach".into()).or_default().fatigue_rest_min = Some(-1);
        assert_eq!(r.check(), Err(ConfigError::Negative { field: "by_class.coach.fatigue_rest_min".into() }));
    }

    #[test]
    fn empty_polygon_is_named() {
        let mut r = RuleSet::default();
        r.areas.push(Area {
            id: "a".into(),
            shape: Shape::Polygon { points: vec![] },
            speed_limit_kmh: None,
            alarm_enter: true,
            alarm_leave: true,
            dwell_max_min: None,
            classes: vec![],
            enterprises: vec![],
        });
        assert_eq!(r.check(), Err(ConfigError::TooFewPoints { field: "areas[0].shape.points".into() }));
    }

    #[test]
    fn enterprise_overrides_class_overrides_defaults() {
        let mut r = RuleSet::default();
        r.defaults.fatigue_rest_min = Some(30);
        r.by_enterprise.insert("e1".into(), Limits { speed_limit_kmh: Some(90.0), ..Limits::default() });
        let p = r.resolve(&Profile::new("coach", "e1"));
        assert_eq!(p.speed_limit_kmh, 90.0);
        assert_eq!(p.rest_ms, 30 * MINUTE_MS);
        assert!(p.night_speed && p.curfew.is_some());
        let p = r.resolve(&Profile::new("coach", "e2"));
        assert_eq!(p.speed_limit_kmh, 100.0);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<RuleSet>(r#"{"version":1,"speed":3}"#);
        assert!(err.is_err());
        let ok: RuleSet = serde_json::from_str(
            r#"{"version":2,"areas":[{"id":"z","shape":{"type":"circle","lat":39.0,"lon":117.0,"radius_m":500}}]}"#,
        )
        .expect("parses");
        assert_eq!(ok.by_class.len(), 7);
        assert_eq!(ok.check(), Ok(()));
    }
}
