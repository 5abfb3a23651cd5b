// The speed limit that applies to a vehicle under the rule set in force, resolved as the rule
// engine does (crate `rules`, `RuleSet::resolve`): the enterprise's limits, then its class's, then
// the defaults, then the built-in values; at night (Beijing time, the engine's night window) a
// class with a night limit drives at a share of the day limit.
import { api } from '../api'

interface Limits {
  speed_limit_kmh?: number | null
  night_speed?: boolean | null
  night_speed_percent?: number | null
}
interface RulesView {
  rules: {
    defaults: Limits
    by_class: Record<string, Limits>
    by_enterprise: Record<string, Limits>
    engine: { night_start_min: number; night_end_min: number }
  }
}

export interface SpeedLimits {
  day_kmh: number
  /// The night limit, when the vehicle has one.
  night_kmh: number | null
  /// Night as Beijing minutes of the day, [start, end); wraps past midnight when start > end.
  night: [number, number]
}

export async function speedLimits(orgId: string, cls: string): Promise<SpeedLimits> {
  const { rules } = await api<RulesView>('GET', '/api/transport/rules')
  const levels = [rules.by_enterprise[orgId], rules.by_class[cls], rules.defaults].filter((l) => l !== undefined)
  const pick = <K extends keyof Limits>(k: K): NonNullable<Limits[K]> | undefined =>
    levels.map((l) => l[k]).find((v) => v !== null && v !== undefined) ?? undefined
  const day = pick('speed_limit_kmh') ?? 120
  const night = pick('night_speed') ? Math.round((day * (pick('night_speed_percent') ?? 80)) / 10) / 10 : null
  return { day_kmh: day, night_kmh: night, night: [rules.engine.night_start_min, rules.engine.night_end_min] }
}

/// The limit at an instant.
export function limitAt(l: SpeedLimits, ms: number): number {
  if (l.night_kmh === null) return l.day_kmh
  const minute = Math.floor(((ms + 8 * 3600_000) % 86_400_000) / 60_000)
  const [start, end] = l.night
  const night = start <= end ? minute >= start && minute < end : minute >= start || minute < end
  return night ? l.night_kmh : l.day_kmh
}
