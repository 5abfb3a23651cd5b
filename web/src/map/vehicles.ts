// The live vehicles as the monitoring map sees them (LiveVehicle of /api/transport/live and the
// stream), what state each is in, the map's filters and the GeoJSON feature of one vehicle.
import type { Feature, Point } from 'geojson'
import type { Position } from '../api'


/// The driver signed in on the terminal's IC card reader.
export interface Driver {
  name: string
  certificate: string
}

export interface LiveVehicle {
  vehicle_id: string
  org_id: string
  plate: string
  class: string
  online: boolean
  position: Position | null
  last_seen: string | null
  version: number
  /// Absent from servers that do not report drivers yet.
  driver?: Driver | null
}

/// The vehicle classes the platform distinguishes (VehicleClass of the API).
export const VEHICLE_CLASSES = ['dangerous_goods', 'coach', 'tourist_coach', 'school_bus', 'city_bus', 'taxi', 'heavy_goods'] as const

export type VehicleState = 'moving' | 'stopped' | 'alarm' | 'offline'
export const STATES: readonly VehicleState[] = ['moving', 'stopped', 'alarm', 'offline']
export const STATE_COLOURS: Record<VehicleState, string> = {
  moving: '#16a34a',
  stopped: '#2563eb',
  alarm: '#dc2626',
  offline: '#6b7280',
}

/// Status bit 0 (JT/T 808 table 25): ACC on.
const STATUS_ACC = 1

export const accOn = (p: Position): boolean => (p.status & STATUS_ACC) !== 0

/// Online, ACC on and not standing still.
export const driving = (v: LiveVehicle): boolean =>
  v.online && v.position !== null && accOn(v.position) && v.position.speed_kmh > 0

/// In alarm: the terminal's alarm flags (while online) or an open alarm on the platform; then
/// offline; then moving (driving) or stopped (ACC off or standing still).
export function stateOf(v: LiveVehicle, openAlarm: boolean): VehicleState {
  if (openAlarm || (v.online && v.position && v.position.alarm !== 0)) return 'alarm'
  if (!v.online) return 'offline'
  return driving(v) ? 'moving' : 'stopped'
}

export interface Filters {
  /// Enterprise id, or '' for all.
  org: string
  /// Vehicle class, or '' for all.
  cls: string
  online: 'all' | 'online' | 'offline'
}

export const passes = (v: LiveVehicle, f: Filters): boolean =>
  (!f.org || v.org_id === f.org) &&
  (!f.cls || v.class === f.cls) &&
  (f.online === 'all' || v.online === (f.online === 'online'))

export interface VehicleProps {
  id: string
  state: VehicleState
  heading: number
  /// Driving, whatever its state's colour: its heading is drawn.
  driving: boolean
}
export type VehicleFeature = Feature<Point, VehicleProps>

/// The vehicle's point on the map, or null when it has no position yet.
export function toFeature(v: LiveVehicle, state: VehicleState): VehicleFeature | null {
  const p = v.position
  if (!p) return null
  return {
    type: 'Feature',
    geometry: { type: 'Point', coordinates: [p.lon, p.lat] },
    properties: { id: v.vehicle_id, state, heading: p.heading, driving: driving(v) },
  }
}

/// When the platform last heard from the terminal (ms): its last message of any kind, or its
/// last position's arrival if that is later.
export function lastHeard(v: LiveVehicle): number | null {
  const seen = v.last_seen ? Date.parse(v.last_seen) : null
  const fix = v.position?.received_ms ?? null
  return seen === null ? fix : fix === null ? seen : Math.max(seen, fix)
}

/// The eight compass points of a heading, as [Chinese, English].
const POINTS: [string, string][] = [
  ['北', 'N'], ['东北', 'NE'], ['东', 'E'], ['东南', 'SE'], ['南', 'S'], ['西南', 'SW'], ['西', 'W'], ['西北', 'NW'],
]
export function compass(heading: number): [string, string] {
  return POINTS[Math.round((((heading % 360) + 360) % 360) / 45) % 8]
}
