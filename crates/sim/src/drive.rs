//! Driving along a road: position, speed and stops, advanced by simulated time. Pure: no clock,
//! no IO, so scenarios are deterministic and testable.
//!
//! A driver may follow a scenario [`Plan`]: timed speeding, no rests, an offline window (which
//! the terminal honours) and leaving the route, where the vehicle drives cross-country on a
//! bearing at road speed, then straight back to the nearest point of its road and on along it.

use crate::roads::Road;
use crate::scenario::Plan;

/// Metres per degree of latitude on the mean sphere.
const M_PER_DEG: f64 = 111_195.0;

/// What a driver is told to do differently (scenario files set these).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Behaviour {
    /// Multiply the road speed by this (1.3 = 30 % over: a speeding scenario).
    pub speed_factor: f64,
    /// Never take the planned rests (a no-rest scenario).
    pub no_rest: bool,
    /// Stop every this many metres for `stop_secs` (a bus's stations); 0: no such stops.
    pub stop_every_m: f64,
    pub stop_secs: f64,
}

/// One vehicle's motion along a road, back and forth.
#[derive(Debug, Clone)]
pub struct Driver {
    road: &'static Road,
    seg: usize,
    /// Metres along the current segment.
    along: f64,
    forward: bool,
    pub behaviour: Behaviour,
    stopped_for: f64,
    since_stop_m: f64,
    /// Seconds driven since the last rest ≥ 20 min.
    driving_secs: f64,
    pub speed_kmh: f64,
    pub heading: u16,
    pub odometer_km: f64,
    /// Set while the vehicle is away from its road.
    off_road: Option<OffRoad>,
    script: Option<Script>,
}

/// Away from the road: where the vehicle is, and where it is going.
#[derive(Debug, Clone, Copy)]
enum OffRoad {
    /// Cross-country on a bearing (degrees from north).
    Leaving { at: (f64, f64), bearing: f64 },
    /// Straight back to the road point `from_m` metres along segment `seg` (from its first point).
    Returning { at: (f64, f64), seg: usize, from_m: f64 },
}

/// A scenario plan and the simulated time it is read at.
#[derive(Debug, Clone, Copy)]
struct Script {
    plan: Plan,
    /// The behaviour outside the plan's timed episodes.
    base: Behaviour,
    elapsed_s: f64,
}

fn seg_len_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let dy = (b.0 - a.0) * M_PER_DEG;
    let dx = (b.1 - a.1) * M_PER_DEG * a.0.to_radians().cos();
    (dx * dx + dy * dy).sqrt()
}

fn bearing(a: (f64, f64), b: (f64, f64)) -> u16 {
    let dy = b.0 - a.0;
    let dx = (b.1 - a.1) * a.0.to_radians().cos();
    let deg = dx.atan2(dy).to_degrees();
    (deg.rem_euclid(360.0).round() as u16) % 360
}

/// `p` moved `d_m` metres on `bearing_deg` (flat earth: fine over the tens of kilometres of a
/// district).
fn moved(p: (f64, f64), bearing_deg: f64, d_m: f64) -> (f64, f64) {
    let b = bearing_deg.to_radians();
    let dlat = d_m * b.cos() / M_PER_DEG;
    let dlon = d_m * b.sin() / (M_PER_DEG * p.0.to_radians().cos());
    (p.0 + dlat, p.1 + dlon)
}

