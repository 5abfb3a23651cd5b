//! Per-subject rule state for position fixes and the step function that advances it by one fix.
//!
//! Everything here is deterministic and replayable: the engine clones a [`RuleState`] before a
//! gap and can run the fixes after it through [`RuleState::step`] again, in device-time order.

use serde::{Deserialize, Serialize};

use crate::Fix;
use crate::config::Params;
use crate::event::{AlarmKey, AlarmKind, Details, Event, Evidence, LimitSource, MAX_EVIDENCE, Phase, Severity};
use crate::geo::{self, Shape};
use crate::time::{self, HOUR_MS, MINUTE_MS};

/// An area ready for containment tests.
#[derive(Debug, Clone)]
pub(crate) struct CompiledArea {
    pub id: String,
    pub shape: Shape,
    /// (south, west, north, east)
    pub bbox: (f64, f64, f64, f64),
    pub speed_limit: Option<f64>,
    pub enter: bool,
    pub leave: bool,
    pub dwell_ms: Option<i64>,
}

impl CompiledArea {
    #[inline]
    fn contains(&self, lat: f64, lon: f64) -> bool {
        let (s, w, n, e) = self.bbox;
        lat >= s && lat <= n && lon >= w && lon <= e && self.shape.contains(lat, lon)
    }
}

/// A route corridor ready for distance tests.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRoute {
    pub id: String,
    pub points: Vec<[f64; 2]>,
    pub half_width_m: f64,
    /// Per segment: (too short, too long) travel time, seconds.
    pub limits: Vec<(Option<i64>, Option<i64>)>,
}

/// What one step needs besides the state.
pub(crate) struct Cx<'a> {
    pub subject: &'a str,
    pub p: &'a Params,
    pub areas: &'a [CompiledArea],
    pub routes: &'a [CompiledRoute],
    pub version: u32,
}

/// The parts of a fix kept as evidence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct FixRef {
    pub ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub speed: f64,
}

impl FixRef {
    pub(crate) fn of(f: &Fix) -> Self {
        FixRef { ms: f.device_ms, lat: f.lat, lon: f.lon, speed: f.speed_kmh }
    }
    fn evidence(self) -> Evidence {
        Evidence::Fix { device_ms: self.ms, lat: self.lat, lon: self.lon, speed_kmh: self.speed }
    }
}

/// An open alarm episode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Ep {
    pub started: i64,
    pub severity: Severity,
    pub grade: u8,
    pub version: u32,
    /// Kind-specific peak figure (route distance).
    pub peak: f64,
    pub first: FixRef,
}

impl Ep {
    pub(crate) fn new(started: i64, severity: Severity, grade: u8, version: u32, first: FixRef) -> Self {
        Ep { started, severity, grade, version, peak: 0.0, first }
    }
}

/// Builds and pushes one event.
#[allow(clippy::too_many_arguments)]
pub(crate) fn emit(
    out: &mut Vec<Event>,
    subject: &str,
    kind: AlarmKind,
    scope: &str,
    phase: Phase,
    ep: &Ep,
    at_ms: i64,
    details: Details,
    evidence: &[FixRef],
) {
    let mut ev: Vec<Evidence> = Vec::with_capacity(evidence.len().min(MAX_EVIDENCE));
    let mut last_ms = None;
    for f in evidence.iter().take(MAX_EVIDENCE) {
        if last_ms != Some(f.ms) {
            ev.push(f.evidence());
            last_ms = Some(f.ms);
        }
    }
    out.push(Event {
        key: AlarmKey { subject: subject.to_owned(), kind, scope: scope.to_owned(), started_ms: ep.started },
        kind,
        phase,
        severity: ep.severity,
        grade: ep.grade,
        start_ms: ep.started,
        at_ms,
        rule_version: ep.version,
        details,
        evidence: ev,
    });
}

/// The last accepted (valid, not drift) fix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Last {
    pub fix: FixRef,
    pub driving: bool,
}

