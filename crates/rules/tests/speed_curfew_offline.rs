//! Overspeed, night speed, curfew, offline, drift and invalid data scenarios.

mod common;

use common::*;
use rules::{AlarmKind, Area, Details, Engine, Fix, LimitSource, Phase, Profile, RuleSet, Severity, Shape};

fn speeding(class: &str, start: i64) -> Vehicle {
    let mut v = Vehicle::new(class, start);
    v.step_ms = 10_000;
    v
}

#[test]
fn overspeed_shorter_than_60s_is_not_counted() {
    let mut v = speeding("coach", local(10, 0));
    v.drive(5 * MIN, 90.0);
    v.drive(50_000, 105.0); // fixes at 0..40 s over the 100 km/h limit, back under at 50 s
    v.drive(5 * MIN, 90.0);
    assert!(v.of(AlarmKind::Overspeed).is_empty());
}

#[test]
fn overspeed_of_60s_is_counted_and_graded() {
    let mut v = speeding("coach", local(10, 0));
    v.drive(5 * MIN, 90.0);
    let over_from = v.t;
    v.drive(70_000, 105.0); // 5 % over: grade 1
    v.drive(30_000, 125.0); // 25 % over: grade 3
    v.drive(30_000, 155.0); // 55 % over: grade 4
    v.drive(5 * MIN, 90.0);
    assert_eq!(v.phases(AlarmKind::Overspeed), [Phase::Raised, Phase::Updated, Phase::Updated, Phase::Ended]);
    let ev = v.of(AlarmKind::Overspeed);
    assert_eq!(ev[0].start_ms, over_from);
    assert_eq!(ev[0].at_ms, over_from + 60_000);
    assert_eq!((ev[0].grade, ev[0].severity), (1, Severity::Low));
    assert_eq!((ev[1].grade, ev[1].severity), (3, Severity::High));
    assert_eq!((ev[2].grade, ev[2].severity), (4, Severity::Critical));
    let Details::Speed { max_speed_kmh, limit_kmh, percent_over, source } = &ev[3].details else { panic!() };
    assert_eq!((*max_speed_kmh, *limit_kmh, source), (155.0, 100.0, &LimitSource::Class));
    assert!((percent_over - 55.0).abs() < 1e-9);
    assert!(ev.iter().all(|e| e.key == ev[0].key && e.rule_version == 1));
    assert!(ev[0].evidence.len() <= rules::event::MAX_EVIDENCE);
}

#[test]
fn grade_bands_10_20_50_percent() {
    for (speed, grade) in [(109.9, 1), (110.0, 2), (119.9, 2), (120.0, 3), (149.9, 3), (150.0, 4)] {
        let mut v = speeding("coach", local(10, 0));
        v.drive(2 * MIN, speed);
        v.park();
        assert_eq!(v.raised(AlarmKind::Overspeed)[0].grade, grade, "{speed}");
    }
}

#[test]
fn area_limit_and_terminal_bit() {
    let mut rules = RuleSet::default();
    rules.areas.push(Area {
        id: "school-zone".into(),
        shape: Shape::Circle { lat: 39.38, lon: 117.04, radius_m: 2000.0 },
        speed_limit_kmh: Some(30.0),
        alarm_enter: false,
        alarm_leave: false,
        dwell_max_min: None,
        classes: vec![],
        enterprises: vec![],
    });
    let mut v = Vehicle::with_rules(rules, "heavy_goods", local(10, 0));
    v.step_ms = 10_000;
    v.drive(2 * MIN, 40.0);
    v.park();
    let ev = v.raised(AlarmKind::Overspeed);
    assert_eq!(ev.len(), 1);
    let Details::Speed { limit_kmh, source, .. } = &ev[0].details else { panic!() };
    assert_eq!((*limit_kmh, source), (30.0, &LimitSource::Area("school-zone".into())));

    // Under every limit, but the terminal reports overspeed (alarm bit 1) for 60 s.
    let mut v = speeding("heavy_goods", local(10, 0));
    for _ in 0..8 {
        let mut f = v.fix_now(70.0, true);
        f.alarm_bits = 0b10;
        v.send(f);
        v.t += 10_000;
    }
    let ev = v.raised(AlarmKind::Overspeed);
    assert_eq!(ev.len(), 1);
    let Details::Speed { source, .. } = &ev[0].details else { panic!() };
    assert_eq!(source, &LimitSource::Terminal);
}

