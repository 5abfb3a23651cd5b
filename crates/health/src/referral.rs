//! Two-way referral (双向转诊, 智能医疗 三(六)): the state machine, pure.
//!
//! An up-referral (上转) sends a patient from primary care (a community health centre, a town's
//! health centre) to a hospital; a down-referral (下转) sends a patient whose acute phase is over
//! back to primary care for rehabilitation and follow-up. In FHIR terms a referral is a
//! ServiceRequest (the order: reason, summary, target) with a Task carrying its state; the
//! states are the Task's, with `arrived` and `returned` as its business status:
//!
//! ```text
//! requested ──accept──► accepted ──arrive──► arrived ──complete──► completed ──return──► returned
//!     │                    │                                          (up-referrals only:
//!     ├──reject──► rejected (with the reason)                          back to primary care)
//!     └──cancel──► cancelled ◄──cancel──┘   (by the referring side, before arrival)
//! ```
//!
//! The receiving institution accepts, rejects, records the arrival, completes and (for an
//! up-referral) returns the patient with a summary; the referring institution may cancel until
//! the patient arrives. Deadlines, our choice where no rule names one: an answer within
//! [`ANSWER_WITHIN_MS`] (2 h for an urgent referral), the arrival by the reserved slot's day or
//! within [`ARRIVE_WITHIN_MS`] of acceptance, and the follow-up at the primary-care institution
//! within two weeks ([`FOLLOW_UP_WITHIN_MS`]) of the hand-back (the return of an up-referral,
//! the acceptance of a down-referral): 国家卫生健康委《关于推进分级诊疗制度建设的指导意见》 and the
//! basic public health service's rule that a referred patient is followed up within 2 weeks.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// A routine referral is answered within two days, an urgent one within two hours.
pub const ANSWER_WITHIN_MS: i64 = 48 * HOUR_MS;
pub const URGENT_ANSWER_WITHIN_MS: i64 = 2 * HOUR_MS;
/// Without a reserved slot, the patient arrives within 14 days of acceptance.
pub const ARRIVE_WITHIN_MS: i64 = 14 * DAY_MS;
/// The primary-care institution sees the patient within 2 weeks of the hand-back.
pub const FOLLOW_UP_WITHIN_MS: i64 = 14 * DAY_MS;

/// 上转 / 下转.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReferralDirection)]
pub enum Direction {
    /// 上转: primary care to a hospital.
    Up,
    /// 下转: a hospital back to primary care.
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReferralPriority)]
pub enum Priority {
    Routine,
    Urgent,
}

/// The referral's state (the Task's status, `arrived` and `returned` its business status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReferralState)]
pub enum State {
    /// 待接收
    Requested,
    /// 已接收
    Accepted,
    /// 已拒绝
    Rejected,
    /// 已到诊
    Arrived,
    /// 已完成
    Completed,
    /// 已回转: an up-referral's patient sent back to primary care.
    Returned,
    /// 已撤销
    Cancelled,
}

impl State {
    pub const ALL: [State; 7] = [
        State::Requested,
        State::Accepted,
        State::Rejected,
        State::Arrived,
        State::Completed,
        State::Returned,
        State::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Requested => "requested",
            State::Accepted => "accepted",
            State::Rejected => "rejected",
            State::Arrived => "arrived",
            State::Completed => "completed",
            State::Returned => "returned",
            State::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The FHIR Task status and business status of this state.
    pub fn task_status(self) -> (&'static str, Option<&'static str>) {
        match self {
            State::Requested => ("requested", None),
            State::Accepted => ("accepted", None),
            State::Rejected => ("rejected", None),
            State::Arrived => ("in-progress", Some("arrived")),
            State::Completed => ("completed", None),
            State::Returned => ("completed", Some("returned")),
            State::Cancelled => ("cancelled", None),
        }
    }

    /// Whether nothing more happens to a referral of this direction in this state.
    pub fn is_final(self, direction: Direction) -> bool {
        matches!(self, State::Rejected | State::Cancelled | State::Returned)
            || (self == State::Completed && direction == Direction::Down)
    }
}

/// A step one side takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReferralAction)]
pub enum Action {
    Accept,
    Reject,
    Arrive,
    Complete,
    Return,
    Cancel,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Reject => "reject",
            Action::Arrive => "arrive",
            Action::Complete => "complete",
            Action::Return => "return",
            Action::Cancel => "cancel",
        }
    }

    /// Whether the step needs a note (a rejection's or cancellation's reason, a return's summary).
    pub fn needs_note(self) -> bool {
        matches!(self, Action::Reject | Action::Cancel | Action::Return)
    }
}

