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
}

/// The UTC milliseconds of Beijing's midnight that starts local day `days`.
pub fn midnight_ms(days: i64) -> i64 {
    days * DAY_MS - BEIJING_MS
}
