//! Fatigue driving (疲劳驾驶) scenarios: 道路旅客运输企业安全管理规范 art. 38, JT/T 794-2019.

mod common;

use common::*;
use rules::{AlarmKind, Details, Phase};

#[test]
fn drives_4h10_with_a_15_min_stop_one_alarm_at_4h00_of_driving() {
    let start = local(8, 0);
    let mut v = Vehicle::new("coach", start);
    v.drive(2 * HOUR, 60.0);
    v.stop(15 * MIN);
    v.drive(2 * HOUR + 10 * MIN, 60.0);
    v.park();
    let raised = v.raised(AlarmKind::FatigueContinuous);
    assert_eq!(raised.len(), 1, "{:#?}", v.of(AlarmKind::FatigueContinuous));
    // 4 h of driving plus the 15 min stop that did not reset it.
    assert_eq!(raised[0].start_ms, start + 4 * HOUR + 15 * MIN);
    let Details::Fatigue { driving_since_ms, night, .. } = &raised[0].details else { panic!("details") };
    assert_eq!(*driving_since_ms, start);
    assert!(!night);
}

#[test]
fn pre_warning_30_min_before_the_limit_with_a_driver_message() {
    let start = local(8, 0);
    let mut v = Vehicle::new("coach", start);
    v.drive(4 * HOUR + 5 * MIN, 60.0);
    v.park();
    let phases = v.phases(AlarmKind::FatigueContinuous);
    assert_eq!(phases[..2], [Phase::PreWarning, Phase::Raised]);
    let pre = v.of(AlarmKind::FatigueContinuous)[0];
    assert_eq!(pre.start_ms, start + 3 * HOUR + 30 * MIN);
    let Details::Fatigue { message: Some(msg), .. } = &pre.details else { panic!("message") };
    assert!(msg.starts_with("您已连续驾驶3小时30分钟"), "{msg}");
    assert!(msg.contains("请尽快停车休息"));
}

#[test]
fn a_19_min_stop_does_not_reset_continuous_driving() {
    let start = local(8, 0);
    let mut v = Vehicle::new("coach", start);
    v.drive(3 * HOUR, 60.0);
    v.stop(19 * MIN);
    v.drive(HOUR + 10 * MIN, 60.0);
    v.park();
    let raised = v.raised(AlarmKind::FatigueContinuous);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].start_ms, start + 4 * HOUR + 19 * MIN);
}

#[test]
fn a_20_min_stop_resets_continuous_driving() {
    let start = local(8, 0);
    let mut v = Vehicle::new("coach", start);
    v.drive(3 * HOUR, 60.0);
    v.stop(20 * MIN);
    v.drive(HOUR + 10 * MIN, 60.0);
    v.park();
    assert!(v.of(AlarmKind::FatigueContinuous).is_empty(), "{:#?}", v.of(AlarmKind::FatigueContinuous));
}

#[test]
fn a_20_min_stop_ends_an_open_fatigue_alarm() {
    let start = local(8, 0);
    let mut v = Vehicle::new("coach", start);
    v.drive(4 * HOUR + 40 * MIN, 60.0);
    v.stop(20 * MIN);
    v.drive(10 * MIN, 60.0);
    v.park();
    // Raised at 4 h, Updated at 4 h 30 (one half-hour over), Ended after the 20 min rest.
    assert_eq!(
        v.phases(AlarmKind::FatigueContinuous),
        [Phase::PreWarning, Phase::Raised, Phase::Updated, Phase::Ended]
    );
    let ended = v.of(AlarmKind::FatigueContinuous)[3];
    assert_eq!(ended.at_ms, start + 5 * HOUR);
    assert_eq!(ended.key, v.of(AlarmKind::FatigueContinuous)[1].key);
}

#[test]
fn night_starts_at_22_local_so_driving_from_22_00_is_limited_to_2h() {
    // 22:00 local is 14:00 UTC.
    let start = local(22, 0);
    assert_eq!((start / HOUR) % 24, 14);
    let mut v = Vehicle::new("coach", start);
    v.drive(2 * HOUR + 10 * MIN, 60.0);
    v.park();
    let raised = v.raised(AlarmKind::FatigueContinuous);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].start_ms, local(24, 0));
    let Details::Fatigue { night, limit_min, .. } = &raised[0].details else { panic!("details") };
    assert!(*night);
    assert_eq!(*limit_min, 120);
    let pre = v.of(AlarmKind::FatigueContinuous)[0];
    assert_eq!((pre.phase, pre.start_ms), (Phase::PreWarning, local(23, 30)));
}