/// Which institution takes a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The referring institution.
    From,
    /// The receiving institution.
    To,
}

/// Why a step is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not this side's step.
    NotYourStep,
    /// Not from this state.
    WrongState,
    /// Only an up-referral is returned.
    NotReturnable,
}

/// The state `action` by `side` leads to from `state`.
pub fn step(direction: Direction, state: State, side: Side, action: Action) -> Result<State, Refusal> {
    let whose = match action {
        Action::Cancel => Side::From,
        _ => Side::To,
    };
    if side != whose {
        return Err(Refusal::NotYourStep);
    }
    if action == Action::Return && direction != Direction::Up {
        return Err(Refusal::NotReturnable);
    }
    match (state, action) {
        (State::Requested, Action::Accept) => Ok(State::Accepted),
        (State::Requested, Action::Reject) => Ok(State::Rejected),
        (State::Accepted, Action::Arrive) => Ok(State::Arrived),
        (State::Arrived, Action::Complete) => Ok(State::Completed),
        (State::Completed, Action::Return) => Ok(State::Returned),
        (State::Requested | State::Accepted, Action::Cancel) => Ok(State::Cancelled),
        _ => Err(Refusal::WrongState),
    }
}

/// The times a referral's deadlines are reckoned from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Times {
    pub requested_ms: i64,
    pub accepted_ms: Option<i64>,
    pub arrived_ms: Option<i64>,
    pub returned_ms: Option<i64>,
    /// The reserved slot's start, if one was reserved.
    pub slot_ms: Option<i64>,
}

/// What is due next and by when, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReferralDue)]
pub enum Due {
    /// The receiving side's answer.
    Answer,
    /// The patient's arrival.
    Arrival,
}

/// The deadline of the referral's current state: `(what, by)`.
pub fn deadline(state: State, priority: Priority, t: &Times) -> Option<(Due, i64)> {
    match state {
        State::Requested => {
            let within = if priority == Priority::Urgent { URGENT_ANSWER_WITHIN_MS } else { ANSWER_WITHIN_MS };
            Some((Due::Answer, t.requested_ms + within))
        }
        State::Accepted => {
            // The slot's day ends the wait (arrival later that day is on time).
            let by = match t.slot_ms {
                Some(s) => s + DAY_MS,
                None => t.accepted_ms.unwrap_or(t.requested_ms) + ARRIVE_WITHIN_MS,
            };
            Some((Due::Arrival, by))
        }
        _ => None,
    }
}

/// When the patient is back in primary care, so that the follow-up there is due: the return of
/// an up-referral, the acceptance of a down-referral.
pub fn handed_back(direction: Direction, state: State, t: &Times) -> Option<i64> {
    match direction {
        Direction::Up if state == State::Returned => t.returned_ms,
        Direction::Down if matches!(state, State::Accepted | State::Arrived | State::Completed) => t.accepted_ms,
        _ => None,
    }
}

/// The follow-up's standing at `now`, given the hand-back and the first visit at the
/// primary-care institution after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReferralFollowUp)]
pub enum FollowUp {
    /// Seen within two weeks.
    Done,
    /// Seen, but after two weeks.
    Late,
    /// Not yet seen, and the two weeks are not over.
    Due,
    /// Not seen, and the two weeks are over.
    Overdue,
}