/// Where the overspeed limit in force came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
enum Src {
    #[default]
    Class,
    Area(u16),
    Terminal,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Speed {
    night: bool,
    over_since: Option<FixRef>,
    peak_pct: f64,
    peak: FixRef,
    limit: f64,
    src: Src,
    ep: Option<Ep>,
}

/// Rolling sum of driving seconds in fixed buckets (a ring); storage is allocated on the first
/// driving interval, so parked or sensor-only subjects pay nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Ring {
    buckets: Vec<u16>,
    /// Absolute index (time / bucket length) of the newest bucket.
    head: i64,
    sum_s: u32,
}

impl Ring {
    fn advance(&mut self, n: usize, bucket_ms: i64, t: i64) {
        if self.buckets.is_empty() {
            return;
        }
        let ix = t.div_euclid(bucket_ms);
        if ix <= self.head {
            return;
        }
        let steps = (ix - self.head).min(n as i64);
        for k in 1..=steps {
            let slot = (self.head + k).rem_euclid(n as i64) as usize;
            self.sum_s = self.sum_s.saturating_sub(u32::from(self.buckets[slot]));
            self.buckets[slot] = 0;
        }
        self.head = ix;
    }

    /// Adds driving over `[a, b)`. Seconds are counted as whole seconds of absolute time
    /// crossed, so consecutive intervals add up exactly.
    fn add(&mut self, n: usize, bucket_ms: i64, a: i64, b: i64) {
        if b <= a {
            return;
        }
        let span = bucket_ms.saturating_mul(n as i64);
        let mut t = a.max(b.saturating_sub(span));
        if self.buckets.is_empty() {
            self.buckets = vec![0; n];
            self.head = t.div_euclid(bucket_ms);
        }
        while t < b {
            let ix = t.div_euclid(bucket_ms);
            let end = ix.saturating_add(1).saturating_mul(bucket_ms).min(b);
            self.advance(n, bucket_ms, t);
            if self.head - ix < n as i64 {
                let slot = ix.rem_euclid(n as i64) as usize;
                let secs = end.div_euclid(1000) - t.div_euclid(1000);
                let old = self.buckets[slot];
                let new = old.saturating_add(u16::try_from(secs.max(0)).unwrap_or(u16::MAX));
                self.buckets[slot] = new;
                self.sum_s = self.sum_s.saturating_add(u32::from(new - old));
            }
            t = end;
        }
    }

    fn sum_ms(&self) -> i64 {
        i64::from(self.sum_s) * 1000
    }
}

const DAY_BUCKET_MS: i64 = 10 * MINUTE_MS;
const DAY_BUCKETS: usize = 144;
const WEEK_BUCKET_MS: i64 = HOUR_MS;
const WEEK_BUCKETS: usize = 168;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Fatigue {
    /// Driving since the last qualifying rest.
    cont_ms: i64,
    /// When that driving began.
    since: i64,
    /// Length of the current stop so far.
    stop_ms: i64,
    prewarned: bool,
    ep: Option<Ep>,
    /// Driving of the last step, for the start of cumulative episodes.
    last_drive_ms: i64,
    day: Ring,
    week: Ring,
    daily_ep: Option<Ep>,
    weekly_ep: Option<Ep>,
}

fn hm(ms: i64) -> (i64, i64) {
    let m = ms / MINUTE_MS;
    (m / 60, m % 60)
}

impl Fatigue {
    /// The moment `cont_ms` reached `threshold` within a driving stretch `[start, end)` that
    /// began at `before`; if it was already past (the night limit took over), the night start.
    fn crossing(before: i64, threshold: i64, start: i64, end: i64, p: &Params) -> i64 {
        if before < threshold {
            start + (threshold - before)
        } else {
            start.max(time::last_local_minute(end, p.night.0)).min(end)
        }
    }

    fn details(&self, limit: i64, night: bool, message: Option<String>) -> Details {
        Details::Fatigue {
            driving_min: self.cont_ms / MINUTE_MS,
            limit_min: limit / MINUTE_MS,
            driving_since_ms: self.since,
            night,
            message,
        }
    }