#[test]
fn the_same_2h10_drive_by_day_raises_nothing() {
    let mut v = Vehicle::new("coach", local(14, 0));
    v.drive(2 * HOUR + 10 * MIN, 60.0);
    v.park();
    assert!(v.of(AlarmKind::FatigueContinuous).is_empty());
}

#[test]
fn three_hours_of_day_driving_is_over_the_night_limit_at_22_00() {
    let mut v = Vehicle::new("coach", local(19, 0));
    v.drive(3 * HOUR + 10 * MIN, 60.0);
    v.park();
    let raised = v.raised(AlarmKind::FatigueContinuous);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].start_ms, local(22, 0));
}

#[test]
fn cumulative_8h_in_24h() {
    let start = local(6, 0);
    let mut v = Vehicle::new("coach", start);
    v.drive(3 * HOUR + 50 * MIN, 60.0);
    v.stop(30 * MIN);
    v.drive(3 * HOUR + 50 * MIN, 60.0);
    v.stop(30 * MIN);
    v.drive(30 * MIN, 60.0);
    v.park();
    assert!(v.raised(AlarmKind::FatigueContinuous).is_empty());
    let daily = v.raised(AlarmKind::FatigueDaily);
    assert_eq!(daily.len(), 1);
    // 7 h 40 min of driving and two 30 min stops, then 20 more minutes.
    assert_eq!(daily[0].start_ms, start + 9 * HOUR);
}

#[test]
fn cumulative_44h_in_7_days() {
    let start = local(8, 0);
    let mut v = Vehicle::new("coach", start);
    v.step_ms = 60_000;
    // 7 h 30 min a day (never 8 h in any 24 h), day after day: 44 h are passed on day 6.
    for _ in 0..6 {
        v.drive(3 * HOUR + 45 * MIN, 60.0);
        v.stop(30 * MIN);
        v.drive(3 * HOUR + 45 * MIN, 60.0);
        v.stop(24 * HOUR - 8 * HOUR);
    }
    v.park();
    assert!(v.raised(AlarmKind::FatigueDaily).is_empty(), "{:#?}", v.raised(AlarmKind::FatigueDaily));
    let weekly = v.raised(AlarmKind::FatigueWeekly);
    assert_eq!(weekly.len(), 1);
    // Day 6 starts with 37 h 30 min behind: 6 h 30 min of driving later (with the 30 min stop).
    assert_eq!(weekly[0].start_ms, start + 5 * 24 * HOUR + 7 * HOUR);
    let Details::Cumulative { window_h, limit_min, .. } = weekly[0].details else { panic!("details") };
    assert_eq!((window_h, limit_min), (168, 2640));
}

#[test]
fn acc_off_is_rest_even_with_a_speed() {
    let start = local(8, 0);
    let mut v = Vehicle::new("coach", start);
    v.drive(3 * HOUR, 60.0);
    v.segment(25 * MIN, 30.0, false);
    v.drive(2 * HOUR, 60.0);
    v.park();
    assert!(v.raised(AlarmKind::FatigueContinuous).is_empty());
}

#[test]
fn speed_at_or_below_the_threshold_is_rest() {
    let start = local(8, 0);
    let mut v = Vehicle::new("coach", start);
    v.drive(3 * HOUR, 60.0);
    v.segment(25 * MIN, 5.0, true);
    v.drive(2 * HOUR, 60.0);
    v.park();
    assert!(v.raised(AlarmKind::FatigueContinuous).is_empty());
}

#[test]
fn gap_far_away_counts_as_driving_gap_in_place_counts_as_rest() {
    // Silence of 1 h after 3 h 30 of driving; the vehicle reappears 60 km further: it drove
    // (60 km at the 60 km/h reference speed), so 4 h 30 of continuous driving.
    let start = local(8, 0);
    let mut v = Vehicle::new("coach", start);
    v.drive(3 * HOUR + 30 * MIN, 60.0);
    let _lost = v.silent_drive(HOUR, 60.0);
    v.drive(10 * MIN, 60.0);
    v.park();
    assert_eq!(v.raised(AlarmKind::FatigueContinuous).len(), 1);

    // Same, but it reappears where it was: it rested, and the hour resets the clock.
    let mut v = Vehicle::new("coach", start);
    v.drive(3 * HOUR + 30 * MIN, 60.0);
    v.t += HOUR;
    v.drive(40 * MIN, 60.0);
    v.park();
    assert!(v.raised(AlarmKind::FatigueContinuous).is_empty());
}
