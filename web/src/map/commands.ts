// The commands the monitoring map sends to a vehicle's terminal (POST
// /api/transport/vehicles/{id}/commands): text (optionally read aloud), position query and
// temporary tracking. Terminal configuration is for the vehicle pages, not the map.
import { api } from '../api'

export type Command =
  | { kind: 'text'; text: string; tts: boolean }
  | { kind: 'query_location' }
  | { kind: 'track'; interval_s: number; validity_s: number }

/// What became of a command (Delivery of the API).
export interface Delivery {
  /// The terminal answered.
  delivered: boolean
  /// The terminal's result (0 success, 1 failure, 2 malformed, 3 unsupported), when it answered.
  result: number | null
  detail: string
}

export type Outcome = 'delivered' | 'failed' | 'malformed' | 'unsupported' | 'undelivered'

export function outcome(d: Delivery): Outcome {
  if (!d.delivered) return 'undelivered'
  return (['delivered', 'failed', 'malformed', 'unsupported'] as const)[d.result ?? 0] ?? 'failed'
}

export const sendCommand = (vehicleId: string, cmd: Command) =>
  api<Delivery>('POST', `/api/transport/vehicles/${encodeURIComponent(vehicleId)}/commands`, cmd)

export const TEXT_MAX = 200

/// A text the terminal takes: 1 to 200 characters, not blank, no control characters.
export function textValid(text: string): boolean {
  const n = [...text].length
  return text.trim().length > 0 && n <= TEXT_MAX && !/\p{Cc}/u.test(text)
}

/// Temporary tracking limits of the form: every 1–3600 s, for 1–1440 minutes.
export const TRACK_INTERVAL = { min: 1, max: 3600 }
export const TRACK_MINUTES = { min: 1, max: 1440 }

/// Text, position query and tracking do not configure the terminal: the server lets both
/// regulators and the vehicle's enterprise operators send them (command.rs `configures()`).
export const canCommand = (role: string | undefined): boolean => role === 'regulator' || role === 'operator'
