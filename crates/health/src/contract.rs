//! Family-doctor contracts (家庭医生签约服务, 智能医疗 三(七)): the service packages and the
//! contract's term, pure.
//!
//! A resident signs with one family-doctor team (a FHIR CareTeam of an institution) at a time,
//! for a term of usually one year (《关于规范家庭医生签约服务管理的指导意见》, 国卫基层发〔2018〕35号:
//! 签约周期原则上为一年, 期满后居民可续约或选择其他团队). A contract names the packages it
//! includes: the basic package, and those of the key populations the basic public health
//! service manages (elderly, hypertension, type 2 diabetes, maternal, child, severe mental
//! illness, tuberculosis, disability). Dates are Beijing calendar days, `YYYY-MM-DD`.

use crate::fhir::datetime::BEIJING;
use time::{Date, Duration, Month, OffsetDateTime};

/// The service packages (服务包): code, Chinese name.
pub const PACKAGES: &[(&str, &str)] = &[
    ("basic", "基础服务包"),
    ("elderly", "老年人服务包"),
    ("hypertension", "高血压患者服务包"),
    ("diabetes", "2型糖尿病患者服务包"),
    ("maternal", "孕产妇服务包"),
    ("child", "0-6岁儿童服务包"),
    ("severe_mental_illness", "严重精神障碍患者服务包"),
    ("tuberculosis", "肺结核患者服务包"),
    ("disability", "残疾人服务包"),
];

/// The roles of a team's members (家庭医生团队: 全科医生, 护士, 公卫医生, 乡村医生, 专科医生).
pub const MEMBER_ROLES: &[(&str, &str)] = &[
    ("doctor", "家庭医生"),
    ("nurse", "护士"),
    ("public_health", "公卫医生"),
    ("village_doctor", "乡村医生"),
    ("specialist", "专科医生"),
];

/// The usual term, and the longest the platform takes.
pub const DEFAULT_MONTHS: u32 = 12;
pub const MAX_MONTHS: u32 = 36;
/// A contract may be renewed from this many days before its end (and any time after).
pub const RENEW_WITHIN_DAYS: i64 = 60;

/// Today's date in Beijing.
pub fn today_date() -> Date {
    OffsetDateTime::now_utc().to_offset(BEIJING).date()
}

/// Today in Beijing as `YYYY-MM-DD`.
pub fn today() -> String {
    day(today_date())
}

pub fn day(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Reads `YYYY-MM-DD` (a real calendar day, years 2000–2199).
pub fn parse_day(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num =
        |r: std::ops::Range<usize>| s.get(r).filter(|x| x.bytes().all(|c| c.is_ascii_digit()))?.parse::<u32>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(2000..2200).contains(&y) {
        return None;
    }
    Date::from_calendar_date(y as i32, Month::try_from(u8::try_from(m).ok()?).ok()?, u8::try_from(d).ok()?).ok()
}

/// The last day of a term of `months` starting on `start`: the day before the same day
/// `months` later (clamped to the month's length: 31 Jan + 1 month ends on 28/29 Feb − 1).
pub fn term_end(start: Date, months: u32) -> Date {
    let total = start.year() * 12 + i32::from(u8::from(start.month())) - 1 + months as i32;
    let (y, m) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u8);
    let month = Month::try_from(m).unwrap_or(Month::January);
    let last = month.length(y);
    let same = Date::from_calendar_date(y, month, start.day().min(last)).unwrap_or(start);
    same - Duration::days(1)
}

/// Checks a contract's packages: known codes, none twice, at least one; the basic package is
/// always part of a contract (added when missing). Returns them in the table's order.
pub fn packages(asked: &[String]) -> Result<Vec<&'static str>, String> {
    for (i, p) in asked.iter().enumerate() {
        if !PACKAGES.iter().any(|(c, _)| c == p) {
            return Err(format!("packages[{i}]: unknown package {p:?}"));
        }
        if asked[..i].contains(p) {
            return Err(format!("packages[{i}]: {p:?} named twice"));
        }
    }
    Ok(PACKAGES.iter().map(|(c, _)| *c).filter(|c| *c == "basic" || asked.iter().any(|p| p == c)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_terms() {
        let d = |s| parse_day(s).unwrap();
        assert_eq!(day(d("2026-12-03")), "2026-12-03");
        for bad in ["2026-02-30", "2026-13-01", "26-01-01", "2026/01/01", "2026-1-01", "1999-12-31", "2026-01-0x", ""] {
            assert!(parse_day(bad).is_none(), "{bad}");
        }
        assert_eq!(day(term_end(d("2026-12-03"), 12)), "2027-12-02");
        assert_eq!(day(term_end(d("2026-01-01"), 12)), "2026-12-31");
        assert_eq!(day(term_end(d("2026-01-31"), 1)), "2026-02-27", "clamped to February, less a day");
        assert_eq!(day(term_end(d("2024-02-29"), 12)), "2025-02-27");
        assert_eq!(day(term_end(d("2026-11-15"), 3)), "2027-02-14", "across the year");
        assert_eq!(today().len(), 10);
    }

    #[test]
    fn packages_are_checked_and_the_basic_one_always_included() {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(packages(&v(&["hypertension"])).unwrap(), vec!["basic", "hypertension"]);
        assert_eq!(packages(&v(&["diabetes", "basic", "elderly"])).unwrap(), vec!["basic", "elderly", "diabetes"]);
        assert_eq!(packages(&[]).unwrap(), vec!["basic"]);
        assert!(packages(&v(&["vip"])).unwrap_err().contains("packages[0]"));
        assert!(packages(&v(&["elderly", "elderly"])).unwrap_err().contains("packages[1]"));
    }
}
