// Days left of a validity or a deadline, as every supervision page shows them: expired (or
// overdue) in red with how many days ago, due within 30 days in amber, the rest plain.
import { lang } from '../i18n'
import type { Tone } from './list'

/// "剩 12 天" / "已过期 3 天" (or "已逾期 3 天" for a deadline); "—" when there is no date.
export function daysText(days: number | null | undefined, deadline = false): string {
  if (days === null || days === undefined) return '—'
  const en = lang.value === 'en'
  if (days < 0) {
    const n = -days
    if (en) return `${deadline ? 'Overdue' : 'Expired'} ${n} day${n === 1 ? '' : 's'}`
    return `${deadline ? '已逾期' : '已过期'} ${n} 天`
  }
  if (days === 0) return en ? 'Last day today' : '今天到期'
  return en ? `${days} day${days === 1 ? '' : 's'} left` : `剩 ${days} 天`
}

/// The tag's colour for days left; `soon` is the amber window.
export function daysTone(days: number | null | undefined, soon = 30): Tone | undefined {
  if (days === null || days === undefined) return undefined
  if (days < 0) return 'bad'
  if (days <= soon) return 'warn'
  return 'ok'
}

/// Only what needs attention: expired (bad) or due within `soon` days (warn); otherwise none.
export function alertTone(days: number | null | undefined, soon = 30): Tone | undefined {
  const tone = daysTone(days, soon)
  return tone === 'ok' ? undefined : tone
}
