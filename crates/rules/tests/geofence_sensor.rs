//! Geofences (circle, rectangle, polygon), route corridor deviation and sensor thresholds.

mod common;

use common::*;
use rules::{
    AlarmKind, Area, Details, Direction, Engine, Phase, Profile, Reading, Route, RuleSet, SegmentLimit, SensorRule,
    Severity, Shape,
};

fn area(id: &str, shape: Shape, dwell: Option<i64>) -> Area {
    Area {
        id: id.into(),
        shape,
        speed_limit_kmh: None,
        alarm_enter: true,
        alarm_leave: true,
        dwell_max_min: dwell,
        classes: vec![],
        enterprises: vec![],
    }
}

/// The vehicle starts at 39.38 N 117.04 E and drives east along the parallel.
fn areas_east() -> RuleSet {
    let mut r = RuleSet::default();
    // About 1 km east of the start, 500 m radius.
    r.areas.push(area("circle", Shape::Circle { lat: 39.38, lon: 117.0516, radius_m: 500.0 }, None));
    r.areas.push(area("rect", Shape::Rectangle { north: 39.39, south: 39.37, east: 117.08, west: 117.07 }, Some(5)));
    r.areas.push(area(
        "poly",
        Shape::Polygon { points: vec![[39.37, 117.10], [39.39, 117.10], [39.395, 117.11], [39.37, 117.12]] },
        None,
    ));
    r
}

#[test]
fn enter_and_leave_circle_rectangle_polygon() {
    let mut v = Vehicle::with_rules(areas_east(), "heavy_goods", local(10, 0));
    v.step_ms = 10_000;
    v.drive(10 * MIN, 60.0); // 10 km east, through all three
    let seq: Vec<_> = v
        .events
        .iter()
        .filter(|e| matches!(e.kind, AlarmKind::GeofenceEnter | AlarmKind::GeofenceLeave))
        .map(|e| (e.key.scope.as_str(), e.kind))
        .collect();
    assert_eq!(
        seq,
        [
            ("circle", AlarmKind::GeofenceEnter),
            ("circle", AlarmKind::GeofenceLeave),
            ("rect", AlarmKind::GeofenceEnter),
            ("rect", AlarmKind::GeofenceLeave),
            ("poly", AlarmKind::GeofenceEnter),
            ("poly", AlarmKind::GeofenceLeave),
        ]
    );
    assert!(v.of(AlarmKind::GeofenceDwell).is_empty(), "drove through in under 5 min");
}

#[test]
fn dwell_in_a_rectangle() {
    let mut v = Vehicle::with_rules(areas_east(), "heavy_goods", local(10, 0));
    v.lon = 117.075;
    v.stop(4 * MIN);
    assert!(v.of(AlarmKind::GeofenceDwell).is_empty());
    v.stop(2 * MIN);
    assert_eq!(v.phases(AlarmKind::GeofenceDwell), [Phase::Raised]);
    let d = v.of(AlarmKind::GeofenceDwell)[0];
    assert_eq!((d.key.scope.as_str(), d.start_ms), ("rect", local(10, 0)));
    v.drive(3 * MIN, 60.0);
    assert_eq!(v.phases(AlarmKind::GeofenceDwell), [Phase::Raised, Phase::Ended]);
}

#[test]
fn area_filters_by_class() {
    let mut r = areas_east();
    for a in &mut r.areas {
        a.classes = vec!["dangerous_goods".into()];
    }
    let mut v = Vehicle::with_rules(r, "heavy_goods", local(10, 0));
    v.drive(10 * MIN, 60.0);
    assert!(v.events.is_empty());
}

#[test]
fn route_corridor_deviation() {
    let mut r = RuleSet::default();
    r.routes.push(Route {
        id: "line-7".into(),
        points: vec![[39.38, 117.0], [39.38, 117.3]],
        width_m: 200.0,
        segments: vec![],
    });
    let mut v = Vehicle::with_rules(r.clone(), "coach", local(10, 0));
    v.engine.set_profile("v1", Profile::new("coach", "ent").with_route("line-7"));
    v.drive(5 * MIN, 60.0);
    assert!(v.events.is_empty());
    v.lat += 0.0008; // ~89 m north: inside the 100 m half-width
    v.drive(2 * MIN, 60.0);
    assert!(v.events.is_empty());
    v.lat += 0.0020; // ~311 m north: outside
    v.drive(2 * MIN, 60.0);
    v.lat = 39.38;
    v.drive(2 * MIN, 60.0);
    assert_eq!(v.phases(AlarmKind::RouteDeviation), [Phase::Raised, Phase::Ended]);
    let Details::Route { distance_m, allowed_m, .. } = &v.of(AlarmKind::RouteDeviation)[1].details else { panic!() };
    assert!((distance_m - 311.0).abs() < 2.0, "{distance_m}");
    assert_eq!(*allowed_m, 100.0);
}

