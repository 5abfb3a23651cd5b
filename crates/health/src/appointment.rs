//! Appointments (预约诊疗, 智能医疗 三(五) 区域医联体: 预约挂号、检查预约): an institution's
//! schedules (a department's or a practitioner's, FHIR Schedule) cut into slots (FHIR Slot),
//! booked by residents for themselves or by a clinician for a patient in their care (FHIR
//! Appointment). Pure: the rules of booking and of each step, with the clock passed in.
//!
//! The rules, the ones Chinese hospitals' booking services commonly publish (e.g. 北京市预约挂号
//! 统一平台 and 天津市预约挂号平台 notices: booking opens days ahead, cancel before the visit, three
//! missed appointments suspend booking):
//! - booking opens [`WINDOW_DAYS`] ahead and closes [`MIN_LEAD_MS`] before the slot;
//! - a slot takes at most its capacity; a patient never holds two appointments whose slots
//!   overlap, nor more than [`DAILY_LIMIT`] on one Beijing day;
//! - the patient cancels or moves an appointment up to [`CANCEL_BEFORE_MS`] before it; the
//!   institution may cancel any time before the start;
//! - after the slot's end the institution records the patient arrived, seen or absent
//!   (no-show); [`NO_SHOW_LIMIT`] no-shows in [`NO_SHOW_WINDOW_DAYS`] days suspend the patient's
//!   own booking until the oldest leaves the window.

use serde::{Deserialize, Serialize};

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// Booking opens this many days ahead.
pub const WINDOW_DAYS: i64 = 14;
/// Booking closes this long before the slot starts.
pub const MIN_LEAD_MS: i64 = 30 * MINUTE_MS;
/// A patient cancels or reschedules up to this long before the start.
pub const CANCEL_BEFORE_MS: i64 = 2 * HOUR_MS;
/// Appointments a patient holds on one Beijing day.
pub const DAILY_LIMIT: i64 = 2;
/// No-shows in the window that suspend booking.
pub const NO_SHOW_LIMIT: i64 = 3;
pub const NO_SHOW_WINDOW_DAYS: i64 = 90;
/// Slots one request may create.
pub const MAX_SLOTS: usize = 500;

/// An appointment's state (FHIR Appointment.status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AppointmentState)]
pub enum State {
    /// 已预约
    Booked,
    /// 已取消
    Cancelled,
    /// 已到诊
    Arrived,
    /// 已就诊
    Fulfilled,
    /// 爽约
    Noshow,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Booked => "booked",
            State::Cancelled => "cancelled",
            State::Arrived => "arrived",
            State::Fulfilled => "fulfilled",
            State::Noshow => "noshow",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [State::Booked, State::Cancelled, State::Arrived, State::Fulfilled, State::Noshow]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// What may be done to an appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = AppointmentAction)]
pub enum Action {
    Cancel,
    /// Move to another slot of the same institution.
    Reschedule,
    Arrive,
    Fulfil,
    Noshow,
}

/// Who acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The resident, or the clinician who booked for them.
    Patient,
    /// The institution that holds the schedule.
    Institution,
}

/// Why a booking or a step is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "booking opens {WINDOW_DAYS} days ahead and closes 30 minutes before the slot (预约时间须在 14 天内且距就诊不少于 30 分钟)"
    )]
    OutsideWindow,
    #[error("the slot is full (号源已满)")]
    Full,
    #[error("the patient has an appointment at an overlapping time (该时段已有预约)")]
    Overlap,
    #[error("at most {DAILY_LIMIT} appointments a day (每日最多预约 2 个)")]
    DailyLimit,
    #[error(
        "booking is suspended after {NO_SHOW_LIMIT} missed appointments in {NO_SHOW_WINDOW_DAYS} days (90 天内爽约 3 次，暂停预约)"
    )]
    Suspended,
    #[error("too late: cancel or move up to 2 hours before the appointment (就诊前 2 小时内不可取消或改约)")]
    TooLate,
    #[error("not in this state: the appointment is {0} (当前状态不允许此操作)")]
    State(&'static str),
    #[error("only the institution records this (由接诊机构办理)")]
    NotYours,
    #[error("not yet: the slot has not {0} (时间未到)")]
    NotYet(&'static str),
}

/// Whether a slot starting at `start_ms` may be booked at `now`.
pub fn bookable(now: i64, start_ms: i64) -> Result<(), Refusal> {
    if start_ms < now + MIN_LEAD_MS || start_ms > now + WINDOW_DAYS * DAY_MS {
        return Err(Refusal::OutsideWindow);
    }
    Ok(())
}

/// The state after `action` by `side` at `now`, for a slot `[start, end)`.
pub fn step(state: State, action: Action, side: Side, now: i64, start: i64, end: i64) -> Result<State, Refusal> {
    use Action::*;
    match action {
        Cancel | Reschedule => {
            if state != State::Booked {
                return Err(Refusal::State(state.as_str()));
            }
            let limit = if side == Side::Patient { start - CANCEL_BEFORE_MS } else { start };
            if now > limit {
                return Err(Refusal::TooLate);
            }
            Ok(if action == Cancel { State::Cancelled } else { State::Booked })
        }
        Arrive | Fulfil | Noshow => {
            if side != Side::Institution {
                return Err(Refusal::NotYours);
            }
            match (action, state) {
                (Arrive, State::Booked) if now >= start - CANCEL_BEFORE_MS => Ok(State::Arrived),
                (Arrive, State::Booked) => Err(Refusal::NotYet("begun")),
                (Fulfil, State::Booked | State::Arrived) if now >= start - CANCEL_BEFORE_MS => Ok(State::Fulfilled),
                (Fulfil, State::Booked | State::Arrived) => Err(Refusal::NotYet("begun")),
                (Noshow, State::Booked) if now >= end => Ok(State::Noshow),
                (Noshow, State::Booked) => Err(Refusal::NotYet("ended")),
                (_, s) => Err(Refusal::State(s.as_str())),
            }
        }
    }
}

/// A day's slots to cut: from `start` to `end` (minutes after local midnight), `minutes` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub start_min: i64,
    pub end_min: i64,
    pub minutes: i64,
}

