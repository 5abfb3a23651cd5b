// A vehicle's track as GET /api/transport/vehicles/{id}/track answers it, and what playback reads
// from it: the position at any instant, the distance travelled so far and the driving time.
import type { Position } from '../api'
import { rfc3339, type Range } from './range'

/// One stored position of the track.
export type TrackPoint = Position

export interface Stop {
  from: string
  to: string
  minutes: number
  lat: number
  lon: number
}

export interface TrackSummary {
  /// Positions in the range (before downsampling).
  points: number
  distance_m: number
  mileage_km: number | null
  max_speed_kmh: number
  stops: Stop[]
}

export interface Track {
  vehicle_id: string
  plate: string
  from: string
  to: string
  summary: TrackSummary
  downsampled: boolean
  points: TrackPoint[]
}

/// Most points the page draws and plays; a longer track is downsampled by the API (ends, alarm
/// points and speed peaks kept). Exports always carry every position.
const MAX_POINTS = 10_000

/// The track endpoint for a range, as JSON (with the minimum stop length) or as an export.
export function trackUrl(id: string, r: Range, opts: { format: 'csv' | 'gpx' } | { stopMinutes: number }): string {
  const q = new URLSearchParams({ from: rfc3339(r.from), to: rfc3339(r.to) })
  if ('format' in opts) q.set('format', opts.format)
  else {
    q.set('max_points', String(MAX_POINTS))
    q.set('stop_minutes', String(opts.stopMinutes))
  }
  return `/api/transport/vehicles/${encodeURIComponent(id)}/track?${q}`
}

/// Longer than this without a position is missing data: not driven through on the map, not
/// counted as driving time, and skipped over by playback.
export const GAP_MS = 5 * 60_000
/// Below this a vehicle counts as standing (as the API's stop detection has it).
const STANDING_KMH = 3

/// Great-circle distance in metres (haversine, mean Earth radius), as the API computes it.
function distanceM(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180
  const dp = (lat2 - lat1) * rad
  const dl = (lon2 - lon1) * rad
  const a = Math.sin(dp / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dl / 2) ** 2
  return 2 * 6_371_008.8 * Math.asin(Math.sqrt(a))
}

/// Time moving: the intervals between consecutive positions, unless the vehicle stood at both or
/// the interval is a gap in the data.
export function drivingMs(points: TrackPoint[]): number {
  let ms = 0
  for (let i = 1; i < points.length; i++) {
    const [a, b] = [points[i - 1], points[i]]
    const dt = b.device_ms - a.device_ms
    if (dt <= GAP_MS && (a.speed_kmh >= STANDING_KMH || b.speed_kmh >= STANDING_KMH)) ms += dt
  }
  return ms
}

/// Where the vehicle was at one instant of playback.
export interface Moment {
  ms: number
  /// The last position at or before `ms`.
  index: number
  lat: number
  lon: number
  heading: number
  speed_kmh: number
  odometer_km: number | null
  /// Distance from the track's start, metres.
  travelled_m: number
}

/// The instants of a track, for playback.
export class Timeline {
  readonly start: number
  readonly end: number
  private readonly times: number[]
  private readonly travelled: number[]

  constructor(readonly points: TrackPoint[]) {
    this.times = points.map((p) => p.device_ms)
    this.start = this.times[0] ?? 0
    this.end = this.times[this.times.length - 1] ?? 0
    this.travelled = [0]
    for (let i = 1; i < points.length; i++) {
      const [a, b] = [points[i - 1], points[i]]
      this.travelled.push(this.travelled[i - 1] + distanceM(a.lat, a.lon, b.lat, b.lon))
    }
  }

  /// The last position at or before `ms` (the first one before the start).
  indexAt(ms: number): number {
    let [lo, hi] = [0, this.times.length - 1]
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.times[mid] <= ms) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  timeOf(index: number): number {
    return this.times[index]
  }

  /// Playback's next instant from `ms`: through a gap in the data, straight to its far side.
  skipGap(ms: number): number {
    const i = this.indexAt(ms)
    const next = this.times[i + 1]
    return next !== undefined && next - this.times[i] > GAP_MS ? Math.max(ms, next) : ms
  }

  /// The vehicle at `ms`: moving in a straight line between two positions, standing still across
  /// a gap in the data.
  at(ms: number): Moment {
    const i = this.indexAt(ms)
    const a = this.points[i]
    const b = this.points[i + 1]
    const dt = b ? b.device_ms - a.device_ms : 0
    const f = b && dt <= GAP_MS ? Math.min(1, Math.max(0, (ms - a.device_ms) / dt)) : 0
    const mix = (x: number, y: number) => x + (y - x) * f
    const odometer = a.mileage_km !== null && b?.mileage_km != null ? mix(a.mileage_km, b.mileage_km) : a.mileage_km
    return {
      ms,
      index: i,
      lat: b ? mix(a.lat, b.lat) : a.lat,
      lon: b ? mix(a.lon, b.lon) : a.lon,
      heading: a.heading,
      speed_kmh: a.speed_kmh,
      odometer_km: odometer,
      travelled_m: b ? mix(this.travelled[i], this.travelled[i + 1]) : this.travelled[i],
    }
  }
}
