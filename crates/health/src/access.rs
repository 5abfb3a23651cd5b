//! Who may read or write a patient's record, and on what ground (PIPL; 智能医疗 三(一)): the
//! policy of issue 9 as one pure function, so that every FHIR interaction asks the same question
//! and every answer carries the ground the audit record states.
//!
//! - A resident reads their own record and nothing else.
//! - A clinician reads a patient's shared record when the patient is in care at the clinician's
//!   institution (an encounter, a referral to it, a family-doctor contract with it), or under an
//!   active Consent that permits it; a Consent that denies it prevails over care. Otherwise only
//!   by break-glass, with a stated reason, audited and reported to the security administrator.
//! - An institution writes only its own records (the clinician's institution must own them).
//! - Regulators read aggregates, never records; administrators read no records.

use crate::consent::Decision as ConsentDecision;

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A resident, linked to their own Patient id (if the index found one).
    Resident { patient: Option<String> },
    /// A clinician of an institution (organisation id).
    Clinician { institution: String },
    /// A regulator (health commission staff).
    Regulator,
    /// The three administrators and anyone else.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read a record of the patient.
    Read,
    /// Create or change a record owned by `owner`.
    Write,
    /// Statistics over many patients, no record.
    Aggregate,
}

/// What the platform knows of the patient for this request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub patient: String,
    /// Institutions where the patient is in care now (an open or recent encounter, a referral to
    /// it, a family-doctor contract with it).
    pub in_care_at: Vec<String>,
    /// What the patient's consents say about this caller and request.
    pub consent: Option<ConsentDecision>,
    /// For a write: the institution that owns the record.
    pub owner: Option<String>,
    /// Break-glass: the reason the clinician gave, if they invoked it.
    pub break_glass: Option<String>,
}

/// The ground of an allowed request, which the audit record names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ground {
    OwnRecord,
    InCare,
    Consent,
    /// Emergency access with the reason given: reported to the security administrator.
    BreakGlass(String),
    OwnInstitution,
    Aggregate,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotYourRecord,
    NotInCare,
    ConsentDenies,
    NotYourInstitution,
    RecordsNotForRole,
    /// Break-glass needs a reason of some substance.
    ReasonMissing,
}

/// The least a break-glass reason must say (characters, after trimming).
pub const MIN_REASON_CHARS: usize = 4;

