// The live monitoring map as a composable: the base map, the fleet from the stream, the open
// alarms, the filters, the chosen vehicle and following it. The page only lays it out.
//
// Every change reaches the map through Fleet's once-a-frame flush: the filters and states are
// applied to the changed vehicles only, and the source gets a diff of them.
import { computed, onMounted, onUnmounted, reactive, ref, shallowRef, watch, type Ref } from 'vue'
import type * as maplibregl from 'maplibre-gl'
import { createBaseMap } from './base'
import { Fleet, type StreamMessage } from './fleet'
import { OpenAlarms } from './alarms'
import { liveSocket, type LiveSocket } from '../live'
import { CLUSTER_MAX_ZOOM, VehicleLayers } from './layers'
import {
  passes, stateOf, toFeature, STATES, type Filters, type LiveVehicle, type VehicleFeature, type VehicleState,
} from './vehicles'

export interface Summary {
  /// Vehicles on the map (passing the filters, with a position).
  shown: number
  /// Of those, online.
  online: number
  /// Vehicles in the caller's scope.
  total: number
  byState: Record<VehicleState, number>
}

export interface Chosen {
  vehicle: LiveVehicle
  state: VehicleState
  /// Open alarms the map knows of.
  alarms: number
}

const FOLLOW_ZOOM = CLUSTER_MAX_ZOOM + 1

export function useLiveMap(container: Ref<HTMLElement | undefined>) {
  const filters = reactive<Filters>({ org: '', cls: '', online: 'all' })
  const summary = shallowRef<Summary | null>(null)
  const stream = shallowRef<LiveSocket>()
  const live = computed(() => stream.value?.open.value ?? false)
  const errors = reactive({ map: '', stream: '', alarms: '' })
  const chosen = shallowRef<Chosen | null>(null)
  const following = ref(false)

  let map: maplibregl.Map | null = null
  let layers: VehicleLayers | null = null
  let chosenId: string | null = null
  let unmounted = false
  /// The vehicles on the map now, by id.
  const shown = new Map<string, VehicleFeature>()

  const fleet = new Fleet(flush)
  const alarms = new OpenAlarms(
    (ids) => fleet.touch(ids),
    (message) => (errors.alarms = message),
  )

  function flush(changed: ReadonlySet<string> | null) {
    if (!changed) shown.clear()
    for (const id of changed ?? fleet.vehicles.keys()) {
      const v = fleet.vehicles.get(id)
      const f = v && passes(v, filters) ? toFeature(v, stateOf(v, alarms.has(id))) : null
      if (f) shown.set(id, f)
      else shown.delete(id)
    }
    layers?.update(shown, changed)
    summary.value = summarise()
    if (chosenId && (!changed || changed.has(chosenId))) refreshChosen()
  }

  function summarise(): Summary {
    const byState = Object.fromEntries(STATES.map((s) => [s, 0])) as Record<VehicleState, number>
    let online = 0
    for (const [id, f] of shown) {
      byState[f.properties.state] += 1
      if (fleet.vehicles.get(id)?.online) online += 1
    }
    return { shown: shown.size, online, total: fleet.vehicles.size, byState }
  }

  function refreshChosen() {
    const v = chosenId ? fleet.vehicles.get(chosenId) : undefined
    if (!v) {
      chosen.value = null
      following.value = false
      layers?.select(null)
      return
    }
    const state = stateOf(v, alarms.has(v.vehicle_id))
    chosen.value = { vehicle: v, state, alarms: alarms.count(v.vehicle_id) }
    layers?.select(toFeature(v, state))
    // Not while the user zooms: the next position recentres.
    if (following.value && v.position && map && !map.isMoving()) {
      map.easeTo({ center: [v.position.lon, v.position.lat], duration: 800 })
    }
  }

  /// Chooses a vehicle; `reveal` moves the map to it (a search, not a click on it).
  function choose(id: string, reveal: boolean) {
    if (id !== chosenId) following.value = false
    chosenId = id
    refreshChosen()
    const p = chosen.value?.vehicle.position
    if (reveal && p && map) map.flyTo({ center: [p.lon, p.lat], zoom: Math.max(map.getZoom(), FOLLOW_ZOOM) })
  }

  function follow(on: boolean) {
    following.value = on
    const p = chosen.value?.vehicle.position
    if (on && p && map) map.easeTo({ center: [p.lon, p.lat], zoom: Math.max(map.getZoom(), FOLLOW_ZOOM) })
  }

  function dismiss() {
    chosenId = null
    refreshChosen()
  }

  watch(filters, () => fleet.touchAll())

  onMounted(async () => {
    stream.value = liveSocket<StreamMessage>('/api/transport/stream', (m) => (errors.stream = fleet.receive(m) ?? ''), {
      probe: '/api/transport/live?bbox=0,0,0,0',
    })
    watch(stream.value.failed, (why) => why && (errors.stream = why))
    alarms.start()
    if (!container.value) return
    try {
      const m = await createBaseMap(container.value)
      if (unmounted) return void m.remove()
      map = m
      layers = new VehicleLayers(m, (id) => choose(id, false))
      // A drag means the user wants to look elsewhere.
      m.on('dragstart', () => (following.value = false))
      fleet.touchAll()
    } catch (e) {
      errors.map = e instanceof Error ? e.message : String(e)
    }
  })

  onUnmounted(() => {
    unmounted = true
    stream.value?.stop()
    alarms.stop()
    fleet.dispose()
    map?.remove()
  })

  return {
    filters,
    summary,
    live,
    errors,
    chosen,
    following,
    choose,
    follow,
    dismiss,
    search: (q: string, limit: number) => fleet.search(q, limit),
  }
}
