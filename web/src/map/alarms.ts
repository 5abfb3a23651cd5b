// Which vehicles have open alarms (transport alarms not closed), loaded from /api/alarms and kept
// current by the alarm desk's stream (/api/alarms/stream), so that the map colours them.
import { watch } from 'vue'
import { api, type Alarm, type Paged } from '../api'
import { liveSocket, type LiveSocket } from '../live'

const PAGE = 500

export class OpenAlarms {
  /// Open alarm id → its vehicle.
  private vehicleOf = new Map<string, string>()
  /// Vehicle → how many open alarms.
  private counts = new Map<string, number>()
  private socket: LiveSocket | null = null
  private stopWatch: (() => void) | null = null

  /// `changed` receives the vehicles whose open alarms changed; `problem` the message of a
  /// problem loading them, or '' once they loaded.
  constructor(
    private readonly changed: (vehicles: string[]) => void,
    private readonly problem: (message: string) => void,
  ) {}

  has(vehicleId: string): boolean {
    return (this.counts.get(vehicleId) ?? 0) > 0
  }

  /// How many open alarms the vehicle has (changes when one opens or closes).
  count(vehicleId: string): number {
    return this.counts.get(vehicleId) ?? 0
  }

  start() {
    const socket = liveSocket<{ type: string; alarm?: Alarm }>('/api/alarms/stream', (m) => this.receive(m), {
      // Reload on every (re)connection: changes while disconnected are not replayed.
      onOpen: () => void this.load(),
      probe: '/api/alarms?limit=1',
    })
    this.stopWatch = watch(socket.failed, (why) => why && this.problem(why))
    this.socket = socket
  }

  stop() {
    this.stopWatch?.()
    this.socket?.stop()
  }

  private async load() {
    try {
      const seen = new Map<string, string>()
      for (let offset = 0; ; offset += PAGE) {
        const page = await api<Paged<Alarm>>('GET', `/api/alarms?status=open&domain=transport&limit=${PAGE}&offset=${offset}`)
        for (const a of page.items) if (a.subject.type === 'vehicle') seen.set(a.id, a.subject.id)
        if (offset + PAGE >= page.total) break
      }
      const before = new Set(this.vehicleOf.values())
      this.vehicleOf = seen
      this.counts = new Map()
      for (const v of seen.values()) this.counts.set(v, (this.counts.get(v) ?? 0) + 1)
      this.changed([...new Set([...before, ...seen.values()])])
      this.problem('')
    } catch (e) {
      this.problem(e instanceof Error ? e.message : String(e))
    }
  }

  private receive(m: { type: string; alarm?: Alarm }) {
    if (m.type === 'resync') return void this.load()
    const a = m.alarm
    if (m.type !== 'alarm' || !a || a.domain !== 'transport' || a.subject.type !== 'vehicle') return
    const vehicle = a.subject.id
    const open = this.vehicleOf.has(a.id)
    if (a.status === 'closed' && open) {
      this.vehicleOf.delete(a.id)
      this.counts.set(vehicle, this.count(vehicle) - 1)
    } else if (a.status !== 'closed' && !open) {
      this.vehicleOf.set(a.id, vehicle)
      this.counts.set(vehicle, this.count(vehicle) + 1)
    } else {
      return
    }
    this.changed([vehicle])
  }
}