#[test]
fn night_speed_is_80_percent_of_the_day_limit_for_passenger_classes() {
    // Coach day limit 100: at 23:00, 85 km/h is over the 80 km/h night limit.
    let mut v = speeding("coach", local(23, 0));
    v.drive(2 * MIN, 85.0);
    v.park();
    let ev = v.raised(AlarmKind::NightOverspeed);
    assert_eq!(ev.len(), 1);
    let Details::Speed { limit_kmh, .. } = ev[0].details else { panic!() };
    assert_eq!(limit_kmh, 80.0);
    assert!(v.of(AlarmKind::Overspeed).is_empty());

    // By day the same speed is fine.
    let mut v = speeding("coach", local(14, 0));
    v.drive(2 * MIN, 85.0);
    assert!(v.events.is_empty());

    // A heavy goods vehicle is not a passenger vehicle.
    let mut v = speeding("heavy_goods", local(23, 0));
    v.drive(2 * MIN, 85.0);
    assert!(v.of(AlarmKind::NightOverspeed).is_empty());

    // School bus: 60 by day, 48 at night.
    let mut v = speeding("school_bus", local(5, 0));
    v.drive(2 * MIN, 50.0);
    assert_eq!(v.raised(AlarmKind::NightOverspeed).len(), 1);
}

#[test]
fn curfew_02_to_05_for_coaches_only() {
    let mut v = Vehicle::new("coach", local(1, 50));
    v.drive(HOUR, 60.0);
    let ev = v.raised(AlarmKind::Curfew);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].start_ms, local(2, 0));

    let mut v = Vehicle::new("coach", local(4, 50));
    v.drive(20 * MIN, 60.0);
    assert_eq!(v.phases(AlarmKind::Curfew), [Phase::Raised, Phase::Ended]);
    assert_eq!(v.of(AlarmKind::Curfew)[1].at_ms, local(5, 0));

    let mut v = Vehicle::new("tourist_coach", local(2, 30));
    v.drive(HOUR, 60.0);
    assert!(v.of(AlarmKind::Curfew).is_empty());

    // A parked coach at 03:00 is not in breach.
    let mut v = Vehicle::new("coach", local(3, 0));
    v.stop(HOUR);
    assert!(v.of(AlarmKind::Curfew).is_empty());
}

#[test]
fn offline_via_tick_when_last_seen_driving() {
    let mut v = Vehicle::new("coach", local(10, 0));
    v.drive(10 * MIN, 60.0);
    let last = v.t - 30_000;
    assert!(v.engine.tick(last + 9 * MIN).is_empty());
    let ev = v.engine.tick(last + 11 * MIN);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (ev[0].kind, ev[0].phase, ev[0].start_ms, ev[0].at_ms),
        (AlarmKind::Offline, Phase::Raised, last, last + 11 * MIN)
    );
    assert!(v.engine.tick(last + 12 * MIN).is_empty(), "raised once");
    v.t = last + 13 * MIN;
    let back = v.send(v.fix_now(60.0, true));
    assert_eq!(back.iter().map(|e| (e.kind, e.phase)).collect::<Vec<_>>(), [(AlarmKind::Offline, Phase::Ended)]);
}

#[test]
fn parked_vehicle_is_not_offline_after_10_min_but_is_after_24h() {
    let mut v = Vehicle::new("coach", local(10, 0));
    v.stop(10 * MIN);
    let last = v.t - 30_000;
    assert!(v.engine.tick(last + 30 * MIN).is_empty());
    let ev = v.engine.tick(last + 24 * HOUR + MIN);
    assert_eq!(ev.iter().map(|e| e.kind).collect::<Vec<_>>(), [AlarmKind::OfflineLong]);
}