/// The point of `road` nearest to `p`: (segment, metres from the segment's first point, the
/// point, its distance from `p` in metres).
fn nearest_on_road(road: &Road, p: (f64, f64)) -> (usize, f64, (f64, f64), f64) {
    let cos = p.0.to_radians().cos();
    // Metres east and north of `p`.
    let local = |q: (f64, f64)| ((q.1 - p.1) * M_PER_DEG * cos, (q.0 - p.0) * M_PER_DEG);
    let mut best = (0, 0.0, road.points[0], f64::INFINITY);
    for (i, w) in road.points.windows(2).enumerate() {
        let (a, b) = (local(w[0]), local(w[1]));
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 { (-(a.0 * dx + a.1 * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
        let (x, y) = (a.0 + dx * t, a.1 + dy * t);
        let d = (x * x + y * y).sqrt();
        if d < best.3 {
            let point = (w[0].0 + (w[1].0 - w[0].0) * t, w[0].1 + (w[1].1 - w[0].1) * t);
            best = (i, len2.sqrt() * t, point, d);
        }
    }
    best
}

/// How far along `road` (0–1) its point nearest to `p` (lat, lon) lies: where a driver that
/// last reported at `p` goes on from.
pub fn offset_of(road: &Road, p: (f64, f64)) -> f64 {
    let (seg, along, _, _) = nearest_on_road(road, p);
    let before: f64 = road.points.windows(2).take(seg).map(|w| seg_len_m(w[0], w[1])).sum();
    let total: f64 = road.points.windows(2).map(|w| seg_len_m(w[0], w[1])).sum();
    if total > 0.0 { ((before + along) / total).clamp(0.0, 1.0) } else { 0.0 }
}

impl Driver {
    /// Goes on from where a terminal last reported, `p` (lat, lon) with its odometer, instead of
    /// starting afresh: a restarted simulator does not make its vehicles jump.
    pub fn resume(road: &'static Road, p: (f64, f64), odometer_km: Option<f64>, behaviour: Behaviour) -> Self {
        let mut d = Driver::new(road, offset_of(road, p), behaviour);
        if let Some(km) = odometer_km {
            d.odometer_km = km;
        }
        d
    }

    /// Starts `offset` (0–1) of the way along `road`.
    pub fn new(road: &'static Road, offset: f64, behaviour: Behaviour) -> Self {
        let total: f64 = road.points.windows(2).map(|w| seg_len_m(w[0], w[1])).sum();
        let mut left = total * offset.clamp(0.0, 1.0);
        let mut seg = 0;
        while seg + 2 < road.points.len() && left > seg_len_m(road.points[seg], road.points[seg + 1]) {
            left -= seg_len_m(road.points[seg], road.points[seg + 1]);
            seg += 1;
        }
        let behaviour = Behaviour {
            speed_factor: if behaviour.speed_factor > 0.0 { behaviour.speed_factor } else { 1.0 },
            ..behaviour
        };
        Driver {
            road,
            seg,
            along: left,
            forward: true,
            behaviour,
            stopped_for: 0.0,
            since_stop_m: 0.0,
            driving_secs: 0.0,
            speed_kmh: 0.0,
            heading: 0,
            odometer_km: 10_000.0 + offset * 1000.0,
            off_road: None,
            script: None,
        }
    }

    /// Follows a scenario plan from now on, its times counted in the seconds this driver is
    /// stepped from here. The plan's `speed_factor` and `no_rest` replace the behaviour's.
    pub fn with_plan(mut self, plan: Plan) -> Self {
        if let Some(f) = plan.speed_factor {
            self.behaviour.speed_factor = f;
        }
        self.behaviour.no_rest |= plan.no_rest;
        self.script = Some(Script { plan, base: self.behaviour, elapsed_s: 0.0 });
        self
    }

    /// Seconds stepped since the plan was set (0 without one).
    pub fn scenario_time_s(&self) -> f64 {
        self.script.map_or(0.0, |s| s.elapsed_s)
    }

    /// The plan says the terminal is silent now (no connection; fixes are kept for later).
    pub fn offline(&self) -> bool {
        self.script.is_some_and(|s| s.plan.offline.is_some_and(|w| w.contains(s.elapsed_s)))
    }

    /// Away from the road (leaving it or on the way back).
    pub fn off_road(&self) -> bool {
        self.off_road.is_some()
    }

    /// Metres from the current position to the nearest point of the road.
    pub fn distance_to_road_m(&self) -> f64 {
        nearest_on_road(self.road, self.position()).3
    }

    /// Leaves the road now, driving cross-country on `bearing_deg` until [`Driver::rejoin_road`].
    pub fn leave_road(&mut self, bearing_deg: f64) {
        if self.off_road.is_none() {
            self.off_road = Some(OffRoad::Leaving { at: self.position(), bearing: bearing_deg.rem_euclid(360.0) });
        }
    }

    /// Heads straight back to the nearest point of the road, then on along it.
    pub fn rejoin_road(&mut self) {
        if let Some(OffRoad::Leaving { at, .. }) = self.off_road {
            let (seg, from_m, _, _) = nearest_on_road(self.road, at);
            self.off_road = Some(OffRoad::Returning { at, seg, from_m });
        }
    }

    /// Applies the plan for the step that starts now and advances its clock by `dt`.
    fn follow_script(&mut self, dt: f64) {
        let Some(script) = &mut self.script else { return };
        let t = script.elapsed_s;
        script.elapsed_s += dt;
        let (plan, base) = (script.plan, script.base);
        self.behaviour.speed_factor = match plan.speeding {
            Some(s) if s.window().contains(t) => s.factor,
            _ => base.speed_factor,
        };
        if let Some(l) = plan.leave_route {
            if l.window().contains(t) {
                self.leave_road(l.bearing_deg);
            } else if t >= l.window().end() {
                self.rejoin_road();
            }
        }
    }

    /// Moves `go` metres away from the road or back to it.
    fn drive_off_road(&mut self, off: OffRoad, go: f64) {
        match off {
            OffRoad::Leaving { at, bearing } => {
                self.off_road = Some(OffRoad::Leaving { at: moved(at, bearing, go), bearing });
                self.heading = (bearing.round() as u16) % 360;
            }
            OffRoad::Returning { at, seg, from_m } => {
                let (a, b) = (self.road.points[seg], self.road.points[seg + 1]);
                let len = seg_len_m(a, b);
                let t = if len > 0.0 { from_m / len } else { 0.0 };
                let target = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
                let left = seg_len_m(at, target);
                if left <= go {
                    // Back on the road: carry on in the direction it was driven before.
                    self.seg = seg;
                    self.along = if self.forward { from_m } else { len - from_m };
                    self.off_road = None;
                    return;
                }
                self.heading = bearing(at, target);
                let f = go / left;
                let next = (at.0 + (target.0 - at.0) * f, at.1 + (target.1 - at.1) * f);
                self.off_road = Some(OffRoad::Returning { at: next, seg, from_m });
            }
        }
    }

    fn ends(&self) -> ((f64, f64), (f64, f64)) {
        let (a, b) = (self.road.points[self.seg], self.road.points[self.seg + 1]);
        if self.forward { (a, b) } else { (b, a) }
    }

    /// The current position (lat, lon).
    pub fn position(&self) -> (f64, f64) {
        match self.off_road {
            Some(OffRoad::Leaving { at, .. } | OffRoad::Returning { at, .. }) => return at,
            None => {}
        }
        let (a, b) = self.ends();
        let len = seg_len_m(a, b).max(1e-6);
        let t = (self.along / len).clamp(0.0, 1.0);
        (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
    }

    /// Advances by `dt` seconds; `jitter` in [-1, 1] varies the speed a little.
    pub fn step(&mut self, dt: f64, jitter: f64) {
        self.follow_script(dt);
        if self.stopped_for > 0.0 {
            self.stopped_for -= dt;
            self.speed_kmh = 0.0;
            return;
        }
        // A rest of 25 minutes after 3 h 50 min at the wheel, unless told not to.
        if !self.behaviour.no_rest && self.driving_secs >= 3.0 * 3600.0 + 50.0 * 60.0 {
            self.driving_secs = 0.0;
            self.stopped_for = 25.0 * 60.0;
            self.speed_kmh = 0.0;
            return;
        }
        self.speed_kmh = (self.road.speed_kmh * self.behaviour.speed_factor * (1.0 + 0.08 * jitter)).max(5.0);
        self.driving_secs += dt;
        let mut go = self.speed_kmh / 3.6 * dt;
        self.odometer_km += go / 1000.0;
        if let Some(off) = self.off_road {
            self.drive_off_road(off, go);
            return;
        }
        self.since_stop_m += go;
        if self.behaviour.stop_every_m > 0.0 && self.since_stop_m >= self.behaviour.stop_every_m {
            self.since_stop_m = 0.0;
            self.stopped_for = self.behaviour.stop_secs;
        }
        loop {
            let (a, b) = self.ends();
            let len = seg_len_m(a, b);
            self.heading = bearing(a, b);
            if self.along + go <= len {
                self.along += go;
                return;
            }
            go -= len - self.along;
            self.along = 0.0;
            let last = self.road.points.len() - 2;
            if self.forward {
                if self.seg == last {
                    self.forward = false;
                } else {
                    self.seg += 1;
                }
            } else if self.seg == 0 {
                self.forward = true;
            } else {
                self.seg -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roads::ROADS;

    #[test]
    fn drives_at_road_speed_and_stays_near_the_road() {
        let mut d = Driver::new(&ROADS[0], 0.1, Behaviour::default());
        let start = d.position();
        for _ in 0..60 {
            d.step(10.0, 0.0);
        }
        // Ten minutes at 90 km/h: 15 km.
        let (lat, lon) = d.position();
        let moved = seg_len_m(start, (lat, lon));
        assert!((14_000.0..15_100.0).contains(&moved), "{moved}");
        assert_eq!(d.speed_kmh, 90.0);
        assert!((39.2..39.6).contains(&lat) && (116.8..117.3).contains(&lon));
    }

    #[test]
    fn rests_after_almost_four_hours_unless_told_not_to() {
        let mut d = Driver::new(&ROADS[2], 0.0, Behaviour::default());
        let mut stopped_at = None;
        for i in 0..(5 * 360) {
            d.step(10.0, 0.0);
            if d.speed_kmh == 0.0 && stopped_at.is_none() {
                stopped_at = Some(i * 10);
            }
        }
        assert_eq!(stopped_at, Some(3 * 3600 + 50 * 60));
        let mut tired = Driver::new(&ROADS[2], 0.0, Behaviour { no_rest: true, ..Default::default() });
        for _ in 0..(5 * 360) {
            tired.step(10.0, 0.0);
            assert!(tired.speed_kmh > 0.0);
        }
    }

    #[test]
    fn buses_stop_at_stations() {
        let mut d =
            Driver::new(&ROADS[3], 0.0, Behaviour { stop_every_m: 800.0, stop_secs: 30.0, ..Default::default() });
        let stops = (0..120).filter(|_| {
            d.step(5.0, 0.0);
            d.speed_kmh == 0.0
        });
        assert!(stops.count() >= 5);
    }
}

#[cfg(test)]
mod resume_tests {
    use super::*;
    use crate::roads::ROADS;

    #[test]
    fn a_resumed_driver_starts_where_the_last_report_was() {
        let road = &ROADS[0];
        for offset in [0.0, 0.25, 0.6, 1.0] {
            let d = Driver::new(road, offset, Behaviour::default());
            let p = d.position();
            let r = Driver::resume(road, p, Some(12_345.6), Behaviour::default());
            let q = r.position();
            assert!(seg_len_m(p, q) < 1.0, "offset {offset}: {p:?} became {q:?}");
            assert!((offset_of(road, p) - offset).abs() < 1e-6);
        }
    }
}
