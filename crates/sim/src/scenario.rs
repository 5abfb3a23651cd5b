//! Scenario files: what chosen vehicles of `wuqing sim run --scenario FILE` do differently.
//!
//! A TOML file of `[[vehicle]]` entries. Each names a terminal phone or an inclusive range
//! (`"13800000001-13800000005"`), every one of which must be among `--phones`, and at most one
//! entry per phone. Times are seconds after the terminal starts; each timed episode happens once.
//!
//! ```toml
//! [[vehicle]]
//! phone = "13800000001"
//! speed_factor = 1.4                 # drives at 1.4 × the road speed from the start
//! no_rest = true                     # never takes the rest due after 3 h 50 min at the wheel
//! speeding = { after_s = 30, for_s = 120, factor = 1.5 }           # 1.5 × road speed for 2 min
//! offline = { after_s = 60, for_s = 300 }                          # silent for 5 min
//! leave_route = { after_s = 120, for_s = 600, bearing_deg = 90 }   # cross-country for 10 min
//! ```
//!
//! - `offline`: the terminal closes its connection and keeps recording fixes; when the window
//!   ends it reconnects and uploads them as blind-area 0x0704 batches.
//! - `leave_route`: the vehicle leaves its road and drives on the bearing (degrees from north) at
//!   its road speed, then straight back to the nearest point of the road and on along it.
//! - `speed_factor` (0–10) replaces `--speed-factor` for that vehicle; `speeding.factor` applies
//!   during its window only.
//!
//! Unknown keys are refused by name. Parsing and checking are pure; the timed switching is done
//! by [`crate::Driver::with_plan`], driven by simulated time.

use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

/// A time window: from `after_s` for `for_s` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub after_s: f64,
    pub for_s: f64,
}

impl Window {
    pub fn contains(&self, t: f64) -> bool {
        t >= self.after_s && t < self.end()
    }
    pub fn end(&self) -> f64 {
        self.after_s + self.for_s
    }
}

/// A timed speeding episode.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Speeding {
    pub after_s: f64,
    pub for_s: f64,
    /// Multiple of the road speed during the window.
    pub factor: f64,
}

impl Speeding {
    pub fn window(&self) -> Window {
        Window { after_s: self.after_s, for_s: self.for_s }
    }
}

/// A timed excursion away from the route.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaveRoute {
    pub after_s: f64,
    pub for_s: f64,
    /// Degrees clockwise from north, [0, 360).
    pub bearing_deg: f64,
}

impl LeaveRoute {
    pub fn window(&self) -> Window {
        Window { after_s: self.after_s, for_s: self.for_s }
    }
}

/// What one vehicle is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Plan {
    pub speed_factor: Option<f64>,
    pub no_rest: bool,
    pub speeding: Option<Speeding>,
    pub offline: Option<Window>,
    pub leave_route: Option<LeaveRoute>,
}

/// A `[[vehicle]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    phone: String,
    speed_factor: Option<f64>,
    #[serde(default)]
    no_rest: bool,
    speeding: Option<Speeding>,
    offline: Option<Window>,
    leave_route: Option<LeaveRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    vehicle: Vec<Entry>,
}

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("reading scenario {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("scenario: {0}")]
    Toml(toml::de::Error),
    #[error("scenario [[vehicle]] #{entry} (phone {phone:?}): {reason}")]
    Invalid { entry: usize, phone: String, reason: String },
    #[error("scenario [[vehicle]] #{entry}: phone {phone} is not among --phones")]
    NotSimulated { entry: usize, phone: u64 },
    #[error("scenario: phone {phone} is in [[vehicle]] #{first} and #{second}")]
    Duplicate { phone: u64, first: usize, second: usize },
}

/// The most numbers one entry's range may name (as `--phones`).
const MAX_RANGE: u64 = 200_000;

