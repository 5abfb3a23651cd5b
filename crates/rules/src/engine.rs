//! The engine: subjects, ordering (duplicates, late fixes, gap checkpoints and replay), the
//! clock-driven offline rules, sensor thresholds and snapshots.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

use serde::{Deserialize, Serialize};

use crate::config::{Direction, Params, Profile, RuleSet};
use crate::event::{AlarmKey, AlarmKind, Details, Event, Evidence, Phase, Severity};
use crate::state::{CompiledArea, CompiledRoute, Cx, Ep, FixRef, RuleState, emit};
use crate::time::MINUTE_MS;
use crate::{Fix, Reading};

/// A fixed-key SipHash: the same insertion sequence gives the same map, run after run.
type Hasher = BuildHasherDefault<DefaultHasher>;

/// Device times outside 2000-01-01 .. 2100-01-01 are refused as invalid data; inside that
/// range no time arithmetic can overflow.
const TIME_MIN_MS: i64 = 946_684_800_000;
const TIME_MAX_MS: i64 = 4_102_444_800_000;
/// Most events remembered per checkpoint for replay de-duplication.
const MAX_EMITTED: usize = 1024;

/// Per-subject counters, for the data-qualified rate (数据合格率) and monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Fixes received.
    pub received: u64,
    /// Fixes evaluated by the rules in device-time order (after de-duplication).
    pub evaluated: u64,
    /// Invalid fixes: invalid flag, coordinates out of range or 0/0, non-finite speed, or a
    /// device time out of range or too far ahead of the clock.
    pub invalid: u64,
    /// Position drift (implausible jumps).
    pub drift: u64,
    /// Duplicates ignored.
    pub duplicates: u64,
    /// Late fixes ignored (older than the newest, outside any replay checkpoint).
    pub late: u64,
    /// Replays run for late fixes that fell into a recorded gap.
    pub replays: u64,
    /// Sensor readings received.
    pub readings: u64,
    /// Sensor readings refused (non-finite value, time out of range, duplicate or late).
    pub readings_refused: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Arrivals {
    received: u64,
    bad_time: u64,
    duplicates: u64,
    late: u64,
    replays: u64,
    readings: u64,
    readings_refused: u64,
}

/// Identity of an emitted event for replay de-duplication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EmitId {
    kind: AlarmKind,
    scope: String,
    started: i64,
    phase: Phase,
    grade: u8,
}

impl EmitId {
    fn of(e: &Event) -> Self {
        EmitId { kind: e.kind, scope: e.key.scope.clone(), started: e.key.started_ms, phase: e.phase, grade: e.grade }
    }
}