    /// Driving over `[start, start + drive)`, then rest over the following `rest`.
    fn advance(&mut self, cx: &Cx, start: i64, drive: i64, rest: i64, cur: FixRef, out: &mut Vec<Event>) {
        let p = cx.p;
        self.last_drive_ms = drive;
        if drive > 0 {
            if self.cont_ms == 0 {
                self.since = start;
            }
            self.stop_ms = 0;
            let before = self.cont_ms;
            self.cont_ms = self.cont_ms.saturating_add(drive);
            let end = start + drive;
            self.day.add(DAY_BUCKETS, DAY_BUCKET_MS, start, end);
            self.week.add(WEEK_BUCKETS, WEEK_BUCKET_MS, start, end);
            let night = p.is_night(end);
            let limit = if night { p.night_limit_ms } else { p.day_limit_ms };
            let pre = limit - p.prewarn_ms;
            if p.prewarn_ms > 0 && !self.prewarned && self.ep.is_none() && self.cont_ms > pre && self.cont_ms <= limit {
                self.prewarned = true;
                let at = Self::crossing(before, pre, start, end, p);
                let ep = Ep::new(at, Severity::Info, 0, cx.version, cur);
                let (h, m) = hm(self.cont_ms);
                let msg = format!("您已连续驾驶{h}小时{m}分钟，请尽快停车休息");
                let d = self.details(limit, night, Some(msg));
                emit(out, cx.subject, AlarmKind::FatigueContinuous, "", Phase::PreWarning, &ep, cur.ms, d, &[cur]);
            }
            if self.cont_ms > limit {
                match &mut self.ep {
                    None => {
                        self.prewarned = true;
                        let at = Self::crossing(before, limit, start, end, p);
                        let ep = Ep::new(at, Severity::High, 0, cx.version, cur);
                        let (h, m) = hm(self.cont_ms);
                        let msg = format!("您已连续驾驶{h}小时{m}分钟，已疲劳驾驶，请立即停车休息");
                        let d = self.details(limit, night, Some(msg));
                        emit(out, cx.subject, AlarmKind::FatigueContinuous, "", Phase::Raised, &ep, cur.ms, d, &[cur]);
                        self.ep = Some(ep);
                    }
                    Some(ep) => {
                        let grade = u8::try_from((self.cont_ms - limit) / (30 * MINUTE_MS)).unwrap_or(u8::MAX);
                        if grade > ep.grade {
                            ep.grade = grade;
                            ep.severity = if grade >= 2 { Severity::Critical } else { Severity::High };
                            let ep = *ep;
                            let d = self.details(limit, night, None);
                            emit(
                                out,
                                cx.subject,
                                AlarmKind::FatigueContinuous,
                                "",
                                Phase::Updated,
                                &ep,
                                cur.ms,
                                d,
                                &[ep.first, cur],
                            );
                        }
                    }
                }
            }
        }
        if rest > 0 && (self.cont_ms > 0 || self.ep.is_some()) {
            self.stop_ms = self.stop_ms.saturating_add(rest);
            if self.stop_ms >= p.rest_ms {
                if let Some(ep) = self.ep.take() {
                    let d = self.details(0, false, None);
                    emit(
                        out,
                        cx.subject,
                        AlarmKind::FatigueContinuous,
                        "",
                        Phase::Ended,
                        &ep,
                        cur.ms,
                        d,
                        &[ep.first, cur],
                    );
                }
                self.cont_ms = 0;
                self.prewarned = false;
            }
        }
    }

