//! Scenario helpers: a vehicle that drives and stops on an injected device clock.
#![allow(dead_code)]

use rules::{AlarmKind, Engine, Event, Fix, Phase, Profile, RuleSet};

pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 60 * MIN;
/// 2024-01-02 00:00 local (UTC+8) = 2024-01-01T16:00:00Z.
pub const DAY2_MIDNIGHT_LOCAL: i64 = 1_704_067_200_000 + 16 * HOUR;

/// Device time of a local (UTC+8) wall-clock time on 2024-01-02.
pub fn local(h: i64, m: i64) -> i64 {
    DAY2_MIDNIGHT_LOCAL + h * HOUR + m * MIN
}

pub struct Vehicle {
    pub engine: Engine,
    pub id: String,
    pub t: i64,
    pub lat: f64,
    pub lon: f64,
    pub step_ms: i64,
    pub events: Vec<Event>,
    /// Every fix sent, in order.
    pub sent: Vec<Fix>,
}

impl Vehicle {
    pub fn new(class: &str, start: i64) -> Self {
        Self::with_rules(RuleSet::default(), class, start)
    }

    pub fn with_rules(rules: RuleSet, class: &str, start: i64) -> Self {
        rules.check().expect("rule set is valid");
        let mut engine = Engine::new(rules);
        engine.set_profile("v1", Profile::new(class, "ent"));
        Vehicle {
            engine,
            id: "v1".into(),
            t: start,
            lat: 39.38,
            lon: 117.04,
            step_ms: 30_000,
            events: Vec::new(),
            sent: Vec::new(),
        }
    }

    pub fn fix_now(&self, speed: f64, acc: bool) -> Fix {
        Fix {
            device_ms: self.t,
            lat: self.lat,
            lon: self.lon,
            speed_kmh: speed,
            heading: 90,
            acc_on: acc,
            valid: true,
            alarm_bits: 0,
        }
    }

    pub fn send(&mut self, fix: Fix) -> Vec<Event> {
        self.sent.push(fix);
        let ev = self.engine.observe_fix(&self.id, fix);
        self.events.extend(ev.iter().cloned());
        ev
    }

    /// Fixes every `step_ms` over `[t, t + dur)` at `speed` heading east; the state holds until
    /// the next segment's first fix at `t + dur`.
    pub fn segment(&mut self, dur: i64, speed: f64, acc: bool) {
        let end = self.t + dur;
        while self.t < end {
            let f = self.fix_now(speed, acc);
            self.send(f);
            let dt = self.step_ms.min(end - self.t);
            let km = speed * dt as f64 / HOUR as f64;
            self.lon += km / (111.32 * self.lat.to_radians().cos());
            self.t += dt;
        }
    }

    pub fn drive(&mut self, dur: i64, speed: f64) {
        self.segment(dur, speed, true);
    }

    pub fn stop(&mut self, dur: i64) {
        self.segment(dur, 0.0, true);
    }

    /// Time passes without any report (signal loss): position moves as if driving.
    pub fn silent_drive(&mut self, dur: i64, speed: f64) -> Vec<Fix> {
        let mut lost = Vec::new();
        let end = self.t + dur;
        while self.t < end {
            lost.push(self.fix_now(speed, true));
            let dt = self.step_ms.min(end - self.t);
            self.lon += speed * dt as f64 / HOUR as f64 / (111.32 * self.lat.to_radians().cos());
            self.t += dt;
        }
        lost
    }

    /// A final stationary fix closing the last segment.
    pub fn park(&mut self) {
        let f = self.fix_now(0.0, false);
        self.send(f);
    }

    pub fn of(&self, kind: AlarmKind) -> Vec<&Event> {
        self.events.iter().filter(|e| e.kind == kind).collect()
    }

    pub fn phases(&self, kind: AlarmKind) -> Vec<Phase> {
        self.of(kind).iter().map(|e| e.phase).collect()
    }

    pub fn raised(&self, kind: AlarmKind) -> Vec<&Event> {
        self.events.iter().filter(|e| e.kind == kind && e.phase == Phase::Raised).collect()
    }
}
