//! Device-time ordering: duplicates, late blind-area uploads (JT/T 808 0x0704) replayed in order,
//! and a restart through a serde snapshot.

mod common;

use common::*;
use rules::{AlarmKind, Details, Engine, EngineSnapshot, Event, Phase, Profile, RuleSet};

fn key_events(events: &[Event]) -> Vec<(AlarmKind, Phase, i64)> {
    let mut v: Vec<_> = events.iter().map(|e| (e.kind, e.phase, e.start_ms)).collect();
    v.sort();
    v
}

#[test]
fn duplicates_are_ignored_and_counted() {
    let mut v = Vehicle::new("coach", local(8, 0));
    v.drive(4 * HOUR + 10 * MIN, 60.0);
    let reference = v.events.clone();

    let mut w = Vehicle::new("coach", local(8, 0));
    let mut dup_events = Vec::new();
    for f in &v.sent {
        dup_events.extend(w.engine.observe_fix("v1", *f));
        dup_events.extend(w.engine.observe_fix("v1", *f));
    }
    assert_eq!(dup_events, reference);
    let c = w.engine.counters("v1").expect("counters");
    assert_eq!(c.duplicates, v.sent.len() as u64);
    assert_eq!(c.evaluated, v.sent.len() as u64);
}

#[test]
fn a_late_blind_area_upload_is_evaluated_in_device_time_order() {
    // Drives 3 h, loses signal for 1 h 30 while driving slowly (40 km/h), then live fixes resume.
    let start = local(8, 0);
    let mut v = Vehicle::new("coach", start);
    v.drive(3 * HOUR, 40.0);
    let lost = v.silent_drive(HOUR + 30 * MIN, 40.0);
    v.drive(30 * MIN, 40.0);
    // From the live fixes alone the silence looks like 1 h of driving and a 30 min rest, so no
    // fatigue alarm yet.
    assert!(v.raised(AlarmKind::FatigueContinuous).is_empty(), "{:#?}", v.events);

    // The terminal uploads the blind-area fixes after the live ones.
    let replayed = v.engine.observe_batch("v1", &lost);
    let raised: Vec<_> =
        replayed.iter().filter(|e| e.kind == AlarmKind::FatigueContinuous && e.phase == Phase::Raised).collect();
    assert_eq!(raised.len(), 1, "{replayed:#?}");
    assert_eq!(raised[0].start_ms, start + 4 * HOUR, "raised at 4 h of driving, in device time");
    let Details::Fatigue { driving_since_ms, .. } = raised[0].details else { panic!() };
    assert_eq!(driving_since_ms, start);
    assert_eq!(v.engine.counters("v1").expect("counters").replays, 1);

    // Same events as if every fix had arrived in order.
    let mut all: Vec<_> = v.sent.iter().chain(&lost).copied().collect();
    all.sort_by_key(|f| f.device_ms);
    let mut inorder = Engine::new(RuleSet::default());
    inorder.set_profile("v1", Profile::new("coach", "ent"));
    let expected: Vec<Event> = all.iter().flat_map(|f| inorder.observe_fix("v1", *f)).collect();
    let mut got = v.events.clone();
    got.extend(replayed.iter().cloned());
    assert_eq!(key_events(&got), key_events(&expected));

    // Uploading the same batch again changes nothing.
    assert!(v.engine.observe_batch("v1", &lost).is_empty());
    assert_eq!(v.engine.counters("v1").expect("counters").duplicates, lost.len() as u64);
}

#[test]
fn late_fixes_one_by_one_emit_each_event_once() {
    let start = local(8, 0);
    let mut v = Vehicle::new("coach", start);
    v.drive(3 * HOUR, 40.0);
    let lost = v.silent_drive(HOUR + 30 * MIN, 40.0);
    v.drive(30 * MIN, 40.0);
    let mut replayed = Vec::new();
    for f in &lost {
        replayed.extend(v.engine.observe_fix("v1", *f));
    }
    let raised = replayed.iter().filter(|e| e.kind == AlarmKind::FatigueContinuous && e.phase == Phase::Raised);
    assert_eq!(raised.count(), 1);
    // The live pass already warned at 3 h 30 (the gap estimate drove on); not warned again.
    let pre = v.events.iter().chain(&replayed).filter(|e| e.phase == Phase::PreWarning);
    assert_eq!(pre.count(), 1);
}