/// The rule state from before a gap, and everything received since, so that fixes arriving late
/// into the gap can be replayed in device-time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Checkpoint {
    before: RuleState,
    /// Device time of the last fix before the gap: later fixes can be replayed.
    gap_from: i64,
    /// Fixes since the gap, sorted by device time.
    fixes: Vec<Fix>,
    emitted: Vec<EmitId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SensorEp {
    started: i64,
    first: f64,
    peak: f64,
    version: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SensorState {
    rule: u16,
    last_ms: i64,
    beyond_since: Option<(i64, f64)>,
    ep: Option<SensorEp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Subject {
    profile: u32,
    newest_ms: Option<i64>,
    state: RuleState,
    checkpoint: Option<Box<Checkpoint>>,
    arrivals: Arrivals,
    offline: Option<Ep>,
    offline_long: Option<Ep>,
    sensors: Vec<SensorState>,
}

impl Subject {
    fn new(profile: u32) -> Self {
        Subject {
            profile,
            newest_ms: None,
            state: RuleState::default(),
            checkpoint: None,
            arrivals: Arrivals::default(),
            offline: None,
            offline_long: None,
            sensors: Vec::new(),
        }
    }

    fn remap(&mut self, areas: &[Option<u16>], sensors: &[Option<u16>]) {
        self.state.remap_areas(areas);
        if let Some(cp) = &mut self.checkpoint {
            cp.before.remap_areas(areas);
        }
        self.sensors.retain_mut(|s| match sensors.get(usize::from(s.rule)).copied().flatten() {
            Some(n) => {
                s.rule = n;
                true
            }
            None => false,
        });
    }

    /// Replays the checkpoint and emits what was not emitted before.
    fn replay(&mut self, cx: &Cx, at_ms: i64, out: &mut Vec<Event>) {
        let Some(cp) = self.checkpoint.as_mut() else { return };
        self.arrivals.replays += 1;
        let mut state = cp.before.clone();
        let mut produced = Vec::new();
        for f in &cp.fixes {
            state.step(cx, f, &mut produced);
        }
        let previous = cp.emitted.len();
        for e in &produced {
            let id = EmitId::of(e);
            if !cp.emitted.contains(&id) {
                out.push(e.clone());
                cp.emitted.push(id);
            }
        }
        // Episodes raised before the replay that it did not reproduce, and not yet ended: end them.
        let instant = |k: AlarmKind| {
            matches!(
                k,
                AlarmKind::GeofenceEnter
                    | AlarmKind::GeofenceLeave
                    | AlarmKind::PositionDrift
                    | AlarmKind::OfflineDriving
                    | AlarmKind::SegmentTime
            )
        };
        let mut superseded = Vec::new();
        for id in &cp.emitted[..previous] {
            let same =
                |k: AlarmKind, scope: &str, started: i64| k == id.kind && scope == id.scope && started == id.started;
            if id.phase != Phase::Raised || instant(id.kind) {
                continue;
            }
            let ended = cp.emitted.iter().any(|o| o.phase == Phase::Ended && same(o.kind, &o.scope, o.started));
            let reproduced = produced.iter().any(|e| same(e.kind, &e.key.scope, e.key.started_ms));
            if !ended && !reproduced {
                superseded.push(id.clone());
            }
        }
        for id in superseded {
            out.push(Event {
                key: AlarmKey {
                    subject: cx.subject.to_owned(),
                    kind: id.kind,
                    scope: id.scope.clone(),
                    started_ms: id.started,
                },
                kind: id.kind,
                phase: Phase::Ended,
                severity: Severity::Info,
                grade: id.grade,
                start_ms: id.started,
                at_ms,
                rule_version: cx.version,
                details: Details::Superseded,
                evidence: Vec::new(),
            });
            cp.emitted.push(EmitId { phase: Phase::Ended, ..id });
        }
        self.state = state;
    }
}

/// Serialisable engine state: restore it with [`Engine::restore`] to continue after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineSnapshot {
    /// Version of the rule set in force when it was taken.
    pub rule_version: u32,
    now_ms: Option<i64>,
    area_ids: Vec<String>,
    sensor_ids: Vec<String>,
    profiles: Vec<Profile>,
    subjects: Vec<(String, Subject)>,
}

/// Stack and heap bytes of one subject's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUse {
    /// Bytes inline in the engine's map (key and value).
    pub inline: usize,
    /// Bytes on the heap owned by the subject (id, area stays, driving buckets, checkpoint).
    pub heap: usize,
}

/// The alarm engine. See the crate documentation.
#[derive(Debug, Clone)]
pub struct Engine {
    rules: RuleSet,
    areas: Vec<CompiledArea>,
    routes: Vec<CompiledRoute>,
    profiles: Vec<(Profile, Params)>,
    profile_ix: HashMap<Profile, u32, Hasher>,
    subjects: HashMap<String, Subject, Hasher>,
    now_ms: Option<i64>,
}

fn compile(rules: &RuleSet) -> (Vec<CompiledArea>, Vec<CompiledRoute>) {
    let areas = rules
        .areas
        .iter()
        .map(|a| CompiledArea {
            id: a.id.clone(),
            shape: a.shape.clone(),
            bbox: a.shape.bbox(),
            speed_limit: a.speed_limit_kmh,
            enter: a.alarm_enter,
            leave: a.alarm_leave,
            dwell_ms: a.dwell_max_min.map(|m| m.saturating_mul(MINUTE_MS)),
        })
        .collect();
    let routes = rules
        .routes
        .iter()
        .map(|r| {
            let mut limits = vec![(None, None); r.points.len().saturating_sub(1)];
            for l in &r.segments {
                if let Some(slot) = limits.get_mut(l.index) {
                    *slot = (l.too_short_s, l.too_long_s);
                }
            }
            CompiledRoute { id: r.id.clone(), points: r.points.clone(), half_width_m: r.width_m / 2.0, limits }
        })
        .collect();
    (areas, routes)
}

