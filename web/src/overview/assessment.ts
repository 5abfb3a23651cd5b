// Today's assessment figures (考核指标) of the transport enterprises in the caller's scope, from
// /api/transport/assessment: the domain's rates and the enterprises' alarms per 100 vehicles.
// Today's figures are computed from the day's positions on every request, so they are read every
// 5 minutes, not on every change: they are rates of a whole day and move slowly.
import { onUnmounted, ref, shallowRef } from 'vue'
import { api } from '../api'
import { dayOf } from './day'
import { forbidden, message } from './errors'

export interface AssessmentRow {
  org_id: string
  org_name: string
  vehicles: number
  entered: number
  online: number
  drift_vehicles: number
  records: number
  qualified_records: number
  mileage_km: number
  complete_mileage_km: number
  overspeed_per_100: number | null
  fatigue_per_100: number | null
}

export const RATES = ['network_entry', 'online', 'track_completeness', 'data_qualified', 'drift'] as const
export type Rate = (typeof RATES)[number]

const ratio = (num: number, den: number) => (den > 0 ? num / den : null)

/// The rates of all the rows together, from their counts (as the API computes each row's).
export function domainRates(rows: AssessmentRow[]): Record<Rate, number | null> {
  const sum = (f: (r: AssessmentRow) => number) => rows.reduce((n, r) => n + f(r), 0)
  return {
    network_entry: ratio(sum((r) => r.entered), sum((r) => r.vehicles)),
    online: ratio(sum((r) => r.online), sum((r) => r.entered)),
    track_completeness: ratio(sum((r) => r.complete_mileage_km), sum((r) => r.mileage_km)),
    data_qualified: ratio(sum((r) => r.qualified_records), sum((r) => r.records)),
    drift: ratio(sum((r) => r.drift_vehicles), sum((r) => r.online)),
  }
}

/// The enterprises with the most overspeed and fatigue alarms per 100 online vehicles, most
/// first; those without online vehicles have no such figure and are left out.
export function topEnterprises(rows: AssessmentRow[], n: number): AssessmentRow[] {
  const per100 = (r: AssessmentRow) => (r.overspeed_per_100 ?? 0) + (r.fatigue_per_100 ?? 0)
  return rows
    .filter((r) => r.overspeed_per_100 !== null || r.fatigue_per_100 !== null)
    .sort((a, b) => per100(b) - per100(a) || a.org_name.localeCompare(b.org_name))
    .slice(0, n)
}

const PERIOD_MS = 5 * 60_000

export function useAssessment() {
  const rows = shallowRef<AssessmentRow[] | null>(null)
  /// Whether the caller's role may see the figures; null until known.
  const allowed = ref<boolean | null>(null)
  const error = ref('')

  async function refresh() {
    try {
      const date = dayOf(Date.now()).date
      rows.value = (await api<{ rows: AssessmentRow[] }>('GET', `/api/transport/assessment?date=${date}`)).rows
      allowed.value = true
      error.value = ''
    } catch (e) {
      if (forbidden(e)) allowed.value = false
      else error.value = message(e)
    }
  }

  refresh()
  const clock = window.setInterval(() => allowed.value !== false && refresh(), PERIOD_MS)
  onUnmounted(() => window.clearInterval(clock))
  return { rows, allowed, error }
}
