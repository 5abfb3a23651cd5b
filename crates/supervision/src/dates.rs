//! Dates as the bureau's records keep them: `YYYY-MM-DD` validity dates, counted in whole days
//! against today in Beijing (UTC+8), which is when a licence or certificate runs out.

use kernel::store::{ms_to_rfc3339, now_ms};

const BEIJING_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// Today's date in Beijing, as days since 1970-01-01.
pub fn today_days() -> i64 {
    (now_ms() + BEIJING_MS).div_euclid(DAY_MS)
}

/// A `YYYY-MM-DD` date as days since 1970-01-01; only years 1990–2100 (a record's validity,
/// never a typo's year 20250).
pub fn days_of(date: &str) -> Option<i64> {
    let d = time::Date::parse(date, &time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    if !(1990..=2100).contains(&d.year()) {
        return None;
    }
    Some(i64::from(d.to_julian_day()) - i64::from(time::macros::date!(1970 - 01 - 01).to_julian_day()))
}

/// Days since 1970-01-01 as `YYYY-MM-DD`.
pub fn date_of(days: i64) -> String {
    ms_to_rfc3339(days * DAY_MS)[..10].to_string()
}

/// The UTC milliseconds of Beijing's midnight that starts local day `days`.
pub fn midnight_ms(days: i64) -> i64 {
    days * DAY_MS - BEIJING_MS
}

/// The local day (Beijing) a UTC millisecond instant falls on.
pub fn day_of_ms(ms: i64) -> i64 {
    (ms + BEIJING_MS).div_euclid(DAY_MS)
}

/// A calendar month (月份) as the monthly records name it, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub year: i32,
    /// 1 to 12.
    pub month: u8,
}

impl Month {
    /// `YYYY-MM`, years 1990–2100 as [`days_of`] takes them.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (year, month) = (y.parse::<i32>().ok()?, m.parse::<u8>().ok()?);
        ((1990..=2100).contains(&year) && (1..=12).contains(&month)).then_some(Month { year, month })
    }

    /// The month local day `days` falls in.
    pub fn of_day(days: i64) -> Month {
        let d = date_of(days);
        Month::parse(&d[..7]).unwrap_or(Month { year: 1970, month: 1 })
    }

    /// The month after.
    pub fn next(self) -> Month {
        if self.month == 12 { Month { year: self.year + 1, month: 1 } } else { Month { month: self.month + 1, ..self } }
    }

    /// The month before.
    pub fn prev(self) -> Month {
        if self.month == 1 { Month { year: self.year - 1, month: 12 } } else { Month { month: self.month - 1, ..self } }
    }

    /// Local day `day` (1–28, which every month has) of the month, as days since 1970-01-01.
    pub fn day(self, day: u8) -> i64 {
        days_of(&format!("{self}-{day:02}")).unwrap_or(0)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_bad_ones_are_none() {
        for d in ["1990-01-01", "2026-12-01", "2028-02-29", "2100-12-31"] {
            assert_eq!(date_of(days_of(d).unwrap()), d);
        }
        for d in ["2030-02-30", "20250-01-01", "1989-12-31", "2026-1-1", "", "2026-12-01T00:00"] {
            assert_eq!(days_of(d), None, "{d}");
        }
        assert_eq!(days_of("1970-01-02").map(|_| ()), None, "before 1990");
        assert!(today_days() > days_of("2026-01-01").unwrap());
    }

    #[test]
    fn months_parse_step_and_name_their_days() {
        let m = Month::parse("2025-12").unwrap();
        assert_eq!((m.next().to_string(), m.prev().to_string()), ("2026-01".into(), "2025-11".into()));
        assert_eq!(Month::parse("2026-01").unwrap().prev().to_string(), "2025-12");
        assert_eq!(date_of(m.next().day(5)), "2026-01-05");
        assert_eq!(Month::of_day(days_of("2024-02-29").unwrap()).to_string(), "2024-02");
        for bad in ["2025-13", "2025-00", "2025-1", "25-01", "2025-01-01", "", "1989-12", "2025-0x", "+202-01"] {
            assert_eq!(Month::parse(bad), None, "{bad}");
        }
        assert!(Month::parse("2025-09").unwrap() < Month::parse("2025-10").unwrap());
        assert_eq!(day_of_ms(midnight_ms(20_000)), 20_000);
        assert_eq!(day_of_ms(midnight_ms(20_000) - 1), 19_999);
    }
}