fn index_map(old: &[String], new: &RuleSet, sensors: bool) -> Vec<Option<u16>> {
    old.iter()
        .map(|id| {
            let pos = if sensors {
                new.sensors.iter().position(|s| &s.id == id)
            } else {
                new.areas.iter().position(|a| &a.id == id)
            };
            pos.and_then(|i| u16::try_from(i).ok())
        })
        .collect()
}

impl Engine {
    /// An engine with no subjects. Run [`RuleSet::check`] first: the engine never panics on a
    /// bad rule set, but its alarms would be meaningless.
    pub fn new(rules: RuleSet) -> Self {
        let (areas, routes) = compile(&rules);
        let mut e = Engine {
            rules,
            areas,
            routes,
            profiles: Vec::new(),
            profile_ix: HashMap::default(),
            subjects: HashMap::default(),
            now_ms: None,
        };
        e.intern(&Profile::default());
        e
    }

    /// The rule set in force.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Replaces the rule set. It applies to observations from now on; open episodes keep the
    /// version that raised them. Area stays and sensor states follow their ids; those of removed
    /// areas and sensor rules are dropped silently.
    pub fn set_rules(&mut self, rules: RuleSet) {
        let area_ids: Vec<String> = self.rules.areas.iter().map(|a| a.id.clone()).collect();
        let sensor_ids: Vec<String> = self.rules.sensors.iter().map(|s| s.id.clone()).collect();
        let amap = index_map(&area_ids, &rules, false);
        let smap = index_map(&sensor_ids, &rules, true);
        let (areas, routes) = compile(&rules);
        self.areas = areas;
        self.routes = routes;
        for (profile, params) in &mut self.profiles {
            *params = rules.resolve(profile);
        }
        self.rules = rules;
        for s in self.subjects.values_mut() {
            s.remap(&amap, &smap);
        }
    }

    fn intern(&mut self, profile: &Profile) -> u32 {
        if let Some(&i) = self.profile_ix.get(profile) {
            return i;
        }
        let i = u32::try_from(self.profiles.len()).unwrap_or(0);
        self.profiles.push((profile.clone(), self.rules.resolve(profile)));
        self.profile_ix.insert(profile.clone(), i);
        i
    }

    /// Sets a subject's profile (class, enterprise, route); subjects without one get the
    /// defaults. A changed profile clears the subject's area stays (they are re-entered).
    pub fn set_profile(&mut self, subject: &str, profile: Profile) {
        let ix = self.intern(&profile);
        match self.subjects.get_mut(subject) {
            Some(s) if s.profile != ix => {
                s.profile = ix;
                s.state.areas.clear();
            }
            Some(_) => {}
            None => {
                self.subjects.insert(subject.to_owned(), Subject::new(ix));
            }
        }
    }

    /// Number of subjects tracked.
    pub fn subject_count(&self) -> usize {
        self.subjects.len()
    }

    /// Device time of the newest fix observed of a subject: where a replay of stored fixes after
    /// a restart starts (anything not newer was seen before the snapshot).
    pub fn newest_ms(&self, subject: &str) -> Option<i64> {
        self.subjects.get(subject).and_then(|s| s.newest_ms)
    }

    /// Device time of the newest reading of `subject` any sensor rule took (readings at or
    /// before it are refused by those rules): where a replay of stored readings starts.
    pub fn newest_reading_ms(&self, subject: &str) -> Option<i64> {
        self.subjects.get(subject).and_then(|s| s.sensors.iter().map(|x| x.last_ms).filter(|&ms| ms > i64::MIN).max())
    }

    /// A subject's counters.
    pub fn counters(&self, subject: &str) -> Option<Counters> {
        self.subjects.get(subject).map(|s| Counters {
            received: s.arrivals.received,
            evaluated: s.state.evaluated,
            invalid: s.state.invalid + s.arrivals.bad_time,
            drift: s.state.drift,
            duplicates: s.arrivals.duplicates,
            late: s.arrivals.late,
            replays: s.arrivals.replays,
            readings: s.arrivals.readings,
            readings_refused: s.arrivals.readings_refused,
        })
    }