    /// Rolls the 24 h and 7 d windows to `cur` and raises or ends the cumulative alarms.
    fn windows(&mut self, cx: &Cx, cur: FixRef, out: &mut Vec<Event>) {
        self.day.advance(DAY_BUCKETS, DAY_BUCKET_MS, cur.ms);
        self.week.advance(WEEK_BUCKETS, WEEK_BUCKET_MS, cur.ms);
        let checks = [
            (self.day.sum_ms(), cx.p.daily_ms, 24, AlarmKind::FatigueDaily),
            (self.week.sum_ms(), cx.p.weekly_ms, 168, AlarmKind::FatigueWeekly),
        ];
        for (sum, limit, window_h, kind) in checks {
            let slot = if kind == AlarmKind::FatigueDaily { &mut self.daily_ep } else { &mut self.weekly_ep };
            let details = Details::Cumulative { driving_min: sum / MINUTE_MS, limit_min: limit / MINUTE_MS, window_h };
            match slot {
                None if sum > limit => {
                    let at = cur.ms - (sum - limit).min(self.last_drive_ms).max(0);
                    let ep = Ep::new(at, Severity::High, 0, cx.version, cur);
                    emit(out, cx.subject, kind, "", Phase::Raised, &ep, cur.ms, details, &[cur]);
                    *slot = Some(ep);
                }
                Some(ep) if sum <= limit => {
                    let ep = *ep;
                    *slot = None;
                    emit(out, cx.subject, kind, "", Phase::Ended, &ep, cur.ms, details, &[ep.first, cur]);
                }
                _ => {}
            }
        }
    }
}

/// A subject's stay in one area.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AreaState {
    pub area: u16,
    entered: i64,
    first: FixRef,
    dwell: Option<Ep>,
}

/// Rule state of one subject for position fixes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct RuleState {
    /// Fixes run through `step` (in device-time order).
    pub evaluated: u64,
    /// Of those, invalid (flag, range, 0/0, non-finite).
    pub invalid: u64,
    /// Of those, drift.
    pub drift: u64,
    pub last: Option<Last>,
    /// A drift candidate: if the next fix agrees with it, the anchor was the outlier.
    pending: Option<FixRef>,
    invalid_run: u32,
    invalid_since: i64,
    invalid_ep: Option<Ep>,
    speed: Speed,
    fatigue: Fatigue,
    curfew: Option<Ep>,
    pub areas: Vec<AreaState>,
    route: Option<Ep>,
    /// The route segment the vehicle is on and when it entered it.
    #[serde(default)]
    segment: Option<(u32, FixRef)>,
}

/// Whether a fix is usable: the terminal's valid flag, finite in-range coordinates other than
/// 0/0 (the usual placeholder of a terminal without a fix), a finite non-negative speed.
pub(crate) fn plausible(f: &Fix) -> bool {
    f.valid
        && f.lat.is_finite()
        && f.lon.is_finite()
        && (-90.0..=90.0).contains(&f.lat)
        && (-180.0..=180.0).contains(&f.lon)
        && !(f.lat == 0.0 && f.lon == 0.0)
        && f.speed_kmh.is_finite()
        && (0.0..=500.0).contains(&f.speed_kmh)
}

fn kmh(distance_m: f64, dt_ms: i64) -> f64 {
    distance_m / 1000.0 / (dt_ms as f64 / HOUR_MS as f64)
}