pub fn decide(caller: &Caller, action: Action, ctx: &Context) -> Result<Ground, Refusal> {
    match (caller, action) {
        (Caller::Regulator, Action::Aggregate) => Ok(Ground::Aggregate),
        (Caller::Regulator | Caller::Other, _) => Err(Refusal::RecordsNotForRole),
        (Caller::Resident { patient }, Action::Read) => {
            if patient.as_deref() == Some(ctx.patient.as_str()) {
                Ok(Ground::OwnRecord)
            } else {
                Err(Refusal::NotYourRecord)
            }
        }
        (Caller::Resident { .. }, _) => Err(Refusal::RecordsNotForRole),
        (Caller::Clinician { institution }, Action::Write) => {
            if ctx.owner.as_deref() == Some(institution.as_str()) {
                Ok(Ground::OwnInstitution)
            } else {
                Err(Refusal::NotYourInstitution)
            }
        }
        (Caller::Clinician { .. }, Action::Aggregate) => Err(Refusal::RecordsNotForRole),
        (Caller::Clinician { institution }, Action::Read) => {
            let in_care = ctx.in_care_at.iter().any(|i| i == institution);
            let ordinary = match ctx.consent {
                Some(ConsentDecision::Deny) => Err(Refusal::ConsentDenies),
                Some(ConsentDecision::Permit) => Ok(if in_care { Ground::InCare } else { Ground::Consent }),
                Some(ConsentDecision::NotApplicable) | None if in_care => Ok(Ground::InCare),
                _ => Err(Refusal::NotInCare),
            };
            match (ordinary, &ctx.break_glass) {
                (Ok(g), _) => Ok(g),
                (Err(_), Some(reason)) if reason.trim().chars().count() >= MIN_REASON_CHARS => {
                    Ok(Ground::BreakGlass(reason.trim().to_string()))
                }
                (Err(_), Some(_)) => Err(Refusal::ReasonMissing),
                (Err(r), None) => Err(r),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context { patient: "p1".into(), in_care_at: vec!["people-hospital".into()], ..Context::default() }
    }

    fn clinician(at: &str) -> Caller {
        Caller::Clinician { institution: at.into() }
    }

    #[test]
    fn residents_read_their_own_record_only() {
        let me = Caller::Resident { patient: Some("p1".into()) };
        assert_eq!(decide(&me, Action::Read, &ctx()), Ok(Ground::OwnRecord));
        assert_eq!(decide(&me, Action::Write, &ctx()), Err(Refusal::RecordsNotForRole));
        let other = Caller::Resident { patient: Some("p2".into()) };
        assert_eq!(decide(&other, Action::Read, &ctx()), Err(Refusal::NotYourRecord));
        let unlinked = Caller::Resident { patient: None };
        assert_eq!(decide(&unlinked, Action::Read, &ctx()), Err(Refusal::NotYourRecord));
    }

    #[test]
    fn clinicians_read_in_care_or_by_consent_and_a_refusal_prevails() {
        let here = clinician("people-hospital");
        let there = clinician("tcm-hospital");
        assert_eq!(decide(&here, Action::Read, &ctx()), Ok(Ground::InCare));
        assert_eq!(decide(&there, Action::Read, &ctx()), Err(Refusal::NotInCare));
        let consented = Context { consent: Some(ConsentDecision::Permit), ..ctx() };
        assert_eq!(decide(&there, Action::Read, &consented), Ok(Ground::Consent));
        let refused = Context { consent: Some(ConsentDecision::Deny), ..ctx() };
        assert_eq!(decide(&here, Action::Read, &refused), Err(Refusal::ConsentDenies), "a refusal prevails over care");
        // Break-glass: with a reason, whatever else; without one, not.
        let glass = Context { break_glass: Some("  昏迷急诊，无家属  ".into()), ..refused.clone() };
        assert_eq!(decide(&there, Action::Read, &glass), Ok(Ground::BreakGlass("昏迷急诊，无家属".into())));
        let lazy = Context { break_glass: Some(" x ".into()), ..refused };
        assert_eq!(decide(&there, Action::Read, &lazy), Err(Refusal::ReasonMissing));
        // In care, break-glass is not needed and not recorded as such.
        let needless = Context { break_glass: Some("急诊抢救".into()), ..ctx() };
        assert_eq!(decide(&here, Action::Read, &needless), Ok(Ground::InCare));
    }

    #[test]
    fn institutions_write_their_own_records_and_regulators_see_aggregates() {
        let owned = Context { owner: Some("people-hospital".into()), ..ctx() };
        assert_eq!(decide(&clinician("people-hospital"), Action::Write, &owned), Ok(Ground::OwnInstitution));
        assert_eq!(decide(&clinician("tcm-hospital"), Action::Write, &owned), Err(Refusal::NotYourInstitution));
        assert_eq!(
            decide(&clinician("tcm-hospital"), Action::Write, &ctx()),
            Err(Refusal::NotYourInstitution),
            "no owner known"
        );
        assert_eq!(decide(&Caller::Regulator, Action::Aggregate, &ctx()), Ok(Ground::Aggregate));
        assert_eq!(decide(&Caller::Regulator, Action::Read, &ctx()), Err(Refusal::RecordsNotForRole));
        assert_eq!(decide(&Caller::Other, Action::Read, &ctx()), Err(Refusal::RecordsNotForRole));
        assert_eq!(decide(&clinician("people-hospital"), Action::Aggregate, &ctx()), Err(Refusal::RecordsNotForRole));
    }
}
