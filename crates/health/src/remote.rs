//! Remote consultation and remote reading (远程会诊, 远程影像诊断, 远程心电诊断; 智能医疗 三(五)
//! 区域医联体): a primary-care institution asks a hospital for an opinion on a patient or for
//! the reading of an imaging study or an ECG; the hospital accepts or declines, and answers
//! with a report that comes back as a FHIR DiagnosticReport in the patient's record. Pure: the
//! states, who may take which step, the deadlines.
//!
//! 《远程医疗服务管理规范（试行）》(国卫医发〔2018〕25号) leaves the response times to the
//! institutions' agreement; the defaults here are the platform's (the bureau's to change): an
//! answer within 24 hours (urgent: 30 minutes), a report within 48 hours of acceptance for a
//! consultation or imaging (urgent: 2 hours) and 24 hours for an ECG (urgent: 30 minutes).

use serde::{Deserialize, Serialize};

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;

/// What is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RemoteKind)]
pub enum Kind {
    /// 远程会诊: an opinion on the patient.
    Consultation,
    /// 远程影像诊断: the reading of an imaging study.
    Imaging,
    /// 远程心电诊断: the reading of an ECG.
    Ecg,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Consultation => "consultation",
            Kind::Imaging => "imaging",
            Kind::Ecg => "ecg",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Kind::Consultation, Kind::Imaging, Kind::Ecg].into_iter().find(|k| k.as_str() == s)
    }
    /// The report's LOINC code and display, and its HL7 v2-0074 diagnostic service section.
    pub fn report_code(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::Consultation => ("11488-4", "Consult note", "OTH"),
            Kind::Imaging => ("18748-4", "Diagnostic imaging study", "RAD"),
            Kind::Ecg => ("11524-6", "EKG study", "EC"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RemoteState)]
pub enum State {
    /// 待接收
    Requested,
    /// 已接收
    Accepted,
    /// 已拒绝
    Rejected,
    /// 已出报告
    Reported,
    /// 已撤回
    Cancelled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Requested => "requested",
            State::Accepted => "accepted",
            State::Rejected => "rejected",
            State::Reported => "reported",
            State::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [State::Requested, State::Accepted, State::Rejected, State::Reported, State::Cancelled]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
    /// Still open: the reader's side reads the record.
    pub fn open(self) -> bool {
        matches!(self, State::Requested | State::Accepted)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RemoteAction)]
pub enum Action {
    Accept,
    /// With the reason.
    Reject,
    /// With the report (accepting it on the way when it was not yet).
    Report,
    /// The requester withdraws before the report.
    Cancel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Requester,
    Reader,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the {0} side does not take this step (对方办理)")]
    Side(&'static str),
    #[error("not in this state: the request is {0} (当前状态不允许此操作)")]
    State(&'static str),
}

/// The state after `action` by `side`.
pub fn step(state: State, action: Action, side: Side) -> Result<State, Refusal> {
    let want = match action {
        Action::Cancel => Side::Requester,
        _ => Side::Reader,
    };
    if side != want {
        return Err(Refusal::Side(if side == Side::Requester { "requesting" } else { "reading" }));
    }
    match (action, state) {
        (Action::Accept, State::Requested) => Ok(State::Accepted),
        (Action::Reject, State::Requested | State::Accepted) => Ok(State::Rejected),
        (Action::Report, State::Requested | State::Accepted) => Ok(State::Reported),
        (Action::Cancel, State::Requested | State::Accepted) => Ok(State::Cancelled),
        (_, s) => Err(Refusal::State(s.as_str())),
    }
}

/// The deadlines: (answer by, report by), the report's counted from the acceptance (or, not
/// yet accepted, from the answer's deadline).
pub fn deadlines(kind: Kind, urgent: bool, requested_ms: i64, accepted_ms: Option<i64>) -> (i64, i64) {
    let answer = requested_ms + if urgent { 30 * MINUTE_MS } else { 24 * HOUR_MS };
    let report_in = match (kind, urgent) {
        (Kind::Ecg, true) => 30 * MINUTE_MS,
        (Kind::Ecg, false) => 24 * HOUR_MS,
        (_, true) => 2 * HOUR_MS,
        (_, false) => 48 * HOUR_MS,
    };
    (answer, accepted_ms.unwrap_or(answer) + report_in)
}

/// Whether an open request is past its deadline at `now`.
pub fn overdue(state: State, now: i64, (answer_by, report_by): (i64, i64)) -> bool {
    match state {
        State::Requested => now > answer_by,
        State::Accepted => now > report_by,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_takes_which_step() {
        use Action::*;
        use Side::*;
        assert_eq!(step(State::Requested, Accept, Reader), Ok(State::Accepted));
        assert_eq!(step(State::Requested, Accept, Requester), Err(Refusal::Side("requesting")));
        assert_eq!(step(State::Accepted, Report, Reader), Ok(State::Reported));
        assert_eq!(step(State::Requested, Report, Reader), Ok(State::Reported), "accepted on the way");
        assert_eq!(step(State::Reported, Report, Reader), Err(Refusal::State("reported")));
        assert_eq!(step(State::Accepted, Cancel, Requester), Ok(State::Cancelled));
        assert_eq!(step(State::Accepted, Cancel, Reader), Err(Refusal::Side("reading")));
        assert_eq!(step(State::Reported, Cancel, Requester), Err(Refusal::State("reported")));
        assert_eq!(step(State::Rejected, Accept, Reader), Err(Refusal::State("rejected")));
        assert!(State::Accepted.open() && !State::Reported.open());
    }

    #[test]
    fn deadlines_by_kind_and_priority() {
        let t = 1_780_000_000_000;
        assert_eq!(deadlines(Kind::Ecg, true, t, Some(t + MINUTE_MS)), (t + 30 * MINUTE_MS, t + 31 * MINUTE_MS));
        assert_eq!(deadlines(Kind::Imaging, false, t, None), (t + 24 * HOUR_MS, t + 72 * HOUR_MS));
        let d = deadlines(Kind::Consultation, true, t, Some(t + 10 * MINUTE_MS));
        assert!(!overdue(State::Accepted, t + 2 * HOUR_MS, d));
        assert!(overdue(State::Accepted, t + 2 * HOUR_MS + 10 * MINUTE_MS + 1, d));
        assert!(overdue(State::Requested, t + 31 * MINUTE_MS, d));
        assert!(!overdue(State::Reported, t + 100 * HOUR_MS, d));
        assert_eq!(Kind::Ecg.report_code().0, "11524-6");
    }
}