impl RuleState {
    /// Advances the state by one fix; the caller guarantees strictly increasing device times.
    pub(crate) fn step(&mut self, cx: &Cx, fix: &Fix, out: &mut Vec<Event>) {
        self.evaluated += 1;
        let p = cx.p;
        if !plausible(fix) {
            self.invalid += 1;
            if self.invalid_run == 0 {
                self.invalid_since = fix.device_ms;
            }
            self.invalid_run = self.invalid_run.saturating_add(1);
            if self.invalid_ep.is_none() && fix.device_ms - self.invalid_since >= p.invalid_min_ms {
                let first = FixRef { ms: self.invalid_since, ..FixRef::default() };
                let ep = Ep::new(self.invalid_since, Severity::Info, 0, cx.version, first);
                let d = Details::Invalid { count: self.invalid_run };
                emit(out, cx.subject, AlarmKind::InvalidData, "", Phase::Raised, &ep, fix.device_ms, d, &[]);
                self.invalid_ep = Some(ep);
            }
            return;
        }
        let cur = FixRef::of(fix);
        if let Some(ep) = self.invalid_ep.take() {
            let d = Details::Invalid { count: self.invalid_run };
            emit(out, cx.subject, AlarmKind::InvalidData, "", Phase::Ended, &ep, cur.ms, d, &[cur]);
        }
        self.invalid_run = 0;
        let driving = fix.acc_on && fix.speed_kmh > p.driving_kmh;
        let Some(prev) = self.last else {
            self.last = Some(Last { fix: cur, driving });
            self.at_fix(cx, fix, cur, driving, false, out);
            return;
        };
        let dt = cur.ms - prev.fix.ms;
        if dt <= 0 {
            return;
        }
        let d = geo::haversine_m(prev.fix.lat, prev.fix.lon, cur.lat, cur.lon);
        let implied = kmh(d, dt);
        if d > p.drift_min_m && implied > p.drift_kmh {
            let agrees_with_pending = self.pending.is_some_and(|q| {
                let dq = geo::haversine_m(q.lat, q.lon, cur.lat, cur.lon);
                let dtq = cur.ms - q.ms;
                dtq > 0 && (dq <= p.drift_min_m || kmh(dq, dtq) <= p.drift_kmh)
            });
            if !agrees_with_pending {
                self.drift += 1;
                self.pending = Some(cur);
                let ep = Ep::new(cur.ms, Severity::Info, 0, cx.version, cur);
                let det = Details::Drift { implied_kmh: implied, distance_m: d };
                emit(out, cx.subject, AlarmKind::PositionDrift, "", Phase::Raised, &ep, cur.ms, det, &[prev.fix, cur]);
                return;
            }
            // Two fixes agree with each other and not with the anchor: the anchor was the outlier.
            // Start again from here; the time since the anchor is not credited to any rule.
            self.pending = None;
            self.last = Some(Last { fix: cur, driving });
            self.at_fix(cx, fix, cur, driving, true, out);
            return;
        }
        self.pending = None;
        let gap = dt > p.gap_ms;
        if p.fatigue {
            // Gap policy (see the crate docs): the straight-line distance at the reference speed
            // was driven first, the rest of the silence was a stop.
            let (drive, rest) = if gap {
                let est = (d / p.gap_speed_mps * 1000.0) as i64;
                let est = est.clamp(0, dt);
                (est, dt - est)
            } else if prev.driving {
                (dt, 0)
            } else {
                (0, dt)
            };
            self.fatigue.advance(cx, prev.fix.ms, drive, rest, cur, out);
        }
        if gap && p.offline_driving && dt >= p.offline_ms && d >= p.offline_driving_min_m && implied > p.driving_kmh {
            let ep = Ep::new(prev.fix.ms, Severity::High, 0, cx.version, prev.fix);
            let det = Details::Offline { last_seen_ms: prev.fix.ms, silent_min: dt / MINUTE_MS, distance_m: Some(d) };
            emit(out, cx.subject, AlarmKind::OfflineDriving, "", Phase::Raised, &ep, cur.ms, det, &[prev.fix, cur]);
        }
        self.last = Some(Last { fix: cur, driving });
        self.at_fix(cx, fix, cur, driving, gap, out);
    }

