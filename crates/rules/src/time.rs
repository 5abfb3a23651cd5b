//! Local time for day/night and curfew rules.
//!
//! The platform's rules use China Standard Time (Asia/Shanghai, UTC+8). China has observed no
//! daylight saving time since 1991, so for any device time the rules can meet, a fixed offset of
//! +8 h is exact: no time-zone database is needed. All local times here are computed from the
//! DEVICE time of an observation, never from the engine's clock.

/// UTC+8, milliseconds.
pub const SHANGHAI_OFFSET_MS: i64 = 8 * HOUR_MS;
/// One minute, milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// One hour, milliseconds.
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
/// One day, milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Local (UTC+8) minute of the day, 0..1440, of a Unix time in milliseconds.
pub fn local_minute_of_day(unix_ms: i64) -> i64 {
    unix_ms.saturating_add(SHANGHAI_OFFSET_MS).rem_euclid(DAY_MS) / MINUTE_MS
}

/// Whether a local minute of the day lies in `[start, end)`; a window with `start > end` wraps
/// past midnight (22:00–06:00 is `1320..360`).
pub fn in_window(minute: i64, start: i64, end: i64) -> bool {
    if start <= end { minute >= start && minute < end } else { minute >= start || minute < end }
}

/// The latest instant at or before `unix_ms` whose local time is `minute` of the day.
pub fn last_local_minute(unix_ms: i64, minute: i64) -> i64 {
    let local = unix_ms.saturating_add(SHANGHAI_OFFSET_MS);
    let day_start = local - local.rem_euclid(DAY_MS);
    let mut at = day_start + minute * MINUTE_MS;
    if at > local {
        at -= DAY_MS;
    }
    at - SHANGHAI_OFFSET_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourteen_utc_is_twenty_two_local() {
        // 2024-01-01T14:00:00Z
        let t = 1_704_117_600_000;
        assert_eq!(local_minute_of_day(t), 22 * 60);
        assert!(in_window(local_minute_of_day(t), 1320, 360));
        assert!(!in_window(local_minute_of_day(t - 1), 1320, 360));
        assert_eq!(last_local_minute(t + 5 * MINUTE_MS, 1320), t);
        assert_eq!(last_local_minute(t, 1320), t);
    }
}
