//! Chronic-disease remote monitoring rules (慢病远程监测): hypertension and type 2 diabetes
//! patients' home readings, the family doctor's follow-ups, and the silences between them.
//! Pure like the rest of the engine: readings and follow-ups in time order per patient, an
//! injected clock for [`Monitor::tick`], the state snapshotted with serde.
//!
//! # Rules and their sources
//! 国家基本公共卫生服务规范（第三版, 2017）, 高血压患者健康管理服务规范 and 2型糖尿病患者健康管理服务规范:
//! - **Blood pressure not controlled** — a reading with systolic ≥ 140 or diastolic ≥ 90 mmHg
//!   ([`Action::FollowUp`]): the family doctor follows the patient up within 2 weeks (“对血压控制
//!   不满意…2周内随访”). One follow-up task stands at a time: further high readings join it.
//! - **Blood pressure urgent** — systolic ≥ 180 or diastolic ≥ 110 mmHg ([`Action::Urgent`],
//!   with a referral): “收缩压≥180mmHg和/或舒张压≥110mmHg…须在处理后紧急转诊”.
//! - **Two consecutive uncontrolled follow-ups** ([`Action::SuggestReferral`]): “连续两次出现
//!   血压控制不满意…建议其转诊到上级医院”. Likewise for glucose.
//! - **Fasting glucose not controlled** — ≥ 7.0 mmol/L ([`Action::FollowUp`]): “空腹血糖值
//!   ≥7.0mmol/L…控制不满意…2周内随访”.
//! - **Glucose urgent** — ≥ 16.7 or ≤ 3.9 mmol/L ([`Action::Urgent`], with a referral): “空腹
//!   血糖≥16.7mmol/L或血糖≤3.9mmol/L…紧急转诊”.
//! - **Follow-up overdue** — a follow-up task not done within its 2 weeks
//!   ([`Action::FollowUpOverdue`], once per task), raised by [`Monitor::tick`].
//! - **Missing readings** — no reading for `missing_days` (our choice: 7 days, the bureau's to
//!   change) while the patient is monitored ([`Action::Reminder`], once per silence), raised by
//!   [`Monitor::tick`].
//!
//! The thresholds are [`ClinicalRules`], versioned like the other rule sets; every action names
//! the rules version and the reading that set it off (the evidence the worklist shows).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A day in milliseconds.
pub const DAY_MS: i64 = 24 * 3_600_000;

/// The thresholds in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClinicalRules {
    /// The rule set's version, named on every alert.
    pub version: u32,
    /// Not controlled at or above (mmHg).
    pub bp_systolic: f64,
    /// Not controlled at or above (mmHg).
    pub bp_diastolic: f64,
    /// Urgent at or above (mmHg).
    pub bp_urgent_systolic: f64,
    /// Urgent at or above (mmHg).
    pub bp_urgent_diastolic: f64,
    /// Fasting glucose not controlled at or above (mmol/L).
    pub glucose_fasting: f64,
    /// Urgent at or above, or at or below (mmol/L).
    pub glucose_urgent_high: f64,
    /// Urgent at or below (mmol/L).
    pub glucose_urgent_low: f64,
    /// The follow-up is due within this many days.
    pub follow_up_days: u32,
    /// Consecutive uncontrolled follow-ups that suggest a referral.
    pub uncontrolled_for_referral: u32,
    /// Days without a reading before a reminder.
    pub missing_days: u32,
}

impl Default for ClinicalRules {
    fn default() -> Self {
        Self {
            version: 1,
            bp_systolic: 140.0,
            bp_diastolic: 90.0,
            bp_urgent_systolic: 180.0,
            bp_urgent_diastolic: 110.0,
            glucose_fasting: 7.0,
            glucose_urgent_high: 16.7,
            glucose_urgent_low: 3.9,
            follow_up_days: 14,
            uncontrolled_for_referral: 2,
            missing_days: 7,
        }
    }
}