    /// Rules that look at the fix itself: areas and area limits, overspeed, curfew, route,
    /// cumulative driving windows.
    fn at_fix(&mut self, cx: &Cx, fix: &Fix, cur: FixRef, driving: bool, gap: bool, out: &mut Vec<Event>) {
        let p = cx.p;
        let mut limit = p.speed_limit_kmh;
        let mut src = Src::Class;
        for &ai in &p.areas {
            let Some(a) = cx.areas.get(usize::from(ai)) else { continue };
            let inside = a.contains(cur.lat, cur.lon);
            if let Some(l) = a.speed_limit.filter(|&l| inside && l < limit) {
                limit = l;
                src = Src::Area(ai);
            }
            self.geofence(cx, ai, a, inside, cur, out);
        }
        self.speed(cx, fix, cur, limit, src, gap, out);
        if let Some((from, to)) = p.curfew {
            let active = driving && time::in_window(time::local_minute_of_day(cur.ms), from, to);
            match (active, self.curfew) {
                (true, None) => {
                    let ep = Ep::new(cur.ms, Severity::High, 0, cx.version, cur);
                    let d = Details::Curfew { speed_kmh: cur.speed };
                    emit(out, cx.subject, AlarmKind::Curfew, "", Phase::Raised, &ep, cur.ms, d, &[cur]);
                    self.curfew = Some(ep);
                }
                (false, Some(ep)) => {
                    self.curfew = None;
                    let d = Details::Curfew { speed_kmh: cur.speed };
                    emit(out, cx.subject, AlarmKind::Curfew, "", Phase::Ended, &ep, cur.ms, d, &[ep.first, cur]);
                }
                _ => {}
            }
        }
        if let Some(r) = p.route.and_then(|ri| cx.routes.get(usize::from(ri))) {
            let dist = geo::distance_to_polyline_m(&r.points, cur.lat, cur.lon);
            let outside = dist > r.half_width_m;
            self.segment_time(cx, r, outside, cur, out);
            match (&mut self.route, outside) {
                (None, true) => {
                    let mut ep = Ep::new(cur.ms, Severity::Medium, 0, cx.version, cur);
                    ep.peak = dist;
                    let d = Details::Route { route: r.id.clone(), distance_m: dist, allowed_m: r.half_width_m };
                    emit(out, cx.subject, AlarmKind::RouteDeviation, &r.id, Phase::Raised, &ep, cur.ms, d, &[cur]);
                    self.route = Some(ep);
                }
                (Some(ep), true) => ep.peak = ep.peak.max(dist),
                (Some(ep), false) => {
                    let ep = *ep;
                    self.route = None;
                    let d = Details::Route { route: r.id.clone(), distance_m: ep.peak, allowed_m: r.half_width_m };
                    emit(
                        out,
                        cx.subject,
                        AlarmKind::RouteDeviation,
                        &r.id,
                        Phase::Ended,
                        &ep,
                        cur.ms,
                        d,
                        &[ep.first, cur],
                    );
                }
                (None, false) => {}
            }
        }
        if p.fatigue {
            self.fatigue.windows(cx, cur, out);
        }
    }

    /// Segment travel time: the segment is the nearest one while inside the corridor; leaving it
    /// for the next one judges the time spent against its limits. Leaving the corridor, or
    /// moving to any other segment, starts afresh.
    fn segment_time(&mut self, cx: &Cx, r: &CompiledRoute, outside: bool, cur: FixRef, out: &mut Vec<Event>) {
        if outside || r.limits.iter().all(|l| *l == (None, None)) {
            self.segment = None;
            return;
        }
        let Some(seg) = geo::nearest_segment(&r.points, cur.lat, cur.lon) else { return };
        let seg = u32::try_from(seg).unwrap_or(u32::MAX);
        match self.segment {
            Some((s, _)) if s == seg => {}
            Some((s, entered)) if seg == s.saturating_add(1) => {
                let secs = (cur.ms - entered.ms) / 1000;
                let (short, long) = r.limits.get(s as usize).copied().unwrap_or((None, None));
                let verdict = match (short, long) {
                    (Some(min), _) if secs < min => Some(("too_short", min)),
                    (_, Some(max)) if secs > max => Some(("too_long", max)),
                    _ => None,
                };
                if let Some((verdict, limit_s)) = verdict {
                    let ep = Ep::new(cur.ms, Severity::Medium, 0, cx.version, entered);
                    let d = Details::SegmentTime {
                        route: r.id.clone(),
                        segment: s as usize,
                        seconds: secs,
                        verdict: verdict.into(),
                        limit_s,
                    };
                    let scope = format!("{}#{s}", r.id);
                    emit(
                        out,
                        cx.subject,
                        AlarmKind::SegmentTime,
                        &scope,
                        Phase::Raised,
                        &ep,
                        cur.ms,
                        d,
                        &[entered, cur],
                    );
                }
                self.segment = Some((seg, cur));
            }
            _ => self.segment = Some((seg, cur)),
        }
    }

