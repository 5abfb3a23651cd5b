// Time ranges of a track query in Beijing time (UTC+8, no daylight saving), whatever the
// browser's own time zone is.
const BEIJING_MS = 8 * 3600_000
const DAY_MS = 86_400_000

/// The track endpoint's longest range (`to` at most 31 days after `from`).
const MAX_SPAN_MS = 31 * DAY_MS

export interface Range {
  from: number
  to: number
}

export type Quick = 'lastHour' | 'today' | 'yesterday' | 'last24h'
export const quickChoices: Quick[] = ['lastHour', 'today', 'yesterday', 'last24h']

/// Beijing midnight at or before `ms`.
function dayStart(ms: number): number {
  return Math.floor((ms + BEIJING_MS) / DAY_MS) * DAY_MS - BEIJING_MS
}

/// A quick choice's range; "now" is rounded up to the minute, as the inputs show minutes.
export function quickRange(q: Quick, now = Date.now()): Range {
  const end = Math.ceil(now / 60_000) * 60_000
  const today = dayStart(now)
  switch (q) {
    case 'lastHour':
      return { from: end - 3600_000, to: end }
    case 'today':
      return { from: today, to: today + DAY_MS }
    case 'yesterday':
      return { from: today - DAY_MS, to: today }
    case 'last24h':
      return { from: end - DAY_MS, to: end }
  }
}

/// A datetime-local input's value ("YYYY-MM-DDTHH:mm") of `ms` in Beijing time.
export function toInput(ms: number): string {
  return new Date(ms + BEIJING_MS).toISOString().slice(0, 16)
}

/// A datetime-local input's value read as Beijing time; NaN when empty or malformed.
export function fromInput(v: string): number {
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(v) ? Date.parse(`${v}:00+08:00`) : NaN
}

/// RFC 3339 in Beijing time, as the API and the address bar take it.
export function rfc3339(ms: number): string {
  return new Date(ms + BEIJING_MS).toISOString().slice(0, 19) + '+08:00'
}

/// What is wrong with a range, if anything, before asking the API.
export function rangeProblem(r: Range): 'invalid' | 'order' | 'span' | null {
  if (!Number.isFinite(r.from) || !Number.isFinite(r.to)) return 'invalid'
  if (r.to <= r.from) return 'order'
  if (r.to - r.from > MAX_SPAN_MS) return 'span'
  return null
}
