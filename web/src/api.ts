// The platform's API from the console: same origin, the session cookie, and errors shown as the
// problem document's message (RFC 9457), never a stack.
export interface Problem {
  code: string
  detail?: string
  title?: string
  status: number
  field?: string
}

export class ApiError extends Error {
  constructor(public problem: Problem) {
    super(problem.detail ?? problem.title ?? problem.code)
  }
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const resp = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await resp.text()
  const json = text ? JSON.parse(text) : undefined
  if (!resp.ok) {
    const p: Problem = json && typeof json === 'object' ? json : { code: 'http', status: resp.status, detail: resp.statusText }
    throw new ApiError(p)
  }
  return json as T
}

export interface Me {
  user: { id: string; username: string; display_name: string; org_id: string; role: string }
  role_label: [string, string]
  permissions: string[]
  password_min_length: number
  /// The caller's organisation's domain (transport, health, …): the menu follows it.
  domain: string | null
  restriction: 'password_change' | 'totp_setup' | null
}

export interface Alarm {
  id: string
  domain: string
  kind: string
  severity: 'notice' | 'minor' | 'moderate' | 'major' | 'critical'
  subject: { type: string; id: string; label: string }
  org_id: string
  status: 'raised' | 'acknowledged' | 'handled' | 'closed'
  started_at: string
  last_at: string
  ended_at: string | null
  supervised: boolean
}

export interface Paged<T> {
  items: T[]
  total: number
  limit: number
  offset: number
}

/// A position report (JT/T 808 0x0200) as the platform keeps it: the live map's and the track's.
export interface Position {
  /// When the terminal took the fix (ms since the epoch).
  device_ms: number
  received_ms: number
  lat: number
  lon: number
  altitude_m: number
  speed_kmh: number
  /// 0–359°, 0 = north.
  heading: number
  /// Alarm flags (JT/T 808 table 24).
  alarm: number
  /// Status flags (JT/T 808 table 25).
  status: number
  /// Odometer, km, when the terminal reports it.
  mileage_km: number | null
}