    fn geofence(&mut self, cx: &Cx, ai: u16, a: &CompiledArea, inside: bool, cur: FixRef, out: &mut Vec<Event>) {
        let pos = self.areas.iter().position(|s| s.area == ai);
        match (inside, pos) {
            (true, None) => {
                self.areas.push(AreaState { area: ai, entered: cur.ms, first: cur, dwell: None });
                if a.enter {
                    let ep = Ep::new(cur.ms, Severity::Low, 0, cx.version, cur);
                    let d = Details::Area { area: a.id.clone(), dwell_min: 0 };
                    emit(out, cx.subject, AlarmKind::GeofenceEnter, &a.id, Phase::Raised, &ep, cur.ms, d, &[cur]);
                }
            }
            (true, Some(i)) => {
                let s = &mut self.areas[i];
                if s.dwell.is_none() && a.dwell_ms.is_some_and(|dwell| cur.ms - s.entered > dwell) {
                    let ep = Ep::new(s.entered, Severity::Medium, 0, cx.version, s.first);
                    let d = Details::Area { area: a.id.clone(), dwell_min: (cur.ms - s.entered) / MINUTE_MS };
                    emit(
                        out,
                        cx.subject,
                        AlarmKind::GeofenceDwell,
                        &a.id,
                        Phase::Raised,
                        &ep,
                        cur.ms,
                        d,
                        &[s.first, cur],
                    );
                    s.dwell = Some(ep);
                }
            }
            (false, Some(i)) => {
                let s = self.areas.swap_remove(i);
                let dwell_min = (cur.ms - s.entered) / MINUTE_MS;
                if a.leave {
                    let ep = Ep::new(cur.ms, Severity::Low, 0, cx.version, cur);
                    let d = Details::Area { area: a.id.clone(), dwell_min };
                    emit(
                        out,
                        cx.subject,
                        AlarmKind::GeofenceLeave,
                        &a.id,
                        Phase::Raised,
                        &ep,
                        cur.ms,
                        d,
                        &[s.first, cur],
                    );
                }
                if let Some(ep) = s.dwell {
                    let d = Details::Area { area: a.id.clone(), dwell_min };
                    emit(
                        out,
                        cx.subject,
                        AlarmKind::GeofenceDwell,
                        &a.id,
                        Phase::Ended,
                        &ep,
                        cur.ms,
                        d,
                        &[s.first, cur],
                    );
                }
            }
            (false, None) => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn speed(&mut self, cx: &Cx, fix: &Fix, cur: FixRef, limit: f64, src: Src, gap: bool, out: &mut Vec<Event>) {
        let p = cx.p;
        let night = p.night_speed && p.is_night(cur.ms);
        let eff = if night { limit * p.night_factor } else { limit };
        let bit = p.terminal_bit && fix.alarm_bits & 0b10 != 0;
        let over_limit = cur.speed > eff;
        let over = over_limit || bit;
        let pct = if eff > 0.0 && over_limit { (cur.speed - eff) / eff * 100.0 } else { 0.0 };
        let s = &mut self.speed;
        let details = |s: &Speed, areas: &[CompiledArea]| Details::Speed {
            max_speed_kmh: s.peak.speed,
            limit_kmh: s.limit,
            // One decimal: what a person reads (66.5 %, not 66.49999999999999 %).
            percent_over: (s.peak_pct * 10.0).round() / 10.0,
            source: match s.src {
                Src::Class => LimitSource::Class,
                Src::Terminal => LimitSource::Terminal,
                Src::Area(i) => LimitSource::Area(areas.get(usize::from(i)).map(|a| a.id.clone()).unwrap_or_default()),
            },
        };
        let kind_of = |night: bool| if night { AlarmKind::NightOverspeed } else { AlarmKind::Overspeed };
        if s.night != night {
            if let Some(ep) = s.ep.take() {
                emit(
                    out,
                    cx.subject,
                    kind_of(s.night),
                    "",
                    Phase::Ended,
                    &ep,
                    cur.ms,
                    details(s, cx.areas),
                    &[ep.first, s.peak, cur],
                );
            }
            s.over_since = None;
            s.night = night;
        }
        if !over {
            if let Some(ep) = s.ep.take() {
                emit(
                    out,
                    cx.subject,
                    kind_of(night),
                    "",
                    Phase::Ended,
                    &ep,
                    cur.ms,
                    details(s, cx.areas),
                    &[ep.first, s.peak, cur],
                );
            }
            s.over_since = None;
            return;
        }
        if gap && s.ep.is_none() {
            s.over_since = None;
        }
        if s.over_since.is_none() {
            s.over_since = Some(cur);
            s.peak_pct = pct;
            s.peak = cur;
            s.limit = eff;
            s.src = if over_limit { src } else { Src::Terminal };
        } else if pct > s.peak_pct || cur.speed > s.peak.speed {
            if pct >= s.peak_pct {
                s.limit = eff;
                s.src = if over_limit { src } else { Src::Terminal };
            }
            s.peak_pct = s.peak_pct.max(pct);
            if cur.speed > s.peak.speed {
                s.peak = cur;
            }
        }
        let grade = 1 + u8::from(s.peak_pct >= 10.0) + u8::from(s.peak_pct >= 20.0) + u8::from(s.peak_pct >= 50.0);
        let severity = match grade {
            1 => Severity::Low,
            2 => Severity::Medium,
            3 => Severity::High,
            _ => Severity::Critical,
        };
        let first = s.over_since.unwrap_or(cur);
        match &mut s.ep {
            None if cur.ms - first.ms >= p.overspeed_min_ms => {
                let ep = Ep::new(first.ms, severity, grade, cx.version, first);
                s.ep = Some(ep);
                emit(
                    out,
                    cx.subject,
                    kind_of(night),
                    "",
                    Phase::Raised,
                    &ep,
                    cur.ms,
                    details(s, cx.areas),
                    &[first, s.peak, cur],
                );
            }
            Some(ep) if grade > ep.grade => {
                ep.grade = grade;
                ep.severity = severity;
                let ep = *ep;
                emit(
                    out,
                    cx.subject,
                    kind_of(night),
                    "",
                    Phase::Updated,
                    &ep,
                    cur.ms,
                    details(s, cx.areas),
                    &[ep.first, s.peak, cur],
                );
            }
            _ => {}
        }
    }

    /// Maps area indices after a rule change; stays in removed areas are dropped.
    pub(crate) fn remap_areas(&mut self, map: &[Option<u16>]) {
        self.areas.retain_mut(|s| match map.get(usize::from(s.area)).copied().flatten() {
            Some(n) => {
                s.area = n;
                true
            }
            None => false,
        });
        if let Src::Area(i) = self.speed.src {
            self.speed.src = map.get(usize::from(i)).copied().flatten().map_or(Src::Class, Src::Area);
        }
    }

    /// Heap bytes owned by this state.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.areas.capacity() * std::mem::size_of::<AreaState>()
            + (self.fatigue.day.buckets.capacity() + self.fatigue.week.buckets.capacity()) * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_counts_exact_seconds_and_expires() {
        let mut r = Ring::default();
        let t0 = 1_700_000_000_000;
        for i in 0..120 {
            r.add(DAY_BUCKETS, DAY_BUCKET_MS, t0 + i * 30_000, t0 + (i + 1) * 30_000);
        }
        assert_eq!(r.sum_ms(), 3_600_000);
        r.advance(DAY_BUCKETS, DAY_BUCKET_MS, t0 + 25 * HOUR_MS);
        assert_eq!(r.sum_ms(), 0);
    }
}
