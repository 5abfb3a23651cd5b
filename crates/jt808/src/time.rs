//! `BCD[6]` times (`YY-MM-DD-hh-mm-ss`) and their UTC instants.
//!
//! JT/T 808-2019 §4.2 table 2: times in bodies are BCD in GMT+8, except the
//! 0x8004 reply which carries UTC. The crate keeps its own civil-date arithmetic
//! (days from civil, proleptic Gregorian) rather than pulling in `time` or
//! `chrono`: the conversion needs forty lines, no allocation, and no time zone
//! database, and a dependency would widen what a pure protocol crate drags in.

use crate::error::{Error, Result};
use crate::wire::{bcd_byte, to_bcd};

/// Seconds east of UTC of the standard's body times (GMT+8).
const CHINA_OFFSET: i64 = 8 * 3600;

/// An instant in UTC, seconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime(pub i64);

/// Broken-down civil date and time, as carried on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CivilTime {
    /// Full year (2000–2099 on the wire).
    pub year: u16,
    /// 1–12.
    pub month: u8,
    /// 1–31, checked against the month.
    pub day: u8,
    /// 0–23.
    pub hour: u8,
    /// 0–59.
    pub minute: u8,
    /// 0–59 (a leap second 60 is refused).
    pub second: u8,
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u8) -> u8 {
    const DAYS: [u8; 13] = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    match m {
        2 if is_leap(y) => 29,
        _ => DAYS.get(usize::from(m)).copied().unwrap_or(0),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (era arithmetic).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // d is 1..=31 and m 1..=12 by construction.
    (y, d as u8, m as u8)
}

impl CivilTime {
    /// Checks every field; the error names the first one out of range.
    pub(crate) fn validate(&self, prefix: &Fields) -> Result<()> {
        let out = |field, value: u8| Err(Error::OutOfRange { field, value: i64::from(value) });
        if !(1..=12).contains(&self.month) {
            return out(prefix.month, self.month);
        }
        if self.day == 0 || self.day > days_in_month(i64::from(self.year), self.month) {
            return out(prefix.day, self.day);
        }
        if self.hour > 23 {
            return out(prefix.hour, self.hour);
        }
        if self.minute > 59 {
            return out(prefix.minute, self.minute);
        }
        if self.second > 59 {
            return out(prefix.second, self.second);
        }
        Ok(())
    }

    /// Seconds since the epoch, reading this civil time as UTC plus `offset` seconds.
    fn to_unix(self, offset: i64) -> i64 {
        let days = days_from_civil(i64::from(self.year), i64::from(self.month), i64::from(self.day));
        days * 86_400 + i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second) - offset
    }

    fn from_unix(t: i64, offset: i64) -> (i64, Self) {
        // Far beyond any wire value, but keeps caller-built instants from overflowing.
        let local = t.clamp(-(1 << 50), 1 << 50) + offset;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (y, d, m) = civil_from_days(days);
        let c = CivilTime {
            year: u16::try_from(y.clamp(0, 9999)).unwrap_or(0),
            month: m,
            day: d,
            hour: (secs / 3600) as u8,
            minute: (secs / 60 % 60) as u8,
            second: (secs % 60) as u8,
        };
        (y, c)
    }
}

/// Field names used in errors for one time field.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    year: &'static str,
    month: &'static str,
    day: &'static str,
    hour: &'static str,
    minute: &'static str,
    second: &'static str,
}

macro_rules! fields {
    ($p:literal) => {
        // A reference to a constant: promoted to a static, so no call copies six names.
        &const {
            $crate::time::Fields::new(
                concat!($p, ".year"),
                concat!($p, ".month"),
                concat!($p, ".day"),
                concat!($p, ".hour"),
                concat!($p, ".minute"),
                concat!($p, ".second"),
            )
        }
    };
}
pub(crate) use fields;

impl Fields {
    pub(crate) const fn new(
        year: &'static str,
        month: &'static str,
        day: &'static str,
        hour: &'static str,
        minute: &'static str,
        second: &'static str,
    ) -> Self {
        Self { year, month, day, hour, minute, second }
    }
}