/// A checked scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Inclusive phone ranges and their plan, in file order.
    entries: Vec<(u64, u64, Plan)>,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ScenarioError::Read { path: path.display().to_string(), error })?;
        Self::parse(&text)
    }

    /// Parses and checks a scenario's TOML text.
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        let file: File = toml::from_str(text).map_err(ScenarioError::Toml)?;
        let mut entries = Vec::with_capacity(file.vehicle.len());
        for (i, e) in file.vehicle.into_iter().enumerate() {
            let invalid = |reason: String| ScenarioError::Invalid { entry: i + 1, phone: e.phone.clone(), reason };
            let (lo, hi) = phone_range(&e.phone).map_err(invalid)?;
            check_entry(&e).map_err(invalid)?;
            let plan = Plan {
                speed_factor: e.speed_factor,
                no_rest: e.no_rest,
                speeding: e.speeding,
                offline: e.offline,
                leave_route: e.leave_route,
            };
            entries.push((lo, hi, plan));
        }
        Ok(Scenario { entries })
    }

    /// The plan of each phone the file names, keyed as `phones` spells them. Every phone must be
    /// one of `phones` (decimal, as `--phones` expands them) and named once.
    pub fn plans(&self, phones: &[String]) -> Result<HashMap<String, Plan>, ScenarioError> {
        let simulated: HashMap<u64, &String> =
            phones.iter().filter_map(|p| p.parse::<u64>().ok().map(|n| (n, p))).collect();
        let mut plans = HashMap::new();
        let mut seen: HashMap<u64, usize> = HashMap::new();
        for (i, (lo, hi, plan)) in self.entries.iter().enumerate() {
            for n in *lo..=*hi {
                let Some(p) = simulated.get(&n) else {
                    return Err(ScenarioError::NotSimulated { entry: i + 1, phone: n });
                };
                if let Some(first) = seen.insert(n, i + 1) {
                    return Err(ScenarioError::Duplicate { phone: n, first, second: i + 1 });
                }
                plans.insert((*p).clone(), *plan);
            }
        }
        Ok(plans)
    }
}

/// `"13800000001"` or `"13800000001-13800000005"`.
fn phone_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let num = |x: &str| {
        let x = x.trim();
        if x.is_empty() || x.len() > 19 || !x.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("phone {s:?}: digits (at most 19), or a range low-high"));
        }
        x.parse::<u64>().map_err(|e| format!("phone {s:?}: {e}"))
    };
    let (lo, hi) = (num(a)?, num(b)?);
    if hi < lo || hi - lo >= MAX_RANGE {
        return Err(format!("phone {s:?}: a range of at most {MAX_RANGE} numbers, low-high"));
    }
    Ok((lo, hi))
}