impl ClinicalRules {
    /// Checks the thresholds' order and ranges; names the first wrong field.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        let ok = |v: f64, lo: f64, hi: f64| v.is_finite() && v >= lo && v <= hi;
        if !ok(self.bp_systolic, 100.0, 200.0) {
            return Err(("bp_systolic", "100 to 200 mmHg"));
        }
        if !ok(self.bp_diastolic, 60.0, 130.0) {
            return Err(("bp_diastolic", "60 to 130 mmHg"));
        }
        if !ok(self.bp_urgent_systolic, self.bp_systolic, 260.0) {
            return Err(("bp_urgent_systolic", "from bp_systolic to 260 mmHg"));
        }
        if !ok(self.bp_urgent_diastolic, self.bp_diastolic, 160.0) {
            return Err(("bp_urgent_diastolic", "from bp_diastolic to 160 mmHg"));
        }
        if !ok(self.glucose_fasting, 5.0, 15.0) {
            return Err(("glucose_fasting", "5 to 15 mmol/L"));
        }
        if !ok(self.glucose_urgent_high, self.glucose_fasting, 40.0) {
            return Err(("glucose_urgent_high", "from glucose_fasting to 40 mmol/L"));
        }
        if !ok(self.glucose_urgent_low, 1.0, self.glucose_fasting) {
            return Err(("glucose_urgent_low", "1 mmol/L to glucose_fasting"));
        }
        if !(1..=90).contains(&self.follow_up_days) {
            return Err(("follow_up_days", "1 to 90 days"));
        }
        if !(1..=10).contains(&self.uncontrolled_for_referral) {
            return Err(("uncontrolled_for_referral", "1 to 10"));
        }
        if !(1..=90).contains(&self.missing_days) {
            return Err(("missing_days", "1 to 90 days"));
        }
        Ok(())
    }
}

/// The condition a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// 高血压
    Hypertension,
    /// 2型糖尿病
    Diabetes,
}

/// A home-device reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Reading {
    /// mmHg (LOINC 85354-9 with 8480-6 and 8462-4).
    BloodPressure {
        /// Systolic, mmHg.
        systolic: f64,
        /// Diastolic, mmHg.
        diastolic: f64,
    },
    /// mmol/L, fasting (LOINC 1558-6 is mg/dL; the platform's 14771-0 mmol/L).
    FastingGlucose {
        /// mmol/L.
        mmol_l: f64,
    },
    /// mmol/L at any time: only the urgent limits apply.
    Glucose {
        /// mmol/L.
        mmol_l: f64,
    },
}

impl Reading {
    /// The condition the reading is about.
    pub fn condition(&self) -> Condition {
        match self {
            Reading::BloodPressure { .. } => Condition::Hypertension,
            _ => Condition::Diabetes,
        }
    }
}

/// What the family doctor's worklist receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Follow the patient up by `due_ms`.
    FollowUp,
    /// An urgent alert: treat and refer at once.
    Urgent,
    /// Consecutive uncontrolled follow-ups: suggest a referral.
    SuggestReferral,
    /// The follow-up's two weeks passed.
    FollowUpOverdue,
    /// No reading for the set days.
    Reminder,
}

/// One action for one patient, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// What to do.
    pub action: Action,
    /// About which condition.
    pub condition: Condition,
    /// When it was raised (the reading's time, or the clock's for a tick).
    pub at_ms: i64,
    /// The follow-up's deadline (follow-up and overdue actions).
    pub due_ms: Option<i64>,
    /// The reading that set it off, if one did.
    pub reading: Option<Reading>,
    /// The version of the rules that raised it.
    pub rules_version: u32,
}

/// One patient's one condition under watch: everything the rules remember. Stored per patient
/// and condition by the platform (a row each), so that a reading, a follow-up and the clock
/// each change one small state in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Watch {
    /// The newest reading's time (or the enrolment's, before the first reading).
    pub last_reading_ms: Option<i64>,
    /// The open follow-up task: raised at, due by, overdue already told.
    pub open: Option<(i64, i64, bool)>,
    /// Consecutive uncontrolled follow-ups.
    pub uncontrolled: u32,
    /// A reminder was sent for the current silence.
    pub reminded: bool,
}

impl Watch {
    /// A watch that starts at `now_ms`: the silence before the first reading counts from then.
    pub fn enrolled(now_ms: i64) -> Self {
        Self { last_reading_ms: Some(now_ms), ..Default::default() }
    }

    /// A reading of this watch's condition at `at_ms`: the alerts it raises.
    pub fn observe(&mut self, r: &ClinicalRules, at_ms: i64, reading: Reading) -> Vec<Alert> {
        let condition = reading.condition();
        if self.last_reading_ms.is_none_or(|t| at_ms > t) {
            self.last_reading_ms = Some(at_ms);
            self.reminded = false;
        }
        let (urgent, uncontrolled) = match reading {
            Reading::BloodPressure { systolic, diastolic } => (
                systolic >= r.bp_urgent_systolic || diastolic >= r.bp_urgent_diastolic,
                systolic >= r.bp_systolic || diastolic >= r.bp_diastolic,
            ),
            Reading::FastingGlucose { mmol_l } => {
                (mmol_l >= r.glucose_urgent_high || mmol_l <= r.glucose_urgent_low, mmol_l >= r.glucose_fasting)
            }
            Reading::Glucose { mmol_l } => (mmol_l >= r.glucose_urgent_high || mmol_l <= r.glucose_urgent_low, false),
        };
        let alert = |action, due_ms| Alert {
            action,
            condition,
            at_ms,
            due_ms,
            reading: Some(reading),
            rules_version: r.version,
        };
        let mut out = vec![];
        if urgent {
            out.push(alert(Action::Urgent, None));
        }
        if (urgent || uncontrolled) && self.open.is_none() {
            let due = at_ms + i64::from(r.follow_up_days) * DAY_MS;
            self.open = Some((at_ms, due, false));
            out.push(alert(Action::FollowUp, Some(due)));
        }
        out
    }