/// Reads `HH:MM` as minutes after midnight.
pub fn parse_clock(s: &str) -> Option<i64> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
}

/// The slots of a session on the Beijing days starting at `first_midnight_ms` (a Beijing
/// midnight), `days` of them: `[start, end)` each, in order, never past the session's end.
pub fn cut(first_midnight_ms: i64, days: i64, s: Session) -> Vec<(i64, i64)> {
    let mut out = vec![];
    if s.minutes <= 0 || s.end_min <= s.start_min {
        return out;
    }
    for d in 0..days {
        let midnight = first_midnight_ms + d * DAY_MS;
        let mut t = s.start_min;
        while t + s.minutes <= s.end_min {
            out.push((midnight + t * MINUTE_MS, midnight + (t + s.minutes) * MINUTE_MS));
            t += s.minutes;
        }
    }
    out
}

/// The Beijing day (days since the epoch) of an instant, for the daily limit.
pub fn beijing_day(ms: i64) -> i64 {
    (ms + 8 * HOUR_MS).div_euclid(DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_780_000_000_000;

    #[test]
    fn the_booking_window() {
        assert_eq!(bookable(NOW, NOW + MIN_LEAD_MS), Ok(()));
        assert_eq!(bookable(NOW, NOW + MIN_LEAD_MS - 1), Err(Refusal::OutsideWindow));
        assert_eq!(bookable(NOW, NOW + 14 * DAY_MS), Ok(()));
        assert_eq!(bookable(NOW, NOW + 14 * DAY_MS + 1), Err(Refusal::OutsideWindow));
        assert_eq!(bookable(NOW, NOW - HOUR_MS), Err(Refusal::OutsideWindow));
    }

    #[test]
    fn steps_by_side_state_and_time() {
        let (start, end) = (NOW + 3 * HOUR_MS, NOW + 3 * HOUR_MS + 15 * MINUTE_MS);
        use Action::*;
        use Side::*;
        assert_eq!(step(State::Booked, Cancel, Patient, NOW, start, end), Ok(State::Cancelled));
        assert_eq!(
            step(State::Booked, Cancel, Patient, start - CANCEL_BEFORE_MS + 1, start, end),
            Err(Refusal::TooLate)
        );
        assert_eq!(step(State::Booked, Cancel, Institution, start - 1, start, end), Ok(State::Cancelled));
        assert_eq!(step(State::Booked, Cancel, Institution, start + 1, start, end), Err(Refusal::TooLate));
        assert_eq!(step(State::Cancelled, Cancel, Patient, NOW, start, end), Err(Refusal::State("cancelled")));
        assert_eq!(step(State::Booked, Reschedule, Patient, NOW, start, end), Ok(State::Booked));
        assert_eq!(step(State::Booked, Arrive, Patient, start, start, end), Err(Refusal::NotYours));
        assert_eq!(step(State::Booked, Arrive, Institution, NOW, start, end), Err(Refusal::NotYet("begun")));
        assert_eq!(step(State::Booked, Arrive, Institution, start - HOUR_MS, start, end), Ok(State::Arrived));
        assert_eq!(step(State::Arrived, Fulfil, Institution, start, start, end), Ok(State::Fulfilled));
        assert_eq!(step(State::Booked, Noshow, Institution, end - 1, start, end), Err(Refusal::NotYet("ended")));
        assert_eq!(step(State::Booked, Noshow, Institution, end, start, end), Ok(State::Noshow));
        assert_eq!(step(State::Arrived, Noshow, Institution, end, start, end), Err(Refusal::State("arrived")));
        assert_eq!(step(State::Fulfilled, Cancel, Institution, NOW, start, end), Err(Refusal::State("fulfilled")));
    }

    #[test]
    fn clocks_and_sessions() {
        assert_eq!(parse_clock("08:30"), Some(510));
        assert_eq!(parse_clock("24:00"), None);
        assert_eq!(parse_clock("8:30"), None);
        assert_eq!(parse_clock("08:60"), None);
        let s = cut(0, 2, Session { start_min: 480, end_min: 540, minutes: 25 });
        assert_eq!(s.len(), 4, "two a day: 08:00, 08:25 (08:50 would end past 09:00)");
        assert_eq!(s[2].0, DAY_MS + 480 * MINUTE_MS);
        assert!(cut(0, 1, Session { start_min: 600, end_min: 540, minutes: 15 }).is_empty());
        assert_eq!(beijing_day(16 * HOUR_MS - 1), 0);
        assert_eq!(beijing_day(16 * HOUR_MS), 1, "midnight in Beijing is 16:00 UTC");
    }

    proptest! {
        #[test]
        fn cut_slots_never_overlap_and_stay_in_the_session(
            start in 0i64..1440, len in 1i64..600, minutes in 1i64..240, days in 1i64..5,
        ) {
            let s = Session { start_min: start, end_min: (start + len).min(1440), minutes };
            let slots = cut(0, days, s);
            for w in slots.windows(2) {
                prop_assert!(w[0].1 <= w[1].0);
            }
            for (a, b) in &slots {
                prop_assert_eq!(b - a, minutes * MINUTE_MS);
                let day = a.div_euclid(DAY_MS);
                prop_assert!(a - day * DAY_MS >= s.start_min * MINUTE_MS);
                prop_assert!(b - day * DAY_MS <= s.end_min * MINUTE_MS);
            }
        }
    }
}
