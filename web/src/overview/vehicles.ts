// The vehicles' online figures in the caller's scope: read once from /api/transport/live, then
// kept by its live stream (/api/transport/stream: a snapshot, then changes). Only each vehicle's
// class and online flag are kept, and the counts derived from them.
import { computed, onUnmounted, ref, shallowRef } from 'vue'
import { api } from '../api'
import { forbidden, message } from './errors'
import { liveSocket, type LiveSocket } from '../live'

interface LiveVehicle {
  vehicle_id: string
  class: string
  online: boolean
}
type StreamMessage = { type: 'snapshot' | 'changes'; vehicles: LiveVehicle[] } | { type: 'error'; detail: string }

export interface ClassCount {
  cls: string
  online: number
  offline: number
}
export interface VehicleCounts {
  total: number
  online: number
  /// Most vehicles first.
  byClass: ClassCount[]
}

/// How often the stream sends changes: counts on a wall need not move faster.
const STREAM = '/api/transport/stream?interval_ms=2000'
/// How long to wait before reading again after the first read failed.
const RETRY_MS = 10_000

export function useVehicleCounts() {
  const counts = shallowRef<VehicleCounts | null>(null)
  /// Whether the caller's role may see vehicles; null until known.
  const allowed = ref<boolean | null>(null)
  const error = ref('')
  const socket = shallowRef<LiveSocket>()
  const live = computed(() => socket.value?.open.value ?? false)
  const state = new Map<string, { cls: string; online: boolean }>()
  let retry: number | undefined
  let gone = false

  function apply(vehicles: LiveVehicle[], replace: boolean) {
    if (replace) state.clear()
    for (const v of vehicles) state.set(v.vehicle_id, { cls: v.class, online: v.online })
    const by = new Map<string, ClassCount>()
    let online = 0
    for (const { cls, online: on } of state.values()) {
      const c = by.get(cls) ?? { cls, online: 0, offline: 0 }
      if (on) {
        c.online += 1
        online += 1
      } else c.offline += 1
      by.set(cls, c)
    }
    const size = (c: ClassCount) => c.online + c.offline
    const byClass = [...by.values()].sort((a, b) => size(b) - size(a) || a.cls.localeCompare(b.cls))
    counts.value = { total: state.size, online, byClass }
  }

  function onMessage(m: StreamMessage) {
    if (m.type === 'snapshot' || m.type === 'changes') apply(m.vehicles, m.type === 'snapshot')
  }

  async function start() {
    try {
      const vehicles = await api<LiveVehicle[]>('GET', '/api/transport/live')
      if (gone) return
      apply(vehicles, true)
      allowed.value = true
      error.value = ''
      socket.value = liveSocket<StreamMessage>(STREAM, onMessage)
    } catch (e) {
      if (forbidden(e)) allowed.value = false
      else if (!gone) {
        error.value = message(e)
        retry = window.setTimeout(start, RETRY_MS)
      }
    }
  }

  start()
  onUnmounted(() => {
    gone = true
    window.clearTimeout(retry)
    socket.value?.stop()
  })
  return { counts, allowed, error, live }
}