    /// The family doctor's follow-up at `at_ms`, the condition controlled or not: closes the
    /// open task; consecutive uncontrolled follow-ups suggest a referral.
    pub fn followed_up(&mut self, r: &ClinicalRules, condition: Condition, at_ms: i64, controlled: bool) -> Vec<Alert> {
        self.open = None;
        if controlled {
            self.uncontrolled = 0;
            return vec![];
        }
        self.uncontrolled += 1;
        if self.uncontrolled >= r.uncontrolled_for_referral {
            self.uncontrolled = 0;
            return vec![Alert {
                action: Action::SuggestReferral,
                condition,
                at_ms,
                due_ms: None,
                reading: None,
                rules_version: r.version,
            }];
        }
        vec![]
    }

    /// The clock at `now_ms`: an overdue follow-up and a silence, each told once.
    pub fn tick(&mut self, r: &ClinicalRules, condition: Condition, now_ms: i64) -> Vec<Alert> {
        let mut out = vec![];
        let alert = |action, due_ms| Alert {
            action,
            condition,
            at_ms: now_ms,
            due_ms,
            reading: None,
            rules_version: r.version,
        };
        if let Some((_, due, told)) = &mut self.open {
            if now_ms > *due && !*told {
                *told = true;
                out.push(alert(Action::FollowUpOverdue, Some(*due)));
            }
        }
        let silent = self.last_reading_ms.is_some_and(|t| now_ms - t >= i64::from(r.missing_days) * DAY_MS);
        if silent && !self.reminded {
            self.reminded = true;
            out.push(alert(Action::Reminder, None));
        }
        out
    }

    /// The earliest time at which [`Watch::tick`] may raise something (`None`: nothing pending
    /// until the next reading or follow-up), so that a store asks only the watches due.
    pub fn next_tick_ms(&self, r: &ClinicalRules) -> Option<i64> {
        let overdue = self.open.filter(|o| !o.2).map(|o| o.1 + 1);
        let silence = self.last_reading_ms.filter(|_| !self.reminded).map(|t| t + i64::from(r.missing_days) * DAY_MS);
        match (overdue, silence) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The monitored patients' state: per patient and condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Monitor {
    rules: ClinicalRules,
    /// Per patient, per condition.
    watches: BTreeMap<String, BTreeMap<Condition, Watch>>,
}

impl Monitor {
    /// An empty monitor with these rules.
    pub fn new(rules: ClinicalRules) -> Self {
        Self { rules, watches: BTreeMap::new() }
    }

    /// The rules in force.
    pub fn rules(&self) -> &ClinicalRules {
        &self.rules
    }

    /// Replaces the thresholds (a new version published); the patients' state stays.
    pub fn set_rules(&mut self, rules: ClinicalRules) {
        self.rules = rules;
    }

    /// Starts watching a patient's condition (a contract's managed condition), from `now_ms`:
    /// the silence before the first reading counts from then.
    pub fn enrol(&mut self, patient: &str, condition: Condition, now_ms: i64) {
        self.watches
            .entry(patient.to_string())
            .or_default()
            .entry(condition)
            .or_insert_with(|| Watch::enrolled(now_ms));
    }

    /// Stops watching (a contract ended).
    pub fn leave(&mut self, patient: &str, condition: Condition) {
        if let Some(w) = self.watches.get_mut(patient) {
            w.remove(&condition);
            if w.is_empty() {
                self.watches.remove(patient);
            }
        }
    }

    /// How many patient conditions are watched.
    pub fn watched(&self) -> usize {
        self.watches.values().map(BTreeMap::len).sum()
    }

    /// A reading at `at_ms`: the alerts it raises. A patient not enrolled is enrolled by it.
    pub fn observe(&mut self, patient: &str, at_ms: i64, reading: Reading) -> Vec<Alert> {
        let w = self.watches.entry(patient.to_string()).or_default().entry(reading.condition()).or_default();
        w.observe(&self.rules, at_ms, reading)
    }

