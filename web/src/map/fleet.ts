// The live fleet in memory, fed by /api/transport/stream (a snapshot, then changes with a version
// per vehicle). Changes are collected and handed on at most once per animation frame, never per
// message, so that thousands of moving vehicles cost the page one map update a frame at most.
import type { LiveVehicle } from './vehicles'

/// A message of /api/transport/stream.
export type StreamMessage =
  | { type: 'snapshot'; vehicles: LiveVehicle[] }
  | { type: 'changes'; vehicles: LiveVehicle[] }
  | { type: 'error'; detail: string }

/// Receives the vehicles that changed since the last call, or null when every vehicle may have
/// (a snapshot, a new filter).
export type Flush = (changed: ReadonlySet<string> | null) => void

export class Fleet {
  /// Not reactive on purpose: thousands of vehicles must not become Vue proxies.
  readonly vehicles = new Map<string, LiveVehicle>()
  /// Whether a snapshot arrived since the page opened.
  loaded = false
  private changed = new Set<string>()
  private everything = false
  private frame = 0

  constructor(private readonly flush: Flush) {}

  /// Takes a message of the stream; returns the problem's text of an error message.
  receive(m: StreamMessage): string | null {
    if (m.type === 'error') return m.detail
    if (m.type === 'snapshot') {
      this.vehicles.clear()
      for (const v of m.vehicles) this.vehicles.set(v.vehicle_id, v)
      this.loaded = true
      this.everything = true
    } else {
      for (const v of m.vehicles) {
        const cur = this.vehicles.get(v.vehicle_id)
        if (cur && cur.version >= v.version) continue
        this.vehicles.set(v.vehicle_id, v)
        this.changed.add(v.vehicle_id)
      }
    }
    this.schedule()
    return null
  }

  /// Marks vehicles as changed (their open alarms did).
  touch(ids: Iterable<string>) {
    for (const id of ids) this.changed.add(id)
    this.schedule()
  }

  /// Marks every vehicle as changed (the filters did).
  touchAll() {
    this.everything = true
    this.schedule()
  }

  /// Case-insensitive plate substring matches, at most `limit`, in plate order.
  search(q: string, limit: number): LiveVehicle[] {
    const needle = q.trim().toUpperCase()
    if (!needle) return []
    const out: LiveVehicle[] = []
    for (const v of this.vehicles.values()) if (v.plate.toUpperCase().includes(needle)) out.push(v)
    return out.sort((a, b) => a.plate.localeCompare(b.plate)).slice(0, limit)
  }

  dispose() {
    cancelAnimationFrame(this.frame)
    this.frame = 0
  }

  private schedule() {
    if (this.frame) return
    this.frame = requestAnimationFrame(() => {
      this.frame = 0
      const changed = this.everything ? null : this.changed
      this.everything = false
      this.changed = new Set()
      if (!this.loaded) return
      this.flush(changed)
    })
  }
}
