//! FHIR R4 `date`, `dateTime` and `instant` values (R4 datatypes §2.24.0.1) and the date values of
//! search (R4 search §3.1.1.4.6), each read as the period of time it denotes: `2013` is the whole
//! year, `2013-01-14T10:00+08:00` the whole minute. Searching compares periods, not points.
//!
//! The rules kept: a year is four digits and not 0000; a date must exist (2023-02-30 does not);
//! a time in a `dateTime` or `instant` carries a zone (`Z` or ±hh:mm up to 14:00); an `instant`
//! has seconds; a leap second (`:60`) is read as the last millisecond of its minute. A value
//! without a zone (a `date`, or a search value without one) is read in the platform's zone,
//! Beijing time unless configured: FHIR leaves it to the server.

use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

/// Beijing time, the zone of values that carry none.
pub const BEIJING: UtcOffset = time::macros::offset!(+8);

/// How finely a value was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    Year,
    Month,
    Day,
    Minute,
    Second,
    /// Fractions of a second (the period is at least a millisecond).
    Fraction,
}

/// A half-open period `[start_ms, end_ms)` in milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Period {
    /// The period of one instant (a millisecond).
    pub fn at(ms: i64) -> Self {
        Self { start_ms: ms, end_ms: ms + 1 }
    }

    /// Whether `other` lies wholly inside this period.
    pub fn contains(&self, other: &Period) -> bool {
        self.start_ms <= other.start_ms && other.end_ms <= self.end_ms
    }

    pub fn overlaps(&self, other: &Period) -> bool {
        self.start_ms < other.end_ms && other.start_ms < self.end_ms
    }
}

/// Which of the FHIR types a value is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `date`: a year, a month or a day; no time.
    Date,
    /// `dateTime`: a date, or a date with a time to the second and a zone.
    DateTime,
    /// `instant`: a time to the second (or finer) with a zone.
    Instant,
    /// A search value: a date, or a date with a time to the minute or finer; the zone optional.
    Search,
}

/// A value that is not what its kind allows, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DateError(pub &'static str);

fn digits(s: &str, n: usize) -> Result<u32, DateError> {
    if s.len() == n && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().map_err(|_| DateError("not a number"))
    } else {
        Err(DateError("a date or time field has the wrong number of digits"))
    }
}

/// The zone at the end of a time (`Z`, `+08:00`, `-05:00`), and the time before it.
fn split_zone(t: &str) -> Result<(&str, Option<UtcOffset>), DateError> {
    if let Some(rest) = t.strip_suffix('Z') {
        return Ok((rest, Some(UtcOffset::UTC)));
    }
    let Some(pos) = t.rfind(['+', '-']) else { return Ok((t, None)) };
    let (time, zone) = t.split_at(pos);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let (h, m) = zone[1..].split_once(':').ok_or(DateError("a time zone is written ±hh:mm"))?;
    let (h, m) = (digits(h, 2)?, digits(m, 2)?);
    if m > 59 || h > 14 || (h == 14 && m > 0) {
        return Err(DateError("a time zone lies between -14:00 and +14:00"));
    }
    let offset = UtcOffset::from_hms(sign * h as i8, sign * m as i8, 0).map_err(|_| DateError("bad time zone"))?;
    Ok((time, Some(offset)))
}

fn date_of(y: i32, m: u32, d: u32) -> Result<Date, DateError> {
    let month = Month::try_from(m as u8).map_err(|_| DateError("a month lies between 01 and 12"))?;
    Date::from_calendar_date(y, month, d as u8).map_err(|_| DateError("no such date"))
}