pub fn follow_up(handed_back_ms: i64, first_visit_ms: Option<i64>, now_ms: i64) -> FollowUp {
    let by = handed_back_ms + FOLLOW_UP_WITHIN_MS;
    match first_visit_ms {
        Some(v) if v <= by => FollowUp::Done,
        Some(_) => FollowUp::Late,
        None if now_ms <= by => FollowUp::Due,
        None => FollowUp::Overdue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_of_the_state_machine() {
        use Action::*;
        use State::*;
        let up = |s, side, a| step(Direction::Up, s, side, a);
        assert_eq!(up(Requested, Side::To, Accept), Ok(Accepted));
        assert_eq!(up(Requested, Side::To, Reject), Ok(Rejected));
        assert_eq!(up(Accepted, Side::To, Arrive), Ok(Arrived));
        assert_eq!(up(Arrived, Side::To, Complete), Ok(Completed));
        assert_eq!(up(Completed, Side::To, Return), Ok(Returned));
        assert_eq!(up(Requested, Side::From, Cancel), Ok(Cancelled));
        assert_eq!(up(Accepted, Side::From, Cancel), Ok(Cancelled));
        // The wrong side, the wrong state, a down-referral returned.
        assert_eq!(up(Requested, Side::From, Accept), Err(Refusal::NotYourStep));
        assert_eq!(up(Requested, Side::To, Cancel), Err(Refusal::NotYourStep));
        assert_eq!(up(Arrived, Side::From, Cancel), Err(Refusal::WrongState));
        assert_eq!(up(Requested, Side::To, Arrive), Err(Refusal::WrongState));
        assert_eq!(up(Rejected, Side::To, Accept), Err(Refusal::WrongState));
        assert_eq!(step(Direction::Down, Completed, Side::To, Return), Err(Refusal::NotReturnable));
        // Every state is final exactly when no step leaves it.
        for d in [Direction::Up, Direction::Down] {
            for s in State::ALL {
                let any = [Accept, Reject, Arrive, Complete, Return, Cancel]
                    .into_iter()
                    .any(|a| [Side::From, Side::To].into_iter().any(|side| step(d, s, side, a).is_ok()));
                assert_eq!(any, !s.is_final(d), "{d:?} {s:?}");
                assert_eq!(State::parse(s.as_str()), Some(s));
            }
        }
    }

    #[test]
    fn deadlines_and_follow_up() {
        let t = Times { requested_ms: 1_000, accepted_ms: Some(5_000), ..Default::default() };
        assert_eq!(deadline(State::Requested, Priority::Routine, &t), Some((Due::Answer, 1_000 + 48 * HOUR_MS)));
        assert_eq!(deadline(State::Requested, Priority::Urgent, &t), Some((Due::Answer, 1_000 + 2 * HOUR_MS)));
        assert_eq!(deadline(State::Accepted, Priority::Routine, &t), Some((Due::Arrival, 5_000 + 14 * DAY_MS)));
        let slot = Times { slot_ms: Some(10 * DAY_MS), ..t };
        assert_eq!(deadline(State::Accepted, Priority::Routine, &slot), Some((Due::Arrival, 11 * DAY_MS)));
        assert_eq!(deadline(State::Arrived, Priority::Routine, &t), None);

        let back = Times { returned_ms: Some(100), ..t };
        assert_eq!(handed_back(Direction::Up, State::Returned, &back), Some(100));
        assert_eq!(handed_back(Direction::Up, State::Completed, &back), None);
        assert_eq!(handed_back(Direction::Down, State::Accepted, &back), Some(5_000));
        assert_eq!(handed_back(Direction::Down, State::Requested, &back), None);

        assert_eq!(follow_up(0, Some(FOLLOW_UP_WITHIN_MS), FOLLOW_UP_WITHIN_MS * 3), FollowUp::Done);
        assert_eq!(follow_up(0, Some(FOLLOW_UP_WITHIN_MS + 1), FOLLOW_UP_WITHIN_MS * 3), FollowUp::Late);
        assert_eq!(follow_up(0, None, FOLLOW_UP_WITHIN_MS), FollowUp::Due);
        assert_eq!(follow_up(0, None, FOLLOW_UP_WITHIN_MS + 1), FollowUp::Overdue);
    }
}