fn check_entry(e: &Entry) -> Result<(), String> {
    let factor = |key: &str, f: f64| {
        if f.is_finite() && f > 0.0 && f <= 10.0 {
            Ok(())
        } else {
            Err(format!("{key} = {f}: a multiple of the road speed, above 0 and at most 10"))
        }
    };
    let window = |key: &str, after_s: f64, for_s: f64| {
        if !(after_s.is_finite() && after_s >= 0.0) {
            return Err(format!("{key}.after_s = {after_s}: seconds, 0 or more"));
        }
        if !(for_s.is_finite() && for_s > 0.0) {
            return Err(format!("{key}.for_s = {for_s}: seconds, more than 0"));
        }
        Ok(())
    };
    if let Some(f) = e.speed_factor {
        factor("speed_factor", f)?;
    }
    if let Some(s) = e.speeding {
        window("speeding", s.after_s, s.for_s)?;
        factor("speeding.factor", s.factor)?;
    }
    if let Some(w) = e.offline {
        window("offline", w.after_s, w.for_s)?;
    }
    if let Some(l) = e.leave_route {
        window("leave_route", l.after_s, l.for_s)?;
        if !(l.bearing_deg.is_finite() && (0.0..360.0).contains(&l.bearing_deg)) {
            return Err(format!("leave_route.bearing_deg = {}: degrees from north, 0 to below 360", l.bearing_deg));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drive::{Behaviour, Driver};
    use crate::roads::ROADS;

    fn phones(r: std::ops::RangeInclusive<u64>) -> Vec<String> {
        r.map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_example_file_parses_and_names_its_phones() {
        let text = include_str!("../../../examples/scenarios/demo.toml");
        let s = Scenario::parse(text).unwrap();
        let plans = s.plans(&phones(13_900_000_001..=13_900_000_020)).unwrap();
        assert!(plans.len() >= 5, "{plans:?}");
        assert!(plans.values().any(|p| p.offline.is_some()));
        assert!(plans.values().any(|p| p.leave_route.is_some()));
        assert!(plans.values().any(|p| p.speeding.is_some()));
        assert!(plans.values().any(|p| p.no_rest));
    }

    #[test]
    fn ranges_expand_and_plans_are_keyed_by_phone() {
        let s = Scenario::parse(
            "[[vehicle]]\nphone = \"13800000002-13800000004\"\nno_rest = true\n\
             [[vehicle]]\nphone = \"13800000005\"\noffline = { after_s = 60, for_s = 300 }\n",
        )
        .unwrap();
        let plans = s.plans(&phones(13_800_000_001..=13_800_000_010)).unwrap();
        assert_eq!(plans.len(), 4);
        assert!(plans["13800000003"].no_rest);
        assert_eq!(plans["13800000005"].offline, Some(Window { after_s: 60.0, for_s: 300.0 }));
        assert!(!plans.contains_key("13800000001"));
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        for (text, key) in [
            ("[[vehicle]]\nphone = \"1\"\nspeedfactor = 1.2\n", "speedfactor"),
            ("[[vehicle]]\nphone = \"1\"\noffline = { after_s = 1, for = 2 }\n", "for"),
            ("[[vehicle]]\nphone = \"1\"\nleave_route = { after_s = 1, for_s = 2, bearing = 9 }\n", "bearing"),
            ("[[vehicles]]\nphone = \"1\"\n", "vehicles"),
        ] {
            let e = Scenario::parse(text).unwrap_err().to_string();
            assert!(e.contains(&format!("unknown field `{key}`")), "{e}");
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_entry_and_key() {
        for (text, needle) in [
            ("[[vehicle]]\nphone = \"x1\"\n", "digits"),
            ("[[vehicle]]\nphone = \"5-3\"\n", "low-high"),
            ("[[vehicle]]\nphone = \"1-999999999\"\n", "at most 200000"),
            ("[[vehicle]]\nphone = \"99999999999999999999\"\n", "digits (at most 19)"),
            ("[[vehicle]]\nphone = \"1\"\nspeed_factor = 0\n", "speed_factor = 0"),
            ("[[vehicle]]\nphone = \"1\"\nspeed_factor = nan\n", "speed_factor = NaN"),
            ("[[vehicle]]\nphone = \"1\"\nspeeding = { after_s = 1, for_s = 2, factor = 11 }\n", "speeding.factor"),
            ("[[vehicle]]\nphone = \"1\"\noffline = { after_s = -1, for_s = 2 }\n", "offline.after_s"),
            ("[[vehicle]]\nphone = \"1\"\noffline = { after_s = 1, for_s = 0 }\n", "offline.for_s"),
            (
                "[[vehicle]]\nphone = \"1\"\nleave_route = { after_s = 1, for_s = 2, bearing_deg = 360 }\n",
                "bearing_deg",
            ),
            ("[[vehicle]]\nphone = 13800000001\n", "invalid type"),
            ("[[vehicle]]\nspeed_factor = 1.2\n", "missing field `phone`"),
            ("[[vehicle]]\nphone = \"1\"\noffline = { after_s = 1 }\n", "missing field `for_s`"),
            ("not toml at all", "scenario"),
        ] {
            let e = Scenario::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle:?} not in {e:?}");
        }
        let e = Scenario::parse("\n[[vehicle]]\nphone = \"1\"\n[[vehicle]]\nphone = \"2\"\nspeed_factor = -1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("#2") && e.contains("\"2\""), "{e}");
    }

    #[test]
    fn phones_outside_the_simulated_range_or_named_twice_are_refused() {
        let s = Scenario::parse("[[vehicle]]\nphone = \"13800000009-13800000011\"\nno_rest = true\n").unwrap();
        let e = s.plans(&phones(13_800_000_001..=13_800_000_010)).unwrap_err().to_string();
        assert_eq!(e, "scenario [[vehicle]] #1: phone 13800000011 is not among --phones");
        let s = Scenario::parse("[[vehicle]]\nphone = \"3-5\"\n[[vehicle]]\nphone = \"5\"\n").unwrap();
        let e = s.plans(&phones(1..=9)).unwrap_err().to_string();
        assert_eq!(e, "scenario: phone 5 is in [[vehicle]] #1 and #2");
    }

    fn driver(road: usize, plan: Plan) -> Driver {
        Driver::new(&ROADS[road], 0.2, Behaviour::default()).with_plan(plan)
    }

    #[test]
    fn speeding_applies_inside_its_window_only() {
        let sp = Speeding { after_s: 30.0, for_s: 120.0, factor: 1.5 };
        let mut d = driver(2, Plan { speeding: Some(sp), ..Default::default() });
        let mut seen = vec![];
        for _ in 0..30 {
            let t = d.scenario_time_s();
            d.step(10.0, 0.0);
            seen.push((t, d.speed_kmh));
        }
        for (t, v) in seen {
            let want = if (30.0..150.0).contains(&t) { 90.0 } else { 60.0 };
            assert!((v - want).abs() < 1e-9, "at {t} s: {v} km/h, want {want}");
        }
    }

    #[test]
    fn a_plan_speed_factor_and_no_rest_hold_from_the_start() {
        let mut d = driver(2, Plan { speed_factor: Some(1.4), no_rest: true, ..Default::default() });
        for _ in 0..(5 * 360) {
            d.step(10.0, 0.0);
            assert!((d.speed_kmh - 84.0).abs() < 1e-9, "{}", d.speed_kmh);
        }
    }

    #[test]
    fn offline_holds_for_its_window() {
        let w = Window { after_s: 60.0, for_s: 300.0 };
        let mut d = driver(0, Plan { offline: Some(w), ..Default::default() });
        let mut offline_at = vec![];
        for _ in 0..60 {
            d.step(10.0, 0.0);
            if d.offline() {
                offline_at.push(d.scenario_time_s());
            }
            // Driving goes on while the terminal is silent.
            assert!(d.speed_kmh > 0.0);
        }
        assert_eq!(offline_at.first(), Some(&60.0));
        assert_eq!(offline_at.last(), Some(&350.0));
        assert_eq!(offline_at.len(), 30);
    }

    #[test]
    fn leaving_the_route_goes_beyond_500_m_then_returns_within_50_m() {
        // Quanzhou Road (40 km/h) runs east-south-east; the excursion heads north.
        let l = LeaveRoute { after_s: 120.0, for_s: 600.0, bearing_deg: 0.0 };
        let mut d = driver(3, Plan { leave_route: Some(l), ..Default::default() });
        let mut max_away: f64 = 0.0;
        let mut back_at = None;
        let mut last = d.distance_to_road_m();
        for _ in 0..(3600 / 5) {
            let t = d.scenario_time_s();
            d.step(5.0, 0.0);
            let away = d.distance_to_road_m();
            if t < 120.0 {
                assert!(away < 1.0 && !d.off_road(), "at {t} s: {away} m before leaving");
            } else if t < 720.0 {
                assert!(d.off_road(), "at {t} s");
                assert!(away >= last - 1e-6, "at {t} s: {away} m, closer than {last} m");
                assert!(d.speed_kmh > 0.0);
            } else if back_at.is_none() {
                assert!(away <= last + 1e-6, "at {t} s: {away} m, further than {last} m on the way back");
                if !d.off_road() {
                    back_at = Some(t);
                }
            } else {
                assert!(away < 50.0 && !d.off_road(), "at {t} s: {away} m after returning");
            }
            max_away = max_away.max(away);
            last = away;
        }
        // 600 s at 40 km/h is 6.7 km; heading north from a road that runs east-south-east.
        assert!(max_away > 500.0, "{max_away}");
        let back_at = back_at.expect("returned to the road");
        // The way back is no longer than the way out.
        assert!(back_at <= 720.0 + 600.0, "{back_at}");
        assert!(d.distance_to_road_m() < 50.0);
    }

    #[test]
    fn a_driver_without_a_plan_is_never_offline_nor_off_road() {
        let mut d = Driver::new(&ROADS[1], 0.5, Behaviour::default());
        for _ in 0..100 {
            d.step(30.0, 0.5);
            assert!(!d.offline() && !d.off_road() && d.distance_to_road_m() < 1.0);
        }
    }
}