/// Reads the six BCD bytes without checking ranges.
fn read_civil(raw: [u8; 6], f: &Fields) -> Result<CivilTime> {
    Ok(CivilTime {
        year: 2000 + u16::from(bcd_byte(raw[0], f.year)?),
        month: bcd_byte(raw[1], f.month)?,
        day: bcd_byte(raw[2], f.day)?,
        hour: bcd_byte(raw[3], f.hour)?,
        minute: bcd_byte(raw[4], f.minute)?,
        second: bcd_byte(raw[5], f.second)?,
    })
}

impl UtcTime {
    /// Decodes a `BCD[6]` time given in GMT+8 (JT/T 808-2019 table 2). All zeros — sent
    /// by terminals before their first fix — decodes to `None`.
    pub fn from_bcd_gmt8(raw: [u8; 6], f: &Fields) -> Result<Option<Self>> {
        Self::from_bcd(raw, f, CHINA_OFFSET)
    }

    /// Decodes a `BCD[6]` time given in UTC (the 0x8004 reply).
    pub fn from_bcd_utc(raw: [u8; 6], f: &Fields) -> Result<Option<Self>> {
        Self::from_bcd(raw, f, 0)
    }

    #[inline]
    fn from_bcd(raw: [u8; 6], f: &Fields, offset: i64) -> Result<Option<Self>> {
        if raw == [0; 6] {
            return Ok(None);
        }
        // Fast path, on every 0x0200: all six bytes checked and converted as one word.
        let mut w = [0u8; 8];
        w[..6].copy_from_slice(&raw);
        let x = u64::from_le_bytes(w);
        let lo = x & 0x0f0f_0f0f_0f0f;
        let hi = (x >> 4) & 0x0f0f_0f0f_0f0f;
        // A nibble above 9 carries into bit 4 when 6 is added.
        let bad = ((lo + 0x0606_0606_0606) | (hi + 0x0606_0606_0606)) & 0x1010_1010_1010;
        if bad == 0 {
            // hi * 10 + lo per byte; at most 99, so no byte carries into the next.
            let v = ((hi << 3) + (hi << 1) + lo).to_le_bytes();
            let c = CivilTime {
                year: 2000 + u16::from(v[0]),
                month: v[1],
                day: v[2],
                hour: v[3],
                minute: v[4],
                second: v[5],
            };
            if (1..=12).contains(&c.month)
                && c.day != 0
                && c.day <= days_in_month(i64::from(c.year), c.month)
                && c.hour < 24
                && c.minute < 60
                && c.second < 60
            {
                // 2000–2099: every fourth year is leap (2000 included), so the day count
                // needs no era arithmetic.
                const CUMULATIVE: [u16; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
                let yy = i64::from(v[0]);
                let before_month = CUMULATIVE.get(usize::from(c.month) - 1).copied().unwrap_or(0);
                let leap_day = i64::from(yy % 4 == 0 && c.month > 2);
                let days = 10_957 + yy * 365 + (yy + 3) / 4 + i64::from(before_month) + leap_day + i64::from(c.day) - 1;
                let secs = days * 86_400 + i64::from(c.hour) * 3600 + i64::from(c.minute) * 60 + i64::from(c.second);
                return Ok(Some(UtcTime(secs - offset)));
            }
        }
        Self::from_bcd_slow(raw, f, offset)
    }

    /// Finds the field to name in the error (and handles what the fast path refused).
    #[cold]
    #[inline(never)]
    fn from_bcd_slow(raw: [u8; 6], f: &Fields, offset: i64) -> Result<Option<Self>> {
        let c = read_civil(raw, f)?;
        c.validate(f)?;
        Ok(Some(UtcTime(c.to_unix(offset))))
    }

    /// Encodes as `BCD[6]` in GMT+8; years outside 2000–2099 cannot be written.
    pub fn to_bcd_gmt8(time: Option<Self>, f: &Fields) -> Result<[u8; 6]> {
        Self::to_bcd(time, f, CHINA_OFFSET)
    }

    /// Encodes as `BCD[6]` in UTC.
    pub fn to_bcd_utc(time: Option<Self>, f: &Fields) -> Result<[u8; 6]> {
        Self::to_bcd(time, f, 0)
    }

    fn to_bcd(time: Option<Self>, f: &Fields, offset: i64) -> Result<[u8; 6]> {
        let Some(UtcTime(t)) = time else {
            return Ok([0; 6]);
        };
        let (year, c) = CivilTime::from_unix(t, offset);
        if !(2000..=2099).contains(&year) {
            return Err(Error::OutOfRange { field: f.year, value: year });
        }
        let yy = (year - 2000) as u8;
        Ok([to_bcd(yy), to_bcd(c.month), to_bcd(c.day), to_bcd(c.hour), to_bcd(c.minute), to_bcd(c.second)])
    }

    /// The civil time in GMT+8, as a terminal shows it.
    pub fn to_china_civil(self) -> CivilTime {
        CivilTime::from_unix(self.0, CHINA_OFFSET).1
    }

    /// The civil time in UTC.
    pub fn to_utc_civil(self) -> CivilTime {
        CivilTime::from_unix(self.0, 0).1
    }
}

impl core::fmt::Debug for UtcTime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{self}")
    }
}