/// Segment travel time (路段行驶时间不足/过长): judged when the vehicle moves on to the next
/// segment. Segments of about 1.72 km along the parallel from 117.04 E.
#[test]
fn segment_travel_time_too_short_and_too_long() {
    let mut r = RuleSet::default();
    let seg = |index, short, long| SegmentLimit { index, too_short_s: short, too_long_s: long };
    r.routes.push(Route {
        id: "line-9".into(),
        points: vec![[39.38, 117.04], [39.38, 117.06], [39.38, 117.08], [39.38, 117.10], [39.38, 117.2]],
        width_m: 200.0,
        segments: vec![seg(0, Some(120), None), seg(1, None, Some(60)), seg(2, Some(30), Some(600))],
    });
    let mut v = Vehicle::with_rules(r.clone(), "coach", local(10, 0));
    v.engine.set_profile("v1", Profile::new("coach", "ent").with_route("line-9"));
    v.step_ms = 10_000;
    // Segment 0 at 100 km/h: about 62 s, under its 120 s minimum.
    v.drive(70_000, 100.0);
    // Segment 1 at 30 km/h: about 206 s, over its 60 s maximum.
    v.drive(210_000, 30.0);
    // Segment 2 at 60 km/h: about 103 s, inside 30–600 s; on into segment 3.
    v.drive(120_000, 60.0);
    let got: Vec<(usize, String)> = v
        .raised(AlarmKind::SegmentTime)
        .iter()
        .map(|e| match &e.details {
            Details::SegmentTime { segment, verdict, seconds, limit_s, .. } => {
                assert!(match verdict.as_str() {
                    "too_short" => seconds < limit_s,
                    _ => seconds > limit_s,
                });
                (*segment, verdict.clone())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, [(0, "too_short".to_string()), (1, "too_long".to_string())]);
    assert!(v.phases(AlarmKind::SegmentTime).iter().all(|p| *p == Phase::Raised), "instant: no end");

    // Leaving the corridor forgets the segment: coming back two segments on judges nothing.
    let mut w = Vehicle::with_rules(r, "coach", local(10, 0));
    w.engine.set_profile("v1", Profile::new("coach", "ent").with_route("line-9"));
    w.step_ms = 10_000;
    w.drive(30_000, 100.0);
    w.lat += 0.01; // about 1.1 km north: outside
    w.drive(200_000, 100.0);
    w.lat = 39.38;
    w.drive(60_000, 60.0);
    assert!(w.raised(AlarmKind::SegmentTime).is_empty(), "{:?}", w.events);
}

fn cold_chain() -> Engine {
    let mut r = RuleSet::default();
    r.sensors.push(SensorRule {
        id: "cold-chain".into(),
        metric: "temperature".into(),
        direction: Direction::Above,
        threshold: 8.0,
        hysteresis: 1.0,
        min_duration_s: 300,
        severity: Severity::High,
        classes: vec![],
    });
    r.check().expect("valid");
    Engine::new(r)
}

fn read(e: &mut Engine, t: i64, value: f64) -> Vec<rules::Event> {
    e.observe_reading("fridge-1", &Reading { device_ms: t, metric: "temperature".into(), value })
}

#[test]
fn sensor_threshold_needs_the_minimum_duration() {
    let mut e = cold_chain();
    let t0 = local(10, 0);
    let mut events = Vec::new();
    for i in 0..5 {
        events.extend(read(&mut e, t0 + i * MIN, 9.0)); // 0..4 min above
    }
    events.extend(read(&mut e, t0 + 5 * MIN, 7.5));
    for i in 6..11 {
        events.extend(read(&mut e, t0 + i * MIN, 9.0)); // 5 readings again, 4 min
    }
    assert!(events.is_empty(), "{events:#?}");
}

#[test]
fn sensor_threshold_raises_after_d_and_clears_past_the_hysteresis() {
    let mut e = cold_chain();
    let t0 = local(10, 0);
    let mut events = Vec::new();
    for i in 0..=6 {
        events.extend(read(&mut e, t0 + i * MIN, 9.0 + i as f64 * 0.1));
    }
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].phase, events[0].start_ms, events[0].at_ms), (Phase::Raised, t0, t0 + 5 * MIN));
    // Back under 8 but not under 7: still raised.
    assert!(read(&mut e, t0 + 7 * MIN, 7.5).is_empty());
    assert!(read(&mut e, t0 + 8 * MIN, 8.5).is_empty());
    let end = read(&mut e, t0 + 9 * MIN, 6.9);
    assert_eq!(end.len(), 1);
    assert_eq!(end[0].phase, Phase::Ended);
    let Details::Sensor { peak, .. } = end[0].details else { panic!() };
    assert!((peak - 9.6).abs() < 1e-9);
    // Duplicates and late readings are refused.
    assert!(read(&mut e, t0 + 9 * MIN, 20.0).is_empty());
    assert!(read(&mut e, t0, 20.0).is_empty());
    assert_eq!(e.counters("fridge-1").expect("counters").readings_refused, 2);
}

#[test]
fn sensor_below_threshold() {
    let mut r = RuleSet::default();
    r.sensors.push(SensorRule {
        id: "river-low".into(),
        metric: "water_level_m".into(),
        direction: Direction::Below,
        threshold: 2.0,
        hysteresis: 0.2,
        min_duration_s: 0,
        severity: Severity::Medium,
        classes: vec![],
    });
    let mut e = Engine::new(r);
    let t0 = local(10, 0);
    let r = |t, v| Reading { device_ms: t, metric: "water_level_m".into(), value: v };
    assert_eq!(e.observe_reading("gauge", &r(t0, 1.9))[0].phase, Phase::Raised);
    assert!(e.observe_reading("gauge", &r(t0 + MIN, 2.1)).is_empty());
    assert_eq!(e.observe_reading("gauge", &r(t0 + 2 * MIN, 2.2))[0].phase, Phase::Ended);
}