    /// Memory held for one subject.
    pub fn memory(&self, subject: &str) -> Option<MemoryUse> {
        self.subjects.get_key_value(subject).map(|(k, s)| MemoryUse {
            inline: std::mem::size_of::<(String, Subject)>(),
            heap: k.capacity()
                + s.state.heap_bytes()
                + s.sensors.capacity() * std::mem::size_of::<SensorState>()
                + s.checkpoint.as_ref().map_or(0, |cp| {
                    std::mem::size_of::<Checkpoint>()
                        + cp.before.heap_bytes()
                        + cp.fixes.capacity() * std::mem::size_of::<Fix>()
                        + cp.emitted.capacity() * std::mem::size_of::<EmitId>()
                }),
        })
    }

    /// Evaluates one fix; returns the events it caused (no allocation when there are none).
    pub fn observe_fix(&mut self, subject: &str, fix: Fix) -> Vec<Event> {
        let mut out = Vec::new();
        self.observe_fix_into(subject, fix, &mut out);
        out
    }

    /// Evaluates one fix, pushing the events it caused into `out`.
    pub fn observe_fix_into(&mut self, subject: &str, fix: Fix, out: &mut Vec<Event>) {
        self.observe(subject, std::slice::from_ref(&fix), out);
    }

    /// Evaluates a batch of fixes of one subject (e.g. a JT/T 808 0x0704 blind-area upload) in
    /// device-time order: late fixes that fall into a recorded gap are replayed once for the
    /// whole batch.
    pub fn observe_batch(&mut self, subject: &str, fixes: &[Fix]) -> Vec<Event> {
        let mut sorted = fixes.to_vec();
        sorted.sort_by_key(|f| f.device_ms);
        let mut out = Vec::new();
        self.observe(subject, &sorted, &mut out);
        out
    }

    /// `fixes` sorted by device time (or a single fix).
    fn observe(&mut self, subject: &str, fixes: &[Fix], out: &mut Vec<Event>) {
        let now = self.now_ms;
        if !self.subjects.contains_key(subject) {
            self.subjects.insert(subject.to_owned(), Subject::new(0));
        }
        let Engine { subjects, profiles, areas, routes, rules, .. } = self;
        let Some(s) = subjects.get_mut(subject) else { return };
        let Some((_, p)) = profiles.get(s.profile as usize).or_else(|| profiles.first()) else { return };
        let cx = Cx { subject, p, areas, routes, version: rules.version };
        let e = &rules.engine;
        let future_ms = e.future_tolerance_s.saturating_mul(1000);
        let max_age = e.checkpoint_max_age_s.saturating_mul(1000);
        let mut needs_replay = false;
        for fix in fixes {
            s.arrivals.received += 1;
            let ms = fix.device_ms;
            if !(TIME_MIN_MS..=TIME_MAX_MS).contains(&ms) || now.is_some_and(|n| ms > n.saturating_add(future_ms)) {
                s.arrivals.bad_time += 1;
                continue;
            }
            // Any report ends an offline episode.
            let at = s.newest_ms.map_or(ms, |n| n.max(ms));
            for (slot, kind) in [(&mut s.offline, AlarmKind::Offline), (&mut s.offline_long, AlarmKind::OfflineLong)] {
                if let Some(ep) = slot.take() {
                    let d = Details::Offline {
                        last_seen_ms: ep.started,
                        silent_min: (at - ep.started) / MINUTE_MS,
                        distance_m: None,
                    };
                    let now = if crate::state::plausible(fix) { FixRef::of(fix) } else { ep.first };
                    emit(out, subject, kind, "", Phase::Ended, &ep, at, d, &[ep.first, now]);
                }
            }
            match s.newest_ms {
                Some(n) if ms == n => s.arrivals.duplicates += 1,
                Some(n) if ms < n => {
                    let Some(cp) = s.checkpoint.as_mut().filter(|cp| ms > cp.gap_from) else {
                        s.arrivals.late += 1;
                        continue;
                    };
                    match cp.fixes.binary_search_by_key(&ms, |f| f.device_ms) {
                        Ok(_) => s.arrivals.duplicates += 1,
                        Err(i) => {
                            cp.fixes.insert(i, *fix);
                            needs_replay = true;
                        }
                    }
                }
                newest => {
                    if needs_replay {
                        s.replay(&cx, newest.unwrap_or(ms), out);
                        needs_replay = false;
                    }
                    if s.checkpoint.as_ref().is_some_and(|cp| {
                        ms - cp.gap_from > max_age
                            || cp.fixes.len() >= e.checkpoint_max_fixes
                            || cp.emitted.len() >= MAX_EMITTED
                    }) {
                        s.checkpoint = None;
                    }
                    let gap_from = newest.filter(|&n| ms - n > p.gap_ms);
                    if let Some(n) = gap_from.filter(|_| s.checkpoint.is_none() && e.checkpoint_max_fixes > 0) {
                        s.checkpoint = Some(Box::new(Checkpoint {
                            before: s.state.clone(),
                            gap_from: n,
                            fixes: Vec::new(),
                            emitted: Vec::new(),
                        }));
                    }
                    let start = out.len();
                    s.state.step(&cx, fix, out);
                    s.newest_ms = Some(ms);
                    if let Some(cp) = &mut s.checkpoint {
                        cp.fixes.push(*fix);
                        cp.emitted.extend(out[start..].iter().map(EmitId::of));
                    }
                }
            }
        }
        if needs_replay {
            let at = s.newest_ms.unwrap_or(0);
            s.replay(&cx, at, out);
        }
    }

