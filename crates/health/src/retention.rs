//! How long medical records are kept (电子病历应用管理规范（试行）, 2017): outpatient and
//! emergency records at least 15 years from the patient's last visit, inpatient records at least
//! 30 years from the last discharge. Deleting a record before then is refused.

/// Which rule a record falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// 门（急）诊: outpatient, emergency, home and virtual visits.
    Outpatient,
    /// 住院: inpatient stays.
    Inpatient,
}

impl RecordKind {
    /// Years kept from the last visit or discharge.
    pub fn years(self) -> i32 {
        match self {
            RecordKind::Outpatient => 15,
            RecordKind::Inpatient => 30,
        }
    }

    /// The kind of an Encounter's class (v3 ActCode): inpatient stays (`IMP`, `ACUTE`, `NONAC`,
    /// `OBSENC`, `PRENC`, `SS`) are inpatient; every other class is kept as outpatient.
    pub fn of_encounter_class(code: &str) -> Self {
        match code {
            "IMP" | "ACUTE" | "NONAC" | "OBSENC" | "PRENC" | "SS" => RecordKind::Inpatient,
            _ => RecordKind::Outpatient,
        }
    }
}

/// The first day a record may be deleted: the last visit's date `years` later (29 February
/// becomes 28 February in a common year).
pub fn deletable_from(kind: RecordKind, (y, m, d): (i32, u32, u32)) -> (i32, u32, u32) {
    let year = y + kind.years();
    (year, m, d.min(kernel::crypto::days_in_month(year, m)))
}

/// Whether a record whose patient's last visit (or discharge) was `last` may be deleted on
/// `today`; `Err` names the first day it may.
pub fn may_delete(kind: RecordKind, last: (i32, u32, u32), today: (i32, u32, u32)) -> Result<(), (i32, u32, u32)> {
    let from = deletable_from(kind, last);
    if today >= from { Ok(()) } else { Err(from) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outpatient_records_are_kept_15_years_and_inpatient_30() {
        let visit = (2011, 6, 30);
        assert_eq!(may_delete(RecordKind::Outpatient, visit, (2026, 6, 29)), Err((2026, 6, 30)));
        assert_eq!(may_delete(RecordKind::Outpatient, visit, (2026, 6, 30)), Ok(()));
        assert_eq!(may_delete(RecordKind::Inpatient, visit, (2026, 6, 30)), Err((2041, 6, 30)));
        assert_eq!(may_delete(RecordKind::Inpatient, (1990, 1, 1), (2026, 1, 1)), Ok(()));
        // A leap day: 15 years later is not a leap year.
        assert_eq!(deletable_from(RecordKind::Outpatient, (2012, 2, 29)), (2027, 2, 28));
        assert_eq!(deletable_from(RecordKind::Inpatient, (2012, 2, 29)), (2042, 2, 28));
        assert_eq!(deletable_from(RecordKind::Outpatient, (2016, 2, 29)), (2031, 2, 28));
    }

    #[test]
    fn encounter_classes_map_to_the_rule() {
        assert_eq!(RecordKind::of_encounter_class("IMP"), RecordKind::Inpatient);
        assert_eq!(RecordKind::of_encounter_class("AMB"), RecordKind::Outpatient);
        assert_eq!(RecordKind::of_encounter_class("EMER"), RecordKind::Outpatient);
        assert_eq!(RecordKind::of_encounter_class(""), RecordKind::Outpatient);
    }
}
