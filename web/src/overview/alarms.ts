// Today's alarm figures in the caller's scope: the daily statistics (per kind: raised, handled,
// minutes to handle), the open alarms, and counts per severity and per hour (the statistics have
// neither, so those are counted with the list's `total`, one tiny query each). The desk's stream
// (/api/alarms/stream) keeps them live: a new alarm counts at once; the aggregates are read again
// at most every 30 s after a change, at once after a resync or a reconnect, and every 5 minutes
// (a new day, or anything missed).
import { computed, onUnmounted, ref, shallowRef } from 'vue'
import { api, type Alarm, type Paged } from '../api'
import { dayOf, hourOf, HOUR_MS, rfc3339, type Day } from './day'
import { forbidden, message } from './errors'
import { liveSocket, type LiveSocket } from '../live'

interface DayStat {
  kind: string
  raised: number
  handled: number
  /// Rounded to 0.1 by the API.
  mean_minutes_to_handle: number | null
}
/// The stream sends the whole alarm, with what the desk's list type leaves out.
type StreamAlarm = Alarm & { triggers: number; acknowledged_at: string | null }
type StreamMessage = { type: 'alarm'; alarm: StreamAlarm } | { type: 'resync' }

export type Severity = Alarm['severity']
/// Least severe first, as `min_severity` counts them.
const ASCENDING: Severity[] = ['notice', 'minor', 'moderate', 'major', 'critical']

/// What the API answered at the last read.
interface Read {
  day: Day
  stats: DayStat[]
  open: number
  bySeverity: Record<Severity, number>
  /// Alarms started in each local hour of the day, up to the hour of the read.
  hourly: number[]
}

export interface AlarmFigures {
  day: Day
  today: number
  open: number
  handled: number
  /// Of today's alarms, the fraction handled; null without alarms.
  handledRate: number | null
  /// Mean minutes from start to handling, over today's alarms handled; null if none.
  meanMinutes: number | null
  /// Most first.
  byKind: [string, number][]
  bySeverity: Record<Severity, number>
  hourly: number[]
}

const MIN_GAP_MS = 30_000
const PERIOD_MS = 5 * 60_000

async function count(query: Record<string, string>): Promise<number> {
  const q = new URLSearchParams({ ...query, limit: '1' })
  return (await api<Paged<Alarm>>('GET', `/api/alarms?${q}`)).total
}

async function read(now: number): Promise<Read> {
  const day = dayOf(now)
  const range = { from: rfc3339(day.from), to: rfc3339(day.to) }
  const hours = hourOf(day, now) + 1
  const [stats, open, atLeast, hourly] = await Promise.all([
    api<DayStat[]>('GET', `/api/alarms/stats?${new URLSearchParams(range)}`),
    count({ status: 'open' }),
    Promise.all(ASCENDING.map((s) => count({ ...range, min_severity: s }))),
    Promise.all(
      Array.from({ length: hours }, (_, h) =>
        count({ from: rfc3339(day.from + h * HOUR_MS), to: rfc3339(day.from + (h + 1) * HOUR_MS) }),
      ),
    ),
  ])
  const bySeverity = Object.fromEntries(ASCENDING.map((s, i) => [s, atLeast[i] - (atLeast[i + 1] ?? 0)]))
  return { day, stats, open, bySeverity: bySeverity as Record<Severity, number>, hourly }
}

/// Whether a change is an alarm just raised: a first report, nobody has touched it yet (every
/// later change adds a report, ends it, or is a handling step).
function isNew(a: StreamAlarm): boolean {
  return a.status === 'raised' && a.triggers === 1 && !a.ended_at && !a.acknowledged_at && !a.supervised
}

function figuresOf(r: Read, fresh: StreamAlarm[]): AlarmFigures {
  const kinds = new Map<string, number>()
  let today = 0
  let handled = 0
  let minutes = 0
  for (const s of r.stats) {
    kinds.set(s.kind, (kinds.get(s.kind) ?? 0) + s.raised)
    today += s.raised
    handled += s.handled
    minutes += (s.mean_minutes_to_handle ?? 0) * s.handled
  }
  const bySeverity = { ...r.bySeverity }
  const hourly = [...r.hourly]
  for (const a of fresh) {
    const started = Date.parse(a.started_at)
    if (started < r.day.from || started >= r.day.to) continue
    kinds.set(a.kind, (kinds.get(a.kind) ?? 0) + 1)
    today += 1
    bySeverity[a.severity] += 1
    const h = hourOf(r.day, started)
    while (hourly.length <= h) hourly.push(0)
    hourly[h] += 1
  }
  return {
    day: r.day,
    today,
    open: r.open + fresh.length,
    handled,
    handledRate: today ? handled / today : null,
    meanMinutes: handled ? minutes / handled : null,
    byKind: [...kinds].sort((a, b) => b[1] - a[1]),
    bySeverity,
    hourly,
  }
}

export function useAlarmFigures() {
  const last = shallowRef<Read | null>(null)
  /// New alarms from the stream that the last read may not have counted.
  const fresh = shallowRef<StreamAlarm[]>([])
  /// Whether the caller's role may see alarms; null until known.
  const allowed = ref<boolean | null>(null)
  const error = ref('')
  const socket = shallowRef<LiveSocket>()
  const live = computed(() => socket.value?.open.value ?? false)
  const figures = computed(() => (last.value ? figuresOf(last.value, fresh.value) : null))
  const counted = new Set<string>()
  let readAt = 0
  let reading = false
  let again = false
  let timer: number | undefined
  let gone = false

  async function refresh() {
    window.clearTimeout(timer)
    timer = undefined
    if (reading) {
      again = true
      return
    }
    reading = true
    readAt = Date.now()
    // Alarms that arrived before this read began are in its counts.
    const before = new Set(fresh.value.map((a) => a.id))
    try {
      const r = await read(readAt)
      if (gone) return
      if (r.day.date !== last.value?.day.date) counted.clear()
      last.value = r
      fresh.value = fresh.value.filter((a) => !before.has(a.id))
      allowed.value = true
      error.value = ''
      // A change between this read and the socket's opening is caught by the next read.
      socket.value ??= liveSocket<StreamMessage>('/api/alarms/stream', onMessage, {
        onOpen: (reconnected) => (reconnected ? refresh() : soon()),
      })
    } catch (e) {
      if (forbidden(e)) allowed.value = false
      else error.value = message(e)
    } finally {
      reading = false
      if (again && !gone) {
        again = false
        soon()
      }
    }
  }

  /// Reads again once the last read is at least MIN_GAP_MS old.
  function soon() {
    if (reading) again = true
    else timer ??= window.setTimeout(refresh, Math.max(0, readAt + MIN_GAP_MS - Date.now()))
  }

  function onMessage(m: StreamMessage) {
    if (m.type === 'resync') return void refresh()
    if (m.type !== 'alarm') return
    if (isNew(m.alarm) && !counted.has(m.alarm.id)) {
      counted.add(m.alarm.id)
      fresh.value = [...fresh.value, m.alarm]
    }
    soon()
  }

  refresh()
  const clock = window.setInterval(() => {
    if (allowed.value === false) return
    const stale = Date.now() - readAt >= PERIOD_MS || dayOf(Date.now()).date !== last.value?.day.date
    if (stale || error.value) refresh()
  }, 60_000)
  onUnmounted(() => {
    gone = true
    window.clearInterval(clock)
    window.clearTimeout(timer)
    socket.value?.stop()
  })
  return { figures, allowed, error, live }
}