fn ms(dt: PrimitiveDateTime, offset: UtcOffset) -> i64 {
    let t = dt.assume_offset(offset);
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Reads `s` as a value of `kind`; a value without a zone is read in `zone`.
pub fn parse(s: &str, kind: Kind, zone: UtcOffset) -> Result<(Period, Precision), DateError> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let year = digits(parts.next().unwrap_or(""), 4)?;
    if year == 0 {
        return Err(DateError("there is no year 0000"));
    }
    let month = parts.next().map(|m| digits(m, 2)).transpose()?;
    let day = parts.next().map(|d| digits(d, 2)).transpose()?;
    if parts.next().is_some() {
        return Err(DateError("a date is yyyy, yyyy-mm or yyyy-mm-dd"));
    }
    let y = year as i32;
    let Some(time) = time else {
        if kind == Kind::Instant {
            return Err(DateError("an instant has a time and a zone"));
        }
        // The whole year, month or day, in the platform's zone.
        let (start, end, precision) = match (month, day) {
            (None, _) => (date_of(y, 1, 1)?, date_of(y + 1, 1, 1), Precision::Year),
            (Some(m), None) => {
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (date_of(y, m, 1)?, date_of(ny, nm, 1), Precision::Month)
            }
            (Some(m), Some(d)) => {
                let start = date_of(y, m, d)?;
                (start, start.next_day().ok_or(DateError("no such date")), Precision::Day)
            }
        };
        let end = end?;
        return Ok((Period { start_ms: ms(start.midnight(), zone), end_ms: ms(end.midnight(), zone) }, precision));
    };
    let (Some(m), Some(d)) = (month, day) else { return Err(DateError("a time follows a full date")) };
    if kind == Kind::Date {
        return Err(DateError("a date has no time"));
    }
    let day = date_of(y, m, d)?;
    let (clock, offset) = split_zone(time)?;
    let offset = match offset {
        Some(o) => o,
        None if kind == Kind::Search => zone,
        None => return Err(DateError("a time needs a time zone (Z or ±hh:mm)")),
    };
    let mut hms = clock.split(':');
    let h = digits(hms.next().unwrap_or(""), 2)?;
    let min = digits(hms.next().ok_or(DateError("a time is hh:mm:ss"))?, 2)?;
    let sec_part = hms.next();
    if hms.next().is_some() {
        return Err(DateError("a time is hh:mm:ss"));
    }
    if sec_part.is_none() && kind != Kind::Search {
        return Err(DateError("a time has seconds"));
    }
    let (sec, frac) = match sec_part {
        None => (0, None),
        Some(s) => match s.split_once('.') {
            Some((s, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => (digits(s, 2)?, Some(f)),
            Some(_) => return Err(DateError("fractions of a second are digits after the point")),
            None => (digits(s, 2)?, None),
        },
    };
    if h > 23 || min > 59 || sec > 60 {
        return Err(DateError("no such time of day"));
    }
    // A leap second is the last millisecond of its minute.
    let (sec, leap) = if sec == 60 { (59, true) } else { (sec, false) };
    let t = Time::from_hms(h as u8, min as u8, sec as u8).map_err(|_| DateError("no such time of day"))?;
    let mut start = ms(PrimitiveDateTime::new(day, t), offset);
    let (precision, len) = match (sec_part, frac) {
        (None, _) => (Precision::Minute, 60_000),
        (Some(_), None) => (Precision::Second, 1_000),
        (Some(_), Some(f)) => {
            // Milliseconds given (to three places); finer digits fall inside one millisecond.
            let padded: String = f.chars().chain(std::iter::repeat('0')).take(3).collect();
            start += i64::from(padded.parse::<u32>().unwrap_or(0));
            let len = match f.len() {
                1 => 100,
                2 => 10,
                _ => 1,
            };
            (Precision::Fraction, len)
        }
    };
    if leap {
        start += 999;
        return Ok((Period { start_ms: start, end_ms: start + 1 }, precision));
    }
    Ok((Period { start_ms: start, end_ms: start + len }, precision))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Milliseconds of a UTC date and time.
    fn utc(y: i32, mo: u32, d: u32, h: u8, mi: u8, s: u8) -> i64 {
        ms(PrimitiveDateTime::new(date_of(y, mo, d).unwrap(), Time::from_hms(h, mi, s).unwrap()), UtcOffset::UTC)
    }

    #[test]
    fn dates_are_their_whole_year_month_or_day_in_the_platform_zone() {
        let p = |s| parse(s, Kind::Date, BEIJING).unwrap();
        // 2013 in Beijing: from 2012-12-31T16:00Z to 2013-12-31T16:00Z.
        assert_eq!(
            p("2013"),
            (Period { start_ms: utc(2012, 12, 31, 16, 0, 0), end_ms: utc(2013, 12, 31, 16, 0, 0) }, Precision::Year)
        );
        assert_eq!(
            p("2013-12").0,
            Period { start_ms: utc(2013, 11, 30, 16, 0, 0), end_ms: utc(2013, 12, 31, 16, 0, 0) }
        );
        assert_eq!(
            p("2024-02-29").0,
            Period { start_ms: utc(2024, 2, 28, 16, 0, 0), end_ms: utc(2024, 2, 29, 16, 0, 0) }
        );
        assert_eq!(parse("2013", Kind::Date, UtcOffset::UTC).unwrap().0.start_ms, utc(2013, 1, 1, 0, 0, 0));
        for bad in [
            "0000",
            "13",
            "2013-13",
            "2013-02-29",
            "2023-04-31",
            "2013-1-01",
            "2013-01-01-01",
            "2013-01-01T10:00:00Z",
            "",
        ] {
            assert!(parse(bad, Kind::Date, BEIJING).is_err(), "{bad}");
        }
    }

    #[test]
    fn date_times_need_a_zone_and_seconds_instants_need_a_time() {
        let p = |s, k| parse(s, k, BEIJING);
        assert_eq!(
            p("2015-02-07T13:28:17-05:00", Kind::DateTime).unwrap(),
            (Period::at(utc(2015, 2, 7, 18, 28, 17)).widen(1000), Precision::Second)
        );
        assert_eq!(
            p("2015-02-07T13:28:17.239+02:00", Kind::Instant).unwrap().0,
            Period::at(utc(2015, 2, 7, 11, 28, 17) + 239)
        );
        assert_eq!(
            p("2015-02-07T13:28:17.2Z", Kind::Instant).unwrap().0,
            Period::at(utc(2015, 2, 7, 13, 28, 17) + 200).widen(100)
        );
        assert_eq!(p("2017-01-01T00:00:00.000000001Z", Kind::Instant).unwrap().0, Period::at(utc(2017, 1, 1, 0, 0, 0)));
        assert_eq!(
            p("2016-12-31T23:59:60Z", Kind::Instant).unwrap().0,
            Period::at(utc(2016, 12, 31, 23, 59, 59) + 999),
            "leap second"
        );
        assert!(p("2015-02-07", Kind::DateTime).is_ok());
        for (bad, k) in [
            ("2015-02-07T13:28:17", Kind::DateTime),
            ("2015-02-07T13:28Z", Kind::DateTime),
            ("2015-02-07", Kind::Instant),
            ("2015-02T13:28:17Z", Kind::DateTime),
            ("2015-02-07T24:00:00Z", Kind::DateTime),
            ("2015-02-07T13:28:17+14:30", Kind::DateTime),
            ("2015-02-07T13:28:17+0800", Kind::DateTime),
            ("2015-02-07T13:28:17.Z", Kind::DateTime),
        ] {
            assert!(p(bad, k).is_err(), "{bad}");
        }
    }

    #[test]
    fn search_values_may_stop_at_the_minute_and_omit_the_zone() {
        let (period, precision) = parse("2013-01-14T10:00", Kind::Search, BEIJING).unwrap();
        assert_eq!(precision, Precision::Minute);
        assert_eq!(period, Period::at(utc(2013, 1, 14, 2, 0, 0)).widen(60_000));
        assert!(parse("2013-01-14T10", Kind::Search, BEIJING).is_err());
    }

    impl Period {
        fn widen(self, len: i64) -> Period {
            Period { start_ms: self.start_ms, end_ms: self.start_ms + len }
        }
    }

    proptest! {
        #[test]
        fn any_input_is_answered_and_periods_are_never_empty(s in "[0-9T:.Z+-]{0,30}") {
            for k in [Kind::Date, Kind::DateTime, Kind::Instant, Kind::Search] {
                if let Ok((p, _)) = parse(&s, k, BEIJING) {
                    prop_assert!(p.start_ms < p.end_ms);
                }
            }
        }

        #[test]
        fn a_finer_value_lies_inside_the_coarser_one(y in 1i32..9999, m in 1u32..13, d in 1u32..29, h in 0u32..24, mi in 0u32..60, s in 0u32..60) {
            let year = parse(&format!("{y:04}"), Kind::Date, BEIJING).unwrap().0;
            let month = parse(&format!("{y:04}-{m:02}"), Kind::Date, BEIJING).unwrap().0;
            let day = parse(&format!("{y:04}-{m:02}-{d:02}"), Kind::Date, BEIJING).unwrap().0;
            let second = parse(&format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}+08:00"), Kind::DateTime, BEIJING).unwrap().0;
            prop_assert!(year.contains(&month) && month.contains(&day) && day.contains(&second));
        }
    }
}
