// "Today" as the district counts it: the local day of Asia/Shanghai (UTC+8, no daylight saving
// since 1991), the same day the alarm statistics and the assessment figures are kept in.
const OFFSET_MS = 8 * 3_600_000
export const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

export interface Day {
  /// `YYYY-MM-DD` (local).
  date: string
  /// Start (inclusive) and end (exclusive), ms UTC.
  from: number
  to: number
}

export function dayOf(ms: number): Day {
  const from = Math.floor((ms + OFFSET_MS) / DAY_MS) * DAY_MS - OFFSET_MS
  return { date: new Date(from + OFFSET_MS).toISOString().slice(0, 10), from, to: from + DAY_MS }
}

/// The local hour (0–23) of a time of `day`.
export function hourOf(day: Day, ms: number): number {
  return Math.floor((ms - day.from) / HOUR_MS)
}

export const rfc3339 = (ms: number) => new Date(ms).toISOString()