    /// Evaluates one sensor reading against the sensor rules of the subject's class.
    pub fn observe_reading(&mut self, subject: &str, reading: &Reading) -> Vec<Event> {
        let mut out = Vec::new();
        let version = self.rules.version;
        let Engine { subjects, profiles, rules, .. } = self;
        if !subjects.contains_key(subject) {
            subjects.insert(subject.to_owned(), Subject::new(0));
        }
        let Some(s) = subjects.get_mut(subject) else { return out };
        let Some((_, p)) = profiles.get(s.profile as usize).or_else(|| profiles.first()) else { return out };
        s.arrivals.readings += 1;
        let (ms, v) = (reading.device_ms, reading.value);
        if !v.is_finite() || !(TIME_MIN_MS..=TIME_MAX_MS).contains(&ms) {
            s.arrivals.readings_refused += 1;
            return out;
        }
        let mut refused = false;
        for &ri in &p.sensors {
            let Some(rule) = rules.sensors.get(usize::from(ri)) else { continue };
            if rule.metric != reading.metric {
                continue;
            }
            let st = match s.sensors.iter().position(|x| x.rule == ri) {
                Some(i) => &mut s.sensors[i],
                None => {
                    s.sensors.push(SensorState { rule: ri, last_ms: i64::MIN, beyond_since: None, ep: None });
                    let last = s.sensors.len() - 1;
                    &mut s.sensors[last]
                }
            };
            if ms <= st.last_ms {
                refused = true;
                continue;
            }
            st.last_ms = ms;
            let (th, h) = (rule.threshold, rule.hysteresis);
            let (beyond, cleared, worse) = match rule.direction {
                Direction::Above => (v > th, v <= th - h, 1.0),
                Direction::Below => (v < th, v >= th + h, -1.0),
            };
            let worse = |a: f64, b: f64| a * worse > b * worse;
            let details =
                |value: f64, peak: f64| Details::Sensor { metric: rule.metric.clone(), value, peak, threshold: th };
            let event = |phase, ep: &SensorEp, value: f64, ev: Vec<Evidence>| Event {
                key: AlarmKey {
                    subject: subject.to_owned(),
                    kind: AlarmKind::Sensor,
                    scope: rule.id.clone(),
                    started_ms: ep.started,
                },
                kind: AlarmKind::Sensor,
                phase,
                severity: rule.severity,
                grade: 0,
                start_ms: ep.started,
                at_ms: ms,
                rule_version: ep.version,
                details: details(value, ep.peak),
                evidence: ev,
            };
            let now_ev = Evidence::Reading { device_ms: ms, value: v };
            match &mut st.ep {
                Some(ep) => {
                    if worse(v, ep.peak) {
                        ep.peak = v;
                    }
                    if cleared {
                        let first = Evidence::Reading { device_ms: ep.started, value: ep.first };
                        out.push(event(Phase::Ended, ep, v, vec![first, now_ev]));
                        st.ep = None;
                        st.beyond_since = None;
                    }
                }
                None if beyond => {
                    let (since, first) = *st.beyond_since.get_or_insert((ms, v));
                    if ms - since >= rule.min_duration_s.saturating_mul(1000) {
                        let ep = SensorEp { started: since, first, peak: v.max(first), version };
                        let ep =
                            if rule.direction == Direction::Below { SensorEp { peak: v.min(first), ..ep } } else { ep };
                        let first_ev = Evidence::Reading { device_ms: since, value: first };
                        let evidence = if since == ms { vec![now_ev] } else { vec![first_ev, now_ev] };
                        out.push(event(Phase::Raised, &ep, v, evidence));
                        st.ep = Some(ep);
                    }
                }
                None => st.beyond_since = None,
            }
        }
        if refused {
            s.arrivals.readings_refused += 1;
        }
        out
    }