#[test]
fn dangerous_goods_moving_while_offline() {
    let mut v = Vehicle::new("dangerous_goods", local(10, 0));
    v.drive(10 * MIN, 60.0);
    let _ = v.silent_drive(30 * MIN, 60.0);
    v.drive(5 * MIN, 60.0);
    let ev = v.raised(AlarmKind::OfflineDriving);
    assert_eq!(ev.len(), 1);
    let Details::Offline { silent_min, distance_m: Some(d), .. } = ev[0].details else { panic!() };
    assert_eq!(silent_min, 30);
    // 30 min of silence plus the 30 s reporting interval at 60 km/h.
    assert!((d - 30_500.0).abs() < 300.0, "{d}");

    // A coach doing the same is not flagged (the rule is for dangerous goods).
    let mut v = Vehicle::new("coach", local(10, 0));
    v.drive(10 * MIN, 60.0);
    let _ = v.silent_drive(30 * MIN, 60.0);
    v.drive(5 * MIN, 60.0);
    assert!(v.of(AlarmKind::OfflineDriving).is_empty());
}

#[test]
fn position_drift_is_flagged_and_counted() {
    let mut v = Vehicle::new("coach", local(10, 0));
    v.step_ms = 10_000;
    v.drive(2 * MIN, 60.0);
    // One fix 5 km away 10 s later: 1800 km/h.
    let mut f = v.fix_now(60.0, true);
    f.lat += 0.045;
    v.send(f);
    v.t += 10_000;
    v.drive(2 * MIN, 60.0);
    let ev = v.raised(AlarmKind::PositionDrift);
    assert_eq!(ev.len(), 1);
    let Details::Drift { implied_kmh, .. } = ev[0].details else { panic!() };
    assert!(implied_kmh > 1000.0);
    let c = v.engine.counters("v1").expect("counters");
    assert_eq!(c.drift, 1);
    assert_eq!(c.evaluated, c.received);
}

#[test]
fn a_bad_first_fix_is_not_an_anchor_forever() {
    let mut v = Vehicle::new("coach", local(10, 0));
    v.step_ms = 10_000;
    let mut f = v.fix_now(60.0, true);
    f.lat += 1.0; // 111 km off
    v.send(f);
    v.t += 10_000;
    v.drive(5 * MIN, 60.0);
    assert_eq!(v.engine.counters("v1").expect("counters").drift, 1);
}

#[test]
fn invalid_data_is_counted_and_a_long_run_is_raised() {
    let mut v = Vehicle::new("coach", local(10, 0));
    v.drive(MIN, 60.0);
    let good = v.fix_now(60.0, true);
    let bad = [
        Fix { valid: false, ..good },
        Fix { lat: 0.0, lon: 0.0, ..good },
        Fix { lat: 91.0, ..good },
        Fix { lon: f64::NAN, ..good },
        Fix { speed_kmh: f64::INFINITY, ..good },
    ];
    for f in bad {
        v.send(Fix { device_ms: v.t, ..f });
        v.t += 30_000;
    }
    let c = v.engine.counters("v1").expect("counters");
    assert_eq!(c.invalid, 5);
    assert!(v.of(AlarmKind::InvalidData).is_empty(), "2.5 min is not a sustained run");

    // 12 minutes of invalid fixes: raised after 10, ended by the next valid fix.
    for _ in 0..24 {
        v.send(Fix { device_ms: v.t, valid: false, ..good });
        v.t += 30_000;
    }
    v.send(Fix { device_ms: v.t, ..good });
    assert_eq!(v.phases(AlarmKind::InvalidData), [Phase::Raised, Phase::Ended]);

    // Device time far in the future of the clock, and out of range.
    v.engine.tick(v.t);
    v.send(Fix { device_ms: v.t + HOUR, ..good });
    v.send(Fix { device_ms: -5, ..good });
    let c = v.engine.counters("v1").expect("counters");
    assert_eq!(c.invalid, 5 + 24 + 2);
}

#[test]
fn rule_version_travels_with_the_alarm() {
    let mut v = speeding("coach", local(10, 0));
    v.drive(2 * MIN, 120.0);
    v.engine.set_rules(RuleSet::builtin(7));
    v.drive(MIN, 130.0);
    v.drive(MIN, 80.0);
    let ev = v.of(AlarmKind::Overspeed);
    assert!(ev.iter().all(|e| e.rule_version == 1), "episode raised under version 1");
    let mut v2 = speeding("coach", local(12, 0));
    v2.engine = Engine::new(RuleSet::builtin(7));
    v2.engine.set_profile("v1", Profile::new("coach", "ent"));
    v2.drive(2 * MIN, 120.0);
    assert_eq!(v2.raised(AlarmKind::Overspeed)[0].rule_version, 7);
}
