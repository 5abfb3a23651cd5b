//! Driving along a road: position, speed and stops, advanced by simulated time. Pure: no clock,
//! no IO, so scenarios are deterministic and testable.

use crate::roads::Road;

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

impl Driver {
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
        }
    }

    fn ends(&self) -> ((f64, f64), (f64, f64)) {
        let (a, b) = (self.road.points[self.seg], self.road.points[self.seg + 1]);
        if self.forward { (a, b) } else { (b, a) }
    }

    /// The current position (lat, lon).
    pub fn position(&self) -> (f64, f64) {
        let (a, b) = self.ends();
        let len = seg_len_m(a, b).max(1e-6);
        let t = (self.along / len).clamp(0.0, 1.0);
        (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
    }

    /// Advances by `dt` seconds; `jitter` in [-1, 1] varies the speed a little.
    pub fn step(&mut self, dt: f64, jitter: f64) {
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