    /// Advances the engine clock: raises `Offline` (silent for the offline time while last seen
    /// driving) and `OfflineLong`. Silence is measured from the newest device time, so terminal
    /// clocks are trusted (they are GNSS-disciplined); the clock also bounds future device times.
    /// Events are sorted by subject.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Event> {
        self.now_ms = Some(now_ms);
        let mut out = Vec::new();
        let version = self.rules.version;
        for (id, s) in &mut self.subjects {
            let Some(newest) = s.newest_ms else { continue };
            let Some((_, p)) = self.profiles.get(s.profile as usize) else { continue };
            let silent = now_ms.saturating_sub(newest);
            let last = s.state.last;
            let moving = last.is_some_and(|l| l.driving && l.fix.ms == newest);
            let last_fix = last.map(|l| l.fix);
            let first = last_fix.unwrap_or_default();
            let details = Details::Offline { last_seen_ms: newest, silent_min: silent / MINUTE_MS, distance_m: None };
            if moving && silent > p.offline_ms && s.offline.is_none() {
                let ep = Ep::new(newest, Severity::Medium, 0, version, first);
                emit(
                    &mut out,
                    id,
                    AlarmKind::Offline,
                    "",
                    Phase::Raised,
                    &ep,
                    now_ms,
                    details.clone(),
                    last_fix.as_slice(),
                );
                s.offline = Some(ep);
            }
            if silent > p.offline_long_ms && s.offline_long.is_none() {
                let ep = Ep::new(newest, Severity::High, 0, version, first);
                emit(
                    &mut out,
                    id,
                    AlarmKind::OfflineLong,
                    "",
                    Phase::Raised,
                    &ep,
                    now_ms,
                    details,
                    last_fix.as_slice(),
                );
                s.offline_long = Some(ep);
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// The engine's state, for a restart.
    pub fn snapshot(&self) -> EngineSnapshot {
        let mut subjects: Vec<(String, Subject)> = self.subjects.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        subjects.sort_by(|a, b| a.0.cmp(&b.0));
        EngineSnapshot {
            rule_version: self.rules.version,
            now_ms: self.now_ms,
            area_ids: self.rules.areas.iter().map(|a| a.id.clone()).collect(),
            sensor_ids: self.rules.sensors.iter().map(|s| s.id.clone()).collect(),
            profiles: self.profiles.iter().map(|(p, _)| p.clone()).collect(),
            subjects,
        }
    }

    /// An engine continuing from a snapshot under `rules` (the same or a newer version).
    pub fn restore(rules: RuleSet, snapshot: EngineSnapshot) -> Self {
        let amap = index_map(&snapshot.area_ids, &rules, false);
        let smap = index_map(&snapshot.sensor_ids, &rules, true);
        let mut e = Engine::new(rules);
        e.now_ms = snapshot.now_ms;
        let pmap: Vec<u32> = snapshot.profiles.iter().map(|p| e.intern(p)).collect();
        for (id, mut s) in snapshot.subjects {
            s.profile = pmap.get(s.profile as usize).copied().unwrap_or(0);
            s.remap(&amap, &smap);
            e.subjects.insert(id, s);
        }
        e
    }
}