#[test]
fn a_late_fix_outside_any_gap_is_ignored_and_counted() {
    let mut v = Vehicle::new("coach", local(8, 0));
    v.drive(HOUR, 60.0);
    let old = v.sent[10];
    let late = rules::Fix { device_ms: old.device_ms + 1, ..old };
    assert!(v.engine.observe_fix("v1", late).is_empty());
    assert_eq!(v.engine.counters("v1").expect("counters").late, 1);
}

#[test]
fn a_replay_that_moves_an_episode_supersedes_the_old_one() {
    // Live: 3 h 50 driving, 1 h silence, reappears 60 km further: the gap counts as driving and
    // fatigue is raised at the fix after the gap. The blind upload shows a 25 min stop inside the
    // silence... which does not reset it either, but moves the moment of the crossing.
    let start = local(8, 0);
    let mut v = Vehicle::new("coach", start);
    v.drive(3 * HOUR + 50 * MIN, 60.0);
    let mut lost = v.silent_drive(15 * MIN, 60.0);
    let t_stop = v.t;
    for i in 0..36 {
        lost.push(rules::Fix { device_ms: t_stop + i * 30_000, speed_kmh: 0.0, ..v.fix_now(0.0, true) });
    }
    v.t += 18 * MIN;
    lost.extend(v.silent_drive(27 * MIN, 60.0));
    v.drive(10 * MIN, 60.0);
    let live_raised: Vec<_> = v.raised(AlarmKind::FatigueContinuous).into_iter().cloned().collect();
    assert_eq!(live_raised.len(), 1);
    let replayed = v.engine.observe_batch("v1", &lost);
    let kinds: Vec<_> = replayed
        .iter()
        .filter(|e| e.kind == AlarmKind::FatigueContinuous)
        .map(|e| (e.phase, e.start_ms, matches!(e.details, Details::Superseded)))
        .collect();
    // The replayed crossing is at 4 h of driving: 3 h 50 + 10 min of the 15 min after the gap.
    let new_start = start + 4 * HOUR;
    if live_raised[0].start_ms == new_start {
        assert!(kinds.iter().all(|k| k.0 != Phase::Raised), "{kinds:?}");
    } else {
        assert!(kinds.contains(&(Phase::Raised, new_start, false)), "{kinds:?}");
        assert!(kinds.contains(&(Phase::Ended, live_raised[0].start_ms, true)), "{kinds:?}");
    }
}

#[test]
fn a_restart_mid_drive_keeps_the_driving_clock() {
    let start = local(8, 0);
    let mut straight = Vehicle::new("coach", start);
    straight.drive(4 * HOUR + 10 * MIN, 60.0);
    straight.park();

    let mut restarted = Vehicle::new("coach", start);
    let n = straight.sent.len() / 2;
    let mut events = Vec::new();
    for f in &straight.sent[..n] {
        events.extend(restarted.engine.observe_fix("v1", *f));
    }
    let json = serde_json::to_string(&restarted.engine.snapshot()).expect("serialises");
    let snap: EngineSnapshot = serde_json::from_str(&json).expect("deserialises");
    let mut engine = Engine::restore(RuleSet::default(), snap);
    for f in &straight.sent[n..] {
        events.extend(engine.observe_fix("v1", *f));
    }
    assert_eq!(events, straight.events);
    let raised: Vec<_> = events.iter().filter(|e| e.phase == Phase::Raised).collect();
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].start_ms, start + 4 * HOUR);
    assert_eq!(engine.snapshot(), Engine::restore(RuleSet::default(), engine.snapshot()).snapshot());
}

#[test]
fn a_restart_during_a_gap_still_replays_the_blind_upload() {
    let start = local(8, 0);
    let mut v = Vehicle::new("coach", start);
    v.drive(3 * HOUR, 40.0);
    let lost = v.silent_drive(HOUR + 30 * MIN, 40.0);
    v.drive(30 * MIN, 40.0);
    let json = serde_json::to_string(&v.engine.snapshot()).expect("serialises");
    let mut engine = Engine::restore(RuleSet::default(), serde_json::from_str(&json).expect("deserialises"));
    let replayed = engine.observe_batch("v1", &lost);
    assert!(replayed.iter().any(|e| e.phase == Phase::Raised && e.start_ms == start + 4 * HOUR));
}