    /// The family doctor's follow-up at `at_ms`, with the condition controlled or not: closes
    /// the open task; consecutive uncontrolled follow-ups suggest a referral.
    pub fn followed_up(&mut self, patient: &str, condition: Condition, at_ms: i64, controlled: bool) -> Vec<Alert> {
        let w = self.watches.entry(patient.to_string()).or_default().entry(condition).or_default();
        w.followed_up(&self.rules, condition, at_ms, controlled)
    }

    /// The clock at `now_ms`: overdue follow-ups and silences, each told once.
    pub fn tick(&mut self, now_ms: i64) -> Vec<(String, Alert)> {
        let r = &self.rules;
        let mut out = vec![];
        for (patient, ws) in self.watches.iter_mut() {
            for (condition, w) in ws.iter_mut() {
                out.extend(w.tick(r, *condition, now_ms).into_iter().map(|a| (patient.clone(), a)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_780_000_000_000;
    fn bp(s: f64, d: f64) -> Reading {
        Reading::BloodPressure { systolic: s, diastolic: d }
    }
    fn actions(a: &[Alert]) -> Vec<Action> {
        a.iter().map(|x| x.action).collect()
    }

    #[test]
    fn hypertension_scenario_over_five_weeks() {
        let mut m = Monitor::new(ClinicalRules::default());
        m.enrol("p", Condition::Hypertension, T0);
        assert!(m.observe("p", T0 + 3_600_000, bp(132.0, 84.0)).is_empty(), "controlled");
        // Day 1: 146/88 — not controlled: a follow-up within 2 weeks, once.
        let a = m.observe("p", T0 + DAY_MS, bp(146.0, 88.0));
        assert_eq!(actions(&a), [Action::FollowUp]);
        assert_eq!(a[0].due_ms, Some(T0 + 15 * DAY_MS));
        assert_eq!(a[0].reading, Some(bp(146.0, 88.0)), "the evidence");
        assert!(m.observe("p", T0 + 2 * DAY_MS, bp(150.0, 95.0)).is_empty(), "joins the open task");
        let t = m.tick(T0 + 14 * DAY_MS);
        assert_eq!(
            t.iter().map(|x| x.1.action).collect::<Vec<_>>(),
            [Action::Reminder],
            "silent 12 days, not overdue yet"
        );
        // Day 16: overdue, told once.
        let t = m.tick(T0 + 16 * DAY_MS);
        assert_eq!(t.iter().map(|x| x.1.action).collect::<Vec<_>>(), [Action::FollowUpOverdue]);
        assert!(m.tick(T0 + 17 * DAY_MS).iter().all(|x| x.1.action != Action::FollowUpOverdue));
        // Follow-ups: uncontrolled twice in a row → referral suggested.
        assert!(m.followed_up("p", Condition::Hypertension, T0 + 17 * DAY_MS, false).is_empty());
        m.observe("p", T0 + 18 * DAY_MS, bp(148.0, 92.0));
        let a = m.followed_up("p", Condition::Hypertension, T0 + 25 * DAY_MS, false);
        assert_eq!(actions(&a), [Action::SuggestReferral]);
        // A controlled follow-up resets the count.
        m.observe("p", T0 + 26 * DAY_MS, bp(145.0, 85.0));
        m.followed_up("p", Condition::Hypertension, T0 + 27 * DAY_MS, false);
        m.followed_up("p", Condition::Hypertension, T0 + 28 * DAY_MS, true);
        assert!(m.followed_up("p", Condition::Hypertension, T0 + 29 * DAY_MS, false).is_empty());
        // 182/112: urgent, with a follow-up.
        let a = m.observe("p", T0 + 30 * DAY_MS, bp(182.0, 112.0));
        assert_eq!(actions(&a), [Action::Urgent, Action::FollowUp]);
        // Diastolic alone decides too.
        let mut m2 = Monitor::new(ClinicalRules::default());
        assert_eq!(actions(&m2.observe("q", T0, bp(130.0, 110.0))), [Action::Urgent, Action::FollowUp]);
        assert_eq!(actions(&m2.observe("r", T0, bp(139.0, 90.0))), [Action::FollowUp]);
    }

    #[test]
    fn diabetes_limits() {
        let mut m = Monitor::new(ClinicalRules::default());
        assert!(m.observe("p", T0, Reading::FastingGlucose { mmol_l: 6.9 }).is_empty());
        assert_eq!(actions(&m.observe("p", T0 + 1, Reading::FastingGlucose { mmol_l: 7.0 })), [Action::FollowUp]);
        let mut m = Monitor::new(ClinicalRules::default());
        assert_eq!(actions(&m.observe("p", T0, Reading::Glucose { mmol_l: 3.9 })), [Action::Urgent, Action::FollowUp]);
        assert_eq!(actions(&m.observe("q", T0, Reading::Glucose { mmol_l: 16.7 })), [Action::Urgent, Action::FollowUp]);
        assert!(m.observe("r", T0, Reading::Glucose { mmol_l: 9.0 }).is_empty(), "a random glucose of 9 is no alert");
        // The conditions are watched apart.
        m.observe("p", T0, bp(150.0, 95.0));
        assert_eq!(m.watched(), 4, "p's two conditions, q and r");
    }

    #[test]
    fn missing_readings_remind_once_per_silence() {
        let mut m = Monitor::new(ClinicalRules::default());
        m.enrol("p", Condition::Diabetes, T0);
        assert!(m.tick(T0 + 6 * DAY_MS).is_empty());
        let t = m.tick(T0 + 7 * DAY_MS);
        assert_eq!((t.len(), t[0].1.action), (1, Action::Reminder));
        assert!(m.tick(T0 + 8 * DAY_MS).is_empty(), "once");
        m.observe("p", T0 + 9 * DAY_MS, Reading::FastingGlucose { mmol_l: 5.5 });
        assert!(m.tick(T0 + 15 * DAY_MS).is_empty());
        assert_eq!(m.tick(T0 + 16 * DAY_MS).len(), 1, "a new silence");
        // A late reading (older than the newest) does not end a silence.
        m.observe("p", T0 + 1, Reading::FastingGlucose { mmol_l: 5.5 });
        assert!(m.tick(T0 + 17 * DAY_MS).is_empty());
        m.leave("p", Condition::Diabetes);
        assert_eq!(m.watched(), 0);
    }

    #[test]
    fn next_tick_names_when_the_clock_matters() {
        let r = ClinicalRules::default();
        let mut w = Watch::enrolled(T0);
        assert_eq!(w.next_tick_ms(&r), Some(T0 + 7 * DAY_MS), "the silence");
        w.observe(&r, T0 + DAY_MS, bp(150.0, 95.0));
        assert_eq!(w.next_tick_ms(&r), Some(T0 + 8 * DAY_MS), "the silence still comes before the deadline");
        assert!(w.tick(&r, Condition::Hypertension, T0 + 8 * DAY_MS - 1).is_empty());
        assert_eq!(actions(&w.tick(&r, Condition::Hypertension, T0 + 8 * DAY_MS)), [Action::Reminder]);
        assert_eq!(w.next_tick_ms(&r), Some(T0 + 15 * DAY_MS + 1), "then the deadline");
        assert!(w.tick(&r, Condition::Hypertension, T0 + 15 * DAY_MS).is_empty());
        assert_eq!(actions(&w.tick(&r, Condition::Hypertension, T0 + 15 * DAY_MS + 1)), [Action::FollowUpOverdue]);
        assert_eq!(w.next_tick_ms(&r), None, "nothing until a reading or a follow-up");
        w.followed_up(&r, Condition::Hypertension, T0 + 16 * DAY_MS, true);
        assert_eq!(w.next_tick_ms(&r), None);
        w.observe(&r, T0 + 17 * DAY_MS, bp(120.0, 80.0));
        assert_eq!(w.next_tick_ms(&r), Some(T0 + 24 * DAY_MS));
    }

    #[test]
    fn state_survives_a_snapshot_and_rules_are_checked() {
        let mut m = Monitor::new(ClinicalRules::default());
        m.observe("p", T0, bp(150.0, 95.0));
        let saved = serde_json::to_string(&m).unwrap_or_default();
        let mut back: Monitor = serde_json::from_str(&saved).unwrap_or_default();
        assert_eq!(back, m);
        assert!(back.observe("p", T0 + 1, bp(150.0, 95.0)).is_empty(), "the open task came back");
        assert_eq!(ClinicalRules::default().check(), Ok(()));
        let bad = ClinicalRules { bp_urgent_systolic: 130.0, ..ClinicalRules::default() };
        assert_eq!(bad.check().map_err(|e| e.0), Err("bp_urgent_systolic"));
        let bad = ClinicalRules { glucose_urgent_low: 8.0, ..ClinicalRules::default() };
        assert_eq!(bad.check().map_err(|e| e.0), Err("glucose_urgent_low"));
    }
}