impl core::fmt::Display for UtcTime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let c = self.to_utc_civil();
        write!(f, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", c.year, c.month, c.day, c.hour, c.minute, c.second)
    }
}

/// A `BCD[6]` time kept as its digits, for fields where 0 is a wildcard rather than
/// an error (area and route validity, §8.49: a year of 00 means "every year").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BcdTime(pub [u8; 6]);

impl BcdTime {
    pub(crate) fn read(raw: [u8; 6], field: &'static str) -> Result<Self> {
        for b in raw {
            bcd_byte(b, field)?;
        }
        Ok(Self(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_leap_days_round_trip() {
        for days in [-1, 0, 1, 10_957, 11_016, 18_321, 47_482] {
            let (y, d, m) = civil_from_days(days);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn fast_path_agrees_with_era_arithmetic() {
        let f = fields!("t");
        for yy in 0..100u8 {
            for (m, d) in [(1u8, 1u8), (2, 28), (3, 1), (12, 31), (2, 29)] {
                let raw = [to_bcd(yy), to_bcd(m), to_bcd(d), 0x23, 0x59, 0x58];
                let Ok(Some(fast)) = UtcTime::from_bcd_gmt8(raw, f) else { continue };
                let c = read_civil(raw, f).ok().map(|c| c.to_unix(CHINA_OFFSET));
                assert_eq!(Some(fast.0), c, "{raw:02x?}");
                assert_eq!(UtcTime::to_bcd_gmt8(Some(fast), f), Ok(raw));
            }
        }
    }

    #[test]
    fn gmt8_is_eight_hours_ahead() {
        let t = UtcTime::from_bcd_gmt8([0x20, 0x01, 0x01, 0x08, 0, 0], fields!("t")).ok().flatten();
        assert_eq!(t.map(|t| t.to_string()), Some("2020-01-01T00:00:00Z".to_owned()));
    }

    #[test]
    fn extreme_instants_do_not_overflow() {
        let _ = UtcTime(i64::MAX).to_string();
        let _ = UtcTime(i64::MIN).to_string();
        assert!(UtcTime::to_bcd_gmt8(Some(UtcTime(i64::MAX)), fields!("t")).is_err());
    }

    #[test]
    fn month_13_names_the_field() {
        let e = UtcTime::from_bcd_gmt8([0x20, 0x13, 0x01, 0, 0, 0], fields!("location.time"));
        assert_eq!(e, Err(Error::OutOfRange { field: "location.time.month", value: 13 }));
        let e = UtcTime::from_bcd_gmt8([0x21, 0x02, 0x29, 0, 0, 0], fields!("location.time"));
        assert_eq!(e, Err(Error::OutOfRange { field: "location.time.day", value: 29 }));
    }
}
